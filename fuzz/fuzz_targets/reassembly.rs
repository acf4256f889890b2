//! The flow table with HTTP on top, fed arbitrary segment sequences: any flags, sequence
//! and acknowledgment numbers, payloads, timing, across a few connections, with small caps
//! so that eviction, pending-data limits and idle timeouts are reached.
//!
//! Input: records of
//!   b0: bits 0-1 connection (4 client ports), bit 2 direction (server → client),
//!       bit 3 absolute seq/ack (u32 each) instead of u16 offsets from a per-direction base,
//!       bit 4 run a live-capture tick after the segment, bit 5 IPv6 addresses
//!   b1: TCP flags (FIN 01, SYN 02, RST 04, PSH 08, ACK 10)
//!   seq, ack: u16 offsets (or u32 absolute)
//!   b: time step (×10 ms; 255 = 400 s, past the idle timeout)
//!   b: payload length, then the payload
#![no_main]

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use wirelint::capture::FrameRef;
use wirelint::decode::{Segment, TcpFlags};
use wirelint::http::{HttpConfig, HttpConnection, HttpOutput};
use wirelint::reassembly::{FlowTable, ReassemblyConfig};
use wirelint::time::Timestamp;
use wirelint_fuzz::Cursor;

/// Initial sequence numbers per direction: near the wrap, so offsets cross it.
const BASE: [u32; 2] = [0xffff_ff00, 0x1000];

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let cfg = ReassemblyConfig {
        idle_timeout_secs: 300,
        max_pending_per_stream: 4096,
        memory_budget: 16 * 1024,
        max_flows: 3,
        ..ReassemblyConfig::default()
    };
    let http = HttpConfig {
        body_cap: 1024,
        max_head: 2048,
        ..HttpConfig::default()
    };
    let mut table: FlowTable<HttpConnection> = FlowTable::new(cfg, http);
    let mut sink = HttpOutput::default();
    let mut ts = Timestamp(1_710_237_600_000_000_000);
    let mut order = 0u64;
    while !input.is_empty() {
        let b0 = input.u8();
        let flags = TcpFlags(input.u8());
        let dir = usize::from(b0 >> 2 & 1);
        let (seq, ack) = if b0 & 8 != 0 {
            (input.u32(), input.u32())
        } else {
            (
                BASE[dir].wrapping_add(u32::from(input.u16())),
                BASE[1 - dir].wrapping_add(u32::from(input.u16())),
            )
        };
        let step = input.u8();
        ts = Timestamp(
            ts.0 + if step == 255 {
                400_000_000_000
            } else {
                i64::from(step) * 10_000_000
            },
        );
        let len = usize::from(input.u8());
        let payload = input.bytes(len);
        let (client_ip, server_ip): (IpAddr, IpAddr) = if b0 & 32 != 0 {
            (
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            )
        } else {
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
        };
        let client = SocketAddr::new(client_ip, 40000 + u16::from(b0 & 3));
        let server = SocketAddr::new(server_ip, 80);
        let (src, dst) = if dir == 0 {
            (client, server)
        } else {
            (server, client)
        };
        order += 1;
        let seg = Segment {
            frame: FrameRef {
                file: 0,
                number: order,
            },
            ts,
            src,
            dst,
            seq,
            ack,
            flags,
            payload: Cow::Borrowed(payload),
            missing: u32::from(b0 >> 6),
        };
        table.segment(&seg, order, &mut sink);
        if b0 & 16 != 0 {
            table.tick(ts, order, &mut sink);
        }
        for ex in sink.exchanges.drain(..) {
            std::hint::black_box(ex.anomaly_names());
        }
    }
    table.finish(order + 1, &mut sink);
    std::hint::black_box((sink.exchanges.len(), table.stats));
});
