//! `unexpected-continue`: a 100 (Continue) interim response to a request that did not ask
//! for one with `Expect: 100-continue` (RFC 9110 §10.1.1, §15.2.1). The rule's condition
//! already excludes requests that asked; a 100 sent to an HTTP/1.1 client a second or more
//! after the request is a keep-alive signal during slow processing and is tolerated.

use super::{CheckInput, CheckKind, Hit};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(req) = input.request() else { return Vec::new() };
    let http10 = req.version() == "HTTP/1.0";
    input
        .exchange
        .interim
        .iter()
        .filter(|m| m.status() == Some(100))
        .filter(|m| http10 || m.first_ts.secs_since(req.last_ts) < 1.0)
        .take(1)
        .map(|m| {
            let ms = (m.first_ts.secs_since(req.last_ts) * 1000.0).round();
            Hit::new(format!("100 Continue {ms} ms after the request"))
        })
        .collect()
}
