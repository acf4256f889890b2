//! Wires the stages together on threads: the reader thread walks the capture files (or the
//! capture thread reads a live interface) and decodes frames; connections are sharded across worker threads by a symmetric flow hash (so a
//! connection always lands on the same worker); a collector merges the workers' exchanges
//! back into one deterministic order (the frame at which each exchange was complete, then
//! connection and index) and hands them to the sink.
//!
//! Queues are bounded. For files they block when full: nothing read is ever dropped, and
//! memory stays flat whatever the size of the capture. Live, the capture thread must never
//! wait (the kernel would drop instead, uncounted by us), so a full queue drops the batch
//! and counts it; and every 100 ms the workers are told the time, so that idle flows expire
//! and quiet connections release their last exchange without waiting for more packets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::capture::live::{KernelStats, LiveCapture, LiveError};
use crate::capture::{CaptureError, CaptureSet, FrameRef, ReadSummary};
use crate::decode::{DecodeStats, Decoder, Segment};
use crate::http::{Exchange, HttpConfig, HttpOutput, HttpStats};
use crate::packets::PacketRing;
use crate::reassembly::{
    FlowKey, FlowTable, MemoryBudget, ReassemblyConfig, ReassemblyStats, SynTargets, flow_share,
    fragment_share, stateful_share,
};
use crate::redact::Redactor;
use crate::rules::run::{Metric, RunCounters};
use crate::rules::{Engine, ExchangeRef, Finding, RuleSet, StatefulEngine, WireNeed};
use crate::session::{Session, SessionConfig};
use crate::time::Timestamp;
use crate::tls::{TlsConfig, TlsStats};

/// Memory a live run holds outside the flow tables and the offline reserve: libpcap's ring
/// (32 MiB, mapped into the process), the packet store's packets awaiting a finding
/// (16 MiB) and the batches waiting in the worker queues ([`LIVE_QUEUE_BYTES`]).
const LIVE_RESERVE: usize = 48 * 1024 * 1024 + LIVE_QUEUE_BYTES;

/// Settings of one run.
#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    /// Worker threads (0: one per available core).
    pub workers: usize,
    pub http: HttpConfig,
    pub reassembly: ReassemblyConfig,
    /// BPF expression applied to every frame.
    pub filter: Option<String>,
    /// The rules to run, if any: per-exchange rules run on the workers, stateful ones in
    /// the collector, in output order.
    pub rules: Option<Arc<RuleSet>>,
    /// Masks secrets after the per-exchange rules ran; `None` keeps values as captured.
    pub redact: Option<Redactor>,
    /// Keys that decrypt TLS connections.
    pub tls: TlsConfig,
    /// Server ports whose traffic is HTTP even when it does not start like it.
    pub http_ports: Arc<[u16]>,
}

/// An exchange with the findings on it, as the sink receives it.
#[derive(Debug)]
pub struct Analyzed {
    pub exchange: Exchange,
    pub findings: Vec<Finding>,
}

/// What the sink receives: analysed exchanges in order, then findings that stateful rules
/// settled only at the end of input (about exchanges already delivered).
// Nearly every item is the large variant: boxing it would add an allocation per exchange.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Output {
    Exchange(Analyzed),
    Settled(ExchangeRef, Finding),
}

/// Everything counted in a run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunSummary {
    pub frames: u64,
    pub bytes: u64,
    pub filtered_out: u64,
    pub decode: DecodeStats,
    pub reassembly: ReassemblyStats,
    /// Unanswered SYNs by destination (see [`ReassemblyStats::syn_without_handshake`]).
    pub syn_targets: SynTargets,
    pub http: HttpStats,
    /// TLS connections: decrypted, or not and why.
    pub tls: TlsStats,
    pub warnings: Vec<String>,
    /// Keys the stateful rules' tables dropped to stay within their share of the memory
    /// budget: cross-exchange rules looked back less far than their nominal history.
    #[serde(skip_serializing_if = "is_zero")]
    pub stateful_keys_forgotten: u64,
    /// Live capture only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSummary>,
    /// HAR input only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub har: Option<HarSummary>,
    /// Live capture with a packet store only: what it kept and what its caps left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_store: Option<crate::packets::PacketStoreStats>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a run over HAR files read, and which rules it could not apply.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HarSummary {
    pub files: u64,
    pub entries: u64,
    /// Rules skipped on these exchanges because they need wire bytes, by reason.
    pub skipped: Vec<SkippedRules>,
}

