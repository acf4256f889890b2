//! A push-style JSON syntax validator (RFC 8259): content bytes are fed as the http stage
//! parses them, in pieces of any size, and the verdict is known at the end without ever
//! holding the document. Memory is bounded: the nesting stack is one bit per level (object
//! or array) up to [`MAX_DEPTH`], and nothing else grows with the input.
//!
//! The grammar is RFC 8259's: one value with optional whitespace around it; strings of
//! UTF-8 (§8.1) without raw control characters, with the escapes of §7 (`\u` escapes of
//! lone surrogates are syntactically valid, §8.2); numbers without leading zeros, with a
//! digit after `-`, `.` and the exponent sign; no byte order mark.

use super::message::JsonVerdict;

/// Nesting deeper than this is not judged (the verdict is undecided).
pub const MAX_DEPTH: u32 = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A value is expected (document start, after `:`, after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrayFirst,
    /// After `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    /// The top-level value is complete: only whitespace may follow.
    Done,
    /// Inside a string (`key`: it is an object key).
    Str {
        key: bool,
    },
    Escape {
        key: bool,
    },
    Hex {
        key: bool,
        left: u8,
    },
    /// Inside a multi-byte UTF-8 sequence: `need` continuation bytes to go, the next one
    /// within `lo..=hi` (RFC 3629 §4 excludes overlongs, surrogates and > U+10FFFF).
    Utf8 {
        key: bool,
        need: u8,
        lo: u8,
        hi: u8,
    },
    /// Inside `true`, `false` or `null`: `pos` bytes of `word` seen.
    Literal {
        word: &'static [u8],
        pos: u8,
    },
    /// After `-`.
    Minus,
    /// After a leading `0`.
    Zero,
    /// In the integer digits.
    Int,
    /// After `.`.
    Dot,
    /// In the fraction digits.
    Frac,
    /// After `e`/`E`.
    Exp,
    /// After the exponent sign.
    ExpSign,
    /// In the exponent digits.
    ExpDigits,
}

/// Validates one JSON text fed in pieces.
#[derive(Clone, Debug)]
pub struct JsonValidator {
    state: State,
    /// One bit per open container: 1 object, 0 array.
    stack: Vec<u64>,
    depth: u32,
    /// Bytes consumed so far.
    offset: u64,
    outcome: Option<JsonVerdict>,
}

