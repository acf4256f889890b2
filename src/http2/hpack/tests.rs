//! RFC 7541 Appendix C, and differential tests against `loona-hpack` (the decoder wirelint
//! used before): same fields, same verdicts, same error text.

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn text(fields: &[Field]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Huffman-codes `src` (Appendix B), padded with the most significant bits of EOS.
fn huffman_encode(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &b in src {
        let (code, len) = HUFFMAN_CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
    out
}

/// A string literal: raw, or Huffman-coded.
fn literal(s: &[u8], huffman: bool) -> Vec<u8> {
    let body = if huffman {
        huffman_encode(s)
    } else {
        s.to_vec()
    };
    let mut out = int(body.len(), 7, if huffman { 0x80 } else { 0 });
    out.extend_from_slice(&body);
    out
}

/// An integer with an N-bit prefix (§5.1), the prefix's other bits `flags`.
fn int(mut v: usize, prefix: u8, flags: u8) -> Vec<u8> {
    let max = (1usize << prefix) - 1;
    if v < max {
        return vec![flags | v as u8];
    }
    let mut out = vec![flags | max as u8];
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
    out
}

/// A header block in hex, the fields it decodes to, and the table size after it.
type Step<'a> = (&'a str, &'a [(&'a str, &'a str)], usize);

/// Decodes each block in turn; checks the fields and the table size after each.
fn story(d: &mut HeaderDecoder, steps: &[Step<'_>]) {
    for (i, (block, expected, size)) in steps.iter().enumerate() {
        let fields = d
            .decode(&hex(block))
            .unwrap_or_else(|e| panic!("step {i}: {e}"));
        assert_eq!(text(&fields), pairs(expected), "step {i}");
        assert_eq!(d.table_size(), *size, "table size after step {i}");
    }
}

/// C.2: the four field representations, each on a fresh table.
#[test]
fn rfc7541_c2_field_representations() {
    story(
        &mut HeaderDecoder::default(),
        &[(
            "400a637573746f6d2d6b65790d637573746f6d2d686561646572",
            &[("custom-key", "custom-header")],
            55,
        )],
    );
    story(
        &mut HeaderDecoder::default(),
        &[(
            "040c2f73616d706c652f70617468",
            &[(":path", "/sample/path")],
            0,
        )],
    );
    story(
        &mut HeaderDecoder::default(),
        &[(
            "100870617373776f726406736563726574",
            &[("password", "secret")],
            0,
        )],
    );
    story(
        &mut HeaderDecoder::default(),
        &[("82", &[(":method", "GET")], 0)],
    );
}

const C3_FIELDS: [&[(&str, &str)]; 3] = [
    &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ],
    &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ],
    &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ],
];

/// C.3: requests without Huffman coding, sharing one dynamic table.
#[test]
fn rfc7541_c3_requests_without_huffman() {
    story(
        &mut HeaderDecoder::default(),
        &[
            ("828684410f7777772e6578616d706c652e636f6d", C3_FIELDS[0], 57),
            ("828684be58086e6f2d6361636865", C3_FIELDS[1], 110),
            (
                "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
                C3_FIELDS[2],
                164,
            ),
        ],
    );
}

/// C.4: the same requests with Huffman coding.
#[test]
fn rfc7541_c4_requests_with_huffman() {
    story(
        &mut HeaderDecoder::default(),
        &[
            ("828684418cf1e3c2e5f23a6ba0ab90f4ff", C3_FIELDS[0], 57),
            ("828684be5886a8eb10649cbf", C3_FIELDS[1], 110),
            (
                "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
                C3_FIELDS[2],
                164,
            ),
        ],
    );
}

