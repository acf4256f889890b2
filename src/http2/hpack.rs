//! HPACK (RFC 7541) header block decoding: one decoder per direction of a connection, its
//! dynamic table bounded by what the receiver allowed.
//!
//! wirelint's own decoder rather than a crate's: header blocks are most of the work of an
//! HTTP/2 connection, and the crate we used (`loona-hpack`, still the encoder of tests and
//! synthetic captures) built a hash-map decoding table for every Huffman-coded string. Here
//! Huffman strings go through a 4-bit state machine built once, the dynamic table keeps one
//! allocation per entry, and strings sent raw are copied once. Its verdicts (which blocks
//! are errors, and the error text) are those of `loona-hpack`, which a differential test
//! checks, so anomalies read as before.

use std::collections::VecDeque;
use std::sync::LazyLock;

/// A decoded field: name and value as bytes (HPACK fields are octets, not text).
pub type Field = (Vec<u8>, Vec<u8>);
/// A literal field: its name (`None`: unknown, joined late) and value.
type LiteralField = (Option<Vec<u8>>, Vec<u8>);
/// A field's name and value in a table.
type FieldRef<'a> = (&'a [u8], &'a [u8]);

/// Largest dynamic table wirelint keeps, whatever SETTINGS say (memory bound per direction).
const MAX_TABLE: usize = 1024 * 1024;
/// Header list limit of a new decoder, in RFC 9113 §6.5.2 octets (each field's name and
/// value plus 32): the HTTP/1 head cap's default. One indexed octet can repeat a table
/// entry of up to `MAX_TABLE` octets, so without a limit a 16 KiB frame could decode into
/// gigabytes (the "HPACK bomb").
pub const DEFAULT_LIST_LIMIT: usize = 64 * 1024;
/// Fields a decoded block starts with room for, whatever its length says.
const FIELDS_RESERVED: usize = 64;

/// Why a header block could not be decoded. The messages are those `loona-hpack` gave
/// (wirelint's decoder until 2026-12), so that anomaly details stay the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// An index beyond the static and dynamic tables (or index 0).
    #[error("HeaderIndexOutOfBounds")]
    IndexOutOfBounds,
    /// An integer of more than four continuation octets (RFC 7541 §5.1: too large).
    #[error("IntegerDecodingError(TooManyOctets)")]
    IntegerTooLong,
    /// The block ends inside an integer.
    #[error("IntegerDecodingError(NotEnoughOctets)")]
    IntegerTruncated,
    /// The block ends inside a string literal.
    #[error("StringDecodingError(NotEnoughOctets)")]
    StringTruncated,
    /// Huffman padding longer than 7 bits (RFC 7541 §5.2).
    #[error("StringDecodingError(HuffmanDecoderError(PaddingTooLarge))")]
    HuffmanPaddingTooLong,
    /// Huffman padding that is not a prefix of EOS (all ones).
    #[error("StringDecodingError(HuffmanDecoderError(InvalidPadding))")]
    HuffmanBadPadding,
    /// The EOS symbol inside a Huffman string.
    #[error("StringDecodingError(HuffmanDecoderError(EOSInString))")]
    HuffmanEos,
    /// A dynamic table size update above what the receiver allowed.
    #[error("InvalidMaxDynamicSize")]
    TableSizeAboveAllowed,
    /// A block whose last representation is a table size update.
    #[error("SizeUpdateAtEnd")]
    SizeUpdateAtEnd,
}

/// One dynamic table entry: name and value in one allocation.
#[derive(Debug)]
struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
    /// Joined late: the entry's name was itself a reference to state from before the
    /// capture (its value is known, its name is not).
    name_unknown: bool,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }

    fn value(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }
}

/// RFC 7541 §4.1: an entry's size counts 32 octets of overhead.
const ENTRY_OVERHEAD: usize = 32;

