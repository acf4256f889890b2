//! `partial-content-without-content-range`: a 206 (Partial Content) that does not say which
//! ranges it carries (RFC 9110 §15.3.7, §14.6): no `Content-Range` on a single-part 206, or a
//! `multipart/byteranges` body without a boundary, with a header-level `Content-Range`, or
//! with a part lacking its own `Content-Range`. Reading the multipart body needs code.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::media_type::{essence, lenient_param};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Finds `needle` in `hay` from `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The 1-based number of the first part of a multipart body whose headers lack
/// Content-Range. Delimiters are `--boundary` at the start of the body or of a line; the
/// close delimiter is `--boundary--`.
fn part_without_content_range(body: &[u8], boundary: &str) -> Option<usize> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // Delimiter positions at line starts.
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(p) = find(body, delim, from) {
        if p == 0 || body[p - 1] == b'\n' {
            starts.push(p);
        }
        from = p + delim.len();
    }
    for (n, &p) in starts.iter().enumerate() {
        let after = p + delim.len();
        if body[after..].starts_with(b"--") {
            break; // close delimiter
        }
        let line_end = match find(body, b"\n", after) {
            Some(e) => e + 1,
            None => return Some(n + 1),
        };
        let part_end = starts.get(n + 1).copied().unwrap_or(body.len());
        let part = &body[line_end.min(part_end)..part_end];
        // Part headers run up to the first empty line.
        let mut has_range = false;
        for line in part.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.len() >= 14 && line[..14].eq_ignore_ascii_case(b"content-range:") {
                has_range = true;
            }
        }
        if !has_range {
            return Some(n + 1);
        }
    }
    None
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(resp) = input.response() else {
        return Vec::new();
    };
    if resp.status() != Some(206) {
        return Vec::new();
    }
    let content_type = resp.combined("Content-Type");
    let multipart = content_type
        .as_deref()
        .is_some_and(|ct| essence(ct) == "multipart/byteranges");
    let has_range = resp.has_header("Content-Range");
    if !multipart {
        return if has_range {
            Vec::new()
        } else {
            vec![Hit::new("no Content-Range")]
        };
    }
    let boundary = content_type
        .as_deref()
        .and_then(|ct| lenient_param(ct, "boundary"))
        .filter(|b| !b.is_empty());
    let Some(boundary) = boundary else {
        return vec![Hit::new("no boundary")];
    };
    if has_range {
        return vec![Hit::new("Content-Range in the header of a multipart 206")];
    }
    let head = input.request().and_then(|r| r.method()) == Some("HEAD");
    if head || !resp.body.captured_all || resp.is_incomplete() || resp.body.captured.is_empty() {
        return Vec::new();
    }
    match part_without_content_range(&resp.body.captured, &boundary) {
        Some(n) => vec![Hit::new(format!("part {n} has no Content-Range"))],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(headers: &str, body: &str) -> Vec<String> {
        let ex = exchange(
            "GET /d HTTP/1.1\nHost: a\nRange: bytes=0-4,6-10\n\n",
            &format!(
                "HTTP/1.1 206 Partial Content\n{headers}Content-Length: {}\n\n{body}",
                body.len()
            ),
        );
        evidence(CHECK, &ex, Some(Side::Response))
    }

    const GOOD: &str = "--b1\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/11\r\n\r\nhello\r\n--b1\r\ncontent-range: bytes 6-10/11\r\n\r\nworld\r\n--b1--\r\n";

    #[test]
    fn single_part() {
        assert_eq!(
            ev("Content-Type: text/plain\n", "hello"),
            ["no Content-Range"]
        );
        assert_eq!(ev("", "hello"), ["no Content-Range"]);
        assert!(ev("Content-Range: bytes 0-4/11\n", "hello").is_empty());
        assert!(ev("Content-Range: garbage\n", "hello").is_empty());
    }

    #[test]
    fn multipart() {
        assert!(ev("Content-Type: multipart/byteranges; boundary=b1\n", GOOD).is_empty());
        assert!(
            ev(
                "Content-Type: Multipart/ByteRanges; boundary=\"b1\"\n",
                GOOD
            )
            .is_empty()
        );
        assert_eq!(
            ev("Content-Type: multipart/byteranges\n", GOOD),
            ["no boundary"]
        );
        assert_eq!(
            ev(
                "Content-Type: multipart/byteranges; boundary=b1\nContent-Range: bytes 0-10/11\n",
                GOOD
            ),
            ["Content-Range in the header of a multipart 206"]
        );
        let missing = GOOD.replace("content-range: bytes 6-10/11\r\n", "");
        assert_eq!(
            ev(
                "Content-Type: multipart/byteranges; boundary=b1\n",
                &missing
            ),
            ["part 2 has no Content-Range"]
        );
        // Preamble and a body mentioning the boundary mid-line.
        let with_preamble = format!("preamble --b1 text\r\n{GOOD}");
        assert!(
            ev(
                "Content-Type: multipart/byteranges; boundary=b1\n",
                &with_preamble
            )
            .is_empty()
        );
    }
}
