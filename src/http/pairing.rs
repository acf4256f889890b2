//! Pairing: requests waiting for answers, in order, and which one a response answers —
//! in order without loss, bounded by TCP acknowledgements after lost bytes. Exchanges are
//! released in order, the last one held until the server's next bytes confirm where its
//! response ended.

use std::collections::VecDeque;
use std::sync::Arc;

use super::body::RequestContext;
use super::message::{Anomaly, AnomalyKind, Connection, Exchange, Interims, Message, Pos};

/// A request-side hint for parsing the answer, plus the exchange being assembled.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) ctx: RequestContext,
    pub(super) request: Option<Message>,
    pub(super) request_done: bool,
    pub(super) interim: Interims,
    pub(super) response: Option<Message>,
    /// Where the request starts in the client's stream.
    pub(super) start: u64,
    /// How much of the server's stream the client had received when it sent the request:
    /// the response to it starts at or after that offset.
    pub(super) ack: Option<u64>,
    /// The response was in bytes the capture lost.
    pub(super) lost: bool,
}

/// What the response being parsed answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// The oldest request still waiting.
    Oldest,
    /// A request the capture lost.
    LostRequest,
}

/// Where a message starts in its stream and what its first segment acknowledged.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StreamMark {
    pub(super) offset: u64,
    pub(super) ack: Option<u64>,
}

/// Client-stream ranges lost by the capture that pairing keeps (the oldest go first).
pub(super) const MAX_CLIENT_GAPS: usize = 64;

/// Requests waiting for answers, in order.
#[derive(Debug)]
pub(super) struct Pairing {
    pub(super) connection: Arc<Connection>,
    pub(super) slots: VecDeque<Slot>,
    /// The last complete exchange, held until the server's next bytes confirm where its
    /// response ended.
    pub(super) held: Option<Exchange>,
    pub(super) next_index: u32,
    pub(super) tunnel: bool,
    /// Set while a request is answered: a CONNECT or Upgrade request was sent, so
    /// non-HTTP bytes from the client mean the tunnel started.
    pub(super) client_may_tunnel: bool,
    pub(super) server_seen: bool,
    /// Requests refused a slot because [`MAX_OUTSTANDING`] were already waiting.
    pub(super) over_cap: u64,
    /// The `too-many-outstanding-requests` anomaly was put on an exchange.
    pub(super) over_cap_reported: bool,
    /// Bytes of the server's stream were lost since the last response began (how many):
    /// whole responses may be among them.
    pub(super) server_lost: u64,
    /// Client-stream ranges the capture lost while no request was being read: requests
    /// may be among them.
    pub(super) client_gaps: VecDeque<(u64, u64)>,
    /// Decided when the response's head was parsed.
    pub(super) answer: Option<Answer>,
    /// Slots at the front that have their final response or lost it: `slots[answered]` is
    /// the oldest request still waiting (kept so that pairing is O(1) per message).
    pub(super) answered: usize,
    /// Slots at the back whose request is still being read.
    pub(super) unread: usize,
}

/// Requests looked at, at most, when deciding which one a response after lost bytes
/// answers.
pub(super) const MAX_PAIRING_SCAN: usize = 1024;

/// Requests that may wait for responses on one connection (pipelining). Past it, requests
/// are counted but not paired: memory stays bounded under a pipelining flood.
pub const MAX_OUTSTANDING: usize = 1000;

impl Pairing {
    pub(super) fn new_exchange(&mut self) -> Exchange {
        let index = self.next_index;
        self.next_index += 1;
        let mut anomalies = Vec::new();
        if self.over_cap > 0 && !self.over_cap_reported {
            self.over_cap_reported = true;
            anomalies.push(Anomaly::new(
                AnomalyKind::TooManyOutstandingRequests,
                format!(
                    "more than {MAX_OUTSTANDING} requests waited for responses on this \
                     connection: later ones are counted, not paired"
                ),
            ));
        }
        if index == 0 && self.connection.mid_stream {
            anomalies.push(Anomaly::new(
                AnomalyKind::MidStream,
                "the capture began after this connection started",
            ));
        }
        Exchange {
            connection: Arc::clone(&self.connection),
            index,
            request: None,
            interim: Vec::new(),
            response: None,
            anomalies,
            closed_order: 0,
            stream_id: None,
            source: crate::http::ExchangeSource::Wire,
        }
    }