/// The header decompression state of one direction.
#[derive(Debug)]
pub struct HeaderDecoder {
    /// Newest entry first (index 62 is `table[0]`).
    table: VecDeque<Entry>,
    /// Sum of the entries' sizes.
    size: usize,
    /// Current maximum size, as set by the sender's size updates.
    max_size: usize,
    /// Largest size the receiver allowed (SETTINGS_HEADER_TABLE_SIZE), capped by MAX_TABLE.
    allowed: usize,
    /// The capture joined the connection after it began: entries added before are not
    /// known (see [`HeaderDecoder::joined_late`]).
    joined_late: bool,
    /// Fields of the last block that referred to entries from before the capture.
    unknown: usize,
    /// Header list octets a block's kept fields may add up to.
    list_limit: usize,
    /// Fields of the last block decoded past `list_limit` and not kept.
    over_limit: usize,
}

/// Fields of a decoded block that its message does not get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Referred to compression state from before the capture began (joined late).
    pub unknown: usize,
    /// Past the header list limit: decoded, so that the table stays in step, not kept.
    pub over_limit: usize,
    /// That limit, in header list octets.
    pub limit: usize,
}

impl LeftOut {
    /// Whether the message misses any field of its block.
    pub fn any(&self) -> bool {
        self.unknown > 0 || self.over_limit > 0
    }
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        let allowed = super::frames::DEFAULT_HEADER_TABLE_SIZE as usize;
        HeaderDecoder {
            table: VecDeque::new(),
            size: 0,
            max_size: allowed,
            allowed,
            joined_late: false,
            unknown: 0,
            list_limit: DEFAULT_LIST_LIMIT,
            over_limit: 0,
        }
    }
}

impl HeaderDecoder {
    /// A decoder for a connection the capture joined after it began: the dynamic table
    /// already held entries it never saw. Entries are indexed newest first (§2.3.3), so the
    /// ones added from now on keep their true indices; a reference past them is a field
    /// from before the capture, counted in [`HeaderDecoder::left_out`] and left out.
    /// The table's real size and limit are unknown: this one keeps entries up to
    /// `MAX_TABLE` (it holds a subset of the real table's entries, never a wrong one:
    /// the real table evicts its unknown older entries first).
    pub fn joined_late() -> HeaderDecoder {
        HeaderDecoder {
            max_size: MAX_TABLE,
            allowed: MAX_TABLE,
            joined_late: true,
            ..HeaderDecoder::default()
        }
    }

    /// Keeps a block's fields only while their header list size (RFC 9113 §6.5.2) is
    /// within `limit` octets; the rest are decoded and counted in [`HeaderDecoder::left_out`].
    pub fn set_list_limit(&mut self, limit: usize) {
        self.list_limit = limit;
    }

    /// Fields of the last decoded block that its message does not get.
    pub fn left_out(&self) -> LeftOut {
        LeftOut {
            unknown: self.unknown,
            over_limit: self.over_limit,
            limit: self.list_limit,
        }
    }

