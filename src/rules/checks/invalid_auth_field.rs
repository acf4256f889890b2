//! `invalid-auth-field`: malformed credentials (`Authorization`, `Proxy-Authorization`) or
//! challenges (`WWW-Authenticate`, `Proxy-Authenticate`) per RFC 9110 §11.3–§11.6.1, and
//! Basic credentials or challenges that break RFC 7617 §2 (base64 of `user-id:password`;
//! a quoted realm). The grammar and base64 need code, and the evidence must never show a
//! credential: only field name, scheme and the problem.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::auth::{
    AuthData, AuthError, AuthItem, decode_base64, parse_challenges, parse_credentials,
};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// The scheme as it may be shown: short names only, since a client that sends a bare token
/// without a scheme makes the token itself parse as the scheme.
fn scheme_shown(scheme: &str) -> &str {
    if !scheme.is_empty()
        && scheme.len() <= 24
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        scheme
    } else {
        "(scheme withheld)"
    }
}

/// The first token of a value, for evidence about a value that did not parse.
fn leading_scheme(value: &str) -> &str {
    let v = value.trim_start_matches([' ', '\t']);
    let end = v
        .bytes()
        .position(|b| !crate::rules::syntax::token::is_tchar(b))
        .unwrap_or(v.len());
    &v[..end]
}

/// A parse error as shown for credentials: no parameter names, which could be pieces of a
/// malformed secret.
fn credential_error(e: &AuthError) -> String {
    match e {
        AuthError::RepeatedParam(_) => "a parameter repeats".into(),
        AuthError::Unterminated(_) => "unterminated quoted-string".into(),
        AuthError::JunkAfterValue(_) => "junk after a parameter value".into(),
        other => other.to_string(),
    }
}

fn basic_credentials_problem(item: &AuthItem) -> Option<&'static str> {
    match &item.data {
        AuthData::None => Some("no credentials after the scheme"),
        AuthData::Params(_) => Some("parameters instead of base64 credentials"),
        AuthData::Token68(t) => match decode_base64(t) {
            None => Some("not valid base64"),
            Some(bytes) if !bytes.contains(&b':') => Some("no ':' after decoding"),
            Some(_) => None,
        },
    }
}

fn basic_challenge_problem(item: &AuthItem) -> Option<&'static str> {
    match item.param("realm") {
        None => Some("challenge has no realm"),
        Some((_, false)) => Some("realm is not a quoted-string"),
        Some((_, true)) => None,
    }
}

fn check_line(name: &str, value: &str, credentials: bool) -> Option<String> {
    if credentials {
        return match parse_credentials(value) {
            Err(AuthError::BadScheme | AuthError::NoScheme) => {
                Some(format!("{name}: (no valid auth scheme)"))
            }
            Err(e) => Some(format!(
                "{name}: {} ({})",
                scheme_shown(leading_scheme(value)),
                credential_error(&e)
            )),
            Ok(item) if item.scheme.eq_ignore_ascii_case("basic") => {
                basic_credentials_problem(&item)
                    .map(|p| format!("{name}: {} ({p})", scheme_shown(&item.scheme)))
            }
            Ok(_) => None,
        };
    }
    match parse_challenges(value) {
        Err(AuthError::BadScheme | AuthError::NoScheme) => {
            Some(format!("{name}: (no valid auth scheme)"))
        }
        Err(e) => Some(format!(
            "{name}: {} ({e})",
            scheme_shown(leading_scheme(value))
        )),
        Ok(items) => items
            .iter()
            .filter(|i| i.scheme.eq_ignore_ascii_case("basic"))
            .find_map(|i| {
                basic_challenge_problem(i)
                    .map(|p| format!("{name}: {} ({p})", scheme_shown(&i.scheme)))
            }),
    }
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    let mut hits: Vec<Hit> = Vec::new();
    for h in &msg.headers {
        let lower = h.name.to_ascii_lowercase();
        let credentials = match lower.as_str() {
            "authorization" | "proxy-authorization" => true,
            "www-authenticate" | "proxy-authenticate" => false,
            _ => continue,
        };
        if let Some(evidence) = check_line(&h.name, &h.value, credentials)
            && !hits.iter().any(|x| x.evidence == evidence)
        {
            hits.push(Hit::new(evidence));
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(v: &str) -> Option<String> {
        check_line("Authorization", v, true)
    }

    fn chal(v: &str) -> Option<String> {
        check_line("WWW-Authenticate", v, false)
    }

    #[test]
    fn basic_credentials() {
        assert_eq!(
            cred("Basic YXBpa2V5MTIz").as_deref(),
            Some("Authorization: Basic (no ':' after decoding)")
        );
        assert_eq!(cred("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(
            cred("basic dXNlcjo="),
            None,
            "empty password, lower-case scheme"
        );
        assert_eq!(
            cred("Basic dXNlcjo").as_deref(),
            Some("Authorization: Basic (not valid base64)")
        );
        assert_eq!(
            cred("Basic").as_deref(),
            Some("Authorization: Basic (no credentials after the scheme)")
        );
    }

    #[test]
    fn other_credentials() {
        assert_eq!(
            cred("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_"),
            None
        );
        assert_eq!(cred("Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXeg=="), None);
        assert_eq!(
            cred("NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw=="),
            None
        );
        assert_eq!(
            cred(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250304/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d67"
            ),
            None
        );
        assert_eq!(cred("Custom a=1, b=\"x\""), None);
        assert_eq!(
            cred("Digest a=1, A=2").as_deref(),
            Some("Authorization: Digest (a parameter repeats)")
        );
        assert_eq!(
            cred("Bearer tok=en more").as_deref(),
            Some("Authorization: Bearer (junk after a parameter value)")
        );
        assert_eq!(
            cred("").as_deref(),
            Some("Authorization: (no valid auth scheme)")
        );
    }

    #[test]
    fn evidence_never_shows_the_secret() {
        let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
        for v in [
            format!("Basic {secret}x"),
            format!("{secret} {secret} {secret}"),
            format!("Bearer {secret} {secret}"),
            format!("Bearer {secret}=x y"),
        ] {
            if let Some(e) = cred(&v) {
                assert!(!e.contains("c2Vj"), "{e}");
            }
        }
    }

    #[test]
    fn challenges() {
        assert_eq!(
            chal("Basic").as_deref(),
            Some("WWW-Authenticate: Basic (challenge has no realm)")
        );
        assert_eq!(
            chal("Basic realm=admin").as_deref(),
            Some("WWW-Authenticate: Basic (realm is not a quoted-string)")
        );
        assert_eq!(chal("Basic realm=\"admin\", charset=\"UTF-8\""), None);
        assert_eq!(chal("Negotiate, Basic realm=\"x\""), None);
        assert_eq!(chal("Bearer realm=\"api\", error=\"invalid_token\""), None);
        assert_eq!(
            chal("Bearer realm=\"a\", realm=\"b\"").as_deref(),
            Some("WWW-Authenticate: Bearer (parameter \"realm\" repeated)")
        );
    }
}
