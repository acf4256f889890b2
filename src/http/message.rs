//! The http stage's output types: messages, exchanges and the anomalies found while parsing.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::capture::FrameRef;
pub use crate::capture::Pos;
use crate::time::Timestamp;

/// Something irregular about a message or its delivery. Malformed traffic is data: these
/// become findings (framing rules) or counted analysis gaps, never errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    ObsFold,
    BareLf,
    BareCr,
    WhitespaceBeforeColon,
    InvalidHeaderName,
    InvalidHeaderValue,
    MissingColon,
    LeadingWhitespaceLine,
    InvalidRequestLine,
    InvalidStatusLine,
    Http09,
    ClAndTe,
    ConflictingContentLength,
    DuplicateContentLength,
    InvalidContentLength,
    ChunkedNotFinal,
    MalformedChunk,
    ChunkedIncomplete,
    ExtraData,
    BodyOnHead,
    BodyOn204,
    BodyOn304,
    ContentLengthMismatch,
    OversizedHead,
    Gap,
    Truncated,
    ConflictingOverlap,
    UnansweredRequest,
    /// More requests waited for responses on the connection than the pairing cap.
    TooManyOutstandingRequests,
    /// More interim (1xx) responses answered one request than are kept ([`MAX_INTERIM`]).
    TooManyInterimResponses,
    ResponseWithoutRequest,
    MidStream,
    /// The response to this request was in bytes the capture lost (pairing by TCP
    /// acknowledgements shows a later response answers a later request).
    ResponseLostInGap,
    /// This response answers a request whose bytes the capture lost.
    RequestLostInGap,
    /// Bytes of this direction before this message were lost; pairing across them relied
    /// on acknowledgement numbers.
    GapBeforeMessage,
    /// Bytes before the start line that do not belong to any message.
    JunkBeforeMessage,
    /// A transfer coding other than chunked could not be undone (no decoder, corrupt
    /// data): the content was not seen.
    UndecodedTransferCoding,
    /// Undoing a transfer coding (`gzip`, `deflate`) produced more than
    /// [`BOMB_RATIO`](super::content_stream::BOMB_RATIO) times its input and ran past the
    /// kept-body cap, where decoding stopped: a probable decompression bomb.
    CompressionBomb,
    /// HTTP/2: the stream was reset (RST_STREAM) before it completed.
    H2StreamReset,
    /// HTTP/2: the connection was shut down with an error (GOAWAY) while the stream was open.
    H2GoAway,
    /// HTTP/2: the exchange was pushed by the server (PUSH_PROMISE), not requested.
    H2ServerPush,
    /// HTTP/2: DATA beyond the flow-control window the receiver granted.
    H2FlowControl,
    /// HTTP/2: a frame larger than the receiver's SETTINGS_MAX_FRAME_SIZE, or of a wrong fixed size.
    H2FrameSize,
    /// HTTP/2: a frame that breaks the protocol (wrong stream, bad padding, HPACK error).
    H2ProtocolError,
    /// HTTP/2: the capture lost bytes, so header compression state is lost and decoding stopped.
    H2DecodingStopped,
    /// HTTP/2: content-length disagrees with the DATA frames' payload.
    H2ContentLengthMismatch,
    /// HTTP/2: a field name with upper-case letters (malformed, RFC 9113 §8.2.1).
    H2UppercaseFieldName,
    /// HTTP/2: a connection-specific field (RFC 9113 §8.2.2).
    H2ConnectionSpecificField,
    /// HTTP/2: TE with a value other than `trailers`.
    H2InvalidTe,
    /// HTTP/2: pseudo-header fields missing, repeated, misplaced or of the other direction.
    H2PseudoHeader,
    /// HTTP/2: the capture joined the connection after it began; header fields that referred
    /// to compression state from before are unknown, so the head is incomplete.
    H2HeaderStateUnknown,
}

