//! What rides on one TCP connection, decided from its first bytes: HTTP/2 with prior
//! knowledge (the client's connection preface), or HTTP/1.x — which may switch to HTTP/2
//! when an `Upgrade: h2c` request is answered `101 Switching Protocols` (RFC 7540 §3.2).
//! The flow table drives a [`Session`] per connection; the session hands the bytes to
//! [`HttpConnection`] or [`Http2Connection`].
//!
//! TLS is one more [`State`]: a connection whose first bytes are a TLS record goes to a
//! [`TlsSession`], which decrypts it with the run's key log and dispatches the plaintext by
//! ALPN (`h2` → [`Http2Connection`], anything else → [`HttpConnection`]).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::http::{Exchange, HttpConfig, HttpConnection, HttpOutput, HttpStats, Message, Pos};
use crate::http2::sync::FrameSync;
use crate::http2::{Http2Connection, frames::PREFACE};
use crate::reassembly::{CloseReason, Piece, StreamConsumer};
use crate::tls::record::{HEADER_LEN, plausible_header};
use crate::tls::{TlsConfig, TlsStats};
use crate::tls_session::TlsSession;

/// Settings of every connection's session: HTTP parsing and TLS keys.
#[derive(Clone, Debug, Default)]
pub struct SessionConfig {
    pub http: HttpConfig,
    pub tls: TlsConfig,
    /// Server ports whose traffic is HTTP even when it does not start like it
    /// (`http_ports` in wirelint.toml).
    pub http_ports: Arc<[u16]>,
}

/// The direction of `ends` whose sender is the server by `http_ports`: exactly one end's
/// port is listed.
fn declared_server(http_ports: &[u16], ends: &[SocketAddr; 2]) -> Option<usize> {
    let listed = ends.map(|e| http_ports.contains(&e.port()));
    match listed {
        [true, false] => Some(0),
        [false, true] => Some(1),
        _ => None,
    }
}

/// Bytes held while undecided before the connection is handed to HTTP/1 anyway.
const DECIDE_LIMIT: usize = 64 * 1024;

/// A piece kept while the protocol is not known yet.
#[derive(Debug)]
enum HeldPiece {
    Data(Vec<u8>),
    Gap(u64),
    Cut(u64),
    Conflict,
}

impl HeldPiece {
    fn of(piece: &Piece<'_>) -> HeldPiece {
        match *piece {
            Piece::Data(d) => HeldPiece::Data(d.to_vec()),
            Piece::Gap(n) => HeldPiece::Gap(n),
            Piece::Cut(n) => HeldPiece::Cut(n),
            Piece::Conflict => HeldPiece::Conflict,
        }
    }

    fn as_piece(&self) -> Piece<'_> {
        match self {
            HeldPiece::Data(d) => Piece::Data(d),
            HeldPiece::Gap(n) => Piece::Gap(*n),
            HeldPiece::Cut(n) => Piece::Cut(*n),
            HeldPiece::Conflict => Piece::Conflict,
        }
    }
}

/// The protocol a connection carries, as far as it is known.
#[derive(Debug)]
enum State {
    /// Too few bytes yet to tell HTTP/2's preface from HTTP/1 (or a server that speaks
    /// first, as an HTTP/2 server sends its SETTINGS).
    Undecided {
        /// Direction, piece, where it was, and what its segment acknowledged.
        held: Vec<(usize, HeldPiece, Pos, Option<u64>)>,
        /// The first bytes of each direction (up to [`JOIN_SCAN`] of a direction that
        /// began before the capture, to look for HTTP/2 frames).
        start: [Vec<u8>; 2],
        /// How far each direction's `start` was searched for HTTP/2 frames.
        scanned: [JoinScan; 2],
        held_bytes: usize,
    },
    Http1(Box<HttpConnection>),
    Http2(Box<Http2Connection>),
    Tls(Box<TlsSession>),
}

/// What the first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Http1,
    /// HTTP/2; the client sends on this direction.
    Http2(usize),
    /// HTTP/2 joined after it began (no preface in the capture); the client's direction.
    Http2JoinedLate(usize),
    /// TLS; the client sends on this direction.
    Tls(usize),
    Wait,
}

/// One TCP connection's application protocol.
#[derive(Debug)]
pub struct Session {
    cfg: HttpConfig,
    tls: TlsConfig,
    ends: [SocketAddr; 2],
    first: Pos,
    client_hint: Option<usize>,
    mid_stream: [bool; 2],
    /// The server's port is listed in `http_ports`.
    declared_http: bool,
    state: State,
    /// Counters of the HTTP/1 part of a connection that switched to HTTP/2.
    carried: HttpStats,
    /// The latest acknowledgement per direction (as a peer stream offset).
    acks: [Option<u64>; 2],
}

