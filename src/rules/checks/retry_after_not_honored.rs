//! `retry-after-not-honored`: a client repeated a request before the time a 429 or 503
//! asked it to wait with Retry-After (RFC 9110 §10.2.3, RFC 6585 §4). Stateful per client
//! (address and User-Agent): the back-off request and the early repeat are different
//! exchanges.
//!
//! Retry-After is either delta-seconds (`1*DIGIT`) counted from when the response head
//! arrived, or an HTTP-date converted with the response's own Date as "now" (so server
//! clock skew does not matter), or taken on the capture clock when Date is missing or
//! invalid. A later request from the same client for the same host, method and
//! request-target whose first byte was sent after the 429/503 arrived but more than
//! [`TOLERANCE_SECS`] before the deadline is reported. Requests already under way when the
//! answer arrived (pipelined or parallel) are not. One finding per back-off episode: a
//! repeat that is refused again with a new Retry-After continues the episode that already
//! fired instead of starting a new one.
//!
//! State: one entry per (client, host, method, target) that was told to wait, at most
//! [`MAX_ENTRIES`] entries overall (least recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::{Exchange, Message};
use crate::rules::syntax::date::parse_http_date_at;
use crate::rules::syntax::delta::delta_seconds;
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables, clip, secs};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// (client, host, method, target) keys remembered at once.
const MAX_ENTRIES: usize = 50_000;
/// A repeat this close to the deadline is on time (clock granularity, rounding).
const TOLERANCE_SECS: f64 = 1.0;
/// Waits beyond 2^31 s are treated as 2^31 s, as delta-seconds are (RFC 9111 §1.2.2).
const MAX_WAIT_SECS: i128 = 1 << 31;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("retry-after-not-honored"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(RetryAfter {
        keys: Keyer::default(),
        entries: tables.bounded(MAX_ENTRIES),
    })
}

struct Entry {
    /// When the 429/503 head arrived, and when the whole response had.
    head: Timestamp,
    arrived: Timestamp,
    deadline: Timestamp,
    /// `30 s`, or `30 s (until Mon, 03 Mar 2025 10:00:30 GMT)`.
    asked: String,
    status: u16,
    at: ExchangeRef,
    fired: bool,
}

struct RetryAfter {
    keys: Keyer,
    entries: Bounded<u64, Entry>,
}

/// The wait a Retry-After asks for, in nanoseconds from the response head, and how to
/// describe it; `None` when missing or invalid.
fn requested_wait(resp: &Message) -> Option<(i64, String)> {
    let value = resp.combined("retry-after")?;
    let v = value.trim_matches([' ', '\t']);
    if let Some(n) = delta_seconds(v) {
        return Some((i64::from(n) * 1_000_000_000, format!("{n} s")));
    }
    let now = jiff::Timestamp::from_nanosecond(i128::from(resp.head_ts.as_nanos())).ok()?;
    let when = parse_http_date_at(v, now).ok()?.timestamp;
    let date = resp
        .header("date")
        .and_then(|d| parse_http_date_at(d, now).ok())
        .map_or(now, |d| d.timestamp);
    let wait = when.as_nanosecond() - date.as_nanosecond();
    let wait = i64::try_from(wait.clamp(0, MAX_WAIT_SECS * 1_000_000_000)).ok()?;
    let asked = format!("{:.0} s (until {})", wait as f64 / 1e9, clip(v, 40));
    Some((wait, asked))
}

