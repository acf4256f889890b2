//! The real binary end to end: exit codes, error messages on bad input, output formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support;

fn wirelint(args: &[&str], cwd: &Path) -> Output {
    // `analyze` records into ./wirelint.db by default: not in the repository.
    let no_db = args.first() == Some(&"analyze") && !args.contains(&"--db");
    Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .args(no_db.then_some("--no-db"))
        .current_dir(cwd)
        .output()
        .expect("the wirelint binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn demo() -> PathBuf {
    support::repo().join("captures/demo-api.pcap")
}

#[test]
fn bad_input_exits_2_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut absurd = Vec::new();
    absurd.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    absurd.extend_from_slice(&2u16.to_le_bytes());
    absurd.extend_from_slice(&4u16.to_le_bytes());
    absurd.extend_from_slice(&[0; 8]);
    absurd.extend_from_slice(&65535u32.to_le_bytes());
    absurd.extend_from_slice(&1u32.to_le_bytes());
    absurd.extend_from_slice(&[0; 8]);
    absurd.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    absurd.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let corrupt = dir.path().join("corrupt.pcap");
    std::fs::write(&corrupt, &absurd).expect("write");

    let cases: Vec<(PathBuf, &str)> = vec![
        (dir.path().join("missing.pcap"), "missing.pcap"),
        (dir.path().to_path_buf(), "director"),
        (empty, "empty"),
        (text, "not a capture"),
        (corrupt, "corrupt.pcap"),
    ];
    for (path, expect) in cases {
        let p = path.to_string_lossy().into_owned();
        for cmd in ["exchanges", "analyze"] {
            let o = wirelint(&[cmd, &p], dir.path());
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {p}: {err}");
            assert!(
                err.to_lowercase().contains(expect),
                "{cmd} {p}: message {err:?} should mention {expect:?}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let o = wirelint(&["exchanges", "--format", "yaml", "x.pcap"], dir.path());
    assert_eq!(o.status.code(), Some(2), "usage error");
}

#[test]
fn a_capture_cut_off_midway_is_analysed_up_to_the_damage() {
    let bytes = std::fs::read(demo()).expect("demo capture");
    let dir = tempfile::tempdir().expect("temp dir");
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let o = wirelint(
        &["exchanges", "--format", "jsonl", cut.to_str().unwrap_or("")],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(
        !o.stdout.is_empty(),
        "exchanges before the damage are reported"
    );
}

#[test]
fn exchanges_jsonl_is_the_documented_contract() {
    let o = wirelint(
        &[
            "exchanges",
            "--format",
            "jsonl",
            "-q",
            demo().to_str().unwrap_or(""),
        ],
        &support::repo(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).expect("utf-8");
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        for key in [
            "capture",
            "client",
            "server",
            "index",
            "request",
            "response",
            "anomalies",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {line}");
        }
        if let Some(req) = v["request"].as_object() {
            for key in [
                "method",
                "target",
                "version",
                "host",
                "frame",
                "ts",
                "headers",
                "body_bytes",
            ] {
                assert!(req.contains_key(key), "request lacks {key}");
            }
            assert!(req["frame"].as_u64().is_some_and(|f| f >= 1));
        }
        if let Some(resp) = v["response"].as_object() {
            for key in [
                "status",
                "reason",
                "version",
                "frame",
                "ts",
                "headers",
                "body_bytes",
            ] {
                assert!(resp.contains_key(key), "response lacks {key}");
            }
        }
        n += 1;
    }
    assert!(
        n >= 20,
        "the demo capture has a realistic session, found {n} exchanges"
    );
}

#[test]
fn analyze_exit_codes_follow_fail_on() {
    let demo = demo();
    let d = demo.to_str().unwrap_or("");
    let o = wirelint(&["analyze", "-q", d], &support::repo());
    assert_eq!(
        o.status.code(),
        Some(1),
        "the demo capture has errors: {}",
        stderr(&o)
    );
    let o = wirelint(
        &["analyze", "-q", "--fail-on", "never", d],
        &support::repo(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = wirelint(
        &["analyze", "-q", "--select", "no-such-rule", d],
        &support::repo(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-rule"));
    // Only info-level rules selected: nothing at or above error.
    let o = wirelint(
        &["analyze", "-q", "--select", "x-prefixed-header", d],
        &support::repo(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn analyze_formats_are_well_formed() {
    let demo = demo();
    let d = demo.to_str().unwrap_or("");
    let o = wirelint(
        &[
            "analyze",
            "-q",
            "--fail-on",
            "never",
            "--format",
            "jsonl",
            d,
        ],
        &support::repo(),
    );
    let text = String::from_utf8(o.stdout).expect("utf-8");
    let mut rules_seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("finding JSON");
        for key in ["rule", "severity", "message", "evidence", "exchange"] {
            assert!(v.get(key).is_some(), "finding lacks {key}: {line}");
        }
        rules_seen.insert(v["rule"].as_str().unwrap_or("").to_string());
    }
    for expected in [
        "created-without-location",
        "no-content-with-body",
        "unauthorized-without-challenge",
        "method-not-allowed-without-allow",
    ] {
        assert!(
            rules_seen.contains(expected),
            "demo capture should show {expected}; saw {rules_seen:?}"
        );
    }

    let o = wirelint(
        &["analyze", "-q", "--fail-on", "never", "--format", "json", d],
        &support::repo(),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert!(v["findings"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(v["summary"]["exchanges"].as_u64().is_some_and(|n| n > 0));

    let o = wirelint(
        &[
            "analyze",
            "-q",
            "--fail-on",
            "never",
            "--format",
            "sarif",
            d,
        ],
        &support::repo(),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("SARIF is JSON");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"]
        .as_array()
        .expect("driver rules");
    for r in run["results"].as_array().expect("results") {
        let idx = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(
            rules[idx]["id"], r["ruleId"],
            "ruleIndex points at the rule"
        );
        assert!(
            r["partialFingerprints"]["wirelint/v1"]
                .as_str()
                .is_some_and(|f| f.len() == 16)
        );
        assert!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .is_some()
        );
        assert!(matches!(
            r["level"].as_str(),
            Some("error" | "warning" | "note")
        ));
    }

    let o = wirelint(
        &["analyze", "-q", "--fail-on", "never", d],
        &support::repo(),
    );
    let text = String::from_utf8(o.stdout).expect("utf-8");
    assert!(text.contains("created-without-location"), "{text}");
    assert!(
        !text.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn secrets_are_redacted_in_every_output() {
    let demo = demo();
    let d = demo.to_str().unwrap_or("");
    for args in [
        vec!["exchanges", "--format", "jsonl", "-q", d],
        vec![
            "analyze",
            "-q",
            "--fail-on",
            "never",
            "--format",
            "jsonl",
            d,
        ],
    ] {
        let o = wirelint(&args, &support::repo());
        let text = String::from_utf8_lossy(&o.stdout);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
            let ex = v.get("exchange").unwrap_or(&v);
            for side in ["request", "response"] {
                for h in ex[side]["headers"].as_array().into_iter().flatten() {
                    let name = h[0].as_str().unwrap_or("").to_ascii_lowercase();
                    let value = h[1].as_str().unwrap_or("");
                    if [
                        "authorization",
                        "cookie",
                        "set-cookie",
                        "proxy-authorization",
                    ]
                    .contains(&name.as_str())
                    {
                        assert!(value.contains("****"), "{name}: {value} is not redacted");
                    }
                }
            }
        }
    }
}

#[test]
fn rules_list_and_explain() {
    let o = wirelint(&["rules"], &support::repo());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("created-without-location"));
    let o = wirelint(
        &["rules", "explain", "created-without-location"],
        &support::repo(),
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("RFC 9110"), "{text}");
    assert!(text.contains("Bad example"), "{text}");
    let o = wirelint(&["rules", "explain", "nope"], &support::repo());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn rules_readme_is_generated_from_the_rule_files() {
    let o = wirelint(&["rules", "--format", "markdown"], &support::repo());
    let generated = String::from_utf8_lossy(&o.stdout);
    let on_disk =
        std::fs::read_to_string(support::repo().join("rules/README.md")).unwrap_or_default();
    assert!(
        generated == on_disk,
        "rules/README.md is stale: run `cargo run -- rules --format markdown > rules/README.md`"
    );
}

/// Writes a pcap (Ethernet) of `n` SYNs from distinct clients to 192.0.2.10:80, one every
/// 10 µs from `start_secs`, never answered.
fn write_syn_flood(path: &Path, n: u32, start_secs: u32) {
    let mut out = Vec::with_capacity(24 + n as usize * 70);
    for v in [
        0xa1b2_c3d4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
    ] {
        out.extend_from_slice(v);
    }
    for v in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..n {
        let mut frame = Vec::with_capacity(54);
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
        let client = (0x0a00_0000u32 + i).to_be_bytes();
        frame.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        frame.extend_from_slice(&client);
        frame.extend_from_slice(&[192, 0, 2, 10]);
        frame.extend_from_slice(&(1024 + (i % 60000) as u16).to_be_bytes());
        frame.extend_from_slice(&80u16.to_be_bytes());
        frame.extend_from_slice(&i.wrapping_mul(7919).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        let micros = u64::from(i) * 10;
        let secs = start_secs + (micros / 1_000_000) as u32;
        let usec = (micros % 1_000_000) as u32;
        for v in [secs, usec, frame.len() as u32, frame.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).expect("writes the capture");
}

#[test]
fn a_syn_flood_is_one_run_finding_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flood = dir.path().join("flood.pcap");
    write_syn_flood(&flood, 5000, 1_900_000_000);
    let path = flood.to_string_lossy().into_owned();

    let o = wirelint(&["analyze", &path, "--format", "jsonl"], dir.path());
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one finding, not one per connection: {text}"
    );
    assert_eq!(lines[0]["rule"], "syn-flood");
    assert_eq!(lines[0]["scope"], "run");
    assert!(lines[0]["exchange"].is_null());
    let message = lines[0]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("5000 connections"), "{message}");
    assert!(
        lines[0]["evidence"]
            .as_str()
            .unwrap_or("")
            .contains("192.0.2.10:80")
    );
    assert!(
        stderr(&o).contains("5000 SYNs without handshake"),
        "{}",
        stderr(&o)
    );

    let o = wirelint(&["analyze", &path, "--format", "text"], dir.path());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("syn-flood (run) — 1 finding"), "{text}");

    let o = wirelint(&["analyze", &path, "--format", "sarif"], dir.path());
    let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).expect("SARIF");
    let results = sarif["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], "syn-flood");

    // The threshold is a setting; stored findings of the run have no exchange.
    std::fs::write(
        dir.path().join("wirelint.toml"),
        "[rules.syn-flood]\nthreshold = 6000\n",
    )
    .expect("config");
    let o = wirelint(&["analyze", &path, "--format", "jsonl"], dir.path());
    assert!(o.stdout.is_empty(), "below the configured threshold");
    std::fs::write(
        dir.path().join("wirelint.toml"),
        "[rules.syn-flood]\nthreshold = 10\n",
    )
    .expect("config");
    let db = dir.path().join("run.db");
    let db_arg = db.to_string_lossy().into_owned();
    let o = wirelint(&["analyze", &path, "--db", &db_arg], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let conn = rusqlite::Connection::open(&db).expect("db");
    let (rule, exchange): (String, Option<i64>) = conn
        .query_row("SELECT rule, exchange_id FROM findings", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("one finding row");
    assert_eq!(rule, "syn-flood");
    assert_eq!(exchange, None);
}

#[test]
fn a_signal_during_analyze_reports_what_was_read_and_marks_the_run() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let flood = dir.path().join("flood.pcap");
    // Long enough that the run is still reading when the first findings (of the demo
    // capture, earlier in time) are out.
    write_syn_flood(&flood, 2_000_000, 1_900_000_000);
    let demo = support::repo().join("captures/demo-api.pcap");
    let db = dir.path().join("run.db");
    for (signal, code, name) in [
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGTERM, 143, "SIGTERM"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .arg("analyze")
            .arg(&demo)
            .arg(&flood)
            .args(["--format", "jsonl", "--workers", "2", "--db"])
            .arg(&db)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the wirelint binary runs");
        let started = Instant::now();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut n = 0;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if n == 0 {
                    let _ = tx.send(line);
                }
                n += 1;
            }
            n
        });
        let first = rx.recv_timeout(Duration::from_secs(30));
        let pid = child.id() as libc::pid_t;
        let still_running = matches!(child.try_wait(), Ok(None));
        // SAFETY: kill(2) on the PID of our own child.
        unsafe { libc::kill(pid, signal) };
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let printed = reader.join().unwrap_or(0);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let first = first.expect("a finding was printed while the run was reading");
        assert!(first.contains("\"rule\""), "{first}");
        assert!(
            still_running,
            "the run ended before it was signalled: make the flood longer"
        );
        let status = status.expect("the run stopped after the signal");
        assert_eq!(status.code(), Some(code), "{name}: {err}");
        assert!(printed >= 1);
        assert!(err.contains(&format!("interrupted by {name}")), "{err}");
        assert!(err.contains(" packets ("), "the summary is printed: {err}");
        let conn = rusqlite::Connection::open(&db).expect("db");
        let (reason, finished): (Option<String>, Option<i64>) = conn
            .query_row(
                "SELECT interrupted, finished_wall FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the run row");
        assert_eq!(reason.as_deref(), Some(name));
        assert!(
            finished.is_some(),
            "the summary of what was read is recorded"
        );
    }
}
