//! Stage 3: TCP reassembly. Both directions of every connection, in order, with bounded
//! memory.
//!
//! The flow table keys connections by their 4-tuple (a client port reused after FIN/RST, or
//! by a new SYN with another initial sequence number, starts a new connection), follows
//! SYN/FIN/RST, times out idle flows, and keeps within one process-wide [`MemoryBudget`]
//! by evicting the least recently seen flows. What rides on each connection is a
//! [`StreamConsumer`] (the http stage), fed with ordered [`Piece`]s; reassembly knows
//! nothing about HTTP.
//!
//! Floods cost little and constant time per packet: flows sit on LRU lists (open, and
//! finished-but-lingering), so expiry and eviction take from the cold end without scanning;
//! a flow that has carried no payload (a bare SYN, a port scan) holds only its small entry —
//! its byte streams and its consumer are created on its first payload.

mod budget;
mod lru;
mod stream;

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;

pub use budget::{
    DEFAULT_BUDGET, MemoryBudget, Reservation, flow_share, fragment_share, stateful_share,
};
pub use stream::{Clock, Delivered, HalfStream, Piece, StreamStats, WAIT_SECS, WAIT_SEGMENTS};

use stream::pump;

use crate::capture::{FrameRef, Pos};
use crate::decode::Segment;
use crate::time::Timestamp;
use lru::Lru;

/// Why a connection's processing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// FIN or RST seen.
    Closed,
    /// No packet for longer than the idle timeout.
    IdleTimeout,
    /// The capture ended with the connection still open.
    EndOfCapture,
    /// The flow table evicted it to stay within its memory cap.
    Evicted,
}

/// Seconds a finished connection's entry is kept to absorb its trailing packets.
const CLOSED_LINGER_SECS: f64 = 30.0;
/// Live capture: seconds without a packet after which a connection counts as quiet (see
/// [`StreamConsumer::quiet`]). Short, so findings show up while the user watches; long
/// enough for the rest of a burst to arrive.
const QUIET_SECS: f64 = 0.5;
/// Destinations whose unanswered SYNs are counted one by one; the rest are summed.
const SYN_DESTINATIONS: usize = 256;

/// What rides on a reassembled connection.
pub trait StreamConsumer {
    /// Where the consumer writes what it produces.
    type Sink;
    /// Settings shared by every connection.
    type Config: Clone;

    /// A new connection. `ends[d]` sends direction `d`; `client_hint` is the direction that
    /// sent the SYN, when seen; `mid_stream[d]` is true when direction `d` began before the
    /// capture did. Called on the connection's first payload (`first` is still its first
    /// packet): a connection that never carries a byte never has a consumer.
    fn open(
        cfg: Self::Config,
        ends: [SocketAddr; 2],
        first: Pos,
        client_hint: Option<usize>,
        mid_stream: [bool; 2],
    ) -> Self;
    fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, sink: &mut Self::Sink);
    /// The pieces of direction `dir` that follow were sent after their sender had received
    /// the peer's stream up to `peer_offset` (the segment's acknowledgement number, as an
    /// offset in the peer's stream). Lets the consumer bound what a message can answer.
    fn ack(&mut self, _dir: usize, _peer_offset: u64) {}
    /// `fin[d]`: direction `d` ended with FIN or RST.
    fn close(&mut self, fin: [bool; 2], reason: CloseReason, pos: Pos, sink: &mut Self::Sink);
    /// True when the consumer wants no more bytes (not its protocol, or a tunnel).
    fn is_done(&self) -> bool;
    /// Bytes the consumer holds on the heap, for the memory budget.
    fn buffered(&self) -> usize;
    /// Live capture: the connection has been quiet for a while. A consumer that holds
    /// finished output back (waiting for bytes that might amend it) releases it now.
    fn quiet(&mut self, _pos: Pos, _sink: &mut Self::Sink) {}
}

/// A connection's key: its two endpoints in a canonical order, so both directions match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a: SocketAddr,
    pub b: SocketAddr,
}

