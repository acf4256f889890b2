//! Weighted lists (RFC 9110 §12.4.2): `gzip;q=0.8, br, *;q=0`, as in Accept-Encoding,
//! Accept-Charset and Accept-Language.

use super::token::split_list;

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Parses a `qvalue` leniently: any decimal in 0..=1 is accepted (so `q=.5` and `q=0.1234`
/// are read as meant); other values are `None`.
pub fn qvalue(s: &str) -> Option<f32> {
    let s = trim_ows(s);
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let q: f32 = s.parse().ok()?;
    (0.0..=1.0).contains(&q).then_some(q)
}

/// One element: the value before the first `;`, lower-cased, and its weight (1 when absent
/// or unreadable: an unreadable weight is not taken as a refusal).
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    pub value: String,
    pub q: f32,
    /// The `q` parameter was present but not a valid qvalue.
    pub bad_q: bool,
}

/// Parses a weighted list.
pub fn weighted_list(value: &str) -> Vec<Weighted> {
    split_list(value)
        .map(|el| {
            let mut parts = el.split(';');
            let name = trim_ows(parts.next().unwrap_or("")).to_ascii_lowercase();
            let mut q = 1.0;
            let mut bad_q = false;
            for p in parts {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                if trim_ows(k).eq_ignore_ascii_case("q") {
                    match qvalue(v) {
                        Some(x) => q = x,
                        None => bad_q = true,
                    }
                }
            }
            Weighted {
                value: name,
                q,
                bad_q,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        let l = weighted_list("gzip;q=0.8, BR ; Q=0, *;q=bogus, deflate");
        assert_eq!(l[0].value, "gzip");
        assert!((l[0].q - 0.8).abs() < 1e-6);
        assert_eq!((l[1].value.as_str(), l[1].q), ("br", 0.0));
        assert!(l[2].bad_q && l[2].q == 1.0);
        assert_eq!(l[3].q, 1.0);
        assert_eq!(qvalue("1.5"), None);
        assert_eq!(qvalue(".5"), Some(0.5));
        assert!(weighted_list(" , ").is_empty());
    }
}