impl AnomalyKind {
    pub const ALL: &'static [AnomalyKind] = &[
        AnomalyKind::ObsFold,
        AnomalyKind::BareLf,
        AnomalyKind::BareCr,
        AnomalyKind::WhitespaceBeforeColon,
        AnomalyKind::InvalidHeaderName,
        AnomalyKind::InvalidHeaderValue,
        AnomalyKind::MissingColon,
        AnomalyKind::LeadingWhitespaceLine,
        AnomalyKind::InvalidRequestLine,
        AnomalyKind::InvalidStatusLine,
        AnomalyKind::Http09,
        AnomalyKind::ClAndTe,
        AnomalyKind::ConflictingContentLength,
        AnomalyKind::DuplicateContentLength,
        AnomalyKind::InvalidContentLength,
        AnomalyKind::ChunkedNotFinal,
        AnomalyKind::MalformedChunk,
        AnomalyKind::ChunkedIncomplete,
        AnomalyKind::ExtraData,
        AnomalyKind::BodyOnHead,
        AnomalyKind::BodyOn204,
        AnomalyKind::BodyOn304,
        AnomalyKind::ContentLengthMismatch,
        AnomalyKind::OversizedHead,
        AnomalyKind::Gap,
        AnomalyKind::Truncated,
        AnomalyKind::ConflictingOverlap,
        AnomalyKind::UnansweredRequest,
        AnomalyKind::TooManyOutstandingRequests,
        AnomalyKind::TooManyInterimResponses,
        AnomalyKind::ResponseWithoutRequest,
        AnomalyKind::MidStream,
        AnomalyKind::ResponseLostInGap,
        AnomalyKind::RequestLostInGap,
        AnomalyKind::GapBeforeMessage,
        AnomalyKind::JunkBeforeMessage,
        AnomalyKind::UndecodedTransferCoding,
        AnomalyKind::CompressionBomb,
        AnomalyKind::H2StreamReset,
        AnomalyKind::H2GoAway,
        AnomalyKind::H2ServerPush,
        AnomalyKind::H2FlowControl,
        AnomalyKind::H2FrameSize,
        AnomalyKind::H2ProtocolError,
        AnomalyKind::H2DecodingStopped,
        AnomalyKind::H2ContentLengthMismatch,
        AnomalyKind::H2UppercaseFieldName,
        AnomalyKind::H2ConnectionSpecificField,
        AnomalyKind::H2InvalidTe,
        AnomalyKind::H2PseudoHeader,
        AnomalyKind::H2HeaderStateUnknown,
    ];

    /// The stable kebab-case name used in output, rule files and the store.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::ObsFold => "obs-fold",
            AnomalyKind::BareLf => "bare-lf",
            AnomalyKind::BareCr => "bare-cr",
            AnomalyKind::WhitespaceBeforeColon => "whitespace-before-colon",
            AnomalyKind::InvalidHeaderName => "invalid-header-name",
            AnomalyKind::InvalidHeaderValue => "invalid-header-value",
            AnomalyKind::MissingColon => "missing-colon",
            AnomalyKind::LeadingWhitespaceLine => "leading-whitespace-line",
            AnomalyKind::InvalidRequestLine => "invalid-request-line",
            AnomalyKind::InvalidStatusLine => "invalid-status-line",
            AnomalyKind::Http09 => "http09",
            AnomalyKind::ClAndTe => "cl-and-te",
            AnomalyKind::ConflictingContentLength => "conflicting-content-length",
            AnomalyKind::DuplicateContentLength => "duplicate-content-length",
            AnomalyKind::InvalidContentLength => "invalid-content-length",
            AnomalyKind::ChunkedNotFinal => "chunked-not-final",
            AnomalyKind::MalformedChunk => "malformed-chunk",
            AnomalyKind::ChunkedIncomplete => "chunked-incomplete",
            AnomalyKind::ExtraData => "extra-data",
            AnomalyKind::BodyOnHead => "body-on-head",
            AnomalyKind::BodyOn204 => "body-on-204",
            AnomalyKind::BodyOn304 => "body-on-304",
            AnomalyKind::ContentLengthMismatch => "content-length-mismatch",
            AnomalyKind::OversizedHead => "oversized-head",
            AnomalyKind::Gap => "gap",
            AnomalyKind::Truncated => "truncated",
            AnomalyKind::ConflictingOverlap => "conflicting-overlap",
            AnomalyKind::UnansweredRequest => "unanswered-request",
            AnomalyKind::TooManyOutstandingRequests => "too-many-outstanding-requests",
            AnomalyKind::TooManyInterimResponses => "too-many-interim-responses",
            AnomalyKind::ResponseWithoutRequest => "response-without-request",
            AnomalyKind::MidStream => "mid-stream",
            AnomalyKind::ResponseLostInGap => "response-lost-in-gap",
            AnomalyKind::RequestLostInGap => "request-lost-in-gap",
            AnomalyKind::GapBeforeMessage => "gap-before-message",
            AnomalyKind::JunkBeforeMessage => "junk-before-message",
            AnomalyKind::UndecodedTransferCoding => "undecoded-transfer-coding",
            AnomalyKind::CompressionBomb => "compression-bomb",
            AnomalyKind::H2StreamReset => "h2-stream-reset",
            AnomalyKind::H2GoAway => "h2-goaway",
            AnomalyKind::H2ServerPush => "h2-server-push",
            AnomalyKind::H2FlowControl => "h2-flow-control-violation",
            AnomalyKind::H2FrameSize => "h2-frame-size-violation",
            AnomalyKind::H2ProtocolError => "h2-protocol-error",
            AnomalyKind::H2DecodingStopped => "h2-decoding-stopped",
            AnomalyKind::H2ContentLengthMismatch => "h2-content-length-mismatch",
            AnomalyKind::H2UppercaseFieldName => "h2-uppercase-field-name",
            AnomalyKind::H2ConnectionSpecificField => "h2-connection-specific-field",
            AnomalyKind::H2InvalidTe => "h2-invalid-te",
            AnomalyKind::H2PseudoHeader => "h2-pseudo-header-error",
            AnomalyKind::H2HeaderStateUnknown => "h2-header-state-unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<AnomalyKind> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Anomalies that mean the capture, not the peer, lost part of the message: body and
    /// framing rules must not judge such a message.
    pub fn marks_incomplete(self) -> bool {
        matches!(
            self,
            AnomalyKind::Gap | AnomalyKind::Truncated | AnomalyKind::H2DecodingStopped
        )
    }
}

