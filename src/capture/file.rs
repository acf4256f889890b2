//! Saved capture files: legacy pcap (µs and ns, either byte order) and pcapng.
//!
//! A file is memory-mapped and read in place: a [`Frame`] borrows its bytes from the mapping,
//! so nothing is copied and nothing is allocated per frame. Headers (the pcap file header,
//! pcapng Section Header and Interface Description Blocks) and legacy pcap records are parsed
//! with `pcap-parser`; the fixed fields of pcapng packet blocks are read directly, because
//! `pcap-parser`'s Enhanced Packet Block collects its options into a `Vec` (an allocation per
//! packet) and this is the hot path.

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::{Advice, Mmap, UncheckedAdvice};
use pcap_parser::nom;
use pcap_parser::{
    InterfaceDescriptionBlock, PcapError, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_pcap_frame, parse_pcap_frame_be,
    parse_pcap_frame_modified, parse_pcap_header, parse_sectionheaderblock,
};

use super::{CaptureError, CaptureWarning, Frame, FrameRef};
use crate::time::Timestamp;

/// A record longer than this is corrupt whatever the snaplen says.
pub(crate) const MAX_RECORD: u32 = 256 * 1024 * 1024;
/// Records up to this length are plausible even when they exceed 16 × the snaplen.
const LENIENT_RECORD: u32 = 256 * 1024;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 0x0000_0001;
const PCAPNG_PB: u32 = 0x0000_0002; // obsolete Packet Block, still counted as a frame
const PCAPNG_SPB: u32 = 0x0000_0003;
const PCAPNG_EPB: u32 = 0x0000_0006;
const PCAPNG_DSB: u32 = 0x0000_000A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
/// Decryption Secrets Block secrets type: a TLS key log ("TLSK").
const SECRETS_TLS_KEYLOG: u32 = 0x544C_534B;
const OPT_IF_TSOFFSET: u16 = 14;

/// Mapped pages behind the read position are released in steps of this size, so the
/// resident set stays flat while a multi-gigabyte file streams through. Resident mapped
/// pages count in the process's RSS and so against the one memory budget: at 64 MiB they
/// were a quarter of the default budget; at 8 MiB the cost is one `madvise` per 8 MiB read
/// (pages a worker still reads after their release fault back in from the page cache).
const RELEASE_STEP: usize = 8 * 1024 * 1024;
/// The workers read a frame's payload after the reader went past it (the queues between
/// them hold several MiB of segments), so pages released right behind the read position
/// fault back in when a worker reads them, and would stay: a capture whose workers lag
/// kept nearly the whole file resident (528 MiB of a 668 MiB file). Every range is therefore
/// released a second time once the reader is this far past it, beyond what the queues
/// can hold.
const RELEASE_AGAIN_LAG: usize = 32 * 1024 * 1024;

/// Is `caplen` absurd for a record of a file or interface whose snaplen is `snaplen`?
pub(crate) fn absurd_caplen(caplen: u32, snaplen: u32) -> bool {
    caplen > MAX_RECORD
        || (snaplen > 0 && u64::from(caplen) > 16 * u64::from(snaplen) && caplen > LENIENT_RECORD)
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Pcap(PcapParams),
    PcapNg,
}

#[derive(Clone, Copy, Debug)]
struct PcapParams {
    big_endian: bool,
    nanos: bool,
    /// Kuznetzov's "modified" pcap (magic 0xa1b2cd34): 24-byte record headers.
    modified: bool,
    linktype: u32,
    snaplen: u32,
}

/// One opened, header-validated, memory-mapped capture file.
pub(crate) struct CaptureFile {
    pub(crate) name: String,
    map: Mmap,
    format: Format,
    /// Link types known from the headers (pcap header, or the IDBs at the start of a pcapng
    /// file), so that a capture filter can be compiled before the first frame is read.
    pub(crate) linktypes: Vec<u32>,
}