const C5_FIELDS: [&[(&str, &str)]; 3] = [
    &[
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ],
    &[
        (":status", "307"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ],
    &[
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ],
];

/// A decoder whose table the sender shrank to 256 octets, as in C.5 and C.6.
fn small_table() -> HeaderDecoder {
    let mut d = HeaderDecoder::default();
    assert!(d.decode(&hex("3fe101 82")).is_ok(), "size update to 256");
    d
}

/// C.5: responses without Huffman coding and a 256-octet table, so entries are evicted.
#[test]
fn rfc7541_c5_responses_without_huffman() {
    story(
        &mut small_table(),
        &[
            (
                "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
                C5_FIELDS[0],
                222,
            ),
            ("4803333037c1c0bf", C5_FIELDS[1], 222),
            (
                "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
                C5_FIELDS[2],
                215,
            ),
        ],
    );
}

/// C.6: the same responses with Huffman coding.
#[test]
fn rfc7541_c6_responses_with_huffman() {
    story(
        &mut small_table(),
        &[
            (
                "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
                C5_FIELDS[0],
                222,
            ),
            ("4883640effc1c0bf", C5_FIELDS[1], 222),
            (
                "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
                C5_FIELDS[2],
                215,
            ),
        ],
    );
}

#[test]
fn encoder_round_trip_and_bad_blocks() {
    let mut e = HeaderEncoder::default();
    let mut d = HeaderDecoder::default();
    let block = e.encode(&[(":status", "200"), ("x-a", "b")]);
    assert_eq!(
        text(&d.decode(&block).expect("decodes")),
        pairs(&[(":status", "200"), ("x-a", "b")])
    );
    let err = |block: &str| HeaderDecoder::default().decode(&hex(block)).err();
    // An index beyond both tables, and index 0.
    assert_eq!(err("ff7f"), Some(HpackError::IndexOutOfBounds));
    assert_eq!(err("80"), Some(HpackError::IndexOutOfBounds));
    // A table size update above the allowed size; one at the end of a block.
    assert_eq!(err("3fe1ff03"), Some(HpackError::TableSizeAboveAllowed));
    assert_eq!(err("3fe101"), Some(HpackError::SizeUpdateAtEnd));
    // Integers: cut short, and five continuation octets.
    assert_eq!(err("ff"), Some(HpackError::IntegerTruncated));
    assert_eq!(err("ff8080808000"), Some(HpackError::IntegerTooLong));
    assert_eq!(err("40"), Some(HpackError::IntegerTruncated));
    assert_eq!(err("4003616263"), Some(HpackError::IntegerTruncated));
    assert_eq!(err("40036162"), Some(HpackError::StringTruncated));
    // Huffman: EOS in the string, padding of 8 bits, padding not all ones.
    assert_eq!(err("0084fffffffc00"), Some(HpackError::HuffmanEos));
    assert_eq!(err("0082ffff00"), Some(HpackError::HuffmanPaddingTooLong));
    assert_eq!(err("00810000"), Some(HpackError::HuffmanBadPadding));
    assert_eq!(
        HpackError::HuffmanEos.to_string(),
        "StringDecodingError(HuffmanDecoderError(EOSInString))"
    );
    // A larger table once SETTINGS allow it, never beyond MAX_TABLE.
    let mut d = HeaderDecoder::default();
    d.allow_table_size(u32::MAX);
    assert!(d.decode(&hex("3fe1ff3f 82")).is_ok());
    assert_eq!(d.max_size, MAX_TABLE);
    assert_eq!(
        d.decode(&hex("3fe1ff40 82")).err(),
        Some(HpackError::TableSizeAboveAllowed)
    );
}

/// An entry larger than the whole table empties it.
#[test]
fn oversized_entry_empties_the_table() {
    let mut d = small_table();
    let mut block = vec![0x40];
    block.extend(literal(b"name", false));
    block.extend(literal(&[b'v'; 100], false));
    d.decode(&block).expect("first");
    assert_eq!(d.table_size(), 4 + 100 + 32);
    let mut big = vec![0x40];
    big.extend(literal(b"name", false));
    big.extend(literal(&[b'v'; 300], false));
    d.decode(&big).expect("second");
    assert_eq!(d.table_size(), 0);
    assert_eq!(
        d.decode(&hex("be")).err(),
        Some(HpackError::IndexOutOfBounds)
    );
}

/// An HPACK bomb: one entry of 4,000 octets, then 20,000 one-octet references to it
/// (80 MB decoded from 24 KB). The fields past the list limit are not kept, and the
/// block's insertions still count: the next block refers to the right entries.
#[test]
fn references_past_the_list_limit_are_counted_not_kept() {
    let mut d = HeaderDecoder::default();
    let mut block = vec![0x40];
    block.extend(literal(b"x-bomb", false));
    block.extend(literal(&[b'v'; 4000], false));
    block.extend(std::iter::repeat_n(0xbe, 20_000));
    // A literal with indexing after the limit: inserted, not kept.
    block.push(0x40);
    block.extend(literal(b"x-late", false));
    block.extend(literal(b"1", false));
    let fields = d.decode(&block).expect("bomb");
    let each = 6 + 4000 + 32;
    let kept = DEFAULT_LIST_LIMIT / each;
    assert_eq!(fields.len(), kept);
    assert!(
        fields
            .iter()
            .all(|(n, v)| n == b"x-bomb" && v.len() == 4000)
    );
    let left_out = d.left_out();
    assert_eq!(left_out.over_limit, 20_001 + 1 - kept);
    assert_eq!(left_out.limit, DEFAULT_LIST_LIMIT);
    assert!(left_out.any());
    let next = d.decode(&hex("be bf")).expect("next block");
    assert_eq!(
        text(&next),
        pairs(&[("x-late", "1"), ("x-bomb", &"v".repeat(4000))])
    );
    assert_eq!(
        d.left_out(),
        LeftOut {
            limit: DEFAULT_LIST_LIMIT,
            ..LeftOut::default()
        }
    );

    // The glance of a late join stops at the limit too.
    let glance = HeaderDecoder::joined_late().decode_prefix(&block);
    assert_eq!(glance.len(), kept);
}

/// The reference: `loona-hpack`'s decoder, set up as wirelint's was.
struct Reference {
    inner: loona_hpack::Decoder<'static>,
    allowed: usize,
}

impl Reference {
    fn new() -> Self {
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(4096);
        Reference {
            inner,
            allowed: 4096,
        }
    }

    fn allow(&mut self, size: u32) {
        let size = (size as usize).min(MAX_TABLE);
        if size > self.allowed {
            self.allowed = size;
            self.inner.set_max_allowed_table_size(size);
        }
    }

    fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, String> {
        self.inner.decode(block).map_err(|e| format!("{e:?}"))
    }
}

/// Decodes `blocks` with both decoders (a `None` raises the allowed table size), until the
/// first error: the results must be equal.
fn same_as_reference(blocks: &[(Option<u32>, Vec<u8>)]) -> Result<(), TestCaseError> {
    let mut ours = HeaderDecoder::default();
    let mut reference = Reference::new();
    for (allow, block) in blocks {
        if let Some(size) = allow {
            ours.allow_table_size(*size);
            reference.allow(*size);
        }
        let a = ours.decode(block).map_err(|e| e.to_string());
        let b = reference.decode(block);
        prop_assert_eq!(&a, &b, "block {:02x?}", block);
        if a.is_err() {
            break;
        }
    }
    Ok(())
}

/// One field representation (or size update), as the generator builds them.
#[derive(Clone, Debug)]
enum Rep {
    Indexed(usize),
    Literal {
        kind: u8,
        name_index: usize,
        name: Vec<u8>,
        value: Vec<u8>,
        huffman: [bool; 2],
    },
    SizeUpdate(usize),
    /// Huffman-coded bytes as sent, possibly broken (bad padding, EOS).
    RawHuffman(Vec<u8>),
}

impl Rep {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Rep::Indexed(i) => out.extend(int(*i, 7, 0x80)),
            Rep::Literal {
                kind,
                name_index,
                name,
                value,
                huffman,
            } => {
                let (prefix, flags) = match kind % 3 {
                    0 => (6, 0x40),
                    1 => (4, 0x00),
                    _ => (4, 0x10),
                };
                out.extend(int(*name_index, prefix, flags));
                if *name_index == 0 {
                    out.extend(literal(name, huffman[0]));
                }
                out.extend(literal(value, huffman[1]));
            }
            Rep::SizeUpdate(s) => out.extend(int(*s, 5, 0x20)),
            Rep::RawHuffman(bytes) => {
                out.extend(int(1, 4, 0x00));
                out.extend(int(bytes.len(), 7, 0x80));
                out.extend_from_slice(bytes);
            }
        }
    }
}

