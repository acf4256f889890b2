//! `status-body-mismatch`: a JSON response body that states an HTTP status (`"status"`,
//! `"statusCode"`, or a registered code in `"code"`) different from the status line
//! (RFC 9110 §15; RFC 9457 §3.1.2 for the same idea in problem details). Code, because it
//! reads members of the parsed body.
//!
//! Problem details are left to `invalid-problem-details`, bodies that do not parse to
//! `invalid-json-body`. Floats, booleans, nested values, strings other than three digits
//! and numbers outside 100–599 are not statuses; `"code"` must also be a status code IANA
//! registered, since application error numbers (130, 215 …) often live there.

use serde_json::Value;

use crate::rules::Side;
use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
#[cfg(test)]
use crate::http::content;
use crate::rules::syntax::negotiation;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Decoded content parsed at most (the engine shares a decode of the same size).
#[cfg(test)]
const READ_CAP: usize = 1024 * 1024;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(resp) = input.response() else {
        return Vec::new();
    };
    let side = Side::Response;
    // Decoding and parsing are shared with every other rule that reads this body.
    verdict_with(resp, || input.decoded(side), |_| {
        input.subject.json_value(side).map(std::borrow::Cow::Borrowed)
    })
    .map(Hit::new)
    .into_iter()
    .collect()
}

/// Status codes in the IANA HTTP Status Code Registry (excluding the "(Unused)" 306 and 418).
fn registered(code: u16) -> bool {
    matches!(
        code,
        100..=103
            | 200..=208
            | 226
            | 300..=305
            | 307
            | 308
            | 400..=417
            | 421..=426
            | 428
            | 429
            | 431
            | 451
            | 500..=508
            | 510
            | 511
    )
}

/// The member's value as an HTTP status code.
fn as_status(v: &Value) -> Option<u16> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        _ => return None,
    };
    let n = u16::try_from(n).ok()?;
    (100..=599).contains(&n).then_some(n)
}

#[cfg(test)]
fn verdict(resp: &Message) -> Option<String> {
    verdict_with(
        resp,
        || content::decoded_body(resp, READ_CAP).ok(),
        |b| serde_json::from_slice(b).ok().map(std::borrow::Cow::Owned),
    )
}

/// The verdict, with the decoded content supplied by the caller (shared with every other
/// rule that reads it when run by the engine).
fn verdict_with<'m>(
    resp: &'m Message,
    decode: impl FnOnce() -> Option<(std::borrow::Cow<'m, [u8]>, bool)>,
    parse: impl FnOnce(&[u8]) -> Option<std::borrow::Cow<'m, Value>>,
) -> Option<String> {
    let status = resp.status()?;
    if resp.is_incomplete() {
        return None;
    }
    let mt = negotiation::parse(resp.header("content-type")?)?;
    if !mt.is_json() || mt.subtype == "problem+json" {
        return None;
    }
    let (body, capped) = decode()?;
    if capped {
        return None;
    }
    // Only an object can carry a status member: arrays (the common large bodies) are not
    // parsed at all.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let parsed = parse(&body)?;
    let Value::Object(obj) = &*parsed else {
        return None;
    };
    let (member, claimed) = ["status", "statusCode", "code"].iter().find_map(|m| {
        let code = as_status(obj.get(*m)?)?;
        (*m != "code" || registered(code)).then_some((*m, code))
    })?;
    (claimed != status).then(|| format!("\"{member}\": {claimed}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchange;

    fn v(status: &str, ct: &str, body: &str) -> Option<String> {
        let resp = format!(
            "HTTP/1.1 {status}\nContent-Type: {ct}\nContent-Length: {}\n\n{body}",
            body.len()
        );
        let ex = exchange("GET /b HTTP/1.1\nHost: a\n\n", &resp);
        ex.response.as_ref().and_then(verdict)
    }

    #[test]
    fn mismatches() {
        let j = "application/json";
        assert_eq!(
            v("200 OK", j, r#"{"status":404,"message":"x"}"#).as_deref(),
            Some("\"status\": 404")
        );
        assert_eq!(
            v("200 OK", j, r#"{"statusCode":"500"}"#).as_deref(),
            Some("\"statusCode\": 500")
        );
        assert_eq!(
            v("500 Internal Server Error", j, r#"{"code":400}"#).as_deref(),
            Some("\"code\": 400")
        );
        assert_eq!(
            v("200 OK", j, r#"{"status":"error","code":404}"#).as_deref(),
            Some("\"code\": 404")
        );
    }

    #[test]
    fn not_statuses() {
        let j = "application/json";
        for body in [
            r#"{"status":404}"#,
            r#"{"code":130}"#,
            r#"{"code":215}"#,
            r#"{"status":404.0}"#,
            r#"{"status":true}"#,
            r#"{"status":"error"}"#,
            r#"{"status":"4040"}"#,
            r#"{"error":{"status":500}}"#,
            r#"[{"status":500}]"#,
            r#"{"status":700}"#,
            r#"{"status":"#,
        ] {
            assert_eq!(v("404 Not Found", j, body), None, "{body}");
        }
        assert_eq!(
            v("200 OK", "application/problem+json", r#"{"status":404}"#),
            None
        );
        assert_eq!(v("200 OK", "text/plain", r#"{"status":404}"#), None);
    }
}