impl CaptureFile {
    /// Opens, maps and validates one file.
    pub(crate) fn open(path: &Path) -> Result<CaptureFile, CaptureError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| io_error(&name, e))?;
        if meta.is_dir() {
            return Err(CaptureError::IsDirectory { file: name });
        }
        if !meta.is_file() {
            return Err(CaptureError::NotRegularFile { file: name });
        }
        if meta.len() == 0 {
            return Err(CaptureError::Empty { file: name });
        }
        let file = File::open(path).map_err(|e| io_error(&name, e))?;
        // SAFETY: the mapping is read-only (a shared mapping of a file opened for reading).
        // The one hazard is another process truncating or rewriting the file while we read
        // it: bytes may change under us (every byte is untrusted input, bounds-checked before
        // use, so this cannot break memory safety here) or a read past a truncation raises
        // SIGBUS. Capture files are not rewritten in place; a file still being appended to
        // is read as far as it was when it was opened.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_error(&name, e))?;
        // Advice is a hint: a kernel that refuses it changes nothing.
        let _ = map.advise(Advice::Sequential);
        let data: &[u8] = &map;
        let format = detect_format(&name, data)?;
        let linktypes = match format {
            Format::Pcap(p) => vec![p.linktype],
            Format::PcapNg => pcapng_leading_linktypes(data),
        };
        Ok(CaptureFile {
            name,
            map,
            format,
            linktypes,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The TLS key log text of the pcapng Decryption Secrets Blocks that precede the
    /// file's first packet block (where `editcap --inject-secrets` and Wireshark put them).
    /// Only block headers are read, so this costs nothing on a large file.
    pub(crate) fn tls_secrets(&self) -> Vec<u8> {
        match self.format {
            Format::PcapNg => pcapng_tls_secrets(&self.map),
            Format::Pcap(_) => Vec::new(),
        }
    }

    pub(crate) fn reader(&self, file_index: u16) -> FileReader<'_> {
        let (pos, pcap) = match self.format {
            // Both pcap header forms are 24 bytes.
            Format::Pcap(p) => (24, Some(p)),
            Format::PcapNg => (0, None),
        };
        FileReader {
            file: self,
            data: &self.map,
            pos,
            released: 0,
            released_again: 0,
            file_index,
            frames: 0,
            last_ts: Timestamp::ZERO,
            pcap,
            ng: NgState::default(),
            warning: None,
            done: false,
            late_secrets: Vec::new(),
        }
    }

    /// Tells the kernel it may drop the mapped pages in `[from, to)` from this process's
    /// page tables (they stay in the page cache).
    fn release(&self, from: usize, to: usize) {
        if to > from && to <= self.map.len() {
            // SAFETY: MADV_DONTNEED on a read-only shared file mapping only unmaps the pages;
            // a later access faults the same file bytes back in from the page cache, so no
            // reference into the map ever sees different contents. Frames handed to visitors
            // do not outlive the visit call, and the range lies behind the read position.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }
}

fn io_error(name: &str, e: io::Error) -> CaptureError {
    match e.kind() {
        io::ErrorKind::NotFound => CaptureError::NotFound {
            file: name.to_owned(),
        },
        io::ErrorKind::PermissionDenied => CaptureError::PermissionDenied {
            file: name.to_owned(),
        },
        _ => CaptureError::Io {
            file: name.to_owned(),
            source: e,
        },
    }
}

fn read_u32(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn read_u16(data: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let bytes: [u8; 2] = data.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(bytes)
    } else {
        u16::from_le_bytes(bytes)
    })
}

fn detect_format(name: &str, data: &[u8]) -> Result<Format, CaptureError> {
    let magic_le = read_u32(data, 0, false);
    match magic_le {
        Some(0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34 | 0xd4c3_b2a1 | 0x4d3c_b2a1 | 0x34cd_b2a1) => {
            if magic_le == Some(0x34cd_b2a1) {
                // Big-endian "modified" pcap: pcap-parser reads only the little-endian form.
                return Err(CaptureError::Unsupported {
                    file: name.to_owned(),
                    what: "a big-endian \"modified\" (Kuznetzov) pcap file".to_owned(),
                    hint: "convert it with `editcap -F pcapng FILE OUT.pcapng`",
                });
            }
            let header = match parse_pcap_header(data) {
                Ok((_, h)) => h,
                Err(nom::Err::Incomplete(_)) => {
                    return Err(CaptureError::HeaderTruncated {
                        file: name.to_owned(),
                        format: "pcap",
                        len: data.len() as u64,
                    });
                }
                Err(_) => {
                    return Err(CaptureError::NotCapture {
                        file: name.to_owned(),
                        what: describe_magic(data),
                    });
                }
            };
            // The upper bits of the link-type field carry FCS information (pcap spec, §"LinkType
            // and additional information"); the link type itself is the low 28 bits.
            let linktype = (header.network.0 as u32) & 0x0FFF_FFFF;
            Ok(Format::Pcap(PcapParams {
                big_endian: header.is_bigendian(),
                nanos: header.is_nanosecond_precision(),
                modified: header.is_modified_format(),
                linktype,
                snaplen: header.snaplen,
            }))
        }
        Some(PCAPNG_SHB) => {
            if data.len() < 28 {
                return Err(CaptureError::HeaderTruncated {
                    file: name.to_owned(),
                    format: "pcapng",
                    len: data.len() as u64,
                });
            }
            let bom = read_u32(data, 8, false);
            let big_endian = match bom {
                Some(PCAPNG_BOM) => false,
                Some(b) if b == PCAPNG_BOM.swap_bytes() => true,
                _ => {
                    return Err(CaptureError::NotCapture {
                        file: name.to_owned(),
                        what: format!(
                            "it starts like pcapng but its byte-order magic is wrong ({})",
                            hex_prefix(data, 12)
                        ),
                    });
                }
            };
            let block_len = read_u32(data, 4, big_endian).unwrap_or(0);
            if block_len as usize > data.len() && block_len <= MAX_RECORD {
                return Err(CaptureError::HeaderTruncated {
                    file: name.to_owned(),
                    format: "pcapng",
                    len: data.len() as u64,
                });
            }
            match parse_sectionheaderblock(data) {
                Ok((_, shb)) if shb.major_version == 1 => Ok(Format::PcapNg),
                Ok((_, shb)) => Err(CaptureError::Unsupported {
                    file: name.to_owned(),
                    what: format!("pcapng version {}.{}", shb.major_version, shb.minor_version),
                    hint: "only pcapng 1.x exists; the file is probably damaged",
                }),
                Err(_) => Err(CaptureError::Corrupt {
                    file: name.to_owned(),
                    frame: None,
                    offset: 0,
                    detail: "the pcapng section header block is malformed".to_owned(),
                }),
            }
        }
        _ => {
            // Shorter than a magic number, or an unknown magic.
            if data.len() < 4 && is_magic_prefix(data) {
                return Err(CaptureError::HeaderTruncated {
                    file: name.to_owned(),
                    format: "capture",
                    len: data.len() as u64,
                });
            }
            Err(CaptureError::NotCapture {
                file: name.to_owned(),
                what: describe_magic(data),
            })
        }
    }
}

fn is_magic_prefix(data: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 7] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x34, 0xcd, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xcd, 0x34],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    MAGICS.iter().any(|m| m.starts_with(data))
}

