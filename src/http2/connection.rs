//! One HTTP/2 connection: both directions' frames read in order, header blocks decoded with
//! each direction's HPACK state, streams assembled into exchanges, flow control and frame
//! sizes followed so that violations become anomalies.
//!
//! A gap in either direction loses HPACK state (every later header block may refer to
//! entries that were in the lost bytes), so decoding stops there: the open streams are
//! released marked incomplete and the connection is counted, rather than guessed at.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::frames::{self, FrameHeader, FrameType};
use super::hpack::HeaderDecoder;
use super::streams::{Role, Stream, build_message};
use crate::http::{
    Anomaly, AnomalyKind, Connection, Exchange, HttpConfig, HttpStats, Message, Pos, TlsInfo,
};
use crate::reassembly::{CloseReason, Piece};

mod joined_late;

/// A header block larger than this (HEADERS + CONTINUATION) is an attack, not traffic.
const MAX_HEADER_BLOCK: usize = 1024 * 1024;
/// Streams open at once before the oldest is released unfinished (servers allow ~100).
const MAX_OPEN_STREAMS: usize = 4096;
/// Largest window RFC 9113 §6.9.1 allows.
const MAX_WINDOW: i64 = (1 << 31) - 1;

/// A header block whose CONTINUATION frames are still arriving.
#[derive(Debug)]
struct Block {
    stream: u32,
    /// PUSH_PROMISE: the stream the server promises.
    promised: Option<u32>,
    end_stream: bool,
    fragments: Vec<u8>,
    first: Pos,
}

/// What one direction is in the middle of.
#[derive(Debug, Default)]
struct Dir {
    buf: Vec<u8>,
    /// The client has yet to send the connection preface.
    expect_preface: bool,
    /// Decodes the header blocks this direction sends.
    decoder: HeaderDecoder,
    block: Option<Block>,
    /// Highest stream id this direction opened (client: requests; server: pushes).
    last_opened: u32,
    /// Flow-control window of the connection for DATA this direction sends.
    window: i64,
    /// Initial stream window for DATA this direction sends (the peer's SETTINGS).
    initial_window: i64,
    /// Largest frame this direction may send (the peer's SETTINGS_MAX_FRAME_SIZE).
    max_frame: u32,
    /// Joined late: looking for the first frame boundary (see [`super::sync`]).
    syncing: bool,
    /// Searches for the boundary so far, and the buffer length at the last one.
    sync_tries: u32,
    sync_len: usize,
}

/// HTTP/2 over one TCP connection (h2c, or h2 once TLS is decrypted).
#[derive(Debug)]
pub struct Http2Connection {
    cfg: HttpConfig,
    connection: Arc<Connection>,
    /// The direction the client sends on.
    client: usize,
    dirs: [Dir; 2],
    streams: BTreeMap<u32, Stream>,
    next_index: u32,
    /// Connection-level anomalies seen while no stream was open: given to the next one.
    pending: Vec<Anomaly>,
    push_enabled: bool,
    server_seen: bool,
    stopped: bool,
    /// The capture joined the connection after it began: settings, windows and the header
    /// tables of before are unknown, so nothing that depends on them is judged.
    joined_late: bool,
    /// Joined late: the first stream the client opened within the capture; lower ids
    /// belong to streams opened before it.
    first_opened: Option<u32>,
    /// Memory of the open streams (their messages as far as read), kept up to date per
    /// frame ([`Stream::recount`]) so that [`Http2Connection::buffered`] is O(1).
    stream_bytes: usize,
    pub stats: HttpStats,
}

impl Http2Connection {
    /// A connection that starts with HTTP/2 (prior knowledge, or ALPN `h2`): the client's
    /// first bytes are the connection preface.
    pub fn new(
        cfg: HttpConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client: usize,
        mid_stream: [bool; 2],
        tls: Option<TlsInfo>,
    ) -> Self {
        let connection = Arc::new(Connection {
            client: ends[client],
            server: ends[1 - client],
            first_frame: first.frame,
            first_ts: first.ts,
            tls: tls.is_some(),
            tls_info: tls,
            mid_stream: mid_stream.iter().any(|m| *m),
        });
        Self::with_connection(cfg, connection, client, 0)
    }

