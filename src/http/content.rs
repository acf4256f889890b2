//! Content codings (gzip, deflate, br) decoded on demand for body rules, with an output cap
//! so that a compression bomb costs at most `cap` bytes.

use std::borrow::Cow;
use std::io::Read;

use super::message::Message;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentError {
    #[error("content coding {0:?} is not supported")]
    Unsupported(String),
    #[error("{coding} content does not decode: {message}")]
    Corrupt { coding: String, message: String },
}

/// The message's content with its Content-Encoding undone, at most `cap` bytes. Returns
/// the bytes (borrowed when there is nothing to undo) and whether the output was cut at
/// the cap. Content already decoded by whoever recorded it (HAR) is returned as it is.
pub fn decoded_body(msg: &Message, cap: usize) -> Result<(Cow<'_, [u8]>, bool), ContentError> {
    let raw = msg.body.captured.as_slice();
    if msg.body.content_decoded {
        let cut = raw.len() > cap;
        return Ok((Cow::Borrowed(&raw[..raw.len().min(cap)]), cut));
    }
    let codings: Vec<String> = msg
        .header_values("content-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() {
        let cut = raw.len() > cap;
        return Ok((Cow::Borrowed(&raw[..raw.len().min(cap)]), cut));
    }
    let mut data: Cow<'_, [u8]> = Cow::Borrowed(raw);
    let mut capped = false;
    // Codings are listed in the order they were applied: undo them last to first.
    for coding in codings.iter().rev() {
        let (out, cut) = decode_one(coding, &data, cap)?;
        data = Cow::Owned(out);
        capped |= cut;
    }
    Ok((data, capped))
}

fn read_capped(
    mut reader: impl Read,
    cap: usize,
    coding: &str,
) -> Result<(Vec<u8>, bool), ContentError> {
    let mut out = Vec::new();
    let limit = cap as u64 + 1;
    match reader.by_ref().take(limit).read_to_end(&mut out) {
        Ok(_) => {
            let cut = out.len() > cap;
            out.truncate(cap);
            Ok((out, cut))
        }
        Err(e) => Err(ContentError::Corrupt {
            coding: coding.to_string(),
            message: e.to_string(),
        }),
    }
}

/// Decodes one coding. Tolerant as browsers are: multi-member gzip, and `deflate` sent
/// either as zlib (correct) or as a raw deflate stream (common).
pub fn decode_one(coding: &str, data: &[u8], cap: usize) -> Result<(Vec<u8>, bool), ContentError> {
    match coding {
        "gzip" | "x-gzip" => read_capped(flate2::read::MultiGzDecoder::new(data), cap, coding),
        "deflate" => read_capped(flate2::read::ZlibDecoder::new(data), cap, coding)
            .or_else(|_| read_capped(flate2::read::DeflateDecoder::new(data), cap, coding)),
        "br" => read_capped(brotli::Decompressor::new(data, 4096), cap, coding),
        other => Err(ContentError::Unsupported(other.to_string())),
    }
}

/// How far `data` (bytes in `coding`) expands: decodes until more than `cap` bytes come
/// out and returns `(decoded, coded)` — the decoded bytes and the coded bytes it took
/// (within a few hundred bytes: decoders read ahead) — or `None` when the content ends,
/// fails, or has used `cap / min_ratio` coded bytes first (it cannot reach `min_ratio`:1 at
/// the cap, so bounded work on ordinary content). For the decompression-bomb rule.
pub fn expansion(coding: &str, data: &[u8], cap: usize, min_ratio: usize) -> Option<(u64, u64)> {
    /// Read-ahead of the brotli decoder; flate2's bufread decoders take what they use.
    const BR_BUFFER: usize = 512;
    let budget_in = cap / min_ratio.max(1);
    fn run<R: Read>(
        mut r: R,
        cap: usize,
        budget_in: usize,
        rest: impl Fn(&R) -> usize,
        total: usize,
    ) -> Option<(u64, u64)> {
        let mut buf = vec![0u8; 32 * 1024];
        let mut out = 0usize;
        loop {
            let n = r.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            out += n;
            let taken = total - rest(&r);
            if out > cap {
                return Some((out as u64, taken as u64));
            }
            if taken > budget_in {
                return None;
            }
        }
    }
    let total = data.len();
    match coding {
        "gzip" | "x-gzip" => run(
            flate2::bufread::MultiGzDecoder::new(data),
            cap,
            budget_in,
            |r| r.get_ref().len(),
            total,
        ),
        "deflate" => {
            let zlib = data.len() >= 2
                && data[0] & 0x0f == 8
                && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
            if zlib {
                run(
                    flate2::bufread::ZlibDecoder::new(data),
                    cap,
                    budget_in,
                    |r| r.get_ref().len(),
                    total,
                )
            } else {
                run(
                    flate2::bufread::DeflateDecoder::new(data),
                    cap,
                    budget_in,
                    |r| r.get_ref().len(),
                    total,
                )
            }
        }
        "br" => run(
            brotli::Decompressor::new(data, BR_BUFFER),
            cap,
            budget_in,
            |r| r.get_ref().len(),
            total,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_deflate_and_brotli() {
        let text = b"hello hello hello hello".repeat(10);
        assert_eq!(decode_one("gzip", &gzip(&text), 1 << 20).unwrap().0, text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        assert_eq!(
            decode_one("deflate", &z.finish().unwrap(), 1 << 20)
                .unwrap()
                .0,
            text
        );
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&text).unwrap();
        assert_eq!(
            decode_one("deflate", &raw.finish().unwrap(), 1 << 20)
                .unwrap()
                .0,
            text
        );
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(&text)
            .unwrap();
        assert_eq!(decode_one("br", &br, 1 << 20).unwrap().0, text);
    }

    #[test]
    fn expansion_measures_bombs_and_stops_early_on_ordinary_content() {
        let bomb = gzip(&vec![0u8; 4 << 20]);
        let (out, used) = expansion("gzip", &bomb, 1 << 20, 100).expect("a bomb");
        assert!(out > 1 << 20);
        assert!(out / used > 100, "{out} from {used}");
        // Text at ~3:1 stops after cap/100 coded bytes; short content ends first.
        let text: Vec<u8> = (0..400_000u32)
            .flat_map(|i| format!("{i},").into_bytes())
            .collect();
        assert_eq!(expansion("gzip", &gzip(&text), 1 << 20, 100), None);
        assert_eq!(expansion("gzip", &gzip(b"short"), 1 << 20, 100), None);
        assert_eq!(expansion("zstd", &bomb, 1 << 20, 100), None);
    }

    #[test]
    fn output_is_capped_and_garbage_is_an_error() {
        let big = vec![b'a'; 100_000];
        let (out, cut) = decode_one("gzip", &gzip(&big), 1000).unwrap();
        assert_eq!((out.len(), cut), (1000, true));
        assert!(matches!(
            decode_one("gzip", b"not gzip", 100),
            Err(ContentError::Corrupt { .. })
        ));
        assert!(matches!(
            decode_one("zstd", b"", 100),
            Err(ContentError::Unsupported(_))
        ));
    }
}