fn hex_prefix(data: &[u8], n: usize) -> String {
    let mut s = String::from("starts with");
    for b in data.iter().take(n) {
        s.push_str(&format!(" {b:02x}"));
    }
    s
}

/// Says what a file that is not a capture looks like, from its first bytes.
fn describe_magic(data: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (
            b"\x1f\x8b",
            "a gzip-compressed file: decompress it first (gunzip)",
        ),
        (
            b"BZh",
            "a bzip2-compressed file: decompress it first (bunzip2)",
        ),
        (
            b"\xfd7zXZ\x00",
            "an xz-compressed file: decompress it first (unxz)",
        ),
        (
            b"\x28\xb5\x2f\xfd",
            "a zstd-compressed file: decompress it first (unzstd)",
        ),
        (
            b"\x04\x22\x4d\x18",
            "an lz4-compressed file: decompress it first (unlz4)",
        ),
        (
            b"PK\x03\x04",
            "a zip archive: extract the capture from it first",
        ),
        (
            b"7z\xbc\xaf\x27\x1c",
            "a 7-zip archive: extract the capture from it first",
        ),
        (b"\x7fELF", "an executable (ELF)"),
        (
            b"SQLite format 3\x00",
            "an SQLite database (a wirelint --db file?)",
        ),
        (
            b"snoop\x00\x00\x00",
            "a Sun snoop capture: convert it with `editcap -F pcapng`",
        ),
        (
            b"GMBU",
            "a Microsoft Network Monitor capture: convert it with `editcap -F pcapng`",
        ),
        (
            b"RTSS",
            "a Microsoft Network Monitor 1.x capture: convert it with `editcap -F pcapng`",
        ),
        (
            b"XCP\x00",
            "a NetXray/Sniffer capture: convert it with `editcap -F pcapng`",
        ),
        (b"\x89PNG", "a PNG image"),
        (b"%PDF", "a PDF document"),
        (b"\xef\xbb\xbf", "a text file (UTF-8 with BOM)"),
    ];
    for (magic, what) in known {
        if data.starts_with(magic) {
            return format!("it looks like {what} ({})", hex_prefix(data, 4));
        }
    }
    let head = &data[..data.len().min(32)];
    let texty = !head.is_empty()
        && head
            .iter()
            .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b));
    if texty {
        let line: String = head
            .iter()
            .take_while(|&&b| b != b'\n' && b != b'\r')
            .map(|&b| b as char)
            .collect();
        let kind = match head.first() {
            Some(b'{' | b'[') => "a JSON or text file",
            Some(b'<') => "an HTML or XML file",
            _ => "a text file",
        };
        return format!("it looks like {kind} (starts with {line:?})");
    }
    format!("unknown format ({})", hex_prefix(data, 8))
}

