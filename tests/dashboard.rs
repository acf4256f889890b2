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
use std::time::Duration;
use tower::ServiceExt;

use serde_json::json;
use wirelint::capture::CaptureSet;
use wirelint::config::Config;
use wirelint::dashboard::serve::{ServeError, check_listen};
use wirelint::dashboard::{AppState, CSP, router};
use wirelint::pipeline::{self, Analyzed, PipelineConfig, RunSummary};
use wirelint::redact::Redactor;
use wirelint::rules::RuleSet;
use wirelint::store::{RunSource, Store};
use wirelint::synth::{Conversation, PcapWriter, TsPrecision};

use crate::support;
use crate::webdriver::{Browser, Server};

fn wirelint(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the wirelint binary runs")
}

/// Analyzes `capture` into `db` with the real binary, run in `dir`.
fn analyze_into_db(dir: &Path, capture: &Path, db: &Path) {
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
}

/// Analyzes `capture` into `dir/wirelint.db` with the real binary.
fn analyze_into(dir: &Path, capture: &Path) -> PathBuf {
    let db = dir.join("wirelint.db");
    analyze_into_db(dir, capture, &db);
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
    assert_eq!(
        got.headers
            .get(header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap_or("")),
        Some("no-store"),
        "{uri}: no-store"
    );
}

/// The page without the script elements it may carry (the dashboard's own files).
fn without_live_js(html: &str) -> String {
    html.replace("<script src=\"/static/live.js\" defer></script>", "")
        .replace("<script src=\"/static/copy.js\" defer></script>", "")
}

/// Undoes HTML attribute escaping (named and numeric entities).
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `<a … href=H … data-count=N>` of a page: `(H, N)`.
fn count_links(html: &str) -> Vec<(String, i64)> {
    let attr = |tag: &str, name: &str| {
        let key = format!(" {name}=\"");
        let at = tag.find(&key)? + key.len();
        let end = tag[at..].find('"')?;
        Some(unescape(&tag[at..at + end]))
    };
    html.split("<a ")
        .skip(1)
        .filter_map(|rest| {
            let tag = format!(" {}", &rest[..rest.find('>')?]);
            let n = attr(&tag, "data-count")?.parse().ok()?;
            Some((attr(&tag, "href")?, n))
        })
        .collect()
}

/// Opens every count link of `page` and checks that the list it opens has that total
/// (through the list's API twin). Returns how many links it walked.
fn walk_count_links(st: &AppState, page: &str) -> usize {
    let html = ok(st, page).body;
    let links = count_links(&html);
    for (href, n) in &links {
        let api = href
            .strip_prefix("/findings")
            .map(|q| format!("/api/findings{q}"))
            .unwrap_or_else(|| panic!("{page}: a count link to {href} is not a findings list"));
        let got = ok(st, &api).json();
        assert_eq!(
            (got["total"]["n"].as_i64(), got["total"]["exact"].as_bool()),
            (Some(*n), Some(true)),
            "{page}: the link {href} says {n}"
        );
        // The first page shows the same (whole) list when it is short.
        if *n <= 100 {
            assert_eq!(
                got["findings"].as_array().map(Vec::len),
                Some(*n as usize),
                "{href}"
            );
        }
    }
    links.len()
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
    let text = text.split("RFC ").next().unwrap_or("");
    text.chars()
        .take_while(|c| !matches!(c, '<' | '>' | '&' | '"' | '\'' | '\n' | '`'))
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
    assert!(
        !without_live_js(&overview.body).contains("<script"),
        "no script on the pages but the dashboard's own file"
    );
    assert!(overview.body.contains("<svg class=\"chart\""), "charts");
    assert!(
        overview.body.contains("<rect class=\"bar s2xx\""),
        "2xx bars"
    );
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

/// Every number on the overview (newest run, one run, all runs), the issues, endpoints and
/// rules pages opens a list with exactly that many findings.
#[test]
fn every_count_link_opens_a_list_of_that_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    analyze_into_db(
        dir.path(),
        &support::repo().join("captures/anomaly-cl-and-te.pcap"),
        &db,
    );
    analyze_into_db(
        dir.path(),
        &support::repo().join("captures/demo-api.pcap"),
        &db,
    );
    let st = state(&db);
    let mut walked = 0;
    for page in [
        "/",
        "/?run=all",
        "/?run=1",
        "/?run=2",
        "/issues",
        "/issues?run=3",
        "/endpoints",
        "/endpoints?run=1",
        "/endpoints?run=2",
        "/rules",
    ] {
        let n = walk_count_links(&st, page);
        assert!(n > 0, "{page} has no count link");
        walked += n;
    }
    assert!(walked > 100, "{walked} links");

    // The overview's default is the newest run, and it says so; all runs is one click away.
    let newest = ok(&st, "/").body;
    assert!(newest.contains("newest run, #3"), "{newest}");
    assert!(newest.contains("href=\"/?run=all\""));
    let api = ok(&st, "/api/overview").json();
    assert_eq!(api["run"], 3);
    let all = ok(&st, "/api/overview?run=all").json();
    assert_eq!(all["run"], Value::Null);
    let sum = |v: &Value| {
        v["severity"]["error"].as_i64().unwrap()
            + v["severity"]["warning"].as_i64().unwrap()
            + v["severity"]["info"].as_i64().unwrap()
    };
    assert!(
        sum(&all) > sum(&api),
        "all runs add up more than the newest"
    );
    // Its charts cover every run: one bar column per run.
    let chart = &all["findings_chart"];
    assert_eq!(
        chart["columns"].as_array().map(Vec::len),
        Some(3),
        "{chart}"
    );
    assert_eq!(chart["total"].as_i64(), Some(sum(&all)));
    // Rule counts are split by severity and add up to the cards.
    let rules = all["by_rule"].as_array().unwrap();
    let errors: i64 = rules.iter().map(|r| r["error"].as_i64().unwrap()).sum();
    assert_eq!(errors, all["severity"]["error"].as_i64().unwrap());
}

#[test]
fn issues_group_rule_and_endpoint_worst_first_and_sort() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let rank = |s: &Value| match s.as_str() {
        Some("error") => 2,
        Some("warning") => 1,
        _ => 0,
    };
    let v = ok(&st, "/api/issues").json();
    let issues = v["issues"].as_array().unwrap();
    assert!(issues.len() > 3);
    assert!(
        issues
            .windows(2)
            .all(|w| rank(&w[0]["severity"]) >= rank(&w[1]["severity"]))
    );
    assert!(
        issues
            .iter()
            .all(|i| i["runs"].as_array().is_some_and(|r| !r.is_empty()))
    );
    let by_count = ok(&st, "/api/issues?sort=count").json();
    let counts: Vec<i64> = by_count["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["count"].as_i64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    // Together they are every finding on an exchange.
    let all: i64 = counts.iter().sum();
    let on_exchanges: i64 = ok(&st, "/api/endpoints").json()["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["findings"].as_i64().unwrap())
        .sum();
    assert_eq!(all, on_exchanges);
    let bad = get(&st, "/api/issues?sort=random");
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["param"], "sort");
}

