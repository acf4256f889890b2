//! `invalid-http-date`: a date-valued field whose value is not an HTTP-date or names an
//! impossible date (RFC 9110 §5.6.7). The grammar, the calendar arithmetic and the fields'
//! exceptions (Retry-After seconds, If-Range entity-tags, `Expires: 0`) need code; the
//! parser is shared with `obsolete-date-format`, which reports the valid but obsolete forms.
//! A numeric zone (`+0000`) parses, but the grammar allows only `GMT`: it is reported here.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::date::{
    DATE_FIELDS, DateError, Zone, holds_http_date, parse_http_date,
};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Characters of a value shown in evidence.
const SHOW: usize = 100;

fn shown(value: &str) -> String {
    if value.chars().count() <= SHOW {
        return value.to_string();
    }
    let cut: String = value.chars().take(SHOW).collect();
    format!("{cut}…")
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    let mut hits: Vec<Hit> = Vec::new();
    for h in &msg.headers {
        if !DATE_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(&h.name))
            || !holds_http_date(&h.name, &h.value)
        {
            continue;
        }
        let evidence = match parse_http_date(&h.value) {
            // The grammar knows only GMT: a numeric offset is readable but not an
            // HTTP-date (RFC 9110 §5.6.7), so it is invalid, not merely obsolete.
            Ok(date) if matches!(date.zone, Zone::Offset(_)) => format!(
                "{}: {} (numeric zone {}: an HTTP-date is in GMT)",
                h.name,
                shown(&h.value),
                date.zone
            ),
            Ok(_) => continue,
            Err(DateError::Malformed) => format!("{}: {}", h.name, shown(&h.value)),
            Err(e @ DateError::Impossible(_)) => {
                format!("{}: {} ({e})", h.name, shown(&h.value))
            }
        };
        if !hits.iter().any(|x| x.evidence == evidence) {
            hits.push(Hit::new(evidence));
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn resp(headers: &str) -> Vec<String> {
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\n\n",
            &format!("HTTP/1.1 200 OK\n{headers}Content-Length: 0\n\n"),
        );
        evidence(CHECK, &ex, Some(Side::Response))
    }

    #[test]
    fn fires_on_invalid_and_impossible() {
        assert_eq!(
            resp("Last-Modified: 2025-03-01T08:30:00Z\n"),
            ["Last-Modified: 2025-03-01T08:30:00Z"]
        );
        assert_eq!(
            resp("Expires: Sat, 29 Feb 2025 00:00:00 GMT\n"),
            [
                "Expires: Sat, 29 Feb 2025 00:00:00 GMT (impossible date: day beyond the month's length)"
            ]
        );
        assert_eq!(
            resp("Retry-After: Tuesday 5pm\n"),
            ["Retry-After: Tuesday 5pm"]
        );
        // A word that is no date is invalid-retry-after's business.
        assert!(resp("Retry-After: tomorrow\n").is_empty());
        assert_eq!(
            resp("Expires: Tue, 04 Mar 2025 10:00:00 +0000\n"),
            ["Expires: Tue, 04 Mar 2025 10:00:00 +0000 (numeric zone +0000: an HTTP-date is in GMT)"]
        );
        assert_eq!(resp("Expires: -2\n"), ["Expires: -2"]);
    }

    #[test]
    fn obsolete_but_valid_and_exempt_values_pass() {
        assert!(
            resp(
                "Date: Tuesday, 04-Mar-25 10:00:00 GMT\nLast-Modified: Tue Mar  4 10:00:00 2025\n\
             Expires: Wed, 04 Mar 2025 10:00:00 UTC\nRetry-After: 120\nExpires: 0\n"
            )
            .is_empty()
        );
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\nIf-Range: \"abc\"\nIf-Modified-Since: Tue, 04 Mar 2025 10:00:00 GMT\n\n",
            "",
        );
        assert!(evidence(CHECK, &ex, Some(Side::Request)).is_empty());
    }
}
