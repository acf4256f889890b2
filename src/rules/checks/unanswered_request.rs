//! `unanswered-request`: a request that got no response although the server side of the
//! connection was captured and the connection then ended (RFC 9112 §9.6, §9.3.1). The
//! http stage marks such an exchange with the `unanswered-request` anomaly (only when the
//! server sent at least one byte on the connection and it was not a tunnel); this check
//! adds what needs the connection's history and the capture's end:
//!
//! - not reported when a response on the connection so far carried `gap`, `truncated` or
//!   `conflicting-overlap` (the response may be what the capture lost), on connections the
//!   capture joined mid-stream (pairing there is a guess), nor when the request itself is
//!   incomplete (the server may still be waiting for it);
//! - not reported when an earlier message on the connection announced that it closes
//!   (`Connection: close`, HTTP/1.0 without keep-alive): `connection-close-ignored` covers a
//!   request sent after that, and a server may drop requests pipelined behind it;
//! - a connection closed during the capture (FIN, RST, idle timeout) is reported at once;
//! - a connection still open when the capture ended (the pipeline closes those with
//!   `closed_order == u64::MAX`) is reported at the end, and only when more than
//!   [`END_GRACE_SECS`] passed between the request and the last message of the capture.
//!
//! State: per connection a few fields ([`MAX_CONNECTIONS`], least recently used dropped),
//! and at most [`MAX_PENDING`] requests waiting for the end of the capture (the first ones;
//! later ones are counted as forgotten). Both fewer when the budget is short ([`Tables`]).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::capture::FrameRef;
use crate::http::{AnomalyKind, Exchange};
use crate::rules::syntax::stateful::{Bounded, BoundedList, Later, LazySummary, Summary, Tables, closes_connection, secs};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Connections tracked at once.
const MAX_CONNECTIONS: usize = 50_000;
/// Requests outstanding at the end of the capture kept for the final decision.
const MAX_PENDING: usize = 10_000;
/// A request this close to the end of the capture may simply not have been answered yet.
const END_GRACE_SECS: f64 = 30.0;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("unanswered-request"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(Unanswered {
        conns: tables.bounded(MAX_CONNECTIONS),
        pending: tables.list(MAX_PENDING),
        capture_end: None,
    })
}

#[derive(Default)]
struct ConnState {
    answered: u32,
    server_damaged: bool,
    closing: bool,
}

struct Pending {
    at: ExchangeRef,
    sent: Timestamp,
    message: Later,
}

struct Unanswered {
    conns: Bounded<FrameRef, ConnState>,
    pending: BoundedList<Pending>,
    /// The latest message time seen: where the capture (as far as HTTP goes) ended.
    capture_end: Option<Timestamp>,
}

impl StatefulCheck for Unanswered {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let latest = ex
            .request
            .iter()
            .chain(ex.interim.iter())
            .chain(ex.response.iter())
            .map(|m| m.last_ts)
            .max();
        if let Some(t) = latest {
            self.capture_end = Some(self.capture_end.map_or(t, |e| e.max(t)));
        }
        let state = self
            .conns
            .get_or_insert_with(ex.connection.first_frame, ConnState::default);
        state.server_damaged |= ex
            .interim
            .iter()
            .chain(ex.response.iter())
            .flat_map(|m| m.anomalies.iter())
            .any(|a| a.kind.marks_incomplete() || a.kind == AnomalyKind::ConflictingOverlap);
        let candidate = ex.response.is_none()
            && ex
                .anomalies
                .iter()
                .any(|a| a.kind == AnomalyKind::UnansweredRequest);
        if let Some(req) = &ex.request
            && candidate
            && !state.server_damaged
            && !ex.connection.mid_stream
            && !state.closing
            && !req.is_incomplete()
        {
            if ex.closed_order == u64::MAX {
                self.pending.push(Pending {
                    at: ExchangeRef::of(ex),
                    sent: req.last_ts,
                    message: SUMMARY.later(ex),
                });
            } else {
                let evidence = match state.answered {
                    0 => String::from("the connection ended without a response"),
                    1 => String::from(
                        "the connection ended without a response; 1 earlier request on it was answered",
                    ),
                    n => format!(
                        "the connection ended without a response; {n} earlier requests on it were answered"
                    ),
                };
                out.push(StatefulHit {
                    at: ExchangeRef::of(ex),
                    message: SUMMARY.render(ex, &evidence),
                    evidence,
                    severity: None,
                    side: Some(Side::Request),
                    related: Vec::new(),
                });
            }
        }
        if ex.response.is_some() {
            state.answered += 1;
        }
        state.closing |= ex
            .request
            .iter()
            .chain(ex.response.iter())
            .any(|m| closes_connection(m).is_some());
    }

    fn finish(&mut self, out: &mut Vec<StatefulHit>) {
        let Some(end) = self.capture_end else { return };
        for p in self.pending.drain() {
            if end.secs_since(p.sent) <= END_GRACE_SECS {
                continue;
            }
            let evidence = format!(
                "no response in the {} s from the request to the end of the capture",
                secs(end, p.sent)
            );
            out.push(StatefulHit {
                at: p.at,
                message: p.message.with(&evidence),
                evidence,
                severity: None,
                side: Some(Side::Request),
                related: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;

    fn run(toml: &str, end_of_capture: bool) -> Vec<String> {
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for mut ex in exchanges(toml) {
            if end_of_capture && ex.closed_order != 0 {
                ex.closed_order = u64::MAX;
            }
            check.observe(&ex, &mut out);
        }
        check.finish(&mut out);
        out.into_iter().map(|h| h.evidence).collect()
    }

    const SECOND_UNANSWERED: &str = r#"
[[exchange]]
at = 0.0
request = "GET /a HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
[[exchange]]
at = 1.0
request = "GET /b HTTP/1.1\nHost: h\n\n"
"#;

    #[test]
    fn closed_connection_fires_at_once() {
        assert_eq!(
            run(SECOND_UNANSWERED, false),
            ["the connection ended without a response; 1 earlier request on it was answered"]
        );
    }

    #[test]
    fn open_at_the_end_of_the_capture_needs_30_seconds() {
        assert!(run(SECOND_UNANSWERED, true).is_empty());
        let late = format!(
            "{SECOND_UNANSWERED}
[[exchange]]
connection = 1
at = 40.0
request = \"GET /c HTTP/1.1\\nHost: h\\n\\n\"
response = \"HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n\"
"
        );
        assert_eq!(
            run(&late, true),
            ["no response in the 39.0 s from the request to the end of the capture"]
        );
    }

    #[test]
    fn never_after_a_close() {
        let hits = run(
            r#"
[[exchange]]
request = "GET /a HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 200 OK\nConnection: close\nContent-Length: 0\n\n"
[[exchange]]
request = "GET /b HTTP/1.1\nHost: h\n\n"
"#,
            false,
        );
        assert!(hits.is_empty(), "{hits:?}");
    }
}
