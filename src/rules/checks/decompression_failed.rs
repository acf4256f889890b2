//! `decompression-failed`: content whose bytes are not valid in the `Content-Encoding` it
//! declares (RFC 9110 §8.4, §8.4.1). The check undoes the codings last to first with
//! tolerant decoders (multi-member gzip, `deflate` as zlib or raw, brotli) and reports where
//! a decoder found corrupt data, which needs streaming decoders that report the input offset.
//! `zstd` and other codings without a decoder here stop the check (not judged). Output is
//! bounded, so a compression bomb costs at most [`DECODE_CAP`] bytes of work per layer.

use flate2::{Crc, Decompress, FlushDecompress, Status};

use super::{CheckInput, CheckKind, Hit};
use crate::rules::Side;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Decoded bytes produced per layer before the check gives up (and reports nothing).
const DECODE_CAP: usize = 8 * 1024 * 1024;
const CHUNK: usize = 32 * 1024;

/// How decoding one layer went wrong.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Invalid data at this input offset.
    Corrupt { message: String, at: usize },
    /// The input ended before the stream did.
    Eof,
}

/// Where decoded bytes go: kept (up to the cap) when another layer needs them.
struct Sink {
    keep: bool,
    out: Vec<u8>,
    total: usize,
    crc: Option<Crc>,
}

impl Sink {
    fn new(keep: bool) -> Sink {
        Sink {
            keep,
            out: Vec::new(),
            total: 0,
            crc: None,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        if let Some(crc) = &mut self.crc {
            crc.update(bytes);
        }
        if self.keep {
            self.out.extend_from_slice(bytes);
        }
    }

    fn capped(&self) -> bool {
        self.total > DECODE_CAP
    }
}

/// Result of a layer that decoded without error: `false` when the cap stopped it.
type Layer = Result<bool, Failure>;

/// Runs a zlib or raw deflate stream from `data[start..]`; returns the offset just past it.
fn inflate(
    data: &[u8],
    start: usize,
    zlib: bool,
    sink: &mut Sink,
) -> Result<Option<usize>, Failure> {
    let mut d = Decompress::new(zlib);
    let mut buf = vec![0u8; CHUNK];
    let mut pos = start;
    loop {
        let (in0, out0) = (d.total_in(), d.total_out());
        let status = d
            .decompress(&data[pos..], &mut buf, FlushDecompress::None)
            .map_err(|e| Failure::Corrupt {
                message: e
                    .to_string()
                    .trim_start_matches("deflate decompression error: ")
                    .to_string(),
                at: start + d.total_in() as usize,
            })?;
        let consumed = (d.total_in() - in0) as usize;
        let produced = (d.total_out() - out0) as usize;
        pos += consumed;
        sink.push(&buf[..produced]);
        if status == Status::StreamEnd {
            return Ok(Some(pos));
        }
        if sink.capped() {
            return Ok(None);
        }
        if consumed == 0 && produced == 0 {
            return Err(Failure::Eof);
        }
    }
}

fn corrupt(message: &str, at: usize) -> Failure {
    Failure::Corrupt {
        message: message.to_string(),
        at,
    }
}

/// Multi-member gzip (RFC 1952), with header, CRC-32 and length checks. Bytes after a
/// complete member that do not start another member are ignored, as browsers do.
fn gunzip(data: &[u8], sink: &mut Sink) -> Layer {
    let mut pos = 0;
    let mut members = 0;
    loop {
        if members > 0 && !data[pos..].starts_with(&[0x1f, 0x8b]) {
            return Ok(true);
        }
        let h = &data[pos..];
        if h.len() < 10 {
            if h.len() >= 2 && h[..2] != [0x1f, 0x8b] {
                return Err(corrupt("not a gzip stream (bad magic)", pos));
            }
            return Err(Failure::Eof);
        }
        if h[..2] != [0x1f, 0x8b] {
            return Err(corrupt("not a gzip stream (bad magic)", pos));
        }
        if h[2] != 8 {
            return Err(corrupt("unknown compression method", pos + 2));
        }
        let flags = h[3];
        if flags & 0xe0 != 0 {
            return Err(corrupt("reserved header flags set", pos + 3));
        }
        let mut i = pos + 10;
        if flags & 0x04 != 0 {
            let Some(xlen) = data.get(i..i + 2) else {
                return Err(Failure::Eof);
            };
            i += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        }
        for flag in [0x08, 0x10] {
            if flags & flag != 0 {
                match data.get(i..).and_then(|r| r.iter().position(|&b| b == 0)) {
                    Some(z) => i += z + 1,
                    None => return Err(Failure::Eof),
                }
            }
        }
        if flags & 0x02 != 0 {
            i += 2;
        }
        if i > data.len() {
            return Err(Failure::Eof);
        }
        sink.crc = Some(Crc::new());
        let before = sink.total;
        let Some(end) = inflate(data, i, false, sink)? else {
            return Ok(false);
        };
        let Some(trailer) = data.get(end..end + 8) else {
            return Err(Failure::Eof);
        };
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if sink.crc.as_ref().map(Crc::sum) != Some(crc) {
            return Err(corrupt("CRC-32 mismatch", end));
        }
        if (sink.total - before) as u32 != size {
            return Err(corrupt("length mismatch", end + 4));
        }
        sink.crc = None;
        members += 1;
        pos = end + 8;
    }
}

/// Whether `data` starts with a valid zlib header (RFC 1950 §2.2).
fn zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 && flg & 0x20 == 0
        }
        _ => false,
    }
}

