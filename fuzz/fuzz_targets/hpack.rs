//! HPACK decoding: header blocks through one decoder (one direction of a connection),
//! checked against `loona-hpack`, the decoder wirelint used before its own: the same
//! fields and the same verdict (and error text) for every block, until the first error.
//! A small header list limit makes blocks past it common: wirelint keeps the fields that
//! fit, the first ones, and counts the rest.
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
/// The header list limit under test, in RFC 9113 §6.5.2 octets (name + value + 32 each).
const LIST_LIMIT: usize = 2048;

fn list_size(fields: &[(Vec<u8>, Vec<u8>)]) -> usize {
    fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let mut ours = HeaderDecoder::default();
    ours.set_list_limit(LIST_LIMIT);
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
        let (Ok(kept), Ok(all)) = (&a, &b) else {
            assert_eq!(a, b, "block {block:02x?}");
            break;
        };
        let over = ours.left_out().over_limit;
        assert_eq!(kept.len() + over, all.len(), "block {block:02x?}");
        assert_eq!(kept[..], all[..kept.len()], "block {block:02x?}");
        assert!(list_size(kept) <= LIST_LIMIT, "block {block:02x?}");
        if over > 0 {
            assert!(list_size(&all[..=kept.len()]) > LIST_LIMIT, "block {block:02x?}");
        }
    }
});
