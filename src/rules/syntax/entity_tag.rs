//! Entity-tags (RFC 9110 §8.8.3): `[ "W/" ] DQUOTE *etagc DQUOTE`, and the lists of them in
//! If-Match / If-None-Match (§13.1.1, §13.1.2). An opaque-tag may contain commas and
//! backslashes (etagc is `%x21 / %x23-7E / obs-text`, with no escaping), so lists are read
//! tag by tag rather than split at commas.

/// One entity-tag, borrowing from the field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityTag<'a> {
    pub weak: bool,
    /// The opaque-tag including its quotes.
    pub opaque: &'a str,
}

impl EntityTag<'_> {
    /// Weak comparison (§8.8.3.2): the opaque-tags match, either may be weak.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }

    /// Strong comparison: both strong and the opaque-tags match.
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }
}

impl std::fmt::Display for EntityTag<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        f.write_str(self.opaque)
    }
}

fn is_etagc(c: char) -> bool {
    c == '\x21' || ('\x23'..='\x7e').contains(&c) || !c.is_ascii()
}

/// Reads one entity-tag at the start of `s`; returns it and the rest.
fn take(s: &str) -> Option<(EntityTag<'_>, &str)> {
    let (weak, body) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let inner = body.strip_prefix('"')?;
    let end = inner.find('"')?;
    if !inner[..end].chars().all(is_etagc) {
        return None;
    }
    let opaque = &body[..end + 2];
    Some((EntityTag { weak, opaque }, &inner[end + 1..]))
}

/// Parses a field value holding exactly one entity-tag (ETag), OWS around it allowed.
pub fn parse(value: &str) -> Option<EntityTag<'_>> {
    let (tag, rest) = take(value.trim_matches([' ', '\t']))?;
    rest.is_empty().then_some(tag)
}

/// The value of If-Match / If-None-Match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagList<'a> {
    Any,
    Tags(Vec<EntityTag<'a>>),
}

/// Parses `"*" / #entity-tag`; `None` when any element is not an entity-tag.
pub fn parse_list(value: &str) -> Option<TagList<'_>> {
    let v = value.trim_matches([' ', '\t']);
    if v == "*" {
        return Some(TagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = v;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (tag, after) = take(rest)?;
        tags.push(tag);
        let after = after.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return None;
        }
        rest = after;
    }
    if tags.is_empty() {
        return None;
    }
    Some(TagList::Tags(tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_tags() {
        assert_eq!(
            parse(r#" W/"v7" "#),
            Some(EntityTag {
                weak: true,
                opaque: r#""v7""#
            })
        );
        assert!(parse(r#""""#).is_some());
        assert!(parse("v7").is_none());
        assert!(parse(r#"w/"v7""#).is_none());
        assert!(parse(r#""a" "b""#).is_none());
        assert!(parse(r#""a b""#).is_none());
    }

    #[test]
    fn lists_with_commas_and_backslashes_inside_tags() {
        let Some(TagList::Tags(t)) = parse_list(r#""a,b", W/"c\", "d""#) else {
            panic!("list")
        };
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].opaque, r#""a,b""#);
        assert_eq!(t[1].opaque, r#""c\""#);
        assert_eq!(parse_list(" * "), Some(TagList::Any));
        assert_eq!(parse_list(r#""a", *"#), None);
        assert_eq!(parse_list(r#""a" x"#), None);
        assert_eq!(parse_list(""), None);
    }

    #[test]
    fn comparisons() {
        let a = parse(r#"W/"1""#).expect("tag");
        let b = parse(r#""1""#).expect("tag");
        assert!(a.weak_eq(&b) && !a.strong_eq(&b) && b.strong_eq(&b));
    }
}
