//! One HTTP/2 stream as an exchange: header blocks become messages (RFC 9113 §8.1–§8.3,
//! with every malformation kept as an anomaly), DATA becomes the body, a trailing header
//! block the trailers.

use std::sync::Arc;

use super::hpack::{Field, LeftOut};
use crate::http::{
    Anomaly, AnomalyKind, Body, Connection, Exchange, Framing, Header, Interims, Message, Pos,
    StartLine,
};

/// Which message of a stream a header block or DATA frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Request,
    Response,
}

/// Fields that are about one HTTP/1 connection and malformed in HTTP/2 (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

const REQUEST_PSEUDO: &[&str] = &[":method", ":scheme", ":authority", ":path", ":protocol"];

/// A stream being assembled.
#[derive(Debug)]
pub struct Stream {
    pub id: u32,
    pub index: u32,
    pub request: Option<Message>,
    pub request_done: bool,
    pub interim: Interims,
    pub response: Option<Message>,
    pub response_done: bool,
    pub anomalies: Vec<Anomaly>,
    /// Flow-control windows for DATA sent by each direction (indexed by direction).
    pub window: [i64; 2],
    /// Set when the request was HEAD (its response carries no content).
    head_request: bool,
    /// Memory of the heads (start lines, fields, trailers) added so far: heads do not
    /// change once added, so DATA frames recount only the bodies ([`Stream::recount`]).
    head_bytes: usize,
    /// What the connection counts for this stream now ([`Stream::recount`]).
    pub counted: usize,
}

/// Trailer fields kept per message: a peer repeating trailer blocks on a stream that never
/// ends would otherwise add fields without end.
const MAX_TRAILER_FIELDS: usize = 1024;

/// A stream's memory beyond its messages: the struct, and its slot in the connection's
/// map of open streams (a B-tree node share and the key).
const STREAM_OVERHEAD: usize = std::mem::size_of::<Stream>() + 32;

/// Memory of a message's head: the message, its raw head and its fields.
fn head_memory(m: &Message) -> usize {
    std::mem::size_of::<Message>() + m.raw_head.capacity() + fields_memory(&m.headers)
}

fn fields_memory(fields: &[Header]) -> usize {
    fields
        .iter()
        .map(|h| std::mem::size_of::<Header>() + h.name.capacity() + h.value.capacity())
        .sum()
}

impl Stream {
    pub fn new(id: u32, index: u32, window: [i64; 2]) -> Self {
        Stream {
            id,
            index,
            request: None,
            request_done: false,
            interim: Interims::default(),
            response: None,
            response_done: false,
            anomalies: Vec::new(),
            window,
            head_request: false,
            head_bytes: 0,
            counted: 0,
        }
    }

    /// Brings [`Stream::counted`] up to date and returns `(before, now)`: the heads as
    /// added, and the bodies' buffers as they are now (O(1): no walk over fields).
    pub fn recount(&mut self) -> (usize, usize) {
        let bodies: usize = [self.request.as_ref(), self.response.as_ref()]
            .into_iter()
            .flatten()
            .map(|m| m.body.captured.capacity())
            .sum();
        let now = STREAM_OVERHEAD + self.head_bytes + bodies;
        (std::mem::replace(&mut self.counted, now), now)
    }

    /// Both messages ended (END_STREAM each way).
    pub fn is_complete(&self) -> bool {
        self.request_done && self.response_done
    }

    /// Adds an anomaly to the exchange, once per kind.
    pub fn flag(&mut self, kind: AnomalyKind, detail: impl Into<String>) {
        if !self.anomalies.iter().any(|a| a.kind == kind) {
            self.anomalies.push(Anomaly::new(kind, detail));
        }
    }

    /// The message currently open in this role, if any.
    pub fn message_mut(&mut self, role: Role) -> Option<&mut Message> {
        match role {
            Role::Request => self.request.as_mut(),
            Role::Response => self.response.as_mut(),
        }
    }

