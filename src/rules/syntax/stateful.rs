//! Building blocks of the stateful checks (`scope = "connection" | "host" | "client"`):
//! bounded maps with least-recently-used eviction, the host and client keys the rules
//! group by, request URLs and the resolution of a `Location` reference against them
//! (RFC 3986 §5), list tokens of fields such as `Connection`, and a rule's summary
//! rendered for a finding that may be settled later than the exchange it is about.
//!
//! Memory: every map of a stateful check is a [`Bounded`] from [`Tables`] (see
//! `tables.rs`). Keys of host- and client-scoped maps are 64-bit hashes under a per-process
//! random key ([`Keyer`]), so a key costs 8 bytes whatever the length of the Host header or
//! request-target, and traffic cannot be crafted to collide.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::LazyLock;

use crate::http::{Exchange, Message};
use crate::rules::{BodyCache, RuleSet, Subject, Template};
use crate::time::Timestamp;

pub use super::tables::{Bounded, BoundedList, Tables};

// ---------------------------------------------------------------------------------------
// Keys

/// 64-bit keys for host- and client-scoped maps, under a random per-instance key.
#[derive(Default)]
pub struct Keyer(RandomState);

impl Keyer {
    pub fn key<T: Hash>(&self, parts: T) -> u64 {
        self.0.hash_one(parts)
    }

    /// Host key: the Host header, lower-cased, and the server address (so two virtual
    /// hosts on one server, or one name served by two addresses, are kept apart).
    pub fn host(&self, ex: &Exchange) -> Option<u64> {
        let req = ex.request.as_ref()?;
        let host = req.host().unwrap_or("").trim().to_ascii_lowercase();
        Some(self.key((host, ex.connection.server)))
    }

    /// Client key: the client's address (not its port) and its User-Agent.
    pub fn client(&self, ex: &Exchange) -> Option<u64> {
        let req = ex.request.as_ref()?;
        let ua = req.header("user-agent").unwrap_or("");
        Some(self.key((ex.connection.client.ip(), ua)))
    }
}

// ---------------------------------------------------------------------------------------
// Exchanges

/// The final response's status.
pub fn status(ex: &Exchange) -> Option<u16> {
    ex.response.as_ref().and_then(Message::status)
}

pub fn method(ex: &Exchange) -> Option<&str> {
    ex.request.as_ref().and_then(Message::method)
}

/// Where to find the exchange in the capture, for evidence: `frame 12`.
pub fn frame_label(ex: &Exchange) -> String {
    match ex.request.as_ref().or(ex.response.as_ref()) {
        Some(m) => format!("frame {}", m.first_frame.number),
        None => String::from("an earlier exchange"),
    }
}

/// Seconds from `earlier` to `later`, for evidence (`2.1`).
pub fn secs(later: Timestamp, earlier: Timestamp) -> String {
    format!("{:.1}", later.secs_since(earlier))
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 3));
    crate::rules::template::push_clipped(&mut out, s, max);
    out
}

/// Whether a list field (`Connection`, `Vary`, `Allow`) of the message contains the token,
/// compared case-insensitively.
pub fn has_token(msg: &Message, field: &str, token: &str) -> bool {
    msg.header_values(field)
        .flat_map(super::token::split_list)
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// The signal that makes a connection close after this message (RFC 9112 §9.6, §9.3):
/// the `close` connection option, or HTTP/1.0 without `keep-alive`; described for evidence.
pub fn closes_connection(msg: &Message) -> Option<&'static str> {
    if has_token(msg, "connection", "close") {
        return Some("Connection: close");
    }
    if msg.version() == "HTTP/1.0" && !has_token(msg, "connection", "keep-alive") {
        return Some("HTTP/1.0 without keep-alive");
    }
    None
}

/// The media type of a Content-Type value without parameters, lower-cased
/// (`application/json`); `None` when it is not `type/subtype`.
pub fn media_essence(value: &str) -> Option<String> {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim_matches([' ', '\t']);
    let (t, s) = essence.split_once('/')?;
    let ok = |x: &str| !x.is_empty() && super::token::is_token(x);
    (ok(t) && ok(s)).then(|| essence.to_ascii_lowercase())
}

/// True when the message carries an Authorization or Cookie field (values may already be
/// redacted: only presence matters).
pub fn has_credentials(msg: &Message) -> bool {
    msg.has_header("authorization") || msg.has_header("cookie")
}

// ---------------------------------------------------------------------------------------
// URLs

