//! Stage 4: HTTP/1.x messages from reassembled byte streams, paired into exchanges.
//!
//! Output type: [`Exchange`] (a request and its response, either possibly missing) whose
//! messages carry every parsing irregularity as an [`Anomaly`].

mod body;
mod coding;
mod connection;
pub mod content;
mod content_stream;
pub mod head;
pub mod json_stream;
mod message;
mod pairing;

pub use body::{ChunkState, RequestContext, decide_framing};
pub use connection::{HttpConfig, HttpConnection, HttpStats};
pub use content_stream::{BOMB_RATIO, json_verdict_of_kept};
pub use message::{
    Anomaly, AnomalyKind, Body, Connection, Exchange, ExchangeSource, Framing, Header, Interims,
    JsonVerdict, MAX_INTERIM, Message, Pos, StartLine, TlsInfo,
};

use std::net::SocketAddr;

use crate::reassembly::{CloseReason, Piece, StreamConsumer};

/// What the http stage produces while connections are processed.
#[derive(Debug, Default)]
pub struct HttpOutput {
    /// Exchanges released since the caller last drained this.
    pub exchanges: Vec<Exchange>,
    /// Counters of the connections closed so far.
    pub stats: HttpStats,
    /// TLS counters of the connections closed so far.
    pub tls: crate::tls::TlsStats,
}

impl StreamConsumer for HttpConnection {
    type Sink = HttpOutput;
    type Config = HttpConfig;

    fn open(
        cfg: HttpConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client_hint: Option<usize>,
        mid_stream: [bool; 2],
    ) -> Self {
        HttpConnection::new(cfg, ends, first, client_hint, mid_stream)
    }

    fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, sink: &mut HttpOutput) {
        HttpConnection::piece(self, dir, piece, pos, &mut sink.exchanges);
    }

    fn ack(&mut self, dir: usize, peer_offset: u64) {
        HttpConnection::ack(self, dir, peer_offset);
    }

    fn close(&mut self, fin: [bool; 2], reason: CloseReason, pos: Pos, sink: &mut HttpOutput) {
        HttpConnection::close(self, fin, reason, pos, &mut sink.exchanges);
        sink.stats.merge(&self.stats);
    }

    fn is_done(&self) -> bool {
        HttpConnection::is_done(self)
    }

    fn buffered(&self) -> usize {
        HttpConnection::buffered(self)
    }

    fn quiet(&mut self, _pos: Pos, sink: &mut HttpOutput) {
        HttpConnection::release_held(self, &mut sink.exchanges);
    }
}
