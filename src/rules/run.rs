//! Run-scope rules: findings about the run as a whole (a SYN flood, connections evicted,
//! traffic dropped), reported once with counts rather than once per connection.
//!
//! A run rule names a counter of the run ([`Metric`]) and a threshold; it fires when the
//! counter reaches the threshold. The counters are plain data ([`RunCounters`]), filled by
//! the pipeline from its summary, or by a rule file's example (`counters = { … }`).

use std::collections::BTreeMap;

use super::{Finding, Rule, RuleSet, Scope};

/// A counter of the run a rule can watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Connections opened by a SYN whose sender never completed the handshake.
    SynWithoutHandshake,
    /// Connections that carried bytes one way only (requests never answered or finished).
    OneSidedConnections,
    /// IP fragments thrown away (incomplete, timed out, evicted, unusable).
    FragmentsDropped,
    /// Open connections evicted by the flow table (memory budget or flow cap).
    Evictions,
    /// Packets lost before analysis: by the kernel, the interface, or full queues.
    DroppedPackets,
    /// Requests beyond the cap of outstanding pipelined requests, counted, not paired.
    RequestsOverCap,
    /// IP fragments that overlap with different bytes, or teardrop-style fragments
    /// (overlaps that shrink a datagram, contradicting ends, offsets past 65,535).
    HostileFragments,
}

impl Metric {
    pub const ALL: &'static [Metric] = &[
        Metric::SynWithoutHandshake,
        Metric::OneSidedConnections,
        Metric::FragmentsDropped,
        Metric::Evictions,
        Metric::DroppedPackets,
        Metric::RequestsOverCap,
        Metric::HostileFragments,
    ];

    /// The kebab-case name used in rule files.
    pub fn name(self) -> &'static str {
        match self {
            Metric::SynWithoutHandshake => "syn-without-handshake",
            Metric::OneSidedConnections => "one-sided-connections",
            Metric::FragmentsDropped => "fragments-dropped",
            Metric::Evictions => "evictions",
            Metric::DroppedPackets => "dropped-packets",
            Metric::RequestsOverCap => "requests-over-cap",
            Metric::HostileFragments => "hostile-fragments",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.iter().copied().find(|m| m.name() == name)
    }
}

/// What a run rule watches, compiled from its `[run]` table.
#[derive(Clone, Debug)]
pub struct RunCheck {
    pub metric: Metric,
    /// The rule fires when the counter is at least this.
    pub threshold: u64,
}

/// The run's counters, each with a sentence of detail for the evidence (the most targeted
/// destination, the split between causes).
#[derive(Clone, Debug, Default)]
pub struct RunCounters {
    counts: BTreeMap<Metric, (u64, String)>,
}

impl RunCounters {
    pub fn set(&mut self, metric: Metric, count: u64, detail: impl Into<String>) {
        self.counts.insert(metric, (count, detail.into()));
    }

    pub fn get(&self, metric: Metric) -> u64 {
        self.counts.get(&metric).map_or(0, |c| c.0)
    }

    /// Counters given by name (a rule example's `counters` table).
    pub fn from_names(table: &BTreeMap<String, u64>) -> Result<RunCounters, String> {
        let mut c = RunCounters::default();
        for (name, n) in table {
            let m = Metric::from_name(name).ok_or_else(|| format!("unknown counter {name:?}"))?;
            c.set(m, *n, "");
        }
        Ok(c)
    }
}

/// Placeholders a run rule's summary may use.
pub const PLACEHOLDERS: &[&str] = &["count", "threshold", "evidence"];

/// One finding per enabled run rule whose counter reached its threshold.
pub fn findings(set: &RuleSet, counters: &RunCounters) -> Vec<Finding> {
    set.rules
        .iter()
        .filter(|r| r.enabled && r.scope == Scope::Run)
        .filter_map(|r| finding(r, counters))
        .collect()
}

fn finding(rule: &Rule, counters: &RunCounters) -> Option<Finding> {
    let check = rule.run.as_ref()?;
    let (count, detail) = counters.counts.get(&check.metric)?;
    if *count < check.threshold || *count == 0 {
        return None;
    }
    let evidence = if detail.is_empty() {
        format!("{} {}", count, check.metric.name())
    } else {
        detail.clone()
    };
    let message = rule
        .summary_text
        .replace("{count}", &count.to_string())
        .replace("{threshold}", &check.threshold.to_string())
        .replace("{evidence}", &evidence);
    Some(Finding {
        rule: rule.id.clone(),
        severity: rule.severity,
        category: rule.category.clone(),
        message,
        evidence,
        side: None,
        span: None,
        related: Vec::new(),
    })
}

/// Placeholders of `summary` that a run rule cannot fill.
pub fn unknown_placeholders(summary: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = summary;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            out.push(name.to_string());
        }
        rest = &rest[open + close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked() {
        assert!(unknown_placeholders("{count} SYNs ({evidence}), over {threshold}").is_empty());
        assert_eq!(unknown_placeholders("{method} {count}"), ["method"]);
    }

    #[test]
    fn counters_by_name() {
        let mut t = BTreeMap::new();
        t.insert("syn-without-handshake".to_string(), 7);
        let c = RunCounters::from_names(&t).expect("known");
        assert_eq!(c.get(Metric::SynWithoutHandshake), 7);
        t.insert("nope".to_string(), 1);
        assert!(RunCounters::from_names(&t).is_err());
    }
}
