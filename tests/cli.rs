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

/// `wirelint` with extra environment variables (and the same `--no-db` default).
fn wirelint_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let no_db = args.first() == Some(&"analyze") && !args.contains(&"--db");
    Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .args(no_db.then_some("--no-db"))
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .expect("the wirelint binary runs")
}

/// The demo capture cut off two thirds in, in `dir`.
fn cut_demo(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(demo()).expect("demo capture");
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    cut
}

#[test]
fn quiet_never_hides_warnings_about_data_not_analysed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cut = cut_demo(dir.path());
    let c = cut.to_str().unwrap_or("");
    for args in [
        vec!["exchanges", "-q", c],
        vec!["analyze", "-q", "--fail-on", "never", c],
        vec![
            "analyze",
            "--quiet",
            "--format",
            "jsonl",
            "--fail-on",
            "never",
            c,
        ],
    ] {
        let o = wirelint(&args, dir.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            err.lines().any(|l| l.starts_with("wirelint: warning: ")
                && l.contains("cut.pcap")
                && l.contains("middle of frame")),
            "{args:?}: -q hid the warning: {err:?}"
        );
        assert!(
            !err.contains("connections:"),
            "{args:?}: -q still prints the summary: {err}"
        );
    }
}

#[test]
fn analyze_serve_on_a_taken_port_fails_before_analysing_and_names_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let db = dir.path().join("w.db");
    let serve = format!("--serve={addr}");
    let o = wirelint(
        &[
            "analyze",
            "--fail-on",
            "never",
            "--db",
            db.to_str().unwrap_or(""),
            demo().to_str().unwrap_or(""),
            &serve,
        ],
        dir.path(),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("in use") && err.contains("--serve ADDR"),
        "{err}"
    );
    assert!(!err.contains("--listen"), "analyze has no --listen: {err}");
    assert!(o.stdout.is_empty(), "nothing was analysed or printed");
    assert!(!err.contains("packets"), "no run summary: {err}");
    assert!(!db.exists(), "no run was recorded");

    // `serve` names its own flag.
    let o = wirelint(
        &["analyze", "-q", "--fail-on", "never", "--db", "w.db"]
            .into_iter()
            .chain([demo().to_str().unwrap_or("")])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = wirelint(&["serve", "--db", "w.db", "--listen", &addr], dir.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("in use") && err.contains("--listen ADDR"),
        "{err}"
    );
}

/// Starts `wirelint ARGS` (which serves the dashboard), waits until it serves, fetches a
/// page and an event stream's first update, sends it `signal` once (SIGINT is Ctrl-C) and
/// returns its exit status.
fn serve_then_signal(args: &[&str], cwd: &Path, signal: libc::c_int) -> std::process::ExitStatus {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wirelint");
    let (tx, rx) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(rest) = line.split("http://").nth(1) {
                    break rest.split('/').next().unwrap_or("").to_string();
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("wirelint did not start serving: {e}");
            }
        }
    };
    let mut page = Vec::new();
    let mut s = std::net::TcpStream::connect(&url).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(
        format!("GET /api/overview HTTP/1.1\r\nHost: {url}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .expect("request");
    let _ = s.read_to_end(&mut page);
    assert!(
        page.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&page)
    );
    // An event stream left open while the server stops.
    let mut events = std::net::TcpStream::connect(&url).expect("connect to the dashboard");
    events.set_read_timeout(Some(Duration::from_secs(10))).ok();
    events
        .write_all(format!("GET /api/events HTTP/1.1\r\nHost: {url}\r\n\r\n").as_bytes())
        .expect("request");
    let mut first = [0u8; 64];
    let _ = events.read(&mut first);
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, signal) };
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wirelint did not exit within 30 s of signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

#[test]
fn after_serving_only_the_database_file_remains() {
    // One Ctrl-C, or one SIGTERM (what service managers send), stops the dashboard
    // cleanly, after `analyze --serve` as after `serve`.
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = demo();
        let status = serve_then_signal(
            &[
                "analyze",
                "-q",
                "--fail-on",
                "never",
                "--db",
                "w.db",
                d.to_str().unwrap_or(""),
                "--serve=127.0.0.1:0",
            ],
            dir.path(),
            signal,
        );
        assert!(status.success(), "signal {signal}: {status:?}");
        assert_eq!(files_in(dir.path()), ["w.db"], "analyze --serve left files");

        let status = serve_then_signal(
            &["serve", "--db", "w.db", "--listen", "127.0.0.1:0"],
            dir.path(),
            signal,
        );
        assert!(status.success(), "signal {signal}: {status:?}");
        assert_eq!(files_in(dir.path()), ["w.db"], "serve left files");
    }
}

