//! Secrets are masked before anything is printed or stored: the values of Authorization,
//! Proxy-Authorization, Cookie and Set-Cookie (keeping the scheme, cookie names and
//! attributes, which are what a reader needs to understand a finding), plus header names
//! and JSON fields the user configures. Rules that need raw values run before this.

use std::borrow::Cow;

use crate::http::{Exchange, Message};

const MASK: &str = "****";

/// Header names whose values are always masked.
const SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// What to mask beyond the built-in list.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Extra header names (lower-case).
    headers: Vec<String>,
    /// JSON member names whose values are masked in bodies.
    json_fields: Vec<String>,
}

impl Redactor {
    /// `extra` lists header names and JSON field names (configuration `redact`); a name is
    /// applied as both.
    pub fn new(extra: &[String]) -> Self {
        Redactor {
            headers: extra.iter().map(|n| n.to_ascii_lowercase()).collect(),
            json_fields: extra.to_vec(),
        }
    }

    /// Whether the values of header `name` are masked (the packet store masks them in
    /// raw packets).
    pub fn is_sensitive_header(&self, name: &str) -> bool {
        self.sensitive(name)
    }

    fn sensitive(&self, name: &str) -> bool {
        SENSITIVE.iter().any(|s| name.eq_ignore_ascii_case(s))
            || self.headers.iter().any(|h| name.eq_ignore_ascii_case(h))
    }

    /// The value to show for a header.
    pub fn header_value<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if !self.sensitive(name) {
            return Cow::Borrowed(value);
        }
        Cow::Owned(mask_value(name, value))
    }

    /// Masks one message in place: field values, the raw head, and configured JSON fields.
    pub fn message(&self, m: &mut Message) {
        let mut changed = false;
        for h in &mut m.headers {
            if self.sensitive(&h.name) {
                h.value = mask_value(&h.name, &h.value);
                changed = true;
            }
        }
        if changed {
            m.raw_head = self.raw_head(&m.raw_head);
        }
        if !self.json_fields.is_empty()
            && !m.body.captured.is_empty()
            && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&m.body.captured)
            && mask_json(&mut v, &self.json_fields)
        {
            m.body.captured = serde_json::to_vec(&v).unwrap_or_default();
        }
    }

    /// Masks a finding's evidence when it quotes a sensitive field line (`Name: value`).
    pub fn evidence(&self, evidence: &str) -> String {
        match evidence.split_once(':') {
            Some((name, value)) if self.sensitive(name.trim()) => {
                format!("{}: {}", name.trim(), mask_value(name.trim(), value.trim()))
            }
            _ => evidence.to_string(),
        }
    }

    pub fn exchange(&self, ex: &mut Exchange) {
        for m in ex
            .request
            .iter_mut()
            .chain(ex.interim.iter_mut())
            .chain(ex.response.iter_mut())
        {
            self.message(m);
        }
    }

    /// Rewrites the sensitive field lines of a raw head.
    fn raw_head(&self, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len());
        for line in raw.split_inclusive(|&b| b == b'\n') {
            let text = String::from_utf8_lossy(line);
            match text.split_once(':') {
                Some((name, value)) if self.sensitive(name.trim()) => {
                    let eol = if text.ends_with("\r\n") {
                        "\r\n"
                    } else if text.ends_with('\n') {
                        "\n"
                    } else {
                        ""
                    };
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(mask_value(name.trim(), value.trim()).as_bytes());
                    out.extend_from_slice(eol.as_bytes());
                }
                _ => out.extend_from_slice(line),
            }
        }
        out
    }
}

/// Authorization keeps its scheme; Cookie keeps names; Set-Cookie keeps the name and
/// attributes; anything else is masked whole.
fn mask_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
    {
        return match value.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} {MASK}"),
            None => MASK.to_string(),
        };
    }
    if name.eq_ignore_ascii_case("cookie") {
        return value
            .split(';')
            .map(|pair| match pair.split_once('=') {
                Some((n, _)) => format!("{}={MASK}", n.trim()),
                None => MASK.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    if name.eq_ignore_ascii_case("set-cookie") {
        let mut parts = value.split(';');
        let first = parts.next().unwrap_or("");
        let head = match first.split_once('=') {
            Some((n, _)) => format!("{}={MASK}", n.trim()),
            None => MASK.to_string(),
        };
        return std::iter::once(head)
            .chain(parts.map(|a| a.trim().to_string()))
            .collect::<Vec<_>>()
            .join("; ");
    }
    MASK.to_string()
}

fn mask_json(v: &mut serde_json::Value, fields: &[String]) -> bool {
    let mut changed = false;
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if fields.iter().any(|f| f == k) {
                    *val = serde_json::Value::String(MASK.into());
                    changed = true;
                } else {
                    changed |= mask_json(val, fields);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                changed |= mask_json(item, fields);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_what_explains() {
        assert_eq!(mask_value("Authorization", "Bearer abc.def"), "Bearer ****");
        assert_eq!(
            mask_value("Cookie", "sid=1; theme=dark"),
            "sid=****; theme=****"
        );
        assert_eq!(
            mask_value("Set-Cookie", "sid=1; Path=/; HttpOnly"),
            "sid=****; Path=/; HttpOnly"
        );
        let r = Redactor::new(&["X-Api-Key".into()]);
        assert_eq!(r.header_value("x-api-key", "k"), "****");
        assert_eq!(r.header_value("Accept", "*/*"), "*/*");
        assert_eq!(
            r.raw_head(b"GET / HTTP/1.1\r\nAuthorization: Basic Zm9v\r\nHost: a\r\n\r\n"),
            b"GET / HTTP/1.1\r\nAuthorization: Basic ****\r\nHost: a\r\n\r\n".to_vec()
        );
        let mut v: serde_json::Value = serde_json::json!({"user": {"password": "x"}, "n": 1});
        assert!(mask_json(&mut v, &["password".into()]));
        assert_eq!(v, serde_json::json!({"user": {"password": "****"}, "n": 1}));
    }
}
