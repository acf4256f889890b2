//! Page and API handlers of the lists: overview, issues, findings (and its CSV), endpoints
//! and rules. Each page's data is one `Serialize` struct: the API returns it as JSON, the
//! page renders it through its template. Every number a page shows is a link to the list
//! it counts, written with exact values (see [`filters`](super::filters)), so that the list
//! it opens has the same total.

use askama::Template;
use axum::Json;
use axum::extract::{Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::charts::{self, Chart, Column};
pub use super::errors::PageError;
use super::exchange::{Piece, prose};
pub use super::filters::{FindingsQuery, number};
use super::filters::{PAGE_SIZE, exact, limit};
use crate::rules::Severity;
use crate::store::read::{
    EndpointRow, FindingFilter, FindingRow, FindingsPage, IssueOrder, IssueRow, RuleSplit, RunRow,
    Total,
};
use crate::store::{Reader, RunId};
use crate::time::Timestamp;

/// Latest findings on the overview.
const LATEST_FINDINGS: usize = 10;
/// Issues on the overview (the issues page lists more).
const TOP_ISSUES: usize = 10;
/// Issues on the issues page, unless `limit` says otherwise.
const ISSUES_PAGE: usize = 200;
/// Runs listed on the overview (and followed live), newest first.
pub(super) const RUNS_SHOWN: usize = 50;
/// Runs offered by the run pickers (any other can still be asked for).
const RUNS_MENU: usize = 200;
/// Rows of the endpoints page, unless `limit` says otherwise.
const ENDPOINTS_PAGE: usize = 200;
/// Rows of a CSV export at most.
const CSV_ROWS: usize = 100_000;

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

/// `/findings?…` with `run` (when scoped) and `pairs`, values written as given.
pub fn findings_href(run: Option<RunId>, pairs: &[(&str, String)]) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(r) = run {
        q.push(("run", r.to_string()));
    }
    q.extend(pairs.iter().cloned());
    if q.is_empty() {
        "/findings".into()
    } else {
        format!(
            "/findings?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    }
}

/// "1 finding", "2 findings".
pub fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A total as shown: "64", or "100000+" when counting stopped.
pub fn total_text(t: Total) -> String {
    if t.exact {
        t.n.to_string()
    } else {
        format!("{}+", t.n)
    }
}

fn time_text(ts: Option<i64>) -> String {
    ts.map(|t| {
        let s = Timestamp(t).to_rfc3339();
        s.get(..19).unwrap_or(&s).replace('T', " ")
    })
    .unwrap_or_default()
}

// ---------------------------------------------------------------- runs

/// A run as the pickers and tables show it.
#[derive(Clone, Debug, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub row: RunRow,
    /// Capture file names, or the interface.
    pub name: String,
    pub started: String,
    pub duration: Option<String>,
    /// `finished`, `interrupted` or `running or stopped` (see [`RunRow::state`]).
    pub state: &'static str,
    /// Its findings list (a count link: `row.findings` findings).
    #[serde(skip)]
    pub findings_href: String,
}

fn run_view(row: RunRow) -> RunView {
    let source: serde_json::Value = serde_json::from_str(&row.source).unwrap_or_default();
    let name = match (&source["files"], &source["interface"]) {
        (serde_json::Value::Array(files), _) => files
            .iter()
            .filter_map(|f| f.as_str())
            .map(|f| f.rsplit('/').next().unwrap_or(f).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        (_, serde_json::Value::String(i)) => format!("live on {i}"),
        _ => row.source.clone(),
    };
    let started = {
        let s = Timestamp(row.started_wall).to_rfc3339();
        s.get(..16).unwrap_or(&s).replace('T', " ")
    };
    let duration = match (row.first_ts, row.last_ts) {
        (Some(a), Some(b)) => Some(charts::duration_text(b - a)),
        _ => None,
    };
    RunView {
        findings_href: findings_href(Some(row.id), &[]),
        state: row.state(),
        name,
        started,
        duration,
        row,
    }
}

/// The runs a picker offers: the newest, plus `chosen` when older.
fn run_menu(r: &Reader, chosen: Option<RunId>) -> Result<Vec<RunView>, PageError> {
    let mut runs = r.recent_runs(RUNS_MENU)?;
    if let Some(id) = chosen
        && !runs.iter().any(|x| x.id == id)
        && let Some(row) = r.run(id)?
    {
        runs.push(row);
    }
    Ok(runs.into_iter().map(run_view).collect())
}

// ---------------------------------------------------------------- overview

#[derive(Debug, Serialize)]
pub struct SeverityCounts {
    pub error: i64,
    pub warning: i64,
    pub info: i64,
}

/// A rule's findings split by severity, each count with its list.
#[derive(Serialize)]
pub struct RuleLinks {
    #[serde(flatten)]
    pub split: RuleSplit,
    #[serde(skip)]
    pub error_href: String,
    #[serde(skip)]
    pub warning_href: String,
    #[serde(skip)]
    pub info_href: String,
    #[serde(skip)]
    pub total_href: String,
}

/// A rule × endpoint issue with its links and sparkline.
#[derive(Serialize)]
pub struct IssueView {
    #[serde(flatten)]
    pub row: IssueRow,
    /// Its findings (a count link: `row.count` findings).
    #[serde(skip)]
    pub href: String,
    #[serde(skip)]
    pub first_seen: String,
    #[serde(skip)]
    pub last_seen: String,
    /// Findings per run as bars `(x, y, height, title)` of a 100 × 20 box.
    #[serde(skip)]
    pub spark: Vec<(String, String, String, String)>,
    /// Width of one sparkline bar.
    #[serde(skip)]
    pub spark_w: String,
}

fn issue_view(row: IssueRow, run: Option<RunId>) -> IssueView {
    let href = findings_href(
        run,
        &[
            ("rule", exact(&row.rule)),
            ("host", exact(&row.host)),
            ("method", exact(&row.method)),
            ("path", exact(&row.path_template)),
        ],
    );
    let shown = &row.runs[row.runs.len().saturating_sub(20)..];
    let max = shown.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let w = 100.0 / shown.len().max(1) as f64;
    let spark = shown
        .iter()
        .enumerate()
        .map(|(i, (run, n))| {
            let h = (*n as f64 / max as f64 * 18.0).max(1.0);
            (
                format!("{:.1}", i as f64 * w),
                format!("{:.1}", 20.0 - h),
                format!("{h:.1}"),
                format!("run {run}: {n}"),
            )
        })
        .collect();
    IssueView {
        spark_w: format!("{:.1}", w * 0.8),
        href,
        first_seen: time_text(row.first_ts),
        last_seen: time_text(row.last_ts),
        spark,
        row,
    }
}

#[derive(Serialize, Template)]
#[template(path = "overview.html")]
pub struct Overview {
    /// The run the page is scoped to (`None`: every run).
    pub run: Option<RunId>,
    /// Whether `run` is the newest run, chosen because the address named none.
    pub newest: bool,
    /// Runs in the database.
    pub run_count: i64,
    pub severity: SeverityCounts,
    #[serde(skip)]
    pub severity_hrefs: [String; 3],
    pub by_rule: Vec<RuleLinks>,
    /// The worst rule × endpoint issues.
    pub issues: Vec<IssueView>,
    pub runs: Vec<RunView>,
    /// Runs not listed (older than the newest [`RUNS_SHOWN`]).
    pub older_runs: i64,
    /// One run: exchanges by status class and findings by severity over time; every run:
    /// the same per run.
    pub status_chart: Option<Chart>,
    pub findings_chart: Option<Chart>,
    /// The newest findings (newest first), which live updates extend.
    pub latest: Vec<FindingRow>,
    /// Findings about runs as a whole (floods, evictions, drops), newest first.
    pub run_findings: Vec<FindingRow>,
    /// Where live updates start (`/api/events?…`).
    pub live: String,
}

/// `?run=N` scopes a page to one run, `?run=all` to every run; without it the overview
/// shows the newest run.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    pub run: Option<String>,
}

/// Which runs a page covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Newest,
    All,
    Run(RunId),
}

