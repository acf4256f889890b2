//! A TLS connection as [`crate::session::Session`] carries it: the [`TlsDecryptor`] turns
//! the ciphertext of both directions into plaintext, which goes to the HTTP parser the
//! server selected with ALPN (`h2` → [`Http2Connection`], anything else →
//! [`HttpConnection`]). Connections that cannot be decrypted are counted with the reason.

use std::net::SocketAddr;

use crate::http::{Exchange, HttpConfig, HttpConnection, HttpStats, Pos, TlsInfo};
use crate::http2::Http2Connection;
use crate::reassembly::{CloseReason, Piece};
use crate::tls::{TlsConfig, TlsDecryptor, TlsFacts, TlsStats, TlsStatus};

/// The parser of the plaintext, chosen at the first plaintext byte.
#[derive(Debug)]
enum Inner {
    Pending,
    Http1(Box<HttpConnection>),
    Http2(Box<Http2Connection>),
}

/// Plaintext the decryptor produced in one call, waiting to be parsed: (direction, kind,
/// range in `data`, position). Kept between calls so its buffers are reused.
#[derive(Debug, Default)]
struct Plain {
    pieces: Vec<(usize, PlainKind, std::ops::Range<usize>, Pos)>,
    data: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
enum PlainKind {
    Data,
    Gap(u64),
    Cut(u64),
    Conflict,
}

impl Plain {
    fn push(&mut self, dir: usize, piece: Piece<'_>, pos: Pos) {
        let start = self.data.len();
        let kind = match piece {
            Piece::Data(d) => {
                self.data.extend_from_slice(d);
                PlainKind::Data
            }
            Piece::Gap(n) => PlainKind::Gap(n),
            Piece::Cut(n) => PlainKind::Cut(n),
            Piece::Conflict => PlainKind::Conflict,
        };
        self.pieces.push((dir, kind, start..self.data.len(), pos));
    }
}

/// One decrypted (or undecryptable) TLS connection.
#[derive(Debug)]
pub struct TlsSession {
    cfg: HttpConfig,
    ends: [SocketAddr; 2],
    first: Pos,
    mid_stream: [bool; 2],
    decryptor: TlsDecryptor,
    inner: Inner,
    plain: Plain,
}

impl TlsSession {
    /// `client` is the direction that sent the ClientHello (or, mid-stream, the first
    /// record).
    pub fn new(
        cfg: HttpConfig,
        tls: &TlsConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client: usize,
        mid_stream: [bool; 2],
    ) -> TlsSession {
        TlsSession {
            cfg,
            ends,
            first,
            mid_stream,
            decryptor: TlsDecryptor::new(tls.keys.clone(), client, tls.wait_for_keys),
            inner: Inner::Pending,
            plain: Plain::default(),
        }
    }

    pub fn facts(&self) -> &TlsFacts {
        self.decryptor.facts()
    }

    pub fn status(&self) -> TlsStatus {
        self.decryptor.status()
    }

    pub fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, out: &mut Vec<Exchange>) {
        let TlsSession {
            decryptor,
            inner,
            plain,
            ..
        } = self;
        // Once the parser exists, plaintext goes straight to it; before, it waits in
        // `plain` until the facts that choose the parser are known.
        decryptor.piece(dir, piece, pos, &mut |d, p, at| match inner {
            Inner::Pending => plain.push(d, p, at),
            Inner::Http1(h) => h.piece(d, p, at, out),
            Inner::Http2(h) => h.piece(d, p, at, out),
        });
        self.dispatch(out);
    }

    /// Hands what was decrypted to the HTTP parser, creating it at the first plaintext.
    fn dispatch(&mut self, out: &mut Vec<Exchange>) {
        if self.plain.pieces.is_empty() {
            return;
        }
        if matches!(self.inner, Inner::Pending) {
            self.inner = self.parser();
        }
        let Plain { pieces, data } = &mut self.plain;
        for (dir, kind, range, pos) in pieces.drain(..) {
            let piece = match kind {
                PlainKind::Data => Piece::Data(&data[range]),
                PlainKind::Gap(n) => Piece::Gap(n),
                PlainKind::Cut(n) => Piece::Cut(n),
                PlainKind::Conflict => Piece::Conflict,
            };
            match &mut self.inner {
                Inner::Pending => {}
                Inner::Http1(h) => h.piece(dir, piece, pos, out),
                Inner::Http2(h) => h.piece(dir, piece, pos, out),
            }
        }
        data.clear();
    }

