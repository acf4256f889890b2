//! Range requests (RFC 9110 §14): the `Range` request field and the `Content-Range`
//! response field.

use std::cmp::Ordering;

use super::token::{is_token, split_list};

/// A parsed `Content-Range` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange<'a> {
    /// `bytes first-last/complete` (`complete` is `None` for `*`).
    Bytes {
        first: u64,
        last: u64,
        complete: Option<u64>,
    },
    /// `bytes */complete`: the unsatisfied-range form of a 416.
    Unsatisfied { complete: u64 },
    /// A unit other than `bytes`: only `unit SP rest` is checked.
    Other { unit: &'a str, rest: &'a str },
}

impl ContentRange<'_> {
    /// Number of bytes a `Bytes` range covers.
    pub fn size(&self) -> Option<u64> {
        match *self {
            ContentRange::Bytes { first, last, .. } => {
                last.checked_sub(first).and_then(|d| d.checked_add(1))
            }
            _ => None,
        }
    }
}

/// What makes a Content-Range invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentRangeError {
    #[error("no range unit")]
    NoUnit,
    #[error("no space after the unit")]
    NoSpace,
    #[error("nothing after the unit")]
    Empty,
    #[error("no '-' between first and last position")]
    NoHyphen,
    #[error("no '/' before the complete length")]
    NoSlash,
    #[error("not a number")]
    NotDigits,
    #[error("'*/*' gives neither range nor length")]
    StarStar,
    #[error("number too large")]
    Overflow,
    #[error("first position after the last")]
    FirstAfterLast,
    #[error("last position at or beyond the complete length")]
    LastBeyondLength,
}

fn number(s: &str) -> Result<u64, ContentRangeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ContentRangeError::NotDigits);
    }
    s.parse().map_err(|_| ContentRangeError::Overflow)
}

/// Parses a Content-Range (RFC 9110 §14.4); leading and trailing OWS is ignored.
pub fn parse_content_range(value: &str) -> Result<ContentRange<'_>, ContentRangeError> {
    let s = value.trim_matches([' ', '\t']);
    let unit_end = s
        .bytes()
        .position(|b| !super::token::is_tchar(b))
        .unwrap_or(s.len());
    let unit = &s[..unit_end];
    // A value that starts with a position ("0-4/11", "*/11") has no unit at all.
    if unit.is_empty() || s.starts_with(|c: char| c.is_ascii_digit() || c == '*') {
        return Err(ContentRangeError::NoUnit);
    }
    let Some(rest) = s[unit_end..].strip_prefix(' ') else {
        return Err(if unit_end == s.len() {
            ContentRangeError::Empty
        } else {
            ContentRangeError::NoSpace
        });
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        if rest.is_empty() {
            return Err(ContentRangeError::Empty);
        }
        return Ok(ContentRange::Other { unit, rest });
    }
    let (range, complete) = rest.split_once('/').ok_or(ContentRangeError::NoSlash)?;
    if range == "*" {
        if complete == "*" {
            return Err(ContentRangeError::StarStar);
        }
        return Ok(ContentRange::Unsatisfied {
            complete: number(complete)?,
        });
    }
    let (first, last) = range.split_once('-').ok_or(ContentRangeError::NoHyphen)?;
    let first = number(first)?;
    let last = number(last)?;
    let complete = if complete == "*" {
        None
    } else {
        Some(number(complete)?)
    };
    if first > last {
        return Err(ContentRangeError::FirstAfterLast);
    }
    if complete.is_some_and(|c| last >= c) {
        return Err(ContentRangeError::LastBeyondLength);
    }
    Ok(ContentRange::Bytes {
        first,
        last,
        complete,
    })
}

/// One element of a byte range-set. Positions are decimal strings as sent (they may exceed
/// any integer type); compare them with [`cmp_decimal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange<'a> {
    /// `first-` or `first-last`.
    Int {
        first: &'a str,
        last: Option<&'a str>,
    },
    /// `-suffix`.
    Suffix(&'a str),
}

/// A parsed `Range` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeHeader<'a> {
    pub unit: &'a str,
    /// Byte ranges (empty for other units, whose set is not interpreted).
    pub ranges: Vec<ByteRange<'a>>,
}

/// What makes a Range invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("no '=' after the unit")]
    NoEquals,
    #[error("the unit is not a token")]
    BadUnit,
    #[error("empty range set")]
    EmptySet,
    #[error("{0:?} is not a byte range")]
    BadElement(String),
    #[error("first > last in {0:?}")]
    FirstAfterLast(String),
}

