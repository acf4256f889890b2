//! One TCP connection's HTTP: both byte streams parsed into messages, requests paired with
//! responses into exchanges.
//!
//! Each direction has a [`DirParser`] (start line → head → body, with resynchronisation after
//! gaps and junk); [`Pairing`] (in `pairing.rs`) keeps the requests waiting for answers, attaches interim (1xx)
//! responses, and releases exchanges in order. The last exchange is held until the next
//! bytes of the server's stream show whether its response really ended where its framing
//! said (a body after a HEAD/204/304 answer, a wrong Content-Length).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use super::body::{ChunkState, RequestContext, decide_framing, parse_chunk_size_line};
use super::content_stream::{self, ContentStream};
use super::head::{self, Side, StartGuess};
use super::message::{
    Anomaly, AnomalyKind, Body, Connection, Exchange, Framing, Header, Message, Pos, StartLine,
    TlsInfo,
};
#[cfg(test)]
use super::pairing::MAX_OUTSTANDING;
use super::pairing::{MAX_CLIENT_GAPS, Pairing, Slot, StreamMark};
use crate::reassembly::{CloseReason, Piece};

/// Limits for the http stage.
#[derive(Clone, Copy, Debug)]
pub struct HttpConfig {
    /// Content bytes kept per message for rules (0 keeps none; sizes are always counted).
    pub body_cap: usize,
    /// Largest head accepted before the stream is declared oversized.
    pub max_head: usize,
    /// Validate JSON-typed content that outgrows `body_cap` over all its bytes, for the
    /// rules (off where no rule runs).
    pub validate_json: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_cap: 256 * 1024,
            max_head: 64 * 1024,
            validate_json: true,
        }
    }
}

/// Counters of the http stage, summed per run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HttpStats {
    pub http_connections: u64,
    pub non_http_connections: u64,
    pub tunnels: u64,
    pub requests: u64,
    pub responses: u64,
    pub exchanges: u64,
    pub resync_skipped_bytes: u64,
    /// PROXY protocol headers (v1 or v2) skipped at the start of client streams.
    pub proxy_headers: u64,
    /// Requests beyond [`MAX_OUTSTANDING`] waiting on one connection: counted, not paired.
    pub requests_over_cap: u64,
    /// Connections whose client stream was not parsed past a request without a
    /// determinable length (a final transfer coding other than chunked).
    pub undetermined_request_length: u64,
    /// Connections that carried HTTP/2.
    pub http2_connections: u64,
    /// HTTP/2 connections whose decoding stopped (a gap lost the HPACK state, or a header
    /// block did not decode).
    pub http2_decoding_stopped: u64,
    /// HTTP/2 connections the capture joined after they began (decoded from the first
    /// frame boundary, header fields from before counted unknown).
    pub http2_joined_late: u64,
    /// Their frames of streams opened before the capture began, not decoded.
    pub http2_frames_before_capture: u64,
}

impl HttpStats {
    pub fn merge(&mut self, o: &HttpStats) {
        self.http_connections += o.http_connections;
        self.non_http_connections += o.non_http_connections;
        self.tunnels += o.tunnels;
        self.requests += o.requests;
        self.responses += o.responses;
        self.exchanges += o.exchanges;
        self.resync_skipped_bytes += o.resync_skipped_bytes;
        self.proxy_headers += o.proxy_headers;
        self.requests_over_cap += o.requests_over_cap;
        self.undetermined_request_length += o.undetermined_request_length;
        self.http2_connections += o.http2_connections;
        self.http2_decoding_stopped += o.http2_decoding_stopped;
        self.http2_joined_late += o.http2_joined_late;
        self.http2_frames_before_capture += o.http2_frames_before_capture;
    }
}

/// Parsing state of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DirState {
    /// Expecting the start of a message.
    Start,
    /// Looking for the next start line after a gap, junk, or a capture that began mid-stream.
    Resync,
    /// Accumulating a head.
    Head,
    /// Reading a body.
    Body,
    /// No longer HTTP (tunnel after CONNECT/101, or not HTTP at all).
    Ignore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    Length(u64),
    Chunked(ChunkState),
    Close,
}

#[derive(Debug)]
struct InFlight {
    msg: Message,
    progress: Progress,
    /// Transfer decoding and JSON validation, when the body needs more than keeping.
    content: Option<ContentStream>,
}

impl InFlight {
    /// Takes the next bytes of the body (de-chunked).
    fn keep(&mut self, data: &[u8], cap: usize) {
        match self.content.as_mut() {
            Some(c) => c.push(&mut self.msg.body, data, cap),
            None => keep_body(&mut self.msg.body, data, cap),
        }
    }

    /// The body ended (or was cut): the message with its content verdicts.
    fn into_message(self) -> Message {
        let mut msg = self.msg;
        if let Some(c) = self.content {
            c.finish(&mut msg);
        }
        msg
    }
}

/// One direction's parser.
#[derive(Debug)]
struct DirParser {
    side: Side,
    state: DirState,
    buf: Vec<u8>,
    /// Where the message being accumulated began.
    msg_start: Option<Pos>,
    /// Set when a gap or cut hit the message being accumulated.
    head_damage: Option<AnomalyKind>,
    current: Option<InFlight>,
    /// True once a message start was found on this direction.
    synced: bool,
    /// Junk bytes skipped while resynchronising (not yet attributed).
    skipped: u64,
    /// Junk followed a message framed by Content-Length and no start line was in sight yet:
    /// if resynchronisation finds one, the length was wrong rather than the bytes junk.
    junk_after_length: bool,
    saw_fin: bool,
    /// Stream offset just past the bytes fed so far (data, gaps and cuts).
    fed: u64,
    /// Stream offset of the first byte of the input being processed.
    input_base: u64,
    /// What the latest segment of this direction acknowledged of the peer's stream.
    ack: Option<u64>,
    /// Where the message being parsed started.
    mark: StreamMark,
    /// Bytes lost (gap, cut) while no message was being read: the next message says so.
    lost_before: u64,
    /// Bytes where a message should have started that were none (skipped until one did):
    /// count and a sample.
    junk: Option<(u64, String)>,
    /// When the connection became a tunnel: keep the bytes that followed the last message
    /// (see [`HttpConnection::take_tunnel`]).
    keep_tunnel_rest: bool,
    tunnel_rest: Vec<u8>,
    /// How far the search for the end of the head, chunk-size line or trailer section
    /// being read got.
    searched: Searched,
}

/// A search for the end of a head, chunk-size line or trailer section that has not found
/// it yet. The next segment's search resumes where it stopped: a section arriving one byte
/// per segment is read once, not once per segment (64 KiB of head in 1-byte segments was
/// 2 billion byte comparisons).
#[derive(Clone, Copy, Debug, Default)]
struct Searched {
    /// Stream offset where the section starts.
    at: u64,
    /// Bytes of it searched.
    len: usize,
    /// A line end was among them: a head's first line is whole.
    line_ended: bool,
}

impl Searched {
    /// What was searched of the section that starts at stream offset `at` and has `len`
    /// bytes buffered: nothing unless this search was of that section.
    fn of(self, at: u64, len: usize) -> Searched {
        if self.at == at && self.len <= len {
            self
        } else {
            Searched {
                at,
                ..Searched::default()
            }
        }
    }
}

impl DirParser {
    fn new(side: Side, mid_stream: bool) -> Self {
        DirParser {
            side,
            state: if mid_stream {
                DirState::Resync
            } else {
                DirState::Start
            },
            buf: Vec::new(),
            msg_start: None,
            head_damage: None,
            current: None,
            synced: false,
            skipped: 0,
            junk_after_length: false,
            saw_fin: false,
            fed: 0,
            input_base: 0,
            ack: None,
            mark: StreamMark::default(),
            lost_before: 0,
            junk: None,
            keep_tunnel_rest: false,
            tunnel_rest: Vec::new(),
            searched: Searched::default(),
        }
    }
}

