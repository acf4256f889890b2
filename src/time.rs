//! Capture timestamps: nanoseconds since the Unix epoch, as pcap and pcapng record them.

use std::fmt;

/// A capture timestamp with nanosecond resolution.
///
/// Kept as a plain integer so that it is cheap to copy through the packet path;
/// conversion to a calendar form happens only when something is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(i64::from(nanos)),
        )
    }

    /// The wall clock now (live capture stamps packets with it too).
    pub fn now() -> Self {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(Timestamp::ZERO, |d| {
                Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            })
    }

    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// Seconds between `self` and an earlier timestamp (negative if `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1e9
    }

    /// RFC 3339 in UTC with microsecond precision, e.g. `2009-11-08T21:57:48.123456Z`.
    pub fn to_rfc3339(self) -> String {
        match jiff::Timestamp::from_nanosecond(i128::from(self.0)) {
            Ok(ts) => format!("{ts:.6}"),
            Err(_) => String::from("invalid-timestamp"),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_microseconds_and_utc() {
        let ts = Timestamp::from_secs_nanos(1_257_717_468, 123_456_789);
        assert_eq!(ts.to_rfc3339(), "2009-11-08T21:57:48.123456Z");
    }
}
