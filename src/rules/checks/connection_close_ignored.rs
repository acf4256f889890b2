//! `connection-close-ignored`: a request sent on a connection that was already closing
//! (RFC 9112 §9.6 `Connection: close`, §9.3 HTTP/1.0 without keep-alive). Stateful per
//! connection because the closing signal and the offending request are different
//! exchanges.
//!
//! The connection becomes closing after a request carrying the `close` token (from the
//! moment its last byte was sent), an HTTP/1.0 request without `keep-alive`, or a final
//! response saying so (from the moment its last byte arrived). The first request whose
//! first byte was sent strictly after that moment is reported, once per connection;
//! requests pipelined before the closing response arrived are not (the server should have
//! answered them). Interim 1xx responses never close.
//!
//! State: one small record per connection, at most [`MAX_CONNECTIONS`] connections (least
//! recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::capture::FrameRef;
use crate::http::{Exchange, Message};
use crate::rules::syntax::stateful::{Bounded, LazySummary, Summary, Tables, clip, closes_connection};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Connections tracked at once.
const MAX_CONNECTIONS: usize = 50_000;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("connection-close-ignored"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(CloseIgnored {
        conns: tables.bounded(MAX_CONNECTIONS),
    })
}

#[derive(Default)]
struct ConnState {
    /// When the connection became closing, what said so, and on which exchange.
    closing: Option<(Timestamp, String, ExchangeRef)>,
    reported: bool,
}

struct CloseIgnored {
    conns: Bounded<FrameRef, ConnState>,
}

/// `GET /books/7`, clipped for evidence.
fn request_line(req: &Message) -> String {
    clip(
        &format!(
            "{} {}",
            req.method().unwrap_or("?"),
            req.target().unwrap_or("?")
        ),
        120,
    )
}

impl StatefulCheck for CloseIgnored {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let id = ex.connection.first_frame;
        let state = self.conns.get_or_insert_with(id, ConnState::default);
        if let (Some(req), Some((since, why, at))) = (&ex.request, &state.closing)
            && !state.reported
            && req.first_ts > *since
        {
            state.reported = true;
            out.push(StatefulHit {
                at: ExchangeRef::of(ex),
                message: SUMMARY.render(ex, why),
                evidence: why.clone(),
                severity: None,
                side: Some(Side::Request),
                related: vec![*at],
            });
        }
        if state.closing.is_some() {
            return;
        }
        if let Some(req) = &ex.request
            && let Some(signal) = closes_connection(req)
        {
            let why = format!("the request {} ({signal})", request_line(req));
            state.closing = Some((req.last_ts, why, ExchangeRef::of(ex)));
        } else if let Some(resp) = &ex.response
            && let Some(signal) = closes_connection(resp)
        {
            let what = match &ex.request {
                Some(req) => format!("the response to {}", request_line(req)),
                None => format!("the response {}", resp.status().unwrap_or(0)),
            };
            state.closing = Some((
                resp.last_ts,
                format!("{what} ({signal})"),
                ExchangeRef::of(ex),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;

    fn run(toml: &str) -> Vec<StatefulHit> {
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for ex in exchanges(toml) {
            check.observe(&ex, &mut out);
        }
        check.finish(&mut out);
        out
    }

    #[test]
    fn a_request_after_a_closing_response_fires_once() {
        let hits = run(r#"
[[exchange]]
request = "GET /a HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 200 OK\nConnection: keep-alive, Close\nContent-Length: 0\n\n"
[[exchange]]
request = "GET /b HTTP/1.1\nHost: h\n\n"
[[exchange]]
request = "GET /c HTTP/1.1\nHost: h\n\n"
"#);
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].evidence,
            "the response to GET /a (Connection: close)"
        );
        assert_eq!(
            hits[0].message,
            "GET /b was sent on a connection that the response to GET /a (Connection: close) had closed"
        );
    }

    #[test]
    fn pipelined_requests_and_http10_keep_alive_do_not_fire() {
        // The second request was sent at the same moment as the first, before the close.
        let hits = run(r#"
[[exchange]]
at = 0.0
request = "GET /a HTTP/1.1\nHost: h\n\n"
[[exchange]]
at = 0.0
request = "GET /b HTTP/1.1\nHost: h\n\n"
[[exchange]]
at = 1.0
response = "HTTP/1.1 200 OK\nConnection: close\nContent-Length: 0\n\n"
[[exchange]]
at = 1.0
response = "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
"#);
        assert!(hits.is_empty(), "{hits:?}");
        let hits = run(r#"
[[exchange]]
request = "GET /a HTTP/1.0\nConnection: Keep-Alive\n\n"
response = "HTTP/1.0 200 OK\nConnection: keep-alive\nContent-Length: 0\n\n"
[[exchange]]
request = "GET /b HTTP/1.0\n\n"
response = "HTTP/1.0 200 OK\nContent-Length: 0\n\n"
"#);
        assert!(hits.is_empty(), "{hits:?}");
    }

    #[test]
    fn the_client_closing_itself_counts() {
        let hits = run(r#"
[[exchange]]
request = "GET /a HTTP/1.0\n\n"
response = "HTTP/1.0 200 OK\nContent-Length: 0\n\n"
[[exchange]]
request = "GET /b HTTP/1.0\n\n"
"#);
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].evidence,
            "the request GET /a (HTTP/1.0 without keep-alive)"
        );
    }
}