    /// The receiver announced SETTINGS_HEADER_TABLE_SIZE. The sender may use it only once
    /// it has seen it, so the larger of the old and the new limit is accepted meanwhile.
    pub fn allow_table_size(&mut self, size: u32) {
        let size = (size as usize).min(MAX_TABLE);
        if size > self.allowed {
            self.allowed = size;
        }
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION fragments joined): its
    /// fields up to the list limit.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut fields = Vec::with_capacity((block.len() / 4 + 1).min(FIELDS_RESERVED));
        let mut list = ListBudget::new(self.list_limit);
        let mut i = 0;
        let mut last_was_size_update = false;
        self.unknown = 0;
        self.over_limit = 0;
        while let Some(&first) = block.get(i) {
            last_was_size_update = false;
            let rest = &block[i..];
            if first & 0x80 != 0 {
                // §6.1 indexed field.
                let (index, n) = integer(rest, 7)?;
                match self.get(index)? {
                    Some((name, value)) => {
                        if list.admit(name.len(), value.len()) {
                            fields.push((name.to_vec(), value.to_vec()));
                        }
                    }
                    None => self.unknown += 1,
                }
                i += n;
            } else if first & 0x40 != 0 {
                // §6.2.1 literal with incremental indexing.
                let ((name, value), n) = self.literal(rest, 6)?;
                match name {
                    Some(name) => {
                        self.insert(&name, &value, false);
                        if list.admit(name.len(), value.len()) {
                            fields.push((name, value));
                        }
                    }
                    None => {
                        self.insert(&[], &value, true);
                        self.unknown += 1;
                    }
                }
                i += n;
            } else if first & 0x20 != 0 {
                // §6.3 dynamic table size update.
                last_was_size_update = true;
                let (size, n) = integer(rest, 5)?;
                if size > self.allowed {
                    return Err(HpackError::TableSizeAboveAllowed);
                }
                self.max_size = size;
                self.evict(0);
                i += n;
            } else {
                // §6.2.2 without indexing, §6.2.3 never indexed: the same to a reader.
                let ((name, value), n) = self.literal(rest, 4)?;
                match name {
                    Some(name) => {
                        if list.admit(name.len(), value.len()) {
                            fields.push((name, value));
                        }
                    }
                    None => self.unknown += 1,
                }
                i += n;
            }
        }
        self.over_limit = list.over;
        if last_was_size_update {
            return Err(HpackError::SizeUpdateAtEnd);
        }
        Ok(fields)
    }

    /// The fields of `block` up to the first representation that cannot be read (for a
    /// glance at a block whose end may be missing).
    /// Fields past the list limit end the glance.
    pub fn decode_prefix(&mut self, block: &[u8]) -> Vec<Field> {
        let mut fields = Vec::new();
        let mut list = ListBudget::new(self.list_limit);
        let mut i = 0;
        while i < block.len() {
            let Some(n) = representation_len(&block[i..]) else {
                break;
            };
            if block[i] & 0xe0 == 0x20 {
                // A table size update: nothing to see, and alone it is not a valid block.
                i += n;
                continue;
            }
            match self.decode(&block[i..i + n]) {
                Ok(f) => {
                    for (name, value) in f {
                        if !list.admit(name.len(), value.len()) {
                            return fields;
                        }
                        fields.push((name, value));
                    }
                }
                Err(_) => break,
            }
            i += n;
        }
        fields
    }

    /// A literal field representation whose name index has `prefix` bits; the name is
    /// `None` when it refers to an entry from before the capture (joined late).
    fn literal(&self, buf: &[u8], prefix: u8) -> Result<(LiteralField, usize), HpackError> {
        let (index, mut used) = integer(buf, prefix)?;
        let name = if index == 0 {
            let (name, n) = string(&buf[used..])?;
            used += n;
            Some(name)
        } else {
            self.get(index)?.map(|(name, _)| name.to_vec())
        };
        let (value, n) = string(&buf[used..])?;
        Ok(((name, value), used + n))
    }

    /// Field `index` of the static table followed by the dynamic table (§2.3.3). `None`:
    /// joined late, and the index is past the entries seen (or names an entry whose name
    /// was not seen).
    fn get(&self, index: usize) -> Result<Option<FieldRef<'_>>, HpackError> {
        if index == 0 {
            return Err(HpackError::IndexOutOfBounds);
        }
        if let Some(&(name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok(Some((name, value)));
        }
        match self.table.get(index - 1 - STATIC_TABLE.len()) {
            Some(e) if !e.name_unknown => Ok(Some((e.name(), e.value()))),
            Some(_) => Ok(None),
            None if self.joined_late => Ok(None),
            None => Err(HpackError::IndexOutOfBounds),
        }
    }

    /// Adds an entry, evicting the oldest ones to make room (§4.4); an entry larger than
    /// the table empties it and is not kept.
    fn insert(&mut self, name: &[u8], value: &[u8], name_unknown: bool) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        self.table.push_front(Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
            name_unknown,
        });
        self.size += size;
    }

    /// Evicts the oldest entries until `room` more octets fit under the maximum size.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some(e) = self.table.pop_back() else {
                self.size = 0;
                return;
            };
            self.size -= e.bytes.len() + ENTRY_OVERHEAD;
        }
    }

    /// The size of the dynamic table (§4.1), for tests.
    #[cfg(test)]
    fn table_size(&self) -> usize {
        self.size
    }

    /// Memory the dynamic table holds: its §4.1 size (each entry's bytes and 32) and the
    /// queue's slots.
    pub fn memory(&self) -> usize {
        self.size + self.table.capacity() * std::mem::size_of::<Entry>()
    }
}

