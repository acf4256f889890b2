//! Page and API handlers. Each page's data is one `Serialize` struct: the API returns it as
//! JSON, the page renders it through its template.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::charts::{self, Chart};
use crate::rules::Severity;
use crate::store::read::{
    EndpointRow, FindingFilter, FindingRow, FindingsPage, RollupRow, RuleCount, RunRow,
};
use crate::store::{Reader, RunId, StoreError};

/// Findings per page, unless `limit` says otherwise.
const PAGE_SIZE: usize = 100;
/// Endpoints on the overview.
const TOP_ENDPOINTS: usize = 20;
/// Latest findings on the overview.
const LATEST_FINDINGS: usize = 10;
/// Runs listed on the overview (and followed live), newest first.
pub(super) const RUNS_SHOWN: usize = 50;
/// Runs offered by the endpoints page's run menu (any other can still be asked for).
const RUNS_MENU: usize = 200;
/// Rows of the endpoints page, unless `limit` says otherwise.
const ENDPOINTS_PAGE: usize = 200;

/// Why a request failed; shown as plain text.
#[derive(Debug)]
pub enum PageError {
    BadRequest(String),
    NotFound(String),
    Store(StoreError),
    Internal(String),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(format!("rendering the page: {e}"))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            PageError::Store(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            PageError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{text}\n"),
        )
            .into_response()
    }
}

/// Runs `f` with a fresh read-only connection on the blocking pool.
pub(super) async fn read<T, F>(state: &AppState, f: F) -> Result<T, PageError>
where
    T: Send + 'static,
    F: FnOnce(&Reader, &AppState) -> Result<T, PageError> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let reader = Reader::open(state.db())?;
        f(&reader, &state)
    })
    .await
    .map_err(|e| PageError::Internal(format!("the query stopped: {e}")))?
}

fn page(t: &impl Template) -> Result<Response, PageError> {
    Ok(Html(t.render()?).into_response())
}

// ---------------------------------------------------------------- overview

#[derive(Debug, Serialize)]
pub struct SeverityCounts {
    pub error: i64,
    pub warning: i64,
    pub info: i64,
}

#[derive(Serialize, Template)]
#[template(path = "overview.html")]
pub struct Overview {
    /// The run the page is scoped to (`None`: every run).
    pub run: Option<RunId>,
    pub severity: SeverityCounts,
    pub by_rule: Vec<RuleCount>,
    pub endpoints: Vec<RollupRow>,
    pub runs: Vec<RunRow>,
    /// Runs not listed (older than the newest [`RUNS_SHOWN`]).
    pub older_runs: i64,
    /// Exchanges by status class over time, and findings by severity, for `run` or else
    /// the newest run with traffic.
    pub status_chart: Option<Chart>,
    pub findings_chart: Option<Chart>,
    /// The newest findings (newest first), which live updates extend.
    pub latest: Vec<FindingRow>,
    /// Where live updates start (`/api/events?…`).
    pub live: String,
}

/// `?run=N` scopes the overview to one run.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    pub run: Option<String>,
}

impl RunQuery {
    fn run(&self) -> Result<Option<RunId>, PageError> {
        number("run", &self.run.clone().filter(|s| !s.trim().is_empty()))
    }
}

fn overview_data(r: &Reader, run: Option<RunId>) -> Result<Overview, PageError> {
    let runs = match run {
        Some(id) => vec![
            r.run(id)?
                .ok_or_else(|| PageError::NotFound(format!("no run {id} in this database")))?,
        ],
        None => r.recent_runs(RUNS_SHOWN)?,
    };
    let older_runs = match run {
        Some(_) => 0,
        None => (r.run_count()? - runs.len() as i64).max(0),
    };
    let [info, warning, error] = r.counts_by_severity(run)?;
    let chart_run = match run {
        Some(id) => runs.iter().find(|x| x.id == id),
        None => runs.iter().find(|x| x.first_ts.is_some()),
    };
    let (status_chart, findings_chart) = match chart_run {
        Some(cr) => {
            let width = charts::width_for(cr.first_ts.unwrap_or(0), cr.last_ts.unwrap_or(0));
            let rows = r.series(cr.id, width)?;
            (
                charts::chart(cr, width, &rows, charts::STATUS_SERIES),
                charts::chart(cr, width, &rows, charts::SEVERITY_SERIES),
            )
        }
        None => (None, None),
    };
    let filter = FindingFilter {
        run,
        ..FindingFilter::default()
    };
    let latest = r.findings(&filter, None, LATEST_FINDINGS)?.findings;
    let after = latest.first().map_or(0, |f| f.id);
    let live = match run {
        Some(id) => format!("/api/events?after={after}&run={id}"),
        None => format!("/api/events?after={after}"),
    };
    Ok(Overview {
        run,
        severity: SeverityCounts {
            error,
            warning,
            info,
        },
        by_rule: r.counts_by_rule(run)?,
        endpoints: r.rollups(run, TOP_ENDPOINTS)?,
        runs,
        older_runs,
        status_chart,
        findings_chart,
        latest,
        live,
    })
}

