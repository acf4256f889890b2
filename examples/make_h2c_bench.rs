//! Writes a large synthetic h2c capture for throughput measurements:
//! `cargo run --release --example make_h2c_bench -- OUT.pcap [CONNECTIONS] [STREAMS]`.
//!
//! Each connection sends the HTTP/2 preface and SETTINGS, then STREAMS requests
//! (HPACK-encoded, so later header blocks refer to the dynamic table), ten at a time
//! interleaved, answered with JSON bodies of 1–8 KiB split into DATA frames, some with
//! trailers. Deterministic: the same arguments give the same file.

use std::io::Write;
use std::net::SocketAddr;

use wirelint::http2::frames::{self, FrameType};
use wirelint::http2::hpack::HeaderEncoder;
use wirelint::synth::{Conversation, DEFAULT_START, PcapWriter, TsPrecision, linktype};
use wirelint::time::Timestamp;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "h2c-bench.pcap".into());
    let conns: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let streams: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(400);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    let mut total = 0usize;
    for c in 0..conns {
        let client = SocketAddr::from((
            [192, 0, 2, 10 + (c / 60_000) as u8],
            1024 + (c % 60_000) as u16,
        ));
        let server = SocketAddr::from(([198, 51, 100, 20], 8080));
        let start = Timestamp(DEFAULT_START.0 + i64::from(c) * 50_000_000);
        let mut conv = Conversation::new(client, server)
            .starting_at(start)
            .step(20);
        conv.handshake();
        let mut enc = [HeaderEncoder::default(), HeaderEncoder::default()];
        let mut first = frames::PREFACE.to_vec();
        first.extend(frames::settings_with_window(1 << 30));
        conv.client_sends(&first);
        conv.server_sends(&frames::encode(FrameType::Settings, 0, 0, &[]));
        let mut next = 0u32;
        while next < streams {
            let batch: Vec<u32> = (next..(next + 10).min(streams)).collect();
            next += batch.len() as u32;
            let mut req = Vec::new();
            for &i in &batch {
                let id = 2 * i + 1;
                let path = format!("/api/items/{}", (c * 7919 + i) % 5000);
                let block = enc[0].encode(&[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":authority", "api.example.test:8080"),
                    (":path", &path),
                    ("user-agent", "bench/1.0"),
                    ("accept", "application/json"),
                ]);
                req.extend(frames::encode(
                    FrameType::Headers,
                    frames::END_HEADERS | frames::END_STREAM,
                    id,
                    &block,
                ));
            }
            conv.client_sends(&req);
            let mut resp = Vec::new();
            for &i in &batch {
                let id = 2 * i + 1;
                let size = 1024 + ((c * 31 + i * 977) % 7168) as usize;
                let body: Vec<u8> =
                    format!("{{\"id\":{i},\"data\":\"{}\"}}", "x".repeat(size)).into_bytes();
                let len = body.len().to_string();
                let block = enc[1].encode(&[
                    (":status", "200"),
                    ("date", "Tue, 12 Mar 2024 10:00:00 GMT"),
                    ("content-type", "application/json"),
                    ("content-length", &len),
                    ("server", "bench"),
                ]);
                resp.extend(frames::encode(
                    FrameType::Headers,
                    frames::END_HEADERS,
                    id,
                    &block,
                ));
                let trailers = i % 5 == 0;
                let chunks: Vec<&[u8]> = body.chunks(4096).collect();
                for (k, chunk) in chunks.iter().enumerate() {
                    let end = k + 1 == chunks.len() && !trailers;
                    resp.extend(frames::encode(
                        FrameType::Data,
                        if end { frames::END_STREAM } else { 0 },
                        id,
                        chunk,
                    ));
                }
                if trailers {
                    let block = enc[1].encode(&[("server-timing", "db;dur=3")]);
                    resp.extend(frames::encode(
                        FrameType::Headers,
                        frames::END_HEADERS | frames::END_STREAM,
                        id,
                        &block,
                    ));
                }
            }
            conv.server_sends(&resp);
        }
        conv.fin();
        let mut w = PcapWriter::new(linktype::ETHERNET, TsPrecision::Micro);
        w.packets(conv.packets());
        let bytes = w.finish();
        // Every connection's writer starts with a file header: keep only the first.
        let body = if c == 0 { &bytes[..] } else { &bytes[24..] };
        total += body.len();
        file.write_all(body)?;
    }
    file.flush()?;
    println!("wrote {out}: {conns} connections × {streams} streams, {total} bytes");
    Ok(())
}
