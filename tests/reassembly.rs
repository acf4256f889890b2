//! Property: however TCP cuts, reorders and repeats the bytes of a conversation, the
//! exchanges found are the ones found in its in-order, unsegmented version.
//!
//! Each case takes one of a few HTTP conversations (keep-alive, pipelined, chunked with
//! extensions and trailers, `Expect: 100-continue`), cuts every flight (the bytes one side
//! sends before the other answers) at random points, moves segments within a small window,
//! and sends random ranges again (whole segments or overlapping ones: retransmissions). The
//! capture is synthesised with `wirelint::synth`, written to a file and run through the real
//! pipeline; the exchanges are compared in their jsonl form without frame numbers and
//! timestamps, which are the only things allowed to differ.
//!
//! A second property moves one direction's packets (data and ACKs) late relative to the
//! other's, as captures do whose two directions travel different paths: data then arrives
//! after the ACK that covers it, and responses before their requests.

use std::net::SocketAddr;

use proptest::prelude::*;
use serde_json::Value;

use wirelint::report::exchange_json::ExchangeJson;
use wirelint::synth::{Conversation, Dir, PcapWriter, TsPrecision};

use crate::support;

/// What one side sends before the other answers.
type Flight = (Dir, Vec<u8>);

fn client() -> SocketAddr {
    "192.0.2.10:40000".parse().expect("address")
}

