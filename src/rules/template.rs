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

    pub fn render(&self, s: &Subject<'_>) -> String {
        self.render_with(s, None)
    }

    pub fn render_with(&self, s: &Subject<'_>, evidence: Option<&str>) -> String {
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
            match value {
                Some(v) if !v.is_empty() => out.push_str(&v),
                _ => out.push('-'),
            }
        }
        out
    }
}
