//! `duplicate-unsafe-request`: one client sent the same POST or PATCH (same host, target
//! and body) twice within [`WINDOW_SECS`] without an Idempotency-Key (RFC 9110 §9.2.2,
//! draft-ietf-httpapi-idempotency-key-header). Stateful per client (address and
//! User-Agent), and per connection whatever User-Agent its requests name (one connection is
//! one client): the two requests are different exchanges, often on different connections
//! (a retry after a timeout opens a new one), so they may be observed in either order; the
//! finding always goes on the later of the two.
//!
//! Fed by POST and PATCH requests without `Idempotency-Key` / `X-Idempotency-Key` whose body
//! was captured whole and is not empty. GraphQL queries (a JSON object, or a batch of them,
//! with a `"query"` string that is not a `mutation`) are read-only polling and skipped.
//! The key is a 64-bit hash, under a per-process random key, of (client, host, method,
//! request-target, body): SHA-256 as the rule describes is not available without a new
//! dependency, and a keyed SipHash cannot be steered into collisions by traffic. The window
//! is fixed here (10 s): checks have no configuration of their own yet.
//!
//! State: at most [`MAX_ENTRIES`] keys overall (least recently used dropped first), each
//! with the last request seen.

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::{Exchange, Message, content};
use crate::rules::syntax::stateful::{Bounded, Keyer, Later, LazySummary, Summary, Tables, frame_label, secs, status};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Keys remembered at once.
const MAX_ENTRIES: usize = 50_000;
/// Two identical requests closer than this are a duplicate.
const WINDOW_SECS: f64 = 10.0;
/// Bytes of a JSON body read to tell a GraphQL query.
const GRAPHQL_READ_CAP: usize = 256 * 1024;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("duplicate-unsafe-request"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(Duplicates {
        keys: Keyer::default(),
        seen: tables.bounded(MAX_ENTRIES),
    })
}

struct Seen {
    sent: Timestamp,
    at: ExchangeRef,
    frame: String,
    status: Option<u16>,
    message: Later,
    fired: bool,
}

struct Duplicates {
    keys: Keyer,
    seen: Bounded<u64, Seen>,
}

fn answered(status: Option<u16>) -> String {
    match status {
        Some(s) => format!("first answered {s}"),
        None => String::from("first not answered"),
    }
}

/// A GraphQL query (not a mutation): `{"query": "…"}` or a batch of them.
fn is_graphql_query(req: &Message) -> bool {
    let first = req
        .body
        .captured
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    if !matches!(first, Some(b'{' | b'[')) && !req.has_header("content-encoding") {
        return false;
    }
    let Ok((bytes, false)) = content::decoded_body(req, GRAPHQL_READ_CAP) else {
        return false;
    };
    let query = |v: &serde_json::Value| {
        v.get("query")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|q| !q.trim_start().starts_with("mutation"))
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(items)) => !items.is_empty() && items.iter().all(query),
        Ok(v) => query(&v),
        Err(_) => false,
    }
}

impl StatefulCheck for Duplicates {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let Some(req) = &ex.request else { return };
        if !matches!(req.method(), Some("POST" | "PATCH"))
            || req.has_header("idempotency-key")
            || req.has_header("x-idempotency-key")
            || req.body.size == 0
            || !req.body.captured_all
            || req.is_incomplete()
            || is_graphql_query(req)
        {
            return;
        }
        let (Some(client), Some(host)) = (self.keys.client(ex), self.keys.host(ex)) else {
            return;
        };
        // One connection is one client whatever User-Agent each request names (a client
        // that varies it, or a proxy's connection): the same request twice on it is a
        // duplicate even when the (address, User-Agent) clients differ.
        let c = &ex.connection;
        let connection = self.keys.key((c.client, c.server, c.first_frame.file, c.first_frame.number));
        let what = (
            host,
            req.method().unwrap_or(""),
            req.target().unwrap_or(""),
            req.body.captured.as_slice(),
        );
        let by_client = self.keys.key((client, what));
        let by_connection = self.keys.key(("connection", connection, what));
        let first = self.note(by_client, ex);
        let second = self.note(by_connection, ex);
        // The same pair seen through both keys is one finding.
        if let Some(hit) = first.or(second) {
            out.push(hit);
        }
    }
}

