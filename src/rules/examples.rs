//! Rule examples (raw HTTP in rule files) turned into exchanges by the real http stage, so
//! that every example is checked by the same parser and engine as real traffic.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::file::{ExampleExchange, ExampleFile};
use crate::capture::{FrameRef, Pos};
use crate::http::{Exchange, HttpConfig, HttpConnection, TlsInfo};
use crate::http2::Http2Connection;
use crate::http2::frames::{self, FrameType};
use crate::http2::hpack::HeaderEncoder;
use crate::reassembly::{CloseReason, Piece};
use crate::time::Timestamp;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// 2025-03-03T10:00:00Z (a Monday): an example's clock starts here, so Date fields in
/// examples are written around then.
const EPOCH_SECS: i64 = 1_740_996_000;

/// Converts an example message: head lines LF → CRLF (unless `raw`), body byte for byte.
pub fn wire_bytes(text: &str, raw: bool) -> Vec<u8> {
    if raw {
        return text.as_bytes().to_vec();
    }
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i + 2], &text[i + 2..]),
        None => (text, ""),
    };
    let mut out = Vec::with_capacity(text.len() + 32);
    for b in head.bytes() {
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
        } else if b != b'\r' {
            out.push(b);
        }
    }
    out.extend_from_slice(body.as_bytes());
    out
}

/// An example's connection: HTTP/1 text, or HTTP/2 frames built from header lists.
enum Proto {
    Http1(Box<HttpConnection>),
    Http2 {
        conn: Box<Http2Connection>,
        /// HPACK state of the client (0) and the server (1).
        enc: [HeaderEncoder; 2],
        next_stream: u32,
    },
}

struct Conn {
    proto: Proto,
    frame: u64,
}

impl Conn {
    fn piece(&mut self, dir: usize, bytes: &[u8], at: Pos, out: &mut Vec<Exchange>) {
        match &mut self.proto {
            Proto::Http1(h) => h.piece(dir, Piece::Data(bytes), at, out),
            Proto::Http2 { conn, .. } => conn.piece(dir, Piece::Data(bytes), at, out),
        }
    }

    fn close(&mut self, at: Pos, out: &mut Vec<Exchange>) {
        match &mut self.proto {
            Proto::Http1(h) => h.close([true, true], CloseReason::Closed, at, out),
            Proto::Http2 { conn, .. } => conn.close([true, true], CloseReason::Closed, at, out),
        }
    }
}

/// An HTTP/2 example message: its fields (pseudo-headers first, as written) and body.
fn header_list(text: &str) -> (Vec<(String, String)>, &[u8]) {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text.trim_end_matches('\n'), ""),
    };
    let fields = head
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let line = line.trim_end_matches('\r');
            // A pseudo-header's name begins with its own colon.
            let split = line.get(1..).and_then(|r| r.find(':')).map(|i| i + 1);
            match split {
                Some(i) => (line[..i].to_string(), line[i + 1..].trim().to_string()),
                None => (line.to_string(), String::new()),
            }
        })
        .collect();
    (fields, body.as_bytes())
}

/// One message as HTTP/2 frames on `stream`: HEADERS, then DATA in frames of at most
/// 16 KiB; END_STREAM on the last.
fn h2_frames(enc: &mut HeaderEncoder, stream: u32, text: &str, end: bool) -> Vec<u8> {
    let (fields, body) = header_list(text);
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let block = enc.encode(&refs);
    let mut flags = frames::END_HEADERS;
    if end && body.is_empty() {
        flags |= frames::END_STREAM;
    }
    let mut out = frames::encode(FrameType::Headers, flags, stream, &block);
    let chunks: Vec<&[u8]> = body.chunks(16_384).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = end && i + 1 == chunks.len();
        let flags = if last { frames::END_STREAM } else { 0 };
        out.extend(frames::encode(FrameType::Data, flags, stream, chunk));
    }
    out
}

