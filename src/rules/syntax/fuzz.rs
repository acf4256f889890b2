//! No parser or check in this folder's users may panic on attacker-controlled input: random
//! values through every parser, and random header values, trailers and bodies through the
//! exchange checks that read them.

use proptest::prelude::*;

use super::testing::{exchange, run};
use super::{auth, date, media_type, range, token};
use crate::http::Header;
use crate::rules::Side;
use crate::rules::checks::lookup;

const CHECKS: &[&str] = &[
    "decompression_failed",
    "duplicate_singleton_header",
    "forbidden_trailer_field",
    "invalid_auth_field",
    "invalid_content_range",
    "invalid_content_type",
    "invalid_http_date",
    "invalid_range_header",
    "invalid_request_target",
    "invalid_status_code",
    "obsolete_date_format",
    "oversized_header_section",
    "partial_content_without_content_range",
    "switching_protocols_not_requested",
    "unexpected_continue",
    "x_prefixed_header",
];

/// Strings biased towards the characters these grammars care about.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t,;=\"\\\\/:*a-zA-Z0-9+\\-.é%#\u{1}]{0,40}",
        "(Basic|Bearer|bytes|Tue,|text/html|multipart/byteranges|GMT|--b) [ -~]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn parsers_do_not_panic(s in value()) {
        let _ = date::parse_http_date(&s);
        let _ = date::holds_http_date("Retry-After", &s);
        let _ = media_type::parse_media_type(&s);
        let _ = media_type::lenient_param(&s, "boundary");
        let _ = media_type::essence(&s);
        let _ = range::parse_range(&s);
        let _ = range::parse_content_range(&s);
        let _ = auth::parse_challenges(&s);
        let _ = auth::parse_credentials(&s);
        let _ = auth::decode_base64(&s);
        let _ = token::quoted_string(&s);
        let _ = token::split_list(&s).count();
    }

    #[test]
    fn checks_do_not_panic(
        name in prop_oneof![
            Just("Content-Type"), Just("Content-Range"), Just("Range"), Just("Date"),
            Just("Expires"), Just("If-Range"), Just("Retry-After"), Just("Authorization"),
            Just("WWW-Authenticate"), Just("Upgrade"), Just("Content-Encoding"), Just("X-Test"),
            Just("Location"),
        ],
        v1 in value(),
        v2 in value(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        raw_head in proptest::collection::vec(any::<u8>(), 0..100),
        target in value(),
        status in 0u16..1000,
    ) {
        let mut ex = exchange(
            "GET / HTTP/1.1\nHost: a\nUpgrade: websocket\nRange: bytes=0-1\n\n",
            "HTTP/1.1 206 Partial Content\nContent-Length: 0\n\n",
        );
        for msg in [ex.request.as_mut(), ex.response.as_mut()].into_iter().flatten() {
            msg.headers.push(Header { name: name.to_string(), value: v1.clone() });
            msg.headers.push(Header { name: name.to_string(), value: v2.clone() });
            msg.body.captured = body.clone();
            msg.body.size = body.len() as u64;
            msg.body.trailers.push(Header { name: v1.clone(), value: v2.clone() });
            msg.raw_head = raw_head.clone();
        }
        if let Some(resp) = ex.response.as_mut()
            && let crate::http::StartLine::Response { status: s, .. } = &mut resp.start
        {
            *s = status;
        }
        if let Some(req) = ex.request.as_mut()
            && let crate::http::StartLine::Request { target: t, .. } = &mut req.start
        {
            *t = target.clone();
        }
        for name in CHECKS {
            let Some(check) = lookup(name) else { panic!("no check {name}") };
            for side in [None, Some(Side::Request), Some(Side::Response)] {
                let _ = run(check, &ex, side);
            }
        }
    }
}
