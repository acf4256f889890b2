//! Content negotiation (RFC 9110 §12.5): media types as Content-Type carries them (§8.3.1:
//! `type "/" subtype *( OWS ";" OWS parameter )`), and the media ranges of Accept
//! (§12.5.1), where a `q` parameter ends the media-type parameters, with their precedence.

use super::token::{is_token, quoted_string, split_list};

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A parsed media type; type, subtype and parameter names lower-cased, values unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    pub kind: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// `type/subtype`.
    pub fn essence(&self) -> String {
        format!("{}/{}", self.kind, self.subtype)
    }

    /// The first parameter with this (lower-case) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `application/json` or any `…/…+json`.
    pub fn is_json(&self) -> bool {
        (self.kind == "application" && self.subtype == "json") || self.subtype.ends_with("+json")
    }

    /// `application/xml`, `text/xml` or any `…/…+xml`.
    pub fn is_xml(&self) -> bool {
        ((self.kind == "application" || self.kind == "text") && self.subtype == "xml")
            || self.subtype.ends_with("+xml")
    }
}

/// Reads `;`-separated parameters. Returns `None` on a malformed one (no `=`, a name that
/// is not a token, an unclosed quote); empty elements (`;;`, a trailing `;`) are skipped.
fn params(mut rest: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    loop {
        rest = trim_ows(rest);
        if rest.is_empty() {
            return Some(out);
        }
        rest = rest.strip_prefix(';')?;
        rest = trim_ows(rest);
        if rest.is_empty() || rest.starts_with(';') {
            continue;
        }
        let eq = rest.find('=')?;
        let name = trim_ows(&rest[..eq]);
        if !is_token(name) {
            return None;
        }
        let after = trim_ows(&rest[eq + 1..]);
        let (value, next) = if after.starts_with('"') {
            let (v, used) = quoted_string(after).ok()?;
            (v, &after[used..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            let v = trim_ows(&after[..end]);
            if !is_token(v) {
                return None;
            }
            (v.to_string(), &after[end..])
        };
        out.push((name.to_ascii_lowercase(), value));
        rest = next;
    }
}

/// Splits `type/subtype` at the start of `s`; returns both (lower-cased) and the rest.
fn essence(s: &str) -> Option<(String, String, &str)> {
    let s = trim_ows(s);
    let end = s.find(';').unwrap_or(s.len());
    let (t, sub) = trim_ows(&s[..end]).split_once('/')?;
    if !is_token(t) || !is_token(sub) {
        return None;
    }
    Some((t.to_ascii_lowercase(), sub.to_ascii_lowercase(), &s[end..]))
}

/// Parses a Content-Type value; `None` when it is not a media type.
pub fn parse(value: &str) -> Option<MediaType> {
    let (kind, subtype, rest) = essence(value)?;
    Some(MediaType {
        kind,
        subtype,
        params: params(rest)?,
    })
}

/// One media range of Accept, with its weight.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaRange {
    /// `*` for any.
    pub kind: String,
    /// `*` for any.
    pub subtype: String,
    /// Media-type parameters (those before `q`).
    pub params: Vec<(String, String)>,
    pub q: f32,
}

impl MediaRange {
    /// Whether the range covers the media type (parameters named by the range must be
    /// present with the same value, compared case-insensitively).
    pub fn matches(&self, mt: &MediaType) -> bool {
        let type_ok = self.kind == "*" || self.kind == mt.kind;
        let sub_ok = self.subtype == "*" || (self.kind != "*" && self.subtype == mt.subtype);
        type_ok
            && sub_ok
            && self.params.iter().all(|(n, v)| {
                mt.param(n)
                    .is_some_and(|mv| mv.trim().eq_ignore_ascii_case(v.trim()))
            })
    }

    /// Precedence (§12.5.1): more specific ranges override less specific ones.
    pub fn specificity(&self) -> (u8, u8, usize) {
        (
            u8::from(self.kind != "*"),
            u8::from(self.subtype != "*"),
            self.params.len(),
        )
    }

    pub fn is_any(&self) -> bool {
        self.kind == "*" && self.subtype == "*"
    }
}

/// Parses Accept; `None` when any element is not a media range (the field is then too
/// broken to judge by). An empty value gives an empty list.
pub fn parse_accept(value: &str) -> Option<Vec<MediaRange>> {
    split_list(value)
        .map(|el| {
            let (kind, subtype, rest) = essence(el)?;
            if kind == "*" && subtype != "*" {
                return None;
            }
            let all = params(rest)?;
            let mut q = 1.0;
            let mut media_params = Vec::new();
            let mut after_q = false;
            for (n, v) in all {
                if after_q {
                    continue;
                }
                if n == "q" {
                    q = super::weighted::qvalue(&v).unwrap_or(1.0);
                    after_q = true;
                } else {
                    media_params.push((n, v));
                }
            }
            Some(MediaRange {
                kind,
                subtype,
                params: media_params,
                q,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let m = parse(r#"Text/HTML ; Charset="UTF-8";; "#).expect("media type");
        assert_eq!(m.essence(), "text/html");
        assert_eq!(m.param("charset"), Some("UTF-8"));
        assert!(parse("text").is_none());
        assert!(parse("text/html; charset").is_none());
        assert!(parse(r#"text/html; a="b"#).is_none());
        assert!(parse("application/vnd.api+json").is_some_and(|m| m.is_json()));
        assert!(parse("image/svg+xml").is_some_and(|m| m.is_xml()));
    }

    #[test]
    fn accept_ranges() {
        let r =
            parse_accept("text/html;level=1;q=0.5;ext=x, */*;q=0, application/*").expect("accept");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].params, vec![("level".into(), "1".into())]);
        assert!((r[0].q - 0.5).abs() < 1e-6);
        assert!(r[1].is_any() && r[1].q == 0.0);
        let json = parse("application/json").expect("mt");
        assert!(r[2].matches(&json) && !r[0].matches(&json));
        let html1 = parse("text/html; level=1").expect("mt");
        assert!(r[0].matches(&html1));
        assert!(parse_accept("*/json").is_none());
        assert_eq!(parse_accept(""), Some(Vec::new()));
    }
}