/// `deflate`: zlib as specified, else the raw deflate stream many servers send.
fn deflate(data: &[u8], keep: bool) -> (Layer, Sink) {
    if zlib_header(data) {
        let mut sink = Sink::new(keep);
        match inflate(data, 0, true, &mut sink) {
            Ok(end) => return (Ok(end.is_some()), sink),
            Err(zlib_err) => {
                let mut raw = Sink::new(keep);
                if let Ok(end) = inflate(data, 0, false, &mut raw) {
                    return (Ok(end.is_some()), raw);
                }
                return (Err(zlib_err), sink);
            }
        }
    }
    let mut sink = Sink::new(keep);
    let r = inflate(data, 0, false, &mut sink).map(|end| end.is_some());
    (r, sink)
}

fn unbrotli(data: &[u8], sink: &mut Sink) -> Layer {
    use brotli::{BrotliDecompressStream, BrotliResult, BrotliState, HeapAlloc, HuffmanCode};
    // Strict: the standard 16 MiB window limit, not large-window brotli (up to 1 GiB).
    let mut state = BrotliState::new_strict(
        HeapAlloc::<u8>::new(0),
        HeapAlloc::<u32>::new(0),
        HeapAlloc::<HuffmanCode>::new(HuffmanCode { value: 0, bits: 0 }),
    );
    let mut buf = vec![0u8; CHUNK];
    let mut avail_in = data.len();
    let mut in_off = 0;
    let mut total = 0;
    loop {
        let mut avail_out = buf.len();
        let mut out_off = 0;
        let r = BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            data,
            &mut avail_out,
            &mut out_off,
            &mut buf,
            &mut total,
            &mut state,
        );
        sink.push(&buf[..out_off]);
        match r {
            BrotliResult::ResultSuccess => return Ok(true),
            BrotliResult::NeedsMoreOutput if sink.capped() => return Ok(false),
            BrotliResult::NeedsMoreOutput => {}
            BrotliResult::NeedsMoreInput => return Err(Failure::Eof),
            BrotliResult::ResultFailure => {
                let code = format!("{:?}", state.error_code);
                let message = code
                    .trim_start_matches("BROTLI_DECODER_ERROR_")
                    .replace('_', " ")
                    .to_ascii_lowercase();
                return Err(Failure::Corrupt {
                    message: format!("invalid brotli data ({message})"),
                    at: in_off,
                });
            }
        }
    }
}

/// Decodes one layer. `None` for codings without a decoder here.
fn decode_layer(coding: &str, data: &[u8], keep: bool) -> Option<(Layer, Vec<u8>)> {
    match coding {
        "gzip" | "x-gzip" => {
            let mut sink = Sink::new(keep);
            let r = gunzip(data, &mut sink);
            Some((r, sink.out))
        }
        "deflate" => {
            let (r, sink) = deflate(data, keep);
            Some((r, sink.out))
        }
        "br" => {
            let mut sink = Sink::new(keep);
            let r = unbrotli(data, &mut sink);
            Some((r, sink.out))
        }
        _ => None,
    }
}

