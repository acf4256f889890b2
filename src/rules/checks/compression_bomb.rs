//! `compression-bomb`: content that decodes to more than [`BOMB_RATIO`]:1 of its coded size
//! and past the decode cap — a probable decompression bomb (issue 10). Two places see it:
//!
//! - a transfer coding (`Transfer-Encoding: gzip, chunked`) is undone by the http stage as
//!   the body streams, which stops decoding at the kept-body cap and records the
//!   `compression-bomb` anomaly with the ratio it measured;
//! - a `Content-Encoding` is undone here: the outermost coding of the kept (still coded)
//!   bytes is decoded until more than [`DECODE_CAP`] (the rules' read cap) comes out, and the
//!   ratio is that output over the coded bytes it took. Ordinary content stops the decode
//!   after `DECODE_CAP / BOMB_RATIO` coded bytes, so the check costs little on normal traffic.
//!
//! Content that stays under the cap is not judged however well it compresses (a small page
//! of zeros is no threat), nor are codings without a decoder here (`zstd`, `compress`).

use super::{CheckInput, CheckKind, Hit};
use crate::http::{AnomalyKind, BOMB_RATIO, content};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Decoded bytes past which a ratio above [`BOMB_RATIO`] is a finding (the rules' read cap).
const DECODE_CAP: usize = 1024 * 1024;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    if let Some(a) = msg
        .anomalies
        .iter()
        .find(|a| a.kind == AnomalyKind::CompressionBomb)
    {
        return vec![Hit::new(a.detail.clone())];
    }
    if msg.body.content_decoded || msg.body.captured.is_empty() {
        return Vec::new();
    }
    // Codings are listed in the order applied: the last one is undone first.
    let Some(coding) = msg
        .header_values("Content-Encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .last()
    else {
        return Vec::new();
    };
    let Some((out, used)) = content::expansion(
        &coding,
        &msg.body.captured,
        DECODE_CAP,
        BOMB_RATIO as usize,
    ) else {
        return Vec::new();
    };
    let ratio = out / used.max(1);
    if ratio <= BOMB_RATIO {
        return Vec::new();
    }
    vec![Hit::new(format!(
        "Content-Encoding {coding}: the first {used} coded bytes decode to more than {out} (ratio {ratio}:1; the body is {} bytes coded)",
        msg.body.size
    ))]
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn a_gzip_of_zeros_past_the_cap_is_a_bomb_and_text_is_not() {
        let bomb = gz(&vec![0u8; 8 << 20]);
        let (out, used) =
            crate::http::content::expansion("gzip", &bomb, super::DECODE_CAP, 100).expect("bomb");
        assert!(out / used > 100);
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        assert!(crate::http::content::expansion("gzip", &gz(&text), super::DECODE_CAP, 100).is_none());
    }
}
