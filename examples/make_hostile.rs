//! Writes one hostile capture of a chosen class and size, for `benches/hostile.sh`:
//!
//! ```text
//! cargo run --release --example make_hostile -- CLASS N OUT.pcap
//! ```
//!
//! | class       | N counts                  | what the capture holds                                   |
//! |-------------|---------------------------|----------------------------------------------------------|
//! | `syn`       | SYNs                      | SYNs to port 80 from distinct addresses/ports in 10 s    |
//! | `halfopen`  | connections               | handshake + half a request (no CRLF CRLF), left open, all within 100 s |
//! | `pipelined` | requests                  | one connection: N requests back to back, then N responses |
//! | `fragments` | IPv4 fragments            | requests sent as fragment trains: most whole, some with conflicting overlaps, some teardrop, some never completed |
//! | `nocrlf`    | connections               | a request line without CRLF, then FIN                    |
//! | `longurls`  | connections               | a POST whose request-target is 16 KiB long, answered `201 Created` with a `Location` as long: fills the stateful rules' tables with long strings |
//! | `manyheaders` | connections             | a GET with 2,000 header fields (~52 KiB head, under the 64 KiB cap), answered 200: per-field work of every rule |
//! | `tinysegments` | connections           | a GET with a 12 KiB request-target and 800 fields (40 KiB of head) sent one byte per TCP segment, answered 200: per-segment work that must not grow with what is buffered |
//! | `h2streams` | connections               | h2c: 512 POST streams per connection, each with 8 KiB of body and never ended, the connection left open: held stream state for the budget |
//! | `hpackbomb` | connections               | h2c: one GET whose 16 KiB HEADERS frame adds a 4,000-octet field to the HPACK table and then refers to it 12,000 times (48 MB decoded), answered 204 |
//! | `gzipbomb`  | bomb responses            | gzip bodies of ~1 MB inflating to 1 GiB, alternately `Content-Encoding: gzip` and `Transfer-Encoding: gzip, chunked` |
//!
//! Packets are written to the file as they are made ([`PcapStreamWriter`]), so a capture of
//! millions of packets needs a few MB of memory. Output is deterministic.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use anyhow::{Context, bail};
use etherparse::{IpFragOffset, Ipv4Header};
use wirelint::synth::{
    Conversation, DEFAULT_START, Dir, Packet, PcapStreamWriter, TsPrecision, linktype,
};
use wirelint::time::Timestamp;

const SYN: u8 = 0x02;
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 20), 80);
/// Ethernet II header length: fragments are framed on Ethernet.
const ETH: usize = 14;

type Out = PcapStreamWriter<BufWriter<File>>;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [class, n, path] = args.as_slice() else {
        bail!(
            "usage: make_hostile CLASS N OUT.pcap\n\
             classes: syn halfopen pipelined fragments nocrlf gzipbomb longurls manyheaders tinysegments h2streams hpackbomb"
        );
    };
    let n: u64 = n.parse().context("N must be a whole number")?;
    let path = PathBuf::from(path);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = PcapStreamWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        linktype::ETHERNET,
        TsPrecision::Micro,
    )?;
    let packets = match class.as_str() {
        "syn" => syn_flood(&mut out, n)?,
        "halfopen" => half_open(&mut out, n)?,
        "pipelined" => pipelined(&mut out, n)?,
        "fragments" => fragments(&mut out, n)?,
        "nocrlf" => no_crlf(&mut out, n)?,
        "gzipbomb" => gzip_bomb(&mut out, n)?,
        "longurls" => long_urls(&mut out, n)?,
        "manyheaders" => many_headers(&mut out, n)?,
        "tinysegments" => tiny_segments(&mut out, n)?,
        "h2streams" => h2_streams(&mut out, n)?,
        "hpackbomb" => hpack_bomb(&mut out, n)?,
        other => bail!("unknown class {other:?}"),
    };
    out.finish()?.flush()?;
    let size = std::fs::metadata(&path)?.len();
    eprintln!(
        "make_hostile: {class} N={n}: {packets} packets, {size} bytes -> {}",
        path.display()
    );
    Ok(())
}

