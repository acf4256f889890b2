//! Queries for the dashboard, on read-only connections (WAL: they read while a writer
//! writes, and see whole batches only). Every filter value is a bound parameter; the SQL
//! text is built only from fixed fragments.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row, params_from_iter};
use serde::Serialize;

use super::latency::Histogram;
use super::{BUSY_TIMEOUT, RunId, StoreError, schema};
use crate::rules::Severity;

/// A read-only view of a database.
pub struct Reader {
    path: PathBuf,
    conn: Connection,
    /// The SQL of every statement prepared, when asked for (tests check that each uses an
    /// index: see [`Reader::record_statements`]).
    log: Option<RefCell<Vec<String>>>,
}

/// One capture run as listed.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RunRow {
    pub id: RunId,
    pub kind: String,
    pub source: String,
    pub started_wall: i64,
    pub finished_wall: Option<i64>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub packets: i64,
    pub bytes: i64,
    pub kernel_drops: i64,
    pub internal_drops: i64,
    pub decode_errors: i64,
    pub connections: i64,
    pub exchanges: i64,
    pub findings: i64,
    /// Live runs: packets and bytes kept by the packet store, and connections whose
    /// packets its cap evicted while this run wrote.
    pub stored_packets: i64,
    pub stored_packet_bytes: i64,
    pub packet_evictions: i64,
    /// Live runs: packets of flagged connections past the packet store's per-connection
    /// cap, and flagged connections it forgot for want of memory (not kept from then on).
    pub packets_over_connection_cap: i64,
    pub flagged_connections_dropped: i64,
    /// Why the run ended early (`SIGINT`, `SIGTERM`), when it did: it then has a
    /// `finished_wall` and a summary of what it read, but did not read all its input.
    pub interrupted: Option<String>,
}

impl RunRow {
    /// The run's state in one word or two: `interrupted` (stopped by a signal before the
    /// end of its input), `finished`, or `running or stopped` (no end recorded: still
    /// running, or killed without a chance to record it).
    pub fn state(&self) -> &'static str {
        if self.interrupted.is_some() {
            "interrupted"
        } else if self.finished_wall.is_some() {
            "finished"
        } else {
            "running or stopped"
        }
    }
}

/// Which findings to list. Each column is either any value (`None`) or any of a list of
/// exact values (`Some`; an empty list matches nothing); a `None` inside a list stands for
/// "no value" (SQL NULL: a finding on an exchange without Host, say). The dashboard turns
/// substring filters into such lists by looking the values up in the small rollup tables,
/// so that every statement on `findings` is an index lookup by exact values.
#[derive(Clone, Debug, Default)]
pub struct FindingFilter {
    pub run: Option<RunId>,
    pub rules: Option<Vec<String>>,
    pub severities: Option<Vec<Severity>>,
    pub categories: Option<Vec<String>>,
    pub hosts: Option<Vec<Option<String>>>,
    pub methods: Option<Vec<Option<String>>>,
    pub statuses: Option<Vec<Option<u16>>>,
    /// Path templates, e.g. `/users/{id}`.
    pub path_templates: Option<Vec<Option<String>>>,
    pub exchange: Option<i64>,
    /// Only findings with a larger id (what a live view has not shown yet).
    pub after: Option<i64>,
    /// Capture time `[from, to)` in ns; only together with `run`.
    pub time: Option<(i64, i64)>,
    /// Exact `(HTTP version, TLS protocol)` pairs (`None`: not known / cleartext), as
    /// [`Reader::transports`] lists them: a version or TLS filter is resolved into the
    /// pairs it matches, each one lookup in the `(version, tls, id)` index.
    pub transports: Option<Vec<Transport>>,
}

/// An exchange's HTTP version and its connection's TLS protocol (`None` for cleartext).
pub type Transport = (Option<String>, Option<String>);

/// A column the findings list can be sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortColumn {
    /// The order findings were written in (capture order within a run): by id.
    #[default]
    Time,
    Severity,
    Rule,
    Host,
    /// The path template.
    Path,
    Status,
}

impl SortColumn {
    /// The names `?sort=` takes.
    pub const NAMES: [&'static str; 6] = ["time", "severity", "rule", "host", "path", "status"];

    pub fn parse(name: &str) -> Option<SortColumn> {
        Some(match name {
            "time" => SortColumn::Time,
            "severity" => SortColumn::Severity,
            "rule" => SortColumn::Rule,
            "host" => SortColumn::Host,
            "path" => SortColumn::Path,
            "status" => SortColumn::Status,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SortColumn::Time => "time",
            SortColumn::Severity => "severity",
            SortColumn::Rule => "rule",
            SortColumn::Host => "host",
            SortColumn::Path => "path",
            SortColumn::Status => "status",
        }
    }

    /// The `findings` column (each has a `(column, id)` index); `None` for time (the id).
    fn column(self) -> Option<&'static str> {
        match self {
            SortColumn::Time => None,
            SortColumn::Severity => Some("severity"),
            SortColumn::Rule => Some("rule"),
            SortColumn::Host => Some("host"),
            SortColumn::Path => Some("path_template"),
            SortColumn::Status => Some("status"),
        }
    }

    /// The `(column, id)` index of the sort column.
    fn index(self) -> Option<&'static str> {
        match self {
            SortColumn::Time => None,
            SortColumn::Severity => Some("findings_severity"),
            SortColumn::Rule => Some("findings_rule"),
            SortColumn::Host => Some("findings_host"),
            SortColumn::Path => Some("findings_path"),
            SortColumn::Status => Some("findings_status"),
        }
    }

    fn nullable(self) -> bool {
        matches!(
            self,
            SortColumn::Host | SortColumn::Path | SortColumn::Status
        )
    }
}

/// The order of a findings list: a column, then the id in the same direction (so that a
/// finding's place is unique and a keyset cursor names it). NULL sorts first ascending
/// and last descending, as in SQLite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FindingOrder {
    pub column: SortColumn,
    pub ascending: bool,
}

impl FindingOrder {
    /// Newest first: the default.
    pub fn is_default(self) -> bool {
        self.column == SortColumn::Time && !self.ascending
    }
}

/// A sort value as compared in Rust exactly as SQLite compares it (NULL first, integers,
/// text by bytes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Null,
    Int(i64),
    Text(String),
}

impl SortValue {
    fn of(f: &FindingRow, col: SortColumn) -> SortValue {
        let text = |v: &Option<String>| v.clone().map_or(SortValue::Null, SortValue::Text);
        match col {
            SortColumn::Time => SortValue::Null,
            SortColumn::Severity => SortValue::Int(rank(f.severity)),
            SortColumn::Rule => SortValue::Text(f.rule.clone()),
            SortColumn::Host => text(&f.host),
            SortColumn::Path => text(&f.path_template),
            SortColumn::Status => f
                .status
                .map_or(SortValue::Null, |s| SortValue::Int(i64::from(s))),
        }
    }

    fn sql(&self) -> Value {
        match self {
            SortValue::Null => Value::Null,
            SortValue::Int(i) => Value::Integer(*i),
            SortValue::Text(t) => Value::Text(t.clone()),
        }
    }
}

/// More exact-value combinations than this in one filter are refused (each is one indexed
/// statement).
pub const MAX_COMBINATIONS: usize = 256;

/// Counts above this are shown as "at least" (counting further would read too many rows).
pub const COUNT_CAP: i64 = 10_000;

