//! `switching-protocols-not-requested`: a 101 (Switching Protocols) to a request that did not
//! offer the protocol switched to (RFC 9110 §7.8, §15.2.2). Matching protocol lists, with
//! names compared case-insensitively and versions only when both sides give one, needs code.

use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
use crate::rules::syntax::token::split_list;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// `protocol-name ["/" protocol-version]`, split.
fn protocol(item: &str) -> (&str, Option<&str>) {
    match item.split_once('/') {
        Some((name, version)) => (name.trim(), Some(version.trim())),
        None => (item.trim(), None),
    }
}

fn upgrade_list(msg: &Message) -> Vec<&str> {
    msg.header_values("Upgrade").flat_map(split_list).collect()
}

/// Whether `chosen` is among `offered`: names case-insensitively, versions only when both
/// give one.
fn offered(chosen: &str, offers: &[&str]) -> bool {
    let (name, version) = protocol(chosen);
    offers.iter().any(|o| {
        let (oname, oversion) = protocol(o);
        oname.eq_ignore_ascii_case(name)
            && match (version, oversion) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => true,
            }
    })
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let (Some(req), Some(resp)) = (input.request(), input.response()) else {
        return Vec::new();
    };
    if resp.status() != Some(101) {
        return Vec::new();
    }
    if !req.has_header("Upgrade") {
        return vec![Hit::new("request has no Upgrade")];
    }
    if req.version() == "HTTP/1.0" {
        return vec![Hit::new("101 to an HTTP/1.0 request")];
    }
    let offers = upgrade_list(req);
    let unoffered: Vec<&str> = upgrade_list(resp)
        .into_iter()
        .filter(|p| !offered(p, &offers))
        .collect();
    if unoffered.is_empty() {
        return Vec::new();
    }
    let offers = if offers.is_empty() {
        "nothing".to_string()
    } else {
        offers.join(", ")
    };
    vec![Hit::new(format!(
        "switched to {}; offered {offers}",
        unoffered.join(", ")
    ))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(req_upgrade: &str, version: &str, resp_upgrade: &str) -> Vec<String> {
        let req = if req_upgrade.is_empty() {
            format!("GET /chat {version}\nHost: a\n\n")
        } else {
            format!("GET /chat {version}\nHost: a\nConnection: Upgrade\nUpgrade: {req_upgrade}\n\n")
        };
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\nConnection: Upgrade\nUpgrade: {resp_upgrade}\n\n"
        );
        evidence(CHECK, &exchange(&req, &resp), None)
    }

    #[test]
    fn matching() {
        assert!(ev("websocket", "HTTP/1.1", "WebSocket").is_empty());
        assert!(ev("h2c, websocket", "HTTP/1.1", "websocket").is_empty());
        assert!(ev("HTTP/2.0, websocket", "HTTP/1.1", "HTTP/2.0").is_empty());
        assert!(ev("websocket", "HTTP/1.1", "websocket/13").is_empty());
        assert!(ev("websocket/13", "HTTP/1.1", "websocket").is_empty());
        assert_eq!(
            ev("HTTP/2.0", "HTTP/1.1", "HTTP/3"),
            ["switched to HTTP/3; offered HTTP/2.0"]
        );
        assert_eq!(
            ev("websocket", "HTTP/1.1", "h2c"),
            ["switched to h2c; offered websocket"]
        );
    }

    #[test]
    fn not_requested() {
        assert_eq!(ev("", "HTTP/1.1", "websocket"), ["request has no Upgrade"]);
        assert_eq!(
            ev("websocket", "HTTP/1.0", "websocket"),
            ["101 to an HTTP/1.0 request"]
        );
    }
}
