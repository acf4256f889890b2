//! The packet store of live runs, without capture privileges: a capture file's frames are
//! held by the packet ring as `sniff`'s capture thread holds live packets, the pipeline
//! runs with the same sink logic as `sniff` (flag a connection after writing its exchange
//! with findings), and the run is recorded as a live one — so the dashboard can only give
//! its pcap and bytes from the store. `live.rs` does the same with `sniff -i lo` (root).

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use rusqlite::Connection;
use serde_json::Value;
use tower::ServiceExt;

use wirelint::capture::CaptureSet;
use wirelint::dashboard::{AppState, router};
use wirelint::decode::Decoder;
use wirelint::packets::{PacketRing, PacketStoreConfig, PacketStoreStats};
use wirelint::pipeline::{self, Analyzed, Output, PipelineConfig, RunSummary};
use wirelint::redact::Redactor;
use wirelint::rules::RuleSet;
use wirelint::store::{RunSource, Store, WriterConfig};

use crate::support;

/// An answer of the dashboard, body as bytes.
pub(crate) fn fetch(state: &AppState, uri: &str) -> (StatusCode, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let res = router(state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("the router answers");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (status, bytes.to_vec())
    })
}

pub(crate) fn fetch_text(state: &AppState, uri: &str) -> (StatusCode, String) {
    let (status, body) = fetch(state, uri);
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub(crate) fn fetch_json(state: &AppState, uri: &str) -> Value {
    let (status, body) = fetch_text(state, uri);
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body}"))
}

/// Downloads the connection of exchange `id` as pcap, reads it with wirelint's own capture
/// reader (`wirelint exchanges`), and checks that it holds that exchange: same request line
/// and status, at the same index, on one connection.
pub(crate) fn check_pcap_holds_exchange(state: &AppState, id: i64, dir: &Path) {
    let ex = fetch_json(state, &format!("/api/exchanges/{id}"));
    let page = fetch_text(state, &format!("/exchanges/{id}")).1;
    assert!(
        page.contains(&format!("/exchanges/{id}/connection.pcap")),
        "the exchange page links the pcap: {page}"
    );
    let (status, pcap) = fetch(state, &format!("/exchanges/{id}/connection.pcap"));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&pcap));
    let file = dir.join(format!("conn-{id}.pcap"));
    std::fs::write(&file, &pcap).expect("write the pcap");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(["exchanges", "--format", "jsonl", "-q"])
        .arg(&file)
        .output()
        .expect("run wirelint exchanges");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let client = ex["client"].as_str().expect("client");
    assert!(
        lines.iter().all(|l| l["client"] == client),
        "one connection only: {lines:#?}"
    );
    let index = ex["index"].as_u64().expect("index") as usize;
    let same = lines
        .get(index)
        .unwrap_or_else(|| panic!("no exchange {index} in the pcap: {lines:#?}"));
    let start = ex["messages"][0]["start_line"]
        .as_str()
        .expect("start line");
    assert_eq!(
        format!(
            "{} {} {}",
            same["request"]["method"].as_str().unwrap_or(""),
            same["request"]["target"].as_str().unwrap_or(""),
            same["request"]["version"].as_str().unwrap_or("")
        ),
        start
    );
    // tshark, where installed, reads the same request in it.
    match tshark() {
        Some(tshark) => {
            let t = std::process::Command::new(tshark)
                .arg("-r")
                .arg(&file)
                .args([
                    "-Y",
                    "http.request",
                    "-T",
                    "fields",
                    "-e",
                    "http.request.method",
                    "-e",
                    "http.request.uri",
                ])
                .output()
                .expect("tshark runs");
            let listed = String::from_utf8_lossy(&t.stdout);
            let wanted = format!(
                "{}\t{}",
                same["request"]["method"].as_str().unwrap_or(""),
                same["request"]["target"].as_str().unwrap_or("")
            );
            assert!(
                listed.lines().any(|l| l == wanted),
                "tshark does not list {wanted:?}: {listed}\n{}",
                String::from_utf8_lossy(&t.stderr)
            );
        }
        None => println!("skipped the tshark half: tshark is not installed"),
    }
    // "HTTP/1.1 201 Created" → 201.
    let status: Option<u64> = ex["messages"][1]["start_line"]
        .as_str()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok());
    assert_eq!(
        same["response"]["status"].as_u64(),
        status,
        "{same:#?}\n{ex:#?}"
    );
}

fn tshark() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("tshark"))
            .find(|p| p.is_file())
    })
}

