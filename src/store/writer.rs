//! The writer thread: owns the write connection, receives analysed exchanges and settled
//! findings through a bounded channel (the sender blocks when it is full, so an offline run
//! never loses data), and inserts them in batches — one transaction per `batch_rows` rows
//! or `batch_time`, whichever comes first — with cached prepared statements. Each commit
//! also brings the run's counters and the rollups up to date (findings per rule and
//! endpoint, per-endpoint exchanges/status mix/latency histogram, counts per time bucket,
//! findings per rule and severity), so a reader (or a database left by a killed process)
//! always sees rows, rollups and counters that agree, and the dashboard never aggregates the
//! big tables per request.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::latency::Histogram;
use super::queue_bytes::{Charge, QueueBytes};
use super::schema::{SERIES_WIDTHS_NS, bucket_of, severity_key, status_key};
use super::{RunId, StoreError};
use crate::capture::FrameRef;
use crate::http::{Message, TlsInfo, content};
use crate::packets::StoredPacket;
use crate::pipeline::{Analyzed, LiveSummary, RunSummary};
use crate::redact::Redactor;
use crate::report::exchange_json::{ExchangeJson, endpoint};
use crate::report::sarif::path_template;
use crate::rules::{ExchangeRef, Finding, Severity, Side};

/// Tuning of the writer.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Rows (exchanges + findings) per transaction at most.
    pub batch_rows: usize,
    /// A transaction is committed at most this long after it began.
    pub batch_time: Duration,
    /// Messages waiting in the channel before `write` blocks.
    pub queue: usize,
    /// Bytes of decoded body kept per message.
    pub preview_bytes: usize,
    /// Bytes a compressed body is decoded to, at most, before its preview is cut (JSON
    /// fields can only be masked in a body that decodes whole).
    pub decode_cap: usize,
    /// Masks configured JSON fields in bodies that were compressed on the wire (the
    /// pipeline has already masked everything it could see).
    pub redact: Option<Redactor>,
    /// Whether `redact` masks JSON fields (the configuration lists some). Only then must a
    /// compressed body be decoded whole (up to `decode_cap`) before its preview is cut;
    /// otherwise decoding stops after `preview_bytes`, which is most of the writer's
    /// decoding work on compressed static files.
    pub mask_json: bool,
    /// Bytes of packets the database keeps (the packet store of live runs, all runs
    /// together); past it the packets of the oldest connections are deleted.
    pub packet_cap: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_rows: 5000,
            batch_time: Duration::from_millis(200),
            queue: 1024,
            preview_bytes: 4096,
            decode_cap: 256 * 1024,
            redact: None,
            mask_json: false,
            packet_cap: crate::packets::DEFAULT_DISK_CAP,
        }
    }
}

/// What a writer wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Written {
    pub run: RunId,
    pub connections: u64,
    pub exchanges: u64,
    pub findings: u64,
    /// Settled findings whose exchange was not found (stored without one).
    pub unresolved: u64,
    pub transactions: u64,
    /// Packets kept for the packet store, and connections whose packets its cap evicted.
    pub packets: u64,
    pub packet_evictions: u64,
}

// Nearly every message is an exchange: boxing would add an allocation per exchange.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Exchange(Row, Charge),
    Settled(ExchangeRef, Finding),
    /// A finding about the run as a whole (no exchange).
    Run(Finding),
    Interrupted(&'static str),
    Live(LiveSummary),
    /// Packets of a flagged connection (by its first frame), for the packet store.
    Packets(FrameRef, Vec<StoredPacket>, Charge),
    Finish(Box<RunSummary>),
}

/// The handle the pipeline's sink writes through.
pub struct Writer {
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<Result<Written, StoreError>>>,
    path: PathBuf,
    run: RunId,
    /// What [`prepare`] needs: rows are prepared on the caller's thread, so that the
    /// writer thread (the one that cannot be parallelised) only runs SQLite.
    prep: Arc<Prep>,
    queued: Arc<QueueBytes>,
}

/// The run's capture names and the writer's settings, shared with the callers.
struct Prep {
    names: Vec<String>,
    cfg: WriterConfig,
}

impl Writer {
    pub(super) fn spawn(
        conn: Connection,
        path: PathBuf,
        run: RunId,
        names: Vec<String>,
        cfg: WriterConfig,
    ) -> Writer {
        let (tx, rx) = bounded(cfg.queue.max(1));
        let prep = Arc::new(Prep {
            names,
            cfg: cfg.clone(),
        });
        let state = State {
            conn,
            path: path.clone(),
            run,
            cfg,
            connections: HashMap::new(),
            rollups: HashMap::new(),
            endpoints: HashMap::new(),
            series: HashMap::new(),
            rule_counts: HashMap::new(),
            written: Written {
                run,
                ..Written::default()
            },
            first_ts: None,
            last_ts: None,
            packet_total: None,
            packet_bytes: 0,
        };
        let handle = std::thread::Builder::new()
            .name("wirelint-db".into())
            .spawn(move || state.run(&rx));
        match handle {
            Ok(handle) => Writer {
                tx: Some(tx),
                handle: Some(handle),
                path,
                run,
                prep,
                queued: Arc::default(),
            },
            // No thread: every write reports the writer stopped.
            Err(_) => Writer {
                tx: None,
                handle: None,
                path,
                run,
                prep,
                queued: Arc::default(),
            },
        }
    }

    pub fn run_id(&self) -> RunId {
        self.run
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let stopped = || StoreError::WriterStopped {
            path: self.path.clone(),
        };
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(msg)
            .map_err(|_| stopped())
    }

