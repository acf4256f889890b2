//! The SQLite store: migrations, `analyze --db` end to end against the jsonl output,
//! rollups, keyset pagination, readers beside a writer, and bad database paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;
use wirelint::capture::{CaptureSet, FrameRef};
use wirelint::config::Config;
use wirelint::http::Exchange;
use wirelint::pipeline::{self, PipelineConfig, RunSummary};
use wirelint::redact::Redactor;
use wirelint::rules::{ExchangeRef, Finding, Severity};
use wirelint::store::read::{EndpointColumn, FindingFilter, IssueOrder};
use wirelint::store::{Reader, RunSource, Store, StoreError, WriterConfig, schema};

use crate::support;

fn wirelint(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the wirelint binary runs")
}

fn demo() -> PathBuf {
    support::repo().join("captures/demo-api.pcap")
}

fn lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn count(conn: &Connection, sql: &str, run: i64) -> i64 {
    conn.query_row(sql, [run], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn migrations_build_an_empty_file_and_reopen_keeps_the_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").expect("write");
    let store = Store::open(&path).expect("open an empty file");
    assert_eq!(store.version().expect("version"), schema::VERSION);
    let source = RunSource::Files {
        files: vec!["a.pcap".into()],
    };
    let run = store.begin_run(&source).expect("begin");
    drop(store);

    let again = Store::open(&path).expect("re-open");
    assert_eq!(again.version().expect("version"), schema::VERSION);
    let reader = Reader::open(&path).expect("reader");
    let runs = reader.runs().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, run);
    assert!(runs[0].source.contains("a.pcap"));

    let conn = Connection::open(&path).expect("sqlite");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    for table in ["runs", "connections", "exchanges", "findings", "rollups"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .expect("master");
        assert_eq!(n, 1, "table {table}");
    }

    // A database from a newer wirelint is refused with its path named.
    conn.pragma_update(None, "user_version", schema::VERSION + 1)
        .expect("bump");
    drop(conn);
    match Store::open(&path) {
        Err(e @ StoreError::TooNew { .. }) => {
            assert!(e.to_string().contains("empty.db"), "{e}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
    assert!(matches!(
        Reader::open(&path),
        Err(StoreError::TooNew { .. })
    ));
}

#[test]
fn analyze_twice_adds_two_runs_that_match_the_jsonl_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("w.db");
    let db_arg = db.to_string_lossy().into_owned();
    let demo = demo();
    let demo_arg = demo.to_string_lossy().into_owned();
    let plain = wirelint(
        &[
            "analyze",
            &demo_arg,
            "--no-db",
            "--format",
            "jsonl",
            "--fail-on",
            "never",
        ],
        dir.path(),
    );
    assert!(
        !dir.path().join("wirelint.db").exists(),
        "--no-db records nothing"
    );
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let o = wirelint(
            &[
                "analyze",
                &demo_arg,
                "--format",
                "jsonl",
                "--fail-on",
                "never",
                "--db",
                &db_arg,
            ],
            dir.path(),
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.stdout, plain.stdout, "--db leaves the report unchanged");
        outputs.push(o);
    }
    let findings = lines(&outputs[0]);
    assert!(!findings.is_empty());
    let exchanges = lines(&wirelint(
        &["exchanges", &demo_arg, "--format", "jsonl", "-q"],
        dir.path(),
    ));

    let reader = Reader::open(&db).expect("reader");
    let runs = reader.runs().expect("runs");
    assert_eq!(runs.len(), 2);
    let conn = reader.connection();
    for run in &runs {
        assert!(run.finished_wall.is_some());
        assert_eq!(run.exchanges as usize, exchanges.len());
        assert_eq!(run.findings as usize, findings.len());
        assert_eq!(run.packets, 73);
        let mut st = conn
            .prepare("SELECT json FROM exchanges WHERE run_id = ?1 ORDER BY id")
            .expect("prepare");
        let stored: Vec<String> = st
            .query_map([run.id], |r| r.get(0))
            .and_then(Iterator::collect)
            .expect("json");
        assert_eq!(
            stored, exchanges,
            "stored exchange objects = exchanges --format jsonl"
        );
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM findings WHERE run_id = ?1",
                run.id
            ) as usize,
            findings.len()
        );
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM findings WHERE run_id = ?1 AND exchange_id IS NULL",
                run.id
            ),
            0,
            "every finding names its exchange"
        );
        // Per rule, as in the report.
        let mut expected = std::collections::BTreeMap::<String, i64>::new();
        for line in &findings {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            *expected
                .entry(v["rule"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        let got: std::collections::BTreeMap<String, i64> = reader
            .counts_by_rule(Some(run.id))
            .expect("counts")
            .into_iter()
            .map(|c| (c.rule, c.count))
            .collect();
        assert_eq!(got, expected);
        let sev = reader.counts_by_severity(Some(run.id)).expect("severity");
        assert_eq!(sev.iter().sum::<i64>() as usize, findings.len());
        // finding_count on exchanges agrees with the findings table.
        assert_eq!(
            count(
                conn,
                "SELECT sum(finding_count) FROM exchanges WHERE run_id = ?1",
                run.id
            ) as usize,
            findings.len()
        );
    }
    let stderr = String::from_utf8_lossy(&outputs[1].stderr);
    assert!(stderr.contains("database: run 2"), "{stderr}");
}

#[test]
fn rollups_agree_with_the_findings_and_pages_cover_them_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("w.db");
    let o = wirelint(
        &[
            "analyze",
            &demo().to_string_lossy(),
            "-q",
            "--fail-on",
            "never",
            "--db",
            &db.to_string_lossy(),
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reader = Reader::open(&db).expect("reader");
    let conn = reader.connection();
    type Key = (String, String, String, String, i64, i64, i64);
    let collect = |sql: &str| -> Vec<Key> {
        let mut st = conn.prepare(sql).expect("prepare");
        st.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(Iterator::collect)
        .expect("rows")
    };
    let from_findings = collect(
        "SELECT rule, coalesce(host, ''), coalesce(method, ''), coalesce(path_template, ''), \
         count(*), min(ts), max(ts) FROM findings GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    );
    let rollups = collect(
        "SELECT rule, host, method, path_template, count, first_ts, last_ts FROM rollups \
         ORDER BY 1, 2, 3, 4",
    );
    assert!(!rollups.is_empty());
    assert_eq!(rollups, from_findings);
    // The sample exchange carries a finding of that rule.
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM rollups r WHERE NOT EXISTS (SELECT 1 FROM findings f \
             WHERE f.exchange_id = r.sample_exchange_id AND f.rule = r.rule)",
            [],
            |r| r.get(0),
        )
        .expect("samples");
    assert_eq!(bad, 0);
    let top = reader.rollups(None, 3).expect("rollups");
    assert_eq!(top.len(), 3);
    assert!(top[0].count >= top[2].count);

    // Keyset pagination: every finding once, newest first, whatever the page size.
    let total: i64 = conn
        .query_row("SELECT count(*) FROM findings", [], |r| r.get(0))
        .expect("count");
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = reader
            .findings(&FindingFilter::default(), before, 7)
            .expect("page");
        seen.extend(page.findings.iter().map(|f| f.id));
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len() as i64, total);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    // Filters narrow, and are values, never SQL.
    let warn = FindingFilter {
        severities: Some(vec![Severity::Warning]),
        ..FindingFilter::default()
    };
    let page = reader.findings(&warn, None, 1000).expect("warnings");
    assert!(!page.findings.is_empty());
    assert!(
        page.findings
            .iter()
            .all(|f| f.severity == Severity::Warning)
    );
    let rule = page.findings[0].rule.clone();
    let by_rule = FindingFilter {
        rules: Some(vec![rule.clone()]),
        hosts: Some(vec![page.findings[0].host.clone()]),
        ..FindingFilter::default()
    };
    let page = reader.findings(&by_rule, None, 1000).expect("rule");
    assert!(page.findings.iter().all(|f| f.rule == rule));
    let evil = FindingFilter {
        hosts: Some(vec![Some("x' OR 1=1 --".into())]),
        ..FindingFilter::default()
    };
    assert!(
        reader
            .findings(&evil, None, 10)
            .expect("evil")
            .findings
            .is_empty()
    );
}

/// An analysed exchange as the sink received it.
type Item = (Exchange, Vec<Finding>);

fn analysed_demo() -> (Vec<Item>, RunSummary, Vec<String>) {
    let rules =
        wirelint::cli::analyze::load_rules(&Config::default(), None, &[], &[], &[]).expect("rules");
    let captures = CaptureSet::open(&[demo()]).expect("demo");
    let cfg = PipelineConfig {
        rules: Some(Arc::new(rules)),
        redact: Some(Redactor::default()),
        ..PipelineConfig::default()
    };
    let mut items = Vec::new();
    let summary = pipeline::run(
        &captures,
        &cfg,
        |item| {
            if let pipeline::Output::Exchange(a) = item {
                items.push((a.exchange, a.findings));
            }
            Ok(())
        },
        |_| {},
    )
    .expect("pipeline");
    (items, summary, captures.file_names())
}

#[test]
fn readers_read_while_the_writer_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("busy.db");
    let (items, summary, names) = analysed_demo();
    let per_run_findings: usize = items.iter().map(|(_, f)| f.len()).sum::<usize>() + 1;
    let store = Store::open(&path).expect("open");
    let done = Arc::new(AtomicBool::new(false));
    const RUNS: usize = 25;

    let reader_done = Arc::clone(&done);
    let reader_path = path.clone();
    let reader = std::thread::spawn(move || -> Result<usize, StoreError> {
        let reader = Reader::open(&reader_path)?;
        let mut reads = 0;
        let mut last_total = 0;
        while !reader_done.load(Ordering::Relaxed) || reads < 5 {
            let runs = reader.runs()?;
            let total: i64 = reader.counts_by_severity(None)?.iter().sum();
            assert!(total >= last_total, "counts only grow");
            last_total = total;
            // What a reader sees is whole batches: counters match the rows.
            for run in runs.iter().filter(|r| r.finished_wall.is_some()) {
                let rows: i64 = reader
                    .connection()
                    .query_row(
                        "SELECT count(*) FROM findings WHERE run_id = ?1",
                        [run.id],
                        |r| r.get(0),
                    )
                    .map_err(|error| StoreError::Sql {
                        path: reader_path.clone(),
                        error,
                    })?;
                assert_eq!(rows, run.findings);
            }
            reader.findings(&FindingFilter::default(), None, 50)?;
            reader.counts_by_rule(None)?;
            reads += 1;
        }
        Ok(reads)
    });

    let source = RunSource::Files { files: names };
    for _ in 0..RUNS {
        let run = store.begin_run(&source).expect("begin");
        let cfg = WriterConfig {
            batch_rows: 16,
            queue: 8,
            ..WriterConfig::default()
        };
        let writer = store.writer_with(run, &source, cfg).expect("writer");
        let mut first: Option<ExchangeRef> = None;
        for (ex, findings) in &items {
            first.get_or_insert(ExchangeRef::of(ex));
            writer
                .write(pipeline::Analyzed {
                    exchange: ex.clone(),
                    findings: findings.clone(),
                })
                .expect("write");
        }
        let settled = Finding {
            rule: "created-resource-missing".into(),
            severity: Severity::Warning,
            category: "stateful".into(),
            message: "settled at the end".into(),
            evidence: String::new(),
            side: None,
            span: None,
            related: vec![ExchangeRef {
                connection: FrameRef {
                    file: 0,
                    number: 999_999,
                },
                index: 0,
            }],
        };
        writer
            .settled(first.expect("an exchange"), settled)
            .expect("settled");
        let written = writer.finish(&summary).expect("finish");
        assert_eq!(written.exchanges as usize, items.len());
        assert_eq!(written.findings as usize, per_run_findings);
        assert_eq!(
            written.unresolved, 0,
            "the settled finding found its exchange"
        );
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader
        .join()
        .expect("reader thread")
        .expect("reads without SQLITE_BUSY or other errors");
    assert!(reads >= 5);

    let reader = Reader::open(&path).expect("reader");
    assert_eq!(reader.runs().expect("runs").len(), RUNS);
    let unresolved_related: i64 = reader
        .connection()
        .query_row(
            "SELECT count(*) FROM findings WHERE related LIKE '%\"exchange\":null%'",
            [],
            |r| r.get(0),
        )
        .expect("related");
    assert_eq!(
        unresolved_related as usize, RUNS,
        "unknown related refs stay null"
    );
}

#[test]
fn an_unwritable_database_path_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = demo().to_string_lossy().into_owned();
    let missing = dir.path().join("no/such/folder/w.db");
    let folder = dir.path().to_path_buf();
    for path in [missing, folder] {
        let p = path.to_string_lossy().into_owned();
        let o = wirelint(&["analyze", &demo, "--db", &p], dir.path());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{p}: {err}");
        assert!(err.contains(&p), "{err:?} should name {p}");
        assert!(o.stdout.is_empty(), "no report before the error");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn analyze_records_into_wirelint_db_by_default_and_no_db_opts_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = demo().to_string_lossy().into_owned();
    let o = wirelint(&["analyze", "--fail-on", "never", &demo], dir.path());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let db = dir.path().join("wirelint.db");
    assert!(db.is_file(), "./wirelint.db is the default");
    assert!(String::from_utf8_lossy(&o.stderr).contains("wirelint.db"));
    let runs = Reader::open(&db).expect("reader").runs().expect("runs");
    assert_eq!(runs.len(), 1);
    assert!(runs[0].exchanges > 0);

    // --no-db writes nothing more; it cannot be combined with --db or --serve.
    let o = wirelint(
        &["analyze", "--fail-on", "never", "--no-db", &demo],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        Reader::open(&db)
            .expect("reader")
            .runs()
            .expect("runs")
            .len(),
        1
    );
    for extra in [["--db", "other.db"], ["--serve", "127.0.0.1:0"]] {
        let o = wirelint(
            &["analyze", "--no-db", extra[0], extra[1], &demo],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(2), "--no-db {extra:?}");
    }
    assert!(!dir.path().join("other.db").exists());
}

fn analyzed_db(dir: &Path) -> PathBuf {
    let db = dir.join("w.db");
    let o = wirelint(
        &[
            "analyze",
            &demo().to_string_lossy(),
            "-q",
            "--fail-on",
            "never",
            "--db",
            &db.to_string_lossy(),
        ],
        dir,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    db
}

/// The rollups the writer keeps (endpoints, time series, counts per rule and severity) say
/// what aggregating the rows says.
#[test]
fn writer_rollups_agree_with_the_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = analyzed_db(dir.path());
    let reader = Reader::open(&db).expect("reader");
    let conn = reader.connection();
    let rows = |sql: &str| -> Vec<Vec<i64>> {
        let mut st = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = st.column_count();
        st.query_map([], |r| (0..n).map(|i| r.get::<_, i64>(i)).collect())
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    let endpoints = rows(
        "SELECT exchanges, status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, \
         status_none, findings, latency_count FROM endpoints \
         ORDER BY run_id, host, method, path_template",
    );
    let from_exchanges = rows(
        "SELECT count(*), sum(status BETWEEN 100 AND 199), sum(status BETWEEN 200 AND 299), \
         sum(status BETWEEN 300 AND 399), sum(status BETWEEN 400 AND 499), \
         sum(status BETWEEN 500 AND 599), sum(status IS NULL OR status NOT BETWEEN 100 AND 599), \
         sum(finding_count), sum(latency_ns IS NOT NULL) FROM exchanges \
         GROUP BY run_id, coalesce(host, ''), coalesce(method, ''), coalesce(path_template, '') \
         ORDER BY run_id, coalesce(host, ''), coalesce(method, ''), coalesce(path_template, '')",
    );
    assert!(endpoints.len() > 5);
    assert_eq!(endpoints, from_exchanges);

    for width in schema::SERIES_WIDTHS_NS {
        let series = rows(&format!(
            "SELECT bucket, key, count FROM series WHERE width_ns = {width} ORDER BY 1, 2"
        ));
        let mut expected = rows(&format!(
            "SELECT (ts / {width}) * {width}, CASE WHEN status BETWEEN 100 AND 599 \
             THEN status / 100 - 1 ELSE 5 END, count(*) FROM exchanges GROUP BY 1, 2 \
             UNION ALL SELECT (ts / {width}) * {width}, 10 + severity, count(*) FROM findings \
             GROUP BY 1, 2 ORDER BY 1, 2"
        ));
        expected.sort();
        assert_eq!(series, expected, "width {width}");
    }

    let rule_counts = rows("SELECT severity, count FROM rule_counts ORDER BY rule, severity");
    let from_findings = rows(
        "SELECT severity, count(*) FROM findings GROUP BY rule, severity ORDER BY rule, severity",
    );
    assert_eq!(rule_counts, from_findings);

    // Percentiles come from the histogram: within a bucket (9.05 %) of the exact ones.
    let run = reader.runs().expect("runs")[0].id;
    for e in reader.endpoints(run, None, 100).expect("endpoints") {
        let mut st = conn
            .prepare(
                "SELECT latency_ns FROM exchanges WHERE run_id = ?1 AND coalesce(host, '') = ?2 \
                 AND coalesce(method, '') = ?3 AND coalesce(path_template, '') = ?4 \
                 AND latency_ns IS NOT NULL ORDER BY latency_ns",
            )
            .expect("prepare");
        let lat: Vec<i64> = st
            .query_map(
                rusqlite::params![run, e.host, e.method, e.path_template],
                |r| r.get(0),
            )
            .and_then(Iterator::collect)
            .expect("latencies");
        assert_eq!(lat.len() as i64, e.latency_count);
        for (p, got) in [(0.5, e.p50_ns), (0.95, e.p95_ns)] {
            let Some(got) = got else {
                assert!(lat.is_empty());
                continue;
            };
            let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
            let exact = lat[rank - 1] as f64;
            let err = (got as f64 - exact).abs() / exact.max(1_000.0);
            assert!(err < 0.0906, "{} p{p}: {got} vs {exact}", e.path_template);
        }
    }
}

/// Every statement the dashboard runs reads the big tables (findings, exchanges,
/// connections) through an index when it filters, and never sorts them.
#[test]
fn every_dashboard_query_uses_an_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = analyzed_db(dir.path());
    let mut reader = Reader::open(&db).expect("reader");
    reader.record_statements();
    let run = reader.runs().expect("runs")[0].id;
    let text = || Some(vec!["x".to_string()]);
    let some = || Some(vec![Some("x".to_string())]);
    let filters = [
        FindingFilter::default(),
        FindingFilter {
            run: Some(run),
            ..FindingFilter::default()
        },
        FindingFilter {
            rules: text(),
            ..FindingFilter::default()
        },
        FindingFilter {
            severities: Some(vec![Severity::Error]),
            ..FindingFilter::default()
        },
        FindingFilter {
            severities: Some(vec![Severity::Error, Severity::Warning]),
            run: Some(run),
            ..FindingFilter::default()
        },
        FindingFilter {
            categories: text(),
            ..FindingFilter::default()
        },
        FindingFilter {
            hosts: some(),
            ..FindingFilter::default()
        },
        FindingFilter {
            hosts: Some(vec![None]),
            methods: Some(vec![None]),
            path_templates: Some(vec![None]),
            ..FindingFilter::default()
        },
        FindingFilter {
            methods: some(),
            ..FindingFilter::default()
        },
        FindingFilter {
            statuses: Some(vec![Some(200), None]),
            ..FindingFilter::default()
        },
        FindingFilter {
            path_templates: some(),
            ..FindingFilter::default()
        },
        FindingFilter {
            exchange: Some(1),
            ..FindingFilter::default()
        },
        FindingFilter {
            transports: Some(vec![
                (Some("HTTP/1.1".into()), None),
                (None, Some("TLS 1.3".into())),
            ]),
            ..FindingFilter::default()
        },
        FindingFilter {
            run: Some(run),
            transports: Some(vec![(Some("HTTP/2".into()), Some("TLS 1.3".into()))]),
            ..FindingFilter::default()
        },
        FindingFilter {
            after: Some(1),
            ..FindingFilter::default()
        },
        FindingFilter {
            rules: text(),
            hosts: some(),
            severities: Some(vec![Severity::Info]),
            ..FindingFilter::default()
        },
        FindingFilter {
            rules: text(),
            hosts: some(),
            methods: some(),
            path_templates: some(),
            run: Some(run),
            ..FindingFilter::default()
        },
        FindingFilter {
            run: Some(run),
            severities: Some(vec![Severity::Error]),
            time: Some((0, i64::MAX)),
            ..FindingFilter::default()
        },
    ];
    for f in &filters {
        reader.count(f).expect("count");
    }
    for f in &filters {
        reader.findings(f, None, 10).expect("findings");
        reader.findings(f, Some(5), 10).expect("a deeper page");
    }
    for r in [None, Some(run)] {
        reader.counts_by_rule(r).expect("by rule");
        reader.counts_by_severity(r).expect("by severity");
        reader.rollups(r, 20).expect("rollups");
    }
    reader.endpoints(run, None, 100).expect("endpoints");
    reader
        .endpoints(run, Some("x"), 100)
        .expect("endpoints of a host");
    reader
        .series(run, schema::SERIES_WIDTHS_NS[0])
        .expect("series");
    reader.last_finding_id().expect("last id");
    for r in [None, Some(run)] {
        reader.rule_splits(r).expect("rule splits");
        for o in [
            IssueOrder::Severity,
            IssueOrder::Count,
            IssueOrder::LastSeen,
            IssueOrder::Rule,
        ] {
            reader.issues_by(r, o, 20).expect("issues");
        }
        for col in [
            EndpointColumn::Host,
            EndpointColumn::Method,
            EndpointColumn::PathTemplate,
        ] {
            reader
                .endpoint_values(col, "x", r)
                .expect("endpoint values");
        }
    }
    reader.rule_values(false, "x").expect("rule values");
    reader.rule_values(true, "x").expect("category values");
    reader.statuses_between(400, 499).expect("statuses");
    reader.transports().expect("transports");
    reader.status_by_run(run).expect("status by run");
    reader.severity_by_run(run).expect("severity by run");
    reader.neighbours(1, 1).expect("neighbours");
    reader.exchange(1).expect("exchange");
    reader.exchange_json(1).expect("exchange json");
    reader.runs().expect("runs");
    reader.recent_runs(50).expect("recent runs");
    reader.run(run).expect("a run");
    reader.run_count().expect("run count");

    let statements = reader.recorded_statements();
    assert!(statements.len() > 20, "{statements:?}");
    let conn = reader.connection();
    for sql in &statements {
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = st.parameter_count();
        let plan: Vec<String> = st
            .query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Value::Null, n)),
                |r| r.get::<_, String>(3),
            )
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let filtered = sql.contains(" WHERE ");
        for step in &plan {
            for table in ["findings", "exchanges", "connections"] {
                let scan = step.starts_with(&format!("SCAN {table}"));
                // An unfiltered newest-first page walks the rowid order and stops at LIMIT.
                let bounded_walk = !filtered && sql.contains("ORDER BY id DESC LIMIT");
                assert!(
                    !scan || bounded_walk,
                    "a scan of {table}:\n{sql}\n{plan:#?}"
                );
            }
            assert!(
                !(step.contains("TEMP B-TREE") && sql.contains("FROM findings")),
                "findings sorted without an index:\n{sql}\n{plan:#?}"
            );
            for small in ["endpoints", "series", "rollups"] {
                assert!(
                    !(filtered
                        && step.starts_with(&format!("SCAN {small}"))
                        && !step.contains("INDEX")),
                    "a filtered scan of {small}:\n{sql}\n{plan:#?}"
                );
            }
        }
    }
}

