//! `x-prefixed-header`: field names with the `X-` prefix that RFC 6648 §3 deprecates for new
//! fields. Data cannot say it because the de-facto standard `X-` fields (an allow list with
//! prefix entries) must be left alone, and the finding lists every offending name once.

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

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    let mut names: Vec<&str> = Vec::new();
    for h in &msg.headers {
        let name = h.name.as_str();
        let Some(prefix) = name.get(..2) else {
            continue;
        };
        if !prefix.eq_ignore_ascii_case("x-") {
            continue;
        }
        if allowed(&name.to_ascii_lowercase()) {
            continue;
        }
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Vec::new();
    }
    vec![Hit::new(names.join(", "))]
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
}
