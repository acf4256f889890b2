//! `x-prefixed-header`: field names with the `X-` prefix that RFC 6648 §3 deprecates for new
//! fields. Data cannot say it because the de-facto standard `X-` fields (an allow list with
//! prefix entries) must be left alone, and the finding lists every offending name once.

use std::collections::HashSet;

use super::{CheckInput, CheckKind, Hit};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Exact names (lower case) that are de-facto standards with no unprefixed replacement.
const ALLOWED: &[&str] = &[
    "x-real-ip",
    "x-request-id",
    "x-correlation-id",
    "x-content-type-options",
    "x-frame-options",
    "x-xss-protection",
    "x-requested-with",
    "x-robots-tag",
    "x-dns-prefetch-control",
    "x-permitted-cross-domain-policies",
    "x-ua-compatible",
    "x-csrf-token",
    "x-xsrf-token",
    "x-http-method-override",
];

/// Allowed prefixes (lower case): families of vendor or proxy fields.
const ALLOWED_PREFIXES: &[&str] = &[
    "x-forwarded-",
    "x-ratelimit-",
    "x-rate-limit-",
    "x-b3-",
    "x-amz-",
    "x-goog-",
];

fn allowed(lower: &str) -> bool {
    ALLOWED.contains(&lower) || ALLOWED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// Names listed in the evidence at most; the rest are counted.
const MAX_LISTED: usize = 20;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    // Lower-cased names seen, so that each is listed once however many fields a message
    // has (a message with 2,000 distinct X- fields cost 2,000² comparisons here).
    let mut seen: HashSet<String> = HashSet::new();
    let mut names: Vec<&str> = Vec::new();
    for h in &msg.headers {
        let name = h.name.as_str();
        let Some(prefix) = name.get(..2) else {
            continue;
        };
        if !prefix.eq_ignore_ascii_case("x-") {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if allowed(&lower) {
            continue;
        }
        if seen.insert(lower) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Vec::new();
    }
    let mut evidence = names
        .iter()
        .take(MAX_LISTED)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_LISTED {
        evidence.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    vec![Hit::new(evidence)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    #[test]
    fn lists_each_name_once_and_skips_allowed() {
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\nX-Api-Version: 2\nx-api-version: 3\nX-Forwarded-Proto: https\n\
             X-Amz-Date: 1\nX-RateLimit-Limit: 5\nAccept-X-Foo: 1\nX-Trace: 1\nX-: 1\n\n",
            "",
        );
        assert_eq!(
            evidence(CHECK, &ex, Some(Side::Request)),
            ["X-Api-Version, X-Trace, X-"]
        );
    }

    #[test]
    fn allowed_names_in_any_case() {
        let ex = exchange(
            "GET / HTTP/1.1\nHost: a\nx-request-id: 1\nX-FORWARDED-FOR: 1.2.3.4\nX-Frame-Options: DENY\n\n",
            "",
        );
        assert!(evidence(CHECK, &ex, Some(Side::Request)).is_empty());
    }

    #[test]
    fn many_names_are_listed_up_to_twenty_and_counted() {
        let fields: String = (0..2_000).map(|i| format!("X-Filler-{i}: v\n")).collect();
        let ex = exchange(&format!("GET / HTTP/1.1\nHost: a\n{fields}\n"), "");
        let listed: Vec<String> = (0..20).map(|i| format!("X-Filler-{i}")).collect();
        assert_eq!(
            evidence(CHECK, &ex, Some(Side::Request)),
            [format!("{} and 1980 more", listed.join(", "))]
        );
    }
}