/// HTTP over one TCP connection.
#[derive(Debug)]
pub struct HttpConnection {
    cfg: HttpConfig,
    /// Endpoints as the flow table knows them: direction 0 is sent by `ends[0]`.
    ends: [SocketAddr; 2],
    first: Pos,
    /// Index of the direction the client sends on, once known.
    client_dir: Option<usize>,
    /// The direction that sent the SYN, when seen.
    client_hint: Option<usize>,
    mid_stream: [bool; 2],
    /// Bytes seen before the roles were known.
    undecided: [Vec<u8>; 2],
    undecided_pos: [Option<Pos>; 2],
    /// Stream offset of the first undecided byte.
    undecided_start: [u64; 2],
    /// Stream offset past every piece received, per direction.
    seen: [u64; 2],
    /// The latest acknowledgement (as a peer stream offset) per direction.
    acks: [Option<u64>; 2],
    parsers: Option<[DirParser; 2]>,
    pairing: Option<Pairing>,
    not_http: bool,
    /// The connection is TLS that was decrypted (or HAR over https).
    tls: bool,
    tls_info: Option<TlsInfo>,
    /// Keep the bytes after a switch of protocols for [`HttpConnection::take_tunnel`].
    keep_tunnel_rest: bool,
    tunnel_taken: bool,
    /// The server's port is one of `http_ports` in the configuration: first bytes that do
    /// not look like HTTP (a PROXY protocol line, a capture that began mid-message) do not
    /// make the connection "not HTTP"; a start line is looked for up to `DECIDE_LIMIT`.
    declared_http: bool,
    pub stats: HttpStats,
}

/// Bytes looked at before deciding a connection does not carry HTTP.
const DECIDE_LIMIT: usize = 16 * 1024;
/// Bytes skipped without finding any message start before a direction is abandoned.
const RESYNC_GIVE_UP: u64 = 1024 * 1024;

impl HttpConnection {
    /// `client_hint` is the direction that sent the SYN, when seen. `mid_stream[d]` is true
    /// when direction `d` did not start with a SYN in the capture.
    pub fn new(
        cfg: HttpConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client_hint: Option<usize>,
        mid_stream: [bool; 2],
    ) -> Self {
        let mut conn = HttpConnection {
            cfg,
            ends,
            first,
            client_dir: None,
            client_hint: None,
            mid_stream,
            undecided: [Vec::new(), Vec::new()],
            undecided_pos: [None, None],
            undecided_start: [0, 0],
            seen: [0, 0],
            acks: [None, None],
            parsers: None,
            pairing: None,
            not_http: false,
            tls: false,
            tls_info: None,
            keep_tunnel_rest: false,
            tunnel_taken: false,
            declared_http: false,
            stats: HttpStats::default(),
        };
        conn.client_hint = client_hint;
        conn
    }

    /// The configuration says this connection's server port carries HTTP (`http_ports`);
    /// call before any data.
    pub fn declare_http(&mut self) {
        self.declared_http = true;
    }

    /// Marks the connection as TLS (decrypted); call before any data.
    pub fn set_tls(&mut self, tls: bool) {
        self.tls = tls;
    }

    /// Marks the connection as decrypted TLS with what it negotiated; call before any data.
    pub fn set_tls_info(&mut self, info: TlsInfo) {
        self.tls = true;
        self.tls_info = Some(info);
    }

    /// Keeps what follows a switch of protocols (101, CONNECT) so that a caller can go on
    /// parsing the new protocol (h2c after `Upgrade: h2c`); call before any data.
    pub fn keep_tunnel_bytes(&mut self) {
        self.keep_tunnel_rest = true;
    }

    /// Once, when the connection has just become a tunnel (with [`Self::keep_tunnel_bytes`]):
    /// the bytes each direction sent after its last HTTP/1 message, indexed like `piece`'s
    /// `dir`. The exchange that switched is still held: [`Self::release_held`] releases it.
    pub fn take_tunnel(&mut self) -> Option<[Vec<u8>; 2]> {
        if self.tunnel_taken || !self.pairing.as_ref().is_some_and(|p| p.tunnel) {
            return None;
        }
        self.tunnel_taken = true;
        let parsers = self.parsers.as_mut()?;
        Some([
            std::mem::take(&mut parsers[0].tunnel_rest),
            std::mem::take(&mut parsers[1].tunnel_rest),
        ])
    }

    /// True once the connection was found not to carry HTTP, or became a tunnel: callers
    /// may stop buffering its bytes.
    pub fn is_done(&self) -> bool {
        self.not_http || self.pairing.as_ref().is_some_and(|p| p.tunnel)
    }

    pub fn connection(&self) -> Option<&Arc<Connection>> {
        self.pairing.as_ref().map(|p| &p.connection)
    }

    /// Releases the held exchange now: in live capture the server's next bytes may be
    /// long in coming (keep-alive), and the user is waiting for the finding.
    pub fn release_held(&mut self, out: &mut Vec<Exchange>) {
        if let Some(p) = self.pairing.as_mut() {
            p.release_held(out);
        }
    }

    /// Bytes held on the heap (for the memory budget): parser buffers, bytes not yet
    /// assigned to a side, and the requests waiting for answers.
    pub fn buffered(&self) -> usize {
        // The struct itself (boxed by the session; ~2 KiB, the parsers and pairing are
        // inline) was not counted once, which let half-open floods hold about twice the
        // budget.
        let parsers = self.parsers.as_ref().map_or(0, |p| {
            p.iter()
                .map(|d| {
                    d.buf.capacity()
                        + d.current.as_ref().map_or(0, |c| {
                            c.msg.raw_head.capacity()
                                + c.msg.body.captured.capacity()
                                + c.msg.headers.capacity() * std::mem::size_of::<Header>()
                        })
                })
                .sum::<usize>()
        });
        let pairing = self
            .pairing
            .as_ref()
            .map_or(0, |p| p.slots.capacity() * std::mem::size_of::<Slot>());
        std::mem::size_of::<Self>()
            + parsers
            + pairing
            + self.undecided[0].capacity()
            + self.undecided[1].capacity()
    }

    fn set_client(&mut self, c: usize) {
        self.client_dir = Some(c);
        let client = self.ends[c];
        let server = self.ends[1 - c];
        let connection = Arc::new(Connection {
            client,
            server,
            first_frame: self.first.frame,
            first_ts: self.first.ts,
            tls: self.tls,
            tls_info: self.tls_info.clone(),
            mid_stream: self.mid_stream.iter().any(|m| *m),
        });
        let mut parsers = [
            DirParser::new(Side::Request, self.mid_stream[0]),
            DirParser::new(Side::Request, self.mid_stream[1]),
        ];
        parsers[1 - c].side = Side::Response;
        for (d, p) in parsers.iter_mut().enumerate() {
            // Undecided bytes are replayed from where they started.
            p.fed = if self.undecided[d].is_empty() {
                self.seen[d]
            } else {
                self.undecided_start[d]
            };
            p.keep_tunnel_rest = self.keep_tunnel_rest;
        }
        self.parsers = Some(parsers);
        self.pairing = Some(Pairing {
            connection,
            slots: VecDeque::new(),
            held: None,
            next_index: 0,
            tunnel: false,
            client_may_tunnel: false,
            server_seen: false,
            over_cap: 0,
            over_cap_reported: false,
            server_lost: 0,
            client_gaps: VecDeque::new(),
            answer: None,
            answered: 0,
            unread: 0,
        });
    }

    /// The pieces of direction `dir` that follow were sent after the peer's stream had
    /// been received up to `peer_offset`.
    pub fn ack(&mut self, dir: usize, peer_offset: u64) {
        self.acks[dir] = Some(peer_offset);
    }

