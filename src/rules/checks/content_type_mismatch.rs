//! `content-type-mismatch`: content whose first bytes contradict its Content-Type
//! (RFC 9110 §8.3; signatures from the WHATWG MIME Sniffing Standard §7): an image,
//! archive or PDF under a text or JSON/XML type or under another image type, or an HTML
//! document under a JSON type. Code, because it reads the content-decoded bytes.
//!
//! Only unambiguous signatures are used, never a guess between text formats. Generic or
//! unknown declared types (`application/octet-stream`, ZIP-based formats such as
//! `application/epub+zip` or OOXML) are never contradicted, and partial (206) responses
//! and bodies shorter than 8 bytes are skipped.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::Side;
use crate::http::Message;
#[cfg(test)]
use crate::http::content;
use crate::rules::syntax::negotiation::{self, MediaType};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Decoded bytes read: enough for every signature and leading whitespace before HTML.
const SNIFF_CAP: usize = 1024;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    // The engine's shared decode (full content, which other body rules need anyway) is
    // reused; sniffing reads only its first bytes.
    let side = if msg.status().is_some() { Side::Response } else { Side::Request };
    verdict_with(msg, || input.decoded(side)).map(Hit::new).into_iter().collect()
}

/// What the bytes are, by signature: (media type, evidence wording).
fn sniff(b: &[u8]) -> Option<(&'static str, &'static str)> {
    const SIGS: &[(&[u8], &str, &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png", "PNG image data"),
        (b"\xff\xd8\xff", "image/jpeg", "JPEG image data"),
        (b"GIF87a", "image/gif", "GIF image data"),
        (b"GIF89a", "image/gif", "GIF image data"),
        (b"%PDF-", "application/pdf", "a PDF document"),
        (b"PK\x03\x04", "application/zip", "a ZIP archive"),
        (b"\x1f\x8b", "application/gzip", "gzip data"),
    ];
    for (sig, mt, words) in SIGS {
        if b.starts_with(sig) {
            return Some((mt, words));
        }
    }
    if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Some(("image/webp", "WebP image data"));
    }
    None
}

/// An HTML document start, after an optional BOM and whitespace.
fn is_html(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'))
        .unwrap_or(b.len());
    let rest = &b[start..];
    let starts = |p: &[u8]| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p);
    starts(b"<!doctype html") || starts(b"<html")
}

/// The image type a declared one means (aliases browsers accept).
fn image_alias(essence: &str) -> &str {
    match essence {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/x-png" => "image/png",
        other => other,
    }
}

fn is_textual(mt: &MediaType) -> bool {
    mt.kind == "text" || mt.is_json() || mt.is_xml()
}

#[cfg(test)]
fn verdict(msg: &Message) -> Option<String> {
    verdict_with(msg, || content::decoded_body(msg, SNIFF_CAP).ok())
}

fn verdict_with<'m>(
    msg: &'m Message,
    decode: impl FnOnce() -> Option<(std::borrow::Cow<'m, [u8]>, bool)>,
) -> Option<String> {
    if msg.status() == Some(206) || msg.is_incomplete() {
        return None;
    }
    let declared = negotiation::parse(msg.header("content-type")?)?;
    let (body, _) = decode()?;
    let body = &body[..body.len().min(SNIFF_CAP)];
    if body.len() < 8 {
        return None;
    }
    if let Some((found, words)) = sniff(body) {
        let essence = declared.essence();
        let contradicts =
            is_textual(&declared) || (declared.kind == "image" && image_alias(&essence) != found);
        return contradicts.then(|| words.to_string());
    }
    (declared.is_json() && is_html(body)).then(|| "an HTML document".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ct: &str, body: &[u8]) -> Message {
        let ex = crate::rules::syntax::testing::exchange(
            "GET / HTTP/1.1\nHost: a\n\n",
            &format!("HTTP/1.1 200 OK\nContent-Type: {ct}\nContent-Length: 0\n\n"),
        );
        let mut m = ex.response.expect("response");
        m.body.captured = body.to_vec();
        m.body.size = body.len() as u64;
        m
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn contradictions() {
        assert_eq!(
            verdict(&msg("text/html", PNG)).as_deref(),
            Some("PNG image data")
        );
        assert_eq!(
            verdict(&msg("image/jpeg", PNG)).as_deref(),
            Some("PNG image data")
        );
        assert_eq!(
            verdict(&msg("application/json", b"\n <!DOCTYPE html><html>")).as_deref(),
            Some("an HTML document")
        );
        assert_eq!(
            verdict(&msg("application/vnd.api+json", b"<HTML><body>x</body>")).as_deref(),
            Some("an HTML document")
        );
        assert_eq!(
            verdict(&msg("application/xml", b"PK\x03\x04\x14\0\0\0")).as_deref(),
            Some("a ZIP archive")
        );
    }

    #[test]
    fn no_contradiction() {
        assert_eq!(verdict(&msg("image/png", PNG)), None);
        assert_eq!(verdict(&msg("image/x-png", PNG)), None);
        assert_eq!(verdict(&msg("application/octet-stream", PNG)), None);
        assert_eq!(
            verdict(&msg("application/epub+zip", b"PK\x03\x04\x14\0\0\0")),
            None
        );
        assert_eq!(
            verdict(&msg(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                b"PK\x03\x04\x14\0\0\0"
            )),
            None
        );
        assert_eq!(verdict(&msg("text/html", b"<!DOCTYPE html><html>")), None);
        assert_eq!(verdict(&msg("text/plain", b"{\"a\":\"json\"}")), None);
        assert_eq!(
            verdict(&msg("application/xml", b"<html><body></body></html>")),
            None
        );
        assert_eq!(verdict(&msg("text/html", b"\x89PNG")), None);
    }
}
