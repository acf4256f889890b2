//! One direction of a TCP connection: sequence numbers in, ordered bytes and gaps out.
//!
//! Segments that cannot be delivered yet wait in a bounded buffer: those beyond a hole, and
//! those that acknowledge bytes of the peer's stream not delivered yet (the capture wrote a
//! response before the request it answers: two capture queues, SPAN ports, `-i any`,
//! merged files). A hole is not given up when the peer acknowledges the bytes in it — in
//! those captures the missing segment often arrives right after the ACK that covers it —
//! but only when it can no longer be filled: after a bounded wait (capture time or segments
//! of the connection, see [`WAIT_SECS`] and [`WAIT_SEGMENTS`]), when the flow's buffer
//! budget is spent, or at the connection's end. Then it becomes an explicit gap, so the
//! consumer can mark what it was parsing as incomplete and resynchronise.
//!
//! Retransmissions and overlaps are trimmed (the first data received for an offset wins);
//! a copy that differs from bytes actually delivered is reported as a conflicting overlap.

use std::collections::BTreeMap;

use crate::capture::Pos;
use crate::time::Timestamp;

/// What a direction delivers to its consumer, strictly in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Data(&'a [u8]),
    /// This many bytes were sent but never captured (lost by the capture).
    Gap(u64),
    /// This many bytes were on the wire but cut from the frame by the snaplen.
    Cut(u64),
    /// A retransmission carried different bytes than those already delivered (an evasion
    /// technique or a broken stack): the first data was kept.
    Conflict,
}

/// One delivery: a piece, the packet it came from (for data: the packet after which these
/// bytes were in order, so the frame that completes a message is exact), and the peer
/// stream offset the carrying segment acknowledged, when known.
#[derive(Debug)]
pub struct Delivered<'a> {
    pub piece: Piece<'a>,
    pub pos: Pos,
    pub ack: Option<u64>,
}

/// Bytes of recently delivered data kept to compare retransmissions against.
const RECENT: usize = 16 * 1024;
/// A stalled direction (hole, or data waiting for the peer) waits this long in capture
/// time for the missing segment before the hole becomes a gap.
pub const WAIT_SECS: f64 = 1.0;
/// … or this many further segments of the connection, whichever comes first.
pub const WAIT_SEGMENTS: u64 = 256;

/// Counters for one direction, summed per run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamStats {
    pub segments: u64,
    pub bytes_delivered: u64,
    pub retransmitted_segments: u64,
    pub overlapping_segments: u64,
    pub conflicting_overlaps: u64,
    pub out_of_order_segments: u64,
    /// Segments that filled a hole after the peer had already acknowledged it (captures
    /// whose two directions travel different paths): delivered, not lost.
    pub late_segments: u64,
    /// Segments held until the peer's stream caught up with what they acknowledged.
    pub held_for_peer: u64,
    /// Segments that arrived for a range already given up as a gap.
    pub after_gap_segments: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes cut from frames by the snaplen.
    pub cut_bytes: u64,
}

impl StreamStats {
    pub fn merge(&mut self, o: &StreamStats) {
        self.segments += o.segments;
        self.bytes_delivered += o.bytes_delivered;
        self.retransmitted_segments += o.retransmitted_segments;
        self.overlapping_segments += o.overlapping_segments;
        self.conflicting_overlaps += o.conflicting_overlaps;
        self.out_of_order_segments += o.out_of_order_segments;
        self.late_segments += o.late_segments;
        self.held_for_peer += o.held_for_peer;
        self.after_gap_segments += o.after_gap_segments;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.cut_bytes += o.cut_bytes;
    }
}

/// Where a connection is in time: capture time and its own segment count. Waits are
/// measured in both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    pub ts: Timestamp,
    pub segments: u64,
}

impl Clock {
    fn waited_since(self, since: Clock) -> bool {
        self.ts.secs_since(since.ts) >= WAIT_SECS
            || self.segments.saturating_sub(since.segments) >= WAIT_SEGMENTS
    }
}

/// A segment waiting to be delivered.
#[derive(Debug)]
struct Held {
    data: Vec<u8>,
    /// Bytes after `data` cut from the frame by the snaplen.
    missing: u32,
    /// Peer stream offset the segment acknowledged.
    ack: Option<u64>,
    pos: Pos,
}