impl RunQuery {
    fn scope(&self) -> Result<Scope, PageError> {
        match self.run.as_deref().map(str::trim) {
            None | Some("") => Ok(Scope::Newest),
            Some("all") => Ok(Scope::All),
            Some(_) => Ok(Scope::Run(number("run", &self.run)?.unwrap_or_default())),
        }
    }
}

/// The run of a scope (`None`: every run); an unknown run is a 404.
fn scoped_run(r: &Reader, scope: Scope) -> Result<Option<RunId>, PageError> {
    match scope {
        Scope::All => Ok(None),
        Scope::Newest => Ok(r.recent_runs(1)?.first().map(|x| x.id)),
        Scope::Run(id) => match r.run(id)? {
            Some(_) => Ok(Some(id)),
            None => Err(PageError::NotFound(format!("no run {id} in this database"))),
        },
    }
}

fn run_chart(r: &Reader, run: &RunRow) -> Result<(Option<Chart>, Option<Chart>), PageError> {
    let (Some(first), Some(last)) = (run.first_ts, run.last_ts) else {
        return Ok((None, None));
    };
    let width = charts::width_for(first, last);
    let rows = r.series(run.id, width)?;
    let id = run.id;
    let range = |from: i64, to: i64| vec![("from", from.to_string()), ("to", to.to_string())];
    let status = charts::time_columns(run, width, &rows, charts::STATUS_SERIES, |_, a, b| {
        Some(findings_href(Some(id), &range(a, b)))
    });
    let findings = charts::time_columns(run, width, &rows, charts::SEVERITY_SERIES, |s, a, b| {
        let mut q = vec![("severity", s.filter.unwrap_or_default().to_string())];
        q.extend(range(a, b));
        Some(findings_href(Some(id), &q))
    });
    let (st, sx) = charts::time_title("Exchanges by status class", run, width);
    let (ft, fx) = charts::time_title("Findings by severity", run, width);
    Ok((
        status.map(|c| charts::stacked(st, sx, "exchanges", c, charts::STATUS_SERIES, false)),
        findings.map(|c| charts::stacked(ft, fx, "findings", c, charts::SEVERITY_SERIES, true)),
    ))
}

