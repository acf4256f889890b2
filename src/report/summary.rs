//! The run summary printed on stderr after a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::pipeline::{HarSummary, RunSummary};

/// A few lines a person reads at the end of a run; counts by anomaly are given by the caller
/// (the sink sees the exchanges, the summary does not).
pub fn render(summary: &RunSummary, anomalies: &BTreeMap<&'static str, u64>) -> String {
    if let Some(har) = &summary.har {
        return render_har(summary, har, anomalies);
    }
    let mut s = String::new();
    let d = &summary.decode;
    let r = &summary.reassembly;
    let h = &summary.http;
    let _ = writeln!(
        s,
        "wirelint: {} packets ({} bytes){}, {} TCP segments, {} non-TCP",
        summary.frames,
        summary.bytes,
        if summary.filtered_out > 0 {
            format!(", {} removed by the filter", summary.filtered_out)
        } else {
            String::new()
        },
        d.tcp_segments,
        d.non_tcp
    );
    let _ = writeln!(
        s,
        "  connections: {} ({} HTTP, {} not HTTP, {} tunnels); exchanges: {} ({} requests, {} responses)",
        r.connections,
        h.http_connections,
        h.non_http_connections,
        h.tunnels,
        h.exchanges,
        h.requests,
        h.responses
    );
    let st = &r.streams;
    let _ = writeln!(
        s,
        "  reassembly: {} retransmitted, {} out of order, {} gaps ({} bytes), {} cut by snaplen, {} conflicting overlaps, {} idle timeouts, {} evictions",
        st.retransmitted_segments,
        st.out_of_order_segments,
        st.gaps,
        st.gap_bytes,
        st.cut_bytes,
        st.conflicting_overlaps,
        r.idle_timeouts,
        r.evictions
    );
    if anomalies.is_empty() {
        let _ = writeln!(s, "  anomalies: none");
    } else {
        let list: Vec<String> = anomalies.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  anomalies: {}", list.join(", "));
    }
    if d.errors.is_empty() && d.truncated_frames == 0 {
        let _ = writeln!(s, "  decode errors: none");
    } else {
        let list: Vec<String> = d.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            s,
            "  decode errors: {}{}",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            },
            if d.truncated_frames > 0 {
                format!("; {} frames cut by the snaplen", d.truncated_frames)
            } else {
                String::new()
            }
        );
    }
    for w in &summary.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// The summary of a run over HAR files: entries read, and the rules that could not judge
/// them (they need the bytes as sent, which HAR does not keep), by reason.
fn render_har(
    summary: &RunSummary,
    har: &HarSummary,
    anomalies: &BTreeMap<&'static str, u64>,
) -> String {
    let mut s = String::new();
    let h = &summary.http;
    let _ = writeln!(
        s,
        "wirelint: {} HAR file{} ({} bytes), {} entries; exchanges: {} ({} requests, {} responses)",
        har.files,
        if har.files == 1 { "" } else { "s" },
        summary.bytes,
        har.entries,
        h.exchanges,
        h.requests,
        h.responses
    );
    let evaluations: u64 = har.skipped.iter().map(|k| k.evaluations).sum();
    let rules: usize = har.skipped.iter().map(|k| k.rules.len()).sum();
    // (No rules ran in `exchanges`: nothing to say then.)
    if evaluations > 0 {
        let _ = writeln!(
            s,
            "  rules skipped: {evaluations} evaluations of {rules} rules that need the bytes as sent, which HAR does not keep:"
        );
        for k in &har.skipped {
            let _ = writeln!(
                s,
                "    {} ({} rule{}, {} evaluations): {}",
                k.reason.describe(),
                k.rules.len(),
                if k.rules.len() == 1 { "" } else { "s" },
                k.evaluations,
                k.rules.join(", ")
            );
        }
    }
    if !anomalies.is_empty() {
        let list: Vec<String> = anomalies.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  anomalies: {}", list.join(", "));
    }
    for w in &summary.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
