//! `unmatched-response`: a final response that answers no outstanding request on its
//! connection (RFC 9112 §9.3: responses answer requests in order). The http stage pairs
//! messages and marks such an exchange with the `response-without-request` anomaly; this
//! check decides which of those are the server's fault rather than the capture's, which
//! needs the connection's history (requests and responses counted so far, damage seen).
//!
//! Not reported: interim 1xx responses; connections that switched protocols (101, or a 2xx
//! to CONNECT); connections where any message so far carries `mid-stream`, `gap`,
//! `truncated` or `conflicting-overlap`, and connections the capture joined mid-stream (no
//! SYN seen: responses to requests sent before the capture began look unmatched), since
//! there the capture, not the server, lost the pairing. Also not reported: the statuses
//! of [`REJECTS_UNREADABLE`], with which servers answer client bytes that the http stage
//! could not read as a request either (no request is made of junk, so the answer looks
//! unmatched), and the 408 servers send on idle connections before closing them.
//!
//! State: a few counters per connection, at most [`MAX_CONNECTIONS`] connections (least
//! recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::capture::FrameRef;
use crate::http::{AnomalyKind, Exchange};
use crate::rules::syntax::stateful::{Bounded, LazySummary, Summary, Tables};
use crate::rules::{ExchangeRef, Side};

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Statuses a server sends for bytes it could not take as a request (a malformed request
/// line, an unknown method, an over-long head), or on an idle connection before closing
/// (408, RFC 9110 §15.5.9). The http stage does not make a request of such bytes either,
/// so these answers look unmatched while answering something the client sent.
const REJECTS_UNREADABLE: &[u16] = &[400, 405, 408, 414, 431, 501, 505];

/// Connections tracked at once.
const MAX_CONNECTIONS: usize = 50_000;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("unmatched-response"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(Unmatched {
        conns: tables.bounded(MAX_CONNECTIONS),
    })
}

#[derive(Default)]
struct ConnState {
    requests: u32,
    responses: u32,
    damaged: bool,
    tunnel: bool,
    /// The last exchange that had a request, for `related`.
    last_request: Option<ExchangeRef>,
}

struct Unmatched {
    conns: Bounded<FrameRef, ConnState>,
}

fn damaged(ex: &Exchange) -> bool {
    ex.request
        .iter()
        .chain(ex.interim.iter())
        .chain(ex.response.iter())
        .flat_map(|m| m.anomalies.iter())
        .chain(ex.anomalies.iter())
        .any(|a| {
            matches!(
                a.kind,
                AnomalyKind::MidStream
                    | AnomalyKind::Gap
                    | AnomalyKind::Truncated
                    | AnomalyKind::ConflictingOverlap
            )
        })
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl StatefulCheck for Unmatched {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        if ex.connection.mid_stream {
            return;
        }
        let state = self
            .conns
            .get_or_insert_with(ex.connection.first_frame, ConnState::default);
        state.damaged |= damaged(ex);
        if ex.request.is_some() {
            state.requests += 1;
            state.last_request = Some(ExchangeRef::of(ex));
        }
        let Some(resp) = &ex.response else { return };
        let status = resp.status().unwrap_or(0);
        let is_final = !(100..200).contains(&status) || status == 101;
        if is_final {
            state.responses += 1;
        }
        let unmatched = ex
            .anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::ResponseWithoutRequest);
        let switched = status == 101
            || (ex.request.as_ref().and_then(|r| r.method()) == Some("CONNECT")
                && (200..300).contains(&status));
        if switched {
            state.tunnel = true;
        }
        if !unmatched
            || !is_final
            || status == 101
            || state.damaged
            || state.tunnel
            || REJECTS_UNREADABLE.contains(&status)
        {
            return;
        }
        let evidence = if state.requests == 0 {
            String::from("response before any request")
        } else {
            let plural = if state.requests == 1 { "" } else { "s" };
            format!(
                "{} response after {} request{plural}",
                ordinal(state.responses),
                state.requests
            )
        };
        out.push(StatefulHit {
            at: ExchangeRef::of(ex),
            message: SUMMARY.render(ex, &evidence),
            evidence,
            severity: None,
            side: Some(Side::Response),
            related: state.last_request.into_iter().collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{exchanges, stateful_evidence};

    fn run(toml: &str) -> Vec<String> {
        stateful_evidence(CHECK, toml)
    }

    #[test]
    fn a_second_response_fires() {
        let hits = run(r#"
[[exchange]]
request = "GET /a HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
[[exchange]]
response = "HTTP/1.1 500 Oops\nContent-Length: 0\n\n"
[[exchange]]
response = "HTTP/1.1 500 Oops\nContent-Length: 0\n\n"
"#);
        assert_eq!(
            hits,
            [
                "2nd response after 1 request",
                "3rd response after 1 request"
            ]
        );
    }

    #[test]
    fn interim_and_rejection_responses_do_not_fire() {
        let hits = run(r#"
[[exchange]]
request = "GET /a HTTP/1.1\nHost: h\n\n"
interim = ["HTTP/1.1 103 Early Hints\nLink: </s.css>\n\n"]
response = "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
[[exchange]]
response = "HTTP/1.1 100 Continue\n\n"
[[exchange]]
response = "HTTP/1.1 400 Bad Request\nContent-Length: 0\n\n"
[[exchange]]
response = "HTTP/1.1 408 Request Timeout\nConnection: close\nContent-Length: 0\n\n"
"#);
        assert!(hits.is_empty(), "{hits:?}");
    }

    #[test]
    fn a_response_first_fires_unless_the_capture_joined_mid_stream() {
        let toml = r#"
[[exchange]]
response = "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
[[exchange]]
request = "GET /a HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
"#;
        assert_eq!(run(toml), ["response before any request"]);
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for mut ex in exchanges(toml) {
            let mut c = (*ex.connection).clone();
            c.mid_stream = true;
            ex.connection = std::sync::Arc::new(c);
            check.observe(&ex, &mut out);
        }
        assert!(out.is_empty());
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(113), "113th");
    }
}
