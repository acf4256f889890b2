//! Character encodings by their WHATWG Encoding Standard labels (§4.2), and a validity scan
//! of bytes in the multi-byte encodings, where malformed sequences exist. Single-byte
//! encodings decode any byte, so they are not scanned.
//!
//! The scans follow the WHATWG decoders' byte-range structure (lead and trail bytes, escape
//! sequences). They do not carry the index tables, so a well-formed pair that maps to no
//! character in the index is accepted: the scan finds every structural error, not every
//! unmapped pointer.

/// What a charset label resolves to, as far as decodability is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    ShiftJis,
    EucJp,
    Iso2022Jp,
    EucKr,
    Big5,
    /// GBK and gb18030 share a decoder.
    Gb18030,
    /// The "replacement" encoding: browsers decode the whole body as one U+FFFD.
    Replacement,
    /// UTF-7: no browser supports it (an XSS vector of old).
    Utf7,
    /// A single-byte encoding (windows-1252, ISO-8859-x, KOI8 …): anything decodes.
    SingleByte,
}

impl Encoding {
    /// The encoding's name in the Encoding Standard.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::ShiftJis => "Shift_JIS",
            Encoding::EucJp => "EUC-JP",
            Encoding::Iso2022Jp => "ISO-2022-JP",
            Encoding::EucKr => "EUC-KR",
            Encoding::Big5 => "Big5",
            Encoding::Gb18030 => "gb18030",
            Encoding::Replacement => "replacement",
            Encoding::Utf7 => "UTF-7",
            Encoding::SingleByte => "single-byte",
        }
    }
}

const SINGLE_BYTE_LABELS: &[&str] = &[
    // IBM866, ISO-8859-2..16, KOI8, macintosh, windows-874/125x, x-mac-cyrillic, x-user-defined
    "866",
    "cp866",
    "csibm866",
    "ibm866",
    "csisolatin2",
    "iso-8859-2",
    "iso-ir-101",
    "iso8859-2",
    "iso88592",
    "iso_8859-2",
    "iso_8859-2:1987",
    "l2",
    "latin2",
    "csisolatin3",
    "iso-8859-3",
    "iso-ir-109",
    "iso8859-3",
    "iso88593",
    "iso_8859-3",
    "iso_8859-3:1988",
    "l3",
    "latin3",
    "csisolatin4",
    "iso-8859-4",
    "iso-ir-110",
    "iso8859-4",
    "iso88594",
    "iso_8859-4",
    "iso_8859-4:1988",
    "l4",
    "latin4",
    "csisolatincyrillic",
    "cyrillic",
    "iso-8859-5",
    "iso-ir-144",
    "iso8859-5",
    "iso88595",
    "iso_8859-5",
    "iso_8859-5:1988",
    "arabic",
    "asmo-708",
    "csiso88596e",
    "csiso88596i",
    "csisolatinarabic",
    "ecma-114",
    "iso-8859-6",
    "iso-8859-6-e",
    "iso-8859-6-i",
    "iso-ir-127",
    "iso8859-6",
    "iso88596",
    "iso_8859-6",
    "iso_8859-6:1987",
    "csisolatingreek",
    "ecma-118",
    "elot_928",
    "greek",
    "greek8",
    "iso-8859-7",
    "iso-ir-126",
    "iso8859-7",
    "iso88597",
    "iso_8859-7",
    "iso_8859-7:1987",
    "sun_eu_greek",
    "csiso88598e",
    "csisolatinhebrew",
    "hebrew",
    "iso-8859-8",
    "iso-8859-8-e",
    "iso-ir-138",
    "iso8859-8",
    "iso88598",
    "iso_8859-8",
    "iso_8859-8:1988",
    "visual",
    "csiso88598i",
    "iso-8859-8-i",
    "logical",
    "csisolatin6",
    "iso-8859-10",
    "iso-ir-157",
    "iso8859-10",
    "iso885910",
    "l6",
    "latin6",
    "iso-8859-13",
    "iso8859-13",
    "iso885913",
    "iso-8859-14",
    "iso8859-14",
    "iso885914",
    "csisolatin9",
    "iso-8859-15",
    "iso8859-15",
    "iso885915",
    "iso_8859-15",
    "l9",
    "iso-8859-16",
    "cskoi8r",
    "koi",
    "koi8",
    "koi8-r",
    "koi8_r",
    "koi8-ru",
    "koi8-u",
    "csmacintosh",
    "mac",
    "macintosh",
    "x-mac-roman",
    "dos-874",
    "iso-8859-11",
    "iso8859-11",
    "iso885911",
    "tis-620",
    "windows-874",
    "cp1250",
    "windows-1250",
    "x-cp1250",
    "cp1251",
    "windows-1251",
    "x-cp1251",
    "ansi_x3.4-1968",
    "ascii",
    "cp1252",
    "cp819",
    "csisolatin1",
    "ibm819",
    "iso-8859-1",
    "iso-ir-100",
    "iso8859-1",
    "iso88591",
    "iso_8859-1",
    "iso_8859-1:1987",
    "l1",
    "latin1",
    "us-ascii",
    "windows-1252",
    "x-cp1252",
    "cp1253",
    "windows-1253",
    "x-cp1253",
    "cp1254",
    "csisolatin5",
    "iso-8859-9",
    "iso-ir-148",
    "iso8859-9",
    "iso88599",
    "iso_8859-9",
    "iso_8859-9:1989",
    "l5",
    "latin5",
    "windows-1254",
    "x-cp1254",
    "cp1255",
    "windows-1255",
    "x-cp1255",
    "cp1256",
    "windows-1256",
    "x-cp1256",
    "cp1257",
    "windows-1257",
    "x-cp1257",
    "cp1258",
    "windows-1258",
    "x-cp1258",
    "x-mac-cyrillic",
    "x-mac-ukrainian",
    "x-user-defined",
];

