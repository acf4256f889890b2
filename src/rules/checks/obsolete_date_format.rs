//! `obsolete-date-format`: an HTTP-date in the obsolete rfc850 or asctime form, or in the
//! IMF-fixdate shape with a wrong weekday or a zone other than GMT (RFC 9110 §5.6.7: senders
//! must generate IMF-fixdate). Shares the parser and the field exceptions with
//! `invalid-http-date`, which reports the values that do not parse at all.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::date::{
    DATE_FIELDS, DateForm, Zone, holds_http_date, parse_http_date,
};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Characters of a value shown in evidence.
const SHOW: usize = 100;

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
        let Ok(date) = parse_http_date(&h.value) else {
            continue;
        };
        // A numeric zone is not an HTTP-date: invalid-http-date reports it.
        if date.is_canonical() || matches!(date.zone, Zone::Offset(_)) {
            continue;
        }
        let mut why = Vec::new();
        match date.form {
            DateForm::Rfc850 => why.push("rfc850 form".to_string()),
            DateForm::Asctime => why.push("asctime form".to_string()),
            DateForm::Imf => {}
        }
        if !date.weekday_ok {
            let day = if date.form == DateForm::Rfc850 {
                date.weekday_long()
            } else {
                date.weekday_short()
            };
            why.push(format!("weekday should be {day}"));
        }
        if !date.gmt {
            why.push(format!("zone {}", date.zone));
        }
        let value: String = h.value.chars().take(SHOW).collect();
        let evidence = format!("{}: {value} ({})", h.name, why.join(", "));
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
    fn obsolete_forms() {
        assert_eq!(
            resp("Date: Tuesday, 04-Mar-25 10:00:00 GMT\n"),
            ["Date: Tuesday, 04-Mar-25 10:00:00 GMT (rfc850 form)"]
        );
        assert_eq!(
            resp("Last-Modified: Tue Mar  4 10:00:00 2025\n"),
            ["Last-Modified: Tue Mar  4 10:00:00 2025 (asctime form)"]
        );
        assert_eq!(
            resp("Date: Wed, 04 Mar 2025 10:00:00 UTC\n"),
            ["Date: Wed, 04 Mar 2025 10:00:00 UTC (weekday should be Tue, zone UTC)"]
        );
        // A numeric zone is invalid (invalid-http-date), not obsolete.
        assert!(resp("Expires: Tue, 04 Mar 2025 10:00:00 +0000\n").is_empty());
        assert_eq!(
            resp("Retry-After: Monday, 04-Mar-25 10:00:00 GMT\n"),
            [
                "Retry-After: Monday, 04-Mar-25 10:00:00 GMT (rfc850 form, weekday should be Tuesday)"
            ]
        );
    }

    #[test]
    fn canonical_invalid_and_exempt_values_pass() {
        assert!(
            resp(
                "Date: Tue, 04 Mar 2025 10:00:00 GMT\nLast-Modified: 2025-03-01\nExpires: 0\n\
             Retry-After: 120\nExpires: Mon, 31 Feb 2025 08:30:00 UTC\n"
            )
            .is_empty()
        );
    }
}
