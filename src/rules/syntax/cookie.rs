//! Set-Cookie as browsers read it (RFC 6265 §5.2, RFC 6265bis §5.6): a `name=value` pair,
//! then `;`-separated attributes; and the cookie-date algorithm of §5.1.1, which is far
//! more lenient than the HTTP-date grammar (`Thu, 01-Jan-1970 00:00:01 GMT`, two-digit
//! years and any order of the parts are fine).

use jiff::civil::Date;

/// One Set-Cookie field line, split but not judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie<'a> {
    /// The cookie name, whitespace-trimmed; `None` when the pair has no `=`.
    pub name: Option<&'a str>,
    /// The value, whitespace-trimmed (quotes kept); empty when the pair has no `=`.
    pub value: &'a str,
    /// `(name, value)` of each attribute, both trimmed; the value is `None` without `=`.
    pub attributes: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> SetCookie<'a> {
    /// The last attribute with this name (case-insensitive): browsers let later ones win.
    pub fn last_attribute(&self, name: &str) -> Option<Option<&'a str>> {
        self.attributes
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The cookie name for evidence: the name, or `(unnamed)`.
    pub fn label(&self) -> &'a str {
        match self.name {
            Some(n) if !n.is_empty() => n,
            _ => "(unnamed)",
        }
    }
}

fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Splits a Set-Cookie value (RFC 6265 §5.2 steps 1–3 and §5.2 attribute parsing).
pub fn parse_set_cookie(line: &str) -> SetCookie<'_> {
    let (pair, rest) = line.split_once(';').unwrap_or((line, ""));
    let (name, value) = match pair.split_once('=') {
        Some((n, v)) => (Some(trim_ws(n)), trim_ws(v)),
        None => (None, ""),
    };
    let attributes = rest
        .split(';')
        .map(trim_ws)
        .filter(|a| !a.is_empty())
        .map(|a| match a.split_once('=') {
            Some((n, v)) => (trim_ws(n), Some(trim_ws(v))),
            None => (a, None),
        })
        .collect();
    SetCookie {
        name,
        value,
        attributes,
    }
}

/// `delimiter` of the cookie-date grammar.
fn is_delimiter(b: u8) -> bool {
    matches!(b, 0x09 | 0x20..=0x2f | 0x3b..=0x40 | 0x5b..=0x60 | 0x7b..=0x7e)
}

/// `1*max DIGIT` at the start of `tok`, followed by nothing or a non-digit (and anything).
fn leading_number(tok: &[u8], min: usize, max: usize) -> Option<u32> {
    let n = tok.iter().take_while(|b| b.is_ascii_digit()).count();
    if n < min || n > max {
        return None;
    }
    Some(
        tok[..n]
            .iter()
            .fold(0, |a, &b| a * 10 + u32::from(b - b'0')),
    )
}

/// `hms-time = time-field ":" time-field ":" time-field [ non-digit *OCTET ]`.
fn hms(tok: &[u8]) -> Option<(u32, u32, u32)> {
    let mut parts = [0u32; 3];
    let mut rest = tok;
    for (i, part) in parts.iter_mut().enumerate() {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 2 {
            return None;
        }
        *part = rest[..n]
            .iter()
            .fold(0, |a, &b| a * 10 + u32::from(b - b'0'));
        rest = &rest[n..];
        if i < 2 {
            rest = rest.strip_prefix(b":")?;
        }
    }
    Some((parts[0], parts[1], parts[2]))
}

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// Why a cookie date was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieDateError {
    MissingTime,
    MissingDay,
    MissingMonth,
    MissingYear,
    OutOfRange,
}

impl std::fmt::Display for CookieDateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CookieDateError::MissingTime => "no hh:mm:ss time",
            CookieDateError::MissingDay => "no day of month",
            CookieDateError::MissingMonth => "no month name",
            CookieDateError::MissingYear => "no year",
            CookieDateError::OutOfRange => "a day, year or time out of range",
        })
    }
}

