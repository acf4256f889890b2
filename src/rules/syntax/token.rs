//! The lexical pieces RFC 9110 §5.6 builds field values from: tokens, quoted-strings,
//! whitespace and comma-separated lists.

/// `tchar` (RFC 9110 §5.6.2): the characters a token is made of.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// A non-empty run of `tchar`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// How many leading bytes of `s` are `tchar`.
pub fn token_len(s: &[u8]) -> usize {
    s.iter().take_while(|&&b| is_tchar(b)).count()
}

/// `OWS` bytes: space and horizontal tab.
pub fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The index of the first non-OWS byte at or after `i`.
pub fn skip_ows(s: &[u8], mut i: usize) -> usize {
    while s.get(i).copied().is_some_and(is_ows) {
        i += 1;
    }
    i
}

/// `token68` (RFC 9110 §11.2): `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Why a quoted-string could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotedError {
    /// No closing `"`.
    Unterminated,
    /// A control character (other than HTAB) inside the quotes.
    Control,
}

/// Reads the quoted-string that starts at `s[0]` (which must be `"`), RFC 9110 §5.6.4.
/// Returns the value with quoted-pairs undone and the number of bytes consumed, closing
/// quote included.
pub fn quoted_string(s: &str) -> Result<(String, usize), QuotedError> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return Err(QuotedError::Unterminated);
    }
    let mut out = Vec::new();
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Ok((String::from_utf8_lossy(&out).into_owned(), i + 1)),
            b'\\' => {
                let next = *bytes.get(i + 1).ok_or(QuotedError::Unterminated)?;
                if is_ctl(next) && next != b'\t' {
                    return Err(QuotedError::Control);
                }
                out.push(next);
                i += 2;
            }
            b if is_ctl(b) && b != b'\t' => return Err(QuotedError::Control),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err(QuotedError::Unterminated)
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// The elements of a comma-separated list (RFC 9110 §5.6.1), OWS-trimmed, empty elements
/// skipped; commas inside quoted-strings do not split. An unterminated quoted-string runs to
/// the end of the value.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let bytes = rest.as_bytes();
            let mut i = 0;
            let mut quoted = false;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => quoted = !quoted,
                    b'\\' if quoted => i += 1,
                    b',' if !quoted => break,
                    _ => {}
                }
                i += 1;
            }
            let end = i.min(bytes.len());
            let item = rest[..end].trim_matches([' ', '\t']);
            rest = rest.get(end + 1..).unwrap_or("");
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token("text"));
        assert!(is_token("x-ndjson+json"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a/b"));
        assert_eq!(token_len(b"abc def"), 3);
    }

    #[test]
    fn token68s() {
        assert!(is_token68("YWxhZGRpbjpvcGVuc2VzYW1l"));
        assert!(is_token68("abc=="));
        assert!(is_token68("eyJhbGciOi.eyJzdWIi.SflKxw-_"));
        assert!(!is_token68("=="));
        assert!(!is_token68("a=b"));
        assert!(!is_token68("a b"));
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_string(r#""a b" x"#), Ok(("a b".into(), 5)));
        assert_eq!(quoted_string(r#""a\"b""#), Ok(("a\"b".into(), 6)));
        assert_eq!(quoted_string(r#""abc"#), Err(QuotedError::Unterminated));
        assert_eq!(quoted_string(r#""abc\"#), Err(QuotedError::Unterminated));
        assert_eq!(quoted_string("\"a\u{1}\""), Err(QuotedError::Control));
        assert_eq!(quoted_string("\"é\""), Ok(("é".into(), 4)));
    }

    #[test]
    fn lists() {
        let v: Vec<&str> = split_list(r#" a, ,b ,"c,d", "g\",h" ,"#).collect();
        assert_eq!(v, ["a", "b", r#""c,d""#, r#""g\",h""#]);
        assert_eq!(split_list("").count(), 0);
        assert_eq!(split_list(" , ,").count(), 0);
        let v: Vec<&str> = split_list(r#"a, "unterminated, b"#).collect();
        assert_eq!(v, ["a", r#""unterminated, b"#]);
    }
}
