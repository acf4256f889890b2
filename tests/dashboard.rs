//! The dashboard through `router(state).oneshot(…)` over databases written by the real
//! binary: every page and its JSON twin, filters and keyset pagination, the security
//! headers, escaping of hostile capture strings, and the token and bind rules of `serve`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wirelint::dashboard::serve::{ServeError, check_listen};
use wirelint::dashboard::{AppState, CSP, router};
use wirelint::rules::RuleSet;
use wirelint::synth::{Conversation, PcapWriter, TsPrecision};

use crate::support;

fn wirelint(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the wirelint binary runs")
}

/// Analyzes `capture` into `dir/wirelint.db` with the real binary.
fn analyze_into(dir: &Path, capture: &Path) -> PathBuf {
    let db = dir.join("wirelint.db");
    let out = wirelint(
        &[
            "analyze",
            "--quiet",
            "--fail-on",
            "never",
            "--db",
            db.to_str().expect("utf-8 path"),
            capture.to_str().expect("utf-8 path"),
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

fn demo_db(dir: &Path) -> PathBuf {
    analyze_into(dir, &support::repo().join("captures/demo-api.pcap"))
}

fn state(db: &Path) -> AppState {
    AppState::new(db, Arc::new(RuleSet::builtin().expect("built-in rules")))
}

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn send(state: &AppState, req: Request<Body>) -> Got {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let res = router(state.clone())
            .oneshot(req)
            .await
            .expect("the router answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Got {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    })
}

fn get(state: &AppState, uri: &str) -> Got {
    send(
        state,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
}

fn ok(state: &AppState, uri: &str) -> Got {
    let got = get(state, uri);
    assert_eq!(got.status, StatusCode::OK, "{uri}: {}", got.body);
    assert_secure(&got, uri);
    got
}

fn assert_secure(got: &Got, uri: &str) {
    assert_eq!(
        got.headers
            .get(header::CONTENT_SECURITY_POLICY)
            .map(|v| v.to_str().unwrap_or("")),
        Some(CSP),
        "{uri}: CSP"
    );
    assert_eq!(
        got.headers
            .get(header::X_CONTENT_TYPE_OPTIONS)
            .map(|v| v.to_str().unwrap_or("")),
        Some("nosniff"),
        "{uri}: nosniff"
    );
}

/// Whether `html` holds `raw` HTML-escaped, with named (`&lt;`) or numeric (`&#60;`)
/// entities.
fn has_escaped(html: &str, raw: &str) -> bool {
    let esc = |named: bool| {
        raw.chars()
            .map(|c| match (c, named) {
                ('<', true) => "&lt;".to_string(),
                ('>', true) => "&gt;".to_string(),
                ('&', true) => "&amp;".to_string(),
                ('"', true) => "&quot;".to_string(),
                ('<' | '>' | '&' | '"' | '\'', _) => format!("&#{};", u32::from(c)),
                _ => c.to_string(),
            })
            .collect::<String>()
    };
    html.contains(&esc(true)) || html.contains(&esc(false))
}

/// The `rules` text of a rule, cut before any character HTML escaping changes.
fn plain_prefix(text: &str) -> String {
    text.chars()
        .take_while(|c| !matches!(c, '<' | '>' | '&' | '"' | '\'' | '\n'))
        .take(60)
        .collect()
}

#[test]
fn every_page_and_api_answers_over_the_demo_capture() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));

    let overview = ok(&st, "/");
    assert!(overview.body.contains("created-without-location"));
    assert!(overview.body.contains("/static/app.css"));
    assert!(!overview.body.contains("<script"), "no script on the pages");
    let api = ok(&st, "/api/overview").json();
    let sev = &api["severity"];
    let total = sev["error"].as_i64().unwrap()
        + sev["warning"].as_i64().unwrap()
        + sev["info"].as_i64().unwrap();
    let run = &api["runs"][0];
    assert_eq!(total, run["findings"].as_i64().unwrap());
    assert!(run["packets"].as_i64().unwrap() > 0);
    assert!(
        api["by_rule"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "created-without-location")
    );

    let css = ok(&st, "/static/app.css");
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    let rules = ok(&st, "/rules");
    let builtin = RuleSet::builtin().unwrap();
    for r in &builtin.rules {
        assert!(rules.body.contains(&format!("id=\"{}\"", r.id)), "{}", r.id);
    }
    let api = ok(&st, "/api/rules").json();
    let created = api["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "created-without-location")
        .expect("the rule is listed");
    assert!(created["hits"].as_i64().unwrap() >= 1);
    assert!(!created["why"].as_str().unwrap().is_empty());

    let missing = get(&st, "/no/such/page");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_secure(&missing, "/no/such/page");
}

#[test]
fn findings_filter_and_paginate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));

    let all = ok(&st, "/findings");
    assert!(all.body.contains("created-without-location"));
    assert!(all.body.contains("credentials-over-cleartext"));

    let one = ok(&st, "/findings?rule=no-content-with-body");
    assert!(one.body.contains("no-content-with-body"));
    assert!(!one.body.contains("created-without-location"));
    assert!(!one.body.contains("credentials-over-cleartext"));
    // Blank fields from the form mean "any".
    let blank = ok(
        &st,
        "/findings?run=&rule=no-content-with-body&severity=&category=&host=&method=&status=&path=",
    );
    assert!(blank.body.contains("no-content-with-body"));

    let api = ok(&st, "/api/findings?rule=no-content-with-body").json();
    let rows = api["findings"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|f| f["rule"] == "no-content-with-body"));

    let errors = ok(&st, "/api/findings?severity=error&method=POST").json();
    let rows = errors["findings"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|f| f["severity"] == "error" && f["method"] == "POST")
    );

    // Keyset pages: disjoint, descending, and together the whole list.
    let whole = ok(&st, "/api/findings?limit=1000").json()["findings"]
        .as_array()
        .unwrap()
        .len();
    let mut seen: Vec<i64> = Vec::new();
    let mut uri = "/api/findings?limit=7".to_string();
    loop {
        let page = ok(&st, &uri).json();
        seen.extend(
            page["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_i64().unwrap()),
        );
        match page["next_href"].as_str() {
            Some(next) => uri = next.to_string(),
            None => break,
        }
    }
    assert!(whole > 7);
    assert_eq!(seen.len(), whole);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    // The page links to its next page with the filters kept.
    let html = ok(&st, "/findings?severity=info&limit=2");
    assert!(html.body.contains("rel=\"next\""));
    assert!(has_escaped(&html.body, "severity=info&"), "{}", html.body);

    let bad = get(&st, "/findings?severity=fatal");
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_secure(&bad, "/findings?severity=fatal");
    assert_eq!(
        get(&st, "/api/findings?status=abc").status,
        StatusCode::BAD_REQUEST
    );
    // A filter value is data, never SQL.
    let inj = ok(&st, "/api/findings?rule=x'%20OR%20'1'='1").json();
    assert_eq!(inj["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn the_exchange_page_shows_both_messages_and_the_explanation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let api = ok(&st, "/api/findings?rule=created-without-location").json();
    let id = api["findings"][0]["exchange"]
        .as_i64()
        .expect("exchange id");

    let page = ok(&st, &format!("/exchanges/{id}"));
    assert!(
        page.body.contains("POST /v1/books HTTP/1.1"),
        "{}",
        page.body
    );
    assert!(page.body.contains("HTTP/1.1 201"));
    assert!(page.body.contains("Host: api.bookshelf.test"));
    assert!(page.body.contains("Bearer ****"), "redacted as stored");
    assert!(page.body.contains("frame.number == "));
    let rules = RuleSet::builtin().unwrap();
    let rule = rules
        .rules
        .iter()
        .find(|r| r.id == "created-without-location")
        .unwrap();
    assert!(page.body.contains(&plain_prefix(&rule.why)));

    let json = ok(&st, &format!("/api/exchanges/{id}")).json();
    assert_eq!(json["messages"][0]["title"], "Request");
    assert_eq!(json["messages"][0]["headers"][0][0], "Host");
    assert_eq!(json["messages"][1]["start_line"], "HTTP/1.1 201 Created");
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "created-without-location")
        .expect("the finding is on the exchange");
    assert_eq!(finding["why"], rule.why.as_str());
    assert!(
        json["wireshark"]
            .as_str()
            .unwrap()
            .starts_with("frame.number == ")
    );

    assert_eq!(
        get(&st, "/exchanges/99999999").status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&st, "/exchanges/abc").status, StatusCode::BAD_REQUEST);
}

