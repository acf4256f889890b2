//! Stage 1: frames from saved capture files, or from a live interface ([`live`]).
//!
//! Output type: [`Frame`], a borrowed view of one captured packet with its link type,
//! timestamp and the 1-based number Wireshark would give it in its file.

use crate::time::Timestamp;

/// Identifies a frame in the run: which input file, and its 1-based number in that file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct FrameRef {
    pub file: u16,
    pub number: u64,
}

/// One captured packet.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub id: FrameRef,
    pub ts: Timestamp,
    /// LINKTYPE_* value of the interface that captured it.
    pub linktype: u32,
    /// The captured bytes (possibly fewer than `orig_len` when cut by the snaplen).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
}

impl Frame<'_> {
    /// True when the snaplen cut the packet short.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

mod file;
pub mod live;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::path::PathBuf;

use file::{CaptureFile, FileReader};

/// `progress` is called each time this many more bytes have been consumed.
const PROGRESS_STEP: u64 = 8 * 1024 * 1024;

/// The tool could not read its input. Every variant names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no capture file given: pass one or more .pcap or .pcapng files")]
    NoInput,
    #[error(
        "too many capture files ({count}); at most {max} can be analysed together: merge them first with `mergecap -w merged.pcapng FILES…`"
    )]
    TooManyFiles { count: usize, max: usize },
    #[error("{file}: no such file; check the path")]
    NotFound { file: String },
    #[error(
        "{file}: permission denied; make the file readable by this user (e.g. `chmod a+r {file}`; tcpdump -w files are often owned by root)"
    )]
    PermissionDenied { file: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file} is a directory, not a capture file; pass the capture files inside it (e.g. {file}/*.pcap)"
    )]
    IsDirectory { file: String },
    #[error(
        "{file} is not a regular file (a pipe or a device?); save the capture to a file first (tcpdump -w FILE)"
    )]
    NotRegularFile { file: String },
    #[error(
        "{file} is empty (0 bytes): there is nothing to analyse; was the capture stopped before it wrote anything?"
    )]
    Empty { file: String },
    #[error(
        "{file} is not a capture file: {what}; wirelint reads pcap and pcapng (tcpdump -w, Wireshark, dumpcap)"
    )]
    NotCapture { file: String, what: String },
    #[error(
        "{file} ends inside its {format} file header ({len} bytes): the file is cut off; capture again, or check that the copy completed"
    )]
    HeaderTruncated {
        file: String,
        format: &'static str,
        len: u64,
    },
    #[error("{file} is {what}, which wirelint cannot read; {hint}")]
    Unsupported {
        file: String,
        what: String,
        hint: &'static str,
    },
    #[error("{file} is corrupt at byte {offset}{}: {detail}; nothing after that point can be read. {}", frame_suffix(*.frame), corrupt_hint(.file, *.frame))]
    Corrupt {
        file: String,
        frame: Option<u64>,
        offset: u64,
        detail: String,
    },
    #[error(
        "invalid capture filter {expr:?} for link type {linktype} (in {file}): {message}; filters use tcpdump syntax, e.g. 'tcp port 80'"
    )]
    Filter {
        expr: String,
        linktype: u32,
        file: String,
        message: String,
    },
}

fn corrupt_hint(file: &str, frame: Option<u64>) -> String {
    match frame {
        Some(n) if n > 1 => format!(
            "Keep the {} frames before it with `editcap -r {file} good.pcapng 1-{}`, or try to repair the file with `pcapfix`",
            n - 1,
            n - 1
        ),
        _ => "Try to repair the file with `pcapfix`, or capture again".to_owned(),
    }
}

fn frame_suffix(frame: Option<u64>) -> String {
    match frame {
        Some(n) => format!(" (frame {n})"),
        None => String::new(),
    }
}

/// Something wrong with an input that did not stop the run (e.g. a file cut off mid-frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureWarning {
    pub file: String,
    pub message: String,
}

impl fmt::Display for CaptureWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// What a walk over the capture read.
#[derive(Clone, Debug, Default)]
pub struct ReadSummary {
    /// Frames read (packet records/blocks), including those the filter removed.
    pub frames: u64,
    /// Captured bytes of those frames.
    pub bytes: u64,
    /// Frames the capture filter removed (not visited).
    pub filtered_out: u64,
    pub warnings: Vec<CaptureWarning>,
}

/// The input files of one run, opened, validated and memory-mapped. Several files are one
/// capture: their frames are merged in timestamp order.
pub struct CaptureSet {
    files: Vec<CaptureFile>,
}

impl CaptureSet {
    /// Opens and validates every file up front (so usage errors come before any output).
    pub fn open(paths: &[PathBuf]) -> Result<CaptureSet, CaptureError> {
        if paths.is_empty() {
            return Err(CaptureError::NoInput);
        }
        let max = usize::from(u16::MAX);
        if paths.len() > max {
            return Err(CaptureError::TooManyFiles {
                count: paths.len(),
                max,
            });
        }
        let files = paths
            .iter()
            .map(|p| CaptureFile::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CaptureSet { files })
    }

    /// Display names of the files (each as given), indexed by [`FrameRef::file`].
    pub fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|f| f.name.clone()).collect()
    }

    /// TLS key log text embedded in the files (pcapng Decryption Secrets Blocks), in file
    /// order; empty when there is none. Secrets: hand it to the TLS layer only.
    pub fn tls_secrets(&self) -> Vec<u8> {
        self.files
            .iter()
            .flat_map(CaptureFile::tls_secrets)
            .collect()
    }

    /// Total size of the files in bytes (the end of the progress bar).
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(CaptureFile::len).sum()
    }

    /// Compiles `expr` for every link type declared in the files' headers, so that a bad
    /// filter is reported before any output. (`for_each_frame` does this too.)
    pub fn check_filter(&self, expr: &str) -> Result<(), CaptureError> {
        let mut filters = Filters::new(expr);
        for f in &self.files {
            for &lt in &f.linktypes {
                filters.compile(lt, &f.name)?;
            }
        }
        Ok(())
    }

    /// Walks every frame of every file. Frames of several files are merged in timestamp
    /// order (within one file, file order is kept even if its timestamps go backwards), so
    /// rotated pieces of one connection are reassembled. `filter` is a BPF expression
    /// (tcpdump syntax) applied to every frame. `progress` is called now and then with the
    /// number of bytes consumed so far, and once at the end.
    ///
    /// Frames borrow from the memory-mapped files for as long as the `CaptureSet` lives, so
    /// their bytes can be handed to other threads without copying.
    pub fn for_each_frame<'s>(
        &'s self,
        filter: Option<&str>,
        visit: impl FnMut(&Frame<'s>),
        progress: impl FnMut(u64),
    ) -> Result<ReadSummary, CaptureError> {
        let never = std::sync::atomic::AtomicBool::new(false);
        self.for_each_frame_until(filter, &never, visit, progress, |_| {})
    }

    /// As [`CaptureSet::for_each_frame`], stopping before the next frame once `stop` is set
    /// (a signal): the summary counts what was read. `secrets` gets the key log text of
    /// every pcapng Decryption Secrets Block that follows a file's first packet, before any
    /// frame after it is visited (those before the first packet are in
    /// [`CaptureSet::tls_secrets`]).
    pub fn for_each_frame_until<'s>(
        &'s self,
        filter: Option<&str>,
        stop: &std::sync::atomic::AtomicBool,
        mut visit: impl FnMut(&Frame<'s>),
        mut progress: impl FnMut(u64),
        mut secrets: impl FnMut(&[u8]),
    ) -> Result<ReadSummary, CaptureError> {
        let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
        let mut filters = filter.map(Filters::new);
        if let Some(filters) = filters.as_mut() {
            for f in &self.files {
                for &lt in &f.linktypes {
                    filters.compile(lt, &f.name)?;
                }
            }
        }
        let mut summary = ReadSummary::default();
        let mut readers: Vec<FileReader<'s>> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| f.reader(i as u16))
            .collect();
        let mut walk = Walk {
            summary: &mut summary,
            filters: filters.as_mut(),
            names: &self.files,
            next_progress: PROGRESS_STEP,
        };

        if let [reader] = readers.as_mut_slice() {
            while !stopped()
                && let Some(frame) = reader.next_frame()?
            {
                for text in reader.take_late_secrets() {
                    secrets(text);
                }
                walk.emit(&frame, reader.position() as u64, &mut visit, &mut progress)?;
            }
        } else {
            // k-way merge on the head frame's timestamp; ties go to the earlier file.
            let mut positions = vec![0u64; readers.len()];
            let mut consumed = 0u64;
            let mut heads: Vec<Option<Frame<'s>>> = Vec::with_capacity(readers.len());
            let mut heap = BinaryHeap::with_capacity(readers.len());
            for (i, r) in readers.iter_mut().enumerate() {
                let head = r.next_frame()?;
                for text in r.take_late_secrets() {
                    secrets(text);
                }
                if let Some(f) = &head {
                    heap.push(Reverse((f.ts, i)));
                }
                heads.push(head);
            }
            while !stopped()
                && let Some(Reverse((_, i))) = heap.pop()
            {
                let Some(frame) = heads[i].take() else {
                    continue;
                };
                // Bytes consumed: everything read so far, including the heads not yet visited
                // (close enough for a progress bar).
                let pos = readers[i].position() as u64;
                consumed += pos.saturating_sub(positions[i]);
                positions[i] = pos;
                walk.emit(&frame, consumed, &mut visit, &mut progress)?;
                let next = readers[i].next_frame()?;
                for text in readers[i].take_late_secrets() {
                    secrets(text);
                }
                if let Some(f) = &next {
                    heap.push(Reverse((f.ts, i)));
                }
                heads[i] = next;
            }
        }

        for r in &mut readers {
            if let Some(w) = r.take_warning() {
                summary.warnings.push(w);
            }
        }
        progress(self.total_bytes());
        Ok(summary)
    }
}

/// The per-frame bookkeeping of `for_each_frame`.
struct Walk<'s> {
    summary: &'s mut ReadSummary,
    filters: Option<&'s mut Filters>,
    names: &'s [CaptureFile],
    next_progress: u64,
}

impl Walk<'_> {
    #[inline]
    fn emit<'f>(
        &mut self,
        frame: &Frame<'f>,
        consumed: u64,
        visit: &mut impl FnMut(&Frame<'f>),
        progress: &mut impl FnMut(u64),
    ) -> Result<(), CaptureError> {
        self.summary.frames += 1;
        self.summary.bytes += frame.data.len() as u64;
        let keep = match self.filters.as_deref_mut() {
            Some(filters) => {
                let name = self
                    .names
                    .get(usize::from(frame.id.file))
                    .map_or("", |f| f.name.as_str());
                filters.matches(frame, name)?
            }
            None => true,
        };
        if keep {
            visit(frame);
        } else {
            self.summary.filtered_out += 1;
        }
        if consumed >= self.next_progress {
            progress(consumed);
            self.next_progress = consumed + PROGRESS_STEP;
        }
        Ok(())
    }
}

/// One BPF expression compiled once per link type.
struct Filters {
    expr: String,
    programs: Vec<(u32, pcap::BpfProgram)>,
    /// Index into `programs` of the last link type used (frames come in long runs of one).
    last: usize,
}

impl Filters {
    fn new(expr: &str) -> Filters {
        Filters {
            expr: expr.to_owned(),
            programs: Vec::new(),
            last: 0,
        }
    }

    fn compile(&mut self, linktype: u32, file: &str) -> Result<usize, CaptureError> {
        if let Some(i) = self.programs.iter().position(|(lt, _)| *lt == linktype) {
            return Ok(i);
        }
        let err = |message: String| CaptureError::Filter {
            expr: self.expr.clone(),
            linktype,
            file: file.to_owned(),
            message,
        };
        let dlt = i32::try_from(linktype_to_dlt(linktype))
            .map_err(|_| err("link type out of range".to_owned()))?;
        let dead = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| err(e.to_string()))?;
        let program = dead
            .compile(&self.expr, true)
            .map_err(|e| err(e.to_string()))?;
        self.programs.push((linktype, program));
        Ok(self.programs.len() - 1)
    }

    #[inline]
    fn matches(&mut self, frame: &Frame<'_>, file: &str) -> Result<bool, CaptureError> {
        let i = match self.programs.get(self.last) {
            Some((lt, _)) if *lt == frame.linktype => self.last,
            _ => {
                let i = self.compile(frame.linktype, file)?;
                self.last = i;
                i
            }
        };
        Ok(self.programs[i].1.filter(frame.data))
    }
}

/// libpcap compiles filters for DLT_ values; a few LINKTYPE_ values written in files differ
/// from the DLT_ values of this platform (pcap-linktype(7)).
fn linktype_to_dlt(linktype: u32) -> u32 {
    match linktype {
        100 => 11, // ATM_RFC1483
        101 => 12, // RAW (DLT_RAW is 12 on Linux, 14 on OpenBSD)
        14 => 12,  // DLT_RAW as written by OpenBSD
        102 => 15, // SLIP_BSDOS
        103 => 16, // PPP_BSDOS
        lt => lt,
    }
}

/// A point in the capture: the frame being processed when something happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub frame: FrameRef,
    pub ts: Timestamp,
    /// Position of the frame in the run (1-based, across merged files): orders output
    /// deterministically whatever worker thread produced it.
    pub order: u64,
}

/// Writers of small capture files, byte by byte, for tests.
#[cfg(test)]
pub(crate) mod testfile {
    /// A legacy pcap file. `variant`: 0 µs LE, 1 µs BE, 2 ns LE, 3 ns BE.
    /// Records are (seconds, fraction, captured bytes, original length).
    pub(crate) fn pcap(
        variant: u8,
        linktype: u32,
        snaplen: u32,
        records: &[(u32, u32, &[u8], u32)],
    ) -> Vec<u8> {
        let be = variant % 2 == 1;
        let magic: u32 = if variant >= 2 {
            0xa1b2_3c4d
        } else {
            0xa1b2_c3d4
        };
        let mut out = Vec::new();
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        out.extend(u32b(magic));
        out.extend(u16b(2));
        out.extend(u16b(4));
        out.extend(u32b(0));
        out.extend(u32b(0));
        out.extend(u32b(snaplen));
        out.extend(u32b(linktype));
        for (secs, frac, data, orig) in records {
            out.extend(u32b(*secs));
            out.extend(u32b(*frac));
            out.extend(u32b(data.len() as u32));
            out.extend(u32b(*orig));
            out.extend_from_slice(data);
        }
        out
    }

    /// pcapng blocks, written in one byte order.
    pub(crate) struct Ng {
        pub(crate) out: Vec<u8>,
        be: bool,
    }

    impl Ng {
        pub(crate) fn new() -> Ng {
            Ng {
                out: Vec::new(),
                be: false,
            }
        }

        fn u32b(&self, v: u32) -> [u8; 4] {
            if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }

        fn u16b(&self, v: u16) -> [u8; 2] {
            if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }

        pub(crate) fn block(&mut self, btype: u32, body: &[u8]) -> &mut Ng {
            let mut body = body.to_vec();
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
            let len = 12 + body.len() as u32;
            let (t, l) = (self.u32b(btype), self.u32b(len));
            self.out.extend(t);
            self.out.extend(l);
            self.out.extend(body);
            self.out.extend(l);
            self
        }

        /// A section header; starts a new section in byte order `be`.
        pub(crate) fn shb(&mut self, be: bool) -> &mut Ng {
            self.be = be;
            let mut body = Vec::new();
            body.extend(self.u32b(0x1A2B_3C4D));
            body.extend(self.u16b(1));
            body.extend(self.u16b(0));
            body.extend([0xFF; 8]); // section length unknown
            self.block(0x0A0D_0D0A, &body)
        }

        /// An interface with optional if_tsresol and if_tsoffset options.
        pub(crate) fn idb(
            &mut self,
            linktype: u16,
            snaplen: u32,
            tsresol: Option<u8>,
            tsoffset: Option<i64>,
        ) -> &mut Ng {
            let mut body = Vec::new();
            body.extend(self.u16b(linktype));
            body.extend(self.u16b(0));
            body.extend(self.u32b(snaplen));
            if let Some(r) = tsresol {
                body.extend(self.u16b(9));
                body.extend(self.u16b(1));
                body.extend([r, 0, 0, 0]);
            }
            if let Some(o) = tsoffset {
                body.extend(self.u16b(14));
                body.extend(self.u16b(8));
                body.extend(if self.be {
                    o.to_be_bytes()
                } else {
                    o.to_le_bytes()
                });
            }
            if tsresol.is_some() || tsoffset.is_some() {
                body.extend([0, 0, 0, 0]); // opt_endofopt
            }
            self.block(1, &body)
        }

        pub(crate) fn epb(&mut self, if_id: u32, ts: u64, data: &[u8], orig: u32) -> &mut Ng {
            let mut body = Vec::new();
            body.extend(self.u32b(if_id));
            body.extend(self.u32b((ts >> 32) as u32));
            body.extend(self.u32b(ts as u32));
            body.extend(self.u32b(data.len() as u32));
            body.extend(self.u32b(orig));
            body.extend_from_slice(data);
            while body.len() % 4 != 0 {
                body.push(0);
            }
            // An epb_flags option, as Wireshark writes.
            body.extend(self.u16b(2));
            body.extend(self.u16b(4));
            body.extend(self.u32b(1));
            body.extend([0, 0, 0, 0]);
            self.block(6, &body)
        }

        pub(crate) fn spb(&mut self, data: &[u8], orig: u32) -> &mut Ng {
            let mut body = Vec::new();
            body.extend(self.u32b(orig));
            body.extend_from_slice(data);
            self.block(3, &body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testfile::{Ng, pcap};
    use super::*;
    use std::io::Write as _;

    fn write_tmp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).expect("create temp file");
        f.write_all(bytes).expect("write temp file");
        path
    }

    /// (file, number, ts, linktype, data, orig_len) of every frame.
    type Seen = Vec<(u16, u64, i64, u32, Vec<u8>, u32)>;

    fn walk(paths: &[PathBuf], filter: Option<&str>) -> Result<(Seen, ReadSummary), CaptureError> {
        let set = CaptureSet::open(paths)?;
        let mut seen = Vec::new();
        let summary = set.for_each_frame(
            filter,
            |f| {
                seen.push((
                    f.id.file,
                    f.id.number,
                    f.ts.0,
                    f.linktype,
                    f.data.to_vec(),
                    f.orig_len,
                ))
            },
            |_| {},
        )?;
        Ok((seen, summary))
    }

    #[test]
    fn reads_all_four_pcap_magics() {
        let dir = tempfile::tempdir().expect("tempdir");
        for variant in 0..4u8 {
            let nanos = variant >= 2;
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let bytes = pcap(
                variant,
                1,
                65535,
                &[(1_000, frac, b"abcd", 60), (1_001, 0, b"xyz", 3)],
            );
            let path = write_tmp(&dir, &format!("v{variant}.pcap"), &bytes);
            let (seen, summary) = walk(&[path], None).expect("readable");
            assert_eq!(summary.frames, 2);
            assert_eq!(summary.bytes, 7);
            assert!(summary.warnings.is_empty());
            let expect_ns = if nanos { 123_456_789 } else { 123_456_000 };
            assert_eq!(
                seen[0],
                (0, 1, 1_000_000_000_000 + expect_ns, 1, b"abcd".to_vec(), 60)
            );
            assert_eq!(seen[1], (0, 2, 1_001_000_000_000, 1, b"xyz".to_vec(), 3));
        }
    }

    #[test]
    fn pcapng_decryption_secrets_blocks_are_read_and_skipped_as_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = b"CLIENT_RANDOM 00 11";
        for be in [false, true] {
            let mut ng = Ng::new();
            ng.shb(be).idb(1, 0, None, None);
            let mut body = Vec::new();
            let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            body.extend(u32b(0x544C_534B));
            body.extend(u32b(keys.len() as u32));
            body.extend_from_slice(keys);
            ng.block(0x0A, &body);
            // Another secrets type is ignored.
            let mut other = Vec::new();
            other.extend(u32b(0x5353_484B));
            other.extend(u32b(4));
            other.extend_from_slice(b"ssh!");
            ng.block(0x0A, &other);
            ng.epb(0, 1, b"abcd", 4);
            let path = write_tmp(&dir, &format!("dsb{be}.pcapng"), &ng.out);
            let set = CaptureSet::open(std::slice::from_ref(&path)).expect("opens");
            assert_eq!(set.tls_secrets(), b"CLIENT_RANDOM 00 11\n");
            let (seen, summary) = walk(&[path], None).expect("readable");
            assert_eq!((seen.len(), summary.frames), (1, 1));
        }
    }

    #[test]
    fn pcapng_secrets_after_the_first_packet_reach_the_reader_before_the_next_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dsb = |keys: &[u8]| {
            let mut body = Vec::new();
            body.extend(0x544C_534Bu32.to_le_bytes());
            body.extend((keys.len() as u32).to_le_bytes());
            body.extend_from_slice(keys);
            body
        };
        let mut ng = Ng::new();
        ng.shb(false).idb(1, 0, None, None);
        ng.block(0x0A, &dsb(b"CLIENT_RANDOM 00 11\n"));
        ng.epb(0, 1, b"one", 3);
        ng.block(0x0A, &dsb(b"CLIENT_RANDOM 22 33\n"));
        ng.epb(0, 2, b"two", 3);
        let path = write_tmp(&dir, "late.pcapng", &ng.out);
        let set = CaptureSet::open(std::slice::from_ref(&path)).expect("opens");
        // Up front: only the block before the first packet.
        assert_eq!(set.tls_secrets(), b"CLIENT_RANDOM 00 11\n");
        let never = std::sync::atomic::AtomicBool::new(false);
        let events = std::cell::RefCell::new(Vec::new());
        set.for_each_frame_until(
            None,
            &never,
            |f| events.borrow_mut().push(format!("frame {}", f.id.number)),
            |_| {},
            |text| {
                let text = String::from_utf8_lossy(text).trim().to_owned();
                events.borrow_mut().push(text)
            },
        )
        .expect("readable");
        assert_eq!(
            events.into_inner(),
            ["frame 1", "CLIENT_RANDOM 22 33", "frame 2"]
        );
    }

    #[test]
    fn pcap_linktype_fcs_bits_are_masked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = pcap(0, 0x1000_0000 | 1, 65535, &[(1, 0, b"abcd", 4)]);
        let path = write_tmp(&dir, "fcs.pcap", &bytes);
        let (seen, _) = walk(&[path], None).expect("readable");
        assert_eq!(seen[0].3, 1);
    }

    #[test]
    fn pcapng_interfaces_resolutions_sections_and_spb() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ng = Ng::new();
        ng.shb(false)
            .idb(1, 0, None, None) // Ethernet, µs (default)
            .idb(101, 0, Some(9), Some(100)) // raw IP, ns, +100 s
            .idb(113, 0, Some(0x80 | 10), None) // SLL, 2^-10 s
            .epb(0, 5_000_001, b"eth1", 4)
            .block(0x0000_0004, b"name resolution block, skipped")
            .epb(1, 7_000_000_002, b"raw2", 40)
            .epb(2, 3 * 1024 + 512, b"sll3", 4)
            .block(0x0000_0005, &[0; 16]) // interface statistics, skipped
            .spb(b"spb4spb4", 8)
            // A second section, big-endian, with its own interface list.
            .shb(true)
            .idb(276, 0, Some(3), None) // SLL2, ms
            .epb(0, 2_500, b"be5", 3);
        let path = write_tmp(&dir, "multi.pcapng", &ng.out);
        let (seen, summary) = walk(&[path], None).expect("readable");
        assert_eq!(summary.frames, 5);
        let got: Vec<(u64, i64, u32, &[u8])> = seen
            .iter()
            .map(|s| (s.1, s.2, s.3, s.4.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 5_000_001_000, 1, &b"eth1"[..]),
                (2, 107_000_000_002, 101, &b"raw2"[..]),
                (3, 3_500_000_000, 113, &b"sll3"[..]),
                // SPB: no timestamp of its own, interface 0.
                (4, 3_500_000_000, 1, &b"spb4spb4"[..]),
                (5, 2_500_000_000, 276, &b"be5"[..]),
            ]
        );
        assert_eq!(seen[1].5, 40);
    }

    #[test]
    fn several_files_are_merged_by_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        // File a goes backwards in time at its third frame: its order is kept.
        let a = pcap(
            0,
            1,
            65535,
            &[
                (10, 0, b"a1", 2),
                (30, 0, b"a2", 2),
                (20, 0, b"a3", 2),
                (50, 0, b"a4", 2),
            ],
        );
        let mut ng = Ng::new();
        ng.shb(false)
            .idb(1, 0, None, None)
            .epb(0, 15_000_000, b"b1", 2)
            .epb(0, 40_000_000, b"b2", 2);
        let pa = write_tmp(&dir, "a.pcap", &a);
        let pb = write_tmp(&dir, "b.pcapng", &ng.out);
        let (seen, summary) = walk(&[pa, pb], None).expect("readable");
        let order: Vec<&[u8]> = seen.iter().map(|s| s.4.as_slice()).collect();
        assert_eq!(order, vec![&b"a1"[..], b"b1", b"a2", b"a3", b"b2", b"a4"]);
        let ids: Vec<(u16, u64)> = seen.iter().map(|s| (s.0, s.1)).collect();
        assert_eq!(ids, vec![(0, 1), (1, 1), (0, 2), (0, 3), (1, 2), (0, 4)]);
        assert_eq!(summary.frames, 6);
    }

    #[test]
    fn cut_off_file_is_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = pcap(
            0,
            1,
            65535,
            &[(1, 0, b"one!", 4), (2, 0, b"two!", 4), (3, 0, b"three", 5)],
        );
        let full = bytes.len();
        bytes.truncate(full - 2);
        let path = write_tmp(&dir, "cut.pcap", &bytes);
        let (seen, summary) = walk(&[path], None).expect("a cut-off file is readable");
        assert_eq!(seen.len(), 2);
        assert_eq!(summary.warnings.len(), 1);
        let text = summary.warnings[0].to_string();
        let at = 24 + 2 * 20;
        assert!(
            text.contains("cut.pcap: file ends in the middle of frame 3"),
            "{text}"
        );
        assert!(text.contains(&format!("(at byte {at})")), "{text}");
        assert!(text.contains("analysed the 2 frames before it"), "{text}");

        // Cut inside a record header, and a pcapng cut inside a block.
        bytes.truncate(24 + 20 + 20 + 7);
        let path = write_tmp(&dir, "cut2.pcap", &bytes);
        let (seen, summary) = walk(&[path], None).expect("readable");
        assert_eq!((seen.len(), summary.warnings.len()), (2, 1));
        let mut ng = Ng::new();
        ng.shb(false)
            .idb(1, 0, None, None)
            .epb(0, 1, b"first", 5)
            .epb(0, 2, b"second", 6);
        ng.out.truncate(ng.out.len() - 9);
        let path = write_tmp(&dir, "cut.pcapng", &ng.out);
        let (seen, summary) = walk(&[path], None).expect("readable");
        assert_eq!(seen.len(), 1);
        assert!(
            summary.warnings[0].message.contains("middle of frame 2"),
            "{}",
            summary.warnings[0]
        );
    }

    #[test]
    fn absurd_record_length_is_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = pcap(0, 1, 1500, &[(1, 0, b"ok", 2)]);
        let second_at = bytes.len();
        bytes.extend(2u32.to_le_bytes());
        bytes.extend(0u32.to_le_bytes());
        bytes.extend(300_000_000u32.to_le_bytes());
        bytes.extend(60u32.to_le_bytes());
        bytes.extend([0u8; 64]);
        let path = write_tmp(&dir, "bad.pcap", &bytes);
        let err = walk(&[path], None).expect_err("corrupt");
        match &err {
            CaptureError::Corrupt { frame, offset, .. } => {
                assert_eq!(*frame, Some(2));
                assert_eq!(*offset, second_at as u64);
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("bad.pcap is corrupt at byte 42 (frame 2)"),
            "{text}"
        );
        assert!(text.contains("editcap -r"), "{text}");
        assert!(text.contains(" 1-1`"), "{text}");

        // More than 16 × snaplen and more than 256 KiB.
        let mut bytes = pcap(0, 1, 1500, &[]);
        bytes.extend([0u8; 8]);
        bytes.extend(300_000u32.to_le_bytes());
        bytes.extend(60u32.to_le_bytes());
        let path = write_tmp(&dir, "bad2.pcap", &bytes);
        assert!(matches!(
            walk(&[path], None),
            Err(CaptureError::Corrupt { frame: Some(1), .. })
        ));

        // pcapng: mismatched trailing length.
        let mut ng = Ng::new();
        ng.shb(false).idb(1, 0, None, None).epb(0, 1, b"first", 5);
        let n = ng.out.len();
        ng.out[n - 4] ^= 0x40;
        let path = write_tmp(&dir, "bad.pcapng", &ng.out);
        assert!(matches!(
            walk(&[path], None),
            Err(CaptureError::Corrupt { frame: Some(1), .. })
        ));

        // pcapng: packet on an undeclared interface.
        let mut ng = Ng::new();
        ng.shb(false).idb(1, 0, None, None).epb(3, 1, b"first", 5);
        let path = write_tmp(&dir, "bad2.pcapng", &ng.out);
        let err = walk(&[path], None).expect_err("corrupt");
        assert!(err.to_string().contains("interface 3"), "{err}");
    }

    #[test]
    fn unusable_inputs_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.pcap");
        assert!(matches!(
            CaptureSet::open(&[missing]),
            Err(CaptureError::NotFound { .. })
        ));
        assert!(matches!(
            CaptureSet::open(&[dir.path().to_path_buf()]),
            Err(CaptureError::IsDirectory { .. })
        ));
        assert!(matches!(CaptureSet::open(&[]), Err(CaptureError::NoInput)));
        let empty = write_tmp(&dir, "empty.pcap", b"");
        assert!(matches!(
            CaptureSet::open(&[empty]),
            Err(CaptureError::Empty { .. })
        ));
        let short = write_tmp(&dir, "short.pcap", &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]);
        assert!(matches!(
            CaptureSet::open(&[short]),
            Err(CaptureError::HeaderTruncated { .. })
        ));

        let gz = write_tmp(&dir, "cap.pcap.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let err = CaptureSet::open(&[gz]).err().expect("not a capture");
        let text = err.to_string();
        assert!(text.contains("cap.pcap.gz is not a capture file"), "{text}");
        assert!(text.contains("gzip"), "{text}");
        assert!(text.contains("starts with 1f 8b 08 00"), "{text}");

        let txt = write_tmp(&dir, "req.txt", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let text = CaptureSet::open(&[txt])
            .err()
            .expect("not a capture")
            .to_string();
        assert!(
            text.contains("text file (starts with \"GET / HTTP/1.1\")"),
            "{text}"
        );

        let bin = write_tmp(&dir, "x.bin", &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let text = CaptureSet::open(&[bin])
            .err()
            .expect("not a capture")
            .to_string();
        assert!(
            text.contains("unknown format (starts with 01 02 03 04 05 06 07 08)"),
            "{text}"
        );

        // One bad file among good ones fails the whole set, before anything is read.
        let good = write_tmp(&dir, "good.pcap", &pcap(0, 1, 65535, &[]));
        let bad = write_tmp(&dir, "bad.pcap", b"nonsense");
        assert!(CaptureSet::open(&[good.clone(), bad]).is_err());
        let set = CaptureSet::open(&[good]).expect("header only is fine");
        assert_eq!(set.file_names().len(), 1);
        assert_eq!(set.total_bytes(), 24);
    }

    fn eth_tcp_frame(dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, dport, 1, 1000)
            .write(&mut out, b"GET / HTTP/1.1\r\n\r\n")
            .expect("build frame");
        out
    }

    #[test]
    fn bpf_filter_per_link_type() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f80 = eth_tcp_frame(80);
        let f81 = eth_tcp_frame(81);
        let bytes = pcap(
            0,
            1,
            65535,
            &[
                (1, 0, &f80, f80.len() as u32),
                (2, 0, &f81, f81.len() as u32),
            ],
        );
        let path = write_tmp(&dir, "f.pcap", &bytes);
        let (seen, summary) =
            walk(std::slice::from_ref(&path), Some("tcp port 80")).expect("filter works");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, 1);
        assert_eq!((summary.frames, summary.filtered_out), (2, 1));

        // The same filter on raw IP frames (LINKTYPE_RAW 101 is DLT_RAW 12 for libpcap).
        let raw80 = &f80[14..];
        let mut ng = Ng::new();
        ng.shb(false)
            .idb(1, 0, None, None)
            .idb(101, 0, None, None)
            .epb(0, 1, &f81, f81.len() as u32)
            .epb(1, 2, raw80, raw80.len() as u32);
        let pathng = write_tmp(&dir, "f.pcapng", &ng.out);
        let (seen, summary) = walk(&[pathng], Some("tcp dst port 80")).expect("filter works");
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].1, seen[0].3), (2, 101));
        assert_eq!(summary.filtered_out, 1);

        let err =
            walk(std::slice::from_ref(&path), Some("tcp port eighty")).expect_err("bad filter");
        assert!(
            matches!(&err, CaptureError::Filter { linktype: 1, .. }),
            "{err:?}"
        );
        let set = CaptureSet::open(&[path]).expect("open");
        assert!(set.check_filter("host 10.0.0.1").is_ok());
        assert!(set.check_filter("port").is_err());
    }

    #[test]
    fn progress_ends_at_total() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = pcap(0, 1, 65535, &[(1, 0, b"abc", 3)]);
        let path = write_tmp(&dir, "p.pcap", &bytes);
        let set = CaptureSet::open(&[path]).expect("open");
        let mut last = 0;
        set.for_each_frame(None, |_| {}, |b| last = b)
            .expect("read");
        assert_eq!(last, set.total_bytes());
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ng = Ng::new();
        ng.shb(false).idb(1, 0, None, None);
        let ng_header = ng.out.clone();
        for round in 0..400 {
            let mut bytes = if round % 2 == 0 {
                pcap(round as u8 % 4, 1, 65535, &[])
            } else {
                ng_header.clone()
            };
            let len = (next() % 300) as usize;
            for _ in 0..len {
                // Small values make plausible lengths more likely.
                let v = next();
                bytes.push(if v % 3 == 0 {
                    (v >> 8) as u8
                } else {
                    (v % 5) as u8
                });
            }
            let path = write_tmp(&dir, "g", &bytes);
            let _ = walk(&[path], None);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn mutated_files_never_panic(
            flips in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 1..8),
            cut in 0usize..420,
            ng in proptest::bool::ANY,
        ) {
            let mut bytes = if ng {
                let mut ng = Ng::new();
                ng.shb(false)
                    .idb(1, 64, Some(9), Some(5))
                    .idb(101, 0, Some(0x83), None)
                    .epb(0, 1, b"0123456789abcdef0123456789", 60)
                    .spb(b"spbdata", 7)
                    .epb(1, 2, b"raw", 3)
                    .shb(true)
                    .idb(113, 0, None, None)
                    .epb(0, 3, b"0123456789abcdef", 16);
                ng.out
            } else {
                pcap(2, 1, 64, &[(1, 2, b"0123456789abcdef0123456789", 60), (3, 4, b"x", 1), (5, 6, b"0123456789", 10)])
            };
            for (at, v) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = v;
                }
            }
            bytes.truncate(cut.max(1));
            let dir = tempfile::tempdir().expect("tempdir");
            let path = write_tmp(&dir, "m", &bytes);
            let _ = walk(&[path], None);
        }
    }
}