impl Session {
    pub fn new(
        cfg: SessionConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client_hint: Option<usize>,
        mid_stream: [bool; 2],
    ) -> Self {
        let server = declared_server(&cfg.http_ports, &ends);
        Session {
            cfg: cfg.http,
            tls: cfg.tls,
            ends,
            first,
            // Without a SYN, the listed port tells who the server is.
            client_hint: client_hint.or(server.map(|s| 1 - s)),
            mid_stream,
            declared_http: server.is_some(),
            state: State::Undecided {
                held: Vec::new(),
                start: [Vec::new(), Vec::new()],
                scanned: [JoinScan::default(); 2],
                held_bytes: 0,
            },
            carried: HttpStats::default(),
            acks: [None, None],
        }
    }

    /// The client of a connection joined late when no HEADERS frame tells: known from the
    /// SYN or `http_ports`, else the end with the higher port (servers listen on low,
    /// well-known ports; ephemeral ports are high).
    fn join_client(&self) -> usize {
        join_client(self.client_hint, &self.ends)
    }

    /// The pieces of `dir` that follow were sent after the peer's stream had been received
    /// up to `peer_offset` (HTTP/1 pairs across lost bytes with it).
    pub fn ack(&mut self, dir: usize, peer_offset: u64) {
        self.acks[dir] = Some(peer_offset);
        if let State::Http1(h) = &mut self.state {
            h.ack(dir, peer_offset);
        }
    }

    /// Hands the pieces held while undecided to the protocol now chosen, each with what its
    /// segment acknowledged, then restores the latest acknowledgements.
    fn replay(&mut self, held: &[(usize, HeldPiece, Pos, Option<u64>)], out: &mut Vec<Exchange>) {
        for (d, p, at, ack) in held {
            if let (Some(a), State::Http1(h)) = (ack, &mut self.state) {
                h.ack(*d, *a);
            }
            self.piece(*d, p.as_piece(), *at, out);
        }
        if let State::Http1(h) = &mut self.state {
            for (d, a) in self.acks.iter().enumerate() {
                if let Some(a) = a {
                    h.ack(d, *a);
                }
            }
        }
    }

    /// The counters of this connection so far.
    pub fn stats(&self) -> HttpStats {
        let mut s = self.carried;
        match &self.state {
            State::Undecided { .. } => {}
            State::Http1(h) => s.merge(&h.stats),
            State::Http2(h) => s.merge(&h.stats),
            State::Tls(t) => s.merge(&t.http_stats()),
        }
        s
    }

    /// The TLS counters of this connection (zero unless it is TLS).
    pub fn tls_stats(&self) -> TlsStats {
        match &self.state {
            State::Tls(t) => t.tls_stats(),
            _ => TlsStats::default(),
        }
    }

