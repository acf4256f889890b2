//! SARIF 2.1.0 for GitHub code scanning and other SARIF consumers: the rules with their help
//! text, one result per finding located on the capture file, and stable
//! `partialFingerprints` from (rule, host, method, path template) so that the same problem
//! in the next capture is recognised as the same alert.

use serde_json::{Value, json};

use crate::http::Exchange;
use crate::rules::{Finding, RuleSet, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// The `tool.driver` object with every enabled rule.
pub fn driver(rules: &RuleSet) -> Value {
    let rules: Vec<Value> = rules
        .rules
        .iter()
        .filter(|r| r.enabled)
        .map(|r| {
            let refs = r.refs.join("; ");
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.summary_text },
                "fullDescription": { "text": r.why.trim() },
                "help": {
                    "text": format!("{}\n\nReferences: {refs}", r.why.trim()),
                    "markdown": format!("{}\n\n**References:** {refs}", r.why.trim()),
                },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": { "tags": [r.category], "precision": "high" },
            })
        })
        .collect();
    json!({
        "name": "wirelint",
        "version": env!("CARGO_PKG_VERSION"),
        "informationUri": "https://github.com/wirelint/wirelint",
        "rules": rules,
    })
}

/// Characters of a path template at most: templates are grouping keys (endpoints,
/// rollups, fingerprints), stored and indexed with every finding, and a 16 KiB request-target
/// stored three times per finding made the database seven times the capture.
pub const TEMPLATE_MAX: usize = 512;

/// Collapses ids in a path so that fingerprints survive new ids: `/users/123/orders/9f8e…`
/// → `/users/{id}/orders/{id}`; cut at [`TEMPLATE_MAX`] characters (with `…`).
pub fn path_template(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let template = path
        .split('/')
        .map(|seg| {
            let digits = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
            let hexish = seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if digits || hexish { "{id}" } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/");
    crate::rules::syntax::stateful::clip(&template, TEMPLATE_MAX)
}

/// A stable 64-bit FNV-1a fingerprint, hex.
fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// One result.
pub fn result(f: &Finding, ex: Option<&Exchange>, capture: &str, rule_index: usize) -> Value {
    let req = ex.and_then(|e| e.request.as_ref());
    let host = req.and_then(|r| r.host()).unwrap_or("");
    let method = req.and_then(|r| r.method()).unwrap_or("");
    let template = req
        .and_then(|r| r.target())
        .map(path_template)
        .unwrap_or_default();
    let frame = ex
        .filter(|e| e.has_wire_bytes())
        .and_then(|e| e.request.as_ref().or(e.response.as_ref()))
        .map(|m| m.head_frame.number);
    let mut location = json!({
        "physicalLocation": { "artifactLocation": { "uri": capture } },
    });
    if let Some(frame) = frame {
        location["logicalLocations"] = json!([{
            "name": format!("frame {frame}"),
            "fullyQualifiedName": format!("{capture}#frame={frame}"),
            "kind": "member",
        }]);
    }
    json!({
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": if f.evidence.is_empty() { f.message.clone() } else { format!("{} ({})", f.message, f.evidence) } },
        "locations": [location],
        "partialFingerprints": { "wirelint/v1": fingerprint(&[&f.rule, host, method, &template]) },
        "properties": { "host": host, "method": method, "pathTemplate": template, "frame": frame },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_collapse_ids() {
        assert_eq!(
            path_template("/users/123/orders/9f8e7d6c5b4a39281726?x=1"),
            "/users/{id}/orders/{id}"
        );
        assert_eq!(path_template("/books"), "/books");
        let long = format!("/orders/{}", "x".repeat(20_000));
        let template = path_template(&long);
        assert_eq!(template.chars().count(), TEMPLATE_MAX + 1, "cut, with …");
        assert!(template.starts_with("/orders/xxx") && template.ends_with('…'));
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
    }
}
