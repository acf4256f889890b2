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
