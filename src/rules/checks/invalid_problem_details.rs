//! `invalid-problem-details`: an `application/problem+json` body whose standard members
//! have the wrong type or disagree with the response (RFC 9457 §3.1): `status` not an
//! integer or not the response's status, `type` / `instance` not URI references, `title` /
//! `detail` not strings. Code, because it reads the parsed body and checks URI syntax
//! (RFC 3986 §4.1).
//!
//! Missing members (all optional) and extension members of any type are fine. A body that
//! does not parse is left to `invalid-json-body`.

use serde_json::Value;

use crate::rules::Side;
use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
#[cfg(test)]
use crate::http::content;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Decoded content parsed at most (the engine shares a decode of the same size).
#[cfg(test)]
const READ_CAP: usize = 1024 * 1024;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(resp) = input.response() else {
        return Vec::new();
    };
    let side = Side::Response;
    verdict_with(resp, || input.decoded(side))
    .map(Hit::new).into_iter().collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A URI-reference (RFC 3986 §4.1): only URI characters, well-formed percent-escapes, a
/// valid scheme when the first segment has a colon, at most one `#`.
fn is_uri_reference(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
                continue;
            }
            c if c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c) => {}
            _ => return false,
        }
        i += 1;
    }
    if s.matches('#').count() > 1 {
        return false;
    }
    let first_end = s.find(['/', '?', '#']).unwrap_or(s.len());
    if let Some(colon) = s[..first_end].find(':') {
        let scheme = &s[..colon];
        let mut chars = scheme.bytes();
        if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
fn verdict(resp: &Message) -> Option<String> {
    verdict_with(resp, || content::decoded_body(resp, READ_CAP).ok())
}

/// The verdict, with the decoded content supplied by the caller (shared with every other
/// rule that reads it when run by the engine).
fn verdict_with<'m>(
    resp: &'m Message,
    decode: impl FnOnce() -> Option<(std::borrow::Cow<'m, [u8]>, bool)>,
) -> Option<String> {
    let status = resp.status()?;
    if resp.is_incomplete() {
        return None;
    }
    let (body, capped) = decode()?;
    if capped {
        return None;
    }
    let value: Value = serde_json::from_slice(&body).ok()?;
    let Value::Object(obj) = value else {
        return Some(format!("the body is {}, not an object", kind(&value)));
    };
    if let Some(s) = obj.get("status") {
        let int = s
            .as_i64()
            .map(i128::from)
            .or_else(|| s.as_u64().map(i128::from));
        match int {
            Some(n) if n != i128::from(status) => {
                return Some(format!("status {n} but the response is {status}"));
            }
            Some(_) => {}
            None => {
                let shown = match s {
                    Value::String(t) => format!(" ({:?})", t.chars().take(20).collect::<String>()),
                    Value::Number(n) => format!(" ({n})"),
                    _ => String::new(),
                };
                return Some(format!("status is {}{shown}, not an integer", kind(s)));
            }
        }
    }
    for member in ["type", "instance"] {
        match obj.get(member) {
            None => {}
            Some(Value::String(u)) if is_uri_reference(u) => {}
            Some(Value::String(u)) => {
                let shown: String = u.chars().take(80).collect();
                return Some(format!("{member} {shown:?} is not a URI reference"));
            }
            Some(other) => return Some(format!("{member} is {}, not a string", kind(other))),
        }
    }
    for member in ["title", "detail"] {
        match obj.get(member) {
            None | Some(Value::String(_)) => {}
            Some(other) => return Some(format!("{member} is {}, not a string", kind(other))),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchange;

    fn v(status: &str, body: &str) -> Option<String> {
        let resp = format!(
            "HTTP/1.1 {status}\nContent-Type: application/problem+json\nContent-Length: {}\n\n{body}",
            body.len()
        );
        let ex = exchange(
            "POST /orders HTTP/1.1\nHost: a\nContent-Length: 0\n\n",
            &resp,
        );
        ex.response.as_ref().and_then(verdict)
    }

    const S422: &str = "422 Unprocessable Content";

    #[test]
    fn problems() {
        let cases = [
            (
                r#"{"type":"/errors/q","status":400}"#,
                "status 400 but the response is 422",
            ),
            (
                r#"{"status":"422"}"#,
                "status is a string (\"422\"), not an integer",
            ),
            (
                r#"{"status":422.0}"#,
                "status is a number (422.0), not an integer",
            ),
            (r#"{"title":null}"#, "title is null, not a string"),
            (r#"{"detail":{"a":1}}"#, "detail is an object, not a string"),
            (r#"{"type":7}"#, "type is a number, not a string"),
            (
                r#"{"type":"/errors/out of stock"}"#,
                "type \"/errors/out of stock\" is not a URI reference",
            ),
            (
                r#"{"instance":"C:\\orders\\1"}"#,
                "instance \"C:\\\\orders\\\\1\" is not a URI reference",
            ),
            (
                r#"{"type":"/e%zz"}"#,
                "type \"/e%zz\" is not a URI reference",
            ),
            (r#"[1,2]"#, "the body is an array, not an object"),
        ];
        for (body, want) in cases {
            assert_eq!(v(S422, body).as_deref(), Some(want), "{body}");
        }
    }

    #[test]
    fn valid_problems() {
        for body in [
            r#"{"type":"/errors/quantity","title":"Quantity missing","status":422,"field":"quantity"}"#,
            r#"{"type":"about:blank"}"#,
            r#"{"type":"https://example.com/probs/out-of-credit#x","instance":"/account/12345/msgs/abc"}"#,
            r#"{"balance":30,"accounts":["/a/1"],"errors":null}"#,
            r#"{}"#,
            r#"{"title":"#,
        ] {
            assert_eq!(v(S422, body), None, "{body}");
        }
    }

    #[test]
    fn uri_references() {
        assert!(is_uri_reference(""));
        assert!(is_uri_reference("tag:example.com,2025:x"));
        assert!(is_uri_reference("urn:problem:quantity"));
        assert!(!is_uri_reference("1abc:x"));
        assert!(!is_uri_reference("a#b#c"));
        assert!(!is_uri_reference("/é"));
    }
}