/// The header list octets a block's kept fields have used, against the limit.
struct ListBudget {
    used: usize,
    limit: usize,
    /// Fields not kept.
    over: usize,
}

impl ListBudget {
    fn new(limit: usize) -> Self {
        ListBudget {
            used: 0,
            limit,
            over: 0,
        }
    }

    /// Whether a field of `name_len` and `value_len` octets is kept. Once one is not, no
    /// later one is: the kept fields are the block's first ones.
    fn admit(&mut self, name_len: usize, value_len: usize) -> bool {
        let size = name_len + value_len + ENTRY_OVERHEAD;
        if self.over == 0 && self.used + size <= self.limit {
            self.used += size;
            true
        } else {
            self.over += 1;
            false
        }
    }
}

/// The length of the representation at the start of `buf`, if it is all there.
fn representation_len(buf: &[u8]) -> Option<usize> {
    let first = *buf.first()?;
    let (prefix, literal) = if first & 0x80 != 0 {
        (7, false)
    } else if first & 0x40 != 0 {
        (6, true)
    } else if first & 0x20 != 0 {
        (5, false)
    } else {
        (4, true)
    };
    let (index, mut used) = integer(buf, prefix).ok()?;
    if literal {
        if index == 0 {
            let (len, n) = integer(buf.get(used..)?, 7).ok()?;
            used += n + len;
        }
        let (len, n) = integer(buf.get(used..)?, 7).ok()?;
        used += n + len;
    }
    (used <= buf.len()).then_some(used)
}

/// An integer with an N-bit prefix (§5.1): the value and the octets used. At most four
/// continuation octets, as `loona-hpack` allowed (values up to about 2^28).
fn integer(buf: &[u8], prefix: u8) -> Result<(usize, usize), HpackError> {
    let Some(&first) = buf.first() else {
        return Err(HpackError::IntegerTruncated);
    };
    let mask = (1u8 << prefix) - 1;
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Ok((value, 1));
    }
    let mut shift = 0;
    for (used, &b) in (2..).zip(&buf[1..]) {
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok((value, used));
        }
        if used == 5 {
            return Err(HpackError::IntegerTooLong);
        }
    }
    Err(HpackError::IntegerTruncated)
}

/// A string literal (§5.2), Huffman-decoded if flagged: the octets and the octets used.
fn string(buf: &[u8]) -> Result<(Vec<u8>, usize), HpackError> {
    let (len, used) = integer(buf, 7)?;
    let raw = buf
        .get(used..used + len)
        .ok_or(HpackError::StringTruncated)?;
    let mut out = Vec::new();
    if buf[0] & 0x80 != 0 {
        huffman_decode(raw, &mut out)?;
    } else {
        out.extend_from_slice(raw);
    }
    Ok((out, used + len))
}

/// A transition emits `(t >> 8) as u8`.
const EMIT: u32 = 1 << 16;
/// A transition completes EOS: an error.
const FAIL: u32 = 1 << 17;

