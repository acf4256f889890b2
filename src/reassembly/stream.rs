//! One direction of a TCP connection: sequence numbers in, ordered bytes and gaps out.
//!
//! Out-of-order segments wait in a bounded buffer; retransmissions and overlaps are trimmed
//! (the first data received for an offset wins, and a differing copy is reported as a
//! conflicting overlap); a hole that can no longer be filled becomes an explicit gap so the
//! consumer can mark what it was parsing as incomplete and resynchronise.

use std::collections::BTreeMap;

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

/// Bytes of recently delivered data kept to compare retransmissions against.
const RECENT: usize = 16 * 1024;

/// Counters for one direction, summed per run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamStats {
    pub segments: u64,
    pub bytes_delivered: u64,
    pub retransmitted_segments: u64,
    pub overlapping_segments: u64,
    pub conflicting_overlaps: u64,
    pub out_of_order_segments: u64,
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
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.cut_bytes += o.cut_bytes;
    }
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct HalfStream {
    /// Sequence number of stream offset 0, once known (SYN, or first segment seen).
    base: Option<u32>,
    /// Next offset to deliver.
    next: u64,
    /// Segments ahead of `next`, by offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Offset of the FIN, once seen.
    fin_at: Option<u64>,
    /// True once the SYN of this direction was seen.
    pub saw_syn: bool,
    /// True once any payload was seen.
    pub saw_data: bool,
    /// The last delivered bytes (a ring of `RECENT` bytes ending at offset `next`).
    recent: Vec<u8>,
    pub stats: StreamStats,
}

impl HalfStream {
    /// Bytes held waiting for a hole to fill.
    pub fn buffered(&self) -> usize {
        self.pending_bytes
    }

    pub fn fin_seen(&self) -> bool {
        self.fin_at.is_some()
    }