impl FlowKey {
    /// The key and the direction of a segment sent from `src` to `dst` (0 when `src` is `a`).
    pub fn of(src: SocketAddr, dst: SocketAddr) -> (FlowKey, usize) {
        if (src.ip(), src.port()) <= (dst.ip(), dst.port()) {
            (FlowKey { a: src, b: dst }, 0)
        } else {
            (FlowKey { a: dst, b: src }, 1)
        }
    }

    /// A hash that is the same for both directions (the key is canonical), used to shard
    /// connections across worker threads.
    pub fn shard_hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// Limits of the flow table.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyConfig {
    /// A flow with no packet for this long (capture time) is closed.
    pub idle_timeout_secs: i64,
    /// Out-of-order bytes held per direction before the oldest hole becomes a gap.
    pub max_pending_per_stream: usize,
    /// Bytes all flow tables of the process hold together (entries, stream buffers,
    /// consumer state) before the least recently seen flows are evicted. The pipeline
    /// shares one [`MemoryBudget`] of this size among its workers.
    pub memory_budget: usize,
    /// Open flows per table before the least recently seen one is evicted (a backstop; the
    /// memory budget is what bounds memory).
    pub max_flows: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            idle_timeout_secs: 300,
            max_pending_per_stream: 4 * 1024 * 1024,
            memory_budget: DEFAULT_BUDGET,
            max_flows: 2_000_000,
        }
    }
}

/// Counters of the reassembly stage, summed per run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReassemblyStats {
    pub segments: u64,
    pub connections: u64,
    pub port_reuses: u64,
    /// Flows closed for want of packets: open ones after the idle timeout, connection
    /// attempts (a SYN, nothing after) after a minute.
    pub idle_timeouts: u64,
    /// Open flows evicted: by the flow count cap, or by the memory budget.
    pub evictions: u64,
    /// Of `evictions`, those made to stay within the memory budget.
    pub budget_evictions: u64,
    pub ignored_segments: u64,
    /// Connections opened by a SYN whose sender never completed the handshake (no ACK,
    /// no data): SYN floods and scans.
    pub syn_without_handshake: u64,
    /// Connections that completed the handshake but carried bytes one way only (a request
    /// never answered, sent slowly or never finished): half-open floods.
    pub one_sided: u64,
    /// Connections that carried payload (and so got a consumer).
    pub with_payload: u64,
    pub streams: StreamStats,
}

impl ReassemblyStats {
    pub fn merge(&mut self, o: &ReassemblyStats) {
        self.segments += o.segments;
        self.connections += o.connections;
        self.port_reuses += o.port_reuses;
        self.idle_timeouts += o.idle_timeouts;
        self.evictions += o.evictions;
        self.budget_evictions += o.budget_evictions;
        self.ignored_segments += o.ignored_segments;
        self.syn_without_handshake += o.syn_without_handshake;
        self.one_sided += o.one_sided;
        self.with_payload += o.with_payload;
        self.streams.merge(&o.streams);
    }
}

/// Unanswered SYNs per destination (server address), the most targeted first when read.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SynTargets {
    /// Counted one by one, up to [`SYN_DESTINATIONS`] destinations.
    pub by_destination: BTreeMap<SocketAddr, u64>,
    /// SYNs to destinations beyond those.
    pub other: u64,
}

impl SynTargets {
    fn add(&mut self, dst: SocketAddr, n: u64) {
        if let Some(c) = self.by_destination.get_mut(&dst) {
            *c += n;
        } else if self.by_destination.len() < SYN_DESTINATIONS {
            self.by_destination.insert(dst, n);
        } else {
            self.other += n;
        }
    }

    pub fn merge(&mut self, o: &SynTargets) {
        for (d, n) in &o.by_destination {
            self.add(*d, *n);
        }
        self.other += o.other;
    }

    /// The destination with the most unanswered SYNs.
    pub fn top(&self) -> Option<(SocketAddr, u64)> {
        self.by_destination
            .iter()
            .max_by_key(|(d, n)| (**n, std::cmp::Reverse(**d)))
            .map(|(d, n)| (*d, *n))
    }
}