    /// Takes the next piece of direction `dir`'s byte stream.
    pub fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, out: &mut Vec<Exchange>) {
        let at = self.seen[dir];
        self.seen[dir] += match piece {
            Piece::Data(d) => d.len() as u64,
            Piece::Gap(n) | Piece::Cut(n) => n,
            Piece::Conflict => 0,
        };
        if self.client_dir.is_none() && !self.not_http {
            match piece {
                Piece::Data(d) => {
                    if self.undecided[dir].is_empty() {
                        self.undecided_start[dir] = at;
                    }
                    self.undecided_pos[dir].get_or_insert(pos);
                    let before = self.undecided[dir].len();
                    self.undecided[dir].extend_from_slice(d);
                    if may_decide(before, &self.undecided[dir]) {
                        self.try_decide(pos, out);
                    }
                    return;
                }
                Piece::Conflict => return,
                Piece::Gap(_) | Piece::Cut(_) => {
                    // A message start cut short (snaplen, loss) still decides the roles.
                    self.decide_at_loss(dir, pos, out);
                    if self.client_dir.is_none() {
                        // Too early to tell what was lost; what follows is parsed mid-stream.
                        self.undecided[dir].clear();
                        self.undecided_pos[dir] = None;
                        self.mid_stream[dir] = true;
                        return;
                    }
                }
            }
        }
        self.route(dir, piece, pos, out);
    }

    /// Hands a piece to its direction's parser, once the roles are known.
    fn route(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, out: &mut Vec<Exchange>) {
        if self.not_http {
            return;
        }
        let (Some(parsers), Some(pairing)) = (self.parsers.as_mut(), self.pairing.as_mut()) else {
            return;
        };
        if dir != self.client_dir.unwrap_or(0) {
            pairing.server_seen = true;
        }
        let cfg = self.cfg;
        let (a, b) = parsers.split_at_mut(1);
        let (this, other) = if dir == 0 {
            (&mut a[0], &mut b[0])
        } else {
            (&mut b[0], &mut a[0])
        };
        this.ack = self.acks[dir];
        feed(this, other, pairing, cfg, piece, pos, out, &mut self.stats);
    }

    /// Bytes of `dir` were lost before the roles were known: a start line cut short
    /// (`GET /images/x.gif HTT`) is enough to tell who the client is.
    fn decide_at_loss(&mut self, dir: usize, pos: Pos, out: &mut Vec<Exchange>) {
        let buf = &self.undecided[dir];
        let rest = &buf[skip_preamble(buf)..];
        if rest.is_empty() {
            return;
        }
        if head::looks_like_request(rest) != StartGuess::No {
            self.adopt(dir, pos, out);
        } else if head::looks_like_response(rest) != StartGuess::No {
            self.adopt(1 - dir, pos, out);
        }
    }

    /// The roles are known: parsers start and the bytes seen so far are replayed.
    fn adopt(&mut self, client: usize, pos: Pos, out: &mut Vec<Exchange>) {
        self.set_client(client);
        for d in [client, 1 - client] {
            let data = std::mem::take(&mut self.undecided[d]);
            let at = self.undecided_pos[d].take().unwrap_or(pos);
            if !data.is_empty() {
                self.route(d, Piece::Data(&data), at, out);
            }
        }
    }

    /// Decides which side is the client from the first bytes of either direction.
    fn try_decide(&mut self, pos: Pos, out: &mut Vec<Exchange>) {
        let mut decision = None;
        for d in 0..2 {
            let buf = &self.undecided[d];
            if buf.is_empty() {
                continue;
            }
            let start = skip_preamble(buf);
            if head::looks_like_request(&buf[start..]) == StartGuess::Yes {
                decision = Some(d);
                break;
            }
            if head::looks_like_response(&buf[start..]) == StartGuess::Yes {
                decision = Some(1 - d);
                break;
            }
        }
        if decision.is_none() {
            // Mid-stream: a start line further in, at a line start.
            for d in 0..2 {
                let buf = &self.undecided[d];
                if let Some(off) = find_start(Side::Request, buf, 0)
                    && off < buf.len()
                    && head::looks_like_request(&buf[off..]) == StartGuess::Yes
                {
                    decision = Some(d);
                    break;
                }
                // Only a complete status line at a line start decides: "HTTP/" also occurs
                // inside request lines.
                if let Some(off) = find_start(Side::Response, buf, 0)
                    && (off == 0 || buf[off - 1] == b'\n')
                    && head::looks_like_response(&buf[off..]) == StartGuess::Yes
                    && buf[off..].contains(&b'\n')
                {
                    decision = Some(1 - d);
                    break;
                }
            }
        }
        match decision {
            Some(c) => self.adopt(c, pos, out),
            None => {
                // Give up when every stream that began in the capture starts with something
                // that is not HTTP (TLS, SSH, a binary protocol), or when too much arrived
                // without a single start line.
                // A client known from the SYN whose first line is a malformed request waits
                // for the server: its status line decides.
                let starts_otherwise = |d: usize| {
                    let b = &self.undecided[d];
                    let rest = &b[skip_preamble(b)..];
                    let loose_request = self.client_hint == Some(d)
                        && head::looks_like_request_loose(rest) != StartGuess::No;
                    !self.mid_stream[d]
                        && !self.declared_http
                        && !loose_request
                        && head::looks_like_request(rest) == StartGuess::No
                        && head::looks_like_response(rest) == StartGuess::No
                };
                // With a known server that has not spoken yet, its answer decides.
                let server_silent = self
                    .client_hint
                    .is_some_and(|c| self.undecided[1 - c].is_empty());
                let not_http = (0..2).all(|d| self.undecided[d].is_empty() || starts_otherwise(d))
                    && self.undecided.iter().any(|b| !b.is_empty())
                    && !server_silent;
                let too_much = self.undecided.iter().any(|b| b.len() >= DECIDE_LIMIT);
                if not_http || too_much {
                    self.give_up();
                }
            }
        }
    }

    fn give_up(&mut self) {
        self.not_http = true;
        self.stats.non_http_connections += 1;
        self.undecided = [Vec::new(), Vec::new()];
    }

    /// Ends the connection. `fin[d]` says whether direction `d` ended with FIN or RST.
    pub fn close(
        &mut self,
        fin: [bool; 2],
        reason: CloseReason,
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        self.finish_streams(fin, reason, pos, out);
        // The flow table keeps a closed connection's entry for a while (to absorb its
        // trailing packets); its buffers are of no further use.
        self.parsers = None;
        self.undecided = [Vec::new(), Vec::new()];
    }

    fn finish_streams(
        &mut self,
        fin: [bool; 2],
        reason: CloseReason,
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        if self.client_dir.is_none() && !self.not_http {
            // Roles never became clear: try once more with what we have.
            if self.undecided.iter().any(|b| !b.is_empty()) {
                self.try_decide(pos, out);
            }
            // A client known from the SYN whose bytes read as a (malformed) request, with
            // no answer from the server: still HTTP, worth reporting.
            if self.client_dir.is_none()
                && let Some(c) = self.client_hint
                && self.undecided[1 - c].is_empty()
                && !self.undecided[c][skip_preamble(&self.undecided[c])..].is_empty()
                && head::looks_like_request_loose(
                    &self.undecided[c][skip_preamble(&self.undecided[c])..],
                ) != StartGuess::No
            {
                self.adopt(c, pos, out);
            }
            if self.client_dir.is_none() {
                if self.undecided.iter().any(|b| !b.is_empty()) {
                    self.give_up();
                }
                return;
            }
        }
        let client = self.client_dir.unwrap_or(0);
        let (Some(parsers), Some(pairing)) = (self.parsers.as_mut(), self.pairing.as_mut()) else {
            return;
        };
        // A server that closed or reset the connection was seen answering (with nothing).
        pairing.server_seen |= fin[1 - client] && reason == CloseReason::Closed;
        // The client's stream first (a request may complete), then the server's.
        for d in [client, 1 - client] {
            let parser = &mut parsers[d];
            parser.saw_fin = fin[d] && reason == CloseReason::Closed;
            finish_direction(parser, pairing, pos, out, &mut self.stats);
        }
        if pairing.tunnel {
            self.stats.tunnels += 1;
        }
        pairing.close(pos, out);
        if pairing.next_index > 0 {
            self.stats.http_connections = 1;
        }
        self.stats.exchanges = u64::from(pairing.next_index);
        self.stats.requests_over_cap = pairing.over_cap;
    }
}

