//! `invalid-range-header`: a `Range` request field that does not follow RFC 9110 §14.2
//! (`bytes=first-last, -suffix, …`) or asks for a byte range with first > last (§14.1.1).
//! Servers must ignore such a field, so the client silently gets the whole representation.
//! The range-set grammar and the comparison of arbitrarily long positions need code.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::range::parse_range;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Characters of the value shown in evidence.
const SHOW: usize = 100;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(req) = input.request() else {
        return Vec::new();
    };
    let mut lines = req.header_values("Range");
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return Vec::new();
    };
    match parse_range(value) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let shown: String = value.chars().take(SHOW).collect();
            vec![Hit::new(format!("{shown}: {e}"))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(range_lines: &str) -> Vec<String> {
        let ex = exchange(&format!("GET /v HTTP/1.1\nHost: a\n{range_lines}\n"), "");
        evidence(CHECK, &ex, Some(Side::Request))
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            ev("Range: bytes=500-100\n"),
            ["bytes=500-100: first > last in \"500-100\""]
        );
        assert_eq!(
            ev("Range: bytes 0-499\n"),
            ["bytes 0-499: no '=' after the unit"]
        );
        assert_eq!(ev("Range: bytes=\n"), ["bytes=: empty range set"]);
        assert_eq!(
            ev("Range: bytes=0-4;6-9\n"),
            ["bytes=0-4;6-9: \"0-4;6-9\" is not a byte range"]
        );
        for ok in [
            "bytes=0-0",
            "bytes=-0",
            "bytes=0-4, -5",
            "bytes=6-",
            "items=0-24",
            "Bytes=1-2,,",
        ] {
            assert!(ev(&format!("Range: {ok}\n")).is_empty(), "{ok}");
        }
        // Several lines are left alone.
        assert!(ev("Range: bytes=5-1\nRange: bytes=0-1\n").is_empty());
    }
}