    /// A decoded header block arrived for `role`: the head, an interim response, or trailers.
    /// A decoded header block of `role`, less the fields `left_out` counts (joined late, or
    /// past the header list limit).
    pub fn header_block(
        &mut self,
        role: Role,
        fields: Vec<Field>,
        left_out: LeftOut,
        end_stream: bool,
        pos: Pos,
    ) {
        match role {
            Role::Request if self.request.is_none() => {
                let msg = build_message(Role::Request, fields, left_out, pos);
                self.head_request = msg.method() == Some("HEAD");
                self.head_bytes += head_memory(&msg);
                self.request = Some(msg);
            }
            Role::Response if self.response.is_none() => {
                let msg = build_message(Role::Response, fields, left_out, pos);
                self.head_bytes += head_memory(&msg);
                let status = msg.status().unwrap_or(0);
                if (100..200).contains(&status) {
                    if end_stream {
                        self.flag(
                            AnomalyKind::H2ProtocolError,
                            format!("interim {status} response ends the stream"),
                        );
                    }
                    self.interim.push(msg);
                } else {
                    self.response = Some(msg);
                }
            }
            _ => {
                // Trailers: no pseudo-header fields, and the block must end the stream.
                let mut trailers = Vec::new();
                let mut problems = Vec::new();
                for (name, value) in fields {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    if name.starts_with(':') {
                        problems.push(format!("pseudo-header {name} in trailers"));
                    }
                    trailers.push(Header {
                        name,
                        value: String::from_utf8_lossy(&value).trim().to_string(),
                    });
                }
                let Some(msg) = self.message_mut(role) else {
                    return;
                };
                // Repeated trailer blocks are a protocol error, but each would add fields.
                let room = MAX_TRAILER_FIELDS.saturating_sub(msg.body.trailers.len());
                if trailers.len() > room {
                    msg.add_anomaly(
                        AnomalyKind::OversizedHead,
                        format!("more than {MAX_TRAILER_FIELDS} trailer fields: the rest not kept"),
                    );
                    trailers.truncate(room);
                }
                let added = fields_memory(&trailers);
                for p in problems {
                    msg.add_anomaly(AnomalyKind::H2PseudoHeader, p);
                }
                if !end_stream {
                    msg.add_anomaly(
                        AnomalyKind::H2ProtocolError,
                        "a second header block that does not end the stream",
                    );
                }
                mark_left_out(msg, left_out);
                check_fields(msg, &trailers);
                msg.body.trailers.extend(trailers);
                msg.head_frame = pos.frame;
                self.head_bytes += added;
            }
        }
        if end_stream {
            self.end(role, pos);
        }
    }

    /// DATA for `role`.
    pub fn data(&mut self, role: Role, data: &[u8], cap: usize) {
        let Some(msg) = self.message_mut(role) else {
            self.flag(
                AnomalyKind::H2ProtocolError,
                "DATA before the header block of its message",
            );
            return;
        };
        let body = &mut msg.body;
        body.size += data.len() as u64;
        let room = cap.saturating_sub(body.captured.len());
        body.captured
            .extend_from_slice(&data[..data.len().min(room)]);
        if data.len() > room {
            body.captured_all = false;
        }
    }

    /// END_STREAM for `role`: the message is complete.
    pub fn end(&mut self, role: Role, pos: Pos) {
        let head = self.head_request;
        let done = match role {
            Role::Request => &mut self.request_done,
            Role::Response => &mut self.response_done,
        };
        *done = true;
        let Some(msg) = self.message_mut(role) else {
            return;
        };
        msg.last_frame = pos.frame;
        msg.last_ts = pos.ts;
        msg.last_order = pos.order;
        check_content_length(msg, role == Role::Response && head);
    }

