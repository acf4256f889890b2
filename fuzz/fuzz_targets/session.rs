//! One TCP connection's two byte streams through `Session`, the stage that decides the
//! protocol and parses it: HTTP/1 (with PROXY protocol headers, upgrades and tunnels),
//! HTTP/2 with prior knowledge or joined late (frame boundary search, HPACK), and TLS
//! (ClientHello, records, decryption with the key logs of `captures/tls` and key-log text
//! from the input), delivered as fuzzer-chosen pieces with gaps, cuts, conflicts,
//! acknowledgements and quiet ticks, then closed. Every exchange must serialise as the
//! `exchanges --format jsonl` object.
//!
//! Input: a control byte (bits 0-1: the client by SYN: 0 or 1, else unknown; bit 2: joined
//! mid-stream; bit 3: the server port is in `http_ports`; bits 4-5: FIN seen per direction;
//! bit 6: closed by end of capture instead of FIN/RST), a key-log length byte and that many
//! bytes of key-log text, then records of
//!   b0: bit 0 direction, bits 1-3 kind (0-3 data, 4 gap, 5 cut, 6 conflict, 7 ack or
//!       quiet tick), bits 4-7 and b1: length (12 bits) for data, gap and cut
//!   then the data.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use wirelint::http::HttpConfig;
use wirelint::reassembly::{CloseReason, Piece};
use wirelint::report::exchange_json::ExchangeJson;
use wirelint::session::{Session, SessionConfig};
use wirelint::tls::{KeyLog, Keys, TlsConfig};
use wirelint_fuzz::{Cursor, pos};

/// The key logs of the project's TLS captures, so seeds made from them decrypt.
fn bundled_keys() -> &'static KeyLog {
    static KEYS: OnceLock<KeyLog> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut log = KeyLog::new();
        for text in [
            &include_bytes!("../../captures/tls/tls-chacha.keys")[..],
            &include_bytes!("../../captures/tls/tls12-http1.keys")[..],
            &include_bytes!("../../captures/tls/tls13-h2.keys")[..],
        ] {
            log.add_text(text);
        }
        log
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let control = input.u8();
    let keylog_len = usize::from(input.u8());
    let mut log = bundled_keys().clone();
    log.merge(KeyLog::parse(input.bytes(keylog_len)));

    let client: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    let server: SocketAddr = "192.0.2.2:8080".parse().unwrap();
    let cfg = SessionConfig {
        http: HttpConfig {
            body_cap: 4096,
            max_head: 8192,
            ..HttpConfig::default()
        },
        tls: TlsConfig {
            keys: Keys::new(log),
            wait_for_keys: false,
        },
        http_ports: if control & 8 != 0 {
            Arc::from([8080u16])
        } else {
            Arc::from([])
        },
    };
    let hint = match control & 3 {
        0 => Some(0),
        1 => Some(1),
        _ => None,
    };
    let mid = control & 4 != 0;
    let mut session = Session::new(cfg, [client, server], pos(1), hint, [mid, mid]);
    let mut out = Vec::new();
    let mut frame = 1u64;
    let mut sent = [0u64; 2];
    while !input.is_empty() {
        let b0 = input.u8();
        let dir = usize::from(b0 & 1);
        let kind = (b0 >> 1) & 7;
        let len = usize::from(b0 >> 4) << 8 | usize::from(input.u8());
        frame += 1;
        let at = pos(frame);
        match kind {
            0..=3 => {
                let bytes = input.bytes(len);
                sent[dir] += bytes.len() as u64;
                session.piece(dir, Piece::Data(bytes), at, &mut out);
            }
            4 => {
                sent[dir] += len as u64;
                session.piece(dir, Piece::Gap(len as u64), at, &mut out);
            }
            5 => {
                sent[dir] += len as u64;
                session.piece(dir, Piece::Cut(len as u64), at, &mut out);
            }
            6 => session.piece(dir, Piece::Conflict, at, &mut out),
            _ if len & 1 == 0 => session.ack(dir, sent[1 - dir].saturating_sub(len as u64 >> 1)),
            _ => session.release_held(&mut out),
        }
    }
    let reason = if control & 64 != 0 {
        CloseReason::EndOfCapture
    } else {
        CloseReason::Closed
    };
    let fin = [control & 16 != 0, control & 32 != 0];
    session.close(fin, reason, pos(frame + 1), &mut out);
    let names = vec!["fuzz.pcap".to_string()];
    for ex in &out {
        let json = serde_json::to_string(&ExchangeJson::new(ex, &names))
            .expect("an exchange always serialises");
        std::hint::black_box(json);
    }
    std::hint::black_box((session.stats(), session.tls_stats()));
});
