//! `not-found-should-be-method-not-allowed`: a method got 404 on a path where another
//! method succeeded in the same capture, so the resource exists and the right answer was
//! 405 with Allow (RFC 9110 §15.5.6, §10.2.1). Stateful per host (Host header and server
//! address) and exact path (query ignored); the 2xx may come before or after the 404.
//!
//! - Successes (2xx) are recorded per method, except OPTIONS (CORS middleware answers it
//!   on any path) and DELETE (after which a 404 is right), with whether a request without
//!   credentials (Authorization, Cookie) succeeded; 404s are kept per method until matched.
//! - A 404 for M is reported once per (M, path) when another method N succeeded on the path
//!   — on the 404's exchange, also when the 2xx arrives later; evidence `GET (200, frame 3)`.
//! - Not reported: a 404 sent after a successful DELETE of the path; a 404 without
//!   credentials when only requests with credentials succeeded (hiding a resource from
//!   anonymous clients is allowed, RFC 9110 §15.5.5); M = HEAD with N = GET (a different
//!   bug).
//!
//! State: per (host, path), at most [`MAX_METHODS`] successful methods, [`MAX_METHODS`]
//! unmatched 404s and [`MAX_REPORTED`] reported methods; at most [`MAX_PATHS`] paths
//! overall (least recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::Exchange;
use crate::rules::syntax::stateful::{Bounded, Keyer, Later, LazySummary, Summary, Tables, clip, frame_label, has_credentials, request_url, status};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// (host, path) pairs remembered at once.
const MAX_PATHS: usize = 50_000;
/// Methods (succeeded, or unmatched 404s) remembered per path.
const MAX_METHODS: usize = 8;
/// Methods already reported, remembered per path.
const MAX_REPORTED: usize = 32;

