//! Dashboard at scale: fills a database with 1M exchanges and about 1M findings through the
//! real `Writer` (realistic synthetic traffic: 50 hosts × 40 endpoints, the whole rule
//! catalogue, a status mix, latencies spread over four decades, an hour of capture time),
//! then measures p50/p95 of every page and API through the real router (read-only
//! connection per request, template rendering, JSON), and of the first live event.
//!
//! `cargo bench --bench dashboard` (`-- --exchanges N` for another size, `-- --db PATH` to
//! keep or reuse the database, `-- --iterations N`). Exits 1 when a p95 is over budget.
//! Not run by `cargo test`; `cargo clippy --all-targets` builds it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wirelint::capture::{CaptureSet, FrameRef};
use wirelint::config::Config;
use wirelint::dashboard::{AppState, router};
use wirelint::http::{Exchange, Header, StartLine};
use wirelint::pipeline::{self, Analyzed, PipelineConfig, RunSummary};
use wirelint::redact::Redactor;
use wirelint::rules::{Finding, RuleSet};
use wirelint::store::{Reader, RunSource, Store};
use wirelint::time::Timestamp;

/// The budget every page and API must meet at 1M exchanges.
const P95_BUDGET: Duration = Duration::from_millis(200);

const HOSTS: u64 = 50;
const RESOURCES: &[&str] = &[
    "users", "orders", "books", "carts", "items", "invoices", "payments", "sessions", "tokens",
    "reports", "teams", "projects", "files", "images", "comments", "likes", "tags", "events",
    "webhooks", "audits",
];

struct Args {
    exchanges: u64,
    db: PathBuf,
    iterations: usize,
}

fn args() -> Args {
    let mut a = Args {
        exchanges: 1_000_000,
        db: std::env::temp_dir().join("wirelint-bench-dashboard.db"),
        iterations: 40,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        match k.as_str() {
            "--exchanges" => {
                a.exchanges = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.exchanges)
            }
            "--db" => a.db = it.next().map(PathBuf::from).unwrap_or(a.db),
            "--iterations" => {
                a.iterations = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.iterations)
            }
            // `cargo bench` passes --bench.
            _ => {}
        }
    }
    a
}

/// A deterministic hash of a number (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The demo capture's analysed exchanges: realistic heads, bodies and findings to vary.
fn templates(rules: &Arc<RuleSet>) -> Vec<Analyzed> {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/demo-api.pcap");
    let captures = CaptureSet::open(&[demo]).expect("the demo capture");
    let cfg = PipelineConfig {
        rules: Some(Arc::clone(rules)),
        redact: Some(Redactor::default()),
        ..PipelineConfig::default()
    };
    let mut out = Vec::new();
    pipeline::run(
        &captures,
        &cfg,
        |item| {
            if let pipeline::Output::Exchange(a) = item
                && a.exchange.request.is_some()
                && a.exchange.response.is_some()
            {
                out.push(a);
            }
            Ok(())
        },
        |_| {},
    )
    .expect("analysing the demo capture");
    out
}

fn set_header(headers: &mut [Header], name: &str, value: &str) {
    if let Some(h) = headers
        .iter_mut()
        .find(|h| h.name.eq_ignore_ascii_case(name))
    {
        h.value = value.to_string();
    }
}