impl FindingFilter {
    /// A filter with only `rule` (exact).
    pub fn rule(id: &str) -> FindingFilter {
        FindingFilter {
            rules: Some(vec![id.to_string()]),
            ..FindingFilter::default()
        }
    }

    /// How many exact-value statements the filter takes.
    pub fn combinations(&self) -> usize {
        fn n<T>(v: &Option<Vec<T>>) -> usize {
            v.as_ref().map_or(1, Vec::len)
        }
        n(&self.rules)
            .saturating_mul(n(&self.severities))
            .saturating_mul(n(&self.categories))
            .saturating_mul(n(&self.hosts))
            .saturating_mul(n(&self.methods))
            .saturating_mul(n(&self.statuses))
            .saturating_mul(n(&self.path_templates))
            .saturating_mul(n(&self.transports))
    }

    /// Whether a column asks for "no value" (then only findings on an exchange count, as
    /// the endpoint rollups do).
    fn wants_null(&self) -> bool {
        let has = |v: &Option<Vec<Option<String>>>| v.as_ref().is_some_and(|v| v.contains(&None));
        has(&self.hosts) || has(&self.methods) || has(&self.path_templates)
    }
}

/// One exact-value combination of a filter: columns and values.
#[derive(Clone, Debug, Default)]
struct Combo {
    /// `(column, value)`; `Value::Null` means `IS NULL`.
    cols: Vec<(&'static str, Value)>,
}

impl Combo {
    fn has(&self, col: &str) -> bool {
        self.cols.iter().any(|(c, _)| *c == col)
    }
}

/// The exact-value combinations of a filter's list columns (`None`: one matches nothing).
/// What a findings query reads: its column combinations, and the finding ids its time range
/// covers.
type FindingScope = (Vec<Combo>, Option<(i64, i64)>);

fn combos(f: &FindingFilter) -> Option<Vec<Combo>> {
    let text = |v: &String| Value::Text(v.clone());
    let opt_text = |v: &Option<String>| v.as_ref().map_or(Value::Null, |v| Value::Text(v.clone()));
    let mut dims: Vec<(&'static str, Vec<Value>)> = Vec::new();
    if let Some(v) = &f.rules {
        dims.push(("rule", v.iter().map(text).collect()));
    }
    if let Some(v) = &f.severities {
        dims.push((
            "severity",
            v.iter().map(|s| Value::Integer(rank(*s))).collect(),
        ));
    }
    if let Some(v) = &f.categories {
        dims.push(("category", v.iter().map(text).collect()));
    }
    if let Some(v) = &f.hosts {
        dims.push(("host", v.iter().map(opt_text).collect()));
    }
    if let Some(v) = &f.methods {
        dims.push(("method", v.iter().map(opt_text).collect()));
    }
    if let Some(v) = &f.statuses {
        let v = v
            .iter()
            .map(|s| s.map_or(Value::Null, |s| Value::Integer(i64::from(s))))
            .collect();
        dims.push(("status", v));
    }
    if let Some(v) = &f.path_templates {
        dims.push(("path_template", v.iter().map(opt_text).collect()));
    }
    let mut out = vec![Combo::default()];
    if let Some(pairs) = &f.transports {
        if pairs.is_empty() {
            return None;
        }
        out = pairs
            .iter()
            .take(MAX_COMBINATIONS)
            .map(|(version, tls)| Combo {
                cols: vec![("version", opt_text(version)), ("tls", opt_text(tls))],
            })
            .collect();
    }
    for (col, values) in dims {
        if values.is_empty() {
            return None;
        }
        let mut next = Vec::with_capacity(out.len() * values.len());
        for c in &out {
            for v in &values {
                let mut c = c.clone();
                c.cols.push((col, v.clone()));
                next.push(c);
                if next.len() > MAX_COMBINATIONS {
                    break;
                }
            }
        }
        next.truncate(MAX_COMBINATIONS);
        out = next;
    }
    Some(out)
}

/// A number of findings: exact, or at least `n` when counting stopped at [`COUNT_CAP`].
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Total {
    pub n: i64,
    pub exact: bool,
}

/// One finding as listed, with the exchange's keys.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FindingRow {
    pub id: i64,
    pub run: RunId,
    pub exchange: Option<i64>,
    pub rule: String,
    pub severity: Severity,
    pub category: String,
    pub message: String,
    pub evidence: String,
    pub side: Option<String>,
    pub related: Option<String>,
    pub host: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub path_template: Option<String>,
    pub ts: Option<i64>,
    /// The part of the message the finding is about, when the engine could tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<crate::rules::span::Span>,
    /// The exchange's HTTP version (`HTTP/1.1`, `HTTP/2`, …).
    pub version: Option<String>,
    /// The TLS protocol of the exchange's connection (`TLS 1.3`); `None` for cleartext.
    pub tls: Option<String>,
}

/// A page of findings, newest first; `next` is the cursor of the following page.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FindingsPage {
    pub findings: Vec<FindingRow>,
    pub next: Option<i64>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RuleCount {
    pub rule: String,
    pub severity: Severity,
    pub category: String,
    pub count: i64,
}

/// A (rule, host, method, path template) rollup.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RollupRow {
    pub run: RunId,
    pub rule: String,
    pub host: String,
    pub method: String,
    pub path_template: String,
    pub severity: Severity,
    pub count: i64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub sample_exchange: Option<i64>,
}

/// Exchanges of an endpoint by status class.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StatusMix {
    #[serde(rename = "1xx")]
    pub s1xx: i64,
    #[serde(rename = "2xx")]
    pub s2xx: i64,
    #[serde(rename = "3xx")]
    pub s3xx: i64,
    #[serde(rename = "4xx")]
    pub s4xx: i64,
    #[serde(rename = "5xx")]
    pub s5xx: i64,
    /// No response, or a status outside 100-599.
    pub none: i64,
}

impl StatusMix {
    /// `(class name, count)` in display order.
    pub fn classes(&self) -> [(&'static str, i64); 6] {
        [
            ("1xx", self.s1xx),
            ("2xx", self.s2xx),
            ("3xx", self.s3xx),
            ("4xx", self.s4xx),
            ("5xx", self.s5xx),
            ("none", self.none),
        ]
    }
}

/// A (run, host, method, path template) endpoint rollup. Percentiles come from a log-scale
/// histogram: within 9.05 % of the exact value (see [`crate::store::latency`]).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EndpointRow {
    pub run: RunId,
    pub host: String,
    pub method: String,
    pub path_template: String,
    pub exchanges: i64,
    pub status: StatusMix,
    pub findings: i64,
    /// Exchanges with both messages, hence a latency.
    pub latency_count: i64,
    pub p50_ns: Option<i64>,
    pub p95_ns: Option<i64>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}

const ENDPOINT_COLUMNS: &str = "run_id, host, method, path_template, exchanges, status_1xx, \
    status_2xx, status_3xx, status_4xx, status_5xx, status_none, findings, latency_count, \
    latency_hist, first_ts, last_ts";

fn endpoint_row(r: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    let hist = Histogram::decode(&r.get::<_, Vec<u8>>(13)?);
    Ok(EndpointRow {
        run: r.get(0)?,
        host: r.get(1)?,
        method: r.get(2)?,
        path_template: r.get(3)?,
        exchanges: r.get(4)?,
        status: StatusMix {
            s1xx: r.get(5)?,
            s2xx: r.get(6)?,
            s3xx: r.get(7)?,
            s4xx: r.get(8)?,
            s5xx: r.get(9)?,
            none: r.get(10)?,
        },
        findings: r.get(11)?,
        latency_count: r.get(12)?,
        p50_ns: hist.percentile(0.50),
        p95_ns: hist.percentile(0.95),
        first_ts: r.get(14)?,
        last_ts: r.get(15)?,
    })
}