    fn parser(&self) -> Inner {
        let facts = self.decryptor.facts();
        let info = TlsInfo {
            protocol: facts.version_name().unwrap_or("TLS").to_owned(),
            cipher_suite: facts.suite_name().unwrap_or_default(),
            alpn: facts.alpn.clone(),
            sni: facts.sni.clone(),
        };
        let client = self.decryptor.client();
        if facts.alpn.as_deref() == Some("h2") {
            Inner::Http2(Box::new(Http2Connection::new(
                self.cfg,
                self.ends,
                self.first,
                client,
                self.mid_stream,
                Some(info),
            )))
        } else {
            let mut h = HttpConnection::new(
                self.cfg,
                self.ends,
                self.first,
                Some(client),
                self.mid_stream,
            );
            h.set_tls_info(info);
            Inner::Http1(Box::new(h))
        }
    }

    pub fn close(
        &mut self,
        fin: [bool; 2],
        reason: CloseReason,
        pos: Pos,
        out: &mut Vec<Exchange>,
    ) {
        // Live: keys logged late still decrypt what was held.
        self.retry_keys(out);
        match &mut self.inner {
            Inner::Pending => {}
            Inner::Http1(h) => h.close(fin, reason, pos, out),
            Inner::Http2(h) => h.close(fin, reason, pos, out),
        }
    }

    /// Live capture: looks the keys up again and decrypts what waited for them.
    pub fn retry_keys(&mut self, out: &mut Vec<Exchange>) {
        let plain = &mut self.plain;
        self.decryptor
            .retry_keys(&mut |d, p, at| plain.push(d, p, at));
        self.dispatch(out);
    }

    /// Live capture: the connection is quiet.
    pub fn release_held(&mut self, out: &mut Vec<Exchange>) {
        self.retry_keys(out);
        if let Inner::Http1(h) = &mut self.inner {
            h.release_held(out);
        }
    }

    pub fn is_done(&self) -> bool {
        self.decryptor.is_done()
            || match &self.inner {
                Inner::Pending => false,
                Inner::Http1(h) => h.is_done(),
                Inner::Http2(h) => h.is_done(),
            }
    }

    pub fn buffered(&self) -> usize {
        self.decryptor.buffered()
            + match &self.inner {
                Inner::Pending => 0,
                Inner::Http1(h) => h.buffered(),
                Inner::Http2(h) => h.buffered(),
            }
    }

    /// The HTTP counters of the plaintext.
    pub fn http_stats(&self) -> HttpStats {
        match &self.inner {
            Inner::Pending => HttpStats::default(),
            Inner::Http1(h) => h.stats,
            Inner::Http2(h) => h.stats,
        }
    }

    /// This connection's TLS counters: its outcome and its records.
    pub fn tls_stats(&self) -> TlsStats {
        let mut s = self.decryptor.stats;
        s.connections = 1;
        s.resynced_gaps = self.decryptor.resynced();
        let decrypted = s.records_decrypted > 0;
        match self.decryptor.status() {
            _ if decrypted => {
                s.decrypted = 1;
                s.lost_sync = u64::from(self.decryptor.lost_any());
            }
            TlsStatus::Decrypting => s.decrypted = 1,
            TlsStatus::NoKey => s.no_key = 1,
            TlsStatus::UnsupportedSuite => s.unsupported_suite = 1,
            TlsStatus::UnsupportedVersion => s.unsupported_version = 1,
            TlsStatus::MissingHandshake | TlsStatus::NotTls => s.missing_handshake = 1,
            TlsStatus::DecryptFailed => s.decrypt_failed = 1,
            TlsStatus::Handshake => s.handshake_only = 1,
        }
        s
    }
}