    /// The exchange this stream became.
    pub fn into_exchange(self, connection: &Arc<Connection>, closed_order: u64) -> Exchange {
        let mut ex = Exchange {
            connection: Arc::clone(connection),
            index: self.index,
            request: self.request,
            interim: Vec::new(),
            response: self.response,
            anomalies: self.anomalies,
            closed_order: if self.response_done { 0 } else { closed_order },
            stream_id: Some(self.id),
            source: crate::http::ExchangeSource::Wire,
        };
        self.interim.into_exchange(&mut ex);
        ex
    }
}

/// RFC 9113 §8.1.1: content-length must equal the DATA payload (except where the response
/// has no content by definition).
fn check_content_length(msg: &mut Message, head_response: bool) {
    if msg.is_incomplete() {
        return;
    }
    let status = msg.status();
    let no_content = head_response
        || status == Some(204)
        || status == Some(304)
        || status.is_some_and(|s| s < 200);
    let Some(cl) = msg.header("content-length") else {
        return;
    };
    match cl.trim().parse::<u64>() {
        Ok(n) if !no_content && n != msg.body.size => {
            let detail = format!(
                "content-length: {n} but the DATA frames carried {} bytes",
                msg.body.size
            );
            msg.add_anomaly(AnomalyKind::H2ContentLengthMismatch, detail);
        }
        Ok(_) => {}
        Err(_) => msg.add_anomaly(
            AnomalyKind::InvalidContentLength,
            format!("content-length: {cl:?}"),
        ),
    }
}

/// The bytes as text, reusing their allocation when they are UTF-8 (nearly always).
fn lossy_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Marks `msg` as missing the fields `left_out` counts: its head is then not whole.
fn mark_left_out(msg: &mut Message, left_out: LeftOut) {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if left_out.unknown > 0 {
        let n = left_out.unknown;
        msg.add_anomaly(
            AnomalyKind::H2HeaderStateUnknown,
            format!(
                "{n} header field{} referred to header compression state sent before the capture began",
                plural(n)
            ),
        );
    }
    if left_out.over_limit > 0 {
        let n = left_out.over_limit;
        msg.add_anomaly(
            AnomalyKind::OversizedHead,
            format!(
                "header list larger than {} bytes: {n} field{} past it not kept",
                left_out.limit,
                plural(n)
            ),
        );
    }
    if left_out.any() {
        msg.head_complete = false;
    }
}

/// A message from a decoded header block, with RFC 9113 §8 checked. With fields left out
/// missing (joined late), the head is incomplete and its pseudo-headers are not judged.
pub fn build_message(role: Role, fields: Vec<Field>, left_out: LeftOut, pos: Pos) -> Message {
    let headers: Vec<Header> = fields
        .into_iter()
        .map(|(n, v)| Header {
            name: lossy_string(n),
            value: lossy_string(v),
        })
        .collect();
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.clone())
    };
    let start = match role {
        Role::Request => {
            let method = pseudo(":method").unwrap_or_default();
            let target = if method == "CONNECT" && pseudo(":path").is_none() {
                pseudo(":authority").unwrap_or_default()
            } else {
                pseudo(":path").unwrap_or_default()
            };
            StartLine::Request {
                method,
                target,
                version: "HTTP/2".into(),
            }
        }
        Role::Response => StartLine::Response {
            version: "HTTP/2".into(),
            status: pseudo(":status").and_then(|s| s.parse().ok()).unwrap_or(0),
            reason: String::new(),
        },
    };
    let mut msg = Message {
        start,
        headers: Vec::new(),
        raw_head: Vec::new(),
        body: Body {
            framing: Framing::Frames,
            ..Body::default()
        },
        first_frame: pos.frame,
        head_frame: pos.frame,
        last_frame: pos.frame,
        first_ts: pos.ts,
        head_ts: pos.ts,
        last_ts: pos.ts,
        last_order: pos.order,
        anomalies: Vec::new(),
        // HPACK blocks are decoded whole or not at all, but for a late join or the limit.
        head_complete: true,
    };
    if left_out.any() {
        mark_left_out(&mut msg, left_out);
    } else {
        check_pseudo_headers(&mut msg, role, &headers);
    }
    check_fields(&mut msg, &headers);
    msg.headers = headers;
    msg
}