/// One exchange with what the detail page shows beside its JSON object.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ExchangeDetail {
    pub id: i64,
    pub run: RunId,
    /// Index of the capture file in the run's `source`.
    pub file: i64,
    pub req_frame: Option<i64>,
    pub resp_frame: Option<i64>,
    pub first_frame: Option<i64>,
    pub latency_ns: Option<i64>,
    /// Decoded bodies, redacted and bounded, as text (invalid UTF-8 replaced).
    pub req_preview: Option<String>,
    pub resp_preview: Option<String>,
    pub req_preview_cut: bool,
    pub resp_preview_cut: bool,
    /// The stored `exchanges --format jsonl` object.
    pub json: String,
    pub connection: i64,
    /// 0-based position on the connection.
    pub idx: i64,
    /// First and last byte times of each message (capture time, ns).
    pub req_first_ts: Option<i64>,
    pub req_last_ts: Option<i64>,
    pub resp_first_ts: Option<i64>,
    pub resp_last_ts: Option<i64>,
    pub ts: i64,
    pub last_frame: Option<i64>,
    /// `HTTP/1.1`, `HTTP/2`, … (of the request, else the response).
    pub version: Option<String>,
    /// What the connection's TLS negotiated, when it was decrypted (never a key).
    pub tls: Option<crate::http::TlsInfo>,
}

/// Severity as stored (0 info, 1 warning, 2 error).
pub fn severity_of(rank: i64) -> Severity {
    match rank {
        i64::MIN..=0 => Severity::Info,
        1 => Severity::Warning,
        _ => Severity::Error,
    }
}

fn rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Error => 2,
    }
}

const RUN_COLUMNS: &str = "id, kind, source, started_wall, finished_wall, first_ts, last_ts, \
    packets, bytes, kernel_drops, internal_drops, decode_errors, connections, exchanges, findings, \
    stored_packets, stored_packet_bytes, packet_evictions, interrupted, \
    packets_over_connection_cap, flagged_connections_dropped";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        source: r.get(2)?,
        started_wall: r.get(3)?,
        finished_wall: r.get(4)?,
        first_ts: r.get(5)?,
        last_ts: r.get(6)?,
        packets: r.get(7)?,
        bytes: r.get(8)?,
        kernel_drops: r.get(9)?,
        internal_drops: r.get(10)?,
        decode_errors: r.get(11)?,
        connections: r.get(12)?,
        exchanges: r.get(13)?,
        findings: r.get(14)?,
        stored_packets: r.get(15)?,
        stored_packet_bytes: r.get(16)?,
        packet_evictions: r.get(17)?,
        interrupted: r.get(18)?,
        packets_over_connection_cap: r.get(19)?,
        flagged_connections_dropped: r.get(20)?,
    })
}

const FINDING_COLUMNS: &str = "id, run_id, exchange_id, rule, severity, category, message, \
    evidence, side, related, host, method, status, path_template, ts, span, version, tls";

fn finding_row(r: &Row<'_>) -> rusqlite::Result<FindingRow> {
    Ok(FindingRow {
        id: r.get(0)?,
        run: r.get(1)?,
        exchange: r.get(2)?,
        rule: r.get(3)?,
        severity: severity_of(r.get(4)?),
        category: r.get(5)?,
        message: r.get(6)?,
        evidence: r.get(7)?,
        side: r.get(8)?,
        related: r.get(9)?,
        host: r.get(10)?,
        method: r.get(11)?,
        status: r.get(12)?,
        path_template: r.get(13)?,
        ts: r.get(14)?,
        span: r
            .get::<_, Option<String>>(15)?
            .and_then(|t| serde_json::from_str(&t).ok()),
        version: r.get(16)?,
        tls: r.get(17)?,
    })
}

/// `WHERE …` text and its bound values for one combination of a finding filter, its
/// scalar terms, a keyset cursor and the id bounds of a time range.
fn finding_where(
    f: &FindingFilter,
    c: &Combo,
    before: Option<i64>,
    ids: Option<(i64, i64)>,
) -> (String, Vec<Value>) {
    let mut terms: Vec<&'static str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    for (col, v) in &c.cols {
        let term = match (*col, v) {
            ("rule", _) => "rule = ?",
            ("severity", _) => "severity = ?",
            ("category", _) => "category = ?",
            ("host", Value::Null) => "host IS NULL",
            ("host", _) => "host = ?",
            ("method", Value::Null) => "method IS NULL",
            ("method", _) => "method = ?",
            ("status", Value::Null) => "status IS NULL",
            ("status", _) => "status = ?",
            ("path_template", Value::Null) => "path_template IS NULL",
            ("path_template", _) => "path_template = ?",
            ("version", Value::Null) => "version IS NULL",
            ("version", _) => "version = ?",
            ("tls", Value::Null) => "tls IS NULL",
            ("tls", _) => "tls = ?",
            _ => continue,
        };
        terms.push(term);
        if !matches!(v, Value::Null) {
            args.push(v.clone());
        }
    }
    if f.wants_null() {
        terms.push("exchange_id IS NOT NULL");
    }
    let mut int = |term: &'static str, v: Option<i64>| {
        if let Some(v) = v {
            terms.push(term);
            args.push(Value::Integer(v));
        }
    };
    int("run_id = ?", f.run);
    int("exchange_id = ?", f.exchange);
    int("id > ?", f.after);
    int("id < ?", before);
    if let (Some((from, to)), Some((lo, hi))) = (f.time, ids) {
        // The id range of the time range comes from the (run, ts) index; within it the
        // unary `+` keeps the planner on the id order (no sort).
        int("id >= ?", Some(lo));
        int("id <= ?", Some(hi));
        int("+ts >= ?", Some(from));
        int("+ts < ?", Some(to));
    }
    if terms.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", terms.join(" AND ")), args)
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern matching `text` anywhere.
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// Values found by a substring search, at most this many.
pub const MAX_MATCHES: usize = 200;

/// Rules with findings and a column of their split by severity.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RuleSplit {
    pub rule: String,
    pub category: String,
    pub error: i64,
    pub warning: i64,
    pub info: i64,
    pub total: i64,
    /// The worst severity with findings.
    pub worst: Option<Severity>,
}

/// A rule × endpoint issue over runs: the rollups of one (rule, host, method, path).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct IssueRow {
    pub rule: String,
    pub host: String,
    pub method: String,
    pub path_template: String,
    pub severity: Severity,
    pub count: i64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub sample_exchange: Option<i64>,
    /// `(run, count)` for each run it appears in, oldest first.
    pub runs: Vec<(RunId, i64)>,
}

/// Where a connection's frames are in its run's capture files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionFrames {
    pub run: RunId,
    pub client: String,
    pub server: String,
    pub first_file: i64,
    pub first_frame: i64,
    /// `(file index, last frame of an exchange there)`.
    pub last_frames: Vec<(i64, i64)>,
}

