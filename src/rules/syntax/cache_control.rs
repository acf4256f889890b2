//! Cache-Control (RFC 9111 §5.2): `cache-directive = token [ "=" ( token / quoted-string ) ]`,
//! in a comma-separated list. Parsing keeps each element's outcome, so one check can report
//! malformed elements and another can ignore them and judge the rest.

use super::token::{QuotedError, is_token, quoted_string, split_list};

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A directive's argument, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Token(String),
    /// The content of a quoted-string, unescaped.
    Quoted(String),
}

impl Arg {
    /// The argument's value, quotes removed.
    pub fn value(&self) -> &str {
        match self {
            Arg::Token(s) | Arg::Quoted(s) => s,
        }
    }

    pub fn is_quoted(&self) -> bool {
        matches!(self, Arg::Quoted(_))
    }
}

/// One well-formed directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The name, lower-cased (names are case-insensitive).
    pub name: String,
    pub arg: Option<Arg>,
}

impl Directive {
    /// The argument as delta-seconds (`1*DIGIT`, RFC 9111 §1.2.2), quoted or not; a value
    /// beyond 2^31 is capped there, as caches must.
    pub fn delta_seconds(&self) -> Option<u32> {
        delta_seconds(self.arg.as_ref()?.value())
    }
}

pub use super::delta::delta_seconds;

/// Why an element is not a directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElementError {
    /// The name is empty or has characters outside `tchar`.
    BadName(String),
    /// `name=` with nothing after it.
    EmptyArg(String),
    /// A quoted-string that is never closed.
    UnclosedQuote(String),
    /// An argument that is neither a token nor a single quoted-string.
    BadArg(String),
}

impl std::fmt::Display for ElementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElementError::BadName(e) => write!(f, "{:?} is not a directive name", excerpt(e, 40)),
            ElementError::EmptyArg(e) => write!(f, "{:?} has \"=\" but no value", excerpt(e, 40)),
            ElementError::UnclosedQuote(e) => {
                write!(f, "{:?} has an unclosed quote", excerpt(e, 40))
            }
            ElementError::BadArg(e) => {
                write!(f, "{:?} has a value that is not a token", excerpt(e, 40))
            }
        }
    }
}

/// Parses one list element (already OWS-trimmed). Whitespace around `=` is tolerated.
pub fn parse_element(el: &str) -> Result<Directive, ElementError> {
    let (name, arg) = match el.split_once('=') {
        Some((n, a)) => (trim_ows(n), Some(trim_ows(a))),
        None => (el, None),
    };
    if !is_token(name) {
        return Err(ElementError::BadName(el.to_string()));
    }
    let arg = match arg {
        None => None,
        Some("") => return Err(ElementError::EmptyArg(el.to_string())),
        Some(a) if a.starts_with('"') => match quoted_string(a) {
            Err(QuotedError::Unterminated) => {
                return Err(ElementError::UnclosedQuote(el.to_string()));
            }
            Err(QuotedError::Control) => return Err(ElementError::BadArg(el.to_string())),
            Ok((v, used)) if trim_ows(&a[used..]).is_empty() => Some(Arg::Quoted(v)),
            Ok(_) => return Err(ElementError::BadArg(el.to_string())),
        },
        Some(a) if is_token(a) => Some(Arg::Token(a.to_string())),
        Some(_) => return Err(ElementError::BadArg(el.to_string())),
    };
    Ok(Directive {
        name: name.to_ascii_lowercase(),
        arg,
    })
}

/// Every element of a Cache-Control value, in order.
pub fn parse(value: &str) -> Vec<Result<Directive, ElementError>> {
    split_list(value).map(parse_element).collect()
}

/// The well-formed directives only.
pub fn directives(value: &str) -> Vec<Directive> {
    parse(value).into_iter().filter_map(Result::ok).collect()
}

/// Directives whose argument is delta-seconds and required.
pub const DELTA_REQUIRED: &[&str] = &[
    "max-age",
    "s-maxage",
    "min-fresh",
    "stale-while-revalidate",
    "stale-if-error",
];

/// Directives that take no argument.
pub const NO_ARGUMENT: &[&str] = &[
    "no-store",
    "no-transform",
    "only-if-cached",
    "must-revalidate",
    "proxy-revalidate",
    "must-understand",
    "public",
    "immutable",
];

/// Every directive defined by RFC 9111 and RFC 8246/5861.
pub const KNOWN: &[&str] = &[
    "max-age",
    "s-maxage",
    "min-fresh",
    "max-stale",
    "stale-while-revalidate",
    "stale-if-error",
    "no-cache",
    "private",
    "no-store",
    "no-transform",
    "only-if-cached",
    "must-revalidate",
    "proxy-revalidate",
    "must-understand",
    "public",
    "immutable",
];

/// At most `max` characters of `s`, with `…` when cut.
fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements() {
        let d = parse_element("Max-Age = 60").expect("spaces around = are tolerated");
        assert_eq!(d.name, "max-age");
        assert_eq!(d.delta_seconds(), Some(60));
        let d = parse_element(r#"no-cache="Set-Cookie, X-Foo""#).expect("quoted list");
        assert_eq!(d.arg, Some(Arg::Quoted("Set-Cookie, X-Foo".into())));
        assert!(matches!(
            parse_element("max-age="),
            Err(ElementError::EmptyArg(_))
        ));
        assert!(matches!(
            parse_element("max age=1"),
            Err(ElementError::BadName(_))
        ));
        assert!(matches!(
            parse_element(r#"private="a"#),
            Err(ElementError::UnclosedQuote(_))
        ));
        assert!(matches!(
            parse_element(r#"x="a"b"#),
            Err(ElementError::BadArg(_))
        ));
        assert!(matches!(
            parse_element("max-age=1 h"),
            Err(ElementError::BadArg(_))
        ));
    }

    #[test]
    fn list_with_quoted_commas() {
        let all = parse(r#"private="a, b", max-age=5"#);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(Result::is_ok));
    }
}