/// Interim (1xx) responses kept per exchange: a server may send several (RFC 9110 §15.2),
/// but one sending thousands to a request must not grow memory with each (HTTP/1 and
/// HTTP/2 alike); later ones are counted.
pub const MAX_INTERIM: usize = 16;

/// The interim responses of one exchange being assembled: the first [`MAX_INTERIM`], and
/// how many more came.
#[derive(Debug, Default)]
pub struct Interims {
    kept: Vec<Message>,
    dropped: u64,
}

impl Interims {
    pub fn push(&mut self, m: Message) {
        if self.kept.len() < MAX_INTERIM {
            self.kept.push(m);
        } else {
            self.dropped += 1;
        }
    }

    /// Hands the kept responses to `ex`, with the `too-many-interim-responses` anomaly when
    /// some were not kept.
    pub fn into_exchange(self, ex: &mut Exchange) {
        ex.interim = self.kept;
        if self.dropped > 0 {
            ex.anomalies.push(Anomaly::new(
                AnomalyKind::TooManyInterimResponses,
                format!(
                    "{} more interim responses after the first {MAX_INTERIM} were not kept",
                    self.dropped
                ),
            ));
        }
    }
}

/// One anomaly with the evidence that shows it (the offending line, value or byte count).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub detail: String,
}

impl Anomaly {
    pub fn new(kind: AnomalyKind, detail: impl Into<String>) -> Self {
        Anomaly {
            kind,
            detail: detail.into(),
        }
    }
}

/// One header field line, as sent (original case; value with surrounding whitespace trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// The first line of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: String,
        target: String,
        /// As sent, e.g. `HTTP/1.1`; empty for HTTP/0.9.
        version: String,
    },
    Response {
        version: String,
        status: u16,
        reason: String,
    },
}

/// How a message's body was delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body by definition (HEAD response, 1xx, 204, 304, request without length).
    None,
    ContentLength(u64),
    Chunked,
    /// Response body running until the connection closes.
    Close,
    /// The connection stopped carrying HTTP (CONNECT 2xx, 101 Switching Protocols).
    Tunnel,
    /// A request whose final transfer coding is not chunked: its length cannot be
    /// determined (RFC 9112 §6.3), so neither its body nor anything after it on the client's
    /// stream is parsed.
    Undetermined,
    /// HTTP/2: DATA frames up to END_STREAM.
    Frames,
}

