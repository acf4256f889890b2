//! Building blocks of the stateful checks (`scope = "connection" | "host" | "client"`):
//! bounded maps with least-recently-used eviction, the host and client keys the rules
//! group by, request URLs and the resolution of a `Location` reference against them
//! (RFC 3986 §5), list tokens of fields such as `Connection`, and a rule's summary
//! rendered for a finding that may be settled later than the exchange it is about.
//!
//! Memory: every map of a stateful check is a [`Bounded`] with a fixed capacity (scaled
//! down to the engine's share of the memory budget by [`Tables`]); when full,
//! the least recently used eighth of its keys is dropped at once (amortised O(1) per
//! insert). Keys of host- and client-scoped maps are 64-bit hashes under a per-process
//! random key ([`Keyer`]), so a key costs 8 bytes whatever the length of the Host header or
//! request-target, and traffic cannot be crafted to collide.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use crate::http::{Exchange, Message};
use crate::rules::{BodyCache, RuleSet, Subject, Template};
use crate::time::Timestamp;

// ---------------------------------------------------------------------------------------
// Bounded maps

struct Slot<V> {
    value: V,
    created: u64,
    used: u64,
}

/// Heap bytes an entry of a stateful table is assumed to own beyond its inline size (the
/// strings of a remembered message or frame label): an estimate, for [`Tables`].
const ENTRY_HEAP: usize = 128;
/// Fewest keys a table keeps however small the budget.
const MIN_TABLE_KEYS: usize = 64;

/// How the stateful checks get their tables: the engine builds its checks with a
/// [`Tables::measuring`] first, which adds up what every table would hold at its nominal
/// capacity, then again with [`Tables::within`] that total and its budget, which scales
/// every capacity down (never up) so that the tables together fit. A table's cost per key
/// is its map slot (twice, for a hash map's spare capacity) and [`ENTRY_HEAP`].
pub struct Tables {
    scale: f64,
    nominal: std::cell::Cell<usize>,
    allowed: std::cell::Cell<usize>,
    /// Keys every table made here dropped to make room (history shortened), for the run
    /// summary.
    forgotten: Arc<AtomicU64>,
}

impl Tables {
    /// Nominal capacities, counted.
    pub fn measuring() -> Tables {
        Tables {
            scale: 1.0,
            nominal: std::cell::Cell::new(0),
            allowed: std::cell::Cell::new(0),
            forgotten: Arc::default(),
        }
    }

    /// Capacities scaled so that `nominal` bytes of tables fit in `budget`.
    pub fn within(nominal: usize, budget: usize) -> Tables {
        Tables {
            scale: (budget as f64 / nominal.max(1) as f64).min(1.0),
            nominal: std::cell::Cell::new(0),
            allowed: std::cell::Cell::new(0),
            forgotten: Arc::default(),
        }
    }

    /// What the tables asked for so far would hold at their nominal capacities.
    pub fn nominal(&self) -> usize {
        self.nominal.get()
    }

    /// The count of keys the tables made here dropped to make room.
    pub fn forgotten(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.forgotten)
    }

    /// What the tables asked for so far may hold at their scaled capacities.
    pub fn allowed(&self) -> usize {
        self.allowed.get()
    }

    /// Bytes one key of a `Bounded<K, V>` is counted for.
    pub fn key_bytes<K, V>() -> usize {
        2 * (std::mem::size_of::<(K, Slot<V>)>() + 1) + ENTRY_HEAP
    }

    fn cap<K, V>(&self, nominal: usize) -> usize {
        let key = Self::key_bytes::<K, V>();
        let cap =
            ((nominal as f64 * self.scale) as usize).clamp(MIN_TABLE_KEYS.min(nominal), nominal);
        self.nominal.set(self.nominal.get() + nominal * key);
        self.allowed.set(self.allowed.get() + cap * key);
        cap
    }

    /// A [`Bounded`] of at most `nominal` keys, fewer when the budget is short.
    pub fn bounded<K: Hash + Eq + Clone, V>(&self, nominal: usize) -> Bounded<K, V> {
        let mut table = Bounded::new(self.cap::<K, V>(nominal));
        table.forgotten = Some(self.forgotten());
        table
    }

    /// As [`Tables::bounded`], keeping evicted entries ([`Bounded::keeping_evicted`]).
    pub fn keeping_evicted<K: Hash + Eq + Clone, V>(&self, nominal: usize) -> Bounded<K, V> {
        let mut table = Bounded::keeping_evicted(self.cap::<K, V>(nominal));
        table.forgotten = Some(self.forgotten());
        table
    }
}

