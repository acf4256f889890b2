//! The rule catalogue as text, JSON and Markdown (`wirelint rules`), and one rule's full
//! documentation (`wirelint rules explain ID`). `rules/README.md` is the Markdown form,
//! generated, and a test keeps it in step with the rule files.

use std::fmt::Write as _;

use serde_json::json;

use super::count;
use crate::rules::{ExampleKind, Rule, RuleSet, examples};

pub fn text(set: &RuleSet) -> String {
    let mut out = String::new();
    for r in &set.rules {
        let _ = writeln!(
            out,
            "{:<44} {:<8} {:<15} {}{}",
            r.id,
            r.severity.as_str(),
            r.category,
            r.summary_text,
            if r.enabled { "" } else { "  (disabled)" }
        );
    }
    let _ = writeln!(out, "{}", count(set.rules.len() as u64, "rule", "rules"));
    out
}

pub fn json(set: &RuleSet) -> serde_json::Value {
    serde_json::Value::Array(
        set.rules
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "severity": r.severity, "category": r.category, "scope": r.scope,
                    "summary": r.summary_text, "why": r.why.trim(), "refs": r.refs,
                    "check": r.check_name, "enabled": r.enabled,
                })
            })
            .collect(),
    )
}

/// The Markdown catalogue (rules/README.md).
pub fn markdown(set: &RuleSet) -> String {
    let mut out = String::from(
        "# Rule catalogue\n\nGenerated from the rule files by `wirelint rules --format markdown`; do not edit by hand \
         (a test fails when this file is stale). The file format is described in [FORMAT.md](FORMAT.md).\n\n",
    );
    let mut categories: Vec<&str> = set.rules.iter().map(|r| r.category.as_str()).collect();
    categories.sort();
    categories.dedup();
    let _ = writeln!(
        out,
        "{} in {}.\n",
        count(set.rules.len() as u64, "rule", "rules"),
        count(categories.len() as u64, "category", "categories")
    );
    for cat in categories {
        let _ = writeln!(
            out,
            "## {cat}\n\n| id | severity | scope | summary |\n|---|---|---|---|"
        );
        for r in set.rules.iter().filter(|r| r.category == cat) {
            let scope = serde_json::to_value(r.scope)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| [`{}`]({}/{}.toml) | {} | {} | {} |",
                r.id,
                r.category,
                r.id,
                r.severity.as_str(),
                scope,
                r.summary_text.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    out
}

/// A line of an example as it is on the wire: quotes and backslashes as they are (so that
/// Content-Length counts what is shown); only control characters other than tab, which a
/// terminal would act on, are written as escapes (`\r` for a bare CR, `\u{0}` …).
fn as_on_the_wire(line: &str) -> String {
    let mut s = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() && c != '\t' {
            s.extend(c.escape_debug());
        } else {
            s.push(c);
        }
    }
    s
}

/// Everything about one rule, with its examples as they go on the wire.
pub fn explain(r: &Rule) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  ({}, {})\n", r.id, r.severity.as_str(), r.category);
    let _ = writeln!(out, "{}\n", r.summary_text);
    let _ = writeln!(out, "{}\n", r.why.trim());
    if !r.refs.is_empty() {
        let _ = writeln!(out, "References: {}", r.refs.join("; "));
    }
    if !r.equivalents.is_empty() {
        let eq: Vec<String> = r
            .equivalents
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(out, "Equivalents: {}", eq.join("; "));
    }
    if let Some(check) = &r.check_name {
        let _ = writeln!(out, "Check: src/rules/checks/{check}.rs");
    }
    let _ = writeln!(out, "Source: {}", r.source);
    for ex in &r.examples {
        let kind = match ex.kind {
            ExampleKind::Bad => "Bad",
            ExampleKind::Good => "Good",
        };
        let _ = writeln!(
            out,
            "\n── {kind} example{} ──",
            ex.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
        let show = |label: &str, text: &Option<String>, raw: bool, out: &mut String| {
            if let Some(t) = text {
                let bytes = examples::wire_bytes(t, raw);
                let _ = writeln!(out, "{label}:");
                for line in String::from_utf8_lossy(&bytes).split('\n') {
                    let _ = writeln!(out, "  {}", as_on_the_wire(line.trim_end_matches('\r')));
                }
            }
        };
        if ex.exchange.is_empty() {
            show("request", &ex.request, ex.raw, &mut out);
            for i in &ex.interim {
                show("interim", &Some(i.clone()), ex.raw, &mut out);
            }
            show("response", &ex.response, ex.raw, &mut out);
            if let Some(gz) = &ex.response_gzip {
                let _ = writeln!(
                    out,
                    "  (body: gzip of {:?} × {}, generated)",
                    gz.repeat, gz.count
                );
            }
        } else {
            for (n, e) in ex.exchange.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "exchange {n}{}:",
                    e.at.map(|a| format!(" at {a}s")).unwrap_or_default()
                );
                show("request", &e.request, e.raw, &mut out);
                show("response", &e.response, e.raw, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::as_on_the_wire;

    #[test]
    fn examples_keep_quotes_and_escape_only_control_characters() {
        assert_eq!(
            as_on_the_wire(r#"{"title": "Dune", "path": "C:\\x"}"#),
            r#"{"title": "Dune", "path": "C:\\x"}"#
        );
        assert_eq!(as_on_the_wire("a\rb\tc\u{1b}[31m"), "a\\rb\tc\\u{1b}[31m");
    }
}
