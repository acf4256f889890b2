//! `cors-preflight-headers-not-allowed`: a successful CORS preflight whose
//! Access-Control-Allow-Headers does not cover every name the browser listed in
//! Access-Control-Request-Headers (Fetch Standard, CORS-preflight fetch), so the browser
//! never sends the real request. Code, because it compares two lists of names, with the
//! `*` wildcard's exceptions (never `authorization`; not with credentials).
//!
//! Safelisted names are not exempt: a browser lists them only when their value is not
//! safelisted (e.g. `content-type: application/json`), and then they must be allowed.

use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
use crate::rules::syntax::token::split_list;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn names(m: &Message, field: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in m.header_values(field).flat_map(split_list) {
        let n = n.to_ascii_lowercase();
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let (Some(req), Some(resp)) = (input.request(), input.response()) else {
        return Vec::new();
    };
    let requested = names(req, "access-control-request-headers");
    let allowed = names(resp, "access-control-allow-headers");
    let credentials = resp
        .header("access-control-allow-credentials")
        .is_some_and(|v| v.trim() == "true");
    let wildcard = !credentials && allowed.iter().any(|n| n == "*");
    let covered = |n: &str| allowed.iter().any(|a| a == n) || (wildcard && n != "authorization");
    let missing: Vec<&str> = requested
        .iter()
        .map(String::as_str)
        .filter(|n| !covered(n))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let shown: Vec<String> = missing
        .iter()
        .take(10)
        .map(|n| n.chars().take(64).collect())
        .collect();
    let more = if missing.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    vec![Hit::new(format!(
        "{}{more} not in Access-Control-Allow-Headers",
        shown.join(", ")
    ))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(acrh: &str, resp_fields: &str) -> Vec<String> {
        let req = format!(
            "OPTIONS /b HTTP/1.1\nHost: a\nOrigin: https://app.example\nAccess-Control-Request-Method: POST\nAccess-Control-Request-Headers: {acrh}\n\n"
        );
        let resp = format!(
            "HTTP/1.1 204 No Content\nAccess-Control-Allow-Origin: https://app.example\n{resp_fields}\n"
        );
        evidence(CHECK, &exchange(&req, &resp), None)
    }

    #[test]
    fn missing_names() {
        assert_eq!(
            ev(
                "authorization,content-type",
                "Access-Control-Allow-Headers: Authorization\n"
            ),
            vec!["content-type not in Access-Control-Allow-Headers"]
        );
        assert_eq!(
            ev("content-type, x-trace-id", ""),
            vec!["content-type, x-trace-id not in Access-Control-Allow-Headers"]
        );
    }

    #[test]
    fn wildcard_rules() {
        assert!(ev("content-type, x-a", "Access-Control-Allow-Headers: *\n").is_empty());
        assert_eq!(
            ev("authorization", "Access-Control-Allow-Headers: *\n"),
            vec!["authorization not in Access-Control-Allow-Headers"]
        );
        assert_eq!(
            ev(
                "x-a",
                "Access-Control-Allow-Headers: *\nAccess-Control-Allow-Credentials: true\n"
            ),
            vec!["x-a not in Access-Control-Allow-Headers"]
        );
    }

    #[test]
    fn case_whitespace_duplicates_and_empty() {
        assert!(
            ev(
                " Content-Type ,content-type,, X-A",
                "Access-Control-Allow-Headers: x-a\nAccess-Control-Allow-Headers: CONTENT-TYPE\n"
            )
            .is_empty()
        );
        assert!(ev("", "").is_empty());
    }
}
