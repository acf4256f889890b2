//! `last-modified-after-date`: a response whose Last-Modified is later than its own Date
//! (RFC 9110 §8.8.2.1: an origin must not send such a value). Code, because both values
//! are HTTP-dates in any of the three forms and must be compared as instants.
//!
//! Missing, repeated-with-different-values or unparseable fields are left to
//! `invalid-http-date` and `duplicate-singleton-header`.

use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
use crate::rules::syntax::date::parse_http_date_at;
use crate::rules::syntax::delta::human;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// The field's value when every line carries the same one.
fn one_value<'a>(m: &'a Message, name: &'a str) -> Option<&'a str> {
    let mut values = m.header_values(name).map(str::trim);
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(resp) = input.response() else {
        return Vec::new();
    };
    let (Some(date_raw), Some(lm_raw)) =
        (one_value(resp, "date"), one_value(resp, "last-modified"))
    else {
        return Vec::new();
    };
    let now = jiff::Timestamp::from_nanosecond(i128::from(resp.head_ts.as_nanos()))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let (Ok(date), Ok(lm)) = (
        parse_http_date_at(date_raw, now),
        parse_http_date_at(lm_raw, now),
    ) else {
        return Vec::new();
    };
    let ahead = lm.timestamp.as_second() - date.timestamp.as_second();
    if ahead <= 0 {
        return Vec::new();
    }
    vec![Hit::new(format!(
        "Last-Modified is {} after Date",
        human(ahead.unsigned_abs())
    ))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(fields: &str) -> Vec<String> {
        let resp = format!("HTTP/1.1 200 OK\n{fields}Content-Length: 0\n\n");
        evidence(
            CHECK,
            &exchange("GET / HTTP/1.1\nHost: a\n\n", &resp),
            Some(Side::Response),
        )
    }

    #[test]
    fn later_fires_same_second_does_not() {
        assert_eq!(
            ev(
                "Date: Mon, 03 Mar 2025 10:00:00 GMT\nLast-Modified: Mon, 03 Mar 2025 10:59:12 GMT\n"
            ),
            vec!["Last-Modified is 59 min 12 s after Date"]
        );
        assert!(ev("Date: Mon, 03 Mar 2025 10:00:00 GMT\nLast-Modified: Mon, 03 Mar 2025 10:00:00 GMT\n").is_empty());
    }

    #[test]
    fn obsolete_forms_compare_as_instants() {
        assert_eq!(
            ev("Date: Mon Mar  3 10:00:00 2025\nLast-Modified: Monday, 03-Mar-25 11:00:00 GMT\n"),
            vec!["Last-Modified is 1 h after Date"]
        );
    }

    #[test]
    fn unreadable_or_conflicting_values_do_not_fire() {
        assert!(ev("Date: soon\nLast-Modified: Mon, 03 Mar 2025 11:00:00 GMT\n").is_empty());
        assert!(ev("Date: Mon, 03 Mar 2025 10:00:00 GMT\nDate: Mon, 03 Mar 2025 12:00:00 GMT\nLast-Modified: Mon, 03 Mar 2025 11:00:00 GMT\n").is_empty());
    }
}