    /// Takes `bytes` of the queue's byte bound ([`QueueBytes`]), waiting while it is full.
    fn charge(&self, bytes: usize) -> Result<Charge, StoreError> {
        let stopped = || self.handle.as_ref().is_none_or(|h| h.is_finished());
        QueueBytes::charge(&self.queued, bytes, stopped).ok_or_else(|| StoreError::WriterStopped {
            path: self.path.clone(),
        })
    }

    /// Prepares an exchange's row (JSON, previews, keys) on this thread and queues it with
    /// its findings (blocks while the queue is full, in messages or in bytes).
    pub fn write(&self, item: Analyzed) -> Result<(), StoreError> {
        let row = prepare(item, &self.prep.names, &self.prep.cfg);
        let charge = self.charge(row.bytes())?;
        self.send(Msg::Exchange(row, charge))
    }

    /// Queues a finding settled later about an exchange already written.
    pub fn settled(&self, at: ExchangeRef, finding: Finding) -> Result<(), StoreError> {
        self.send(Msg::Settled(at, finding))
    }

    /// Queues a run-scope finding (stored with no exchange).
    pub fn run_finding(&self, finding: Finding) -> Result<(), StoreError> {
        self.send(Msg::Run(finding))
    }

    /// Marks the run as interrupted by `reason` (a signal name); call before
    /// [`Writer::finish`], which still records the summary of what was read.
    pub fn interrupted(&self, reason: &'static str) -> Result<(), StoreError> {
        self.send(Msg::Interrupted(reason))
    }

    /// Records a live capture's counters on the run (in the next commit), so that the
    /// dashboard shows packets and drops while the capture goes on.
    pub fn live_counters(&self, counters: LiveSummary) -> Result<(), StoreError> {
        self.send(Msg::Live(counters))
    }

    /// Queues packets of the connection that began at `first_frame` (whose exchange with a
    /// finding was written before) for the packet store.
    pub fn packets(
        &self,
        first_frame: FrameRef,
        packets: Vec<StoredPacket>,
    ) -> Result<(), StoreError> {
        let bytes = packets
            .iter()
            .map(|p| p.data.len() + std::mem::size_of::<StoredPacket>())
            .sum();
        let charge = self.charge(bytes)?;
        self.send(Msg::Packets(first_frame, packets, charge))
    }

    /// Writes what is queued, records the run's summary and end, and returns the counts.
    pub fn finish(mut self, summary: &RunSummary) -> Result<Written, StoreError> {
        // A failed send means the thread stopped: joining returns its error.
        let _ = self.send(Msg::Finish(Box::new(summary.clone())));
        self.join()
    }

    /// Writes what is queued without marking the run finished (an interrupted run).
    pub fn close(mut self) -> Result<Written, StoreError> {
        self.join()
    }

    fn join(&mut self) -> Result<Written, StoreError> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(StoreError::WriterStopped {
                    path: self.path.clone(),
                })
            }),
            None => Err(StoreError::WriterStopped {
                path: self.path.clone(),
            }),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.join();
        }
    }
}

/// Findings of one (rule, host, method, path template) since the last commit.
struct Rollup {
    severity: i64,
    count: i64,
    first_ts: i64,
    last_ts: i64,
    sample: i64,
}

/// Connection rows remembered before the cache is cleared (misses are looked up).
const CONNECTION_CACHE: usize = 100_000;

/// Endpoint rollups kept in memory between commits before the cache is cleared (a miss
/// reads the row back: this writer is the only one writing its run's rows).
const ENDPOINT_CACHE: usize = 20_000;

/// (host, method, path template), `''` for what the exchange lacked.
type EndpointKey = (String, String, String);

/// An endpoint's whole rollup row for this run.
#[derive(Default)]
struct Endpoint {
    exchanges: i64,
    /// 1xx..5xx, then no status.
    status: [i64; 6],
    findings: i64,
    latency: Histogram,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    /// Changed since the last commit.
    dirty: bool,
}

struct State {
    conn: Connection,
    path: PathBuf,
    run: RunId,
    cfg: WriterConfig,
    connections: HashMap<FrameRef, i64>,
    rollups: HashMap<(String, String, String, String), Rollup>,
    endpoints: HashMap<EndpointKey, Endpoint>,
    /// (bucket width, bucket start, series key) -> count since the last commit.
    series: HashMap<(i64, i64, i64), i64>,
    /// (rule, severity rank) -> (category, findings since the last commit).
    rule_counts: HashMap<(String, i64), (String, i64)>,
    written: Written,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    /// Bytes of packets in the database, all runs (read at the first packet).
    packet_total: Option<i64>,
    /// Bytes of packets this run kept.
    packet_bytes: i64,
}

/// The exchange's scalar columns that findings copy.
struct ExchangeKeys {
    id: i64,
    host: Option<String>,
    method: Option<String>,
    status: Option<i64>,
    template: Option<String>,
    ts: i64,
    /// `HTTP/1.1`, `HTTP/2`, … (of the request, else the response).
    version: Option<String>,
    /// The connection's TLS protocol (`TLS 1.3`); `None` for cleartext.
    tls: Option<String>,
}

fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Error => 2,
    }
}

fn side_name(s: Option<Side>) -> Option<&'static str> {
    s.map(|s| match s {
        Side::Request => "request",
        Side::Response => "response",
    })
}

fn u64_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const INSERT_CONNECTION: &str = "INSERT INTO connections \
    (run_id, first_file, first_frame, client, server, first_ts, tls, mid_stream, \
     tls_protocol, tls_cipher, tls_alpn, tls_sni) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
    ON CONFLICT (run_id, first_file, first_frame) DO NOTHING";
const SELECT_CONNECTION: &str =
    "SELECT id FROM connections WHERE run_id = ?1 AND first_file = ?2 AND first_frame = ?3";