impl Default for JsonValidator {
    fn default() -> Self {
        Self::new()
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl JsonValidator {
    pub fn new() -> Self {
        JsonValidator {
            state: State::Value,
            stack: Vec::new(),
            depth: 0,
            offset: 0,
            outcome: None,
        }
    }

    /// Whether the verdict is already known (an error was found or nesting was too deep).
    pub fn settled(&self) -> bool {
        self.outcome.is_some()
    }

    fn fail(&mut self, at: u64, reason: &'static str) {
        self.outcome = Some(JsonVerdict::Invalid { at, reason });
    }

    fn push(&mut self, object: bool) -> bool {
        if self.depth >= MAX_DEPTH {
            self.outcome = Some(JsonVerdict::Undecided("nesting deeper than 65,536 levels"));
            return false;
        }
        let (word, bit) = ((self.depth / 64) as usize, self.depth % 64);
        if word == self.stack.len() {
            self.stack.push(0);
        }
        if object {
            self.stack[word] |= 1 << bit;
        } else {
            self.stack[word] &= !(1 << bit);
        }
        self.depth += 1;
        true
    }

    /// The innermost open container is an object.
    fn in_object(&self) -> bool {
        let d = self.depth - 1;
        self.stack[(d / 64) as usize] >> (d % 64) & 1 == 1
    }

    /// A value just ended.
    fn value_done(&mut self) {
        self.state = if self.depth == 0 {
            State::Done
        } else {
            State::AfterValue
        };
    }

    /// Starts a value at byte `b`.
    fn begin_value(&mut self, b: u8, at: u64) {
        self.state = match b {
            b'{' => {
                if !self.push(true) {
                    return;
                }
                State::ObjectFirst
            }
            b'[' => {
                if !self.push(false) {
                    return;
                }
                State::ArrayFirst
            }
            b'"' => State::Str { key: false },
            b't' => State::Literal {
                word: b"true",
                pos: 1,
            },
            b'f' => State::Literal {
                word: b"false",
                pos: 1,
            },
            b'n' => State::Literal {
                word: b"null",
                pos: 1,
            },
            b'-' => State::Minus,
            b'0' => State::Zero,
            b'1'..=b'9' => State::Int,
            0xEF if at == 0 => return self.fail(at, "byte order mark before the JSON text"),
            _ => return self.fail(at, "expected a value"),
        };
    }

    /// Closes the innermost container with `b` (`]` or `}`).
    fn close(&mut self, b: u8, at: u64) {
        let object = self.in_object();
        if (b == b'}') != object {
            return self.fail(at, "mismatched closing bracket");
        }
        self.depth -= 1;
        self.value_done();
    }

    /// Feeds the next content bytes.
    pub fn feed(&mut self, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            if self.outcome.is_some() {
                return;
            }
            let b = data[i];
            let at = self.offset + i as u64;
            match self.state {
                State::Str { key } => {
                    // Fast path over plain ASCII string bytes.
                    let run = data[i..]
                        .iter()
                        .position(|&c| c < 0x20 || c == b'"' || c == b'\\' || c >= 0x80)
                        .unwrap_or(data.len() - i);
                    i += run;
                    let Some(&c) = data.get(i) else { break };
                    let at = self.offset + i as u64;
                    match c {
                        b'"' => {
                            if key {
                                self.state = State::Colon;
                            } else {
                                self.value_done();
                            }
                        }
                        b'\\' => self.state = State::Escape { key },
                        0x00..=0x1f => self.fail(at, "control character in a string"),
                        0xC2..=0xDF => {
                            self.state = State::Utf8 {
                                key,
                                need: 1,
                                lo: 0x80,
                                hi: 0xBF,
                            }
                        }
                        0xE0..=0xEF => {
                            let (lo, hi) = match c {
                                0xE0 => (0xA0, 0xBF),
                                0xED => (0x80, 0x9F),
                                _ => (0x80, 0xBF),
                            };
                            self.state = State::Utf8 {
                                key,
                                need: 2,
                                lo,
                                hi,
                            };
                        }
                        0xF0..=0xF4 => {
                            let (lo, hi) = match c {
                                0xF0 => (0x90, 0xBF),
                                0xF4 => (0x80, 0x8F),
                                _ => (0x80, 0xBF),
                            };
                            self.state = State::Utf8 {
                                key,
                                need: 3,
                                lo,
                                hi,
                            };
                        }
                        _ => self.fail(at, "invalid UTF-8 in a string"),
                    }
                }
                State::Utf8 { key, need, lo, hi } => {
                    if !(lo..=hi).contains(&b) {
                        self.fail(at, "invalid UTF-8 in a string");
                    } else if need == 1 {
                        self.state = State::Str { key };
                    } else {
                        self.state = State::Utf8 {
                            key,
                            need: need - 1,
                            lo: 0x80,
                            hi: 0xBF,
                        };
                    }
                }
                State::Escape { key } => match b {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                        self.state = State::Str { key }
                    }
                    b'u' => self.state = State::Hex { key, left: 4 },
                    _ => self.fail(at, "invalid escape in a string"),
                },
                State::Hex { key, left } => {
                    if !b.is_ascii_hexdigit() {
                        self.fail(at, "invalid \\u escape in a string");
                    } else if left == 1 {
                        self.state = State::Str { key };
                    } else {
                        self.state = State::Hex {
                            key,
                            left: left - 1,
                        };
                    }
                }
                State::Literal { word, pos } => {
                    if word.get(usize::from(pos)) != Some(&b) {
                        self.fail(at, "invalid literal");
                    } else if usize::from(pos) + 1 == word.len() {
                        self.value_done();
                    } else {
                        self.state = State::Literal { word, pos: pos + 1 };
                    }
                }
                State::Value => {
                    if !is_ws(b) {
                        self.begin_value(b, at);
                    }
                }
                State::ArrayFirst => match b {
                    _ if is_ws(b) => {}
                    b']' => self.close(b, at),
                    _ => self.begin_value(b, at),
                },
                State::ObjectFirst | State::Key => match b {
                    _ if is_ws(b) => {}
                    b'"' => self.state = State::Str { key: true },
                    b'}' if self.state == State::ObjectFirst => self.close(b, at),
                    _ => self.fail(at, "expected an object key"),
                },
                State::Colon => match b {
                    _ if is_ws(b) => {}
                    b':' => self.state = State::Value,
                    _ => self.fail(at, "expected ':' after an object key"),
                },
                State::AfterValue => match b {
                    _ if is_ws(b) => {}
                    b',' => {
                        self.state = if self.in_object() {
                            State::Key
                        } else {
                            State::Value
                        }
                    }
                    b']' | b'}' => self.close(b, at),
                    _ => self.fail(at, "expected ',' or a closing bracket"),
                },
                State::Done => {
                    if !is_ws(b) {
                        self.fail(at, "bytes after the JSON value");
                    }
                }
                State::Minus => match b {
                    b'0' => self.state = State::Zero,
                    b'1'..=b'9' => self.state = State::Int,
                    _ => self.fail(at, "expected a digit after '-'"),
                },
                State::Zero | State::Int | State::Frac | State::ExpDigits => match b {
                    b'0'..=b'9' if self.state == State::Zero => {
                        self.fail(at, "leading zero in a number")
                    }
                    b'0'..=b'9' => {}
                    b'.' if matches!(self.state, State::Zero | State::Int) => {
                        self.state = State::Dot
                    }
                    b'e' | b'E' if self.state != State::ExpDigits => self.state = State::Exp,
                    _ => {
                        // The number ended: this byte belongs to what follows.
                        self.value_done();
                        continue;
                    }
                },
                State::Dot => match b {
                    b'0'..=b'9' => self.state = State::Frac,
                    _ => self.fail(at, "expected a digit after '.'"),
                },
                State::Exp => match b {
                    b'+' | b'-' => self.state = State::ExpSign,
                    b'0'..=b'9' => self.state = State::ExpDigits,
                    _ => self.fail(at, "expected a digit in the exponent"),
                },
                State::ExpSign => match b {
                    b'0'..=b'9' => self.state = State::ExpDigits,
                    _ => self.fail(at, "expected a digit in the exponent"),
                },
            }
            i += 1;
        }
        self.offset += data.len() as u64;
    }

