//! Output formats: one file per format.

pub mod exchange_json;
pub mod exchange_text;
pub mod finding_json;
pub mod findings_text;
pub mod rules_doc;
pub mod sarif;
pub mod summary;

/// `1 warning`, `2 warnings`, `0 warnings`: a count with its noun in the right number.
/// Every count a person reads goes through here, so no message says `1 warnings`.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(0u64, "warning", "warnings"), "0 warnings");
        assert_eq!(count(1u64, "warning", "warnings"), "1 warning");
        assert_eq!(count(2u64, "category", "categories"), "2 categories");
    }
}
