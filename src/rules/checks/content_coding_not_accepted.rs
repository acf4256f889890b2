//! `content-coding-not-accepted`: a response content coding that the request's
//! Accept-Encoding does not allow (RFC 9110 §12.5.3, §8.4). Code, because it weighs the
//! codings listed (with `q`, the `*` wildcard and the `x-` aliases) against each coding the
//! response applied.
//!
//! A request without Accept-Encoding accepts anything and is not judged; an empty one
//! accepts no coding. `identity` is never a problem.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::token::split_list;
use crate::rules::syntax::weighted::{Weighted, weighted_list};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn canonical(coding: &str) -> String {
    let c = coding.to_ascii_lowercase();
    match c.as_str() {
        "x-gzip" => "gzip".to_string(),
        "x-compress" => "compress".to_string(),
        _ => c,
    }
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let (Some(req), Some(resp)) = (input.request(), input.response()) else {
        return Vec::new();
    };
    if resp.status() == Some(304) {
        return Vec::new();
    }
    let Some(accept) = req.combined("accept-encoding") else {
        return Vec::new();
    };
    let listed: Vec<Weighted> = weighted_list(&accept)
        .into_iter()
        .map(|w| Weighted {
            value: canonical(&w.value),
            ..w
        })
        .collect();
    for coding in resp.header_values("content-encoding").flat_map(split_list) {
        let coding = canonical(coding);
        if coding == "identity" {
            continue;
        }
        if let Some(evidence) = refusal(&coding, &listed, &accept) {
            return vec![Hit::new(evidence)];
        }
    }
    Vec::new()
}

/// Why `coding` is not acceptable, or `None` when it is.
fn refusal(coding: &str, listed: &[Weighted], accept: &str) -> Option<String> {
    let shown_coding: String = coding.chars().take(40).collect();
    let shown: String = accept.trim().chars().take(120).collect();
    if listed.is_empty() {
        return Some(format!(
            "{shown_coding} sent although Accept-Encoding is empty"
        ));
    }
    let q = match listed.iter().find(|w| w.value == coding) {
        Some(w) => w.q,
        None => match listed.iter().find(|w| w.value == "*") {
            Some(w) => w.q,
            None => return Some(format!("{shown_coding} not in Accept-Encoding: {shown}")),
        },
    };
    (q <= 0.0).then(|| format!("{shown_coding} refused with q=0 in Accept-Encoding: {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(accept_line: &str, ce: &str, status: &str) -> Vec<String> {
        let req = format!("GET /app.js HTTP/1.1\nHost: a\n{accept_line}\n");
        let resp = format!("HTTP/1.1 {status}\nContent-Encoding: {ce}\nContent-Length: 0\n\n");
        evidence(CHECK, &exchange(&req, &resp), None)
    }

    #[test]
    fn refused() {
        assert_eq!(
            ev("Accept-Encoding: gzip, deflate\n", "br", "200 OK"),
            vec!["br not in Accept-Encoding: gzip, deflate"]
        );
        assert_eq!(
            ev("Accept-Encoding: gzip, br;q=0\n", "BR", "200 OK"),
            vec!["br refused with q=0 in Accept-Encoding: gzip, br;q=0"]
        );
        assert_eq!(
            ev("Accept-Encoding: *, gzip;q=0\n", "gzip", "200 OK").len(),
            1
        );
        assert_eq!(
            ev("Accept-Encoding:\n", "gzip", "200 OK"),
            vec!["gzip sent although Accept-Encoding is empty"]
        );
        assert_eq!(ev("Accept-Encoding: gzip\n", "gzip, br", "200 OK").len(), 1);
    }

    #[test]
    fn accepted() {
        assert!(ev("Accept-Encoding: x-gzip\n", "gzip", "200 OK").is_empty());
        assert!(ev("Accept-Encoding: gzip\n", "x-gzip", "200 OK").is_empty());
        assert!(ev("Accept-Encoding: *\n", "br", "200 OK").is_empty());
        assert!(ev("Accept-Encoding: gzip;q=0.001\n", "gzip", "200 OK").is_empty());
        assert!(ev("Accept-Encoding: gzip\n", "identity", "200 OK").is_empty());
        assert!(ev("Accept-Encoding: gzip\n", "br", "304 Not Modified").is_empty());
        assert!(ev("", "br", "200 OK").is_empty());
    }
}