/// A distinct client for connection `i`: its own address in 10.0.0.0/8 (so that IP
/// identifications, which fragment reassembly keys on with the addresses, never collide
/// between connections) and a port.
fn client(i: u64) -> SocketAddr {
    let host = (i as u32 % 0x00FF_FFFE) + 1;
    let port = 10_000 + (i % 50_000) as u16;
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(0x0A00_0000 | host), port))
}

fn at(ns: u64) -> Timestamp {
    Timestamp(DEFAULT_START.0 + ns as i64)
}

/// Writes the conversation's packets so far and returns how many.
fn drain(out: &mut Out, c: &mut Conversation) -> anyhow::Result<u64> {
    let packets = c.take_packets();
    out.packets(&packets)?;
    Ok(packets.len() as u64)
}

/// N bare SYNs spread evenly over 10 s, each from its own client.
fn syn_flood(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    let spacing = 10_000_000_000 / n.max(1);
    for i in 0..n {
        let mut c = Conversation::new(client(i), SERVER.into()).starting_at(at(i * spacing));
        let isn = (i as u32).wrapping_mul(2_654_435_761);
        c.raw(Dir::Client, isn, None, SYN, &[]);
        drain(out, &mut c)?;
    }
    Ok(n)
}

/// N connections within 100 s, each completing the handshake and sending a request head
/// without its blank line, then never another packet.
fn half_open(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    let spacing = 100_000_000_000 / n.max(1);
    let step_us = (spacing / 8 / 1000).max(1) as i64;
    let mut packets = 0;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SERVER.into())
            .starting_at(at(i * spacing))
            .step(step_us);
        let head = format!(
            "GET /slow/{i} HTTP/1.1\r\nHost: example.test\r\nUser-Agent: slowloris\r\nX-a: b\r\n"
        );
        c.handshake().client_sends(head.as_bytes());
        packets += drain(out, &mut c)?;
    }
    Ok(packets)
}

