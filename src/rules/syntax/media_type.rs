//! Media types (RFC 9110 §8.3.1): `type "/" subtype *( OWS ";" OWS [ parameter ] )`,
//! `parameter = token "=" ( token / quoted-string )`.
//!
//! [`parse_media_type`] is strict and says what is wrong; [`essence`] and [`lenient_param`]
//! read whatever can be read, for checks that only need the type or one parameter and must
//! not depend on the value being well-formed.

use std::borrow::Cow;

use super::token::{QuotedError, is_ows, is_tchar, quoted_string, skip_ows, token_len};

/// A well-formed media type. Names keep their case as sent; compare them case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType<'a> {
    pub type_: &'a str,
    pub subtype: &'a str,
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

impl MediaType<'_> {
    /// `type/subtype`, lower-cased.
    pub fn essence(&self) -> String {
        format!("{}/{}", self.type_, self.subtype).to_ascii_lowercase()
    }

    /// The value of a parameter (name compared case-insensitively), quotes removed.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// What makes a Content-Type (or other media type) value malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaTypeError {
    #[error("no '/' between type and subtype")]
    NoSlash,
    #[error("empty type")]
    EmptyType,
    #[error("empty subtype")]
    EmptySubtype,
    #[error("{0:?} is not allowed in the type")]
    BadTypeChar(char),
    #[error("{0:?} is not allowed in the subtype")]
    BadSubtypeChar(char),
    #[error("missing ';'")]
    MissingSemicolon,
    #[error("{0:?} is not allowed in a parameter name")]
    BadParamNameChar(char),
    #[error("parameter {0:?} has no '='")]
    ParamWithoutEquals(String),
    #[error("whitespace around '=' in parameter {0:?}")]
    SpaceAroundEquals(String),
    #[error("parameter {0:?} has an empty value")]
    EmptyValue(String),
    #[error("unterminated quoted-string in parameter {0:?}")]
    Unterminated(String),
    #[error("control character in the quoted value of parameter {0:?}")]
    ControlInQuoted(String),
    #[error("junk after the value of parameter {0:?}")]
    JunkAfterValue(String),
    #[error("parameter {0:?} repeated")]
    RepeatedParam(String),
}

fn char_at(s: &str, i: usize) -> char {
    s.get(i..).and_then(|r| r.chars().next()).unwrap_or('?')
}

