//! Rule examples (raw HTTP in rule files) turned into exchanges by the real http stage, so
//! that every example is checked by the same parser and engine as real traffic.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::file::{ExampleExchange, ExampleFile};
use crate::capture::{FrameRef, Pos};
use crate::http::{Exchange, HttpConfig, HttpConnection};
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

struct Conn {
    http: HttpConnection,
    frame: u64,
}

/// Runs an example through the http stage; returns its exchanges in order.
pub fn exchanges(example: &ExampleFile) -> Vec<Exchange> {
    let single;
    let items: &[ExampleExchange] = if example.exchange.is_empty() {
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
                let mut http = HttpConnection::new(
                    HttpConfig::default(),
                    [client, server],
                    first,
                    Some(0),
                    [false, false],
                );
                http.set_tls(tls);
                conns.push((
                    key.0,
                    key.1,
                    Conn {
                        http,
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
            conn.http
                .piece(dir, Piece::Data(bytes), pos(conn.frame, clock, order), out);
        };
        if let Some(req) = &item.request {
            send(0, &wire_bytes(req, item.raw), conn, &mut out);
        }
        for interim in &item.interim {
            send(1, &wire_bytes(interim, item.raw), conn, &mut out);
        }
        if let Some(resp) = &item.response {
            send(1, &wire_bytes(resp, item.raw), conn, &mut out);
        }
    }
    for (_, _, mut conn) in conns {
        order += 1;
        conn.frame += 1;
        let at = pos(conn.frame, clock, order);
        conn.http
            .close([true, true], CloseReason::Closed, at, &mut out);
    }
    out
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