/// Resolves a charset label (ASCII whitespace trimmed, case-insensitive) as the Encoding
/// Standard's "get an encoding" does, plus UTF-7, which it does not know. `None` for an
/// unknown label.
pub fn for_label(label: &str) -> Option<Encoding> {
    let l = label
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase();
    let e = match l.as_str() {
        "unicode-1-1-utf-8" | "unicode11utf8" | "unicode20utf8" | "utf-8" | "utf8"
        | "x-unicode20utf8" => Encoding::Utf8,
        "csunicode" | "iso-10646-ucs-2" | "ucs-2" | "unicode" | "unicodefeff" | "utf-16"
        | "utf-16le" => Encoding::Utf16Le,
        "unicodefffe" | "utf-16be" => Encoding::Utf16Be,
        "csshiftjis" | "ms932" | "ms_kanji" | "shift-jis" | "shift_jis" | "sjis"
        | "windows-31j" | "x-sjis" => Encoding::ShiftJis,
        "cseucpkdfmtjapanese" | "euc-jp" | "x-euc-jp" => Encoding::EucJp,
        "csiso2022jp" | "iso-2022-jp" => Encoding::Iso2022Jp,
        "cseuckr" | "csksc56011987" | "euc-kr" | "iso-ir-149" | "korean" | "ks_c_5601-1987"
        | "ks_c_5601-1989" | "ksc5601" | "ksc_5601" | "windows-949" => Encoding::EucKr,
        "big5" | "big5-hkscs" | "cn-big5" | "csbig5" | "x-x-big5" => Encoding::Big5,
        "chinese" | "csgb2312" | "csiso58gb231280" | "gb2312" | "gb_2312" | "gb_2312-80"
        | "gbk" | "iso-ir-58" | "x-gbk" | "gb18030" => Encoding::Gb18030,
        "csiso2022kr" | "hz-gb-2312" | "iso-2022-cn" | "iso-2022-cn-ext" | "iso-2022-kr"
        | "replacement" => Encoding::Replacement,
        "utf-7" | "utf7" | "unicode-1-1-utf-7" | "csunicode11utf7" => Encoding::Utf7,
        other if SINGLE_BYTE_LABELS.contains(&other) => Encoding::SingleByte,
        _ => return None,
    };
    Some(e)
}

/// The first malformed sequence in `bytes` decoded as `enc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// Offset of the first byte of the offending sequence.
    pub at: usize,
    /// The sequence is only cut short by the end of the bytes: it may be complete in the
    /// full content when only a prefix was captured.
    pub at_end: bool,
}

