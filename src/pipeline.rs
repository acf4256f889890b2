//! Wires the stages together on threads: the reader thread walks the capture and decodes
//! frames; connections are sharded across worker threads by a symmetric flow hash (so a
//! connection always lands on the same worker); a collector merges the workers' exchanges
//! back into one deterministic order (the frame at which each exchange was complete, then
//! connection and index) and hands them to the sink.
//!
//! Queues are bounded and, for files, block when full: nothing read is ever dropped, and
//! memory stays flat whatever the size of the capture.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::{CaptureError, CaptureSet, FrameRef, ReadSummary};
use crate::decode::{DecodeStats, Decoder, Segment};
use crate::http::{Exchange, HttpConfig, HttpConnection, HttpOutput, HttpStats};
use crate::reassembly::{FlowKey, FlowTable, ReassemblyConfig, ReassemblyStats};
use crate::redact::Redactor;
use crate::rules::{Engine, ExchangeRef, Finding, RuleSet, StatefulEngine};

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
    pub http: HttpStats,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
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
}

const BATCH_SEGMENTS: usize = 512;
const BATCH_BYTES: usize = 512 * 1024;
/// How often (in frames) every worker is told how far the reader got, so the collector can
/// release output even from workers that receive no traffic.
const WATERMARK_EVERY: u64 = 8192;

/// What a worker hands to the collector.
struct WorkerOutput {
    worker: usize,
    /// Exchanges with the frame order at which they were released.
    exchanges: Vec<(u64, Analyzed)>,
    watermark: u64,
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

/// Runs the offline pipeline over `captures`, handing every exchange to `sink` in a
/// deterministic order. `progress` gets bytes read so far, now and then.
pub fn run(
    captures: &CaptureSet,
    cfg: &PipelineConfig,
    sink: impl FnMut(Output) -> std::io::Result<()> + Send,
    progress: impl FnMut(u64),
) -> Result<RunSummary, PipelineError> {
    let workers = if cfg.workers == 0 {
        thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.workers
    };
    let stop = Arc::new(AtomicBool::new(false));

    thread::scope(|scope| {
        let (out_tx, out_rx) = bounded::<WorkerOutput>(workers * 8);
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = bounded::<Batch<'_>>(8);
            senders.push(tx);
            let out_tx = out_tx.clone();
            let http = cfg.http;
            let reassembly = cfg.reassembly;
            let engine = cfg.rules.as_deref().map(Engine::new);
            let redact = cfg.redact.clone();
            handles
                .push(scope.spawn(move || worker(w, rx, out_tx, reassembly, http, engine, redact)));
        }
        drop(out_tx);

        let collector_stop = Arc::clone(&stop);
        let stateful = cfg.rules.as_deref().map(StatefulEngine::new);
        let collector =
            scope.spawn(move || collect(out_rx, workers, sink, stateful, collector_stop));

        let read = read_and_shard(captures, cfg, &senders, &stop, progress);
        drop(senders);

        let mut summary = RunSummary::default();
        for h in handles {
            match h.join() {
                Ok((r, http)) => {
                    summary.reassembly.merge(&r);
                    summary.http.merge(&http);
                }
                Err(_) => return Err(PipelineError::Worker("a worker panicked".into())),
            }
        }
        let collected = collector
            .join()
            .map_err(|_| PipelineError::Worker("the collector panicked".into()))?;
        let (read, decode) = read?;
        collected.map_err(PipelineError::Output)?;
        summary.frames = read.frames;
        summary.bytes = read.bytes;
        summary.filtered_out = read.filtered_out;
        summary.decode = decode;
        summary.warnings = read.warnings.iter().map(ToString::to_string).collect();
        Ok(summary)
    })
}

/// The reader thread's work: frames → segments → per-worker batches.
fn read_and_shard<'s>(
    captures: &'s CaptureSet,
    cfg: &PipelineConfig,
    senders: &[Sender<Batch<'s>>],
    stop: &AtomicBool,
    progress: impl FnMut(u64),
) -> Result<(ReadSummary, DecodeStats), CaptureError> {
    let workers = senders.len();
    let mut decoder = Decoder::new();
    let mut batches: Vec<Batch<'s>> = (0..workers).map(|_| Batch::default()).collect();
    let mut order: u64 = 0;
    let mut stopped = false;
    let flush = |batch: &mut Batch<'s>, tx: &Sender<Batch<'s>>, upto: u64| -> bool {
        let mut full = std::mem::take(batch);
        full.upto = upto;
        tx.send(full).is_ok()
    };
    let read = captures.for_each_frame(
        cfg.filter.as_deref(),
        |frame| {
            if stopped {
                return;
            }
            order += 1;
            if let Some(seg) = decoder.decode(frame) {
                let (key, _) = FlowKey::of(seg.src, seg.dst);
                let w = (key.shard_hash() % workers as u64) as usize;
                let batch = &mut batches[w];
                batch.bytes += seg.payload.len();
                batch.segments.push((order, seg));
                if batch.segments.len() >= BATCH_SEGMENTS || batch.bytes >= BATCH_BYTES {
                    stopped |= !flush(batch, &senders[w], order);
                }
            }
            if order.is_multiple_of(WATERMARK_EVERY) {
                if stop.load(Ordering::Relaxed) {
                    stopped = true;
                }
                for (w, tx) in senders.iter().enumerate() {
                    stopped |= !flush(&mut batches[w], tx, order);
                }
            }
        },
        progress,
    );
    for (w, tx) in senders.iter().enumerate() {
        flush(&mut batches[w], tx, order);
    }
    let read = read?;
    Ok((read, decoder.finish().clone()))
}

/// A worker: reassembles and parses its share of the connections.
fn worker(
    id: usize,
    rx: Receiver<Batch<'_>>,
    out: Sender<WorkerOutput>,
    reassembly: ReassemblyConfig,
    http: HttpConfig,
    engine: Option<Engine>,
    redact: Option<Redactor>,
) -> (ReassemblyStats, HttpStats) {
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
    let mut table: FlowTable<HttpConnection> = FlowTable::new(reassembly, http);
    let mut sink = HttpOutput::default();
    let mut last_order = 0;
    for batch in rx {
        let mut released = Vec::new();
        for (order, seg) in &batch.segments {
            table.segment(seg, *order, &mut sink);
            released.extend(sink.exchanges.drain(..).map(|e| (*order, analyze(e))));
            last_order = *order;
        }
        let watermark = batch.upto.max(last_order);
        if out
            .send(WorkerOutput {
                worker: id,
                exchanges: released,
                watermark,
            })
            .is_err()
        {
            break;
        }
    }
    table.finish(u64::MAX, &mut sink);
    let rest: Vec<(u64, Analyzed)> = sink
        .exchanges
        .drain(..)
        .map(|e| (u64::MAX, analyze(e)))
        .collect();
    let _ = out.send(WorkerOutput {
        worker: id,
        exchanges: rest,
        watermark: u64::MAX,
    });
    (table.stats, sink.stats)
}

/// Merges worker outputs into one order, runs the stateful rules, and feeds the sink.
fn collect(
    rx: Receiver<WorkerOutput>,
    workers: usize,
    mut sink: impl FnMut(Output) -> std::io::Result<()>,
    mut stateful: Option<StatefulEngine>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut marks = vec![0u64; workers];
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
        marks[msg.worker] = msg.watermark;
        let low = marks.iter().copied().min().unwrap_or(0);
        while heap.peek().is_some_and(|p| p.0.key.0 <= low) {
            let Some(Reverse(p)) = heap.pop() else { break };
            deliver(p.exchange, &mut failed);
        }
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
        None => Ok(()),
    }
}
