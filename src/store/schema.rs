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
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

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

/// Rollups the dashboard reads instead of aggregating `exchanges` or `findings` per request
/// (the writer updates them in the transaction of the rows they count), and the indexes the
/// remaining queries need. Existing runs are backfilled, except latency histograms, which
/// SQL cannot build: their endpoints show no percentiles.
const V2: &str = r#"
-- Per (run, host, method, path template): exchanges, status mix, findings and a latency
-- histogram (see store::latency for the encoding and the error bound of its percentiles).
CREATE TABLE endpoints (
    run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    host           TEXT NOT NULL,               -- '' when the request had none
    method         TEXT NOT NULL,               -- '' when there was no request
    path_template  TEXT NOT NULL,
    exchanges      INTEGER NOT NULL,
    status_1xx     INTEGER NOT NULL,
    status_2xx     INTEGER NOT NULL,
    status_3xx     INTEGER NOT NULL,
    status_4xx     INTEGER NOT NULL,
    status_5xx     INTEGER NOT NULL,
    status_none    INTEGER NOT NULL,            -- no response (or a status outside 100-599)
    findings       INTEGER NOT NULL,
    latency_count  INTEGER NOT NULL,            -- exchanges with a latency (both messages)
    latency_hist   BLOB NOT NULL,
    first_ts       INTEGER,
    last_ts        INTEGER,
    PRIMARY KEY (run_id, host, method, path_template)
) WITHOUT ROWID;
CREATE INDEX endpoints_top ON endpoints (run_id, exchanges);

-- Counts per time bucket, at several bucket widths so that a chart of any span reads at
-- most a few hundred rows. key: 0-4 status class 1xx-5xx, 5 no status; 10 + severity rank
-- (0 info, 1 warning, 2 error) for findings.
CREATE TABLE series (
    run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    width_ns  INTEGER NOT NULL,
    bucket    INTEGER NOT NULL,                 -- start of the bucket, a multiple of width_ns
    key       INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (run_id, width_ns, bucket, key)
) WITHOUT ROWID;

-- Findings per (run, rule, severity): the overview's and rules page's counts.
CREATE TABLE rule_counts (
    run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rule      TEXT NOT NULL,
    severity  INTEGER NOT NULL,
    category  TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (run_id, rule, severity)
) WITHOUT ROWID;

-- No dashboard query reads exchanges by run/time, endpoint or status any more (the rollups
-- above answer those): their indexes only slowed every insert.
DROP INDEX exchanges_run_ts;
DROP INDEX exchanges_endpoint;
DROP INDEX exchanges_status;

-- Filters that had no index, and the overview's top rollups.
CREATE INDEX findings_method ON findings (method, id);
CREATE INDEX findings_path ON findings (path_template, id);
CREATE INDEX rollups_top ON rollups (count);
CREATE INDEX rollups_run_top ON rollups (run_id, count);

INSERT INTO rule_counts (run_id, rule, severity, category, count)
    SELECT run_id, rule, severity, min(category), count(*) FROM findings
    GROUP BY run_id, rule, severity;
INSERT INTO endpoints
    SELECT e.run_id, coalesce(e.host, ''), coalesce(e.method, ''), coalesce(e.path_template, ''),
        count(*),
        sum(e.status BETWEEN 100 AND 199), sum(e.status BETWEEN 200 AND 299),
        sum(e.status BETWEEN 300 AND 399), sum(e.status BETWEEN 400 AND 499),
        sum(e.status BETWEEN 500 AND 599),
        sum(e.status IS NULL OR e.status NOT BETWEEN 100 AND 599),
        sum(e.finding_count), 0, x'', min(e.ts), max(e.ts)
    FROM exchanges e GROUP BY 1, 2, 3, 4;
WITH widths(w) AS (VALUES (10000000), (100000000), (1000000000), (10000000000),
        (60000000000), (600000000000), (3600000000000), (86400000000000))
INSERT INTO series (run_id, width_ns, bucket, key, count)
    SELECT e.run_id, w, (e.ts / w) * w,
        CASE WHEN e.status BETWEEN 100 AND 599 THEN e.status / 100 - 1 ELSE 5 END, count(*)
    FROM exchanges e, widths GROUP BY 1, 2, 3, 4;