/// Link types of the interfaces declared before the first packet block of a pcapng file.
fn pcapng_leading_linktypes(data: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut big_endian = false;
    for _ in 0..1024 {
        let Some(btype) = read_u32(data, pos, big_endian) else {
            break;
        };
        if btype == PCAPNG_SHB {
            big_endian = read_u32(data, pos + 8, false) != Some(PCAPNG_BOM);
        }
        let Some(blen) = read_u32(data, pos + 4, big_endian) else {
            break;
        };
        if blen < 12 || blen % 4 != 0 {
            break;
        }
        match btype {
            PCAPNG_IDB => {
                if let Some(lt) = read_u16(data, pos + 8, big_endian)
                    && !out.contains(&u32::from(lt))
                {
                    out.push(u32::from(lt));
                }
            }
            PCAPNG_EPB | PCAPNG_SPB | PCAPNG_PB => break,
            _ => {}
        }
        pos = match pos.checked_add(blen as usize) {
            Some(p) => p,
            None => break,
        };
    }
    out
}

/// Key log text from the Decryption Secrets Blocks before the first packet block.
fn pcapng_tls_secrets(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut big_endian = false;
    for _ in 0..4096 {
        let Some(btype) = read_u32(data, pos, big_endian) else {
            break;
        };
        if btype == PCAPNG_SHB {
            big_endian = read_u32(data, pos + 8, false) != Some(PCAPNG_BOM);
        }
        let Some(blen) = read_u32(data, pos + 4, big_endian) else {
            break;
        };
        if blen < 12 || blen % 4 != 0 {
            break;
        }
        let Some(block) = data.get(pos..pos.saturating_add(blen as usize)) else {
            break;
        };
        match btype {
            PCAPNG_DSB => {
                let kind = read_u32(block, 8, big_endian);
                let len = read_u32(block, 12, big_endian).unwrap_or(0) as usize;
                if kind == Some(SECRETS_TLS_KEYLOG)
                    && let Some(secrets) = block.get(16..16usize.saturating_add(len))
                {
                    out.extend_from_slice(secrets);
                    if !secrets.ends_with(b"\n") {
                        out.push(b'\n');
                    }
                }
            }
            PCAPNG_EPB | PCAPNG_SPB | PCAPNG_PB => break,
            _ => {}
        }
        pos = match pos.checked_add(blen as usize) {
            Some(p) => p,
            None => break,
        };
    }
    out
}