pub async fn overview(
    State(s): State<AppState>,
    Query(q): Query<RunQuery>,
) -> Result<Response, PageError> {
    let run = q.run()?;
    page(&read(&s, move |r, _| overview_data(r, run)).await?)
}

pub async fn overview_api(
    State(s): State<AppState>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Overview>, PageError> {
    let run = q.run()?;
    Ok(Json(read(&s, move |r, _| overview_data(r, run)).await?))
}

// ---------------------------------------------------------------- endpoints

/// The endpoints filters; empty values mean "any" (the run: the newest).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct EndpointsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// One endpoint as shown: the rollup with its status mix drawn as a bar.
#[derive(Serialize)]
pub struct EndpointView {
    #[serde(flatten)]
    pub row: EndpointRow,
    pub p50: Option<String>,
    pub p95: Option<String>,
    /// The status mix as `(class, x, width)` segments of a 100-unit bar.
    #[serde(skip)]
    pub mix: Vec<(&'static str, String, String)>,
    /// The findings page of this endpoint.
    #[serde(skip)]
    pub findings_href: String,
}

#[derive(Serialize, Template)]
#[template(path = "endpoints.html")]
pub struct EndpointsView {
    /// The run shown (`None` when the database has no run).
    pub run: Option<RunId>,
    pub host: Option<String>,
    pub runs: Vec<RunId>,
    pub endpoints: Vec<EndpointView>,
}

fn endpoint_view(row: EndpointRow) -> EndpointView {
    let total = row.exchanges.max(1) as f64;
    let mut x = 0.0;
    let mut mix = Vec::new();
    for (class, n) in row.status.classes() {
        if n == 0 {
            continue;
        }
        let w = n as f64 / total * 100.0;
        mix.push((class, format!("{x:.2}"), format!("{w:.2}")));
        x += w;
    }
    let mut q = vec![("run", row.run.to_string())];
    for (k, v) in [
        ("host", &row.host),
        ("method", &row.method),
        ("path", &row.path_template),
    ] {
        if !v.is_empty() {
            q.push((k, v.clone()));
        }
    }
    EndpointView {
        p50: row.p50_ns.map(latency_text),
        p95: row.p95_ns.map(latency_text),
        findings_href: format!(
            "/findings?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        ),
        mix,
        row,
    }
}

fn endpoints_data(r: &Reader, q: &EndpointsQuery) -> Result<EndpointsView, PageError> {
    let mut runs: Vec<RunId> = r
        .recent_runs(RUNS_MENU)?
        .into_iter()
        .map(|x| x.id)
        .collect();
    let run = match number::<RunId>("run", &q.run)? {
        Some(id) if r.run(id)?.is_some() => {
            if !runs.contains(&id) {
                runs.push(id);
            }
            Some(id)
        }
        Some(id) => return Err(PageError::NotFound(format!("no run {id} in this database"))),
        None => runs.first().copied(),
    };
    let limit: usize = number("limit", &q.limit)?.unwrap_or(ENDPOINTS_PAGE);
    let endpoints = match run {
        Some(id) => r
            .endpoints(id, q.host.as_deref(), limit)?
            .into_iter()
            .map(endpoint_view)
            .collect(),
        None => Vec::new(),
    };
    Ok(EndpointsView {
        run,
        host: q.host.clone(),
        runs,
        endpoints,
    })
}

fn endpoints_query(mut q: EndpointsQuery) -> EndpointsQuery {
    for v in [&mut q.run, &mut q.host, &mut q.limit] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *v = None;
        }
    }
    q
}

pub async fn endpoints(
    State(s): State<AppState>,
    Query(q): Query<EndpointsQuery>,
) -> Result<Response, PageError> {
    let q = endpoints_query(q);
    page(&read(&s, move |r, _| endpoints_data(r, &q)).await?)
}

pub async fn endpoints_api(
    State(s): State<AppState>,
    Query(q): Query<EndpointsQuery>,
) -> Result<Json<EndpointsView>, PageError> {
    let q = endpoints_query(q);
    Ok(Json(read(&s, move |r, _| endpoints_data(r, &q)).await?))
}

// ---------------------------------------------------------------- findings

/// The findings filters as query parameters; empty values (from the form) mean "any".
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct FindingsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A path template, e.g. `/users/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Keyset cursor: findings with a smaller id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

pub(super) fn number<T: std::str::FromStr>(
    name: &str,
    v: &Option<String>,
) -> Result<Option<T>, PageError> {
    v.as_deref()
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| PageError::BadRequest(format!("{name}={s:?} is not a number")))
        })
        .transpose()
}

impl FindingsQuery {
    /// The same query with blank values dropped.
    pub(super) fn normalized(mut self) -> Self {
        for v in [
            &mut self.run,
            &mut self.rule,
            &mut self.severity,
            &mut self.category,
            &mut self.host,
            &mut self.method,
            &mut self.status,
            &mut self.path,
            &mut self.before,
            &mut self.limit,
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
        self
    }

    /// The `/api/events` address that follows this filter from finding `after` on.
    pub(super) fn live(&self, after: i64) -> String {
        let q = FindingsQuery {
            before: None,
            limit: None,
            ..self.clone()
        };
        let rest = serde_urlencoded::to_string(&q).unwrap_or_default();
        if rest.is_empty() {
            format!("/api/events?after={after}")
        } else {
            format!("/api/events?after={after}&{rest}")
        }
    }

    pub(super) fn filter(&self) -> Result<FindingFilter, PageError> {
        let severity = self
            .severity
            .as_deref()
            .map(|s| {
                Severity::parse(s).ok_or_else(|| {
                    PageError::BadRequest(format!(
                        "severity={s:?} is not one of error, warning, info"
                    ))
                })
            })
            .transpose()?;
        Ok(FindingFilter {
            run: number("run", &self.run)?,
            rule: self.rule.clone(),
            severity,
            category: self.category.clone(),
            host: self.host.clone(),
            method: self.method.clone(),
            status: number("status", &self.status)?,
            path_template: self.path.clone(),
            ..FindingFilter::default()
        })
    }

    /// The query string of the page after this one.
    fn next(&self, before: i64) -> String {
        let next = FindingsQuery {
            before: Some(before.to_string()),
            ..self.clone()
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    }
}

#[derive(Serialize)]
pub struct FindingsApi {
    pub findings: Vec<FindingRow>,
    /// The cursor of the following page (pass it as `before`), when there is one.
    pub next: Option<i64>,
    /// The following page's API address.
    pub next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "findings.html")]
pub struct FindingsHtml {
    pub q: FindingsQuery,
    pub severities: Vec<(&'static str, bool)>,
    pub page: FindingsPage,
    pub next_href: Option<String>,
    /// Live updates (`/api/events?…` with the same filters) on the first page only.
    pub live: Option<String>,
}

async fn findings_page(s: &AppState, q: FindingsQuery) -> Result<FindingsPage, PageError> {
    let filter = q.filter()?;
    let before: Option<i64> = number("before", &q.before)?;
    let limit: usize = number("limit", &q.limit)?.unwrap_or(PAGE_SIZE);
    read(s, move |r, _| Ok(r.findings(&filter, before, limit)?)).await
}

pub async fn findings(
    State(s): State<AppState>,
    Query(q): Query<FindingsQuery>,
) -> Result<Response, PageError> {
    let q = q.normalized();
    let page_ = findings_page(&s, q.clone()).await?;
    let next_href = page_.next.map(|n| format!("/findings?{}", q.next(n)));
    // The newest id shown; an empty first page follows from the newest id in the database
    // (reading it costs one index lookup), so that only findings written later arrive.
    let live = if q.before.is_none() {
        let after = match page_.findings.first() {
            Some(f) => f.id,
            None => read(&s, |r, _| Ok(r.last_finding_id()?)).await?,
        };
        Some(q.live(after))
    } else {
        None
    };
    let severities = [Severity::Error, Severity::Warning, Severity::Info]
        .map(|v| (v.as_str(), q.severity.as_deref() == Some(v.as_str())))
        .to_vec();
    page(&FindingsHtml {
        q,
        severities,
        page: page_,
        next_href,
        live,
    })
}

pub async fn findings_api(
    State(s): State<AppState>,
    Query(q): Query<FindingsQuery>,
) -> Result<Json<FindingsApi>, PageError> {
    let q = q.normalized();
    let page_ = findings_page(&s, q.clone()).await?;
    Ok(Json(FindingsApi {
        next_href: page_.next.map(|n| format!("/api/findings?{}", q.next(n))),
        next: page_.next,
        findings: page_.findings,
    }))
}

// ---------------------------------------------------------------- exchange

/// The stored `exchanges --format jsonl` object, as far as the page needs it.
#[derive(Default, Deserialize)]
#[serde(default)]
struct ExchangeJson {
    capture: String,
    client: String,
    server: String,
    index: u64,
    request: Option<MessageJson>,
    response: Option<MessageJson>,
    anomalies: Vec<serde_json::Value>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct MessageJson {
    method: Option<String>,
    target: Option<String>,
    version: Option<String>,
    status: Option<u16>,
    reason: Option<String>,
    frame: Option<i64>,
    headers: Vec<(String, String)>,
    body_bytes: u64,
}

/// One side of an exchange as on the wire.
#[derive(Serialize)]
pub struct MessageView {
    pub title: &'static str,
    pub present: bool,
    pub frame: Option<i64>,
    pub start_line: String,
    /// In wire order, redacted.
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
    pub preview: Option<String>,
    pub preview_cut: bool,
}

#[derive(Serialize)]
pub struct FindingView {
    #[serde(flatten)]
    pub row: FindingRow,
    /// The rule's explanation and references (absent for a rule this build does not know).
    pub why: Option<String>,
    pub refs: Vec<String>,
}

#[derive(Serialize, Template)]
#[template(path = "exchange.html")]
pub struct ExchangeView {
    pub id: i64,
    pub run: i64,
    pub capture: String,
    pub client: String,
    pub server: String,
    pub index: u64,
    pub latency_ns: Option<i64>,
    pub latency: Option<String>,
    /// Wireshark display filter selecting the exchange's head frame in `capture` (capture
    /// files only: live frame numbers count what wirelint read, not a file's frames).
    pub wireshark: Option<String>,
    /// Wireshark display filter selecting the whole connection, in any capture of it.
    pub conversation: Option<String>,
    pub anomalies: Vec<String>,
    pub messages: Vec<MessageView>,
    pub findings: Vec<FindingView>,
}

fn message_view(
    title: &'static str,
    m: Option<MessageJson>,
    preview: Option<String>,
    cut: bool,
) -> MessageView {
    let present = m.is_some();
    let m = m.unwrap_or_default();
    let part = |v: Option<String>| v.unwrap_or_default();
    // HTTP/2 has no start line: its pseudo-header fields, kept first in the header list,
    // say the same, so the message is shown as the header list it was.
    let http2 = m.version.as_deref() == Some("HTTP/2");
    let start_line = match m.status {
        _ if http2 => String::new(),
        Some(status) => format!(
            "{} {status} {}",
            part(m.version),
            m.reason.unwrap_or_default()
        ),
        None => format!("{} {} {}", part(m.method), part(m.target), part(m.version)),
    };
    MessageView {
        title,
        present,
        frame: m.frame,
        start_line: start_line.trim_end().to_string(),
        headers: m.headers,
        body_bytes: m.body_bytes,
        preview: preview.filter(|p| !p.is_empty()),
        preview_cut: cut,
    }
}

pub(super) fn latency_text(ns: i64) -> String {
    if ns.abs() >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

/// `ip.addr == A && ip.addr == B && tcp.port == P && tcp.port == Q` for a connection's two
/// endpoints ("ip:port", IPv6 as "[addr]:port").
fn conversation_filter(client: &str, server: &str) -> Option<String> {
    let c: std::net::SocketAddr = client.parse().ok()?;
    let s: std::net::SocketAddr = server.parse().ok()?;
    let field = |a: &std::net::SocketAddr| if a.is_ipv4() { "ip.addr" } else { "ipv6.addr" };
    Some(format!(
        "{} == {} && {} == {} && tcp.port == {} && tcp.port == {}",
        field(&c),
        c.ip(),
        field(&s),
        s.ip(),
        c.port(),
        s.port()
    ))
}

fn exchange_data(r: &Reader, s: &AppState, id: i64) -> Result<ExchangeView, PageError> {
    let ex = r
        .exchange(id)?
        .ok_or_else(|| PageError::NotFound(format!("no exchange {id} in this database")))?;
    let json: ExchangeJson = serde_json::from_str(&ex.json)
        .map_err(|e| PageError::Internal(format!("exchange {id}: stored JSON: {e}")))?;
    let filter = FindingFilter {
        exchange: Some(id),
        ..FindingFilter::default()
    };
    let mut rows = r.findings(&filter, None, 1000)?.findings;
    rows.reverse();
    let findings = rows
        .into_iter()
        .map(|row| {
            let rule = s.rules().rules.iter().find(|x| x.id == row.rule);
            FindingView {
                why: rule.map(|x| x.why.clone()),
                refs: rule.map(|x| x.refs.clone()).unwrap_or_default(),
                row,
            }
        })
        .collect();
    let frame = ex.req_frame.or(ex.resp_frame).or(ex.first_frame);
    let wireshark = frame
        .filter(|_| !json.capture.is_empty())
        .map(|n| format!("frame.number == {n}"));
    let conversation = conversation_filter(&json.client, &json.server);
    Ok(ExchangeView {
        id: ex.id,
        run: ex.run,
        capture: json.capture,
        client: json.client,
        server: json.server,
        index: json.index,
        latency_ns: ex.latency_ns,
        latency: ex.latency_ns.map(latency_text),
        wireshark,
        conversation,
        anomalies: json
            .anomalies
            .iter()
            .map(|a| match a {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        messages: vec![
            message_view("Request", json.request, ex.req_preview, ex.req_preview_cut),
            message_view(
                "Response",
                json.response,
                ex.resp_preview,
                ex.resp_preview_cut,
            ),
        ],
        findings,
    })
}

pub async fn exchange(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    page(&read(&s, move |r, s| exchange_data(r, s, id)).await?)
}

pub async fn exchange_api(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ExchangeView>, PageError> {
    Ok(Json(read(&s, move |r, s| exchange_data(r, s, id)).await?))
}

// ---------------------------------------------------------------- rules

#[derive(Serialize)]
pub struct RuleView {
    pub id: String,
    pub severity: &'static str,
    pub category: String,
    pub enabled: bool,
    pub summary: String,
    pub why: String,
    pub refs: Vec<String>,
    /// Findings of this rule over every run.
    pub hits: i64,
}

#[derive(Serialize, Template)]
#[template(path = "rules.html")]
pub struct RulesView {
    pub rules: Vec<RuleView>,
}

fn rules_data(r: &Reader, s: &AppState) -> Result<RulesView, PageError> {
    let counts = r.counts_by_rule(None)?;
    let hits = |id: &str| counts.iter().find(|c| c.rule == id).map_or(0, |c| c.count);
    Ok(RulesView {
        rules: s
            .rules()
            .rules
            .iter()
            .map(|x| RuleView {
                id: x.id.clone(),
                severity: x.severity.as_str(),
                category: x.category.clone(),
                enabled: x.enabled,
                summary: x.summary_text.clone(),
                why: x.why.clone(),
                refs: x.refs.clone(),
                hits: hits(&x.id),
            })
            .collect(),
    })
}

pub async fn rules(State(s): State<AppState>) -> Result<Response, PageError> {
    page(&read(&s, rules_data).await?)
}

pub async fn rules_api(State(s): State<AppState>) -> Result<Json<RulesView>, PageError> {
    Ok(Json(read(&s, rules_data).await?))
}

#[cfg(test)]
mod tests {
    use super::conversation_filter;

    #[test]
    fn connection_filters_name_both_endpoints() {
        assert_eq!(
            conversation_filter("192.0.2.1:40000", "198.51.100.2:80").as_deref(),
            Some(
                "ip.addr == 192.0.2.1 && ip.addr == 198.51.100.2 && tcp.port == 40000 && tcp.port == 80"
            )
        );
        assert_eq!(
            conversation_filter("[2001:db8::1]:5000", "[2001:db8::2]:443").as_deref(),
            Some(
                "ipv6.addr == 2001:db8::1 && ipv6.addr == 2001:db8::2 && tcp.port == 5000 && tcp.port == 443"
            )
        );
        assert_eq!(conversation_filter("not an address", "x"), None);
    }
}
