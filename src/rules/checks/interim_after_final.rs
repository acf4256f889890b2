//! `interim-after-final`: a 1xx interim response that arrives after the final response of
//! the request it could belong to and before the client sent another request (RFC 9110
//! §15.2; RFC 9112 §9.3 pairs responses with requests in order). The client will pair it
//! with its next request and every later response on the connection shifts by one. Seeing
//! it needs the connection's history, so this is a stateful check.
//!
//! Two shapes are reported: an exchange with no request whose response (or interim) is a
//! 1xx other than 101, after a completed exchange on the same connection; and an interim 1xx
//! attached to a request whose first byte was sent after the 1xx arrived. Connections where
//! any message shows a gap, truncation or a mid-stream start are not judged from then on.
//!
//! State: per connection (keyed by its first frame) the last completed exchange, at most
//! [`MAX_CONNECTIONS`] connections (fewer when the budget is short, [`Tables`]); beyond
//! that the least recently active are forgotten, and counted.

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::rules::syntax::stateful::{Bounded, Tables};
use crate::capture::FrameRef;
use crate::http::{AnomalyKind, Exchange, Message};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Connections tracked at once.
const MAX_CONNECTIONS: usize = 10_000;
/// Characters of method, path and reason kept for messages.
const CLIP: usize = 200;

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(InterimAfterFinal {
        conns: tables.bounded(MAX_CONNECTIONS),
    })
}

/// The last exchange on a connection that had a request and a final response.
struct Final {
    at: ExchangeRef,
    /// When the final response was complete.
    done: Timestamp,
    method: String,
    path: String,
}

struct ConnState {
    last_final: Option<Final>,
    /// A gap, truncation or mid-stream start was seen: pairing is no longer trustworthy.
    damaged: bool,
}

struct InterimAfterFinal {
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
                AnomalyKind::Gap
                    | AnomalyKind::Truncated
                    | AnomalyKind::MidStream
                    | AnomalyKind::ConflictingOverlap
            )
        })
}

/// A 1xx that the http stage treats as interim (101 switches protocols: it is final).
fn is_interim(m: &Message) -> bool {
    m.status()
        .is_some_and(|s| (100..200).contains(&s) && s != 101)
}

fn clip(s: &str) -> String {
    if s.chars().count() <= CLIP {
        return s.to_string();
    }
    let mut out: String = s.chars().take(CLIP).collect();
    out.push('…');
    out
}

fn status_text(m: &Message) -> String {
    let code = m.status().unwrap_or(0);
    let reason = m.reason().unwrap_or("").trim();
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {}", clip(reason))
    }
}

impl StatefulCheck for InterimAfterFinal {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let state = self
            .conns
            .get_or_insert_with(ex.connection.first_frame, || ConnState {
                last_final: None,
                damaged: false,
            });
        if state.damaged || damaged(ex) {
            state.damaged = true;
            state.last_final = None;
            return;
        }
        if let Some(last) = &state.last_final {
            let late: Vec<&Message> = match &ex.request {
                // Interim responses the pairing gave to a request the client had not sent yet.
                Some(req) => ex
                    .interim
                    .iter()
                    .filter(|m| is_interim(m))
                    .filter(|m| m.first_ts >= last.done && m.first_ts < req.first_ts)
                    .collect(),
                // A 1xx that answered no outstanding request.
                None => ex
                    .interim
                    .iter()
                    .chain(ex.response.iter())
                    .filter(|m| is_interim(m))
                    .filter(|m| m.first_ts >= last.done)
                    .collect(),
            };
            for m in late {
                let evidence = status_text(m);
                out.push(StatefulHit {
                    at: last.at,
                    message: format!(
                        "{evidence} arrived on the connection after the final response to {} {}",
                        last.method, last.path
                    ),
                    evidence,
                    severity: None,
                    side: Some(Side::Response),
                    related: vec![ExchangeRef::of(ex)],
                });
            }
        }
        if let (Some(req), Some(resp)) = (&ex.request, &ex.response)
            && !is_interim(resp)
        {
            let target = req.target().unwrap_or("");
            let path = target.split('?').next().unwrap_or(target);
            state.last_final = Some(Final {
                at: ExchangeRef::of(ex),
                done: resp.last_ts,
                method: clip(req.method().unwrap_or("-")),
                path: clip(if path.is_empty() { "-" } else { path }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;

    fn hits(toml: &str) -> Vec<StatefulHit> {
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for ex in exchanges(toml) {
            check.observe(&ex, &mut out);
        }
        check.finish(&mut out);
        out
    }

    const POST: &str = r#"request = "POST /up HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello"
"#;

    #[test]
    fn late_continue_fires() {
        let h = hits(&format!(
            "[[exchange]]\n{POST}response = \"HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n\"\nat = 0.0\n\
             [[exchange]]\nresponse = \"HTTP/1.1 100 Continue\\n\\n\"\nat = 0.5\n"
        ));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].evidence, "100 Continue");
        assert_eq!(
            h[0].message,
            "100 Continue arrived on the connection after the final response to POST /up"
        );
        assert_eq!(h[0].at.index, 0);
        assert_eq!(h[0].related.len(), 1);
    }

    #[test]
    fn interim_before_final_and_on_other_connections_do_not() {
        let h = hits(&format!(
            "[[exchange]]\n{POST}interim = [\"HTTP/1.1 100 Continue\\n\\n\", \"HTTP/1.1 103 Early Hints\\nLink: </a.css>\\n\\n\"]\n\
             response = \"HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n\"\n\
             [[exchange]]\nrequest = \"GET /s HTTP/1.1\\nHost: a\\n\\n\"\n\
             interim = [\"HTTP/1.1 103 Early Hints\\n\\n\"]\nresponse = \"HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n\"\n\
             [[exchange]]\nconnection = 1\nresponse = \"HTTP/1.1 100 Continue\\n\\n\"\n"
        ));
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn connections_beyond_the_tables_budget_are_forgotten_and_counted() {
        let tables = Tables::within(usize::MAX, 1);
        let mut check = make(&tables);
        let toml: String = (0..200)
            .map(|c| format!("[[exchange]]\nconnection = {c}\n{POST}response = \"HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n\"\n"))
            .collect();
        let mut out = Vec::new();
        for ex in exchanges(&toml) {
            check.observe(&ex, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        let forgotten = tables.forgotten().load(std::sync::atomic::Ordering::Relaxed);
        assert!(forgotten >= 200 - 64, "{forgotten} connections forgotten");
        assert!(tables.allowed() < tables.nominal().max(1));
    }
}