/// Whether the bytes added to an undecided direction (`buf` past `before`) may change
/// what [`HttpConnection::try_decide`] concludes. Start lines are told apart by their first
/// bytes, their line end, control bytes and the lengths where the search gives up;
/// printable bytes in the middle of a long first line change nothing, so a line arriving
/// in small segments is not read whole again at each one (a 12 KiB request-target one
/// byte per segment was 75 million byte comparisons). Doubling the buffer re-reads it in
/// any case, which keeps the work linear.
fn may_decide(before: usize, buf: &[u8]) -> bool {
    /// Methods, status lines, the PROXY preamble: judged within their first bytes.
    const FIRST_BYTES: usize = 128;
    before < FIRST_BYTES
        || buf.len() >= 2 * before
        || buf[before..].iter().any(|&b| b < 0x20 || b == 0x7f)
        || [head::LONG_LINE, DECIDE_LIMIT]
            .iter()
            .any(|&limit| before < limit && buf.len() >= limit)
}

/// Where the first message of a stream would start, for deciding the roles: past a
/// complete PROXY protocol header and empty lines.
fn skip_preamble(buf: &[u8]) -> usize {
    let proxy = match head::proxy_header(buf) {
        head::ProxyHeader::Len(n) => n,
        _ => 0,
    };
    proxy + skip_empty_lines(&buf[proxy..])
}

