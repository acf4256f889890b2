//! HTTPS decrypted with a key log, on the real captures in `captures/tls/` (recorded by
//! `examples/record_tls.sh`):
//!
//! - each capture's exchanges equal its checked-in `X.expected.jsonl` (`WIRELINT_BLESS=1`
//!   rewrites them; review the diff);
//! - the requests and statuses agree with tshark's decryption of the same files with the
//!   same key log (skipped, with the reason printed, when tshark is not installed);
//! - without keys nothing is decrypted and the run summary says why; `SSLKEYLOGFILE` and
//!   pcapng Decryption Secrets Blocks are key sources; no secret reaches any output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

fn tls_dir() -> PathBuf {
    support::repo().join("captures").join("tls")
}

/// Capture files in `captures/tls/`, sorted.
fn capture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tls_dir())
        .expect("captures/tls exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    names
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// The key log beside a capture, if it has one (an embedded-secrets pcapng has none).
fn keylog_of(name: &str) -> Option<String> {
    let keys = format!("{}.keys", stem(name));
    tls_dir().join(&keys).is_file().then_some(keys)
}

/// Runs wirelint in `captures/tls/` (so capture names are bare) without SSLKEYLOGFILE.
fn wirelint(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .current_dir(tls_dir())
        .env_remove("SSLKEYLOGFILE")
        .args(args)
        .output()
        .expect("running wirelint")
}

fn jsonl_of(name: &str) -> String {
    let mut args = vec!["exchanges", "--format", "jsonl", "--quiet"];
    let keys = keylog_of(name);
    if let Some(k) = &keys {
        args.extend(["--tls-keylog", k]);
    }
    args.push(name);
    let out = wirelint(&args);
    assert!(
        out.status.success(),
        "wirelint exchanges {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("jsonl is UTF-8")
}

#[test]
fn every_tls_capture_matches_its_expected_exchanges() {
    let names = capture_names();
    assert!(
        names.len() >= 4,
        "expected the TLS captures, found {names:?}"
    );
    let bless = std::env::var_os("WIRELINT_BLESS").is_some();
    let mut failures = Vec::new();
    for name in &names {
        let actual = jsonl_of(name);
        assert!(!actual.is_empty(), "{name}: nothing decrypted");
        let path = tls_dir().join(format!("{}.expected.jsonl", stem(name)));
        failures.extend(support::check_golden(&path, &actual, bless, "tls"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `analyze` on one capture with its key log, one compact line per finding (client,
/// exchange index, rule, severity, message, evidence), in output order.
fn findings_of(name: &str) -> String {
    let mut args = vec![
        "analyze",
        "--no-db",
        "--format",
        "jsonl",
        "--fail-on",
        "never",
        "-q",
    ];
    let keys = keylog_of(name);
    if let Some(k) = &keys {
        args.extend(["--tls-keylog", k]);
    }
    args.push(name);
    let out = wirelint(&args);
    assert!(
        out.status.success(),
        "wirelint analyze {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    support::findings_text(&String::from_utf8_lossy(&out.stdout))
}

/// The findings on the decrypted traffic are checked in too (`X.findings.txt`).
#[test]
fn every_tls_capture_matches_its_expected_findings() {
    let bless = std::env::var_os("WIRELINT_BLESS").is_some();
    let mut failures = Vec::new();
    for name in capture_names() {
        let actual = findings_of(&name);
        assert!(
            !actual.is_empty(),
            "{name}: no finding on the decrypted traffic"
        );
        let path = tls_dir().join(format!("{}.findings.txt", stem(&name)));
        failures.extend(support::check_golden(&path, &actual, bless, "tls"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// (method, path) of every request and every response status, sorted.
type Listing = (Vec<(String, String)>, Vec<u16>);

fn ours(name: &str) -> Listing {
    let mut requests = Vec::new();
    let mut statuses = Vec::new();
    for line in jsonl_of(name).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("jsonl");
        if let Some(r) = v.get("request").filter(|r| !r.is_null()) {
            requests.push((
                r["method"].as_str().unwrap_or_default().to_owned(),
                r["target"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        if let Some(s) = v.pointer("/response/status").and_then(|s| s.as_u64()) {
            statuses.push(s as u16);
        }
    }
    requests.sort();
    statuses.sort();
    (requests, statuses)
}

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// tshark's decryption of the same capture with the same keys: HTTP/1 and HTTP/2 requests
/// and statuses.
fn theirs(name: &str, keys: Option<&Path>) -> Listing {
    let mut cmd = Command::new("tshark");
    cmd.current_dir(tls_dir()).args(["-n", "-r", name]);
    if let Some(k) = keys {
        cmd.args(["-o", &format!("tls.keylog_file:{}", k.display())]);
    }
    let out = cmd
        .args(["-Y", "http or http2", "-T", "fields", "-E", "separator=|"])
        .args(["-e", "http.request.method", "-e", "http.request.uri"])
        .args(["-e", "http.response.code"])
        .args(["-e", "http2.headers.method", "-e", "http2.headers.path"])
        .args(["-e", "http2.headers.status"])
        .output()
        .expect("running tshark");
    assert!(out.status.success(), "tshark failed on {name}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut requests = Vec::new();
    let mut statuses = Vec::new();
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or_default();
        for (m, p) in list(field(0)).into_iter().zip(list(field(1))) {
            requests.push((m, p));
        }
        for (m, p) in list(field(3)).into_iter().zip(list(field(4))) {
            requests.push((m, p));
        }
        for s in list(field(2)).into_iter().chain(list(field(5))) {
            statuses.extend(s.parse::<u16>().ok());
        }
    }
    requests.sort();
    statuses.sort();
    (requests, statuses)
}

#[test]
fn decrypted_exchanges_agree_with_tshark() {
    if !tshark_available() {
        eprintln!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    }
    for name in capture_names() {
        // tshark reads the embedded secrets itself; the others get their key log.
        let keys = keylog_of(&name).map(|k| tls_dir().join(k));
        let theirs = theirs(&name, keys.as_deref());
        let ours = ours(&name);
        assert!(!theirs.0.is_empty(), "{name}: tshark decrypted nothing");
        assert_eq!(
            ours, theirs,
            "{name}: wirelint (left) and tshark (right) disagree"
        );
    }
}

#[test]
fn without_keys_nothing_is_decrypted_and_the_reason_is_counted() {
    for name in ["tls13-h2.pcap", "tls12-http1.pcap", "tls-chacha.pcap"] {
        let out = wirelint(&["exchanges", "--format", "jsonl", name]);
        assert!(out.status.success());
        assert!(out.stdout.is_empty(), "{name}: exchanges without keys");
        let summary = String::from_utf8_lossy(&out.stderr);
        assert!(
            summary.contains("decrypted, not decrypted: no key"),
            "{name}: {summary}"
        );
    }
    // With another capture's keys: still no key for this one.
    let out = wirelint(&[
        "exchanges",
        "--tls-keylog",
        "tls12-http1.keys",
        "tls13-h2.pcap",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key 1"));
}

#[test]
fn sslkeylogfile_is_a_key_source() {
    let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .current_dir(tls_dir())
        .env("SSLKEYLOGFILE", tls_dir().join("tls12-http1.keys"))
        .args([
            "exchanges",
            "--format",
            "jsonl",
            "--quiet",
            "tls12-http1.pcap",
        ])
        .output()
        .expect("running wirelint");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    // A variable naming no file is not an error.
    let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .current_dir(tls_dir())
        .env("SSLKEYLOGFILE", "/nonexistent/keys.log")
        .args(["exchanges", "--quiet", "tls12-http1.pcap"])
        .output()
        .expect("running wirelint");
    assert!(out.status.success());
    // --tls-keylog naming no file is.
    let out = wirelint(&[
        "exchanges",
        "--tls-keylog",
        "missing.keys",
        "tls12-http1.pcap",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn exchanges_carry_the_tls_facts() {
    let first = |name: &str| -> serde_json::Value {
        let text = jsonl_of(name);
        serde_json::from_str(text.lines().next().expect("an exchange")).expect("json")
    };
    let h2 = first("tls13-h2.pcap");
    assert_eq!(h2["tls"]["protocol"], "TLS 1.3");
    assert_eq!(h2["tls"]["alpn"], "h2");
    assert_eq!(h2["tls"]["sni"], "localhost");
    assert_eq!(h2["request"]["version"], "HTTP/2");
    let h1 = first("tls12-http1.pcap");
    assert_eq!(h1["tls"]["protocol"], "TLS 1.2");
    assert_eq!(
        h1["tls"]["cipher_suite"],
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    );
    assert_eq!(h1["tls"]["alpn"], "http/1.1");
    assert_eq!(h1["request"]["version"], "HTTP/1.1");
    let chacha = jsonl_of("tls-chacha.pcap");
    let suites: Vec<String> = chacha
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["tls"]["cipher_suite"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        suites,
        [
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        ]
    );
}

#[test]
fn no_secret_reaches_any_output_or_the_database() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("w.db");
    let mut secrets = Vec::new();
    for k in ["tls13-h2.keys", "tls12-http1.keys", "tls-chacha.keys"] {
        let text = std::fs::read_to_string(tls_dir().join(k)).expect("key log");
        for line in text.lines() {
            if let Some(secret) = line.split_whitespace().nth(2) {
                secrets.push(secret.to_ascii_lowercase());
            }
        }
    }
    assert!(secrets.len() >= 10);
    let mut seen = Vec::new();
    for format in ["text", "json", "jsonl", "sarif"] {
        let out = wirelint(&[
            "analyze",
            "--format",
            format,
            "--fail-on",
            "never",
            "--db",
            db.to_str().expect("utf-8 path"),
            "--tls-keylog",
            "tls13-h2.keys",
            "--tls-keylog",
            "tls12-http1.keys",
            "--tls-keylog",
            "tls-chacha.keys",
            "tls13-h2.pcap",
            "tls12-http1.pcap",
            "tls-chacha.pcap",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.extend(out.stdout);
        seen.extend(out.stderr);
    }
    // Hex in either case, and the raw bytes, anywhere in the outputs and the database.
    let db_bytes = std::fs::read(&db).expect("database");
    let hay = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    let db_hay = String::from_utf8_lossy(&db_bytes).to_ascii_lowercase();
    for s in &secrets {
        assert!(!hay.contains(s.as_str()), "a secret reached the output");
        assert!(
            !db_hay.contains(s.as_str()),
            "a secret reached the database"
        );
        let raw: Vec<u8> = (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect();
        assert!(
            !db_bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
            "a secret's bytes reached the database"
        );
    }
}

/// `tls-chacha.pcap` as a pcapng in which each connection's secrets come in a Decryption
/// Secrets Block just before that connection's first packet, as dumpcap writes them when
/// it learns keys during a capture. `late` false leaves the second block out.
fn chacha_with_secrets_per_connection(late: bool) -> Vec<u8> {
    let pcap = std::fs::read(tls_dir().join("tls-chacha.pcap")).expect("capture");
    let keys = std::fs::read_to_string(tls_dir().join("tls-chacha.keys")).expect("keys");
    let (tls12, tls13): (Vec<&str>, Vec<&str>) =
        keys.lines().partition(|l| l.starts_with("CLIENT_RANDOM "));
    assert_eq!(pcap[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian µs pcap");
    let linktype = u32::from_le_bytes(pcap[20..24].try_into().expect("4 bytes"));
    assert_eq!(linktype, 1, "Ethernet");

    let block = |out: &mut Vec<u8>, btype: u32, body: &[u8]| {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = (12 + body.len()) as u32;
        out.extend(btype.to_le_bytes());
        out.extend(len.to_le_bytes());
        out.extend(body);
        out.extend(len.to_le_bytes());
    };
    let dsb = |out: &mut Vec<u8>, lines: &[&str]| {
        let text = lines.join("\n") + "\n";
        let mut body = 0x544C_534Bu32.to_le_bytes().to_vec();
        body.extend((text.len() as u32).to_le_bytes());
        body.extend(text.as_bytes());
        block(out, 0x0A, &body);
    };
    let mut out = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend([1, 0, 0, 0]);
    shb.extend((-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend([0, 0]);
    idb.extend(262_144u32.to_le_bytes());
    block(&mut out, 1, &idb);
    dsb(&mut out, &tls13);

    let mut syns = 0;
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        let field = |at: usize| u32::from_le_bytes(pcap[at..at + 4].try_into().expect("4 bytes"));
        let (sec, usec, caplen, orig) =
            (field(pos), field(pos + 4), field(pos + 8), field(pos + 12));
        let data = &pcap[pos + 16..pos + 16 + caplen as usize];
        pos += 16 + caplen as usize;
        let ihl = usize::from(data[14] & 0x0f) * 4;
        let flags = data[14 + ihl + 13];
        if flags & 0x12 == 0x02 {
            syns += 1;
            if syns == 2 && late {
                dsb(&mut out, &tls12);
            }
        }
        let ts = u64::from(sec) * 1_000_000 + u64::from(usec);
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend(((ts >> 32) as u32).to_le_bytes());
        epb.extend((ts as u32).to_le_bytes());
        epb.extend(caplen.to_le_bytes());
        epb.extend(orig.to_le_bytes());
        epb.extend(data);
        block(&mut out, 6, &epb);
    }
    assert_eq!(syns, 2, "tls-chacha.pcap has two connections");
    out
}

#[test]
fn secrets_embedded_mid_capture_decrypt_the_connections_after_them() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let run = |late: bool| -> String {
        let path = tmp.path().join(format!("late-{late}.pcapng"));
        std::fs::write(&path, chacha_with_secrets_per_connection(late)).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .current_dir(tmp.path())
            .env_remove("SSLKEYLOGFILE")
            .args(["exchanges", "--format", "jsonl", "--quiet"])
            .arg(path.file_name().expect("a file name"))
            .output()
            .expect("running wirelint");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .replace(&format!("late-{late}.pcapng"), "tls-chacha.pcap")
    };
    let expected =
        std::fs::read_to_string(tls_dir().join("tls-chacha.expected.jsonl")).expect("golden");
    assert_eq!(run(true), expected);
    // Without the second block the second connection stays encrypted: the keys that
    // decrypted it above came from the block in the middle of the file.
    let without = run(false);
    assert_eq!(without.lines().count(), 1, "{without}");
    assert_eq!(without.lines().next(), expected.lines().next());
}