#[test]
fn substring_filters_ignore_case_and_quotes_are_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let total = |q: &str| {
        let v = ok(&st, &format!("/api/findings?{q}")).json();
        v["total"]["n"].as_i64().unwrap()
    };
    let all = total("");
    assert!(all > 0);
    assert_eq!(
        total("host=BOOKSHELF"),
        total("host=%22api.bookshelf.test%22")
    );
    assert!(total("host=bookshelf") > 0);
    assert_eq!(total("host=%22BOOKSHELF%22"), 0, "quoted is exact");
    assert_eq!(total("method=get"), total("method=%22GET%22"));
    assert!(total("method=get") > 0);
    assert_eq!(total("host=no-such-host"), 0);
    // Status classes and lists, several severities.
    let s4 = total("status=4xx");
    assert!(s4 > 0);
    let by_code: i64 = (400..500).map(|c| total(&format!("status={c}"))).sum();
    assert_eq!(s4, by_code);
    assert_eq!(total("status=4xx,5xx"), s4 + total("status=5xx"));
    assert_eq!(
        total("severity=error&severity=warning"),
        total("severity=error") + total("severity=warning")
    );
    assert_eq!(
        total("severity=error,warning,info"),
        all,
        "every severity is everything"
    );
    // The form shows findings per severity under the other filters.
    let page = ok(&st, "/findings?category=cookies&severity=info").body;
    for sev in ["error", "warning", "info"] {
        let n = total(&format!("category=cookies&severity={sev}"));
        let label = format!("value=\"{sev}\"");
        let at = page.find(&label).expect("a checkbox");
        let facet = page[at..]
            .split("<span class=\"facet\">")
            .nth(1)
            .and_then(|x| x.split("</span>").next())
            .expect("a facet count");
        assert_eq!(facet, n.to_string(), "{sev}");
    }
    // Pages of a multi-value filter are newest first and complete.
    let mut seen = Vec::new();
    let mut next = Some("/api/findings?severity=error,warning&limit=3".to_string());
    while let Some(uri) = next {
        let v = ok(&st, &uri).json();
        seen.extend(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_i64().unwrap()),
        );
        next = v["next_href"].as_str().map(str::to_string);
    }
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    assert_eq!(seen.len() as i64, total("severity=error,warning"));
    // A time range within a run.
    let overview = ok(&st, "/api/overview?run=1").json();
    let run = &overview["runs"][0];
    let (first, last) = (
        run["first_ts"].as_i64().unwrap(),
        run["last_ts"].as_i64().unwrap(),
    );
    let timed = overview["findings_chart"]["total"].as_i64().unwrap();
    assert!(timed > 0);
    assert_eq!(total(&format!("run=1&from={first}&to={}", last + 1)), timed);
    let no_run = get(&st, &format!("/api/findings?from={first}"));
    assert_eq!(
        no_run.status,
        StatusCode::BAD_REQUEST,
        "a time range needs a run"
    );
    assert_eq!(no_run.json()["param"], "from");
    assert_eq!(
        total(&format!("run=1&from={}&to={}", last + 1, last + 2)),
        0
    );
}

#[test]
fn errors_are_json_under_api_and_pages_elsewhere_and_limit_is_capped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let bad = get(&st, "/api/findings?severity=fatal");
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_secure(&bad, "bad api");
    let v = bad.json();
    assert_eq!(v["param"], "severity");
    assert!(v["error"].as_str().unwrap().contains("fatal"), "{v}");
    let missing = get(&st, "/api/exchanges/999999");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json()["error"].as_str().unwrap().contains("999999"));
    assert_eq!(get(&st, "/api/nothing-here").json()["param"], Value::Null);
    assert_eq!(get(&st, "/api/exchanges/abc").json()["param"], "id");
    let page = get(&st, "/findings?status=teapot");
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("<nav>"), "the navigation");
    assert!(
        page.body.contains("<form class=\"filters\""),
        "the form, with the error"
    );
    assert!(page.body.contains("teapot"));
    let not_found = get(&st, "/no/such/page");
    assert!(not_found.body.contains("<nav>") && not_found.body.contains("404"));
    let capped = ok(&st, "/api/findings?limit=100000000").json();
    assert_eq!(capped["limit"], 1000);
    assert!(capped["findings"].as_array().unwrap().len() <= 1000);
    assert_eq!(
        get(&st, "/api/findings?limit=lots").json()["param"],
        "limit"
    );
}

#[test]
fn csv_export_lists_the_filtered_findings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let csv = ok(&st, "/findings.csv?severity=error");
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let n = ok(&st, "/api/findings?severity=error").json()["total"]["n"]
        .as_i64()
        .unwrap();
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines.len() as i64,
        n + 1,
        "a header and one line per finding"
    );
    assert!(lines[0].starts_with("id,run,severity,rule"));
    assert!(lines[1..].iter().all(|l| l.contains("\"error\"")));
}