    fn with_connection(
        cfg: HttpConfig,
        connection: Arc<Connection>,
        client: usize,
        next_index: u32,
    ) -> Self {
        let dir = |preface| Dir {
            expect_preface: preface,
            window: frames::DEFAULT_WINDOW,
            initial_window: frames::DEFAULT_WINDOW,
            max_frame: frames::DEFAULT_MAX_FRAME_SIZE,
            ..Dir::default()
        };
        let mut dirs = [dir(false), dir(false)];
        dirs[client].expect_preface = true;
        for d in &mut dirs {
            // A head is a head: HTTP/2's decoded header list has HTTP/1's cap.
            d.decoder.set_list_limit(cfg.max_head);
        }
        let stats = HttpStats {
            http2_connections: 1,
            ..HttpStats::default()
        };
        Http2Connection {
            cfg,
            connection,
            client,
            dirs,
            streams: BTreeMap::new(),
            next_index,
            pending: Vec::new(),
            push_enabled: true,
            server_seen: false,
            stopped: false,
            joined_late: false,
            first_opened: None,
            stream_bytes: 0,
            stats,
        }
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c` answered by 101, RFC 7540 §3.2):
    /// the upgrading request is stream 1, already sent; its 101 is kept as an interim
    /// response. `http2_settings` is the request's `HTTP2-Settings` value.
    pub fn upgraded(
        cfg: HttpConfig,
        connection: Arc<Connection>,
        client: usize,
        index: u32,
        request: Message,
        switching: Message,
    ) -> Self {
        let mut conn = Self::with_connection(cfg, connection, client, index + 1);
        // The client's SETTINGS ride in HTTP2-Settings and apply to the server at once.
        if let Some(payload) = request
            .header("http2-settings")
            .and_then(frames::base64url_decode)
            && let Ok(pairs) = frames::settings(&payload)
        {
            conn.apply_settings(client, &pairs, None);
        }
        let mut stream = Stream::new(
            1,
            index,
            [conn.dirs[0].initial_window, conn.dirs[1].initial_window],
        );
        stream.request = Some(request);
        stream.request_done = true;
        stream.interim.push(switching);
        conn.dirs[client].last_opened = 1;
        conn.streams.insert(1, stream);
        conn
    }

    /// True once decoding stopped (a gap, or a broken header block): later bytes are useless.
    pub fn is_done(&self) -> bool {
        self.stopped
    }

    /// Memory the connection holds: frame and header-block buffers, the header tables,
    /// and the open streams with their messages and kept bodies (a peer opening 4,096
    /// streams with 256 KiB of body each must count against the budget).
    pub fn buffered(&self) -> usize {
        let dirs: usize = self
            .dirs
            .iter()
            .map(|d| {
                d.buf.capacity()
                    + d.block.as_ref().map_or(0, |b| b.fragments.capacity())
                    + d.decoder.memory()
            })
            .sum();
        std::mem::size_of::<Self>() + dirs + self.stream_bytes
    }

    /// Recounts stream `id` after a frame touched it.
    fn recount(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            let (before, now) = s.recount();
            self.stream_bytes = (self.stream_bytes + now).saturating_sub(before);
        }
    }

    /// Takes the next piece of direction `dir`'s byte stream.
    pub fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, out: &mut Vec<Exchange>) {
        if self.stopped || dir > 1 {
            return;
        }
        match piece {
            Piece::Data(data) => {
                if dir != self.client {
                    self.server_seen = true;
                }
                if self.dirs.iter().any(|d| d.syncing) {
                    self.dirs[dir].buf.extend_from_slice(data);
                    self.sync(pos, out, false);
                } else if self.dirs[dir].buf.is_empty() {
                    let used = self.process(dir, data, pos, out);
                    if !self.stopped {
                        self.dirs[dir].buf.extend_from_slice(&data[used..]);
                    }
                } else {
                    let mut buf = std::mem::take(&mut self.dirs[dir].buf);
                    buf.extend_from_slice(data);
                    let used = self.process(dir, &buf, pos, out);
                    buf.drain(..used);
                    if !self.stopped {
                        self.dirs[dir].buf = buf;
                    }
                }
            }
            Piece::Gap(n) => self.stop(
                AnomalyKind::Gap,
                format!("{n} bytes not captured; HPACK state lost"),
                pos,
                out,
            ),
            Piece::Cut(n) => self.stop(
                AnomalyKind::Truncated,
                format!("{n} bytes cut by the snaplen; HPACK state lost"),
                pos,
                out,
            ),
            Piece::Conflict => {
                for s in self.streams.values_mut() {
                    s.flag(
                        AnomalyKind::ConflictingOverlap,
                        "a retransmitted segment carried different bytes; the first copy was kept",
                    );
                }
            }
        }
    }

    /// Ends the connection: every stream still open is released.
    pub fn close(
        &mut self,
        fin: [bool; 2],
        reason: CloseReason,
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        if !self.stopped && self.dirs.iter().any(|d| d.syncing && !d.buf.is_empty()) {
            self.sync(pos, out, true);
        }
        let closed = reason == CloseReason::Closed;
        let server_seen = self.server_seen || (fin[1 - self.client] && closed);
        let streams = std::mem::take(&mut self.streams);
        for (_, mut s) in streams {
            let detail = if closed {
                "the connection closed before the stream ended"
            } else {
                "the capture ended before the stream did"
            };
            for (role, done) in [
                (Role::Request, s.request_done),
                (Role::Response, s.response_done),
            ] {
                if !done && let Some(m) = s.message_mut(role) {
                    m.add_anomaly(AnomalyKind::Truncated, detail);
                }
            }
            if s.request.is_some() && s.response.is_none() && server_seen && !self.stopped {
                s.flag(
                    AnomalyKind::UnansweredRequest,
                    "the connection ended before a response",
                );
            }
            self.emit(s, pos, out);
        }
        for d in &mut self.dirs {
            d.buf = Vec::new();
            d.block = None;
        }
        self.stats.http2_connections = 1;
    }

    /// Decoding cannot go on: open streams are released as they are, marked incomplete.
    fn stop(&mut self, kind: AnomalyKind, detail: String, pos: Pos, out: &mut Vec<Exchange>) {
        self.stopped = true;
        self.stats.http2_decoding_stopped += 1;
        let streams = std::mem::take(&mut self.streams);
        for (_, mut s) in streams {
            for (role, done) in [
                (Role::Request, s.request_done),
                (Role::Response, s.response_done),
            ] {
                if !done && let Some(m) = s.message_mut(role) {
                    m.add_anomaly(kind, detail.clone());
                }
            }
            s.flag(AnomalyKind::H2DecodingStopped, detail.clone());
            self.emit(s, pos, out);
        }
        for d in &mut self.dirs {
            d.buf = Vec::new();
            d.block = None;
        }
    }

    fn emit(&mut self, s: Stream, pos: Pos, out: &mut Vec<Exchange>) {
        self.stream_bytes = self.stream_bytes.saturating_sub(s.counted);
        self.stats.exchanges += 1;
        self.stats.requests += u64::from(s.request.is_some());
        self.stats.responses += u64::from(s.response.is_some());
        self.stats.http_connections = 1;
        out.push(s.into_exchange(&self.connection, pos.order));
    }

    /// An anomaly of the connection as a whole: every open stream carries it (or the next
    /// stream, when none is open).
    fn flag_connection(&mut self, kind: AnomalyKind, detail: String) {
        if self.streams.is_empty() {
            if !self.pending.iter().any(|a| a.kind == kind) {
                self.pending.push(Anomaly::new(kind, detail));
            }
            return;
        }
        for s in self.streams.values_mut() {
            s.flag(kind, detail.clone());
        }
    }

    /// An anomaly of one stream, or of the connection when the stream is not open.
    fn flag_stream(&mut self, id: u32, kind: AnomalyKind, detail: String) {
        match self.streams.get_mut(&id) {
            Some(s) => s.flag(kind, detail),
            None => self.flag_connection(kind, detail),
        }
    }

    fn side(&self, dir: usize) -> &'static str {
        if dir == self.client {
            "client"
        } else {
            "server"
        }
    }

    /// Reads whole frames from `input`; returns the bytes consumed.
    fn process(&mut self, dir: usize, input: &[u8], pos: Pos, out: &mut Vec<Exchange>) -> usize {
        let mut i = 0;
        if self.dirs[dir].expect_preface {
            let n = input.len().min(frames::PREFACE.len());
            if input[..n] != frames::PREFACE[..n] {
                self.stop(
                    AnomalyKind::H2ProtocolError,
                    "the client did not send the HTTP/2 connection preface".into(),
                    pos,
                    out,
                );
                return input.len();
            }
            if n < frames::PREFACE.len() {
                return 0;
            }
            self.dirs[dir].expect_preface = false;
            i = n;
        }
        while !self.stopped {
            let Some(h) = FrameHeader::parse(&input[i..]) else {
                break;
            };
            let total = frames::HEADER_LEN + h.length as usize;
            if input.len() - i < total {
                break;
            }
            let payload = &input[i + frames::HEADER_LEN..i + total];
            self.frame(dir, h, payload, pos, out);
            self.recount(h.stream);
            i += total;
        }
        if self.stopped { input.len() } else { i }
    }

    fn frame(
        &mut self,
        dir: usize,
        h: FrameHeader,
        payload: &[u8],
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        let who = self.side(dir);
        if let Some(block) = &self.dirs[dir].block
            && (h.kind != FrameType::Continuation || h.stream != block.stream)
        {
            let detail = format!(
                "{} on stream {} interrupted the header block of stream {} (the {who} broke HPACK framing)",
                h.kind.name(),
                h.stream,
                block.stream
            );
            self.flag_stream(block.stream, AnomalyKind::H2ProtocolError, detail.clone());
            self.stop(AnomalyKind::Truncated, detail, pos, out);
            return;
        }
        if h.length > self.dirs[dir].max_frame {
            let detail = format!(
                "{} frame of {} bytes from the {who}; the peer allows {}",
                h.kind.name(),
                h.length,
                self.dirs[dir].max_frame
            );
            self.flag_stream(h.stream, AnomalyKind::H2FrameSize, detail);
        }
        let role = if dir == self.client {
            Role::Request
        } else {
            Role::Response
        };
        match h.kind {
            FrameType::Data => self.data(dir, role, h, payload, pos, out),
            FrameType::Headers | FrameType::PushPromise => {
                if h.stream == 0 {
                    self.flag_connection(
                        AnomalyKind::H2ProtocolError,
                        format!("{} on stream 0 from the {who}", h.kind.name()),
                    );
                }
                let parsed = if h.kind == FrameType::Headers {
                    frames::headers_fragment(h.flags, payload).map(|f| (None, f))
                } else {
                    frames::push_promise(h.flags, payload).map(|(p, f)| (Some(p), f))
                };
                let (promised, fragment) = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        let detail = format!("{} from the {who}: {e}", h.kind.name());
                        self.flag_stream(h.stream, AnomalyKind::H2ProtocolError, detail.clone());
                        self.stop(AnomalyKind::Truncated, detail, pos, out);
                        return;
                    }
                };
                let block = Block {
                    stream: h.stream,
                    promised,
                    end_stream: h.kind == FrameType::Headers && h.flags & frames::END_STREAM != 0,
                    fragments: fragment.to_vec(),
                    first: pos,
                };
                if h.flags & frames::END_HEADERS != 0 {
                    self.header_block(dir, role, block, pos, out);
                } else {
                    self.dirs[dir].block = Some(block);
                }
            }
            FrameType::Continuation => {
                let Some(mut block) = self.dirs[dir].block.take() else {
                    let detail = format!(
                        "CONTINUATION on stream {} from the {who} without a header block",
                        h.stream
                    );
                    self.flag_stream(h.stream, AnomalyKind::H2ProtocolError, detail.clone());
                    self.stop(AnomalyKind::Truncated, detail, pos, out);
                    return;
                };
                block.fragments.extend_from_slice(payload);
                if block.fragments.len() > MAX_HEADER_BLOCK {
                    let detail = format!(
                        "header block of stream {} larger than {MAX_HEADER_BLOCK} bytes",
                        block.stream
                    );
                    self.flag_stream(block.stream, AnomalyKind::OversizedHead, detail.clone());
                    self.stop(AnomalyKind::Truncated, detail, pos, out);
                } else if h.flags & frames::END_HEADERS != 0 {
                    self.header_block(dir, role, block, pos, out);
                } else {
                    self.dirs[dir].block = Some(block);
                }
            }
            FrameType::Priority => {
                if h.length != 5 {
                    self.flag_stream(
                        h.stream,
                        AnomalyKind::H2FrameSize,
                        format!("PRIORITY of {} bytes (must be 5)", h.length),
                    );
                }
            }
            FrameType::RstStream => {
                let Some(code) = frames::u32_at(payload, 0).filter(|_| h.length == 4) else {
                    self.flag_stream(
                        h.stream,
                        AnomalyKind::H2FrameSize,
                        format!("RST_STREAM of {} bytes (must be 4)", h.length),
                    );
                    return;
                };
                if let Some(mut s) = self.streams.remove(&h.stream) {
                    s.flag(
                        AnomalyKind::H2StreamReset,
                        format!("RST_STREAM {} from the {who}", frames::error_name(code)),
                    );
                    self.emit(s, pos, out);
                }
            }
            FrameType::Settings => self.settings(dir, h, payload),
            FrameType::Ping => {
                if h.length != 8 {
                    self.flag_connection(
                        AnomalyKind::H2FrameSize,
                        format!("PING of {} bytes (must be 8)", h.length),
                    );
                }
            }
            FrameType::GoAway => {
                let (Some(last), Some(code)) =
                    (frames::u32_at(payload, 0), frames::u32_at(payload, 4))
                else {
                    self.flag_connection(
                        AnomalyKind::H2FrameSize,
                        format!("GOAWAY of {} bytes (at least 8)", h.length),
                    );
                    return;
                };
                if code != 0 {
                    let debug = String::from_utf8_lossy(&payload[8..]).into_owned();
                    let detail = format!(
                        "GOAWAY {} from the {who} (last stream {}){}",
                        frames::error_name(code),
                        last & 0x7fff_ffff,
                        if debug.is_empty() {
                            String::new()
                        } else {
                            format!(": {debug}")
                        }
                    );
                    self.flag_connection(AnomalyKind::H2GoAway, detail);
                }
            }
            FrameType::WindowUpdate => self.window_update(dir, h, payload),
            FrameType::Unknown(_) => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        dir: usize,
        role: Role,
        h: FrameHeader,
        payload: &[u8],
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        let who = self.side(dir);
        if h.stream == 0 {
            self.flag_connection(
                AnomalyKind::H2ProtocolError,
                format!("DATA on stream 0 from the {who}"),
            );
            return;
        }
        let len = i64::from(h.length);
        self.dirs[dir].window -= len;
        let conn_window = self.dirs[dir].window;
        let cap = self.cfg.body_cap;
        let before_capture = self.before_capture(h.stream);
        let Some(s) = self.streams.get_mut(&h.stream) else {
            // DATA after a reset or on a stream the capture never saw open.
            if before_capture {
                self.stats.http2_frames_before_capture += 1;
            }
            return;
        };
        s.window[dir] -= len;
        if !self.joined_late && (conn_window < 0 || s.window[dir] < 0) {
            let detail = format!(
                "DATA of {len} bytes from the {who} beyond the flow-control window ({} left for the connection, {} for the stream)",
                conn_window + len,
                s.window[dir] + len
            );
            s.flag(AnomalyKind::H2FlowControl, detail);
        }
        match frames::unpad(h.flags, payload) {
            Ok(data) => s.data(role, data, cap),
            Err(e) => s.flag(
                AnomalyKind::H2ProtocolError,
                format!("DATA from the {who}: {e}"),
            ),
        }
        if h.flags & frames::END_STREAM != 0 {
            s.end(role, pos);
            self.finish_if_complete(h.stream, pos, out);
        }
    }

    fn header_block(
        &mut self,
        dir: usize,
        role: Role,
        block: Block,
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        let who = self.side(dir);
        let decoded = self.dirs[dir].decoder.decode(&block.fragments);
        let left_out = self.dirs[dir].decoder.left_out();
        let fields = match decoded {
            Ok(f) => f,
            Err(e) => {
                let detail = format!(
                    "HPACK decoding of the {who}'s header block on stream {} failed: {e}",
                    block.stream
                );
                self.flag_stream(block.stream, AnomalyKind::H2ProtocolError, detail.clone());
                self.stop(AnomalyKind::Truncated, detail, pos, out);
                return;
            }
        };
        if let Some(promised) = block.promised {
            let mut s = self.open_stream(promised);
            let mut msg = build_message(Role::Request, fields, left_out, block.first);
            msg.head_frame = pos.frame;
            msg.head_ts = pos.ts;
            s.request = Some(msg);
            s.end(Role::Request, pos);
            s.flag(
                AnomalyKind::H2ServerPush,
                format!(
                    "pushed by the server with PUSH_PROMISE on stream {}",
                    block.stream
                ),
            );
            if role == Role::Request || !self.push_enabled {
                s.flag(
                    AnomalyKind::H2ProtocolError,
                    format!("PUSH_PROMISE from the {who} while push is not allowed"),
                );
            }
            self.dirs[dir].last_opened = self.dirs[dir].last_opened.max(promised);
            self.insert_stream(s, pos, out);
            return;
        }
        let id = block.stream;
        if !self.streams.contains_key(&id) {
            let opened = self.dirs[dir].last_opened;
            // Joined late, a client block with no pseudo-header that ends its stream is the
            // trailer of a request from before the capture, not a new request.
            let old_trailers = self.joined_late
                && block.end_stream
                && !fields.iter().any(|(n, _)| n.starts_with(b":"));
            if role == Role::Request && !id.is_multiple_of(2) && id > opened && !old_trailers {
                if self.joined_late {
                    self.first_opened.get_or_insert(id);
                }
                self.dirs[dir].last_opened = id;
                let s = self.open_stream(id);
                self.insert_stream(s, pos, out);
            } else {
                if self.before_capture(id) {
                    self.stats.http2_frames_before_capture += 1;
                    return;
                }
                let closed = id
                    <= self.dirs[self.client]
                        .last_opened
                        .max(self.dirs[1 - self.client].last_opened);
                if !closed || role == Role::Request {
                    self.flag_connection(
                        AnomalyKind::H2ProtocolError,
                        format!("HEADERS from the {who} on stream {id}, which is not open"),
                    );
                }
                return;
            }
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let had_message = s.message_mut(role).is_some();
        s.header_block(role, fields, left_out, block.end_stream, pos);
        if !had_message && let Some(m) = s.message_mut(role) {
            m.first_frame = block.first.frame;
            m.first_ts = block.first.ts;
        }
        self.finish_if_complete(id, pos, out);
    }

    /// Adds an open stream. A stream id used twice releases the first stream; beyond
    /// [`MAX_OPEN_STREAMS`] the oldest stream is released unfinished (memory stays bounded
    /// whatever a peer opens).
    fn insert_stream(&mut self, mut s: Stream, pos: Pos, out: &mut Vec<Exchange>) {
        if let Some(mut old) = self.streams.remove(&s.id) {
            old.flag(
                AnomalyKind::H2ProtocolError,
                format!("stream {} opened again before it ended", s.id),
            );
            self.emit(old, pos, out);
        }
        if self.streams.len() >= MAX_OPEN_STREAMS
            && let Some((_, mut oldest)) = self.streams.pop_first()
        {
            let done = [oldest.request_done, oldest.response_done];
            for (role, done) in [Role::Request, Role::Response].into_iter().zip(done) {
                if !done && let Some(m) = oldest.message_mut(role) {
                    m.add_anomaly(
                        AnomalyKind::Truncated,
                        format!("released unfinished: more than {MAX_OPEN_STREAMS} streams open"),
                    );
                }
            }
            self.emit(oldest, pos, out);
        }
        let (_, now) = s.recount();
        self.stream_bytes += now;
        self.streams.insert(s.id, s);
    }

    fn open_stream(&mut self, id: u32) -> Stream {
        let mut s = Stream::new(
            id,
            self.next_index,
            [self.dirs[0].initial_window, self.dirs[1].initial_window],
        );
        self.next_index = self.next_index.wrapping_add(1);
        for a in self.pending.drain(..) {
            s.flag(a.kind, a.detail);
        }
        s
    }

    fn finish_if_complete(&mut self, id: u32, pos: Pos, out: &mut Vec<Exchange>) {
        if self.streams.get(&id).is_some_and(Stream::is_complete)
            && let Some(s) = self.streams.remove(&id)
        {
            self.emit(s, pos, out);
        }
    }

    fn settings(&mut self, dir: usize, h: FrameHeader, payload: &[u8]) {
        let who = self.side(dir);
        if h.stream != 0 {
            self.flag_connection(
                AnomalyKind::H2ProtocolError,
                format!("SETTINGS on stream {} from the {who}", h.stream),
            );
        }
        if h.flags & frames::ACK != 0 {
            if h.length != 0 {
                self.flag_connection(
                    AnomalyKind::H2FrameSize,
                    format!(
                        "SETTINGS acknowledgement of {} bytes from the {who}",
                        h.length
                    ),
                );
            }
            return;
        }
        match frames::settings(payload) {
            Ok(pairs) => {
                let problem = self.apply_settings(dir, &pairs, Some(who));
                if let Some(p) = problem {
                    self.flag_connection(AnomalyKind::H2ProtocolError, p);
                }
            }
            Err(_) => self.flag_connection(
                AnomalyKind::H2FrameSize,
                format!(
                    "SETTINGS of {} bytes from the {who} (not a multiple of 6)",
                    h.length
                ),
            ),
        }
    }

    /// Settings sent by direction `dir` govern what the other direction sends.
    fn apply_settings(
        &mut self,
        dir: usize,
        pairs: &[(u16, u32)],
        who: Option<&str>,
    ) -> Option<String> {
        let peer = 1 - dir;
        let who = who.unwrap_or("client");
        let mut problem = None;
        for &(id, v) in pairs {
            match id {
                frames::SETTINGS_HEADER_TABLE_SIZE => self.dirs[peer].decoder.allow_table_size(v),
                frames::SETTINGS_ENABLE_PUSH => {
                    if v > 1 {
                        problem = Some(format!("SETTINGS_ENABLE_PUSH {v} from the {who}"));
                    }
                    if dir == self.client {
                        self.push_enabled = v != 0;
                    }
                }
                frames::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let v = i64::from(v);
                    if v > MAX_WINDOW {
                        problem = Some(format!("SETTINGS_INITIAL_WINDOW_SIZE {v} from the {who}"));
                        continue;
                    }
                    let delta = v - self.dirs[peer].initial_window;
                    self.dirs[peer].initial_window = v;
                    for s in self.streams.values_mut() {
                        s.window[peer] += delta;
                    }
                }
                frames::SETTINGS_MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&v) {
                        problem = Some(format!("SETTINGS_MAX_FRAME_SIZE {v} from the {who}"));
                    } else {
                        self.dirs[peer].max_frame = v;
                    }
                }
                _ => {}
            }
        }
        problem
    }

    fn window_update(&mut self, dir: usize, h: FrameHeader, payload: &[u8]) {
        let who = self.side(dir);
        let Some(inc) = frames::u32_at(payload, 0).filter(|_| h.length == 4) else {
            self.flag_stream(
                h.stream,
                AnomalyKind::H2FrameSize,
                format!("WINDOW_UPDATE of {} bytes (must be 4)", h.length),
            );
            return;
        };
        let inc = i64::from(inc & 0x7fff_ffff);
        let peer = 1 - dir;
        if inc == 0 {
            self.flag_stream(
                h.stream,
                AnomalyKind::H2ProtocolError,
                format!("WINDOW_UPDATE of 0 from the {who}"),
            );
            return;
        }
        let window = if h.stream == 0 {
            &mut self.dirs[peer].window
        } else {
            match self.streams.get_mut(&h.stream) {
                Some(s) => &mut s.window[peer],
                None => return,
            }
        };
        *window += inc;
        if *window > MAX_WINDOW && !self.joined_late {
            let detail = format!(
                "WINDOW_UPDATE from the {who} raises the window of stream {} above 2^31-1",
                h.stream
            );
            self.flag_stream(h.stream, AnomalyKind::H2FlowControl, detail);
        }
    }
}
