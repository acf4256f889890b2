//! `inconsistent-content-type`: one endpoint (method and path template, `GET /books/{id}`)
//! answered its successful requests with different document media types, and none of its
//! responses said `Vary: Accept` (or `Vary: *`) to show the difference comes from content
//! negotiation (RFC 9110 §12.5.5, §8.3). Stateful per host (Host header and server
//! address): the differing responses are different exchanges.
//!
//! - Fed by 2xx responses with content and a Content-Type (not 204, not to HEAD). The media
//!   type is compared without parameters, lower-cased, so a charset difference does not
//!   count.
//! - Only document types are compared: `application/json`, `…+json`, `application/xml`,
//!   `text/xml`, `…+xml`, `text/html`, `text/plain`, `text/csv`,
//!   `application/x-www-form-urlencoded`. Files (images, audio, video, fonts, PDF, archives,
//!   octet-stream …) legitimately differ per resource.
//! - Settled when the input ends (or when the endpoint's entry is evicted), since a later
//!   response with `Vary: Accept` clears the endpoint and the counts cover the whole
//!   capture: one finding per endpoint, reported on the exchange that brought the second
//!   type; evidence `application/json (12x), text/html (1x)`.
//!
//! State: per endpoint at most [`MAX_TYPES`] media types with counts; at most
//! [`MAX_ENDPOINTS`] endpoints overall (least recently used settled and dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::Exchange;
use crate::report::sarif::path_template;
use crate::rules::syntax::stateful::{Bounded, Keyer, Later, LazySummary, Summary, Tables, clip, has_token, media_essence, status};
use crate::rules::{ExchangeRef, Side};

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Endpoints remembered at once.
const MAX_ENDPOINTS: usize = 20_000;
/// Media types counted per endpoint.
const MAX_TYPES: usize = 8;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("inconsistent-content-type"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(InconsistentType {
        keys: Keyer::default(),
        endpoints: tables.keeping_evicted(MAX_ENDPOINTS),
    })
}

struct Seen {
    media: String,
    count: u64,
    first: ExchangeRef,
}

#[derive(Default)]
struct Endpoint {
    types: Vec<Seen>,
    negotiated: bool,
    /// The exchange that brought the second type, with its message.
    second: Option<(ExchangeRef, Later)>,
}

struct InconsistentType {
    keys: Keyer,
    endpoints: Bounded<u64, Endpoint>,
}

/// A type whose differences across one endpoint mean something (not a file type).
fn is_document(media: &str) -> bool {
    let Some((kind, sub)) = media.split_once('/') else {
        return false;
    };
    match kind {
        "application" => {
            matches!(sub, "json" | "xml" | "x-www-form-urlencoded")
                || sub.ends_with("+json")
                || sub.ends_with("+xml")
        }
        "text" => matches!(sub, "html" | "plain" | "csv" | "xml"),
        _ => false,
    }
}

fn settle(e: Endpoint, out: &mut Vec<StatefulHit>) {
    if e.negotiated || e.types.len() < 2 {
        return;
    }
    let Some((at, message)) = e.second else {
        return;
    };
    let mut types = e.types;
    types.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.media.cmp(&b.media)));
    let evidence = types
        .iter()
        .map(|t| format!("{} ({}x)", t.media, t.count))
        .collect::<Vec<_>>()
        .join(", ");
    out.push(StatefulHit {
        at,
        message: message.with(&evidence),
        evidence,
        severity: None,
        side: Some(Side::Response),
        related: types.iter().map(|t| t.first).filter(|r| *r != at).collect(),
    });
}

impl StatefulCheck for InconsistentType {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let (Some(req), Some(resp)) = (&ex.request, &ex.response) else {
            return;
        };
        let (Some(method), Some(status)) = (req.method(), status(ex)) else {
            return;
        };
        if !(200..300).contains(&status) || status == 204 || method == "HEAD" {
            return;
        }
        if resp.body.size == 0 {
            return;
        }
        let Some(media) = resp.header("content-type").and_then(media_essence) else {
            return;
        };
        let (Some(host), Some(target)) = (self.keys.host(ex), req.target()) else {
            return;
        };
        let key = self.keys.key((host, method, path_template(target)));
        let vary = has_token(resp, "vary", "accept") || has_token(resp, "vary", "*");
        let document = is_document(&media);
        let e = if document || vary {
            self.endpoints.get_or_insert_with(key, Endpoint::default)
        } else {
            match self.endpoints.get_mut(&key) {
                Some(e) => e,
                None => return,
            }
        };
        e.negotiated |= vary;
        if document && !e.negotiated {
            match e.types.iter().position(|t| t.media == media) {
                Some(i) => e.types[i].count += 1,
                None if e.types.len() < MAX_TYPES => {
                    e.types.push(Seen {
                        media: clip(&media, 80),
                        count: 1,
                        first: ExchangeRef::of(ex),
                    });
                    if e.types.len() == 2 {
                        e.second = Some((ExchangeRef::of(ex), SUMMARY.later(ex)));
                    }
                }
                None => {}
            }
        }
        if e.negotiated {
            // Nothing to report for this endpoint any more: keep only the flag.
            e.types.clear();
            e.second = None;
        }
        for (_, evicted) in self.endpoints.take_evicted() {
            settle(evicted, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<StatefulHit>) {
        for (_, e) in self.endpoints.drain() {
            settle(e, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;

    fn run(toml: &str) -> Vec<String> {
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for ex in exchanges(toml) {
            check.observe(&ex, &mut out);
        }
        check.finish(&mut out);
        out.into_iter().map(|h| h.evidence).collect()
    }

    fn ex(target: &str, ct: &str, extra: &str) -> String {
        format!(
            "[[exchange]]\nrequest = \"GET {target} HTTP/1.1\\nHost: h\\n\\n\"\nresponse = \"HTTP/1.1 200 OK\\nContent-Type: {ct}\\n{extra}Content-Length: 2\\n\\nab\"\n"
        )
    }

    #[test]
    fn counts_per_template() {
        let toml = [
            ex("/b/1", "application/json", ""),
            ex("/b/2", "application/json; charset=utf-8", ""),
            ex("/b/3", "Text/HTML", ""),
            ex("/b/0123456789abcdef0123", "application/json", ""),
        ]
        .concat();
        assert_eq!(run(&toml), ["application/json (3x), text/html (1x)"]);
    }

    #[test]
    fn near_misses() {
        let cases = [
            // charset only
            [
                ex("/b/1", "text/plain; charset=utf-8", ""),
                ex("/b/2", "text/plain", ""),
            ]
            .concat(),
            // files
            [
                ex("/f/1", "image/svg+xml", ""),
                ex("/f/2", "application/pdf", ""),
            ]
            .concat(),
            // negotiated, even when Vary comes last
            [
                ex("/b/1", "application/json", ""),
                ex("/b/2", "text/csv", ""),
                ex("/b/3", "application/json", "Vary: Origin, accept\\n"),
            ]
            .concat(),
            // different endpoints
            [
                ex("/b/1", "application/json", ""),
                ex("/c/1", "text/html", ""),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
    }
}