#[test]
fn findings_filter_and_paginate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));

    let all = ok(&st, "/findings");
    assert!(all.body.contains("created-without-location"));
    assert!(all.body.contains("credentials-over-cleartext"));

    let one = ok(&st, "/findings?rule=no-content-with-body");
    // The list (the form suggests every rule id).
    let rows = &one.body[one.body.find("<table").expect("a table")..];
    assert!(rows.contains("no-content-with-body"));
    assert!(!rows.contains("created-without-location"));
    assert!(!rows.contains("credentials-over-cleartext"));
    assert!(
        one.body
            .contains("<datalist id=\"hosts\"><option value=\"api.bookshelf.test\">")
    );
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
    assert_eq!(json["messages"][0]["headers"][0]["name"], "Host");
    assert_eq!(json["messages"][1]["start_line"], "HTTP/1.1 201 Created");
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "created-without-location")
        .expect("the finding is on the exchange");
    let why: String = finding["why"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(why, rule.why.replace('`', ""), "the explanation, rendered");
    // Worst first.
    let ranks: Vec<i32> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["severity"].as_str() {
            Some("error") => 2,
            Some("warning") => 1,
            _ => 0,
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    // Each finding whose evidence names a header points at that line, and the line back;
    // one whose span is the start line or the body points there, and they back.
    let mut pointed = 0;
    for f in json["findings"].as_array().unwrap() {
        let Some(anchor) = f["line"].as_str() else {
            continue;
        };
        pointed += 1;
        if let Some((side, part)) = anchor
            .rsplit_once('-')
            .filter(|(_, p)| *p == "start" || *p == "body")
        {
            let m = json["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["side"] == side)
                .expect("the message exists");
            assert!(
                m[format!("{part}_marks")]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x[0] == f["id"]),
                "{f} {m}"
            );
            assert!(page.body.contains(&format!("href=\"#{anchor}\"")));
            assert!(page.body.contains(&format!("id=\"{anchor}\"")));
            continue;
        }
        let line = json["messages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["headers"].as_array().unwrap())
            .find(|h| h["anchor"] == anchor)
            .expect("the line exists");
        let name = f["evidence"].as_str().unwrap().split(':').next().unwrap();
        assert!(
            line["name"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(name.trim()),
            "{f} {line}"
        );
        assert!(
            line["marks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m[0] == f["id"])
        );
        assert!(page.body.contains(&format!("href=\"#{anchor}\"")));
        assert!(
            page.body
                .contains(&format!("href=\"#finding-{}\"", f["id"]))
        );
    }
    assert!(pointed > 0, "some finding is about a header line: {json}");
    assert!(json["curl"].as_str().unwrap().starts_with("curl "));
    assert!(
        json["messages"][0]["at"].as_str().is_some()
            && json["messages"][0]["since_start"].as_str().is_some(),
        "absolute and relative times"
    );
    // Neighbours on the connection link each other.
    if let Some(next) = json["next"].as_i64() {
        assert_eq!(
            ok(&st, &format!("/api/exchanges/{next}")).json()["prev"],
            id
        );
    }
    assert!(
        json["prev"].is_i64() || json["next"].is_i64(),
        "the demo's connections carry several exchanges"
    );
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
              X-Evil: <script>alert(2)</script>\"'><img src=x onerror=window.__pwned=1>\r\n\
              Content-Length: 0\r\n\r\n",
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
        &ok(&st, "/endpoints").body,
        &ok(&st, "/api/endpoints").body,
    ] {
        assert!(
            !without_live_js(page).contains("<script"),
            "unescaped markup:\n{page}"
        );
        assert!(!page.contains("<img"), "unescaped markup:\n{page}");
    }
    for raw in [
        "<script>alert(1)</script>",
        "<script>alert(2)</script>\"'><img src=x onerror=window.__pwned=1>",
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
    // RFC 9110 §11.1: the scheme is case-insensitive.
    let lower = send(
        &st,
        Request::get("/api/overview")
            .header(header::AUTHORIZATION, format!("bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(lower.status, StatusCode::OK, "{}", lower.body);
    let wrong_scheme = send(
        &st,
        Request::get("/api/overview")
            .header(header::AUTHORIZATION, format!("Basic {token}"))
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(wrong_scheme.status, StatusCode::UNAUTHORIZED);
    // `?token=` sets the cookie and redirects to the same address without the token.
    let query = get(
        &st,
        &format!("/findings?token={token}&rule=created-without-location"),
    );
    assert_eq!(query.status, StatusCode::SEE_OTHER, "{}", query.body);
    assert_secure(&query, "?token=");
    assert_eq!(
        query.headers[header::LOCATION].to_str().unwrap(),
        "/findings?rule=created-without-location"
    );
    let bare = get(&st, &format!("/?token={token}"));
    assert_eq!(bare.headers[header::LOCATION].to_str().unwrap(), "/");
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

/// Without a token only `Host` names of this server are answered: a page elsewhere that
/// points its own name at 127.0.0.1 (DNS rebinding) must not read the dashboard.
#[test]
fn without_a_token_other_host_names_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path())).with_listen(Some("127.0.0.2:7000".parse().unwrap()));
    let with_host = |host: &str| {
        send(
            &st,
            Request::get("/api/overview")
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap(),
        )
    };
    for host in [
        "localhost",
        "localhost:7878",
        "LOCALHOST:1",
        "127.0.0.1:7878",
        "[::1]:7878",
        "[::1]",
        "127.0.0.2:7000",
    ] {
        assert_eq!(with_host(host).status, StatusCode::OK, "{host}");
    }
    for host in [
        "attacker.example",
        "attacker.example:7878",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example",
        "[::2]:7878",
        "10.0.0.1",
    ] {
        let got = with_host(host);
        assert_eq!(got.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert_secure(&got, host);
        assert!(!got.body.contains("created-without-location"), "{host}");
    }
    // With a token the token is the guard (the server listens on a routable address).
    let guarded = state(&demo_db(dir.path())).with_token(Some("s3cret-token-0123456789".into()));
    let got = send(
        &guarded,
        Request::get("/api/overview")
            .header(header::HOST, "dashboard.example")
            .header(header::AUTHORIZATION, "Bearer s3cret-token-0123456789")
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(got.status, StatusCode::OK);
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

// ---------------------------------------------------------------- in a real browser

/// Whether the page has no element or script from a capture: the only script elements are
/// the dashboard's own live.js and copy.js, no `<img>`, no `on…` attribute anywhere, nothing ran
/// (`window.__pwned` is what the hostile capture's payloads would set), no dialog opened.
fn assert_nothing_injected(b: &Browser, page: &str) {
    assert_eq!(b.alert_text(), None, "{page}: a dialog opened");
    let report = b.exec(
        "var scripts = Array.prototype.map.call(document.scripts, function (s) { return s.getAttribute('src'); });\
         var handlers = 0;\
         document.querySelectorAll('*').forEach(function (e) {\
           for (var i = 0; i < e.attributes.length; i++) { if (/^on/i.test(e.attributes[i].name)) handlers++; }\
         });\
         return { scripts: scripts, imgs: document.getElementsByTagName('img').length,\
                  iframes: document.getElementsByTagName('iframe').length,\
                  handlers: handlers, pwned: typeof window.__pwned };",
        json!([]),
    );
    let scripts = report["scripts"].as_array().expect("scripts");
    assert!(
        scripts
            .iter()
            .all(|s| s == "/static/live.js" || s == "/static/copy.js"),
        "{page}: scripts {scripts:?}"
    );
    assert_eq!(report["imgs"], 0, "{page}: an injected <img>");
    assert_eq!(report["iframes"], 0, "{page}: an injected <iframe>");
    assert_eq!(report["handlers"], 0, "{page}: an event-handler attribute");
    assert_eq!(
        report["pwned"], "undefined",
        "{page}: a captured script ran"
    );
}

fn count(b: &Browser, css: &str) -> usize {
    b.exec(
        "return document.querySelectorAll(arguments[0]).length;",
        json!([css]),
    )
    .as_u64()
    .unwrap_or(0) as usize
}

#[test]
fn browser_overview_renders_its_charts() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&demo_db(dir.path()));
    b.goto(&format!("{}/", server.base));
    assert_eq!(count(&b, "svg.chart"), 2, "status and findings charts");
    let status_bars = count(&b, "figure.chart:first-of-type svg.chart rect.bar");
    assert!(status_bars > 0, "status chart has bars");
    assert!(count(&b, "svg.chart rect.bar.s2xx") > 0, "2xx bars");
    assert!(
        count(
            &b,
            "svg.chart rect.bar.fill-error, svg.chart rect.bar.fill-warning"
        ) > 0,
        "findings bars"
    );
    // Bars are laid out inside the plot, with a real size.
    let sized = b.exec(
        "return Array.prototype.every.call(document.querySelectorAll('svg.chart rect.bar'), function (r) {\
           var box = r.getBBox(); return box.width > 0 && box.height > 0 && box.y >= 0 && box.y + box.height <= 181; });",
        json!([]),
    );
    assert_eq!(sized, true, "every bar has a size inside the plot");
    let legend = b.text(&b.find("figure.chart figcaption"));
    assert!(legend.contains("2xx"), "{legend}");
    // The endpoints page is reachable from the overview and draws status mixes.
    b.goto(&format!("{}/endpoints", server.base));
    assert!(count(&b, "table.endpoints tbody tr") > 1);
    assert!(count(&b, "svg.mix rect") > 0);
    assert_nothing_injected(&b, "/endpoints");
}

/// The connection of an exchange, downloaded as pcap, holds the same exchanges: read by
/// wirelint itself and, when installed, by tshark.
#[test]
fn the_connection_downloads_as_a_pcap_with_the_same_exchanges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let id = ok(&st, "/api/findings?rule=%22created-without-location%22").json()["findings"][0]
        ["exchange"]
        .as_i64()
        .expect("an exchange");
    let ex = ok(&st, &format!("/api/exchanges/{id}")).json();
    let page = ok(&st, &format!("/exchanges/{id}")).body;
    assert!(page.contains(&format!("/exchanges/{id}/connection.pcap")));
    let got = send(
        &st,
        Request::get(format!("/exchanges/{id}/connection.pcap"))
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(
        got.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(".pcap")
    );
    // The body went through from_utf8_lossy in `send`: fetch the bytes again unmangled.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = rt.block_on(async {
        let res = router(st.clone())
            .oneshot(
                Request::get(format!("/exchanges/{id}/connection.pcap"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        res.into_body().collect().await.unwrap().to_bytes()
    });
    let pcap = dir.path().join("conn.pcap");
    std::fs::write(&pcap, &bytes).unwrap();
    let out = wirelint(
        &[
            "exchanges",
            "--format",
            "jsonl",
            "-q",
            pcap.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let client = ex["client"].as_str().unwrap();
    assert!(
        lines.iter().all(|l| l["client"] == client),
        "one connection only"
    );
    let start = ex["messages"][0]["start_line"].as_str().unwrap();
    let same = &lines[ex["index"].as_u64().unwrap() as usize];
    assert_eq!(
        format!(
            "{} {} {}",
            same["request"]["method"].as_str().unwrap(),
            same["request"]["target"].as_str().unwrap(),
            same["request"]["version"].as_str().unwrap()
        ),
        start
    );
    assert_eq!(same["response"]["status"], 201);
    match which("tshark") {
        Some(tshark) => {
            let t = Command::new(tshark)
                .args([
                    "-r",
                    pcap.to_str().unwrap(),
                    "-Y",
                    "http.response.code == 201",
                    "-T",
                    "fields",
                    "-e",
                    "http.response.code",
                ])
                .output()
                .expect("tshark runs");
            let ours = lines
                .iter()
                .filter(|l| l["response"]["status"] == 201)
                .count();
            assert_eq!(
                String::from_utf8_lossy(&t.stdout)
                    .lines()
                    .filter(|l| l.trim() == "201")
                    .count(),
                ours,
                "{}",
                String::from_utf8_lossy(&t.stderr)
            );
        }
        None => println!("skipped the tshark half: tshark is not installed"),
    }
    // The exchange's bytes, as hex and ASCII, with secrets masked.
    assert!(page.contains(&format!("/exchanges/{id}/bytes")));
    let bytes_page = ok(&st, &format!("/exchanges/{id}/bytes")).body;
    assert!(
        bytes_page.contains("50 4f 53 54 20"),
        "POST in hex: {bytes_page}"
    );
    let with_token = ok(&st, "/api/findings?rule=%22credentials-over-cleartext%22").json()
        ["findings"][0]["exchange"]
        .as_i64()
        .unwrap();
    let bytes_page = ok(&st, &format!("/exchanges/{with_token}/bytes")).body;
    // The ASCII column, rows joined.
    let ascii: String = bytes_page
        .split("<span class=\"ascii\">")
        .skip(1)
        .filter_map(|s| s.split("</span>").next())
        .collect();
    assert!(ascii.contains("Authorization: Bearer ****"), "{ascii}");
    assert!(!bytes_page.contains("eyJhbGci"), "the token stays masked");
    // A live run has no packets to give.
    assert_eq!(
        get(&st, "/exchanges/999999/connection.pcap").status,
        StatusCode::NOT_FOUND
    );
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

/// In a real browser: each number on the overview opens a list of that many findings.
#[test]
fn browser_count_links_open_lists_of_that_count() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&demo_db(dir.path()));
    b.goto(&format!("{}/", server.base));
    let links = b.exec(
        "return Array.prototype.map.call(document.querySelectorAll('a[data-count]'), function (a) { return [a.getAttribute('href'), Number(a.getAttribute('data-count'))]; });",
        json!([]),
    );
    let links = links.as_array().expect("links").clone();
    assert!(links.len() > 10, "{links:?}");
    for l in links.iter().take(25) {
        let (href, n) = (l[0].as_str().unwrap(), l[1].as_i64().unwrap());
        b.goto(&format!("{}{href}", server.base));
        let shown = b.exec(
            "var t = document.querySelector('[data-total]'); return t ? Number(t.getAttribute('data-total')) : -1;",
            json!([]),
        );
        assert_eq!(shown.as_i64(), Some(n), "{href}");
        let rows = count(&b, "table.findings tbody tr");
        assert_eq!(rows as i64, n.min(100), "{href}: rows");
    }
}

/// In a real browser: the exchange page marks the header line a finding is about, and the
/// finding's link jumps to it.
#[test]
fn browser_exchange_page_marks_the_line_of_a_finding() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let st = state(&db);
    let id = ok(&st, "/api/findings?rule=%22credentials-over-cleartext%22").json()["findings"][0]
        ["exchange"]
        .as_i64()
        .unwrap();
    let server = Server::start(&db);
    b.goto(&format!("{}/exchanges/{id}", server.base));
    let marked = b.exec(
        "return Array.prototype.map.call(document.querySelectorAll('pre.wire .line.marked'), function (l) { return l.id + '|' + l.textContent; });",
        json!([]),
    );
    let marked: Vec<String> = marked
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        marked
            .iter()
            .any(|m| m.starts_with("request-") && m.contains("|Authorization: Bearer ****")),
        "{marked:?}"
    );
    // The marked line is drawn differently from the others.
    let differs = b.exec(
        "var m = document.querySelector('pre.wire .line.marked'); var o = document.querySelector('pre.wire .line:not(.marked)'); return getComputedStyle(m).backgroundColor !== getComputedStyle(o).backgroundColor;",
        json!([]),
    );
    assert_eq!(differs, true);
    b.click(&b.find("a.to-line"));
    let target = b.exec(
        "var t = document.querySelector(':target'); return t ? t.className : '';",
        json!([]),
    );
    assert!(target.as_str().unwrap().contains("marked"), "{target}");
    // And back from the line to its finding.
    b.click(&b.find("a.mark"));
    let target = b.exec(
        "var t = document.querySelector(':target'); return t ? t.id : '';",
        json!([]),
    );
    assert!(target.as_str().unwrap().starts_with("finding-"), "{target}");
}

/// In a real browser: a content finding's span is the body; the exchange page marks the
/// body (the bytes from where the JSON breaks, when the preview holds them) and the
/// finding's link scrolls to it.
#[test]
fn browser_exchange_page_marks_the_body_a_content_finding_is_about() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let st = state(&db);
    let f = ok(&st, "/api/findings?rule=%22invalid-json-body%22").json()["findings"][0].clone();
    assert_eq!(f["span"]["part"], "body", "{f}");
    let side = f["span"]["side"].as_str().unwrap().to_string();
    let server = Server::start(&db);
    b.goto(&format!("{}/exchanges/{}", server.base, f["exchange"]));
    let body = format!("{side}-body");
    let marked = b.exec(
        "var e = document.getElementById(arguments[0]); return e ? e.className + '|' + (e.querySelector('mark.span') ? e.querySelector('mark.span').textContent : '') : 'none';",
        json!([body]),
    );
    let marked = marked.as_str().unwrap().to_string();
    assert!(marked.contains("marked"), "{marked}");
    // The finding links to the body; following it makes the body the target.
    b.click(&b.find(&format!("a.to-line[href='#{body}']")));
    let target = b.exec(
        "var t = document.querySelector(':target'); return t ? t.id : '';",
        json!([]),
    );
    assert_eq!(target.as_str().unwrap(), body);
}

/// In a real browser: the request copied as curl repeats the request against a local
/// server (the same method, target and headers, secrets masked).
#[test]
fn browser_copy_as_curl_repeats_the_request() {
    let Some(b) = Browser::start() else { return };
    let Some(curl) = which("curl") else {
        println!("skipped: curl is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let st = state(&db);
    let id = ok(&st, "/api/findings?rule=%22created-without-location%22").json()["findings"][0]
        ["exchange"]
        .as_i64()
        .unwrap();
    let ex = ok(&st, &format!("/api/exchanges/{id}")).json();
    let server = Server::start(&db);
    b.goto(&format!("{}/exchanges/{id}", server.base));
    assert_eq!(
        b.exec(
            "return document.querySelector('button.copy').hidden;",
            json!([])
        ),
        false,
        "copy.js shows the buttons"
    );
    let command = b
        .exec(
            "return document.getElementById('curl').textContent;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    // A one-shot server that records the request.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let catcher = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        String::from_utf8_lossy(&got).to_string()
    });
    let host = ex["messages"][0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "Host")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let script = format!(
        "{} --silent --max-time 10 --connect-to {host}:80:127.0.0.1:{port}",
        command.replacen("curl", curl.to_str().unwrap(), 1)
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = catcher.join().unwrap();
    let start = ex["messages"][0]["start_line"].as_str().unwrap();
    assert!(seen.starts_with(start), "{seen}");
    for h in ex["messages"][0]["headers"].as_array().unwrap() {
        let line = format!(
            "{}: {}",
            h["name"].as_str().unwrap(),
            h["value"].as_str().unwrap()
        );
        assert!(seen.contains(&line), "{line} in\n{seen}");
    }
}

/// In a real browser at a phone's width (390 px) and at 1280 px: no page is wider than
/// the window, and each findings row's exchange link is on screen.
#[test]
fn browser_pages_fit_a_phone_and_a_laptop() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let st = state(&db);
    let id = ok(&st, "/api/findings").json()["findings"][0]["exchange"]
        .as_i64()
        .unwrap();
    let server = Server::start(&db);
    for width in [390, 1280] {
        b.set_window(width, 900);
        for page in [
            "/",
            "/?run=all",
            "/issues",
            "/findings",
            "/endpoints",
            "/rules",
            &format!("/exchanges/{id}"),
        ] {
            b.goto(&format!("{}{page}", server.base));
            let fits = b.exec(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                json!([]),
            );
            let (scroll, inner) = (fits[0].as_i64().unwrap(), fits[1].as_i64().unwrap());
            assert!(scroll <= inner, "{page} at {width}px: {scroll} > {inner}");
        }
        b.goto(&format!("{}/findings", server.base));
        let reachable = b.exec(
            "var a = document.querySelector('table.findings tbody tr td:first-child a'); var r = a.getBoundingClientRect(); return r.right <= window.innerWidth && r.width > 0;",
            json!([]),
        );
        assert_eq!(reachable, true, "the exchange link at {width}px");
    }
}

/// In a real browser asking for dark mode, the pages are dark.
#[test]
fn browser_dark_mode_follows_the_system() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&demo_db(dir.path()));
    let background = |b: &Browser| {
        b.exec(
            "return getComputedStyle(document.body).backgroundColor;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string()
    };
    b.goto(&format!("{}/", server.base));
    assert_eq!(background(&b), "rgb(255, 255, 255)");
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    b.goto(&format!("{}/", server.base));
    assert_eq!(background(&b), "rgb(16, 20, 24)");
    let text = b
        .exec("return getComputedStyle(document.body).color;", json!([]))
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(text, "rgb(228, 231, 236)", "light text on the dark page");
}

#[test]
fn browser_filter_narrows_the_findings_list() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&demo_db(dir.path()));
    b.goto(&format!("{}/findings", server.base));
    let rows = |b: &Browser| count(b, "table.findings tbody tr");
    let all = rows(&b);
    assert!(all > 3, "the demo has findings: {all}");

    let rule = b.find("form.filters input[name=rule]");
    b.clear(&rule);
    b.type_into(&rule, "no-content-with-body");
    b.click(&b.find("form.filters input[name=severity][value=error]"));
    b.click(&b.find("form.filters button[type=submit]"));
    assert!(
        b.wait_until(Duration::from_secs(10), |b| b
            .url()
            .contains("rule=no-content-with-body")),
        "the form submitted: {}",
        b.url()
    );
    let narrowed = rows(&b);
    assert!(narrowed > 0 && narrowed < all, "{narrowed} of {all}");
    let cells = b.exec(
        "return Array.prototype.map.call(document.querySelectorAll('table.findings tbody tr'), function (tr) {\
           return [tr.cells[1].textContent.trim(), tr.cells[2].textContent.trim()]; });",
        json!([]),
    );
    for c in cells.as_array().expect("rows") {
        assert_eq!(c[0], "error", "{c}");
        assert_eq!(c[1], "no-content-with-body", "{c}");
    }
    // The form shows the filter it applied.
    let kept = b.exec(
        "return [document.querySelector('input[name=rule]').value, Array.prototype.map.call(document.querySelectorAll('input[name=severity]:checked'), function (c) { return c.value; }).join(',')];",
        json!([]),
    );
    assert_eq!(kept, json!(["no-content-with-body", "error"]));
}

#[test]
fn browser_exchange_page_shows_both_messages_and_the_explanation() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&demo_db(dir.path()));
    b.goto(&format!(
        "{}/findings?rule=created-without-location",
        server.base
    ));
    b.click(&b.find("table.findings tbody tr td:first-child a"));
    assert!(
        b.wait_until(Duration::from_secs(10), |b| b.url().contains("/exchanges/")),
        "followed the exchange link: {}",
        b.url()
    );
    let wires: Vec<String> = b
        .find_all("section.message pre.wire")
        .iter()
        .map(|e| b.text(e))
        .collect();
    assert_eq!(wires.len(), 2, "request and response");
    assert!(
        wires[0].starts_with("POST /v1/books HTTP/1.1"),
        "{}",
        wires[0]
    );
    assert!(wires[1].starts_with("HTTP/1.1 201 Created"), "{}", wires[1]);
    // Side by side at this width.
    let side = b.exec(
        "var m = document.querySelectorAll('section.message');\
         return m[0].getBoundingClientRect().top === m[1].getBoundingClientRect().top &&\
                m[0].getBoundingClientRect().right <= m[1].getBoundingClientRect().left;",
        json!([]),
    );
    assert_eq!(side, true, "request and response side by side");
    let rules = RuleSet::builtin().expect("rules");
    let rule = rules
        .rules
        .iter()
        .find(|r| r.id == "created-without-location")
        .expect("the rule");
    let why: Vec<String> = b
        .find_all("article.finding .why")
        .iter()
        .map(|e| b.text(e))
        .collect();
    assert!(
        why.iter().any(|w| w.contains(&plain_prefix(&rule.why))),
        "{why:?}"
    );
}

/// The pipeline's output for a capture, as `analyze` would hand it to the store.
fn analysed(capture: &Path) -> (Vec<Analyzed>, RunSummary, Vec<String>) {
    let rules =
        wirelint::cli::analyze::load_rules(&Config::default(), None, &[], &[], &[]).expect("rules");
    let captures = CaptureSet::open(&[capture.to_path_buf()]).expect("capture");
    let cfg = PipelineConfig {
        rules: Some(Arc::new(rules)),
        redact: Some(Redactor::default()),
        ..PipelineConfig::default()
    };
    let mut items = Vec::new();
    let summary = pipeline::run(
        &captures,
        &cfg,
        |item| {
            if let pipeline::Output::Exchange(a) = item {
                items.push(a);
            }
            Ok(())
        },
        |_| {},
    )
    .expect("pipeline");
    (items, summary, captures.file_names())
}

/// The findings page follows the database: a finding another writer commits shows up
/// within 2 s without a reload, built from text (the capture's markup stays text), and
/// the overview's counters follow too.
#[test]
fn browser_live_findings_arrive_without_reload_and_stay_text() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let pcap = dir.path().join("hostile.pcap");
    hostile_capture(&pcap);
    let (items, summary, names) = analysed(&pcap);
    let expected: usize = items.iter().map(|a| a.findings.len()).sum();
    assert!(expected > 0, "the hostile exchange has findings");
    let server = Server::start(&db);

    b.goto(&format!("{}/findings", server.base));
    let before = count(&b, "table.findings tbody tr");
    b.exec("window.__sameDocument = 42; return true;", json!([]));
    // live.js shows its status line once the first update arrived.
    assert!(
        b.wait_until(Duration::from_secs(5), |b| {
            count(b, "[data-live-status]:not([hidden])") == 1
        }),
        "live.js connected"
    );

    // Another writer (this process, its own connection) appends a run.
    let store = Store::open(&db).expect("store");
    let source = RunSource::Files { files: names };
    let run = store.begin_run(&source).expect("run");
    let writer = store.writer(run, &source).expect("writer");
    for a in items {
        writer.write(a).expect("write");
    }
    writer.finish(&summary).expect("finish");

    let arrived = b.wait_until(Duration::from_secs(2), |b| {
        count(b, "table.findings tbody tr") >= before + expected
    });
    assert!(
        arrived,
        "{} rows, expected {} within 2 s of the commit",
        count(&b, "table.findings tbody tr"),
        before + expected
    );
    assert_eq!(
        b.exec("return window.__sameDocument;", json!([])),
        42,
        "no reload"
    );
    let text = b.text(&b.find("table.findings tbody"));
    assert!(text.contains("evil.test"), "the new rows: {text}");
    assert!(
        text.contains("<script>") || text.contains("<img"),
        "captured markup shown as text: {text}"
    );
    assert_nothing_injected(&b, "/findings after live rows");

    // The overview's counters follow the database as well.
    b.goto(&format!("{}/", server.base));
    let findings_cell = format!("[data-counter=\"run-{run}-findings\"]");
    let shown = b.text(&b.find(&findings_cell));
    assert_eq!(shown, expected.to_string());
}

/// The real pages in headless Chromium with JavaScript on, over a capture full of markup:
/// every page renders, nothing from the capture becomes an element or runs, and the
/// hostile text is shown as text.
#[test]
fn browser_runs_no_captured_markup_on_any_page() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let pcap = dir.path().join("hostile.pcap");
    hostile_capture(&pcap);
    let server = Server::start(&analyze_into(dir.path(), &pcap));
    b.goto(&format!("{}/findings", server.base));
    let exchange = b.exec(
        "var a = document.querySelector('a[href^=\"/exchanges/\"]'); return a && a.getAttribute('href');",
        json!([]),
    );
    let exchange = exchange
        .as_str()
        .expect("the findings page links an exchange")
        .to_string();
    for page in ["/", "/findings", "/endpoints", "/rules", exchange.as_str()] {
        b.goto(&format!("{}{page}", server.base));
        let body = b.text(&b.find("main"));
        assert!(!body.is_empty(), "{page} rendered nothing");
        // Let live.js connect and apply a first update.
        std::thread::sleep(Duration::from_millis(300));
        assert_nothing_injected(&b, page);
    }
    let body = b.text(&b.find("main"));
    assert!(
        body.contains("alert(1)"),
        "the hostile target is shown as text"
    );
    assert!(body.contains("onerror=window.__pwned=1"), "as text: {body}");
}