/// The first decoding failure of `body` under `codings` (in the order they were applied),
/// as evidence. `complete` says whether `body` is the whole content.
fn failure(codings: &[String], body: &[u8], complete: bool) -> Option<String> {
    let mut data: Vec<u8>;
    let mut input: &[u8] = body;
    for (n, coding) in codings.iter().rev().enumerate() {
        let last = n + 1 == codings.len();
        let (result, out) = decode_layer(coding, input, !last)?;
        match result {
            Ok(true) => {}
            Ok(false) => return None,
            Err(Failure::Eof) if complete => {
                return Some(format!(
                    "{coding}: unexpected end of data at byte {}",
                    input.len()
                ));
            }
            Err(Failure::Eof) => return None,
            Err(Failure::Corrupt { message, at }) => {
                return Some(format!("{coding}: {message} at byte {at}"));
            }
        }
        data = out;
        input = &data;
        if input.is_empty() {
            return None;
        }
    }
    None
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    if msg.is_incomplete() || msg.body.captured.is_empty() {
        return Vec::new();
    }
    if let Some(status) = msg.status() {
        let head = input.request().and_then(|r| r.method()) == Some("HEAD");
        if status == 206 || status == 304 || head {
            return Vec::new();
        }
    }
    let codings: Vec<String> = msg
        .header_values("Content-Encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() {
        return Vec::new();
    }
    // The engine's shared decode (which other body rules reuse) already proves a complete
    // body decodes; the careful layer-by-layer walk below only runs to explain a failure.
    let side = if msg.status().is_some() { Side::Response } else { Side::Request };
    if msg.body.captured_all && matches!(input.subject.decoded(side), Some((_, false))) {
        return Vec::new();
    }
    match failure(&codings, &msg.body.captured, msg.body.captured_all) {
        Some(evidence) => vec![Hit::new(evidence)],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    fn raw(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).expect("write");
        }
        out
    }

    fn f(codings: &[&str], body: &[u8], complete: bool) -> Option<String> {
        let c: Vec<String> = codings.iter().map(|s| s.to_string()).collect();
        failure(&c, body, complete)
    }

    const TEXT: &[u8] = b"hello hello hello hello world";

    #[test]
    fn valid_streams_pass() {
        assert_eq!(f(&["gzip"], &gz(TEXT), true), None);
        assert_eq!(f(&["x-gzip"], &gz(TEXT), true), None);
        let mut two = gz(b"a");
        two.extend(gz(b"b"));
        assert_eq!(f(&["gzip"], &two, true), None, "multi-member");
        let mut padded = gz(TEXT);
        padded.extend([0, 0, 0]);
        assert_eq!(f(&["gzip"], &padded, true), None, "trailing zeros");
        assert_eq!(f(&["deflate"], &zlib(TEXT), true), None);
        assert_eq!(f(&["deflate"], &raw(TEXT), true), None);
        assert_eq!(f(&["br"], &br(TEXT), true), None);
        assert_eq!(f(&["deflate", "gzip"], &gz(&zlib(TEXT)), true), None);
        assert_eq!(f(&["zstd"], b"junk", true), None, "no decoder: not judged");
        assert_eq!(f(&["gzip", "zstd"], b"junk", true), None);
    }

    #[test]
    fn corrupt_streams_fire() {
        assert_eq!(
            f(&["gzip"], b"{\"items\": []}", true).as_deref(),
            Some("gzip: not a gzip stream (bad magic) at byte 0")
        );
        let mut bad_crc = gz(TEXT);
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(
            f(&["gzip"], &bad_crc, true).as_deref(),
            Some(format!("gzip: CRC-32 mismatch at byte {}", n - 8).as_str())
        );
        let ev = f(&["br"], b"this is not brotli at all, no", true);
        assert!(
            ev.as_deref().is_some_and(|e| e.starts_with("br: ")),
            "{ev:?}"
        );
        let ev = f(&["deflate"], &[0xff; 20], true);
        assert!(
            ev.as_deref().is_some_and(|e| e.starts_with("deflate: ")),
            "{ev:?}"
        );
        // The inner layer is judged too.
        let ev = f(&["gzip", "br"], &br(b"not gzip"), true);
        assert_eq!(
            ev.as_deref(),
            Some("gzip: not a gzip stream (bad magic) at byte 0")
        );
    }

    #[test]
    fn truncation_depends_on_completeness() {
        let g = gz(TEXT);
        let cut = &g[..g.len() - 4];
        assert_eq!(f(&["gzip"], cut, false), None);
        assert!(f(&["gzip"], cut, true).is_some());
        let b = br(&[7u8; 5000]);
        let cut = &b[..b.len() / 2];
        assert_eq!(f(&["br"], cut, false), None);
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        let bomb = gz(&vec![0u8; DECODE_CAP + CHUNK * 4]);
        assert_eq!(f(&["gzip"], &bomb, true), None);
    }
}
