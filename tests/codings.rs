//! Transfer codings are framing (RFC 9112 §6.1, §7) and JSON is judged over whole bodies
//! (issue 9 items 6 and 7), on the captures made for them (`captures/codings-*`).

use std::path::{Path, PathBuf};

use wirelint::http::{AnomalyKind, Framing, JsonVerdict};

use crate::captures::make_captures;
use crate::support;

fn capture(name: &str) -> PathBuf {
    support::repo().join("captures").join(name)
}

/// `wirelint analyze` on one file: (exchange index, rule) of every finding, plus extra args.
fn findings(file: &Path, extra: &[&str]) -> Vec<(u64, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args([
            "analyze",
            "--no-db",
            "--format",
            "jsonl",
            "--fail-on",
            "never",
            "-q",
        ])
        .args(extra)
        .arg(file)
        .output()
        .expect("the wirelint binary runs");
    assert!(
        out.status.success(),
        "analyze {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("finding JSON");
            (
                v["exchange"]["index"].as_u64().unwrap_or(u64::MAX),
                v["rule"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Rules that fired on raw gzip bytes judged as content.
const CONTENT_RULES: &[&str] = &[
    "content-type-mismatch",
    "invalid-json-body",
    "undecodable-charset",
    "success-for-bad-request",
    "json-not-utf8",
    "extra-data-after-message",
];

fn assert_no_content_findings(f: &[(u64, String)], name: &str) {
    let wrong: Vec<_> = f
        .iter()
        .filter(|(_, r)| CONTENT_RULES.contains(&r.as_str()))
        .collect();
    assert!(wrong.is_empty(), "{name}: {wrong:?}");
}

#[test]
fn gzip_then_chunked_is_undone_before_content_rules() {
    let file = capture("codings-te-gzip-chunked.pcap");
    let (ex, _) = support::exchanges_of(std::slice::from_ref(&file), 1);
    assert_eq!(ex.len(), 2);
    let req = ex[0].request.as_ref().expect("request");
    let resp = ex[0].response.as_ref().expect("response");
    assert_eq!(
        req.body.captured,
        br#"{"title":"Dune","author":"Frank Herbert","year":1965}"#
    );
    assert!(req.body.captured_all);
    // Kept whole: the rules judge the kept bytes, the http stage gives no verdict.
    assert_eq!((&req.body.json, &resp.body.json), (&None, &None));
    assert!(resp.body.captured.starts_with(b"{\"id\":7"));
    let html = ex[1].response.as_ref().expect("page");
    assert!(html.body.captured.starts_with(b"<!doctype html>"));
    assert_eq!(html.body.json, None, "not JSON-typed: not validated");
    let f = findings(&file, &[]);
    assert_no_content_findings(&f, "codings-te-gzip-chunked");
    assert!(
        !f.is_empty(),
        "the capture has other findings (a test that cannot fail…)"
    );
}

#[test]
fn a_response_whose_final_coding_is_gzip_runs_to_close() {
    let file = capture("codings-te-gzip-close.pcap");
    let (ex, _) = support::exchanges_of(std::slice::from_ref(&file), 1);
    let resp = ex[0].response.as_ref().expect("response");
    assert_eq!(resp.body.framing, Framing::Close);
    assert_eq!(
        String::from_utf8_lossy(&resp.body.captured),
        "{\"total\":12,\"pages\":[\"caf\u{e9}\",\"na\u{ef}ve\"]}"
    );
    assert!(resp.body.captured_all);
    let f = findings(&file, &[]);
    assert_no_content_findings(&f, "codings-te-gzip-close");
    let framing: Vec<_> = f
        .iter()
        .filter(|(_, r)| r == "chunked-not-final-coding")
        .collect();
    assert_eq!(framing.len(), 1, "{f:?}");
    let close: Vec<_> = f
        .iter()
        .filter(|(_, r)| r == "close-delimited-response")
        .collect();
    assert_eq!(close.len(), 1, "{f:?}");
}

#[test]
fn a_request_without_determinable_length_stops_the_client_stream() {
    let file = capture("codings-te-gzip-request.pcap");
    let (ex, summary) = support::exchanges_of(std::slice::from_ref(&file), 1);
    // The GET /admin after the gzip bytes is not read as a request.
    assert_eq!(ex.len(), 1, "{ex:#?}");
    let req = ex[0].request.as_ref().expect("request");
    assert_eq!(req.body.framing, Framing::Undetermined);
    assert!(!req.body.captured_all, "its content was not seen");
    assert!(req.has_anomaly(AnomalyKind::ChunkedNotFinal));
    assert_eq!(ex[0].response.as_ref().and_then(|r| r.status()), Some(400));
    assert_eq!(summary.http.undetermined_request_length, 1);
    let f = findings(&file, &[]);
    assert_no_content_findings(&f, "codings-te-gzip-request");
    let framing: Vec<_> = f
        .iter()
        .filter(|(_, r)| r == "chunked-not-final-coding")
        .collect();
    assert_eq!(framing, [&(0, "chunked-not-final-coding".to_string())]);
}

/// `invalid-json-body` on exactly the invalid documents among `targets` (by exchange).
fn invalid_json_on(file: &Path, extra: &[&str]) -> Vec<u64> {
    findings(file, extra)
        .into_iter()
        .filter(|(_, r)| r == "invalid-json-body")
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn two_megabyte_json_is_judged_over_every_byte() {
    let file = capture("codings-json-2mb.pcap");
    let (ex, _) = support::exchanges_of(std::slice::from_ref(&file), 1);
    assert_eq!(ex.len(), 4);
    for (i, e) in ex.iter().enumerate() {
        let resp = e.response.as_ref().expect("response");
        let body = &resp.body;
        // The first two, transfer-decoded, are far past the kept-body cap; the other two
        // are kept whole on the wire and decode far past the rules' 1 MiB decode cap.
        assert_eq!(body.captured_all, i >= 2, "#{i}");
        let broken = i % 2 == 1;
        // Kept whole on the wire, the Content-Encoding ones are judged by the rules as
        // they decode.
        let verdict = if i >= 2 {
            assert_eq!(body.json, None);
            Some(wirelint::http::json_verdict_of_kept(resp))
        } else {
            body.json.clone()
        };
        match &verdict {
            Some(JsonVerdict::Valid) => assert!(!broken, "#{i}"),
            Some(JsonVerdict::Invalid { at, .. }) => {
                assert!(broken, "#{i}");
                assert!(*at > 1_999_000, "#{i}: invalid at {at}");
            }
            other => panic!("#{i}: {other:?}"),
        }
    }
    assert_eq!(invalid_json_on(&file, &[]), [1, 3]);
}

#[test]
fn uncompressed_two_megabyte_json_and_the_body_cap_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("json-2mb-identity.pcap");
    std::fs::write(&file, make_captures::json_2mb_identity()).expect("write");
    // 2 MB on the wire, the kept-body cap at its 256 KiB default.
    let (ex, _) = support::exchanges_of(std::slice::from_ref(&file), 1);
    let bodies: Vec<_> = ex
        .iter()
        .map(|e| &e.response.as_ref().expect("response").body)
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies.iter().all(|b| !b.captured_all && b.size > 2_000_000));
    assert_eq!(invalid_json_on(&file, &[]), [1]);
    // A cap large enough to keep everything: the kept bytes decide, the same way.
    assert_eq!(invalid_json_on(&file, &["--body-cap", "4m"]), [1]);
    // wirelint.toml's body_cap, and a flag that wins over it.
    let cfg = dir.path().join("wirelint.toml");
    std::fs::write(&cfg, "body_cap = \"64k\"\n").expect("write");
    let cfg_arg = cfg.to_string_lossy().to_string();
    assert_eq!(invalid_json_on(&file, &["--config", &cfg_arg]), [1]);
    std::fs::write(&cfg, "body_cap = \"lots\"\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(["analyze", "--no-db", "-q", "--config", &cfg_arg])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad body_cap is a usage error"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(["exchanges", "--body-cap", "nonsense"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn decompression_bombs_are_findings_and_cost_only_the_caps() {
    let file = capture("codings-gzip-bomb.pcap");
    let (ex, _) = support::exchanges_of(std::slice::from_ref(&file), 1);
    assert_eq!(ex.len(), 2);
    // Content-Encoding: kept as sent (16 kB); Transfer-Encoding: undone up to the cap only.
    let ce = &ex[0].response.as_ref().expect("response").body;
    assert!(ce.size < 100_000 && ce.captured_all, "{}", ce.size);
    let te = ex[1].response.as_ref().expect("response");
    assert!(!te.body.captured_all);
    assert!(te.body.captured.len() <= 256 * 1024);
    assert!(
        te.has_anomaly(AnomalyKind::CompressionBomb),
        "{:?}",
        te.anomalies
    );
    let bombs: Vec<u64> = findings(&file, &[])
        .into_iter()
        .filter(|(_, r)| r == "compression-bomb")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(bombs, [0, 1]);
}
