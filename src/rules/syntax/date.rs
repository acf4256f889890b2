//! HTTP-date parsing (RFC 9110 §5.6.7).
//!
//! [`parse_http_date`] accepts the three forms the RFC defines — IMF-fixdate
//! (`Tue, 04 Mar 2025 10:00:00 GMT`), the obsolete rfc850-date (`Tuesday, 04-Mar-25 10:00:00
//! GMT`) and asctime-date (`Tue Mar  4 10:00:00 2025`) — and, so that linters can tell
//! "non-canonical" from "unreadable", two near misses of the fixdate and rfc850 shapes: a
//! weekday that does not match the date, and a zone other than `GMT` (`UTC`, `UT`, `Z`,
//! `+hhmm`/`-hhmm`; a numeric zone is not an HTTP-date at all, which invalid-http-date
//! reports from [`Zone::Offset`], but the instant it names is still usable). What was found is reported in [`HttpDate`] (`form`, `weekday_ok`, `gmt`);
//! a value that fits no shape, or names an impossible date (31 February, hour 24), is a
//! [`DateError`].
//!
//! Day and month names are matched case-sensitively, as the grammar says (`%s"Mon"`).
//! Leading and trailing whitespace (OWS) is ignored. A leap second (`:60`) is accepted and
//! counted as `:59` in the timestamp.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::Offset;

/// Which of the RFC 9110 date forms a value was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateForm {
    /// `Tue, 04 Mar 2025 10:00:00 GMT`: the only form senders may generate.
    Imf,
    /// `Tuesday, 04-Mar-25 10:00:00 GMT`: obsolete, two-digit year.
    Rfc850,
    /// `Tue Mar  4 10:00:00 2025`: obsolete, C's asctime().
    Asctime,
}

impl DateForm {
    pub fn as_str(self) -> &'static str {
        match self {
            DateForm::Imf => "IMF-fixdate",
            DateForm::Rfc850 => "rfc850",
            DateForm::Asctime => "asctime",
        }
    }
}

/// The zone a fixdate- or rfc850-shaped value named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    Gmt,
    Utc,
    Ut,
    Z,
    /// `+hhmm` / `-hhmm`, in minutes east of UTC.
    Offset(i16),
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Zone::Gmt => f.write_str("GMT"),
            Zone::Utc => f.write_str("UTC"),
            Zone::Ut => f.write_str("UT"),
            Zone::Z => f.write_str("Z"),
            Zone::Offset(m) => {
                let sign = if m < 0 { '-' } else { '+' };
                let a = m.unsigned_abs();
                write!(f, "{sign}{:02}{:02}", a / 60, a % 60)
            }
        }
    }
}

/// A parsed HTTP-date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpDate {
    /// The instant named, with any numeric zone offset applied.
    pub timestamp: Timestamp,
    pub form: DateForm,
    /// The day name matches the date.
    pub weekday_ok: bool,
    /// The zone is `GMT` (always true for asctime, which has no zone).
    pub gmt: bool,
    /// The zone as written (`Zone::Gmt` for asctime).
    pub zone: Zone,
    /// The weekday the date actually falls on.
    pub weekday: Weekday,
}

impl HttpDate {
    /// IMF-fixdate with the right weekday and GMT: what senders must generate.
    pub fn is_canonical(&self) -> bool {
        self.form == DateForm::Imf && self.weekday_ok && self.gmt
    }

    /// The short day name the date falls on (`"Tue"`), for messages.
    pub fn weekday_short(&self) -> &'static str {
        DAYS[weekday_index(self.weekday)]
    }

    /// The long day name the date falls on (`"Tuesday"`), as rfc850 writes it.
    pub fn weekday_long(&self) -> &'static str {
        DAYS_LONG[weekday_index(self.weekday)]
    }
}

