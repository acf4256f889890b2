//! Floods and their kin against the flow table: bare flows' cost, the budget's evictions,
//! connection attempts, idle expiry from the cold end, end-of-input order, one-sided
//! connections.

use std::borrow::Cow;

use super::tests::segment_between;
use super::*;
use crate::capture::FrameRef;
use crate::decode::TcpFlags;
use crate::http::{HttpConfig, HttpConnection, HttpOutput};

fn syn(n: u64, client: u32, at_ms: i64) -> Segment<'static> {
    Segment {
        frame: FrameRef { file: 0, number: n },
        ts: Timestamp(at_ms * 1_000_000),
        src: SocketAddr::from((client.to_be_bytes(), 40000)),
        dst: SocketAddr::from(([192, 0, 2, 10], 80)),
        seq: 1000,
        ack: 0,
        flags: TcpFlags(TcpFlags::SYN),
        payload: Cow::Borrowed(b""),
        missing: 0,
    }
}

#[test]
fn a_flow_without_payload_costs_at_most_256_bytes() {
    let cost = FlowTable::<HttpConnection>::FLOW_COST;
    println!("a bare flow costs {cost} bytes");
    assert!(cost <= 256, "a bare flow costs {cost} bytes");
    let mut table: FlowTable<HttpConnection> =
        FlowTable::new(ReassemblyConfig::default(), HttpConfig::default());
    let mut out = HttpOutput::default();
    for n in 0..1000 {
        table.segment(&syn(n, 0x0a00_0000 + n as u32, 0), n, &mut out);
    }
    assert_eq!(
        table.buffered(),
        1000 * cost,
        "bare SYNs hold only their entries"
    );
}

#[test]
fn the_budget_evicts_the_coldest_flows_and_counts_them() {
    let cost = FlowTable::<HttpConnection>::FLOW_COST;
    let cfg = ReassemblyConfig {
        memory_budget: budget::CHUNK * 2,
        ..ReassemblyConfig::default()
    };
    let mut table: FlowTable<HttpConnection> = FlowTable::new(cfg, HttpConfig::default());
    let mut out = HttpOutput::default();
    let n = 20_000u64;
    for i in 0..n {
        table.segment(&syn(i, 0x0a00_0000 + i as u32, i as i64), i, &mut out);
    }
    assert!(table.buffered() <= budget::CHUNK * 2);
    let kept = table.open_flows() as u64;
    assert!(kept >= (budget::CHUNK * 2 / cost) as u64 - 1, "kept {kept}");
    assert_eq!(table.stats.budget_evictions, n - kept);
    assert_eq!(table.stats.evictions, n - kept);
    // The coldest went first: the last client is still there, the first is not.
    let newest = FlowKey::of(syn(0, 0x0a00_0000 + n as u32 - 1, 0).src, syn(0, 0, 0).dst).0;
    let oldest = FlowKey::of(syn(0, 0x0a00_0000, 0).src, syn(0, 0, 0).dst).0;
    assert!(table.find(&newest).is_some());
    assert!(table.find(&oldest).is_none());
    table.finish(n, &mut out);
    assert_eq!(table.stats.syn_without_handshake, n);
    let top = table.syn_targets.top();
    assert_eq!(top, Some((syn(0, 0, 0).dst, n)));
    assert_eq!(table.buffered(), 0);
}

/// An established connection: handshake and a request, from 10.1.0.1:40000.
fn established(table: &mut FlowTable<HttpConnection>, out: &mut HttpOutput) -> FlowKey {
    let client = SocketAddr::from(([10, 1, 0, 1], 40000));
    let server = SocketAddr::from(([192, 0, 2, 10], 80));
    let mk = |n: u64, from_client: bool, seq: u32, flags: u8, data: &'static [u8]| {
        segment_between((client, server), n, 0, from_client, seq, flags, data)
    };
    let (syn, ack) = (TcpFlags::SYN, TcpFlags::ACK);
    table.segment(&mk(0, true, 99, syn, b""), 0, out);
    table.segment(&mk(1, false, 499, syn | ack, b""), 1, out);
    table.segment(
        &mk(2, true, 100, ack, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        2,
        out,
    );
    FlowKey::of(client, server).0
}

