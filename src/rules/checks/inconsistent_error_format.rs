//! `inconsistent-error-format`: one host answers errors with JSON bodies of different
//! shapes on different endpoints, e.g. `{"error": …}` on one and `{"code": …, "message":
//! …}` or problem details (RFC 9457) on another. Stateful per host (Host header and server
//! address): the shapes come from different exchanges.
//!
//! - Fed by 4xx and 5xx responses whose media type is `application/json` or `…+json` and
//!   whose complete body (content codings undone) parses as a JSON object. Arrays,
//!   unparseable and non-JSON bodies (HTML error pages) are not compared.
//! - Shape: `problem+json` for `application/problem+json`, otherwise the set of top-level
//!   member names. Two shapes differ when one is problem+json and the other is not, or
//!   when neither member set contains the other (optional extra members do not count).
//! - Each observation is keyed by endpoint (method and path template, `GET /books/{id}`);
//!   one finding per host, when two different shapes occur on two different endpoints,
//!   reported on the exchange that completes the pair; evidence
//!   `{error} on GET /books/{id}, {code,message} on POST /orders`.
//!
//! State: per host at most [`MAX_SHAPES`] shapes (member names kept as hashes, at most
//! [`MAX_MEMBERS`] per object) with up to [`MAX_ENDPOINTS_PER_SHAPE`] endpoints each; at
//! most [`MAX_HOSTS`] hosts (least recently used dropped first).

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::{Exchange, content};
use crate::report::sarif::path_template;
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables, clip, media_essence, status};
use crate::rules::{ExchangeRef, Side};

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Hosts remembered at once.
const MAX_HOSTS: usize = 4096;
/// Distinct shapes kept per host.
const MAX_SHAPES: usize = 8;
/// Endpoints kept per shape.
const MAX_ENDPOINTS_PER_SHAPE: usize = 4;
/// Objects with more top-level members than this are not error formats worth comparing.
const MAX_MEMBERS: usize = 32;
/// Bytes of decoded body parsed.
const BODY_CAP: usize = 256 * 1024;