impl StatefulCheck for RetryAfter {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let Some(req) = &ex.request else { return };
        let (Some(client), Some(host)) = (self.keys.client(ex), self.keys.host(ex)) else {
            return;
        };
        let key = self.keys.key((
            client,
            host,
            req.method().unwrap_or(""),
            req.target().unwrap_or(""),
        ));
        let sent = req.first_ts;
        let mut active_fired = false;
        if let Some(e) = self.entries.get_mut(&key) {
            let early = sent >= e.arrived && sent.secs_since(e.deadline) < -TOLERANCE_SECS;
            if early && !e.fired {
                e.fired = true;
                let evidence = format!(
                    "{} s after a {} asking for {}",
                    secs(sent, e.head),
                    e.status,
                    e.asked
                );
                out.push(StatefulHit {
                    at: ExchangeRef::of(ex),
                    message: SUMMARY.render(ex, &evidence),
                    evidence,
                    severity: None,
                    side: Some(Side::Request),
                    related: vec![e.at],
                });
            }
            active_fired = e.fired && sent < e.deadline;
        }
        let Some(resp) = &ex.response else { return };
        let Some(status @ (429 | 503)) = resp.status() else {
            return;
        };
        let Some((wait, asked)) = requested_wait(resp) else {
            return;
        };
        let deadline = Timestamp(resp.head_ts.as_nanos().saturating_add(wait));
        let mut entry = Entry {
            head: resp.head_ts,
            arrived: resp.last_ts,
            deadline,
            asked,
            status,
            at: ExchangeRef::of(ex),
            fired: false,
        };
        if active_fired && let Some(old) = self.entries.peek(&key) {
            entry.fired = true;
            entry.deadline = entry.deadline.max(old.deadline);
        }
        self.entries.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::stateful_evidence;

    fn run(toml: &str) -> Vec<String> {
        stateful_evidence(CHECK, toml)
    }

    fn two(first_resp: &str, second_at: f64, second_req_extra: &str) -> String {
        format!(
            r#"
[[exchange]]
at = 0.0
request = "GET /q HTTP/1.1\nHost: h\n\n"
response = "{first_resp}"
[[exchange]]
at = {second_at:.1}
request = "GET /q HTTP/1.1\nHost: h\n{second_req_extra}\n"
response = "HTTP/1.1 200 OK\nContent-Length: 0\n\n"
"#
        )
    }

    #[test]
    fn delta_seconds_and_dates() {
        let r = "HTTP/1.1 503 Busy\\nRetry-After: 30\\nContent-Length: 0\\n\\n";
        assert_eq!(run(&two(r, 2.0, "")), ["2.0 s after a 503 asking for 30 s"]);
        assert!(run(&two(r, 29.5, "")).is_empty());
        // A date, relative to the response's Date (whose clock is 1 h off the capture's).
        let r = "HTTP/1.1 429 Slow\\nDate: Mon, 03 Mar 2025 11:00:00 GMT\\nRetry-After: Mon, 03 Mar 2025 11:01:00 GMT\\nContent-Length: 0\\n\\n";
        assert_eq!(
            run(&two(r, 10.0, "")),
            ["10.0 s after a 429 asking for 60 s (until Mon, 03 Mar 2025 11:01:00 GMT)"]
        );
        assert!(run(&two(r, 59.5, "")).is_empty());
    }

    #[test]
    fn invalid_retry_after_other_clients_and_other_codes_do_not_fire() {
        for r in [
            "HTTP/1.1 429 Slow\\nRetry-After: soon\\nContent-Length: 0\\n\\n",
            "HTTP/1.1 429 Slow\\nRetry-After: -5\\nContent-Length: 0\\n\\n",
            "HTTP/1.1 429 Slow\\nRetry-After: 5, 6\\nContent-Length: 0\\n\\n",
            "HTTP/1.1 500 Err\\nRetry-After: 30\\nContent-Length: 0\\n\\n",
        ] {
            assert!(run(&two(r, 2.0, "")).is_empty(), "{r}");
        }
        let r = "HTTP/1.1 429 Slow\\nRetry-After: 30\\nContent-Length: 0\\n\\n";
        assert!(run(&two(r, 2.0, "User-Agent: other\\n")).is_empty());
    }

    #[test]
    fn one_finding_per_episode_and_huge_values() {
        let hits = run(r#"
[[exchange]]
request = "GET /q HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 429 Slow\nRetry-After: 99999999999999999999999\nContent-Length: 0\n\n"
[[exchange]]
request = "GET /q HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 429 Slow\nRetry-After: 30\nContent-Length: 0\n\n"
[[exchange]]
request = "GET /q HTTP/1.1\nHost: h\n\n"
response = "HTTP/1.1 429 Slow\nRetry-After: 30\nContent-Length: 0\n\n"
"#);
        assert_eq!(hits, ["1.0 s after a 429 asking for 2147483648 s"]);
    }
}