fn short_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12),
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'-'), Just(b'0')], 0..40),
        "[a-z0-9:/ -]{0,20}".prop_map(String::into_bytes),
    ]
}

fn rep() -> impl Strategy<Value = Rep> {
    prop_oneof![
        4 => (0usize..80).prop_map(Rep::Indexed),
        4 => (any::<u8>(), prop_oneof![Just(0usize), 1usize..80], short_bytes(), short_bytes(), any::<[bool; 2]>())
            .prop_map(|(kind, name_index, name, value, huffman)| Rep::Literal { kind, name_index, name, value, huffman }),
        1 => prop_oneof![0usize..300, 3000usize..5000, Just(1 << 20), Just(usize::MAX >> 36)].prop_map(Rep::SizeUpdate),
        1 => proptest::collection::vec(any::<u8>(), 0..8).prop_map(Rep::RawHuffman),
    ]
}

/// A block built from representations, maybe with one octet changed or the end cut off.
fn block() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(rep(), 0..8),
        any::<Option<(usize, u8)>>(),
        any::<Option<usize>>(),
    )
        .prop_map(|(reps, change, cut)| {
            let mut out = Vec::new();
            for r in &reps {
                r.write(&mut out);
            }
            if let Some((at, byte)) = change
                && !out.is_empty()
            {
                let at = at % out.len();
                out[at] = byte;
            }
            if let Some(cut) = cut
                && cut % 4 == 0
                && !out.is_empty()
            {
                out.truncate(cut % out.len());
            }
            out
        })
}