/// A capture whose target, headers and bodies carry markup.
fn hostile_capture(path: &Path) {
    let mut c = Conversation::new(
        "192.0.2.10:40000".parse().unwrap(),
        "198.51.100.20:80".parse().unwrap(),
    );
    let body = b"<script>alert(4)</script>";
    let response = format!(
        "HTTP/1.1 201 Created\r\nServer: <script>alert(3)</script>/1.0\r\n\
         Content-Type: text/html\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.handshake()
        .client_sends(
            b"POST /a?q=<script>alert(1)</script> HTTP/1.1\r\nHost: evil.test\r\n\
              X-Evil: <script>alert(2)</script>\"'><img src=x>\r\nContent-Length: 0\r\n\r\n",
        )
        .server_sends(&[response.as_bytes(), body].concat())
        .fin();
    let mut w = PcapWriter::new(c.linktype(), TsPrecision::Micro);
    w.packets(c.packets());
    std::fs::write(path, w.finish()).expect("writing the capture");
}

#[test]
fn captured_markup_is_escaped_on_every_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pcap = dir.path().join("hostile.pcap");
    hostile_capture(&pcap);
    let st = state(&analyze_into(dir.path(), &pcap));

    let api = ok(&st, "/api/findings").json();
    let rows = api["findings"].as_array().unwrap();
    assert!(!rows.is_empty(), "the hostile exchange has findings");
    let id = rows[0]["exchange"].as_i64().expect("exchange id");

    let exchange = ok(&st, &format!("/exchanges/{id}"));
    for page in [
        exchange.body.as_str(),
        &ok(&st, "/").body,
        &ok(&st, "/findings").body,
        &ok(&st, "/rules").body,
    ] {
        assert!(!page.contains("<script"), "unescaped markup:\n{page}");
        assert!(!page.contains("<img"), "unescaped markup:\n{page}");
    }
    for raw in [
        "<script>alert(1)</script>",
        "<script>alert(2)</script>\"'><img src=x>",
        "<script>alert(3)</script>",
        "<script>alert(4)</script>",
    ] {
        assert!(has_escaped(&exchange.body, raw), "{raw}: {}", exchange.body);
    }
}