/// Scans `bytes` as `enc`; `None` when every sequence is well-formed (always for
/// single-byte encodings; `Replacement` and `Utf7` are not scanned either).
pub fn first_malformed(enc: Encoding, bytes: &[u8]) -> Option<Malformed> {
    match enc {
        Encoding::Utf8 => std::str::from_utf8(bytes).err().map(|e| Malformed {
            at: e.valid_up_to(),
            at_end: e.error_len().is_none(),
        }),
        Encoding::Utf16Le => utf16(bytes, false),
        Encoding::Utf16Be => utf16(bytes, true),
        Encoding::ShiftJis => two_byte(
            bytes,
            |b| matches!(b, 0x81..=0x9f | 0xe0..=0xfc),
            |b| matches!(b, 0x00..=0x80 | 0xa1..=0xdf),
            |t| matches!(t, 0x40..=0x7e | 0x80..=0xfc),
        ),
        Encoding::EucKr => two_byte(
            bytes,
            |b| matches!(b, 0x81..=0xfe),
            |b| b < 0x80,
            |t| matches!(t, 0x41..=0xfe),
        ),
        Encoding::Big5 => two_byte(
            bytes,
            |b| matches!(b, 0x81..=0xfe),
            |b| b < 0x80,
            |t| matches!(t, 0x40..=0x7e | 0xa1..=0xfe),
        ),
        Encoding::EucJp => euc_jp(bytes),
        Encoding::Gb18030 => gb18030(bytes),
        Encoding::Iso2022Jp => iso_2022_jp(bytes),
        Encoding::Replacement | Encoding::Utf7 | Encoding::SingleByte => None,
    }
}

fn malformed(at: usize, at_end: bool) -> Option<Malformed> {
    Some(Malformed { at, at_end })
}

fn utf16(bytes: &[u8], be: bool) -> Option<Malformed> {
    let unit = |i: usize| -> Option<u16> {
        let pair = [*bytes.get(i)?, *bytes.get(i + 1)?];
        Some(if be {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        })
    };
    let mut i = 0;
    while i < bytes.len() {
        let Some(u) = unit(i) else {
            return malformed(i, true);
        };
        match u {
            0xd800..=0xdbff => match unit(i + 2) {
                Some(0xdc00..=0xdfff) => i += 4,
                Some(_) => return malformed(i, false),
                None => return malformed(i, true),
            },
            0xdc00..=0xdfff => return malformed(i, false),
            _ => i += 2,
        }
    }
    None
}

/// Encodings of single bytes and lead+trail pairs.
fn two_byte(
    bytes: &[u8],
    is_lead: impl Fn(u8) -> bool,
    is_single: impl Fn(u8) -> bool,
    is_trail: impl Fn(u8) -> bool,
) -> Option<Malformed> {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if is_single(b) {
            i += 1;
        } else if is_lead(b) {
            match bytes.get(i + 1) {
                None => return malformed(i, true),
                Some(&t) if is_trail(t) => i += 2,
                Some(_) => return malformed(i, false),
            }
        } else {
            return malformed(i, false);
        }
    }
    None
}

fn euc_jp(bytes: &[u8]) -> Option<Malformed> {
    let hi = |b: Option<&u8>| b.map(|&b| (0xa1..=0xfe).contains(&b));
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (len, ok) = match b {
            0x00..=0x7f => (1, Some(true)),
            0x8e => (2, bytes.get(i + 1).map(|&t| (0xa1..=0xdf).contains(&t))),
            0x8f => (
                3,
                match (hi(bytes.get(i + 1)), hi(bytes.get(i + 2))) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
            ),
            0xa1..=0xfe => (2, hi(bytes.get(i + 1))),
            _ => (1, Some(false)),
        };
        match ok {
            Some(true) => i += len,
            Some(false) => return malformed(i, false),
            None => return malformed(i, true),
        }
    }
    None
}

fn gb18030(bytes: &[u8]) -> Option<Malformed> {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            0x00..=0x80 => i += 1,
            0xff => return malformed(i, false),
            _ => match bytes.get(i + 1) {
                None => return malformed(i, true),
                Some(0x30..=0x39) => match (bytes.get(i + 2), bytes.get(i + 3)) {
                    (Some(0x81..=0xfe), Some(0x30..=0x39)) => i += 4,
                    (Some(0x81..=0xfe), None) | (None, _) => return malformed(i, true),
                    _ => return malformed(i, false),
                },
                Some(0x40..=0x7e | 0x80..=0xfe) => i += 2,
                Some(_) => return malformed(i, false),
            },
        }
    }
    None
}

