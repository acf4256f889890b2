//! `redirect-loop`: a client following redirects came back to a URL already visited in the
//! same chain and was redirected again, or followed more than [`MAX_REDIRECTS`] redirects
//! in a row (RFC 9110 §15.4). Stateful per client (address and User-Agent): each hop is a
//! separate exchange.
//!
//! - A 3xx (other than 304) whose Location resolves (RFC 3986 §5, against the request URL
//!   with the scheme of the transport and the Host header) to an http(s) URL starts or
//!   extends the client's chain.
//! - The client's next request continues the chain when it asks for exactly that URL
//!   within [`FOLLOW_SECS`] of the redirect response; any other request from the client
//!   ends it, and so does a continuation answered with anything but a redirect. Other
//!   clients' requests do not touch it.
//! - Reported once per chain, on the exchange where it happens: a continuation whose URL is
//!   already in the chain and that is redirected again (a login flow that comes back to the
//!   first page and gets it is not a loop), or the 11th redirect. Evidence lists the chain:
//!   `GET /a -> /b -> /a`.
//! - A redirect to its own URL that sets no cookie is a loop by itself, reported on that
//!   exchange without waiting for the follow-up (which the capture may not hold): the
//!   client would ask for the same URL again and get the same answer. Only when the client
//!   repeats the method: a GET or HEAD, or a 307/308 (POST → 303 → GET of the same URL is
//!   the Post/Redirect/Get pattern, not a loop).
//! - A redirect to its own URL that sets a cookie is the cookie dance of some sites: the
//!   revisit counts only if the follow-up is redirected to itself again.
//!
//! State: one chain per client (at most [`MAX_STEPS`] hops kept for evidence, URLs as
//! hashes), at most [`MAX_CLIENTS`] clients (least recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::Exchange;
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables, Url, clip, request_url, resolve, status};
use crate::rules::{ExchangeRef, Side};
use crate::time::Timestamp;

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Clients with a chain in progress at once.
const MAX_CLIENTS: usize = 10_000;
/// More redirects in a row than this is an over-long chain (browsers stop at 20, most
/// libraries at 10 or fewer).
const MAX_REDIRECTS: usize = 10;
/// Hops kept per chain for evidence.
const MAX_STEPS: usize = MAX_REDIRECTS + 1;
/// A follow-up later than this after the redirect is a new navigation, not a hop.
const FOLLOW_SECS: f64 = 10.0;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("redirect-loop"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(RedirectLoop {
        keys: Keyer::default(),
        chains: tables.bounded(MAX_CLIENTS),
    })
}

struct Step {
    url: u64,
    shown: String,
    at: ExchangeRef,
}

struct Chain {
    /// `http://host` of the first hop, to show later hops on the same origin as paths.
    origin: String,
    steps: Vec<Step>,
    redirects: usize,
    /// Where the last redirect points, and until when the client may follow it.
    next: u64,
    redirected_at: Timestamp,
    /// The last redirect pointed to its own URL and set a cookie.
    cookie_dance: bool,
    fired: bool,
}

struct RedirectLoop {
    keys: Keyer,
    chains: Bounded<u64, Chain>,
}

fn origin(u: &Url) -> String {
    clip(&format!("{}://{}", u.scheme, u.authority), 200)
}

fn shown(u: &Url, first_origin: &str) -> String {
    if origin(u) == first_origin {
        clip(&u.path, 80)
    } else {
        clip(&u.to_string(), 100)
    }
}