/// The all-runs charts: one bar per run (the newest [`RUNS_SHOWN`]).
fn runs_chart(r: &Reader, runs: &[RunRow]) -> Result<(Option<Chart>, Option<Chart>), PageError> {
    let Some(oldest) = runs.last().map(|x| x.id) else {
        return Ok((None, None));
    };
    let status = r.status_by_run(oldest)?;
    let severity = r.severity_by_run(oldest)?;
    let shown = runs.len();
    let x_title = if (shown as i64) < r.run_count()? {
        format!("run (the newest {shown})")
    } else {
        "run".to_string()
    };
    let mut ids: Vec<RunId> = runs.iter().map(|x| x.id).collect();
    ids.sort_unstable();
    let status_cols: Vec<Column> = ids
        .iter()
        .map(|id| {
            let c = status
                .iter()
                .find(|(r, _)| r == id)
                .map_or([0; 6], |(_, c)| *c);
            // STATUS_SERIES order: 5xx, 4xx, 3xx, 2xx, 1xx, none.
            Column {
                label: format!("#{id}"),
                counts: vec![c[4], c[3], c[2], c[1], c[0], c[5]],
                hrefs: vec![Some(format!("/?run={id}")); 6],
            }
        })
        .collect();
    let severity_cols: Vec<Column> = ids
        .iter()
        .map(|id| {
            let c = severity
                .iter()
                .find(|(r, _)| r == id)
                .map_or([0; 3], |(_, c)| *c);
            Column {
                label: format!("#{id}"),
                counts: vec![c[2], c[1], c[0]],
                hrefs: charts::SEVERITY_SERIES
                    .iter()
                    .map(|s| {
                        Some(findings_href(
                            Some(*id),
                            &[("severity", s.filter.unwrap_or_default().to_string())],
                        ))
                    })
                    .collect(),
            }
        })
        .collect();
    let any_time = runs.iter().any(|x| x.first_ts.is_some());
    Ok((
        any_time.then(|| {
            charts::stacked(
                "Exchanges by status class, per run".into(),
                x_title.clone(),
                "exchanges",
                status_cols,
                charts::STATUS_SERIES,
                false,
            )
        }),
        any_time.then(|| {
            charts::stacked(
                "Findings by severity, per run".into(),
                x_title,
                "findings",
                severity_cols,
                charts::SEVERITY_SERIES,
                true,
            )
        }),
    ))
}

