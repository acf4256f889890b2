//! Streaming decoders for the codings a body can carry: transfer codings (RFC 9112 §7:
//! `gzip`, `x-gzip`, `deflate`) undone by the http stage as the body is parsed, and content
//! codings (RFC 9110 §8.4.1: also `br`) undone for the JSON validator. Bytes go in as they
//! arrive; output comes out in pieces of at most [`CHUNK`] bytes, so memory stays bounded
//! whatever the compression ratio. `compress` (LZW) has no decoder: no well-kept crate
//! implements Unix compress's format, so such content is reported as not decodable.

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// Largest piece of output handed on at once.
pub const CHUNK: usize = 32 * 1024;
/// Decoded bytes allowed per input byte (deflate's own maximum ratio is 1032:1) ...
const RATIO: u64 = 1100;
/// ... plus this many, before decoding stops as a probable bomb.
const SLACK: u64 = 1 << 20;
/// Largest gzip header (with its optional name, comment and extra field) accepted.
const MAX_GZIP_HEADER: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodingError {
    #[error("no decoder for the {0:?} coding")]
    Unsupported(String),
    #[error("{coding} data is corrupt: {message}")]
    Corrupt {
        coding: &'static str,
        message: String,
    },
    #[error("{0} data ends before its stream does")]
    Truncated(&'static str),
    #[error("decoded output larger than {RATIO} times its input: a probable compression bomb")]
    Budget,
}

fn corrupt(coding: &'static str, message: impl Into<String>) -> CodingError {
    CodingError::Corrupt {
        coding,
        message: message.into(),
    }
}

/// Where decoded pieces go.
type Out<'o> = dyn FnMut(&[u8]) -> Result<(), CodingError> + 'o;

/// Runs a deflate/zlib stream over `input`; returns whether the stream ended (and how
/// much input that took).
fn inflate(
    d: &mut Decompress,
    crc: Option<&mut Crc>,
    coding: &'static str,
    input: &[u8],
    buf: &mut [u8],
    out: &mut Out<'_>,
) -> Result<Option<usize>, CodingError> {
    let mut pos = 0;
    let mut crc = crc;
    loop {
        let (in0, out0) = (d.total_in(), d.total_out());
        let status = d
            .decompress(&input[pos..], buf, FlushDecompress::None)
            .map_err(|e| corrupt(coding, e.to_string()))?;
        let consumed = (d.total_in() - in0) as usize;
        let produced = (d.total_out() - out0) as usize;
        pos += consumed;
        if produced > 0 {
            if let Some(c) = crc.as_deref_mut() {
                c.update(&buf[..produced]);
            }
            out(&buf[..produced])?;
        }
        if status == Status::StreamEnd {
            return Ok(Some(pos));
        }
        if consumed == 0 && produced == 0 {
            return Ok(None);
        }
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

/// The length of a complete gzip member header at the start of `h` (RFC 1952 §2.3),
/// `None` when more bytes are needed.
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, CodingError> {
    if h.len() >= 2 && h[..2] != [0x1f, 0x8b] {
        return Err(corrupt("gzip", "not a gzip stream (bad magic)"));
    }
    if h.len() < 10 {
        return Ok(None);
    }
    if h[2] != 8 {
        return Err(corrupt("gzip", "unknown compression method"));
    }
    let flags = h[3];
    if flags & 0xe0 != 0 {
        return Err(corrupt("gzip", "reserved header flags set"));
    }
    let mut i = 10;
    if flags & 0x04 != 0 {
        let Some(xlen) = h.get(i..i + 2) else {
            return Ok(None);
        };
        i += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            match h.get(i..).and_then(|r| r.iter().position(|&b| b == 0)) {
                Some(z) => i += z + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        i += 2;
    }
    Ok((i <= h.len()).then_some(i))
}

type BrotliDecoder = brotli::BrotliState<
    brotli::HeapAlloc<u8>,
    brotli::HeapAlloc<u32>,
    brotli::HeapAlloc<brotli::HuffmanCode>,
>;

enum GzipPhase {
    /// Collecting a member header (or, after a member, the bytes that may start another).
    Header(Vec<u8>),
    Body(Box<Decompress>, Crc),
    Trailer(Vec<u8>, Crc),
    /// Bytes after the last member that do not start another: ignored, as browsers do.
    Ignore,
}

enum Decoder {
    Identity,
    Gzip {
        phase: GzipPhase,
        members: u32,
    },
    /// `deflate`: zlib as specified, or the raw deflate stream many servers send (decided
    /// by the first two bytes).
    Deflate {
        head: Vec<u8>,
        inflater: Option<Box<Decompress>>,
        ended: bool,
    },
    /// The decoder's state and whether its stream ended.
    Brotli(Box<BrotliDecoder>, bool),
}

impl Decoder {
    fn new(coding: &str) -> Result<Decoder, CodingError> {
        Ok(match coding {
            // `identity` is obsolete but harmless; `trailers` is not a coding at all.
            "identity" | "trailers" => Decoder::Identity,
            "gzip" | "x-gzip" => Decoder::Gzip {
                phase: GzipPhase::Header(Vec::new()),
                members: 0,
            },
            "deflate" => Decoder::Deflate {
                head: Vec::new(),
                inflater: None,
                ended: false,
            },
            "br" => Decoder::Brotli(
                Box::new(brotli::BrotliState::new_strict(
                    brotli::HeapAlloc::<u8>::new(0),
                    brotli::HeapAlloc::<u32>::new(0),
                    brotli::HeapAlloc::<brotli::HuffmanCode>::new(brotli::HuffmanCode {
                        value: 0,
                        bits: 0,
                    }),
                )),
                false,
            ),
            other => return Err(CodingError::Unsupported(other.to_string())),
        })
    }

    fn push(&mut self, input: &[u8], buf: &mut [u8], out: &mut Out<'_>) -> Result<(), CodingError> {
        match self {
            Decoder::Identity => out(input),
            Decoder::Gzip { phase, members } => gzip_push(phase, members, input, buf, out),
            Decoder::Deflate {
                head,
                inflater,
                ended,
            } => {
                if *ended {
                    return Ok(());
                }
                let mut input = input;
                if inflater.is_none() {
                    let take = input.len().min(2 - head.len());
                    head.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if head.len() < 2 {
                        return Ok(());
                    }
                    let first = std::mem::take(head);
                    let mut d = Box::new(Decompress::new(zlib_header(&first)));
                    let end = inflate(&mut d, None, "deflate", &first, buf, out)?;
                    *inflater = Some(d);
                    if end.is_some() {
                        *ended = true;
                        return Ok(());
                    }
                }
                let Some(d) = inflater.as_deref_mut() else {
                    return Ok(());
                };
                if inflate(d, None, "deflate", input, buf, out)?.is_some() {
                    *ended = true;
                }
                Ok(())
            }
            Decoder::Brotli(state, ended) => {
                if *ended {
                    return Ok(());
                }
                let mut avail_in = input.len();
                let mut in_off = 0;
                let mut total = 0;
                loop {
                    let mut avail_out = buf.len();
                    let mut out_off = 0;
                    let r = brotli::BrotliDecompressStream(
                        &mut avail_in,
                        &mut in_off,
                        input,
                        &mut avail_out,
                        &mut out_off,
                        buf,
                        &mut total,
                        state,
                    );
                    if out_off > 0 {
                        out(&buf[..out_off])?;
                    }
                    match r {
                        brotli::BrotliResult::ResultSuccess => {
                            *ended = true;
                            return Ok(());
                        }
                        brotli::BrotliResult::NeedsMoreOutput => {}
                        brotli::BrotliResult::NeedsMoreInput => return Ok(()),
                        brotli::BrotliResult::ResultFailure => {
                            return Err(corrupt("br", format!("{:?}", state.error_code)));
                        }
                    }
                }
            }
        }
    }

    /// The input ended: an error when the coded stream had not.
    fn finish(&self) -> Result<(), CodingError> {
        match self {
            Decoder::Identity => Ok(()),
            Decoder::Gzip { phase, members } => match phase {
                GzipPhase::Ignore => Ok(()),
                GzipPhase::Header(_) if *members > 0 => Ok(()),
                _ => Err(CodingError::Truncated("gzip")),
            },
            Decoder::Deflate { ended, .. } => {
                if *ended {
                    Ok(())
                } else {
                    Err(CodingError::Truncated("deflate"))
                }
            }
            Decoder::Brotli(_, ended) => {
                if *ended {
                    Ok(())
                } else {
                    Err(CodingError::Truncated("br"))
                }
            }
        }
    }
}

/// Multi-member gzip with header, CRC-32 and length checks.
fn gzip_push(
    phase: &mut GzipPhase,
    members: &mut u32,
    mut input: &[u8],
    buf: &mut [u8],
    out: &mut Out<'_>,
) -> Result<(), CodingError> {
    while !input.is_empty() {
        match phase {
            GzipPhase::Ignore => return Ok(()),
            GzipPhase::Header(h) => {
                let before = h.len();
                let take = input.len().min(MAX_GZIP_HEADER + 1 - before);
                h.extend_from_slice(&input[..take]);
                if *members > 0 && h.len() >= 2 && h[..2] != [0x1f, 0x8b] {
                    *phase = GzipPhase::Ignore;
                    return Ok(());
                }
                match gzip_header_len(h)? {
                    Some(len) => {
                        input = &input[len - before..];
                        *phase = GzipPhase::Body(Box::new(Decompress::new(false)), Crc::new());
                    }
                    None if h.len() > MAX_GZIP_HEADER => {
                        return Err(corrupt("gzip", "header larger than 64 KiB"));
                    }
                    None => return Ok(()),
                }
            }
            GzipPhase::Body(d, crc) => {
                let Some(used) = inflate(d, Some(crc), "gzip", input, buf, out)? else {
                    return Ok(());
                };
                input = &input[used..];
                let crc = std::mem::replace(crc, Crc::new());
                *phase = GzipPhase::Trailer(Vec::new(), crc);
            }
            GzipPhase::Trailer(t, crc) => {
                let take = input.len().min(8 - t.len());
                t.extend_from_slice(&input[..take]);
                input = &input[take..];
                if t.len() < 8 {
                    return Ok(());
                }
                let sum = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                if crc.sum() != sum {
                    return Err(corrupt("gzip", "CRC-32 mismatch"));
                }
                if crc.amount() != size {
                    return Err(corrupt("gzip", "length mismatch"));
                }
                *members += 1;
                *phase = GzipPhase::Header(Vec::new());
            }
        }
    }
    Ok(())
}

/// Several codings undone in turn, with a budget on the decoded size.
pub struct Chain {
    /// Last applied first: the order in which they are undone.
    layers: Vec<(Decoder, Vec<u8>)>,
    input: u64,
    output: u64,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("layers", &self.layers.len())
            .field("input", &self.input)
            .field("output", &self.output)
            .finish()
    }
}

impl Chain {
    /// A decoder for `codings` listed in the order they were applied. `Ok(None)` when
    /// there is nothing to undo.
    pub fn new(codings: &[String]) -> Result<Option<Chain>, CodingError> {
        let mut layers = Vec::new();
        for c in codings.iter().rev() {
            match Decoder::new(c)? {
                Decoder::Identity => {}
                d => layers.push((d, vec![0u8; CHUNK])),
            }
        }
        Ok((!layers.is_empty()).then_some(Chain {
            layers,
            input: 0,
            output: 0,
        }))
    }

    /// Decodes the next input bytes, handing decoded pieces to `sink`.
    pub fn push(&mut self, input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(), CodingError> {
        self.input += input.len() as u64;
        let budget = self.input.saturating_mul(RATIO).saturating_add(SLACK);
        let output = &mut self.output;
        let mut last = |piece: &[u8]| {
            *output += piece.len() as u64;
            if *output > budget {
                return Err(CodingError::Budget);
            }
            sink(piece);
            Ok(())
        };
        push_through(&mut self.layers, input, &mut last)
    }

    /// The input ended: an error when a coded stream had not.
    pub fn finish(&self) -> Result<(), CodingError> {
        self.layers.iter().try_for_each(|(d, _)| d.finish())
    }
}

fn push_through(
    layers: &mut [(Decoder, Vec<u8>)],
    input: &[u8],
    out: &mut Out<'_>,
) -> Result<(), CodingError> {
    match layers.split_first_mut() {
        None => out(input),
        Some(((d, buf), rest)) => d.push(input, buf, &mut |piece| push_through(rest, piece, out)),
    }
}

/// The codings of a `Transfer-Encoding` or `Content-Encoding` field list, lower-cased,
/// without parameters, in the order they were applied.
pub fn codings<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    values
        .flat_map(|v| v.split(','))
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(codings: &[&str], data: &[u8], piece: usize) -> Result<Vec<u8>, CodingError> {
        let c: Vec<String> = codings.iter().map(|s| s.to_string()).collect();
        let mut chain = Chain::new(&c)?.expect("a coding");
        let mut out = Vec::new();
        for p in data.chunks(piece.max(1)) {
            chain.push(p, &mut |d| out.extend_from_slice(d))?;
        }
        chain.finish()?;
        Ok(out)
    }

    const TEXT: &[u8] = b"{\"hello\": \"hello hello hello hello world\"}";

    #[test]
    fn every_coding_in_any_pieces() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(TEXT).unwrap();
        let zlib = z.finish().unwrap();
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(TEXT).unwrap();
        let raw = r.finish().unwrap();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(TEXT)
            .unwrap();
        let mut two = gz(b"{\"a\":");
        two.extend(gz(b"1}"));
        for piece in [1, 2, 3, 5, 1000] {
            assert_eq!(decode(&["gzip"], &gz(TEXT), piece).unwrap(), TEXT);
            assert_eq!(decode(&["x-gzip"], &gz(TEXT), piece).unwrap(), TEXT);
            assert_eq!(decode(&["deflate"], &zlib, piece).unwrap(), TEXT);
            assert_eq!(decode(&["deflate"], &raw, piece).unwrap(), TEXT);
            assert_eq!(decode(&["br"], &br, piece).unwrap(), TEXT);
            assert_eq!(decode(&["gzip"], &two, piece).unwrap(), b"{\"a\":1}");
            // Applied gzip then deflate: undone deflate first.
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(&gz(TEXT)).unwrap();
            assert_eq!(
                decode(&["gzip", "deflate"], &z.finish().unwrap(), piece).unwrap(),
                TEXT
            );
        }
    }

    #[test]
    fn corrupt_truncated_and_unsupported() {
        assert!(matches!(
            decode(&["gzip"], b"{\"not\": \"gzip\"}", 4),
            Err(CodingError::Corrupt { .. })
        ));
        let g = gz(TEXT);
        assert_eq!(
            decode(&["gzip"], &g[..g.len() - 3], 7),
            Err(CodingError::Truncated("gzip"))
        );
        let mut bad = g.clone();
        let n = bad.len();
        bad[n - 8] ^= 1;
        assert!(matches!(
            decode(&["gzip"], &bad, 7),
            Err(CodingError::Corrupt { .. })
        ));
        assert!(matches!(
            Chain::new(&["compress".to_string()]),
            Err(CodingError::Unsupported(_))
        ));
        assert!(Chain::new(&["identity".to_string()]).unwrap().is_none());
    }

    #[test]
    fn bombs_cost_bounded_memory_and_stop_at_the_budget() {
        // 64 MiB of zeros, gzipped twice: about 1 MiB of output per 1 byte of input.
        let inner = gz(&vec![0u8; 64 << 20]);
        let outer = gz(&inner);
        assert!(outer.len() < 100_000, "{}", outer.len());
        let c = vec!["gzip".to_string(), "gzip".to_string()];
        let mut chain = Chain::new(&c).unwrap().unwrap();
        let mut biggest = 0;
        let mut total = 0u64;
        let r = outer.chunks(1460).try_for_each(|p| {
            chain.push(p, &mut |d| {
                biggest = biggest.max(d.len());
                total += d.len() as u64;
            })
        });
        assert_eq!(r, Err(CodingError::Budget));
        assert!(biggest <= CHUNK);
        assert!(total < 64 << 20);
    }
}
