//! `invalid-set-cookie`: a Set-Cookie line that browsers drop, or whose attribute they
//! ignore (RFC 6265 §4.1.1, §5.1.1, §5.2; RFC 6265bis §5.6). Code, because the cookie date
//! has its own lenient algorithm and the attributes their own rules. One finding per line;
//! the evidence names the cookie, never its value.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::cookie::{SetCookie, parse_cookie_date, parse_set_cookie};
use crate::rules::syntax::token::is_token;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Attributes browsers act on (case-insensitive).
const KNOWN: &[&str] = &[
    "expires",
    "max-age",
    "domain",
    "path",
    "secure",
    "httponly",
    "samesite",
    "partitioned",
    "priority",
];

/// RFC 2965 attributes: left to a rule about obsolete cookie attributes.
const LEGACY: &[&str] = &["version", "comment", "commenturl", "discard", "port"];

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(resp) = input.response() else {
        return Vec::new();
    };
    resp.header_values("set-cookie")
        .filter_map(|line| problem(&parse_set_cookie(line)))
        .map(Hit::new)
        .collect()
}

fn shown(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{:?}", format!("{}…", &s[..i])),
        None => format!("{s:?}"),
    }
}

/// The first problem of one Set-Cookie line.
fn problem(c: &SetCookie<'_>) -> Option<String> {
    let Some(name) = c.name else {
        return Some("no \"=\" in the cookie's name=value pair".to_string());
    };
    if name.is_empty() {
        return Some("the cookie has an empty name".to_string());
    }
    if !is_token(name) {
        return Some(format!(
            "cookie name {} has characters outside token",
            shown(name)
        ));
    }
    for (attr, value) in &c.attributes {
        let lower = attr.to_ascii_lowercase();
        let value = value.unwrap_or("");
        match lower.as_str() {
            "expires" => {
                if let Err(e) = parse_cookie_date(value) {
                    return Some(format!(
                        "{name}: Expires {} is not a cookie date ({e})",
                        shown(value)
                    ));
                }
            }
            "max-age" => {
                if value.is_empty() {
                    return Some(format!("{name}: Max-Age is empty"));
                }
                let digits = value.strip_prefix('-').unwrap_or(value);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Some(format!(
                        "{name}: Max-Age {} is not an integer",
                        shown(value)
                    ));
                }
            }
            "domain" if value.is_empty() => {
                return Some(format!("{name}: Domain is empty"));
            }
            l if KNOWN.contains(&l) || LEGACY.contains(&l) => {}
            _ => {
                return Some(format!("{name}: unknown attribute {}", shown(attr)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Option<String> {
        problem(&parse_set_cookie(line))
    }

    #[test]
    fn valid_lines() {
        for l in [
            "sid=31d4; Expires=Tue, 04-Mar-2025 10:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax",
            "sid=\"quoted\"; Max-Age=-1",
            "sid=; Max-Age=0",
            "sid=a=b=c;",
            " sid = v ; max-age = 60 ; domain = .example.com ",
            "sid=v; Expires=Thu, 01-Jan-70 00:00:01 GMT; Partitioned; Priority=High",
            "sid=v; Version=1; Comment=legacy",
        ] {
            assert_eq!(p(l), None, "{l}");
        }
    }

    #[test]
    fn problems() {
        let cases = [
            (
                "sid=31d4; Max-Age=1h; Path=/",
                "sid: Max-Age \"1h\" is not an integer",
            ),
            ("sid=31d4; Max-Age=", "sid: Max-Age is empty"),
            ("sid=31d4; Max-Age", "sid: Max-Age is empty"),
            ("justavalue", "no \"=\" in the cookie's name=value pair"),
            ("=v", "the cookie has an empty name"),
            (
                "my sid=v",
                "cookie name \"my sid\" has characters outside token",
            ),
            ("sid=v; Domain=", "sid: Domain is empty"),
            ("sid=v; HTTP-Only", "sid: unknown attribute \"HTTP-Only\""),
            (
                "sid=v; Expires=tomorrow",
                "sid: Expires \"tomorrow\" is not a cookie date (no hh:mm:ss time)",
            ),
        ];
        for (l, want) in cases {
            assert_eq!(p(l).as_deref(), Some(want), "{l}");
        }
    }

    #[test]
    fn evidence_never_shows_the_value() {
        let e = p("sid=supersecret; Max-Age=x").unwrap_or_default();
        assert!(!e.contains("supersecret"));
    }
}
