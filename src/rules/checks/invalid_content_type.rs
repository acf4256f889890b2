//! `invalid-content-type`: a `Content-Type` that is not `type/subtype *( ; name=value )`
//! (RFC 9110 §8.3.1, §5.6.6), or repeats a parameter. Needs the media-type grammar, with
//! tokens and quoted-strings, which conditions cannot express.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::media_type::parse_media_type;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Characters of the value shown in evidence.
const SHOW: usize = 150;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    let mut values = msg.header_values("Content-Type").map(str::trim);
    let Some(value) = values.next() else {
        return Vec::new();
    };
    if values.any(|v| v != value) {
        // Different values on several lines: duplicate-singleton-header's business.
        return Vec::new();
    }
    match parse_media_type(value) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let shown: String = value.chars().take(SHOW).collect();
            vec![Hit::new(format!("{shown} ({e})"))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn ev(lines: &str) -> Vec<String> {
        let ex = exchange(
            "",
            &format!("HTTP/1.1 200 OK\n{lines}Content-Length: 0\n\n"),
        );
        evidence(CHECK, &ex, Some(Side::Response))
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            ev("Content-Type: text/html charset=UTF-8\n"),
            ["text/html charset=UTF-8 (missing ';')"]
        );
        assert_eq!(
            ev("Content-Type: text/html; charset=utf-8; charset=latin1\n"),
            ["text/html; charset=utf-8; charset=latin1 (parameter \"charset\" repeated)"]
        );
        assert!(ev("Content-Type: Text/HTML;\n").is_empty());
        assert!(
            ev("Content-Type: application/x-ndjson\nContent-Type: application/x-ndjson\n")
                .is_empty()
        );
        assert!(ev("Content-Type: json\nContent-Type: text/html\n").is_empty());
    }
}
