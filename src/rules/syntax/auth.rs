//! HTTP authentication fields (RFC 9110 §11): credentials (`Authorization`,
//! `Proxy-Authorization`) and challenge lists (`WWW-Authenticate`, `Proxy-Authenticate`).
//!
//! `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, with
//! `auth-param = token BWS "=" BWS ( token / quoted-string )`. Unquoted parameter values are
//! read leniently: any visible characters except `,` and `"` (AWS Signature V4 sends
//! `Credential=AKID/20250304/us-east-1/s3/aws4_request` unquoted, and everyone accepts it).
//! Parsed values are never meant for output: they may be secrets.

use super::token::{is_ows, is_tchar, quoted_string, skip_ows, token_len};

/// What follows the scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthData {
    None,
    Token68(String),
    /// `(name, value, value was quoted)`, names as sent.
    Params(Vec<(String, String, bool)>),
}

/// One challenge, or the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthItem {
    pub scheme: String,
    pub data: AuthData,
}

impl AuthItem {
    /// A parameter's value and whether it was quoted (name compared case-insensitively).
    pub fn param(&self, name: &str) -> Option<(&str, bool)> {
        match &self.data {
            AuthData::Params(p) => p
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v, q)| (v.as_str(), *q)),
            _ => None,
        }
    }
}

/// Why an authentication field does not parse. Messages never quote the field's content
/// beyond scheme and parameter names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no auth scheme")]
    NoScheme,
    #[error("the scheme is not a token")]
    BadScheme,
    #[error("neither a token68 nor auth-params after the scheme")]
    BadData,
    #[error("parameter {0:?} repeated")]
    RepeatedParam(String),
    #[error("unterminated quoted-string in parameter {0:?}")]
    Unterminated(String),
    #[error("junk after the value of parameter {0:?}")]
    JunkAfterValue(String),
    #[error("more than one set of credentials")]
    SeveralCredentials,
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// Lenient unquoted value: visible characters except `,` and `"` (and obs-text).
fn is_lenient_value_char(b: u8) -> bool {
    (b > 0x20 && b != 0x7f && b != b',' && b != b'"') || b >= 0x80
}

