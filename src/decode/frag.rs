//! IPv4/IPv6 fragment reassembly, bounded, with the hostile cases counted.
//!
//! Bounds: at most [`FRAG_MAX_DATAGRAMS`] trains (datagrams being rebuilt) and
//! [`FRAG_MAX_BYTES`] of buffers at once, each train at most 65,535 bytes and
//! [`FRAG_MAX_PIECES`] separate pieces, and [`FRAG_TIMEOUT_NS`] of capture time from its
//! first fragment. Trains are kept in a queue in the order they started: timing out and
//! evicting take from its front, so the work per fragment does not grow with the number of
//! trains (entries that completed leave a stale queue slot, skipped when met and compacted
//! when they outnumber the live ones).
//!
//! Counted in [`DecodeStats`]: conflicting overlaps (the same bytes sent twice with
//! different content: first data wins, as in the TCP stage), teardrop-style fragments
//! (a datagram end before bytes already received, or data past the end), tiny non-final
//! fragments, fragments that would end past 65,535, and trains dropped unfinished by
//! timeout, eviction or the end of input.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::DecodeStats;
use crate::time::Timestamp;

/// Trains being rebuilt at once.
pub(super) const FRAG_MAX_DATAGRAMS: usize = 1024;
/// Buffer bytes of all trains together.
pub(super) const FRAG_MAX_BYTES: usize = 32 * 1024 * 1024;
/// Incomplete datagrams are given up after this long in capture time (Linux: ipfrag_time).
pub(super) const FRAG_TIMEOUT_NS: i64 = 30_000_000_000;
/// Separate received ranges of one train; more means a flood of tiny, scattered pieces.
pub(super) const FRAG_MAX_PIECES: usize = 512;
/// A datagram cannot be longer than this (IPv4 total length / IPv6 payload length).
const FRAG_MAX_LEN: u64 = 65_535;
/// A fragment that is not the last one and carries fewer bytes than this is "tiny": the
/// smallest IPv4 MTU (68, RFC 791) leaves 48 bytes after a 20-byte header, and a fragment
/// this small can split a TCP header over two fragments (RFC 1858 §3.1).
const FRAG_TINY: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol (IPv4 protocol field; IPv6 fragment header's next header).
    pub proto: u8,
    pub id: u32,
}

/// One fragment as found in a packet.
pub(super) struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of the data in the datagram.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    pub data: &'a [u8],
}

#[derive(Debug)]
struct FragEntry {
    /// Position in the start-order queue: a queue slot whose serial differs is stale.
    serial: u64,
    first_ts: Timestamp,
    data: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    have: Vec<(u32, u32)>,
    /// The datagram's length, once the last fragment (no MF) has arrived.
    total: Option<u32>,
    fragments: u64,
}

impl FragEntry {
    /// Adds a fragment: first data received wins where fragments overlap. Returns the
    /// number of bytes the buffer grew by, and whether an overlap carried different bytes.
    fn add(&mut self, offset: u32, bytes: &[u8]) -> (usize, bool) {
        let end = offset + bytes.len() as u32;
        let before = self.data.len();
        if (end as usize) > self.data.len() {
            self.data.resize(end as usize, 0);
        }
        // Copy the parts of [offset, end) not yet covered; compare the parts that are.
        let mut conflict = false;
        let mut cursor = offset;
        let first = self.have.partition_point(|&(_, e)| e <= offset);
        for &(s, e) in &self.have[first..] {
            if s >= end {
                break;
            }
            if s > cursor {
                let from = (cursor - offset) as usize;
                let to = (s - offset) as usize;
                self.data[cursor as usize..s as usize].copy_from_slice(&bytes[from..to]);
            }
            let (a, b) = (cursor.max(s), e.min(end));
            if a < b {
                let theirs = &bytes[(a - offset) as usize..(b - offset) as usize];
                conflict |= self.data[a as usize..b as usize] != *theirs;
            }
            cursor = cursor.max(e);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            let from = (cursor - offset) as usize;
            self.data[cursor as usize..end as usize].copy_from_slice(&bytes[from..]);
        }
        // Merge the range in: it joins the ranges it touches, found by binary search.
        let lo = self.have.partition_point(|&(_, e)| e < offset);
        let hi = self.have.partition_point(|&(s, _)| s <= end);
        let (mut s, mut e) = (offset, end);
        if lo < hi {
            s = s.min(self.have[lo].0);
            e = e.max(self.have[hi - 1].1);
        }
        self.have.splice(lo..hi, [(s, e)]);
        self.fragments += 1;
        (self.data.len() - before, conflict)
    }

    fn complete(&self) -> bool {
        matches!(self.total, Some(t) if self.have.first() == Some(&(0, t)))
    }

    /// The end of the data received so far.
    fn received_end(&self) -> u32 {
        self.have.last().map_or(0, |r| r.1)
    }
}

/// IPv4/IPv6 fragments waiting for the rest of their datagram. Bounded in datagrams, bytes
/// and capture time; what does not fit is dropped and counted.
#[derive(Debug)]
pub(super) struct FragTable {
    /// Buffer bytes allowed (its share of the memory budget, at most [`FRAG_MAX_BYTES`]).
    max_bytes: usize,
    entries: HashMap<FragKey, FragEntry>,
    /// Trains in the order they started, with the serial they had.
    order: VecDeque<(u64, FragKey)>,
    next_serial: u64,
    bytes: usize,
}

