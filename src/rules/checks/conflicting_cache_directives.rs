//! `conflicting-cache-directives`: Cache-Control directives that contradict each other or
//! do not belong in the message carrying them (RFC 9111 §5.2.1, §5.2.2): `public` with an
//! unqualified `private`, `no-store` with a positive lifetime or `immutable`, a response
//! directive in a request, a request directive in a response. Code, because it needs the
//! parsed directive list and which side the message is on.
//!
//! Elements that do not parse are ignored here (`invalid-cache-control` reports them), and
//! so are repeats and unknown directives.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::Side;
use crate::rules::syntax::cache_control::{self, Directive};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

const RESPONSE_ONLY: &[&str] = &[
    "public",
    "private",
    "s-maxage",
    "must-revalidate",
    "proxy-revalidate",
    "must-understand",
    "immutable",
    "stale-while-revalidate",
];

const REQUEST_ONLY: &[&str] = &["max-stale", "min-fresh", "only-if-cached"];

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let (Some(side), Some(msg)) = (input.side, input.message()) else {
        return Vec::new();
    };
    let Some(value) = msg.combined("cache-control") else {
        return Vec::new();
    };
    conflict(&cache_control::directives(&value), side)
        .map(Hit::new)
        .into_iter()
        .collect()
}

fn conflict(ds: &[Directive], side: Side) -> Option<String> {
    let find = |name: &str| ds.iter().find(|d| d.name == name);
    match side {
        Side::Request => ds
            .iter()
            .find(|d| RESPONSE_ONLY.contains(&d.name.as_str()))
            .map(|d| format!("{} is a response directive, sent in a request", d.name)),
        Side::Response => {
            if find("public").is_some() && ds.iter().any(|d| d.name == "private" && d.arg.is_none())
            {
                return Some("public with unqualified private".to_string());
            }
            if find("no-store").is_some() {
                for name in ["max-age", "s-maxage"] {
                    if let Some(secs) = find(name).and_then(Directive::delta_seconds)
                        && secs > 0
                    {
                        return Some(format!("no-store with {name}={secs}"));
                    }
                }
                if find("immutable").is_some() {
                    return Some("no-store with immutable".to_string());
                }
            }
            ds.iter()
                .find(|d| REQUEST_ONLY.contains(&d.name.as_str()))
                .map(|d| format!("{} is a request directive, sent in a response", d.name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: &str, side: Side) -> Option<String> {
        conflict(&cache_control::directives(v), side)
    }

    #[test]
    fn response_conflicts() {
        let r = Side::Response;
        assert_eq!(
            c("public, max-age=300, private", r).as_deref(),
            Some("public with unqualified private")
        );
        assert_eq!(
            c("no-store, max-age=3600", r).as_deref(),
            Some("no-store with max-age=3600")
        );
        assert_eq!(
            c("no-store, s-maxage=\"10\"", r).as_deref(),
            Some("no-store with s-maxage=10")
        );
        assert_eq!(
            c("only-if-cached", r).as_deref(),
            Some("only-if-cached is a request directive, sent in a response")
        );
    }

    #[test]
    fn agreeing_combinations() {
        let r = Side::Response;
        for v in [
            "no-cache, no-store, max-age=0, must-revalidate",
            "public, max-age=60, private=\"Set-Cookie\"",
            "no-cache=\"Set-Cookie\", max-age=60",
            "public, public",
            "no-store, max-age=1h",
            "x-foo, public",
        ] {
            assert_eq!(c(v, r), None, "{v}");
        }
    }

    #[test]
    fn request_side() {
        assert_eq!(
            c("max-stale, public", Side::Request).as_deref(),
            Some("public is a response directive, sent in a request")
        );
        assert_eq!(
            c("no-cache, max-age=0, only-if-cached", Side::Request),
            None
        );
    }
}