    /// Takes the next piece of direction `dir`'s byte stream.
    pub fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, out: &mut Vec<Exchange>) {
        match &mut self.state {
            State::Http1(h) => {
                h.piece(dir, piece, pos, out);
                if h.is_done() {
                    self.maybe_upgrade(pos, out);
                }
            }
            State::Http2(h) => h.piece(dir, piece, pos, out),
            State::Tls(t) => t.piece(dir, piece, pos, out),
            State::Undecided {
                held,
                start,
                scanned,
                held_bytes,
            } => {
                let verdict = match piece {
                    // Mid-stream and lost bytes are HTTP/1's business (HTTP/2 cannot be
                    // decoded without the start of its HPACK state).
                    Piece::Gap(_) | Piece::Cut(_) => Verdict::Http1,
                    Piece::Conflict => Verdict::Wait,
                    Piece::Data(d) => {
                        let s = &mut start[dir];
                        let keep = if self.mid_stream[dir] {
                            JOIN_SCAN
                        } else {
                            PREFACE.len()
                        };
                        let want = keep.saturating_sub(s.len());
                        s.extend_from_slice(&d[..d.len().min(want)]);
                        *held_bytes += d.len();
                        let total = *held_bytes;
                        let client = join_client(self.client_hint, &self.ends);
                        let joined = join_verdict(start, scanned, self.mid_stream, client, false);
                        match joined.unwrap_or_else(|| verdict(start, self.client_hint)) {
                            Verdict::Wait if total > DECIDE_LIMIT => Verdict::Http1,
                            v => v,
                        }
                    }
                };
                if verdict == Verdict::Wait {
                    held.push((dir, HeldPiece::of(&piece), pos, self.acks[dir]));
                    return;
                }
                let held = std::mem::take(held);
                self.decide(verdict);
                self.replay(&held, out);
                self.piece(dir, piece, pos, out);
            }
        }
    }

    fn decide(&mut self, verdict: Verdict) {
        self.state = match verdict {
            Verdict::Http2(client) => State::Http2(Box::new(Http2Connection::new(
                self.cfg,
                self.ends,
                self.first,
                client,
                self.mid_stream,
                None,
            ))),
            Verdict::Http2JoinedLate(client) => State::Http2(Box::new(
                Http2Connection::joined_late(self.cfg, self.ends, self.first, client, None),
            )),
            Verdict::Tls(client) => State::Tls(Box::new(TlsSession::new(
                self.cfg,
                &self.tls,
                self.ends,
                self.first,
                client,
                self.mid_stream,
            ))),
            Verdict::Http1 | Verdict::Wait => {
                let mut h = HttpConnection::new(
                    self.cfg,
                    self.ends,
                    self.first,
                    self.client_hint,
                    self.mid_stream,
                );
                h.keep_tunnel_bytes();
                if self.declared_http {
                    h.declare_http();
                }
                State::Http1(Box::new(h))
            }
        };
    }

    /// The HTTP/1 connection became a tunnel: when that was a 101 to `Upgrade: h2c`, what
    /// follows is HTTP/2 and the upgrading request is its stream 1.
    fn maybe_upgrade(&mut self, pos: Pos, out: &mut Vec<Exchange>) {
        let State::Http1(h) = &mut self.state else {
            return;
        };
        let Some(rest) = h.take_tunnel() else {
            return;
        };
        let mut released = Vec::new();
        h.release_held(&mut released);
        let upgrade = released.pop().and_then(|ex| match h2c_switch(&ex) {
            true => Some(ex),
            false => {
                released.push(ex);
                None
            }
        });
        out.append(&mut released);
        let Some(ex) = upgrade else {
            return;
        };
        let client = usize::from(ex.connection.client != self.ends[0]);
        let (Some(request), Some(switching)) = (ex.request, ex.response) else {
            return;
        };
        let mut carried = h.stats;
        // The upgrading request is counted again as stream 1's.
        carried.requests = carried.requests.saturating_sub(1);
        self.carried.merge(&carried);
        let mut h2 = Http2Connection::upgraded(
            self.cfg,
            ex.connection,
            client,
            ex.index,
            request,
            switching,
        );
        for d in [client, 1 - client] {
            if !rest[d].is_empty() {
                h2.piece(d, Piece::Data(&rest[d]), pos, out);
            }
        }
        self.state = State::Http2(Box::new(h2));
    }

    /// Ends the connection. `fin[d]` says whether direction `d` ended with FIN or RST.
    pub fn close(
        &mut self,
        fin: [bool; 2],
        reason: CloseReason,
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        let client = self.join_client();
        if let State::Undecided {
            held,
            start,
            scanned,
            ..
        } = &mut self.state
        {
            let held = std::mem::take(held);
            let joined = join_verdict(start, scanned, self.mid_stream, client, true);
            self.decide(match joined {
                Some(v @ Verdict::Http2JoinedLate(_)) => v,
                _ => Verdict::Http1,
            });
            self.replay(&held, out);
        }
        match &mut self.state {
            State::Http1(h) => h.close(fin, reason, pos, out),
            State::Http2(h) => h.close(fin, reason, pos, out),
            State::Tls(t) => t.close(fin, reason, pos, out),
            State::Undecided { .. } => {}
        }
    }

    pub fn is_done(&self) -> bool {
        match &self.state {
            State::Undecided { .. } => false,
            // A tunnel that is not h2c stays done; one that is was switched already.
            State::Http1(h) => h.is_done(),
            State::Http2(h) => h.is_done(),
            State::Tls(t) => t.is_done(),
        }
    }

    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Undecided { held_bytes, .. } => *held_bytes,
            State::Http1(h) => h.buffered(),
            State::Http2(h) => h.buffered(),
            State::Tls(t) => t.buffered(),
        }
    }

    /// Live capture: the connection is quiet; release what waits for more bytes.
    pub fn release_held(&mut self, out: &mut Vec<Exchange>) {
        match &mut self.state {
            State::Http1(h) => h.release_held(out),
            State::Tls(t) => t.release_held(out),
            _ => {}
        }
    }
}

