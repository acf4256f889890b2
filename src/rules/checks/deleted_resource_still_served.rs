//! `deleted-resource-still-served`: after a successful DELETE (RFC 9110 §9.3.5) a GET or
//! HEAD of the same path on the same host still answered 2xx, with no PUT or 201
//! re-creating it in between (often a cache that was not invalidated, RFC 9111 §4.4).
//! Stateful per host (Host header and server address).
//!
//! - A DELETE answered 200 or 204 remembers its path and query (202 Accepted only promises
//!   a later deletion and is ignored).
//! - A PUT of the path answered 2xx, or a 201 whose Location resolves to it, forgets it
//!   when it happened after the DELETE was sent.
//! - A GET or HEAD of the path sent after the DELETE response was complete and answered
//!   2xx (a cached copy with Age included) is reported once, and the path forgotten.
//!   304, 404 and 410 answers are what should happen and are not reported.
//!
//! Exchanges are observed in the order the pipeline releases them; a re-creation observed
//! after a read it preceded (held back on another, idle connection) is not seen in time.
//!
//! State: one entry per deleted (host, path), at most [`MAX_ENTRIES`] overall (least
//! recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::Exchange;
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables, clip, request_url, resolve, secs, status};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Deleted (host, path) pairs remembered at once.
const MAX_ENTRIES: usize = 50_000;

static SUMMARY: LazySummary =
    LazySummary::new(|| Summary::builtin("deleted-resource-still-served"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(DeletedServed {
        keys: Keyer::default(),
        deleted: tables.bounded(MAX_ENTRIES),
    })
}

struct Deleted {
    at: ExchangeRef,
    sent: Timestamp,
    /// When the DELETE response was complete.
    done: Timestamp,
    /// `DELETE /books/7 (204`.
    what: String,
}

struct DeletedServed {
    keys: Keyer,
    deleted: Bounded<u64, Deleted>,
}

impl DeletedServed {
    /// Forgets a deletion that this exchange (complete at `when`) re-created.
    fn recreated(&mut self, host: u64, path: &str, when: Timestamp) {
        let key = self.keys.key((host, path));
        if self.deleted.peek(&key).is_some_and(|d| when >= d.sent) {
            self.deleted.remove(&key);
        }
    }
}

impl StatefulCheck for DeletedServed {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let (Some(req), Some(resp)) = (&ex.request, &ex.response) else {
            return;
        };
        let (Some(method), Some(status)) = (req.method(), status(ex)) else {
            return;
        };
        if !(200..300).contains(&status) {
            return;
        }
        let (Some(host), Some(url)) = (self.keys.host(ex), request_url(ex)) else {
            return;
        };
        match method {
            "DELETE" if matches!(status, 200 | 204) => {
                self.deleted.insert(
                    self.keys.key((host, url.path.as_str())),
                    Deleted {
                        at: ExchangeRef::of(ex),
                        sent: req.first_ts,
                        done: resp.last_ts,
                        what: format!("DELETE {} ({status}", clip(&url.path, 120)),
                    },
                );
                return;
            }
            "GET" | "HEAD" => {}
            _ => {
                if method == "PUT" {
                    self.recreated(host, &url.path, resp.last_ts);
                }
                if status == 201
                    && let Some(target) = resp.header("location").and_then(|l| resolve(&url, l))
                    && target.same_origin(&url)
                {
                    self.recreated(host, &target.path, resp.last_ts);
                }
                return;
            }
        }
        let key = self.keys.key((host, url.path.as_str()));
        let Some(d) = self.deleted.peek(&key) else {
            return;
        };
        if req.first_ts < d.done {
            return;
        }
        let mut evidence = format!("{}, {} s earlier)", d.what, secs(req.first_ts, d.done));
        if let Some(age) = resp.header("age").map(str::trim)
            && age.bytes().any(|b| b != b'0')
            && age.bytes().all(|b| b.is_ascii_digit())
        {
            evidence.push_str(&format!("; served from a cache (Age: {})", clip(age, 12)));
        }
        out.push(StatefulHit {
            at: ExchangeRef::of(ex),
            message: SUMMARY.render(ex, &evidence),
            evidence,
            severity: None,
            side: Some(Side::Response),
            related: vec![d.at],
        });
        self.deleted.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::stateful_evidence;

    fn run(toml: &str) -> Vec<String> {
        stateful_evidence(CHECK, toml)
    }

    fn ex(method: &str, target: &str, status: &str, extra: &str) -> String {
        format!(
            "[[exchange]]\nrequest = \"{method} {target} HTTP/1.1\\nHost: h\\nContent-Length: 0\\n\\n\"\nresponse = \"HTTP/1.1 {status}\\n{extra}Content-Length: 0\\n\\n\"\n"
        )
    }

    #[test]
    fn a_read_after_a_delete_fires_once() {
        let toml = [
            ex("DELETE", "/b/7", "204 No Content", ""),
            ex("GET", "/b/7", "200 OK", "Age: 120\\n"),
            ex("GET", "/b/7", "200 OK", ""),
        ]
        .concat();
        assert_eq!(
            run(&toml),
            ["DELETE /b/7 (204, 1.0 s earlier); served from a cache (Age: 120)"]
        );
    }

    #[test]
    fn recreation_and_other_answers_do_not_fire() {
        let cases = [
            [
                ex("DELETE", "/b/7", "202 Accepted", ""),
                ex("GET", "/b/7", "200 OK", ""),
            ]
            .concat(),
            [
                ex("DELETE", "/b/7", "200 OK", ""),
                ex("POST", "/b", "201 Created", "Location: /b/7\\n"),
                ex("GET", "/b/7", "200 OK", ""),
            ]
            .concat(),
            [
                ex("DELETE", "/b/7", "204 No Content", ""),
                ex("GET", "/b/7", "404 Not Found", ""),
                ex("HEAD", "/b/7?x=1", "200 OK", ""),
                ex("GET", "/b/8", "200 OK", ""),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
    }
}