fn skip_empty_lines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Finds the offset of the next plausible start line at or after `from`: a request line at
/// a line start, or a status line anywhere (servers that send more body bytes than they
/// declared glue the next status line to them).
fn find_start(side: Side, buf: &[u8], from: usize) -> Option<usize> {
    match side {
        Side::Response => {
            let mut i = from;
            while i < buf.len() {
                let p = i + buf[i..].iter().position(|&b| b == b'H' || b == b'h')?;
                if head::looks_like_response(&buf[p..]) != StartGuess::No {
                    return Some(p);
                }
                i = p + 1;
            }
            None
        }
        Side::Request => {
            let mut i = from;
            while i < buf.len() {
                let at_line_start = i == 0 || buf[i - 1] == b'\n';
                if at_line_start && head::looks_like_request(&buf[i..]) != StartGuess::No {
                    return Some(i);
                }
                match buf[i..].iter().position(|&b| b == b'\n') {
                    Some(p) => i += p + 1,
                    None => return None,
                }
            }
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn feed(
    this: &mut DirParser,
    other: &mut DirParser,
    pairing: &mut Pairing,
    cfg: HttpConfig,
    piece: Piece<'_>,
    pos: Pos,
    out: &mut Vec<Exchange>,
    stats: &mut HttpStats,
) {
    match piece {
        Piece::Data(data) => {
            this.input_base = this.fed - this.buf.len() as u64;
            this.fed += data.len() as u64;
            if this.state == DirState::Ignore {
                return;
            }
            if this.buf.is_empty() {
                let used = process(this, other, pairing, cfg, data, pos, out, stats);
                if this.state != DirState::Ignore {
                    this.buf.extend_from_slice(&data[used..]);
                }
            } else {
                let mut buf = std::mem::take(&mut this.buf);
                buf.extend_from_slice(data);
                let used = process(this, other, pairing, cfg, &buf, pos, out, stats);
                buf.drain(..used);
                if this.state != DirState::Ignore {
                    this.buf = buf;
                }
            }
        }
        Piece::Gap(n) => {
            lost(this, pairing, n, AnomalyKind::Gap, pos, out, stats);
            this.fed += n;
        }
        Piece::Cut(n) => {
            lost(this, pairing, n, AnomalyKind::Truncated, pos, out, stats);
            this.fed += n;
        }
        Piece::Conflict => conflict(this, pairing),
    }
}

/// A retransmission disagreed with bytes already parsed: mark the message they belong to
/// (the one in progress, else the last one of this direction).
fn conflict(this: &mut DirParser, pairing: &mut Pairing) {
    const DETAIL: &str = "a retransmitted segment carried different bytes; the first copy was kept";
    if let Some(inflight) = this.current.as_mut() {
        inflight
            .msg
            .add_anomaly(AnomalyKind::ConflictingOverlap, DETAIL);
        return;
    }
    match this.side {
        Side::Response => {
            pairing.flag_held_response(|_| (AnomalyKind::ConflictingOverlap, DETAIL.to_string()))
        }
        Side::Request => {
            if let Some(req) = pairing
                .slots
                .iter_mut()
                .rev()
                .find_map(|s| s.request.as_mut())
            {
                req.add_anomaly(AnomalyKind::ConflictingOverlap, DETAIL);
            } else if let Some(req) = pairing.held.as_mut().and_then(|e| e.request.as_mut()) {
                req.add_anomaly(AnomalyKind::ConflictingOverlap, DETAIL);
            }
        }
    }
}

/// Bytes of this direction were not captured.
#[allow(clippy::too_many_arguments)]
fn lost(
    this: &mut DirParser,
    pairing: &mut Pairing,
    n: u64,
    kind: AnomalyKind,
    pos: Pos,
    out: &mut Vec<Exchange>,
    stats: &mut HttpStats,
) {
    let detail = format!("{n} bytes not captured");
    promote_partial_start(this, pos);
    match this.state {
        DirState::Ignore => {}
        DirState::Start | DirState::Resync => {
            if this.side == Side::Response {
                pairing.release_held(out);
            }
            this.buf.clear();
            this.state = DirState::Resync;
            lost_between(this, pairing, this.fed, n);
        }
        DirState::Head => {
            // Keep what the partial head says (method, target, status) rather than lose it.
            let partial = std::mem::take(&mut this.buf);
            this.head_damage = Some(kind);
            if let Some(mut msg) = parse_partial_head(this, &partial, pos) {
                msg.add_anomaly(kind, detail);
                let ctx = request_context(&msg);
                if this.side == Side::Request {
                    pairing.request_head(ctx, this.mark);
                }
                complete(this, pairing, msg, pos, out, stats);
            } else {
                lost_between(this, pairing, this.fed, n);
            }
            this.head_damage = None;
            this.state = DirState::Resync;
        }
        DirState::Body => {
            let Some(mut inflight) = this.current.take() else {
                this.state = DirState::Resync;
                return;
            };
            inflight.msg.add_anomaly(kind, detail);
            if let Some(c) = inflight.content.as_mut() {
                c.lose();
            }
            match inflight.progress {
                Progress::Length(rem) if n < rem => {
                    inflight.msg.body.size += n;
                    inflight.msg.body.captured_all = false;
                    inflight.progress = Progress::Length(rem - n);
                    this.current = Some(inflight);
                }
                Progress::Length(rem) => {
                    inflight.msg.body.size += rem;
                    inflight.msg.body.captured_all = false;
                    let overshoot = n - rem;
                    complete(this, pairing, inflight.into_message(), pos, out, stats);
                    this.state = if overshoot == 0 {
                        DirState::Start
                    } else {
                        DirState::Resync
                    };
                    lost_between(this, pairing, this.fed + rem, overshoot);
                }
                Progress::Close => {
                    inflight.msg.body.size += n;
                    inflight.msg.body.captured_all = false;
                    this.current = Some(inflight);
                }
                Progress::Chunked(_) => {
                    inflight.msg.body.captured_all = false;
                    complete(this, pairing, inflight.into_message(), pos, out, stats);
                    this.state = DirState::Resync;
                    // Where the chunked body ended within the lost bytes is unknown.
                    lost_between(this, pairing, this.fed, n);
                }
            }
        }
    }
}

/// The stream stops (lost bytes, connection end) while bytes that may begin a message wait
/// for more: a start line cut before it could be recognised whole (`GET /static/css/si`)
/// is a partial head, to be kept with what is visible.
fn promote_partial_start(this: &mut DirParser, pos: Pos) {
    if !matches!(this.state, DirState::Start | DirState::Resync) || this.buf.is_empty() {
        return;
    }
    let rest = &this.buf[skip_empty_lines(&this.buf)..];
    let guess = match this.side {
        Side::Request if this.state == DirState::Start => head::looks_like_request_loose(rest),
        side => head::looks_like(side, rest),
    };
    if !rest.is_empty() && guess != StartGuess::No {
        this.state = DirState::Head;
        this.msg_start.get_or_insert(pos);
        this.mark = StreamMark {
            offset: this.fed - rest.len() as u64,
            ack: this.ack,
        };
        this.synced = true;
    }
}

/// Bytes lost where a message may have started: on the server's side whole responses may
/// be among them, on the client's side whole requests.
fn lost_between(this: &mut DirParser, pairing: &mut Pairing, from: u64, len: u64) {
    if len == 0 {
        return;
    }
    this.lost_before += len;
    match this.side {
        Side::Response => pairing.server_lost += len,
        Side::Request => {
            if pairing.client_gaps.len() >= MAX_CLIENT_GAPS {
                pairing.client_gaps.pop_front();
            }
            pairing.client_gaps.push_back((from, from + len));
        }
    }
}

/// Runs the state machine over `input`; returns how many bytes were consumed. Bytes not
/// consumed are kept by the caller and offered again with the next piece.
#[allow(clippy::too_many_arguments)]
fn process(
    this: &mut DirParser,
    other: &mut DirParser,
    pairing: &mut Pairing,
    cfg: HttpConfig,
    input: &[u8],
    pos: Pos,
    out: &mut Vec<Exchange>,
    stats: &mut HttpStats,
) -> usize {
    let mut i = 0;
    while i < input.len() {
        match this.state {
            DirState::Ignore => {
                if this.keep_tunnel_rest && pairing.tunnel {
                    this.tunnel_rest.extend_from_slice(&input[i..]);
                }
                return input.len();
            }
            DirState::Resync => {
                match find_start(this.side, input, i) {
                    Some(off) => {
                        if off < input.len()
                            && head::looks_like(this.side, &input[off..]) == StartGuess::NeedMore
                        {
                            // Possibly a start line split across segments: wait for more.
                            stats.resync_skipped_bytes += (off - i) as u64;
                            return off;
                        }
                        stats.resync_skipped_bytes += (off - i) as u64;
                        if let Some((n, _)) = this.junk.as_mut() {
                            *n += (off - i) as u64;
                        }
                        i = off;
                        this.state = DirState::Start;
                        if std::mem::take(&mut this.junk_after_length) {
                            pairing.reclassify_held_response(
                                AnomalyKind::ExtraData,
                                AnomalyKind::ContentLengthMismatch,
                                "more bytes than Content-Length before the next response",
                            );
                        }
                    }
                    None => {
                        // Keep a short tail in case a start line is split across segments.
                        let keep_from = input.len().saturating_sub(16).max(i);
                        stats.resync_skipped_bytes += (keep_from - i) as u64;
                        this.skipped += (keep_from - i) as u64;
                        if let Some((n, _)) = this.junk.as_mut() {
                            *n += (keep_from - i) as u64;
                        }
                        if !this.synced && this.skipped > RESYNC_GIVE_UP {
                            // Never found a message start: this direction is not HTTP after all.
                            this.state = DirState::Ignore;
                            return input.len();
                        }
                        return keep_from;
                    }
                }
            }
            DirState::Start => {
                if this.side == Side::Request && this.input_base + i as u64 == 0 {
                    // A load balancer's PROXY protocol header before the first request.
                    match head::proxy_header(&input[i..]) {
                        head::ProxyHeader::Len(n) => {
                            stats.proxy_headers += 1;
                            i += n;
                            continue;
                        }
                        head::ProxyHeader::NeedMore => return i,
                        head::ProxyHeader::No => {}
                    }
                }
                let blank = skip_empty_lines(&input[i..]);
                if blank > 0 && this.side == Side::Response && this.synced {
                    // Only a request may be preceded by empty lines (RFC 9112 §2.2).
                    pairing.flag_held_response(|_| {
                        (
                            AnomalyKind::ExtraData,
                            format!("{blank} stray line-ending bytes after the message"),
                        )
                    });
                }
                i += blank;
                if i >= input.len() {
                    return input.len();
                }
                let rest = &input[i..];
                let guess = match this.side {
                    // The connection is known to carry HTTP: malformed request lines are
                    // parsed (and reported), not skipped.
                    Side::Request => head::looks_like_request_loose(rest),
                    Side::Response => head::looks_like_response(rest),
                };
                match guess {
                    StartGuess::Yes => {
                        if this.side == Side::Response {
                            pairing.release_held(out);
                        }
                        this.state = DirState::Head;
                        this.msg_start = Some(pos);
                        this.mark = StreamMark {
                            offset: this.input_base + i as u64,
                            ack: this.ack,
                        };
                        this.synced = true;
                    }
                    StartGuess::NeedMore => return i,
                    StartGuess::No => {
                        if this.side == Side::Request && pairing.client_may_tunnel {
                            start_tunnel(this, other, pairing);
                            continue;
                        }
                        if this.side == Side::Response && pairing.response_context().http09 {
                            start_http09_response(this, pos);
                            continue;
                        }
                        if !this.synced && this.junk.is_none() {
                            this.junk = Some((0, sample_of(&input[i..])));
                        }
                        junk_after_message(this, pairing, input, i);
                        this.state = DirState::Resync;
                        // Skip at least one byte so resync makes progress.
                        stats.resync_skipped_bytes += 1;
                        i += 1;
                    }
                }
            }
            DirState::Head => {
                let rest = &input[i..];
                let before = this.searched.of(this.input_base + i as u64, rest.len());
                let line_ended = before.line_ended || rest[before.len..].contains(&b'\n');
                // HTTP/0.9 is decided when the first line ends: looked at once, then.
                let http09 = this.side == Side::Request && line_ended && !before.line_ended;
                let end = http09
                    .then(|| head::http09_request_end(rest))
                    .flatten()
                    .or_else(|| head::find_head_end(rest, before.len));
                let Some(end) = end else {
                    this.searched = Searched {
                        len: rest.len(),
                        line_ended,
                        ..before
                    };
                    if rest.len() > cfg.max_head {
                        // A head this large is an attack or not HTTP: report and stop parsing.
                        if let Some(mut msg) = parse_partial_head(this, &rest[..cfg.max_head], pos)
                        {
                            msg.add_anomaly(
                                AnomalyKind::OversizedHead,
                                format!("head larger than {} bytes", cfg.max_head),
                            );
                            if this.side == Side::Request {
                                pairing.request_head(request_context(&msg), this.mark);
                            }
                            complete(this, pairing, msg, pos, out, stats);
                        }
                        this.state = DirState::Ignore;
                        return input.len();
                    }
                    return i;
                };
                let raw = &rest[..end];
                i += end;
                match build_message(this, raw, pos) {
                    Some(msg) => start_body(this, other, pairing, cfg, msg, pos, out, stats),
                    None => this.state = DirState::Resync,
                }
            }
            DirState::Body => {
                let Some(inflight) = this.current.as_mut() else {
                    this.state = DirState::Start;
                    continue;
                };
                let rest = &input[i..];
                match inflight.progress {
                    Progress::Length(rem) => {
                        let n = (rem.min(rest.len() as u64)) as usize;
                        inflight.keep(&rest[..n], cfg.body_cap);
                        i += n;
                        let rem = rem - n as u64;
                        inflight.progress = Progress::Length(rem);
                        if rem == 0 {
                            finish_current(this, pairing, pos, out, stats);
                        }
                    }
                    Progress::Close => {
                        inflight.keep(rest, cfg.body_cap);
                        return input.len();
                    }
                    Progress::Chunked(state) => {
                        let before = this.searched.of(this.input_base + i as u64, rest.len());
                        match chunk_step(inflight, state, rest, before.len, cfg) {
                            ChunkStep::Consumed(n) => i += n,
                            ChunkStep::NeedMore => {
                                this.searched = Searched {
                                    len: rest.len(),
                                    ..before
                                };
                                return i;
                            }
                            ChunkStep::Done(n) => {
                                i += n;
                                finish_current(this, pairing, pos, out, stats);
                            }
                            ChunkStep::Malformed(n, line) => {
                                i += n;
                                inflight.msg.add_anomaly(AnomalyKind::MalformedChunk, line);
                                finish_current(this, pairing, pos, out, stats);
                                this.state = DirState::Resync;
                            }
                        }
                    }
                }
            }
        }
    }
    input.len().min(i)
}

enum ChunkStep {
    Consumed(usize),
    NeedMore,
    Done(usize),
    Malformed(usize, String),
}

/// Longest chunk-size line (size and extensions) read.
const MAX_CHUNK_LINE: usize = 4096;

/// One step of de-chunking; `searched` bytes of `rest` were searched before, in vain, for
/// the end of the chunk-size line or trailer section that starts it.
fn chunk_step(
    inflight: &mut InFlight,
    state: ChunkState,
    rest: &[u8],
    searched: usize,
    cfg: HttpConfig,
) -> ChunkStep {
    match state {
        ChunkState::Size => {
            let from = searched.min(MAX_CHUNK_LINE);
            let line_end = rest[from..]
                .iter()
                .take(MAX_CHUNK_LINE - from)
                .position(|&b| b == b'\n');
            let Some(lf) = line_end.map(|p| from + p) else {
                if rest.len() >= MAX_CHUNK_LINE {
                    return ChunkStep::Malformed(
                        rest.len(),
                        format!("chunk-size line longer than {MAX_CHUNK_LINE} bytes"),
                    );
                }
                return ChunkStep::NeedMore;
            };
            let line = &rest[..lf];
            let (line, bare_lf) = match line.strip_suffix(b"\r") {
                Some(l) => (l, false),
                None => (line, true),
            };
            if bare_lf {
                inflight
                    .msg
                    .add_anomaly(AnomalyKind::BareLf, "chunk-size line ends with a bare LF");
            }
            match parse_chunk_size_line(line) {
                Some(0) => {
                    inflight.progress = Progress::Chunked(ChunkState::Trailers);
                    ChunkStep::Consumed(lf + 1)
                }
                Some(n) => {
                    inflight.progress = Progress::Chunked(ChunkState::Data(n));
                    ChunkStep::Consumed(lf + 1)
                }
                None => ChunkStep::Malformed(
                    lf + 1,
                    format!(
                        "invalid chunk-size line {:?}",
                        String::from_utf8_lossy(line)
                    ),
                ),
            }
        }
        ChunkState::Data(rem) => {
            let n = (rem.min(rest.len() as u64)) as usize;
            inflight.keep(&rest[..n], cfg.body_cap);
            let rem = rem - n as u64;
            inflight.progress = Progress::Chunked(if rem == 0 {
                ChunkState::DataEnd
            } else {
                ChunkState::Data(rem)
            });
            ChunkStep::Consumed(n)
        }
        ChunkState::DataEnd => {
            if rest.starts_with(b"\r\n") {
                inflight.progress = Progress::Chunked(ChunkState::Size);
                ChunkStep::Consumed(2)
            } else if rest.starts_with(b"\n") {
                inflight
                    .msg
                    .add_anomaly(AnomalyKind::BareLf, "chunk data ends with a bare LF");
                inflight.progress = Progress::Chunked(ChunkState::Size);
                ChunkStep::Consumed(1)
            } else if rest == b"\r" {
                ChunkStep::NeedMore
            } else {
                ChunkStep::Malformed(0, "chunk data not followed by CRLF".into())
            }
        }
        ChunkState::Trailers => {
            // Trailer section: field lines up to an empty line.
            let Some(end) = trailer_end(rest, searched) else {
                if rest.len() > cfg.max_head {
                    return ChunkStep::Malformed(rest.len(), "trailer section too large".into());
                }
                return ChunkStep::NeedMore;
            };
            let section = &rest[..end];
            inflight.msg.body.trailers = parse_trailers(section);
            ChunkStep::Done(end)
        }
    }
}

/// End of a trailer section (which may be empty: just CRLF); `searched` bytes of `rest`
/// were searched before.
fn trailer_end(rest: &[u8], searched: usize) -> Option<usize> {
    if rest.starts_with(b"\r\n") {
        return Some(2);
    }
    if rest.starts_with(b"\n") {
        return Some(1);
    }
    head::find_head_end(rest, searched)
}

fn parse_trailers(section: &[u8]) -> Vec<Header> {
    section
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            Some(Header {
                name: String::from_utf8_lossy(&line[..colon]).trim().to_string(),
                value: String::from_utf8_lossy(&line[colon + 1..])
                    .trim()
                    .to_string(),
            })
        })
        .collect()
}

fn keep_body(body: &mut Body, data: &[u8], cap: usize) {
    body.size += data.len() as u64;
    content_stream::keep(body, data, cap);
}

fn request_context(msg: &Message) -> RequestContext {
    let method = msg.method().unwrap_or("");
    RequestContext {
        head: method == "HEAD",
        connect: method == "CONNECT",
        http09: msg.has_anomaly(AnomalyKind::Http09),
    }
}

/// Parses a complete head into a message (body still to come).
fn build_message(this: &mut DirParser, raw: &[u8], pos: Pos) -> Option<Message> {
    let parsed = head::parse_head(this.side, raw)?;
    let first = this.msg_start.take().unwrap_or(pos);
    let mut msg = Message {
        start: parsed.start,
        headers: parsed.headers,
        raw_head: raw.to_vec(),
        body: Body::default(),
        first_frame: first.frame,
        head_frame: pos.frame,
        last_frame: pos.frame,
        first_ts: first.ts,
        head_ts: pos.ts,
        last_ts: pos.ts,
        last_order: pos.order,
        anomalies: parsed
            .anomalies
            .into_iter()
            .map(|(k, d)| Anomaly::new(k, d))
            .collect(),
        head_complete: true,
    };
    if let StartLine::Request { version, .. } = &mut msg.start
        && version.is_empty()
        && msg.anomalies.iter().any(|a| a.kind == AnomalyKind::Http09)
    {
        *version = "HTTP/0.9".into();
    }
    if let Some(kind) = this.head_damage.take() {
        msg.add_anomaly(kind, "part of the head was not captured");
        msg.head_complete = false;
    }
    let lost = std::mem::take(&mut this.lost_before);
    if lost > 0 {
        msg.add_anomaly(
            AnomalyKind::GapBeforeMessage,
            format!("{lost} bytes before this message were not captured"),
        );
    }
    if let Some((n, sample)) = this.junk.take() {
        msg.add_anomaly(
            AnomalyKind::JunkBeforeMessage,
            format!("{n} bytes before the start line: {sample:?}"),
        );
    }
    this.skipped = 0;
    Some(msg)
}

/// Makes what we can of a head that never finished (gap, cut, connection end).
fn parse_partial_head(this: &mut DirParser, partial: &[u8], pos: Pos) -> Option<Message> {
    let start = skip_empty_lines(partial);
    let partial = &partial[start..];
    if partial.is_empty() || head::looks_like(this.side, partial) == StartGuess::No {
        this.msg_start = None;
        return None;
    }
    // Drop a final incomplete line, then close the head.
    let cut = partial
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(partial.len(), |p| p + 1);
    let mut head = partial[..cut].to_vec();
    if head.is_empty() {
        head.extend_from_slice(partial);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut msg = build_message(this, &head, pos)?;
    msg.raw_head = partial.to_vec();
    msg.head_complete = false;
    if !partial.contains(&b'\n') {
        // The start line itself was cut: what it lacks is the capture's doing, not the
        // sender's.
        msg.anomalies.retain(|a| {
            !matches!(
                a.kind,
                AnomalyKind::InvalidRequestLine
                    | AnomalyKind::InvalidStatusLine
                    | AnomalyKind::Http09
            )
        });
        if let StartLine::Request { version, .. } = &mut msg.start
            && !matches!(version.as_str(), "HTTP/1.0" | "HTTP/1.1")
        {
            version.clear();
        }
    }
    Some(msg)
}

/// After a head: decide the framing and move to the body (or complete the message).
#[allow(clippy::too_many_arguments)]
fn start_body(
    this: &mut DirParser,
    other: &mut DirParser,
    pairing: &mut Pairing,
    cfg: HttpConfig,
    mut msg: Message,
    pos: Pos,
    out: &mut Vec<Exchange>,
    stats: &mut HttpStats,
) {
    let ctx = match this.side {
        Side::Request => {
            let ctx = request_context(&msg);
            pairing.request_head(ctx, this.mark);
            pairing.client_may_tunnel = ctx.connect || msg.has_header("upgrade");
            RequestContext::default()
        }
        Side::Response => pairing.pair_response(this.mark, out),
    };
    let decision = decide_framing(this.side, msg.status(), &msg.headers, ctx);
    for (kind, detail) in decision.anomalies {
        msg.add_anomaly(kind, detail);
    }
    msg.body.framing = decision.framing;
    let progress = match decision.framing {
        Framing::None | Framing::Frames => None,
        Framing::Tunnel => {
            complete(this, pairing, msg, pos, out, stats);
            start_tunnel(this, other, pairing);
            return;
        }
        Framing::Undetermined => {
            // Its body and every later byte of the client's stream are one unknown: rules
            // judge its head only, and nothing after it is read as further requests.
            msg.body.captured_all = false;
            complete(this, pairing, msg, pos, out, stats);
            stats.undetermined_request_length += 1;
            this.state = DirState::Ignore;
            this.buf = Vec::new();
            return;
        }
        Framing::ContentLength(0) => None,
        Framing::ContentLength(n) => Some(Progress::Length(n)),
        Framing::Chunked => Some(Progress::Chunked(ChunkState::Size)),
        Framing::Close => Some(Progress::Close),
    };
    match progress {
        None => {
            complete(this, pairing, msg, pos, out, stats);
            this.state = DirState::Start;
        }
        Some(progress) => {
            let content = ContentStream::for_message(&msg, decision.framing, cfg.validate_json);
            this.current = Some(InFlight {
                msg,
                progress,
                content,
            });
            this.state = DirState::Body;
        }
    }
}

fn start_tunnel(this: &mut DirParser, other: &mut DirParser, pairing: &mut Pairing) {
    pairing.tunnel = true;
    for p in [this, other] {
        p.state = DirState::Ignore;
        let buf = std::mem::take(&mut p.buf);
        if p.keep_tunnel_rest {
            p.tunnel_rest.extend_from_slice(&buf);
        }
    }
}

/// A response to an HTTP/0.9 request: no status line, no head; the body runs to close.
fn start_http09_response(this: &mut DirParser, pos: Pos) {
    let msg = Message {
        start: StartLine::Response {
            version: "HTTP/0.9".into(),
            status: 200,
            reason: String::new(),
        },
        headers: Vec::new(),
        raw_head: Vec::new(),
        body: Body {
            framing: Framing::Close,
            ..Body::default()
        },
        first_frame: pos.frame,
        head_frame: pos.frame,
        last_frame: pos.frame,
        first_ts: pos.ts,
        head_ts: pos.ts,
        last_ts: pos.ts,
        last_order: pos.order,
        anomalies: vec![Anomaly::new(
            AnomalyKind::Http09,
            "HTTP/0.9 response: no status line",
        )],
        // There is no head to judge.
        head_complete: false,
    };
    this.current = Some(InFlight {
        msg,
        progress: Progress::Close,
        content: None,
    });
    this.state = DirState::Body;
    this.synced = true;
}

/// The first bytes of `bytes` as printable text, for evidence.
fn sample_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}

/// Bytes where the next message should start are not a start line: judge the previous
/// message by how it was framed.
fn junk_after_message(this: &mut DirParser, pairing: &mut Pairing, input: &[u8], at: usize) {
    let sample = sample_of(&input[at..]);
    if !this.synced {
        return;
    }
    match this.side {
        Side::Response => {
            let next_start = find_start(Side::Response, input, at);
            this.junk_after_length = next_start.is_none()
                && pairing
                    .held
                    .as_ref()
                    .and_then(|e| e.response.as_ref())
                    .is_some_and(|r| matches!(r.body.framing, Framing::ContentLength(_)));
            pairing.flag_held_response(|resp| {
                let framing = resp.body.framing;
                let status = resp.status().unwrap_or(0);
                let detail = format!("bytes after the message: {sample:?}");
                match framing {
                    Framing::None if status == 204 => (AnomalyKind::BodyOn204, detail),
                    Framing::None if status == 304 => (AnomalyKind::BodyOn304, detail),
                    Framing::None if (200..300).contains(&status) || status >= 300 => {
                        (AnomalyKind::BodyOnHead, detail)
                    }
                    Framing::ContentLength(_) if next_start.is_some() => (
                        AnomalyKind::ContentLengthMismatch,
                        format!(
                            "{} more bytes than Content-Length before the next response",
                            next_start.unwrap_or(at) - at
                        ),
                    ),
                    _ => (AnomalyKind::ExtraData, detail),
                }
            });
        }
        Side::Request => {
            let detail = format!("bytes after the request: {sample:?}");
            if let Some(req) = pairing
                .slots
                .iter_mut()
                .rev()
                .find_map(|s| s.request.as_mut())
            {
                req.add_anomaly(AnomalyKind::ExtraData, detail);
            }
        }
    }
}

/// The body of the current message ended where its framing said.
fn finish_current(
    this: &mut DirParser,
    pairing: &mut Pairing,
    pos: Pos,
    out: &mut Vec<Exchange>,
    stats: &mut HttpStats,
) {
    if let Some(inflight) = this.current.take() {
        complete(this, pairing, inflight.into_message(), pos, out, stats);
    }
    this.state = DirState::Start;
}

/// A message is complete: stamp where it ended and hand it to pairing.
fn complete(
    this: &mut DirParser,
    pairing: &mut Pairing,
    mut msg: Message,
    pos: Pos,
    out: &mut Vec<Exchange>,
    stats: &mut HttpStats,
) {
    msg.last_frame = pos.frame;
    msg.last_ts = pos.ts;
    msg.last_order = pos.order;
    match this.side {
        Side::Request => {
            stats.requests += 1;
            pairing.request_done(msg, out);
        }
        Side::Response => {
            stats.responses += 1;
            pairing.response_done(msg, this.mark, out);
        }
    }
}

/// The connection ended: complete whatever this direction was in the middle of.
fn finish_direction(
    this: &mut DirParser,
    pairing: &mut Pairing,
    pos: Pos,
    out: &mut Vec<Exchange>,
    stats: &mut HttpStats,
) {
    if !this.synced || this.state == DirState::Resync {
        // A request line without its line end (`GET /x HTTP/1.1` then FIN) is a request
        // cut short, not noise.
        promote_partial_start(this, pos);
    }
    match this.state {
        DirState::Head => {
            let partial = std::mem::take(&mut this.buf);
            if let Some(mut msg) = parse_partial_head(this, &partial, pos) {
                msg.add_anomaly(
                    AnomalyKind::Truncated,
                    "the connection ended inside the head",
                );
                if this.side == Side::Request {
                    pairing.request_head(request_context(&msg), this.mark);
                }
                complete(this, pairing, msg, pos, out, stats);
            }
        }
        DirState::Body => {
            if let Some(mut inflight) = this.current.take() {
                match inflight.progress {
                    Progress::Close => {
                        if !this.saw_fin {
                            inflight.msg.add_anomaly(
                                AnomalyKind::Truncated,
                                "the capture ended before the connection closed",
                            );
                        }
                    }
                    Progress::Length(rem) => {
                        let detail =
                            format!("{rem} bytes of the declared Content-Length never arrived");
                        if this.saw_fin && !inflight.msg.is_incomplete() {
                            inflight
                                .msg
                                .add_anomaly(AnomalyKind::ContentLengthMismatch, detail);
                        } else {
                            inflight.msg.add_anomaly(AnomalyKind::Truncated, detail);
                        }
                    }
                    Progress::Chunked(_) => {
                        if this.saw_fin && !inflight.msg.is_incomplete() {
                            inflight.msg.add_anomaly(
                                AnomalyKind::ChunkedIncomplete,
                                "the connection closed before the last chunk",
                            );
                        } else {
                            inflight.msg.add_anomaly(
                                AnomalyKind::Truncated,
                                "the capture ended before the last chunk",
                            );
                        }
                    }
                }
                complete(this, pairing, inflight.into_message(), pos, out, stats);
            }
        }
        DirState::Start if !this.buf.is_empty() && this.synced => {
            let buf = std::mem::take(&mut this.buf);
            junk_after_message(this, pairing, &buf, 0);
        }
        _ => {}
    }
    // Bytes beyond a Content-Length and then the server's close: no next response explains
    // them, so the length was short (RFC 9112 §6.3), not followed by stray bytes.
    if this.saw_fin && std::mem::take(&mut this.junk_after_length) {
        pairing.reclassify_held_response(
            AnomalyKind::ExtraData,
            AnomalyKind::ContentLengthMismatch,
            "more bytes than Content-Length, then the connection closed",
        );
    }
    this.state = DirState::Ignore;
    this.buf = Vec::new();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameRef;
    use crate::http::MAX_INTERIM;
    use proptest::prelude::*;

    fn pos(n: u64) -> Pos {
        Pos {
            frame: FrameRef { file: 0, number: n },
            ts: crate::time::Timestamp(n as i64),
            order: n,
        }
    }

    /// One connection (client known from the SYN): the client's bytes, then the server's,
    /// then FIN both ways; its exchanges and counters.
    fn conversation(client: &[u8], server: &[u8]) -> (Vec<Exchange>, HttpStats) {
        fed_in_pieces(client, server, &[])
    }

    #[test]
    fn requests_past_the_outstanding_cap_are_counted_not_paired() {
        let extra = 5;
        let mut requests = Vec::new();
        for i in 0..MAX_OUTSTANDING + extra {
            requests.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        let mut responses = Vec::new();
        for _ in 0..MAX_OUTSTANDING + extra {
            responses.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        }
        let (out, stats) = conversation(&requests, &responses);
        assert_eq!(stats.requests_over_cap, extra as u64);
        let flagged = out
            .iter()
            .filter(|e| {
                e.anomalies
                    .iter()
                    .any(|a| a.kind == AnomalyKind::TooManyOutstandingRequests)
            })
            .count();
        assert_eq!(flagged, 1, "once per connection");
        let paired = out
            .iter()
            .filter(|e| e.request.is_some() && e.response.is_some())
            .count();
        assert_eq!(paired, MAX_OUTSTANDING);
    }

    #[test]
    fn interim_responses_past_the_cap_are_counted_not_kept() {
        let request = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        let mut responses = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM + 100);
        responses.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        let (out, _) = conversation(request, &responses);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].interim.len(), MAX_INTERIM);
        assert_eq!(out[0].response.as_ref().and_then(|r| r.status()), Some(204));
        let capped: Vec<&str> = out[0]
            .anomalies
            .iter()
            .filter(|a| a.kind == AnomalyKind::TooManyInterimResponses)
            .map(|a| a.detail.as_str())
            .collect();
        assert_eq!(
            capped,
            ["100 more interim responses after the first 16 were not kept"]
        );
    }

    /// Requests of every framing, line ending and version, and one malformed.
    const REQUESTS: [&[u8]; 8] = [
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        b"GET /d HTTP/1.1\nHost: x\n\n",
        b"HEAD /e HTTP/1.0\r\n\r\n",
        b"PUT /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /g\r\n",
        concat!(
            "GET /long?q=0123456789012345678901234567890123456789012345678901234567890123456789",
            "0123456789012345678901234567890123456789012345678901234567890123456789 HTTP/1.1\r\n",
            "Host: x\r\n\r\n"
        )
        .as_bytes(),
    ];
    const RESPONSES: [&[u8]; 5] = [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 2\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
    ];

    /// Some of `choices`, back to back.
    fn messages(choices: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(choices), 0..6).prop_map(|m| m.concat())
    }

    /// Stream pieces: (direction, kind 0 data / 1 gap / 2 cut / 3 conflict, bytes).
    fn pieces() -> impl Strategy<Value = Vec<(usize, u8, Vec<u8>)>> {
        let http_ish = prop::collection::vec(
            prop_oneof![
                Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
                Just(b"GET / HTTP/1.1\r\n".to_vec()),
                Just(b"Content-Length: 3\r\n".to_vec()),
                Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
                Just(b" folded\r\n".to_vec()),
                Just(b"HEAD /x HTTP/1.0\n".to_vec()),
                prop::collection::vec(any::<u8>(), 0..40),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat());
        prop::collection::vec((0usize..2, 0u8..4, http_ish), 0..40)
    }

    /// One connection's bytes fed in pieces cut at `cuts` (offsets, any order): client,
    /// then server, then FIN both ways; its exchanges and counters.
    fn fed_in_pieces(client: &[u8], server: &[u8], cuts: &[usize]) -> (Vec<Exchange>, HttpStats) {
        let ends = [
            SocketAddr::from(([10, 0, 0, 1], 40000)),
            SocketAddr::from(([192, 0, 2, 10], 80)),
        ];
        let mut conn =
            HttpConnection::new(HttpConfig::default(), ends, pos(1), Some(0), [false, false]);
        let mut out = Vec::new();
        for (dir, bytes) in [(0, client), (1, server)] {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            at.extend([0, bytes.len()]);
            at.sort_unstable();
            for w in at.windows(2) {
                conn.piece(
                    dir,
                    Piece::Data(&bytes[w[0]..w[1]]),
                    pos(2 + dir as u64),
                    &mut out,
                );
            }
        }
        conn.close([true, true], CloseReason::Closed, pos(4), &mut out);
        (out, conn.stats)
    }

    /// `out` without the samples of skipped bytes in anomalies: a sample shows what was
    /// buffered when the skipping began, which depends on where segments end.
    fn without_samples(mut out: Vec<Exchange>) -> Vec<Exchange> {
        let messages = out
            .iter_mut()
            .flat_map(|e| [e.request.as_mut(), e.response.as_mut()])
            .flatten();
        for m in messages {
            for a in &mut m.anomalies {
                if let Some(colon) = a.detail.find(": \"") {
                    a.detail.truncate(colon);
                }
            }
        }
        out
    }

    /// A head, chunk-size line and trailer section one byte per segment (the searches
    /// resume where they stopped): the same exchanges as in one piece each.
    #[test]
    fn sections_one_byte_per_segment_read_as_in_one_piece() {
        let client = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n\
            GET /next HTTP/1.1\nHost: x\n\n\
            GET /nine\r\n";
        let server = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            2\r\nok\r\n0\r\n\r\n\
            HTTP/1.1 204 No Content\r\n\r\n";
        let (whole, _) = fed_in_pieces(client, server, &[]);
        let bytes: Vec<usize> = (0..client.len().max(server.len())).collect();
        let (split, _) = fed_in_pieces(client, server, &bytes);
        assert_eq!(whole.len(), 3, "{whole:#?}");
        assert_eq!(format!("{whole:?}"), format!("{split:?}"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Messages read in pieces give the exchanges they give in one piece.
        #[test]
        fn pieces_read_as_one(client in messages(&REQUESTS), server in messages(&RESPONSES), cuts in prop::collection::vec(any::<usize>(), 0..64)) {
            let whole = without_samples(fed_in_pieces(&client, &server, &[]).0);
            let split = without_samples(fed_in_pieces(&client, &server, &cuts).0);
            prop_assert_eq!(format!("{whole:?}"), format!("{split:?}"));
        }

        /// Whatever bytes, gaps and cuts arrive in whatever order, the http stage neither
        /// panics nor loses track of its own bookkeeping.
        #[test]
        fn arbitrary_streams_never_panic(hint in prop::option::of(0usize..2), mid in any::<bool>(), input in pieces()) {
            let ends: [SocketAddr; 2] = ["10.0.0.1:40000".parse().unwrap(), "10.0.0.2:80".parse().unwrap()];
            let mut conn = HttpConnection::new(HttpConfig::default(), ends, pos(1), hint, [mid, mid]);
            let mut out = Vec::new();
            for (i, (dir, kind, bytes)) in input.iter().enumerate() {
                let p = pos(i as u64 + 2);
                let piece = match kind {
                    0 => Piece::Data(bytes),
                    1 => Piece::Gap(bytes.len() as u64 + 1),
                    2 => Piece::Cut(bytes.len() as u64 + 1),
                    _ => Piece::Conflict,
                };
                conn.piece(*dir, piece, p, &mut out);
            }
            conn.close([true, false], CloseReason::Closed, pos(1000), &mut out);
            for (i, ex) in out.iter().enumerate() {
                prop_assert!(ex.request.is_some() || ex.response.is_some(), "exchange {i} is empty");
            }
        }
    }
}