/// Rules skipped for one reason: which, and how many (rule, exchange) evaluations.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SkippedRules {
    pub reason: WireNeed,
    pub rules: Vec<String>,
    pub evaluations: u64,
}

impl RunSummary {
    /// The counters run-scope rules watch, each with a sentence of detail.
    pub fn counters(&self) -> RunCounters {
        let r = &self.reassembly;
        let mut c = RunCounters::default();
        let top = match self.syn_targets.top() {
            Some((dst, n)) => format!("{n} of them to {dst}"),
            None => String::new(),
        };
        c.set(Metric::SynWithoutHandshake, r.syn_without_handshake, top);
        c.set(
            Metric::OneSidedConnections,
            r.one_sided,
            format!("of {} connections that carried payload", r.with_payload),
        );
        c.set(
            Metric::FragmentsDropped,
            self.decode.fragments_dropped,
            format!(
                "{} datagrams were rebuilt from fragments",
                self.decode.fragments_reassembled
            ),
        );
        let d = &self.decode;
        c.set(
            Metric::HostileFragments,
            d.fragments_conflicting_overlap + d.fragments_teardrop + d.fragments_past_max_length,
            format!(
                "{} overlapping with different bytes, {} teardrop, {} past 65,535 bytes",
                d.fragments_conflicting_overlap, d.fragments_teardrop, d.fragments_past_max_length
            ),
        );
        c.set(
            Metric::Evictions,
            r.evictions,
            format!(
                "{} for the memory budget, {} for the connection cap",
                r.budget_evictions,
                r.evictions - r.budget_evictions.min(r.evictions)
            ),
        );
        if let Some(live) = &self.live {
            let k = &live.kernel;
            c.set(
                Metric::DroppedPackets,
                k.dropped + k.interface_dropped + live.internal_dropped,
                format!(
                    "kernel {}, interface {}, full queues {}",
                    k.dropped, k.interface_dropped, live.internal_dropped
                ),
            );
        }
        c.set(Metric::RequestsOverCap, self.http.requests_over_cap, "");
        c
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error("writing output failed: {0}")]
    Output(#[source] std::io::Error),
    #[error("a worker thread failed: {0}")]
    Worker(String),
}

/// Segments for one worker. Payloads borrow from the memory-mapped capture (no copy);
/// only payloads rebuilt from IP fragments are owned.
#[derive(Default)]
struct Batch<'s> {
    /// Each segment with its frame's position in the run.
    segments: Vec<(u64, Segment<'s>)>,
    bytes: usize,
    /// Every frame up to this order that belongs to this worker is in this batch or an
    /// earlier one.
    upto: u64,
    /// Live capture: the wall-clock time when the batch was sent.
    tick: Option<Timestamp>,
    /// Live capture: what the batch costs the queues' byte count, given back when the
    /// worker is done with it (dropped).
    charge: Option<(Arc<AtomicUsize>, usize)>,
}

impl Batch<'_> {
    /// Memory the batch holds: its entries, and its payloads (owned live, each with an
    /// allocation of its own).
    fn cost(&self) -> usize {
        self.segments.capacity() * std::mem::size_of::<(u64, Segment<'_>)>()
            + self.bytes
            + self.segments.len() * 16
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if let Some((queued, cost)) = self.charge.take() {
            queued.fetch_sub(cost, Ordering::Relaxed);
        }
    }
}

const BATCH_SEGMENTS: usize = 512;
const BATCH_BYTES: usize = 512 * 1024;
/// How often (in frames) every worker is told how far the reader got, so the collector can
/// release output even from workers that receive no traffic. Until then the exchanges of
/// the others wait in the collector: at 8192 frames, 200k pipelined responses (about ten
/// per frame) held ~100 MB there while the idle worker's mark stood still.
const WATERMARK_EVERY: u64 = 1024;
/// Live capture: how often the capture thread sends every worker what it has and the time.
const LIVE_TICK: Duration = Duration::from_millis(100);
/// Live capture: how often libpcap's counters are read.
const LIVE_STATS_EVERY: Duration = Duration::from_secs(1);
/// Live capture: batches waiting per worker before the capture thread drops.
const LIVE_QUEUE_BATCHES: usize = 256;
/// Live capture: bytes the batches waiting in all worker queues may hold together before
/// the capture thread drops (counted): a burst the workers cannot take costs at most this,
/// whatever the number of workers. At 1 Gbit/s it is an eighth of a second of traffic;
/// libpcap's ring absorbs twice that in the kernel.
const LIVE_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Exchanges a worker hands on at most at once: a batch of pipelined responses can release
/// thousands, and the queue to the collector bounds messages, not exchanges.
const OUTPUT_CHUNK: usize = 256;
/// End of input: exchanges the collector may hold waiting for a slower worker before the
/// workers ahead of it wait too (the one furthest behind never waits).
const FINISH_WAITING: usize = 4096;

/// How far a worker's output is complete: every exchange whose release point and
/// connection (first frame) are at or below the mark was sent. While input is read the
/// frame part is [`FRAME_MAX`] (all of that order); at the end of input connections are
/// closed in the order of their first frame, and the mark follows them.
type Mark = (u64, FrameRef);

const FRAME_MAX: FrameRef = FrameRef {
    file: u16::MAX,
    number: u64::MAX,
};

/// What a worker hands to the collector.
struct WorkerOutput {
    worker: usize,
    /// Exchanges with the frame order at which they were released.
    exchanges: Vec<(u64, Analyzed)>,
    mark: Mark,
}

/// What the collector tells the workers at the end of input, so that one far ahead waits
/// for the others instead of piling its exchanges up in the collector.
#[derive(Default)]
struct Gate {
    state: std::sync::Mutex<GateState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct GateState {
    /// The lowest mark of all workers, as far as the collector has read.
    low: Mark,
    /// Exchanges waiting in the collector for the lowest mark to pass them.
    waiting: usize,
    /// The collector is gone: nobody waits any more.
    closed: bool,
}

impl Gate {
    fn update(&self, low: Mark, waiting: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.low = low;
            s.waiting = waiting;
        }
        self.changed.notify_all();
    }

    fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.changed.notify_all();
    }

    /// Waits while the collector holds many exchanges and this worker (at `mine`) is not
    /// the one holding them back.
    fn wait_turn(&self, mine: Mark) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        while !s.closed && s.waiting > FINISH_WAITING && mine > s.low {
            match self.changed.wait_timeout(s, Duration::from_millis(20)) {
                Ok((next, _)) => s = next,
                Err(_) => return,
            }
        }
    }
}

/// Closes the gate when the collector ends, however it ends.
struct CloseOnDrop<'g>(&'g Gate);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// An exchange waiting in the collector, ordered by release point, connection and index.
struct Pending {
    key: (u64, FrameRef, u32),
    exchange: Analyzed,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// What the reader hands back when it is done.
struct Fed {
    read: ReadSummary,
    decode: DecodeStats,
    live: Option<LiveSummary>,
}

/// Counters of a live capture, readable while it runs (the daemon logs them and records
/// them on the run).
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub kernel_received: AtomicU64,
    pub kernel_dropped: AtomicU64,
    pub interface_dropped: AtomicU64,
    /// Segments the capture thread dropped because a worker's queue was full (in batches,
    /// or all queues together in bytes: [`LIVE_QUEUE_BYTES`]).
    pub internal_dropped: AtomicU64,
    pub decode_errors: AtomicU64,
}

impl LiveCounters {
    pub fn snapshot(&self) -> LiveSummary {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LiveSummary {
            frames: get(&self.frames),
            bytes: get(&self.bytes),
            kernel: KernelStats {
                received: get(&self.kernel_received),
                dropped: get(&self.kernel_dropped),
                interface_dropped: get(&self.interface_dropped),
            },
            internal_dropped: get(&self.internal_dropped),
            decode_errors: get(&self.decode_errors),
        }
    }
}

/// Live capture's own counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveSummary {
    pub frames: u64,
    pub bytes: u64,
    pub kernel: KernelStats,
    /// Segments dropped because a worker's queue was full, in batches or in bytes (the
    /// capture thread never waits).
    pub internal_dropped: u64,
    pub decode_errors: u64,
}

/// The reader's side of the worker queues: per-worker batches and how full queues are
/// handled — offline the reader waits (nothing is lost), live it drops and counts.
struct Shards<'s> {
    senders: Vec<Sender<Batch<'s>>>,
    batches: Vec<Batch<'s>>,
    lossy: bool,
    /// Lossy mode: what the batches in the queues cost now ([`LIVE_QUEUE_BYTES`]).
    queued: Arc<AtomicUsize>,
    /// Segments dropped on full queues (lossy mode only).
    dropped: u64,
    /// A worker is gone: the run is stopping.
    closed: bool,
}

