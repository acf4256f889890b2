//! Imperfect traffic, as real captures have it somewhere: late segments, frames out of time
//! order, lost response heads and requests, heads cut by the snaplen. Each case is a capture
//! the project makes (`captures/`), and each test says what must hold on it: the right
//! exchanges, the right pairs, and no finding about what was not seen.

use std::path::PathBuf;
use std::sync::Arc;

use wirelint::capture::CaptureSet;
use wirelint::http::{AnomalyKind, Exchange};
use wirelint::pipeline::{self, PipelineConfig, RunSummary};
use wirelint::rules::{Finding, RuleSet};

use crate::support;

fn capture(name: &str) -> PathBuf {
    support::repo().join("captures").join(name)
}

fn run(name: &str) -> (Vec<Exchange>, RunSummary) {
    support::exchanges_of(&[capture(name)], 2)
}

/// Every exchange with the findings on it (settled findings attached to their exchange).
fn analyzed(name: &str) -> Vec<(Exchange, Vec<Finding>)> {
    let files = [capture(name)];
    let captures = CaptureSet::open(&files).expect("capture opens");
    let rules = RuleSet::builtin().expect("builtin rules");
    let cfg = PipelineConfig {
        workers: 2,
        rules: Some(Arc::new(rules)),
        ..PipelineConfig::default()
    };
    let mut out: Vec<(Exchange, Vec<Finding>)> = Vec::new();
    pipeline::run(
        &captures,
        &cfg,
        |item| {
            match item {
                pipeline::Output::Exchange(a) => out.push((a.exchange, a.findings)),
                pipeline::Output::Settled(at, f) => {
                    if let Some((_, fs)) = out.iter_mut().find(|(e, _)| {
                        e.connection.first_frame == at.connection && e.index == at.index
                    }) {
                        fs.push(f);
                    }
                }
            }
            Ok(())
        },
        |_| {},
    )
    .expect("pipeline runs");
    out
}

fn target(ex: &Exchange) -> Option<&str> {
    ex.request.as_ref().and_then(|m| m.target())
}

fn item_id(ex: &Exchange) -> Option<&str> {
    ex.response.as_ref().and_then(|m| m.header("Item-Id"))
}

fn rules_of(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn a_segment_that_arrives_after_the_ack_covering_it_fills_its_hole() {
    let (ex, summary) = run("tcp-late-segment.pcap");
    assert_eq!(ex.len(), 1);
    let req = ex[0].request.as_ref().expect("request");
    assert_eq!(
        req.method(),
        Some("PUT"),
        "the head starts with the late bytes"
    );
    assert_eq!(req.body.size, 28);
    assert!(
        ex[0].anomaly_names().is_empty(),
        "{:?}",
        ex[0].anomaly_names()
    );
    let s = summary.reassembly.streams;
    assert_eq!((s.gaps, s.conflicting_overlaps), (0, 0));
}

#[test]
fn frames_out_of_time_order_keep_roles_and_every_exchange() {
    let (ex, _) = run("tcp-response-before-request.pcap");
    let pairs: Vec<(Option<&str>, Option<u16>)> = ex
        .iter()
        .map(|e| (target(e), e.response.as_ref().and_then(|m| m.status())))
        .collect();
    assert_eq!(
        pairs,
        [
            (Some("/one"), Some(200)),
            (Some("/two"), Some(200)),
            (Some("/three"), Some(200))
        ]
    );
    assert!(ex.iter().all(|e| e.anomaly_names().is_empty()));
    assert_eq!(
        ex[0].connection.client.port(),
        40000,
        "the client keeps its role"
    );
    // Each response is in the file before its request: frames as written.
    let req = ex[0].request.as_ref().map(|m| m.head_frame.number);
    let resp = ex[0].response.as_ref().map(|m| m.head_frame.number);
    assert_eq!((req, resp), (Some(5), Some(4)));
}

#[test]
fn a_lost_response_head_costs_one_pair_not_every_later_one() {
    let all = analyzed("tcp-lost-response-head.pcap");
    assert_eq!(all.len(), 30);
    for (i, (ex, findings)) in all.iter().enumerate() {
        let n = i + 1;
        assert_eq!(target(ex), Some(format!("/items/{n}").as_str()));
        if n == 5 {
            assert!(ex.response.is_none());
            assert_eq!(ex.anomaly_names(), ["response-lost-in-gap"]);
            assert!(
                !rules_of(findings).contains(&"unanswered-request"),
                "{findings:?}"
            );
        } else {
            assert_eq!(item_id(ex), Some(n.to_string().as_str()), "pair {n}");
        }
    }
}

#[test]
fn a_response_to_a_lost_request_is_not_paired_with_the_next_one() {
    let all = analyzed("tcp-lost-request.pcap");
    assert_eq!(all.len(), 3);
    let (lost, findings) = &all[1];
    assert!(lost.request.is_none());
    assert_eq!(item_id(lost), Some("2"));
    assert!(
        lost.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::RequestLostInGap)
    );
    let rules = rules_of(findings);
    assert!(!rules.contains(&"unmatched-response"), "{rules:?}");
    assert_eq!(
        (target(&all[2].0), item_id(&all[2].0)),
        (Some("/items/3"), Some("3"))
    );
}