    /// A request starts. The one place the cap on outstanding requests is checked: a
    /// request refused here has no slot (and is not counted as unread), so its message is
    /// dropped when complete.
    pub(super) fn request_head(&mut self, ctx: RequestContext, mark: StreamMark) {
        if self.slots.len() >= MAX_OUTSTANDING {
            self.over_cap += 1;
            return;
        }
        self.unread += 1;
        self.slots.push_back(Slot {
            ctx,
            request: None,
            request_done: false,
            interim: Interims::default(),
            response: None,
            start: mark.offset,
            ack: mark.ack,
            lost: false,
        });
    }

    /// Decides what a response starting at `mark` (server stream) answers, before its
    /// head is interpreted (a HEAD request changes its framing).
    ///
    /// Without loss it is the oldest request still waiting (HTTP/1.1 answers in order).
    /// After server bytes were lost, whole responses may have been among them; TCP
    /// acknowledgements bound which request this one can answer: the server had received
    /// the request (its start lies before the response's acknowledgement number), and the
    /// client had not yet received this response when it sent the request (the request's
    /// acknowledgement number is at or before the response's start). Of the requests
    /// within both bounds, the first of the last group sent with the same acknowledgement
    /// is taken (one group per round trip; pipelined requests share one, and which of
    /// them lost its response cannot be told). Requests skipped get `response-lost-in-gap`.
    pub(super) fn pair_response(
        &mut self,
        mark: StreamMark,
        out: &mut Vec<Exchange>,
    ) -> RequestContext {
        let lost_bytes = std::mem::take(&mut self.server_lost);
        let first = (self.answered < self.slots.len()).then_some(self.answered);
        let Some(ack) = mark.ack else {
            self.answer = Some(Answer::Oldest);
            return self.response_context();
        };
        let received = |s: &Slot| s.start < ack;
        let Some(first) = first.filter(|&i| received(&self.slots[i])) else {
            // No waiting request had reached the server when it sent this response.
            let lost_request = self.client_gaps.iter().any(|&(start, _)| start < ack);
            self.client_gaps.retain(|&(_, end)| end > ack);
            self.answer = Some(if lost_request {
                Answer::LostRequest
            } else {
                Answer::Oldest
            });
            return RequestContext::default();
        };
        let mut chosen = first;
        if lost_bytes > 0 {
            let mut group_ack = None;
            for (i, slot) in self
                .slots
                .iter()
                .enumerate()
                .skip(first)
                .take(MAX_PAIRING_SCAN)
            {
                if slot.response.is_some() || slot.lost || !received(slot) {
                    break;
                }
                let Some(sent_after) = slot.ack else { break };
                if sent_after > mark.offset {
                    break;
                }
                if group_ack.is_none_or(|g| sent_after > g) {
                    chosen = i;
                    group_ack = Some(sent_after);
                }
                if !slot.request_done {
                    // A request still being read is not skipped over.
                    break;
                }
            }
            for slot in self.slots.range_mut(first..chosen) {
                slot.lost = true;
            }
            self.answered = chosen;
            if chosen > first {
                self.release_ready(out);
            }
        }
        self.answer = Some(Answer::Oldest);
        self.response_context()
    }

    pub(super) fn request_done(&mut self, msg: Message, out: &mut Vec<Exchange>) {
        if self.unread > 0 {
            let at = self.slots.len() - self.unread;
            if let Some(slot) = self.slots.get_mut(at) {
                slot.request = Some(msg);
                slot.request_done = true;
                self.unread -= 1;
            }
        }
        self.release_ready(out);
    }

    /// What the response about to be parsed answers.
    pub(super) fn response_context(&self) -> RequestContext {
        self.slots
            .get(self.answered)
            .map_or(RequestContext::default(), |s| s.ctx)
    }

