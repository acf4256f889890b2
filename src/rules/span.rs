//! Where in a message a finding is: a header line, the start line, or bytes of the body.
//! The engine derives it for every finding from what it already knows — the message the
//! finding is about, the rule's category and the evidence, which names the field line as
//! sent (`Name: value`), the field that is missing (`no Location field`) or the content
//! (`58 bytes of content`, `not valid JSON at byte 12: …`) — so no rule states it itself.
//! The dashboard marks the span in the message; JSON output carries it as `span`.

use serde::{Deserialize, Serialize};

use super::Side;
use crate::http::{Exchange, Message};

/// The part of one message a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub side: Side,
    #[serde(flatten)]
    pub part: Part,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Part {
    /// The request line or status line (a finding about the message as such, e.g. one that
    /// lacks a field).
    StartLine,
    /// A header (or trailer) field line: its name as sent and its 0-based position among
    /// the message's field lines.
    Header { name: String, index: u32 },
    /// Bytes `start..end` of the content (decoded, as the dashboard's preview shows it).
    Body { start: u64, end: u64 },
}

/// Field names that frame a message's body (RFC 9112 §6).
const FRAMING: &[&str] = &["transfer-encoding", "content-length"];

/// The span of a finding of a rule in `category` with `evidence`, about `side` of `ex`
/// (`None`: the exchange as a whole, whose response is looked at first).
pub fn derive(ex: &Exchange, side: Option<Side>, category: &str, evidence: &str) -> Option<Span> {
    let sides: &[Side] = match side {
        Some(Side::Request) => &[Side::Request],
        Some(Side::Response) => &[Side::Response],
        None => &[Side::Response, Side::Request],
    };
    let message = |s: Side| match s {
        Side::Request => ex.request.as_ref(),
        Side::Response => ex.response.as_ref(),
    };
    let present = || sides.iter().copied().find(|s| message(*s).is_some());
    let ev = evidence.trim();
    // The field line the evidence quotes.
    if let Some((name, value)) = ev.split_once(':') {
        let name = name.trim();
        if is_token(name) {
            for &s in sides {
                if let Some(index) = message(s).and_then(|m| header_index(m, name, value.trim())) {
                    return Some(header_span(s, message(s), index));
                }
            }
        }
    }
    // A field named alone.
    if is_token(ev) {
        for &s in sides {
            if let Some(index) = message(s).and_then(|m| header_index(m, ev, "")) {
                return Some(header_span(s, message(s), index));
            }
        }
    }
    // A missing field: the message as such.
    if ev.starts_with("no ") && ev.ends_with(" field") {
        return present().map(|side| Span {
            side,
            part: Part::StartLine,
        });
    }
    // The content.
    if let Some(rest) = ev.strip_prefix("not valid JSON at byte ") {
        let at: Option<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok());
        if let (Some(at), Some(side)) = (at, present()) {
            return Some(Span {
                side,
                part: Part::Body {
                    start: at,
                    end: at + 1,
                },
            });
        }
    }
    if ev.ends_with(" bytes of content") || category == "content" {
        return present().and_then(|side| {
            let size = message(side)?.body.size;
            (size > 0).then_some(Span {
                side,
                part: Part::Body {
                    start: 0,
                    end: size,
                },
            })
        });
    }
    // Framing: the first field that frames the body.
    if category == "framing" {
        for &s in sides {
            if let Some(m) = message(s)
                && let Some(index) = m
                    .headers
                    .iter()
                    .position(|h| FRAMING.iter().any(|f| h.name.eq_ignore_ascii_case(f)))
            {
                return Some(header_span(s, Some(m), index));
            }
        }
    }
    // Status rules are about the status line.
    if category.starts_with("status") {
        return message(Side::Response)
            .filter(|_| sides.contains(&Side::Response))
            .map(|_| Span {
                side: Side::Response,
                part: Part::StartLine,
            });
    }
    None
}

fn header_span(side: Side, m: Option<&Message>, index: usize) -> Span {
    let name = m
        .and_then(|m| m.headers.get(index))
        .map(|h| h.name.clone())
        .unwrap_or_default();
    Span {
        side,
        part: Part::Header {
            name,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        },
    }
}

/// The line of field `name`, preferring one whose value is `value` (as quoted in evidence,
/// which may be cut).
fn header_index(m: &Message, name: &str, value: &str) -> Option<usize> {
    let mut first = None;
    for (i, h) in m.headers.iter().enumerate() {
        if !h.name.eq_ignore_ascii_case(name) {
            continue;
        }
        if h.value.trim() == value {
            return Some(i);
        }
        first.get_or_insert(i);
    }
    first
}

/// An RFC 9110 token (a field name), so that "not valid JSON at byte 3: …" is not one.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::examples;

    /// The exchange of `request` and `response` written as rule examples are (`\n` line
    /// ends in the head).
    fn exchange(request: &str, response: &str) -> Exchange {
        let text =
            format!("kind = \"bad\"\nrequest = '''\n{request}'''\nresponse = '''\n{response}'''\n");
        let file: crate::rules::file::ExampleFile = toml::from_str(&text).expect("an example");
        examples::exchanges(&file).remove(0)
    }

    #[test]
    fn spans_follow_the_evidence() {
        let ex = exchange(
            "POST /books HTTP/1.1\nHost: a\nContent-Type: application/json\nContent-Length: 3\n\n{x}",
            "HTTP/1.1 201 Created\nServer: s/1\nContent-Length: 0\n\n",
        );
        let at = |side, cat: &str, ev: &str| derive(&ex, side, cat, ev);
        assert_eq!(
            at(Some(Side::Response), "security", "Server: s/1"),
            Some(Span {
                side: Side::Response,
                part: Part::Header {
                    name: "Server".into(),
                    index: 0
                }
            })
        );
        assert_eq!(
            at(None, "status-headers", "no Location field").map(|s| s.part),
            Some(Part::StartLine)
        );
        assert_eq!(
            at(
                Some(Side::Request),
                "content",
                "not valid JSON at byte 1: key"
            )
            .map(|s| s.part),
            Some(Part::Body { start: 1, end: 2 })
        );
        assert_eq!(
            at(Some(Side::Request), "content", "3 bytes of content").map(|s| s.part),
            Some(Part::Body { start: 0, end: 3 })
        );
        assert_eq!(
            at(Some(Side::Request), "framing", "both framings").map(|s| s.part),
            Some(Part::Header {
                name: "Content-Length".into(),
                index: 2
            })
        );
        assert_eq!(at(Some(Side::Request), "cors", "something else"), None);
        assert_eq!(
            at(Some(Side::Request), "header-syntax", "Content-Type").map(|s| s.part),
            Some(Part::Header {
                name: "Content-Type".into(),
                index: 1
            })
        );
        let json = serde_json::to_string(&at(Some(Side::Response), "x", "Server: s/1"))
            .unwrap_or_default();
        assert_eq!(
            json,
            r#"{"side":"response","part":"header","name":"Server","index":0}"#
        );
    }
}