/// Why a value is not an HTTP-date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// It fits none of the date shapes.
    #[error("not an HTTP-date")]
    Malformed,
    /// It has the shape of one, but names a day, hour, minute or second that does not exist.
    #[error("impossible date: {0}")]
    Impossible(&'static str),
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAYS_LONG: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn weekday_index(w: Weekday) -> usize {
    usize::from(w.to_monday_zero_offset().unsigned_abs()) % 7
}

/// Parses an HTTP-date; an rfc850 two-digit year is resolved against the current time.
pub fn parse_http_date(value: &str) -> Result<HttpDate, DateError> {
    parse_http_date_at(value, Timestamp::now())
}

/// Parses an HTTP-date, resolving an rfc850 two-digit year against `now` (RFC 9110 §5.6.7: a
/// year more than 50 years in the future is taken as the most recent past year with the same
/// last two digits).
pub fn parse_http_date_at(value: &str, now: Timestamp) -> Result<HttpDate, DateError> {
    let s = value.trim_matches([' ', '\t']).as_bytes();
    let first_sp = s.iter().position(|&b| b == b' ');
    let day_name = first_sp.map(|i| &s[..i]).ok_or(DateError::Malformed)?;
    if let Some(name) = day_name.strip_suffix(b",") {
        let rest = &s[day_name.len() + 1..];
        if let Some(i) = DAYS.iter().position(|d| d.as_bytes() == name) {
            return fixdate(rest, i);
        }
        if let Some(i) = DAYS_LONG.iter().position(|d| d.as_bytes() == name) {
            return rfc850(rest, i, now);
        }
        return Err(DateError::Malformed);
    }
    if let Some(i) = DAYS.iter().position(|d| d.as_bytes() == day_name) {
        return asctime(&s[day_name.len() + 1..], i);
    }
    Err(DateError::Malformed)
}

/// Fields whose value is (or may be) an HTTP-date.
pub const DATE_FIELDS: &[&str] = &[
    "Date",
    "Last-Modified",
    "Expires",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Retry-After",
    "If-Range",
];

/// Whether a line of one of [`DATE_FIELDS`] is meant as an HTTP-date and should be parsed:
/// `Retry-After` only when it starts with a letter (digits are delta-seconds), `If-Range`
/// only when it is not an entity-tag (`"…"` or `W/…`), and never `Expires: 0` or
/// `Expires: -1`, the conventional "already expired" (RFC 9111 §5.3).
pub fn holds_http_date(name: &str, value: &str) -> bool {
    let v = value.trim_matches([' ', '\t']);
    if name.eq_ignore_ascii_case("retry-after") {
        return starts_like_a_date(v);
    }
    if name.eq_ignore_ascii_case("if-range") {
        return !(v.starts_with('"') || v.starts_with("W/"));
    }
    if name.eq_ignore_ascii_case("expires") {
        return v != "0" && v != "-1";
    }
    DATE_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// Whether a `Retry-After` value is meant as a date: it starts with a day name (any case)
/// followed by more letters, a comma or a space (`Tue, …`, `Tuesday, …`, `Tue Mar  4 …`).
/// Other values (`soon`, `30s`, `1.5`) are neither form, which invalid-retry-after reports.
pub fn starts_like_a_date(value: &str) -> bool {
    let v = value.trim_matches([' ', '\t']).as_bytes();
    let Some(day) = v.get(..3) else {
        return false;
    };
    DAYS.iter().any(|d| d.as_bytes().eq_ignore_ascii_case(day))
        && v[3..]
            .iter()
            .find(|b| !b.is_ascii_alphabetic())
            .is_some_and(|b| matches!(b, b',' | b' '))
}

/// A small cursor over the value's bytes.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn lit(&mut self, l: &[u8]) -> Result<(), DateError> {
        match self.0.strip_prefix(l) {
            Some(rest) => {
                self.0 = rest;
                Ok(())
            }
            None => Err(DateError::Malformed),
        }
    }

    fn digits(&mut self, n: usize) -> Result<u32, DateError> {
        let d = self.0.get(..n).ok_or(DateError::Malformed)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return Err(DateError::Malformed);
        }
        self.0 = &self.0[n..];
        Ok(d.iter().fold(0, |a, &b| a * 10 + u32::from(b - b'0')))
    }

    fn month(&mut self) -> Result<u32, DateError> {
        let m = self.0.get(..3).ok_or(DateError::Malformed)?;
        let i = MONTHS
            .iter()
            .position(|x| x.as_bytes() == m)
            .ok_or(DateError::Malformed)?;
        self.0 = &self.0[3..];
        Ok(i as u32 + 1)
    }

    /// `hour ":" minute ":" second`, each two digits.
    fn time(&mut self) -> Result<(u32, u32, u32), DateError> {
        let h = self.digits(2)?;
        self.lit(b":")?;
        let m = self.digits(2)?;
        self.lit(b":")?;
        let s = self.digits(2)?;
        Ok((h, m, s))
    }

    fn zone(&mut self) -> Result<Zone, DateError> {
        let z = match self.0 {
            b"GMT" => Zone::Gmt,
            b"UTC" => Zone::Utc,
            b"UT" => Zone::Ut,
            b"Z" => Zone::Z,
            [sign @ (b'+' | b'-'), ..] => {
                let sign = *sign;
                self.0 = &self.0[1..];
                let h = self.digits(2)?;
                let m = self.digits(2)?;
                if !self.0.is_empty() || m > 59 {
                    return Err(DateError::Malformed);
                }
                let mins = (h * 60 + m) as i16;
                return Ok(Zone::Offset(if sign == b'-' { -mins } else { mins }));
            }
            _ => return Err(DateError::Malformed),
        };
        self.0 = &[];
        Ok(z)
    }

    fn end(&self) -> Result<(), DateError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DateError::Malformed)
        }
    }
}

