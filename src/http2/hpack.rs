//! HPACK (RFC 7541) header block decoding, through `loona-hpack`: one decoder per direction
//! of a connection, its dynamic table bounded by what the receiver allowed.

/// A decoded field: name and value as bytes (HPACK fields are octets, not text).
pub type Field = (Vec<u8>, Vec<u8>);

/// Largest dynamic table wirelint keeps, whatever SETTINGS say (memory bound per direction).
const MAX_TABLE: usize = 1024 * 1024;

/// The header decompression state of one direction.
pub struct HeaderDecoder {
    inner: loona_hpack::Decoder<'static>,
    allowed: usize,
}

impl std::fmt::Debug for HeaderDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDecoder")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        let mut inner = loona_hpack::Decoder::new();
        let allowed = super::frames::DEFAULT_HEADER_TABLE_SIZE as usize;
        inner.set_max_allowed_table_size(allowed);
        HeaderDecoder { inner, allowed }
    }
}

impl HeaderDecoder {
    /// The receiver announced SETTINGS_HEADER_TABLE_SIZE. The sender may use it only once
    /// it has seen it, so the larger of the old and the new limit is accepted meanwhile.
    pub fn allow_table_size(&mut self, size: u32) {
        let size = (size as usize).min(MAX_TABLE);
        if size > self.allowed {
            self.allowed = size;
            self.inner.set_max_allowed_table_size(size);
        }
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION fragments joined).
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, String> {
        self.inner.decode(block).map_err(|e| format!("{e:?}"))
    }
}

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
mod tests {
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

    /// RFC 7541 Appendix C.3: requests without Huffman coding, sharing one dynamic table.
    #[test]
    fn rfc7541_c3_requests_without_huffman() {
        let mut d = HeaderDecoder::default();
        let r1 = d
            .decode(&hex("828684410f7777772e6578616d706c652e636f6d"))
            .expect("C.3.1");
        assert_eq!(
            text(&r1),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        let r2 = d
            .decode(&hex("828684be58086e6f2d6361636865"))
            .expect("C.3.2");
        assert_eq!(
            text(&r2),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        let r3 = d
            .decode(&hex(
                "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
            ))
            .expect("C.3.3");
        assert_eq!(
            text(&r3),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
    }

    /// RFC 7541 Appendix C.4: the same requests with Huffman coding.
    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        let mut d = HeaderDecoder::default();
        let r1 = d
            .decode(&hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
            .expect("C.4.1");
        assert_eq!(text(&r1)[3], pairs(&[(":authority", "www.example.com")])[0]);
        let r2 = d.decode(&hex("828684be5886a8eb10649cbf")).expect("C.4.2");
        assert_eq!(r2.len(), 5);
        assert_eq!(text(&r2)[4], pairs(&[("cache-control", "no-cache")])[0]);
        let r3 = d
            .decode(&hex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
            .expect("C.4.3");
        assert_eq!(text(&r3)[4], pairs(&[("custom-key", "custom-value")])[0]);
    }

    /// RFC 7541 Appendix C.6: responses with Huffman coding and a 256-byte table, so
    /// entries are evicted between responses.
    #[test]
    fn rfc7541_c6_responses_with_eviction() {
        let mut d = HeaderDecoder::default();
        d.inner.set_max_table_size(256);
        let r1 = d
            .decode(&hex(
                "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
            ))
            .expect("C.6.1");
        assert_eq!(
            text(&r1),
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com")
            ])
        );
        let r2 = d.decode(&hex("4883640effc1c0bf")).expect("C.6.2");
        assert_eq!(
            text(&r2),
            pairs(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com")
            ])
        );
        let r3 = d
            .decode(&hex(
                "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
            ))
            .expect("C.6.3");
        assert_eq!(
            text(&r3),
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                )
            ])
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
        // An index beyond both tables, and a table size update above the allowed size.
        assert!(HeaderDecoder::default().decode(&[0xff, 0x7f]).is_err());
        assert!(HeaderDecoder::default().decode(&hex("3fe1ff03")).is_err());
    }

    proptest::proptest! {
        /// Any bytes: an error or fields, never a panic.
        #[test]
        fn arbitrary_blocks_do_not_panic(blocks in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 1..6)) {
            let mut d = HeaderDecoder::default();
            for b in blocks {
                let _ = d.decode(&b);
            }
        }
    }
}