fn overview_data(r: &Reader, scope: Scope) -> Result<Overview, PageError> {
    let run = scoped_run(r, scope)?;
    let run_count = r.run_count()?;
    let runs = match run {
        Some(id) => r.run(id)?.into_iter().collect(),
        None => r.recent_runs(RUNS_SHOWN)?,
    };
    let older_runs = match run {
        Some(_) => 0,
        None => (run_count - runs.len() as i64).max(0),
    };
    let [info, warning, error] = r.counts_by_severity(run)?;
    let (status_chart, findings_chart) = match run {
        Some(_) => match runs.first() {
            Some(row) => run_chart(r, row)?,
            None => (None, None),
        },
        None => runs_chart(r, &runs)?,
    };
    let filter = FindingFilter {
        run,
        ..FindingFilter::default()
    };
    let latest = r.findings(&filter, None, LATEST_FINDINGS)?.findings;
    let run_filter = FindingFilter {
        run,
        categories: Some(vec!["run".into()]),
        ..FindingFilter::default()
    };
    let run_findings = r.findings(&run_filter, None, LATEST_FINDINGS)?.findings;
    let after = latest.first().map_or(0, |f| f.id);
    let live = match run {
        Some(id) => format!("/api/events?after={after}&run={id}"),
        None => format!("/api/events?after={after}"),
    };
    let sev = |s: &str| findings_href(run, &[("severity", s.to_string())]);
    let by_rule = r
        .rule_splits(run)?
        .into_iter()
        .map(|split| {
            let rule = exact(&split.rule);
            let with = |s: &str| {
                findings_href(run, &[("rule", rule.clone()), ("severity", s.to_string())])
            };
            RuleLinks {
                error_href: with("error"),
                warning_href: with("warning"),
                info_href: with("info"),
                total_href: findings_href(run, &[("rule", rule.clone())]),
                split,
            }
        })
        .collect();
    Ok(Overview {
        run,
        newest: scope == Scope::Newest && run.is_some(),
        run_count,
        severity: SeverityCounts {
            error,
            warning,
            info,
        },
        severity_hrefs: [sev("error"), sev("warning"), sev("info")],
        by_rule,
        issues: r
            .issues(run, TOP_ISSUES)?
            .into_iter()
            .map(|i| issue_view(i, run))
            .collect(),
        runs: runs.into_iter().map(run_view).collect(),
        older_runs,
        status_chart,
        findings_chart,
        latest,
        run_findings,
        live,
    })
}

pub async fn overview(
    State(s): State<AppState>,
    Query(q): Query<RunQuery>,
) -> Result<Response, PageError> {
    let scope = q.scope()?;
    page(&read(&s, move |r, _| overview_data(r, scope)).await?)
}

pub async fn overview_api(
    State(s): State<AppState>,
    Query(q): Query<RunQuery>,
) -> Result<Json<Overview>, PageError> {
    let scope = q.scope()?;
    Ok(Json(read(&s, move |r, _| overview_data(r, scope)).await?))
}

// ---------------------------------------------------------------- issues

#[derive(Clone, Debug, Default, Deserialize)]
pub struct IssuesQuery {
    #[serde(default)]
    pub run: Option<String>,
    /// `severity` (default), `count`, `last` (last seen) or `rule`.
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
}

#[derive(Serialize, Template)]
#[template(path = "issues.html")]
pub struct IssuesView {
    /// `None`: every run.
    pub run: Option<RunId>,
    pub run_count: i64,
    pub runs: Vec<RunView>,
    pub issues: Vec<IssueView>,
    pub sort: String,
    /// The address of this page in each order: `(key, label, href)`.
    #[serde(skip)]
    pub orders: Vec<(&'static str, &'static str, String)>,
}

fn issues_data(r: &Reader, q: &IssuesQuery) -> Result<IssuesView, PageError> {
    // Issues are most useful across runs ("seen in runs 3, 5, 9"): every run by default.
    let scope = match q.run.as_deref().map(str::trim) {
        None | Some("") => Scope::All,
        _ => RunQuery { run: q.run.clone() }.scope()?,
    };
    let run = scoped_run(r, scope)?;
    let limit = limit(&q.limit, ISSUES_PAGE)?;
    let sort = q
        .sort
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "severity".into());
    let order = match sort.as_str() {
        "severity" => IssueOrder::Severity,
        "count" => IssueOrder::Count,
        "last" => IssueOrder::LastSeen,
        "rule" => IssueOrder::Rule,
        other => {
            return Err(PageError::bad(
                "sort",
                format!("sort={other:?} is not one of severity, count, last, rule"),
            ));
        }
    };
    let run_param = run.map_or("all".to_string(), |r| r.to_string());
    let orders = [
        ("severity", "worst first"),
        ("count", "most findings"),
        ("last", "last seen"),
        ("rule", "rule"),
    ]
    .into_iter()
    .map(|(k, label)| (k, label, format!("/issues?run={run_param}&sort={k}")))
    .collect();
    Ok(IssuesView {
        run,
        run_count: r.run_count()?,
        runs: run_menu(r, run)?,
        issues: r
            .issues_by(run, order, limit)?
            .into_iter()
            .map(|i| issue_view(i, run))
            .collect(),
        sort,
        orders,
    })
}