impl StatefulCheck for RedirectLoop {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let Some(req) = &ex.request else { return };
        let Some(client) = self.keys.client(ex) else {
            return;
        };
        // Any request from the client ends its chain unless it continues it.
        let previous = self.chains.remove(&client);
        let Some(url) = request_url(ex) else { return };
        let url_key = self.keys.key(&url);
        let chain = previous.filter(|c| {
            c.next == url_key
                && req.first_ts >= c.redirected_at
                && req.first_ts.secs_since(c.redirected_at) <= FOLLOW_SECS
        });
        let Some(resp) = &ex.response else { return };
        let redirect = matches!(status(ex), Some(300..=399)) && status(ex) != Some(304);
        let Some(target) = redirect
            .then(|| resp.header("location"))
            .flatten()
            .and_then(|l| resolve(&url, l))
        else {
            return;
        };
        let target_key = self.keys.key(&target);
        let self_redirect = target_key == url_key;
        let mut chain = match chain {
            Some(mut c) => {
                let revisit = c.steps.iter().any(|s| s.url == url_key);
                let dance = c.cookie_dance && c.steps.last().is_some_and(|s| s.url == url_key);
                let looped = revisit && (!dance || self_redirect);
                c.redirects += 1;
                if !c.fired && (looped || c.redirects > MAX_REDIRECTS) {
                    c.fired = true;
                    let hops: Vec<&str> = c.steps.iter().map(|s| s.shown.as_str()).collect();
                    let mut evidence =
                        format!("{} {}", req.method().unwrap_or("GET"), hops.join(" -> "));
                    if c.redirects > c.steps.len() + 1 {
                        evidence.push_str(" -> …");
                    }
                    evidence.push_str(" -> ");
                    evidence.push_str(&shown(&url, &c.origin));
                    if !looped {
                        evidence = format!("{} redirects: {evidence}", c.redirects);
                    }
                    out.push(StatefulHit {
                        at: ExchangeRef::of(ex),
                        message: SUMMARY.render(ex, &evidence),
                        evidence,
                        severity: None,
                        side: Some(Side::Response),
                        related: c.steps.iter().map(|s| s.at).collect(),
                    });
                }
                if c.steps.len() < MAX_STEPS {
                    let s = shown(&url, &c.origin);
                    c.steps.push(Step {
                        url: url_key,
                        shown: s,
                        at: ExchangeRef::of(ex),
                    });
                }
                c
            }
            None => {
                let o = origin(&url);
                Chain {
                    steps: vec![Step {
                        url: url_key,
                        shown: shown(&url, &o),
                        at: ExchangeRef::of(ex),
                    }],
                    origin: o,
                    redirects: 1,
                    next: 0,
                    redirected_at: Timestamp::ZERO,
                    cookie_dance: false,
                    fired: false,
                }
            }
        };
        let same_request_again = matches!(req.method(), Some("GET" | "HEAD"))
            || matches!(status(ex), Some(307 | 308));
        if self_redirect
            && same_request_again
            && !resp.has_header("set-cookie")
            && !chain.fired
        {
            chain.fired = true;
            let hops: Vec<&str> = chain.steps.iter().map(|s| s.shown.as_str()).collect();
            let evidence = format!(
                "{} {} -> {}",
                req.method().unwrap_or("GET"),
                hops.join(" -> "),
                shown(&url, &chain.origin)
            );
            let earlier = chain.steps.len().saturating_sub(1);
            out.push(StatefulHit {
                at: ExchangeRef::of(ex),
                message: SUMMARY.render(ex, &evidence),
                evidence,
                severity: None,
                side: Some(Side::Response),
                related: chain.steps[..earlier].iter().map(|s| s.at).collect(),
            });
        }
        chain.next = target_key;
        chain.redirected_at = resp.last_ts;
        chain.cookie_dance = self_redirect && resp.has_header("set-cookie");
        self.chains.insert(client, chain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::stateful_evidence;

    fn run(toml: &str) -> Vec<String> {
        stateful_evidence(CHECK, toml)
    }

    fn hop(target: &str, status: &str, location: &str, extra: &str) -> String {
        let loc = if location.is_empty() {
            String::new()
        } else {
            format!("Location: {location}\\n")
        };
        format!(
            "[[exchange]]\nrequest = \"GET {target} HTTP/1.1\\nHost: w.example\\n\\n\"\nresponse = \"HTTP/1.1 {status}\\n{loc}{extra}Content-Length: 0\\n\\n\"\n"
        )
    }

    #[test]
    fn a_loop_through_another_page() {
        let toml = [
            hop("/account", "302 Found", "/login?next=/account", ""),
            hop(
                "/login?next=/account",
                "302 Found",
                "http://W.example:80/account",
                "",
            ),
            hop("/account", "302 Found", "/login?next=/account", ""),
            hop("/login?next=/account", "302 Found", "/account", ""),
        ]
        .concat();
        assert_eq!(
            run(&toml),
            ["GET /account -> /login?next=/account -> /account"]
        );
    }

    #[test]
    fn over_long_chains() {
        let mut toml: String = (0..11)
            .map(|i| hop(&format!("/{i}"), "301 Moved", &format!("/{}", i + 1), ""))
            .collect();
        toml.push_str(&hop("/11", "200 OK", "", ""));
        let hits = run(&toml);
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0].starts_with("11 redirects: GET /0 -> /1 -> "),
            "{hits:?}"
        );
        assert!(hits[0].ends_with("-> /9 -> /10"), "{hits:?}");
    }

    #[test]
    fn near_misses() {
        let cases = [
            // back to the first page, which is now served
            [
                hop("/app", "302 Found", "/sso", ""),
                hop("/sso", "302 Found", "/app", ""),
                hop("/app", "200 OK", "", ""),
            ]
            .concat(),
            // a self-redirect that sets a cookie, then elsewhere
            [
                hop("/a", "302 Found", "/a", "Set-Cookie: s=1\\n"),
                hop("/a", "302 Found", "/b", ""),
                hop("/b", "200 OK", "", ""),
            ]
            .concat(),
            // the follow-up is not seen: another request ends the chain
            [
                hop("/a", "302 Found", "/b", ""),
                hop("/other", "200 OK", "", ""),
                hop("/a", "302 Found", "/b", ""),
            ]
            .concat(),
            // 304 is not a redirect
            [
                hop("/a", "304 Not Modified", "/a", ""),
                hop("/a", "304 Not Modified", "/a", ""),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
        let self_loop = [
            hop("/a", "302 Found", "/a", "Set-Cookie: s=1\\n"),
            hop("/a", "302 Found", "/a", "Set-Cookie: s=1\\n"),
        ]
        .concat();
        assert_eq!(run(&self_loop), ["GET /a -> /a"]);
    }

    #[test]
    fn a_redirect_to_its_own_url_is_a_loop_at_once() {
        // The follow-up is not in the capture: the redirect alone says it.
        assert_eq!(run(&hop("/a", "302 Found", "/a", "")), ["GET /a -> /a"]);
        assert_eq!(
            run(&hop("/a?x=1", "301 Moved", "http://w.example/a?x=1", "")),
            ["GET /a?x=1 -> /a?x=1"]
        );
        // Seen followed: still one finding.
        let twice = [
            hop("/a", "302 Found", "/a", ""),
            hop("/a", "302 Found", "/a", ""),
        ]
        .concat();
        assert_eq!(run(&twice), ["GET /a -> /a"]);
        // At the end of a chain: the whole chain as evidence.
        let chain = [
            hop("/x", "302 Found", "/a", ""),
            hop("/a", "302 Found", "/a", ""),
        ]
        .concat();
        assert_eq!(run(&chain), ["GET /x -> /a -> /a"]);
    }

    #[test]
    fn post_redirect_get_to_the_same_url_is_not_a_loop() {
        let prg = "[[exchange]]\nrequest = \"POST /form HTTP/1.1\\nHost: w.example\\nContent-Length: 0\\n\\n\"\nresponse = \"HTTP/1.1 303 See Other\\nLocation: /form\\nContent-Length: 0\\n\\n\"\n";
        assert!(run(prg).is_empty());
        let repost = prg.replace("303 See Other", "307 Temporary Redirect");
        assert_eq!(run(&repost), ["POST /form -> /form"]);
        // Another URL (a query differs) is no loop.
        assert!(run(&hop("/a", "302 Found", "/a?page=2", "")).is_empty());
    }

    #[test]
    fn late_follow_ups_start_over() {
        let toml = r#"
[[exchange]]
at = 0.0
request = "GET /a HTTP/1.1\nHost: w\n\n"
response = "HTTP/1.1 302 Found\nLocation: /b\nContent-Length: 0\n\n"
[[exchange]]
at = 20.0
request = "GET /b HTTP/1.1\nHost: w\n\n"
response = "HTTP/1.1 302 Found\nLocation: /a\nContent-Length: 0\n\n"
[[exchange]]
at = 21.0
request = "GET /a HTTP/1.1\nHost: w\n\n"
response = "HTTP/1.1 302 Found\nLocation: /b\nContent-Length: 0\n\n"
"#;
        assert!(run(toml).is_empty());
    }
}