const INSERT_EXCHANGE: &str = "INSERT INTO exchanges \
    (run_id, connection_id, idx, file, method, host, target, path, path_template, status, \
     req_frame, resp_frame, first_frame, last_frame, req_first_ts, req_last_ts, \
     resp_first_ts, resp_last_ts, latency_ns, ts, req_body_bytes, resp_body_bytes, \
     req_preview, resp_preview, req_preview_cut, resp_preview_cut, anomalies, \
     finding_count, json, version) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
     ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)";
const INSERT_FINDING: &str = "INSERT INTO findings \
    (run_id, exchange_id, rule, severity, category, message, evidence, side, related, \
     host, method, status, path_template, ts, span, version, tls) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
const SELECT_EXCHANGE_BY_REF: &str = "SELECT e.id, e.host, e.method, e.status, \
    e.path_template, e.ts, e.version, c.tls_protocol FROM exchanges e JOIN connections c ON c.id = e.connection_id \
    WHERE c.run_id = ?1 AND c.first_file = ?2 AND c.first_frame = ?3 AND e.idx = ?4";
const UPSERT_ROLLUP: &str = "INSERT INTO rollups \
    (run_id, rule, host, method, path_template, severity, count, first_ts, last_ts, \
     sample_exchange_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
    ON CONFLICT (run_id, rule, host, method, path_template) DO UPDATE SET \
     count = count + excluded.count, \
     severity = max(severity, excluded.severity), \
     first_ts = min(first_ts, excluded.first_ts), \
     last_ts = max(last_ts, excluded.last_ts), \
     sample_exchange_id = coalesce(sample_exchange_id, excluded.sample_exchange_id)";

const UPSERT_ISSUE: &str = "INSERT INTO issues \
    (rule, host, method, path_template, severity, count, last_ts) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
    ON CONFLICT (rule, host, path_template, method) DO UPDATE SET \
     count = count + excluded.count, \
     severity = max(severity, excluded.severity), \
     last_ts = max(coalesce(last_ts, excluded.last_ts), coalesce(excluded.last_ts, last_ts))";

const UPSERT_ENDPOINT: &str = "INSERT OR REPLACE INTO endpoints \
    (run_id, host, method, path_template, exchanges, status_1xx, status_2xx, status_3xx, \
     status_4xx, status_5xx, status_none, findings, latency_count, latency_hist, first_ts, \
     last_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
const SELECT_ENDPOINT: &str = "SELECT exchanges, status_1xx, status_2xx, status_3xx, \
    status_4xx, status_5xx, status_none, findings, latency_hist, first_ts, last_ts \
    FROM endpoints WHERE run_id = ?1 AND host = ?2 AND method = ?3 AND path_template = ?4";
const UPSERT_SERIES: &str = "INSERT INTO series (run_id, width_ns, bucket, key, count) \
    VALUES (?1, ?2, ?3, ?4, ?5) \
    ON CONFLICT (run_id, width_ns, bucket, key) DO UPDATE SET count = count + excluded.count";
const UPSERT_RULE_COUNT: &str = "INSERT INTO rule_counts \
    (run_id, rule, severity, category, count) VALUES (?1, ?2, ?3, ?4, ?5) \
    ON CONFLICT (run_id, rule, severity) DO UPDATE SET count = count + excluded.count";

/// A message's body as stored: decoded, masked, cut to the preview size.
struct Preview {
    bytes: Option<Vec<u8>>,
    cut: bool,
}

/// A connection's row, as first seen.
struct ConnectionRow {
    first_frame: FrameRef,
    client: String,
    server: String,
    first_ts: i64,
    tls: bool,
    mid_stream: bool,
    /// What TLS negotiated (no secrets): protocol, cipher suite, ALPN, SNI.
    tls_info: Option<TlsInfo>,
}

/// An exchange's column values, computed before it reaches the writer thread.
struct Row {
    connection: ConnectionRow,
    index: u32,
    file: u16,
    method: Option<String>,
    host: Option<String>,
    target: Option<String>,
    path: Option<String>,
    template: Option<String>,
    status: Option<i64>,
    version: Option<String>,
    req_frame: Option<i64>,
    resp_frame: Option<i64>,
    first_frame: Option<i64>,
    last_frame: Option<i64>,
    req_first_ts: Option<i64>,
    req_last_ts: Option<i64>,
    resp_first_ts: Option<i64>,
    resp_last_ts: Option<i64>,
    latency: Option<i64>,
    ts: i64,
    req_body: Option<i64>,
    resp_body: Option<i64>,
    req_preview: Preview,
    resp_preview: Preview,
    anomalies: String,
    json: String,
    findings: Vec<Finding>,
}

impl Row {
    /// Memory the row holds, roughly: its strings, previews and findings.
    fn bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let preview = |p: &Preview| p.bytes.as_ref().map_or(0, Vec::len);
        std::mem::size_of::<Row>()
            + self.json.len()
            + self.anomalies.len()
            + text(&self.method)
            + text(&self.host)
            + text(&self.target)
            + text(&self.path)
            + text(&self.template)
            + preview(&self.req_preview)
            + preview(&self.resp_preview)
            + self
                .findings
                .iter()
                .map(|f| std::mem::size_of::<Finding>() + f.message.len() + f.evidence.len())
                .sum::<usize>()
    }
}

/// Characters of a host kept as a grouping key (DNS names have at most 253).
const HOST_MAX: usize = 255;