pub async fn issues(
    State(s): State<AppState>,
    Query(q): Query<IssuesQuery>,
) -> Result<Response, PageError> {
    page(&read(&s, move |r, _| issues_data(r, &q)).await?)
}

pub async fn issues_api(
    State(s): State<AppState>,
    Query(q): Query<IssuesQuery>,
) -> Result<Json<IssuesView>, PageError> {
    Ok(Json(read(&s, move |r, _| issues_data(r, &q)).await?))
}

// ---------------------------------------------------------------- endpoints

/// The endpoints filters; empty values mean "any" (the run: the newest).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct EndpointsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// A case-insensitive substring of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `exchanges` (default), `findings`, `p95` or `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
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
    /// The findings page of this endpoint (a count link: `row.findings` findings).
    #[serde(skip)]
    pub findings_href: String,
}

#[derive(Serialize, Template)]
#[template(path = "endpoints.html")]
pub struct EndpointsView {
    /// The run shown (`None` when the database has no run).
    pub run: Option<RunId>,
    pub host: Option<String>,
    pub sort: String,
    pub runs: Vec<RunView>,
    pub endpoints: Vec<EndpointView>,
    /// Findings on the endpoints listed.
    pub findings: i64,
    /// Whether more endpoints match than are listed.
    pub more: bool,
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
    EndpointView {
        p50: row.p50_ns.map(latency_text),
        p95: row.p95_ns.map(latency_text),
        findings_href: findings_href(
            Some(row.run),
            &[
                ("host", exact(&row.host)),
                ("method", exact(&row.method)),
                ("path", exact(&row.path_template)),
            ],
        ),
        mix,
        row,
    }
}

fn endpoints_data(r: &Reader, q: &EndpointsQuery) -> Result<EndpointsView, PageError> {
    let run = match number::<RunId>("run", &q.run)? {
        Some(id) if r.run(id)?.is_some() => Some(id),
        Some(id) => return Err(PageError::NotFound(format!("no run {id} in this database"))),
        None => r.recent_runs(1)?.first().map(|x| x.id),
    };
    let limit = limit(&q.limit, ENDPOINTS_PAGE)?;
    let sort = q.sort.clone().unwrap_or_else(|| "exchanges".into());
    let by_exchanges = sort == "exchanges";
    if !matches!(sort.as_str(), "exchanges" | "findings" | "p95" | "path") {
        return Err(PageError::bad(
            "sort",
            format!("sort={sort:?} is not one of exchanges, findings, p95, path"),
        ));
    }
    // Other orders read every endpoint of the run (a rollup: thousands at most) and sort.
    let fetch = if by_exchanges { limit + 1 } else { 10_000 };
    let mut rows = match run {
        Some(id) => r.endpoints(id, q.host.as_deref(), fetch)?,
        None => Vec::new(),
    };
    match sort.as_str() {
        "findings" => rows.sort_by_key(|e| std::cmp::Reverse(e.findings)),
        "p95" => rows.sort_by_key(|e| std::cmp::Reverse(e.p95_ns)),
        "path" => rows.sort_by(|a, b| {
            (&a.host, &a.path_template, &a.method).cmp(&(&b.host, &b.path_template, &b.method))
        }),
        _ => {}
    }
    let more = rows.len() > limit;
    rows.truncate(limit);
    let endpoints: Vec<EndpointView> = rows.into_iter().map(endpoint_view).collect();
    Ok(EndpointsView {
        run,
        host: q.host.clone(),
        sort,
        runs: run_menu(r, run)?,
        findings: endpoints.iter().map(|e| e.row.findings).sum(),
        more,
        endpoints,
    })
}

