//! The human report of `wirelint analyze`: findings grouped by rule, each with the exchange
//! it is on and the offending line, then a summary table. Memory stays bounded: each rule
//! keeps a few sample findings and a count.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::count;
use crate::http::Exchange;
use crate::rules::{Finding, RuleSet, Severity};

/// Findings shown per rule; the rest are counted.
const SAMPLES_PER_RULE: usize = 10;

struct Sample {
    message: String,
    location: String,
    evidence: String,
}

#[derive(Default)]
struct RuleGroup {
    count: u64,
    severity: Option<Severity>,
    samples: Vec<Sample>,
}

/// Findings by severity: the last line of the text report and `summary.severity` of
/// `--format json`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SeverityTotals {
    pub error: u64,
    pub warning: u64,
    pub info: u64,
}

impl SeverityTotals {
    pub fn add(&mut self, s: Severity) {
        match s {
            Severity::Error => self.error += 1,
            Severity::Warning => self.warning += 1,
            Severity::Info => self.info += 1,
        }
    }
}

/// Collects findings for the text report.
#[derive(Default)]
pub struct TextReport {
    groups: BTreeMap<String, RuleGroup>,
    /// Findings by their own severity (a rule's findings may differ: escalations).
    totals: SeverityTotals,
    pub exchanges: u64,
}

/// `GET example.com/books → 201  198.51.100.7:40000 → 192.0.2.10:80  frames 4–9`
pub fn exchange_location(ex: &Exchange) -> String {
    let mut s = String::new();
    match &ex.request {
        Some(r) => {
            let _ = write!(
                s,
                "{} {}{}",
                r.method().unwrap_or("?"),
                r.host().unwrap_or(""),
                r.target().unwrap_or("")
            );
        }
        None => s.push_str("(no request)"),
    }
    if let Some(status) = ex.response.as_ref().and_then(|r| r.status()) {
        let _ = write!(s, " → {status}");
    }
    let _ = write!(s, "  {} → {}", ex.connection.client, ex.connection.server);
    s.push_str(&super::exchange_text::frames_label(ex));
    s
}

impl TextReport {
    pub fn add(&mut self, f: &Finding, location: impl FnOnce() -> String) {
        self.totals.add(f.severity);
        let g = self.groups.entry(f.rule.clone()).or_default();
        g.count += 1;
        g.severity = Some(g.severity.map_or(f.severity, |s| s.max(f.severity)));
        if g.samples.len() < SAMPLES_PER_RULE {
            g.samples.push(Sample {
                message: f.message.clone(),
                location: location(),
                evidence: f.evidence.clone(),
            });
        }
    }

    /// Renders the report; `color` adds ANSI colours (on a terminal only).
    pub fn render(&self, rules: &RuleSet, color: bool) -> String {
        let paint = |sev: Severity, text: &str| -> String {
            if !color {
                return text.to_string();
            }
            let code = match sev {
                Severity::Error => "31;1",
                Severity::Warning => "33;1",
                Severity::Info => "36",
            };
            format!("\x1b[{code}m{text}\x1b[0m")
        };
        let mut out = String::new();
        let mut order: Vec<(&String, &RuleGroup)> = self.groups.iter().collect();
        order.sort_by(|a, b| {
            b.1.severity
                .cmp(&a.1.severity)
                .then(b.1.count.cmp(&a.1.count))
                .then(a.0.cmp(b.0))
        });
        for (id, g) in &order {
            let sev = g.severity.unwrap_or(Severity::Info);
            let summary = rules.get(id).map(|r| r.category.as_str()).unwrap_or("");
            let _ = writeln!(
                out,
                "{} {id} ({summary}) — {}",
                paint(sev, sev.as_str()),
                count(g.count, "finding", "findings")
            );
            for s in &g.samples {
                let _ = writeln!(out, "  {}", s.message);
                let _ = writeln!(out, "      {}", s.location);
                if !s.evidence.is_empty() {
                    let _ = writeln!(out, "      │ {}", s.evidence);
                }
            }
            if g.count > g.samples.len() as u64 {
                let _ = writeln!(out, "  … and {} more", g.count - g.samples.len() as u64);
            }
            out.push('\n');
        }
        if !order.is_empty() {
            let _ = writeln!(out, "{:<48} {:>8} {:>8}", "rule", "severity", "count");
            for (id, g) in &order {
                let sev = g.severity.unwrap_or(Severity::Info);
                let _ = writeln!(out, "{:<48} {:>8} {:>8}", id, sev.as_str(), g.count);
            }
        }
        let totals = self.totals;
        let _ = writeln!(
            out,
            "{}: {}, {}, {} info",
            count(self.exchanges, "exchange", "exchanges"),
            count(totals.error, "error", "errors"),
            count(totals.warning, "warning", "warnings"),
            totals.info
        );
        out
    }
}