fn join_client(client_hint: Option<usize>, ends: &[SocketAddr; 2]) -> usize {
    client_hint.unwrap_or(if ends[0].port() > ends[1].port() {
        0
    } else {
        1
    })
}

/// Bytes of a direction that began before the capture kept to look for HTTP/2 frames.
const JOIN_SCAN: usize = 24 * 1024;

/// What the search of one direction's first bytes for HTTP/2 frames found so far: each
/// byte is looked at a bounded number of times, however small the pieces it came in.
#[derive(Clone, Copy, Debug, Default)]
struct JoinScan {
    /// Length searched for frames at the last search.
    searched: usize,
    /// Length searched for `HTTP/1.` so far.
    text_searched: usize,
    /// `HTTP/1.` was seen: HTTP/1.
    http1: bool,
    /// No frame boundary can be there.
    no_frames: bool,
}

/// A connection the capture joined late may be HTTP/2 in the middle of its frames: when a
/// direction's first bytes hold a run of plausible frame headers it is (`client` sends
/// requests); `Wait` while they might; `None` when not (text with `HTTP/1.` in it, TLS, a
/// direction that began in the capture, or no frame boundary where one must be). Searches
/// again only after another KiB arrived, unless `last` (the connection ends).
fn join_verdict(
    start: &[Vec<u8>; 2],
    scanned: &mut [JoinScan; 2],
    mid_stream: [bool; 2],
    client: usize,
    last: bool,
) -> Option<Verdict> {
    const MARK: &[u8] = b"HTTP/1.";
    let mut wait = false;
    for d in 0..2 {
        let s = &start[d];
        let scan = &mut scanned[d];
        if !mid_stream[d] || s.is_empty() || starts_like_tls(s) {
            continue;
        }
        if !scan.http1 {
            // Only what arrived since, with the mark's length of overlap.
            let from = scan.text_searched.saturating_sub(MARK.len() - 1);
            scan.http1 = contains(&s[from..], MARK);
            scan.text_searched = s.len();
        }
        if scan.http1 || scan.no_frames {
            continue;
        }
        let grown = s.len() > scan.searched;
        if !last && s.len() < JOIN_SCAN && s.len() < scan.searched + 1024 || !grown && !last {
            // Searched at this length already (and it may still come): wait for more.
            wait = wait || s.len() < JOIN_SCAN;
            continue;
        }
        scan.searched = s.len();
        match crate::http2::sync::frame_sync(s) {
            FrameSync::At(at) => {
                // Who sends requests, from a HEADERS frame of either side if one tells.
                let other = 1 - d;
                let told = crate::http2::sync::sent_by_client(s, at)
                    .map(|c| if c { d } else { other })
                    .or_else(|| match crate::http2::sync::frame_sync(&start[other]) {
                        FrameSync::At(o) => crate::http2::sync::sent_by_client(&start[other], o)
                            .map(|c| if c { other } else { d }),
                        _ => None,
                    });
                return Some(Verdict::Http2JoinedLate(told.unwrap_or(client)));
            }
            FrameSync::NeedMore if !last && s.len() < JOIN_SCAN => wait = true,
            FrameSync::NeedMore | FrameSync::No => scan.no_frames = true,
        }
    }
    wait.then_some(Verdict::Wait)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Decides from the first bytes of each direction.
fn verdict(start: &[Vec<u8>; 2], client_hint: Option<usize>) -> Verdict {
    let mut wait = false;
    // TLS: the client's ClientHello, or (a capture that began later) any record.
    for (d, s) in start.iter().enumerate() {
        if starts_like_tls(s) {
            let client = if s.get(5) == Some(&1) || s.first() == Some(&22) && s.len() < 6 {
                d
            } else {
                client_hint.unwrap_or(d)
            };
            if s.len() < HEADER_LEN + 1 {
                wait = true;
                continue;
            }
            return Verdict::Tls(client);
        }
    }
    for (d, s) in start.iter().enumerate() {
        if s.is_empty() {
            continue;
        }
        if starts_like_tls(s) {
            continue;
        }
        if s.as_slice() == PREFACE {
            return Verdict::Http2(d);
        }
        if PREFACE.starts_with(s) {
            wait = true;
            continue;
        }
        // An HTTP/2 server may send its SETTINGS before the client's preface arrives.
        if client_hint != Some(d) && could_be_settings(s) {
            wait = true;
            continue;
        }
        return Verdict::Http1;
    }
    if wait { Verdict::Wait } else { Verdict::Http1 }
}

/// The bytes could begin a TLS record (a type from ChangeCipherSpec to ApplicationData,
/// version 3.x).
fn starts_like_tls(s: &[u8]) -> bool {
    let mut h = [0u8; HEADER_LEN];
    let n = s.len().min(HEADER_LEN);
    if n == 0 || !(20..=23).contains(&s[0]) {
        return false;
    }
    h[..n].copy_from_slice(&s[..n]);
    if n < HEADER_LEN {
        // Complete the header with plausible bytes to judge what is there.
        let fill = [0u8, 3, 3, 0, 1];
        h[n..].copy_from_slice(&fill[n..]);
    }
    plausible_header(&h) == Some(true)
}

/// The bytes could begin a SETTINGS frame on stream 0 (a server's first frame).
fn could_be_settings(s: &[u8]) -> bool {
    s.get(3).is_none_or(|&t| t == 4)
        && s.get(4).is_none_or(|&f| f == 0)
        && s.iter().skip(5).take(4).all(|&b| b == 0)
}

/// The exchange is a request with `Upgrade: h2c` answered `101` with `Upgrade: h2c`.
fn h2c_switch(ex: &Exchange) -> bool {
    let lists_h2c = |m: &Message| {
        m.header_values("upgrade")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("h2c"))
    };
    ex.response
        .as_ref()
        .is_some_and(|r| r.status() == Some(101) && lists_h2c(r))
        && ex.request.as_ref().is_some_and(lists_h2c)
}

