//! `forbidden-trailer-field`: a trailer field that must be in the header section because it
//! controls framing, routing, authentication, request modifiers or response handling (RFC 9110
//! §6.5.1). Trailers are not visible to rule conditions, so this reads `body.trailers`.

use super::{CheckInput, CheckKind, Hit};
use crate::http::AnomalyKind;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

const FORBIDDEN: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "trailer",
    "host",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "expect",
    "max-forwards",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "authorization",
    "proxy-authorization",
    "www-authenticate",
    "proxy-authenticate",
    "cookie",
    "set-cookie",
    "content-type",
    "content-encoding",
    "content-range",
    "cache-control",
    "pragma",
    "expires",
    "age",
    "vary",
    "location",
    "retry-after",
];

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    if msg.body.trailers.is_empty()
        || msg.is_incomplete()
        || msg.has_anomaly(AnomalyKind::ChunkedIncomplete)
        || msg.has_anomaly(AnomalyKind::MalformedChunk)
    {
        return Vec::new();
    }
    let mut names: Vec<&str> = Vec::new();
    for t in &msg.body.trailers {
        let lower = t.name.to_ascii_lowercase();
        if FORBIDDEN.contains(&lower.as_str())
            && !names.iter().any(|n| n.eq_ignore_ascii_case(&t.name))
        {
            names.push(&t.name);
        }
    }
    if names.is_empty() {
        return Vec::new();
    }
    vec![Hit::new(names.join(", "))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn trailers(t: &str) -> Vec<String> {
        let resp =
            format!("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n{t}\r\n");
        evidence(
            CHECK,
            &exchange("GET / HTTP/1.1\nHost: a\n\n", &resp),
            Some(Side::Response),
        )
    }

    #[test]
    fn forbidden_names() {
        assert_eq!(
            trailers(
                "content-length: 3\r\nServer-Timing: a\r\nSet-Cookie: x=1\r\nContent-Length: 3\r\n"
            ),
            ["content-length, Set-Cookie"]
        );
    }

    #[test]
    fn allowed_names() {
        assert!(
            trailers("Server-Timing: db;dur=1\r\nETag: \"x\"\r\ngrpc-status: 0\r\nDigest: a\r\n")
                .is_empty()
        );
        assert!(trailers("").is_empty());
    }
}