/// Why a train is dropped unfinished.
#[derive(Clone, Copy)]
enum Loss {
    TimedOut,
    Evicted,
    Unfinished,
}

impl Default for FragTable {
    fn default() -> Self {
        FragTable {
            max_bytes: FRAG_MAX_BYTES,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_serial: 0,
            bytes: 0,
        }
    }
}

impl FragTable {
    /// Bounds the buffers to `bytes` (at least one largest datagram, at most
    /// [`FRAG_MAX_BYTES`]).
    pub(super) fn set_max_bytes(&mut self, bytes: usize) {
        self.max_bytes = bytes.clamp(FRAG_MAX_LEN as usize, FRAG_MAX_BYTES);
    }

    /// Adds a fragment. Returns the whole datagram payload once it is complete.
    pub(super) fn add(
        &mut self,
        ts: Timestamp,
        frag: Fragment<'_>,
        stats: &mut DecodeStats,
    ) -> Option<Vec<u8>> {
        self.expire(ts.as_nanos(), stats);
        let end = u64::from(frag.offset) + frag.data.len() as u64;
        if end > FRAG_MAX_LEN {
            stats.fragments_dropped += 1;
            stats.fragments_past_max_length += 1;
            return None;
        }
        if frag.more && !frag.data.len().is_multiple_of(8) {
            stats.fragments_dropped += 1;
            stats.error("bad ip fragment");
            return None;
        }
        if frag.more && frag.data.len() < FRAG_TINY {
            // Counted, and still reassembled: a recipient would rebuild it too.
            stats.fragments_tiny += 1;
        }
        let end = end as u32;
        if !self.entries.contains_key(&frag.key) {
            while self.entries.len() >= FRAG_MAX_DATAGRAMS
                || self.bytes + end as usize > self.max_bytes
            {
                if !self.drop_oldest(Loss::Evicted, stats) {
                    break;
                }
            }
            self.next_serial += 1;
            self.order.push_back((self.next_serial, frag.key));
            self.entries.insert(
                frag.key,
                FragEntry {
                    serial: self.next_serial,
                    first_ts: ts,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    fragments: 0,
                },
            );
            self.compact();
        }
        let entry = self.entries.get_mut(&frag.key)?;
        // Teardrop-style: the datagram would end before bytes already received, two last
        // fragments disagree on where it ends, or data runs past the known end.
        let teardrop = match entry.total {
            Some(t) => end > t || (!frag.more && t != end),
            None => !frag.more && end < entry.received_end(),
        };
        if teardrop {
            stats.fragments_dropped += 1;
            stats.fragments_teardrop += 1;
            return None;
        }
        if !frag.more {
            entry.total = Some(end);
        }
        let (grew, conflict) = entry.add(frag.offset, frag.data);
        self.bytes += grew;
        if conflict {
            stats.fragments_conflicting_overlap += 1;
        }
        if entry.complete() {
            let entry = self.entries.remove(&frag.key)?;
            self.bytes -= entry.data.len();
            stats.fragments_reassembled += 1;
            let mut data = entry.data;
            data.truncate(entry.total.unwrap_or(0) as usize);
            return Some(data);
        }
        if entry.have.len() > FRAG_MAX_PIECES {
            self.remove(&frag.key, Loss::Evicted, stats);
            return None;
        }
        while self.bytes > self.max_bytes {
            if !self.drop_oldest(Loss::Evicted, stats) {
                break;
            }
        }
        None
    }

    /// Drops the trains whose first fragment is older than the timeout: they are at the
    /// front of the queue (capture time goes forward; a train met out of order waits for
    /// the ones before it).
    fn expire(&mut self, now: i64, stats: &mut DecodeStats) {
        let limit = now.saturating_sub(FRAG_TIMEOUT_NS);
        while let Some(&(serial, key)) = self.order.front() {
            match self.entries.get(&key) {
                Some(e) if e.serial == serial => {
                    if e.first_ts.as_nanos() >= limit {
                        break;
                    }
                    self.remove(&key, Loss::TimedOut, stats);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Drops the train that started first. False when there is none.
    fn drop_oldest(&mut self, why: Loss, stats: &mut DecodeStats) -> bool {
        while let Some((serial, key)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|e| e.serial == serial) {
                self.remove(&key, why, stats);
                return true;
            }
        }
        false
    }

    fn remove(&mut self, key: &FragKey, why: Loss, stats: &mut DecodeStats) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.data.len();
            stats.fragments_dropped += e.fragments;
            match why {
                Loss::TimedOut => stats.fragment_trains_timed_out += 1,
                Loss::Evicted => stats.fragment_trains_evicted += 1,
                Loss::Unfinished => stats.fragment_trains_unfinished += 1,
            }
        }
    }

    /// Keeps the queue within twice the live trains: completed trains leave stale slots.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(serial, key)| entries.get(key).is_some_and(|e| e.serial == *serial));
        }
    }

    /// The end of input: every train still waiting is dropped and counted.
    pub(super) fn clear(&mut self, stats: &mut DecodeStats) {
        while self.drop_oldest(Loss::Unfinished, stats) {}
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }

    #[cfg(test)]
    pub(super) fn trains(&self) -> (usize, usize, usize) {
        (self.entries.len(), self.order.len(), self.bytes)
    }
}