impl<'s> Shards<'s> {
    fn new(senders: Vec<Sender<Batch<'s>>>, lossy: bool) -> Self {
        let batches = senders.iter().map(|_| Batch::default()).collect();
        Shards {
            senders,
            batches,
            lossy,
            queued: Arc::default(),
            dropped: 0,
            closed: false,
        }
    }

    /// Queues a segment for the worker that owns its connection.
    fn push(&mut self, order: u64, seg: Segment<'s>) {
        let (key, _) = FlowKey::of(seg.src, seg.dst);
        let w = (key.shard_hash() % self.senders.len() as u64) as usize;
        let batch = &mut self.batches[w];
        batch.bytes += seg.payload.len();
        batch.segments.push((order, seg));
        if batch.segments.len() >= BATCH_SEGMENTS || batch.bytes >= BATCH_BYTES {
            self.flush(w, order, None);
        }
    }

    fn flush(&mut self, w: usize, upto: u64, tick: Option<Timestamp>) {
        let mut full = std::mem::take(&mut self.batches[w]);
        full.upto = upto;
        full.tick = tick;
        let tx = &self.senders[w];
        if self.lossy {
            let cost = full.cost();
            if self.queued.load(Ordering::Relaxed) + cost > LIVE_QUEUE_BYTES {
                self.dropped += full.segments.len() as u64;
                return;
            }
            self.queued.fetch_add(cost, Ordering::Relaxed);
            full.charge = Some((Arc::clone(&self.queued), cost));
            match tx.try_send(full) {
                Ok(()) => {}
                Err(TrySendError::Full(lost)) => self.dropped += lost.segments.len() as u64,
                Err(TrySendError::Disconnected(_)) => self.closed = true,
            }
        } else if tx.send(full).is_err() {
            self.closed = true;
        }
    }

    /// Sends every worker what it has, with how far the reader got (and, live, the time).
    fn flush_all(&mut self, upto: u64, tick: Option<Timestamp>) {
        for w in 0..self.senders.len() {
            self.flush(w, upto, tick);
        }
    }
}

/// Runs the offline pipeline over `captures`, handing every exchange to `sink` in a
/// deterministic order. `progress` gets bytes read so far, now and then.
pub fn run(
    captures: &CaptureSet,
    cfg: &PipelineConfig,
    sink: impl FnMut(Output) -> std::io::Result<()> + Send,
    progress: impl FnMut(u64),
) -> Result<RunSummary, PipelineError> {
    run_until(
        captures,
        cfg,
        Arc::new(AtomicBool::new(false)),
        sink,
        progress,
    )
}

/// As [`run`], stopping early once `stop` is set (a signal): reading ends before the next
/// frame, what was read is drained through the workers, and the summary counts it.
pub fn run_until(
    captures: &CaptureSet,
    cfg: &PipelineConfig,
    stop: Arc<AtomicBool>,
    sink: impl FnMut(Output) -> std::io::Result<()> + Send,
    progress: impl FnMut(u64),
) -> Result<RunSummary, PipelineError> {
    drive(cfg, false, sink, Arc::clone(&stop), |shards| {
        read_files(captures, cfg, shards, &stop, progress)
    })
}

/// Runs the pipeline over a live capture until `stop` is set (or reading fails), then
/// drains every queue: the sink has everything by the time this returns. The calling
/// thread is the capture thread; it never waits for the workers (full queues drop and
/// count), and it keeps `counters` up to date. With a `packets` ring, every decoded frame
/// is also held there (the packet store of flagged connections).
pub fn run_live(
    capture: &mut LiveCapture,
    cfg: &PipelineConfig,
    sink: impl FnMut(Output) -> std::io::Result<()> + Send,
    stop: Arc<AtomicBool>,
    counters: &LiveCounters,
    packets: Option<&PacketRing>,
) -> Result<RunSummary, PipelineError> {
    drive(cfg, true, sink, Arc::clone(&stop), |shards| {
        read_live(
            capture,
            shards,
            &stop,
            counters,
            packets,
            fragment_share(cfg.reassembly.memory_budget),
        )
    })
}

