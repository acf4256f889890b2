//! The run summary printed on stderr after a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::count;
use crate::pipeline::{HarSummary, RunSummary};

/// A few lines a person reads at the end of a run; counts by anomaly are given by the caller
/// (the sink sees the exchanges, the summary does not). `-q` leaves these out, but never
/// [`warnings`].
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
        "wirelint: {} ({}){}, {}{}, {} non-TCP",
        count(summary.frames, "packet", "packets"),
        count(summary.bytes, "byte", "bytes"),
        if summary.filtered_out > 0 {
            format!(", {} removed by the filter", summary.filtered_out)
        } else {
            String::new()
        },
        count(d.tcp_segments, "TCP segment", "TCP segments"),
        if d.tunnelled_segments > 0 {
            format!(" ({} decapsulated)", d.tunnelled_segments)
        } else {
            String::new()
        },
        d.non_tcp
    );
    if !d.skipped.is_empty() {
        let mut skipped: Vec<(&String, &u64)> = d.skipped.iter().collect();
        skipped.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  skipped (not TCP): {}", list.join(", "));
    }
    let anomalies_of_fragments: Vec<String> = d
        .fragment_anomalies()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if d.fragments_reassembled > 0 || d.fragments_dropped > 0 || !anomalies_of_fragments.is_empty()
    {
        let _ = writeln!(
            s,
            "  ip fragments: {} datagrams reassembled, {} fragments dropped, {} trains dropped ({} timed out, {} evicted, {} unfinished at the end); anomalies: {}",
            d.fragments_reassembled,
            d.fragments_dropped,
            d.fragment_trains_dropped(),
            d.fragment_trains_timed_out,
            d.fragment_trains_evicted,
            d.fragment_trains_unfinished,
            if anomalies_of_fragments.is_empty() {
                "none".to_string()
            } else {
                anomalies_of_fragments.join(", ")
            }
        );
    }
    let _ = writeln!(
        s,
        "  connections: {} ({} HTTP, {} not HTTP, {}{}); exchanges: {} ({}, {})",
        r.connections,
        h.http_connections,
        h.non_http_connections,
        count(h.tunnels, "tunnel", "tunnels"),
        if h.undetermined_request_length > 0 {
            format!(
                ", {} not read past a request of undeterminable length",
                h.undetermined_request_length
            )
        } else {
            String::new()
        },
        h.exchanges,
        count(h.requests, "request", "requests"),
        count(h.responses, "response", "responses")
    );
    if h.proxy_headers > 0 {
        let _ = writeln!(
            s,
            "  {} before the first request (load balancer), skipped",
            count(
                h.proxy_headers,
                "PROXY protocol header",
                "PROXY protocol headers"
            )
        );
    }
    let t = &summary.tls;
    if t.connections > 0 {
        let why: Vec<String> = t
            .undecrypted()
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "  tls: {} connections, {} decrypted{}{}{}",
            t.connections,
            t.decrypted,
            if why.is_empty() {
                String::new()
            } else {
                format!(", not decrypted: {}", why.join(", "))
            },
            if t.lost_sync > 0 {
                format!("; {} lost sync after a gap", t.lost_sync)
            } else {
                String::new()
            },
            if t.resynced_gaps > 0 {
                format!("; {} gaps recovered", t.resynced_gaps)
            } else {
                String::new()
            }
        );
    }
    if h.http2_connections > 0 {
        let _ = writeln!(
            s,
            "  HTTP/2: {} connections, {} whose decoding stopped (bytes lost, HPACK state unknown){}",
            h.http2_connections,
            h.http2_decoding_stopped,
            if h.http2_joined_late > 0 {
                format!(
                    ", {} joined after they began ({} frames of earlier streams not decoded)",
                    h.http2_joined_late, h.http2_frames_before_capture
                )
            } else {
                String::new()
            }
        );
    }
    let st = &r.streams;
    let _ = writeln!(
        s,
        "  reassembly: {} retransmitted, {} out of order, {} ({}), {} cut by the snaplen, {}, {}, {}",
        count(st.retransmitted_segments, "segment", "segments"),
        st.out_of_order_segments,
        count(st.gaps, "gap", "gaps"),
        count(st.gap_bytes, "byte", "bytes"),
        count(st.cut_bytes, "byte", "bytes"),
        count(
            st.conflicting_overlaps,
            "conflicting overlap",
            "conflicting overlaps"
        ),
        count(r.idle_timeouts, "idle timeout", "idle timeouts"),
        count(r.evictions, "eviction", "evictions")
    );
    if r.syn_without_handshake + r.one_sided + r.budget_evictions + h.requests_over_cap > 0 {
        let top = summary
            .syn_targets
            .top()
            .map(|(dst, n)| format!(" ({n} to {dst})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  floods: {} SYNs without handshake{top}, {} one-sided connections, {} evicted for the memory budget, {} pipelined requests not paired",
            r.syn_without_handshake, r.one_sided, r.budget_evictions, h.requests_over_cap
        );
    }
    if summary.stateful_keys_forgotten > 0 {
        let _ = writeln!(
            s,
            "  stateful rules: {} remembered keys dropped to stay within their memory share \
             (rules comparing exchanges looked back less far; raise --memory-budget to keep more)",
            summary.stateful_keys_forgotten
        );
    }
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
                format!(
                    "; {} cut by the snaplen",
                    count(d.truncated_frames, "frame", "frames")
                )
            } else {
                String::new()
            }
        );
    }
    s
}

/// Warnings about data that was not analysed (a capture cut off mid-frame, …), one line
/// each. Printed even with `-q`: they say the report is incomplete.
pub fn warnings(summary: &RunSummary) -> String {
    let mut s = String::new();
    for w in &summary.warnings {
        let _ = writeln!(s, "wirelint: warning: {w}");
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
        "wirelint: {} ({}), {}; exchanges: {} ({}, {})",
        count(har.files, "HAR file", "HAR files"),
        count(summary.bytes, "byte", "bytes"),
        count(har.entries, "entry", "entries"),
        h.exchanges,
        count(h.requests, "request", "requests"),
        count(h.responses, "response", "responses")
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
                "    {} ({}, {}): {}",
                k.reason.describe(),
                count(k.rules.len() as u64, "rule", "rules"),
                count(k.evaluations, "evaluation", "evaluations"),
                k.rules.join(", ")
            );
        }
    }
    if !anomalies.is_empty() {
        let list: Vec<String> = anomalies.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  anomalies: {}", list.join(", "));
    }
    s
}