/// Analyzes a TLS capture with its key log into `db`.
fn analyze_tls(dir: &Path, name: &str, db: &Path) {
    let tls = support::repo().join("captures/tls");
    let o = wirelint(
        &[
            "analyze",
            &tls.join(format!("{name}.pcap")).to_string_lossy(),
            "--tls-keylog",
            &tls.join(format!("{name}.keys")).to_string_lossy(),
            "-q",
            "--fail-on",
            "never",
            "--db",
            &db.to_string_lossy(),
        ],
        dir,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// TLS facts and HTTP versions go into the store as the jsonl object prints them (the
/// connection's columns, the exchange's version, the findings' copies), read back through
/// the reader; no secret of the key log does.
#[test]
fn tls_facts_and_versions_round_trip_and_keys_stay_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("tls.db");
    analyze_tls(dir.path(), "tls13-h2", &db);
    analyze_tls(dir.path(), "tls12-http1", &db);
    let o = wirelint(
        &[
            "analyze",
            &demo().to_string_lossy(),
            "-q",
            "--fail-on",
            "never",
            "--db",
            &db.to_string_lossy(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));

    let conn = Connection::open(&db).expect("sqlite");
    let mut st = conn
        .prepare(
            "SELECT e.id, e.json, e.version, c.tls_protocol, c.tls_cipher, c.tls_alpn, c.tls_sni \
             FROM exchanges e JOIN connections c ON c.id = e.connection_id",
        )
        .expect("prepare");
    type Row = (
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(Iterator::collect)
        .expect("rows");
    let reader = Reader::open(&db).expect("reader");
    let mut seen = std::collections::BTreeSet::new();
    for (id, json, version, protocol, cipher, alpn, sni) in &rows {
        let v: serde_json::Value = serde_json::from_str(json).expect("json");
        let want_version = v["request"]["version"]
            .as_str()
            .or(v["response"]["version"].as_str());
        assert_eq!(version.as_deref(), want_version, "{json}");
        assert_eq!(protocol.as_deref(), v["tls"]["protocol"].as_str(), "{json}");
        assert_eq!(
            cipher.as_deref(),
            v["tls"]["cipher_suite"].as_str(),
            "{json}"
        );
        assert_eq!(alpn.as_deref(), v["tls"]["alpn"].as_str(), "{json}");
        assert_eq!(sni.as_deref(), v["tls"]["sni"].as_str(), "{json}");
        let detail = reader.exchange(*id).expect("read").expect("the exchange");
        assert_eq!(detail.version, *version);
        assert_eq!(detail.tls.as_ref().map(|t| t.protocol.clone()), *protocol);
        assert_eq!(detail.tls.as_ref().map(|t| t.cipher_suite.clone()), *cipher);
        seen.insert((version.clone(), protocol.clone(), alpn.clone()));
    }
    let want: std::collections::BTreeSet<_> = [
        (Some("HTTP/2"), Some("TLS 1.3"), Some("h2")),
        (Some("HTTP/1.1"), Some("TLS 1.2"), Some("http/1.1")),
        (Some("HTTP/1.1"), None, None),
    ]
    .into_iter()
    .map(|(a, b, c)| {
        (
            a.map(String::from),
            b.map(String::from),
            c.map(String::from),
        )
    })
    .collect();
    assert_eq!(seen, want);
    // Findings copy their exchange's version and TLS protocol.
    let wrong: i64 = conn
        .query_row(
            "SELECT count(*) FROM findings f JOIN exchanges e ON e.id = f.exchange_id \
             JOIN connections c ON c.id = e.connection_id \
             WHERE f.version IS NOT e.version OR f.tls IS NOT c.tls_protocol",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(wrong, 0);
    let transports = reader.transports().expect("transports");
    assert!(transports.contains(&(Some("HTTP/2".into()), Some("TLS 1.3".into()))));
    assert!(transports.contains(&(Some("HTTP/1.1".into()), None)));
    drop(st);
    drop(conn);
    drop(reader);
    // No secret of either key log is anywhere in the database.
    wirelint::store::checkpoint_and_close(&db).expect("checkpoint");
    let bytes = std::fs::read(&db).expect("db bytes");
    let hay = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    for keys in ["tls13-h2.keys", "tls12-http1.keys"] {
        let log = std::fs::read_to_string(support::repo().join("captures/tls").join(keys))
            .expect("key log");
        for line in log.lines() {
            if let Some(secret) = line.split_whitespace().nth(2) {
                assert!(
                    !hay.contains(&secret.to_ascii_lowercase()),
                    "{keys}: a secret is stored"
                );
            }
        }
    }
}

/// A database written before V5 (TLS facts, versions) is backfilled from the stored JSON
/// when it is opened for writing (and gets V6, the packet store and spans, after it).
#[test]
fn the_v5_migration_backfills_versions_and_tls_facts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("old.db");
    analyze_tls(dir.path(), "tls13-h2", &db);
    {
        // Back to what V4 wrote: no V5 (nor V6) columns, values NULL, version 4.
        let conn = Connection::open(&db).expect("sqlite");
        conn.execute_batch(
            "DROP TABLE packets; ALTER TABLE connections DROP COLUMN packets_evicted;
             ALTER TABLE runs DROP COLUMN stored_packets;
             ALTER TABLE runs DROP COLUMN stored_packet_bytes;
             ALTER TABLE runs DROP COLUMN packet_evictions;
             ALTER TABLE runs DROP COLUMN packets_over_connection_cap;
             ALTER TABLE runs DROP COLUMN flagged_connections_dropped;
             ALTER TABLE findings DROP COLUMN span;
             DROP INDEX findings_transport; DROP INDEX rollups_issue;
             DROP INDEX rollups_run_last; DROP INDEX findings_endpoint; DROP TABLE issues;
             ALTER TABLE findings DROP COLUMN version; ALTER TABLE findings DROP COLUMN tls;
             ALTER TABLE exchanges DROP COLUMN version;
             ALTER TABLE connections DROP COLUMN tls_protocol;
             ALTER TABLE connections DROP COLUMN tls_cipher;
             ALTER TABLE connections DROP COLUMN tls_alpn;
             ALTER TABLE connections DROP COLUMN tls_sni;
             PRAGMA user_version = 4;",
        )
        .expect("downgrade");
    }
    Store::open(&db).expect("migrates");
    let conn = Connection::open(&db).expect("sqlite");
    let (version, protocol, cipher, alpn, sni): (String, String, String, String, String) = conn
        .query_row(
            "SELECT e.version, c.tls_protocol, c.tls_cipher, c.tls_alpn, c.tls_sni \
             FROM exchanges e JOIN connections c ON c.id = e.connection_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("row");
    assert_eq!(
        (
            version.as_str(),
            protocol.as_str(),
            cipher.as_str(),
            alpn.as_str(),
            sni.as_str()
        ),
        (
            "HTTP/2",
            "TLS 1.3",
            "TLS_AES_256_GCM_SHA384",
            "h2",
            "localhost"
        )
    );
    let untagged: i64 = conn
        .query_row(
            "SELECT count(*) FROM findings WHERE exchange_id IS NOT NULL \
             AND (version IS NOT 'HTTP/2' OR tls IS NOT 'TLS 1.3')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(untagged, 0);
    let (issues, summed): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT sum(count) FROM issues), (SELECT sum(count) FROM rollups)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("issues");
    assert!(issues > 0);
    assert_eq!(issues, summed);
}

/// The `issues` table the writer keeps is the rollups summed over runs, and the issues in
/// every order, across runs and within one, are the rollups grouped by rule × endpoint.
#[test]
fn issues_across_runs_are_the_rollups_summed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = analyzed_db(dir.path());
    let o = wirelint(
        &[
            "analyze",
            &support::repo()
                .join("captures/http-keep-alive.pcap")
                .to_string_lossy(),
            &demo().to_string_lossy(),
            "-q",
            "--fail-on",
            "never",
            "--db",
            &db.to_string_lossy(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    let reader = Reader::open(&db).expect("reader");
    let conn = reader.connection();
    type Issue = (String, String, String, String, i64, i64, Option<i64>);
    let issues = |sql: &str| -> Vec<Issue> {
        let mut st = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        st.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(Iterator::collect)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    let kept = issues(
        "SELECT rule, host, method, path_template, severity, count, last_ts FROM issues \
         ORDER BY rule, host, method, path_template",
    );
    let summed = issues(
        "SELECT rule, host, method, path_template, max(severity), sum(count), max(last_ts) \
         FROM rollups GROUP BY rule, host, method, path_template \
         ORDER BY rule, host, method, path_template",
    );
    assert!(kept.len() > 5);
    assert_eq!(kept, summed);
    let runs: Vec<i64> = reader.runs().expect("runs").iter().map(|r| r.id).collect();
    assert_eq!(runs.len(), 2);
    for run in [None, Some(runs[0]), Some(runs[1])] {
        let every = reader
            .issues_by(run, IssueOrder::Rule, 1000)
            .expect("issues");
        let n = every.len();
        assert!(n > 3);
        let total: i64 = every.iter().map(|i| i.count).sum();
        let want: i64 = match run {
            None => summed.iter().map(|i| i.5).sum(),
            Some(r) => count(
                conn,
                "SELECT coalesce(sum(count), 0) FROM rollups WHERE run_id = ?1",
                r,
            ),
        };
        assert_eq!(total, want, "{run:?}");
        for order in [
            IssueOrder::Severity,
            IssueOrder::Count,
            IssueOrder::LastSeen,
            IssueOrder::Rule,
        ] {
            let got = reader.issues_by(run, order, 1000).expect("issues");
            assert_eq!(got.len(), n, "{run:?} {order:?}");
            for w in got.windows(2) {
                let (a, b) = (&w[0], &w[1]);
                let sorted = match order {
                    IssueOrder::Severity => (b.severity, b.count) <= (a.severity, a.count),
                    IssueOrder::Count => b.count <= a.count,
                    IssueOrder::LastSeen => b.last_ts <= a.last_ts,
                    IssueOrder::Rule => a.rule <= b.rule,
                };
                assert!(sorted, "{run:?} {order:?}: {a:?} then {b:?}");
            }
            // Each issue's runs add up to its count.
            for i in &got {
                assert_eq!(i.runs.iter().map(|r| r.1).sum::<i64>(), i.count);
            }
        }
    }
}