fn endpoints_query(mut q: EndpointsQuery) -> EndpointsQuery {
    for v in [&mut q.run, &mut q.host, &mut q.sort, &mut q.limit] {
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

#[derive(Serialize)]
pub struct FindingsApi {
    pub findings: Vec<FindingRow>,
    /// Findings matching the filter over every page (`exact: false`: at least `n`).
    pub total: Total,
    pub limit: usize,
    /// The cursor of the following page (pass it as `before`), when there is one.
    pub next: Option<i64>,
    /// The following page's API address.
    pub next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "findings.html")]
pub struct FindingsHtml {
    pub q: FindingsQuery,
    pub scope: String,
    /// `(severity, checked, findings of that severity under the other filters)`.
    pub severities: Vec<(&'static str, bool, String)>,
    pub runs: Vec<RunView>,
    pub page: FindingsPage,
    pub total: String,
    pub total_n: i64,
    pub next_href: Option<String>,
    pub csv_href: String,
    /// Live updates (`/api/events?…` with the same filters) on the first page only.
    pub live: Option<String>,
    /// What is wrong with the filters, shown above the form.
    pub error: Option<(String, Option<String>)>,
    /// Suggestions for the text fields: hosts of the run (or of every run), rules with
    /// findings, methods.
    pub hosts: Vec<String>,
    pub rule_ids: Vec<String>,
    pub methods: Vec<String>,
}

/// Values the form suggests (from the rollup tables).
fn suggestions(r: &Reader, q: &FindingsQuery) -> (Vec<String>, Vec<String>, Vec<String>) {
    use crate::store::read::EndpointColumn;
    let run = number::<RunId>("run", &q.run).ok().flatten();
    let values = |col| {
        let mut v = r.endpoint_values(col, "", run).unwrap_or_default();
        v.retain(|x| !x.is_empty());
        v
    };
    (
        values(EndpointColumn::Host),
        r.rule_values(false, "").unwrap_or_default(),
        values(EndpointColumn::Method),
    )
}

/// One page of findings, the filter's total and the run menu.
struct Listed {
    page: FindingsPage,
    total: Total,
    runs: Vec<RunView>,
    last_id: i64,
    /// Findings per severity under the other filters: `(severity, total)`.
    facets: Vec<(&'static str, String)>,
}

fn list(r: &Reader, q: &FindingsQuery, with_menu: bool) -> Result<Listed, PageError> {
    let filter = q.resolve(r)?;
    let before: Option<i64> = number("before", &q.before)?;
    let limit = limit(&q.limit, PAGE_SIZE)?;
    let page = r.findings_in_order(&filter, q.order()?, before, limit)?;
    let total = r.count(&filter)?;
    // Facets only where the rollups count them (run, rule, category): elsewhere each
    // would be another count through the findings.
    let cheap = filter.hosts.is_none()
        && filter.methods.is_none()
        && filter.path_templates.is_none()
        && filter.statuses.is_none()
        && filter.transports.is_none()
        && filter.time.is_none();
    let (runs, facets) = if with_menu {
        let mut facets = Vec::new();
        for sev in [Severity::Error, Severity::Warning, Severity::Info]
            .into_iter()
            .filter(|_| cheap)
        {
            let one = FindingFilter {
                severities: Some(vec![sev]),
                ..filter.clone()
            };
            facets.push((sev.as_str(), total_text(r.count(&one)?)));
        }
        (run_menu(r, filter.run)?, facets)
    } else {
        (Vec::new(), Vec::new())
    };
    let last_id = if before.is_none() && page.findings.is_empty() {
        r.last_finding_id()?
    } else {
        page.findings.first().map_or(0, |f| f.id)
    };
    Ok(Listed {
        page,
        total,
        runs,
        last_id,
        facets,
    })
}

pub async fn findings(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let q = FindingsQuery::parse(raw.as_deref())?;
    let q2 = q.clone();
    let (listed, (hosts, rule_ids, methods)) = read(&s, move |r, _| {
        let hints = suggestions(r, &q2);
        match list(r, &q2, true) {
            Ok(l) => Ok((Ok(l), hints)),
            // A wrong filter is shown in the form, with the runs still offered.
            Err(e @ PageError::BadRequest { .. }) => Ok((Err((e, run_menu(r, None)?)), hints)),
            Err(e) => Err(e),
        }
    })
    .await?;
    let mut severities: Vec<(&'static str, bool, String)> =
        [Severity::Error, Severity::Warning, Severity::Info]
            .map(|v| {
                (
                    v.as_str(),
                    q.severities().contains(&v.as_str()),
                    String::new(),
                )
            })
            .to_vec();
    if let Ok(l) = &listed {
        for (s, _, n) in severities.iter_mut() {
            if let Some((_, t)) = l.facets.iter().find(|(f, _)| f == s) {
                *n = t.clone();
            }
        }
    }
    let scope = q.describe();
    let csv_href = format!("/findings.csv?{}", q.without_cursor());
    let (listed, error, runs) = match listed {
        Ok(l) => {
            let runs = l.runs.clone();
            (Some(l), None, runs)
        }
        Err((e, runs)) => (
            None,
            Some((e.message(), e.param().map(str::to_string))),
            runs,
        ),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let (page_, total, next_href, live) = match listed {
        Some(l) => (
            FindingsPage {
                next: l.page.next,
                findings: l.page.findings,
            },
            l.total,
            l.page.next.map(|n| format!("/findings?{}", q.next(n))),
            // Live rows arrive newest first: only the default order follows them.
            (q.before.is_none() && q.order().is_ok_and(|o| o.is_default()))
                .then(|| q.live(l.last_id)),
        ),
        None => (
            FindingsPage {
                findings: Vec::new(),
                next: None,
            },
            Total { n: 0, exact: true },
            None,
            None,
        ),
    };
    let html = FindingsHtml {
        scope,
        severities,
        runs,
        page: page_,
        total: total_text(total),
        total_n: total.n,
        next_href,
        csv_href,
        live,
        error,
        hosts,
        rule_ids,
        methods,
        q,
    }
    .render()?;
    Ok((status, Html(html)).into_response())
}

pub async fn findings_api(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<FindingsApi>, PageError> {
    let q = FindingsQuery::parse(raw.as_deref())?;
    let limit = limit(&q.limit, PAGE_SIZE)?;
    let q2 = q.clone();
    let l = read(&s, move |r, _| list(r, &q2, false)).await?;
    Ok(Json(FindingsApi {
        next_href: l.page.next.map(|n| format!("/api/findings?{}", q.next(n))),
        next: l.page.next,
        total: l.total,
        limit,
        findings: l.page.findings,
    }))
}

/// One CSV field: quoted, and a leading `= + - @` (a formula to a spreadsheet; captures are
/// attacker-controlled) defused with a `'`.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    format!("\"{}\"", v.replace('"', "\"\""))
}

/// `GET /findings.csv?<filters>`: every finding the filter matches (up to 100,000), newest
/// first, as CSV.
pub async fn findings_csv(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let q = FindingsQuery::parse(raw.as_deref())?;
    let body = read(&s, move |r, _| {
        let filter = q.resolve(r)?;
        let mut out = String::from(
            "id,run,severity,rule,category,method,host,path_template,status,time,message,evidence,exchange\r\n",
        );
        let mut before = number::<i64>("before", &q.before)?;
        let order = q.order()?;
        let mut rows = 0;
        loop {
            let page = r.findings_in_order(&filter, order, before, 1000)?;
            for f in &page.findings {
                let cells = [
                    f.id.to_string(),
                    f.run.to_string(),
                    f.severity.as_str().to_string(),
                    f.rule.clone(),
                    f.category.clone(),
                    f.method.clone().unwrap_or_default(),
                    f.host.clone().unwrap_or_default(),
                    f.path_template.clone().unwrap_or_default(),
                    f.status.map(|s| s.to_string()).unwrap_or_default(),
                    f.ts.map(|t| Timestamp(t).to_rfc3339()).unwrap_or_default(),
                    f.message.clone(),
                    f.evidence.clone(),
                    f.exchange.map(|x| x.to_string()).unwrap_or_default(),
                ];
                let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
                out.push_str(&line.join(","));
                out.push_str("\r\n");
            }
            rows += page.findings.len();
            match page.next {
                Some(n) if rows < CSV_ROWS => before = Some(n),
                _ => break,
            }
        }
        Ok(out)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"wirelint-findings.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

pub(super) fn latency_text(ns: i64) -> String {
    if ns.abs() >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
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
    #[serde(skip)]
    pub hits_text: String,
    #[serde(skip)]
    pub href: String,
    /// `summary`, `why` and each reference rendered (inline code, RFC links).
    #[serde(skip)]
    pub summary_pieces: Vec<Piece>,
    #[serde(skip)]
    pub why_pieces: Vec<Piece>,
    #[serde(skip)]
    pub ref_pieces: Vec<Vec<Piece>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RulesQuery {
    /// A case-insensitive substring of the id, summary or explanation.
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    /// `yes`: only rules with findings; `no`: only rules without.
    #[serde(default)]
    pub hits: Option<String>,
}

#[derive(Serialize, Template)]
#[template(path = "rules.html")]
pub struct RulesView {
    pub rules: Vec<RuleView>,
    /// Rules in the catalogue, before filtering.
    pub catalogue: usize,
    #[serde(skip)]
    pub q: String,
    #[serde(skip)]
    pub category: String,
    #[serde(skip)]
    pub severity: String,
    #[serde(skip)]
    pub hits: String,
    #[serde(skip)]
    pub categories: Vec<String>,
}

/// A summary template with its placeholders in words: `{method} {path}` → `METHOD PATH`.
fn summary_words(t: &str) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(j) => {
                out.push_str(&rest[i + 1..i + j].replace('_', " ").to_uppercase());
                rest = &rest[i + j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn rules_data(r: &Reader, s: &AppState, q: &RulesQuery) -> Result<RulesView, PageError> {
    let counts = r.rule_splits(None)?;
    let hits = |id: &str| counts.iter().find(|c| c.rule == id).map_or(0, |c| c.total);
    let text = q.q.as_deref().unwrap_or("").trim().to_lowercase();
    let category = q.category.clone().unwrap_or_default();
    let severity = q.severity.clone().unwrap_or_default();
    let has_hits = q.hits.clone().unwrap_or_default();
    if !severity.is_empty() && Severity::parse(&severity).is_none() {
        return Err(PageError::bad(
            "severity",
            format!("severity={severity:?} is not one of error, warning, info"),
        ));
    }
    let mut categories: Vec<String> = s.rules().rules.iter().map(|x| x.category.clone()).collect();
    categories.sort();
    categories.dedup();
    let all = &s.rules().rules;
    let rules = all
        .iter()
        .map(|x| {
            let n = hits(&x.id);
            let summary = summary_words(&x.summary_text);
            RuleView {
                summary_pieces: prose(&summary),
                why_pieces: prose(&x.why),
                ref_pieces: x.refs.iter().map(|r| prose(r)).collect(),
                id: x.id.clone(),
                severity: x.severity.as_str(),
                category: x.category.clone(),
                enabled: x.enabled,
                summary,
                why: x.why.clone(),
                refs: x.refs.clone(),
                hits: n,
                hits_text: plural(n, "finding", "findings"),
                href: findings_href(None, &[("rule", exact(&x.id))]),
            }
        })
        .filter(|v| {
            (text.is_empty()
                || v.id.to_lowercase().contains(&text)
                || v.summary.to_lowercase().contains(&text)
                || v.why.to_lowercase().contains(&text))
                && (category.is_empty() || v.category == category)
                && (severity.is_empty() || v.severity == severity)
                && match has_hits.as_str() {
                    "yes" => v.hits > 0,
                    "no" => v.hits == 0,
                    _ => true,
                }
        })
        .collect();
    Ok(RulesView {
        rules,
        catalogue: all.len(),
        q: q.q.clone().unwrap_or_default(),
        category,
        severity,
        hits: has_hits,
        categories,
    })
}

pub async fn rules(
    State(s): State<AppState>,
    Query(q): Query<RulesQuery>,
) -> Result<Response, PageError> {
    page(&read(&s, move |r, s| rules_data(r, s, &q)).await?)
}

pub async fn rules_api(
    State(s): State<AppState>,
    Query(q): Query<RulesQuery>,
) -> Result<Json<RulesView>, PageError> {
    Ok(Json(read(&s, move |r, s| rules_data(r, s, &q)).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(csv_field("-1"), "\"'-1\"");
        assert_eq!(csv_field("plain"), "\"plain\"");
    }

    #[test]
    fn summaries_say_their_placeholders_in_words() {
        assert_eq!(
            summary_words("201 Created for {method} {path} has no Location"),
            "201 Created for METHOD PATH has no Location"
        );
        assert_eq!(summary_words("open { brace"), "open { brace");
    }
}
