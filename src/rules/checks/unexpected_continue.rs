//! `unexpected-continue`: a 100 (Continue) interim response to a request that did not ask
//! for one with `Expect: 100-continue` (RFC 9110 §10.1.1, §15.2.1). The rule's condition
//! already excludes requests that asked; a 100 sent to an HTTP/1.1 client a second or more
//! after the request is a keep-alive signal during slow processing and is tolerated.

use super::{CheckInput, CheckKind, Hit};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(req) = input.request() else {
        return Vec::new();
    };
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
            if ms < 0.0 {
                Hit::new(format!(
                    "100 Continue {} ms before the end of the request",
                    -ms
                ))
            } else {
                Hit::new(format!("100 Continue {} ms after the request", ms.abs()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchanges};

    fn ev(version: &str, interim: &str, gap: f64) -> Vec<String> {
        // The request at t=0, its answer (interim and final) in a second exchange entry on the
        // same connection `gap` seconds later.
        let all = exchanges(&format!(
            "[[exchange]]\nrequest = \"POST /n {version}\\nHost: a\\nContent-Length: 2\\n\\nhi\"\nat = 0.0\n\
             [[exchange]]\ninterim = [\"HTTP/1.1 {interim}\\n\\n\"]\n\
             response = \"HTTP/1.1 201 Created\\nContent-Length: 0\\n\\n\"\nat = {gap}\n"
        ));
        assert_eq!(all.len(), 1, "one exchange");
        evidence(CHECK, &all[0], None)
    }

    #[test]
    fn immediate_continue_fires() {
        assert_eq!(
            ev("HTTP/1.1", "100 Continue", 0.2),
            ["100 Continue 200 ms after the request"]
        );
    }

    #[test]
    fn late_continue_is_a_keep_alive_on_http11_only() {
        assert!(ev("HTTP/1.1", "100 Continue", 1.5).is_empty());
        assert_eq!(
            ev("HTTP/1.0", "100 Continue", 1.5),
            ["100 Continue 1500 ms after the request"]
        );
    }

    #[test]
    fn other_interim_codes_do_not() {
        assert!(ev("HTTP/1.1", "102 Processing", 0.0).is_empty());
        assert!(ev("HTTP/1.1", "103 Early Hints", 0.0).is_empty());
    }
}