/// Runs the rules over exchanges that are already parsed (read from HAR files), handing
/// them to `sink` in the order given, as [`run`] does: per-exchange rules on `cfg.workers`
/// threads, stateful rules in order on the calling thread. Rules that
/// need wire bytes are skipped on exchanges without them and counted in the summary.
pub fn run_exchanges(
    exchanges: Vec<Exchange>,
    cfg: &PipelineConfig,
    mut sink: impl FnMut(Output) -> std::io::Result<()>,
) -> Result<RunSummary, PipelineError> {
    let engine = cfg.rules.as_deref().map(Engine::new);
    let mut stateful = cfg.rules.as_deref().map(StatefulEngine::new);
    // Rules that cannot judge an exchange without wire bytes, once.
    let wire_rules: Vec<(WireNeed, &str)> = cfg
        .rules
        .as_deref()
        .map(|set| {
            set.rules
                .iter()
                .filter(|r| r.enabled)
                .filter_map(|r| r.wire_need().map(|n| (n, r.id.as_str())))
                .collect()
        })
        .unwrap_or_default();
    let mut skipped: std::collections::BTreeMap<WireNeed, u64> = Default::default();
    let mut summary = RunSummary::default();
    let analyze = |mut exchange: Exchange| {
        let mut findings = engine
            .as_ref()
            .map(|e| e.check(&exchange))
            .unwrap_or_default();
        if let Some(r) = &cfg.redact {
            r.exchange(&mut exchange);
            for f in &mut findings {
                f.evidence = r.evidence(&f.evidence);
            }
        }
        Analyzed { exchange, findings }
    };
    // Per-exchange rules on every core, in contiguous shares; stateful ones below, in order.
    let workers = match cfg.workers {
        0 => thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let share = exchanges.len().div_ceil(workers).max(1);
    let mut shares: Vec<Vec<Exchange>> = Vec::new();
    let mut rest = exchanges.into_iter();
    loop {
        let part: Vec<Exchange> = rest.by_ref().take(share).collect();
        if part.is_empty() {
            break;
        }
        shares.push(part);
    }
    let analyzed = thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|part| scope.spawn(|| part.into_iter().map(analyze).collect::<Vec<_>>()))
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| PipelineError::Worker("a rule thread panicked".into()))?,
            );
        }
        Ok::<_, PipelineError>(all)
    })?;
    for mut item in analyzed {
        let exchange = &item.exchange;
        summary.http.exchanges += 1;
        summary.http.requests += u64::from(exchange.request.is_some());
        summary.http.responses += u64::from(exchange.response.is_some());
        if !exchange.has_wire_bytes() {
            for (need, _) in &wire_rules {
                *skipped.entry(*need).or_default() += 1;
            }
        }
        if let Some(engine) = stateful.as_mut() {
            let here = ExchangeRef::of(&item.exchange);
            for (at, finding) in engine.observe(&item.exchange) {
                if at == here {
                    item.findings.push(finding);
                } else {
                    sink(Output::Settled(at, finding)).map_err(PipelineError::Output)?;
                }
            }
        }
        sink(Output::Exchange(item)).map_err(PipelineError::Output)?;
    }
    if let Some(engine) = stateful.as_mut() {
        for (at, finding) in engine.finish() {
            sink(Output::Settled(at, finding)).map_err(PipelineError::Output)?;
        }
    }
    summary.har = Some(HarSummary {
        skipped: skipped
            .into_iter()
            .map(|(reason, evaluations)| SkippedRules {
                reason,
                rules: wire_rules
                    .iter()
                    .filter(|(n, _)| *n == reason)
                    .map(|(_, id)| id.to_string())
                    .collect(),
                evaluations,
            })
            .collect(),
        ..HarSummary::default()
    });
    Ok(summary)
}

