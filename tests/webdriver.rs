//! A small WebDriver client (W3C protocol over `std::net::TcpStream` and serde_json) that
//! drives Debian's headless Chromium through `chromedriver`, for the dashboard's browser
//! tests. No dependency beyond what the tests already link.
//!
//! Every wait is bounded, every HTTP call has a timeout, and the driver (which owns the
//! browser) is stopped by its PID when the [`Browser`] drops, after the session is closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Flags that work in this environment (no sandbox as root, nothing fetched at start-up).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// One browser at a time: two cores cannot run several Chromiums within the tests' waits.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn first_file(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Chromium's binary, when installed.
pub fn chromium() -> Option<PathBuf> {
    first_file(&[
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ])
}

/// chromedriver's binary, when installed.
pub fn chromedriver() -> Option<PathBuf> {
    first_file(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
}

/// A WebDriver error answer or a transport failure.
#[derive(Debug)]
pub struct WdError(pub String);

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
    _one: MutexGuard<'static, ()>,
}

/// A free loopback port (bound then released; chromedriver binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WdError> {
    let io = |e: std::io::Error| WdError(format!("{method} {path}: {e}"));
    let mut conn =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
            .map_err(io)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .map_err(io)?;
    // chromedriver may keep the connection open: read the head, then Content-Length bytes
    // (or chunks, or until close when neither is given).
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io)? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).map_err(io)?;
        }
        None => {
            reader.read_to_end(&mut body).map_err(io)?;
            if head.contains("transfer-encoding: chunked") {
                body = unchunk(&body);
            }
        }
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        WdError(format!(
            "{method} {path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        ))
    })?;
    if let Some(err) = value["value"]["error"].as_str() {
        return Err(WdError(format!(
            "{method} {path}: {err}: {}",
            value["value"]["message"].as_str().unwrap_or("")
        )));
    }
    Ok(value["value"].clone())
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `None` (with the reason
    /// printed) when either is not installed.
    pub fn start() -> Option<Browser> {
        let (Some(browser), Some(driver)) = (chromium(), chromedriver()) else {
            crate::support::skip(
                "chromium and chromedriver are needed (CI installs them: \
                 `apt-get install chromium chromium-driver`)",
            );
            return None;
        };
        let one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
        let port = free_port();
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // Its first line says it started; then /status says when it is ready.
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if http(port, "GET", "/status", None).is_ok_and(|v| v["ready"] == true) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver did not become ready within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30000, "script": 10000, "implicit": 0},
            "goog:chromeOptions": {"binary": browser.to_string_lossy(), "args": args},
        }}});
        let session = match http(port, "POST", "/session", Some(&caps)) {
            Ok(v) => v["sessionId"].as_str().unwrap_or_default().to_string(),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no browser session: {e}");
            }
        };
        Some(Browser {
            driver: child,
            port,
            session,
            _profile: profile,
            _one: one,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }

    /// Loads `url` and waits for the page's load event.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("loading {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Element references matching a CSS selector.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .unwrap_or_else(|e| panic!("finding {css}: {e}"));
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn find(&self, css: &str) -> String {
        self.find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css}"))
    }

    /// The rendered text of an element.
    pub fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|e| panic!("text: {e}"))
    }

    pub fn clear(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .unwrap_or_else(|e| panic!("clear: {e}"));
    }

    /// Types `text` into an element as a user would.
    pub fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .unwrap_or_else(|e| panic!("typing: {e}"));
    }

    pub fn click(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .unwrap_or_else(|e| panic!("click: {e}"));
    }

    /// The text of an open alert/confirm/prompt, if a script opened one.
    pub fn alert_text(&self) -> Option<String> {
        self.call("GET", "/alert/text", None)
            .ok()
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    /// The page's address now.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    /// Polls `check` every 50 ms until it holds or `limit` passes; returns whether it held.
    pub fn wait_until(&self, limit: Duration, mut check: impl FnMut(&Browser) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Saves a PNG of the viewport (for looking at a failure).
    #[allow(dead_code)]
    pub fn screenshot_base64(&self) -> String {
        self.call("GET", "/screenshot", None)
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session stops Chromium; then the driver is stopped by its PID.
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A `wirelint serve` child process over a database; stopped by its PID on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    pub fn start(db: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("wirelint serve starts");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        // serve prints its URL once it listens (or exits with an error, closing stderr).
        let mut lines = stderr.lines();
        let base = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.split("http://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .map(|a| format!("http://{a}"))
        });
        std::thread::spawn(move || for _ in lines {});
        match base {
            Some(base) => Server { child, base },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("wirelint serve printed no URL");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