/// Memory a segment waiting out of order costs beyond its bytes: its slot in the B-tree
/// (whose nodes are two-thirds full on average, so half again) and the allocator's header
/// of its copy. Counted, so that a capture of many small out-of-order segments (reassembled
/// IP fragments, a lossy link) cannot hold twice the budget in bookkeeping.
const PENDING_OVERHEAD: usize = std::mem::size_of::<(u64, Held)>() * 3 / 2 + 16;

impl Held {
    fn end(&self, off: u64) -> u64 {
        off + self.data.len() as u64 + u64::from(self.missing)
    }
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct HalfStream {
    /// Sequence number of stream offset 0, once known (SYN, or first segment seen).
    base: Option<u32>,
    /// Next offset to deliver.
    next: u64,
    /// Segments that cannot be delivered yet, by offset.
    pending: BTreeMap<u64, Held>,
    pending_bytes: usize,
    /// Offset of the FIN, once seen.
    fin_at: Option<u64>,
    /// Highest offset of this stream the peer acknowledged: bytes before it were sent.
    acked_to: u64,
    /// Segments starting before this offset are delivered without waiting for the peer
    /// (a wait for the peer expired).
    unblock_before: u64,
    /// Since when this direction has been stalled.
    stalled_since: Option<Clock>,
    /// True once the SYN of this direction was seen.
    pub saw_syn: bool,
    /// True once any payload was seen.
    pub saw_data: bool,
    /// The last delivered bytes: a ring of up to `RECENT` bytes indexed by offset modulo
    /// `RECENT`, grown only as far as the stream has gone.
    recent: Vec<u8>,
    /// Offsets below this were not delivered as data (a gap or a cut): the ring's bytes
    /// there are not what was sent and must not be compared against.
    recent_valid_from: u64,
    /// The last range given up as a gap, to recognise segments that arrive after it.
    last_gap: (u64, u64),
    pub stats: StreamStats,
}

impl HalfStream {
    /// Bytes held waiting (for a hole to fill or for the peer), and the recent ring.
    pub fn buffered(&self) -> usize {
        self.pending_bytes + self.pending.len() * PENDING_OVERHEAD + self.recent.capacity()
    }

    /// Bytes of segments waiting to be delivered.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    pub fn fin_seen(&self) -> bool {
        self.fin_at.is_some()
    }