/// The threads of a run: workers sharded by flow, the collector, and `read` (on the calling
/// thread) feeding them through `Shards`.
fn drive<'s>(
    cfg: &PipelineConfig,
    lossy: bool,
    sink: impl FnMut(Output) -> std::io::Result<()> + Send,
    stop: Arc<AtomicBool>,
    read: impl FnOnce(&mut Shards<'s>) -> Result<Fed, PipelineError>,
) -> Result<RunSummary, PipelineError> {
    let workers = if cfg.workers == 0 {
        thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.workers
    };
    // Live, the queues absorb bursts while a worker is busy; offline they only need to
    // keep the workers fed.
    let depth = if lossy { LIVE_QUEUE_BATCHES } else { 8 };
    // One budget for every worker's flows: memory does not grow with the core count. The
    // flows get their share of the process budget; the rest is for everything else. Live,
    // the kernel's capture ring (mapped into the process) and the packet store's memory
    // come out of the flows' share too.
    let share = flow_share(cfg.reassembly.memory_budget);
    let share = if lossy {
        share.saturating_sub(LIVE_RESERVE).max(share / 4)
    } else {
        share
    };
    let budget = MemoryBudget::new(share);

    thread::scope(|scope| {
        let (out_tx, out_rx) = bounded::<WorkerOutput>(workers * 8);
        let gate = Arc::new(Gate::default());
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = bounded::<Batch<'s>>(depth);
            senders.push(tx);
            let out_tx = out_tx.clone();
            let session = SessionConfig {
                http: cfg.http,
                tls: cfg.tls.clone(),
                http_ports: Arc::clone(&cfg.http_ports),
            };
            let reassembly = cfg.reassembly;
            let engine = cfg.rules.as_deref().map(Engine::new);
            let redact = cfg.redact.clone();
            let table = FlowTable::with_budget(reassembly, session, Arc::clone(&budget));
            let gate = Arc::clone(&gate);
            handles.push(scope.spawn(move || worker(w, rx, out_tx, table, engine, redact, &gate)));
        }
        drop(out_tx);

        let collector_stop = Arc::clone(&stop);
        let stateful_memory = stateful_share(cfg.reassembly.memory_budget);
        let stateful = cfg
            .rules
            .as_deref()
            .map(|set| StatefulEngine::with_memory(set, stateful_memory));
        let collector =
            scope.spawn(move || collect(out_rx, workers, sink, stateful, collector_stop, &gate));

        let mut shards = Shards::new(senders, lossy);
        let fed = read(&mut shards);
        drop(shards);

        let mut summary = RunSummary::default();
        for h in handles {
            match h.join() {
                Ok((r, syn, http, tls)) => {
                    summary.reassembly.merge(&r);
                    summary.syn_targets.merge(&syn);
                    summary.http.merge(&http);
                    summary.tls.merge(&tls);
                }
                Err(_) => return Err(PipelineError::Worker("a worker panicked".into())),
            }
        }
        let collected = collector
            .join()
            .map_err(|_| PipelineError::Worker("the collector panicked".into()))?;
        let fed = fed?;
        summary.stateful_keys_forgotten = collected.map_err(PipelineError::Output)?;
        summary.frames = fed.read.frames;
        summary.bytes = fed.read.bytes;
        summary.filtered_out = fed.read.filtered_out;
        summary.decode = fed.decode;
        summary.live = fed.live;
        summary.warnings = fed.read.warnings.iter().map(ToString::to_string).collect();
        if summary.frames > 0 && summary.filtered_out == summary.frames {
            summary.warnings.push(format!(
                "the filter removed all {} frames: a BPF filter sees the outermost headers, so \
                 tunnelled traffic needs a filter on the tunnel (`udp port 4789` for VXLAN, `proto gre`, \
                 `geneve and tcp port 80`, `mpls and tcp port 80`, `vlan and tcp port 80`)",
                summary.frames
            ));
        }
        summary.warnings.extend(summary.decode.warnings());
        Ok(summary)
    })
}

/// The reader thread's work offline: frames → segments → per-worker batches.
fn read_files<'s>(
    captures: &'s CaptureSet,
    cfg: &PipelineConfig,
    shards: &mut Shards<'s>,
    stop: &AtomicBool,
    progress: impl FnMut(u64),
) -> Result<Fed, PipelineError> {
    let mut decoder = Decoder::with_fragment_bytes(fragment_share(cfg.reassembly.memory_budget));
    let mut order: u64 = 0;
    let read = captures.for_each_frame_until(
        cfg.filter.as_deref(),
        stop,
        |frame| {
            if shards.closed {
                return;
            }
            order += 1;
            if let Some(seg) = decoder.decode(frame) {
                shards.push(order, seg);
            }
            if order.is_multiple_of(WATERMARK_EVERY) {
                shards.flush_all(order, None);
            }
        },
        progress,
        // Keys met mid-file serve the connections whose packets follow them.
        |text| cfg.tls.keys.add_text(text),
    );
    shards.flush_all(order, None);
    Ok(Fed {
        read: read?,
        decode: decoder.finish().clone(),
        live: None,
    })
}