/// A flow's byte streams and consumer, created on its first payload.
struct Streams<C> {
    dirs: [HalfStream; 2],
    consumer: C,
    /// Capture time and segment count, for the waits of stalled directions.
    clock: Clock,
}

/// Lists of the table's LRU: flows still open, finished flows that linger, and connection
/// attempts (opened by a SYN, no handshake, no payload: what a SYN flood or a port scan
/// leaves). Attempts hold nothing worth keeping, so they expire sooner than open flows and
/// are evicted before them: a flood cannot push real connections out of the table.
const OPEN: usize = 0;
const LINGERING: usize = 1;
const ATTEMPT: usize = 2;
const LISTS: usize = 3;

/// Seconds a connection attempt is kept without a packet (capture time). A client
/// retransmits its SYN after 1, 2, 4, 8, 16 and 32 s, so a live attempt is refreshed well
/// within it; like a firewall's SYN timeout, it bounds what a flood holds to rate × 60 s.
const ATTEMPT_IDLE_SECS: f64 = 60.0;
/// Seconds after which an attempt is evicted before open flows: a client retransmits an
/// unanswered SYN after 1 s (RFC 6298's initial timeout), so by then it is no handshake
/// under way.
const ATTEMPT_EVICT_AGE_SECS: f64 = 1.0;

struct Flow<C> {
    key: FlowKey,
    /// The flow's first packet: the consumer's connection is known by it.
    first: Pos,
    last_pos: Pos,
    /// Bytes this flow held after its last segment (for the memory budget).
    held: usize,
    /// `None` until the first payload (and again once closed).
    streams: Option<Box<Streams<C>>>,
    /// Before the streams exist: per direction, where the stream starts (after the SYN, or
    /// at the first bare segment's sequence number), and whether a SYN said so.
    start: [Option<u32>; 2],
    syn: [bool; 2],
    /// The direction that sent the flow's first packet, when that was a SYN.
    client_hint: Option<u8>,
    /// The SYN's sender acknowledged something or sent data (handshake done).
    handshake: bool,
    /// Payload seen per direction.
    data: [bool; 2],
    /// Set once the consumer was closed; the entry lingers to absorb trailing ACKs and
    /// retransmitted FINs until it expires or a new SYN reuses the 4-tuple.
    closed: bool,
    /// FIN or RST seen per direction.
    ended: [bool; 2],
    reset: bool,
    /// Packets arrived since the consumer was last told the flow was quiet.
    active: bool,
    /// Before the streams exist: the last acknowledgement number each direction sent.
    acks: [Option<u32>; 2],
}

/// Hands one delivery of direction `dir` to the consumer.
fn deliver<C: StreamConsumer>(consumer: &mut C, dir: usize, d: Delivered<'_>, sink: &mut C::Sink) {
    if consumer.is_done() {
        return;
    }
    if let Some(a) = d.ack {
        consumer.ack(dir, a);
    }
    consumer.piece(dir, d.piece, d.pos, sink);
}

impl<C: StreamConsumer> Flow<C> {
    /// Opened by a SYN, and since then neither a handshake nor payload either way.
    fn is_attempt(&self) -> bool {
        self.client_hint.is_some() && !self.handshake && self.data == [false; 2]
    }

    fn buffered(&self) -> usize {
        let Some(s) = self.streams.as_deref() else {
            return 0;
        };
        let dirs = s.dirs[0].buffered() + s.dirs[1].buffered();
        let consumer = if s.consumer.is_done() {
            0
        } else {
            s.consumer.buffered()
        };
        std::mem::size_of::<Streams<C>>() + dirs + consumer
    }