/// Records `capture` as a live run whose packets went through the packet ring, with a
/// disk cap of `cap` bytes; returns the run's id.
fn record_as_live(db: &Path, capture: &Path, cap: u64) -> i64 {
    let set = CaptureSet::open(&[capture.to_path_buf()]).expect("open the capture");
    let redact = Redactor::new(&[]);
    let ring = PacketRing::new(
        PacketStoreConfig {
            disk_cap: cap,
            memory_cap: 64 << 20,
            per_connection: 4 << 20,
        },
        redact.clone(),
    );
    // The capture thread's part: every decoded frame is held.
    let mut decoder = Decoder::new();
    set.for_each_frame(
        None,
        |frame| {
            if let Some(seg) = decoder.decode(frame) {
                ring.push(frame, &seg);
            }
        },
        |_| {},
    )
    .expect("read the capture");

    let store = Store::open(db).expect("open the store");
    let source = RunSource::Live {
        interface: "lo".into(),
        filter: None,
    };
    let run = store.begin_run(&source).expect("begin");
    let writer = store
        .writer_with(
            run,
            &source,
            WriterConfig {
                redact: Some(redact.clone()),
                packet_cap: cap,
                ..WriterConfig::default()
            },
        )
        .expect("writer");
    let cfg = PipelineConfig {
        workers: 2,
        rules: Some(Arc::new(RuleSet::builtin().expect("rules"))),
        redact: Some(redact),
        ..PipelineConfig::default()
    };
    let io = std::io::Error::other;
    // `sniff`'s sink: flag a connection after its exchange with findings is written.
    let summary = pipeline::run(
        &set,
        &cfg,
        |out| {
            match out {
                Output::Exchange(Analyzed { exchange, findings }) => {
                    let conn = Arc::clone(&exchange.connection);
                    let flagged = !findings.is_empty();
                    writer.write(Analyzed { exchange, findings }).map_err(io)?;
                    if flagged {
                        if let Some((first, packets)) =
                            ring.flag(conn.first_frame, conn.client, conn.server)
                        {
                            writer.packets(first, packets).map_err(io)?;
                        }
                    } else {
                        ring.note(conn.first_frame, conn.client, conn.server);
                    }
                }
                Output::Settled(at, f) => {
                    writer.settled(at, f).map_err(io)?;
                    if let Some((first, packets)) = ring.flag_known(at.connection) {
                        writer.packets(first, packets).map_err(io)?;
                    }
                }
            }
            Ok(())
        },
        |_| {},
    )
    .expect("the pipeline runs");
    for (first, packets) in ring.drain_flagged() {
        writer.packets(first, packets).expect("packets");
    }
    let summary = RunSummary {
        packet_store: Some(ring.stats()),
        ..summary
    };
    writer.finish(&summary).expect("finish");
    run
}

fn scalar(db: &Path, sql: &str) -> i64 {
    let conn = Connection::open(db).expect("open");
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn a_live_runs_flagged_connections_download_as_pcap_with_the_same_exchange() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("live.db");
    let capture = support::repo().join("captures/demo-api.pcap");
    let run = record_as_live(&db, &capture, 64 << 20);

    let kept = scalar(&db, "SELECT count(*) FROM packets");
    assert!(kept > 0, "no packet kept");
    assert_eq!(
        scalar(
            &db,
            &format!("SELECT stored_packets FROM runs WHERE id = {run}")
        ),
        kept
    );
    // Only connections with findings keep packets.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM packets p WHERE NOT EXISTS (SELECT 1 FROM findings f \
             JOIN exchanges e ON e.id = f.exchange_id WHERE e.connection_id = p.connection_id)"
        ),
        0
    );
    // The bearer token of the capture's Authorization headers is masked in the packets
    // (the same JWT in a login response's JSON body is not a header: bodies are kept as
    // sent, as the previews keep them unless `redact` names the field).
    let conn = Connection::open(&db).expect("open");
    let mut st = conn.prepare("SELECT data FROM packets").expect("prepare");
    let blobs: Vec<Vec<u8>> = st
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(
        !blobs
            .iter()
            .any(|b| b.windows(15).any(|w| w == b"Bearer eyJhbGci")),
        "a secret reached the packet store"
    );
    assert!(
        blobs
            .iter()
            .any(|b| b.windows(22).any(|w| w == b"Authorization: Bearer ")),
        "the scheme stays"
    );

    let state = AppState::new(&db, Arc::new(RuleSet::builtin().expect("rules")));
    let id = fetch_json(&state, "/api/findings?rule=%22created-without-location%22")["findings"][0]
        ["exchange"]
        .as_i64()
        .expect("an exchange");
    check_pcap_holds_exchange(&state, id, dir.path());
    let page = fetch_text(&state, &format!("/exchanges/{id}")).1;
    assert!(page.contains("packet store"), "{page}");
    let (status, bytes_page) = fetch_text(&state, &format!("/exchanges/{id}/bytes"));
    assert_eq!(status, StatusCode::OK, "{bytes_page}");
    assert!(bytes_page.contains("50 4f 53 54 20"), "POST in hex");
    assert!(bytes_page.contains("packet store"), "{bytes_page}");

    // A connection without findings has no packets, and the answer says why (a second
    // live run, of a capture wirelint finds nothing in).
    record_as_live(
        &db,
        &support::repo().join("captures/http-content-length.pcap"),
        64 << 20,
    );
    let clean = scalar(
        &db,
        "SELECT min(e.id) FROM exchanges e WHERE NOT EXISTS (SELECT 1 FROM findings f \
         JOIN exchanges x ON x.id = f.exchange_id WHERE x.connection_id = e.connection_id)",
    );
    let (status, body) = fetch_text(&state, &format!("/exchanges/{clean}/connection.pcap"));
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("findings only"), "{body}");
    let page = fetch_text(&state, &format!("/exchanges/{clean}")).1;
    assert!(!page.contains("connection.pcap"), "no link without packets");
}

