//! `created-resource-missing`: a resource announced by 201 Created (at its Location, RFC
//! 9110 §15.3.2, §10.2.2) later answered 404 or 410 to GET or HEAD on the same host, with
//! no DELETE of it in between. Stateful per host (Host header and server address): the
//! creation and the failed read are different exchanges.
//!
//! - A 201 whose Location resolves (RFC 3986 §5, against the request URL) to the same
//!   origin remembers that path and query; a 201 to PUT without Location remembers the
//!   request-target itself. A Location on another origin is not followed.
//! - Any DELETE of a remembered path forgets it, whatever its status.
//! - A GET or HEAD of a remembered path answered 404 or 410, sent after the 201 response
//!   was complete, is reported, and the path forgotten (one finding per creation).
//!   Requests sent before the 201 arrived are not judged.
//!
//! Exchanges are observed in the order the pipeline releases them; a read observed before
//! the 201 it follows (on another, idle connection) is not matched: a miss, never a false
//! finding.
//!
//! State: one entry per created (host, path), at most [`MAX_ENTRIES`] overall (least
//! recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::Exchange;
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables, clip, request_url, resolve, secs, status};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Created (host, path) pairs remembered at once.
const MAX_ENTRIES: usize = 50_000;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("created-resource-missing"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(CreatedMissing {
        keys: Keyer::default(),
        created: tables.bounded(MAX_ENTRIES),
    })
}

struct Created {
    at: ExchangeRef,
    /// When the 201 response was complete.
    done: Timestamp,
    /// `POST /books`.
    by: String,
}

struct CreatedMissing {
    keys: Keyer,
    created: Bounded<u64, Created>,
}

impl StatefulCheck for CreatedMissing {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let (Some(req), Some(method)) = (&ex.request, ex.request.as_ref().and_then(|r| r.method()))
        else {
            return;
        };
        let status = status(ex);
        let interesting = status == Some(201)
            || method == "DELETE"
            || (matches!(method, "GET" | "HEAD") && matches!(status, Some(404 | 410)));
        if !interesting {
            return;
        }
        let (Some(host), Some(url)) = (self.keys.host(ex), request_url(ex)) else {
            return;
        };
        if method == "DELETE" {
            self.created
                .remove(&self.keys.key((host, url.path.as_str())));
            return;
        }
        if let (Some(resp), Some(201)) = (&ex.response, status) {
            let path = match resp.header("location") {
                Some(loc) => match resolve(&url, loc) {
                    Some(target) if target.same_origin(&url) => target.path,
                    _ => return,
                },
                None if method == "PUT" => url.path.clone(),
                None => return,
            };
            self.created.insert(
                self.keys.key((host, path.as_str())),
                Created {
                    at: ExchangeRef::of(ex),
                    done: resp.last_ts,
                    by: format!("{method} {}", clip(&url.path, 120)),
                },
            );
            return;
        }
        let key = self.keys.key((host, url.path.as_str()));
        let Some(c) = self.created.peek(&key) else {
            return;
        };
        if req.first_ts < c.done {
            return;
        }
        let evidence = format!("{} (201, {} s earlier)", c.by, secs(req.first_ts, c.done));
        out.push(StatefulHit {
            at: ExchangeRef::of(ex),
            message: SUMMARY.render(ex, &evidence),
            evidence,
            severity: None,
            side: Some(Side::Response),
            related: vec![c.at],
        });
        self.created.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::stateful_evidence;

    fn run(toml: &str) -> Vec<String> {
        stateful_evidence(CHECK, toml)
    }

    fn created(location: &str) -> String {
        format!(
            "[[exchange]]\nrequest = \"POST /api/books/ HTTP/1.1\\nHost: Api.Example\\nContent-Length: 0\\n\\n\"\nresponse = \"HTTP/1.1 201 Created\\n{location}Content-Length: 0\\n\\n\"\n"
        )
    }

    fn get(target: &str, status: &str, host: &str) -> String {
        format!(
            "[[exchange]]\nrequest = \"GET {target} HTTP/1.1\\nHost: {host}\\n\\n\"\nresponse = \"HTTP/1.1 {status}\\nContent-Length: 0\\n\\n\"\n"
        )
    }

    #[test]
    fn relative_and_absolute_locations_resolve() {
        for loc in [
            "Location: 7\\n",
            "Location: ./7\\n",
            "Location: /api/books/7\\n",
            "Location: http://api.example:80/api/books/7#top\\n",
            "Location: //API.example/api/books/x/../7\\n",
        ] {
            let toml = [
                created(loc),
                get("/api/books/7", "404 Not Found", "api.example"),
            ]
            .concat();
            assert_eq!(
                run(&toml),
                ["POST /api/books/ (201, 1.0 s earlier)"],
                "{loc}"
            );
        }
    }

    #[test]
    fn near_misses() {
        let cases = [
            // another origin in Location
            [
                created("Location: https://api.example/api/books/7\\n"),
                get("/api/books/7", "404 Not Found", "api.example"),
            ]
            .concat(),
            // another Host on the read
            [
                created("Location: /api/books/7\\n"),
                get("/api/books/7", "404 Not Found", "other.example"),
            ]
            .concat(),
            // a 200, then a different path
            [
                created("Location: /api/books/7\\n"),
                get("/api/books/7", "200 OK", "api.example"),
                get("/api/books/7?x", "404 Not Found", "api.example"),
            ]
            .concat(),
            // POST without Location remembers nothing
            [
                created(""),
                get("/api/books/", "404 Not Found", "api.example"),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
    }

    #[test]
    fn put_without_location_and_once_per_creation() {
        let toml = [
            "[[exchange]]\nrequest = \"PUT /k HTTP/1.1\\nHost: h\\nContent-Length: 0\\n\\n\"\nresponse = \"HTTP/1.1 201 Created\\nContent-Length: 0\\n\\n\"\n".to_string(),
            get("/k", "410 Gone", "h"),
            get("/k", "410 Gone", "h"),
        ]
        .concat();
        assert_eq!(run(&toml), ["PUT /k (201, 1.0 s earlier)"]);
    }
}