    /// The byte streams and consumer, created on first need with what the bare segments
    /// before said about where each direction starts and what each acknowledged.
    fn streams(&mut self, cfg: &C::Config) -> &mut Streams<C> {
        let Flow {
            streams,
            key,
            first,
            start,
            syn,
            acks,
            client_hint,
            ..
        } = self;
        streams.get_or_insert_with(|| {
            let hint = client_hint.map(usize::from);
            let mid = hint.is_none();
            let mut dirs = [HalfStream::default(), HalfStream::default()];
            for (d, dir) in dirs.iter_mut().enumerate() {
                match start[d] {
                    Some(s) if syn[d] => dir.syn(s.wrapping_sub(1)),
                    Some(s) => {
                        dir.segment(s, &[], 0, false, None, 0, *first, &mut |_| {});
                    }
                    None => {}
                }
            }
            for (d, ack) in acks.iter().enumerate() {
                if let Some(a) = ack {
                    dirs[1 - d].acked(*a);
                }
            }
            let consumer = C::open(cfg.clone(), [key.a, key.b], *first, hint, [mid, mid]);
            Box::new(Streams {
                dirs,
                consumer,
                clock: Clock::default(),
            })
        })
    }

    /// Delivers what is left and closes the consumer; the entry may linger afterwards.
    fn finish(&mut self, reason: CloseReason, pos: Pos, sink: &mut C::Sink) -> StreamStats {
        self.closed = true;
        self.held = 0;
        // The entry lingers (trailing ACKs, retransmitted FINs); its streams and consumer
        // must not: at hundreds of new connections a second they were most of the memory.
        let Some(mut s) = self.streams.take() else {
            return StreamStats::default();
        };
        let Streams {
            dirs,
            consumer,
            clock,
        } = &mut *s;
        if !consumer.is_done() {
            let clock = *clock;
            let mut emit = |d: usize, p: Delivered<'_>| deliver(consumer, d, p, sink);
            // Every wait ends now, oldest first; then holes and unfinished FINs.
            pump(dirs, None, clock, true, pos, &mut emit);
            for (d, dir) in dirs.iter_mut().enumerate() {
                dir.flush(pos, &mut |p| emit(d, p));
            }
        }
        consumer.close(self.ended, reason, pos, sink);
        let mut stats = dirs[0].stats;
        stats.merge(&dirs[1].stats);
        stats
    }
}

/// All open connections of one worker.
pub struct FlowTable<C: StreamConsumer> {
    cfg: ReassemblyConfig,
    consumer_cfg: C::Config,
    /// Flow indices in `flows`, found by key.
    index: hashbrown::HashTable<u32>,
    hasher: RandomState,
    flows: Lru<Flow<C>, LISTS>,
    /// Bytes held by all flows of this table (entries included).
    buffered: usize,
    budget: Reservation,
    last_sweep: Timestamp,
    latest: Timestamp,
    /// Live capture: flows last seen at or before this were told they were quiet.
    quiet_upto: Timestamp,
    /// Flows with a direction waiting for late data (live capture ends their waits on
    /// ticks without visiting every flow).
    stalled: HashSet<u32>,
    /// End of input: open flows still to close, by first frame (latest first).
    finishing: Option<Vec<(FrameRef, u32)>>,
    pub stats: ReassemblyStats,
    pub syn_targets: SynTargets,
}

impl<C: StreamConsumer> FlowTable<C> {
    /// Bytes a flow costs before it carries payload: its entry in the LRU slab and in the
    /// hash index (a `u32` and a control byte, at the index's 7/8 load).
    pub const FLOW_COST: usize = Lru::<Flow<C>, LISTS>::ENTRY_SIZE + 6;

    /// A table with a budget of its own (`cfg.memory_budget`).
    pub fn new(cfg: ReassemblyConfig, consumer_cfg: C::Config) -> Self {
        let budget = MemoryBudget::new(cfg.memory_budget);
        Self::with_budget(cfg, consumer_cfg, budget)
    }

