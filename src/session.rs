//! What rides on one TCP connection, decided from its first bytes: HTTP/2 with prior
//! knowledge (the client's connection preface), or HTTP/1.x — which may switch to HTTP/2
//! when an `Upgrade: h2c` request is answered `101 Switching Protocols` (RFC 7540 §3.2).
//! The flow table drives a [`Session`] per connection; the session hands the bytes to
//! [`HttpConnection`] or [`Http2Connection`].
//!
//! TLS goes here too: a decrypting layer that dispatches its plaintext by ALPN (`h2` →
//! [`Http2Connection`], anything else → [`HttpConnection`]) is one more [`State`].

use std::net::SocketAddr;

use crate::http::{Exchange, HttpConfig, HttpConnection, HttpOutput, HttpStats, Message, Pos};
use crate::http2::{Http2Connection, frames::PREFACE};
use crate::reassembly::{CloseReason, Piece, StreamConsumer};

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
        /// The first bytes of each direction.
        start: [Vec<u8>; 2],
        held_bytes: usize,
    },
    Http1(Box<HttpConnection>),
    Http2(Box<Http2Connection>),
}

/// What the first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Http1,
    /// HTTP/2; the client sends on this direction.
    Http2(usize),
    Wait,
}

/// One TCP connection's application protocol.
#[derive(Debug)]
pub struct Session {
    cfg: HttpConfig,
    ends: [SocketAddr; 2],
    first: Pos,
    client_hint: Option<usize>,
    mid_stream: [bool; 2],
    state: State,
    /// Counters of the HTTP/1 part of a connection that switched to HTTP/2.
    carried: HttpStats,
    /// The latest acknowledgement per direction (as a peer stream offset).
    acks: [Option<u64>; 2],
}

impl Session {
    pub fn new(
        cfg: HttpConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client_hint: Option<usize>,
        mid_stream: [bool; 2],
    ) -> Self {
        Session {
            cfg,
            ends,
            first,
            client_hint,
            mid_stream,
            state: State::Undecided {
                held: Vec::new(),
                start: [Vec::new(), Vec::new()],
                held_bytes: 0,
            },
            carried: HttpStats::default(),
            acks: [None, None],
        }
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
        }
        s
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
            State::Undecided {
                held,
                start,
                held_bytes,
            } => {
                let verdict = match piece {
                    // Mid-stream and lost bytes are HTTP/1's business (HTTP/2 cannot be
                    // decoded without the start of its HPACK state).
                    Piece::Gap(_) | Piece::Cut(_) => Verdict::Http1,
                    Piece::Conflict => Verdict::Wait,
                    Piece::Data(d) => {
                        let s = &mut start[dir];
                        let want = PREFACE.len().saturating_sub(s.len());
                        s.extend_from_slice(&d[..d.len().min(want)]);
                        *held_bytes += d.len();
                        let total = *held_bytes;
                        match verdict(start, self.client_hint) {
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
                false,
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
        if let State::Undecided { held, .. } = &mut self.state {
            let held = std::mem::take(held);
            self.decide(Verdict::Http1);
            self.replay(&held, out);
        }
        match &mut self.state {
            State::Http1(h) => h.close(fin, reason, pos, out),
            State::Http2(h) => h.close(fin, reason, pos, out),
            State::Undecided { .. } => {}
        }
    }

    pub fn is_done(&self) -> bool {
        match &self.state {
            State::Undecided { .. } => false,
            // A tunnel that is not h2c stays done; one that is was switched already.
            State::Http1(h) => h.is_done(),
            State::Http2(h) => h.is_done(),
        }
    }

    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Undecided { held_bytes, .. } => *held_bytes,
            State::Http1(h) => h.buffered(),
            State::Http2(h) => h.buffered(),
        }
    }

    /// Live capture: the connection is quiet; release what waits for more bytes.
    pub fn release_held(&mut self, out: &mut Vec<Exchange>) {
        if let State::Http1(h) = &mut self.state {
            h.release_held(out);
        }
    }
}

/// Decides from the first bytes of each direction.
fn verdict(start: &[Vec<u8>; 2], client_hint: Option<usize>) -> Verdict {
    let mut wait = false;
    for (d, s) in start.iter().enumerate() {
        if s.is_empty() {
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
    type Config = HttpConfig;

    fn open(
        cfg: HttpConfig,
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