/// The capture thread's work live: packets → segments (copied out of libpcap's buffer) →
/// per-worker batches, never waiting on a worker. Every [`LIVE_TICK`] the workers get the
/// time, whether packets came or not, so quiet connections release their exchanges.
fn read_live(
    capture: &mut LiveCapture,
    shards: &mut Shards<'static>,
    stop: &AtomicBool,
    counters: &LiveCounters,
    packets: Option<&PacketRing>,
    frag_bytes: usize,
) -> Result<Fed, PipelineError> {
    let mut decoder = Decoder::with_fragment_bytes(frag_bytes);
    let mut order: u64 = 0;
    let mut bytes: u64 = 0;
    let mut last_tick = Instant::now();
    let mut last_stats = Instant::now();
    let update_stats = |capture: &mut LiveCapture, decoder: &Decoder, dropped: u64| {
        if let Some(k) = capture.stats() {
            counters
                .kernel_received
                .store(k.received, Ordering::Relaxed);
            counters.kernel_dropped.store(k.dropped, Ordering::Relaxed);
            counters
                .interface_dropped
                .store(k.interface_dropped, Ordering::Relaxed);
        }
        let errors = decoder.stats().errors.values().sum();
        counters.decode_errors.store(errors, Ordering::Relaxed);
        counters.internal_dropped.store(dropped, Ordering::Relaxed);
    };
    // After a stop request, packets the kernel still holds (up to one read timeout's
    // worth, in a block not yet handed over) are read before the capture ends.
    let mut drain_until: Option<Instant> = None;
    let result = loop {
        if shards.closed {
            break Ok(());
        }
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(Instant::now() + capture.read_timeout() * 2);
        }
        if drain_until.is_some_and(|t| Instant::now() >= t) {
            break Ok(());
        }
        match capture.next_frame() {
            Ok(Some(frame)) => {
                order += 1;
                bytes += frame.data.len() as u64;
                counters.frames.store(order, Ordering::Relaxed);
                counters.bytes.store(bytes, Ordering::Relaxed);
                if let Some(seg) = decoder.decode(&frame) {
                    if let Some(ring) = packets {
                        ring.push(&frame, &seg);
                    }
                    shards.push(order, seg.into_owned());
                }
            }
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        // One clock read per packet serves both timers.
        let now = Instant::now();
        if now.duration_since(last_tick) >= LIVE_TICK {
            last_tick = now;
            shards.flush_all(order, Some(Timestamp::now()));
        }
        if now.duration_since(last_stats) >= LIVE_STATS_EVERY {
            last_stats = now;
            update_stats(capture, &decoder, shards.dropped);
        }
    };
    // Everything read so far reaches the workers, whatever it costs to wait now.
    shards.lossy = false;
    shards.flush_all(order, Some(Timestamp::now()));
    update_stats(capture, &decoder, shards.dropped);
    result?;
    let live = counters.snapshot();
    Ok(Fed {
        read: ReadSummary {
            frames: order,
            bytes,
            ..ReadSummary::default()
        },
        decode: decoder.finish().clone(),
        live: Some(live),
    })
}

/// A worker: reassembles and parses its share of the connections.
fn worker(
    id: usize,
    rx: Receiver<Batch<'_>>,
    out: Sender<WorkerOutput>,
    mut table: FlowTable<Session>,
    engine: Option<Engine>,
    redact: Option<Redactor>,
    gate: &Gate,
) -> (ReassemblyStats, SynTargets, HttpStats, TlsStats) {
    let analyze = |mut exchange: Exchange| {
        let mut findings = engine
            .as_ref()
            .map(|e| e.check(&exchange))
            .unwrap_or_default();
        if let Some(r) = &redact {
            r.exchange(&mut exchange);
            for f in &mut findings {
                f.evidence = r.evidence(&f.evidence);
            }
        }
        Analyzed { exchange, findings }
    };
    let send = |exchanges: Vec<(u64, Analyzed)>, mark: Mark| {
        out.send(WorkerOutput {
            worker: id,
            exchanges,
            mark,
        })
        .is_ok()
    };
    let mut sink = HttpOutput::default();
    let mut last_order = 0;
    'batches: for batch in rx {
        let mut released = Vec::new();
        for (order, seg) in &batch.segments {
            table.segment(seg, *order, &mut sink);
            released.extend(sink.exchanges.drain(..).map(|e| (*order, analyze(e))));
            last_order = *order;
            if released.len() >= OUTPUT_CHUNK
                && !send(std::mem::take(&mut released), (*order, FRAME_MAX))
            {
                break 'batches;
            }
        }
        let watermark = batch.upto.max(last_order);
        if let Some(now) = batch.tick {
            table.tick(now, watermark, &mut sink);
            released.extend(sink.exchanges.drain(..).map(|e| (watermark, analyze(e))));
        }
        if !send(released, (watermark, FRAME_MAX)) {
            break;
        }
    }
    // End of input: connections close in the order of their first frame, and their
    // exchanges go on in chunks as they come, each with how far the output is complete.
    let mut released = Vec::new();
    while let Some(frame) = table.finish_next(u64::MAX, &mut sink) {
        released.extend(sink.exchanges.drain(..).map(|e| (u64::MAX, analyze(e))));
        if released.len() >= OUTPUT_CHUNK {
            let mark = (u64::MAX, frame);
            if !send(std::mem::take(&mut released), mark) {
                break;
            }
            gate.wait_turn(mark);
        }
    }
    table.finish(u64::MAX, &mut sink);
    released.extend(sink.exchanges.drain(..).map(|e| (u64::MAX, analyze(e))));
    send(released, (u64::MAX, FRAME_MAX));
    (table.stats, table.syn_targets, sink.stats, sink.tls)
}

