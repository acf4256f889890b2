//! `duplicate-singleton-header`: a single-value field (RFC 9110 §5.3) sent on several lines
//! with different values. The rule's condition only counts lines; comparing the values and
//! masking credentials in the evidence needs code.

use super::{CheckInput, CheckKind, Hit};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Fields defined as a single value (not a list), in the order findings list them.
const SINGLETONS: &[&str] = &[
    "Age",
    "Authorization",
    "Content-Disposition",
    "Content-Location",
    "Content-Range",
    "Content-Type",
    "Date",
    "ETag",
    "Expires",
    "From",
    "If-Modified-Since",
    "If-Range",
    "If-Unmodified-Since",
    "Last-Modified",
    "Location",
    "Max-Forwards",
    "Proxy-Authorization",
    "Range",
    "Referer",
    "Retry-After",
    "Server",
    "User-Agent",
];

/// Longest value shown in evidence, in characters.
const SHOW: usize = 120;

fn shown(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
    {
        let scheme = value.split([' ', '\t']).next().unwrap_or("");
        return if scheme.is_empty() {
            "***".to_string()
        } else {
            format!("{scheme} ***")
        };
    }
    if value.chars().count() > SHOW {
        let cut: String = value.chars().take(SHOW).collect();
        return format!("{cut}…");
    }
    value.to_string()
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    for &singleton in SINGLETONS {
        let mut lines = msg
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(singleton));
        let Some(first) = lines.next() else { continue };
        let mut distinct: Vec<&str> = vec![first.value.trim()];
        for h in lines {
            let v = h.value.trim();
            if !distinct.contains(&v) {
                distinct.push(v);
            }
        }
        if distinct.len() < 2 {
            continue;
        }
        let values: Vec<String> = distinct.iter().map(|v| shown(singleton, v)).collect();
        hits.push(Hit::new(format!("{}: {}", first.name, values.join(" | "))));
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    #[test]
    fn different_values_fire_identical_do_not() {
        let ex = exchange(
            "",
            "HTTP/1.1 200 OK\nContent-Type: application/json\ncontent-type: text/html\n\
             Content-Type: application/json\nETag: \"a\"\nETag: \"a\"\nVary: A\nVary: B\n\
             Set-Cookie: a=1\nSet-Cookie: b=2\nContent-Length: 0\n\n",
        );
        assert_eq!(
            evidence(CHECK, &ex, Some(Side::Response)),
            ["Content-Type: application/json | text/html"]
        );
    }

    #[test]
    fn credentials_are_masked() {
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\nAuthorization: Bearer secret1\nAuthorization: Basic c2VjcmV0\n\n",
            "",
        );
        let ev = evidence(CHECK, &ex, Some(Side::Request));
        assert_eq!(ev, ["Authorization: Bearer *** | Basic ***"]);
        assert!(!ev[0].contains("secret"));
    }

    #[test]
    fn host_and_content_length_are_left_to_framing_rules() {
        let ex = exchange("GET / HTTP/1.1\nHost: a\nHost: b\n\n", "");
        assert!(evidence(CHECK, &ex, Some(Side::Request)).is_empty());
    }
}