/// `DD Mon YYYY HH:MM:SS GMT` after `Day, `.
fn fixdate(rest: &[u8], day_name: usize) -> Result<HttpDate, DateError> {
    let mut c = Cur(rest);
    let day = c.digits(2)?;
    c.lit(b" ")?;
    let month = c.month()?;
    c.lit(b" ")?;
    let year = c.digits(4)?;
    c.lit(b" ")?;
    let time = c.time()?;
    c.lit(b" ")?;
    let zone = c.zone()?;
    build(DateForm::Imf, year, month, day, time, zone, day_name)
}

/// `DD-Mon-YY HH:MM:SS GMT` after `Dayname, `.
fn rfc850(rest: &[u8], day_name: usize, now: Timestamp) -> Result<HttpDate, DateError> {
    let mut c = Cur(rest);
    let day = c.digits(2)?;
    c.lit(b"-")?;
    let month = c.month()?;
    c.lit(b"-")?;
    let yy = c.digits(2)?;
    c.lit(b" ")?;
    let time = c.time()?;
    c.lit(b" ")?;
    let zone = c.zone()?;
    let this_year = i64::from(Offset::UTC.to_datetime(now).year());
    let century = this_year.div_euclid(100) * 100;
    let mut year = century + i64::from(yy);
    if year > this_year + 50 {
        year -= 100;
    }
    let year = u32::try_from(year).map_err(|_| DateError::Malformed)?;
    build(DateForm::Rfc850, year, month, day, time, zone, day_name)
}

/// `Mon DD HH:MM:SS YYYY` (day `( 2DIGIT / ( SP DIGIT ))`) after `Day `.
fn asctime(rest: &[u8], day_name: usize) -> Result<HttpDate, DateError> {
    let mut c = Cur(rest);
    let month = c.month()?;
    c.lit(b" ")?;
    let day = if c.0.first() == Some(&b' ') {
        c.lit(b" ")?;
        c.digits(1)?
    } else {
        c.digits(2)?
    };
    c.lit(b" ")?;
    let time = c.time()?;
    c.lit(b" ")?;
    let year = c.digits(4)?;
    c.end()?;
    build(
        DateForm::Asctime,
        year,
        month,
        day,
        time,
        Zone::Gmt,
        day_name,
    )
}