/// How a pcapng interface's raw timestamps turn into nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsUnit {
    /// Units of 10^-k s with k ≤ 9: multiply by 10^(9-k).
    Mul(u64),
    /// Units of 10^-k s with k > 9: divide by 10^(k-9).
    Div(u64),
    /// Units of 2^-k s.
    Binary(u32),
}

impl TsUnit {
    fn from_tsresol(tsresol: u8) -> Option<TsUnit> {
        let k = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 == 0 {
            if k <= 9 {
                Some(TsUnit::Mul(10u64.pow(9 - k)))
            } else if k <= 19 {
                Some(TsUnit::Div(10u64.pow(k - 9)))
            } else {
                None
            }
        } else if k <= 63 {
            Some(TsUnit::Binary(k))
        } else {
            None
        }
    }

    #[inline]
    fn to_nanos(self, raw: u64) -> i64 {
        let ns: u128 = match self {
            TsUnit::Mul(m) => u128::from(raw) * u128::from(m),
            TsUnit::Div(d) => u128::from(raw / d),
            TsUnit::Binary(k) => {
                let secs = u128::from(raw >> k);
                let frac = u128::from(raw & ((1u64 << k) - 1));
                secs * 1_000_000_000 + ((frac * 1_000_000_000) >> k)
            }
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    unit: TsUnit,
    offset_ns: i64,
}

#[derive(Debug, Default)]
struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

/// Walks the frames of one file in file order.
pub(crate) struct FileReader<'a> {
    file: &'a CaptureFile,
    data: &'a [u8],
    pos: usize,
    /// Mapped pages before this were released once ([`RELEASE_STEP`]) …
    released: usize,
    /// … and before this a second time ([`RELEASE_AGAIN_LAG`]).
    released_again: usize,
    file_index: u16,
    /// Packet blocks/records seen so far (the number of the last frame returned).
    frames: u64,
    /// Timestamp of the last packet, for pcapng Simple Packet Blocks that carry none.
    last_ts: Timestamp,
    /// Set for legacy pcap; `None` for pcapng, whose state is in `ng`.
    pcap: Option<PcapParams>,
    ng: NgState,
    warning: Option<CaptureWarning>,
    done: bool,
    /// Key log text of Decryption Secrets Blocks met after the first packet (dumpcap and
    /// Wireshark write a connection's secrets just before its packets when they learn them
    /// during a capture), not yet handed to the caller. Those before the first packet are
    /// read up front by [`CaptureFile::tls_secrets`].
    late_secrets: Vec<&'a [u8]>,
}

impl<'a> FileReader<'a> {
    /// Key log texts of the Decryption Secrets Blocks read since the last call (see
    /// `late_secrets`); empty for almost every file, so cheap to ask after each frame.
    #[inline]
    pub(crate) fn take_late_secrets(&mut self) -> Vec<&'a [u8]> {
        if self.late_secrets.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut self.late_secrets)
        }
    }

    /// Bytes of the file consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Releases the mapped pages well behind the read position.
    #[cold]
    fn release_behind(&mut self) {
        let to = self.pos - self.pos % 4096;
        self.file.release(self.released, to);
        self.released = to;
        let again = to.saturating_sub(RELEASE_AGAIN_LAG);
        if again > self.released_again {
            self.file.release(self.released_again, again);
            self.released_again = again;
        }
    }

    /// A warning about the file's end (cut off mid-record), once the reader is exhausted.
    pub(crate) fn take_warning(&mut self) -> Option<CaptureWarning> {
        self.warning.take()
    }

    /// The next frame, `Ok(None)` at the end of the file (or at a cut-off last record, which
    /// leaves a warning), `Err` when the file is corrupt.
    #[inline]
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        if self.pos >= self.released + RELEASE_STEP {
            self.release_behind();
        }
        let result = match self.pcap {
            Some(p) => self.next_pcap(p),
            None => self.next_pcapng(),
        };
        match result {
            Ok(None) | Err(_) => {
                self.done = true;
                self.file
                    .release(self.released, self.data.len() - self.data.len() % 4096);
            }
            Ok(Some(_)) => {}
        }
        result
    }

    fn cut_off(&mut self, what: String) -> Result<Option<Frame<'a>>, CaptureError> {
        self.warning = Some(CaptureWarning {
            file: self.file.name.clone(),
            message: what,
        });
        Ok(None)
    }

    fn cut_off_in_frame(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        let n = self.frames + 1;
        let before = self.frames;
        let at = self.pos;
        self.cut_off(format!(
            "file ends in the middle of frame {n} (at byte {at}); analysed the {before} frames before it"
        ))
    }

    fn corrupt(&self, frame: Option<u64>, detail: String) -> CaptureError {
        CaptureError::Corrupt {
            file: self.file.name.clone(),
            frame,
            offset: self.pos as u64,
            detail,
        }
    }

    #[inline]
    fn next_pcap(&mut self, p: PcapParams) -> Result<Option<Frame<'a>>, CaptureError> {
        let data = self.data;
        let rest = &data[self.pos.min(data.len())..];
        if rest.is_empty() {
            return Ok(None);
        }
        let hdr_len = if p.modified { 24 } else { 16 };
        if rest.len() < hdr_len {
            return self.cut_off_in_frame();
        }
        let caplen = read_u32(rest, 8, p.big_endian).unwrap_or(0);
        if absurd_caplen(caplen, p.snaplen) {
            let n = self.frames + 1;
            return Err(self.corrupt(
                Some(n),
                format!(
                    "record length {caplen} is impossible (snaplen {})",
                    p.snaplen
                ),
            ));
        }
        let parsed = if p.modified {
            parse_pcap_frame_modified(rest)
        } else if p.big_endian {
            parse_pcap_frame_be(rest)
        } else {
            parse_pcap_frame(rest)
        };
        match parsed {
            Ok((remaining, rec)) => {
                self.frames += 1;
                self.pos = data.len() - remaining.len();
                let frac = u64::from(rec.ts_usec) * if p.nanos { 1 } else { 1000 };
                let ts = i64::from(rec.ts_sec)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(frac as i64);
                self.last_ts = Timestamp(ts);
                Ok(Some(Frame {
                    id: FrameRef {
                        file: self.file_index,
                        number: self.frames,
                    },
                    ts: Timestamp(ts),
                    linktype: p.linktype,
                    data: rec.data,
                    orig_len: rec.origlen,
                }))
            }
            Err(nom::Err::Incomplete(_)) => self.cut_off_in_frame(),
            Err(e) => {
                let n = self.frames + 1;
                Err(self.corrupt(Some(n), format!("unreadable record ({})", short_err(&e))))
            }
        }
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        loop {
            let data = self.data;
            let pos = self.pos;
            let rest = &data[pos.min(data.len())..];
            if rest.is_empty() {
                return Ok(None);
            }
            let mut big_endian = self.ng.big_endian;
            let Some(btype) = read_u32(rest, 0, big_endian) else {
                return self.cut_off(format!(
                    "file ends in the middle of a block header (at byte {pos}); analysed the {} frames before it",
                    self.frames
                ));
            };
            let is_packet = matches!(btype, PCAPNG_EPB | PCAPNG_SPB | PCAPNG_PB);
            if btype == PCAPNG_SHB {
                match read_u32(rest, 8, false) {
                    Some(PCAPNG_BOM) => big_endian = false,
                    Some(b) if b == PCAPNG_BOM.swap_bytes() => big_endian = true,
                    Some(_) => {
                        return Err(self.corrupt(
                            None,
                            "a section header block has a bad byte-order magic".to_owned(),
                        ));
                    }
                    None => {
                        return self.cut_off(format!(
                            "file ends in the middle of a section header (at byte {pos}); analysed the {} frames before it",
                            self.frames
                        ));
                    }
                }
            }
            let frame_no = is_packet.then_some(self.frames + 1);
            let Some(blen) = read_u32(rest, 4, big_endian) else {
                return if is_packet {
                    self.cut_off_in_frame()
                } else {
                    self.cut_off(format!(
                        "file ends in the middle of a block header (at byte {pos}); analysed the {} frames before it",
                        self.frames
                    ))
                };
            };
            if blen < 12 || blen % 4 != 0 || blen > MAX_RECORD + 64 {
                return Err(self.corrupt(
                    frame_no,
                    format!("block length {blen} is impossible (block type 0x{btype:08x})"),
                ));
            }
            let blen = blen as usize;
            if blen > rest.len() {
                return if is_packet {
                    self.cut_off_in_frame()
                } else {
                    self.cut_off(format!(
                        "file ends in the middle of a block (type 0x{btype:08x}, at byte {pos}); analysed the {} frames before it",
                        self.frames
                    ))
                };
            }
            let block = &rest[..blen];
            let trailer = read_u32(block, blen - 4, big_endian).unwrap_or(0);
            if trailer as usize != blen {
                return Err(self.corrupt(
                    frame_no,
                    format!(
                        "block length {blen} at the start and {trailer} at the end differ (block type 0x{btype:08x})"
                    ),
                ));
            }
            match btype {
                PCAPNG_SHB => {
                    match parse_sectionheaderblock(block) {
                        Ok((_, shb)) if shb.major_version == 1 => {}
                        Ok((_, shb)) => {
                            return Err(self.corrupt(
                                None,
                                format!(
                                    "section header declares pcapng version {}.{}",
                                    shb.major_version, shb.minor_version
                                ),
                            ));
                        }
                        Err(e) => {
                            return Err(self.corrupt(
                                None,
                                format!("malformed section header block ({})", short_err(&e)),
                            ));
                        }
                    }
                    self.ng.big_endian = big_endian;
                    self.ng.interfaces.clear();
                }
                PCAPNG_IDB => {
                    let parsed = if big_endian {
                        parse_interfacedescriptionblock_be(block)
                    } else {
                        parse_interfacedescriptionblock_le(block)
                    };
                    let idb = match parsed {
                        Ok((_, idb)) => idb,
                        Err(e) => {
                            return Err(self.corrupt(
                                None,
                                format!(
                                    "malformed interface description block ({})",
                                    short_err(&e)
                                ),
                            ));
                        }
                    };
                    let Some(unit) = TsUnit::from_tsresol(idb.if_tsresol) else {
                        let n = self.ng.interfaces.len();
                        let r = idb.if_tsresol;
                        return Err(self.corrupt(
                            None,
                            format!("interface {n} declares an impossible timestamp resolution (if_tsresol {r})"),
                        ));
                    };
                    let offset_secs = tsoffset(&idb, big_endian);
                    self.ng.interfaces.push(Interface {
                        linktype: idb.linktype.0 as u32 & 0xFFFF,
                        snaplen: idb.snaplen,
                        unit,
                        offset_ns: offset_secs.saturating_mul(1_000_000_000),
                    });
                }
                PCAPNG_EPB | PCAPNG_PB => {
                    if blen < 32 {
                        return Err(self.corrupt(
                            frame_no,
                            format!("packet block is too short ({blen} bytes)"),
                        ));
                    }
                    let be = big_endian;
                    let if_id = if btype == PCAPNG_EPB {
                        read_u32(block, 8, be).unwrap_or(0) as usize
                    } else {
                        usize::from(read_u16(block, 8, be).unwrap_or(0))
                    };
                    let ts_high = read_u32(block, 12, be).unwrap_or(0);
                    let ts_low = read_u32(block, 16, be).unwrap_or(0);
                    let caplen = read_u32(block, 20, be).unwrap_or(0);
                    let orig_len = read_u32(block, 24, be).unwrap_or(0);
                    let Some(iface) = self.ng.interfaces.get(if_id).copied() else {
                        let declared = self.ng.interfaces.len();
                        return Err(self.corrupt(
                            frame_no,
                            format!("packet refers to interface {if_id}, but the section declares {declared} interface(s)"),
                        ));
                    };
                    if absurd_caplen(caplen, iface.snaplen) || caplen as usize > blen - 32 {
                        return Err(self.corrupt(
                            frame_no,
                            format!(
                                "captured length {caplen} is impossible (block length {blen}, snaplen {})",
                                iface.snaplen
                            ),
                        ));
                    }
                    let raw = (u64::from(ts_high) << 32) | u64::from(ts_low);
                    let ts = Timestamp(iface.unit.to_nanos(raw).saturating_add(iface.offset_ns));
                    self.frames += 1;
                    self.last_ts = ts;
                    self.pos = pos + blen;
                    return Ok(Some(Frame {
                        id: FrameRef {
                            file: self.file_index,
                            number: self.frames,
                        },
                        ts,
                        linktype: iface.linktype,
                        data: &block[28..28 + caplen as usize],
                        orig_len,
                    }));
                }
                PCAPNG_SPB => {
                    if blen < 16 {
                        return Err(self.corrupt(
                            frame_no,
                            format!("simple packet block is too short ({blen} bytes)"),
                        ));
                    }
                    let Some(iface) = self.ng.interfaces.first().copied() else {
                        return Err(self.corrupt(
                            frame_no,
                            "simple packet block, but the section declares no interface".to_owned(),
                        ));
                    };
                    let orig_len = read_u32(block, 8, big_endian).unwrap_or(0);
                    let mut caplen = (blen - 16).min(orig_len as usize);
                    if iface.snaplen > 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    self.frames += 1;
                    self.pos = pos + blen;
                    return Ok(Some(Frame {
                        id: FrameRef {
                            file: self.file_index,
                            number: self.frames,
                        },
                        ts: self.last_ts,
                        linktype: iface.linktype,
                        data: &block[12..12 + caplen],
                        orig_len,
                    }));
                }
                PCAPNG_DSB if self.frames > 0 => {
                    let kind = read_u32(block, 8, big_endian);
                    let len = read_u32(block, 12, big_endian).unwrap_or(0) as usize;
                    if kind == Some(SECRETS_TLS_KEYLOG)
                        && let Some(secrets) = block.get(16..16usize.saturating_add(len))
                    {
                        self.late_secrets.push(secrets);
                    }
                }
                _ => {}
            }
            self.pos = pos + blen;
        }
    }
}

/// `if_tsoffset` in seconds, read in the section's byte order (pcap-parser always reads it
/// little-endian).
fn tsoffset(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> i64 {
    for opt in &idb.options {
        if opt.code.0 == OPT_IF_TSOFFSET
            && opt.len == 8
            && let Some(bytes) = opt
                .value()
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
        {
            return if big_endian {
                i64::from_be_bytes(bytes)
            } else {
                i64::from_le_bytes(bytes)
            };
        }
    }
    0
}

fn short_err<I>(e: &nom::Err<PcapError<I>>) -> String {
    match e {
        nom::Err::Incomplete(_) => "incomplete".to_owned(),
        nom::Err::Error(pe) | nom::Err::Failure(pe) => match pe {
            PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                format!("parse error: {kind:?}")
            }
            PcapError::HeaderNotRecognized => "header not recognized".to_owned(),
            PcapError::Eof | PcapError::UnexpectedEof | PcapError::Incomplete(_) => {
                "unexpected end".to_owned()
            }
            _ => "parse error".to_owned(),
        },
    }
}