impl StreamConsumer for Session {
    type Sink = HttpOutput;
    type Config = SessionConfig;

    fn open(
        cfg: SessionConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client_hint: Option<usize>,
        mid_stream: [bool; 2],
    ) -> Self {
        Session::new(cfg, ends, first, client_hint, mid_stream)
    }

    fn ack(&mut self, dir: usize, peer_offset: u64) {
        Session::ack(self, dir, peer_offset);
    }

    fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, sink: &mut HttpOutput) {
        Session::piece(self, dir, piece, pos, &mut sink.exchanges);
    }

    fn close(&mut self, fin: [bool; 2], reason: CloseReason, pos: Pos, sink: &mut HttpOutput) {
        Session::close(self, fin, reason, pos, &mut sink.exchanges);
        sink.stats.merge(&self.stats());
        sink.tls.merge(&self.tls_stats());
    }

    fn is_done(&self) -> bool {
        Session::is_done(self)
    }

    fn buffered(&self) -> usize {
        Session::buffered(self)
    }

    fn quiet(&mut self, _pos: Pos, sink: &mut HttpOutput) {
        Session::release_held(self, &mut sink.exchanges);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameRef;
    use crate::time::Timestamp;

    fn pos(n: u64) -> Pos {
        Pos {
            frame: FrameRef { file: 0, number: n },
            ts: Timestamp(n as i64),
            order: n,
        }
    }

    /// A client whose first segment is not HTTP (`first`, answered by `reply` when given),
    /// then a request that the server answers. Returns the exchanges and the counters.
    fn preceded(
        first: &[u8],
        reply: Option<&[u8]>,
        http_ports: &[u16],
        syn_seen: bool,
    ) -> (Vec<Exchange>, HttpStats) {
        let ends: [SocketAddr; 2] = [
            "10.0.0.1:40000".parse().expect("addr"),
            "10.0.0.2:8000".parse().expect("addr"),
        ];
        let cfg = SessionConfig {
            http_ports: http_ports.into(),
            ..SessionConfig::default()
        };
        let hint = syn_seen.then_some(0);
        let mut session = Session::new(cfg, ends, pos(1), hint, [!syn_seen; 2]);
        let mut out = Vec::new();
        let mut pieces: Vec<(usize, &[u8])> = vec![(0, first)];
        pieces.extend(reply.map(|r| (1, r)));
        pieces.push((0, b"GET /items HTTP/1.1\r\nHost: api\r\n\r\n"));
        pieces.push((1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
        for (n, (dir, bytes)) in pieces.into_iter().enumerate() {
            session.piece(dir, Piece::Data(bytes), pos(2 + n as u64), &mut out);
        }
        session.close([true, true], CloseReason::Closed, pos(9), &mut out);
        (out, session.stats())
    }

    #[test]
    fn a_listed_http_port_keeps_a_connection_that_does_not_start_like_http() {
        // Both sides open with bytes that are not HTTP (a custom handshake, say).
        let (junk, reply): (&[u8], &[u8]) = (b"\x01\x02hello\r\n", b"\x00\x00ok\r\n");
        let (out, stats) = preceded(junk, Some(reply), &[8000], true);
        assert_eq!(out.len(), 1, "{out:#?}");
        let request = out[0].request.as_ref().expect("request");
        assert_eq!(request.target(), Some("/items"));
        assert_eq!(out[0].response.as_ref().and_then(|r| r.status()), Some(200));
        assert_eq!(stats.non_http_connections, 0);

        // The same bytes on a port not listed: the first line decides "not HTTP".
        let (out, stats) = preceded(junk, Some(reply), &[], true);
        assert!(out.is_empty(), "{out:#?}");
        assert_eq!(stats.non_http_connections, 1);
    }

    #[test]
    fn a_request_line_longer_than_16_kib_is_still_http() {
        // Servers answer such requests with 414, or (as here) accept them: either way the
        // connection is HTTP, and its exchange is checked like any other.
        let ends: [SocketAddr; 2] = [
            "10.0.0.1:40000".parse().expect("addr"),
            "10.0.0.2:80".parse().expect("addr"),
        ];
        let path = format!("/orders/{}", "x".repeat(20 * 1024));
        let request = format!("POST {path} HTTP/1.1\r\nHost: api\r\nContent-Length: 2\r\n\r\n{{}}");
        let mut session = Session::new(SessionConfig::default(), ends, pos(1), Some(0), [false; 2]);
        let mut out = Vec::new();
        for (n, chunk) in request.as_bytes().chunks(1460).enumerate() {
            session.piece(0, Piece::Data(chunk), pos(2 + n as u64), &mut out);
        }
        let response = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        session.piece(1, Piece::Data(response), pos(40), &mut out);
        session.close([true, true], CloseReason::Closed, pos(41), &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        let req = out[0].request.as_ref().expect("request");
        assert_eq!(req.target(), Some(path.as_str()));
        assert_eq!(out[0].response.as_ref().and_then(|r| r.status()), Some(201));
        assert_eq!(session.stats().non_http_connections, 0);

        // The same length of printable bytes after a word that is no method stays "not
        // HTTP", as does a standard method followed by binary bytes.
        for junk in [
            format!("HELLO {}", "x".repeat(20 * 1024)).into_bytes(),
            [b"GET ".as_slice(), &[0x01; 20 * 1024]].concat(),
        ] {
            let mut session =
                Session::new(SessionConfig::default(), ends, pos(1), Some(0), [false; 2]);
            let mut out = Vec::new();
            for (n, chunk) in junk.chunks(1460).enumerate() {
                session.piece(0, Piece::Data(chunk), pos(2 + n as u64), &mut out);
            }
            session.piece(1, Piece::Data(b"\x00\x01"), pos(40), &mut out);
            session.close([true, true], CloseReason::Closed, pos(41), &mut out);
            assert!(out.is_empty(), "{out:#?}");
            assert_eq!(session.stats().non_http_connections, 1);
        }
    }

    #[test]
    fn a_proxy_protocol_header_is_skipped_on_any_port() {
        let v1: &[u8] = b"PROXY TCP4 192.0.2.1 10.0.0.2 51000 8000\r\n";
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        v2.extend([192, 0, 2, 1, 10, 0, 0, 2, 0xc7, 0x38, 0x1f, 0x40]);
        for header in [v1, &v2] {
            let (out, stats) = preceded(header, None, &[], true);
            assert_eq!(out.len(), 1, "{out:#?}");
            let request = out[0].request.as_ref().expect("request");
            assert_eq!(request.target(), Some("/items"));
            assert!(request.anomalies.is_empty(), "{:?}", request.anomalies);
            assert_eq!(stats.proxy_headers, 1);
        }
    }

    #[test]
    fn a_listed_port_names_the_server_when_no_syn_was_seen() {
        let ends: [SocketAddr; 2] = [
            "10.0.0.2:8000".parse().expect("addr"),
            "10.0.0.1:40000".parse().expect("addr"),
        ];
        assert_eq!(declared_server(&[8000], &ends), Some(0));
        assert_eq!(declared_server(&[40000, 8000], &ends), None);
        assert_eq!(declared_server(&[], &ends), None);
        let (out, _) = preceded(b"\x01\x02hello\r\n", None, &[8000], false);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].connection.client.port(), 40000);
    }
}
