//! The daemon on real traffic: `wirelint sniff -i lo` beside a server of our own with
//! deliberately wrong endpoints and correct ones, driven by a real HTTP client (ureq), then
//! stopped with SIGTERM (or killed with SIGKILL) and judged by what is in the database.
//!
//! Capturing needs root or CAP_NET_RAW on `target/debug/wirelint`; where it is not
//! permitted the tests skip, and the skips are listed when the test binary exits (CI runs
//! as root, so they run there).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::support;

/// Whether `wirelint sniff` may capture on `lo`; records the skip (with the binary's own
/// hint, which names the binary to `setcap`) when not. The tests spawn
/// `target/debug/wirelint`, so that binary is asked, once, rather than this test process.
fn capture_permitted() -> bool {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    match PROBE.get_or_init(probe_capture) {
        Ok(()) => true,
        Err(reason) => {
            support::skip(reason);
            false
        }
    }
}

/// Runs `wirelint sniff -i lo` for no time at all: it exits 0 where capture is permitted.
fn probe_capture() -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args([
            "sniff",
            "-i",
            "lo",
            "-q",
            "--duration",
            "0",
            "--filter",
            "tcp port 9",
        ])
        .arg("--db")
        .arg(dir.path().join("probe.db"))
        .output()
        .expect("run wirelint sniff");
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    if err.contains("not permitted") || err.contains("no interface named") {
        Err(format!(
            "live capture on lo is not possible here (needs root or CAP_NET_RAW): {err}"
        ))
    } else {
        panic!("`wirelint sniff -i lo` failed unexpectedly: {err}")
    }
}

// ------------------------------------------------------------------ the test server

