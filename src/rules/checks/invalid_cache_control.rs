//! `invalid-cache-control`: a Cache-Control field caches cannot read as intended
//! (RFC 9111 §5.2, §1.2.2, §4.2.1): elements outside the directive grammar, delta-seconds
//! directives without an integer, arguments on directives that take none, quoted
//! delta-seconds, and known directives given twice. Code, because the list has
//! quoted-strings (commas inside them do not separate) and per-directive argument rules.
//!
//! Unknown extension directives, `no-cache` / `private` with or without a field list,
//! upper-case names, whitespace around `=` and huge integers are all fine.

use super::{CheckInput, CheckKind, Hit};
use crate::rules::syntax::cache_control::{self, DELTA_REQUIRED, KNOWN, NO_ARGUMENT};

pub const CHECK: CheckKind = CheckKind::Exchange(run);

fn run(input: &CheckInput<'_>) -> Vec<Hit> {
    let Some(msg) = input.message() else {
        return Vec::new();
    };
    let Some(value) = msg.combined("cache-control") else {
        return Vec::new();
    };
    first_problem(&value).map(Hit::new).into_iter().collect()
}

/// The first problem of a Cache-Control value, in the order of its elements.
fn first_problem(value: &str) -> Option<String> {
    let mut seen: Vec<&'static str> = Vec::new();
    for element in cache_control::parse(value) {
        let d = match element {
            Ok(d) => d,
            Err(e) => return Some(e.to_string()),
        };
        let Some(&known) = KNOWN.iter().find(|k| **k == d.name) else {
            continue;
        };
        if seen.contains(&known) {
            return Some(format!("{known} repeated"));
        }
        seen.push(known);
        let delta_arg = DELTA_REQUIRED.contains(&known) || known == "max-stale";
        match &d.arg {
            None if DELTA_REQUIRED.contains(&known) => {
                return Some(format!("{known} has no value"));
            }
            Some(arg) if delta_arg => {
                if d.delta_seconds().is_none() {
                    return Some(format!(
                        "{known}={} is not an integer number of seconds",
                        shown(arg.value(), arg.is_quoted())
                    ));
                }
                if arg.is_quoted() {
                    return Some(format!(
                        "quoted delta-seconds {known}={}",
                        shown(arg.value(), true)
                    ));
                }
            }
            Some(arg) if NO_ARGUMENT.contains(&known) => {
                return Some(format!(
                    "{known} takes no value but has {known}={}",
                    shown(arg.value(), arg.is_quoted())
                ));
            }
            _ => {}
        }
    }
    None
}

fn shown(v: &str, quoted: bool) -> String {
    let v: String = match v.char_indices().nth(32) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_string(),
    };
    if quoted { format!("{v:?}") } else { v }
}

#[cfg(test)]
mod tests {
    use super::first_problem as p;

    #[test]
    fn valid_values() {
        for v in [
            "max-age=60, no-cache=\"Set-Cookie\", stale-while-revalidate=30, x-edge-ttl=5",
            "max-stale",
            "MAX-AGE = 60 ,  Public",
            "private, no-cache",
            "private=\"a, b\"",
            "max-age=99999999999999999999",
            "ext=\"anything, goes\", other",
            "no-store,,",
        ] {
            assert_eq!(p(v), None, "{v}");
        }
    }

    #[test]
    fn problems() {
        let cases = [
            (
                "public, max-age=1h",
                "max-age=1h is not an integer number of seconds",
            ),
            ("max-age", "max-age has no value"),
            (
                "max-age=-1",
                "max-age=-1 is not an integer number of seconds",
            ),
            (
                "s-maxage=1.5",
                "s-maxage=1.5 is not an integer number of seconds",
            ),
            ("max-age=\"60\"", "quoted delta-seconds max-age=\"60\""),
            (
                "max-stale=soon",
                "max-stale=soon is not an integer number of seconds",
            ),
            ("no-store=1", "no-store takes no value but has no-store=1"),
            ("max-age=60, Max-Age=60", "max-age repeated"),
            ("max-age=", "\"max-age=\" has \"=\" but no value"),
            ("private=\"x", "\"private=\\\"x\" has an unclosed quote"),
            ("max age=5", "\"max age=5\" is not a directive name"),
        ];
        for (v, want) in cases {
            assert_eq!(p(v).as_deref(), Some(want), "{v}");
        }
    }
}