/// The cookie-date algorithm (RFC 6265 §5.1.1); returns the UTC date and time it names.
pub fn parse_cookie_date(s: &str) -> Result<jiff::Timestamp, CookieDateError> {
    let mut time = None;
    let mut day = None;
    let mut month = None;
    let mut year = None;
    for tok in s.as_bytes().split(|&b| is_delimiter(b)) {
        if tok.is_empty() {
            continue;
        }
        if time.is_none()
            && let Some(t) = hms(tok)
        {
            time = Some(t);
        } else if day.is_none()
            && let Some(d) = leading_number(tok, 1, 2)
        {
            day = Some(d);
        } else if month.is_none()
            && tok.len() >= 3
            && let Some(m) = MONTHS
                .iter()
                .position(|m| tok[..3].eq_ignore_ascii_case(&m[..]))
        {
            month = Some(m as u32 + 1);
        } else if year.is_none()
            && let Some(y) = leading_number(tok, 2, 4)
        {
            year = Some(y);
        }
    }
    let (h, mi, sec) = time.ok_or(CookieDateError::MissingTime)?;
    let day = day.ok_or(CookieDateError::MissingDay)?;
    let month = month.ok_or(CookieDateError::MissingMonth)?;
    let mut year = year.ok_or(CookieDateError::MissingYear)?;
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if !(1..=31).contains(&day) || year < 1601 || h > 23 || mi > 59 || sec > 59 {
        return Err(CookieDateError::OutOfRange);
    }
    let y = i16::try_from(year).map_err(|_| CookieDateError::OutOfRange)?;
    let date = Date::new(y, month as i8, day as i8).map_err(|_| CookieDateError::OutOfRange)?;
    let dt = date.at(h as i8, mi as i8, sec as i8, 0);
    jiff::tz::Offset::UTC
        .to_timestamp(dt)
        .map_err(|_| CookieDateError::OutOfRange)
}

/// Domain-matching (RFC 6265 §5.1.3): `host` (lower-case, no trailing dot) is `domain` or
/// a subdomain of it, and not an IP address literal in the subdomain case.
pub fn domain_matches(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    host.len() > domain.len()
        && host.ends_with(domain)
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        && !super::site::is_ip_literal(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn set_cookie_split() {
        let c = parse_set_cookie(r#" sid = "a=b" ; Path=/ ;Secure; ; Max-Age = 60;"#);
        assert_eq!(c.name, Some("sid"));
        assert_eq!(c.value, r#""a=b""#);
        assert_eq!(
            c.attributes,
            vec![
                ("Path", Some("/")),
                ("Secure", None),
                ("Max-Age", Some("60"))
            ]
        );
        assert_eq!(c.last_attribute("max-age"), Some(Some("60")));
        let n = parse_set_cookie("justavalue; Path=/");
        assert_eq!((n.name, n.label()), (None, "(unnamed)"));
    }

    #[test]
    fn cookie_dates_are_lenient() {
        let want = ts("2025-03-04T10:00:00Z");
        for s in [
            "Tue, 04-Mar-2025 10:00:00 GMT",
            "Tue, 04 Mar 2025 10:00:00 GMT",
            "Tuesday, 04-Mar-25 10:00:00 GMT",
            "Tue Mar  4 10:00:00 2025",
            "4 march 2025 10:00:00",
            "Wed, 04 Mar 2025 10:00:00 PST",
        ] {
            assert_eq!(parse_cookie_date(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_cookie_date("Thu, 01-Jan-1970 00:00:01 GMT"),
            Ok(ts("1970-01-01T00:00:01Z"))
        );
        assert_eq!(
            parse_cookie_date("tomorrow"),
            Err(CookieDateError::MissingTime)
        );
        assert_eq!(
            parse_cookie_date("31 Feb 2025 10:00:00"),
            Err(CookieDateError::OutOfRange)
        );
        assert_eq!(
            parse_cookie_date("04 Mar 2025 24:00:00"),
            Err(CookieDateError::OutOfRange)
        );
        assert_eq!(
            parse_cookie_date("04 Mar 1600 10:00:00"),
            Err(CookieDateError::OutOfRange)
        );
        assert!(parse_cookie_date("1741082400").is_err());
    }

    #[test]
    fn domains() {
        assert!(domain_matches("www.example.com", "example.com"));
        assert!(domain_matches("example.com", "example.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
        assert!(!domain_matches("example.com", "www.example.com"));
        assert!(!domain_matches("192.0.2.1", "0.2.1"));
    }
}