/// The Huffman code as a state machine reading 4 bits at a time: states are the 256
/// internal nodes of the code tree (0 is the root); a nibble emits at most one symbol,
/// since codes are at least 5 bits long.
struct HuffmanTable {
    /// `[state][nibble]`: next state in bits 0-7, symbol in bits 8-15, EMIT, FAIL.
    next: [[u32; 16]; 256],
    /// Whether a string may end in each state (§5.2 padding rules).
    end: [Result<(), HpackError>; 256],
}

static HUFFMAN: LazyLock<Box<HuffmanTable>> = LazyLock::new(build_huffman);

fn build_huffman() -> Box<HuffmanTable> {
    const LEAF: u16 = 0x8000;
    const NONE: u16 = 0;
    // Internal nodes: children (LEAF | symbol, another node, or NONE), depth, all ones.
    let mut children: Vec<[u16; 2]> = vec![[NONE; 2]];
    let mut depth: Vec<u8> = vec![0];
    let mut ones: Vec<bool> = vec![true];
    for (symbol, &(code, len)) in (0u16..).zip(HUFFMAN_CODES.iter()) {
        let mut node = 0usize;
        for bit in (0..len).rev() {
            let b = ((code >> bit) & 1) as usize;
            if bit == 0 {
                children[node][b] = LEAF | symbol;
            } else {
                if children[node][b] == NONE {
                    children.push([NONE; 2]);
                    depth.push(depth[node] + 1);
                    ones.push(ones[node] && b == 1);
                    children[node][b] = (children.len() - 1) as u16;
                }
                node = usize::from(children[node][b]);
            }
        }
    }
    // 257 leaves of a complete prefix code: 256 internal nodes, so a state fits a byte.
    assert_eq!(children.len(), 256, "HPACK Huffman code tree");
    let mut table = Box::new(HuffmanTable {
        next: [[0; 16]; 256],
        end: [Ok(()); 256],
    });
    for state in 0..256 {
        for nibble in 0..16u32 {
            let mut node = state;
            let mut t = 0;
            for bit in (0..4).rev() {
                let c = children[node][((nibble >> bit) & 1) as usize];
                if c & LEAF == 0 {
                    node = usize::from(c);
                } else if c & !LEAF == 256 {
                    t |= FAIL;
                    break;
                } else {
                    t |= EMIT | (u32::from(c & 0xff) << 8);
                    node = 0;
                }
            }
            table.next[state][nibble as usize] = t | node as u32;
        }
        table.end[state] = if depth[state] > 7 {
            Err(HpackError::HuffmanPaddingTooLong)
        } else if !ones[state] {
            Err(HpackError::HuffmanBadPadding)
        } else {
            Ok(())
        };
    }
    table
}

/// Decodes a Huffman-coded string (§5.2, Appendix B) onto `out`.
fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let table = &**HUFFMAN;
    // Codes are at least 5 bits: at most 8/5 octets out per octet in.
    out.reserve(src.len() * 8 / 5 + 1);
    let mut state = 0usize;
    for &b in src {
        for nibble in [b >> 4, b & 0x0f] {
            let t = table.next[state][usize::from(nibble)];
            if t & FAIL != 0 {
                return Err(HpackError::HuffmanEos);
            }
            if t & EMIT != 0 {
                out.push((t >> 8) as u8);
            }
            state = (t & 0xff) as usize;
        }
    }
    table.end[state]
}

/// The static table (RFC 7541 Appendix A), index 1 first.
static STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The Huffman code (RFC 7541 Appendix B): `(code, length in bits)` of symbols 0-255 and
/// EOS (256), codes right-aligned.
static HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

/// Encodes fields without Huffman coding (for tests and synthetic captures).
#[derive(Default)]
pub struct HeaderEncoder {
    inner: loona_hpack::Encoder<'static>,
}

impl HeaderEncoder {
    pub fn encode(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        self.inner
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }
}

#[cfg(test)]
mod tests;
