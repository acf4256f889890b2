//! `invalid-content-range`: a `Content-Range` that does not follow RFC 9110 §14.4, names an
//! impossible range, or (in a single-part 206, §15.3.7) describes a different number of
//! bytes than the response carries. The grammar and the arithmetic against the body size
//! need code.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::media_type::essence;
use crate::rules::syntax::range::{ContentRange, parse_content_range};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Characters of the value shown in evidence.
const SHOW: usize = 100;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(resp) = input.response() else {
        return Vec::new();
    };
    let mut lines = resp.header_values("Content-Range");
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return Vec::new();
    };
    let shown: String = value.chars().take(SHOW).collect();
    let range = match parse_content_range(value) {
        Ok(r) => r,
        Err(e) => return vec![Hit::new(format!("{shown}: {e}"))],
    };
    // A single-part 206: the range must describe the content that was sent.
    let head = input.request().and_then(|r| r.method()) == Some("HEAD");
    let multipart = resp
        .header("Content-Type")
        .is_some_and(|ct| essence(ct) == "multipart/byteranges");
    if resp.status() == Some(206)
        && !head
        && !multipart
        && !resp.is_incomplete()
        && let (ContentRange::Bytes { .. }, Some(len)) = (range, range.size())
        && len != resp.body.size
    {
        return vec![Hit::new(format!(
            "{shown}: range is {len} bytes, body {}",
            resp.body.size
        ))];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(method: &str, status: &str, headers: &str, body: &str) -> Vec<String> {
        let ex = exchange(
            &format!("{method} /d HTTP/1.1\nHost: a\nRange: bytes=0-4\n\n"),
            &format!(
                "HTTP/1.1 {status}\n{headers}Content-Length: {}\n\n{body}",
                body.len()
            ),
        );
        evidence(CHECK, &ex, Some(Side::Response))
    }

    #[test]
    fn body_size_is_compared() {
        assert_eq!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Range: bytes 0-5/11\n",
                "hello"
            ),
            ["bytes 0-5/11: range is 6 bytes, body 5"]
        );
        assert!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Range: bytes 0-4/11\n",
                "hello"
            )
            .is_empty()
        );
        assert!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Range: bytes 0-4/*\n",
                "hello"
            )
            .is_empty()
        );
    }

    #[test]
    fn syntax() {
        assert_eq!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Range: 0-4/11\n",
                "hello"
            ),
            ["0-4/11: no range unit"]
        );
        assert_eq!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Range: bytes 0-11/11\n",
                "hello"
            ),
            ["bytes 0-11/11: last position at or beyond the complete length"]
        );
        assert!(
            ev(
                "GET",
                "416 Range Not Satisfiable",
                "Content-Range: bytes */11\n",
                ""
            )
            .is_empty()
        );
        assert!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Range: items 0-1/2\n",
                "hello"
            )
            .is_empty()
        );
    }

    #[test]
    fn multipart_and_several_lines_are_skipped() {
        assert!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Type: multipart/byteranges; boundary=x\nContent-Range: bytes 0-99/200\n",
                "hello"
            )
            .is_empty()
        );
        assert!(
            ev(
                "GET",
                "206 Partial Content",
                "Content-Range: bytes 0-1/2\nContent-Range: nonsense\n",
                "hello"
            )
            .is_empty()
        );
    }
}