#[test]
fn connection_attempts_go_before_open_flows_and_expire_after_a_minute() {
    let cfg = ReassemblyConfig {
        memory_budget: budget::CHUNK * 2,
        ..ReassemblyConfig::default()
    };
    let mut table: FlowTable<HttpConnection> = FlowTable::new(cfg, HttpConfig::default());
    let mut out = HttpOutput::default();
    let real = established(&mut table, &mut out);
    // A flood of SYNs after it, one a millisecond: the real connection is the coldest
    // flow, yet the budget evicts attempts only (those over a second old).
    let n = 20_000u64;
    for i in 0..n {
        let at = 2_000 + i as i64;
        table.segment(&syn(10 + i, 0x0a00_0000 + i as u32, at), 10 + i, &mut out);
    }
    assert!(table.find(&real).is_some(), "the open flow stays");
    let kept = table.open_flows() as u64;
    assert_eq!(table.stats.budget_evictions, n + 1 - kept);
    // A minute after the last one the attempts are gone; the open flow waits for its
    // idle timeout.
    table.tick(Timestamp(83_000 * 1_000_000), n + 10, &mut out);
    assert_eq!(table.open_flows(), 1);
    assert_eq!(table.stats.idle_timeouts, kept - 1);
    assert_eq!(table.stats.syn_without_handshake, n);
    table.tick(Timestamp(302_000 * 1_000_000), n + 10, &mut out);
    assert_eq!(table.open_flows(), 0);
}

#[test]
fn end_of_input_closes_flows_one_at_a_time_in_first_frame_order() {
    let mut table: FlowTable<HttpConnection> =
        FlowTable::new(ReassemblyConfig::default(), HttpConfig::default());
    let mut out = HttpOutput::default();
    // Seen last first: the LRU order is the reverse of the first frames.
    for n in [5u64, 3, 9, 1] {
        table.segment(&syn(n, 0x0a00_0000 + n as u32, n as i64), n, &mut out);
    }
    table.segment(&syn(10, 0x0a00_0000 + 5, 10), 10, &mut out);
    let mut closed = Vec::new();
    while let Some(f) = table.finish_next(u64::MAX, &mut out) {
        closed.push(f.number);
    }
    assert_eq!(closed, [1, 3, 5, 9]);
    assert_eq!(table.open_flows(), 0);
    table.finish(u64::MAX, &mut out);
    assert_eq!(table.buffered(), 0);
}

#[test]
fn idle_flows_expire_from_the_cold_end_and_lingering_ones_are_forgotten() {
    let cfg = ReassemblyConfig {
        idle_timeout_secs: 10,
        ..ReassemblyConfig::default()
    };
    let mut table: FlowTable<HttpConnection> = FlowTable::new(cfg, HttpConfig::default());
    let mut out = HttpOutput::default();
    for i in 0..100u64 {
        table.segment(&syn(i, 0x0a00_0000 + i as u32, i as i64 * 100), i, &mut out);
    }
    // 100 flows seen between 0 and 9.9 s; at 15 s those older than 5 s have expired.
    table.tick(Timestamp(15_000 * 1_000_000), 100, &mut out);
    assert_eq!(table.stats.idle_timeouts, 50);
    assert_eq!(table.open_flows(), 50);
    table.tick(Timestamp(100_000 * 1_000_000), 100, &mut out);
    assert_eq!(table.open_flows(), 0);
    assert_eq!(table.stats.syn_without_handshake, 100);
}

#[test]
fn a_request_without_an_answer_is_one_sided_and_a_payload_opens_the_consumer_late() {
    let client = SocketAddr::from(([10, 0, 0, 1], 40000));
    let server = SocketAddr::from(([192, 0, 2, 10], 80));
    let seg = |n: u64, from_client: bool, seq: u32, flags: u8, data: &'static [u8]| {
        segment_between((client, server), n, n as i64, from_client, seq, flags, data)
    };
    let mut table: FlowTable<HttpConnection> =
        FlowTable::new(ReassemblyConfig::default(), HttpConfig::default());
    let mut out = HttpOutput::default();
    let (s, a) = (TcpFlags::SYN, TcpFlags::ACK);
    table.segment(&seg(1, true, 99, s, b""), 1, &mut out);
    table.segment(&seg(2, false, 499, s | a, b""), 2, &mut out);
    table.segment(&seg(3, true, 100, a, b""), 3, &mut out);
    assert_eq!(table.stats.with_payload, 0);
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    table.segment(&seg(4, true, 100, a, req), 4, &mut out);
    assert_eq!(table.stats.with_payload, 1);
    table.finish(5, &mut out);
    assert_eq!(table.stats.one_sided, 1);
    assert_eq!(table.stats.syn_without_handshake, 0);
    assert_eq!(
        out.exchanges.len(),
        1,
        "the request was parsed from the right offset"
    );
    assert_eq!(
        out.exchanges[0].connection.first_frame.number, 1,
        "the connection is still known by its SYN"
    );
}