proptest! {
    /// Any bytes: an error or fields, never a panic; and the reference's verdict.
    #[test]
    fn arbitrary_blocks_match_the_reference(blocks in proptest::collection::vec(
        (proptest::option::of(0u32..70_000), proptest::collection::vec(any::<u8>(), 0..64)), 1..6)) {
        same_as_reference(&blocks)?;
    }

    /// Blocks of well-formed and slightly broken representations, sharing a table.
    #[test]
    fn structured_blocks_match_the_reference(blocks in proptest::collection::vec(
        (proptest::option::of(prop_oneof![0u32..5000, Just(u32::MAX)]), block()), 1..8)) {
        same_as_reference(&blocks)?;
    }

    /// Header lists through `loona-hpack`'s encoder come back as they were.
    #[test]
    fn encoder_round_trip(lists in proptest::collection::vec(proptest::collection::vec(
        ("[a-z:][a-z0-9-]{0,12}", "[ -~]{0,30}"), 0..10), 1..8)) {
        let mut enc = loona_hpack::Encoder::new();
        let mut ours = HeaderDecoder::default();
        for list in &lists {
            let block = enc.encode(list.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
            let fields = ours.decode(&block).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(text(&fields), list.clone());
        }
    }

    /// Huffman coding of any octets decodes back, as the reference decodes it.
    #[test]
    fn huffman_round_trip(s in proptest::collection::vec(any::<u8>(), 0..100)) {
        let mut out = Vec::new();
        huffman_decode(&huffman_encode(&s), &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&out, &s);
        let mut block = vec![0x00];
        block.extend(literal(b"x", true));
        block.extend(literal(&s, true));
        same_as_reference(&[(None, block)])?;
    }
}

/// `part` is `full` with some fields left out, in the same order.
fn is_subsequence(part: &[Field], full: &[Field]) -> bool {
    let mut rest = full.iter();
    part.iter().all(|f| rest.any(|g| g == f))
}

proptest! {
    /// Joining a connection late: from block `join` on, every field decoded is the field a
    /// decoder that saw everything decodes there, and the others are counted as unknown.
    #[test]
    fn joined_late_decodes_a_subset_and_counts_the_rest(
        lists in proptest::collection::vec(proptest::collection::vec(
            ("[a-d]", "[x-z]{0,2}"), 0..8), 2..10),
        join in 1usize..9,
    ) {
        let join = join % lists.len();
        let mut enc = loona_hpack::Encoder::new();
        let mut full = HeaderDecoder::default();
        let mut late = HeaderDecoder::joined_late();
        let mut unknown_total = 0;
        for (k, list) in lists.iter().enumerate() {
            let block = enc.encode(list.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
            let all = full.decode(&block).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if k < join {
                continue;
            }
            let seen = late.decode(&block).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(is_subsequence(&seen, &all), "{:?} not within {:?}", text(&seen), text(&all));
            prop_assert_eq!(seen.len() + late.left_out().unknown, all.len());
            unknown_total += late.left_out().unknown;
        }
        // Nothing is unknown when the capture saw the connection from its start.
        if join == 0 {
            prop_assert_eq!(unknown_total, 0);
        }
    }
}

#[test]
fn joined_late_keeps_the_indices_of_entries_added_after_the_join() {
    let mut enc = loona_hpack::Encoder::new();
    let early = enc.encode([(&b"x-before"[..], &b"1"[..])]);
    let late_block = enc.encode([(&b"x-after"[..], &b"2"[..]), (&b"x-before"[..], &b"1"[..])]);
    let again = enc.encode([(&b"x-after"[..], &b"2"[..]), (&b"x-before"[..], &b"1"[..])]);
    let mut full = HeaderDecoder::default();
    full.decode(&early).expect("decodes");
    let mut late = HeaderDecoder::joined_late();
    // x-before refers to the entry added before the join: unknown.
    let fields = late.decode(&late_block).expect("decodes");
    assert_eq!(text(&fields), pairs(&[("x-after", "2")]));
    assert_eq!(late.left_out().unknown, 1);
    let fields = late.decode(&again).expect("decodes");
    assert_eq!(text(&fields), pairs(&[("x-after", "2")]));
    assert_eq!(late.left_out().unknown, 1);
    // A decoder that joined at the start still fails on an index past its table.
    let mut strict = HeaderDecoder::default();
    assert!(strict.decode(&late_block).is_err());
}
