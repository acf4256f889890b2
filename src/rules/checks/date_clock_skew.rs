//! `date-clock-skew`: a server whose Date differs from the capture clock by more than a
//! tolerance, after subtracting Age (RFC 9110 §6.6.1, RFC 9111 §4.2.3). Code, because it
//! compares an HTTP-date with the capture timestamp; stateful only to report each host once
//! per run (a skewed clock affects every response), with a bounded set of hosts reported.
//!
//! The rule's scope is `response`, so the check applies the rule's `[when]`
//! (`response.present = ["Date"]`) itself: stateful checks see every exchange.

use std::sync::LazyLock;

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::{Exchange, Message};
use crate::rules::syntax::date::parse_http_date_at;
use crate::rules::syntax::delta::{delta_seconds, human};
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables};
use crate::rules::{ExchangeRef, Side};

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Allowed difference between Date and the capture clock, in seconds.
const TOLERANCE_SECS: i64 = 60;
/// Hosts remembered as already reported; beyond it the oldest is forgotten (and may be
/// reported again).
const MAX_HOSTS: usize = 10_000;
/// Capture timestamps before 2000-01-01 are not trusted (synthetic input, HAR without
/// timings, a capture host with no clock).
const TRUSTED_FROM_SECS: i64 = 946_684_800;

static SUMMARY: LazySummary = LazyLock::new(|| Summary::builtin("date-clock-skew"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(DateClockSkew {
        keyer: Keyer::default(),
        reported: tables.bounded(MAX_HOSTS),
    })
}

struct DateClockSkew {
    keyer: Keyer,
    reported: Bounded<u64, ()>,
}

/// The field's value when every line carries the same one.
fn one_value<'a>(m: &'a Message, name: &'a str) -> Option<&'a str> {
    let mut values = m.header_values(name).map(str::trim);
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

/// Seconds the Date is ahead of (positive) or behind (negative) the capture clock, with the
/// Age the response spent in caches subtracted; `None` when it cannot be judged.
fn skew(resp: &Message) -> Option<(i64, u32)> {
    let head = resp.head_ts.as_nanos().div_euclid(1_000_000_000);
    if head < TRUSTED_FROM_SECS {
        return None;
    }
    let now = jiff::Timestamp::from_second(head).ok()?;
    let date = parse_http_date_at(one_value(resp, "date")?, now).ok()?;
    let age = match one_value(resp, "age") {
        None => 0,
        Some(a) => delta_seconds(a)?,
    };
    let expected = head - i64::from(age);
    Some((date.timestamp.as_second() - expected, age))
}

impl StatefulCheck for DateClockSkew {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let Some(resp) = &ex.response else { return };
        if !resp.has_header("date") {
            return;
        }
        let Some((skew, age)) = skew(resp) else {
            return;
        };
        if skew.abs() <= TOLERANCE_SECS {
            return;
        }
        let key = self.keyer.key((
            ex.request
                .as_ref()
                .and_then(|r| r.host())
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase(),
            ex.connection.server,
        ));
        if self.reported.get_mut(&key).is_some() {
            return;
        }
        self.reported.insert(key, ());
        let evidence = format!(
            "Date is {} {} the capture clock (Age {age})",
            human(skew.unsigned_abs()),
            if skew < 0 { "behind" } else { "ahead of" }
        );
        out.push(StatefulHit {
            at: ExchangeRef::of(ex),
            message: SUMMARY.render(ex, &evidence),
            evidence,
            severity: None,
            side: Some(Side::Response),
            related: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::stateful_evidence;

    fn run(toml: &str) -> Vec<String> {
        stateful_evidence(CHECK, toml)
    }

    fn one(date_and_age: &str) -> String {
        format!(
            "[[exchange]]\nrequest = \"GET / HTTP/1.1\\nHost: a\\n\\n\"\nresponse = \"HTTP/1.1 200 OK\\n{date_and_age}Content-Length: 0\\n\\n\"\n"
        )
    }

    #[test]
    fn behind_and_ahead() {
        assert_eq!(
            run(&one("Date: Mon, 03 Mar 2025 08:00:01 GMT\\n")),
            vec!["Date is 1 h 59 min 59 s behind the capture clock (Age 0)"]
        );
        assert_eq!(
            run(&one("Date: Mon, 03 Mar 2025 10:05:00 GMT\\n")),
            vec!["Date is 5 min ahead of the capture clock (Age 0)"]
        );
        assert!(run(&one("Date: Mon, 03 Mar 2025 10:01:00 GMT\\n")).is_empty());
    }

    #[test]
    fn age_is_subtracted_and_bad_age_is_not_judged() {
        assert!(run(&one("Date: Mon, 03 Mar 2025 09:50:00 GMT\\nAge: 600\\n")).is_empty());
        assert!(run(&one("Date: Mon, 03 Mar 2025 08:00:00 GMT\\nAge: 1h\\n")).is_empty());
        assert!(run(&one("Date: never\\n")).is_empty());
    }

    #[test]
    fn once_per_host() {
        let two = one("Date: Mon, 03 Mar 2025 08:00:00 GMT\\n").repeat(2);
        assert_eq!(run(&two).len(), 1);
    }
}
