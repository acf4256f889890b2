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
use wirelint::http::{Exchange, HttpConfig, HttpConnection};
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
        ..HttpConfig::default()
    };
    let mut feed = Feed {
        conn: HttpConnection::new(cfg, [client, server], pos(1), Some(0), [false, false]),
        out: Vec::new(),
        frame: 1,
    };
    let chunked_request = control & 1 != 0;
    let (body_dir, head): (usize, &[u8]) = if chunked_request {
        (
            0,
            b"POST /upload HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
    } else {
        feed.data(0, b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n");
        (
            1,
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
    };
    feed.data(body_dir, head);
    for (i, part) in body.chunks(piece).enumerate() {
        if control & 8 != 0 && i % 7 == 3 {
            feed.piece(body_dir, Piece::Gap(part.len() as u64));
        } else {
            feed.data(body_dir, part);
        }
    }
    if chunked_request {
        feed.data(1, b"HTTP/1.1 204 No Content\r\n\r\n");
    }
    feed.data(0, b"GET /next HTTP/1.1\r\nHost: example.test\r\n\r\n");
    feed.data(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let (fin, reason) = match control >> 1 & 3 {
        0 => ([true, true], CloseReason::Closed),
        1 => ([false, false], CloseReason::EndOfCapture),
        2 => ([true, false], CloseReason::IdleTimeout),
        _ => ([false, false], CloseReason::Evicted),
    };
    let Feed {
        mut conn,
        mut out,
        frame,
    } = feed;
    conn.close(fin, reason, pos(frame + 1), &mut out);
    for ex in &out {
        for msg in [&ex.request, &ex.response].into_iter().flatten() {
            std::hint::black_box(decoded_body(msg, 64 * 1024).is_ok());
        }
        std::hint::black_box(ex.anomaly_names());
    }
});

/// One connection being fed, frame by frame.
struct Feed {
    conn: HttpConnection,
    out: Vec<Exchange>,
    frame: u64,
}

impl Feed {
    fn piece(&mut self, dir: usize, piece: Piece<'_>) {
        self.frame += 1;
        self.conn.piece(dir, piece, pos(self.frame), &mut self.out);
    }

    fn data(&mut self, dir: usize, bytes: &[u8]) {
        self.piece(dir, Piece::Data(bytes));
    }
}