/// A packet kept by the packet store of a live run (secrets masked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketRow {
    /// The frame's number in the run.
    pub frame: i64,
    pub ts: i64,
    pub linktype: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// What the packet store holds of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPackets {
    pub packets: Vec<PacketRow>,
    /// The store's cap deleted them.
    pub evicted: bool,
}

/// A column of the endpoint rollups that substring filters search.
#[derive(Clone, Copy, Debug)]
pub enum EndpointColumn {
    Host,
    Method,
    PathTemplate,
}

impl EndpointColumn {
    fn name(self) -> &'static str {
        match self {
            EndpointColumn::Host => "host",
            EndpointColumn::Method => "method",
            EndpointColumn::PathTemplate => "path_template",
        }
    }
}

/// How the issues are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueOrder {
    /// Worst severity first, then most findings.
    Severity,
    Count,
    LastSeen,
    Rule,
}

/// Per-run totals for the all-runs charts: `(run, [counts])`.
pub type PerRun<const N: usize> = Vec<(RunId, [i64; N])>;

/// ` WHERE run_id = ?` when a run is given (bound as the only parameter), else nothing:
/// two statements rather than `?1 IS NULL OR …`, which no index can serve.
fn run_clause(run: Option<RunId>) -> &'static str {
    if run.is_some() {
        " WHERE run_id = ?"
    } else {
        ""
    }
}