/// Compares two non-empty decimal digit strings by value, whatever their length.
pub fn cmp_decimal(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a Range (RFC 9110 §14.2): `range-unit "=" range-set`, with OWS and empty elements
/// allowed in the list; the unit compares case-insensitively.
pub fn parse_range(value: &str) -> Result<RangeHeader<'_>, RangeError> {
    let s = value.trim_matches([' ', '\t']);
    let (unit, set) = s.split_once('=').ok_or(RangeError::NoEquals)?;
    if !is_token(unit) {
        return Err(RangeError::BadUnit);
    }
    if split_list(set).next().is_none() {
        return Err(RangeError::EmptySet);
    }
    let mut ranges = Vec::new();
    if unit.eq_ignore_ascii_case("bytes") {
        for el in split_list(set) {
            let (first, last) = el
                .split_once('-')
                .ok_or_else(|| RangeError::BadElement(el.to_string()))?;
            if first.is_empty() {
                if !digits(last) {
                    return Err(RangeError::BadElement(el.to_string()));
                }
                ranges.push(ByteRange::Suffix(last));
                continue;
            }
            if !digits(first) || !(last.is_empty() || digits(last)) {
                return Err(RangeError::BadElement(el.to_string()));
            }
            if !last.is_empty() && cmp_decimal(first, last) == Ordering::Greater {
                return Err(RangeError::FirstAfterLast(el.to_string()));
            }
            ranges.push(ByteRange::Int {
                first,
                last: (!last.is_empty()).then_some(last),
            });
        }
    }
    Ok(RangeHeader { unit, ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-4/11"),
            Ok(ContentRange::Bytes {
                first: 0,
                last: 4,
                complete: Some(11)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-4/11")
                .ok()
                .and_then(|r| r.size()),
            Some(5)
        );
        assert_eq!(
            parse_content_range("bytes */11"),
            Ok(ContentRange::Unsatisfied { complete: 11 })
        );
        assert!(matches!(
            parse_content_range("bytes 0-99/*"),
            Ok(ContentRange::Bytes { complete: None, .. })
        ));
        assert!(matches!(
            parse_content_range("Bytes 0-0/1"),
            Ok(ContentRange::Bytes { .. })
        ));
        assert!(matches!(
            parse_content_range("items 1-2/3"),
            Ok(ContentRange::Other { unit: "items", .. })
        ));
        use ContentRangeError::*;
        for (v, e) in [
            ("0-4/11", NoUnit),
            ("*/11", NoUnit),
            ("", NoUnit),
            ("bytes", Empty),
            ("bytes=0-4/11", NoSpace),
            ("bytes 0-4", NoSlash),
            ("bytes 04/11", NoHyphen),
            ("bytes a-4/11", NotDigits),
            ("bytes 0-4/", NotDigits),
            ("bytes  0-4/11", NotDigits),
            ("bytes */*", StarStar),
            ("bytes 0-99999999999999999999/*", Overflow),
            ("bytes 5-4/11", FirstAfterLast),
            ("bytes 0-11/11", LastBeyondLength),
            ("items ", Empty),
        ] {
            assert_eq!(parse_content_range(v), Err(e), "{v:?}");
        }
    }

    #[test]
    fn ranges() {
        let r = parse_range("bytes=0-4, -5,,6-").expect("valid");
        assert_eq!(
            r.ranges,
            [
                ByteRange::Int {
                    first: "0",
                    last: Some("4")
                },
                ByteRange::Suffix("5"),
                ByteRange::Int {
                    first: "6",
                    last: None
                }
            ]
        );
        for ok in [
            "bytes=0-0",
            "bytes=-0",
            "BYTES=1000-",
            "items=0-24",
            "items=whatever",
        ] {
            assert!(parse_range(ok).is_ok(), "{ok:?}");
        }
        assert!(parse_range("bytes=99999999999999999999999-99999999999999999999999").is_ok());
        assert_eq!(parse_range("bytes 0-499"), Err(RangeError::NoEquals));
        assert_eq!(parse_range("by tes=0-1"), Err(RangeError::BadUnit));
        assert_eq!(parse_range("=0-1"), Err(RangeError::BadUnit));
        assert_eq!(parse_range("bytes="), Err(RangeError::EmptySet));
        assert_eq!(parse_range("bytes= , ,"), Err(RangeError::EmptySet));
        assert_eq!(
            parse_range("bytes=500-100"),
            Err(RangeError::FirstAfterLast("500-100".into()))
        );
        assert_eq!(
            parse_range("bytes=100000000000000000000-5"),
            Err(RangeError::FirstAfterLast("100000000000000000000-5".into()))
        );
        for bad in [
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=5",
            "bytes=0x1-2",
            "bytes=1 -2",
        ] {
            assert!(
                matches!(parse_range(bad), Err(RangeError::BadElement(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn decimal_order() {
        assert_eq!(cmp_decimal("0010", "9"), Ordering::Greater);
        assert_eq!(cmp_decimal("000", "0"), Ordering::Equal);
        assert_eq!(cmp_decimal("12", "13"), Ordering::Less);
    }
}
