//! HTTP/2 connections the capture joined after they began: each direction read from its
//! first frame boundary (found by [`crate::http2::sync`]), both directions synchronised
//! before frames are read, and streams opened before the capture told apart.

use std::net::SocketAddr;

use super::Http2Connection;
use crate::http::{AnomalyKind, Exchange, HttpConfig, Pos, TlsInfo};
use crate::http2::hpack::HeaderDecoder;
use crate::http2::sync::{FrameSync, frame_sync};

/// Bytes a direction that joined late may buffer while looking for a frame boundary.
const SYNC_LIMIT: usize = 64 * 1024;

impl Http2Connection {
    /// A connection the capture joined after it began (no SYN, no preface): each direction
    /// is read from its first frame boundary, header blocks are decoded as far as the
    /// frames seen allow, and streams opened before the capture are skipped.
    pub fn joined_late(
        cfg: HttpConfig,
        ends: [SocketAddr; 2],
        first: Pos,
        client: usize,
        tls: Option<TlsInfo>,
    ) -> Self {
        let mut conn = Self::new(cfg, ends, first, client, [true, true], tls);
        conn.joined_late = true;
        conn.stats.http2_joined_late = 1;
        for d in &mut conn.dirs {
            d.expect_preface = false;
            d.syncing = true;
            d.decoder = HeaderDecoder::joined_late();
            d.decoder.set_list_limit(conn.cfg.max_head);
            d.max_frame = 16_777_215;
        }
        conn
    }

    /// Joined late: finds each direction's first frame boundary in what it buffered. Frames
    /// are read only once no direction with bytes is still looking, the client's first, so
    /// that a response is never read before the request that opened its stream.
    /// `last`: the connection ends, search whatever arrived since the last search.
    pub(super) fn sync(&mut self, pos: Pos, out: &mut Vec<Exchange>, last: bool) {
        for d in 0..2 {
            let dir = &mut self.dirs[d];
            if !dir.syncing || dir.buf.is_empty() {
                continue;
            }
            // Searching costs up to a frame's length; after a few tries, search again only
            // once another KiB arrived (a peer sending byte by byte stays linear).
            let len = dir.buf.len();
            let throttled = dir.sync_tries >= 32 && len < dir.sync_len + 1024;
            if len < SYNC_LIMIT && (throttled && !last || len == dir.sync_len) {
                continue;
            }
            dir.sync_tries += 1;
            dir.sync_len = len;
            match frame_sync(&dir.buf) {
                FrameSync::At(at) => {
                    dir.buf.drain(..at);
                    dir.syncing = false;
                }
                FrameSync::NeedMore if len < SYNC_LIMIT => {}
                FrameSync::NeedMore | FrameSync::No => {
                    let who = self.side(d);
                    self.stop(
                        AnomalyKind::H2ProtocolError,
                        format!("no HTTP/2 frame boundary found in the {who}'s first bytes"),
                        pos,
                        out,
                    );
                    return;
                }
            }
        }
        if !last && self.dirs.iter().any(|d| d.syncing && !d.buf.is_empty()) {
            return;
        }
        for d in [self.client, 1 - self.client] {
            if self.stopped || self.dirs[d].syncing {
                continue;
            }
            let mut buf = std::mem::take(&mut self.dirs[d].buf);
            let used = self.process(d, &buf, pos, out);
            buf.drain(..used);
            if !self.stopped {
                self.dirs[d].buf = buf;
            }
        }
    }

    /// Joined late, and `stream` was opened before the capture began (a client stream below
    /// the first one opened within it, or any stream while none was).
    pub(super) fn before_capture(&self, stream: u32) -> bool {
        self.joined_late && stream != 0 && self.first_opened.is_none_or(|first| stream < first)
    }
}
