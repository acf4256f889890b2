//! `vary-inconsistent`: successful GET/HEAD responses for one URL of one host carry
//! different Vary sets (RFC 9110 §12.5.5, RFC 9111 §4.1), so a cache keys them differently
//! depending on which one it stored. Stateful: it compares responses across exchanges.
//!
//! A Vary set is the field names lower-cased, de-duplicated and unordered (`*` is a member;
//! no Vary is the empty set). State is keyed by a hash of (host, request-target), capped,
//! oldest forgotten first. The rule's `[when]` (GET/HEAD, 2xx) is applied here, as
//! stateful checks see every exchange. Reported once per (host, target).

use std::sync::LazyLock;

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::{Exchange, Message};
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables};
use crate::rules::syntax::token::split_list;
use crate::rules::{ExchangeRef, Side};

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// URLs remembered.
const MAX_URLS: usize = 50_000;
/// Characters of a Vary set kept for evidence.
const MAX_SHOWN: usize = 200;

static SUMMARY: LazySummary = LazyLock::new(|| Summary::builtin("vary-inconsistent"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(VaryInconsistent {
        keyer: Keyer::default(),
        urls: tables.bounded(MAX_URLS),
    })
}

struct First {
    /// Digest of the Vary set (so that memory per URL stays small).
    set: u64,
    /// The set as shown in evidence, cut at [`MAX_SHOWN`] characters.
    shown: String,
    at: ExchangeRef,
    frame: u64,
    reported: bool,
}

struct VaryInconsistent {
    keyer: Keyer,
    /// (host, request-target) → the first response's Vary set.
    urls: Bounded<u64, First>,
}

fn vary_set(resp: &Message) -> Vec<String> {
    let mut names: Vec<String> = resp
        .header_values("vary")
        .flat_map(split_list)
        .map(str::to_ascii_lowercase)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn shown(set: &[String]) -> String {
    let all = set.join(", ");
    match all.char_indices().nth(MAX_SHOWN) {
        Some((i, _)) => format!("{{{}…}}", &all[..i]),
        None => format!("{{{all}}}"),
    }
}

impl StatefulCheck for VaryInconsistent {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let (Some(req), Some(resp)) = (&ex.request, &ex.response) else {
            return;
        };
        if !matches!(req.method(), Some("GET" | "HEAD"))
            || !resp.status().is_some_and(|s| (200..300).contains(&s))
        {
            return;
        }
        let target = req.target().unwrap_or("");
        let Some(host) = self.keyer.host(ex) else {
            return;
        };
        let key = self.keyer.key((host, target));
        let names = vary_set(resp);
        let set = self.keyer.key(&names);
        let frame = resp.first_frame.number;
        let Some(first) = self.urls.get_mut(&key) else {
            self.urls.insert(
                key,
                First {
                    set,
                    shown: shown(&names),
                    at: ExchangeRef::of(ex),
                    frame,
                    reported: false,
                },
            );
            return;
        };
        if first.reported || first.set == set {
            return;
        }
        first.reported = true;
        let evidence = format!(
            "{} in frame {}, {} in frame {}",
            first.shown,
            first.frame,
            shown(&names),
            frame
        );
        out.push(StatefulHit {
            at: ExchangeRef::of(ex),
            message: SUMMARY.render(ex, &evidence),
            evidence,
            severity: None,
            side: Some(Side::Response),
            related: vec![first.at],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;
    use std::fmt::Write;

    /// (request line, status line, extra response fields) per exchange.
    fn run(items: &[(&str, &str, &str)]) -> Vec<String> {
        let mut toml = String::new();
        for (line, status, fields) in items {
            let _ = write!(
                toml,
                "[[exchange]]\nrequest = \"{line}\\nHost: a\\n\\n\"\nresponse = \"{status}\\n{fields}Content-Length: 0\\n\\n\"\n"
            );
        }
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for ex in exchanges(&toml) {
            check.observe(&ex, &mut out);
        }
        out.into_iter().map(|h| h.evidence).collect()
    }

    const GET: &str = "GET /b HTTP/1.1";
    const OK: &str = "HTTP/1.1 200 OK";

    #[test]
    fn different_sets_fire_once() {
        let got = run(&[
            (GET, OK, "Vary: Accept-Encoding\\n"),
            (GET, OK, ""),
            (GET, OK, "Vary: Accept\\n"),
        ]);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("{accept-encoding} in frame "), "{got:?}");
        assert!(got[0].contains(", {} in frame "), "{got:?}");
    }

    #[test]
    fn equal_sets_other_targets_and_errors_do_not_fire() {
        assert!(
            run(&[
                (GET, OK, "Vary: Accept-Encoding, Origin\\n"),
                (GET, OK, "Vary: origin\\nVary: accept-encoding, ORIGIN\\n"),
                (
                    GET,
                    "HTTP/1.1 206 Partial Content",
                    "Vary: Origin, Accept-Encoding\\nContent-Range: bytes 0-0/1\\n"
                ),
            ])
            .is_empty()
        );
        assert!(
            run(&[
                (GET, OK, "Vary: Accept\\n"),
                ("GET /b?x=1 HTTP/1.1", OK, "")
            ])
            .is_empty()
        );
        assert!(
            run(&[
                (GET, OK, "Vary: Accept\\n"),
                (GET, "HTTP/1.1 404 Not Found", "")
            ])
            .is_empty()
        );
        assert!(run(&[(GET, OK, "Vary: Accept\\n"), ("POST /b HTTP/1.1", OK, "")]).is_empty());
    }
}