// ---------------------------------------------------------------- a writer in another process

/// A capture of `conversations` connections with four exchanges each (creations without
/// Location, JSON reads, a 404 and a 500), spread over a few seconds of capture time.
fn busy_capture(path: &Path, conversations: u32) {
    let mut lists = Vec::new();
    for c in 0..conversations {
        let client = format!("10.0.{}.{}:{}", c / 250, 1 + c % 250, 20_000 + c % 40_000);
        let mut conv = Conversation::new(
            client.parse().expect("address"),
            "198.51.100.7:8080".parse().expect("address"),
        )
        .starting_at(wirelint::time::Timestamp(
            wirelint::synth::DEFAULT_START.0 + i64::from(c) * 2_000_000,
        ));
        conv.handshake();
        for k in 0..4 {
            let id = c * 4 + k;
            let (req, resp) = match k {
                0 => (
                    "POST /items HTTP/1.1\r\nHost: busy.test\r\nContent-Length: 2\r\n\r\n{}".to_string(),
                    "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_string(),
                ),
                1 => (
                    format!("GET /items/{id} HTTP/1.1\r\nHost: busy.test\r\n\r\n"),
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"ok\":1}\n".to_string(),
                ),
                2 => (
                    format!("GET /missing/{id} HTTP/1.1\r\nHost: busy.test\r\n\r\n"),
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
                ),
                _ => (
                    format!("DELETE /items/{id} HTTP/1.1\r\nHost: busy.test\r\n\r\n"),
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\noops\n".to_string(),
                ),
            };
            conv.client_sends(req.as_bytes())
                .server_sends(resp.as_bytes());
        }
        conv.fin();
        lists.push(conv.into_packets());
    }
    let mut w = PcapWriter::new(wirelint::synth::linktype::ETHERNET, TsPrecision::Micro);
    w.packets(&wirelint::synth::merge(lists));
    std::fs::write(path, w.finish()).expect("writing the capture");
}

