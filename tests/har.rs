//! HAR files as input and output:
//!
//! - the HAR files in `captures/` (recorded by real writers: Playwright with headless
//!   Chromium, mitmproxy) match their checked-in exchanges and findings
//!   (`WIRELINT_BLESS=1` rewrites them);
//! - HAR written by `exchanges --format har` has what HAR 1.2 requires and reads back into
//!   the same exchanges;
//! - a malformed HAR is an error naming the file and the JSON path;
//! - HTTP/2 entries with pseudo-headers (as Chrome writes them) get the findings of the
//!   same traffic seen on the wire as HTTP/1.1, less the rules that need wire bytes;
//! - a HAR run is stored like a capture run, and the dashboard shows it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value;
use wirelint::capture::CaptureSet;
use wirelint::har::{self, HarWriter};
use wirelint::http::Exchange;
use wirelint::pipeline::{self, Analyzed, PipelineConfig};
use wirelint::rules::RuleSet;

use crate::support;

const HAR_FILES: &[&str] = &["playwright-chromium.har", "mitmproxy.har"];

/// `captures/har/`: HAR files recorded with real writers.
fn har_dir() -> PathBuf {
    support::repo().join("captures/har")
}

fn captures_dir() -> PathBuf {
    support::repo().join("captures")
}

fn wirelint(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the wirelint binary runs")
}

