//! Summary templates: `"201 Created for {method} {path} has no Location header"`, parsed
//! once at load time and rendered per finding.

use super::Subject;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Method,
    Target,
    Path,
    Host,
    Status,
    Reason,
    Side,
    Evidence,
    RequestHeader(String),
    ResponseHeader(String),
    Header(String),
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Part>);

/// Characters of a request or response value (target, header, reason …) in a message.
pub const VALUE_MAX: usize = 200;
/// Characters of the evidence in a message (checks clip what they quote themselves).
pub const EVIDENCE_MAX: usize = 1000;

/// Appends at most `max` characters of `v`, and `…` when cut.
pub(crate) fn push_clipped(out: &mut String, v: &str, max: usize) {
    match v.char_indices().nth(max) {
        Some((i, _)) => {
            out.push_str(&v[..i]);
            out.push('…');
        }
        None => out.push_str(v),
    }
}

impl Template {
    pub fn parse(s: &str) -> Template {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let name = &rest[open + 1..open + close];
            parts.push(match name {
                "method" | "request.method" => Part::Method,
                "target" | "request.target" => Part::Target,
                "path" | "request.path" => Part::Path,
                "host" | "request.host" => Part::Host,
                "status" | "response.status" => Part::Status,
                "reason" | "response.reason" => Part::Reason,
                "side" => Part::Side,
                "evidence" => Part::Evidence,
                n => {
                    if let Some(h) = n.strip_prefix("request.header.") {
                        Part::RequestHeader(h.to_string())
                    } else if let Some(h) = n.strip_prefix("response.header.") {
                        Part::ResponseHeader(h.to_string())
                    } else if let Some(h) = n.strip_prefix("header.") {
                        Part::Header(h.to_string())
                    } else {
                        Part::Unknown(n.to_string())
                    }
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Template(parts)
    }

    /// Placeholders the renderer does not know (reported when rules load).
    pub fn unknown(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|p| match p {
                Part::Unknown(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The template with every value in full (conditions compare it with a field).
    pub fn render(&self, s: &Subject<'_>) -> String {
        self.fill(s, None, usize::MAX)
    }

    /// A finding's message: each value at most [`VALUE_MAX`] characters ([`EVIDENCE_MAX`]
    /// for the evidence), cut with `…`. The exchange keeps the values whole; a message
    /// that quoted a 60 KiB request-target in full would cost that much in every finding
    /// and in every remembered message of a stateful rule.
    pub fn render_with(&self, s: &Subject<'_>, evidence: Option<&str>) -> String {
        self.fill(s, evidence, VALUE_MAX)
    }

    fn fill(&self, s: &Subject<'_>, evidence: Option<&str>, max: usize) -> String {
        let mut out = String::new();
        let req = s.request();
        let resp = s.response();
        for part in &self.0 {
            let value: Option<String> = match part {
                Part::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Part::Method => req.and_then(|m| m.method()).map(str::to_string),
                Part::Target => req.and_then(|m| m.target()).map(str::to_string),
                Part::Path => req
                    .and_then(|m| m.target())
                    .map(|t| t.split(['?', '#']).next().unwrap_or(t).to_string()),
                Part::Host => req.and_then(|m| m.host()).map(str::to_string),
                Part::Status => resp.and_then(|m| m.status()).map(|c| c.to_string()),
                Part::Reason => resp.and_then(|m| m.reason()).map(str::to_string),
                Part::Side => s.side_name().map(str::to_string),
                Part::Evidence => evidence.map(str::to_string),
                Part::RequestHeader(h) => req.and_then(|m| m.combined(h)),
                Part::ResponseHeader(h) => resp.and_then(|m| m.combined(h)),
                Part::Header(h) => s.subject_message().and_then(|m| m.combined(h)),
                Part::Unknown(_) => None,
            };
            let max = if matches!(part, Part::Evidence) {
                max.max(EVIDENCE_MAX)
            } else {
                max
            };
            match value {
                Some(v) if !v.is_empty() => push_clipped(&mut out, &v, max),
                _ => out.push('-'),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::BodyCache;
    use crate::rules::syntax::testing::exchanges;

    #[test]
    fn messages_clip_long_values_and_conditions_see_them_whole() {
        let path = format!("/orders/{}", "x".repeat(20_000));
        let toml = format!(
            "[[exchange]]\nrequest = \"POST {path} HTTP/1.1\\nHost: a\\nContent-Length: 0\\n\\n\"\n\
             response = \"HTTP/1.1 201 Created\\nContent-Length: 0\\n\\n\"\n"
        );
        let ex = exchanges(&toml).remove(0);
        let bodies = BodyCache::default();
        let s = Subject::new(&ex, None, &bodies);
        let tpl = Template::parse("{status} for {method} {path}: {evidence}");
        let long_evidence = "e".repeat(5_000);
        let message = tpl.render_with(&s, Some(&long_evidence));
        let clipped_path: String = path.chars().take(VALUE_MAX).collect();
        let clipped_evidence = "e".repeat(EVIDENCE_MAX);
        assert_eq!(
            message,
            format!("201 for POST {clipped_path}…: {clipped_evidence}…")
        );
        assert_eq!(Template::parse("{path}").render(&s), path);
        // Short values are left alone.
        assert_eq!(
            tpl.render_with(&s, Some("short")),
            format!("201 for POST {clipped_path}…: short")
        );
    }
}
