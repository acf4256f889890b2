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
}

/// Which findings to list; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct FindingFilter {
    pub run: Option<RunId>,
    pub rule: Option<String>,
    pub severity: Option<Severity>,
    pub category: Option<String>,
    pub host: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    /// An exact path template, e.g. `/users/{id}`.
    pub path_template: Option<String>,
    pub exchange: Option<i64>,
    /// Only findings with a larger id (what a live view has not shown yet).
    pub after: Option<i64>,
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
}

/// A page of findings, newest first; `next` is the cursor of the following page.
#[derive(Clone, Debug, Serialize)]
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
    packets, bytes, kernel_drops, internal_drops, decode_errors, connections, exchanges, findings";

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
    })
}

const FINDING_COLUMNS: &str = "id, run_id, exchange_id, rule, severity, category, message, \
    evidence, side, related, host, method, status, path_template, ts";

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
    })
}

/// `WHERE …` text and its bound values for a finding filter (plus a keyset cursor).
fn finding_where(f: &FindingFilter, before: Option<i64>) -> (String, Vec<Value>) {
    let mut terms: Vec<&'static str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut text = |term: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            terms.push(term);
            args.push(Value::Text(v.clone()));
        }
    };
    text("rule = ?", &f.rule);
    text("category = ?", &f.category);
    text("host = ?", &f.host);
    text("method = ?", &f.method);
    text("path_template = ?", &f.path_template);
    let mut int = |term: &'static str, v: Option<i64>| {
        if let Some(v) = v {
            terms.push(term);
            args.push(Value::Integer(v));
        }
    };
    int("run_id = ?", f.run);
    int("severity = ?", f.severity.map(rank));
    int("status = ?", f.status.map(i64::from));
    int("exchange_id = ?", f.exchange);
    int("id > ?", f.after);
    int("id < ?", before);
    if terms.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", terms.join(" AND ")), args)
    }
}

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
    /// same however deep it is).
    pub fn findings(
        &self,
        filter: &FindingFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<FindingsPage, StoreError> {
        let (where_, mut args) = finding_where(filter, before);
        let limit = limit.clamp(1, 1000);
        args.push(Value::Integer(limit as i64 + 1));
        let sql =
            format!("SELECT {FINDING_COLUMNS} FROM findings{where_} ORDER BY id DESC LIMIT ?");
        let mut st = self.prepare(&sql).map_err(self.err())?;
        let mut findings: Vec<FindingRow> = st
            .query_map(params_from_iter(args), finding_row)
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        let next = if findings.len() > limit {
            findings.truncate(limit);
            findings.last().map(|f| f.id)
        } else {
            None
        };
        Ok(FindingsPage { findings, next })
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

    /// A run's endpoints (optionally of one host), most exchanges first.
    pub fn endpoints(
        &self,
        run: RunId,
        host: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE run_id = ?{} \
             ORDER BY exchanges DESC LIMIT ?",
            if host.is_some() { " AND host = ?" } else { "" }
        );
        let mut args = vec![Value::Integer(run)];
        args.extend(host.map(|h| Value::Text(h.to_string())));
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
            "SELECT id, run_id, file, req_frame, resp_frame, first_frame, latency_ns, \
                 req_preview, resp_preview, req_preview_cut, resp_preview_cut, json \
                 FROM exchanges WHERE id = ?1",
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