impl Reader {
    /// Opens `path` read-only. The database must exist at this build's schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |error| StoreError::Open {
            path: path.clone(),
            error,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(32);
        let found: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        if found > schema::VERSION {
            return Err(StoreError::TooNew {
                path,
                found,
                supported: schema::VERSION,
            });
        }
        if found < schema::VERSION {
            return Err(StoreError::SchemaBehind {
                path,
                found,
                supported: schema::VERSION,
            });
        }
        Ok(Reader {
            path,
            conn,
            log: None,
        })
    }

    /// Prepares (from the cache) a statement, noting its SQL when recording.
    fn prepare(&self, sql: &str) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
        if let Some(log) = &self.log {
            let mut log = log.borrow_mut();
            if !log.iter().any(|s| s == sql) {
                log.push(sql.to_string());
            }
        }
        self.conn.prepare_cached(sql)
    }

    /// From now on, remembers the SQL of every distinct statement this reader prepares.
    pub fn record_statements(&mut self) {
        self.log.get_or_insert_with(|| RefCell::new(Vec::new()));
    }

    /// The statements prepared since [`Reader::record_statements`].
    pub fn recorded_statements(&self) -> Vec<String> {
        self.log
            .as_ref()
            .map(|l| l.borrow().clone())
            .unwrap_or_default()
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        StoreError::sql(&self.path)
    }

    /// The `limit` newest runs, newest first (a database that CI appends to for years has
    /// many).
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1");
        let mut st = self.prepare(&sql).map_err(self.err())?;
        st.query_map([limit as i64], run_row)
            .and_then(Iterator::collect)
            .map_err(self.err())
    }

    /// One run.
    pub fn run(&self, id: RunId) -> Result<Option<RunRow>, StoreError> {
        use rusqlite::OptionalExtension;
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        self.prepare(&sql)
            .and_then(|mut st| st.query_row([id], run_row).optional())
            .map_err(self.err())
    }

    /// How many runs the database holds.
    pub fn run_count(&self) -> Result<i64, StoreError> {
        self.prepare("SELECT count(*) FROM runs")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err())
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC");
        let mut st = self.prepare(&sql).map_err(self.err())?;
        st.query_map([], run_row)
            .and_then(Iterator::collect)
            .map_err(self.err())
    }

    /// One page of findings matching `filter`, newest first. Pass the previous page's
    /// `next` as `before` for the following page (keyset pagination: each page costs the
    /// same however deep it is). A filter with several values per column runs one indexed
    /// statement per combination and merges them by id.
    pub fn findings(
        &self,
        filter: &FindingFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<FindingsPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let Some((combos, ids)) = self.finding_scope(filter)? else {
            return Ok(FindingsPage::default());
        };
        let mut findings: Vec<FindingRow> = Vec::new();
        for c in &combos {
            let (where_, mut args) = finding_where(filter, c, before, ids);
            args.push(Value::Integer(limit as i64 + 1));
            let sql =
                format!("SELECT {FINDING_COLUMNS} FROM findings{where_} ORDER BY id DESC LIMIT ?");
            let mut st = self.prepare(&sql).map_err(self.err())?;
            let rows: Vec<FindingRow> = st
                .query_map(params_from_iter(args), finding_row)
                .and_then(Iterator::collect)
                .map_err(self.err())?;
            findings.extend(rows);
        }
        if combos.len() > 1 {
            findings.sort_by_key(|f| std::cmp::Reverse(f.id));
            findings.dedup_by_key(|f| f.id);
            findings.truncate(limit + 1);
        }
        let next = if findings.len() > limit {
            findings.truncate(limit);
            findings.last().map(|f| f.id)
        } else {
            None
        };
        Ok(FindingsPage { findings, next })
    }

    /// One page of findings matching `filter` in `order`. `after` is the id of the last
    /// finding of the previous page (keyset pagination: its sort value is read back by id,
    /// and the page continues after that (value, id) place, through the `(column, id)`
    /// index of the sort column). The default order is [`Reader::findings`].
    pub fn findings_in_order(
        &self,
        filter: &FindingFilter,
        order: FindingOrder,
        after: Option<i64>,
        limit: usize,
    ) -> Result<FindingsPage, StoreError> {
        if order.is_default() {
            return self.findings(filter, after, limit);
        }
        let limit = limit.clamp(1, 1000);
        let Some((combos, ids)) = self.finding_scope(filter)? else {
            return Ok(FindingsPage::default());
        };
        let col = order.column.column();
        // Where the previous page ended: (sort value, id).
        let cursor = match after {
            None => None,
            Some(id) => {
                use rusqlite::OptionalExtension;
                let value = match col {
                    None => Some(SortValue::Null),
                    Some(col) => self
                        .prepare(&format!("SELECT {col} FROM findings WHERE id = ?1"))
                        .and_then(|mut st| {
                            st.query_row([id], |r| {
                                Ok(match r.get::<_, Value>(0)? {
                                    Value::Integer(i) => SortValue::Int(i),
                                    Value::Text(t) => SortValue::Text(t),
                                    _ => SortValue::Null,
                                })
                            })
                            .optional()
                        })
                        .map_err(self.err())?,
                };
                match value {
                    Some(v) => Some((v, id)),
                    None => return Ok(FindingsPage::default()),
                }
            }
        };
        let dir = if order.ascending { "ASC" } else { "DESC" };
        // The statements of one combination, in order: each a range of the sort index.
        let segments: Vec<(String, Vec<Value>)> = match (col, &cursor) {
            (None, None) => vec![(String::new(), Vec::new())],
            (None, Some((_, id))) => vec![(
                if order.ascending { "id > ?" } else { "id < ?" }.into(),
                vec![Value::Integer(*id)],
            )],
            (Some(c), cursor) => {
                let nullable = order.column.nullable();
                let null = format!("{c} IS NULL");
                let not_null = format!("{c} IS NOT NULL");
                let mut out = Vec::new();
                match (cursor, order.ascending) {
                    (None, true) => {
                        if nullable {
                            out.push((null, Vec::new()));
                        }
                        out.push((not_null, Vec::new()));
                    }
                    (None, false) => {
                        out.push((not_null, Vec::new()));
                        if nullable {
                            out.push((null, Vec::new()));
                        }
                    }
                    (Some((SortValue::Null, id)), true) => {
                        out.push((format!("{null} AND id > ?"), vec![Value::Integer(*id)]));
                        out.push((not_null, Vec::new()));
                    }
                    (Some((SortValue::Null, id)), false) => {
                        out.push((format!("{null} AND id < ?"), vec![Value::Integer(*id)]));
                    }
                    (Some((v, id)), asc) => {
                        let op = if asc { ">" } else { "<" };
                        out.push((
                            format!("({c}, id) {op} (?, ?)"),
                            vec![v.sql(), Value::Integer(*id)],
                        ));
                        if !asc && nullable {
                            out.push((null, Vec::new()));
                        }
                    }
                }
                out
            }
        };
        let order_by = match col {
            Some(c) => format!(" ORDER BY {c} {dir}, id {dir}"),
            None => format!(" ORDER BY id {dir}"),
        };
        // Few matches (counted exactly, up to COUNT_CAP): read them through the filter's
        // index and sort them. Many: walk the sort column's index and keep the matches,
        // which are then dense enough that a page reads a few thousand entries at most.
        let from = match (order.column.index(), col) {
            (Some(index), Some(_)) => {
                let t = self.count(filter)?;
                if t.exact && t.n <= COUNT_CAP {
                    "findings".to_string()
                } else {
                    format!("findings INDEXED BY {index}")
                }
            }
            _ => "findings".to_string(),
        };
        let mut findings: Vec<FindingRow> = Vec::new();
        for c in &combos {
            let mut got = 0;
            for (term, extra) in &segments {
                if got > limit {
                    break;
                }
                let (mut where_, mut args) = finding_where(filter, c, None, ids);
                if !term.is_empty() {
                    where_ = if where_.is_empty() {
                        format!(" WHERE {term}")
                    } else {
                        format!("{where_} AND {term}")
                    };
                    args.extend(extra.iter().cloned());
                }
                args.push(Value::Integer((limit + 1 - got) as i64));
                let sql = format!("SELECT {FINDING_COLUMNS} FROM {from}{where_}{order_by} LIMIT ?");
                let mut st = self.prepare(&sql).map_err(self.err())?;
                let rows: Vec<FindingRow> = st
                    .query_map(params_from_iter(args), finding_row)
                    .and_then(Iterator::collect)
                    .map_err(self.err())?;
                got += rows.len();
                findings.extend(rows);
            }
        }
        let key = |f: &FindingRow| (SortValue::of(f, order.column), f.id);
        findings.sort_by(|a, b| {
            let o = key(a).cmp(&key(b));
            if order.ascending { o } else { o.reverse() }
        });
        findings.dedup_by_key(|f| f.id);
        let next = if findings.len() > limit {
            findings.truncate(limit);
            findings.last().map(|f| f.id)
        } else {
            None
        };
        Ok(FindingsPage { findings, next })
    }

    /// The distinct `(HTTP version, TLS protocol)` pairs of findings, each found by one
    /// seek in the `(version, tls, id)` index (a handful: HTTP/1.0, HTTP/1.1, HTTP/2, each
    /// in clear or over TLS 1.2 or 1.3).
    pub fn transports(&self) -> Result<Vec<Transport>, StoreError> {
        use rusqlite::OptionalExtension;
        let mut versions: Vec<Option<String>> = Vec::new();
        let any_null = self
            .prepare("SELECT 1 FROM findings WHERE version IS NULL LIMIT 1")
            .and_then(|mut st| st.query_row([], |_| Ok(())).optional())
            .map_err(self.err())?;
        if any_null.is_some() {
            versions.push(None);
        }
        let mut from = String::new();
        loop {
            let next: Option<String> = self
                .prepare("SELECT version FROM findings WHERE version > ?1 ORDER BY version LIMIT 1")
                .and_then(|mut st| st.query_row([&from], |r| r.get(0)).optional())
                .map_err(self.err())?;
            let Some(v) = next else { break };
            from.clone_from(&v);
            versions.push(Some(v));
        }
        let mut out = Vec::new();
        for v in versions {
            let (is, args): (&str, Vec<Value>) = match &v {
                None => ("version IS NULL", Vec::new()),
                Some(v) => ("version = ?", vec![Value::Text(v.clone())]),
            };
            let null = self
                .prepare(&format!(
                    "SELECT 1 FROM findings WHERE {is} AND tls IS NULL LIMIT 1"
                ))
                .and_then(|mut st| {
                    st.query_row(params_from_iter(args.clone()), |_| Ok(()))
                        .optional()
                })
                .map_err(self.err())?;
            if null.is_some() {
                out.push((v.clone(), None));
            }
            let mut from = String::new();
            loop {
                let mut a = args.clone();
                a.push(Value::Text(from.clone()));
                let next: Option<String> = self
                    .prepare(&format!(
                        "SELECT tls FROM findings WHERE {is} AND tls > ? ORDER BY tls LIMIT 1"
                    ))
                    .and_then(|mut st| st.query_row(params_from_iter(a), |r| r.get(0)).optional())
                    .map_err(self.err())?;
                let Some(t) = next else { break };
                from.clone_from(&t);
                out.push((v.clone(), Some(t)));
            }
        }
        Ok(out)
    }

    /// The column combinations of `filter` and its time range as a range of finding ids;
    /// `None` when nothing can match (an empty value list, or no finding in the range).
    fn finding_scope(&self, filter: &FindingFilter) -> Result<Option<FindingScope>, StoreError> {
        let Some(combos) = combos(filter) else {
            return Ok(None);
        };
        let ids = match filter.time {
            Some(range) => match self.time_ids(filter.run, range)? {
                Some(ids) => Some(ids),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some((combos, ids)))
    }

    /// The first and last finding id of a run's capture-time range (`None`: no finding
    /// there). Read from the `(run_id, ts)` index.
    fn time_ids(
        &self,
        run: Option<RunId>,
        (from, to): (i64, i64),
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let Some(run) = run else {
            return Ok(None);
        };
        self.prepare(
            "SELECT min(id), max(id) FROM findings WHERE run_id = ?1 AND ts >= ?2 AND ts < ?3",
        )
        .and_then(|mut st| {
            st.query_row(rusqlite::params![run, from, to], |r| {
                Ok(
                    match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                        (Some(lo), Some(hi)) => Some((lo, hi)),
                        _ => None,
                    },
                )
            })
        })
        .map_err(self.err())
    }

    /// How many findings match `filter`. Exact from the rollups when the filter is one
    /// they count (run, rule, severity, category; or run, rule and endpoint); else counted
    /// through the filter's index up to [`COUNT_CAP`].
    pub fn count(&self, filter: &FindingFilter) -> Result<Total, StoreError> {
        let Some((combos, ids)) = self.finding_scope(filter)? else {
            return Ok(Total { n: 0, exact: true });
        };
        let scalar = filter.exchange.is_none() && filter.after.is_none() && filter.time.is_none();
        let mut total = Total { n: 0, exact: true };
        for c in &combos {
            let endpoint = c.has("host") || c.has("method") || c.has("path_template");
            let transport = c.has("version") || c.has("tls");
            let n = if scalar && !endpoint && !c.has("status") && !transport {
                self.count_from("rule_counts", "count", filter.run, c)?
            } else if scalar
                && endpoint
                && (filter.run.is_some() || c.has("host"))
                && !c.has("rule")
                && !c.has("severity")
                && !c.has("category")
                && !c.has("status")
                && !transport
            {
                // Findings per endpoint: one row per (run, host, method, path), where the
                // rule rollups have one per rule as well (a host substring matching every
                // host summed 300,000 rollup rows at 1M findings; this reads 2,000).
                self.count_from("endpoints", "findings", filter.run, c)?
            } else if scalar
                && !c.has("severity")
                && !c.has("category")
                && !c.has("status")
                && !transport
                && (filter.run.is_some() || c.has("rule") || c.has("host"))
            {
                self.count_from("rollups", "count", filter.run, c)?
            } else {
                let left = COUNT_CAP - total.n;
                let (where_, mut args) = finding_where(filter, c, None, ids);
                args.push(Value::Integer(left + 1));
                let sql = format!("SELECT count(*) FROM (SELECT 1 FROM findings{where_} LIMIT ?)");
                let n: i64 = self
                    .prepare(&sql)
                    .and_then(|mut st| st.query_row(params_from_iter(args), |r| r.get(0)))
                    .map_err(self.err())?;
                if n > left {
                    return Ok(Total {
                        n: COUNT_CAP,
                        exact: false,
                    });
                }
                n
            };
            total.n += n;
        }
        Ok(total)
    }

    /// `sum(column)` of a rollup table over one combination (its columns exist there;
    /// "no value" is stored as '').
    fn count_from(
        &self,
        table: &str,
        column: &str,
        run: Option<RunId>,
        c: &Combo,
    ) -> Result<i64, StoreError> {
        let mut terms: Vec<String> = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(run) = run {
            terms.push("run_id = ?".into());
            args.push(Value::Integer(run));
        }
        for (col, v) in &c.cols {
            terms.push(format!("{col} = ?"));
            args.push(match v {
                Value::Null => Value::Text(String::new()),
                v => v.clone(),
            });
        }
        let where_ = if terms.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", terms.join(" AND "))
        };
        let sql = format!("SELECT coalesce(sum({column}), 0) FROM {table}{where_}");
        self.prepare(&sql)
            .and_then(|mut st| st.query_row(params_from_iter(args), |r| r.get(0)))
            .map_err(self.err())
    }

    /// Exact values of an endpoint column (`host`, `method` or `path_template`) that
    /// contain `text`, ignoring ASCII case; in `run` when given.
    pub fn endpoint_values(
        &self,
        column: EndpointColumn,
        text: &str,
        run: Option<RunId>,
    ) -> Result<Vec<String>, StoreError> {
        let col = column.name();
        let sql = match run {
            Some(_) => format!(
                "SELECT DISTINCT {col} FROM endpoints WHERE run_id = ?2 AND {col} LIKE ?1 \
                 ESCAPE '\\' ORDER BY 1 LIMIT {MAX_MATCHES}"
            ),
            None => format!(
                "SELECT DISTINCT {col} FROM endpoints WHERE {col} LIKE ?1 ESCAPE '\\' \
                 ORDER BY 1 LIMIT {MAX_MATCHES}"
            ),
        };
        let mut args = vec![Value::Text(like_pattern(text))];
        args.extend(run.map(Value::Integer));
        let mut st = self.prepare(&sql).map_err(self.err())?;
        st.query_map(params_from_iter(args), |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(self.err())
    }

    /// Rule ids (or categories) with findings that contain `text`, ignoring ASCII case.
    pub fn rule_values(&self, categories: bool, text: &str) -> Result<Vec<String>, StoreError> {
        let col = if categories { "category" } else { "rule" };
        let sql = format!(
            "SELECT DISTINCT {col} FROM rule_counts WHERE {col} LIKE ?1 ESCAPE '\\' \
             ORDER BY 1 LIMIT {MAX_MATCHES}"
        );
        let mut st = self.prepare(&sql).map_err(self.err())?;
        st.query_map([like_pattern(text)], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(self.err())
    }

    /// The statuses in `lo..=hi` that findings have, each found by one index seek.
    pub fn statuses_between(&self, lo: u16, hi: u16) -> Result<Vec<u16>, StoreError> {
        let mut out = Vec::new();
        let mut from = i64::from(lo);
        let mut st = self
            .prepare(
                "SELECT status FROM findings WHERE status >= ?1 AND status <= ?2 \
                 ORDER BY status LIMIT 1",
            )
            .map_err(self.err())?;
        while from <= i64::from(hi) {
            let next: Option<i64> = {
                use rusqlite::OptionalExtension;
                st.query_row(rusqlite::params![from, i64::from(hi)], |r| r.get(0))
                    .optional()
                    .map_err(self.err())?
            };
            let Some(s) = next else { break };
            out.extend(u16::try_from(s).ok());
            from = s + 1;
        }
        Ok(out)
    }

    /// Findings per rule, split by severity, most findings first (from `rule_counts`).
    pub fn rule_splits(&self, run: Option<RunId>) -> Result<Vec<RuleSplit>, StoreError> {
        let sql = format!(
            "SELECT rule, severity, min(category), sum(count) FROM rule_counts{} \
             GROUP BY rule, severity",
            run_clause(run)
        );
        let mut st = self.prepare(&sql).map_err(self.err())?;
        let rows: Vec<(String, i64, String, i64)> = st
            .query_map(params_from_iter(run), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        let mut out: Vec<RuleSplit> = Vec::new();
        for (rule, sev, category, n) in rows {
            let i = match out.iter().position(|x| x.rule == rule) {
                Some(i) => i,
                None => {
                    out.push(RuleSplit {
                        rule,
                        category,
                        ..RuleSplit::default()
                    });
                    out.len() - 1
                }
            };
            let x = &mut out[i];
            let sev = severity_of(sev);
            match sev {
                Severity::Error => x.error += n,
                Severity::Warning => x.warning += n,
                Severity::Info => x.info += n,
            }
            x.total += n;
            if n > 0 && x.worst.is_none_or(|w| rank(w) < rank(sev)) {
                x.worst = Some(sev);
            }
        }
        out.sort_by(|a, b| {
            let w = |x: &RuleSplit| x.worst.map_or(-1, rank);
            w(b).cmp(&w(a))
                .then(b.total.cmp(&a.total))
                .then(a.rule.cmp(&b.rule))
        });
        Ok(out)
    }

    /// Rule × endpoint issues (rollups summed over runs, or of one run), worst severity
    /// first, then most findings.
    pub fn issues(&self, run: Option<RunId>, limit: usize) -> Result<Vec<IssueRow>, StoreError> {
        self.issues_by(run, IssueOrder::Severity, limit)
    }

    /// Rule × endpoint issues in `order`, without aggregating the rollups. First the
    /// issues to show, in order, through an index: across runs from the `issues` table
    /// (one row per rule × endpoint, summed by the writer), within a run from the run's
    /// rollup rows (worst severity first, per severity by count). Then each one's rollup
    /// rows (one per run it appears in) through the `(rule, host, method, path)` index,
    /// which give the counts, times, runs and sample shown.
    fn top_issues(
        &self,
        run: Option<RunId>,
        order: IssueOrder,
        limit: usize,
    ) -> Result<Vec<IssueRow>, StoreError> {
        type Key = (String, String, String, String);
        let mut keys: Vec<Key> = Vec::new();
        let read_keys = |sql: &str, args: Vec<Value>| -> Result<Vec<Key>, StoreError> {
            let mut st = self.prepare(sql).map_err(self.err())?;
            st.query_map(params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(self.err())
        };
        let cols = "rule, host, method, path_template";
        let n = Value::Integer(limit as i64);
        match (run, order) {
            (None, order) => {
                let by = match order {
                    IssueOrder::Severity => "severity DESC, count DESC",
                    IssueOrder::Count => "count DESC",
                    IssueOrder::LastSeen => "last_ts DESC",
                    IssueOrder::Rule => "rule, host, path_template, method",
                };
                keys = read_keys(
                    &format!("SELECT {cols} FROM issues ORDER BY {by} LIMIT ?1"),
                    vec![n],
                )?;
            }
            (Some(id), IssueOrder::Severity) => {
                for sev in [2, 1, 0] {
                    if keys.len() >= limit {
                        break;
                    }
                    let more = read_keys(
                        &format!(
                            "SELECT {cols} FROM rollups WHERE run_id = ?1 AND severity = ?2 \
                             ORDER BY count DESC LIMIT ?3"
                        ),
                        vec![
                            Value::Integer(id),
                            Value::Integer(sev),
                            Value::Integer((limit - keys.len()) as i64),
                        ],
                    )?;
                    keys.extend(more);
                }
            }
            (Some(id), order) => {
                let by = match order {
                    IssueOrder::Count | IssueOrder::Severity => "count DESC",
                    IssueOrder::LastSeen => "last_ts DESC",
                    IssueOrder::Rule => "rule, host, method, path_template",
                };
                keys = read_keys(
                    &format!("SELECT {cols} FROM rollups WHERE run_id = ?1 ORDER BY {by} LIMIT ?2"),
                    vec![Value::Integer(id), n],
                )?;
            }
        }
        let sql = format!(
            "SELECT run_id, severity, count, first_ts, last_ts, sample_exchange_id FROM rollups \
             WHERE rule = ?1 AND host = ?2 AND method = ?3 AND path_template = ?4{} \
             ORDER BY run_id",
            if run.is_some() {
                " AND run_id = ?5"
            } else {
                ""
            }
        );
        let mut st = self.prepare(&sql).map_err(self.err())?;
        let mut out = Vec::with_capacity(keys.len());
        for (rule, host, method, path) in keys {
            let mut args = vec![
                Value::Text(rule.clone()),
                Value::Text(host.clone()),
                Value::Text(method.clone()),
                Value::Text(path.clone()),
            ];
            args.extend(run.map(Value::Integer));
            type Part = (RunId, i64, i64, Option<i64>, Option<i64>, Option<i64>);
            let parts: Vec<Part> = st
                .query_map(params_from_iter(args), |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .and_then(Iterator::collect)
                .map_err(self.err())?;
            out.push(IssueRow {
                severity: severity_of(parts.iter().map(|p| p.1).max().unwrap_or(0)),
                count: parts.iter().map(|p| p.2).sum(),
                first_ts: parts.iter().filter_map(|p| p.3).min(),
                last_ts: parts.iter().filter_map(|p| p.4).max(),
                sample_exchange: parts.iter().filter_map(|p| p.5).max(),
                runs: parts.iter().map(|p| (p.0, p.2)).collect(),
                rule,
                host,
                method,
                path_template: path,
            });
        }
        Ok(out)
    }

    /// [`Reader::issues`] in another order.
    pub fn issues_by(
        &self,
        run: Option<RunId>,
        order: IssueOrder,
        limit: usize,
    ) -> Result<Vec<IssueRow>, StoreError> {
        self.top_issues(run, order, limit.clamp(1, 1000))
    }

    /// Exchanges per run by status class (`[1xx, 2xx, 3xx, 4xx, 5xx, none]`), for runs
    /// from `first_run` on, oldest first (from the endpoint rollups).
    pub fn status_by_run(&self, first_run: RunId) -> Result<PerRun<6>, StoreError> {
        let mut st = self
            .prepare(
                "SELECT run_id, sum(status_1xx), sum(status_2xx), sum(status_3xx), \
                 sum(status_4xx), sum(status_5xx), sum(status_none) FROM endpoints \
                 WHERE run_id >= ?1 GROUP BY run_id ORDER BY run_id",
            )
            .map_err(self.err())?;
        st.query_map([first_run], |r| {
            Ok((
                r.get(0)?,
                [
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ],
            ))
        })
        .and_then(Iterator::collect)
        .map_err(self.err())
    }

    /// Findings per run by severity (`[info, warning, error]`), for runs from `first_run`
    /// on, oldest first.
    pub fn severity_by_run(&self, first_run: RunId) -> Result<PerRun<3>, StoreError> {
        let mut st = self
            .prepare(
                "SELECT run_id, severity, sum(count) FROM rule_counts WHERE run_id >= ?1 \
                 GROUP BY run_id, severity ORDER BY run_id",
            )
            .map_err(self.err())?;
        let rows: Vec<(RunId, i64, i64)> = st
            .query_map([first_run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        let mut out: PerRun<3> = Vec::new();
        for (run, sev, n) in rows {
            if out.last().is_none_or(|(r, _)| *r != run) {
                out.push((run, [0; 3]));
            }
            if let Some((_, c)) = out.last_mut() {
                c[rank(severity_of(sev)) as usize] += n;
            }
        }
        Ok(out)
    }

    /// Where a connection's frames are: its endpoints, its first frame (file index and
    /// number) and, per capture file, the last frame of its exchanges there.
    pub fn connection_frames(
        &self,
        connection: i64,
    ) -> Result<Option<ConnectionFrames>, StoreError> {
        use rusqlite::OptionalExtension;
        let head = self
            .prepare(
                "SELECT run_id, client, server, first_file, first_frame FROM connections \
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.query_row([connection], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()
            })
            .map_err(self.err())?;
        let Some((run, client, server, first_file, first_frame)) = head else {
            return Ok(None);
        };
        let mut st = self
            .prepare(
                "SELECT file, max(coalesce(last_frame, first_frame, 0)) FROM exchanges \
                 WHERE connection_id = ?1 GROUP BY file",
            )
            .map_err(self.err())?;
        let last_frames = st
            .query_map([connection], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(Some(ConnectionFrames {
            run,
            client,
            server,
            first_file,
            first_frame,
            last_frames,
        }))
    }

    /// Whether the packet store kept packets of a connection (live runs).
    pub fn connection_has_packets(&self, connection: i64) -> Result<bool, StoreError> {
        self.prepare("SELECT EXISTS (SELECT 1 FROM packets WHERE connection_id = ?1)")
            .and_then(|mut st| st.query_row([connection], |r| r.get(0)))
            .map_err(self.err())
    }

    /// The packets the packet store kept of a connection (live runs), in frame order.
    pub fn connection_packets(&self, connection: i64) -> Result<StoredPackets, StoreError> {
        use rusqlite::OptionalExtension;
        let evicted: bool = self
            .prepare("SELECT packets_evicted FROM connections WHERE id = ?1")
            .and_then(|mut st| st.query_row([connection], |r| r.get(0)).optional())
            .map_err(self.err())?
            .unwrap_or(false);
        let mut st = self
            .prepare(
                "SELECT frame, ts, linktype, orig_len, data FROM packets \
                 WHERE connection_id = ?1 ORDER BY frame",
            )
            .map_err(self.err())?;
        let packets = st
            .query_map([connection], |r| {
                Ok(PacketRow {
                    frame: r.get(0)?,
                    ts: r.get(1)?,
                    linktype: r.get(2)?,
                    orig_len: r.get(3)?,
                    data: r.get(4)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(StoredPackets { packets, evicted })
    }

    /// The ids of the exchanges before and after `idx` on a connection.
    pub fn neighbours(
        &self,
        connection: i64,
        idx: i64,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        use rusqlite::OptionalExtension;
        let mut st = self
            .prepare("SELECT id FROM exchanges WHERE connection_id = ?1 AND idx = ?2")
            .map_err(self.err())?;
        let mut at = |i: i64| {
            st.query_row([connection, i], |r| r.get(0))
                .optional()
                .map_err(self.err())
        };
        let prev = if idx > 0 { at(idx - 1)? } else { None };
        let next = at(idx + 1)?;
        Ok((prev, next))
    }

    /// Findings per rule (with the rule's worst severity seen), most frequent first. Read
    /// from the `rule_counts` rollup, which the writer keeps in step with the rows.
    pub fn counts_by_rule(&self, run: Option<RunId>) -> Result<Vec<RuleCount>, StoreError> {
        let sql = format!(
            "SELECT rule, max(severity), min(category), sum(count) FROM rule_counts{} \
             GROUP BY rule ORDER BY sum(count) DESC, rule",
            run_clause(run)
        );
        let mut st = self.prepare(&sql).map_err(self.err())?;
        st.query_map(params_from_iter(run), |r| {
            Ok(RuleCount {
                rule: r.get(0)?,
                severity: severity_of(r.get(1)?),
                category: r.get(2)?,
                count: r.get(3)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(self.err())
    }

    /// Findings per severity: `[info, warning, error]`.
    pub fn counts_by_severity(&self, run: Option<RunId>) -> Result<[i64; 3], StoreError> {
        let sql = format!(
            "SELECT severity, sum(count) FROM rule_counts{} GROUP BY severity",
            run_clause(run)
        );
        let mut st = self.prepare(&sql).map_err(self.err())?;
        let mut out = [0i64; 3];
        let rows = st
            .query_map(params_from_iter(run), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(self.err())?;
        for row in rows {
            let (sev, n) = row.map_err(self.err())?;
            out[rank(severity_of(sev)) as usize] += n;
        }
        Ok(out)
    }

    /// The rollups of a run (or of every run), most findings first (ties in index order).
    pub fn rollups(&self, run: Option<RunId>, limit: usize) -> Result<Vec<RollupRow>, StoreError> {
        let sql = format!(
            "SELECT run_id, rule, host, method, path_template, severity, count, first_ts, \
             last_ts, sample_exchange_id FROM rollups{} ORDER BY count DESC LIMIT ?",
            run_clause(run)
        );
        let mut args: Vec<Value> = run.map(Value::Integer).into_iter().collect();
        args.push(Value::Integer(limit as i64));
        let mut st = self.prepare(&sql).map_err(self.err())?;
        st.query_map(params_from_iter(args), |r| {
            Ok(RollupRow {
                run: r.get(0)?,
                rule: r.get(1)?,
                host: r.get(2)?,
                method: r.get(3)?,
                path_template: r.get(4)?,
                severity: severity_of(r.get(5)?),
                count: r.get(6)?,
                first_ts: r.get(7)?,
                last_ts: r.get(8)?,
                sample_exchange: r.get(9)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(self.err())
    }

    /// A run's endpoints (optionally of the hosts containing `host`, ignoring ASCII case),
    /// most exchanges first.
    pub fn endpoints(
        &self,
        run: RunId,
        host: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE run_id = ?{} \
             ORDER BY exchanges DESC LIMIT ?",
            if host.is_some() {
                " AND host LIKE ? ESCAPE '\\'"
            } else {
                ""
            }
        );
        let mut args = vec![Value::Integer(run)];
        args.extend(host.map(|h| Value::Text(like_pattern(h))));
        args.push(Value::Integer(limit.clamp(1, 10_000) as i64));
        let mut st = self.prepare(&sql).map_err(self.err())?;
        st.query_map(params_from_iter(args), endpoint_row)
            .and_then(Iterator::collect)
            .map_err(self.err())
    }

    /// Counts per `width_ns`-wide time bucket of a run, in bucket order: `(bucket start,
    /// series key, count)` (keys as in the `series` table).
    pub fn series(&self, run: RunId, width_ns: i64) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let mut st = self
            .prepare(
                "SELECT bucket, key, count FROM series WHERE run_id = ?1 AND width_ns = ?2 \
                 ORDER BY bucket",
            )
            .map_err(self.err())?;
        st.query_map(rusqlite::params![run, width_ns], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .and_then(Iterator::collect)
        .map_err(self.err())
    }

    /// The newest finding's id (0 when there is none).
    pub fn last_finding_id(&self) -> Result<i64, StoreError> {
        self.prepare("SELECT coalesce(max(id), 0) FROM findings")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err())
    }

    /// The stored `exchanges --format jsonl` object of an exchange.
    pub fn exchange_json(&self, id: i64) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.prepare("SELECT json FROM exchanges WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
            .map_err(self.err())
    }

    /// An exchange with its frames, latency and body previews.
    pub fn exchange(&self, id: i64) -> Result<Option<ExchangeDetail>, StoreError> {
        use rusqlite::OptionalExtension;
        let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
        self.prepare(
            "SELECT e.id, e.run_id, e.file, e.req_frame, e.resp_frame, e.first_frame, \
                 e.latency_ns, e.req_preview, e.resp_preview, e.req_preview_cut, \
                 e.resp_preview_cut, e.json, e.connection_id, e.idx, e.req_first_ts, \
                 e.req_last_ts, e.resp_first_ts, e.resp_last_ts, e.ts, e.last_frame, \
                 e.version, c.tls_protocol, c.tls_cipher, c.tls_alpn, c.tls_sni \
                 FROM exchanges e JOIN connections c ON c.id = e.connection_id WHERE e.id = ?1",
        )
        .and_then(|mut st| {
            st.query_row([id], |r| {
                Ok(ExchangeDetail {
                    id: r.get(0)?,
                    run: r.get(1)?,
                    file: r.get(2)?,
                    req_frame: r.get(3)?,
                    resp_frame: r.get(4)?,
                    first_frame: r.get(5)?,
                    latency_ns: r.get(6)?,
                    req_preview: text(r.get(7)?),
                    resp_preview: text(r.get(8)?),
                    req_preview_cut: r.get(9)?,
                    resp_preview_cut: r.get(10)?,
                    json: r.get(11)?,
                    connection: r.get(12)?,
                    idx: r.get(13)?,
                    req_first_ts: r.get(14)?,
                    req_last_ts: r.get(15)?,
                    resp_first_ts: r.get(16)?,
                    resp_last_ts: r.get(17)?,
                    ts: r.get(18)?,
                    last_frame: r.get(19)?,
                    version: r.get(20)?,
                    tls: r
                        .get::<_, Option<String>>(21)?
                        .map(|protocol| {
                            Ok::<_, rusqlite::Error>(crate::http::TlsInfo {
                                protocol,
                                cipher_suite: r.get::<_, Option<String>>(22)?.unwrap_or_default(),
                                alpn: r.get(23)?,
                                sni: r.get(24)?,
                            })
                        })
                        .transpose()?,
                })
            })
            .optional()
        })
        .map_err(self.err())
    }

    /// The underlying connection, for queries not wrapped here (it is read-only).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
