//! The rule file format (`rules/<category>/<id>.toml`, see rules/FORMAT.md) as data.

use serde::Deserialize;

use super::Severity;

/// One rule file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub id: String,
    pub severity: Severity,
    pub category: String,
    pub scope: String,
    pub summary: String,
    pub why: String,
    #[serde(default)]
    pub refs: Vec<String>,
    #[serde(default)]
    pub equivalents: toml::Table,
    #[serde(default)]
    pub check: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What the rule reads besides heads: `body` (content), `framing` (how the message was
    /// delimited), `history` (earlier exchanges), `oversized-head` (also judged on a head
    /// cut at the head-size cap). Derived from `when`; a `check` that reads content or
    /// framing must say so here.
    #[serde(default)]
    pub reads: Vec<String>,
    /// The rule is about HTTP/1 message framing: it never applies to HTTP/2 exchanges.
    #[serde(default)]
    pub http1_only: bool,
    #[serde(default)]
    pub when: Option<toml::Table>,
    #[serde(default)]
    pub escalate: Vec<EscalateFile>,
    #[serde(default)]
    pub example: Vec<ExampleFile>,
    /// Run scope: the counter watched and its threshold.
    #[serde(default)]
    pub run: Option<RunFile>,
}

/// A run-scope rule's `[run]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// A counter of the run (see rules/FORMAT.md, "Run scope").
    pub metric: String,
    /// The rule fires when the counter is at least this.
    pub threshold: u64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateFile {
    pub severity: Severity,
    pub when: toml::Table,
}

/// A `bad` or `good` example: one connection's exchanges as raw HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleFile {
    pub kind: ExampleKind,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub transport: Option<String>,
    /// `"HTTP/2"`: messages are header lists (`:method: GET`, `name: value`, a blank line,
    /// the body) sent as HTTP/2 frames with prior knowledge.
    #[serde(default)]
    pub version: Option<String>,
    /// Server address, e.g. `"192.0.2.10:443"` (default port 80, or 443 for TLS).
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub interim: Vec<String>,
    #[serde(default)]
    pub raw: bool,
    #[serde(default)]
    pub exchange: Vec<ExampleExchange>,
    /// Run scope: the run's counters, by metric name.
    #[serde(default)]
    pub counters: Option<std::collections::BTreeMap<String, u64>>,
    /// The response's body is generated: `repeat` written `count` times, gzip-compressed
    /// (TOML strings cannot hold binary bodies such as a compression bomb). The response
    /// text is then a head only; `Content-Length` is added unless it frames itself.
    #[serde(default)]
    pub response_gzip: Option<GzipBody>,
}

/// A generated gzip body: `repeat` written `count` times, then compressed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GzipBody {
    pub repeat: String,
    pub count: usize,
}

impl GzipBody {
    /// The compressed bytes.
    pub fn bytes(&self) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..self.count {
            // Writing to a Vec cannot fail.
            let _ = e.write_all(self.repeat.as_bytes());
        }
        e.finish().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExampleKind {
    Bad,
    Good,
}

/// One exchange of a several-exchange example (stateful rules).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleExchange {
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub interim: Vec<String>,
    #[serde(default)]
    pub raw: bool,
    #[serde(default)]
    pub connection: u32,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub at: Option<f64>,
}
