//! The flow table with HTTP on top, in time: a quiet connection released by a tick, idle flows
//! expired without packets.

use std::borrow::Cow;

use super::*;
use crate::capture::FrameRef;
use crate::decode::TcpFlags;
use crate::http::{HttpConfig, HttpConnection, HttpOutput};

/// One segment of the conversation between 127.0.0.1:40000 (client) and :8080.
fn seg(
    n: u64,
    at_ms: i64,
    from_client: bool,
    seq: u32,
    flags: u8,
    data: &[u8],
) -> Segment<'static> {
    let client = SocketAddr::from(([127, 0, 0, 1], 40000));
    let server = SocketAddr::from(([127, 0, 0, 1], 8080));
    segment_between((client, server), n, at_ms, from_client, seq, flags, data)
}

/// Frame `n` between `client` and `server` (either way), at `at_ms`.
pub(super) fn segment_between(
    (client, server): (SocketAddr, SocketAddr),
    n: u64,
    at_ms: i64,
    from_client: bool,
    seq: u32,
    flags: u8,
    data: &[u8],
) -> Segment<'static> {
    let (src, dst) = if from_client {
        (client, server)
    } else {
        (server, client)
    };
    Segment {
        frame: FrameRef { file: 0, number: n },
        ts: Timestamp(at_ms * 1_000_000),
        src,
        dst,
        seq,
        ack: 0,
        flags: TcpFlags(flags),
        payload: Cow::Owned(data.to_vec()),
        missing: 0,
    }
}

#[test]
fn a_quiet_keep_alive_connection_releases_its_last_exchange_on_a_tick() {
    let mut table: FlowTable<HttpConnection> =
        FlowTable::new(ReassemblyConfig::default(), HttpConfig::default());
    let mut out = HttpOutput::default();
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (syn, ack) = (TcpFlags::SYN, TcpFlags::ACK);
    table.segment(&seg(1, 0, true, 99, syn, b""), 1, &mut out);
    table.segment(&seg(2, 1, false, 499, syn | ack, b""), 2, &mut out);
    table.segment(&seg(3, 2, true, 100, ack, req), 3, &mut out);
    table.segment(&seg(4, 3, false, 500, ack, resp), 4, &mut out);
    // The response is complete, but the connection stays open: the exchange is held
    // in case the server's next bytes amend it.
    assert!(out.exchanges.is_empty());
    table.tick(Timestamp(200 * 1_000_000), 4, &mut out);
    assert!(out.exchanges.is_empty(), "not quiet yet after 200 ms");
    table.tick(Timestamp(600 * 1_000_000), 4, &mut out);
    assert_eq!(out.exchanges.len(), 1, "released once quiet");
    table.tick(Timestamp(1_200 * 1_000_000), 4, &mut out);
    assert_eq!(out.exchanges.len(), 1, "released only once");
    assert_eq!(table.open_flows(), 1, "the connection itself stays open");

    // The connection goes on after the release: the next exchange follows in order.
    let req2 = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let next_req = 100 + req.len() as u32;
    let next_resp = 500 + resp.len() as u32;
    table.segment(&seg(5, 2_000, true, next_req, ack, req2), 5, &mut out);
    table.segment(&seg(6, 2_001, false, next_resp, ack, resp), 6, &mut out);
    table.tick(Timestamp(2_600 * 1_000_000), 6, &mut out);
    let indices: Vec<u32> = out.exchanges.iter().map(|e| e.index).collect();
    assert_eq!(indices, [0, 1]);
    let targets: Vec<Option<&str>> = out
        .exchanges
        .iter()
        .map(|e| e.request.as_ref().and_then(|r| r.target()))
        .collect();
    assert_eq!(targets, [Some("/a"), Some("/b")]);
    assert!(out.exchanges.iter().all(|e| e.response.is_some()));
}

#[test]
fn ticks_expire_idle_flows_without_packets() {
    let cfg = ReassemblyConfig {
        idle_timeout_secs: 5,
        ..ReassemblyConfig::default()
    };
    let mut table: FlowTable<HttpConnection> = FlowTable::new(cfg, HttpConfig::default());
    let mut out = HttpOutput::default();
    table.segment(&seg(1, 0, true, 99, TcpFlags::SYN, b""), 1, &mut out);
    table.tick(Timestamp(3_000 * 1_000_000), 1, &mut out);
    assert_eq!(table.open_flows(), 1);
    table.tick(Timestamp(7_000 * 1_000_000), 1, &mut out);
    assert_eq!(table.open_flows(), 0);
    assert_eq!(table.stats.idle_timeouts, 1);
}