static SUMMARY: LazySummary =
    LazySummary::new(|| Summary::builtin("not-found-should-be-method-not-allowed"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(NotFound405 {
        keys: Keyer::default(),
        paths: tables.bounded(MAX_PATHS),
    })
}

/// One 2xx answer, for evidence.
#[derive(Clone)]
struct Proof {
    at: ExchangeRef,
    status: u16,
    frame: String,
}

struct Success {
    method: String,
    /// The first 2xx for this method, and the first one without credentials.
    any: Proof,
    anonymous: Option<Proof>,
}

struct Missing {
    method: String,
    at: ExchangeRef,
    sent: Timestamp,
    credentials: bool,
    after_delete: bool,
    message: Later,
}

#[derive(Default)]
struct PathState {
    successes: Vec<Success>,
    missing: Vec<Missing>,
    /// When the latest successful DELETE of the path was sent.
    deleted: Option<Timestamp>,
    reported: Vec<String>,
}

struct NotFound405 {
    keys: Keyer,
    paths: Bounded<u64, PathState>,
}

/// Whether a 2xx to `ok` makes a 404 to `missing` a finding.
fn counts(missing: &str, ok: &str) -> bool {
    missing != ok && !(missing == "HEAD" && ok == "GET")
}

fn evidence(method: &str, p: &Proof) -> String {
    format!("{method} ({}, {})", p.status, p.frame)
}

impl StatefulCheck for NotFound405 {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let Some(req) = &ex.request else { return };
        let (Some(method), Some(status)) = (req.method(), status(ex)) else {
            return;
        };
        let ok = (200..300).contains(&status);
        if !(ok || status == 404) || (ok && method == "OPTIONS") {
            return;
        }
        let (Some(host), Some(url)) = (self.keys.host(ex), request_url(ex)) else {
            return;
        };
        let key = self.keys.key((host, url.path_only()));
        let state = self.paths.get_or_insert_with(key, PathState::default);
        let method = clip(method, 24);
        let credentials = has_credentials(req);
        let sent = req.first_ts;

        if ok && method == "DELETE" {
            state.deleted = Some(state.deleted.map_or(sent, |d| d.max(sent)));
            for m in &mut state.missing {
                // A 404 already seen but sent after this DELETE is explained by it.
                m.after_delete |= m.sent >= sent;
            }
            return;
        }

        if ok {
            let proof = Proof {
                at: ExchangeRef::of(ex),
                status,
                frame: frame_label(ex),
            };
            // Earlier 404s this success explains.
            let mut i = 0;
            while i < state.missing.len() {
                let m = &state.missing[i];
                let eligible = counts(&m.method, &method)
                    && !m.after_delete
                    && (m.credentials || !credentials)
                    && !state.reported.contains(&m.method);
                if eligible {
                    let m = state.missing.remove(i);
                    let ev = evidence(&method, &proof);
                    out.push(StatefulHit {
                        at: m.at,
                        message: m.message.with(&ev),
                        evidence: ev,
                        severity: None,
                        side: Some(Side::Response),
                        related: vec![proof.at],
                    });
                    if state.reported.len() < MAX_REPORTED {
                        state.reported.push(m.method);
                    }
                } else {
                    i += 1;
                }
            }
            match state.successes.iter().position(|s| s.method == method) {
                Some(i) => {
                    let s = &mut state.successes[i];
                    if s.anonymous.is_none() && !credentials {
                        s.anonymous = Some(proof);
                    }
                }
                None if state.successes.len() < MAX_METHODS => state.successes.push(Success {
                    method,
                    anonymous: (!credentials).then(|| proof.clone()),
                    any: proof,
                }),
                None => {}
            }
            return;
        }

        // A 404.
        if state.reported.contains(&method) {
            return;
        }
        let after_delete = state.deleted.is_some_and(|d| sent >= d);
        if after_delete {
            return;
        }
        let proof = state
            .successes
            .iter()
            .filter(|s| counts(&method, &s.method))
            .find_map(|s| {
                let p = if credentials {
                    Some(&s.any)
                } else {
                    s.anonymous.as_ref()
                };
                p.map(|p| (s.method.clone(), p.clone()))
            });
        if let Some((ok_method, p)) = proof {
            let ev = evidence(&ok_method, &p);
            out.push(StatefulHit {
                at: ExchangeRef::of(ex),
                message: SUMMARY.render(ex, &ev),
                evidence: ev,
                severity: None,
                side: Some(Side::Response),
                related: vec![p.at],
            });
            if state.reported.len() < MAX_REPORTED {
                state.reported.push(method);
            }
            return;
        }
        if state.missing.iter().any(|m| m.method == method) {
            return;
        }
        if state.missing.len() >= MAX_METHODS {
            state.missing.remove(0);
        }
        state.missing.push(Missing {
            method,
            at: ExchangeRef::of(ex),
            sent,
            credentials,
            after_delete: false,
            message: SUMMARY.later(ex),
        });
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

    fn ex(method: &str, target: &str, status: &str, extra: &str) -> String {
        format!(
            "[[exchange]]\nrequest = \"{method} {target} HTTP/1.1\\nHost: h\\n{extra}\\n\"\nresponse = \"HTTP/1.1 {status}\\nContent-Length: 0\\n\\n\"\n"
        )
    }

    #[test]
    fn the_2xx_may_come_before_or_after() {
        let before = [
            ex("GET", "/b/7?x=1", "200 OK", ""),
            ex("PATCH", "/b/7", "404 Not Found", ""),
            ex("PATCH", "/b/7", "404 Not Found", ""),
        ]
        .concat();
        let hits = run(&before);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].1, "GET (200, frame 2)");

        let after = [
            ex("PATCH", "/b/7", "404 Not Found", ""),
            ex("GET", "/b/7", "200 OK", ""),
        ]
        .concat();
        let exs = exchanges(&after);
        let hits = run(&after);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, ExchangeRef::of(&exs[0]));
        assert_eq!(hits[0].1, "GET (200, frame 4)");
    }

    #[test]
    fn exceptions() {
        let cases = [
            // HEAD 404 with GET 200
            [
                ex("GET", "/b", "200 OK", ""),
                ex("HEAD", "/b", "404 Not Found", ""),
            ]
            .concat(),
            // OPTIONS and DELETE successes do not prove the path for other methods
            [
                ex("OPTIONS", "/b", "204 No Content", ""),
                ex("GET", "/b", "404 Not Found", ""),
            ]
            .concat(),
            // a 404 after a successful DELETE
            [
                ex("GET", "/b", "200 OK", ""),
                ex("DELETE", "/b", "204 No Content", ""),
                ex("PUT", "/b", "404 Not Found", ""),
            ]
            .concat(),
            // only credentialed requests succeeded; the 404 had none
            [
                ex("GET", "/b", "200 OK", "Authorization: Bearer x\\n"),
                ex("PATCH", "/b", "404 Not Found", ""),
            ]
            .concat(),
            [
                ex("PATCH", "/b", "404 Not Found", ""),
                ex("GET", "/b", "200 OK", "Cookie: s=1\\n"),
            ]
            .concat(),
            // another path
            [
                ex("GET", "/b/7", "200 OK", ""),
                ex("PATCH", "/b/8", "404 Not Found", ""),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
        // A credentialed 404 is explained by a credentialed success.
        let toml = [
            ex("GET", "/b", "200 OK", "Cookie: s=1\\n"),
            ex("PATCH", "/b", "404 Not Found", "Cookie: s=1\\n"),
        ]
        .concat();
        assert_eq!(run(&toml).len(), 1);
    }
}
