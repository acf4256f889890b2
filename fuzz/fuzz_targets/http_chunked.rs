//! The chunked decoder, through the real http stage: a request, then a response head with
//! `Transfer-Encoding: chunked` (or a chunked request body), then the fuzzer's bytes as the
//! body, delivered in pieces of fuzzer-chosen sizes with occasional gaps; then a second
//! exchange to check resynchronisation, and the close.
//!
//! Input: a control byte (bit 0: chunked request instead of response; bits 1-2: how the
//! connection ends; bit 3: insert gaps), a piece size byte, then the body.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use wirelint::http::content::decoded_body;
use wirelint::http::{HttpConfig, HttpConnection};
use wirelint::reassembly::{CloseReason, Piece};
use wirelint_fuzz::{Cursor, pos};

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let control = input.u8();
    let piece = usize::from(input.u8()).max(1);
    let body = input.rest();

    let client: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    let server: SocketAddr = "192.0.2.2:80".parse().unwrap();
    let cfg = HttpConfig {
        body_cap: 4096,
        max_head: 8192,
    };
    let mut conn = HttpConnection::new(cfg, [client, server], pos(1), Some(0), [false, false]);
    let mut out = Vec::new();
    let mut frame = 1;
    let mut send = |conn: &mut HttpConnection, dir: usize, bytes: &[u8], out: &mut Vec<_>| {
        frame += 1;
        conn.piece(dir, Piece::Data(bytes), pos(frame), out);
    };
    let chunked_request = control & 1 != 0;
    let (body_dir, head): (usize, &[u8]) = if chunked_request {
        (
            0,
            b"POST /upload HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
    } else {
        send(
            &mut conn,
            0,
            b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n",
            &mut out,
        );
        (
            1,
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
    };
    send(&mut conn, body_dir, head, &mut out);
    for (i, part) in body.chunks(piece).enumerate() {
        if control & 8 != 0 && i % 7 == 3 {
            frame += 1;
            conn.piece(
                body_dir,
                Piece::Gap(part.len() as u64),
                pos(frame),
                &mut out,
            );
            continue;
        }
        send(&mut conn, body_dir, part, &mut out);
    }
    if chunked_request {
        send(&mut conn, 1, b"HTTP/1.1 204 No Content\r\n\r\n", &mut out);
    }
    send(
        &mut conn,
        0,
        b"GET /next HTTP/1.1\r\nHost: example.test\r\n\r\n",
        &mut out,
    );
    send(
        &mut conn,
        1,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        &mut out,
    );
    let (fin, reason) = match control >> 1 & 3 {
        0 => ([true, true], CloseReason::Closed),
        1 => ([false, false], CloseReason::EndOfCapture),
        2 => ([true, false], CloseReason::IdleTimeout),
        _ => ([false, false], CloseReason::Evicted),
    };
    frame += 1;
    conn.close(fin, reason, pos(frame), &mut out);
    for ex in &out {
        for msg in [&ex.request, &ex.response].into_iter().flatten() {
            std::hint::black_box(decoded_body(msg, 64 * 1024).is_ok());
        }
        std::hint::black_box(ex.anomaly_names());
    }
});
