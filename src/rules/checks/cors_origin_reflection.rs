//! `cors-origin-reflection`: one host echoes unrelated Origins into
//! Access-Control-Allow-Origin, i.e. it allows every site (Fetch Standard, CORS protocol
//! and CORS check). Stateful: it takes two reflected origins of different sites
//! (registrable domains) to tell reflection from a single allowed partner.
//!
//! Same-origin requests (the Origin's host is the request's host) and `null` are ignored.
//! Sites are approximated (see `syntax::site::registrable_domain`): no dependency carries
//! the Public Suffix List. The rule's `[when]` and `[[escalate]]` are applied here, as
//! stateful checks see every exchange and set their own severity: an error when the
//! response that completes the case also allows credentials.

use std::sync::LazyLock;

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::{Exchange, Message};
use crate::rules::syntax::site::{origin_host, registrable_domain, request_host};
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables};
use crate::rules::{ExchangeRef, Severity, Side};

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Hosts remembered.
const MAX_HOSTS: usize = 20_000;

static SUMMARY: LazySummary = LazyLock::new(|| Summary::builtin("cors-origin-reflection"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(OriginReflection {
        keyer: Keyer::default(),
        hosts: tables.bounded(MAX_HOSTS),
    })
}

/// The first reflected origin of a host, or the mark that the host was reported.
enum HostState {
    First {
        /// Digest of the origin's registrable domain.
        site: u64,
        origin: String,
        at: ExchangeRef,
    },
    Reported,
}

struct OriginReflection {
    keyer: Keyer,
    hosts: Bounded<u64, HostState>,
}

/// The Origin the response reflected, byte for byte, when it is a cross-origin one.
fn reflected<'a>(req: &'a Message, resp: &Message) -> Option<&'a str> {
    let mut origins = req.header_values("origin");
    let origin = origins.next()?;
    if origins.next().is_some() {
        return None;
    }
    let mut acao = resp.header_values("access-control-allow-origin");
    let allowed = acao.next()?;
    if acao.next().is_some() || allowed != origin || origin.trim() == "*" {
        return None;
    }
    Some(origin)
}

impl StatefulCheck for OriginReflection {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let (Some(req), Some(resp)) = (&ex.request, &ex.response) else {
            return;
        };
        let Some(origin) = reflected(req, resp) else {
            return;
        };
        let Some(o_host) = origin_host(origin) else {
            return; // "null" or not an origin
        };
        if request_host(req).is_some_and(|h| h == o_host) {
            return;
        }
        let site = self.keyer.key(registrable_domain(
            o_host.trim_start_matches('[').trim_end_matches(']'),
        ));
        let Some(key) = self.keyer.host(ex) else {
            return;
        };
        let shown: String = origin.chars().take(120).collect();
        let (first_origin, first_at) = match self.hosts.get_mut(&key) {
            None => {
                self.hosts.insert(
                    key,
                    HostState::First {
                        site,
                        origin: shown,
                        at: ExchangeRef::of(ex),
                    },
                );
                return;
            }
            Some(HostState::Reported) => return,
            Some(HostState::First {
                site: first_site, ..
            }) if *first_site == site => return,
            Some(HostState::First { origin, at, .. }) => (origin.clone(), *at),
        };
        self.hosts.insert(key, HostState::Reported);
        let credentials = resp
            .header("access-control-allow-credentials")
            .is_some_and(|v| v.trim() == "true");
        let evidence = format!("reflected {first_origin} and {shown}");
        out.push(StatefulHit {
            at: ExchangeRef::of(ex),
            message: SUMMARY.render(ex, &evidence),
            evidence,
            severity: credentials.then_some(Severity::Error),
            side: Some(Side::Response),
            related: vec![first_at],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;
    use std::fmt::Write;

    /// (Origin, ACAO, credentials) per exchange to Host api.example.com.
    fn run(items: &[(&str, &str, bool)]) -> Vec<(String, Option<Severity>)> {
        let mut toml = String::new();
        for (origin, acao, cred) in items {
            let cred = if *cred {
                "Access-Control-Allow-Credentials: true\\n"
            } else {
                ""
            };
            let _ = write!(
                toml,
                "[[exchange]]\nrequest = \"GET /me HTTP/1.1\\nHost: api.example.com\\nOrigin: {origin}\\n\\n\"\nresponse = \"HTTP/1.1 200 OK\\nAccess-Control-Allow-Origin: {acao}\\n{cred}Content-Length: 0\\n\\n\"\n"
            );
        }
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for ex in exchanges(&toml) {
            check.observe(&ex, &mut out);
        }
        out.into_iter().map(|h| (h.evidence, h.severity)).collect()
    }

    #[test]
    fn two_sites_fire_once() {
        let a = "https://app.example.com";
        let b = "https://attacker.example.net";
        let c = "https://evil.test";
        let got = run(&[(a, a, true), (b, b, true), (c, c, true)]);
        assert_eq!(
            got,
            vec![(format!("reflected {a} and {b}"), Some(Severity::Error))]
        );
        assert_eq!(run(&[(a, a, false), (b, b, false)])[0].1, None);
    }

    #[test]
    fn same_site_wildcard_null_and_same_origin_do_not_fire() {
        let a = "https://app.example.com";
        let b = "https://admin.example.com";
        assert!(run(&[(a, a, true), (b, b, true)]).is_empty());
        assert!(run(&[(a, "*", false), ("https://x.test", "*", false)]).is_empty());
        assert!(run(&[(a, a, false), ("https://x.test", a, false)]).is_empty());
        assert!(run(&[("null", "null", true), (a, a, true)]).is_empty());
        assert!(
            run(&[
                ("https://api.example.com", "https://api.example.com", true),
                ("https://x.test", "https://x.test", true)
            ])
            .is_empty()
        );
    }
}
