//! `allow-contradicted`: traffic contradicts the Allow list a server sent for a path (RFC
//! 9110 §10.2.1): a method missing from it later succeeded, or a method it listed was later
//! answered 405. Stateful per host (Host header and server address) and exact path (query
//! ignored).
//!
//! - The most recent Allow of a 405, or of a 2xx answer to an OPTIONS that is not a CORS
//!   preflight (no Access-Control-Request-Method), is kept per path with the time its
//!   response was complete. Methods are tokens compared case-sensitively.
//! - A later exchange on the path, sent after that response was complete, is reported when
//!   its method is not listed and it was answered 2xx, or is listed and was answered 405.
//!   Evidence: `Allow: GET, HEAD from OPTIONS /books/7 (frame 4)`. The exchange is judged
//!   against the Allow known before it, and only then may replace it.
//! - Not reported: OPTIONS requests; HEAD when GET is listed; requests sent before the Allow
//!   response was complete; a second finding for the same (path, method).
//!
//! State: per (host, path) the latest Allow (at most [`MAX_METHODS`] methods) and the
//! methods already reported; at most [`MAX_PATHS`] paths overall (least recently used
//! dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::Exchange;
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables, clip, frame_label, request_url, status};
use crate::rules::syntax::token::split_list;
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// (host, path) pairs remembered at once.
const MAX_PATHS: usize = 50_000;
/// Methods kept from one Allow, and methods reported per path.
const MAX_METHODS: usize = 32;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("allow-contradicted"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(AllowContradicted {
        keys: Keyer::default(),
        paths: tables.bounded(MAX_PATHS),
    })
}

struct Allow {
    methods: Vec<String>,
    /// `Allow: GET, HEAD from OPTIONS /books/7 (frame 4)`.
    described: String,
    at: ExchangeRef,
    /// When the response carrying it was complete.
    done: Timestamp,
}

#[derive(Default)]
struct PathState {
    allow: Option<Allow>,
    reported: Vec<String>,
}

struct AllowContradicted {
    keys: Keyer,
    paths: Bounded<u64, PathState>,
}

impl StatefulCheck for AllowContradicted {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let (Some(req), Some(resp)) = (&ex.request, &ex.response) else {
            return;
        };
        let (Some(method), Some(status)) = (req.method(), status(ex)) else {
            return;
        };
        let ok = (200..300).contains(&status);
        if !ok && status != 405 {
            return;
        }
        let (Some(host), Some(url)) = (self.keys.host(ex), request_url(ex)) else {
            return;
        };
        let key = self.keys.key((host, url.path_only()));
        let carries_allow = resp.has_header("allow")
            && (status == 405
                || (method == "OPTIONS" && ok && !req.has_header("access-control-request-method")));
        let state = if carries_allow {
            self.paths.get_or_insert_with(key, PathState::default)
        } else {
            match self.paths.get_mut(&key) {
                Some(s) => s,
                None => return,
            }
        };

        if let Some(allow) = &state.allow
            && method != "OPTIONS"
            && req.first_ts >= allow.done
            && !(method == "HEAD" && allow.methods.iter().any(|m| m == "GET"))
            && !state.reported.iter().any(|m| m == method)
        {
            let listed = allow.methods.iter().any(|m| m == method);
            if (ok && !listed) || (status == 405 && listed) {
                out.push(StatefulHit {
                    at: ExchangeRef::of(ex),
                    message: SUMMARY.render(ex, &allow.described),
                    evidence: allow.described.clone(),
                    severity: None,
                    side: Some(Side::Response),
                    related: vec![allow.at],
                });
                if state.reported.len() < MAX_METHODS {
                    state.reported.push(clip(method, 24));
                }
            }
        }

        if carries_allow {
            let value = resp.combined("allow").unwrap_or_default();
            state.allow = Some(Allow {
                methods: split_list(&value)
                    .take(MAX_METHODS)
                    .map(|m| clip(m, 24))
                    .collect(),
                described: format!(
                    "Allow: {} from {method} {} ({})",
                    clip(&value, 120),
                    clip(url.path_only(), 120),
                    frame_label(ex)
                ),
                at: ExchangeRef::of(ex),
                done: resp.last_ts,
            });
        }
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
            "[[exchange]]\nrequest = \"{method} {target} HTTP/1.1\\nHost: h\\n\\n\"\nresponse = \"HTTP/1.1 {status}\\n{extra}Content-Length: 0\\n\\n\"\n"
        )
    }

    #[test]
    fn both_directions_of_contradiction() {
        let toml = [
            ex(
                "OPTIONS",
                "/b/7",
                "204 No Content",
                "Allow: GET, HEAD, PUT\\n",
            ),
            ex("DELETE", "/b/7?x", "204 No Content", ""),
            ex("DELETE", "/b/7", "204 No Content", ""),
            ex("PUT", "/b/7", "405 Method Not Allowed", "Allow: GET\\n"),
        ]
        .concat();
        assert_eq!(
            run(&toml),
            [
                "Allow: GET, HEAD, PUT from OPTIONS /b/7 (frame 2)",
                "Allow: GET, HEAD, PUT from OPTIONS /b/7 (frame 2)",
            ]
        );
    }

    #[test]
    fn exceptions() {
        let cases = [
            // HEAD when GET is listed, OPTIONS itself
            [
                ex("PATCH", "/b", "405 Method Not Allowed", "Allow: GET\\n"),
                ex("HEAD", "/b", "200 OK", ""),
                ex("OPTIONS", "/b", "200 OK", ""),
            ]
            .concat(),
            // a listed method succeeding agrees
            [
                ex("PATCH", "/b", "405 Method Not Allowed", "Allow: GET\\n"),
                ex("GET", "/b", "200 OK", ""),
            ]
            .concat(),
            // a CORS preflight's Allow is not recorded
            [
                "[[exchange]]\nrequest = \"OPTIONS /b HTTP/1.1\\nHost: h\\nAccess-Control-Request-Method: PUT\\n\\n\"\nresponse = \"HTTP/1.1 204 No Content\\nAllow: GET\\n\\n\"\n".to_string(),
                ex("PUT", "/b", "200 OK", ""),
            ]
            .concat(),
            // a newer Allow agrees
            [
                ex("PATCH", "/b", "405 Method Not Allowed", "Allow: GET\\n"),
                ex("OPTIONS", "/b", "200 OK", "Allow: GET, PUT\\n"),
                ex("PUT", "/b", "200 OK", ""),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
        let lower = [
            ex("PATCH", "/b", "405 Method Not Allowed", "Allow: get\\n"),
            ex("GET", "/b", "200 OK", ""),
        ]
        .concat();
        assert_eq!(run(&lower).len(), 1);
    }
}
