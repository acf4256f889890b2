//! The HTTP head parser: start-line guesses, head end, and the full parse with its
//! anomalies and the body framing decision. The first byte picks request or response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelint::http::head::{self, Side};
use wirelint::http::{RequestContext, decide_framing};

fuzz_target!(|data: &[u8]| {
    let Some((&first, buf)) = data.split_first() else {
        return;
    };
    let side = if first & 1 == 0 {
        Side::Request
    } else {
        Side::Response
    };
    std::hint::black_box(head::looks_like(side, buf));
    std::hint::black_box(head::looks_like_request_loose(buf));
    std::hint::black_box(head::http09_request_end(buf));
    let end = head::find_head_end(buf, usize::from(first >> 4).min(buf.len()));
    for candidate in [end.map(|e| &buf[..e.min(buf.len())]), Some(buf)]
        .into_iter()
        .flatten()
    {
        if let Some(parsed) = head::parse_head(side, candidate) {
            let status = match &parsed.start {
                wirelint::http::StartLine::Response { status, .. } => Some(*status),
                _ => None,
            };
            let req = RequestContext {
                head: first & 2 != 0,
                connect: first & 4 != 0,
                http09: first & 8 != 0,
            };
            std::hint::black_box(decide_framing(side, status, &parsed.headers, req));
            std::hint::black_box(parsed);
        }
    }
});