/// Whether a JSON-typed message's content is one valid JSON text (RFC 8259), judged over
/// the whole content while it was parsed, whatever the kept-body cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonVerdict {
    Valid,
    /// Invalid at this byte of the decoded content.
    Invalid {
        at: u64,
        reason: &'static str,
    },
    /// Not judged: bytes were lost, a coding could not be undone, or a limit was reached.
    Undecided(&'static str),
}

impl JsonVerdict {
    /// `Some(valid)` when decided.
    pub fn valid(&self) -> Option<bool> {
        match self {
            JsonVerdict::Valid => Some(true),
            JsonVerdict::Invalid { .. } => Some(false),
            JsonVerdict::Undecided(_) => None,
        }
    }
}

/// The body of a message: sizes always, bytes up to a cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub framing: Framing,
    /// Bytes of the message body after de-chunking (with any other transfer coding still
    /// applied), before content decoding.
    pub size: u64,
    /// The first content bytes, up to the pipeline's body cap: transfer codings undone
    /// (RFC 9112 §6.1), Content-Encoding not.
    pub captured: Vec<u8>,
    /// True when `captured` holds the whole content (false also when a transfer coding
    /// could not be undone: the content was not seen).
    pub captured_all: bool,
    pub trailers: Vec<Header>,
    /// For JSON-typed content (`application/json`, `+json`): the verdict of the streaming
    /// validator over the whole content, Content-Encoding undone.
    pub json: Option<JsonVerdict>,
    /// True when `captured` already has its Content-Encoding undone (a HAR file records
    /// the content as the browser decoded it): content decoding must not undo it again.
    pub content_decoded: bool,
}

impl Default for Body {
    fn default() -> Self {
        Body {
            framing: Framing::None,
            size: 0,
            captured: Vec::new(),
            captured_all: true,
            trailers: Vec::new(),
            json: None,
            content_decoded: false,
        }
    }
}

/// One HTTP message with everything rules need to judge it.
#[derive(Clone, Debug)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    /// The head exactly as received (start-line through the blank line), for syntax rules.
    pub raw_head: Vec<u8>,
    pub body: Body,
    /// Frame that carried the first byte of the message.
    pub first_frame: FrameRef,
    /// Frame that completed the head.
    pub head_frame: FrameRef,
    /// Frame that completed the message.
    pub last_frame: FrameRef,
    pub first_ts: Timestamp,
    pub head_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Position in the run's frame order of the frame that completed the message.
    pub last_order: u64,
    pub anomalies: Vec<Anomaly>,
    /// False when part of the head was not seen (a gap, the snaplen, the capture's end, the
    /// head-size cap) or there is no head (an HTTP/0.9 response): rules do not judge it.
    pub head_complete: bool,
}

impl Message {
    /// Values of every field line with this name (case-insensitive), in wire order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The request's authority: the Host field, or HTTP/2's `:authority` pseudo-header (as
    /// HAR files record it).
    pub fn host(&self) -> Option<&str> {
        self.header("host").or_else(|| self.header(":authority"))
    }

    /// The first value of a field, if present. An HTTP/2 request without `Host` answers
    /// `host` with its `:authority` (RFC 9113 §8.3.1: they mean the same).
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str());
        if found.is_none() && name.eq_ignore_ascii_case("host") {
            return self
                .headers
                .iter()
                .find(|h| h.name == ":authority")
                .map(|h| h.value.as_str());
        }
        found
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The combined field value: every line's value joined with ", " (RFC 9110 §5.3).
    pub fn combined(&self, name: &str) -> Option<String> {
        self.combined_ref(name).map(std::borrow::Cow::into_owned)
    }

    /// The combined field value, borrowed when the field has a single line (the usual case,
    /// on the rule engine's hot path).
    pub fn combined_ref<'a>(&'a self, name: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        let mut values = self.header_values(name);
        let first = values.next()?;
        let Some(second) = values.next() else {
            return Some(std::borrow::Cow::Borrowed(first));
        };
        let mut out = format!("{first}, {second}");
        for v in values {
            out.push_str(", ");
            out.push_str(v);
        }
        Some(std::borrow::Cow::Owned(out))
    }

    pub fn has_anomaly(&self, kind: AnomalyKind) -> bool {
        self.anomalies.iter().any(|a| a.kind == kind)
    }

    pub fn add_anomaly(&mut self, kind: AnomalyKind, detail: impl Into<String>) {
        if !self.has_anomaly(kind) {
            self.anomalies.push(Anomaly::new(kind, detail));
        }
    }

    /// True when the capture lost part of this message (gap, cut short, started mid-way).
    pub fn is_incomplete(&self) -> bool {
        self.anomalies.iter().any(|a| a.kind.marks_incomplete())
    }

    /// True when every content byte was seen and kept (no gap, no cut, no cap), so rules
    /// may judge the content.
    pub fn body_whole(&self) -> bool {
        self.head_complete && !self.is_incomplete() && self.body.captured_all
    }

    pub fn version(&self) -> &str {
        match &self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => version,
        }
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn target(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { target, .. } => Some(target),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }
}

