//! `invalid-status-code`: a status-code that is not three digits from 100 to 599 (RFC 9110
//! §15, RFC 9112 §4). The parsed status cannot show it (`2000`, `OK` and `099` all lose their
//! shape when parsed), so the check reads the token from the status-line as received.

use super::{CheckInput, CheckKind, Hit};
use crate::http::AnomalyKind;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// The status-code token of a status-line: the first word after the version (runs of
/// spaces between version and code are the status-line's problem, not the code's).
fn status_token(raw_head: &[u8]) -> &[u8] {
    let start = raw_head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(raw_head.len());
    let head = &raw_head[start..];
    let line_end = head
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(head.len());
    let line = &head[..line_end];
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return &[];
    };
    let rest = &line[sp..];
    let from = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let rest = &rest[from..];
    let to = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    &rest[..to]
}

/// Whether a status-code token is not three digits from 100 to 599.
fn is_invalid(token: &[u8]) -> bool {
    if token.len() != 3 || !token.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let code = token
        .iter()
        .fold(0u16, |a, &b| a * 10 + u16::from(b - b'0'));
    !(100..=599).contains(&code)
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(resp) = input.response() else {
        return Vec::new();
    };
    if resp.has_anomaly(AnomalyKind::Http09) || resp.version().eq_ignore_ascii_case("HTTP/0.9") {
        return Vec::new();
    }
    if resp.raw_head.is_empty() {
        // No head as received (a synthetic message): judge the parsed code.
        return match resp.status() {
            Some(s) if !(100..=599).contains(&s) => vec![Hit::new(format!("\"{s}\""))],
            _ => Vec::new(),
        };
    }
    let token = status_token(&resp.raw_head);
    if !is_invalid(token) {
        return Vec::new();
    }
    let shown: String = String::from_utf8_lossy(token).chars().take(40).collect();
    vec![Hit::new(format!("{shown:?}"))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn token(line: &str) -> String {
        String::from_utf8_lossy(status_token(line.as_bytes())).into_owned()
    }

    #[test]
    fn tokens() {
        assert_eq!(token("HTTP/1.1 200 OK\r\nA: b\r\n\r\n"), "200");
        assert_eq!(token("HTTP/1.1 200\r\n\r\n"), "200");
        assert_eq!(token("HTTP/1.1  204 No\r\n"), "204");
        assert_eq!(token("HTTP/1.1 OK\n"), "OK");
        assert_eq!(token("HTTP/1.1\r\n"), "");
        assert_eq!(token("HTTP/1.1 \r\n"), "");
        assert_eq!(token("\r\nHTTP/1.1 2000 X\r\n"), "2000");
    }

    #[test]
    fn verdicts() {
        for bad in [
            "", "20", "2000", "OK", "099", "600", "999", "0", "2a0", "+20",
        ] {
            assert!(is_invalid(bad.as_bytes()), "{bad:?}");
        }
        for good in ["100", "209", "420", "520", "599", "101"] {
            assert!(!is_invalid(good.as_bytes()), "{good:?}");
        }
    }

    #[test]
    fn on_the_wire() {
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\n\n",
            "HTTP/1.1 999 Denied\nContent-Length: 0\n\n",
        );
        assert_eq!(evidence(CHECK, &ex, Some(Side::Response)), ["\"999\""]);
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\n\n",
            "HTTP/1.1 520 Unknown\nContent-Length: 0\n\n",
        );
        assert!(evidence(CHECK, &ex, Some(Side::Response)).is_empty());
    }
}
