//! Durations: `delta-seconds` (RFC 9111 §1.2.2, used by Age, max-age and friends) and a
//! short human form for evidence strings ("1 h 59 min 59 s").

/// `1*DIGIT` as a number of seconds, capped at 2^31 as caches must (RFC 9111 §1.2.2);
/// `None` for anything else (signs, units, decimals, empty).
pub fn delta_seconds(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    const CAP: u64 = 1 << 31;
    let mut n: u64 = 0;
    for b in s.bytes() {
        n = (n * 10 + u64::from(b - b'0')).min(CAP);
    }
    u32::try_from(n).ok()
}

/// `3605` → `"1 h 5 s"`, `312` → `"5 min 12 s"`, `0` → `"0 s"`: units from the largest
/// non-zero one down, zero units left out.
pub fn human(secs: u64) -> String {
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "min"),
        (secs % 60, "s"),
    ];
    let out: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n} {u}"))
        .collect();
    if out.is_empty() {
        "0 s".to_string()
    } else {
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta() {
        assert_eq!(delta_seconds("600"), Some(600));
        assert_eq!(delta_seconds("99999999999999999999"), Some(1 << 31));
        assert_eq!(delta_seconds("-1"), None);
        assert_eq!(delta_seconds("1h"), None);
        assert_eq!(delta_seconds(""), None);
    }

    #[test]
    fn human_form() {
        assert_eq!(human(0), "0 s");
        assert_eq!(human(312), "5 min 12 s");
        assert_eq!(human(3600), "1 h");
        assert_eq!(human(7199), "1 h 59 min 59 s");
        assert_eq!(human(90_000), "1 d 1 h");
    }
}