    /// True when everything up to the FIN has been delivered.
    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|f| self.next >= f)
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

    /// Records a SYN: the stream starts right after its sequence number.
    pub fn syn(&mut self, seq: u32) {
        self.saw_syn = true;
        if self.base.is_none() || (self.next == 0 && self.pending.is_empty()) {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    /// Takes one segment. In-order data (and any buffered data it unblocks) is passed to
    /// `out`. `max_pending` bounds the out-of-order buffer: past it the oldest hole becomes
    /// a gap.
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        max_pending: usize,
        out: &mut dyn FnMut(Piece<'_>),
    ) {
        if payload.is_empty() && !fin && missing == 0 {
            // A pure ACK: it only tells where the stream is when nothing else did.
            self.base.get_or_insert(seq);
            return;
        }
        let base = *self.base.get_or_insert(seq);
        let Some(off) = self.offset_of(base, seq) else {
            self.stats.retransmitted_segments += 1;
            return;
        };
        if fin {
            let end = off + payload.len() as u64 + u64::from(missing);
            if self.fin_at.is_none() {
                self.fin_at = Some(end);
            }
        }
        if payload.is_empty() {
            return;
        }
        self.saw_data = true;
        self.stats.segments += 1;
        let end = off + payload.len() as u64;
        if off < self.next && self.conflicts_with_recent(off, payload) {
            self.stats.conflicting_overlaps += 1;
            out(Piece::Conflict);
        }
        if end <= self.next {
            self.stats.retransmitted_segments += 1;
            return;
        }
        if off <= self.next {
            if off < self.next {
                self.stats.overlapping_segments += 1;
            }
            let skip = (self.next - off) as usize;
            self.deliver(&payload[skip..], out);
            if missing > 0 {
                self.next += u64::from(missing);
                self.stats.cut_bytes += u64::from(missing);
                out(Piece::Cut(u64::from(missing)));
            }
            self.drain(out);
        } else {
            self.stats.out_of_order_segments += 1;
            self.insert_pending(off, payload);
            if self.pending_bytes > max_pending {
                self.skip_to_first_pending(out);
            }
        }
    }

    /// The peer acknowledged everything before `ack`: data we hold beyond a hole that the
    /// peer has already received will never be filled in by the capture.
    pub fn acked(&mut self, ack: u32, out: &mut dyn FnMut(Piece<'_>)) {
        let (Some(base), Some((&first, _))) = (self.base, self.pending.first_key_value()) else {
            return;
        };
        if let Some(acked) = self.offset_of(base, ack)
            && acked > self.next
            && acked >= first
        {
            self.skip_to_first_pending(out);
        }
    }

    /// Delivers everything still buffered, with gaps for the holes (connection end).
    pub fn flush(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        while !self.pending.is_empty() {
            self.skip_to_first_pending(out);
        }
        if let Some(fin) = self.fin_at
            && fin > self.next
            && self.saw_data
        {
            let len = fin - self.next;
            self.gap(len, out);
        }
    }

    /// Whether `payload` at `off` differs from delivered bytes still in the recent ring.
    fn conflicts_with_recent(&self, off: u64, payload: &[u8]) -> bool {
        let kept = (self.recent.len() as u64).min(self.next);
        let window_start = self.next - kept;
        let from = off.max(window_start);
        let to = (off + payload.len() as u64).min(self.next);
        if from >= to {
            return false;
        }
        let ring = |abs: u64| self.recent[(abs % RECENT as u64) as usize];
        (from..to).any(|abs| payload[(abs - off) as usize] != ring(abs))
    }

    fn remember(&mut self, data: &[u8]) {
        if self.recent.len() < RECENT {
            self.recent.resize(RECENT, 0);
        }
        let take = data.len().min(RECENT);
        let start_abs = self.next + (data.len() - take) as u64;
        let tail = &data[data.len() - take..];
        let pos = (start_abs % RECENT as u64) as usize;
        let first = tail.len().min(RECENT - pos);
        self.recent[pos..pos + first].copy_from_slice(&tail[..first]);
        self.recent[..tail.len() - first].copy_from_slice(&tail[first..]);
    }

    fn deliver(&mut self, data: &[u8], out: &mut dyn FnMut(Piece<'_>)) {
        self.remember(data);
        self.next += data.len() as u64;
        self.stats.bytes_delivered += data.len() as u64;
        out(Piece::Data(data));
    }

    fn gap(&mut self, len: u64, out: &mut dyn FnMut(Piece<'_>)) {
        self.next += len;
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        out(Piece::Gap(len));
    }

    fn skip_to_first_pending(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        if let Some((&first, _)) = self.pending.first_key_value() {
            if first > self.next {
                self.gap(first - self.next, out);
            }
            self.drain(out);
        }
    }

    /// Delivers buffered segments that have become contiguous.
    fn drain(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let off = *entry.key();
            if off > self.next {
                break;
            }
            let data = entry.remove();
            self.pending_bytes -= data.len();
            let end = off + data.len() as u64;
            if end <= self.next {
                continue;
            }
            let skip = (self.next - off) as usize;
            self.deliver(&data[skip..], out);
        }
    }

    fn insert_pending(&mut self, off: u64, payload: &[u8]) {
        // First data wins: compare with what is already held for the same range.
        if let Some((&prev_off, prev)) = self.pending.range(..=off).next_back() {
            let prev_end = prev_off + prev.len() as u64;
            if prev_end > off {
                let start = (off - prev_off) as usize;
                let n = (prev.len() - start).min(payload.len());
                if prev[start..start + n] != payload[..n] {
                    self.stats.conflicting_overlaps += 1;
                }
                if off + payload.len() as u64 <= prev_end {
                    self.stats.retransmitted_segments += 1;
                    return;
                }
                self.stats.overlapping_segments += 1;
            }
        }
        if let Some(existing) = self.pending.get(&off) {
            if existing.len() >= payload.len() {
                return;
            }
            self.pending_bytes -= existing.len();
        }
        self.pending_bytes += payload.len();
        self.pending.insert(off, payload.to_vec());
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

    fn collect(stream: &mut HalfStream, seq: u32, data: &[u8], out: &mut Vec<String>) {
        stream.segment(seq, data, 0, false, 1 << 20, &mut |p| out.push(show(p)));
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

    #[test]
    fn ack_past_a_hole_makes_a_gap() {
        let mut s = HalfStream::default();
        s.syn(0);
        let mut out = Vec::new();
        collect(&mut s, 1, b"ab", &mut out);
        collect(&mut s, 6, b"fg", &mut out);
        s.acked(8, &mut |p| out.push(show(p)));
        assert_eq!(out.concat(), "ab<gap 3>fg");
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
    fn flush_reports_holes() {
        let mut s = HalfStream::default();
        s.syn(0);
        let mut out = Vec::new();
        collect(&mut s, 1, b"ab", &mut out);
        collect(&mut s, 10, b"z", &mut out);
        s.flush(&mut |p| out.push(show(p)));
        assert_eq!(out.concat(), "ab<gap 7>z");
    }
}