/// A map with at most `cap` keys: inserting into a full map first drops the least
/// recently used eighth of the keys (by last `get_mut` / insert).
pub struct Bounded<K, V> {
    map: HashMap<K, Slot<V>>,
    cap: usize,
    clock: u64,
    /// Entries dropped to make room, kept for the owner when it asked for them.
    evicted: Option<Vec<(K, V)>>,
    /// Where entries dropped to make room are counted ([`Tables`]).
    forgotten: Option<Arc<AtomicU64>>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    pub fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            cap: cap.max(1),
            clock: 0,
            evicted: None,
            forgotten: None,
        }
    }

    /// A map whose evicted entries are kept until [`Bounded::take_evicted`], for checks
    /// that settle a finding when its evidence leaves memory.
    pub fn keeping_evicted(cap: usize) -> Self {
        let mut m = Self::new(cap);
        m.evicted = Some(Vec::new());
        m
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The value, without counting as a use.
    pub fn peek(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|s| &s.value)
    }

    /// The value, counting as a use.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let now = self.tick();
        self.map.get_mut(k).map(|s| {
            s.used = now;
            &mut s.value
        })
    }

    /// The value for `k`, inserted with `make` when absent (evicting when full).
    pub fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        let now = self.tick();
        if !self.map.contains_key(&k) {
            self.make_room();
        }
        let slot = self.map.entry(k).or_insert_with(|| Slot {
            value: make(),
            created: now,
            used: now,
        });
        slot.used = now;
        &mut slot.value
    }

    pub fn insert(&mut self, k: K, v: V) {
        let now = self.tick();
        if let Some(s) = self.map.get_mut(&k) {
            s.value = v;
            s.used = now;
            return;
        }
        self.make_room();
        self.map.insert(
            k,
            Slot {
                value: v,
                created: now,
                used: now,
            },
        );
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|s| s.value)
    }

    /// Entries evicted since the last call (always empty unless made with
    /// [`Bounded::keeping_evicted`]).
    pub fn take_evicted(&mut self) -> Vec<(K, V)> {
        self.evicted
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Every entry, in the order the keys were first inserted (deterministic output).
    pub fn drain(&mut self) -> Vec<(K, V)> {
        let mut all: Vec<(u64, K, V)> = self
            .map
            .drain()
            .map(|(k, s)| (s.created, k, s.value))
            .collect();
        all.sort_by_key(|(c, _, _)| *c);
        all.into_iter().map(|(_, k, v)| (k, v)).collect()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(|k, s| keep(k, &mut s.value));
    }

    fn make_room(&mut self) {
        if self.map.len() < self.cap {
            return;
        }
        let before = self.map.len();
        self.drop_least_recent();
        if let Some(count) = &self.forgotten {
            count.fetch_add((before - self.map.len()) as u64, Ordering::Relaxed);
        }
    }

    /// Drops the least recently used eighth of the keys.
    fn drop_least_recent(&mut self) {
        let n = (self.cap / 8).max(1);
        let mut ticks: Vec<u64> = self.map.values().map(|s| s.used).collect();
        let (_, cutoff, _) = ticks.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        match self.evicted.as_mut() {
            Some(log) => {
                let old: Vec<K> = self
                    .map
                    .iter()
                    .filter(|(_, s)| s.used <= cutoff)
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut gone: Vec<(u64, K, V)> = old
                    .into_iter()
                    .filter_map(|k| self.map.remove(&k).map(|s| (s.created, k, s.value)))
                    .collect();
                gone.sort_by_key(|(c, _, _)| *c);
                log.extend(gone.into_iter().map(|(_, k, v)| (k, v)));
            }
            None => self.map.retain(|_, s| s.used > cutoff),
        }
    }
}