/// An absolute http(s) URL: scheme, authority (lower-cased, default port removed) and
/// path with query (no fragment).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    pub scheme: &'static str,
    pub authority: String,
    /// Starts with `/`; includes `?query` when there is one.
    pub path: String,
}

impl Url {
    /// The path without query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }

    /// `/b` when `self` is on the same origin as `base`, the whole URL otherwise.
    pub fn relative_to(&self, base: &Url) -> String {
        if self.scheme == base.scheme && self.authority == base.authority {
            self.path.clone()
        } else {
            self.to_string()
        }
    }

    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.authority == other.authority
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)
    }
}

/// Lower-cases an authority and drops userinfo and the scheme's default port; `None` when
/// empty or containing characters no authority has.
pub fn normalize_authority(scheme: &str, authority: &str) -> Option<String> {
    let a = authority.trim_matches([' ', '\t']);
    let a = a.rsplit_once('@').map_or(a, |(_, h)| h);
    if a.is_empty()
        || a.bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'/' | b'?' | b'#' | b'\\'))
    {
        return None;
    }
    let mut a = a.to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    if a.ends_with(default) && !a.ends_with(']') {
        a.truncate(a.len() - default.len());
    } else if a.ends_with(':') {
        a.pop();
    }
    (!a.is_empty()).then_some(a)
}

/// The URL a request asked for: scheme from the transport, authority from the Host field
/// (or the server address without one, or the absolute-form target), path and query from
/// the target. `None` for `*`, authority-form (CONNECT) and unreadable targets.
pub fn request_url(ex: &Exchange) -> Option<Url> {
    let req = ex.request.as_ref()?;
    let target = req.target()?;
    let scheme = if ex.connection.tls { "https" } else { "http" };
    if target.starts_with('/') {
        let authority = match req.host() {
            Some(h) => normalize_authority(scheme, h)?,
            None => normalize_authority(scheme, &ex.connection.server.to_string())?,
        };
        let path = target.split('#').next().unwrap_or(target).to_string();
        return Some(Url {
            scheme,
            authority,
            path,
        });
    }
    let (s, rest) = split_scheme(target)?;
    let s = http_scheme(s)?;
    authority_and_path(s, rest.strip_prefix("//")?)
}

fn http_scheme(s: &str) -> Option<&'static str> {
    if s.eq_ignore_ascii_case("http") {
        Some("http")
    } else if s.eq_ignore_ascii_case("https") {
        Some("https")
    } else {
        None
    }
}

/// `scheme ":" rest` when the reference starts with a scheme (RFC 3986 §3.1).
fn split_scheme(r: &str) -> Option<(&str, &str)> {
    let colon = r.find(':')?;
    let scheme = &r[..colon];
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    if !first.is_ascii_alphabetic()
        || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    Some((scheme, &r[colon + 1..]))
}

fn authority_and_path(scheme: &'static str, rest: &str) -> Option<Url> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = normalize_authority(scheme, &rest[..end])?;
    let tail = &rest[end..];
    let path = if tail.is_empty() || tail.starts_with('?') {
        format!("/{tail}")
    } else {
        let (p, q) = split_query(tail);
        format!("{}{q}", remove_dot_segments(p))
    };
    Some(Url {
        scheme,
        authority,
        path,
    })
}

/// (path, "?query" or "").
fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Resolves a URI reference (a Location value) against a base URL (RFC 3986 §5.2). Only
/// http and https results are returned; the fragment is dropped.
pub fn resolve(base: &Url, reference: &str) -> Option<Url> {
    let r = reference.trim_matches([' ', '\t']);
    let r = r.split('#').next().unwrap_or(r);
    if r.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    if let Some((s, rest)) = split_scheme(r) {
        let s = http_scheme(s)?;
        return authority_and_path(s, rest.strip_prefix("//")?);
    }
    if let Some(rest) = r.strip_prefix("//") {
        return authority_and_path(base.scheme, rest);
    }
    let (base_path, _) = split_query(&base.path);
    let path = if r.is_empty() {
        base.path.clone()
    } else if r.starts_with('/') {
        let (p, q) = split_query(r);
        format!("{}{q}", remove_dot_segments(p))
    } else if r.starts_with('?') {
        format!("{base_path}{r}")
    } else {
        let (p, q) = split_query(r);
        let dir = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
        format!("{}{q}", remove_dot_segments(&format!("{dir}{p}")))
    };
    Some(Url {
        scheme: base.scheme,
        authority: base.authority.clone(),
        path,
    })
}

