//! `undecodable-charset`: content that cannot be decoded as the charset its Content-Type
//! declares (RFC 9110 §8.3.2; labels per the WHATWG Encoding Standard §4.2), or a charset
//! browsers refuse (the "replacement" encoding's labels, UTF-7). Code, because it resolves
//! the label and scans the content-decoded bytes.
//!
//! Unknown labels, single-byte encodings (they decode anything), JSON types
//! (`json-not-utf8`) and empty bodies are not judged. A byte-order mark overrides the label,
//! as in browsers. When only part of the body was captured, a sequence cut by the end of
//! the captured bytes is not counted. The multi-byte scans are structural (see
//! `syntax::charset`): a well-formed but unmapped pair is not reported.

use crate::rules::Side;
use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
#[cfg(test)]
use crate::http::content;
use crate::rules::syntax::charset::{self, Encoding};
use crate::rules::syntax::negotiation;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Decoded content scanned at most (the engine shares a decode of the same size).
#[cfg(test)]
const READ_CAP: usize = 1024 * 1024;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    let side = input.side.unwrap_or(Side::Response);
    verdict_with(msg, || input.decoded(side))
    .map(Hit::new).into_iter().collect()
}

#[cfg(test)]
fn verdict(msg: &Message) -> Option<String> {
    verdict_with(msg, || content::decoded_body(msg, READ_CAP).ok())
}

/// The verdict, with the decoded content supplied by the caller (shared with every other
/// rule that reads it when run by the engine).
fn verdict_with<'m>(
    msg: &'m Message,
    decode: impl FnOnce() -> Option<(std::borrow::Cow<'m, [u8]>, bool)>,
) -> Option<String> {
    let mt = negotiation::parse(msg.header("content-type")?)?;
    if mt.is_json() {
        return None;
    }
    let label = mt.param("charset")?.trim();
    let shown: String = label.chars().take(40).collect();
    let enc = charset::for_label(label)?;
    if matches!(enc, Encoding::Replacement | Encoding::Utf7) {
        return Some(format!("charset {shown} is blocked by browsers"));
    }
    if enc == Encoding::SingleByte || msg.is_incomplete() {
        return None;
    }
    let (body, capped) = decode()?;
    let (enc, skip, name) = match &body[..] {
        [0xef, 0xbb, 0xbf, ..] => (Encoding::Utf8, 3, "UTF-8 (by its BOM)"),
        [0xff, 0xfe, ..] => (Encoding::Utf16Le, 2, "UTF-16LE (by its BOM)"),
        [0xfe, 0xff, ..] => (Encoding::Utf16Be, 2, "UTF-16BE (by its BOM)"),
        _ => (enc, 0, shown.as_str()),
    };
    let bad = charset::first_malformed(enc, &body[skip..])?;
    if bad.at_end && (capped || !msg.body.captured_all) {
        return None;
    }
    Some(format!("invalid {name} at byte {}", bad.at + skip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchange;

    fn msg(ct: &str, body: &[u8]) -> Message {
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\n\n",
            &format!("HTTP/1.1 200 OK\nContent-Type: {ct}\nContent-Length: 0\n\n"),
        );
        let mut m = ex.response.expect("response");
        m.body.captured = body.to_vec();
        m.body.size = body.len() as u64;
        m
    }

    #[test]
    fn blocked_labels() {
        assert_eq!(
            verdict(&msg("text/html; charset=utf-7", b"<p>hi</p>")).as_deref(),
            Some("charset utf-7 is blocked by browsers")
        );
        assert_eq!(
            verdict(&msg("text/html; charset=\"ISO-2022-KR\"", b"x")).as_deref(),
            Some("charset ISO-2022-KR is blocked by browsers")
        );
    }

    #[test]
    fn malformed_bytes() {
        assert_eq!(
            verdict(&msg("text/plain; charset=iso-2022-jp", "René".as_bytes())).as_deref(),
            Some("invalid iso-2022-jp at byte 3")
        );
        assert_eq!(
            verdict(&msg("text/plain; charset=utf-8", b"Ren\xe9")).as_deref(),
            Some("invalid utf-8 at byte 3")
        );
        assert_eq!(
            verdict(&msg(
                "text/plain; charset=shift_jis",
                b"\xef\xbb\xbfRen\xe9!"
            ))
            .as_deref(),
            Some("invalid UTF-8 (by its BOM) at byte 6")
        );
    }

    #[test]
    fn not_judged() {
        assert_eq!(
            verdict(&msg("text/html; charset=utf-8", "visitör".as_bytes())),
            None
        );
        assert_eq!(
            verdict(&msg("text/html; charset=latin1", b"\xff\xfe\x00")),
            None
        );
        assert_eq!(verdict(&msg("text/html; charset=klingon", b"\xff")), None);
        assert_eq!(
            verdict(&msg("application/json; charset=utf-8", b"\xff")),
            None
        );
        assert_eq!(verdict(&msg("text/html", b"\xff")), None);
        let mut cut = msg("text/plain; charset=utf-8", b"abc\xc3");
        assert!(verdict(&cut).is_some());
        cut.body.captured_all = false;
        assert_eq!(verdict(&cut), None);
    }
}