/// Exchange `i` of the synthetic run.
fn synthesize(
    i: u64,
    base: &[Analyzed],
    rules: &RuleSet,
    conn: &Arc<wirelint::http::Connection>,
) -> Analyzed {
    let h = mix(i);
    let t = &base[(h % base.len() as u64) as usize];
    let mut ex: Exchange = t.exchange.clone();
    ex.connection = Arc::clone(conn);
    ex.index = (i % 8) as u32;
    let ts = Timestamp(1_710_237_600_000_000_000 + i as i64 * 3_600_000); // 1M in an hour
    let latency = (1_000_000.0 * (((h >> 20) % 10_000) as f64 / 10_000.0 * 6.0).exp()) as i64;
    let host = format!("svc-{:02}.internal.test", (h >> 8) % HOSTS);
    let resource = RESOURCES[((h >> 16) % RESOURCES.len() as u64) as usize];
    let target = if (h >> 24).is_multiple_of(2) {
        format!("/api/v1/{resource}?page={}", (h >> 28) % 9)
    } else {
        format!("/api/v1/{resource}/{}", (h >> 28) % 100_000)
    };
    let frame = i * 10 + 1;
    if let Some(req) = ex.request.as_mut() {
        if let StartLine::Request { target: tg, .. } = &mut req.start {
            *tg = target;
        }
        set_header(&mut req.headers, "host", &host);
        req.first_frame = FrameRef {
            file: 0,
            number: frame,
        };
        req.head_frame = req.first_frame;
        req.last_frame = req.first_frame;
        (req.first_ts, req.head_ts, req.last_ts) = (ts, ts, ts);
    }
    let status = match (h >> 40) % 100 {
        0..=74 => Some(200),
        75..=79 => Some(201),
        80..=82 => Some(204),
        83..=86 => Some(304),
        87..=91 => Some(404),
        92..=94 => Some(400),
        95..=96 => Some(500),
        97 => Some(503),
        _ => None,
    };
    match status {
        Some(code) => {
            if let Some(resp) = ex.response.as_mut() {
                if let StartLine::Response { status, .. } = &mut resp.start {
                    *status = code;
                }
                let at = Timestamp(ts.0 + latency);
                resp.first_frame = FrameRef {
                    file: 0,
                    number: frame + 1,
                };
                resp.head_frame = resp.first_frame;
                resp.last_frame = resp.first_frame;
                (resp.first_ts, resp.head_ts, resp.last_ts) = (at, at, at);
            }
        }
        None => ex.response = None,
    }
    // About one finding per exchange, spread over the whole catalogue.
    let findings: Vec<Finding> = t
        .findings
        .iter()
        .enumerate()
        .filter(|(j, _)| mix(i ^ ((*j as u64) << 40)) % 100 < 42)
        .map(|(j, f)| {
            let r = &rules.rules[(mix(i + j as u64) % rules.rules.len() as u64) as usize];
            Finding {
                rule: r.id.clone(),
                severity: r.severity,
                category: r.category.clone(),
                message: format!("{} ({host})", f.message),
                evidence: f.evidence.clone(),
                side: f.side,
                span: f.span.clone(),
                related: Vec::new(),
            }
        })
        .collect();
    Analyzed {
        exchange: ex,
        findings,
    }
}