/// What the server answers, by method and path. The bad ones each break one rule; the good
/// ones are what a careful server sends for the same situations.
fn respond(method: &str, path: &str, body: &[u8]) -> (Vec<u8>, bool) {
    let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S GMT");
    let json =
        format!("Date: {date}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n");
    let json = json.as_str();
    let ok = |head: &str, body: &str| -> (Vec<u8>, bool) {
        (
            format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes(),
            false,
        )
    };
    match (method, path) {
        // --- wrong
        ("POST", "/bad/created") => ok(
            &format!("HTTP/1.1 201 Created\r\n{json}"),
            r#"{"id":42,"name":"ada"}"#,
        ),
        // A body after 204; the server closes so the stray bytes cannot confuse the client.
        ("DELETE", "/bad/no-content") => (
            format!("HTTP/1.1 204 No Content\r\nDate: {date}\r\nConnection: close\r\n\r\n{{\"deleted\":true}}")
                .into_bytes(),
            true,
        ),
        ("GET", "/bad/unauthorized") => ok(
            &format!("HTTP/1.1 401 Unauthorized\r\n{json}"),
            r#"{"title":"sign in first"}"#,
        ),
        ("PUT", "/bad/method") => ok(
            &format!("HTTP/1.1 405 Method Not Allowed\r\n{json}"),
            r#"{"title":"read only"}"#,
        ),
        ("GET", "/bad/error-body") => ok(
            &format!("HTTP/1.1 200 OK\r\n{json}"),
            r#"{"error":"user not found"}"#,
        ),
        ("POST", "/bad/parse") if serde_json::from_slice::<serde_json::Value>(body).is_err() => ok(
            &format!("HTTP/1.1 500 Internal Server Error\r\n{json}"),
            r#"{"title":"unexpected token"}"#,
        ),
        ("GET", "/bad/both-lengths") => (
            format!("HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
                .into_bytes(),
            true,
        ),
        // --- right
        ("POST", "/good/created") => ok(
            &format!("HTTP/1.1 201 Created\r\nLocation: /good/created/42\r\n{json}"),
            r#"{"id":42,"name":"ada"}"#,
        ),
        ("DELETE", "/good/no-content") => (
            format!("HTTP/1.1 204 No Content\r\nDate: {date}\r\n\r\n").into_bytes(),
            false,
        ),
        ("GET", "/good/unauthorized") => ok(
            &format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"api\"\r\n{json}"),
            r#"{"title":"sign in first"}"#,
        ),
        ("PUT", "/good/method") => ok(
            &format!("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n{json}"),
            r#"{"title":"read only"}"#,
        ),
        ("GET", "/good/user") => ok(
            &format!("HTTP/1.1 200 OK\r\n{json}"),
            r#"{"id":1,"name":"ada"}"#,
        ),
        ("POST", "/good/parse") => ok(
            &format!("HTTP/1.1 400 Bad Request\r\n{json}"),
            r#"{"title":"unexpected token"}"#,
        ),
        _ => ok(
            &format!("HTTP/1.1 404 Not Found\r\n{json}"),
            r#"{"title":"no such thing"}"#,
        ),
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length request bodies), so the
/// bytes on the wire are exactly the ones written above.
struct TestServer {
    port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => conns.push(std::thread::spawn(move || serve_connection(s))),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        TestServer {
            port,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve_connection(stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    // Bounded: a client that keeps a connection open gets at most this many answers.
    for _ in 0..1000 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim_end().is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (bytes, close) = respond(&method, &path, &body);
        if writer.write_all(&bytes).is_err() || close {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// What each live test starts from: capture permitted, a fresh database path, our server.
struct Setup {
    /// Holds the temporary folder of `db` until the test ends.
    dir: tempfile::TempDir,
    db: std::path::PathBuf,
    server: TestServer,
}

/// `None` (with the printed reason) where this process may not capture.
fn setup() -> Option<Setup> {
    if !capture_permitted() {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("live.db");
    Some(Setup {
        dir,
        db,
        server: TestServer::start(),
    })
}

// ------------------------------------------------------------------ the daemon

struct Sniffer {
    child: Child,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Sniffer {
    /// Starts `wirelint sniff` on lo for `port` and waits until it captures.
    fn start(db: &Path, port: u16) -> Sniffer {
        Sniffer::start_with("lo", db, port, &[])
    }

    /// Starts `wirelint sniff -i interface` with `extra` arguments for `port`.
    fn start_with(interface: &str, db: &Path, port: u16, extra: &[&str]) -> Sniffer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .args(["sniff", "-i", interface, "--quiet", "--log-format", "json"])
            .args(extra)
            .arg("--filter")
            .arg(format!("tcp port {port}"))
            .arg("--db")
            .arg(db)
            .arg("--duration")
            .arg("120s")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wirelint sniff");
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(pipe) = child.stderr.take() {
            let log = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("capturing") {
                        let _ = tx.send(());
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        let mut s = Sniffer { child, stderr };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let log = s.log();
            s.kill();
            panic!("sniff did not start capturing within 30 s:\n{log}");
        }
        s
    }

    fn log(&self) -> String {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid, sig) };
    }

    /// Waits for the process to exit, at most `limit`.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > until {
                let log = self.log();
                self.kill();
                panic!("sniff did not exit within {limit:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Checks `done` every 100 ms until it holds or `limit` passes.
fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Drives every endpoint (several times, on kept-alive connections where the server
/// allows). Client-side errors are irrelevant: only the wire matters.
fn drive(server: &TestServer, rounds: usize) {
    let agent = agent();
    for round in 0..rounds {
        for side in ["bad", "good"] {
            let url = |p: &str| server.url(&format!("/{side}/{p}"));
            let json = "application/json";
            let _ = agent
                .post(url("created"))
                .header("Content-Type", json)
                // A new resource each time: repeating one POST is a finding of its own.
                .send(format!(r#"{{"name":"ada-{round}"}}"#));
            let _ = agent.delete(url("no-content")).call();
            let _ = agent.get(url("unauthorized")).call();
            let _ = agent.put(url("method")).send_empty();
            let _ = agent
                .get(url(if side == "bad" { "error-body" } else { "user" }))
                .call();
            let _ = agent
                .post(url("parse"))
                .header("Content-Type", json)
                .send(format!(r#"{{"name": "ada-{round}""#));
            if side == "bad" {
                let _ = agent.get(url("both-lengths")).call();
            }
        }
    }
}

/// (path, rule) of every finding.
type PathRules = Vec<(String, String)>;
/// Exchanges per path.
type PathCounts = Vec<(String, i64)>;

/// Every finding in the database by path, and the exchanges per path.
fn findings_by_path(db: &Path) -> (PathRules, PathCounts) {
    let conn = Connection::open(db).expect("open the database");
    let mut st = conn
        .prepare(
            "SELECT coalesce(e.path, ''), f.rule FROM findings f \
             LEFT JOIN exchanges e ON e.id = f.exchange_id ORDER BY 1, 2",
        )
        .expect("prepare");
    let findings = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<(String, String)>, _>>()
        .expect("rows");
    let mut st = conn
        .prepare("SELECT coalesce(path, ''), count(*) FROM exchanges GROUP BY 1 ORDER BY 1")
        .expect("prepare");
    let exchanges = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<(String, i64)>, _>>()
        .expect("rows");
    (findings, exchanges)
}

fn runs(db: &Path) -> Vec<(i64, String, bool, i64, i64)> {
    let conn = Connection::open(db).expect("open the database");
    let mut st = conn
        .prepare(
            "SELECT id, kind, finished_wall IS NOT NULL, packets, exchanges FROM runs ORDER BY id",
        )
        .expect("prepare");
    st.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("query")
    .collect::<Result<Vec<_>, _>>()
    .expect("rows")
}

#[test]
fn sniffing_finds_every_bad_endpoint_and_nothing_on_the_good_ones() {
    let Some(Setup {
        dir: _dir,
        db,
        server,
    }) = setup()
    else {
        return;
    };
    let mut sniffer = Sniffer::start(&db, server.port);
    drive(&server, 3);
    // Findings reach the database while the daemon runs (quiet connections release their
    // last exchange after half a second; the writer commits every 200 ms).
    poll_until(Duration::from_secs(10), || {
        !findings_by_path(&db).0.is_empty()
    });
    assert!(
        !findings_by_path(&db).0.is_empty(),
        "no finding reached the database while sniffing:\n{}",
        sniffer.log()
    );
    sniffer.signal(libc::SIGTERM);
    let status = sniffer.wait(Duration::from_secs(30));
    let log = sniffer.log();
    assert!(status.success(), "sniff exited with {status}:\n{log}");
    assert!(log.contains("run recorded"), "{log}");

    let (findings, exchanges) = findings_by_path(&db);
    let expected = [
        ("/bad/created", "created-without-location"),
        ("/bad/no-content", "no-content-with-body"),
        ("/bad/unauthorized", "unauthorized-without-challenge"),
        ("/bad/method", "method-not-allowed-without-allow"),
        ("/bad/error-body", "error-body-in-success"),
        ("/bad/parse", "server-error-for-bad-request"),
        ("/bad/both-lengths", "content-length-with-transfer-encoding"),
    ];
    for (path, rule) in expected {
        assert!(
            findings.iter().any(|(p, r)| p == path && r == rule),
            "{rule} not found on {path}; findings: {findings:#?}\nexchanges: {exchanges:?}\n{log}"
        );
    }
    // The one finding allowed on a correct endpoint is about the client: it sends
    // malformed JSON on purpose, and wirelint rightly says so.
    let on_good: Vec<_> = findings
        .iter()
        .filter(|(p, r)| {
            p.starts_with("/good/") && !(p == "/good/parse" && r == "invalid-json-body")
        })
        .collect();
    assert!(
        on_good.is_empty(),
        "findings on correct endpoints: {on_good:#?}"
    );
    // Every request was seen: 3 rounds × (7 bad + 6 good).
    let total: i64 = exchanges.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 3 * 13, "exchanges by path: {exchanges:?}\n{log}");
    let runs = runs(&db);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (_, kind, finished, packets, stored) = &runs[0];
    assert_eq!(kind, "live");
    assert!(*finished, "the run is marked finished after SIGTERM");
    assert!(*packets > 0 && *stored == 39, "{runs:?}");
}

#[test]
fn sniffing_any_reads_linux_cooked_frames() {
    let Some(Setup {
        dir: _dir,
        db,
        server,
    }) = setup()
    else {
        return;
    };
    let mut sniffer = Sniffer::start_with("any", &db, server.port, &[]);
    drive(&server, 1);
    sniffer.signal(libc::SIGTERM);
    let status = sniffer.wait(Duration::from_secs(30));
    let log = sniffer.log();
    assert!(status.success(), "{status}\n{log}");
    // libpcap's default cooked header: LINUX_SLL (113) on 1.10, LINUX_SLL2 (276) later.
    assert!(
        log.contains("\"linktype\":276") || log.contains("\"linktype\":113"),
        "{log}"
    );
    let (findings, exchanges) = findings_by_path(&db);
    let total: i64 = exchanges.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 13, "{exchanges:?}\n{log}");
    assert!(
        findings
            .iter()
            .any(|(p, r)| p == "/bad/created" && r == "created-without-location"),
        "{findings:?}"
    );
}

/// Reads server-sent events from `url` (`/api/events`) until `done` accepts one's data or
/// `limit` passes; returns the time the accepted event arrived.
fn wait_for_event(
    stream: &mut BufReader<TcpStream>,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Option<Instant> {
    let until = Instant::now() + limit;
    let mut line = String::new();
    while Instant::now() < until {
        line.clear();
        match stream.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            // The read timeout: check the limit and keep listening.
            Err(_) => continue,
        }
        if let Some(data) = line.trim_end().strip_prefix("data:")
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim())
            && done(&v)
        {
            return Some(Instant::now());
        }
    }
    None
}

#[test]
fn with_serve_findings_and_counters_reach_the_dashboard_stream_while_sniffing() {
    let Some(Setup {
        dir: _dir,
        db,
        server,
    }) = setup()
    else {
        return;
    };
    let mut sniffer = Sniffer::start_with("lo", &db, server.port, &["--serve", "127.0.0.1:0"]);
    let log = sniffer.log();
    let addr = log
        .split("\"url\":\"http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no dashboard address in the log:\n{log}"))
        .to_string();
    let conn = TcpStream::connect(&addr).expect("connect to the dashboard");
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let mut w = conn.try_clone().expect("clone");
    write!(
        w,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request the event stream");
    let mut events = BufReader::new(conn);
    // The first event carries the current state: the live run, nothing found yet.
    assert!(
        wait_for_event(&mut events, Duration::from_secs(10), |v| v["runs"]
            .as_array()
            .is_some_and(|r| !r.is_empty()))
        .is_some(),
        "no first event"
    );

    // One wrong answer; the clock starts when the client has it.
    let _ = agent()
        .post(server.url("/bad/created"))
        .header("Content-Type", "application/json")
        .send(r#"{"name":"ada"}"#);
    let answered = Instant::now();
    let arrived = wait_for_event(&mut events, Duration::from_secs(10), |v| {
        v["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["rule"] == "created-without-location"))
            && v["runs"][0]["exchanges"].as_i64().is_some_and(|n| n >= 1)
    });
    let Some(arrived) = arrived else {
        panic!(
            "the finding never reached the event stream\n{}",
            sniffer.log()
        );
    };
    // The target is 2 s; the bound here is loose because test machines are shared.
    let took = arrived.duration_since(answered);
    println!(
        "finding on the dashboard stream {} ms after the response",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    // The capture counters follow (written to the run every second).
    assert!(
        wait_for_event(&mut events, Duration::from_secs(10), |v| {
            v["runs"][0]["packets"].as_i64().is_some_and(|p| p > 0)
        })
        .is_some(),
        "packet counters never reached the event stream"
    );

    sniffer.signal(libc::SIGTERM);
    let status = sniffer.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", sniffer.log());
}

#[test]
fn after_kill_9_the_database_is_consistent_and_a_restart_adds_a_run() {
    let Some(Setup {
        dir: _dir,
        db,
        server,
    }) = setup()
    else {
        return;
    };
    let mut first = Sniffer::start(&db, server.port);
    drive(&server, 2);
    poll_until(Duration::from_secs(10), || {
        runs(&db).first().is_some_and(|r| r.4 > 0)
    });
    first.signal(libc::SIGKILL);
    let _ = first.wait(Duration::from_secs(10));

    let conn = Connection::open(&db).expect("open after kill -9");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    // Counters and rows agree: every commit updates both.
    let (counted, rows): (i64, i64) = conn
        .query_row(
            "SELECT r.exchanges, (SELECT count(*) FROM exchanges e WHERE e.run_id = r.id) \
             FROM runs r WHERE r.id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("run 1");
    assert_eq!(counted, rows);
    assert!(rows > 0, "something was committed before the kill");
    drop(conn);

    let mut second = Sniffer::start(&db, server.port);
    drive(&server, 1);
    second.signal(libc::SIGINT);
    let status = second.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", second.log());
    let runs = runs(&db);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(!runs[0].2, "the killed run stays unfinished: {runs:?}");
    assert!(runs[1].2 && runs[1].4 == 13, "{runs:?}");
}

#[test]
fn sniff_errors_name_the_interface_the_filter_and_the_database() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .args(args)
            .output()
            .expect("run wirelint");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["sniff", "-i", "wl-nosuch0", "--duration", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("wl-nosuch0") && err.contains("wirelint interfaces"),
        "{err}"
    );

    // A dashboard port already taken fails before anything is captured or recorded.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("never.db");
    let db_text = db.to_str().expect("utf-8 path");
    let (code, err) = run(&[
        "sniff",
        "-i",
        "lo",
        "--duration",
        "1s",
        "--db",
        db_text,
        "--serve",
        &addr,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    assert!(
        !db.exists(),
        "no database (nor run) for a start that failed"
    );

    if !capture_permitted() {
        return;
    }
    let (code, err) = run(&[
        "sniff",
        "-i",
        "lo",
        "--filter",
        "tcp port",
        "--duration",
        "1s",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"tcp port\"") && err.contains("lo"), "{err}");

    let (code, err) = run(&[
        "sniff",
        "-i",
        "lo",
        "--duration",
        "1s",
        "--db",
        "/nonexistent-wirelint-dir/x.db",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent-wirelint-dir/x.db"), "{err}");
}

#[test]
fn capturing_without_privileges_exits_2_with_the_setcap_hint() {
    // Only meaningful as root, where we can drop to an unprivileged user with setpriv.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/usr/bin/setpriv").exists() {
        support::skip("needs root and /usr/bin/setpriv to run sniff as an unprivileged user");
        return;
    }
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_wirelint"))
        .args(["sniff", "-i", "lo", "--duration", "1s", "--db", "/dev/null"])
        .output()
        .expect("run setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && err.contains("setpriv") {
        support::skip(format_args!(
            "the unprivileged user cannot run the test binary here: {}",
            err.trim()
        ));
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "the hint is missing: {err}"
    );
    // The binary that captures, not a test binary under target/debug/deps/.
    assert!(
        err.contains(&format!("eip {}", env!("CARGO_BIN_EXE_wirelint"))),
        "the hint names another binary: {err}"
    );
}

#[test]
fn interfaces_lists_loopback_with_its_address_and_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(["interfaces", "--format", "json"])
        .output()
        .expect("run wirelint interfaces");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let lo = list
        .as_array()
        .and_then(|l| l.iter().find(|i| i["name"] == "lo"))
        .unwrap_or_else(|| panic!("no lo in {text}"));
    assert_eq!(lo["loopback"], true, "{lo}");
    assert_eq!(lo["up"], true, "{lo}");
    assert!(
        lo["addresses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "127.0.0.1")),
        "{lo}"
    );
    let table = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .arg("interfaces")
        .output()
        .expect("run wirelint interfaces");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("lo ") && l.contains("loopback") && l.contains("127.0.0.1")),
        "{table}"
    );
}

// ------------------------------------------------------------------ TLS while sniffing

/// The TCP payloads of the recorded connection in `captures/tls/NAME`, in capture order:
/// (sent by the client, bytes). The server is the side on `server_port`.
fn recorded_tls(name: &str, server_port: u16) -> Vec<(bool, Vec<u8>)> {
    let path = crate::support::repo()
        .join("captures")
        .join("tls")
        .join(name);
    let set = wirelint::capture::CaptureSet::open(&[path]).expect("open the capture");
    let mut decoder = wirelint::decode::Decoder::new();
    let mut out = Vec::new();
    set.for_each_frame(
        None,
        |frame| {
            if let Some(seg) = decoder.decode(frame)
                && !seg.payload.is_empty()
            {
                out.push((seg.dst.port() == server_port, seg.payload.to_vec()));
            }
        },
        |_| {},
    )
    .expect("read the capture");
    out
}

#[test]
fn sniff_decrypts_tls_whose_keys_are_logged_after_the_handshake_started() {
    if !capture_permitted() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("live.db");
    let keylog = dir.path().join("keys.log");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let keylog_arg = keylog.to_str().expect("utf-8 path");
    let mut sniffer = Sniffer::start_with("lo", &db, port, &["--tls-keylog", keylog_arg]);

    // Replays a recorded TLS 1.2 connection's bytes over a new loopback connection: the
    // records carry the recording's client random, so its key log decrypts them. The key
    // log is written only after the ClientHello and the server's flight went out, as a
    // client writes it.
    let chunks = recorded_tls("tls12-http1.pcap", 8444);
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_millis(20))).ok();
    }
    let drain = |s: &mut TcpStream| {
        let mut buf = [0u8; 65536];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    };
    for (i, (from_client, bytes)) in chunks.iter().enumerate() {
        let (tx, rx) = if *from_client {
            (&mut client, &mut server)
        } else {
            (&mut server, &mut client)
        };
        tx.write_all(bytes).expect("write");
        drain(rx);
        if i == 1 {
            std::thread::sleep(Duration::from_millis(300));
            let keys = std::fs::read(
                crate::support::repo()
                    .join("captures")
                    .join("tls")
                    .join("tls12-http1.keys"),
            )
            .expect("key log");
            std::fs::write(&keylog, keys).expect("write the key log");
        }
    }
    drop(client);
    drop(server);

    let count = || -> i64 {
        Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM exchanges", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    poll_until(Duration::from_secs(20), || count() >= 5);
    sniffer.signal(libc::SIGTERM);
    let status = sniffer.wait(Duration::from_secs(30));
    assert!(status.success(), "sniff failed:\n{}", sniffer.log());
    let conn = Connection::open(&db).expect("open the database");
    let mut st = conn
        .prepare("SELECT method, coalesce(path, ''), status FROM exchanges ORDER BY id")
        .expect("prepare");
    let rows: Vec<(String, String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let statuses: Vec<i64> = rows.iter().map(|r| r.2).collect();
    assert_eq!(
        statuses,
        [200, 200, 404, 201, 500],
        "{rows:?}\n{}",
        sniffer.log()
    );
    assert_eq!(rows[3].0, "POST");
}

/// The packet store: a live run keeps the packets of its connections with findings (the
/// Authorization value masked in them), and the dashboard gives such a connection as a pcap
/// that wirelint reads back to the same exchange.
#[test]
fn sniff_keeps_the_packets_of_flagged_connections_for_the_pcap_download() {
    let Some(Setup { dir, db, server }) = setup() else {
        return;
    };
    let mut sniffer = Sniffer::start(&db, server.port);
    drive(&server, 1);
    let _ = agent()
        .post(server.url("/bad/created"))
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer s3cr3t-live-token")
        .send(r#"{"name":"grace"}"#);
    poll_until(Duration::from_secs(10), || {
        findings_by_path(&db).0.len() >= 8
    });
    sniffer.signal(libc::SIGTERM);
    let status = sniffer.wait(Duration::from_secs(30));
    let log = sniffer.log();
    assert!(status.success(), "sniff exited with {status}:\n{log}");
    assert!(log.contains("packet store"), "{log}");

    let conn = Connection::open(&db).expect("open the database");
    let kept: i64 = conn
        .query_row("SELECT stored_packets FROM runs", [], |r| r.get(0))
        .expect("stored_packets");
    assert!(kept > 0, "no packet kept:\n{log}");
    let mut st = conn.prepare("SELECT data FROM packets").expect("prepare");
    let blobs: Vec<Vec<u8>> = st
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(blobs.len() as i64, kept);
    assert!(
        !blobs
            .iter()
            .any(|b| b.windows(12).any(|w| w == b"s3cr3t-live-")),
        "the token reached the packet store"
    );
    assert!(
        blobs.iter().any(|b| b
            .windows(21)
            .any(|w| w.eq_ignore_ascii_case(b"authorization: bearer"))),
        "the header and its scheme stay"
    );

    let state = wirelint::dashboard::AppState::new(
        &db,
        Arc::new(wirelint::rules::RuleSet::builtin().expect("rules")),
    );
    let id = crate::packet_store::fetch_json(
        &state,
        "/api/findings?rule=%22created-without-location%22",
    )["findings"][0]["exchange"]
        .as_i64()
        .expect("an exchange with the finding");
    crate::packet_store::check_pcap_holds_exchange(&state, id, dir.path());
}

/// `--no-packet-store`: nothing is kept, and the pcap of a live connection says why.
#[test]
fn sniff_with_no_packet_store_keeps_no_packet() {
    let Some(Setup {
        dir: _dir,
        db,
        server,
    }) = setup()
    else {
        return;
    };
    let mut sniffer = Sniffer::start_with("lo", &db, server.port, &["--no-packet-store"]);
    let _ = agent()
        .post(server.url("/bad/created"))
        .header("Content-Type", "application/json")
        .send(r#"{"name":"ada"}"#);
    poll_until(Duration::from_secs(10), || {
        !findings_by_path(&db).0.is_empty()
    });
    sniffer.signal(libc::SIGTERM);
    let status = sniffer.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", sniffer.log());
    let conn = Connection::open(&db).expect("open the database");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    assert!(count("SELECT count(*) FROM findings") > 0);
    assert_eq!(count("SELECT count(*) FROM packets"), 0);
    assert_eq!(count("SELECT stored_packets FROM runs"), 0);
    let state = wirelint::dashboard::AppState::new(
        &db,
        Arc::new(wirelint::rules::RuleSet::builtin().expect("rules")),
    );
    let id = count("SELECT min(exchange_id) FROM findings");
    let (code, body) =
        crate::packet_store::fetch_text(&state, &format!("/exchanges/{id}/connection.pcap"));
    assert_eq!(code, axum::http::StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("--no-packet-store"), "{body}");
}
