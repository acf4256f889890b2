//! Test helpers for checks: exchanges built from raw HTTP through the real http stage, and
//! a way to run an exchange check on them.

use crate::http::Exchange;
use crate::rules::checks::{CheckInput, CheckKind, Hit};
use crate::rules::file::ExampleFile;
use crate::rules::{Side, Subject, examples};

/// The exchanges of an example written as the TOML of one `[[example]]` table (without the
/// header), e.g. `request = """GET / HTTP/1.1\nHost: a\n\n"""`.
pub fn exchanges(toml_text: &str) -> Vec<Exchange> {
    let text = format!("kind = \"bad\"\n{toml_text}");
    let file: ExampleFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => panic!("bad test example: {e}\n{text}"),
    };
    examples::exchanges(&file)
}

/// One exchange from a request and a response (either may be empty for "none").
pub fn exchange(request: &str, response: &str) -> Exchange {
    let mut text = String::new();
    if !request.is_empty() {
        text.push_str(&format!("request = {}\n", toml_string(request)));
    }
    if !response.is_empty() {
        text.push_str(&format!("response = {}\n", toml_string(response)));
    }
    let mut all = exchanges(&text);
    assert_eq!(all.len(), 1, "expected one exchange");
    all.remove(0)
}

fn toml_string(s: &str) -> String {
    // A TOML basic string: escape what must be escaped, keep the rest.
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs an exchange check on the given side (`None` for exchange scope).
pub fn run(check: CheckKind, ex: &Exchange, side: Option<Side>) -> Vec<Hit> {
    let CheckKind::Exchange(f) = check else {
        panic!("not an exchange check");
    };
    let cache = crate::rules::BodyCache::default();
    let subject = Subject::new(ex, side, &cache);
    f(&CheckInput {
        exchange: ex,
        side,
        subject: &subject,
    })
}

/// Evidence strings of a check's hits.
pub fn evidence(check: CheckKind, ex: &Exchange, side: Option<Side>) -> Vec<String> {
    run(check, ex, side)
        .into_iter()
        .map(|h| h.evidence)
        .collect()
}

/// Evidence of every hit a stateful check reports over the exchanges of a
/// `[[example.exchange]]`-style TOML text (observe each, then finish).
pub fn stateful_evidence(check: CheckKind, toml_text: &str) -> Vec<String> {
    let CheckKind::Stateful(make) = check else {
        panic!("not a stateful check");
    };
    let mut state = make(&super::stateful::Tables::measuring());
    let mut out = Vec::new();
    for ex in exchanges(toml_text) {
        state.observe(&ex, &mut out);
    }
    out.into_iter().map(|h| h.evidence).collect()
}
