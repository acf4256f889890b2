//! `bearer-token-in-uri`: a request-target whose query (or `;jsessionid=` path parameter)
//! carries a credential: access or refresh tokens, API keys, passwords, session ids
//! (RFC 6750 §2.3, §5.3; RFC 9110 §17.9). Code, because conditions have no key for the
//! request-target and the parameter names must be decoded and compared exactly.
//!
//! Names that merely contain these words (`page_token`, `csrf_token`), empty values,
//! pre-signed URL signatures and OAuth `code` / `state` are not reported. `key` counts only
//! with a value of 20 characters or more. The evidence names parameters, never values.

use super::{CheckInput, CheckKind, Hit};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

const SECRET_NAMES: &[&str] = &[
    "access_token",
    "token",
    "auth_token",
    "id_token",
    "refresh_token",
    "api_key",
    "apikey",
    "api-key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "sessionid",
    "session_id",
    "sid",
    "jsessionid",
];

/// Minimum value length for a parameter named just `key`.
const KEY_MIN_LEN: usize = 20;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes (and turns `+` into a space, as forms do), lower-cased; invalid escapes
/// stay as written.
fn decode_name(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// Names of the credential parameters in a request-target, in order, without repeats.
fn secret_params(target: &str) -> Vec<String> {
    let target = target.split('#').next().unwrap_or(target);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut found: Vec<String> = Vec::new();
    let lower_path = path.to_ascii_lowercase();
    if let Some(i) = lower_path.find(";jsessionid=") {
        let value = &path[i + ";jsessionid=".len()..];
        if !value.is_empty() && !value.starts_with([';', '/']) {
            found.push("path parameter jsessionid".to_string());
        }
    }
    for pair in query.split(['&', ';']) {
        let Some((raw_name, value)) = pair.split_once('=') else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let name = decode_name(raw_name);
        let secret = SECRET_NAMES.contains(&name.as_str())
            || (name == "key" && value.chars().count() >= KEY_MIN_LEN);
        if secret {
            let label = format!(
                "query parameter {}",
                name.chars().take(40).collect::<String>()
            );
            if !found.contains(&label) {
                found.push(label);
            }
        }
    }
    found
}

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(target) = input.request().and_then(|r| r.target()) else {
        return Vec::new();
    };
    if !target.contains(['?', ';']) {
        return Vec::new();
    }
    let found = secret_params(target);
    if found.is_empty() {
        return Vec::new();
    }
    vec![Hit::new(found.join(", "))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        assert_eq!(
            secret_params("/v1/reports?from=2025-01-01&access_token=eyJhbGciOiJIUzI1NiJ9.e30.sig"),
            vec!["query parameter access_token"]
        );
        assert_eq!(
            secret_params("https://api.example/x?API%5FKEY=abc;password=hunter2&token=t"),
            vec![
                "query parameter api_key",
                "query parameter password",
                "query parameter token"
            ]
        );
        assert_eq!(
            secret_params("/x?key=AIzaSyA1234567890abcdefgh"),
            vec!["query parameter key"]
        );
        assert_eq!(
            secret_params("/shop;jsessionid=0123ABCD?item=1"),
            vec!["path parameter jsessionid"]
        );
        assert_eq!(secret_params("/x?sid=1&sid=2"), vec!["query parameter sid"]);
    }

    #[test]
    fn not_credentials() {
        for t in [
            "/v1/reports?page_token=CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA",
            "/x?next_token=a&token_type=bearer&csrf_token=abc",
            "/x?token=&password=",
            "/x?key=short",
            "/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz",
            "/o?X-Amz-Signature=abc&sig=def&signature=ghi&X-Goog-Signature=j",
            "/x#access_token=abc",
            "/x?%zz=1&%=2&%4=3",
        ] {
            assert!(secret_params(t).is_empty(), "{t}");
        }
    }
}