/// Parses a challenge list (`WWW-Authenticate`, `Proxy-Authenticate`); empty list elements
/// are allowed.
pub fn parse_challenges(value: &str) -> Result<Vec<AuthItem>, AuthError> {
    let mut items = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    loop {
        // Skip empty list elements.
        while i < b.len() && (is_ows(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let (item, next) = parse_item(value, i)?;
        items.push(item);
        i = next;
    }
    if items.is_empty() {
        return Err(AuthError::NoScheme);
    }
    Ok(items)
}

/// Parses credentials (`Authorization`, `Proxy-Authorization`): exactly one item.
pub fn parse_credentials(value: &str) -> Result<AuthItem, AuthError> {
    let b = value.as_bytes();
    let start = skip_ows(b, 0);
    if start >= b.len() {
        return Err(AuthError::NoScheme);
    }
    let (item, next) = parse_item(value, start)?;
    let mut j = next;
    while j < b.len() && (is_ows(b[j]) || b[j] == b',') {
        j += 1;
    }
    if j < b.len() {
        return Err(AuthError::SeveralCredentials);
    }
    Ok(item)
}

/// Parses one scheme and its data starting at `i` (a non-OWS, non-comma byte). Returns the
/// item and the index of the comma that ends it (or the end).
fn parse_item(s: &str, i: usize) -> Result<(AuthItem, usize), AuthError> {
    let b = s.as_bytes();
    let n = token_len(&b[i..]);
    if n == 0 {
        return Err(AuthError::BadScheme);
    }
    let scheme = s[i..i + n].to_string();
    let mut i = i + n;
    match b.get(i) {
        None | Some(b',') => {
            return Ok((
                AuthItem {
                    scheme,
                    data: AuthData::None,
                },
                i,
            ));
        }
        Some(b' ') => {}
        Some(_) => return Err(AuthError::BadScheme),
    }
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    if i >= b.len() || b[i] == b',' {
        return Ok((
            AuthItem {
                scheme,
                data: AuthData::None,
            },
            i,
        ));
    }
    // token68: its characters, then '='s, then OWS and the end of the element.
    let t = b[i..].iter().take_while(|&&c| is_token68_char(c)).count();
    if t > 0 {
        let mut j = i + t;
        while b.get(j) == Some(&b'=') {
            j += 1;
        }
        let k = skip_ows(b, j);
        if k >= b.len() || b[k] == b',' {
            return Ok((
                AuthItem {
                    scheme,
                    data: AuthData::Token68(s[i..j].to_string()),
                },
                k,
            ));
        }
    }
    // Otherwise a list of auth-params; a list element that is not `token BWS "="` starts the
    // next challenge.
    let mut params: Vec<(String, String, bool)> = Vec::new();
    loop {
        let n = token_len(&b[i..]);
        if n == 0 {
            return Err(AuthError::BadData);
        }
        let name = &s[i..i + n];
        let mut j = skip_ows(b, i + n);
        if b.get(j) != Some(&b'=') {
            return Err(AuthError::BadData);
        }
        j = skip_ows(b, j + 1);
        let (value, quoted) = if b.get(j) == Some(&b'"') {
            let (v, used) =
                quoted_string(&s[j..]).map_err(|_| AuthError::Unterminated(name.to_string()))?;
            j += used;
            (v, true)
        } else {
            let v = b[j..]
                .iter()
                .take_while(|&&c| is_lenient_value_char(c))
                .count();
            if v == 0 {
                return Err(AuthError::BadData);
            }
            j += v;
            (s[j - v..j].to_string(), false)
        };
        j = skip_ows(b, j);
        if j < b.len() && b[j] != b',' {
            return Err(AuthError::JunkAfterValue(name.to_string()));
        }
        if params.iter().any(|(p, _, _)| p.eq_ignore_ascii_case(name)) {
            return Err(AuthError::RepeatedParam(name.to_ascii_lowercase()));
        }
        params.push((name.to_string(), value, quoted));
        // Next element: another param of this item, or the end of the item.
        let mut k = j;
        while k < b.len() && (is_ows(b[k]) || b[k] == b',') {
            k += 1;
        }
        if k >= b.len() || !starts_param(b, k) {
            return Ok((
                AuthItem {
                    scheme,
                    data: AuthData::Params(params),
                },
                j,
            ));
        }
        i = k;
    }
}

/// Whether `b[k..]` starts with `token BWS "="` (a parameter rather than a new scheme).
fn starts_param(b: &[u8], k: usize) -> bool {
    let n = b[k..].iter().take_while(|&&c| is_tchar(c)).count();
    n > 0 && b.get(skip_ows(b, k + n)) == Some(&b'=')
}

/// Decodes standard base64 (RFC 4648 §4) with its padding; `None` when the text is not
/// exactly that (wrong length, characters outside the alphabet, misplaced `=`).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return None;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = &b[..b.len() - pad];
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let c = parse_credentials("Basic YWxhZGRpbjpvcGVuc2VzYW1l").expect("basic");
        assert_eq!(c.data, AuthData::Token68("YWxhZGRpbjpvcGVuc2VzYW1l".into()));
        let c =
            parse_credentials("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-_==").expect("jwt");
        assert!(matches!(c.data, AuthData::Token68(_)));
        let c = parse_credentials(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250304/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=5d67",
        )
        .expect("aws");
        assert_eq!(c.param("signedheaders"), Some(("host;x-amz-date", false)));
        let c = parse_credentials(
            r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", nc=00000001, qop=auth"#,
        )
        .expect("digest");
        assert_eq!(c.param("realm"), Some(("http-auth@example.org", true)));
        assert!(parse_credentials("Negotiate").is_ok());
        assert!(parse_credentials("Negotiate YII=").is_ok());
        assert!(parse_credentials("basic   YWI6").is_ok());
        assert_eq!(parse_credentials(""), Err(AuthError::NoScheme));
        assert_eq!(parse_credentials("Bas(ic x"), Err(AuthError::BadScheme));
        assert_eq!(
            parse_credentials("Digest a=1, a=2"),
            Err(AuthError::RepeatedParam("a".into()))
        );
        assert_eq!(
            parse_credentials("Digest a=\"1"),
            Err(AuthError::Unterminated("a".into()))
        );
        assert_eq!(parse_credentials("Bearer a b"), Err(AuthError::BadData));
        assert_eq!(
            parse_credentials("Basic abc, Bearer def"),
            Err(AuthError::SeveralCredentials)
        );
        assert_eq!(
            parse_credentials("Digest a=\"1\"x"),
            Err(AuthError::JunkAfterValue("a".into()))
        );
    }

    #[test]
    fn challenges() {
        let c = parse_challenges(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        )
        .expect("RFC 9110 example");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "Newauth");
        assert_eq!(c[1].param("realm"), Some(("simple", true)));
        let c = parse_challenges("Negotiate, NTLM, Basic realm=\"x\"").expect("list");
        assert_eq!(c.len(), 3);
        let c = parse_challenges("Negotiate abc==, Basic realm=x").expect("token68 then");
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].param("realm"), Some(("x", false)));
        assert!(parse_challenges("Bearer realm=\"api\", error=\"invalid_token\"").is_ok());
        assert_eq!(parse_challenges(" , "), Err(AuthError::NoScheme));
        assert_eq!(
            parse_challenges("Basic realm=\"a\", realm=\"b\""),
            Err(AuthError::RepeatedParam("realm".into()))
        );
        // The same name in two challenges is fine.
        assert!(parse_challenges("Basic realm=\"a\", Digest realm=\"b\"").is_ok());
    }

    #[test]
    fn base64() {
        assert_eq!(
            decode_base64("YWxhZGRpbjpvcGVuc2VzYW1l").as_deref(),
            Some(&b"aladdin:opensesame"[..])
        );
        assert_eq!(
            decode_base64("YXBpa2V5MTIz").as_deref(),
            Some(&b"apikey123"[..])
        );
        assert_eq!(decode_base64("dXNlcjo=").as_deref(), Some(&b"user:"[..]));
        assert_eq!(decode_base64("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64("YQ"), None);
        assert_eq!(decode_base64("Y==="), None);
        assert_eq!(decode_base64("YQ=a"), None);
        assert_eq!(decode_base64("a-_b"), None);
        assert_eq!(decode_base64(""), None);
    }
}