fn build(
    form: DateForm,
    year: u32,
    month: u32,
    day: u32,
    (hour, minute, second): (u32, u32, u32),
    zone: Zone,
    day_name: usize,
) -> Result<HttpDate, DateError> {
    if hour > 23 {
        return Err(DateError::Impossible("hour beyond 23"));
    }
    if minute > 59 {
        return Err(DateError::Impossible("minute beyond 59"));
    }
    if second > 60 {
        return Err(DateError::Impossible("second beyond 60"));
    }
    if day == 0 {
        return Err(DateError::Impossible("day 0"));
    }
    // Four digits at most, so these conversions cannot fail; `month` is 1..=12.
    let y = i16::try_from(year).map_err(|_| DateError::Malformed)?;
    let m = month as i8;
    let first = Date::new(y, m, 1).map_err(|_| DateError::Impossible("year out of range"))?;
    if day > first.days_in_month() as u32 {
        return Err(DateError::Impossible("day beyond the month's length"));
    }
    let date = Date::new(y, m, day as i8).map_err(|_| DateError::Impossible("no such day"))?;
    let dt = DateTime::from_parts(
        date,
        jiff::civil::Time::new(hour as i8, minute as i8, second.min(59) as i8, 0)
            .map_err(|_| DateError::Impossible("no such time"))?,
    );
    let offset_secs = match zone {
        Zone::Offset(m) => i32::from(m) * 60,
        _ => 0,
    };
    let offset = Offset::from_seconds(offset_secs).map_err(|_| DateError::Malformed)?;
    let timestamp = offset
        .to_timestamp(dt)
        .map_err(|_| DateError::Impossible("out of range"))?;
    let weekday = date.weekday();
    Ok(HttpDate {
        timestamp,
        form,
        weekday_ok: weekday_index(weekday) == day_name,
        gmt: zone == Zone::Gmt,
        zone,
        weekday,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2025-06-01T00:00:00Z".parse().expect("valid timestamp")
    }

    fn p(s: &str) -> Result<HttpDate, DateError> {
        parse_http_date_at(s, now())
    }

    #[test]
    fn the_three_forms_name_the_same_instant() {
        let imf = p("Sun, 06 Nov 1994 08:49:37 GMT").expect("imf");
        let rfc = p("Sunday, 06-Nov-94 08:49:37 GMT").expect("rfc850");
        let asc = p("Sun Nov  6 08:49:37 1994").expect("asctime");
        assert_eq!(imf.timestamp, rfc.timestamp);
        assert_eq!(imf.timestamp, asc.timestamp);
        assert_eq!(imf.timestamp.as_second(), 784111777);
        assert!(imf.is_canonical());
        assert_eq!(rfc.form, DateForm::Rfc850);
        assert_eq!(asc.form, DateForm::Asctime);
        assert!(rfc.weekday_ok && asc.weekday_ok && asc.gmt);
    }

    #[test]
    fn asctime_two_digit_day() {
        let d = p("Tue Mar 04 10:00:00 2025").expect("asctime with 2-digit day");
        assert!(d.weekday_ok);
        assert!(p("Tue Mar 4 10:00:00 2025").is_err());
    }

    #[test]
    fn near_misses_are_parsed_and_flagged() {
        let d = p("Wed, 04 Mar 2025 10:00:00 GMT").expect("wrong weekday");
        assert!(!d.weekday_ok);
        assert_eq!(d.weekday_short(), "Tue");
        let d = p("Tue, 04 Mar 2025 10:00:00 UTC").expect("UTC");
        assert!(!d.gmt && d.weekday_ok);
        assert_eq!(d.zone.to_string(), "UTC");
        let d = p("Tue, 04 Mar 2025 10:00:00 +0100").expect("offset");
        assert_eq!(d.zone, Zone::Offset(60));
        assert_eq!(
            d.timestamp,
            p("Tue, 04 Mar 2025 09:00:00 GMT").expect("gmt").timestamp
        );
        assert_eq!(
            p("Tue, 04 Mar 2025 10:00:00 -0530")
                .expect("neg")
                .zone
                .to_string(),
            "-0530"
        );
        assert!(p("Tue, 04 Mar 2025 10:00:00 Z").is_ok());
        assert!(p("Tue, 04 Mar 2025 10:00:00 UT").is_ok());
    }

    #[test]
    fn impossible_dates() {
        assert!(matches!(
            p("Mon, 31 Feb 2025 08:30:00 GMT"),
            Err(DateError::Impossible(_))
        ));
        assert!(matches!(
            p("Sat, 29 Feb 2025 08:30:00 GMT"),
            Err(DateError::Impossible(_))
        ));
        assert!(p("Thu, 29 Feb 2024 08:30:00 GMT").is_ok());
        assert!(p("Thu, 01 Jan 2024 24:00:00 GMT").is_err());
        assert!(p("Thu, 01 Jan 2024 23:60:00 GMT").is_err());
        assert!(p("Thu, 01 Jan 2024 23:59:61 GMT").is_err());
        assert!(p("Sun, 31 Dec 2023 23:59:60 GMT").is_ok());
        assert!(p("Sun, 00 Dec 2023 23:59:59 GMT").is_err());
    }

    #[test]
    fn malformed() {
        for s in [
            "",
            "0",
            "-1",
            "2025-03-01T08:30:00Z",
            "1741170000",
            "Tue, 4 Mar 2025 10:00:00 GMT",
            "Tue, 04 mar 2025 10:00:00 GMT",
            "tue, 04 Mar 2025 10:00:00 GMT",
            "Tue, 04 Mar 25 10:00:00 GMT",
            "Tue, 04 Mar 2025 10:00 GMT",
            "Tue, 04 Mar 2025 10:00:00",
            "Tue, 04 Mar 2025 10:00:00 GMT extra",
            "Tue, 04 Mar 2025 10:00:00 CET",
            "Tue, 04 Mar 2025 10:00:00 +01:00",
            "Tue,  04 Mar 2025 10:00:00 GMT",
            "Tuesday, 04 Mar 2025 10:00:00 GMT",
            "Tue, 04-Mar-25 10:00:00 GMT",
            "Tue Mar  4 10:00:00 2025 GMT",
            "Tue, ",
            "Tue",
            "é, 04 Mar 2025 10:00:00 GMT",
            "Tue, 04 Mar 2025 1é:00:00 GMT",
        ] {
            assert_eq!(p(s), Err(DateError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn which_values_are_dates() {
        assert!(holds_http_date("date", "x"));
        assert!(holds_http_date(
            "Retry-After",
            "Tue, 04 Mar 2025 10:00:00 GMT"
        ));
        assert!(!holds_http_date("Retry-After", "120"));
        assert!(!holds_http_date("Retry-After", "-5"));
        assert!(!holds_http_date("Retry-After", "soon"));
        assert!(!holds_http_date("Retry-After", "Sunday"));
        assert!(!holds_http_date("Retry-After", "30s"));
        assert!(holds_http_date(
            "Retry-After",
            "Tuesday, 04-Mar-25 10:00:00 GMT"
        ));
        assert!(holds_http_date("Retry-After", "Tue Mar  4 10:00:00 2025"));
        assert!(holds_http_date(
            "Retry-After",
            "tue, 04 Mar 2025 10:00:00 GMT"
        ));
        assert!(!holds_http_date("If-Range", "\"abc\""));
        assert!(!holds_http_date("If-Range", "W/\"abc\""));
        assert!(holds_http_date("If-Range", "Tue, 04 Mar 2025 10:00:00 GMT"));
        assert!(!holds_http_date("Expires", "0"));
        assert!(!holds_http_date("Expires", "-1"));
        assert!(holds_http_date("Expires", "-2"));
        assert!(!holds_http_date("Server", "x"));
    }

    #[test]
    fn whitespace_around_is_ignored() {
        assert!(p("  Tue, 04 Mar 2025 10:00:00 GMT\t").is_ok());
    }

    #[test]
    fn rfc850_year_window() {
        let d = p("Thursday, 01-Jan-70 00:00:00 GMT").expect("1970 or 2070");
        // 2070 is within 50 years of 2025, so it stays 2070.
        assert_eq!(d.timestamp.as_second(), 3155760000);
        let d = p("Friday, 01-Jan-99 00:00:00 GMT").expect("1999");
        assert_eq!(d.timestamp.as_second(), 915148800);
    }
}