/// What the APIs said at one moment, to check that nothing goes backwards.
#[derive(Default)]
struct Seen {
    runs: usize,
    findings: i64,
    exchanges: std::collections::BTreeMap<i64, i64>,
    newest_finding: i64,
}

/// The dashboard reads a database that other wirelint processes (`analyze --db`, one after
/// another) are writing: every page and API answers 200 every time (no SQLITE_BUSY, no
/// half-written batch), and counters never go backwards.
#[test]
fn every_api_reads_while_another_process_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pcap = dir.path().join("busy.pcap");
    busy_capture(&pcap, 1500);
    let db = dir.path().join("busy.db");
    // A first run, so that the reader has a schema to open.
    analyze_into_db(dir.path(), &pcap, &db);
    let st = state(&db);

    const RUNS: usize = 4;
    let writer_db = db.clone();
    let writer_pcap = pcap.clone();
    let writer_dir = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        for _ in 0..RUNS {
            let mut child = Command::new(env!("CARGO_BIN_EXE_wirelint"))
                .args([
                    "analyze",
                    "--quiet",
                    "--fail-on",
                    "never",
                    "--format",
                    "jsonl",
                    "--db",
                ])
                .arg(&writer_db)
                .arg(&writer_pcap)
                .current_dir(&writer_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("analyze starts");
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            let status = loop {
                if let Some(s) = child.try_wait().expect("waiting") {
                    break s;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("analyze --db did not finish within 120 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            assert!(status.success(), "analyze --db failed: {err}");
        }
    });

    let mut seen = Seen::default();
    let mut polls = 0;
    let mut during = 0;
    loop {
        let done = writer.is_finished();
        let overview = ok(&st, "/api/overview?run=all").json();
        let runs = overview["runs"].as_array().expect("runs");
        assert!(runs.len() >= seen.runs, "runs went backwards");
        seen.runs = runs.len();
        let sev = &overview["severity"];
        let total: i64 = ["error", "warning", "info"]
            .iter()
            .map(|k| sev[k].as_i64().expect("count"))
            .sum();
        assert!(
            total >= seen.findings,
            "findings went backwards: {total} < {}",
            seen.findings
        );
        seen.findings = total;
        for r in runs {
            let (id, n) = (
                r["id"].as_i64().expect("id"),
                r["exchanges"].as_i64().expect("n"),
            );
            let before = seen.exchanges.insert(id, n).unwrap_or(0);
            assert!(n >= before, "run {id}: exchanges went backwards");
        }
        let findings = ok(&st, "/api/findings?limit=50").json();
        let newest = findings["findings"][0]["id"].as_i64().unwrap_or(0);
        assert!(
            newest >= seen.newest_finding,
            "newest finding went backwards"
        );
        seen.newest_finding = newest;
        if let Some(x) = findings["findings"][0]["exchange"].as_i64() {
            ok(&st, &format!("/api/exchanges/{x}"));
        }
        ok(&st, "/api/findings?severity=warning&limit=20");
        ok(&st, "/api/endpoints");
        ok(&st, "/api/rules");
        ok(&st, "/");
        ok(&st, "/findings?rule=created-without-location");
        ok(&st, "/endpoints");
        polls += 1;
        if !done {
            during += 1;
        } else {
            break;
        }
    }
    writer.join().expect("the writer thread");
    assert!(during >= 5, "only {during} polls overlapped the writers");
    assert_eq!(seen.runs, RUNS + 1, "after {polls} polls");
    let api = ok(&st, "/api/overview").json();
    let runs = api["runs"].as_array().expect("runs");
    assert!(runs.iter().all(|r| r["exchanges"] == runs[0]["exchanges"]));
}

#[test]
fn endpoints_page_and_api_roll_up_every_exchange() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let api = ok(&st, "/api/endpoints").json();
    let rows = api["endpoints"].as_array().expect("endpoints");
    assert!(rows.len() > 5);
    let overview = ok(&st, "/api/overview").json();
    let run = &overview["runs"][0];
    assert_eq!(api["run"], run["id"], "the newest run by default");
    let exchanges: i64 = rows.iter().map(|e| e["exchanges"].as_i64().unwrap()).sum();
    assert_eq!(exchanges, run["exchanges"].as_i64().unwrap());
    let findings: i64 = rows.iter().map(|e| e["findings"].as_i64().unwrap()).sum();
    assert_eq!(findings, run["findings"].as_i64().unwrap());
    let counts: Vec<i64> = rows
        .iter()
        .map(|e| e["exchanges"].as_i64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most exchanges first"
    );
    for e in rows {
        let mix: i64 = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"]
            .iter()
            .map(|k| e["status"][k].as_i64().unwrap())
            .sum();
        assert_eq!(mix, e["exchanges"].as_i64().unwrap(), "{e}");
        if let (Some(p50), Some(p95)) = (e["p50_ns"].as_i64(), e["p95_ns"].as_i64()) {
            assert!(0 <= p50 && p50 <= p95, "{e}");
        }
    }
    let books = rows
        .iter()
        .find(|e| e["method"] == "POST" && e["path_template"] == "/v1/books")
        .expect("POST /v1/books");
    assert!(books["status"]["2xx"].as_i64().unwrap() >= 1);

    let page = ok(&st, "/endpoints");
    assert!(page.body.contains("/v1/books/{id}"));
    assert!(page.body.contains("<svg class=\"mix\""));
    assert!(
        count_links(&page.body).iter().any(|(href, _)| href
            == "/findings?run=1&host=%22api.bookshelf.test%22&method=%22POST%22&path=%22%2Fv1%2Fbooks%22"),
        "each endpoint links its findings (exact values)"
    );
    let other = ok(&st, "/api/endpoints?host=nobody.test").json();
    assert_eq!(other["endpoints"].as_array().unwrap().len(), 0);
    let one = ok(&st, "/api/endpoints?host=api.bookshelf.test&limit=2").json();
    assert_eq!(one["endpoints"].as_array().unwrap().len(), 2);
    assert_eq!(get(&st, "/endpoints?run=999").status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&st, "/api/endpoints?run=x").status,
        StatusCode::BAD_REQUEST
    );
}