/// ISO-2022-JP as the WHATWG decoder reads it: 7-bit only, with escape sequences switching
/// between ASCII, JIS X 0201 Roman and Katakana, and JIS X 0208 pairs; two escape sequences
/// in a row with nothing between them are an error too.
fn iso_2022_jp(bytes: &[u8]) -> Option<Malformed> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Ascii,
        Katakana,
        Jis0208,
    }
    let mut st = St::Ascii;
    let mut just_escaped = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == 0x1b {
            let (Some(&a), Some(&c)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return malformed(i, true);
            };
            st = match (a, c) {
                (b'(', b'B' | b'J') => St::Ascii,
                (b'(', b'I') => St::Katakana,
                (b'$', b'@' | b'B') => St::Jis0208,
                _ => return malformed(i, false),
            };
            if just_escaped {
                return malformed(i, false);
            }
            just_escaped = true;
            i += 3;
            continue;
        }
        match st {
            St::Ascii if b < 0x80 && b != 0x0e && b != 0x0f => i += 1,
            St::Katakana if (0x21..=0x5f).contains(&b) => i += 1,
            St::Jis0208 if (0x21..=0x7e).contains(&b) => match bytes.get(i + 1) {
                Some(0x21..=0x7e) => i += 2,
                None => return malformed(i, true),
                Some(_) => return malformed(i, false),
            },
            St::Jis0208 if b == b'\n' => i += 1,
            _ => return malformed(i, false),
        }
        just_escaped = false;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(for_label(" UTF8 "), Some(Encoding::Utf8));
        assert_eq!(for_label("ISO-2022-KR"), Some(Encoding::Replacement));
        assert_eq!(for_label("utf-7"), Some(Encoding::Utf7));
        assert_eq!(for_label("latin1"), Some(Encoding::SingleByte));
        assert_eq!(for_label("Shift_JIS"), Some(Encoding::ShiftJis));
        assert_eq!(for_label("klingon"), None);
    }

    #[test]
    fn utf8_and_16() {
        assert_eq!(first_malformed(Encoding::Utf8, "René".as_bytes()), None);
        assert_eq!(
            first_malformed(Encoding::Utf8, b"Ren\xe9!"),
            Some(Malformed {
                at: 3,
                at_end: false
            })
        );
        assert!(first_malformed(Encoding::Utf8, b"Ren\xc3").is_some_and(|m| m.at_end));
        assert_eq!(first_malformed(Encoding::Utf16Le, b"a\0b\0"), None);
        assert!(first_malformed(Encoding::Utf16Le, b"a\0b").is_some_and(|m| m.at_end));
        assert_eq!(
            first_malformed(Encoding::Utf16Be, b"\xdc\x00\x00a"),
            Some(Malformed {
                at: 0,
                at_end: false
            })
        );
        assert_eq!(
            first_malformed(Encoding::Utf16Be, b"\xd8\x3d\xde\x00"),
            None
        );
    }

    #[test]
    fn iso_2022_jp_is_seven_bit() {
        assert_eq!(
            first_malformed(Encoding::Iso2022Jp, "René".as_bytes()).map(|m| m.at),
            Some(3)
        );
        assert_eq!(
            first_malformed(Encoding::Iso2022Jp, b"a\x1b$B\x30\x21\x1b(Bz"),
            None
        );
        assert!(first_malformed(Encoding::Iso2022Jp, b"\x1b$B\x1b(B").is_some());
        assert!(first_malformed(Encoding::Iso2022Jp, b"\x1b$A").is_some());
        assert!(first_malformed(Encoding::Iso2022Jp, b"\x1b$B\x30").is_some_and(|m| m.at_end));
    }

    #[test]
    fn cjk_multi_byte() {
        assert_eq!(first_malformed(Encoding::ShiftJis, b"\x82\xa0a\xb1"), None);
        assert!(first_malformed(Encoding::ShiftJis, b"\x82\x20").is_some());
        assert!(first_malformed(Encoding::ShiftJis, b"\xa0").is_some());
        assert_eq!(
            first_malformed(Encoding::EucJp, b"\xa4\xa2\x8e\xb1\x8f\xa1\xa1"),
            None
        );
        assert!(first_malformed(Encoding::EucJp, b"\xa4a").is_some());
        assert_eq!(
            first_malformed(Encoding::Gb18030, b"\xc4\xe3\x81\x30\x81\x30"),
            None
        );
        assert!(first_malformed(Encoding::Gb18030, b"\x81\x30\x20").is_some());
        assert!(first_malformed(Encoding::Big5, b"\xa4\x40\xa4").is_some_and(|m| m.at_end));
        assert!(first_malformed(Encoding::EucKr, b"\xb0\x20").is_some());
    }
}