WITH widths(w) AS (VALUES (10000000), (100000000), (1000000000), (10000000000),
        (60000000000), (600000000000), (3600000000000), (86400000000000))
INSERT INTO series (run_id, width_ns, bucket, key, count)
    SELECT f.run_id, w, (f.ts / w) * w, 10 + f.severity, count(*)
    FROM findings f, widths WHERE f.ts IS NOT NULL GROUP BY 1, 2, 3, 4;
"#;

/// Why a run ended early (signals during `analyze`).
const V3: &str = r#"
-- Why a run ended early ('SIGINT', 'SIGTERM'); NULL when it read all its input. An
-- interrupted run still gets finished_wall and the summary of what was read.
ALTER TABLE runs ADD COLUMN interrupted TEXT;
"#;

/// Indexes for the dashboard's filters: findings by capture time within a run (a chart's
/// bar opens its time range), and the names of endpoints and rollups, so that a substring
/// filter ("espn", "get") reads the small rollup tables' indexes to find the exact values
/// the findings are then looked up by, and a rollup count by endpoint is an index range.
const V4: &str = r#"
CREATE INDEX findings_run_ts ON findings (run_id, ts);
CREATE INDEX endpoints_names ON endpoints (host, method, path_template);
CREATE INDEX rollups_endpoint ON rollups (host, method, path_template);
"#;

/// TLS facts and HTTP versions, for the exchange page and the version and TLS filters; and
/// the index that makes each issue's per-run rows one lookup across runs.
///
/// - `connections.tls_*`: what a decrypted connection negotiated (never a key or secret);
///   NULL for cleartext.
/// - `exchanges.version`, and on findings `version` and `tls` (the connection's TLS
///   protocol, NULL for cleartext), copied as the other exchange columns are, so that a
///   version or TLS filter is one `(version, tls, id)` index lookup per exact pair.
/// - `rollups_issue`: the issues page reads the rows of each listed issue by (rule, host,
///   method, path template); `rollups_endpoint` alone read every rule of the endpoint to
///   find them. `rollups_run_last`: one run's issues by last seen.
/// - `findings_endpoint`: one endpoint's findings newest first, one index range.
/// - `issues`: the rollups summed over runs, which the issues page across runs reads in
///   any order through an index.
///
/// Existing rows are backfilled from the stored exchange JSON (which has carried `tls`
/// since decryption was added).
const V5: &str = r#"
ALTER TABLE connections ADD COLUMN tls_protocol TEXT;    -- 'TLS 1.2', 'TLS 1.3'
ALTER TABLE connections ADD COLUMN tls_cipher TEXT;      -- IANA name
ALTER TABLE connections ADD COLUMN tls_alpn TEXT;        -- the protocol the server selected
ALTER TABLE connections ADD COLUMN tls_sni TEXT;         -- the server name the client asked for
ALTER TABLE exchanges ADD COLUMN version TEXT;           -- 'HTTP/1.1', 'HTTP/2', ...
ALTER TABLE findings ADD COLUMN version TEXT;
ALTER TABLE findings ADD COLUMN tls TEXT;                -- the connection's tls_protocol

UPDATE exchanges SET version = coalesce(json_extract(json, '$.request.version'),
    json_extract(json, '$.response.version'));
UPDATE connections SET
    tls_protocol = t.protocol, tls_cipher = t.cipher, tls_alpn = t.alpn, tls_sni = t.sni
    FROM (SELECT connection_id AS id, json_extract(json, '$.tls.protocol') AS protocol,
            json_extract(json, '$.tls.cipher_suite') AS cipher,
            json_extract(json, '$.tls.alpn') AS alpn, json_extract(json, '$.tls.sni') AS sni
          FROM exchanges WHERE json_extract(json, '$.tls') IS NOT NULL) AS t
    WHERE connections.id = t.id;
UPDATE findings SET version = e.version, tls = c.tls_protocol
    FROM exchanges e JOIN connections c ON c.id = e.connection_id
    WHERE findings.exchange_id = e.id;

CREATE INDEX findings_transport ON findings (version, tls, id);
CREATE INDEX rollups_issue ON rollups (rule, host, method, path_template);
CREATE INDEX rollups_run_last ON rollups (run_id, last_ts);
-- One endpoint's findings (every count link of the endpoints and issues pages opens one)
-- newest first: findings_path alone read about 50 rows per match at 1M findings.
CREATE INDEX findings_endpoint ON findings (host, path_template, method, id);

