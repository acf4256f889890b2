//! No-panic property tests for the caching, cookie, CORS, content, API and security checks
//! and the parsers they use: random field values, targets, statuses and bodies, through
//! every exchange check on every side and through the stateful checks.

use proptest::prelude::*;

use super::testing::{exchange, run};
use super::{cache_control, charset, cookie, entity_tag, negotiation, site, weighted};
use crate::http::Header;
use crate::rules::Side;
use crate::rules::checks::{CheckKind, lookup};

const EXCHANGE_CHECKS: &[&str] = &[
    "bearer_token_in_uri",
    "cleartext_http_on_tls_port",
    "conditional_request_ignored",
    "conflicting_cache_directives",
    "content_coding_not_accepted",
    "content_type_mismatch",
    "cookie_domain_mismatch",
    "cors_preflight_headers_not_allowed",
    "invalid_cache_control",
    "invalid_problem_details",
    "invalid_set_cookie",
    "json_not_utf8",
    "last_modified_after_date",
    "response_type_not_acceptable",
    "status_body_mismatch",
    "undecodable_charset",
];

const STATEFUL_CHECKS: &[&str] = &[
    "cors_origin_reflection",
    "date_clock_skew",
    "etag_reused_for_different_content",
    "vary_inconsistent",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t,;=\"\\\\/:*a-zA-Z0-9+\\-.é%#?&\\[\\]\u{1}]{0,40}",
        "(W/\"|max-age=|https://|text/html; charset=|utf-7|iso-2022-jp|gzip;q=|Mon, 03 Mar 2025 |sid=) [ -~]{0,30}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "\\{\"(status|code|type|title|statusCode)\":[ -~]{0,20}\\}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn parsers_do_not_panic(s in value(), b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = cache_control::parse(&s);
        let _ = cookie::parse_set_cookie(&s);
        let _ = cookie::parse_cookie_date(&s);
        let _ = cookie::domain_matches(&s, "example.com");
        let _ = cookie::domain_matches("a.example.com", &s);
        let _ = entity_tag::parse(&s);
        let _ = entity_tag::parse_list(&s);
        let _ = negotiation::parse(&s);
        let _ = negotiation::parse_accept(&s);
        let _ = weighted::weighted_list(&s);
        let _ = site::origin_host(&s);
        let _ = site::registrable_domain(&s.to_ascii_lowercase());
        let _ = site::strip_port(&s);
        if let Some(enc) = charset::for_label(&s) {
            let _ = charset::first_malformed(enc, &b);
        }
        for enc in [
            charset::Encoding::Utf16Le, charset::Encoding::ShiftJis, charset::Encoding::EucJp,
            charset::Encoding::Iso2022Jp, charset::Encoding::EucKr, charset::Encoding::Big5,
            charset::Encoding::Gb18030,
        ] {
            let _ = charset::first_malformed(enc, &b);
        }
    }

    #[test]
    fn checks_do_not_panic(
        names in proptest::collection::vec(prop_oneof![
            Just("Cache-Control"), Just("Set-Cookie"), Just("Content-Type"), Just("ETag"),
            Just("If-None-Match"), Just("If-Modified-Since"), Just("Last-Modified"), Just("Date"),
            Just("Age"), Just("Vary"), Just("Origin"), Just("Access-Control-Allow-Origin"),
            Just("Access-Control-Request-Headers"), Just("Access-Control-Allow-Headers"),
            Just("Accept"), Just("Accept-Encoding"), Just("Content-Encoding"), Just("Host"),
        ], 1..4),
        v1 in value(),
        v2 in value(),
        body in body(),
        target in value(),
        status in 0u16..1000,
        method in prop_oneof![Just("GET"), Just("HEAD"), Just("OPTIONS"), Just("POST")],
    ) {
        let mut ex = exchange(
            "GET / HTTP/1.1\nHost: a.example\n\n",
            "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        );
        for msg in [ex.request.as_mut(), ex.response.as_mut()].into_iter().flatten() {
            for name in &names {
                msg.headers.push(Header { name: name.to_string(), value: v1.clone() });
                msg.headers.push(Header { name: name.to_string(), value: v2.clone() });
            }
            msg.body.captured = body.clone();
            msg.body.size = body.len() as u64;
        }
        if let Some(resp) = ex.response.as_mut()
            && let crate::http::StartLine::Response { status: s, .. } = &mut resp.start
        {
            *s = status;
        }
        if let Some(req) = ex.request.as_mut()
            && let crate::http::StartLine::Request { target: t, method: m, .. } = &mut req.start
        {
            *t = target.clone();
            *m = method.to_string();
        }
        for name in EXCHANGE_CHECKS {
            let Some(check) = lookup(name) else { panic!("no check {name}") };
            for side in [None, Some(Side::Request), Some(Side::Response)] {
                let _ = run(check, &ex, side);
            }
        }
        for name in STATEFUL_CHECKS {
            let Some(CheckKind::Stateful(make)) = lookup(name) else { panic!("no check {name}") };
            let mut check = make(&super::stateful::Tables::measuring());
            let mut out = Vec::new();
            for _ in 0..3 {
                check.observe(&ex, &mut out);
            }
            check.finish(&mut out);
        }
    }
}
