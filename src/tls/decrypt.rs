//! [`TlsDecryptor`]: ciphertext pieces of both directions of a connection in, plaintext
//! pieces out, with the negotiated facts (version, suite, ALPN, SNI) and a status that says
//! why a connection is not decrypted when it is not.
//!
//! A pure transformer: it never parses HTTP; the consumer that owns it feeds it what
//! reassembly delivers and hands the plaintext to the HTTP/1 or HTTP/2 parser.

use std::collections::VecDeque;

use super::handshake::{self, ClientHello, HandshakeReader};
use super::keylog::{Keys, Secrets};
use super::keys::{
    self, DirectionKeys, NonceStyle, Suite, TAG_LEN, supported_suite, tls12_keys, tls13_keys,
};
use super::record::{self, NotRecords, RecordReader};
use crate::capture::Pos;
use crate::reassembly::Piece;

/// Where decryption of a connection stands (and, at its end, why it was not decrypted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsStatus {
    /// Hellos not (all) seen yet.
    Handshake,
    /// Keys installed; records are being decrypted.
    Decrypting,
    /// The key log has no secrets for this connection's client random.
    NoKey,
    /// The negotiated cipher suite is one we do not decrypt.
    UnsupportedSuite,
    /// SSL 3.0, TLS 1.0 or 1.1.
    UnsupportedVersion,
    /// The capture began after the hellos (no client random to look keys up with).
    MissingHandshake,
    /// Records failed to authenticate with the logged keys (wrong or stale key log).
    DecryptFailed,
    /// The bytes are not TLS records.
    NotTls,
}

impl TlsStatus {
    pub fn name(self) -> &'static str {
        match self {
            TlsStatus::Handshake => "handshake",
            TlsStatus::Decrypting => "decrypting",
            TlsStatus::NoKey => "no-key",
            TlsStatus::UnsupportedSuite => "unsupported-suite",
            TlsStatus::UnsupportedVersion => "unsupported-version",
            TlsStatus::MissingHandshake => "missing-handshake",
            TlsStatus::DecryptFailed => "decrypt-failed",
            TlsStatus::NotTls => "not-tls",
        }
    }
}

/// What was negotiated, as far as the capture shows it. Never holds a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFacts {
    /// 0x0303 TLS 1.2, 0x0304 TLS 1.3, …
    pub version: Option<u16>,
    pub cipher_suite: Option<u16>,
    /// The protocol the server selected.
    pub alpn: Option<String>,
    /// The protocols the client offered.
    pub alpn_offered: Vec<String>,
    pub sni: Option<String>,
    /// An abbreviated handshake (TLS 1.2 session id, or TLS 1.3 PSK accepted).
    pub resumed: bool,
    pub hello_retry: bool,
}

impl TlsFacts {
    pub fn version_name(&self) -> Option<&'static str> {
        Some(match self.version? {
            0x0300 => "SSL 3.0",
            0x0301 => "TLS 1.0",
            0x0302 => "TLS 1.1",
            0x0303 => "TLS 1.2",
            0x0304 => "TLS 1.3",
            _ => return None,
        })
    }

    /// The suite's IANA name, or its number in hex when we do not know it.
    pub fn suite_name(&self) -> Option<String> {
        let id = self.cipher_suite?;
        Some(keys::suite_name(id).map_or_else(|| format!("0x{id:04X}"), str::to_owned))
    }
}

/// Counters of the TLS layer, summed per run. Every TLS connection lands in exactly one of
/// `decrypted`, `no_key`, `unsupported_suite`, `unsupported_version`, `missing_handshake`,
/// `decrypt_failed`, `handshake_only`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TlsStats {
    pub connections: u64,
    pub decrypted: u64,
    pub no_key: u64,
    pub unsupported_suite: u64,
    pub unsupported_version: u64,
    pub missing_handshake: u64,
    pub decrypt_failed: u64,
    /// Connections that ended before their hellos were complete.
    pub handshake_only: u64,
    /// Decrypted connections that lost sync in a direction (a gap in the capture) for good.
    pub lost_sync: u64,
    /// Gaps in decrypted connections after which decryption found the next record.
    pub resynced_gaps: u64,
    pub records_decrypted: u64,
    pub records_failed: u64,
    pub plaintext_bytes: u64,
}

impl TlsStats {
    pub fn merge(&mut self, o: &TlsStats) {
        self.connections += o.connections;
        self.decrypted += o.decrypted;
        self.no_key += o.no_key;
        self.unsupported_suite += o.unsupported_suite;
        self.unsupported_version += o.unsupported_version;
        self.missing_handshake += o.missing_handshake;
        self.decrypt_failed += o.decrypt_failed;
        self.handshake_only += o.handshake_only;
        self.lost_sync += o.lost_sync;
        self.resynced_gaps += o.resynced_gaps;
        self.records_decrypted += o.records_decrypted;
        self.records_failed += o.records_failed;
        self.plaintext_bytes += o.plaintext_bytes;
    }