-- The rollups summed over runs per rule × endpoint, kept by the writer in the same
-- transaction: the issues page across runs reads its order here through an index
-- instead of aggregating every run's rollups (12 s at 1M findings for `sort=last`).
CREATE TABLE issues (
    rule           TEXT NOT NULL,
    host           TEXT NOT NULL,
    method         TEXT NOT NULL,
    path_template  TEXT NOT NULL,
    severity       INTEGER NOT NULL,            -- the worst
    count          INTEGER NOT NULL,            -- findings in every run
    last_ts        INTEGER,
    PRIMARY KEY (rule, host, path_template, method)
) WITHOUT ROWID;
CREATE INDEX issues_severity ON issues (severity, count);
CREATE INDEX issues_count ON issues (count);
CREATE INDEX issues_last ON issues (last_ts);
INSERT INTO issues (rule, host, method, path_template, severity, count, last_ts)
    SELECT rule, host, method, path_template, max(severity), sum(count), max(last_ts)
    FROM rollups GROUP BY rule, host, method, path_template;
"#;

/// Two things of issue 11: the packet store of live runs (see `crate::packets`): the frames of connections that
/// got a finding, secrets masked, so that the dashboard can give a live run's connection
/// as a pcap. Bounded by the writer's disk cap (oldest connections' packets deleted first,
/// counted on the run that deleted them and marked on the connection); and the span of
/// each finding.
const V6: &str = r#"
CREATE TABLE packets (
    id             INTEGER PRIMARY KEY,
    connection_id  INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    frame          INTEGER NOT NULL,             -- the frame's number in the run
    ts             INTEGER NOT NULL,
    linktype       INTEGER NOT NULL,
    orig_len       INTEGER NOT NULL,             -- length on the wire (data may be cut by the snaplen)
    data           BLOB NOT NULL                 -- the frame as captured, secrets masked
);
CREATE INDEX packets_connection ON packets (connection_id, frame);

-- 1 once the packet store's cap deleted the connection's packets.
ALTER TABLE connections ADD COLUMN packets_evicted INTEGER NOT NULL DEFAULT 0;
-- Packets and bytes this run kept, and connections whose packets it evicted (of any run).
ALTER TABLE runs ADD COLUMN stored_packets INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN stored_packet_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN packet_evictions INTEGER NOT NULL DEFAULT 0;

-- The part of the message a finding is about, as JSON (`crate::rules::span::Span`):
-- {"side": "request"|"response", "part": "start_line"|"header"|"body", ...}; NULL when
-- the engine could not tell (and for findings written before).
ALTER TABLE findings ADD COLUMN span TEXT;
"#;

/// The packet store's caps, counted on the live run they applied to: packets of flagged
/// connections past the per-connection cap, and flagged connections forgotten because
/// flagged connections filled their share of its memory (their later packets not kept).
const V7: &str = r#"
ALTER TABLE runs ADD COLUMN packets_over_connection_cap INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN flagged_connections_dropped INTEGER NOT NULL DEFAULT 0;
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

/// Bucket widths of the `series` table, in ns (10 ms to 1 day); the writer counts every
/// exchange and finding at each. Must match the widths V2 backfilled with.
pub const SERIES_WIDTHS_NS: [i64; 8] = [
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    60_000_000_000,
    600_000_000_000,
    3_600_000_000_000,
    86_400_000_000_000,
];

/// `series.key` of an exchange's status: 0-4 for 1xx-5xx, 5 for none or out of range.
pub fn status_key(status: Option<i64>) -> i64 {
    match status {
        Some(s @ 100..=599) => s / 100 - 1,
        _ => 5,
    }
}

/// `series.key` of a finding of this severity rank (0 info, 1 warning, 2 error).
pub fn severity_key(rank: i64) -> i64 {
    10 + rank.clamp(0, 2)
}

/// The start of the `width`-wide bucket holding `ts` (truncating, as V2's SQL backfill).
pub fn bucket_of(ts: i64, width: i64) -> i64 {
    ts / width * width
}