#[test]
fn a_token_guards_every_route() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = "s3cret-token-0123456789";
    let st = state(&demo_db(dir.path())).with_token(Some(token.into()));

    for uri in [
        "/",
        "/api/overview",
        "/findings",
        "/static/app.css",
        "/nope",
    ] {
        let got = get(&st, uri);
        assert_eq!(got.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_secure(&got, uri);
    }
    assert_eq!(
        get(&st, "/?token=wrong-token-0123456789").status,
        StatusCode::UNAUTHORIZED
    );
    let bearer = send(
        &st,
        Request::get("/api/overview")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(bearer.status, StatusCode::OK);
    let query = ok(
        &st,
        &format!("/findings?token={token}&rule=created-without-location"),
    );
    let cookie = query.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let with_cookie = send(
        &st,
        Request::get("/rules")
            .header(header::COOKIE, cookie.split(';').next().unwrap())
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(with_cookie.status, StatusCode::OK);
}

#[test]
fn only_loopback_is_served_without_a_token() {
    let any = "0.0.0.0:7878".parse().unwrap();
    assert!(matches!(
        check_listen(any, None),
        Err(ServeError::NeedsToken { .. })
    ));
    assert!(check_listen(any, Some("0123456789abcdef")).is_ok());
    assert!(matches!(
        check_listen(any, Some("short")),
        Err(ServeError::BadToken)
    ));
    assert!(matches!(
        check_listen(any, Some("has;semicolon-0123456789")),
        Err(ServeError::BadToken)
    ));
    for local in ["127.0.0.1:7878", "[::1]:7878", "127.1.2.3:80"] {
        assert!(
            check_listen(local.parse().unwrap(), None).is_ok(),
            "{local}"
        );
    }
}

#[test]
fn serve_refuses_clearly_and_serves_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let db_arg = db.to_str().unwrap();

    let refused = wirelint(
        &["serve", "--db", db_arg, "--listen", "0.0.0.0:0"],
        dir.path(),
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--token"));

    let missing = wirelint(&["serve", "--db", "absent.db"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let in_use = wirelint(
        &[
            "serve",
            "--db",
            db_arg,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        dir.path(),
    );
    assert_eq!(in_use.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&in_use.stderr).contains("in use"));

    // The real server: it prints its URL, then answers over TCP.
    let reply = serve_and_get(
        &["serve", "--db", db_arg, "--listen", "127.0.0.1:0"],
        dir.path(),
        "/api/rules",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(reply.contains("created-without-location"));
}

/// Starts `wirelint ARGS` (which must end up serving), reads the URL it prints on stderr,
/// GETs `path` there and stops it.
fn serve_and_get(args: &[&str], cwd: &Path, path: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .current_dir(cwd)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("wirelint starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut addr = None;
    for line in stderr.lines() {
        let line = line.expect("stderr");
        if let Some(rest) = line.split("http://").nth(1) {
            addr = rest.split('/').next().map(str::to_string);
            break;
        }
        seen.push(line);
    }
    let Some(addr) = addr else {
        child.kill().ok();
        child.wait().ok();
        panic!("no URL printed; stderr: {seen:?}");
    };
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    child.kill().ok();
    child.wait().ok();
    reply
}

#[test]
fn analyze_then_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = support::repo().join("captures/demo-api.pcap");
    let demo = demo.to_str().unwrap();

    // The address is refused before anything is analysed.
    let refused = wirelint(&["analyze", "--serve", "0.0.0.0:0", demo], dir.path());
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--token"));
    assert!(!dir.path().join("wirelint.db").exists());

    // Without --db, the database is ./wirelint.db.
    let reply = serve_and_get(
        &["analyze", "--quiet", "--serve", "127.0.0.1:0", demo],
        dir.path(),
        "/findings?rule=created-without-location",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("201 Created for POST /v1/books has no Location header"));
    assert!(dir.path().join("wirelint.db").is_file());
}

/// Headless Chromium, when installed (CI installs Debian's `chromium`).
fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// The DOM a real browser builds from a page (after parsing, as it would run it).
fn browser_dom(browser: &Path, url: &str, profile: &Path) -> String {
    let out = Command::new("timeout")
        .arg("90")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real pages in headless Chromium over a capture full of markup: every page renders,
/// and nothing from the capture becomes an element (no `<script>`, no `<img>` in the DOM
/// the browser built), while the hostile text is shown as text.
#[test]
fn a_real_browser_renders_pages_without_running_captured_markup() {
    let Some(browser) = chromium() else {
        println!("skipped: no chromium installed (CI installs it; `apt-get install chromium`)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let pcap = dir.path().join("hostile.pcap");
    hostile_capture(&pcap);
    let db = analyze_into(dir.path(), &pcap);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("wirelint serve starts");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let base = stderr.lines().map_while(Result::ok).find_map(|l| {
        l.split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .map(str::to_string)
    });
    let Some(base) = base else {
        child.kill().ok();
        child.wait().ok();
        panic!("serve printed no URL");
    };
    let profile = dir.path().join("chromium-profile");
    let mut checked = Vec::new();
    let findings = browser_dom(&browser, &format!("http://{base}/findings"), &profile);
    let exchange = findings
        .split("href=\"/exchanges/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(|id| format!("/exchanges/{id}"));
    let mut pages = vec![
        "/".to_string(),
        "/findings".to_string(),
        "/rules".to_string(),
    ];
    pages.extend(exchange.clone());
    for page in &pages {
        let dom = browser_dom(&browser, &format!("http://{base}{page}"), &profile);
        checked.push((page.clone(), dom));
    }
    child.kill().ok();
    child.wait().ok();
    assert!(
        exchange.is_some(),
        "the findings page links an exchange:\n{findings}"
    );
    for (page, dom) in &checked {
        assert!(dom.contains("wirelint"), "{page} did not render:\n{dom}");
        let lower = dom.to_ascii_lowercase();
        assert!(
            !lower.contains("<script"),
            "{page}: a script element:\n{dom}"
        );
        assert!(
            !lower.contains("<img"),
            "{page}: an injected element:\n{dom}"
        );
    }
    let (_, exchange_dom) = checked.last().expect("the exchange page");
    assert!(
        exchange_dom.contains("alert(1)"),
        "the hostile target is shown as text"
    );
}
