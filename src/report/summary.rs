//! The run summary printed on stderr after a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::pipeline::RunSummary;

/// A few lines a person reads at the end of a run; counts by anomaly are given by the caller
/// (the sink sees the exchanges, the summary does not).
pub fn render(summary: &RunSummary, anomalies: &BTreeMap<&'static str, u64>) -> String {
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
        "  connections: {} ({} HTTP, {} not HTTP, {} tunnels{}); exchanges: {} ({} requests, {} responses)",
        r.connections,
        h.http_connections,
        h.non_http_connections,
        h.tunnels,
        if h.undetermined_request_length > 0 {
            format!(
                ", {} not read past a request of undeterminable length",
                h.undetermined_request_length
            )
        } else {
            String::new()
        },
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