    /// True when everything up to the FIN has been delivered.
    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|f| self.next >= f)
    }

    /// How far a segment of the peer may acknowledge before it waits for this stream: the
    /// next offset to deliver, plus one for a FIN that sits there (it occupies one
    /// sequence number).
    pub fn reach(&self) -> u64 {
        self.next + u64::from(self.fin_at == Some(self.next))
    }

    /// Stream offset for a sequence number: the 64-bit value congruent to `seq - base`
    /// that lies closest to `next`, so that sequence wrap is transparent.
    fn offset_of(&self, base: u32, seq: u32) -> Option<u64> {
        let rel = u64::from(seq.wrapping_sub(base));
        let epoch = self.next & !0xFFFF_FFFF;
        let mut best = epoch | rel;
        if best > self.next + (1 << 31) && best >= (1 << 32) {
            best -= 1 << 32;
        } else if best + (1 << 31) < self.next {
            best += 1 << 32;
        }
        // Offsets far behind the start of the stream are older than what we track.
        if best > self.next + (1 << 31) {
            None
        } else {
            Some(best)
        }
    }

    /// The stream offset an acknowledgement number of the peer stands for, when this
    /// stream's start is known.
    pub fn offset_of_ack(&self, ack: u32) -> Option<u64> {
        self.offset_of(self.base?, ack)
    }

    /// Records a SYN: the stream starts right after its sequence number.
    pub fn syn(&mut self, seq: u32) {
        self.saw_syn = true;
        if self.base.is_none() || (self.next == 0 && self.pending.is_empty() && !self.saw_data) {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    /// The peer acknowledged everything before `ack`: those bytes were sent, so a hole
    /// before them will be filled late or not at all. Nothing is given up here: the wait
    /// starts (see [`HalfStream::expire`]).
    pub fn acked(&mut self, ack: u32) {
        if let Some(off) = self.offset_of_ack(ack)
            && off > self.acked_to
        {
            self.acked_to = off;
        }
    }

    /// Acknowledged bytes that have not been delivered, up to the FIN (which occupies a
    /// sequence number but no byte).
    fn acked_undelivered(&self) -> bool {
        let acked = self.fin_at.map_or(self.acked_to, |f| self.acked_to.min(f));
        acked > self.next
    }

    /// Takes one segment: delivers it at once when it is next in order and acknowledges
    /// nothing the peer has not delivered (`peer_reach`), otherwise holds it. Returns true
    /// when it delivered anything.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        ack: Option<u64>,
        peer_reach: u64,
        pos: Pos,
        out: &mut dyn FnMut(Delivered<'_>),
    ) -> bool {
        if payload.is_empty() && !fin && missing == 0 {
            // A pure ACK: it only tells where the stream is when nothing else did.
            self.base.get_or_insert(seq);
            return false;
        }
        let base = *self.base.get_or_insert(seq);
        let Some(off) = self.offset_of(base, seq) else {
            self.stats.retransmitted_segments += 1;
            return false;
        };
        if fin {
            let end = off + payload.len() as u64 + u64::from(missing);
            if self.fin_at.is_none() {
                self.fin_at = Some(end);
            }
        }
        if payload.is_empty() && missing == 0 {
            return false;
        }
        self.saw_data = true;
        self.stats.segments += 1;
        let len = payload.len() as u64 + u64::from(missing);
        let end = off + len;
        if off < self.next {
            if self.conflicts_with_recent(off, payload) {
                self.stats.conflicting_overlaps += 1;
                out(Delivered {
                    piece: Piece::Conflict,
                    pos,
                    ack,
                });
            } else if off < self.last_gap.1 && end > self.last_gap.0 {
                self.stats.after_gap_segments += 1;
            }
            if end <= self.next {
                self.stats.retransmitted_segments += 1;
                return false;
            }
            self.stats.overlapping_segments += 1;
        }
        let skip = self.next.saturating_sub(off);
        let (off, payload, missing) = if skip == 0 {
            (off, payload, missing)
        } else if skip < payload.len() as u64 {
            (self.next, &payload[skip as usize..], missing)
        } else {
            // Only the cut part reaches past `next`.
            let cut = end - self.next;
            (self.next, &payload[..0], cut as u32)
        };
        let ready = off == self.next
            && self.pending.is_empty()
            && ack.is_none_or(|a| a <= peer_reach || off < self.unblock_before);
        if ready {
            self.deliver(payload, missing, pos, ack, out);
            self.stalled_since = None;
            return true;
        }
        if off == self.next {
            if ack.is_some_and(|a| a > peer_reach) {
                self.stats.held_for_peer += 1;
            }
        } else {
            self.stats.out_of_order_segments += 1;
            if self.acked_to > off {
                // The peer had acknowledged these bytes before they reached the capture.
                self.stats.late_segments += 1;
            }
        }
        self.insert_pending(off, payload, missing, ack, pos);
        false
    }

    /// Delivers held segments that are in order and no longer wait for the peer. `fill` is
    /// the packet that just arrived on this direction, if any: bytes it made deliverable
    /// were complete only with it. Returns true when anything was delivered.
    pub fn drain(
        &mut self,
        peer_reach: u64,
        fill: Option<Pos>,
        out: &mut dyn FnMut(Delivered<'_>),
    ) -> bool {
        let mut floor = fill;
        let mut progressed = false;
        while let Some(entry) = self.pending.first_entry() {
            let off = *entry.key();
            if off > self.next {
                break;
            }
            let held = entry.get();
            let end = held.end(off);
            if end <= self.next {
                let held = entry.remove();
                self.pending_bytes -= held.data.len();
                continue;
            }
            if held
                .ack
                .is_some_and(|a| a > peer_reach && off >= self.unblock_before)
            {
                break;
            }
            let held = entry.remove();
            self.pending_bytes -= held.data.len();
            let pos = match floor {
                Some(f) if f.order > held.pos.order => f,
                _ => held.pos,
            };
            floor = Some(pos);
            let skip = (self.next - off) as usize;
            if skip < held.data.len() {
                self.deliver(&held.data[skip..], held.missing, pos, held.ack, out);
            } else {
                let cut = end - self.next;
                self.deliver(&[], cut as u32, pos, held.ack, out);
            }
            progressed = true;
        }
        progressed
    }

    /// Whether this direction is waiting: for a hole, for acknowledged bytes never seen,
    /// or for the peer.
    pub fn stalled(&self) -> bool {
        !self.pending.is_empty() || self.acked_undelivered()
    }

    /// True when the next segment is here but waits for the peer's stream.
    fn blocked_on_peer(&self) -> bool {
        self.pending
            .first_key_value()
            .is_some_and(|(&off, _)| off <= self.next)
    }

    /// Starts or stops the wait clock after a change.
    pub fn update_stall(&mut self, now: Clock) {
        if self.stalled() {
            self.stalled_since.get_or_insert(now);
        } else {
            self.stalled_since = None;
        }
    }

    /// Capture order of the oldest packet this direction is waiting with, to resolve the
    /// oldest wait first.
    pub fn oldest_held(&self) -> Option<u64> {
        self.pending.values().map(|h| h.pos.order).min()
    }

    /// True when the wait has lasted long enough to give up (or `force`).
    pub fn wait_over(&self, now: Clock, force: bool) -> bool {
        self.stalled() && (force || self.stalled_since.is_some_and(|s| now.waited_since(s)))
    }

    /// Gives up one wait: a head segment waiting for the peer goes ahead; else a hole
    /// becomes a gap; else acknowledged bytes never seen become a gap. `pos` stamps a gap
    /// with where it was given up. Returns true when it changed anything.
    pub fn give_up_wait(&mut self, pos: Pos, out: &mut dyn FnMut(Delivered<'_>)) -> bool {
        self.stalled_since = None;
        if let Some((&first, _)) = self.pending.first_key_value() {
            if first <= self.next {
                // Waiting for the peer, whose bytes are not coming: stop waiting for what
                // is held now.
                let last_end = self
                    .pending
                    .iter()
                    .next_back()
                    .map_or(self.next, |(&o, h)| h.end(o));
                self.unblock_before = self.unblock_before.max(last_end);
                return true;
            }
            self.gap(first - self.next, pos, out);
            return true;
        }
        if self.acked_undelivered() {
            let acked = self.fin_at.map_or(self.acked_to, |f| self.acked_to.min(f));
            self.gap(acked - self.next, pos, out);
            return true;
        }
        false
    }

    /// Connection end: what is held is delivered, with gaps for the holes, ignoring what
    /// it waits for from the peer.
    pub fn flush(&mut self, pos: Pos, out: &mut dyn FnMut(Delivered<'_>)) {
        self.unblock_before = u64::MAX;
        loop {
            self.drain(u64::MAX, None, out);
            match self.pending.first_key_value() {
                Some((&first, _)) => self.gap(first - self.next, pos, out),
                None => break,
            }
        }
        if self.acked_undelivered() {
            let acked = self.fin_at.map_or(self.acked_to, |f| self.acked_to.min(f));
            self.gap(acked - self.next, pos, out);
        }
        if let Some(fin) = self.fin_at
            && fin > self.next
            && self.saw_data
        {
            let len = fin - self.next;
            self.gap(len, pos, out);
        }
        self.stalled_since = None;
    }

    /// Whether `payload` at `off` differs from delivered bytes still in the recent ring.
    fn conflicts_with_recent(&self, off: u64, payload: &[u8]) -> bool {
        let kept = (self.recent.len() as u64).min(self.next);
        let window_start = (self.next - kept).max(self.recent_valid_from);
        let from = off.max(window_start);
        let to = (off + payload.len() as u64).min(self.next);
        if from >= to {
            return false;
        }
        let ring = |abs: u64| self.recent[(abs % RECENT as u64) as usize];
        (from..to).any(|abs| payload[(abs - off) as usize] != ring(abs))
    }

    /// Copies delivered bytes into the ring, growing it only while the stream is younger
    /// than the ring (a connection that carried 300 bytes holds 300).
    fn remember(&mut self, data: &[u8]) {
        let end = self.next + data.len() as u64;
        let want = end.min(RECENT as u64) as usize;
        if self.recent.len() < want {
            self.recent.reserve_exact(want - self.recent.len());
            self.recent.resize(want, 0);
        }
        // While the stream is younger than the ring, offsets are their own indexes.
        let take = data.len().min(RECENT);
        let tail = &data[data.len() - take..];
        let at = ((end - take as u64) % RECENT as u64) as usize;
        let first = tail.len().min(self.recent.len() - at);
        self.recent[at..at + first].copy_from_slice(&tail[..first]);
        let rest = &tail[first..];
        self.recent[..rest.len()].copy_from_slice(rest);
    }

    fn deliver(
        &mut self,
        data: &[u8],
        missing: u32,
        pos: Pos,
        ack: Option<u64>,
        out: &mut dyn FnMut(Delivered<'_>),
    ) {
        if !data.is_empty() {
            self.remember(data);
            self.next += data.len() as u64;
            self.stats.bytes_delivered += data.len() as u64;
            out(Delivered {
                piece: Piece::Data(data),
                pos,
                ack,
            });
        }
        if missing > 0 {
            self.next += u64::from(missing);
            self.recent_valid_from = self.next;
            self.stats.cut_bytes += u64::from(missing);
            out(Delivered {
                piece: Piece::Cut(u64::from(missing)),
                pos,
                ack,
            });
        }
    }

    fn gap(&mut self, len: u64, pos: Pos, out: &mut dyn FnMut(Delivered<'_>)) {
        if len == 0 {
            return;
        }
        self.last_gap = (self.next, self.next + len);
        self.next += len;
        self.recent_valid_from = self.next;
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        out(Delivered {
            piece: Piece::Gap(len),
            pos,
            ack: None,
        });
    }

    fn insert_pending(
        &mut self,
        off: u64,
        payload: &[u8],
        missing: u32,
        ack: Option<u64>,
        pos: Pos,
    ) {
        // First data wins: compare with what is already held for the same range.
        if let Some((&prev_off, prev)) = self.pending.range(..=off).next_back() {
            let prev_end = prev_off + prev.data.len() as u64;
            if prev_end > off {
                let start = (off - prev_off) as usize;
                let n = (prev.data.len() - start).min(payload.len());
                if prev.data[start..start + n] != payload[..n] {
                    self.stats.conflicting_overlaps += 1;
                }
                if off + payload.len() as u64 + u64::from(missing) <= prev.end(prev_off) {
                    self.stats.retransmitted_segments += 1;
                    return;
                }
                self.stats.overlapping_segments += 1;
            }
        }
        if let Some(existing) = self.pending.get(&off) {
            if existing.data.len() + existing.missing as usize >= payload.len() + missing as usize {
                return;
            }
            self.pending_bytes -= existing.data.len();
        }
        self.pending_bytes += payload.len();
        self.pending.insert(
            off,
            Held {
                data: payload.to_vec(),
                missing,
                ack,
                pos,
            },
        );
    }
}

/// Delivers what both directions of a connection can deliver: data of one direction may
/// be waiting for the other's, so they are drained in turn until neither moves. `arrived`
/// is the direction and packet that just arrived, if any. Waits that lasted long enough
/// (or all of them, with `force`) are given up, oldest first.
pub fn pump(
    dirs: &mut [HalfStream; 2],
    arrived: Option<(usize, Pos)>,
    now: Clock,
    force: bool,
    give_up_pos: Pos,
    out: &mut dyn FnMut(usize, Delivered<'_>),
) {
    let mut fill = arrived;
    loop {
        let mut moved = false;
        for d in 0..2 {
            let peer_reach = dirs[1 - d].reach();
            let trigger = fill.filter(|(a, _)| *a == d).map(|(_, p)| p);
            moved |= dirs[d].drain(peer_reach, trigger, &mut |p| out(d, p));
        }
        fill = None;
        if moved {
            continue;
        }
        // Nothing moves by itself: give up the oldest wait that is over, if any.
        let over = (0..2).filter(|&d| dirs[d].wait_over(now, force));
        let Some(mut d) = over.min_by_key(|&d| dirs[d].oldest_held().unwrap_or(u64::MAX)) else {
            break;
        };
        if dirs[d].blocked_on_peer() && dirs[1 - d].stalled() && !dirs[1 - d].blocked_on_peer() {
            // What `d` waits for is the peer's missing bytes: those are given up, so the
            // peer's stream stays before `d`'s data that acknowledged it.
            d = 1 - d;
        }
        if !dirs[d].give_up_wait(give_up_pos, &mut |p| out(d, p)) {
            break;
        }
    }
    for d in dirs.iter_mut() {
        d.update_stall(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(p: Piece<'_>) -> String {
        match p {
            Piece::Data(d) => String::from_utf8_lossy(d).into_owned(),
            Piece::Gap(n) => format!("<gap {n}>"),
            Piece::Cut(n) => format!("<cut {n}>"),
            Piece::Conflict => "<conflict>".to_string(),
        }
    }

    fn at(order: u64) -> Pos {
        Pos {
            order,
            ..Pos::default()
        }
    }

    fn collect(stream: &mut HalfStream, seq: u32, data: &[u8], out: &mut Vec<String>) {
        let mut emit = |d: Delivered<'_>| out.push(show(d.piece));
        stream.segment(seq, data, 0, false, None, 0, at(0), &mut emit);
        stream.drain(0, None, &mut emit);
    }

    #[test]
    fn in_order_out_of_order_and_retransmitted() {
        let mut s = HalfStream::default();
        s.syn(99);
        let mut out = Vec::new();
        collect(&mut s, 100, b"abc", &mut out);
        collect(&mut s, 106, b"ghi", &mut out);
        collect(&mut s, 100, b"abc", &mut out);
        collect(&mut s, 102, b"cdef", &mut out);
        assert_eq!(out.concat(), "abcdefghi");
        assert_eq!(s.stats.retransmitted_segments, 1);
    }

    #[test]
    fn sequence_wraps() {
        let mut s = HalfStream::default();
        s.syn(u32::MAX - 2);
        let mut out = Vec::new();
        collect(&mut s, u32::MAX - 1, b"ab", &mut out);
        collect(&mut s, 0, b"cd", &mut out);
        collect(&mut s, 2, b"ef", &mut out);
        assert_eq!(out.concat(), "abcdef");
    }

    fn pump_all(dirs: &mut [HalfStream; 2], now: Clock, force: bool, out: &mut Vec<String>) {
        pump(dirs, None, now, force, at(0), &mut |d, p| {
            out.push(format!("{d}:{}", show(p.piece)))
        });
    }

    #[test]
    fn an_acknowledged_hole_waits_for_late_data_then_becomes_a_gap() {
        let mut dirs = [HalfStream::default(), HalfStream::default()];
        dirs[0].syn(0);
        let mut out = Vec::new();
        let t0 = Clock::default();
        collect(&mut dirs[0], 1, b"ab", &mut out);
        collect(&mut dirs[0], 6, b"fg", &mut out);
        // The peer acknowledges past the hole: the hole is not given up at once.
        dirs[0].acked(8);
        pump_all(&mut dirs, t0, false, &mut out);
        assert_eq!(out.concat(), "ab");
        // The late segment fills it within the wait.
        collect(&mut dirs[0], 3, b"cde", &mut out);
        assert_eq!(out.concat(), "abcdefg");
        assert_eq!(dirs[0].stats.late_segments, 0, "in order when it came");
        assert_eq!(dirs[0].stats.gaps, 0);
        assert_eq!(dirs[0].stats.conflicting_overlaps, 0);

        // Another hole, never filled: a gap once the wait is over.
        let mut out = Vec::new();
        collect(&mut dirs[0], 12, b"lm", &mut out);
        dirs[0].acked(14);
        pump_all(&mut dirs, t0, false, &mut out);
        dirs[0].update_stall(t0);
        let later = Clock {
            ts: Timestamp((WAIT_SECS * 1e9) as i64 + 1),
            segments: 3,
        };
        pump_all(&mut dirs, later, false, &mut out);
        assert_eq!(out.concat(), "0:<gap 4>0:lm");
    }

    #[test]
    fn a_late_segment_is_not_a_conflict_with_bytes_never_delivered() {
        let mut s = HalfStream::default();
        s.syn(0);
        let mut out = Vec::new();
        collect(&mut s, 1, b"ab", &mut out);
        collect(&mut s, 6, b"fg", &mut out);
        s.flush(at(0), &mut |d| out.push(show(d.piece)));
        // The missing bytes arrive after the gap was given up.
        collect(&mut s, 3, b"cde", &mut out);
        assert_eq!(out.concat(), "ab<gap 3>fg");
        assert_eq!(s.stats.conflicting_overlaps, 0);
        assert_eq!(s.stats.after_gap_segments, 1);
    }

    #[test]
    fn data_waits_for_the_peer_bytes_it_acknowledges() {
        let mut dirs = [HalfStream::default(), HalfStream::default()];
        dirs[0].syn(0);
        dirs[1].syn(1000);
        let mut out: Vec<String> = Vec::new();
        // The response (direction 1) acknowledges 3 request bytes not seen yet.
        let ack = dirs[0].offset_of_ack(4);
        let peer = dirs[0].reach();
        dirs[1].segment(1001, b"RESP", 0, false, ack, peer, at(1), &mut |d| {
            out.push(show(d.piece))
        });
        pump_all(&mut dirs, Clock::default(), false, &mut out);
        assert!(out.is_empty(), "held: {out:?}");
        let peer = dirs[1].reach();
        dirs[0].segment(1, b"REQ", 0, false, None, peer, at(2), &mut |d| {
            out.push(format!("0:{}", show(d.piece)))
        });
        pump_all(&mut dirs, Clock::default(), false, &mut out);
        assert_eq!(out, ["0:REQ", "1:RESP"]);
        assert_eq!(dirs[1].stats.held_for_peer, 1);
    }

    #[test]
    fn a_wait_for_the_peer_ends_with_a_gap_in_the_peer() {
        let mut dirs = [HalfStream::default(), HalfStream::default()];
        dirs[0].syn(0);
        dirs[1].syn(1000);
        let mut out: Vec<String> = Vec::new();
        let ack = dirs[0].offset_of_ack(4);
        dirs[0].acked(4);
        dirs[1].segment(1001, b"RESP", 0, false, ack, 0, at(1), &mut |_| {});
        pump_all(&mut dirs, Clock::default(), false, &mut out);
        pump_all(&mut dirs, Clock::default(), true, &mut out);
        assert_eq!(out, ["0:<gap 3>", "1:RESP"]);
    }

    #[test]
    fn conflicting_overlap_keeps_first_data() {
        let mut s = HalfStream::default();
        s.syn(0);
        let mut out = Vec::new();
        collect(&mut s, 5, b"XYZ", &mut out);
        collect(&mut s, 5, b"xyz", &mut out);
        collect(&mut s, 1, b"abcd", &mut out);
        assert_eq!(out.concat(), "abcdXYZ");
        assert_eq!(s.stats.conflicting_overlaps, 1);
    }

    #[test]
    fn conflicting_retransmission_of_delivered_bytes_is_reported() {
        let mut s = HalfStream::default();
        s.syn(0);
        let mut out = Vec::new();
        collect(&mut s, 1, b"abcdef", &mut out);
        collect(&mut s, 3, b"cd", &mut out);
        collect(&mut s, 3, b"XY", &mut out);
        assert_eq!(out.concat(), "abcdef<conflict>");
        assert_eq!(s.stats.conflicting_overlaps, 1);
    }

    #[test]
    fn the_ring_grows_with_the_stream_and_still_compares_after_wrapping() {
        let mut s = HalfStream::default();
        s.syn(0);
        let mut out = Vec::new();
        collect(&mut s, 1, b"hello", &mut out);
        assert_eq!(s.recent.len(), 5);
        let big = vec![b'x'; RECENT + 100];
        collect(&mut s, 6, &big, &mut out);
        assert_eq!(s.recent.len(), RECENT);
        let tail_seq = 6 + big.len() as u32 - 10;
        collect(&mut s, tail_seq, &[b'x'; 10], &mut out);
        assert_eq!(s.stats.conflicting_overlaps, 0);
        collect(&mut s, tail_seq, &[b'y'; 10], &mut out);
        assert_eq!(s.stats.conflicting_overlaps, 1);
    }

    #[test]
    fn flush_reports_holes() {
        let mut s = HalfStream::default();
        s.syn(0);
        let mut out = Vec::new();
        collect(&mut s, 1, b"ab", &mut out);
        collect(&mut s, 10, b"z", &mut out);
        s.flush(at(0), &mut |d| out.push(show(d.piece)));
        assert_eq!(out.concat(), "ab<gap 7>z");
    }
}