    pub(super) fn response_done(
        &mut self,
        msg: Message,
        mark: StreamMark,
        out: &mut Vec<Exchange>,
    ) {
        let answer = match self.answer.take() {
            Some(a) => a,
            None => {
                // A head that never finished (gap, cut, end): decided only now.
                self.pair_response(mark, out);
                self.answer.take().unwrap_or(Answer::Oldest)
            }
        };
        let status = msg.status().unwrap_or(0);
        let interim = (100..200).contains(&status) && status != 101;
        let slot = match answer {
            Answer::Oldest => self.slots.get_mut(self.answered),
            Answer::LostRequest => None,
        };
        match slot {
            Some(slot) if interim => slot.interim.push(msg),
            Some(slot) => {
                slot.response = Some(msg);
                self.answered += 1;
            }
            None => {
                let pos = msg.last_order;
                let mut ex = self.new_exchange();
                ex.response = Some(msg);
                ex.closed_order = pos;
                ex.anomalies.push(if answer == Answer::LostRequest {
                    Anomaly::new(
                        AnomalyKind::RequestLostInGap,
                        "the request this answers was in bytes the capture lost",
                    )
                } else {
                    Anomaly::new(
                        AnomalyKind::ResponseWithoutRequest,
                        "no request was outstanding on this connection",
                    )
                });
                self.hold(ex, out);
                return;
            }
        }
        self.release_ready(out);
    }

    /// Moves finished exchanges (request and final response both complete) to output, in order.
    pub(super) fn release_ready(&mut self, out: &mut Vec<Exchange>) {
        while self
            .slots
            .front()
            .is_some_and(|s| s.request_done && (s.response.is_some() || s.lost))
        {
            let Some(slot) = self.slots.pop_front() else {
                break;
            };
            self.answered = self.answered.saturating_sub(1);
            let mut ex = self.new_exchange();
            if slot.lost && slot.response.is_none() {
                ex.anomalies.push(Anomaly::new(
                    AnomalyKind::ResponseLostInGap,
                    "the response was in bytes the capture lost: a later response answers a later request",
                ));
            }
            ex.request = slot.request;
            slot.interim.into_exchange(&mut ex);
            ex.response = slot.response;
            self.hold(ex, out);
        }
    }

    pub(super) fn hold(&mut self, ex: Exchange, out: &mut Vec<Exchange>) {
        if let Some(prev) = self.held.replace(ex) {
            out.push(prev);
        }
    }

    pub(super) fn release_held(&mut self, out: &mut Vec<Exchange>) {
        if let Some(ex) = self.held.take() {
            out.push(ex);
        }
    }

    /// The server sent bytes after the held response that do not start a message.
    pub(super) fn flag_held_response(
        &mut self,
        kind_for: impl Fn(&Message) -> (AnomalyKind, String),
    ) {
        if let Some(resp) = self.held.as_mut().and_then(|ex| ex.response.as_mut()) {
            let (kind, detail) = kind_for(resp);
            resp.add_anomaly(kind, detail);
        }
    }

    /// Replaces an anomaly of the held response by a more precise one.
    pub(super) fn reclassify_held_response(
        &mut self,
        from: AnomalyKind,
        to: AnomalyKind,
        detail: &str,
    ) {
        if let Some(resp) = self.held.as_mut().and_then(|ex| ex.response.as_mut())
            && resp.has_anomaly(from)
        {
            resp.anomalies.retain(|a| a.kind != from);
            resp.add_anomaly(to, detail);
        }
    }

    /// Ends the connection: everything still waiting is released.
    pub(super) fn close(&mut self, pos: Pos, out: &mut Vec<Exchange>) {
        self.release_held(out);
        (self.answered, self.unread) = (0, 0);
        while let Some(slot) = self.slots.pop_front() {
            let mut ex = self.new_exchange();
            ex.closed_order = pos.order;
            if slot.lost && slot.response.is_none() {
                ex.anomalies.push(Anomaly::new(
                    AnomalyKind::ResponseLostInGap,
                    "the response was in bytes the capture lost",
                ));
            } else if slot.response.is_none()
                && slot.request.is_some()
                && self.server_seen
                && !self.tunnel
            {
                ex.anomalies.push(Anomaly::new(
                    AnomalyKind::UnansweredRequest,
                    "the connection ended before a response",
                ));
            }
            ex.request = slot.request;
            slot.interim.into_exchange(&mut ex);
            ex.response = slot.response;
            if ex.request.is_some() || ex.response.is_some() {
                out.push(ex);
            }
        }
    }
}
