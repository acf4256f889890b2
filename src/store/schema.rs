//! The SQLite schema and its migrations. `PRAGMA user_version` holds the number of steps
//! applied; each step runs in one transaction with the version bump, so a database is always
//! at a whole version. Steps are never edited once released: a change is a new step.
//!
//! Conventions: times are integer nanoseconds since the Unix epoch (capture time unless the
//! column says `wall`); severities are integers (0 info, 1 warning, 2 error) so that
//! "at least warning" is a range; frame numbers are 1-based within the capture file whose
//! 0-based index in the run's `files` goes beside them.

use rusqlite::{Connection, TransactionBehavior};

/// Migration steps: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes and reads.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

const V1: &str = r#"
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,               -- 'files' | 'live'
    source          TEXT NOT NULL,               -- JSON: {"files": [...]} or {"interface": .., "filter": ..}
    started_wall    INTEGER NOT NULL,            -- wall clock, ns
    finished_wall   INTEGER,                     -- NULL while running or when interrupted
    first_ts        INTEGER,                     -- capture time of the first / last exchange
    last_ts         INTEGER,
    packets         INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    kernel_drops    INTEGER NOT NULL DEFAULT 0,  -- live capture: dropped by the kernel
    internal_drops  INTEGER NOT NULL DEFAULT 0,  -- live capture: dropped by full queues
    decode_errors   INTEGER NOT NULL DEFAULT 0,
    connections     INTEGER NOT NULL DEFAULT 0,
    exchanges       INTEGER NOT NULL DEFAULT 0,
    findings        INTEGER NOT NULL DEFAULT 0,
    summary         TEXT                         -- the full run summary as JSON, at the end
);

CREATE TABLE connections (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    first_file   INTEGER NOT NULL,               -- the connection's first frame: its id in the run
    first_frame  INTEGER NOT NULL,
    client       TEXT NOT NULL,                  -- "ip:port", IPv6 as "[addr]:port"
    server       TEXT NOT NULL,
    first_ts     INTEGER NOT NULL,
    tls          INTEGER NOT NULL,
    mid_stream   INTEGER NOT NULL,
    UNIQUE (run_id, first_file, first_frame)
);

CREATE TABLE exchanges (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    connection_id    INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    idx              INTEGER NOT NULL,           -- 0-based position on the connection
    file             INTEGER NOT NULL,           -- capture file of the exchange (index in runs.source)
    method           TEXT,
    host             TEXT,
    target           TEXT,
    path             TEXT,                       -- target without query
    path_template    TEXT,                       -- ids collapsed: /users/{id}
    status           INTEGER,
    req_frame        INTEGER,                    -- frame that completed the head (as in the JSON)
    resp_frame       INTEGER,
    first_frame      INTEGER,                    -- first and last frame of the exchange
    last_frame       INTEGER,
    req_first_ts     INTEGER,
    req_last_ts      INTEGER,
    resp_first_ts    INTEGER,
    resp_last_ts     INTEGER,
    latency_ns       INTEGER,                    -- response first byte - request last byte
    ts               INTEGER NOT NULL,           -- request head time, else response head time
    req_body_bytes   INTEGER,
    resp_body_bytes  INTEGER,
    req_preview      BLOB,                       -- decoded body, redacted, bounded
    resp_preview     BLOB,
    req_preview_cut  INTEGER NOT NULL DEFAULT 0, -- 1 when the preview is not the whole body
    resp_preview_cut INTEGER NOT NULL DEFAULT 0,
    anomalies        TEXT NOT NULL,              -- names, space-separated, sorted
    finding_count    INTEGER NOT NULL DEFAULT 0,
    json             TEXT NOT NULL,              -- the `exchanges --format jsonl` object (redacted)
    UNIQUE (connection_id, idx)
);
CREATE INDEX exchanges_run_ts ON exchanges (run_id, ts);
CREATE INDEX exchanges_endpoint ON exchanges (host, path_template, method);
CREATE INDEX exchanges_status ON exchanges (status, ts);

CREATE TABLE findings (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    exchange_id    INTEGER REFERENCES exchanges(id) ON DELETE CASCADE,
    rule           TEXT NOT NULL,
    severity       INTEGER NOT NULL,             -- 0 info, 1 warning, 2 error
    category       TEXT NOT NULL,
    message        TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    side           TEXT,                         -- 'request' | 'response' | NULL
    related        TEXT,                         -- JSON [{"exchange": id|null, "connection": {..}, "index": n}]
    -- copied from the exchange, so that every filter is one index
    host           TEXT,
    method         TEXT,
    status         INTEGER,
    path_template  TEXT,
    ts             INTEGER
);
CREATE INDEX findings_run ON findings (run_id, id);
CREATE INDEX findings_rule ON findings (rule, id);
CREATE INDEX findings_severity ON findings (severity, id);
CREATE INDEX findings_category ON findings (category, id);
CREATE INDEX findings_host ON findings (host, id);
CREATE INDEX findings_status ON findings (status, id);
CREATE INDEX findings_exchange ON findings (exchange_id);

CREATE TABLE rollups (
    run_id             INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rule               TEXT NOT NULL,
    host               TEXT NOT NULL,            -- '' when the exchange had none
    method             TEXT NOT NULL,
    path_template      TEXT NOT NULL,
    severity           INTEGER NOT NULL,
    count              INTEGER NOT NULL,
    first_ts           INTEGER,
    last_ts            INTEGER,
    sample_exchange_id INTEGER,
    PRIMARY KEY (run_id, rule, host, method, path_template)
) WITHOUT ROWID;
CREATE INDEX rollups_rule ON rollups (rule, count);
"#;

/// What a database's version says about this build.
#[derive(Debug)]
pub enum Migrated {
    /// Applied this many steps (0: already current).
    Applied(u32),
    /// The file was written by a newer wirelint.
    TooNew(u32),
}

/// Brings the schema to [`VERSION`], one transaction per step. Safe against another process
/// migrating at the same time: the version is re-read under the write lock.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Migrated> {
    let mut applied = 0;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current > VERSION {
            return Ok(Migrated::TooNew(current));
        }
        let Some(step) = MIGRATIONS.get(current as usize) else {
            return Ok(Migrated::Applied(applied));
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
        applied += 1;
    }
}