    /// A table that shares `budget` with others (one per worker).
    pub fn with_budget(
        cfg: ReassemblyConfig,
        consumer_cfg: C::Config,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        FlowTable {
            cfg,
            consumer_cfg,
            index: hashbrown::HashTable::new(),
            hasher: RandomState::new(),
            flows: Lru::new(),
            buffered: 0,
            budget: Reservation::new(budget),
            last_sweep: Timestamp::ZERO,
            latest: Timestamp::ZERO,
            quiet_upto: Timestamp::ZERO,
            stalled: HashSet::new(),
            finishing: None,
            stats: ReassemblyStats::default(),
            syn_targets: SynTargets::default(),
        }
    }

    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Bytes held by this table's flows now.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    fn find(&self, key: &FlowKey) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let flows = &self.flows;
        self.index
            .find(hash, |&i| flows.get(i).is_some_and(|f| f.key == *key))
            .copied()
    }

    /// Forgets a flow (its consumer must have been closed).
    fn remove(&mut self, i: u32) {
        let Some(flow) = self.flows.remove(i) else {
            return;
        };
        self.stalled.remove(&i);
        self.buffered = self.buffered.saturating_sub(flow.held + Self::FLOW_COST);
        let hash = self.hasher.hash_one(flow.key);
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
    }

    fn insert(&mut self, flow: Flow<C>) -> u32 {
        let hash = self.hasher.hash_one(flow.key);
        let i = self.flows.insert(OPEN, flow);
        let flows = &self.flows;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, i, |&j| {
            flows.get(j).map_or(0, |f| hasher.hash_one(f.key))
        });
        self.buffered += Self::FLOW_COST;
        i
    }

    /// Takes one segment; `order` is the frame's position in the run.
    pub fn segment(&mut self, seg: &Segment<'_>, order: u64, sink: &mut C::Sink) {
        self.stats.segments += 1;
        let pos = Pos {
            frame: seg.frame,
            ts: seg.ts,
            order,
        };
        if seg.ts > self.latest {
            self.latest = seg.ts;
        }
        let (key, dir) = FlowKey::of(seg.src, seg.dst);
        let flags = seg.flags;
        let fresh_syn = flags.syn() && !flags.ack();

        let mut found = self.find(&key);
        if let Some(i) = found
            && let Some(flow) = self.flows.get_mut(i)
            && flow.closed
        {
            if !fresh_syn {
                // Trailing ACKs and retransmitted FINs of a finished connection.
                flow.last_pos.ts = seg.ts;
                self.flows.touch(i, LINGERING);
                self.stats.ignored_segments += 1;
                return;
            }
            self.remove(i);
            found = None;
            self.stats.port_reuses += 1;
        }
        if let Some(i) = found
            && fresh_syn
            && self.flows.get(i).is_some_and(|f| is_new_connection(f, dir))
        {
            self.stats.port_reuses += 1;
            self.close_flow(i, CloseReason::Closed, pos, sink);
            self.remove(i);
            found = None;
        }

        let i = match found {
            Some(i) => i,
            None => {
                if flags.rst() && seg.payload.is_empty() {
                    self.stats.ignored_segments += 1;
                    return;
                }
                let client_hint = if flags.syn() {
                    Some(if flags.ack() { 1 - dir } else { dir } as u8)
                } else {
                    None
                };
                self.stats.connections += 1;
                self.insert(Flow {
                    key,
                    first: pos,
                    last_pos: pos,
                    held: 0,
                    streams: None,
                    start: [None, None],
                    syn: [false, false],
                    client_hint,
                    handshake: false,
                    data: [false, false],
                    closed: false,
                    ended: [false, false],
                    reset: false,
                    active: true,
                    acks: [None, None],
                })
            }
        };

        let max_pending = self.cfg.max_pending_per_stream;
        let consumer_cfg = &self.consumer_cfg;
        let Some(flow) = self.flows.get_mut(i) else {
            return;
        };
        flow.last_pos = pos;
        flow.active = true;
        if flow.client_hint == Some(dir as u8)
            && !flags.syn()
            && !flags.rst()
            && (flags.ack() || !seg.payload.is_empty())
        {
            flow.handshake = true;
        }
        if !seg.payload.is_empty() {
            flow.data[dir] = true;
        }
        let list = if flow.is_attempt() { ATTEMPT } else { OPEN };
        self.flows.touch(i, list);
        let Some(flow) = self.flows.get_mut(i) else {
            return;
        };
        // The SYN itself occupies one sequence number; data on a SYN (TCP Fast Open)
        // starts after it.
        let seq = if flags.syn() {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let bare = seg.payload.is_empty() && !flags.fin() && seg.missing == 0;
        if bare && flow.streams.is_none() {
            // No payload yet on this flow: remember where the streams start and what was
            // acknowledged, nothing more.
            if flags.syn() {
                flow.start[dir] = Some(seq);
                flow.syn[dir] = true;
            } else {
                flow.start[dir].get_or_insert(seq);
            }
            if flags.ack() {
                flow.acks[dir] = Some(seg.ack);
            }
        } else {
            if flow.streams.is_none() {
                self.stats.with_payload += 1;
            }
            let Streams {
                dirs,
                consumer,
                clock,
            } = flow.streams(consumer_cfg);
            *clock = Clock {
                ts: seg.ts,
                segments: clock.segments + 1,
            };
            let clock = *clock;
            if flags.syn() {
                dirs[dir].syn(seg.seq);
            }
            if !consumer.is_done() {
                let ack = if flags.ack() {
                    dirs[1 - dir].acked(seg.ack);
                    dirs[1 - dir].offset_of_ack(seg.ack)
                } else {
                    None
                };
                let peer_reach = dirs[1 - dir].reach();
                let mut emit = |d: usize, p: Delivered<'_>| deliver(consumer, d, p, sink);
                dirs[dir].segment(
                    seq,
                    &seg.payload,
                    seg.missing,
                    flags.fin(),
                    ack,
                    peer_reach,
                    pos,
                    &mut |p| emit(dir, p),
                );
                pump(dirs, Some((dir, pos)), clock, false, pos, &mut emit);
                // Past the flow's buffer budget a wait ends at once.
                while dirs[dir].pending_bytes() > max_pending
                    && dirs[dir].give_up_wait(pos, &mut |p| emit(dir, p))
                {
                    pump(dirs, None, clock, false, pos, &mut emit);
                }
            }
        }
        if flags.fin() || flags.rst() {
            flow.ended[dir] = true;
        }
        if flags.rst() {
            flow.reset = true;
        }
        let finished = |d: usize| flow.streams.as_ref().is_none_or(|s| s.dirs[d].finished());
        let done = flow.reset || (flow.ended[0] && flow.ended[1] && finished(0) && finished(1));
        let held = flow.buffered();
        self.buffered = (self.buffered + held).saturating_sub(flow.held);
        flow.held = held;
        let stalled = flow
            .streams
            .as_deref()
            .is_some_and(|s| !s.consumer.is_done() && s.dirs.iter().any(HalfStream::stalled));
        if stalled {
            self.stalled.insert(i);
        } else if !self.stalled.is_empty() {
            self.stalled.remove(&i);
        }

        if done {
            self.close_flow(i, CloseReason::Closed, pos, sink);
        }
        if !self.budget.fit(self.buffered) {
            self.evict_coldest(pos, sink);
        }
        if self.flows.len() > self.cfg.max_flows {
            self.evict_one(pos, sink, false);
        }
        if self.latest.secs_since(self.last_sweep) >= 1.0 {
            self.sweep_idle(pos, sink);
        }
    }

    /// Closes a flow's consumer (once) and moves it to the lingering list; the entry stays
    /// until it expires.
    fn close_flow(&mut self, i: u32, reason: CloseReason, pos: Pos, sink: &mut C::Sink) {
        let Some(flow) = self.flows.get_mut(i) else {
            return;
        };
        if flow.closed {
            return;
        }
        self.buffered = self.buffered.saturating_sub(flow.held);
        if let Some(c) = flow.client_hint {
            let c = usize::from(c);
            if !flow.handshake {
                self.stats.syn_without_handshake += 1;
                let server = if c == 0 { flow.key.b } else { flow.key.a };
                self.syn_targets.add(server, 1);
            }
        }
        if flow.handshake && flow.data[0] != flow.data[1] {
            self.stats.one_sided += 1;
        }
        let stats = flow.finish(reason, pos, sink);
        self.stats.streams.merge(&stats);
        self.flows.touch(i, LINGERING);
    }

    /// The memory budget is full: lingering entries go first (they hold no data), then the
    /// least recently seen open flows, until this table fits in its share.
    fn evict_coldest(&mut self, pos: Pos, sink: &mut C::Sink) {
        while !self.budget.covers(self.buffered) {
            if !self.evict_one(pos, sink, true) {
                break;
            }
        }
        // Whatever was freed beyond the share goes back to the other workers.
        self.budget.fit(self.buffered);
    }

    /// Forgets the coldest lingering entry, or evicts the coldest connection attempt (when
    /// older than [`ATTEMPT_EVICT_AGE_SECS`]), or else the coldest open flow. False when
    /// the table is empty.
    fn evict_one(&mut self, pos: Pos, sink: &mut C::Sink, for_budget: bool) -> bool {
        if let Some(i) = self.flows.coldest(LINGERING) {
            self.remove(i);
            return true;
        }
        // An attempt younger than a SYN's first retransmission may be a handshake under
        // way (its SYN-ACK is an RTT off): the coldest open flow goes before it.
        let stale_attempt = self
            .flows
            .coldest(ATTEMPT)
            .filter(|&i| self.idle_secs(i) >= Some(ATTEMPT_EVICT_AGE_SECS));
        let Some(i) = stale_attempt
            .or_else(|| self.flows.coldest(OPEN))
            .or_else(|| self.flows.coldest(ATTEMPT))
        else {
            return false;
        };
        self.stats.evictions += 1;
        if for_budget {
            self.stats.budget_evictions += 1;
        }
        self.end_flow(i, CloseReason::Evicted, pos, sink);
        true
    }

    /// Seconds since flow `i`'s last packet (capture time).
    fn idle_secs(&self, i: u32) -> Option<f64> {
        self.flows
            .get(i)
            .map(|f| self.latest.secs_since(f.last_pos.ts))
    }

    /// Closes flow `i` as of its last packet (at the reader's position `pos.order`) and
    /// forgets it.
    fn end_flow(&mut self, i: u32, reason: CloseReason, pos: Pos, sink: &mut C::Sink) {
        let at = self.flows.get(i).map_or(pos, |f| Pos {
            order: pos.order,
            ..f.last_pos
        });
        self.close_flow(i, reason, at, sink);
        self.remove(i);
    }

    /// Closes flows idle for longer than the timeout (in capture time), and forgets
    /// finished ones after a short linger: both from the cold ends of their lists.
    fn sweep_idle(&mut self, pos: Pos, sink: &mut C::Sink) {
        self.last_sweep = self.latest;
        let limit = self.cfg.idle_timeout_secs as f64;
        while let Some(i) = self.flows.coldest(LINGERING)
            && self.idle_secs(i) > Some(CLOSED_LINGER_SECS)
        {
            self.remove(i);
        }
        for (list, limit) in [(OPEN, limit), (ATTEMPT, limit.min(ATTEMPT_IDLE_SECS))] {
            while let Some(i) = self.flows.coldest(list)
                && self.idle_secs(i) > Some(limit)
            {
                self.stats.idle_timeouts += 1;
                self.end_flow(i, CloseReason::IdleTimeout, pos, sink);
            }
        }
        self.budget.fit(self.buffered);
    }

    /// Live capture: time went on to `now` (wall clock, like the packets' timestamps)
    /// whether or not packets arrived. Idle flows time out, and flows quiet for
    /// [`QUIET_SECS`] let their consumers release what they hold. `order` is how far the
    /// reader got.
    pub fn tick(&mut self, now: Timestamp, order: u64, sink: &mut C::Sink) {
        if now > self.latest {
            self.latest = now;
        }
        let pos = Pos {
            frame: crate::capture::FrameRef::default(),
            ts: self.latest,
            order,
        };
        if self.latest.secs_since(self.last_sweep) >= 1.0 {
            self.sweep_idle(pos, sink);
        }
        // A wait for late data ends with time even when no packet comes: only flows with a
        // stalled direction are visited.
        let latest = self.latest;
        let stalled: Vec<u32> = self.stalled.iter().copied().collect();
        for i in stalled {
            let Some(flow) = self.flows.get_mut(i) else {
                self.stalled.remove(&i);
                continue;
            };
            let at = Pos {
                order,
                ..flow.last_pos
            };
            if let Some(s) = flow.streams.as_deref_mut()
                && !s.consumer.is_done()
            {
                let clock = Clock {
                    ts: latest,
                    segments: s.clock.segments,
                };
                let Streams { dirs, consumer, .. } = s;
                pump(dirs, None, clock, false, at, &mut |d, p| {
                    deliver(consumer, d, p, sink)
                });
            }
            let still = flow
                .streams
                .as_deref()
                .is_some_and(|s| !s.consumer.is_done() && s.dirs.iter().any(HalfStream::stalled));
            let held = flow.buffered();
            self.buffered = (self.buffered + held).saturating_sub(flow.held);
            flow.held = held;
            if !still {
                self.stalled.remove(&i);
            }
        }
        // Flows that became quiet since the last tick were last seen between the previous
        // cut-off and this one: walk from the hot end past the still-busy flows to them,
        // and stop at the first one the previous tick already saw.
        let before = self.quiet_upto;
        let mut at = self.flows.hottest(OPEN);
        let mut upto = before;
        while let Some(i) = at {
            at = self.flows.colder(i);
            let Some(flow) = self.flows.get_mut(i) else {
                break;
            };
            let seen = flow.last_pos.ts;
            if latest.secs_since(seen) < QUIET_SECS {
                continue;
            }
            if seen <= before {
                break;
            }
            if seen > upto {
                upto = seen;
            }
            if flow.active && !flow.closed {
                flow.active = false;
                let at = Pos {
                    order,
                    ..flow.last_pos
                };
                if let Some(s) = flow.streams.as_deref_mut() {
                    s.consumer.quiet(at, sink);
                }
            }
        }
        self.quiet_upto = upto;
    }

    /// End of input, one flow at a time: closes the open flow whose first packet came
    /// earliest and returns that packet's frame, `None` once no flow is open. The caller
    /// hands on what each close produced before the next, so the exchanges of 100k
    /// connections still open at the end never wait all at once; and since output is
    /// ordered by connection (first frame) at the end, a frame is also how far the output
    /// is complete.
    pub fn finish_next(&mut self, order: u64, sink: &mut C::Sink) -> Option<FrameRef> {
        if self.finishing.is_none() {
            // Input has ended: the open flows are fixed from now on.
            let mut open = Vec::with_capacity(self.flows.len());
            for list in [OPEN, ATTEMPT] {
                let mut at = self.flows.hottest(list);
                while let Some(i) = at {
                    at = self.flows.colder(i);
                    if let Some(f) = self.flows.get(i) {
                        open.push((f.first.frame, i));
                    }
                }
            }
            // Popped from the end: latest first frame first in the vector.
            open.sort_unstable_by(|a, b| b.cmp(a));
            self.finishing = Some(open);
        }
        let (frame, i) = self.finishing.as_mut()?.pop()?;
        let pos = self.flows.get(i).map_or(Pos::default(), |f| Pos {
            order,
            ..f.last_pos
        });
        self.close_flow(i, CloseReason::EndOfCapture, pos, sink);
        self.remove(i);
        Some(frame)
    }

    /// End of input: every open flow is closed, oldest first so output is deterministic.
    pub fn finish(&mut self, order: u64, sink: &mut C::Sink) {
        while let Some(i) = self
            .flows
            .coldest(OPEN)
            .or_else(|| self.flows.coldest(ATTEMPT))
        {
            let pos = self.flows.get(i).map_or(Pos::default(), |f| Pos {
                order,
                ..f.last_pos
            });
            self.close_flow(i, CloseReason::EndOfCapture, pos, sink);
            self.remove(i);
        }
        while let Some(i) = self.flows.coldest(LINGERING) {
            self.remove(i);
        }
        self.buffered = 0;
        self.budget.fit(0);
    }
}

/// A SYN on a known 4-tuple starts a new connection when the old one ended, or when it
/// carries another initial sequence number than the one recorded.
fn is_new_connection<C>(flow: &Flow<C>, dir: usize) -> bool {
    flow.reset || (flow.ended[0] && flow.ended[1]) || flow.data[dir] || flow.ended[dir]
}

#[cfg(test)]
mod flood_tests;
#[cfg(test)]
mod tests;