#[test]
fn frames_name_the_packet_that_completed_each_head() {
    let (ex, _) = run("tcp-frames-after-reordering.pcap");
    let frames: Vec<(u64, u64)> = ex
        .iter()
        .map(|e| {
            (
                e.request.as_ref().map_or(0, |m| m.head_frame.number),
                e.response.as_ref().map_or(0, |m| m.head_frame.number),
            )
        })
        .collect();
    // Request head: its first part came last (frame 5). Response: frame 6. After the
    // lost body segment: the next request and response in their own frames.
    assert_eq!(frames, [(5, 6), (9, 10)]);
}

#[test]
fn heads_cut_by_the_snaplen_are_exchanges_and_rules_stay_silent_on_them() {
    let all = analyzed("snaplen-96-heads.pcap");
    let targets: Vec<Option<&str>> = all.iter().map(|(e, _)| target(e)).collect();
    assert_eq!(
        targets,
        [
            Some("/images/x.gif"),
            Some("/static/css/site-wide-stylesheet.css"),
            Some("/a")
        ]
    );
    for (ex, findings) in &all {
        assert!(
            ex.response.is_some(),
            "{:?} pairs with its response",
            target(ex)
        );
        let req = ex.request.as_ref().expect("request");
        assert!(req.has_anomaly(AnomalyKind::Truncated));
        assert!(
            !req.has_anomaly(AnomalyKind::InvalidRequestLine),
            "a line cut by the capture is not invalid"
        );
        assert!(findings.is_empty(), "{:?}: {findings:?}", target(ex));
    }
}

#[test]
fn junk_before_a_status_line_is_a_finding() {
    let all = analyzed("anomaly-junk-before-status.pcap");
    assert_eq!(all.len(), 1);
    let (ex, findings) = &all[0];
    let resp = ex.response.as_ref().expect("response");
    assert_eq!(resp.status(), Some(200));
    assert!(resp.has_anomaly(AnomalyKind::JunkBeforeMessage));
    assert!(
        rules_of(findings).contains(&"junk-before-message"),
        "{findings:?}"
    );
}

#[test]
fn a_request_line_without_its_line_end_at_connection_end_is_a_truncated_request() {
    use wirelint::synth::{Conversation, PcapWriter, TsPrecision};
    let mut c = Conversation::new(
        "192.0.2.10:40000".parse().expect("address"),
        "198.51.100.20:80".parse().expect("address"),
    );
    c.handshake()
        .client_sends(b"GET /no-line-end HTTP/1.1")
        .fin();
    let mut w = PcapWriter::new(c.linktype(), TsPrecision::Micro);
    w.packets(c.packets());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no-crlf.pcap");
    std::fs::write(&path, w.finish()).expect("writing the capture");
    let (ex, summary) = support::exchanges_of(&[path], 1);
    assert_eq!(ex.len(), 1, "{summary:?}");
    let req = ex[0].request.as_ref().expect("request");
    assert_eq!(req.target(), Some("/no-line-end"));
    assert!(req.has_anomaly(AnomalyKind::Truncated));
    assert_eq!(summary.http.non_http_connections, 0);
}

#[test]
fn stateful_tables_that_outgrow_their_share_of_the_budget_are_counted_in_the_summary() {
    use wirelint::synth::{Conversation, PcapWriter, TsPrecision};
    // 300 connections, each one POST to a path of its own and a 201 without Location:
    // more keys than a small budget leaves the stateful rules' tables.
    let server: std::net::SocketAddr = "198.51.100.20:80".parse().expect("address");
    let linktype = Conversation::new("192.0.2.10:1".parse().expect("address"), server).linktype();
    let mut w = PcapWriter::new(linktype, TsPrecision::Micro);
    for i in 0..300u16 {
        let mut c = Conversation::new(
            format!("192.0.2.10:{}", 20_000 + i)
                .parse()
                .expect("address"),
            server,
        );
        let request = format!(
            "POST /orders/{i} HTTP/1.1\r\nHost: api.example\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        c.handshake()
            .client_sends(request.as_bytes())
            .server_sends(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            .fin();
        w.packets(c.packets());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("posts.pcap");
    std::fs::write(&path, w.finish()).expect("writing the capture");
    let captures = CaptureSet::open(std::slice::from_ref(&path)).expect("capture opens");
    let summary_with = |budget: usize| {
        let mut cfg = PipelineConfig {
            workers: 2,
            rules: Some(Arc::new(RuleSet::builtin().expect("builtin rules"))),
            ..PipelineConfig::default()
        };
        cfg.reassembly.memory_budget = budget;
        pipeline::run(&captures, &cfg, |_| Ok(()), |_| {}).expect("pipeline runs")
    };
    let roomy = summary_with(2 << 30);
    assert_eq!(roomy.http.exchanges, 300);
    assert_eq!(roomy.stateful_keys_forgotten, 0);
    let small = summary_with(1 << 20);
    assert_eq!(small.http.exchanges, 300, "only the rules' history is cut");
    assert!(small.stateful_keys_forgotten > 0, "{small:?}");
    let text = wirelint::report::summary::render(&small, &Default::default());
    assert!(text.contains("remembered keys dropped"), "{text}");
}