/// Merges worker outputs into one order, runs the stateful rules, and feeds the sink.
fn collect(
    rx: Receiver<WorkerOutput>,
    workers: usize,
    mut sink: impl FnMut(Output) -> std::io::Result<()>,
    mut stateful: Option<StatefulEngine>,
    stop: Arc<AtomicBool>,
    gate: &Gate,
) -> std::io::Result<u64> {
    let _close = CloseOnDrop(gate);
    let mut marks: Vec<Mark> = vec![(0, FrameRef::default()); workers];
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut failed: Option<std::io::Error> = None;
    let mut deliver = |mut item: Analyzed, failed: &mut Option<std::io::Error>| {
        if let Some(engine) = stateful.as_mut() {
            let here = ExchangeRef::of(&item.exchange);
            for (at, finding) in engine.observe(&item.exchange) {
                if at == here {
                    item.findings.push(finding);
                } else if failed.is_none()
                    && let Err(e) = sink(Output::Settled(at, finding))
                {
                    *failed = Some(e);
                }
            }
        }
        if failed.is_none()
            && let Err(e) = sink(Output::Exchange(item))
        {
            stop.store(true, Ordering::Relaxed);
            *failed = Some(e);
        }
    };
    for msg in rx {
        for (at, exchange) in msg.exchanges {
            let key = (
                at,
                exchange.exchange.connection.first_frame,
                exchange.exchange.index,
            );
            heap.push(Reverse(Pending { key, exchange }));
        }
        marks[msg.worker] = msg.mark;
        let low = marks.iter().copied().min().unwrap_or_default();
        while heap.peek().is_some_and(|p| (p.0.key.0, p.0.key.1) <= low) {
            let Some(Reverse(p)) = heap.pop() else { break };
            deliver(p.exchange, &mut failed);
        }
        gate.update(low, heap.len());
    }
    while let Some(Reverse(p)) = heap.pop() {
        deliver(p.exchange, &mut failed);
    }
    if let Some(engine) = stateful.as_mut() {
        for (at, finding) in engine.finish() {
            if failed.is_none()
                && let Err(e) = sink(Output::Settled(at, finding))
            {
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(stateful.as_ref().map_or(0, StatefulEngine::keys_forgotten)),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::net::SocketAddr;

    use super::*;
    use crate::decode::TcpFlags;

    fn segment(port: u16) -> Segment<'static> {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        Segment {
            frame: FrameRef::default(),
            ts: Timestamp::ZERO,
            src: addr(port),
            dst: addr(80),
            seq: 1,
            ack: 0,
            flags: TcpFlags(TcpFlags::ACK),
            payload: Cow::Owned(vec![b'x'; 100]),
            missing: 0,
        }
    }

    #[test]
    fn live_shards_drop_and_count_instead_of_waiting() {
        // One worker whose queue holds one batch and is never read.
        let (tx, rx) = bounded::<Batch<'static>>(1);
        let mut shards = Shards::new(vec![tx], true);
        for order in 1..=3 {
            shards.push(order, segment(1000));
            shards.flush_all(order, None);
        }
        // The first batch fits; the two others are dropped without blocking.
        assert_eq!(shards.dropped, 2);
        assert_eq!(rx.len(), 1);
        assert!(!shards.closed);
        drop(rx);
        shards.flush_all(4, None);
        assert!(shards.closed, "a gone worker stops the reader");
    }

    #[test]
    fn offline_shards_wait_for_room() {
        let (tx, rx) = bounded::<Batch<'static>>(1);
        let reader = std::thread::spawn(move || {
            let mut shards = Shards::new(vec![tx], false);
            for order in 1..=3 {
                shards.push(order, segment(1000));
                shards.flush_all(order, None);
            }
            shards.dropped
        });
        let got: usize = rx.iter().map(|b| b.segments.len()).sum();
        assert_eq!(reader.join().ok(), Some(0));
        assert_eq!(got, 3);
    }
}