/// Pseudo-header rules of RFC 9113 §8.3: the right ones, once each, before regular fields.
fn check_pseudo_headers(msg: &mut Message, role: Role, headers: &[Header]) {
    let mut problems: Vec<String> = Vec::new();
    let mut seen_regular = false;
    let mut seen: Vec<&str> = Vec::new();
    for h in headers {
        let name = h.name.as_str();
        if !name.starts_with(':') {
            seen_regular = true;
            continue;
        }
        if seen_regular {
            problems.push(format!("{name} after regular fields"));
        }
        if seen.contains(&name) {
            problems.push(format!("{name} repeated"));
        }
        seen.push(name);
        let allowed = match role {
            Role::Request => REQUEST_PSEUDO.contains(&name),
            Role::Response => name == ":status",
        };
        if !allowed {
            if role == Role::Request && name == ":status" {
                problems.push(":status (a response pseudo-header) in a request".into());
            } else if role == Role::Response && REQUEST_PSEUDO.contains(&name) {
                problems.push(format!("{name} (a request pseudo-header) in a response"));
            } else {
                problems.push(format!("unknown pseudo-header {name}"));
            }
        }
    }
    let has = |n: &str| seen.contains(&n);
    match role {
        Role::Request => {
            let method = msg.method().unwrap_or("").to_string();
            if !has(":method") {
                problems.push(":method missing".into());
            }
            if method == "CONNECT" && !has(":protocol") {
                if has(":scheme") || has(":path") {
                    problems.push("CONNECT with :scheme or :path".into());
                }
                if !has(":authority") {
                    problems.push("CONNECT without :authority".into());
                }
            } else {
                for n in [":scheme", ":path"] {
                    if !has(n) {
                        problems.push(format!("{n} missing"));
                    }
                }
                if has(":path") && msg.target() == Some("") {
                    problems.push(":path empty".into());
                }
            }
        }
        Role::Response => {
            if !has(":status") {
                problems.push(":status missing".into());
            } else if msg.status() == Some(0) {
                problems.push(":status is not a three-digit code".into());
            }
        }
    }
    if !problems.is_empty() {
        msg.add_anomaly(AnomalyKind::H2PseudoHeader, problems.join("; "));
    }
}

/// Field rules of RFC 9113 §8.2: lower-case names, no connection-specific fields, TE only
/// `trailers`, valid names and values.
fn check_fields(msg: &mut Message, headers: &[Header]) {
    for h in headers {
        let name = h.name.as_str();
        let bare = name.strip_prefix(':').unwrap_or(name);
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            msg.add_anomaly(AnomalyKind::H2UppercaseFieldName, name.to_string());
        }
        if CONNECTION_SPECIFIC
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
        {
            msg.add_anomaly(
                AnomalyKind::H2ConnectionSpecificField,
                format!("{name}: {}", h.value),
            );
        }
        if name.eq_ignore_ascii_case("te") && !h.value.trim().eq_ignore_ascii_case("trailers") {
            msg.add_anomaly(AnomalyKind::H2InvalidTe, format!("{name}: {}", h.value));
        }
        if bare.is_empty() || !bare.bytes().all(is_tchar) {
            msg.add_anomaly(AnomalyKind::InvalidHeaderName, format!("{name:?}"));
        }
        if h.value.bytes().any(|b| b == 0 || b == b'\r' || b == b'\n')
            || h.value.starts_with([' ', '\t'])
            || h.value.ends_with([' ', '\t'])
        {
            msg.add_anomaly(
                AnomalyKind::InvalidHeaderValue,
                format!("{name}: {:?}", h.value),
            );
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
