//! Live updates: `/api/events`, a server-sent event stream that polls the database
//! read-only (the writer may be another process, so there is nothing to subscribe to) and
//! pushes the runs' counters, the severity totals and the findings written since the last
//! event. `/static/live.js` applies them to the page with DOM calls and `textContent` only.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;

use super::AppState;
use super::pages::{FindingsQuery, PageError, RUNS_SHOWN, SeverityCounts, number, read};
use crate::store::read::{FindingFilter, FindingRow};
use crate::store::{Reader, RunId};

/// How often the database is polled for each open stream.
pub const POLL: Duration = Duration::from_millis(500);
/// New findings sent per event at most: the newest ones, the rest counted as skipped (a
/// page cannot usefully show a burst of thousands, and the findings page lists them all).
pub const MAX_FINDINGS_PER_EVENT: usize = 50;

/// The counters of a run as the overview shows them.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RunCounters {
    pub id: RunId,
    pub packets: i64,
    pub bytes: i64,
    pub kernel_drops: i64,
    pub internal_drops: i64,
    pub decode_errors: i64,
    pub exchanges: i64,
    pub findings: i64,
    pub finished: bool,
    /// `finished`, `interrupted` or `running or stopped` (see [`crate::store::read::RunRow::state`]).
    pub state: &'static str,
}

/// One `update` event.
#[derive(Debug, Serialize)]
pub struct Update {
    pub runs: Vec<RunCounters>,
    pub severity: SeverityCounts,
    /// Findings with an id above the last event's (or the page's), matching the stream's
    /// filter, newest first.
    pub findings: Vec<FindingRow>,
    /// Matching findings left out of this event because there were too many (about: ids
    /// are counted, not rows).
    pub skipped: i64,
    /// The id the next event continues from.
    pub last: i64,
}

/// What one stream follows.
struct Follow {
    state: AppState,
    filter: FindingFilter,
    after: i64,
    /// The counters of the previous event: an event is sent only when something changed.
    sent: Option<(Vec<RunCounters>, [i64; 3])>,
    first: bool,
}

fn poll(r: &Reader, filter: &FindingFilter, after: i64) -> Result<Update, PageError> {
    let runs = match filter.run {
        Some(id) => r.run(id)?.into_iter().collect(),
        None => r.recent_runs(RUNS_SHOWN)?,
    };
    let runs: Vec<RunCounters> = runs
        .into_iter()
        .map(|x| RunCounters {
            id: x.id,
            packets: x.packets,
            bytes: x.bytes,
            kernel_drops: x.kernel_drops,
            internal_drops: x.internal_drops,
            decode_errors: x.decode_errors,
            exchanges: x.exchanges,
            findings: x.findings,
            finished: x.finished_wall.is_some(),
            state: x.state(),
        })
        .collect();
    let [info, warning, error] = r.counts_by_severity(filter.run)?;
    let newer = FindingFilter {
        after: Some(after),
        ..filter.clone()
    };
    let findings = r.findings(&newer, None, MAX_FINDINGS_PER_EVENT)?.findings;
    let last = findings.first().map_or(after, |f| f.id).max(after);
    // Ids between `after` and the oldest one sent that were not sent: at most that many
    // matching findings were skipped.
    let skipped = match findings.last() {
        Some(oldest) if findings.len() == MAX_FINDINGS_PER_EVENT => (oldest.id - after - 1).max(0),
        _ => 0,
    };
    Ok(Update {
        runs,
        severity: SeverityCounts {
            error,
            warning,
            info,
        },
        findings,
        skipped,
        last,
    })
}

impl Follow {
    /// Waits for the next change and returns it as an event.
    async fn next(&mut self) -> Event {
        loop {
            if !std::mem::take(&mut self.first) {
                tokio::time::sleep(POLL).await;
            }
            let filter = self.filter.clone();
            let after = self.after;
            let update = read(&self.state, move |r, _| poll(r, &filter, after)).await;
            match update {
                Ok(u) => {
                    let counters = (
                        u.runs.clone(),
                        [u.severity.info, u.severity.warning, u.severity.error],
                    );
                    let changed = self.sent.as_ref() != Some(&counters);
                    if !changed && u.findings.is_empty() {
                        self.after = u.last;
                        continue;
                    }
                    self.after = u.last;
                    self.sent = Some(counters);
                    return Event::default()
                        .event("update")
                        .id(u.last.to_string())
                        .json_data(&u)
                        .unwrap_or_else(|e| Event::default().event("problem").data(e.to_string()));
                }
                // The database may be mid-migration or briefly unreadable: say so and keep
                // polling (the browser keeps the last values).
                Err(e) => {
                    let text = e.message();
                    return Event::default()
                        .event("problem")
                        .data(text.replace(['\r', '\n'], " "));
                }
            }
        }
    }
}

/// `GET /api/events?after=ID&<findings filters>`: the stream. A reconnecting browser's
/// `Last-Event-ID` wins over `after`.
pub async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let findings = q.filters.normalized();
    let filter = read(&s, move |r, _| findings.resolve(r)).await?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = match resumed {
        Some(id) => id,
        None => match number::<i64>("after", &q.after.filter(|a| !a.trim().is_empty()))? {
            Some(id) => id,
            // No starting point: from now on.
            None => read(&s, |r, _| Ok(r.last_finding_id()?)).await?,
        },
    };
    let follow = Follow {
        state: s,
        filter,
        after,
        sent: None,
        first: true,
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        let ev = f.next().await;
        Some((Ok::<_, Infallible>(ev), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The findings filters plus where to start.
#[derive(Debug, Default, serde::Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    pub after: Option<String>,
    #[serde(flatten)]
    pub filters: FindingsQuery,
}
