//! `response-type-not-acceptable`: a successful response in a media type that the
//! request's Accept excludes (RFC 9110 §12.5.1). Code, because media ranges match by
//! precedence (the most specific matching range decides, with its `q`) and by parameters.
//!
//! Not judged: an empty, absent or unparseable Accept, one with `*/*` at q > 0, 204
//! responses and responses without content (except to HEAD, whose Content-Type is the
//! GET's), and a missing or unparseable Content-Type.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::negotiation::{self, MediaRange};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let (Some(req), Some(resp)) = (input.request(), input.response()) else {
        return Vec::new();
    };
    if resp.status() == Some(204) || (resp.body.size == 0 && req.method() != Some("HEAD")) {
        return Vec::new();
    }
    let (Some(accept), Some(ct)) = (req.combined("accept"), resp.header("content-type")) else {
        return Vec::new();
    };
    let (Some(ranges), Some(mt)) = (negotiation::parse_accept(&accept), negotiation::parse(ct))
    else {
        return Vec::new();
    };
    if ranges.is_empty() || ranges.iter().any(|r| r.is_any() && r.q > 0.0) {
        return Vec::new();
    }
    let best: Option<&MediaRange> = ranges
        .iter()
        .filter(|r| r.matches(&mt))
        .max_by_key(|r| r.specificity());
    let shown: String = accept.trim().chars().take(120).collect();
    let essence = mt.essence();
    let evidence = match best {
        Some(r) if r.q > 0.0 => return Vec::new(),
        Some(_) => format!("{essence} refused with q=0 in Accept: {shown}"),
        None => format!("{essence} not in Accept: {shown}"),
    };
    vec![Hit::new(evidence)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(method: &str, accept: &str, status: &str, ct: &str, body: &str) -> Vec<String> {
        let req = format!("{method} /b HTTP/1.1\nHost: a\nAccept: {accept}\n\n");
        let resp = format!(
            "HTTP/1.1 {status}\nContent-Type: {ct}\nContent-Length: {}\n\n{body}",
            body.len()
        );
        evidence(CHECK, &exchange(&req, &resp), None)
    }

    #[test]
    fn not_acceptable() {
        assert_eq!(
            ev(
                "GET",
                "application/json",
                "200 OK",
                "text/html",
                "<h1>x</h1>"
            ),
            vec!["text/html not in Accept: application/json"]
        );
        assert_eq!(
            ev(
                "GET",
                "text/*, text/html;q=0",
                "200 OK",
                "text/html; charset=utf-8",
                "x"
            ),
            vec!["text/html refused with q=0 in Accept: text/*, text/html;q=0"]
        );
        assert_eq!(
            ev(
                "GET",
                "text/html;level=2",
                "200 OK",
                "text/html;level=1",
                "x"
            )
            .len(),
            1
        );
        assert_eq!(
            ev("HEAD", "application/json", "200 OK", "text/html", "").len(),
            1
        );
    }

    #[test]
    fn acceptable_or_not_judged() {
        assert!(
            ev(
                "GET",
                "application/json",
                "200 OK",
                "application/json; charset=utf-8",
                "{}"
            )
            .is_empty()
        );
        assert!(
            ev(
                "GET",
                "application/json, text/plain, */*",
                "200 OK",
                "text/html",
                "x"
            )
            .is_empty()
        );
        assert!(
            ev(
                "GET",
                "application/*",
                "200 OK",
                "Application/Problem+JSON",
                "{}"
            )
            .is_empty()
        );
        assert!(
            ev(
                "GET",
                "text/html;level=1",
                "200 OK",
                "text/html; Level=1",
                "x"
            )
            .is_empty()
        );
        assert!(ev("GET", "application/json", "200 OK", "text/html", "").is_empty());
        assert!(ev("GET", "application/json", "204 No Content", "text/html", "").is_empty());
        assert!(ev("GET", "", "200 OK", "text/html", "x").is_empty());
        assert!(ev("GET", "json", "200 OK", "text/html", "x").is_empty());
        assert!(ev("GET", "application/json", "200 OK", "html", "x").is_empty());
    }
}