/// Appends to a per-key history, dropping the oldest items beyond `cap`.
pub fn push_capped<T>(list: &mut std::collections::VecDeque<T>, item: T, cap: usize) {
    list.push_back(item);
    while list.len() > cap {
        list.pop_front();
    }
}

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
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
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
    fn bounded_map_evicts_least_recently_used() {
        let mut m: Bounded<u32, u32> = Bounded::keeping_evicted(8);
        for i in 0..8 {
            m.insert(i, i);
        }
        // Use 0 so that 1 is now the oldest.
        assert!(m.get_mut(&0).is_some());
        m.insert(100, 100);
        assert_eq!(m.len(), 8);
        assert!(m.peek(&0).is_some());
        assert!(m.peek(&1).is_none());
        assert_eq!(m.take_evicted(), vec![(1, 1)]);
        for i in 200..10_000 {
            m.insert(i, i);
        }
        assert!(m.len() <= 8);
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

    #[test]
    fn tables_are_scaled_down_alike_to_fit_their_budget() {
        let measuring = Tables::measuring();
        let a: Bounded<u64, u64> = measuring.bounded(10_000);
        let b: Bounded<u64, String> = measuring.keeping_evicted(1_000);
        assert_eq!((a.cap, b.cap), (10_000, 1_000), "nominal when measuring");
        let nominal = measuring.nominal();
        assert_eq!(
            nominal,
            10_000 * Tables::key_bytes::<u64, u64>() + 1_000 * Tables::key_bytes::<u64, String>()
        );
        // A quarter of the budget: every table a quarter of its keys, none below the floor.
        let tables = Tables::within(nominal, nominal / 4);
        let a: Bounded<u64, u64> = tables.bounded(10_000);
        let b: Bounded<u64, String> = tables.bounded(1_000);
        let tiny: Bounded<u64, u64> = tables.bounded(100);
        assert!((2_490..=2_500).contains(&a.cap), "{}", a.cap);
        assert!((240..=250).contains(&b.cap), "{}", b.cap);
        assert_eq!(tiny.cap, MIN_TABLE_KEYS);
        // A budget beyond the need never grows a table.
        let roomy = Tables::within(nominal, usize::MAX);
        let a: Bounded<u64, u64> = roomy.bounded(10_000);
        assert_eq!(a.cap, 10_000);
    }

    #[test]
    fn the_builtin_stateful_tables_fit_their_share_of_the_default_budget() {
        let Ok(set) = RuleSet::builtin() else {
            panic!("the built-in rules load");
        };
        let measuring = Tables::measuring();
        for rule in &set.rules {
            if let Some(crate::rules::checks::CheckKind::Stateful(make)) = rule.check {
                make(&measuring);
            }
        }
        let nominal = measuring.nominal();
        let share = crate::reassembly::stateful_share(crate::reassembly::DEFAULT_BUDGET);
        println!(
            "stateful tables: {} MiB nominal, {} MiB share",
            nominal >> 20,
            share >> 20
        );
        let tables = Tables::within(nominal, share);
        let mut count = 0;
        for rule in &set.rules {
            if let Some(crate::rules::checks::CheckKind::Stateful(make)) = rule.check {
                make(&tables);
                count += 1;
            }
        }
        assert!(count >= 10, "{count} stateful checks");
        assert_eq!(tables.nominal(), nominal, "the same tables both times");
        // Within the share, but for each table's floor of keys and rounding.
        let slack = 2 * count * MIN_TABLE_KEYS * 1024;
        assert!(
            tables.allowed() <= share + slack,
            "{} > {share}",
            tables.allowed()
        );
        assert!(
            tables.allowed() + slack >= share.min(nominal),
            "the share is used"
        );
    }
}