#[test]
fn rules_explain_prints_examples_as_on_the_wire() {
    let o = wirelint(
        &["rules", "explain", "created-without-location"],
        &support::repo(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(r#"  {"title": "Dune"}"#), "{text}");
    assert!(!text.contains(r#"\""#), "escaped quotes: {text}");
    // Each body is as long as the Content-Length above it says.
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(n) = line.trim().strip_prefix("Content-Length: ") else {
            continue;
        };
        let n: usize = n.parse().expect("a number");
        let blank = i + lines[i..]
            .iter()
            .position(|l| l.trim().is_empty())
            .expect("a blank line");
        let body = lines[blank + 1].strip_prefix("  ").unwrap_or("");
        assert_eq!(body.len(), n, "body {body:?} after Content-Length: {n}");
        checked += 1;
    }
    assert!(checked >= 2, "{text}");
}

#[test]
fn colour_follows_the_color_flag_and_no_color() {
    let d = demo();
    let args = |color: &str| {
        vec![
            "analyze",
            "-q",
            "--fail-on",
            "never",
            "--color",
            color,
            d.to_str().unwrap_or(""),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let run = |color: &str, env: &[(&str, &str)]| {
        let a = args(color);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = wirelint_env(&a, &support::repo(), env);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).contains("\x1b[")
    };
    assert!(run("always", &[]), "--color always colours a pipe");
    assert!(
        run("always", &[("NO_COLOR", "1")]),
        "--color always beats NO_COLOR"
    );
    assert!(!run("never", &[]));
    assert!(!run("auto", &[]), "auto: no colour into a pipe");
    // The flag is global: every subcommand takes it.
    for sub in [
        vec!["exchanges", "--color", "never", "-q"],
        vec!["rules", "--color", "always"],
        vec!["interfaces", "--color", "never"],
    ] {
        let mut a = sub.clone();
        if a[0] == "exchanges" {
            a.push(d.to_str().unwrap_or(""));
        }
        let o = wirelint(&a, &support::repo());
        assert_eq!(o.status.code(), Some(0), "{a:?}: {}", stderr(&o));
    }

    // auto on a terminal: colour, unless NO_COLOR is set to anything but "".
    let Some(script) = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        support::skip("util-linux `script` (a pseudo-terminal) is needed for the NO_COLOR check");
        return;
    };
    let in_terminal = |args: &str| {
        let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_wirelint"));
        let o = Command::new(script)
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("NO_COLOR")
            .output()
            .expect("run script");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // clap's help follows --color too.
    assert!(in_terminal("analyze --help").contains("\x1b["));
    assert!(!in_terminal("analyze --color never --help").contains("\x1b["));
    let on_terminal = |no_color: Option<&str>| {
        let cmd = format!(
            "{} analyze -q --no-db --fail-on never {}",
            env!("CARGO_BIN_EXE_wirelint"),
            d.display()
        );
        let mut c = Command::new(script);
        c.args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let o = c.output().expect("run script");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(text.contains("created-without-location"), "{text}");
        text.contains("\x1b[")
    };
    assert!(on_terminal(None), "auto colours a terminal");
    assert!(on_terminal(Some("")), "an empty NO_COLOR is unset");
    assert!(!on_terminal(Some("1")), "NO_COLOR=1 turns colour off");
}

/// The long help of every (sub)command.
fn every_help() -> Vec<(String, String)> {
    [
        vec![],
        vec!["analyze"],
        vec!["exchanges"],
        vec!["rules"],
        vec!["rules", "explain"],
        vec!["serve"],
        vec!["sniff"],
        vec!["interfaces"],
    ]
    .into_iter()
    .map(|sub| {
        let mut args = sub.clone();
        args.push("--help");
        let o = wirelint(&args, &support::repo());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        (
            sub.join(" "),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    })
    .collect()
}

/// The entries of a long help's `Arguments:` and `Options:` sections, each with its
/// description (the indented lines below it, up to the next blank line).
fn help_entries(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_list = false;
    for line in help.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_list = matches!(line, "Arguments:" | "Options:");
            continue;
        }
        if !in_list || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent <= 6 {
            out.push((line.trim().to_string(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line.trim());
            last.1.push('\n');
        }
    }
    out
}

#[test]
fn every_argument_in_help_has_a_description() {
    let mut undescribed = Vec::new();
    for (cmd, help) in every_help() {
        let entries = help_entries(&help);
        assert!(!entries.is_empty(), "wirelint {cmd} --help: {help}");
        for (entry, text) in entries {
            let first = text.lines().next().unwrap_or("");
            // A description is prose, not only a default or a list of values.
            if first.is_empty() || first.starts_with('[') || first.starts_with("Possible values") {
                undescribed.push(format!("wirelint {cmd}: {entry}"));
            }
            assert!(
                !text.contains("[default: 0]"),
                "wirelint {cmd}: {entry} defaults to a bare 0: {text}"
            );
        }
        // Subcommands are described on their line.
        let mut in_commands = false;
        for line in help.lines() {
            if !line.starts_with(' ') {
                in_commands = line == "Commands:";
                continue;
            }
            if in_commands && line.split_whitespace().count() < 2 {
                undescribed.push(format!("wirelint {cmd}: command {}", line.trim()));
            }
        }
    }
    assert!(undescribed.is_empty(), "undescribed: {undescribed:#?}");
}

/// The synopsis of each command in README.md's Usage block: `"analyze"` → its lines
/// (`wirelint analyze …` and the indented lines below it); `""` is `wirelint [--color …]`.
fn readme_synopses() -> std::collections::BTreeMap<String, String> {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).expect("README.md");
    let block = readme
        .split("\n## Usage")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("README.md's Usage section starts with a code block");
    let mut out = std::collections::BTreeMap::<String, String>::new();
    let mut current = None;
    for line in block.lines() {
        if let Some(rest) = line.strip_prefix("wirelint") {
            // The command is the lowercase words before the first argument.
            let name: Vec<&str> = rest
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .collect();
            current = Some(name.join(" "));
        }
        if let Some(cmd) = &current {
            let text = out.entry(cmd.clone()).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

#[test]
fn readme_usage_lists_every_flag_of_every_subcommand() {
    let synopses = readme_synopses();
    let global = synopses.get("").cloned().unwrap_or_default();
    // `-q, --quiet`: the short form is enough.
    let flag = regex::Regex::new(r"(?:(-[a-zA-Z]), )?(--[a-z][a-z-]*)").expect("regex");
    let mentions = |text: &str, f: &str| {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| w == f)
    };
    let mut missing = Vec::new();
    for (cmd, help) in every_help() {
        let Some(synopsis) = synopses.get(&cmd) else {
            missing.push(format!("wirelint {cmd} (no synopsis)"));
            continue;
        };
        for (entry, _) in help_entries(&help) {
            let Some(c) = flag.captures(&entry) else {
                continue;
            };
            let long = c.get(2).map_or("", |m| m.as_str());
            let short = c.get(1).map(|m| m.as_str());
            if long == "--help" || long == "--version" {
                continue;
            }
            let listed = [synopsis.as_str(), global.as_str()]
                .iter()
                .any(|t| mentions(t, long) || short.is_some_and(|s| mentions(t, s)));
            if !listed {
                missing.push(format!("wirelint {cmd} {long}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "README.md's Usage block does not list: {missing:#?}"
    );
}

#[test]
fn counts_read_in_the_right_number() {
    let d = demo();
    let dir = tempfile::tempdir().expect("temp dir");
    let cut = cut_demo(dir.path());
    let mut text = String::new();
    for args in [
        vec!["analyze", "--fail-on", "never", d.to_str().unwrap_or("")],
        vec![
            "analyze",
            "--fail-on",
            "never",
            "--select",
            "unmatched-response",
            d.to_str().unwrap_or(""),
        ],
        vec!["exchanges", cut.to_str().unwrap_or("")],
        vec!["rules"],
    ] {
        let o = wirelint(&args, dir.path());
        text.push_str(&String::from_utf8_lossy(&o.stdout));
        text.push_str(&stderr(&o));
    }
    assert!(text.contains("— 1 finding\n"), "{text}");
    let wrong = regex::Regex::new(
        r"(^|[^0-9.,])1 (findings|exchanges|errors|warnings|packets|bytes|rules|categories|requests|responses|segments|gaps|frames|tunnels)\b",
    )
    .expect("regex");
    let found: Vec<&str> = text.lines().filter(|l| wrong.is_match(l)).collect();
    assert!(found.is_empty(), "plural after 1: {found:#?}");
}

#[test]
fn json_findings_describe_their_related_exchanges_and_the_summary_has_totals() {
    let d = demo();
    let o = wirelint(
        &[
            "analyze",
            "-q",
            "--fail-on",
            "never",
            "--format",
            "jsonl",
            d.to_str().unwrap_or(""),
        ],
        &support::repo(),
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let mut related = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        for r in v["related"].as_array().into_iter().flatten() {
            assert!(r["connection"].is_object() && r["index"].is_u64(), "{r}");
            let request = r["request"].as_str().expect("related request line");
            assert!(request.contains(" HTTP/1."), "{request}");
            assert!(r["status"].is_u64(), "{r}");
            let frames = r["frames"].as_array().expect("frames");
            assert!(
                frames.len() == 2 && frames[0].as_u64() <= frames[1].as_u64(),
                "{r}"
            );
            related += 1;
        }
    }
    assert!(
        related >= 1,
        "the demo capture has a stateful finding: {text}"
    );

    let o = wirelint(
        &[
            "analyze",
            "-q",
            "--fail-on",
            "never",
            "--format",
            "json",
            d.to_str().unwrap_or(""),
        ],
        &support::repo(),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let totals = &v["summary"]["findings_by_severity"];
    for sev in ["error", "warning", "info"] {
        let counted = v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["severity"] == sev)
            .count() as u64;
        assert_eq!(totals[sev].as_u64(), Some(counted), "{sev}: {totals}");
    }
    // The same totals as the text report's last line.
    let o = wirelint(
        &[
            "analyze",
            "-q",
            "--fail-on",
            "never",
            d.to_str().unwrap_or(""),
        ],
        &support::repo(),
    );
    let report = String::from_utf8_lossy(&o.stdout);
    let last = report.lines().last().unwrap_or("");
    let expect = format!(
        "{} exchanges: {} errors, {} warnings, {} info",
        v["summary"]["exchanges"], totals["error"], totals["warning"], totals["info"]
    );
    assert_eq!(last, expect);
}