    /// Connections not decrypted, by reason (for summaries).
    pub fn undecrypted(&self) -> Vec<(&'static str, u64)> {
        [
            ("no key", self.no_key),
            ("unsupported suite", self.unsupported_suite),
            ("unsupported version", self.unsupported_version),
            ("missing handshake", self.missing_handshake),
            ("decryption failed", self.decrypt_failed),
            ("handshake only", self.handshake_only),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// Protected records held while a live capture waits for the key log to catch up.
const HOLD_LIMIT: usize = 1024 * 1024;
/// Consecutive records that fail to authenticate before a direction is given up.
const MAX_FAILURES: u32 = 8;

/// One direction's state.
#[derive(Debug, Default)]
struct Dir {
    records: RecordReader,
    handshake: HandshakeReader,
    /// TLS 1.2: ChangeCipherSpec seen, later records are protected.
    ccs: bool,
    keys: Option<DirectionKeys>,
    /// TLS 1.3: the application traffic secret behind `keys`, for KeyUpdate.
    app_secret: Option<Vec<u8>>,
    /// TLS 1.3: keys to try, in order, when `keys` fail (the next epochs: handshake after
    /// rejected early data, application data after Finished), with their traffic secret
    /// when it is an application one.
    next: VecDeque<(DirectionKeys, Option<Vec<u8>>)>,
    decrypted: u64,
    failures: u32,
    /// A gap or an undecryptable stretch: nothing more is read in this direction.
    lost: bool,
    /// After a gap in application data: bytes lost, and bytes scanned since, while looking
    /// for the next record and its sequence number.
    resync: Option<(u64, usize)>,
    /// Gaps recovered from.
    resynced: u64,
    /// Trial decryptions spent on the current resynchronisation.
    resync_trials: u64,
}

/// Bytes scanned for a record boundary after a gap before the direction is given up.
const RESYNC_SCAN_LIMIT: usize = 256 * 1024;
/// Sequence numbers tried for a candidate record after a gap.
const RESYNC_TRIES: u64 = 4096;
/// Trial decryptions for one gap, whatever the number of candidate records: crafted
/// traffic cannot make a gap cost more than this.
const RESYNC_BUDGET: u64 = 16 * 1024;

/// A protected record waiting for keys.
struct Held {
    dir: usize,
    header: [u8; record::HEADER_LEN],
    payload: Vec<u8>,
    pos: Pos,
}

/// Decrypts one TLS connection.
pub struct TlsDecryptor {
    keys: Keys,
    /// Live capture: keys may be logged after the ClientHello, so protected records are held
    /// (bounded) until they are.
    wait_for_keys: bool,
    client: usize,
    dirs: [Dir; 2],
    client_hello: Option<ClientHello>,
    server_random: [u8; 32],
    suite: Option<Suite>,
    tls13: bool,
    /// A final ServerHello was seen.
    hello_done: bool,
    keyed: bool,
    held: Vec<Held>,
    held_bytes: usize,
    /// Holding overflowed: what was held is gone.
    hold_overflow: bool,
    facts: TlsFacts,
    status: TlsStatus,
    scratch: Vec<u8>,
    messages: Vec<handshake::Message>,
    pub stats: TlsStats,
}

impl std::fmt::Debug for TlsDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDecryptor")
            .field("status", &self.status)
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

impl TlsDecryptor {
    /// `client` is the direction that sends the ClientHello.
    pub fn new(keys: Keys, client: usize, wait_for_keys: bool) -> TlsDecryptor {
        TlsDecryptor {
            keys,
            wait_for_keys,
            client,
            dirs: [Dir::default(), Dir::default()],
            client_hello: None,
            server_random: [0; 32],
            suite: None,
            tls13: false,
            hello_done: false,
            keyed: false,
            held: Vec::new(),
            held_bytes: 0,
            hold_overflow: false,
            facts: TlsFacts::default(),
            status: TlsStatus::Handshake,
            scratch: Vec::new(),
            messages: Vec::new(),
            stats: TlsStats::default(),
        }
    }

    pub fn facts(&self) -> &TlsFacts {
        &self.facts
    }

    pub fn status(&self) -> TlsStatus {
        self.status
    }

    pub fn client(&self) -> usize {
        self.client
    }

    /// True when a direction lost its record boundaries (a gap in the capture).
    pub fn lost_any(&self) -> bool {
        self.dirs.iter().any(|d| d.lost || d.resync.is_some())
    }

    /// Gaps after which decryption found its way back.
    pub fn resynced(&self) -> u64 {
        self.dirs.iter().map(|d| d.resynced).sum()
    }

    /// Bytes held: partial records and records waiting for keys.
    pub fn buffered(&self) -> usize {
        self.dirs[0].records.buffered() + self.dirs[1].records.buffered() + self.held_bytes
    }

    /// True when nothing more can come out of this connection.
    pub fn is_done(&self) -> bool {
        matches!(
            self.status,
            TlsStatus::NotTls
                | TlsStatus::UnsupportedSuite
                | TlsStatus::UnsupportedVersion
                | TlsStatus::MissingHandshake
                | TlsStatus::DecryptFailed
        ) || (self.status == TlsStatus::NoKey && !self.wait_for_keys)
            || self.dirs.iter().all(|d| d.lost)
    }

    /// Feeds one piece of direction `dir`; plaintext comes out through `emit` as
    /// `(direction, piece, position of the frame that completed the record)`.
    pub fn piece(
        &mut self,
        dir: usize,
        piece: Piece<'_>,
        pos: Pos,
        emit: &mut impl FnMut(usize, Piece<'_>, Pos),
    ) {
        let dir = dir & 1;
        if self.wait_for_keys && self.status == TlsStatus::NoKey {
            // Live: the key log may have caught up since the last piece.
            self.retry_keys(emit);
        }
        match piece {
            Piece::Data(data) => {
                if self.dirs[dir].lost || self.is_done() {
                    return;
                }
                // Usually a piece holds whole records and nothing is buffered: they are read
                // straight from it, and only an unfinished record's bytes are kept.
                let direct =
                    self.dirs[dir].records.buffered() == 0 && self.dirs[dir].resync.is_none();
                let mut rest = data;
                if !direct {
                    self.dirs[dir].records.push(data);
                    rest = &[];
                    if self.dirs[dir].resync.is_some() && !self.resync(dir) {
                        return;
                    }
                }
                loop {
                    let mut buf = std::mem::take(&mut self.scratch);
                    buf.clear();
                    let next = if direct {
                        record::split_record(rest).map(|split| {
                            split.map(|(header, len)| {
                                buf.extend_from_slice(&rest[record::HEADER_LEN..len]);
                                rest = &rest[len..];
                                header
                            })
                        })
                    } else {
                        self.dirs[dir].records.next_record().map(|rec| {
                            rec.map(|rec| {
                                buf.extend_from_slice(rec.payload);
                                rec.header
                            })
                        })
                    };
                    let header = match next {
                        Ok(Some(header)) => header,
                        Ok(None) => {
                            self.scratch = buf;
                            break;
                        }
                        Err(NotRecords) => {
                            self.scratch = buf;
                            if self.hello_done || self.client_hello.is_some() {
                                self.lose(dir, 0, pos, emit);
                            } else {
                                self.status = TlsStatus::NotTls;
                            }
                            break;
                        }
                    };
                    self.record(dir, header, &mut buf, pos, emit);
                    self.scratch = buf;
                    if self.dirs[dir].lost {
                        break;
                    }
                }
                // What a lost direction had buffered is dropped, as `lose` drops the rest.
                if direct && !rest.is_empty() && !self.dirs[dir].lost {
                    self.dirs[dir].records.push(rest);
                }
            }
            Piece::Gap(n) | Piece::Cut(n) => self.gap(dir, n, pos, emit),
            Piece::Conflict => emit(dir, Piece::Conflict, pos),
        }
    }

    /// Bytes of the direction were not captured. Once application data flows, the next
    /// record is looked for (and its sequence number found by trial); before, or when the
    /// keys are unknown, the direction is lost.
    fn gap(
        &mut self,
        dir: usize,
        bytes: u64,
        pos: Pos,
        emit: &mut impl FnMut(usize, Piece<'_>, Pos),
    ) {
        let d = &mut self.dirs[dir];
        let in_application = d.keys.is_some() && d.next.is_empty() && d.decrypted > 0;
        if d.lost || !self.keyed || !in_application || bytes == 0 {
            self.lose(dir, bytes, pos, emit);
            return;
        }
        let lost_before = d.resync.map_or(0, |(b, _)| b);
        let lost = lost_before
            .saturating_add(bytes)
            .saturating_add(d.records.buffered() as u64);
        d.resync = Some((lost, 0));
        d.resync_trials = 0;
        d.records.clear();
        emit(dir, Piece::Gap(bytes), pos);
    }

    /// Looks for the first whole record after a gap: a plausible header whose record
    /// decrypts with a sequence number the lost bytes allow. Returns true once found (the
    /// record reader then starts at it), false while more bytes are needed.
    fn resync(&mut self, dir: usize) -> bool {
        let Some((lost, scanned)) = self.dirs[dir].resync else {
            return true;
        };
        let buf = self.dirs[dir].records.pending().to_vec();
        let mut p = 0;
        let mut found = None;
        while p + record::HEADER_LEN <= buf.len() {
            let h = &buf[p..];
            if h[0] == record::APPLICATION_DATA && record::plausible_header(h) == Some(true) {
                let end = p + record::HEADER_LEN + usize::from(u16::from_be_bytes([h[3], h[4]]));
                if end > buf.len() {
                    break; // wait for the whole record
                }
                let chained = buf
                    .get(end..)
                    .is_none_or(|next| record::plausible_header(next) != Some(false));
                if chained {
                    let mut header = [0u8; record::HEADER_LEN];
                    header.copy_from_slice(&h[..record::HEADER_LEN]);
                    let lost_now = lost.saturating_add(p as u64);
                    if let Some(seq) = self.find_seq(dir, header, &buf[p + 5..end], lost_now) {
                        found = Some(seq);
                        break;
                    }
                }
            }
            p += 1;
        }
        let d = &mut self.dirs[dir];
        d.records.skip(p);
        if let Some(seq) = found {
            if let Some(k) = d.keys.as_mut() {
                k.seq = seq;
            }
            d.resync = None;
            d.resynced += 1;
            return true;
        }
        let scanned = scanned + p;
        if scanned > RESYNC_SCAN_LIMIT
            || d.records.buffered() > RESYNC_SCAN_LIMIT
            || d.resync_trials >= RESYNC_BUDGET
        {
            d.resync = None;
            d.lost = true;
            d.records.clear();
            return false;
        }
        d.resync = Some((lost.saturating_add(p as u64), scanned));
        false
    }

    /// The sequence number of a record that follows `lost` missing bytes, by trial: TLS 1.2
    /// GCM records usually carry it as their explicit nonce; otherwise every number the lost
    /// bytes allow (each record is 22 bytes at least and 16 kB + overhead at most).
    fn find_seq(&mut self, dir: usize, header: [u8; 5], payload: &[u8], lost: u64) -> Option<u64> {
        let tls13 = self.tls13;
        let k = self.dirs[dir].keys.as_mut()?;
        let base = k.seq;
        let lo = base.saturating_add(lost / (record::MAX_PAYLOAD as u64 + 5));
        let hi = base
            .saturating_add(lost / 22 + 2)
            .min(lo.saturating_add(RESYNC_TRIES));
        let explicit = (!tls13 && k.style == NonceStyle::ExplicitGcm)
            .then(|| payload.get(..8).and_then(|e| <[u8; 8]>::try_from(e).ok()))
            .flatten()
            .map(u64::from_be_bytes)
            .filter(|e| (base..=base.saturating_add(lost)).contains(e));
        let mut tmp = Vec::with_capacity(payload.len());
        for seq in explicit.into_iter().chain(lo..hi) {
            let d = &mut self.dirs[dir];
            if d.resync_trials >= RESYNC_BUDGET {
                break;
            }
            d.resync_trials += 1;
            tmp.clear();
            tmp.extend_from_slice(payload);
            if let Some(k) = self.dirs[dir].keys.as_mut() {
                k.seq = seq;
            }
            let ok = if tls13 {
                self.open_tls13(dir, header, &mut tmp).is_some()
            } else {
                self.open_tls12(dir, header, &mut tmp).is_some()
            };
            if ok {
                return Some(seq);
            }
        }
        if let Some(k) = self.dirs[dir].keys.as_mut() {
            k.seq = base;
        }
        None
    }

    /// The direction's record boundaries are gone: tell the consumer, read no more of it.
    fn lose(
        &mut self,
        dir: usize,
        bytes: u64,
        pos: Pos,
        emit: &mut impl FnMut(usize, Piece<'_>, Pos),
    ) {
        let d = &mut self.dirs[dir];
        if d.lost {
            return;
        }
        d.lost = true;
        d.resync = None;
        d.records.clear();
        if !self.hello_done {
            if self.status == TlsStatus::Handshake {
                self.status = TlsStatus::MissingHandshake;
            }
            return;
        }
        if d.decrypted > 0 || self.keyed {
            emit(dir, Piece::Gap(bytes.max(1)), pos);
        }
    }

    /// One whole record.
    fn record(
        &mut self,
        dir: usize,
        header: [u8; record::HEADER_LEN],
        payload: &mut [u8],
        pos: Pos,
        emit: &mut impl FnMut(usize, Piece<'_>, Pos),
    ) {
        let ct = header[0];
        let early = dir == self.client
            && !self.hello_done
            && ct == record::APPLICATION_DATA
            && self.client_hello.as_ref().is_some_and(|c| c.early_data);
        let protected = if self.tls13 && self.hello_done {
            ct == record::APPLICATION_DATA
        } else {
            self.dirs[dir].ccs && ct != record::CHANGE_CIPHER_SPEC
        };
        if !protected && !early {
            match ct {
                record::CHANGE_CIPHER_SPEC if self.hello_done && !self.tls13 => {
                    self.dirs[dir].ccs = true;
                }
                record::HANDSHAKE => self.handshake_bytes(dir, payload, pos, emit),
                record::APPLICATION_DATA if !self.hello_done => {
                    // Application data before any hello: the capture began mid-connection.
                    self.status = TlsStatus::MissingHandshake;
                }
                _ => {}
            }
            return;
        }
        if !self.keyed {
            self.hold(dir, header, payload, pos);
            return;
        }
        self.open(dir, header, payload, pos, emit);
    }

    /// Keeps a protected record until keys exist (early data before the ServerHello, or a
    /// live key log not yet written).
    fn hold(&mut self, dir: usize, header: [u8; 5], payload: &[u8], pos: Pos) {
        let may_come = !self.hello_done
            || (self.wait_for_keys && self.status == TlsStatus::NoKey && !self.hold_overflow);
        if !may_come {
            return;
        }
        if self.held_bytes + payload.len() > HOLD_LIMIT {
            self.hold_overflow = true;
            self.held.clear();
            self.held_bytes = 0;
            return;
        }
        self.held_bytes += payload.len();
        self.held.push(Held {
            dir,
            header,
            payload: payload.to_vec(),
            pos,
        });
    }

    /// Live capture: looks the connection's keys up again (the key log may have grown),
    /// and decrypts what was held. Returns true when keys are now installed.
    pub fn retry_keys(&mut self, emit: &mut impl FnMut(usize, Piece<'_>, Pos)) -> bool {
        if self.keyed || self.status != TlsStatus::NoKey || self.hold_overflow {
            return self.keyed;
        }
        self.install_keys();
        if self.keyed {
            self.release_held(emit);
        }
        self.keyed
    }

    fn release_held(&mut self, emit: &mut impl FnMut(usize, Piece<'_>, Pos)) {
        for mut h in std::mem::take(&mut self.held) {
            if !self.dirs[h.dir].lost {
                self.open(h.dir, h.header, &mut h.payload, h.pos, emit);
            }
        }
        self.held_bytes = 0;
    }

    fn handshake_bytes(
        &mut self,
        dir: usize,
        data: &[u8],
        pos: Pos,
        emit: &mut impl FnMut(usize, Piece<'_>, Pos),
    ) {
        let mut msgs = std::mem::take(&mut self.messages);
        self.dirs[dir].handshake.push(data, &mut msgs);
        for m in msgs.drain(..) {
            self.handshake_message(dir, m, pos, emit);
        }
        self.messages = msgs;
    }

    fn handshake_message(
        &mut self,
        dir: usize,
        m: handshake::Message,
        pos: Pos,
        emit: &mut impl FnMut(usize, Piece<'_>, Pos),
    ) {
        let from_client = dir == self.client;
        match m.msg_type {
            handshake::CLIENT_HELLO if from_client && !self.hello_done => {
                if let Some(ch) = handshake::parse_client_hello(&m.body) {
                    self.facts.sni = ch.sni.clone();
                    self.facts.alpn_offered = ch.alpn.clone();
                    // After a HelloRetryRequest the second ClientHello keeps the random.
                    if self.client_hello.is_none() {
                        self.client_hello = Some(ch);
                    }
                }
            }
            handshake::SERVER_HELLO if !from_client && !self.hello_done => {
                let Some(sh) = handshake::parse_server_hello(&m.body) else {
                    return;
                };
                self.facts.version = Some(sh.version);
                self.facts.cipher_suite = Some(sh.cipher_suite);
                if sh.hello_retry {
                    self.facts.hello_retry = true;
                    return;
                }
                self.hello_done = true;
                self.server_random = sh.random;
                self.tls13 = sh.version == 0x0304;
                if sh.alpn.is_some() {
                    self.facts.alpn = sh.alpn.clone();
                }
                self.facts.resumed = if self.tls13 {
                    sh.psk
                } else {
                    // TLS 1.2: the server echoes a session id the client offered.
                    !sh.session_id.is_empty()
                        && self
                            .client_hello
                            .as_ref()
                            .is_some_and(|c| c.session_id == sh.session_id)
                };
                if self.client_hello.is_none() {
                    self.status = TlsStatus::MissingHandshake;
                    return;
                }
                if sh.version < 0x0303 {
                    self.status = TlsStatus::UnsupportedVersion;
                    return;
                }
                match supported_suite(sh.cipher_suite) {
                    Some(s) if s.tls13 == self.tls13 => self.suite = Some(s),
                    _ => {
                        self.status = TlsStatus::UnsupportedSuite;
                        return;
                    }
                }
                self.install_keys();
                if self.keyed {
                    self.release_held(emit);
                }
            }
            handshake::ENCRYPTED_EXTENSIONS if !from_client => {
                if let Some(alpn) = handshake::parse_encrypted_extensions(&m.body) {
                    self.facts.alpn = Some(alpn);
                }
            }
            handshake::FINISHED if self.tls13 => {
                // The next record of this direction uses its application traffic keys.
                let d = &mut self.dirs[dir];
                while let Some((k, secret)) = d.next.pop_front() {
                    if secret.is_some() {
                        d.keys = Some(k);
                        d.app_secret = secret;
                        break;
                    }
                }
            }
            handshake::END_OF_EARLY_DATA if self.tls13 && from_client => {
                let d = &mut self.dirs[dir];
                if let Some((k, secret)) = d.next.pop_front() {
                    d.keys = Some(k);
                    d.app_secret = secret;
                }
            }
            handshake::KEY_UPDATE if self.tls13 => {
                let Some(suite) = self.suite else { return };
                let d = &mut self.dirs[dir];
                let next = d
                    .app_secret
                    .as_deref()
                    .and_then(|s| keys::tls13_next_secret(&suite, s));
                match next.as_deref().and_then(|s| tls13_keys(&suite, s)) {
                    Some(k) => {
                        d.keys = Some(k);
                        d.app_secret = next;
                    }
                    None => self.lose(dir, 0, pos, emit),
                }
            }
            _ => {}
        }
    }

    /// Installs record keys from the key log, when it has this connection.
    fn install_keys(&mut self) {
        let (Some(ch), Some(suite)) = (&self.client_hello, self.suite) else {
            return;
        };
        let Some(secrets) = self.keys.lookup(&ch.random) else {
            self.status = TlsStatus::NoKey;
            return;
        };
        let installed = if self.tls13 {
            self.install_tls13(&suite, &secrets, ch.early_data)
        } else {
            secrets.master.as_deref().and_then(|master| {
                let [c, s] = tls12_keys(&suite, master, &ch.random, &self.server_random)?;
                let client = self.client;
                self.dirs[client].keys = Some(c);
                self.dirs[client ^ 1].keys = Some(s);
                Some(())
            })
        };
        if installed.is_some() {
            self.keyed = true;
            self.status = TlsStatus::Decrypting;
        } else {
            self.status = TlsStatus::NoKey;
        }
    }

    fn install_tls13(&mut self, suite: &Suite, s: &Secrets, early_offered: bool) -> Option<()> {
        let derive =
            |secret: &Option<Vec<u8>>| secret.as_deref().and_then(|x| tls13_keys(suite, x));
        // Either the whole schedule, or at least the application secrets.
        if s.client_traffic_0.is_none() || s.server_traffic_0.is_none() {
            return None;
        }
        let client = self.client;
        for (dir, hs, app) in [
            (client, &s.client_handshake, &s.client_traffic_0),
            (client ^ 1, &s.server_handshake, &s.server_traffic_0),
        ] {
            let d = &mut self.dirs[dir];
            d.next.clear();
            let mut epochs: Vec<(DirectionKeys, Option<Vec<u8>>)> = Vec::new();
            if dir == client
                && early_offered
                && let Some(k) = derive(&s.client_early)
            {
                epochs.push((k, None));
            }
            if let Some(k) = derive(hs) {
                epochs.push((k, None));
            }
            epochs.push((derive(app)?, app.clone()));
            let mut epochs = VecDeque::from(epochs);
            let (first, secret) = epochs.pop_front()?;
            d.keys = Some(first);
            d.app_secret = secret;
            d.next = epochs;
        }
        Some(())
    }

    /// Decrypts one protected record and hands on what it carried.
    fn open(
        &mut self,
        dir: usize,
        header: [u8; record::HEADER_LEN],
        payload: &mut [u8],
        pos: Pos,
        emit: &mut impl FnMut(usize, Piece<'_>, Pos),
    ) {
        let opened = if self.tls13 {
            self.open_tls13(dir, header, payload)
        } else {
            self.open_tls12(dir, header, payload)
        };
        let Some((inner, range)) = opened else {
            self.stats.records_failed += 1;
            let d = &mut self.dirs[dir];
            d.failures += 1;
            if d.failures >= MAX_FAILURES {
                if self.dirs.iter().all(|d| d.decrypted == 0) {
                    self.status = TlsStatus::DecryptFailed;
                }
                self.lose(dir, 0, pos, emit);
            }
            return;
        };
        self.stats.records_decrypted += 1;
        let d = &mut self.dirs[dir];
        d.failures = 0;
        d.decrypted += 1;
        let plain = &payload[range];
        match inner {
            record::APPLICATION_DATA if !plain.is_empty() => {
                self.stats.plaintext_bytes += plain.len() as u64;
                emit(dir, Piece::Data(plain), pos);
            }
            record::HANDSHAKE => {
                let plain = plain.to_vec();
                self.handshake_bytes(dir, &plain, pos, emit);
            }
            _ => {}
        }
    }

    /// TLS 1.3 (RFC 8446 §5.2): AAD is the record header, the nonce the IV XOR the
    /// sequence number; the plaintext ends with the real content type and zero padding.
    fn open_tls13(
        &mut self,
        dir: usize,
        header: [u8; 5],
        payload: &mut [u8],
    ) -> Option<(u8, std::ops::Range<usize>)> {
        let d = &mut self.dirs[dir];
        let try_open = |k: &mut DirectionKeys, buf: &mut [u8]| {
            let nonce = k.nonce(None)?;
            let n = k.cipher.open(&nonce, &header, buf)?;
            k.seq = k.seq.wrapping_add(1);
            Some(n)
        };
        // Later epochs are tried only when the current keys fail: keep the ciphertext.
        let original = (!d.next.is_empty()).then(|| payload.to_vec());
        let mut n = d.keys.as_mut().and_then(|k| try_open(k, payload));
        if n.is_none()
            && let Some(original) = original
        {
            for i in 0..d.next.len() {
                payload.copy_from_slice(&original);
                if let Some(got) = try_open(&mut d.next[i].0, payload) {
                    // This epoch it is: the earlier ones are over.
                    let mut rest = d.next.split_off(i);
                    let (k, secret) = rest.pop_front()?;
                    d.keys = Some(k);
                    d.app_secret = secret;
                    d.next = rest;
                    n = Some(got);
                    break;
                }
            }
        }
        let n = n?;
        let end = payload[..n].iter().rposition(|&b| b != 0)?;
        Some((payload[end], 0..end))
    }

    /// TLS 1.2 AEAD (RFC 5246 §6.2.3.3, RFC 5288, RFC 7905): AAD is the sequence number,
    /// type, version and plaintext length.
    fn open_tls12(
        &mut self,
        dir: usize,
        header: [u8; 5],
        payload: &mut [u8],
    ) -> Option<(u8, std::ops::Range<usize>)> {
        let k = self.dirs[dir].keys.as_mut()?;
        let explicit = match k.style {
            NonceStyle::ExplicitGcm => 8,
            NonceStyle::XorSequence => 0,
        };
        let plain_len = payload.len().checked_sub(explicit + TAG_LEN)?;
        let nonce = k.nonce(payload.get(..explicit))?;
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&k.seq.to_be_bytes());
        aad[8..11].copy_from_slice(&header[..3]);
        aad[11..].copy_from_slice(&u16::try_from(plain_len).ok()?.to_be_bytes());
        let n = k.cipher.open(&nonce, &aad, &mut payload[explicit..])?;
        k.seq = k.seq.wrapping_add(1);
        Some((header[0], explicit..explicit + n))
    }
}

#[cfg(test)]
pub(crate) mod testconn {
    //! Whole TLS connections written with known secrets, for tests.

    use super::super::handshake::build::*;
    use super::super::handshake::{FINISHED, KEY_UPDATE};
    use super::super::keylog::KeyLog;
    use super::super::keys::{DirectionKeys, NonceStyle, tls12_keys, tls13_keys};
    use super::*;

    pub const CR: [u8; 32] = [0xc1; 32];
    pub const SR: [u8; 32] = [0x5e; 32];

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub fn plain(ct: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![ct, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    pub fn seal13(k: &mut DirectionKeys, inner: u8, msg: &[u8]) -> Vec<u8> {
        let mut p = msg.to_vec();
        p.push(inner);
        p.extend_from_slice(&[0, 0, 0]); // padding
        let len = (p.len() + TAG_LEN) as u16;
        let mut header = vec![23, 3, 3];
        header.extend_from_slice(&len.to_be_bytes());
        let nonce = k.nonce(None).unwrap();
        let sealed = k.cipher.seal(&nonce, &header, &p);
        k.seq = k.seq.wrapping_add(1);
        header.extend(sealed);
        header
    }

    pub fn seal12(k: &mut DirectionKeys, ct: u8, msg: &[u8]) -> Vec<u8> {
        let explicit = k.seq.to_be_bytes();
        let nonce = match k.style {
            NonceStyle::ExplicitGcm => k.nonce(Some(&explicit)).unwrap(),
            NonceStyle::XorSequence => k.nonce(None).unwrap(),
        };
        let mut aad = k.seq.to_be_bytes().to_vec();
        aad.extend_from_slice(&[ct, 3, 3]);
        aad.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        let mut payload = Vec::new();
        if k.style == NonceStyle::ExplicitGcm {
            payload.extend_from_slice(&explicit);
        }
        payload.extend(k.cipher.seal(&nonce, &aad, msg));
        k.seq = k.seq.wrapping_add(1);
        plain(ct, &payload)
    }

    /// A connection's bytes in wire order: (direction, bytes). Client is direction 0.
    pub struct Conn {
        pub wire: Vec<(usize, Vec<u8>)>,
        pub keylog: String,
    }

    pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    pub const AFTER_UPDATE: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

    /// TLS 1.3 with ALPN, a HelloRetryRequest when `hrr`, and a server KeyUpdate.
    pub fn tls13(suite_id: u16, hrr: bool) -> Conn {
        tls13_with(suite_id, hrr, 0)
    }

    /// The server's `i`-th extra record (after the scripted ones).
    pub fn extra(i: usize) -> Vec<u8> {
        format!("extra record {i:04}\n").into_bytes()
    }

    /// [`tls13`] with `extra` more server records at the end.
    pub fn tls13_with(suite_id: u16, hrr: bool, extras: usize) -> Conn {
        let suite = supported_suite(suite_id).unwrap();
        let n = suite.hash.output_len();
        let (chs, shs, cap, sap) = (vec![1u8; n], vec![2u8; n], vec![3u8; n], vec![4u8; n]);
        let mut k_chs = tls13_keys(&suite, &chs).unwrap();
        let mut k_shs = tls13_keys(&suite, &shs).unwrap();
        let mut k_cap = tls13_keys(&suite, &cap).unwrap();
        let mut k_sap = tls13_keys(&suite, &sap).unwrap();
        let sap2 = keys::tls13_next_secret(&suite, &sap).unwrap();
        let mut k_sap2 = tls13_keys(&suite, &sap2).unwrap();
        let ch = client_hello(
            CR,
            &[suite_id],
            &[
                sni("a.test"),
                alpn(&["h2", "http/1.1"]),
                ext(43, &[2, 3, 4]),
            ],
        );
        let mut wire = vec![(0, plain(22, &ch))];
        if hrr {
            let hrr = server_hello(handshake::HRR_RANDOM, suite_id, &[tls13_version()]);
            wire.push((1, plain(22, &hrr)));
            wire.push((0, plain(20, &[1])));
            wire.push((0, plain(22, &ch)));
        }
        let sh = server_hello(SR, suite_id, &[tls13_version()]);
        wire.push((1, plain(22, &sh)));
        wire.push((1, plain(20, &[1])));
        let mut flight = encrypted_extensions(&[alpn(&["http/1.1"])]);
        flight.extend(message(11, &[0u8; 3000]));
        flight.extend(message(FINISHED, &[9u8; 32]));
        // The server's flight split over two records.
        wire.push((1, seal13(&mut k_shs, 22, &flight[..1000])));
        wire.push((1, seal13(&mut k_shs, 22, &flight[1000..])));
        wire.push((0, seal13(&mut k_chs, 22, &message(FINISHED, &[8u8; 32]))));
        wire.push((0, seal13(&mut k_cap, 23, REQUEST)));
        wire.push((1, seal13(&mut k_sap, 22, &message(4, &[0u8; 40]))));
        wire.push((1, seal13(&mut k_sap, 23, RESPONSE)));
        wire.push((1, seal13(&mut k_sap, 22, &message(KEY_UPDATE, &[0]))));
        wire.push((1, seal13(&mut k_sap2, 23, AFTER_UPDATE)));
        for i in 0..extras {
            wire.push((1, seal13(&mut k_sap2, 23, &extra(i))));
        }
        let r = hex(&CR);
        let keylog = format!(
            "# test keys\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {r} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\n",
            hex(&chs),
            hex(&shs),
            hex(&cap),
            hex(&sap)
        );
        Conn { wire, keylog }
    }

    /// TLS 1.2 with an AEAD suite and ALPN http/1.1.
    pub fn tls12(suite_id: u16) -> Conn {
        tls12_with(suite_id, 0)
    }

    /// [`tls12`] with `extra` more server records at the end.
    pub fn tls12_with(suite_id: u16, extras: usize) -> Conn {
        let suite = supported_suite(suite_id).unwrap();
        let master = [0x4d; 48];
        let [mut kc, mut ks] = tls12_keys(&suite, &master, &CR, &SR).unwrap();
        let ch = client_hello(CR, &[suite_id], &[sni("b.test"), alpn(&["http/1.1"])]);
        let sh = server_hello(SR, suite_id, &[alpn(&["http/1.1"])]);
        let mut server_flight = sh.clone();
        server_flight.extend(message(11, &[0u8; 2000]));
        server_flight.extend(message(14, &[]));
        let mut wire = vec![
            (0, plain(22, &ch)),
            (1, plain(22, &server_flight)),
            (0, plain(22, &message(16, &[0u8; 33]))),
            (0, plain(20, &[1])),
            (0, seal12(&mut kc, 22, &message(FINISHED, &[0u8; 12]))),
            (1, plain(20, &[1])),
            (1, seal12(&mut ks, 22, &message(FINISHED, &[0u8; 12]))),
            (0, seal12(&mut kc, 23, REQUEST)),
            (1, seal12(&mut ks, 23, RESPONSE)),
        ];
        for i in 0..extras {
            wire.push((1, seal12(&mut ks, 23, &extra(i))));
        }
        let keylog = format!("CLIENT_RANDOM {} {}\n", hex(&CR), hex(&master));
        Conn { wire, keylog }
    }

    /// Feeds a connection in `chunk`-byte pieces; returns the plaintext of each direction.
    pub fn run(
        conn: &Conn,
        keys: &Keys,
        chunk: usize,
        wait: bool,
    ) -> (TlsDecryptor, [Vec<u8>; 2], Vec<(usize, String)>) {
        let mut d = TlsDecryptor::new(keys.clone(), 0, wait);
        let mut out: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut other = Vec::new();
        let mut emit = |dir: usize, p: Piece<'_>, _pos: Pos| match p {
            Piece::Data(b) => out[dir].extend_from_slice(b),
            p => other.push((dir, format!("{p:?}"))),
        };
        for (dir, bytes) in &conn.wire {
            for c in bytes.chunks(chunk.max(1)) {
                d.piece(*dir, Piece::Data(c), Pos::default(), &mut emit);
            }
        }
        (d, out, other)
    }

    pub fn keys_of(conn: &Conn) -> Keys {
        Keys::new(KeyLog::parse(conn.keylog.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::keylog::KeyLog;
    use super::testconn::*;
    use super::*;

    #[test]
    fn tls13_all_suites_any_segmentation() {
        for suite in [0x1301, 0x1302, 0x1303] {
            let conn = tls13(suite, false);
            for chunk in [1, 7, 100, 100_000] {
                let (d, out, other) = run(&conn, &keys_of(&conn), chunk, false);
                assert_eq!(out[0], REQUEST, "suite {suite:x} chunk {chunk}");
                assert_eq!(out[1], [RESPONSE, AFTER_UPDATE].concat());
                assert!(other.is_empty(), "{other:?}");
                assert_eq!(d.status(), TlsStatus::Decrypting);
                let f = d.facts();
                assert_eq!(f.version_name(), Some("TLS 1.3"));
                assert_eq!(f.cipher_suite, Some(suite));
                assert_eq!(f.alpn.as_deref(), Some("http/1.1"));
                assert_eq!(f.alpn_offered, vec!["h2", "http/1.1"]);
                assert_eq!(f.sni.as_deref(), Some("a.test"));
            }
        }
    }

    #[test]
    fn tls13_hello_retry_request() {
        let conn = tls13(0x1301, true);
        let (d, out, _) = run(&conn, &keys_of(&conn), 50, false);
        assert_eq!(out[0], REQUEST);
        assert!(d.facts().hello_retry);
        assert_eq!(d.stats.records_failed, 0);
    }

    #[test]
    fn tls13_with_only_application_secrets_skips_the_handshake_records() {
        let conn = tls13(0x1301, false);
        let keylog: String = conn
            .keylog
            .lines()
            .filter(|l| !l.contains("HANDSHAKE"))
            .map(|l| format!("{l}\n"))
            .collect();
        let keys = Keys::new(KeyLog::parse(keylog.as_bytes()));
        let (d, out, _) = run(&conn, &keys, 1000, false);
        assert_eq!(out[0], REQUEST);
        assert_eq!(out[1], [RESPONSE, AFTER_UPDATE].concat());
        assert_eq!(d.status(), TlsStatus::Decrypting);
    }

    #[test]
    fn tls12_gcm_and_chacha() {
        for suite in [0xc02f, 0xc030, 0x009c, 0xcca8, 0xcca9] {
            let conn = tls12(suite);
            for chunk in [1, 13, 100_000] {
                let (d, out, other) = run(&conn, &keys_of(&conn), chunk, false);
                assert_eq!(out[0], REQUEST, "suite {suite:x} chunk {chunk}");
                assert_eq!(out[1], RESPONSE);
                assert!(other.is_empty());
                let f = d.facts();
                assert_eq!(f.version_name(), Some("TLS 1.2"));
                assert_eq!(f.alpn.as_deref(), Some("http/1.1"));
                assert_eq!(f.sni.as_deref(), Some("b.test"));
                assert!(f.suite_name().is_some_and(|n| n.starts_with("TLS_")));
            }
        }
    }

    #[test]
    fn without_keys_nothing_comes_out_and_the_reason_is_no_key() {
        let conn = tls12(0xc02f);
        let (d, out, _) = run(&conn, &Keys::default(), 100, false);
        assert!(out.iter().all(Vec::is_empty));
        assert_eq!(d.status(), TlsStatus::NoKey);
        assert!(d.is_done());
        assert_eq!(d.facts().sni.as_deref(), Some("b.test"));
    }

    #[test]
    fn live_keys_logged_late_release_the_held_records() {
        let conn = tls13(0x1303, false);
        let keys = Keys::default();
        let (mut d, out, _) = run(&conn, &keys, 100, true);
        assert!(out.iter().all(Vec::is_empty));
        assert_eq!(d.status(), TlsStatus::NoKey);
        assert!(!d.is_done());
        keys.add_text(conn.keylog.as_bytes());
        let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let released = d.retry_keys(&mut |dir, p, _| {
            if let Piece::Data(b) = p {
                got[dir].extend_from_slice(b);
            }
        });
        assert!(released);
        assert_eq!(got[0], REQUEST);
        assert_eq!(got[1], [RESPONSE, AFTER_UPDATE].concat());
    }

    #[test]
    fn unsupported_suite_and_missing_handshake_are_reasons() {
        let mut conn = tls12(0xc02f);
        // Rewrite the negotiated suite to an AES-CBC one.
        let suite_at = 5 + 4 + 2 + 32 + 1;
        conn.wire[1].1[suite_at..suite_at + 2].copy_from_slice(&0xc013u16.to_be_bytes());
        let (d, _, _) = run(&conn, &keys_of(&conn), 100, false);
        assert_eq!(d.status(), TlsStatus::UnsupportedSuite);
        assert_eq!(
            d.facts().suite_name().as_deref(),
            Some("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
        );

        let conn = tls12(0xc02f);
        let late = Conn {
            wire: conn.wire[7..].to_vec(),
            keylog: conn.keylog.clone(),
        };
        let (d, out, _) = run(&late, &keys_of(&conn), 100, false);
        assert_eq!(d.status(), TlsStatus::MissingHandshake);
        assert!(out.iter().all(Vec::is_empty));
    }

    #[test]
    fn wrong_keys_are_decrypt_failed_and_a_gap_is_reported() {
        let conn = tls12(0xc02f);
        let wrong = Keys::new(KeyLog::parse(
            conn.keylog.replace("4d4d", "4e4e").as_bytes(),
        ));
        let mut d = TlsDecryptor::new(wrong, 0, false);
        let mut emitted = 0;
        for (dir, bytes) in &conn.wire {
            d.piece(*dir, Piece::Data(bytes), Pos::default(), &mut |_, _, _| {
                emitted += 1
            });
        }
        // Each direction fails its records; fewer than MAX_FAILURES, so not yet given up.
        assert_eq!(emitted, 0);
        assert_eq!(d.stats.records_decrypted, 0);
        assert!(d.stats.records_failed >= 2);

        let mut d = TlsDecryptor::new(keys_of(&conn), 0, false);
        let mut seen = Vec::new();
        for (i, (dir, bytes)) in conn.wire.iter().enumerate() {
            if i == 8 {
                d.piece(1, Piece::Gap(10), Pos::default(), &mut |dir, p, _| {
                    seen.push((dir, format!("{p:?}")))
                });
            }
            d.piece(
                *dir,
                Piece::Data(bytes),
                Pos::default(),
                &mut |dir, p, _| seen.push((dir, format!("{p:?}"))),
            );
        }
        // The gap is reported, and the record after it (whose sequence number the gap
        // allows) is decrypted.
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[1], (1, "Gap(10)".to_owned()));
        assert!(seen[2].1.starts_with("Data"));
        assert_eq!(d.resynced(), 1);
    }

    #[test]
    fn after_a_gap_decryption_finds_the_next_record() {
        for (conn, first_extra) in [
            (tls13_with(0x1301, false, 20), 11),
            (tls13_with(0x1303, false, 20), 11),
            (tls12_with(0xc02f, 20), 9),
            (tls12_with(0xcca8, 20), 9),
        ] {
            let mut d = TlsDecryptor::new(keys_of(&conn), 0, false);
            let mut out = Vec::new();
            let mut gaps = 0;
            // Records 5..=9 of the extras are lost; the rest arrive byte by byte.
            let lost = first_extra + 5..first_extra + 10;
            for (i, (dir, bytes)) in conn.wire.iter().enumerate() {
                let mut emit = |dir: usize, p: Piece<'_>, _| match p {
                    Piece::Data(b) if dir == 1 => out.extend_from_slice(b),
                    Piece::Gap(_) => gaps += 1,
                    _ => {}
                };
                if lost.contains(&i) {
                    d.piece(
                        *dir,
                        Piece::Gap(bytes.len() as u64),
                        Pos::default(),
                        &mut emit,
                    );
                    continue;
                }
                for b in bytes.chunks(3) {
                    d.piece(*dir, Piece::Data(b), Pos::default(), &mut emit);
                }
            }
            let text = String::from_utf8_lossy(&out).into_owned();
            assert!(text.contains("extra record 0004"), "{text}");
            assert!(!text.contains("extra record 0005"), "{text}");
            assert!(text.contains("extra record 0010"), "{text}");
            assert!(text.ends_with("extra record 0019\n"), "{text}");
            assert_eq!(gaps, 5);
            assert_eq!(d.resynced(), 1);
            assert!(!d.lost_any());
        }
    }

    #[test]
    fn garbage_is_not_tls_and_never_panics() {
        let mut d = TlsDecryptor::new(Keys::default(), 0, false);
        d.piece(
            0,
            Piece::Data(b"GET / HTTP/1.1\r\n\r\n"),
            Pos::default(),
            &mut |_, _, _| {},
        );
        assert_eq!(d.status(), TlsStatus::NotTls);
        // Every prefix and single-byte corruption of a real connection.
        let conn = tls13(0x1301, false);
        let keys = keys_of(&conn);
        let flat: Vec<(usize, u8)> = conn
            .wire
            .iter()
            .flat_map(|(d, b)| b.iter().map(move |x| (*d, *x)))
            .collect();
        for at in (0..flat.len()).step_by(37) {
            let mut d = TlsDecryptor::new(keys.clone(), 0, false);
            for (i, (dir, b)) in flat.iter().enumerate() {
                let b = if i == at { b ^ 0x5a } else { *b };
                d.piece(*dir, Piece::Data(&[b]), Pos::default(), &mut |_, _, _| {});
            }
            // A gap (of any claimed size) instead of the byte.
            for lost in [1, 1000, u64::MAX] {
                let mut d = TlsDecryptor::new(keys.clone(), 0, false);
                for (i, (dir, b)) in flat.iter().enumerate() {
                    let p = if i == at {
                        Piece::Gap(lost)
                    } else {
                        Piece::Data(std::slice::from_ref(b))
                    };
                    d.piece(*dir, p, Pos::default(), &mut |_, _, _| {});
                }
            }
        }
    }
}
