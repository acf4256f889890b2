//! Link layer → IP (with fragment reassembly) → TCP on a sequence of frames.
//!
//! Input: a link type selector byte, then frames as (u16 LE length, bytes); each frame is
//! 1 ms after the previous, or 40 s when its length's top bit is set (fragment timeouts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelint::capture::{Frame, FrameRef};
use wirelint::decode::Decoder;
use wirelint::time::Timestamp;
use wirelint_fuzz::Cursor;

const LINKTYPES: [u32; 12] = [0, 1, 12, 14, 101, 108, 113, 129, 228, 229, 239, 276];

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let selector = input.u8();
    let linktype = match LINKTYPES.get(usize::from(selector)) {
        Some(&lt) => lt,
        None => u32::from(selector),
    };
    let mut decoder = Decoder::new();
    let mut ts = Timestamp(1_710_237_600_000_000_000);
    let mut number = 0;
    while !input.is_empty() {
        let len = input.u16();
        ts = Timestamp(
            ts.0 + if len & 0x8000 != 0 {
                40_000_000_000
            } else {
                1_000_000
            },
        );
        let bytes = input.bytes(usize::from(len & 0x7fff));
        number += 1;
        let frame = Frame {
            id: FrameRef { file: 0, number },
            ts,
            linktype,
            data: bytes,
            orig_len: bytes.len() as u32 + u32::from(len >> 14 & 1) * 100,
        };
        if let Some(seg) = decoder.decode(&frame) {
            std::hint::black_box((seg.seq, seg.ack, seg.flags, seg.payload.len(), seg.missing));
        }
    }
    std::hint::black_box(decoder.finish());
});