#[test]
fn the_packet_store_evicts_the_oldest_connections_past_its_cap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("live.db");
    let capture = support::repo().join("captures/demo-api.pcap");
    let cap = 4096;
    let run = record_as_live(&db, &capture, cap);
    let evictions = scalar(
        &db,
        &format!("SELECT packet_evictions FROM runs WHERE id = {run}"),
    );
    assert!(evictions > 0, "nothing evicted under a {cap}-byte cap");
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM connections WHERE packets_evicted = 1"
        ),
        evictions
    );
    // Over the cap by at most the newest connection's packets.
    let total = scalar(&db, "SELECT coalesce(sum(length(data)), 0) FROM packets");
    let newest = scalar(
        &db,
        "SELECT coalesce(sum(length(data)), 0) FROM packets \
         WHERE connection_id = (SELECT max(connection_id) FROM packets)",
    );
    assert!(total <= cap as i64 + newest, "{total} bytes kept");
    let state = AppState::new(&db, Arc::new(RuleSet::builtin().expect("rules")));
    let evicted = scalar(
        &db,
        "SELECT min(e.id) FROM exchanges e JOIN connections c ON c.id = e.connection_id \
         WHERE c.packets_evicted = 1",
    );
    let (status, body) = fetch_text(&state, &format!("/exchanges/{evicted}/connection.pcap"));
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("evicted"), "{body}");
    let overview = fetch_text(&state, "/").1;
    assert!(overview.contains("connections evicted"), "{overview}");
}

#[test]
fn the_packet_stores_caps_are_counted_on_the_run_and_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("live.db");
    let store = Store::open(&db).expect("open the store");
    let source = RunSource::Live {
        interface: "lo".into(),
        filter: None,
    };
    let run = store.begin_run(&source).expect("begin");
    let writer = store.writer(run, &source).expect("writer");
    let summary = RunSummary {
        packet_store: Some(PacketStoreStats {
            over_connection_cap: 7,
            flags_dropped: 3,
            ..PacketStoreStats::default()
        }),
        ..RunSummary::default()
    };
    writer.finish(&summary).expect("finish");
    let counted =
        |column: &str| scalar(&db, &format!("SELECT {column} FROM runs WHERE id = {run}"));
    assert_eq!(counted("packets_over_connection_cap"), 7);
    assert_eq!(counted("flagged_connections_dropped"), 3);
    let stored: String = Connection::open(&db)
        .expect("open")
        .query_row(
            &format!("SELECT summary FROM runs WHERE id = {run}"),
            [],
            |r| r.get(0),
        )
        .expect("summary");
    let stored: Value = serde_json::from_str(&stored).expect("summary JSON");
    assert_eq!(stored["packet_store"]["flags_dropped"], 3);
    let state = AppState::new(&db, Arc::new(RuleSet::builtin().expect("rules")));
    let page = fetch_text(&state, "/").1;
    assert!(
        page.contains("7 packets past the per-connection cap"),
        "{page}"
    );
    assert!(page.contains("3 flagged connections not kept"), "{page}");
}