/// Parses a media type strictly. Leading and trailing OWS is ignored; empty parameters
/// (`text/html;` or `; ;`) are allowed, as the grammar allows them.
pub fn parse_media_type(value: &str) -> Result<MediaType<'_>, MediaTypeError> {
    let s = value.trim_matches([' ', '\t']);
    let b = s.as_bytes();
    let t = token_len(b);
    match b.get(t) {
        Some(b'/') if t == 0 => return Err(MediaTypeError::EmptyType),
        Some(b'/') => {}
        None => return Err(MediaTypeError::NoSlash),
        Some(_) if !s.contains('/') => return Err(MediaTypeError::NoSlash),
        Some(_) => return Err(MediaTypeError::BadTypeChar(char_at(s, t))),
    }
    let type_ = &s[..t];
    let sub_start = t + 1;
    let st = token_len(&b[sub_start..]);
    let mut i = sub_start + st;
    if st == 0 {
        match b.get(i) {
            None | Some(b';') => return Err(MediaTypeError::EmptySubtype),
            Some(&c) if is_ows(c) => return Err(MediaTypeError::EmptySubtype),
            Some(_) => return Err(MediaTypeError::BadSubtypeChar(char_at(s, i))),
        }
    }
    let subtype = &s[sub_start..i];
    match b.get(i) {
        None | Some(b';') => {}
        Some(&c) if is_ows(c) => {}
        Some(_) => return Err(MediaTypeError::BadSubtypeChar(char_at(s, i))),
    }
    let mut params: Vec<(&str, Cow<'_, str>)> = Vec::new();
    loop {
        i = skip_ows(b, i);
        match b.get(i) {
            None => break,
            Some(b';') => i += 1,
            Some(_) => return Err(MediaTypeError::MissingSemicolon),
        }
        i = skip_ows(b, i);
        match b.get(i) {
            None => break,
            Some(b';') => continue,
            _ => {}
        }
        let n = token_len(&b[i..]);
        if n == 0 {
            return Err(MediaTypeError::BadParamNameChar(char_at(s, i)));
        }
        let name = &s[i..i + n];
        i += n;
        match b.get(i) {
            Some(b'=') => i += 1,
            Some(&c) if is_ows(c) => {
                let j = skip_ows(b, i);
                if b.get(j) == Some(&b'=') {
                    return Err(MediaTypeError::SpaceAroundEquals(name.to_string()));
                }
                return Err(MediaTypeError::ParamWithoutEquals(name.to_string()));
            }
            None | Some(b';') => {
                return Err(MediaTypeError::ParamWithoutEquals(name.to_string()));
            }
            Some(_) => return Err(MediaTypeError::BadParamNameChar(char_at(s, i))),
        }
        let value: Cow<'_, str> = match b.get(i) {
            Some(&c) if is_ows(c) => {
                return Err(MediaTypeError::SpaceAroundEquals(name.to_string()));
            }
            Some(b'"') => match quoted_string(&s[i..]) {
                Ok((v, used)) => {
                    i += used;
                    Cow::Owned(v)
                }
                Err(QuotedError::Unterminated) => {
                    return Err(MediaTypeError::Unterminated(name.to_string()));
                }
                Err(QuotedError::Control) => {
                    return Err(MediaTypeError::ControlInQuoted(name.to_string()));
                }
            },
            _ => {
                let v = token_len(&b[i..]);
                if v == 0 {
                    return Err(match b.get(i) {
                        None | Some(b';') => MediaTypeError::EmptyValue(name.to_string()),
                        Some(_) => MediaTypeError::JunkAfterValue(name.to_string()),
                    });
                }
                i += v;
                Cow::Borrowed(&s[i - v..i])
            }
        };
        match b.get(skip_ows(b, i)) {
            None | Some(b';') => {}
            Some(_) => return Err(MediaTypeError::JunkAfterValue(name.to_string())),
        }
        if params.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(MediaTypeError::RepeatedParam(name.to_ascii_lowercase()));
        }
        params.push((name, value));
    }
    Ok(MediaType {
        type_,
        subtype,
        params,
    })
}

/// The `type/subtype` part of a value, lower-cased, however malformed the rest is: what
/// comes before the first `;`, trimmed.
pub fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim_matches([' ', '\t'])
        .to_ascii_lowercase()
}

