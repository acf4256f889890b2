//! Hosts and sites: the host a request was sent to (RFC 9110 §7.2), IP literals, origins
//! (`scheme://host[:port]`, RFC 6454) and an approximation of the registrable domain
//! ("site") used to tell related origins from unrelated ones.

use std::net::IpAddr;

use crate::http::Message;

/// Strips a port from `host[:port]` / `[v6][:port]`; the brackets of an IPv6 literal stay.
pub fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// The host a request was sent to, without port, lower-cased, trailing dot removed: the
/// authority of an absolute-form target, else the Host field. `None` when neither names one.
pub fn request_host(req: &Message) -> Option<String> {
    let target = req.target().unwrap_or("");
    let from_target = ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        if !head.eq_ignore_ascii_case(scheme) {
            return None;
        }
        let rest = &target[scheme.len()..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        Some(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
    });
    let authority = match from_target {
        Some(a) => a,
        None => req.host()?,
    };
    let host = strip_port(authority.trim()).trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// An IPv4 or IPv6 address literal (IPv6 with or without brackets).
pub fn is_ip_literal(host: &str) -> bool {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse::<IpAddr>().is_ok()
}

/// The host of a serialized origin (`https://app.example:8443` → `app.example`),
/// lower-cased; `None` for `null` or anything that is not `scheme://host[:port]`.
pub fn origin_host(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        || rest.contains(['/', '?', '#', '@'])
    {
        return None;
    }
    let host = strip_port(rest).trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Public suffixes of more than one label that are common in traffic: country-code
/// second-level domains and hosting platforms whose customers each get a subdomain. Not the
/// full Public Suffix List (no dependency carries it); any other name falls back to its
/// last two labels.
const MULTI_LABEL_SUFFIXES: &[&str] = &[
    "co.uk",
    "org.uk",
    "ac.uk",
    "gov.uk",
    "ltd.uk",
    "plc.uk",
    "me.uk",
    "net.uk",
    "com.au",
    "net.au",
    "org.au",
    "edu.au",
    "gov.au",
    "co.nz",
    "org.nz",
    "govt.nz",
    "co.jp",
    "ne.jp",
    "or.jp",
    "ac.jp",
    "go.jp",
    "co.kr",
    "or.kr",
    "com.cn",
    "net.cn",
    "org.cn",
    "gov.cn",
    "com.hk",
    "com.tw",
    "com.sg",
    "com.my",
    "co.id",
    "co.in",
    "net.in",
    "org.in",
    "co.za",
    "com.br",
    "net.br",
    "org.br",
    "gov.br",
    "com.ar",
    "com.mx",
    "com.tr",
    "com.ua",
    "co.il",
    "com.pl",
    "com.es",
    "co.th",
    "com.vn",
    "com.ph",
    "com.pk",
    "com.eg",
    "com.sa",
    "com.ng",
    "github.io",
    "gitlab.io",
    "herokuapp.com",
    "vercel.app",
    "netlify.app",
    "pages.dev",
    "workers.dev",
    "web.app",
    "firebaseapp.com",
    "appspot.com",
    "blogspot.com",
    "azurewebsites.net",
    "cloudfront.net",
    "amazonaws.com",
    "onrender.com",
    "fly.dev",
    "ngrok.io",
    "ngrok-free.app",
    "glitch.me",
    "repl.co",
    "surge.sh",
];

/// The registrable domain (eTLD+1) of a lower-case host, approximated: IP literals are their
/// own site; a name under one of [`MULTI_LABEL_SUFFIXES`] keeps one label more than the
/// suffix; any other name keeps its last two labels.
pub fn registrable_domain(host: &str) -> String {
    if is_ip_literal(host) {
        return host.to_string();
    }
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let keep = match MULTI_LABEL_SUFFIXES.iter().find(|s| {
        host.len() > s.len()
            && host.ends_with(*s)
            && host.as_bytes()[host.len() - s.len() - 1] == b'.'
    }) {
        Some(s) => s.split('.').count() + 1,
        None => 2,
    };
    let start = labels.len().saturating_sub(keep);
    labels[start..].join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_literals() {
        assert_eq!(strip_port("www.example:8080"), "www.example");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("www.example"), "www.example");
        assert!(is_ip_literal("192.0.2.1") && is_ip_literal("[2001:db8::1]"));
        assert!(!is_ip_literal("example.com"));
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_host("https://App.Example:8443").as_deref(),
            Some("app.example")
        );
        assert_eq!(origin_host("null"), None);
        assert_eq!(origin_host("https://a.example/path"), None);
        assert_eq!(origin_host("https://"), None);
    }

    #[test]
    fn sites() {
        assert_eq!(registrable_domain("admin.example.com"), "example.com");
        assert_eq!(registrable_domain("example.com"), "example.com");
        assert_eq!(registrable_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("me.github.io"), "me.github.io");
        assert_eq!(registrable_domain("localhost"), "localhost");
        assert_eq!(registrable_domain("192.0.2.1"), "192.0.2.1");
    }
}