/// One connection: N requests sent back to back, then their N responses, then FIN.
fn pipelined(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    const BATCH: u64 = 256;
    let mut c = Conversation::new(client(0), SERVER.into()).step(20);
    c.handshake();
    let mut packets = drain(out, &mut c)?;
    let mut i = 0;
    while i < n {
        let mut buf = Vec::new();
        for j in i..(i + BATCH).min(n) {
            buf.extend_from_slice(
                format!("GET /item/{j} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes(),
            );
        }
        c.client_sends(&buf);
        packets += drain(out, &mut c)?;
        i += BATCH;
    }
    let mut i = 0;
    while i < n {
        let mut buf = Vec::new();
        for j in i..(i + BATCH).min(n) {
            let body = format!("{{\"id\":{j}}}");
            buf.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        c.server_sends(&buf);
        packets += drain(out, &mut c)?;
        i += BATCH;
    }
    c.fin();
    packets += drain(out, &mut c)?;
    Ok(packets)
}

/// Requests sent as IPv4 fragment trains of 64-byte pieces (about 10 per request), on
/// connections of 100 requests each, until N fragments are written. Per 20 trains: one
/// carries a conflicting overlap (a piece sent twice with different bytes), one is a
/// teardrop pair (a last fragment lying inside the first), one loses its last fragment and
/// is never completed, one repeats a piece unchanged; the rest are plain. Every request is
/// answered (unfragmented).
fn fragments(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    const PER_CONNECTION: u64 = 100;
    let mut written = 0u64;
    let mut packets = 0u64;
    let mut train = 0u64;
    let mut clock = DEFAULT_START;
    let mut conn = 0u64;
    while written < n {
        let mut c = Conversation::new(client(conn), SERVER.into())
            .starting_at(clock)
            .step(20);
        c.handshake();
        packets += drain(out, &mut c)?;
        for _ in 0..PER_CONNECTION {
            if written >= n {
                break;
            }
            let pad = "p".repeat(400 + (train % 7) as usize * 16);
            let request = format!(
                "POST /frag/{train} HTTP/1.1\r\nHost: example.test\r\nX-Pad: {pad}\r\nContent-Length: 0\r\n\r\n"
            );
            c.fragment_above(Some(64));
            c.client_sends(request.as_bytes());
            let mut frags = c.take_packets();
            mutate_train(&mut frags, train);
            let remaining = (n - written) as usize;
            frags.truncate(remaining);
            written += frags.len() as u64;
            packets += frags.len() as u64;
            out.packets(&frags)?;
            c.fragment_above(None);
            c.server_sends(b"HTTP/1.1 204 No Content\r\n\r\n");
            packets += drain(out, &mut c)?;
            train += 1;
        }
        c.fin();
        packets += drain(out, &mut c)?;
        clock = c.now();
        conn += 1;
    }
    Ok(packets)
}

/// Makes train `train` hostile according to its number (see [`fragments`]).
fn mutate_train(frags: &mut Vec<Packet>, train: u64) {
    if frags.len() < 3 {
        return;
    }
    match train % 20 {
        // conflicting overlap: the second piece again, its bytes changed
        3 => {
            if let Some(dup) = refragment(&frags[1], None, None, Some(b'X')) {
                frags.insert(2, dup);
            }
        }
        // teardrop: the first piece, then a last fragment at offset 24 that ends inside it
        7 => {
            if let Some(tear) = refragment(&frags[0], Some(3), Some(false), None) {
                let tear = cut_payload(tear, 4);
                frags.truncate(1);
                frags.push(tear);
            }
        }
        // never completed: the last fragment is lost
        11 => {
            frags.pop();
        }
        // an exact duplicate
        15 => {
            let dup = frags[2].clone();
            frags.insert(3, dup);
        }
        _ => {}
    }
}

/// A copy of fragment `p` with its offset (in 8-byte units) and more-fragments flag
/// replaced where given, and its payload bytes overwritten with `fill`; header checksum
/// recomputed.
fn refragment(
    p: &Packet,
    offset: Option<u16>,
    more: Option<bool>,
    fill: Option<u8>,
) -> Option<Packet> {
    let (mut h, payload) = Ipv4Header::from_slice(p.data.get(ETH..)?).ok()?;
    if let Some(o) = offset {
        h.fragment_offset = IpFragOffset::try_new(o).ok()?;
    }
    if let Some(m) = more {
        h.more_fragments = m;
    }
    let mut payload = payload[..usize::from(h.total_len)
        .saturating_sub(h.header_len())
        .min(payload.len())]
        .to_vec();
    if let Some(f) = fill {
        payload.fill(f);
    }
    h.total_len = (h.header_len() + payload.len()) as u16;
    h.header_checksum = h.calc_header_checksum();
    let mut data = p.data[..ETH].to_vec();
    data.extend_from_slice(&h.to_bytes());
    data.extend_from_slice(&payload);
    Some(Packet {
        ts: p.ts,
        linktype: p.linktype,
        data,
    })
}

/// Fragment `p` with its payload cut to `len` bytes.
fn cut_payload(p: Packet, len: usize) -> Packet {
    let Some((mut h, payload)) = p
        .data
        .get(ETH..)
        .and_then(|ip| Ipv4Header::from_slice(ip).ok())
    else {
        return p;
    };
    let payload = &payload[..len.min(payload.len())];
    h.total_len = (h.header_len() + payload.len()) as u16;
    h.header_checksum = h.calc_header_checksum();
    let mut data = p.data[..ETH].to_vec();
    data.extend_from_slice(&h.to_bytes());
    data.extend_from_slice(payload);
    Packet { data, ..p }
}

/// N connections, 1 ms apart, each sending only a request line without its CRLF, then
/// closing.
fn no_crlf(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    let mut packets = 0;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SERVER.into())
            .starting_at(at(i * 1_000_000))
            .step(100);
        let line = if i % 2 == 0 {
            format!("GET /no-crlf/{i} HTTP/1.1")
        } else {
            format!("POST /upload/{i} HTT")
        };
        c.handshake().client_sends(line.as_bytes()).fin();
        packets += drain(out, &mut c)?;
    }
    Ok(packets)
}

/// Length of the `longurls` class's request-targets.
const LONG_TARGET: usize = 16 * 1024;

