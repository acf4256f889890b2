//! `invalid-request-target`: a request-target that is invalid for its form or its method
//! (RFC 9112 §3.2): whitespace or control bytes, a fragment, a broken percent-escape
//! (RFC 3986 §2.1), authority-form outside CONNECT, CONNECT without authority-form, or `*`
//! outside OPTIONS. Deciding the form and scanning escapes needs code.

use super::{CheckInput, CheckKind, Hit};
use crate::http::AnomalyKind;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Bytes of the target shown in evidence.
const SHOW: usize = 200;

/// `scheme "://"` at the start (RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn is_absolute_form(t: &str) -> bool {
    let Some((scheme, _)) = t.split_once("://") else {
        return false;
    };
    let mut b = scheme.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// `uri-host ":" port`, the host a reg-name, IPv4 or bracketed IP literal.
fn is_authority_form(t: &str) -> bool {
    let Some((host, port)) = t.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|ip| {
            !ip.is_empty()
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        })
    } else {
        !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'-' | b'.'
                            | b'_'
                            | b'~'
                            | b'%'
                            | b'!'
                            | b'$'
                            | b'&'
                            | b'\''
                            | b'('
                            | b')'
                            | b'*'
                            | b'+'
                            | b','
                            | b';'
                            | b'='
                    )
            })
    };
    port_ok && host_ok
}

/// The first problem with `target` for `method`, if any.
fn problem(method: &str, target: &str) -> Option<String> {
    let b = target.as_bytes();
    if let Some(i) = b.iter().position(|&c| c <= 0x20 || c == 0x7f) {
        return Some(format!(
            "control or whitespace byte 0x{:02x} at offset {i}",
            b[i]
        ));
    }
    if b.contains(&b'#') {
        return Some("fragment".into());
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Some(format!("bad percent-escape at offset {i}"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let origin = target.starts_with('/');
    let absolute = !origin && is_absolute_form(target);
    let authority = !origin && !absolute && is_authority_form(target);
    if method == "CONNECT" {
        if !authority {
            return Some("CONNECT needs authority-form (host:port)".into());
        }
        return None;
    }
    if authority {
        return Some(format!(
            "authority-form with {method} (only CONNECT uses it)"
        ));
    }
    if target == "*" && method != "OPTIONS" {
        return Some(format!(
            "asterisk-form with {method} (only OPTIONS uses it)"
        ));
    }
    None
}

/// The target for evidence: its first bytes, with control bytes escaped.
fn shown(target: &str) -> String {
    let mut out = String::new();
    for (n, c) in target.chars().enumerate() {
        if n >= SHOW {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(req) = input.request() else {
        return Vec::new();
    };
    if req.has_anomaly(AnomalyKind::InvalidRequestLine) || req.has_anomaly(AnomalyKind::Http09) {
        return Vec::new();
    }
    let (Some(method), Some(target)) = (req.method(), req.target()) else {
        return Vec::new();
    };
    match problem(method, target) {
        Some(p) => vec![Hit::new(format!("{p}: {}", shown(target)))],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires() {
        for (m, t, p) in [
            ("GET", "/a b", "control or whitespace byte 0x20 at offset 2"),
            (
                "GET",
                "/a\tb",
                "control or whitespace byte 0x09 at offset 2",
            ),
            (
                "GET",
                "/a\u{7f}",
                "control or whitespace byte 0x7f at offset 2",
            ),
            ("GET", "/docs#x", "fragment"),
            ("GET", "/q=100%sure", "bad percent-escape at offset 6"),
            ("GET", "/a%2", "bad percent-escape at offset 2"),
            ("GET", "/a%", "bad percent-escape at offset 2"),
            ("GET", "/%G0", "bad percent-escape at offset 1"),
            (
                "GET",
                "example.com:443",
                "authority-form with GET (only CONNECT uses it)",
            ),
            (
                "GET",
                "[::1]:8080",
                "authority-form with GET (only CONNECT uses it)",
            ),
            ("CONNECT", "/", "CONNECT needs authority-form (host:port)"),
            (
                "CONNECT",
                "http://a/",
                "CONNECT needs authority-form (host:port)",
            ),
            (
                "CONNECT",
                "example.com",
                "CONNECT needs authority-form (host:port)",
            ),
            ("GET", "*", "asterisk-form with GET (only OPTIONS uses it)"),
        ] {
            assert_eq!(problem(m, t).as_deref(), Some(p), "{m} {t:?}");
        }
    }

    #[test]
    fn passes() {
        for (m, t) in [
            ("GET", "/"),
            ("GET", "/a%2Fb?x=%20&y=1+2"),
            ("GET", "/a;b=c/@x:y!$&'()*+,="),
            ("POST", "http://www.example/docs/api"),
            ("GET", "https://[::1]:8443/x"),
            ("OPTIONS", "*"),
            ("OPTIONS", "/"),
            ("CONNECT", "example.com:443"),
            ("CONNECT", "[2001:db8::1]:443"),
            ("GET", "/caf\u{e9}"),
            ("GET", "/users:search"),
        ] {
            assert_eq!(problem(m, t), None, "{m} {t:?}");
        }
    }

    #[test]
    fn evidence_is_escaped_and_bounded() {
        assert_eq!(shown("/a b\r"), "/a b\\r");
        assert_eq!(shown(&"a".repeat(300)).chars().count(), SHOW + 1);
    }
}