/// The first event of `/api/events?QUERY`, parsed (`event:` name and JSON `data:`).
fn first_event(state: &AppState, uri: &str, last_event_id: Option<&str>) -> (String, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut req = Request::get(uri);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = router(state.clone())
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("the router answers");
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut body = res.into_body();
        let mut text = String::new();
        let frame = tokio::time::timeout(Duration::from_secs(5), async {
            while !text.contains("\n\n") {
                let Some(frame) = body.frame().await else {
                    break;
                };
                if let Some(d) = frame.expect("frame").data_ref() {
                    text.push_str(&String::from_utf8_lossy(d));
                }
            }
        });
        frame.await.expect("an event within 5 s");
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("event: ").or(l.strip_prefix("event:")))
            .unwrap_or("")
            .trim()
            .to_string();
        let data: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
            .collect();
        (
            name,
            serde_json::from_str(&data).unwrap_or(Value::String(data)),
        )
    })
}

#[test]
fn events_stream_counters_and_new_findings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let all = ok(&st, "/api/findings?limit=1000").json();
    let total = all["findings"].as_array().unwrap().len();
    let newest = all["findings"][0]["id"].as_i64().unwrap();

    let (name, u) = first_event(&st, "/api/events?after=0", None);
    assert_eq!(name, "update");
    let sent = u["findings"].as_array().expect("findings");
    assert_eq!(sent.len(), total.min(50), "at most 50 per event");
    assert_eq!(sent[0]["id"].as_i64(), Some(newest), "newest first");
    assert_eq!(u["last"].as_i64(), Some(newest));
    assert_eq!(u["skipped"].as_i64(), Some((total as i64 - 50).max(0)));
    assert_eq!(u["runs"][0]["findings"].as_i64(), Some(total as i64));
    assert!(u["runs"][0]["packets"].as_i64().unwrap() > 0);
    assert!(u["runs"][0].get("kernel_drops").is_some());

    // Filters apply; Last-Event-ID (a reconnecting browser) wins over `after`.
    let (_, u) = first_event(&st, "/api/events?after=0&rule=no-content-with-body", None);
    let sent = u["findings"].as_array().unwrap();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|f| f["rule"] == "no-content-with-body"));
    let (_, u) = first_event(&st, "/api/events?after=0", Some(&(newest - 2).to_string()));
    assert_eq!(u["findings"].as_array().unwrap().len(), 2);
    // Without a starting point it starts from now: counters, no backlog.
    let (_, u) = first_event(&st, "/api/events", None);
    assert_eq!(u["findings"].as_array().unwrap().len(), 0);
    assert_eq!(u["last"].as_i64(), Some(newest));

    assert_eq!(
        get(&st, "/api/events?after=x").status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn the_overview_lists_the_newest_runs_and_counts_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let store = Store::open(&db).expect("store");
    let source = RunSource::Files {
        files: vec!["more.pcap".into()],
    };
    let mut newest = 0;
    for _ in 0..60 {
        newest = store.begin_run(&source).expect("run");
    }
    let st = state(&db);
    // By default the newest run alone.
    let api = ok(&st, "/api/overview").json();
    assert_eq!(api["run"].as_i64(), Some(newest));
    assert_eq!(api["runs"].as_array().map(Vec::len), Some(1));
    let api = ok(&st, "/api/overview?run=all").json();
    let runs = api["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 50);
    assert_eq!(runs[0]["id"].as_i64(), Some(newest));
    assert_eq!(api["older_runs"].as_i64(), Some(11));
    // The first run (the demo's) is still one link away, charts included.
    let first = ok(&st, "/api/overview?run=1").json();
    assert_eq!(first["runs"].as_array().unwrap().len(), 1);
    assert!(
        first["status_chart"]["bars"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    );
    assert!(ok(&st, "/?run=all").body.contains("11 older runs"));
    let endpoints = ok(&st, "/api/endpoints?run=1").json();
    assert!(!endpoints["endpoints"].as_array().unwrap().is_empty());
    assert_eq!(get(&st, "/?run=999").status, StatusCode::NOT_FOUND);
}

/// Each finding carries the span it is about (issue 11, item 3): stored, served by the API,
/// marked on the exchange page where the finding links to it and back.
#[test]
fn findings_carry_their_span_and_the_exchange_page_marks_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(&demo_db(dir.path()));
    let first = |rule: &str| {
        ok(&st, &format!("/api/findings?rule=%22{rule}%22")).json()["findings"][0].clone()
    };
    // A header rule: the header's line.
    let f = first("server-version-disclosure");
    assert_eq!(f["span"]["side"], "response", "{f}");
    assert_eq!(f["span"]["part"], "header");
    assert_eq!(f["span"]["name"], "Server");
    let index = f["span"]["index"].as_u64().expect("an index");
    let (id, fid) = (f["exchange"].as_i64().unwrap(), f["id"].as_i64().unwrap());
    let page = ok(&st, &format!("/exchanges/{id}")).body;
    let anchor = format!("response-{}", index + 1);
    assert!(
        page.contains(&format!(
            "<span id=\"{anchor}\" class=\"line marked\">Server: "
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"#finding-{fid}\"")),
        "line → finding"
    );
    assert!(
        page.contains(&format!("href=\"#{anchor}\"")),
        "finding → line"
    );
    // A missing field: the start line of the message that lacks it.
    let f = first("created-without-location");
    assert_eq!(f["span"]["part"], "start_line", "{f}");
    let page = ok(&st, &format!("/exchanges/{}", f["exchange"])).body;
    assert!(
        page.contains(
            "<span id=\"response-start\" class=\"line marked\">HTTP/1.1 201 Created</span>"
        ),
        "{page}"
    );
    assert!(page.contains("href=\"#response-start\""));
    // A body rule: the body.
    let f = first("invalid-json-body");
    assert_eq!(f["span"]["part"], "body", "{f}");
    assert_eq!(f["span"]["side"], "request");
    let page = ok(&st, &format!("/exchanges/{}", f["exchange"])).body;
    assert!(page.contains("id=\"request-body\""), "{page}");
    assert!(page.contains("href=\"#request-body\""));
    // The JSON output carries the same span.
    let out = wirelint(
        &[
            "analyze",
            "--no-db",
            "--format",
            "jsonl",
            "--fail-on",
            "never",
            support::repo()
                .join("captures/demo-api.pcap")
                .to_str()
                .unwrap(),
        ],
        dir.path(),
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["rule"] == "server-version-disclosure")
        .expect("the finding in JSON");
    assert_eq!(
        line["span"],
        json!({"side": "response", "part": "header", "name": "Server", "index": index})
    );
}

#[test]
fn interrupted_runs_say_so_in_the_pickers_and_on_their_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    let store = Store::open(&db).expect("store");
    let source = RunSource::Files {
        files: vec!["stopped.pcap".into()],
    };
    let run = store.begin_run(&source).expect("run");
    let writer = store.writer(run, &source).expect("writer");
    writer.interrupted("SIGINT").expect("interrupted");
    writer.finish(&RunSummary::default()).expect("finish");
    let st = state(&db);
    // The run's own page and its API.
    let page = ok(&st, &format!("/?run={run}")).body;
    assert!(page.contains(">interrupted</span>"), "{page}");
    assert!(page.contains("interrupted</span> <span class=\"meta\">(SIGINT)</span>"));
    let api = ok(&st, &format!("/api/overview?run={run}")).json();
    assert_eq!(api["runs"][0]["state"], "interrupted");
    assert_eq!(api["runs"][0]["interrupted"], "SIGINT");
    // The demo's run read all its input.
    let first = ok(&st, "/api/overview?run=1").json();
    assert_eq!(first["runs"][0]["state"], "finished");
    assert!(ok(&st, "/?run=1").body.contains(">finished</span>"));
    // Every run picker names it.
    for page in ["/findings", "/issues", "/endpoints"] {
        let html = ok(&st, page).body;
        let option = html
            .split("<option")
            .find(|o| o.contains(&format!("value=\"{run}\"")))
            .unwrap_or_else(|| panic!("{page}: no option for run {run}"));
        assert!(option.contains("· interrupted"), "{page}: {option}");
        let demo = html
            .split("<option")
            .find(|o| o.contains("value=\"1\""))
            .unwrap_or_else(|| panic!("{page}: no option for run 1"));
        assert!(!demo.contains("interrupted"), "{page}: {demo}");
    }
    // The live stream says it too.
    let (_, event) = first_event(&st, &format!("/api/events?run={run}"), None);
    assert_eq!(event["runs"][0]["state"], "interrupted");
}

