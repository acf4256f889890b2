//! `conditional-request-ignored`: a GET answered 200 although the request's validator
//! matches the representation sent (RFC 9110 §13.1.2, §13.1.3, §13.2.2). Code, because it
//! compares entity-tag lists with the weak comparison and HTTP-dates across two messages.
//!
//! If-None-Match takes precedence: when present, If-Modified-Since is not looked at. A
//! request with Range is skipped, since its 200 may answer an If-Range that did not match.

use super::{CheckInput, CheckKind, Hit};
use crate::http::Message;
use crate::rules::syntax::date::parse_http_date_at;
use crate::rules::syntax::entity_tag::{self, TagList};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let (Some(req), Some(resp)) = (input.request(), input.response()) else {
        return Vec::new();
    };
    if req.has_header("range") {
        return Vec::new();
    }
    let evidence = if req.has_header("if-none-match") {
        none_match(req, resp)
    } else {
        modified_since(req, resp)
    };
    evidence.map(Hit::new).into_iter().collect()
}

fn none_match(req: &Message, resp: &Message) -> Option<String> {
    let inm = req.combined("if-none-match")?;
    let list = entity_tag::parse_list(&inm)?;
    let tags = match list {
        TagList::Any => return Some("If-None-Match * and the resource exists".to_string()),
        TagList::Tags(tags) => tags,
    };
    let mut etags = resp.header_values("etag");
    let etag_value = etags.next()?;
    if etags.next().is_some() {
        return None;
    }
    let etag = entity_tag::parse(etag_value)?;
    let hit = tags.iter().find(|t| t.weak_eq(&etag))?;
    Some(format!("If-None-Match {hit} = ETag {etag}"))
}

/// The only value of a field that must appear once, or `None` when absent or repeated.
fn single<'a>(m: &'a Message, name: &'a str) -> Option<&'a str> {
    let mut values = m.header_values(name);
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

fn modified_since(req: &Message, resp: &Message) -> Option<String> {
    let now = jiff::Timestamp::from_nanosecond(i128::from(resp.head_ts.as_nanos()))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let ims_raw = single(req, "if-modified-since")?;
    let lm_raw = single(resp, "last-modified")?;
    let date_raw = single(resp, "date")?;
    let ims = parse_http_date_at(ims_raw, now).ok()?.timestamp;
    let lm = parse_http_date_at(lm_raw, now).ok()?.timestamp;
    let date = parse_http_date_at(date_raw, now).ok()?.timestamp;
    // A future If-Modified-Since is invalid and may be ignored (§13.1.3).
    if ims > date || lm > ims {
        return None;
    }
    Some(format!(
        "If-Modified-Since {} >= Last-Modified {}",
        ims_raw.trim(),
        lm_raw.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::{evidence, exchange};

    const OK_HEAD: &str = "HTTP/1.1 200 OK\nDate: Mon, 03 Mar 2025 10:00:00 GMT\n";

    fn ev(req_fields: &str, resp_fields: &str) -> Vec<String> {
        let req = format!("GET /b HTTP/1.1\nHost: a\n{req_fields}\n");
        let resp = format!("{OK_HEAD}{resp_fields}Content-Length: 0\n\n");
        evidence(CHECK, &exchange(&req, &resp), None)
    }

    #[test]
    fn entity_tags_compare_weakly() {
        assert_eq!(
            ev("If-None-Match: \"x\", W/\"v7\"\n", "ETag: \"v7\"\n"),
            vec!["If-None-Match W/\"v7\" = ETag \"v7\""]
        );
        assert_eq!(ev("If-None-Match: \"a,b\"\n", "ETag: \"a,b\"\n").len(), 1);
        assert!(ev("If-None-Match: \"v6\"\n", "ETag: \"v7\"\n").is_empty());
        assert_eq!(ev("If-None-Match: *\n", "").len(), 1);
    }

    #[test]
    fn invalid_tags_and_range_do_not_fire() {
        assert!(ev("If-None-Match: v7\n", "ETag: v7\n").is_empty());
        assert!(ev("If-None-Match: \"v7\"\n", "ETag: v7\n").is_empty());
        assert!(
            ev(
                "If-None-Match: \"v7\"\nRange: bytes=0-1\n",
                "ETag: \"v7\"\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn inm_wins_over_ims() {
        assert!(
            ev(
                "If-None-Match: \"v6\"\nIf-Modified-Since: Mon, 03 Mar 2025 09:00:00 GMT\n",
                "ETag: \"v7\"\nLast-Modified: Mon, 03 Mar 2025 08:00:00 GMT\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn dates() {
        let lm = "Last-Modified: Sat, 01 Mar 2025 08:00:00 GMT\n";
        assert_eq!(
            ev("If-Modified-Since: Saturday, 01-Mar-25 08:00:00 GMT\n", lm).len(),
            1
        );
        assert!(ev("If-Modified-Since: Fri, 28 Feb 2025 08:00:00 GMT\n", lm).is_empty());
        // later than the response's Date: invalid, may be ignored
        assert!(ev("If-Modified-Since: Tue, 04 Mar 2025 08:00:00 GMT\n", lm).is_empty());
        assert!(ev("If-Modified-Since: yesterday\n", lm).is_empty());
        assert!(
            ev(
                "If-Modified-Since: Sat, 01 Mar 2025 08:00:00 GMT\nIf-Modified-Since: Sat, 01 Mar 2025 09:00:00 GMT\n",
                lm
            )
            .is_empty()
        );
    }
}
