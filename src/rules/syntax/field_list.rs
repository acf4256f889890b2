//! Building blocks of RFC 9110 field values (§5.6): tokens, quoted-strings, comma-separated
//! lists (§5.6.1) whose commas inside quoted-strings do not separate, and weighted lists
//! (`gzip;q=0.8`, §12.4.2).

/// `tchar` (RFC 9110 §5.6.2).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty run of `tchar`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Optional whitespace (`OWS`: SP / HTAB) trimmed from both ends.
pub fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Splits a list field value at commas that are not inside a quoted-string; elements are
/// OWS-trimmed and empty ones dropped (RFC 9110 §5.6.1: recipients accept empty elements).
/// An unclosed quote runs to the end of the value (the element then keeps it, so a strict
/// element parser can report it).
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut in_quote = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b',' if !in_quote => {
                push_element(&value[start..i], &mut out);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    push_element(value.get(start..).unwrap_or(""), &mut out);
    out
}

fn push_element<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let s = trim_ows(s);
    if !s.is_empty() {
        out.push(s);
    }
}

/// Reads a quoted-string at the start of `s` (which must begin with `"`): returns the
/// unescaped content and the rest after the closing quote, or `None` when it is unclosed.
pub fn quoted_string(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &rest[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// A parameter or directive value: the quoted-string's content or the token as written.
/// Lenient: a value that is neither (e.g. `a b`) is returned trimmed.
pub fn unquote(s: &str) -> String {
    let s = trim_ows(s);
    if s.starts_with('"')
        && let Some((v, rest)) = quoted_string(s)
        && trim_ows(rest).is_empty()
    {
        return v;
    }
    s.to_string()
}

/// Parses a `qvalue` (RFC 9110 §12.4.2) leniently: any decimal in 0..=1 is accepted (so
/// `q=.5` and `q=0.1234` are read as meant); other values are `None`.
pub fn qvalue(s: &str) -> Option<f32> {
    let s = trim_ows(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') || s.len() > 8 {
        return None;
    }
    let q: f32 = s.parse().ok()?;
    (0.0..=1.0).contains(&q).then_some(q)
}

/// One element of a weighted list such as Accept-Encoding: the value before the first `;`,
/// lower-cased, and its `q` (1 when absent or unreadable: an unreadable weight is not
/// taken as a refusal).
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    pub value: String,
    pub q: f32,
    /// The `q` parameter was present but not a valid qvalue.
    pub bad_q: bool,
}

/// Parses a weighted list (`gzip;q=1.0, identity; q=0.5, *;q=0`).
pub fn weighted_list(value: &str) -> Vec<Weighted> {
    split_list(value)
        .into_iter()
        .map(|el| {
            let mut parts = el.split(';');
            let name = trim_ows(parts.next().unwrap_or("")).to_ascii_lowercase();
            let mut q = 1.0;
            let mut bad_q = false;
            for p in parts {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                if trim_ows(k).eq_ignore_ascii_case("q") {
                    match qvalue(v) {
                        Some(x) => q = x,
                        None => bad_q = true,
                    }
                }
            }
            Weighted {
                value: name,
                q,
                bad_q,
            }
        })
        .collect()
}

/// At most `max` characters of `s`, with `…` when cut: for evidence strings that quote a
/// value from the wire.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_inside_quotes_do_not_split() {
        assert_eq!(
            split_list(r#"no-cache="a, b", max-age=5,, ,x"#),
            vec![r#"no-cache="a, b""#, "max-age=5", "x"]
        );
        assert_eq!(split_list(r#"a="x\", y", b"#), vec![r#"a="x\", y""#, "b"]);
        assert_eq!(split_list(r#"a="unclosed, b"#), vec![r#"a="unclosed, b"#]);
        assert!(split_list(" , ").is_empty());
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(
            quoted_string(r#""a\"b" rest"#),
            Some((r#"a"b"#.to_string(), " rest"))
        );
        assert_eq!(quoted_string(r#""open"#), None);
        assert_eq!(quoted_string(r#""trailing\"#), None);
        assert_eq!(unquote(r#" "60" "#), "60");
        assert_eq!(unquote("60"), "60");
    }

    #[test]
    fn weights() {
        let l = weighted_list("gzip;q=0.8, BR ; Q=0, *;q=bogus, deflate");
        assert_eq!(l[0].value, "gzip");
        assert!((l[0].q - 0.8).abs() < 1e-6);
        assert_eq!((l[1].value.as_str(), l[1].q), ("br", 0.0));
        assert!(l[2].bad_q && l[2].q == 1.0);
        assert_eq!(l[3].q, 1.0);
        assert_eq!(qvalue("1.5"), None);
        assert_eq!(qvalue(".5"), Some(0.5));
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("hé", 2), "hé");
    }
}