    /// The verdict once every content byte was fed.
    pub fn finish(mut self) -> JsonVerdict {
        if let Some(v) = self.outcome.take() {
            return v;
        }
        let at = self.offset;
        match self.state {
            State::Done => JsonVerdict::Valid,
            // A number at the very end of a top-level scalar text.
            State::Zero | State::Int | State::Frac | State::ExpDigits if self.depth == 0 => {
                JsonVerdict::Valid
            }
            State::Value if at == 0 => JsonVerdict::Invalid {
                at,
                reason: "empty body",
            },
            _ => JsonVerdict::Invalid {
                at,
                reason: "the JSON text ends before its value does",
            },
        }
    }
}

/// The verdict on one complete JSON text.
pub fn validate(data: &[u8]) -> JsonVerdict {
    let mut v = JsonValidator::new();
    v.feed(data);
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid(s: &[u8]) -> bool {
        validate(s) == JsonVerdict::Valid
    }

    /// What RFC 8259 says of `s`, by serde_json: its syntax check (which accepts lone
    /// surrogate escapes, as the grammar does) plus UTF-8 of the whole text.
    fn oracle(s: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(s).is_ok() && std::str::from_utf8(s).is_ok()
    }

    #[test]
    fn rfc_8259_edge_cases() {
        for ok in [
            &b"0"[..],
            b"-0",
            b"-0.0e-0",
            b"1E+2",
            b"1e2",
            b"12.5",
            b" \t\r\n{} \n",
            b"[]",
            b"\"\"",
            b"\"\\u00e9\\uD83D\\uDE00\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
            b"\"\\udc00\"", // a lone surrogate: grammatical (RFC 8259 §8.2)
            "\"caf\u{e9} \u{1F600}\"".as_bytes(),
            b"{\"a\":[1,{\"b\":null}],\"c\":true,\"d\":false}",
            b"[[[[[[[[[[]]]]]]]]]]",
            b"\"\x7f\"",
        ] {
            assert!(valid(ok), "{:?}", String::from_utf8_lossy(ok));
            assert_eq!(valid(ok), oracle(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b""[..],
            b"   ",
            b"01",
            b"-",
            b"-a",
            b"1.",
            b".5",
            b"1e",
            b"1e+",
            b"+1",
            b"[1,]",
            b"{\"a\":1,}",
            b"{a:1}",
            b"{\"a\" 1}",
            b"[1 2]",
            b"[1}",
            b"{\"a\":1]",
            b"tru",
            b"nul",
            b"True",
            b"\"abc",
            b"\"a\x01b\"",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"\"caf\xe9\"",
            b"\"\xed\xa0\x80\"", // an encoded surrogate is not UTF-8
            b"\"\xc0\xaf\"",     // overlong
            b"\xef\xbb\xbf{}",   // byte order mark
            b"{} {}",
            b"[",
            b"{\"a\":",
            b"NaN",
            b"'a'",
        ] {
            assert!(!valid(bad), "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(
                valid(bad),
                oracle(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            validate(b"{\"a\": [1, 2,]}"),
            JsonVerdict::Invalid {
                at: 12,
                reason: "expected a value"
            }
        );
        assert!(matches!(
            validate(b"[1, 2"),
            JsonVerdict::Invalid { at: 5, .. }
        ));
    }

    #[test]
    fn memory_is_bounded_by_depth() {
        let mut v = JsonValidator::new();
        for _ in 0..1000 {
            v.feed(&[b'['; 1000]);
        }
        // 1,000,000 levels: the stack stops at MAX_DEPTH bits and the verdict is open.
        assert!(v.stack.len() <= (MAX_DEPTH / 64) as usize);
        assert!(matches!(v.finish(), JsonVerdict::Undecided(_)));
        let deep = [vec![b'['; 5000], vec![b']'; 5000]].concat();
        assert!(valid(&deep));
    }

    #[test]
    fn a_big_document_in_small_pieces() {
        let doc = serde_json::json!({"items": (0..2000).map(|i| serde_json::json!({"id": i, "name": format!("n\u{e9}{i}"), "x": 1.5e-3})).collect::<Vec<_>>()});
        let bytes = serde_json::to_vec(&doc).unwrap();
        for size in [1, 2, 3, 7, 64, 4096] {
            let mut v = JsonValidator::new();
            for piece in bytes.chunks(size) {
                v.feed(piece);
            }
            assert_eq!(v.finish(), JsonVerdict::Valid, "pieces of {size}");
        }
    }

    /// JSON-ish texts: mostly well formed, with a sprinkling of every kind of mistake.
    fn jsonish() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            Just(&b"{"[..]),
            Just(&b"}"[..]),
            Just(&b"["[..]),
            Just(&b"]"[..]),
            Just(&b","[..]),
            Just(&b":"[..]),
            Just(&b" "[..]),
            Just(&b"\n"[..]),
            Just(&b"\"k\""[..]),
            Just(&b"\"a\\n\\u00e9\\\"\""[..]),
            Just("\"\u{e9}\u{1F600}\"".as_bytes()),
            Just(&b"\"\\ud800\""[..]),
            Just(&b"\"\xe9\""[..]),
            Just(&b"\"\x01\""[..]),
            Just(&b"\\"[..]),
            Just(&b"\""[..]),
            Just(&b"0"[..]),
            Just(&b"-"[..]),
            Just(&b"12"[..]),
            Just(&b"."[..]),
            Just(&b"e"[..]),
            Just(&b"E+"[..]),
            Just(&b"-0.5e-7"[..]),
            Just(&b"true"[..]),
            Just(&b"fals"[..]),
            Just(&b"null"[..]),
            Just(&b"x"[..]),
        ];
        prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
    }

    /// Well-formed documents, split anywhere.
    fn document() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".*".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".*", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_serde_json(text in jsonish(), cut in 0usize..64) {
            let mut v = JsonValidator::new();
            let cut = cut.min(text.len());
            v.feed(&text[..cut]);
            v.feed(&text[cut..]);
            let ours = v.finish() == JsonVerdict::Valid;
            prop_assert_eq!(ours, oracle(&text), "{:?}", String::from_utf8_lossy(&text));
        }

        #[test]
        fn serialized_documents_are_valid(doc in document(), cut in 0usize..4096, pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_vec_pretty(&doc) } else { serde_json::to_vec(&doc) }.unwrap();
            let mut v = JsonValidator::new();
            let cut = cut.min(text.len());
            v.feed(&text[..cut]);
            v.feed(&text[cut..]);
            prop_assert_eq!(v.finish(), JsonVerdict::Valid);
            // Cutting the document short is never valid, except where a number can end.
            if text.len() > 1 && !text[..text.len() - 1].iter().all(u8::is_ascii_digit) && !text.starts_with(b"-") {
                let short = &text[..text.len() - 1];
                prop_assert_eq!(valid(short), oracle(short));
            }
        }
    }
}