/// N connections, 1 ms apart, each a POST to its own 16 KiB request-target with a small
/// body, answered `201 Created` with a Location as long, then closed: every stateful table
/// that remembers a request or a URL gets long strings to hold.
fn long_urls(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    let mut packets = 0;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SERVER.into())
            .starting_at(at(i * 1_000_000))
            .step(100);
        let prefix = format!("/orders/{i}/");
        let path = format!("{prefix}{}", "x".repeat(LONG_TARGET - prefix.len()));
        let body = format!("{{\"order\":{i}}}");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let response =
            format!("HTTP/1.1 201 Created\r\nLocation: {path}/1\r\nContent-Length: 0\r\n\r\n");
        c.handshake()
            .client_sends(request.as_bytes())
            .server_sends(response.as_bytes())
            .fin();
        packets += drain(out, &mut c)?;
    }
    Ok(packets)
}

/// Header fields of each `manyheaders` request.
const MANY_FIELDS: usize = 2_000;

/// N connections, 1 ms apart, each a GET with [`MANY_FIELDS`] distinct header fields (a
/// head of about 60 KiB, under the 64 KiB head cap), answered `200 OK`, then closed.
fn many_headers(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    let mut fields = String::new();
    for k in 0..MANY_FIELDS {
        fields.push_str(&format!("X-Filler-{k}: value-{k}\r\n"));
    }
    let mut packets = 0;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SERVER.into())
            .starting_at(at(i * 1_000_000))
            .step(100);
        let request = format!("GET /fields/{i} HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n");
        c.handshake()
            .client_sends(request.as_bytes())
            .server_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .fin();
        packets += drain(out, &mut c)?;
    }
    Ok(packets)
}

/// Fields of each `tinysegments` head (~26 KiB), and the length of its request-target.
const TINY_FIELDS: usize = 800;
const TINY_TARGET: usize = 12 * 1024;

/// N connections, 1 s apart, each a GET whose head ([`TINY_TARGET`] bytes of request-target,
/// [`TINY_FIELDS`] fields) arrives one byte per segment, answered 200 in one.
fn tiny_segments(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    let mut fields = String::new();
    for k in 0..TINY_FIELDS {
        fields.push_str(&format!("X-Filler-{k:04}: value-{k:012}\r\n"));
    }
    let mut packets = 0;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SERVER.into())
            .starting_at(at(i * 1_000_000_000))
            .step(10)
            .mss(1);
        let request = format!(
            "GET /tiny/{i}?q={:x<width$} HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n",
            "",
            width = TINY_TARGET
        );
        c.handshake().client_sends(request.as_bytes());
        packets += drain(out, &mut c)?;
        let mut c = c.mss(1460);
        c.server_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .fin();
        packets += drain(out, &mut c)?;
    }
    Ok(packets)
}

/// Streams each `h2streams` connection opens, and the body each sends.
const H2_STREAMS: u32 = 512;
const H2_BODY: usize = 8 * 1024;

/// N h2c connections, 10 ms apart: the preface with a 1 GiB window, then [`H2_STREAMS`]
/// POSTs with [`H2_BODY`] bytes of DATA each and no END_STREAM, and nothing more: every
/// stream stays open, holding its head and body, until the capture ends.
fn h2_streams(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    use wirelint::http2::frames::{self, FrameType};
    use wirelint::http2::hpack::HeaderEncoder;
    let body = vec![b'x'; H2_BODY];
    let mut packets = 0;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SocketAddrV4::new(*SERVER.ip(), 8080).into())
            .starting_at(at(i * 10_000_000))
            .step(20);
        c.handshake();
        let mut first = frames::PREFACE.to_vec();
        first.extend(frames::settings_with_window(1 << 30));
        c.client_sends(&first);
        c.server_sends(&frames::settings_with_window(1 << 30));
        let mut enc = HeaderEncoder::default();
        for k in 0..H2_STREAMS {
            let id = 2 * k + 1;
            let path = format!("/upload/{i}/{k}");
            let block = enc.encode(&[
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "example.test"),
                (":path", path.as_str()),
                ("content-type", "application/octet-stream"),
            ]);
            let mut f = frames::encode(FrameType::Headers, frames::END_HEADERS, id, &block);
            f.extend(frames::encode(FrameType::Data, 0, id, &body));
            c.client_sends(&f);
        }
        packets += drain(out, &mut c)?;
    }
    Ok(packets)
}

