//! `cookie-domain-mismatch`: a Set-Cookie whose Domain attribute does not domain-match the
//! host the request went to, so browsers ignore the whole cookie (RFC 6265 §5.1.3, §5.3
//! step 6, §4.1.2.3). Code, because it compares a cookie attribute with the request's
//! host. Evidence names the cookie, never its value. Public-suffix Domains are out of scope.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::cookie::{domain_matches, parse_set_cookie};
use crate::rules::syntax::site::request_host;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let (Some(req), Some(resp)) = (input.request(), input.response()) else {
        return Vec::new();
    };
    let Some(host) = request_host(req) else {
        return Vec::new();
    };
    let host_cmp = host.trim_start_matches('[').trim_end_matches(']');
    resp.header_values("set-cookie")
        .filter_map(|line| {
            let cookie = parse_set_cookie(line);
            // Browsers skip an empty Domain (invalid-set-cookie reports it); the last
            // non-empty one wins.
            let raw = cookie
                .attributes
                .iter()
                .rev()
                .filter(|(n, _)| n.eq_ignore_ascii_case("domain"))
                .find_map(|(_, v)| v.filter(|v| !v.is_empty()))?;
            let lower = raw.to_ascii_lowercase();
            let domain = lower
                .strip_prefix('.')
                .unwrap_or(&lower)
                .trim_end_matches('.');
            if domain.is_empty() || domain == host_cmp || domain_matches(&host, domain) {
                return None;
            }
            let shown: String = raw.chars().take(80).collect();
            Some(Hit::new(format!(
                "cookie {}, Domain={shown}, host {host}",
                cookie.label()
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(target: &str, host: &str, cookie: &str) -> Vec<String> {
        let req = format!("GET {target} HTTP/1.1\nHost: {host}\n\n");
        let resp = format!("HTTP/1.1 200 OK\nSet-Cookie: {cookie}\nContent-Length: 0\n\n");
        evidence(CHECK, &exchange(&req, &resp), None)
    }

    #[test]
    fn mismatches() {
        assert_eq!(
            ev("/", "staging.example.net", "sid=x; Domain=example.com"),
            vec!["cookie sid, Domain=example.com, host staging.example.net"]
        );
        assert_eq!(ev("/", "api.example", "sid=x; Domain=app.example").len(), 1);
        assert_eq!(
            ev("/", "example.com", "sid=x; Domain=www.example.com").len(),
            1
        );
        assert_eq!(
            ev("/", "badexample.com", "sid=x; Domain=example.com").len(),
            1
        );
        assert_eq!(ev("/", "192.0.2.1", "sid=x; Domain=0.2.1").len(), 1);
    }

    #[test]
    fn matches() {
        assert!(ev("/", "www.Example.com:8443", "sid=x; Domain=.Example.com").is_empty());
        assert!(ev("/", "example.com.", "sid=x; Domain=example.com").is_empty());
        assert!(ev("/", "a.example.com", "sid=x; Domain=; Path=/").is_empty());
        assert!(
            ev(
                "/",
                "a.example.com",
                "sid=x; Domain=other.test; Domain=example.com"
            )
            .is_empty()
        );
        assert!(ev("/", "192.0.2.1", "sid=x; Domain=192.0.2.1").is_empty());
        assert!(
            ev(
                "http://www.example.com/x",
                "proxy.internal",
                "sid=x; Domain=example.com"
            )
            .is_empty()
        );
    }
}