/// A parameter's value read leniently: the first `;`-separated `name=value` whose name
/// matches (case-insensitively, whitespace around `=` tolerated), quotes removed.
pub fn lenient_param<'a>(value: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let b = value.as_bytes();
    let mut i = 0;
    // Skip the type/subtype.
    while i < b.len() && b[i] != b';' {
        i += 1;
    }
    while i < b.len() {
        // b[i] == ';'
        i = skip_ows(b, i + 1);
        let n = b[i..].iter().take_while(|&&c| is_tchar(c)).count();
        let pname = &value[i..i + n];
        i = skip_ows(b, i + n);
        if b.get(i) != Some(&b'=') {
            while i < b.len() && b[i] != b';' {
                i += 1;
            }
            continue;
        }
        i = skip_ows(b, i + 1);
        let (v, used): (Cow<'a, str>, usize) = if b.get(i) == Some(&b'"') {
            match quoted_string(&value[i..]) {
                Ok((v, used)) => (Cow::Owned(v), used),
                Err(_) => {
                    let rest = &value[i + 1..];
                    (
                        Cow::Borrowed(rest.trim_end_matches([' ', '\t'])),
                        rest.len() + 1,
                    )
                }
            }
        } else {
            let end = value[i..].find(';').map_or(value.len(), |p| i + p);
            (
                Cow::Borrowed(value[i..end].trim_end_matches([' ', '\t'])),
                end - i,
            )
        };
        if pname.eq_ignore_ascii_case(name) {
            return Some(v);
        }
        i += used;
        while i < b.len() && b[i] != b';' {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        match parse_media_type(s) {
            Ok(m) => panic!("{s:?} parsed as {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn well_formed() {
        let m = parse_media_type("Text/HTML; Charset=\"UTF-8\"").expect("valid");
        assert_eq!(m.essence(), "text/html");
        assert_eq!(m.param("charset"), Some("UTF-8"));
        for ok in [
            "text/html",
            "text/html;",
            "text/html; ;",
            "text/html ; charset=utf-8",
            "application/x-ndjson",
            "multipart/form-data; boundary=\"simple boundary\";",
            "text/plain; x=\"a \\\"q\\\" b\"",
            "application/vnd.api+json;ext=\"https://x/y\"",
            "  text/plain  ",
        ] {
            assert!(parse_media_type(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn malformed() {
        assert_eq!(err("text/html charset=UTF-8"), "missing ';'");
        assert_eq!(err("json"), "no '/' between type and subtype");
        assert_eq!(err("/json"), "empty type");
        assert_eq!(err("text/"), "empty subtype");
        assert_eq!(err("text/;a=b"), "empty subtype");
        assert_eq!(err("te xt/html"), "' ' is not allowed in the type");
        assert_eq!(err("text/ht(ml"), "'(' is not allowed in the subtype");
        assert_eq!(
            err("text/html, text/plain"),
            "',' is not allowed in the subtype"
        );
        assert_eq!(
            err("text/html; charset"),
            "parameter \"charset\" has no '='"
        );
        assert_eq!(
            err("text/html; charset = utf-8"),
            "whitespace around '=' in parameter \"charset\""
        );
        assert_eq!(
            err("text/html; charset= utf-8"),
            "whitespace around '=' in parameter \"charset\""
        );
        assert_eq!(
            err("text/html; charset="),
            "parameter \"charset\" has an empty value"
        );
        assert_eq!(
            err("text/html; charset=\"utf-8"),
            "unterminated quoted-string in parameter \"charset\""
        );
        assert_eq!(
            err("text/html; charset=utf-8 x"),
            "junk after the value of parameter \"charset\""
        );
        assert_eq!(
            err("text/html; charset=\"utf-8\"x"),
            "junk after the value of parameter \"charset\""
        );
        assert_eq!(
            err("text/html; charset=utf/8"),
            "junk after the value of parameter \"charset\""
        );
        assert_eq!(
            err("text/html; charset=utf-8; Charset=latin1"),
            "parameter \"charset\" repeated"
        );
        assert_eq!(
            err("text/html; ch@rset=x"),
            "'@' is not allowed in a parameter name"
        );
        assert_eq!(
            err("text/html; =x"),
            "'=' is not allowed in a parameter name"
        );
        assert_eq!(err("charset: utf-8"), "no '/' between type and subtype");
        assert_eq!(err(""), "no '/' between type and subtype");
        assert_eq!(err("é/x"), "'é' is not allowed in the type");
    }

    #[test]
    fn lenient() {
        assert_eq!(
            essence(" Multipart/ByteRanges ; boundary=x"),
            "multipart/byteranges"
        );
        assert_eq!(
            lenient_param("multipart/byteranges; boundary=3d6b", "Boundary").as_deref(),
            Some("3d6b")
        );
        assert_eq!(
            lenient_param(
                "multipart/byteranges;a=\"x;y\"; boundary = \"q r\"",
                "boundary"
            )
            .as_deref(),
            Some("q r")
        );
        assert_eq!(lenient_param("text/plain; charset", "charset"), None);
        assert_eq!(lenient_param("text/plain", "charset"), None);
        assert_eq!(
            lenient_param("text/plain; b=\"open", "b").as_deref(),
            Some("open")
        );
        assert_eq!(
            lenient_param("text/plain; é=1; b=2", "b").as_deref(),
            Some("2")
        );
    }
}