/// Computes an exchange's row: everything but the SQL.
fn prepare(item: Analyzed, names: &[String], cfg: &WriterConfig) -> Row {
    let Analyzed {
        mut exchange,
        findings,
    } = item;
    let json =
        serde_json::to_string(&ExchangeJson::new(&exchange, names)).unwrap_or_else(|_| "{}".into());
    let c = &exchange.connection;
    let connection = ConnectionRow {
        first_frame: c.first_frame,
        client: endpoint(&c.client),
        server: endpoint(&c.server),
        first_ts: c.first_ts.as_nanos(),
        tls: c.tls,
        mid_stream: c.mid_stream,
        tls_info: c.tls_info.clone(),
    };
    let req = exchange.request.as_ref();
    let resp = exchange.response.as_ref();
    let file = req
        .or(resp)
        .map_or(exchange.connection.first_frame.file, |m| m.head_frame.file);
    let target = req.and_then(Message::target);
    // An exchange read from a HAR file has no frames: NULL, as the dashboard expects.
    let wire = exchange.has_wire_bytes();
    let frame = |m: Option<&Message>, which: fn(&Message) -> FrameRef| {
        m.filter(|_| wire).map(|m| u64_sql(which(m).number))
    };
    let mut row = Row {
        connection,
        index: exchange.index,
        file,
        method: req.and_then(Message::method).map(str::to_string),
        // A grouping key like the template: a name longer than DNS allows is cut.
        host: req
            .and_then(|m| m.host())
            .map(|h| crate::rules::syntax::stateful::clip(h, HOST_MAX)),
        path: target.map(|t| t.split('?').next().unwrap_or(t).to_string()),
        template: target.map(path_template),
        target: target.map(str::to_string),
        status: resp.and_then(Message::status).map(i64::from),
        version: req
            .or(resp)
            .map(Message::version)
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        req_frame: frame(req, |m| m.head_frame),
        resp_frame: frame(resp, |m| m.head_frame),
        first_frame: frame(req.or(resp), |m| m.first_frame),
        last_frame: frame(resp.or(req), |m| m.last_frame),
        req_first_ts: req.map(|m| m.first_ts.as_nanos()),
        req_last_ts: req.map(|m| m.last_ts.as_nanos()),
        resp_first_ts: resp.map(|m| m.first_ts.as_nanos()),
        resp_last_ts: resp.map(|m| m.last_ts.as_nanos()),
        latency: match (req, resp) {
            (Some(q), Some(p)) => Some(p.first_ts.as_nanos() - q.last_ts.as_nanos()),
            _ => None,
        },
        ts: req
            .or(resp)
            .map_or(exchange.connection.first_ts, |m| m.head_ts)
            .as_nanos(),
        req_body: req.map(|m| u64_sql(m.body.size)),
        resp_body: resp.map(|m| u64_sql(m.body.size)),
        req_preview: Preview {
            bytes: None,
            cut: false,
        },
        resp_preview: Preview {
            bytes: None,
            cut: false,
        },
        anomalies: exchange.anomaly_names().join(" "),
        json,
        findings,
    };
    if let Some(m) = exchange.request.as_mut() {
        row.req_preview = preview(cfg, m);
    }
    if let Some(m) = exchange.response.as_mut() {
        row.resp_preview = preview(cfg, m);
    }
    row
}

/// Whether a body labelled `content_type` is worth a text preview. Images, audio, video,
/// fonts, archives and other binary types are not: shown as text they are noise, and they
/// were a quarter of the preview bytes on real traffic (so a quarter of the decoding and
/// writing too). An unlabelled body is previewed.
fn textual(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    match kind {
        "text" | "message" | "" => true,
        "application" => [
            "json",
            "xml",
            "javascript",
            "ecmascript",
            "x-www-form-urlencoded",
            "csv",
            "yaml",
            "graphql",
            "sql",
            "x-sh",
            "x-ndjson",
        ]
        .iter()
        .any(|t| sub.contains(t)),
        "multipart" => sub == "form-data",
        _ => false,
    }
}

fn preview(cfg: &WriterConfig, m: &mut Message) -> Preview {
    if m.body.size == 0 && m.body.captured.is_empty() {
        return Preview {
            bytes: None,
            cut: false,
        };
    }
    if !textual(m.header("content-type")) {
        return Preview {
            bytes: None,
            cut: true,
        };
    }
    let encoded = m
        .header_values("content-encoding")
        .flat_map(|v| v.split(','))
        .any(|c| !c.trim().is_empty() && !c.trim().eq_ignore_ascii_case("identity"));
    let mask_json = cfg.mask_json && cfg.redact.is_some();
    let cap = if mask_json {
        cfg.decode_cap
    } else {
        cfg.preview_bytes + 1
    };
    let (mut bytes, mut cut) = if encoded {
        match content::decoded_body(m, cap) {
            // A body too long to decode whole cannot have its JSON fields masked: no
            // preview rather than an unmasked one.
            Ok((_, true)) if mask_json => {
                return Preview {
                    bytes: None,
                    cut: true,
                };
            }
            Ok((decoded, capped)) => {
                // (`Vec::from` whether the decoder returns a `Vec` or a `Cow`.)
                #[allow(clippy::useless_conversion)]
                let decoded: Vec<u8> = Vec::from(decoded);
                // Mask JSON fields in the decoded body: with no headers in the message,
                // the redactor touches only the body.
                let headers = std::mem::take(&mut m.headers);
                m.body.captured = decoded;
                if let Some(r) = &cfg.redact {
                    r.message(m);
                }
                m.headers = headers;
                (std::mem::take(&mut m.body.captured), capped)
            }
            // Undecodable: nothing shown rather than compressed (unmaskable) bytes.
            Err(_) => {
                return Preview {
                    bytes: None,
                    cut: true,
                };
            }
        }
    } else {
        (std::mem::take(&mut m.body.captured), false)
    };
    cut |= !m.body.captured_all;
    if bytes.len() > cfg.preview_bytes {
        bytes.truncate(cfg.preview_bytes);
        cut = true;
    }
    Preview {
        bytes: Some(bytes),
        cut,
    }
}