/// Analyzes a TLS capture of `captures/tls/` with its key log into `db`.
fn analyze_tls_into(dir: &Path, name: &str, db: &Path) {
    let tls = support::repo().join("captures/tls");
    let out = wirelint(
        &[
            "analyze",
            "--quiet",
            "--fail-on",
            "never",
            "--db",
            db.to_str().expect("utf-8 path"),
            "--tls-keylog",
            tls.join(format!("{name}.keys"))
                .to_str()
                .expect("utf-8 path"),
            tls.join(format!("{name}.pcap"))
                .to_str()
                .expect("utf-8 path"),
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn findings_filter_by_http_version_and_tls_and_the_exchange_page_shows_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    analyze_tls_into(dir.path(), "tls13-h2", &db);
    analyze_tls_into(dir.path(), "tls12-http1", &db);
    let st = state(&db);
    let all = ok(&st, "/api/findings?limit=1000").json();
    let every = all["findings"].as_array().expect("findings").clone();
    let matching = |pred: &dyn Fn(&Value) -> bool| -> Vec<i64> {
        every
            .iter()
            .filter(|f| pred(f))
            .filter_map(|f| f["id"].as_i64())
            .collect()
    };
    let ids = |uri: &str| -> (Vec<i64>, i64) {
        let got = ok(&st, uri).json();
        let ids = got["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["id"].as_i64())
            .collect();
        (ids, got["total"]["n"].as_i64().expect("total"))
    };
    type Pred = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(&str, Pred)> = vec![
        ("tls=yes", Box::new(|f: &Value| f["tls"].is_string())),
        (
            "tls=no",
            Box::new(|f: &Value| f["tls"].is_null() && f["exchange"].is_i64()),
        ),
        ("tls=TLS%201.3", Box::new(|f: &Value| f["tls"] == "TLS 1.3")),
        ("tls=1.2", Box::new(|f: &Value| f["tls"] == "TLS 1.2")),
        (
            "version=HTTP/2",
            Box::new(|f: &Value| f["version"] == "HTTP/2"),
        ),
        (
            "version=1.1",
            Box::new(|f: &Value| f["version"] == "HTTP/1.1"),
        ),
        (
            "version=HTTP/1.1&tls=yes",
            Box::new(|f: &Value| f["version"] == "HTTP/1.1" && f["tls"].is_string()),
        ),
        (
            "version=HTTP/1.0",
            Box::new(|f: &Value| f["version"] == "HTTP/1.0"),
        ),
    ];
    for (q, pred) in &cases {
        let want = matching(pred.as_ref());
        let (got, total) = ids(&format!("/api/findings?limit=1000&{q}"));
        assert_eq!(got, want, "{q}");
        assert_eq!(total, want.len() as i64, "{q}");
        // The page lists the same and keeps the filter in its form and sort links.
        let page = ok(&st, &format!("/findings?limit=1000&{q}")).body;
        assert_eq!(page.matches("<tr data-id=").count(), want.len(), "{q}");
        if !want.is_empty() {
            assert!(page.contains("sort=severity"), "{q}");
        }
    }
    assert!(!matching(&|f: &Value| f["tls"] == "TLS 1.3").is_empty());
    assert!(!matching(&|f: &Value| f["tls"].is_null() && f["exchange"].is_i64()).is_empty());
    let page = ok(&st, "/findings?tls=yes&version=HTTP/2").body;
    assert!(
        page.contains("<option value=\"HTTP/2\" selected>"),
        "{page}"
    );
    assert!(page.contains("<option value=\"yes\" selected>encrypted</option>"));
    assert!(page.contains("over TLS"));
    let bad = get(&st, "/api/findings?tls=maybe");
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["param"], "tls");
    assert_eq!(
        get(&st, "/api/findings?version=HTTP/7").json()["param"],
        "version"
    );

    // The exchange page's TLS facts: an HTTP/2 exchange over TLS 1.3, and one in clear.
    let h2 = every
        .iter()
        .find(|f| f["version"] == "HTTP/2")
        .and_then(|f| f["exchange"].as_i64())
        .expect("an HTTP/2 finding");
    let html = ok(&st, &format!("/exchanges/{h2}")).body;
    let facts = html
        .split("<dl class=\"facts\"")
        .nth(1)
        .and_then(|s| s.split("</dl>").next())
        .expect("the facts block");
    for want in [
        "<dt>HTTP</dt><dd>HTTP/2</dd>",
        "<dt>TLS</dt><dd>TLS 1.3</dd>",
        "<code>TLS_AES_256_GCM_SHA384</code>",
        "<dt>ALPN</dt><dd><code>h2</code>",
        "<dt>SNI</dt><dd><code>localhost</code>",
    ] {
        assert!(facts.contains(want), "{want}: {facts}");
    }
    let api = ok(&st, &format!("/api/exchanges/{h2}")).json();
    assert_eq!(api["tls"]["protocol"], "TLS 1.3");
    assert_eq!(api["tls"]["alpn"], "h2");
    assert_eq!(api["version"], "HTTP/2");
    let clear = every
        .iter()
        .find(|f| f["tls"].is_null() && f["exchange"].is_i64())
        .and_then(|f| f["exchange"].as_i64())
        .expect("a cleartext finding");
    let html = ok(&st, &format!("/exchanges/{clear}")).body;
    assert!(html.contains("<dt>TLS</dt><dd>no <span class=\"meta\">(cleartext)</span>"));
    assert!(html.contains("<dt>HTTP</dt><dd>HTTP/1.1</dd>"));
}

#[test]
fn findings_sort_by_each_column_both_ways_across_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo_db(dir.path());
    analyze_tls_into(dir.path(), "tls13-h2", &db);
    let st = state(&db);
    let every = ok(&st, "/api/findings?limit=1000").json()["findings"]
        .as_array()
        .expect("findings")
        .clone();
    assert!(every.len() > 12, "{}", every.len());
    let rank = |s: &Value| match s.as_str() {
        Some("error") => 2,
        Some("warning") => 1,
        _ => 0,
    };
    // The expected order: SQLite's (NULL first ascending), ties by id in the same direction.
    #[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
    enum K {
        Null,
        Int(i64),
        Text(String),
    }
    let key = |f: &Value, col: &str| -> K {
        let v = match col {
            "severity" => return K::Int(rank(&f["severity"])),
            "path" => &f["path_template"],
            "time" => return K::Null,
            c => &f[c],
        };
        match v {
            Value::Null => K::Null,
            Value::Number(n) => K::Int(n.as_i64().unwrap_or_default()),
            Value::String(s) => K::Text(s.clone()),
            other => K::Text(other.to_string()),
        }
    };
    for col in ["severity", "rule", "time", "host", "path", "status"] {
        for dir_ in ["asc", "desc"] {
            let mut want: Vec<&Value> = every.iter().collect();
            want.sort_by(|a, b| {
                let o = (key(a, col), a["id"].as_i64()).cmp(&(key(b, col), b["id"].as_i64()));
                if dir_ == "asc" { o } else { o.reverse() }
            });
            let want: Vec<i64> = want.iter().filter_map(|f| f["id"].as_i64()).collect();
            // Walk the pages, 5 at a time, through the API's next links.
            let mut got = Vec::new();
            let mut uri = Some(format!("/api/findings?sort={col}&dir={dir_}&limit=5"));
            let mut total = None;
            while let Some(u) = uri {
                let page = ok(&st, &u).json();
                total = page["total"]["n"].as_i64();
                got.extend(
                    page["findings"]
                        .as_array()
                        .expect("findings")
                        .iter()
                        .filter_map(|f| f["id"].as_i64()),
                );
                uri = page["next_href"].as_str().map(str::to_string);
                assert!(got.len() <= want.len(), "{col} {dir_}: pages repeat");
            }
            assert_eq!(got, want, "{col} {dir_}");
            assert_eq!(total, Some(want.len() as i64));
        }
    }
    // With a filter the sort keeps it, and the headers link every column with aria-sort.
    let html = ok(&st, "/findings?severity=info&sort=host&dir=asc").body;
    assert!(html.contains("aria-sort=\"ascending\""), "{html}");
    assert!(
        html.contains("href=\"/findings?severity=info&#38;sort=host\""),
        "{html}"
    );
    assert!(
        html.contains("href=\"/findings?severity=info&#38;sort=status\""),
        "{html}"
    );
    assert!(html.contains("href=\"/findings?severity=info\""), "{html}");
    assert!(html.contains("by host, A to Z"));
    // A sorted page is not followed live (new findings arrive newest first).
    assert!(!html.contains("data-events="));
    let api = ok(
        &st,
        "/api/findings?severity=info&sort=host&dir=asc&limit=1000",
    )
    .json();
    let hosts: Vec<Option<&str>> = api["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            assert_eq!(f["severity"], "info");
            f["host"].as_str()
        })
        .collect();
    let mut sorted = hosts.clone();
    sorted.sort();
    assert_eq!(hosts, sorted);
    // The CSV export follows the order.
    let csv = ok(&st, "/findings.csv?sort=rule&dir=asc").body;
    let rules: Vec<String> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(3).map(|s| s.trim_matches('"').to_string()))
        .collect();
    let mut sorted = rules.clone();
    sorted.sort();
    assert_eq!(rules, sorted);
    assert_eq!(get(&st, "/api/findings?sort=size").json()["param"], "sort");
    assert_eq!(
        get(&st, "/api/findings?dir=sideways").json()["param"],
        "dir"
    );
}
