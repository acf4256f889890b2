//! `oversized-header-section`: a header section near or beyond the limits common servers and
//! proxies enforce (RFC 9110 §5.4 lets them set limits; nginx, Node.js and load balancers use
//! 8–32 KiB). Measuring the raw head, its lines and repetitions needs code.

use std::collections::HashMap;

use super::{CheckInput, CheckKind, Hit};
use crate::http::AnomalyKind;

pub const CHECK: CheckKind = CheckKind::Exchange(run);

/// Start-line through the blank line, in bytes.
const MAX_SECTION: usize = 8192;
/// One field line (name, colon, value), in bytes.
const MAX_LINE: usize = 4096;
/// Field lines in the section.
const MAX_LINES: usize = 100;
/// Lines with the same field name.
const MAX_REPEAT: usize = 16;

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    // First: a head cut at the head-size cap has only its first part in `raw_head`.
    if let Some(a) = msg
        .anomalies
        .iter()
        .find(|a| a.kind == AnomalyKind::OversizedHead)
    {
        return vec![Hit::new(format!(
            "the parser gave up on the head: {}",
            a.detail
        ))];
    }
    let raw = &msg.raw_head;
    if raw.len() > MAX_SECTION {
        return vec![Hit::new(format!(
            "header section {} bytes (limit {MAX_SECTION})",
            raw.len()
        ))];
    }
    if !raw.is_empty() {
        // Field lines as received: every line after the start-line, without its line ending.
        for line in raw.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > MAX_LINE {
                let name_end = line.iter().position(|&b| b == b':').unwrap_or(0).min(60);
                let name = String::from_utf8_lossy(&line[..name_end]);
                let name = if name.trim().is_empty() {
                    "field".into()
                } else {
                    name
                };
                return vec![Hit::new(format!(
                    "{name} line {} bytes (limit {MAX_LINE})",
                    line.len()
                ))];
            }
        }
    } else if let Some(h) = msg
        .headers
        .iter()
        .find(|h| h.name.len() + 1 + h.value.len() > MAX_LINE)
    {
        return vec![Hit::new(format!(
            "{} line {} bytes (limit {MAX_LINE})",
            h.name,
            h.name.len() + 1 + h.value.len()
        ))];
    }
    if msg.headers.len() > MAX_LINES {
        return vec![Hit::new(format!(
            "{} field lines (limit {MAX_LINES})",
            msg.headers.len()
        ))];
    }
    if msg.headers.len() > MAX_REPEAT {
        let mut counts: HashMap<String, (usize, &str)> = HashMap::new();
        for h in &msg.headers {
            counts
                .entry(h.name.to_ascii_lowercase())
                .or_insert((0, h.name.as_str()))
                .0 += 1;
        }
        // The most repeated name; ties go to the first in wire order.
        let worst = msg
            .headers
            .iter()
            .filter_map(|h| counts.get(&h.name.to_ascii_lowercase()))
            .fold(None::<(usize, &str)>, |best, &(n, name)| match best {
                Some((b, _)) if b >= n => best,
                _ => Some((n, name)),
            });
        if let Some((n, name)) = worst.filter(|(n, _)| *n > MAX_REPEAT) {
            return vec![Hit::new(format!(
                "{name} repeated {n} times (limit {MAX_REPEAT})"
            ))];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Side;
    use crate::rules::syntax::testing::{evidence, exchange};

    fn req(headers: &str) -> Vec<String> {
        let ex = exchange(&format!("GET / HTTP/1.1\nHost: a\n{headers}\n"), "");
        evidence(CHECK, &ex, Some(Side::Request))
    }

    #[test]
    fn thresholds() {
        assert!(req(&"Via: 1.1 p\n".repeat(15)).is_empty());
        assert!(req(&"Via: 1.1 p\n".repeat(16)).is_empty());
        assert_eq!(
            req(&"Via: 1.1 p\n".repeat(17)),
            ["Via repeated 17 times (limit 16)"]
        );
        let many: String = (0..100).map(|i| format!("F{i}: x\n")).collect();
        assert_eq!(req(&many), ["101 field lines (limit 100)"]);
        let cookie = format!("Cookie: {}\n", "a".repeat(4100));
        assert_eq!(req(&cookie), ["Cookie line 4108 bytes (limit 4096)"]);
        let cookie = format!("Cookie: {}\n", "a".repeat(4088));
        assert!(req(&cookie).is_empty());
        let big = format!(
            "A: {}\nB: {}\nC: {}\n",
            "a".repeat(3000),
            "b".repeat(3000),
            "c".repeat(3000)
        );
        let ev = req(&big);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].starts_with("header section 9"), "{ev:?}");
    }
}