impl State {
    fn sql_err(&self) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        StoreError::sql(&self.path)
    }

    fn run(mut self, rx: &Receiver<Msg>) -> Result<Written, StoreError> {
        let mut open: Option<Instant> = None;
        let mut rows = 0usize;
        loop {
            let msg = match open {
                None => rx.recv().ok(),
                Some(since) => {
                    let left = self.cfg.batch_time.saturating_sub(since.elapsed());
                    match rx.recv_timeout(left) {
                        Ok(m) => Some(m),
                        Err(RecvTimeoutError::Timeout) => {
                            self.commit()?;
                            open = None;
                            rows = 0;
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                }
            };
            let Some(msg) = msg else { break };
            if open.is_none() {
                self.conn.execute_batch("BEGIN").map_err(self.sql_err())?;
                open = Some(Instant::now());
            }
            match msg {
                Msg::Exchange(row, _charge) => rows += self.exchange(row)?,
                Msg::Settled(at, f) => {
                    self.settled(at, f)?;
                    rows += 1;
                }
                Msg::Run(f) => {
                    self.finding(&f, None)?;
                    rows += 1;
                }
                Msg::Interrupted(reason) => self
                    .conn
                    .prepare_cached("UPDATE runs SET interrupted = ?2 WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![self.run, reason]))
                    .map(|_| ())
                    .map_err(StoreError::sql(&self.path))?,
                Msg::Live(counters) => self.live(&counters)?,
                Msg::Packets(first, packets, _charge) => rows += self.packets(first, packets)?,
                Msg::Finish(summary) => self.finish(&summary)?,
            }
            if rows >= self.cfg.batch_rows
                || open.is_some_and(|t| t.elapsed() >= self.cfg.batch_time)
            {
                self.commit()?;
                open = None;
                rows = 0;
            }
        }
        if open.is_some() {
            self.commit()?;
        }
        Ok(self.written)
    }

    /// Brings counters and rollups up to date and commits the open transaction.
    fn commit(&mut self) -> Result<(), StoreError> {
        {
            let mut up = self
                .conn
                .prepare_cached(UPSERT_ROLLUP)
                .map_err(StoreError::sql(&self.path))?;
            let mut issue = self
                .conn
                .prepare_cached(UPSERT_ISSUE)
                .map_err(StoreError::sql(&self.path))?;
            for ((rule, host, method, template), r) in self.rollups.drain() {
                up.execute(params![
                    self.run, rule, host, method, template, r.severity, r.count, r.first_ts,
                    r.last_ts, r.sample
                ])
                .map_err(StoreError::sql(&self.path))?;
                issue
                    .execute(params![
                        rule, host, method, template, r.severity, r.count, r.last_ts
                    ])
                    .map_err(StoreError::sql(&self.path))?;
            }
        }
        self.write_rollups()?;
        self.conn
            .prepare_cached(
                "UPDATE runs SET exchanges = ?2, findings = ?3, first_ts = ?4, last_ts = ?5, \
                 stored_packets = ?6, stored_packet_bytes = ?7, packet_evictions = ?8 \
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.run,
                    u64_sql(self.written.exchanges),
                    u64_sql(self.written.findings),
                    self.first_ts,
                    self.last_ts,
                    u64_sql(self.written.packets),
                    self.packet_bytes,
                    u64_sql(self.written.packet_evictions)
                ])
            })
            .map_err(StoreError::sql(&self.path))?;
        self.conn
            .execute_batch("COMMIT")
            .map_err(StoreError::sql(&self.path))?;
        self.written.transactions += 1;
        if self.endpoints.len() > ENDPOINT_CACHE {
            self.endpoints.clear();
        }
        Ok(())
    }

    /// Writes the endpoint rows changed since the last commit (whole rows: this writer owns
    /// its run's rows), and adds the series and rule counts gathered since.
    fn write_rollups(&mut self) -> Result<(), StoreError> {
        let err = StoreError::sql(&self.path);
        let run = self.run;
        let result = (|| -> rusqlite::Result<()> {
            let mut up = self.conn.prepare_cached(UPSERT_ENDPOINT)?;
            for ((host, method, template), e) in self.endpoints.iter_mut() {
                if !std::mem::take(&mut e.dirty) {
                    continue;
                }
                let [s1, s2, s3, s4, s5, none] = e.status;
                up.execute(params![
                    run,
                    host,
                    method,
                    template,
                    e.exchanges,
                    s1,
                    s2,
                    s3,
                    s4,
                    s5,
                    none,
                    e.findings,
                    u64_sql(e.latency.count()),
                    e.latency.encode(),
                    e.first_ts,
                    e.last_ts
                ])?;
            }
            let mut up = self.conn.prepare_cached(UPSERT_SERIES)?;
            for ((width, bucket, key), n) in self.series.drain() {
                up.execute(params![run, width, bucket, key, n])?;
            }
            let mut up = self.conn.prepare_cached(UPSERT_RULE_COUNT)?;
            for ((rule, severity), (category, n)) in self.rule_counts.drain() {
                up.execute(params![run, rule, severity, category, n])?;
            }
            Ok(())
        })();
        result.map_err(err)
    }

    /// The endpoint's rollup, read back from the database when the cache dropped it.
    fn endpoint(&mut self, key: EndpointKey) -> Result<&mut Endpoint, StoreError> {
        use std::collections::hash_map::Entry;
        match self.endpoints.entry(key) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(v) => {
                let (host, method, template) = v.key();
                let stored = self
                    .conn
                    .prepare_cached(SELECT_ENDPOINT)
                    .and_then(|mut st| {
                        st.query_row(params![self.run, host, method, template], |r| {
                            let hist: Vec<u8> = r.get(8)?;
                            Ok(Endpoint {
                                exchanges: r.get(0)?,
                                status: [
                                    r.get(1)?,
                                    r.get(2)?,
                                    r.get(3)?,
                                    r.get(4)?,
                                    r.get(5)?,
                                    r.get(6)?,
                                ],
                                findings: r.get(7)?,
                                latency: Histogram::decode(&hist),
                                first_ts: r.get(9)?,
                                last_ts: r.get(10)?,
                                dirty: false,
                            })
                        })
                        .optional()
                    })
                    .map_err(StoreError::sql(&self.path))?;
                Ok(v.insert(stored.unwrap_or_default()))
            }
        }
    }

    fn count_series(&mut self, ts: i64, key: i64) {
        for width in SERIES_WIDTHS_NS {
            *self
                .series
                .entry((width, bucket_of(ts, width), key))
                .or_default() += 1;
        }
    }

    fn connection_id(&mut self, c: &ConnectionRow) -> Result<i64, StoreError> {
        if let Some(&id) = self.connections.get(&c.first_frame) {
            return Ok(id);
        }
        if self.connections.len() >= CONNECTION_CACHE {
            self.connections.clear();
        }
        let key = params![self.run, c.first_frame.file, u64_sql(c.first_frame.number)];
        let inserted = self
            .conn
            .prepare_cached(INSERT_CONNECTION)
            .and_then(|mut s| {
                s.execute(params![
                    self.run,
                    c.first_frame.file,
                    u64_sql(c.first_frame.number),
                    c.client,
                    c.server,
                    c.first_ts,
                    c.tls,
                    c.mid_stream,
                    c.tls_info.as_ref().map(|t| t.protocol.as_str()),
                    c.tls_info.as_ref().map(|t| t.cipher_suite.as_str()),
                    c.tls_info.as_ref().and_then(|t| t.alpn.as_deref()),
                    c.tls_info.as_ref().and_then(|t| t.sni.as_deref())
                ])
            })
            .map_err(StoreError::sql(&self.path))?;
        let id = if inserted == 1 {
            self.written.connections += 1;
            self.conn.last_insert_rowid()
        } else {
            self.conn
                .prepare_cached(SELECT_CONNECTION)
                .and_then(|mut s| s.query_row(key, |r| r.get(0)))
                .map_err(StoreError::sql(&self.path))?
        };
        self.connections.insert(c.first_frame, id);
        Ok(id)
    }

    /// Keeps a flagged connection's packets, then deletes the oldest connections' packets
    /// (of any run) while the store is over its cap; returns the rows written.
    fn packets(
        &mut self,
        first_frame: FrameRef,
        packets: Vec<StoredPacket>,
    ) -> Result<usize, StoreError> {
        let run = self.run;
        let id = match self.connections.get(&first_frame) {
            Some(&id) => Some(id),
            None => self
                .conn
                .prepare_cached(SELECT_CONNECTION)
                .and_then(|mut st| {
                    st.query_row(
                        params![run, first_frame.file, u64_sql(first_frame.number)],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()
                })
                .map_err(StoreError::sql(&self.path))?,
        };
        // The exchange is written before its connection is flagged: a miss is a bug
        // elsewhere, not a reason to stop recording.
        let Some(id) = id else {
            tracing::debug!(
                frame = first_frame.number,
                "packets of an unknown connection"
            );
            return Ok(0);
        };
        let result = (|| -> rusqlite::Result<usize> {
            let mut total = match self.packet_total {
                Some(t) => t,
                None => self.conn.query_row(
                    "SELECT coalesce(sum(length(data)), 0) FROM packets",
                    [],
                    |r| r.get(0),
                )?,
            };
            let mut ins = self.conn.prepare_cached(
                "INSERT INTO packets (connection_id, frame, ts, linktype, orig_len, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let rows = packets.len();
            for p in &packets {
                ins.execute(params![
                    id,
                    u64_sql(p.number),
                    p.ts.as_nanos(),
                    p.linktype,
                    p.orig_len,
                    p.data
                ])?;
                let len = i64::try_from(p.data.len()).unwrap_or(i64::MAX);
                total = total.saturating_add(len);
                self.packet_bytes = self.packet_bytes.saturating_add(len);
            }
            drop(ins);
            self.written.packets += rows as u64;
            let cap = i64::try_from(self.cfg.packet_cap).unwrap_or(i64::MAX);
            while total > cap {
                let oldest: Option<i64> = self.conn.query_row(
                    "SELECT min(connection_id) FROM packets WHERE connection_id <> ?1",
                    [id],
                    |r| r.get(0),
                )?;
                let Some(oldest) = oldest else { break };
                let bytes: i64 = self.conn.query_row(
                    "SELECT coalesce(sum(length(data)), 0) FROM packets WHERE connection_id = ?1",
                    [oldest],
                    |r| r.get(0),
                )?;
                self.conn
                    .prepare_cached("DELETE FROM packets WHERE connection_id = ?1")?
                    .execute([oldest])?;
                self.conn
                    .prepare_cached("UPDATE connections SET packets_evicted = 1 WHERE id = ?1")?
                    .execute([oldest])?;
                total -= bytes;
                self.written.packet_evictions += 1;
            }
            self.packet_total = Some(total);
            Ok(rows)
        })();
        result.map_err(StoreError::sql(&self.path))
    }

    /// Inserts an exchange and its findings; returns the rows written.
    fn exchange(&mut self, row: Row) -> Result<usize, StoreError> {
        let connection_id = self.connection_id(&row.connection)?;
        let Row {
            index,
            file,
            method,
            host,
            target,
            path,
            template,
            status,
            version,
            latency,
            ts,
            findings,
            ..
        } = row;
        let tls = row.connection.tls_info.as_ref().map(|t| t.protocol.clone());
        self.conn
            .prepare_cached(INSERT_EXCHANGE)
            .and_then(|mut s| {
                s.execute(params![
                    self.run,
                    connection_id,
                    index,
                    file,
                    method,
                    host,
                    target,
                    path,
                    template,
                    status,
                    row.req_frame,
                    row.resp_frame,
                    row.first_frame,
                    row.last_frame,
                    row.req_first_ts,
                    row.req_last_ts,
                    row.resp_first_ts,
                    row.resp_last_ts,
                    latency,
                    ts,
                    row.req_body,
                    row.resp_body,
                    row.req_preview.bytes,
                    row.resp_preview.bytes,
                    row.req_preview.cut,
                    row.resp_preview.cut,
                    row.anomalies,
                    u64_sql(findings.len() as u64),
                    row.json,
                    version
                ])
            })
            .map_err(StoreError::sql(&self.path))?;
        let id = self.conn.last_insert_rowid();
        self.written.exchanges += 1;
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
        self.count_series(ts, status_key(status));
        let e = self.endpoint((
            host.clone().unwrap_or_default(),
            method.clone().unwrap_or_default(),
            template.clone().unwrap_or_default(),
        ))?;
        e.exchanges += 1;
        e.status[status_key(status) as usize] += 1;
        if let Some(ns) = latency {
            e.latency.add(ns);
        }
        e.first_ts = Some(e.first_ts.map_or(ts, |t| t.min(ts)));
        e.last_ts = Some(e.last_ts.map_or(ts, |t| t.max(ts)));
        e.dirty = true;
        let keys = ExchangeKeys {
            id,
            host,
            method,
            status,
            template,
            ts,
            version,
            tls,
        };
        let n = findings.len();
        for f in &findings {
            self.finding(f, Some(&keys))?;
        }
        Ok(1 + n)
    }

    fn lookup(&self, at: ExchangeRef) -> Result<Option<ExchangeKeys>, StoreError> {
        self.conn
            .prepare_cached(SELECT_EXCHANGE_BY_REF)
            .and_then(|mut s| {
                s.query_row(
                    params![
                        self.run,
                        at.connection.file,
                        u64_sql(at.connection.number),
                        at.index
                    ],
                    |r| {
                        Ok(ExchangeKeys {
                            id: r.get(0)?,
                            host: r.get(1)?,
                            method: r.get(2)?,
                            status: r.get(3)?,
                            template: r.get(4)?,
                            ts: r.get(5)?,
                            version: r.get(6)?,
                            tls: r.get(7)?,
                        })
                    },
                )
                .optional()
            })
            .map_err(StoreError::sql(&self.path))
    }

    fn settled(&mut self, at: ExchangeRef, f: Finding) -> Result<(), StoreError> {
        let keys = self.lookup(at)?;
        match &keys {
            Some(k) => {
                self.conn
                    .prepare_cached(
                        "UPDATE exchanges SET finding_count = finding_count + 1 WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute([k.id]))
                    .map_err(StoreError::sql(&self.path))?;
            }
            None => self.written.unresolved += 1,
        }
        self.finding(&f, keys.as_ref())
    }

    fn finding(&mut self, f: &Finding, ex: Option<&ExchangeKeys>) -> Result<(), StoreError> {
        let related = if f.related.is_empty() {
            None
        } else {
            let mut items = Vec::with_capacity(f.related.len());
            for r in &f.related {
                let id = self.lookup(*r)?.map(|k| k.id);
                items.push(serde_json::json!({
                    "exchange": id,
                    "connection": r.connection,
                    "index": r.index,
                }));
            }
            Some(serde_json::Value::Array(items).to_string())
        };
        let severity = severity_rank(f.severity);
        let span = f
            .span
            .as_ref()
            .and_then(|sp| serde_json::to_string(sp).ok());
        self.conn
            .prepare_cached(INSERT_FINDING)
            .and_then(|mut s| {
                s.execute(params![
                    self.run,
                    ex.map(|k| k.id),
                    f.rule,
                    severity,
                    f.category,
                    f.message,
                    f.evidence,
                    side_name(f.side),
                    related,
                    ex.and_then(|k| k.host.as_deref()),
                    ex.and_then(|k| k.method.as_deref()),
                    ex.and_then(|k| k.status),
                    ex.and_then(|k| k.template.as_deref()),
                    ex.map(|k| k.ts),
                    span,
                    ex.and_then(|k| k.version.as_deref()),
                    ex.and_then(|k| k.tls.as_deref()),
                ])
            })
            .map_err(StoreError::sql(&self.path))?;
        self.written.findings += 1;
        let counted = self
            .rule_counts
            .entry((f.rule.clone(), severity))
            .or_insert_with(|| (f.category.clone(), 0));
        counted.1 += 1;
        if let Some(k) = ex {
            self.count_series(k.ts, severity_key(severity));
            let e = self.endpoint((
                k.host.clone().unwrap_or_default(),
                k.method.clone().unwrap_or_default(),
                k.template.clone().unwrap_or_default(),
            ))?;
            e.findings += 1;
            e.dirty = true;
            let key = (
                f.rule.clone(),
                k.host.clone().unwrap_or_default(),
                k.method.clone().unwrap_or_default(),
                k.template.clone().unwrap_or_default(),
            );
            let r = self.rollups.entry(key).or_insert(Rollup {
                severity,
                count: 0,
                first_ts: k.ts,
                last_ts: k.ts,
                sample: k.id,
            });
            r.count += 1;
            r.severity = r.severity.max(severity);
            r.first_ts = r.first_ts.min(k.ts);
            r.last_ts = r.last_ts.max(k.ts);
        }
        Ok(())
    }

    fn live(&mut self, c: &LiveSummary) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE runs SET packets = ?2, bytes = ?3, kernel_drops = ?4, \
                 internal_drops = ?5, decode_errors = ?6 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    self.run,
                    u64_sql(c.frames),
                    u64_sql(c.bytes),
                    u64_sql(c.kernel.dropped + c.kernel.interface_dropped),
                    u64_sql(c.internal_dropped),
                    u64_sql(c.decode_errors)
                ])
            })
            .map_err(StoreError::sql(&self.path))?;
        Ok(())
    }

    fn finish(&mut self, s: &RunSummary) -> Result<(), StoreError> {
        if let Some(live) = &s.live {
            self.live(live)?;
        }
        let decode_errors: u64 = s.decode.errors.values().sum();
        let summary = serde_json::to_string(s).unwrap_or_else(|_| "{}".into());
        self.conn
            .prepare_cached(
                "UPDATE runs SET finished_wall = ?2, packets = ?3, bytes = ?4, \
                 decode_errors = ?5, connections = ?6, summary = ?7 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    self.run,
                    super::wall_nanos(),
                    u64_sql(s.frames),
                    u64_sql(s.bytes),
                    u64_sql(decode_errors),
                    u64_sql(s.reassembly.connections),
                    summary
                ])
            })
            .map_err(StoreError::sql(&self.path))?;
        if let Some(p) = &s.packet_store {
            self.conn
                .prepare_cached(
                    "UPDATE runs SET packets_over_connection_cap = ?2, \
                     flagged_connections_dropped = ?3 WHERE id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        self.run,
                        u64_sql(p.over_connection_cap),
                        u64_sql(p.flags_dropped)
                    ])
                })
                .map_err(StoreError::sql(&self.path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{WriterConfig, preview, textual};
    use crate::http::{Body, Header, Message, StartLine};
    use crate::redact::Redactor;

    fn gzipped_json(body: &[u8]) -> Message {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(body).expect("gzip");
        let captured = z.finish().expect("gzip");
        Message {
            start: StartLine::Response {
                version: "HTTP/1.1".into(),
                status: 200,
                reason: "OK".into(),
            },
            headers: vec![
                Header {
                    name: "Content-Type".into(),
                    value: "application/json".into(),
                },
                Header {
                    name: "Content-Encoding".into(),
                    value: "gzip".into(),
                },
            ],
            raw_head: Vec::new(),
            body: Body {
                size: captured.len() as u64,
                captured,
                ..Body::default()
            },
            first_frame: Default::default(),
            head_frame: Default::default(),
            last_frame: Default::default(),
            first_ts: Default::default(),
            head_ts: Default::default(),
            last_ts: Default::default(),
            last_order: 0,
            anomalies: Vec::new(),
            head_complete: true,
        }
    }

    #[test]
    fn the_queue_waits_while_it_holds_its_bytes_and_goes_on_when_they_are_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::Store::open(dir.path().join("q.db")).expect("store");
        let source = crate::store::RunSource::Files {
            files: vec!["q.pcap".into()],
        };
        let run = store.begin_run(&source).expect("run");
        let writer = store.writer(run, &source).expect("writer");
        // More than the bound goes through when the queue is empty …
        let first = writer
            .charge(crate::store::queue_bytes::QUEUE_BYTES + 1)
            .expect("charge");
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel();
            let writer = &writer;
            scope.spawn(move || {
                let second = writer.charge(1);
                let _ = tx.send(second.is_ok());
            });
            // … and anything more waits until it is given back.
            assert!(
                rx.recv_timeout(std::time::Duration::from_millis(300))
                    .is_err(),
                "the second charge waits"
            );
            drop(first);
            assert_eq!(
                rx.recv_timeout(std::time::Duration::from_secs(30)),
                Ok(true),
                "the second charge goes on"
            );
        });
    }

    #[test]
    fn compressed_json_previews_are_masked_or_not_kept() {
        let masking = WriterConfig {
            redact: Some(Redactor::new(&["password".to_string()])),
            mask_json: true,
            ..WriterConfig::default()
        };
        let p = preview(
            &masking,
            &mut gzipped_json(br#"{"user":"a","password":"hunter2"}"#),
        );
        let text = String::from_utf8(p.bytes.expect("a preview")).expect("utf-8");
        assert!(text.contains("****") && !text.contains("hunter2"), "{text}");

        // Longer than the decode cap: it cannot be parsed whole, so nothing is kept.
        let long = format!(
            r#"{{"password":"hunter2","pad":"{}"}}"#,
            "x".repeat(masking.decode_cap)
        );
        let p = preview(&masking, &mut gzipped_json(long.as_bytes()));
        assert!(p.bytes.is_none() && p.cut);

        // Without JSON fields to mask, only the preview's bytes are decoded.
        let plain = WriterConfig::default();
        let p = preview(&plain, &mut gzipped_json(long.as_bytes()));
        let bytes = p.bytes.expect("a preview");
        assert_eq!(bytes.len(), plain.preview_bytes);
        assert!(p.cut);
    }

    #[test]
    fn only_textual_bodies_are_previewed() {
        for t in [
            None,
            Some("text/html; charset=utf-8"),
            Some("application/json"),
            Some("application/problem+json"),
            Some("application/vnd.api+json"),
            Some("application/x-www-form-urlencoded"),
            Some("Application/JavaScript"),
        ] {
            assert!(textual(t), "{t:?}");
        }
        for t in [
            "image/jpeg",
            "image/svg+xml",
            "application/octet-stream",
            "font/woff2",
            "video/mp4",
            "application/zip",
        ] {
            assert!(!textual(Some(t)), "{t}");
        }
    }
}