fn server() -> SocketAddr {
    "198.51.100.20:80".parse().expect("address")
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: www.example.test\r\nAccept: */*\r\n\r\n").into_bytes()
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The conversations every case is drawn from.
fn conversations() -> Vec<Vec<Flight>> {
    let keep_alive = vec![
        (Dir::Client, get("/one")),
        (Dir::Server, ok(&"first body line\n".repeat(20))),
        (Dir::Client, get("/two")),
        (Dir::Server, ok("second")),
        (
            Dir::Client,
            b"POST /three HTTP/1.1\r\nHost: www.example.test\r\nContent-Length: 11\r\n\r\nhello world".to_vec(),
        ),
        (Dir::Server, ok("third")),
    ];
    let mut requests = get("/a");
    requests.extend(get("/b"));
    requests.extend(b"HEAD /c HTTP/1.1\r\nHost: www.example.test\r\n\r\n");
    let mut responses = ok("alpha");
    responses.extend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbeta\r\n3;x=y\r\n!!!\r\n0\r\n\r\n",
    );
    responses.extend(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n");
    let pipelined = vec![(Dir::Client, requests), (Dir::Server, responses)];
    let chunked = vec![
        (
            Dir::Client,
            b"PUT /log HTTP/1.1\r\nHost: www.example.test\r\nTransfer-Encoding: chunked\r\n\r\n\
              a\r\nfirst line\r\nB;part=2\r\nsecond line\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            Dir::Server,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
              5;ext=\"quoted value\"\r\nhello\r\n7;name=v\r\n, world\r\n1\r\n!\r\n\
              0;last\r\nX-Checksum: 6f1ed002\r\n\r\n"
                .to_vec(),
        ),
        (Dir::Client, get("/after")),
        (Dir::Server, ok("after the chunks")),
    ];
    let body = br#"{"title":"A long manuscript","pages":412}"#;
    let expect = vec![
        (
            Dir::Client,
            format!(
                "POST /manuscripts HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                body.len()
            )
            .into_bytes(),
        ),
        (Dir::Server, b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        (Dir::Client, body.to_vec()),
        (
            Dir::Server,
            b"HTTP/1.1 201 Created\r\nLocation: /manuscripts/9\r\nContent-Length: 8\r\n\r\n{\"id\":9}".to_vec(),
        ),
        (Dir::Client, get("/")),
        (Dir::Server, b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".to_vec()),
        (Dir::Server, ok("hinted")),
    ];
    vec![keep_alive, pipelined, chunked, expect]
}

/// How one flight goes on the wire.
#[derive(Clone, Debug)]
struct Mangle {
    /// Cut points (taken modulo the flight's length).
    cuts: Vec<u16>,
    /// Swaps of a segment with one at most `WINDOW - 1` places later.
    swaps: Vec<(u16, u8)>,
    /// Ranges sent again (start, length, where in the sequence to insert them).
    repeats: Vec<(u16, u16, u16)>,
}

const WINDOW: usize = 4;

fn mangle() -> impl Strategy<Value = Mangle> {
    (
        prop::collection::vec(any::<u16>(), 0..10),
        prop::collection::vec((any::<u16>(), any::<u8>()), 0..6),
        prop::collection::vec((any::<u16>(), any::<u16>(), any::<u16>()), 0..3),
    )
        .prop_map(|(cuts, swaps, repeats)| Mangle {
            cuts,
            swaps,
            repeats,
        })
}

/// The segments of a flight, as (offset within the flight, length), in sending order.
fn segments(len: usize, m: &Mangle) -> Vec<(usize, usize)> {
    if len == 0 {
        return Vec::new();
    }
    let mut cuts: Vec<usize> = m
        .cuts
        .iter()
        .map(|&c| usize::from(c) % len)
        .filter(|&c| c > 0)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(len);
    let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
    for &(at, by) in &m.swaps {
        let i = usize::from(at) % segs.len();
        let j = (i + usize::from(by) % WINDOW).min(segs.len() - 1);
        segs.swap(i, j);
    }
    for &(start, length, at) in &m.repeats {
        let start = usize::from(start) % len;
        let length = 1 + usize::from(length) % (len - start);
        let at = usize::from(at) % (segs.len() + 1);
        segs.insert(at, (start, length));
    }
    segs
}

/// A pcap of the conversation: handshake, each flight as `mangles` says (or whole when
/// `None`), FIN.
fn capture(flights: &[Flight], mangles: Option<&[Mangle]>) -> Vec<u8> {
    let mut c = Conversation::new(client(), server());
    c.handshake();
    for (k, (dir, bytes)) in flights.iter().enumerate() {
        let base = c.sent(*dir);
        match mangles {
            None => {
                c.segment(*dir, base, bytes);
            }
            Some(m) => {
                for (off, len) in segments(bytes.len(), &m[k % m.len()]) {
                    c.segment(*dir, base + off as u64, &bytes[off..off + len]);
                }
            }
        }
    }
    c.fin();
    let mut w = PcapWriter::new(c.linktype(), TsPrecision::Micro);
    w.packets(c.packets());
    w.finish()
}

/// The jsonl objects of a capture's exchanges, without frame numbers and timestamps.
fn exchanges(pcap: &[u8]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("case.pcap");
    std::fs::write(&path, pcap).expect("writing the capture");
    let (exchanges, _) = support::exchanges_of(&[path], 1);
    let names = ["case.pcap".to_string()];
    exchanges
        .iter()
        .map(|ex| {
            let mut v = serde_json::to_value(ExchangeJson::new(ex, &names)).expect("json");
            for key in ["request", "response"] {
                strip(&mut v[key]);
            }
            if let Some(list) = v.get_mut("interim").and_then(Value::as_array_mut) {
                list.iter_mut().for_each(strip);
            }
            v
        })
        .collect()
}

fn strip(message: &mut Value) {
    if let Some(m) = message.as_object_mut() {
        m.remove("frame");
        m.remove("ts");
    }
}

#[test]
fn reference_conversations_parse_cleanly() {
    let expected_counts = [3, 3, 2, 2];
    for (flights, count) in conversations().iter().zip(expected_counts) {
        let ex = exchanges(&capture(flights, None));
        assert_eq!(ex.len(), count, "{ex:#?}");
        for e in &ex {
            assert_eq!(e["anomalies"], Value::Array(Vec::new()), "{e:#}");
            assert!(!e["response"].is_null(), "{e:#}");
        }
    }
}

#[test]
fn mangling_cuts_reorders_and_repeats() {
    let m = Mangle {
        cuts: vec![10, 20, 30, 40],
        swaps: vec![(0, 2), (3, 1)],
        repeats: vec![(5, 20, 0), (25, 3, 9)],
    };
    let segs = segments(50, &m);
    let mut covered = [0u8; 50];
    for &(off, len) in &segs {
        covered[off..off + len].iter_mut().for_each(|c| *c += 1);
    }
    assert!(
        covered.iter().all(|&c| c >= 1),
        "every byte is sent: {segs:?}"
    );
    assert!(
        covered.iter().any(|&c| c >= 2),
        "some bytes are sent twice: {segs:?}"
    );
    assert!(
        segs.windows(2).any(|w| w[1].0 < w[0].0),
        "some segments go back: {segs:?}"
    );

    // And the pipeline sees it so.
    let flights = &conversations()[1];
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mangled.pcap");
    std::fs::write(&path, capture(flights, Some(&[m]))).expect("writing the capture");
    let (_, summary) = support::exchanges_of(&[path], 1);
    let s = summary.reassembly.streams;
    assert!(
        s.out_of_order_segments > 0 && s.retransmitted_segments + s.overlapping_segments > 0,
        "{s:?}"
    );
    assert_eq!(s.gaps, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn segmentation_reordering_and_retransmission_do_not_change_exchanges(
        which in 0usize..4,
        mangles in prop::collection::vec(mangle(), 1..8),
    ) {
        let flights = &conversations()[which];
        let reference = exchanges(&capture(flights, None));
        let mangled = exchanges(&capture(flights, Some(&mangles)));
        prop_assert_eq!(mangled, reference);
    }
}

/// A capture in which the two directions reach the capture point by different paths: each
/// flight is cut at `cuts`, every data segment is acknowledged by the peer at once, and then
/// the packets of one direction (`late`) are moved up to `delays[i] % (WINDOW + 1)` places
/// later relative to the other's — each direction keeps its own order. The handshake and
/// the closing packets stay where they are.
fn capture_across_paths(flights: &[Flight], cuts: &[u16], late: Dir, delays: &[u8]) -> Vec<u8> {
    let mut c = Conversation::new(client(), server());
    c.handshake();
    let start = c.packets().len();
    let mut dirs: Vec<Dir> = Vec::new();
    for (k, (dir, bytes)) in flights.iter().enumerate() {
        let base = c.sent(*dir);
        let m = Mangle {
            cuts: cuts.iter().map(|&x| x.wrapping_add(k as u16 * 7)).collect(),
            swaps: Vec::new(),
            repeats: Vec::new(),
        };
        for (off, len) in segments(bytes.len(), &m) {
            c.segment(*dir, base + off as u64, &bytes[off..off + len]);
            dirs.push(*dir);
            let peer = if *dir == Dir::Client {
                Dir::Server
            } else {
                Dir::Client
            };
            c.ack(peer);
            dirs.push(peer);
        }
    }
    let end = c.packets().len();
    c.fin();
    let packets = c.into_packets();
    let mut keyed: Vec<(usize, usize)> = Vec::new();
    let mut floor = 0;
    for (i, dir) in dirs.iter().enumerate() {
        let key = if *dir == late {
            let d = delays.get(i % delays.len().max(1)).copied().unwrap_or(0);
            floor = floor.max(i + usize::from(d) % (WINDOW + 1));
            floor
        } else {
            i
        };
        keyed.push((key, i));
    }
    keyed.sort();
    let mut ordered: Vec<_> = packets[..start].to_vec();
    ordered.extend(keyed.iter().map(|&(_, i)| packets[start + i].clone()));
    ordered.extend_from_slice(&packets[end..]);
    let mut w = PcapWriter::new(linktype(), TsPrecision::Micro);
    w.packets(&ordered);
    w.finish()
}

fn linktype() -> u32 {
    Conversation::new(client(), server()).linktype()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Captures see data after the ACK that covers it, and responses before the requests
    /// they answer, whenever the two directions travel different paths (SPAN ports,
    /// `-i any`, several capture queues, merged files). Within a window, that must not
    /// change a single exchange.
    #[test]
    fn interleaving_the_directions_within_a_window_does_not_change_exchanges(
        which in 0usize..4,
        cuts in prop::collection::vec(any::<u16>(), 0..6),
        server_late in any::<bool>(),
        delays in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let flights = &conversations()[which];
        let reference = exchanges(&capture(flights, None));
        let late = if server_late { Dir::Server } else { Dir::Client };
        let moved = exchanges(&capture_across_paths(flights, &cuts, late, &delays));
        prop_assert_eq!(moved, reference);
    }
}

#[test]
fn moving_one_direction_late_makes_data_arrive_after_its_ack() {
    let flights = &conversations()[0];
    let pcap = capture_across_paths(flights, &[10, 30], Dir::Client, &[4]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("late.pcap");
    std::fs::write(&path, pcap).expect("writing the capture");
    let (ex, summary) = support::exchanges_of(&[path], 1);
    let s = summary.reassembly.streams;
    assert!(s.held_for_peer + s.late_segments > 0, "{s:?}");
    assert_eq!((s.gaps, s.conflicting_overlaps), (0, 0), "{s:?}");
    assert_eq!(ex.len(), 3);
}
