//! HPACK decoding: header blocks through one decoder (one direction of a connection),
//! checked against `loona-hpack`, the decoder wirelint used before its own: the same
//! fields and the same verdict (and error text) for every block, until the first error.
//!
//! Input: records, each a length byte then that many bytes of header block; a length byte
//! of 255 instead raises the allowed table size (SETTINGS_HEADER_TABLE_SIZE) to the next
//! u16 × 32 octets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelint::http2::hpack::HeaderDecoder;
use wirelint_fuzz::Cursor;

/// The cap wirelint puts on the allowed table size (`MAX_TABLE` in src/http2/hpack.rs).
const MAX_TABLE: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let mut ours = HeaderDecoder::default();
    let mut reference = loona_hpack::Decoder::new();
    let mut allowed = 4096;
    reference.set_max_allowed_table_size(allowed);
    while !input.is_empty() {
        let len = input.u8();
        if len == 255 {
            let size = u32::from(input.u16()) * 32;
            ours.allow_table_size(size);
            let size = (size as usize).min(MAX_TABLE);
            if size > allowed {
                allowed = size;
                reference.set_max_allowed_table_size(size);
            }
            continue;
        }
        let block = input.bytes(usize::from(len));
        let a = ours.decode(block).map_err(|e| e.to_string());
        let b = reference.decode(block).map_err(|e| format!("{e:?}"));
        assert_eq!(a, b, "block {block:02x?}");
        if a.is_err() {
            break;
        }
    }
});