impl Duplicates {
    /// Records the request under `key`; the finding when it repeats one seen under the same
    /// key within the window (once per key).
    fn note(&mut self, key: u64, ex: &Exchange) -> Option<StatefulHit> {
        let req = ex.request.as_ref()?;
        let sent = req.first_ts;
        let this_status = status(ex);
        let Some(prev) = self.seen.get_mut(&key) else {
            self.seen.insert(
                key,
                Seen {
                    sent,
                    at: ExchangeRef::of(ex),
                    frame: frame_label(ex),
                    status: this_status,
                    message: SUMMARY.later(ex),
                    fired: false,
                },
            );
            return None;
        };
        let gap = sent.secs_since(prev.sent);
        if gap.abs() < WINDOW_SECS {
            if prev.fired {
                return None;
            }
            prev.fired = true;
            let hit = if gap >= 0.0 {
                let evidence = format!(
                    "same body {} s after {} ({})",
                    secs(sent, prev.sent),
                    prev.frame,
                    answered(prev.status)
                );
                StatefulHit {
                    at: ExchangeRef::of(ex),
                    message: SUMMARY.render(ex, &evidence),
                    evidence,
                    severity: None,
                    side: Some(Side::Request),
                    related: vec![prev.at],
                }
            } else {
                // Observed out of order: the remembered request is the later one.
                let evidence = format!(
                    "same body {} s after {} ({})",
                    secs(prev.sent, sent),
                    frame_label(ex),
                    answered(this_status)
                );
                StatefulHit {
                    at: prev.at,
                    message: prev.message.with(&evidence),
                    evidence,
                    severity: None,
                    side: Some(Side::Request),
                    related: vec![ExchangeRef::of(ex)],
                }
            };
            return Some(hit);
        }
        if gap > 0.0 {
            // Too far apart: the newer request is the one a future repeat is compared to.
            *prev = Seen {
                sent,
                at: ExchangeRef::of(ex),
                frame: frame_label(ex),
                status: this_status,
                message: SUMMARY.later(ex),
                fired: false,
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;

    fn run(toml: &str) -> Vec<(ExchangeRef, String)> {
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for ex in exchanges(toml) {
            check.observe(&ex, &mut out);
        }
        out.into_iter().map(|h| (h.at, h.evidence)).collect()
    }

    fn post(at: f64, body: &str, extra: &str, conn: u32) -> String {
        format!(
            "[[exchange]]\nat = {at:.1}\nconnection = {conn}\nrequest = \"POST /pay HTTP/1.1\\nHost: h\\n{extra}Content-Length: {}\\n\\n{}\"\n",
            body.len(),
            body.replace('"', "\\\"")
        )
    }

    #[test]
    fn same_body_twice_fires_once() {
        let toml = [
            post(0.0, "{\"a\":1}", "", 0),
            post(2.0, "{\"a\":1}", "", 0),
            post(3.0, "{\"a\":1}", "", 0),
        ]
        .concat();
        let hits = run(&toml);
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0].1.starts_with("same body 2.0 s after frame "),
            "{hits:?}"
        );
        assert!(hits[0].1.ends_with("(first not answered)"), "{hits:?}");
    }

    #[test]
    fn out_of_order_goes_on_the_later_request() {
        // Connection 0's exchange is held until the connection closes at the end; on
        // connection 1 the next response releases the retry first.
        let ok = "HTTP/1.1 504 Gateway Timeout\\nContent-Length: 0\\n\\n";
        let toml = format!(
            "{}response = \"{ok}\"\n{}response = \"{ok}\"\n[[exchange]]\nat = 5.0\nconnection = 1\nrequest = \"GET / HTTP/1.1\\nHost: h\\n\\n\"\nresponse = \"{ok}\"\n",
            post(0.0, "x=1", "", 0),
            post(4.0, "x=1", "", 1)
        );
        let exs = exchanges(&toml);
        let retry = exs
            .iter()
            .filter(|e| crate::rules::syntax::stateful::method(e) == Some("POST"))
            .max_by_key(|e| e.request.as_ref().map(|r| r.first_ts))
            .map(ExchangeRef::of);
        let hits = run(&toml);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(Some(hits[0].0), retry);
        assert_eq!(
            hits[0].1, "same body 4.0 s after frame 2 (first answered 504)",
            "{hits:?}"
        );
    }

    #[test]
    fn near_misses_do_not_fire() {
        let cases = [
            // different bodies
            [post(0.0, "x=1", "", 0), post(1.0, "x=2", "", 0)].concat(),
            // too far apart
            [post(0.0, "x=1", "", 0), post(10.0, "x=1", "", 0)].concat(),
            // idempotency key on the retry
            [
                post(0.0, "x=1", "", 0),
                post(1.0, "x=1", "Idempotency-Key: k\\n", 0),
            ]
            .concat(),
            // GraphQL queries, single and batched
            [
                post(0.0, "{\"query\":\"{ books { id } }\"}", "", 0),
                post(1.0, "{\"query\":\"{ books { id } }\"}", "", 0),
            ]
            .concat(),
            [
                post(0.0, "[{\"query\":\"query A { a }\"}]", "", 0),
                post(1.0, "[{\"query\":\"query A { a }\"}]", "", 0),
            ]
            .concat(),
            // another client: another User-Agent on another connection
            [
                post(0.0, "x=1", "", 0),
                post(1.0, "x=1", "User-Agent: b\\n", 1),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
        let mutation = [
            post(0.0, "{\"query\":\"mutation { pay }\"}", "", 0),
            post(1.0, "{\"query\":\"mutation { pay }\"}", "", 0),
        ]
        .concat();
        assert_eq!(run(&mutation).len(), 1);
    }

    #[test]
    fn one_connection_is_one_client_whatever_its_user_agent() {
        let toml = [
            post(0.0, "x=1", "User-Agent: a\\n", 0),
            post(1.0, "x=1", "User-Agent: b\\n", 0),
            post(2.0, "x=1", "", 0),
        ]
        .concat();
        let hits = run(&toml);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert!(hits[0].1.starts_with("same body 1.0 s after frame "), "{hits:?}");
        // Same User-Agent on two connections: one finding, not one per key.
        let toml = [post(0.0, "x=1", "", 0), post(1.0, "x=1", "", 0)].concat();
        assert_eq!(run(&toml).len(), 1);
    }
}
