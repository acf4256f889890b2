//! `json-not-utf8`: a JSON message that is not UTF-8 (RFC 8259 §8.1, §11): a charset label
//! other than UTF-8, a UTF-16/32 body (by BOM or the NUL pattern of an ASCII first
//! character), or bytes that are not valid UTF-8. Code, because it inspects the
//! content-decoded bytes.
//!
//! A UTF-8 BOM is a parser question (`invalid-json-body`), not an encoding one. When only
//! part of the body was captured, a sequence cut by the end of the captured bytes is not
//! counted; a message the capture lost part of is judged by its label only.

use crate::rules::Side;
use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
#[cfg(test)]
use crate::http::content;
use crate::rules::syntax::negotiation;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Decoded content read at most (the engine shares a decode of the same size).
#[cfg(test)]
const READ_CAP: usize = 1024 * 1024;

const UTF8_LABELS: &[&str] = &["utf-8", "utf8", "unicode-1-1-utf-8"];

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
    if !mt.is_json() {
        return None;
    }
    if let Some(cs) = mt.param("charset") {
        let label = cs.trim();
        if !UTF8_LABELS.iter().any(|l| l.eq_ignore_ascii_case(label)) {
            let shown: String = label.chars().take(40).collect();
            return Some(format!("labelled charset={shown}"));
        }
    }
    if msg.is_incomplete() {
        return None;
    }
    let (body, capped) = decode()?;
    if let Some(enc) = wide_encoding(&body) {
        return Some(format!("{enc} body"));
    }
    let err = std::str::from_utf8(&body).err()?;
    let partial = capped || !msg.body.captured_all;
    if err.error_len().is_none() && partial {
        return None;
    }
    Some(format!("invalid UTF-8 at byte {}", err.valid_up_to()))
}

/// UTF-16 or UTF-32, by BOM or by the NULs around an ASCII first character.
fn wide_encoding(b: &[u8]) -> Option<&'static str> {
    match b {
        [0, 0, 0xfe, 0xff, ..] => Some("UTF-32BE"),
        [0xff, 0xfe, 0, 0, ..] => Some("UTF-32LE"),
        [0xfe, 0xff, ..] => Some("UTF-16BE"),
        [0xff, 0xfe, ..] => Some("UTF-16LE"),
        [0, 0, 0, x, ..] if *x != 0 => Some("UTF-32BE"),
        [x, 0, 0, 0, ..] if *x != 0 => Some("UTF-32LE"),
        [0, x, ..] if *x != 0 => Some("UTF-16BE"),
        [x, 0, ..] if *x != 0 => Some("UTF-16LE"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchange;

    fn v(ct: &str, body: &str) -> Option<String> {
        let resp = format!(
            "HTTP/1.1 200 OK\nContent-Type: {ct}\nContent-Length: {}\n\n{body}",
            body.len()
        );
        let ex = exchange("GET / HTTP/1.1\nHost: a\n\n", &resp);
        ex.response.as_ref().and_then(verdict)
    }

    #[test]
    fn labels() {
        assert_eq!(
            v("application/json; charset=iso-8859-1", "{}").as_deref(),
            Some("labelled charset=iso-8859-1")
        );
        assert_eq!(v("application/json; charset=\"UTF-8\"", "{}"), None);
        assert_eq!(v("application/problem+json;charset=utf8", "{}"), None);
        assert_eq!(
            v("application/json; charset=utf-16", "").as_deref(),
            Some("labelled charset=utf-16")
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(v("application/json", "{\"name\":\"René\"}"), None);
        assert_eq!(v("application/json", "\u{feff}{}"), None);
        assert_eq!(
            v("application/json", "{\u{0}\"\u{0}").as_deref(),
            Some("UTF-16LE body")
        );
        assert_eq!(
            v("application/json", "\u{0}{\u{0}\"").as_deref(),
            Some("UTF-16BE body")
        );
        assert_eq!(v("application/json", ""), None);
    }

    #[test]
    fn invalid_bytes() {
        // Latin-1 "é" can only be written raw.
        let ex = crate::rules::syntax::testing::exchanges(
            "raw = true\nrequest = \"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n\"\nresponse = \"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 4\\r\\n\\r\\n\\\"\\u00e9\\\"\"\n",
        );
        // The TOML string is UTF-8, so é arrives as C3 A9: valid.
        assert_eq!(ex[0].response.as_ref().and_then(verdict), None);
        let mut resp = ex[0].response.clone().expect("response");
        resp.body.captured = b"{\"n\":\"Ren\xe9\"}".to_vec();
        assert_eq!(verdict(&resp).as_deref(), Some("invalid UTF-8 at byte 9"));
        resp.body.captured = b"{\"n\":\"Ren\xc3".to_vec();
        resp.body.captured_all = false;
        assert_eq!(verdict(&resp), None);
        resp.body.captured_all = true;
        assert_eq!(verdict(&resp).as_deref(), Some("invalid UTF-8 at byte 9"));
    }
}