/// The value of the field each `hpackbomb` request adds to the HPACK table (its entry,
/// 4,038 octets, fits the default 4,096-octet table), and how often it refers to it.
const HPACK_BOMB_VALUE: usize = 4000;
const HPACK_BOMB_REFS: usize = 12_000;

/// An HPACK string literal, sent raw (RFC 7541 §5.2).
fn hpack_string(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut len = s.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128) as u8 | 0x80);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend_from_slice(s);
    out
}

/// N h2c connections, 10 ms apart, each one GET whose header block decodes to
/// [`HPACK_BOMB_REFS`] copies of a [`HPACK_BOMB_VALUE`]-octet field, answered 204.
fn hpack_bomb(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    use wirelint::http2::frames::{self, FrameType};
    use wirelint::http2::hpack::HeaderEncoder;
    let mut packets = 0;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SocketAddrV4::new(*SERVER.ip(), 8080).into())
            .starting_at(at(i * 10_000_000))
            .step(20);
        c.handshake();
        // :method GET, :scheme http (static); :path and :authority without indexing;
        // x-bomb with incremental indexing (dynamic index 62); then index 62, again and again.
        let mut block = vec![0x82, 0x86, 0x04];
        block.extend(hpack_string(format!("/bomb/{i}").as_bytes()));
        block.push(0x01);
        block.extend(hpack_string(b"example.test"));
        block.push(0x40);
        block.extend(hpack_string(b"x-bomb"));
        block.extend(hpack_string(&[b'v'; HPACK_BOMB_VALUE]));
        block.extend(std::iter::repeat_n(0xbe, HPACK_BOMB_REFS));
        let mut first = frames::PREFACE.to_vec();
        first.extend(frames::encode(FrameType::Settings, 0, 0, &[]));
        first.extend(frames::encode(
            FrameType::Headers,
            frames::END_HEADERS | frames::END_STREAM,
            1,
            &block,
        ));
        c.client_sends(&first);
        let mut answer = frames::encode(FrameType::Settings, 0, 0, &[]);
        let head = HeaderEncoder::default().encode(&[(":status", "204")]);
        answer.extend(frames::encode(
            FrameType::Headers,
            frames::END_HEADERS | frames::END_STREAM,
            1,
            &head,
        ));
        c.server_sends(&answer).fin();
        packets += drain(out, &mut c)?;
    }
    Ok(packets)
}

/// How much each bomb inflates to.
const BOMB_INFLATED: usize = 1 << 30;

/// N request/response pairs on their own connections whose response body is a gzip member
/// of [`BOMB_INFLATED`] zero bytes: even ones as `Content-Encoding: gzip` with a
/// Content-Length, odd ones as `Transfer-Encoding: gzip, chunked`.
fn gzip_bomb(out: &mut Out, n: u64) -> anyhow::Result<u64> {
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..BOMB_INFLATED / zeros.len() {
            e.write_all(&zeros)?;
        }
        e.finish()?
    };
    let mut packets = 0;
    let mut clock = DEFAULT_START;
    for i in 0..n {
        let mut c = Conversation::new(client(i), SERVER.into()).starting_at(clock);
        c.handshake().client_sends(
            format!(
                "GET /bomb/{i} HTTP/1.1\r\nHost: example.test\r\nAccept-Encoding: gzip\r\n\r\n"
            )
            .as_bytes(),
        );
        let mut response = Vec::new();
        if i % 2 == 0 {
            response.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                    bomb.len()
                )
                .as_bytes(),
            );
            response.extend_from_slice(&bomb);
        } else {
            response.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            );
            for chunk in bomb.chunks(16 * 1024) {
                response.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                response.extend_from_slice(chunk);
                response.extend_from_slice(b"\r\n");
            }
            response.extend_from_slice(b"0\r\n\r\n");
        }
        c.server_sends(&response).fin();
        packets += drain(out, &mut c)?;
        clock = c.now();
    }
    Ok(packets)
}