/// RFC 3986 §5.2.4.
pub fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut out = String::with_capacity(path.len());
    let pop = |out: &mut String| match out.rfind('/') {
        Some(i) => out.truncate(i),
        None => out.clear(),
    };
    while !input.is_empty() {
        if let Some(r) = input.strip_prefix("../") {
            input = r;
        } else if let Some(r) = input.strip_prefix("./") {
            input = r;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            pop(&mut out);
        } else if input == "/.." {
            input = "/";
            pop(&mut out);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            out.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

// ---------------------------------------------------------------------------------------
// Messages

/// A rule's summary template, read from the shipped rule file, rendered for a finding.
pub struct Summary(Template);

/// Stands for the evidence in a message rendered before the evidence is known.
const EVIDENCE_MARK: &str = "\u{0}\u{fffe}evidence\u{fffe}\u{0}";

impl Summary {
    /// The summary of the built-in rule `id` (falls back to `{method} {path}: {evidence}`).
    pub fn builtin(id: &str) -> Summary {
        let file = format!("{id}.toml");
        let text = RuleSet::builtin_files()
            .iter()
            .find(|(path, _)| path.rsplit(['/', '\\']).next() == Some(file.as_str()))
            .and_then(|(_, text)| toml::from_str::<toml::Table>(text).ok())
            .and_then(|t| {
                t.get("summary")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from("{method} {path}: {evidence}"));
        Summary(Template::parse(&text))
    }

    /// The message for a finding on `ex`.
    pub fn render(&self, ex: &Exchange, evidence: &str) -> String {
        self.0.render_with(
            &Subject::new(ex, None, &BodyCache::default()),
            Some(evidence),
        )
    }

    /// The message for a finding on `ex` whose evidence comes later.
    pub fn later(&self, ex: &Exchange) -> Later {
        Later(self.0.render_with(
            &Subject::new(ex, None, &BodyCache::default()),
            Some(EVIDENCE_MARK),
        ))
    }
}

/// A message rendered without its evidence.
#[derive(Clone, Debug)]
pub struct Later(String);

impl Later {
    pub fn with(&self, evidence: &str) -> String {
        self.0.replace(EVIDENCE_MARK, evidence)
    }
}

/// A lazily loaded summary, for `static` use in a check.
pub type LazySummary = LazyLock<Summary>;

#[cfg(test)]
mod tests {
    use super::*;

    fn base(path: &str) -> Url {
        Url {
            scheme: "http",
            authority: "a.example".into(),
            path: path.into(),
        }
    }

    #[test]
    fn resolves_references_as_rfc3986_examples() {
        // RFC 3986 §5.4.1, base http://a/b/c/d;p?q
        let b = Url {
            scheme: "http",
            authority: "a".into(),
            path: "/b/c/d;p?q".into(),
        };
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/../h", "http://a/b/c/h"),
            ("HTTPS://A:443/x", "https://a/x"),
            ("http://user@A:80", "http://a/"),
            ("http://a?x", "http://a/?x"),
        ];
        for (r, want) in cases {
            assert_eq!(
                resolve(&b, r).map(|u| u.to_string()).as_deref(),
                Some(want),
                "{r}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_an_http_url() {
        let b = base("/x");
        for r in [
            "mailto:a@b",
            "javascript:alert(1)",
            "http:/x",
            "http://",
            "/a b",
        ] {
            assert_eq!(resolve(&b, r), None, "{r}");
        }
        assert_eq!(
            normalize_authority("http", "a.example:8080").as_deref(),
            Some("a.example:8080")
        );
        assert_eq!(
            normalize_authority("https", "A.example:443").as_deref(),
            Some("a.example")
        );
        assert_eq!(
            normalize_authority("http", "[::1]:80").as_deref(),
            Some("[::1]")
        );
        assert_eq!(normalize_authority("http", "a/b"), None);
    }

    #[test]
    fn media_essence_and_clip() {
        assert_eq!(
            media_essence("Application/JSON ; charset=utf-8").as_deref(),
            Some("application/json")
        );
        assert_eq!(media_essence("json"), None);
        assert_eq!(media_essence("/x"), None);
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ab", 3), "ab");
    }

    #[test]
    fn summaries_come_from_the_rule_files() {
        let s = Summary::builtin("unmatched-response");
        let ex = crate::rules::syntax::testing::exchange(
            "",
            "HTTP/1.1 500 Internal Server Error\nContent-Length: 0\n\n",
        );
        assert_eq!(
            s.render(&ex, "x"),
            "Response 500 on this connection answers no outstanding request"
        );
        let later = Summary::builtin("no-such-rule").later(&ex);
        assert_eq!(later.with("late"), "- -: late");
    }
}