/// Runs an example through the http stage; returns its exchanges in order.
pub fn exchanges(example: &ExampleFile) -> Vec<Exchange> {
    let single;
    let single_item = example.exchange.is_empty();
    let items: &[ExampleExchange] = if single_item {
        single = [ExampleExchange {
            request: example.request.clone(),
            response: example.response.clone(),
            interim: example.interim.clone(),
            raw: example.raw,
            connection: 0,
            client: None,
            at: None,
        }];
        &single
    } else {
        &example.exchange
    };
    let tls = example.transport.as_deref() == Some("tls");
    let http2 = example.version.as_deref() == Some("HTTP/2");
    let server: SocketAddr = example
        .server
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SocketAddr::new(
            IpAddr::V4(SERVER),
            if tls { 443 } else { 80 },
        ));
    let mut conns: Vec<(u32, String, Conn)> = Vec::new();
    let mut out = Vec::new();
    let mut order = 0u64;
    let mut clock = 0.0f64;
    for (i, item) in items.iter().enumerate() {
        clock = item.at.unwrap_or(if i == 0 { 0.0 } else { clock + 1.0 });
        let client_ip: IpAddr = item
            .client
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(IpAddr::V4(CLIENT));
        let key = (item.connection, client_ip.to_string());
        let idx = match conns.iter().position(|(c, ip, _)| (*c, ip.clone()) == key) {
            Some(idx) => idx,
            None => {
                let client = SocketAddr::new(client_ip, 40000 + conns.len() as u16);
                let first = pos(conns.len() as u64 * 1000 + 1, clock, order);
                let proto = if http2 {
                    let mut conn = Http2Connection::new(
                        HttpConfig::default(),
                        [client, server],
                        first,
                        0,
                        [false, false],
                        // An example over TLS stands for h2 negotiated with ALPN.
                        tls.then(|| TlsInfo {
                            protocol: "TLS 1.3".to_owned(),
                            alpn: Some("h2".to_owned()),
                            ..TlsInfo::default()
                        }),
                    );
                    let settings = frames::encode(FrameType::Settings, 0, 0, &[]);
                    let mut preface = frames::PREFACE.to_vec();
                    preface.extend_from_slice(&settings);
                    conn.piece(0, Piece::Data(&preface), first, &mut out);
                    conn.piece(1, Piece::Data(&settings), first, &mut out);
                    Proto::Http2 {
                        conn: Box::new(conn),
                        enc: [HeaderEncoder::default(), HeaderEncoder::default()],
                        next_stream: 1,
                    }
                } else {
                    let mut http = HttpConnection::new(
                        HttpConfig::default(),
                        [client, server],
                        first,
                        Some(0),
                        [false, false],
                    );
                    http.set_tls(tls);
                    Proto::Http1(Box::new(http))
                };
                conns.push((
                    key.0,
                    key.1,
                    Conn {
                        proto,
                        frame: first.frame.number,
                    },
                ));
                conns.len() - 1
            }
        };
        let conn = &mut conns[idx].2;
        let mut send = |dir: usize, bytes: &[u8], conn: &mut Conn, out: &mut Vec<Exchange>| {
            if bytes.is_empty() {
                return;
            }
            conn.frame += 1;
            order += 1;
            conn.piece(dir, bytes, pos(conn.frame, clock, order), out);
        };
        // The bytes of each message, in the order they are sent.
        let mut messages: Vec<(usize, Vec<u8>)> = Vec::new();
        match &mut conn.proto {
            Proto::Http1(_) => {
                if let Some(req) = &item.request {
                    messages.push((0, wire_bytes(req, item.raw)));
                }
                for interim in &item.interim {
                    messages.push((1, wire_bytes(interim, item.raw)));
                }
                if let Some(resp) = &item.response {
                    let mut bytes = wire_bytes(resp, item.raw);
                    if let Some(gz) = example.response_gzip.as_ref().filter(|_| single_item) {
                        with_generated_body(&mut bytes, &gz.bytes());
                    }
                    messages.push((1, bytes));
                }
            }
            Proto::Http2 {
                enc, next_stream, ..
            } => {
                let stream = *next_stream;
                *next_stream += 2;
                if let Some(req) = &item.request {
                    messages.push((0, h2_frames(&mut enc[0], stream, req, true)));
                }
                for interim in &item.interim {
                    messages.push((1, h2_frames(&mut enc[1], stream, interim, false)));
                }
                if let Some(resp) = &item.response {
                    messages.push((1, h2_frames(&mut enc[1], stream, resp, true)));
                }
            }
        }
        for (dir, bytes) in &messages {
            send(*dir, bytes, conn, &mut out);
        }
    }
    for (_, _, mut conn) in conns {
        order += 1;
        conn.frame += 1;
        let at = pos(conn.frame, clock, order);
        conn.close(at, &mut out);
    }
    out
}

/// Appends a generated body to a response head (ending in the blank line): as one chunk
/// when the head's Transfer-Encoding ends in `chunked`, else with a `Content-Length` added
/// unless the head frames the body itself.
fn with_generated_body(msg: &mut Vec<u8>, body: &[u8]) {
    let head = String::from_utf8_lossy(msg).to_ascii_lowercase();
    let chunked = head
        .split("\r\n")
        .any(|l| l.starts_with("transfer-encoding:") && l.trim_end().ends_with("chunked"));
    let framed = head.contains("\ncontent-length:") || head.contains("\ntransfer-encoding:");
    if !framed && msg.ends_with(b"\r\n\r\n") {
        msg.truncate(msg.len() - 2);
        msg.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    }
    if chunked {
        msg.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        msg.extend_from_slice(body);
        msg.extend_from_slice(b"\r\n0\r\n\r\n");
    } else {
        msg.extend_from_slice(body);
    }
}

fn pos(frame: u64, secs: f64, order: u64) -> Pos {
    Pos {
        frame: FrameRef {
            file: 0,
            number: frame,
        },
        ts: Timestamp((EPOCH_SECS as f64 * 1e9 + secs * 1e9) as i64),
        order,
    }
}