fn stdout_of(args: &[&str]) -> String {
    let out = wirelint(args, &har_dir());
    assert!(
        out.status.success(),
        "wirelint {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn har_captures_match_their_expected_exchanges_and_findings() {
    let bless = std::env::var_os("WIRELINT_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for name in HAR_FILES {
        let stem = name.trim_end_matches(".har");
        let jsonl = stdout_of(&["exchanges", "--format", "jsonl", "-q", name]);
        assert!(!jsonl.is_empty(), "{name}: no exchanges");
        for line in jsonl.lines() {
            let v: Value = serde_json::from_str(line).expect("exchange JSON");
            assert!(v["request"]["frame"].is_null(), "{name}: HAR has no frames");
            assert_eq!(v["anomalies"], Value::Array(vec![]), "{name}: {line}");
        }
        failures.extend(support::check_golden(
            &har_dir().join(format!("{stem}.expected.jsonl")),
            &jsonl,
            bless,
            "har",
        ));
        let findings = support::findings_text(&stdout_of(&[
            "analyze",
            "--no-db",
            "--format",
            "jsonl",
            "--fail-on",
            "never",
            "-q",
            name,
        ]));
        failures.extend(support::check_golden(
            &har_dir().join(format!("{stem}.findings.txt")),
            &findings,
            bless,
            "har",
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What each recording is there to show.
#[test]
fn har_captures_show_what_they_were_recorded_for() {
    let chromium = support::findings_text(&stdout_of(&[
        "analyze",
        "--no-db",
        "--format",
        "jsonl",
        "--fail-on",
        "never",
        "-q",
        "playwright-chromium.har",
    ]));
    for rule in [
        "created-without-location",
        "method-not-allowed-without-allow",
        "unauthorized-without-challenge",
        "too-many-requests-without-retry-after",
        "error-body-in-success",
        "json-without-json-type",
        "cookie-without-httponly",
    ] {
        assert!(chromium.contains(rule), "{rule} missing:\n{chromium}");
    }
    // The correct twin of the 201 and the 304 are not reported.
    assert!(!chromium.contains("/api/books/good"), "{chromium}");
    assert!(!chromium.contains("not-modified"), "{chromium}");

    let mitm = support::findings_text(&stdout_of(&[
        "analyze",
        "--no-db",
        "--format",
        "jsonl",
        "--fail-on",
        "never",
        "-q",
        "mitmproxy.har",
    ]));
    for rule in [
        "redirect-without-location",
        "cors-wildcard-with-credentials",
        "server-error-for-bad-request",
        "unavailable-without-retry-after",
        "cookie-prefix-violation",
        "conflicting-cache-directives",
    ] {
        assert!(mitm.contains(rule), "{rule} missing:\n{mitm}");
    }

    // Bodies: base64 (Chromium's PNG), gzip and deflate content decoded by the writer,
    // binary written one character per byte (mitmproxy).
    let set = har::open(
        &[
            har_dir().join("playwright-chromium.har"),
            har_dir().join("mitmproxy.har"),
        ],
        1 << 20,
    )
    .expect("reading the HAR captures");
    let body = |path: &str| {
        set.exchanges
            .iter()
            .find(|e| e.request.as_ref().and_then(|r| r.target()) == Some(path))
            .and_then(|e| e.response.as_ref())
            .map(|r| r.body.captured.clone())
            .unwrap_or_default()
    };
    assert!(body("/logo.png").starts_with(b"\x89PNG\r\n"));
    assert!(body("/api/books").starts_with(b"[{\"id\":1"));
    assert!(body("/v2/items").starts_with(b"[{\"sku\""));
    assert_eq!(body("/v2/blob"), (0u8..=255).collect::<Vec<u8>>());
}

/// Runs the pipeline over a pcap with no redaction: exchanges and findings.
fn analysed_pcap(path: &Path, rules: &Arc<RuleSet>) -> Vec<Analyzed> {
    let captures = CaptureSet::open(&[path.to_path_buf()]).expect("opening the capture");
    let cfg = PipelineConfig {
        rules: Some(Arc::clone(rules)),
        ..PipelineConfig::default()
    };
    let mut out = Vec::new();
    pipeline::run(
        &captures,
        &cfg,
        |item| {
            if let pipeline::Output::Exchange(a) = item {
                out.push(a);
            }
            Ok(())
        },
        |_| {},
    )
    .expect("analysing the capture");
    out
}

fn analysed_exchanges(exchanges: Vec<Exchange>, rules: &Arc<RuleSet>) -> Vec<Analyzed> {
    let cfg = PipelineConfig {
        rules: Some(Arc::clone(rules)),
        ..PipelineConfig::default()
    };
    let mut out = Vec::new();
    pipeline::run_exchanges(exchanges, &cfg, |item| {
        if let pipeline::Output::Exchange(a) = item {
            out.push(a);
        }
        Ok(())
    })
    .expect("analysing the exchanges");
    out
}

fn export(exchanges: &[&Exchange]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = HarWriter::begin(&mut out, vec!["demo-api.pcap".into()]).expect("begin");
    for ex in exchanges {
        w.entry(&mut out, ex).expect("entry");
    }
    w.finish(&mut out).expect("finish");
    out
}

fn import(bytes: &[u8]) -> Vec<Exchange> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("x.har");
    std::fs::write(&path, bytes).expect("writing the HAR");
    har::open(&[path], 1 << 20)
        .unwrap_or_else(|e| panic!("{e}"))
        .exchanges
}

/// Every field HAR 1.2 calls required is there.
fn assert_har_12(doc: &Value) {
    let log = &doc["log"];
    assert_eq!(log["version"], "1.2");
    assert_eq!(log["creator"]["name"], "wirelint");
    assert!(log["creator"]["version"].is_string());
    let entries = log["entries"].as_array().expect("log.entries");
    assert!(!entries.is_empty());
    for (i, e) in entries.iter().enumerate() {
        let at = |what: &str| format!("log.entries[{i}].{what}");
        let started = e["startedDateTime"].as_str().expect("startedDateTime");
        assert!(
            started.parse::<jiff::Timestamp>().is_ok(),
            "{}: {started}",
            at("startedDateTime")
        );
        assert!(e["time"].is_number(), "{}", at("time"));
        for key in [
            "method",
            "url",
            "httpVersion",
            "cookies",
            "headers",
            "queryString",
            "headersSize",
            "bodySize",
        ] {
            assert!(
                !e["request"][key].is_null(),
                "{}",
                at(&format!("request.{key}"))
            );
        }
        for key in [
            "status",
            "statusText",
            "httpVersion",
            "cookies",
            "headers",
            "content",
            "redirectURL",
            "headersSize",
            "bodySize",
        ] {
            assert!(
                !e["response"][key].is_null(),
                "{}",
                at(&format!("response.{key}"))
            );
        }
        assert!(e["response"]["content"]["size"].is_number());
        assert!(e["response"]["content"]["mimeType"].is_string());
        assert!(e["cache"].is_object(), "{}", at("cache"));
        for key in ["send", "wait", "receive"] {
            assert!(
                e["timings"][key].is_number(),
                "{}",
                at(&format!("timings.{key}"))
            );
        }
        if let Some(post) = e["request"].get("postData") {
            assert!(post["mimeType"].is_string(), "{}", at("request.postData"));
        }
    }
}

/// What must survive export → import: the HTTP of each exchange, its place, its times.
fn assert_same_http(wire: &Exchange, back: &Exchange) {
    let what = format!("{} #{}", wire.connection.client, wire.index);
    assert_eq!(back.connection.client, wire.connection.client, "{what}");
    assert_eq!(back.connection.server, wire.connection.server, "{what}");
    assert_eq!(back.connection.tls, wire.connection.tls, "{what}");
    assert_eq!(back.index, wire.index, "{what}");
    let pairs = [
        (wire.request.as_ref(), back.request.as_ref()),
        (wire.response.as_ref(), back.response.as_ref()),
    ];
    for (a, b) in pairs {
        assert_eq!(a.is_some(), b.is_some(), "{what}");
        let (Some(a), Some(b)) = (a, b) else { continue };
        assert_eq!(a.start, b.start, "{what}");
        assert_eq!(a.headers, b.headers, "{what}");
        let decoded = |m: &wirelint::http::Message| {
            wirelint::http::content::decoded_body(m, 1 << 20)
                .map(|(b, _)| b.into_owned())
                .ok()
        };
        assert_eq!(decoded(a), decoded(b), "{what}: content");
        // HAR times are in milliseconds.
        assert!(
            (a.first_ts.0 - b.first_ts.0).abs() <= 1_000_000,
            "{what}: first byte"
        );
        assert!(
            (a.last_ts.0 - b.last_ts.0).abs() <= 1_000_000,
            "{what}: last byte"
        );
        assert!(b.body.content_decoded && b.anomalies.is_empty());
    }
    assert!(!back.has_wire_bytes());
}

#[test]
fn exported_har_is_complete_and_reads_back_into_the_same_exchanges() {
    let rules = Arc::new(RuleSet::builtin().expect("rules"));
    let wire = analysed_pcap(&captures_dir().join("demo-api.pcap"), &rules);
    let exchanges: Vec<&Exchange> = wire.iter().map(|a| &a.exchange).collect();
    let bytes = export(&exchanges);
    let doc: Value = serde_json::from_slice(&bytes).expect("the export is JSON");
    assert_har_12(&doc);
    assert_eq!(
        doc["log"]["entries"].as_array().map(Vec::len),
        Some(wire.len())
    );
    // Vendor fields carry what HAR has no place for.
    let first = &doc["log"]["entries"][0]["_wirelint"];
    assert_eq!(first["source"], "wire");
    assert!(first["request_frames"][0].as_u64().is_some_and(|n| n > 0));

    let mut back = import(&bytes);
    assert_eq!(back.len(), wire.len());
    let key = |e: &Exchange| (e.connection.client, e.index);
    back.sort_by_key(key);
    let mut wire_sorted = exchanges.clone();
    wire_sorted.sort_by_key(|e| key(e));
    for (a, b) in wire_sorted.iter().zip(&back) {
        assert_same_http(a, b);
    }

    // 1xx responses, which HAR has no place for, are listed in the vendor object.
    let with_interim = analysed_pcap(&captures_dir().join("http-100-continue.pcap"), &rules);
    let refs: Vec<&Exchange> = with_interim.iter().map(|a| &a.exchange).collect();
    let doc: Value = serde_json::from_slice(&export(&refs)).expect("JSON");
    assert_har_12(&doc);
    let interim: Vec<&Value> = doc["log"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["_wirelint"]["interim"])
        .collect();
    assert_eq!(
        interim,
        [&serde_json::json!([100]), &serde_json::json!([103])]
    );

    // A HAR read in and written out again reads back the same, too.
    let set = har::open(&[har_dir().join("playwright-chromium.har")], 1 << 20)
        .expect("reading the recording");
    let refs: Vec<&Exchange> = set.exchanges.iter().collect();
    let again = import(&export(&refs));
    assert_eq!(again.len(), set.exchanges.len());
    for (a, b) in set.exchanges.iter().zip(&again) {
        assert_same_http(a, b);
    }
}

#[test]
fn malformed_har_is_an_error_naming_the_file_and_the_json_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "wrong-type.har",
            r#"{"log":{"entries":[{"request":{"method":"GET","url":"http://a.test/"},"response":{"status":200,"headers":{"Server":"x"}}}]}}"#,
            "log.entries[0].response.headers",
        ),
        (
            "cut.har",
            r#"{"log":{"version":"1.2","entries":[{"request":"#,
            "log.entries[0].request",
        ),
        (
            "not-har.json",
            r#"{"name":"package","version":"1.0.0"}"#,
            "no log.entries",
        ),
    ];
    for (name, text, want) in cases {
        std::fs::write(dir.path().join(name), text).expect("writing");
        let out = wirelint(&["analyze", "--no-db", name], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
}

#[test]
fn har_and_pcap_in_one_run_is_a_clear_error_and_har_is_found_by_content() {
    let dir = tempfile::tempdir().expect("temp dir");
    let har = har_dir().join("mitmproxy.har");
    // A HAR file without the .har extension is still HAR.
    std::fs::copy(&har, dir.path().join("traffic.json")).expect("copy");
    std::fs::copy(
        captures_dir().join("demo-api.pcap"),
        dir.path().join("demo.pcap"),
    )
    .expect("copy");
    let out = wirelint(&["exchanges", "-q", "traffic.json"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 12);

    let out = wirelint(
        &["analyze", "--no-db", "traffic.json", "demo.pcap"],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot analyse HAR files and packet captures in one run")
            && err.contains("traffic.json")
            && err.contains("demo.pcap"),
        "{err}"
    );
    // A missing file beside a HAR file is reported as missing, not as a mix.
    let out = wirelint(
        &["analyze", "--no-db", "traffic.json", "gone.pcap"],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("gone.pcap: no such file"), "{err}");
    let args = [
        "analyze",
        "--no-db",
        "--filter",
        "tcp port 80",
        "traffic.json",
    ];
    let out = wirelint(&args, dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--filter"), "{err}");
}

/// The exported HTTP/1.1 HAR rewritten as Chrome writes HTTP/2 entries: `h2` versions,
/// pseudo-headers first in the request headers, lower-case names, no Host or
/// connection-specific fields.
fn as_chrome_h2(doc: &mut Value) {
    const CONNECTION_SPECIFIC: &[&str] = &[
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ];
    let Some(entries) = doc["log"]["entries"].as_array_mut() else {
        return;
    };
    for e in entries {
        let url = e["request"]["url"].as_str().unwrap_or("").to_string();
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", &url));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let method = e["request"]["method"].clone();
        for side in ["request", "response"] {
            e[side]["httpVersion"] = Value::from("h2");
            let headers = e[side]["headers"].as_array().cloned().unwrap_or_default();
            let mut out: Vec<Value> = Vec::new();
            if side == "request" && method.as_str().is_some_and(|m| !m.is_empty()) {
                for (n, v) in [
                    (":method", method.clone()),
                    (":authority", Value::from(authority)),
                    (":scheme", Value::from(scheme)),
                    (":path", Value::from(path)),
                ] {
                    out.push(serde_json::json!({"name": n, "value": v}));
                }
            }
            for h in headers {
                let name = h["name"].as_str().unwrap_or("").to_ascii_lowercase();
                if !CONNECTION_SPECIFIC.contains(&name.as_str()) {
                    out.push(serde_json::json!({"name": name, "value": h["value"]}));
                }
            }
            e[side]["headers"] = Value::Array(out);
        }
    }
}

/// (client, index, rule, message) of every finding.
fn finding_keys(items: &[Analyzed]) -> BTreeSet<(String, u32, String, String)> {
    items
        .iter()
        .flat_map(|a| {
            a.findings.iter().map(|f| {
                (
                    a.exchange.connection.client.to_string(),
                    a.exchange.index,
                    f.rule.clone(),
                    f.message.clone(),
                )
            })
        })
        .collect()
}

#[test]
fn h2_pseudo_headers_get_the_wire_findings_less_the_wire_rules() {
    let rules = Arc::new(RuleSet::builtin().expect("rules"));
    let wire = analysed_pcap(&captures_dir().join("demo-api.pcap"), &rules);
    let exchanges: Vec<&Exchange> = wire.iter().map(|a| &a.exchange).collect();
    let mut doc: Value = serde_json::from_slice(&export(&exchanges)).expect("JSON");
    as_chrome_h2(&mut doc);
    let h2 = import(&serde_json::to_vec(&doc).expect("JSON"));
    assert!(h2.iter().all(|e| {
        e.request
            .as_ref()
            .is_none_or(|r| r.version() == "HTTP/2" && r.header(":authority").is_some())
    }));
    let from_har = analysed_exchanges(h2, &rules);

    let wire_rules: BTreeSet<&str> = rules
        .rules
        .iter()
        .filter(|r| r.wire_need().is_some())
        .map(|r| r.id.as_str())
        .collect();
    let expected: BTreeSet<_> = finding_keys(&wire)
        .into_iter()
        .filter(|(_, _, rule, _)| !wire_rules.contains(rule.as_str()))
        .collect();
    let got = finding_keys(&from_har);
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "HTTP/2 HAR findings differ from the wire's less wire rules\nmissing: {missing:#?}\nextra: {extra:#?}"
    );
    // The comparison means something: the wire run had wire-rule findings, and others.
    assert!(finding_keys(&wire).len() > expected.len() && expected.len() > 20);
}

#[test]
fn analyze_har_records_a_run_the_dashboard_shows_and_reports_skipped_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let har = har_dir().join("playwright-chromium.har");
    let db = dir.path().join("wirelint.db");
    let out = wirelint(
        &[
            "analyze",
            "--fail-on",
            "never",
            "--db",
            db.to_str().expect("utf-8"),
            har.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 HAR file"), "{err}");
    assert!(
        err.contains("rules skipped:") && err.contains("message framing and line syntax"),
        "{err}"
    );

    let conn = rusqlite::Connection::open(&db).expect("db");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    assert_eq!(one("SELECT count(*) FROM exchanges"), 14);
    assert_eq!(
        one("SELECT count(*) FROM exchanges WHERE req_frame IS NOT NULL"),
        0
    );
    assert_eq!(one("SELECT count(*) FROM exchanges WHERE host IS NULL"), 0);
    assert!(one("SELECT count(*) FROM findings") >= 10);
    let source: String = conn
        .query_row("SELECT source FROM runs", [], |r| r.get(0))
        .expect("run");
    assert!(source.contains("playwright-chromium.har"), "{source}");
    let summary: String = conn
        .query_row("SELECT summary FROM runs", [], |r| r.get(0))
        .expect("summary");
    let summary: Value = serde_json::from_str(&summary).expect("summary JSON");
    assert_eq!(summary["har"]["entries"], 14);
    assert!(summary["har"]["skipped"][0]["evaluations"].as_u64() > Some(0));

    // The dashboard's exchange page renders a HAR exchange (no frame numbers).
    let state =
        wirelint::dashboard::AppState::new(&db, Arc::new(RuleSet::builtin().expect("rules")));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let id = one("SELECT min(id) FROM exchanges");
    let (status, body) = rt.block_on(async {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let res = wirelint::dashboard::router(state)
            .oneshot(
                axum::http::Request::get(format!("/exchanges/{id}"))
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("the router answers");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert!(body.contains("127.0.0.1"), "{body}");

    // json and sarif outputs work on HAR input.
    for (format, results) in [("json", "/findings"), ("sarif", "/runs/0/results")] {
        let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .args([
                "analyze",
                "--no-db",
                "--fail-on",
                "never",
                "-q",
                "--format",
                format,
            ])
            .arg(&har)
            .output()
            .expect("runs");
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        let n = v
            .pointer(results)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        assert!(n >= 10, "{format}: {n} results");
    }
}