/// What TLS negotiated on a decrypted connection, for reports (none of it secret).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TlsInfo {
    /// `TLS 1.2`, `TLS 1.3`.
    pub protocol: String,
    /// The IANA name, e.g. `TLS_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
    /// The application protocol the server selected (`h2`, `http/1.1`), if any.
    pub alpn: Option<String>,
    /// The server name the client asked for.
    pub sni: Option<String>,
}

/// Where a connection ran: shared by all exchanges of the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The first frame seen of this connection: unique in a run, and a stable id.
    pub first_frame: FrameRef,
    pub first_ts: Timestamp,
    pub tls: bool,
    /// What TLS negotiated, when the connection was decrypted.
    pub tls_info: Option<TlsInfo>,
    /// The capture began after the connection did (no SYN seen).
    pub mid_stream: bool,
}

/// Where an exchange was read from, and so what rules can know about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExchangeSource {
    /// Parsed from the bytes on the wire (a capture file or a live interface).
    #[default]
    Wire,
    /// Read from a HAR file: headers and decoded content only, no bytes as sent, no
    /// frames; rules about framing and raw syntax cannot judge it.
    Har,
}

/// A request paired with its response (either may be missing).
#[derive(Clone, Debug)]
pub struct Exchange {
    pub connection: Arc<Connection>,
    /// 0-based position on its connection.
    pub index: u32,
    pub request: Option<Message>,
    /// 1xx responses received for this request before the final one (100 Continue, 103 …).
    pub interim: Vec<Message>,
    pub response: Option<Message>,
    /// Anomalies of the exchange as a whole (unanswered request, response without request).
    pub anomalies: Vec<Anomaly>,
    /// Frame order at which the exchange was closed off without a response (0 otherwise).
    pub closed_order: u64,
    /// The HTTP/2 stream that carried the exchange (`None` for HTTP/1).
    pub stream_id: Option<u32>,
    pub source: ExchangeSource,
}

impl Exchange {
    /// True when either message travelled over HTTP/2: rules about HTTP/1 framing do not
    /// apply to it.
    pub fn is_http2(&self) -> bool {
        self.stream_id.is_some()
            || self
                .request
                .iter()
                .chain(self.response.iter())
                .any(|m| m.version() == "HTTP/2")
    }

    /// True when the exchange was parsed from wire bytes (it has frames and raw heads).
    pub fn has_wire_bytes(&self) -> bool {
        self.source == ExchangeSource::Wire
    }

    /// The first and last frame numbers of the exchange (request first, response last);
    /// `None` for an exchange read from a HAR file.
    pub fn frame_span(&self) -> Option<(u64, u64)> {
        if !self.has_wire_bytes() {
            return None;
        }
        let first = self
            .request
            .as_ref()
            .or(self.response.as_ref())?
            .first_frame
            .number;
        let last = self
            .response
            .as_ref()
            .or(self.request.as_ref())?
            .last_frame
            .number;
        Some((first, last))
    }

    /// Every anomaly name on the exchange and its messages, sorted and without repeats.
    pub fn anomaly_names(&self) -> Vec<&'static str> {
        let mut kinds: Vec<AnomalyKind> = self
            .anomalies
            .iter()
            .chain(self.request.iter().flat_map(|m| m.anomalies.iter()))
            .chain(self.interim.iter().flat_map(|m| m.anomalies.iter()))
            .chain(self.response.iter().flat_map(|m| m.anomalies.iter()))
            .map(|a| a.kind)
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds.into_iter().map(AnomalyKind::name).collect()
    }
}