static SUMMARY: LazySummary = LazySummary::new(|| Summary::builtin("inconsistent-error-format"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(ErrorFormats {
        keys: Keyer::default(),
        hosts: tables.bounded(MAX_HOSTS),
    })
}

#[derive(Clone, PartialEq, Eq)]
enum Shape {
    Problem,
    /// Sorted member-name hashes.
    Members(Vec<u64>),
}

fn subset(a: &[u64], b: &[u64]) -> bool {
    a.iter().all(|x| b.binary_search(x).is_ok())
}

impl Shape {
    fn differs(&self, other: &Shape) -> bool {
        match (self, other) {
            (Shape::Problem, Shape::Problem) => false,
            (Shape::Members(a), Shape::Members(b)) => !subset(a, b) && !subset(b, a),
            _ => true,
        }
    }
}

struct Observed {
    shape: Shape,
    /// `{code,message}` or `problem+json`.
    shown: String,
    /// (endpoint key, `POST /orders`, exchange).
    endpoints: Vec<(u64, String, ExchangeRef)>,
}

#[derive(Default)]
struct HostState {
    shapes: Vec<Observed>,
    fired: bool,
}

struct ErrorFormats {
    keys: Keyer,
    hosts: Bounded<u64, HostState>,
}

impl ErrorFormats {
    /// The shape of the error body, and how to show it; `None` when not comparable.
    fn shape(&self, ex: &Exchange) -> Option<(Shape, String)> {
        let resp = ex.response.as_ref()?;
        let media = media_essence(resp.header("content-type")?)?;
        let (_, sub) = media.split_once('/')?;
        if media != "application/json" && !sub.ends_with("+json") {
            return None;
        }
        if resp.is_incomplete() || !resp.body.captured_all || resp.body.size == 0 {
            return None;
        }
        let (bytes, false) = content::decoded_body(resp, BODY_CAP).ok()? else {
            return None;
        };
        let serde_json::Value::Object(obj) = serde_json::from_slice(&bytes).ok()? else {
            return None;
        };
        if media == "application/problem+json" {
            return Some((Shape::Problem, String::from("problem+json")));
        }
        if obj.len() > MAX_MEMBERS {
            return None;
        }
        let mut names: Vec<&String> = obj.keys().collect();
        names.sort();
        let shown = clip(
            &format!(
                "{{{}}}",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            80,
        );
        let mut hashes: Vec<u64> = names.iter().map(|n| self.keys.key(n.as_str())).collect();
        hashes.sort_unstable();
        hashes.dedup();
        Some((Shape::Members(hashes), shown))
    }
}

impl StatefulCheck for ErrorFormats {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let Some(req) = &ex.request else { return };
        if !matches!(status(ex), Some(400..=599)) {
            return;
        }
        let Some(host) = self.keys.host(ex) else {
            return;
        };
        if self.hosts.peek(&host).is_some_and(|h| h.fired) {
            return;
        }
        let Some((shape, shown)) = self.shape(ex) else {
            return;
        };
        let (Some(method), Some(target)) = (req.method(), req.target()) else {
            return;
        };
        let label = clip(&format!("{method} {}", path_template(target)), 100);
        let endpoint = self.keys.key(&label);
        let state = self.hosts.get_or_insert_with(host, HostState::default);
        let earlier = state.shapes.iter().find_map(|o| {
            if !o.shape.differs(&shape) {
                return None;
            }
            o.endpoints
                .iter()
                .find(|(k, _, _)| *k != endpoint)
                .map(|(_, l, at)| (o.shown.clone(), l.clone(), *at))
        });
        if let Some((their_shape, their_label, their_at)) = earlier {
            state.fired = true;
            state.shapes.clear();
            let evidence = format!("{their_shape} on {their_label}, {shown} on {label}");
            out.push(StatefulHit {
                at: ExchangeRef::of(ex),
                message: SUMMARY.render(ex, &evidence),
                evidence,
                severity: None,
                side: Some(Side::Response),
                related: vec![their_at],
            });
            return;
        }
        match state.shapes.iter().position(|o| o.shape == shape) {
            Some(i) => {
                let o = &mut state.shapes[i];
                if o.endpoints.len() < MAX_ENDPOINTS_PER_SHAPE
                    && !o.endpoints.iter().any(|(k, _, _)| *k == endpoint)
                {
                    o.endpoints.push((endpoint, label, ExchangeRef::of(ex)));
                }
            }
            None if state.shapes.len() < MAX_SHAPES => state.shapes.push(Observed {
                shape,
                shown,
                endpoints: vec![(endpoint, label, ExchangeRef::of(ex))],
            }),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::stateful_evidence;

    fn run(toml: &str) -> Vec<String> {
        stateful_evidence(CHECK, toml)
    }

    fn err(method: &str, target: &str, ct: &str, body: &str) -> String {
        format!(
            "[[exchange]]\nrequest = \"{method} {target} HTTP/1.1\\nHost: h\\n\\n\"\nresponse = \"HTTP/1.1 400 Bad\\nContent-Type: {ct}\\nContent-Length: {}\\n\\n{}\"\n",
            body.len(),
            body.replace('"', "\\\"")
        )
    }

    #[test]
    fn different_shapes_on_different_endpoints() {
        let toml = [
            err("GET", "/b/1", "application/json", r#"{"error":"x"}"#),
            err(
                "POST",
                "/o",
                "application/json",
                r#"{"message":"m","code":1}"#,
            ),
            err("PUT", "/o", "application/json", r#"{"detail":"d"}"#),
        ]
        .concat();
        assert_eq!(
            run(&toml),
            ["{error} on GET /b/{id}, {code,message} on POST /o"]
        );
        let toml = [
            err(
                "GET",
                "/b/1",
                "application/problem+json",
                r#"{"title":"x"}"#,
            ),
            err("POST", "/o", "application/json", r#"{"title":"x"}"#),
        ]
        .concat();
        assert_eq!(
            run(&toml),
            ["problem+json on GET /b/{id}, {title} on POST /o"]
        );
    }

    #[test]
    fn near_misses() {
        let cases = [
            // extra members
            [
                err("GET", "/b/1", "application/json", r#"{"error":"x"}"#),
                err(
                    "POST",
                    "/o",
                    "application/json",
                    r#"{"error":"x","details":[]}"#,
                ),
            ]
            .concat(),
            // one endpoint only (ids collapse)
            [
                err("GET", "/b/1", "application/json", r#"{"error":"x"}"#),
                err("GET", "/b/2", "application/json", r#"{"code":1}"#),
            ]
            .concat(),
            // arrays, HTML and broken JSON
            [
                err("GET", "/b/1", "application/json", r#"[{"error":"x"}]"#),
                err("POST", "/o", "text/html", r#"<p>{"code":1}</p>"#),
                err("PUT", "/o", "application/json", r#"{"code":"#),
                err("PATCH", "/o", "application/json", r#"{"code":1}"#),
            ]
            .concat(),
        ];
        for toml in cases {
            assert!(run(&toml).is_empty(), "{toml}");
        }
    }
}