fn fill(path: &Path, n: u64, rules: &Arc<RuleSet>) {
    let base = templates(rules);
    let store = Store::open(path).expect("opening the database");
    let source = RunSource::Files {
        files: vec!["synthetic-1m.pcap".into()],
    };
    let run = store.begin_run(&source).expect("run");
    let writer = store.writer(run, &source).expect("writer");
    let started = Instant::now();
    let mut conn = None;
    for i in 0..n {
        if i.is_multiple_of(8) || conn.is_none() {
            let h = mix(i);
            conn = Some(Arc::new(wirelint::http::Connection {
                client: format!(
                    "10.{}.{}.{}:{}",
                    (h >> 8) % 250,
                    (h >> 16) % 250,
                    1 + (h >> 24) % 250,
                    1024 + (h >> 32) % 60_000
                )
                .parse()
                .expect("address"),
                server: format!("192.0.2.{}:8080", 1 + (h >> 40) % HOSTS)
                    .parse()
                    .expect("address"),
                first_frame: FrameRef {
                    file: 0,
                    number: i * 10,
                },
                first_ts: Timestamp(1_710_237_600_000_000_000 + i as i64 * 3_600_000),
                tls: false,
                tls_info: None,
                mid_stream: false,
            }));
        }
        let Some(c) = &conn else { continue };
        writer
            .write(synthesize(i, &base, rules, c))
            .expect("writing");
        if i > 0 && i.is_multiple_of(200_000) {
            eprintln!(
                "  {i} exchanges queued ({:.0}/s)",
                i as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let summary = RunSummary {
        frames: n * 4,
        bytes: n * 1500,
        ..RunSummary::default()
    };
    let written = writer.finish(&summary).expect("finishing");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "filled: {} exchanges, {} findings in {secs:.1} s ({:.0} exchanges/s)",
        written.exchanges,
        written.findings,
        written.exchanges as f64 / secs
    );
}

fn file_size(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

struct Timing {
    name: String,
    p50: Duration,
    p95: Duration,
    max: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    let a = args();
    let rules = Arc::new(
        wirelint::cli::analyze::load_rules(&Config::default(), None, &[], &[], &[]).expect("rules"),
    );
    // A database of an older schema is migrated rather than filled again.
    if a.db.is_file() {
        let _ = Store::open(&a.db);
    }
    let have = Reader::open(&a.db)
        .ok()
        .and_then(|r| r.runs().ok())
        .map(|runs| runs.iter().map(|r| r.exchanges as u64).sum::<u64>());
    if have == Some(a.exchanges) {
        eprintln!("reusing {} ({} exchanges)", a.db.display(), a.exchanges);
    } else {
        for s in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", a.db.display()));
        }
        eprintln!("filling {} with {} exchanges…", a.db.display(), a.exchanges);
        fill(&a.db, a.exchanges, &rules);
    }
    // Checkpoint so that the size is the database's, not a WAL's.
    if let Ok(c) = rusqlite::Connection::open(&a.db) {
        let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    let size = file_size(&a.db);
    let reader = Reader::open(&a.db).expect("reader");
    let conn = reader.connection();
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0) };
    let (exchanges, findings) = (
        q("SELECT count(*) FROM exchanges"),
        q("SELECT count(*) FROM findings"),
    );
    println!(
        "database: {exchanges} exchanges, {findings} findings, {:.1} MiB ({:.0} MiB per million exchanges)",
        size as f64 / 1048576.0,
        size as f64 / 1048576.0 / (exchanges.max(1) as f64 / 1e6)
    );
    let max_id = q("SELECT max(id) FROM findings");
    let deep = max_id / 10; // 90 % down the list
    let one: (String, String, String, String, i64, String) = conn
        .query_row(
            "SELECT rule, host, method, path_template, status, category FROM findings WHERE id = ?1",
            [max_id / 2],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .expect("a finding");
    let exchange = q("SELECT max(id) FROM exchanges") / 3;
    let ts = q(&format!(
        "SELECT ts FROM findings WHERE id = {} AND ts IS NOT NULL",
        max_id / 2
    ));
    let run = q("SELECT max(id) FROM runs");
    let enc =
        |s: &str| serde_urlencoded::to_string([("v", s)]).unwrap_or_default()[2..].to_string();
    let (rule, host, method, path, status, category) = one;
    let mut urls: Vec<(String, String)> = vec![
        ("overview".into(), "/".into()),
        ("overview api".into(), "/api/overview".into()),
        ("overview run".into(), format!("/?run={run}")),
        ("findings".into(), "/findings".into()),
        ("findings api".into(), "/api/findings".into()),
        ("findings run".into(), format!("/findings?run={run}")),
        (
            "findings rule".into(),
            format!("/findings?rule={}", enc(&rule)),
        ),
        ("findings severity".into(), "/findings?severity=info".into()),
        (
            "findings category".into(),
            format!("/findings?category={}", enc(&category)),
        ),
        (
            "findings host".into(),
            format!("/findings?host={}", enc(&host)),
        ),
        (
            "findings method".into(),
            format!("/findings?method={}", enc(&method)),
        ),
        (
            "findings status".into(),
            format!("/findings?status={status}"),
        ),
        (
            "findings path".into(),
            format!("/findings?path={}", enc(&path)),
        ),
        (
            "findings rule+host".into(),
            format!("/findings?rule={}&host={}", enc(&rule), enc(&host)),
        ),
        (
            "findings severity+method".into(),
            "/api/findings?severity=error&method=DELETE".into(),
        ),
        (
            "findings deep page".into(),
            format!("/findings?before={deep}"),
        ),
        (
            "findings deep api".into(),
            format!("/api/findings?before={deep}"),
        ),
        (
            "findings deep rule".into(),
            format!("/api/findings?rule={}&before={deep}", enc(&rule)),
        ),
        (
            "findings rule exact".into(),
            format!("/findings?rule={}", enc(&format!("\"{rule}\""))),
        ),
        (
            "findings host exact".into(),
            format!("/findings?host={}", enc(&format!("\"{host}\""))),
        ),
        (
            "findings endpoint exact".into(),
            format!(
                "/api/findings?run={run}&host={}&method={}&path={}",
                enc(&format!("\"{host}\"")),
                enc(&format!("\"{method}\"")),
                enc(&format!("\"{path}\""))
            ),
        ),
        (
            "findings host substring".into(),
            format!(
                "/findings?host={}",
                enc(&host[..host.len().min(4)].to_uppercase())
            ),
        ),
        (
            "findings status class".into(),
            "/findings?status=4xx".into(),
        ),
        (
            "findings severities".into(),
            "/findings?severity=error&severity=warning".into(),
        ),
        (
            "findings time range".into(),
            format!(
                "/api/findings?run={run}&severity=error&from={ts}&to={}",
                ts + 1_000_000_000
            ),
        ),
        (
            "findings sorted by host".into(),
            "/findings?sort=host".into(),
        ),
        (
            "findings sorted severity asc".into(),
            "/findings?sort=severity&dir=asc".into(),
        ),
        (
            "findings sorted deep".into(),
            format!("/api/findings?sort=status&dir=asc&before={deep}"),
        ),
        (
            "findings run sorted path".into(),
            format!("/findings?run={run}&sort=path"),
        ),
        (
            "findings rule sorted host".into(),
            format!("/findings?rule={}&sort=host&dir=asc", enc(&rule)),
        ),
        (
            "findings version".into(),
            "/findings?version=HTTP/1.1".into(),
        ),
        (
            "findings tls".into(),
            "/findings?tls=no&severity=error".into(),
        ),
        ("overview all runs".into(), "/?run=all".into()),
        ("issues".into(), "/issues".into()),
        ("issues api run".into(), format!("/api/issues?run={run}")),
        ("issues last seen".into(), "/issues?sort=last".into()),
        ("issues by rule".into(), "/issues?sort=rule".into()),
        (
            "issues run last seen".into(),
            format!("/api/issues?run={run}&sort=last"),
        ),
        ("rules search".into(), "/rules?q=cookie&hits=yes".into()),
        ("endpoints".into(), "/endpoints".into()),
        (
            "endpoints by findings".into(),
            "/endpoints?sort=findings".into(),
        ),
        ("endpoints api".into(), "/api/endpoints".into()),
        (
            "endpoints host".into(),
            format!("/endpoints?host={}", enc(&host)),
        ),
        ("exchange".into(), format!("/exchanges/{exchange}")),
        ("exchange api".into(), format!("/api/exchanges/{exchange}")),
        ("rules".into(), "/rules".into()),
        ("rules api".into(), "/api/rules".into()),
    ];
    urls.push((
        "events (first event)".into(),
        format!("/api/events?after={}", max_id - 100),
    ));

    let state = AppState::new(&a.db, Arc::clone(&rules));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut timings = Vec::new();
    for (name, url) in &urls {
        let mut samples = Vec::with_capacity(a.iterations);
        for i in 0..=a.iterations {
            let started = Instant::now();
            let (status, bytes) = rt.block_on(async {
                let res = router(state.clone())
                    .oneshot(
                        Request::get(url.as_str())
                            .body(Body::empty())
                            .expect("request"),
                    )
                    .await
                    .expect("the router answers");
                let status = res.status();
                let mut body = res.into_body();
                // The event stream never ends: its first frame is the first event.
                let mut bytes = 0usize;
                while let Some(frame) = body.frame().await {
                    let frame = frame.expect("body");
                    if let Some(d) = frame.data_ref() {
                        bytes += d.len();
                    }
                    if url.starts_with("/api/events") && bytes > 0 {
                        break;
                    }
                }
                (status, bytes)
            });
            let took = started.elapsed();
            assert_eq!(status, StatusCode::OK, "{url}");
            assert!(bytes > 0, "{url}: empty answer");
            if i > 0 {
                samples.push(took); // the first request warms the page cache
            }
        }
        samples.sort();
        timings.push(Timing {
            name: format!("{name:<26} {url}"),
            p50: percentile(&samples, 0.50),
            p95: percentile(&samples, 0.95),
            max: samples[samples.len() - 1],
        });
    }
    println!(
        "{:<80} {:>9} {:>9} {:>9}",
        "page / API", "p50 ms", "p95 ms", "max ms"
    );
    let mut over = 0;
    for t in &timings {
        let flag = if t.p95 > P95_BUDGET {
            over += 1;
            "  OVER BUDGET"
        } else {
            ""
        };
        let name: String = t.name.chars().take(80).collect();
        println!(
            "{name:<80} {:>9.2} {:>9.2} {:>9.2}{flag}",
            t.p50.as_secs_f64() * 1e3,
            t.p95.as_secs_f64() * 1e3,
            t.max.as_secs_f64() * 1e3
        );
    }
    if over > 0 {
        eprintln!("{over} pages or APIs over the p95 budget of {P95_BUDGET:?}");
        std::process::exit(1);
    }
}
