//! Stage 5: the rule engine. Rules are data (`rules/<category>/<id>.toml`, see
//! rules/FORMAT.md): they load and compile once at start-up; each exchange is then checked
//! against the rules that can apply to it. Rules that data cannot express name a check
//! written in Rust under [`checks`]; stateful checks see a bounded history of a connection,
//! host or client and run in one place, in output order.

pub mod checks;
mod condition;
pub mod examples;
pub mod file;
pub mod run;
pub mod span;
pub mod syntax;
mod template;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::capture::FrameRef;
use crate::http::{Exchange, JsonVerdict, Message, content};
pub use checks::{CheckInput, Hit, StatefulCheck, StatefulHit};
use condition::{Cond, CondReads, Which};
pub use file::{ExampleFile, ExampleKind, RuleFile};
use syntax::stateful::Tables;
pub use template::{Template, VALUE_MAX};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// What one evaluation of a rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Request,
    Response,
    Message,
    Exchange,
    Connection,
    Host,
    Client,
    /// The run as a whole: counters with a threshold (`[run]`), one finding per run.
    Run,
}

impl Scope {
    fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "request" => Scope::Request,
            "response" => Scope::Response,
            "message" => Scope::Message,
            "exchange" => Scope::Exchange,
            "connection" => Scope::Connection,
            "host" => Scope::Host,
            "client" => Scope::Client,
            "run" => Scope::Run,
            _ => return None,
        })
    }

    pub fn is_stateful(self) -> bool {
        matches!(self, Scope::Connection | Scope::Host | Scope::Client)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cannot read rule file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rule file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("rule {rule}: condition key `{key}`: {message}")]
    Condition {
        rule: String,
        key: String,
        message: String,
    },
    #[error("rule {rule}: {message}")]
    Invalid { rule: String, message: String },
}

/// Which message a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Request,
    Response,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub severity: Severity,
    pub category: String,
    pub scope: Scope,
    pub summary: Template,
    pub summary_text: String,
    pub why: String,
    pub refs: Vec<String>,
    pub equivalents: Vec<(String, String)>,
    pub check_name: Option<String>,
    pub enabled: bool,
    /// About HTTP/1 framing: skipped on HTTP/2 exchanges.
    pub http1_only: bool,
    pub examples: Vec<ExampleFile>,
    /// Run scope: the counter and threshold.
    pub run: Option<run::RunCheck>,
    /// Where the rule was loaded from (`builtin:` for the shipped catalogue).
    pub source: String,
    cond: Option<Cond>,
    escalate: Vec<(Severity, Cond)>,
    check: Option<checks::CheckKind>,
    /// What the rule reads, so the engine can skip it where that was not seen whole.
    pub reads: Reads,
}

/// What a rule reads of an exchange. Every rule reads the heads of the messages it looks
/// at; the engine does not evaluate a rule on a message whose head was not seen whole,
/// nor a rule that reads content or framing on a message whose content was lost, cut or
/// capped (framing: lost or cut only, a cap does not hide where a message ended).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reads {
    /// The request, besides the message in scope.
    pub request: bool,
    /// The response, besides the message in scope.
    pub response: bool,
    pub body: bool,
    /// Of the content, only its size and JSON validity: where the kept bytes were capped,
    /// the http stage's verdict over the whole content is enough.
    pub body_verdict_enough: bool,
    pub framing: bool,
    pub history: bool,
    /// Also judges a head the parser gave up on because it passed the head-size cap (the
    /// `oversized-head` anomaly): what was seen of it is already past every size limit.
    pub oversized_head: bool,
}

impl Reads {
    fn of(
        scope: Scope,
        cond: Option<&Cond>,
        has_check: bool,
        declared: &[String],
    ) -> Result<Reads, String> {
        let mut c = CondReads::default();
        if let Some(cond) = cond {
            cond.reads(&mut c);
        }
        let mut reads = Reads {
            request: c.request || matches!(scope, Scope::Request | Scope::Exchange),
            response: c.response || matches!(scope, Scope::Response | Scope::Exchange),
            body: c.content,
            body_verdict_enough: c.content && !c.content_bytes,
            framing: c.framing,
            history: scope.is_stateful(),
            oversized_head: false,
        };
        if has_check {
            // Code may look at either message.
            reads.request = true;
            reads.response = true;
        }
        for d in declared {
            match d.as_str() {
                "head" => {}
                "body" => {
                    reads.body = true;
                    reads.body_verdict_enough = false;
                }
                "framing" => reads.framing = true,
                "history" => reads.history = true,
                "oversized-head" => reads.oversized_head = true,
                other => {
                    return Err(format!(
                        "reads {other:?}: expected head, body, framing, history or oversized-head"
                    ));
                }
            }
        }
        Ok(reads)
    }

    /// Whether `m` shows all this rule needs of it.
    fn seen_whole(&self, m: &Message) -> bool {
        if !m.head_complete {
            return self.oversized_head
                && !self.body
                && !self.framing
                && m.anomalies
                    .iter()
                    .any(|a| a.kind == crate::http::AnomalyKind::OversizedHead);
        }
        if (self.body || self.framing) && m.is_incomplete() {
            return false;
        }
        !self.body
            || m.body.captured_all
            || self.body_verdict_enough
                && m.body.json.as_ref().and_then(JsonVerdict::valid).is_some()
    }
}

impl Rule {
    fn from_file(f: RuleFile, source: String) -> Result<Rule, RuleError> {
        let id = f.id.clone();
        let invalid = |message: String| RuleError::Invalid {
            rule: id.clone(),
            message,
        };
        if f.id.is_empty()
            || !f
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(format!("id {:?} is not kebab-case", f.id)));
        }
        let scope = Scope::parse(&f.scope)
            .ok_or_else(|| invalid(format!("unknown scope {:?}", f.scope)))?;
        let run = match (&f.run, scope) {
            (Some(r), Scope::Run) => {
                if f.when.is_some() || f.check.is_some() {
                    return Err(invalid(
                        "a run rule has a [run] table, not [when] or a check".into(),
                    ));
                }
                if let Some(bad) = run::unknown_placeholders(&f.summary).first() {
                    return Err(invalid(format!(
                        "summary uses {{{bad}}}; a run rule has {{count}}, {{threshold}}, {{evidence}}"
                    )));
                }
                let metric = run::Metric::from_name(&r.metric)
                    .ok_or_else(|| invalid(format!("unknown run metric {:?}", r.metric)))?;
                Some(run::RunCheck {
                    metric,
                    threshold: r.threshold,
                })
            }
            (None, Scope::Run) => return Err(invalid("a run rule needs a [run] table".into())),
            (Some(_), _) => return Err(invalid("[run] is for scope = \"run\"".into())),
            (None, _) => None,
        };
        let cond = f
            .when
            .as_ref()
            .map(|t| condition::compile(&f.id, t))
            .transpose()?;
        let escalate = f
            .escalate
            .iter()
            .map(|e| Ok((e.severity, condition::compile(&f.id, &e.when)?)))
            .collect::<Result<Vec<_>, RuleError>>()?;
        let check =
            match &f.check {
                Some(name) => Some(checks::lookup(name).ok_or_else(|| {
                    invalid(format!("names check {name:?}, which does not exist"))
                })?),
                None => None,
            };
        if scope.is_stateful() && !matches!(check, Some(checks::CheckKind::Stateful(_))) {
            return Err(invalid("a stateful rule needs a stateful check".into()));
        }
        if cond.is_none() && check.is_none() && run.is_none() {
            return Err(invalid(
                "has neither a condition ([when]) nor a check".into(),
            ));
        }
        let summary = Template::parse(&f.summary);
        if let Some(bad) = summary.unknown().first()
            && run.is_none()
        {
            return Err(invalid(format!(
                "summary uses unknown placeholder {{{bad}}}"
            )));
        }
        let reads = Reads::of(scope, cond.as_ref(), check.is_some(), &f.reads).map_err(invalid)?;
        let equivalents = f
            .equivalents
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect();
        Ok(Rule {
            id: f.id,
            severity: f.severity,
            category: f.category,
            scope,
            summary,
            summary_text: f.summary,
            why: f.why,
            refs: f.refs,
            equivalents,
            check_name: f.check,
            enabled: f.enabled,
            http1_only: f.http1_only,
            examples: f.example,
            run,
            source,
            cond,
            escalate,
            check,
            reads,
        })
    }

    /// Whether every message this rule reads (in scope `side`) was seen whole enough to be
    /// judged: rules never judge what was not seen.
    fn sees_whole(&self, ex: &Exchange, side: Option<Side>) -> bool {
        let read = |m: Option<&Message>, wanted: bool| {
            !wanted || m.is_none_or(|m| self.reads.seen_whole(m))
        };
        read(
            ex.request.as_ref(),
            self.reads.request || side == Some(Side::Request),
        ) && read(
            ex.response.as_ref(),
            self.reads.response || side == Some(Side::Response),
        )
    }

    /// Cheap rejection before any condition is evaluated.
    fn may_apply(&self, ex: &Exchange) -> bool {
        if self.http1_only && ex.is_http2() {
            return false;
        }
        let Some(cond) = &self.cond else { return true };
        if let Some(set) = cond.required_status()
            && !ex
                .response
                .as_ref()
                .and_then(Message::status)
                .is_some_and(|s| set.contains(s))
        {
            return false;
        }
        if let Some(methods) = cond.required_methods()
            && !ex
                .request
                .as_ref()
                .and_then(Message::method)
                .is_some_and(|m| methods.iter().any(|x| x == m))
        {
            return false;
        }
        true
    }
}

/// What a rule needs that only the bytes as sent can give, and so what an exchange read from
/// a HAR file (headers and decoded content, no wire bytes) cannot tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireNeed {
    /// Message framing and line syntax (the `framing` category).
    Framing,
    /// Parse anomalies of the head or body as sent (obs-fold, bare LF, bad names …).
    ParseAnomaly,
    /// The raw head bytes (status-code digits as sent, header section size).
    RawHead,
    /// The connection's real message order: 1xx responses, pairing, persistence.
    Connection,
}

impl WireNeed {
    pub fn describe(self) -> &'static str {
        match self {
            WireNeed::Framing => "message framing and line syntax",
            WireNeed::ParseAnomaly => "parse anomalies of the bytes as sent",
            WireNeed::RawHead => "the raw head bytes",
            WireNeed::Connection => "the connection's own message order (1xx, pairing, close)",
        }
    }
}

impl Rule {
    /// What this rule reads that only wire bytes give, if anything.
    pub fn wire_need(&self) -> Option<WireNeed> {
        const RAW_HEAD: &[&str] = &["invalid_status_code", "oversized_header_section"];
        const CONNECTION: &[&str] = &[
            "interim_after_final",
            "unanswered_request",
            "unmatched_response",
            "connection_close_ignored",
        ];
        let check = self.check_name.as_deref().unwrap_or("");
        if self.category == "framing" {
            Some(WireNeed::Framing)
        } else if RAW_HEAD.contains(&check) {
            Some(WireNeed::RawHead)
        } else if CONNECTION.contains(&check) {
            Some(WireNeed::Connection)
        } else if self.reads.framing {
            Some(WireNeed::ParseAnomaly)
        } else {
            None
        }
    }
}

/// Whether `rule` can judge `ex`: every rule can judge an exchange parsed from wire bytes;
/// on one read from a HAR file, rules that need the bytes as sent are skipped (and counted).
pub fn applies_to(rule: &Rule, ex: &Exchange) -> bool {
    ex.has_wire_bytes() || rule.wire_need().is_none()
}

/// Decoded content (borrowed when there was no coding to undo) and whether it was cut at
/// the cap; `None` when it does not decode.
type Decoded<'a> = Option<(std::borrow::Cow<'a, [u8]>, bool)>;

/// Decoded bodies of one exchange, computed at most once whatever the number of rules
/// (and subjects) that read them.
#[derive(Default)]
pub struct BodyCache<'a> {
    bodies: [OnceCell<Decoded<'a>>; 2],
    /// The first `BODY_MATCH_CAP` decoded bytes, when only a prefix was needed.
    prefixes: [OnceCell<Decoded<'a>>; 2],
    json: [OnceCell<Option<serde_json::Value>>; 2],
    json_valid: [OnceCell<bool>; 2],
    /// Streamed verdicts on content kept whole that decodes past the decode cap.
    streamed: [OnceCell<JsonVerdict>; 2],
}

/// The exchange (and, in message scope, the message) a rule is evaluated on.
pub struct Subject<'a> {
    pub exchange: &'a Exchange,
    pub side: Option<Side>,
    cache: &'a BodyCache<'a>,
}

/// Bytes of decoded content a body rule reads at most.
const BODY_READ_CAP: usize = 1024 * 1024;
/// Bytes of decoded content that `body_matches` searches.
const BODY_MATCH_CAP: usize = 64 * 1024;

impl<'a> Subject<'a> {
    pub fn new(exchange: &'a Exchange, side: Option<Side>, cache: &'a BodyCache<'a>) -> Self {
        Subject {
            exchange,
            side,
            cache,
        }
    }

    pub fn request(&self) -> Option<&'a Message> {
        self.exchange.request.as_ref()
    }

    pub fn response(&self) -> Option<&'a Message> {
        self.exchange.response.as_ref()
    }

    pub fn tls(&self) -> bool {
        self.exchange.connection.tls
    }

    pub fn side_name(&self) -> Option<&'static str> {
        self.side.map(|s| match s {
            Side::Request => "request",
            Side::Response => "response",
        })
    }

    /// The message a message-scope rule is looking at.
    pub fn subject_message(&self) -> Option<&'a Message> {
        match self.side? {
            Side::Request => self.request(),
            Side::Response => self.response(),
        }
    }

    fn msg(&self, which: Which) -> Option<&'a Message> {
        match which {
            Which::Request => self.request(),
            Which::Response => self.response(),
            Which::Message => self.subject_message(),
        }
    }

    fn slot(&self, which: Which) -> Option<usize> {
        match which {
            Which::Request => Some(0),
            Which::Response => Some(1),
            Which::Message => self.side.map(|s| if s == Side::Request { 0 } else { 1 }),
        }
    }

    /// A message's content with its Content-Encoding undone (at most 1 MiB, with whether it
    /// was cut there), decoded once per exchange for every rule and check that reads it;
    /// `None` when it does not decode.
    pub fn decoded(&self, side: Side) -> Option<(&'a [u8], bool)> {
        let (m, slot) = match side {
            Side::Request => (self.request()?, 0),
            Side::Response => (self.response()?, 1),
        };
        self.cache.bodies[slot]
            .get_or_init(|| content::decoded_body(m, BODY_READ_CAP).ok())
            .as_ref()
            .map(|(b, capped)| (&**b, *capped))
    }

    /// The decoded content (see [`Subject::decoded`]).
    pub fn decoded_body(&self, side: Side) -> Option<&'a [u8]> {
        self.decoded(side).map(|(b, _)| b)
    }

    fn side_of(&self, which: Which) -> Option<Side> {
        self.slot(which).map(|s| {
            if s == 0 {
                Side::Request
            } else {
                Side::Response
            }
        })
    }

    /// The first 64 KiB of decoded content, for `body_matches`: taken from the full decode
    /// when another rule already needed it, otherwise decoded only that far.
    fn body_prefix(&self, which: Which) -> Option<&'a [u8]> {
        let side = self.side_of(which)?;
        let slot = if side == Side::Request { 0 } else { 1 };
        if let Some(full) = self.cache.bodies[slot].get() {
            let (body, _) = full.as_ref()?;
            return Some(&body[..body.len().min(BODY_MATCH_CAP)]);
        }
        let m = self.msg(which)?;
        self.cache.prefixes[slot]
            .get_or_init(|| content::decoded_body(m, BODY_MATCH_CAP).ok())
            .as_ref()
            .map(|(b, _)| &**b)
    }

    /// The decoded content parsed as JSON (once per exchange), `None` when it is not JSON.
    pub fn json_value(&self, side: Side) -> Option<&'a serde_json::Value> {
        let slot = if side == Side::Request { 0 } else { 1 };
        self.cache.json[slot]
            .get_or_init(|| {
                self.decoded_body(side)
                    .and_then(|b| serde_json::from_slice(b).ok())
            })
            .as_ref()
    }

    /// Whether the content is valid JSON: from the kept bytes when they hold all of it
    /// (without building the value when nothing else needs it), else from the verdict the
    /// http stage reached over the whole content; `None` when neither can tell.
    pub fn json_validity(&self, side: Side) -> Option<bool> {
        let m = match side {
            Side::Request => self.request()?,
            Side::Response => self.response()?,
        };
        if let Some(verdict) = self.streamed_verdict(side) {
            return verdict.valid();
        }
        if !m.body.captured_all {
            return None;
        }
        Some(self.json_is_valid(side))
    }

    /// The streamed JSON verdict, when it is what decides: the http stage's where the kept
    /// bytes were capped, else one over the kept bytes where they decode past the decode
    /// cap (or do not decode at once).
    pub fn streamed_verdict(&self, side: Side) -> Option<&'a JsonVerdict> {
        let m = match side {
            Side::Request => self.request()?,
            Side::Response => self.response()?,
        };
        if !m.body.captured_all {
            return m.body.json.as_ref();
        }
        if matches!(self.decoded(side), Some((_, false))) {
            return None;
        }
        // Kept whole but decoded past the cap (or not decodable at once): validate the
        // kept bytes as they decode, once per exchange.
        let slot = if side == Side::Request { 0 } else { 1 };
        Some(self.cache.streamed[slot].get_or_init(|| crate::http::json_verdict_of_kept(m)))
    }

    /// Whether the decoded kept content is valid JSON, without building it when nothing
    /// else needs the value.
    pub fn json_is_valid(&self, side: Side) -> bool {
        let slot = if side == Side::Request { 0 } else { 1 };
        *self.cache.json_valid[slot].get_or_init(|| match self.cache.json[slot].get() {
            Some(parsed) => parsed.is_some(),
            None => match self.decoded_body(side) {
                // Objects are what member rules read next: build the value once now.
                Some(b) if b.trim_ascii_start().first() == Some(&b'{') => {
                    self.json_value(side).is_some()
                }
                Some(b) => serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok(),
                None => false,
            },
        })
    }

    fn json(
        &self,
        which: Which,
        cond: &condition::JsonCond,
        f: impl FnOnce(Option<&serde_json::Value>) -> bool,
    ) -> bool {
        let Some(side) = self.side_of(which) else {
            return false;
        };
        if self.msg(which).is_none() {
            return false;
        }
        match cond {
            condition::JsonCond::Valid => self.json_validity(side) == Some(true),
            condition::JsonCond::Invalid => self.json_validity(side) == Some(false),

            condition::JsonCond::Members { .. } => {
                // Members are only ever found on an object: other bodies are not parsed.
                let object = self
                    .decoded_body(side)
                    .is_some_and(|b| b.trim_ascii_start().first() == Some(&b'{'));
                object && f(self.json_value(side))
            }
        }
    }
}

/// A reference to an exchange: its connection's first frame and its index there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExchangeRef {
    pub connection: FrameRef,
    pub index: u32,
}

impl ExchangeRef {
    pub fn of(ex: &Exchange) -> Self {
        ExchangeRef {
            connection: ex.connection.first_frame,
            index: ex.index,
        }
    }
}

/// One finding: a rule that fired on an exchange.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub category: String,
    pub message: String,
    pub evidence: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// Other exchanges the finding relies on (stateful rules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<ExchangeRef>,
    /// The part of the message it is about, when the engine can tell (see [`span`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<span::Span>,
}

/// The loaded catalogue.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Arc<Rule>>,
}

/// The shipped catalogue, embedded at build time (see build.rs).
mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
}

impl RuleSet {
    /// The shipped rule files: (path under rules/, text).
    pub fn builtin_files() -> &'static [(&'static str, &'static str)] {
        builtin::RULES
    }

    /// Parses and compiles one rule file.
    pub fn compile(text: &str, source: &str) -> Result<Rule, RuleError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Parse {
            path: source.to_string(),
            message: e.to_string(),
        })?;
        Rule::from_file(file, source.to_string())
    }

    /// The rules shipped with wirelint.
    pub fn builtin() -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        for (path, text) in builtin::RULES {
            set.add_text(text, &format!("builtin:{path}"))?;
        }
        set.rules.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(set)
    }

    /// Adds every `*.toml` rule file under `dir` (recursively). A rule with the id of an
    /// existing one replaces it.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), RuleError> {
        let mut files = Vec::new();
        collect_toml(dir, &mut files).map_err(|source| RuleError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| RuleError::Read {
                path: path.clone(),
                source,
            })?;
            self.add_text(&text, &path.display().to_string())?;
        }
        self.rules.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(())
    }

    fn add_text(&mut self, text: &str, source: &str) -> Result<(), RuleError> {
        let rule = Self::compile(text, source)?;
        self.rules.retain(|r| r.id != rule.id);
        self.rules.push(Arc::new(rule));
        Ok(())
    }

    /// Applies a selection and severity policy: returns the set with each rule's
    /// `enabled` and `severity` decided.
    pub fn configured(self, policy: &crate::config::Policy) -> RuleSet {
        let rules = self
            .rules
            .into_iter()
            .map(|r| {
                let (enabled, severity) = policy.decide(&r);
                if enabled == r.enabled && severity == r.severity {
                    return r;
                }
                let mut rule = Arc::unwrap_or_clone(r);
                rule.enabled = enabled;
                rule.severity = severity;
                Arc::new(rule)
            })
            .collect();
        RuleSet { rules }
    }

    /// A set from already compiled rules (tests, tools).
    pub fn from_rules(rules: Vec<Rule>) -> RuleSet {
        let mut rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        RuleSet { rules }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs the per-exchange rules. Cheap to share across worker threads.
#[derive(Clone, Debug)]
pub struct Engine {
    rules: Vec<Arc<Rule>>,
}

impl Engine {
    /// An engine over the enabled, non-stateful rules of `set`.
    pub fn new(set: &RuleSet) -> Engine {
        Engine {
            rules: set
                .rules
                .iter()
                .filter(|r| r.enabled && !r.scope.is_stateful() && r.scope != Scope::Run)
                .cloned()
                .collect(),
        }
    }

    /// Every finding of the stateless rules on one exchange.
    pub fn check(&self, ex: &Exchange) -> Vec<Finding> {
        let mut out = Vec::new();
        let cache = BodyCache::default();
        let whole = Subject::new(ex, None, &cache);
        let req = Subject::new(ex, Some(Side::Request), &cache);
        let resp = Subject::new(ex, Some(Side::Response), &cache);
        for rule in &self.rules {
            if !rule.may_apply(ex) || !applies_to(rule, ex) {
                continue;
            }
            match rule.scope {
                Scope::Request if ex.request.is_some() => {
                    evaluate(rule, &whole, Some(Side::Request), &mut out)
                }
                Scope::Response if ex.response.is_some() => {
                    evaluate(rule, &whole, Some(Side::Response), &mut out)
                }
                Scope::Exchange if ex.request.is_some() && ex.response.is_some() => {
                    evaluate(rule, &whole, None, &mut out)
                }
                Scope::Message => {
                    if ex.request.is_some() {
                        evaluate(rule, &req, Some(Side::Request), &mut out);
                    }
                    if ex.response.is_some() {
                        evaluate(rule, &resp, Some(Side::Response), &mut out);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// Evaluates one rule on one subject; `side` is the message the finding is about.
fn evaluate<'s>(rule: &Rule, s: &'s Subject<'s>, side: Option<Side>, out: &mut Vec<Finding>) {
    if !rule.sees_whole(s.exchange, side) {
        return;
    }
    let mut evidence = None;
    if let Some(cond) = &rule.cond
        && !cond.eval(s, &mut evidence)
    {
        return;
    }
    let severity = rule
        .escalate
        .iter()
        .find(|(_, c)| c.eval(s, &mut None))
        .map_or(rule.severity, |(sev, _)| *sev);
    match &rule.check {
        Some(checks::CheckKind::Exchange(f)) => {
            let input = CheckInput {
                exchange: s.exchange,
                side,
                subject: s,
            };
            for hit in f(&input) {
                out.push(Finding {
                    rule: rule.id.clone(),
                    severity: hit.severity.unwrap_or(severity),
                    category: rule.category.clone(),
                    message: hit
                        .message
                        .unwrap_or_else(|| rule.summary.render_with(s, Some(&hit.evidence))),
                    span: span::derive(s.exchange, side, &rule.category, &hit.evidence),
                    evidence: hit.evidence,
                    side,
                    related: Vec::new(),
                });
            }
        }
        Some(checks::CheckKind::Stateful(_)) => {}
        None => {
            let evidence = evidence.unwrap_or_default();
            out.push(Finding {
                rule: rule.id.clone(),
                severity,
                category: rule.category.clone(),
                message: rule.summary.render_with(s, Some(&evidence)),
                span: span::derive(s.exchange, side, &rule.category, &evidence),
                evidence,
                side,
                related: Vec::new(),
            });
        }
    }
}

/// Runs the stateful rules, one instance per rule, over exchanges in output order.
pub struct StatefulEngine {
    checks: Vec<(Arc<Rule>, Box<dyn StatefulCheck>)>,
    /// Keys the checks' tables dropped to stay within their share of memory.
    forgotten: Arc<std::sync::atomic::AtomicU64>,
}

impl StatefulEngine {
    /// The engine with every table at its nominal capacity.
    pub fn new(set: &RuleSet) -> StatefulEngine {
        StatefulEngine::with_memory(set, usize::MAX)
    }

    /// The engine with its checks' tables scaled down to fit `budget` bytes together.
    pub fn with_memory(set: &RuleSet, budget: usize) -> StatefulEngine {
        let makers = || {
            set.rules
                .iter()
                .filter(|r| r.enabled)
                .filter_map(|r| match &r.check {
                    Some(checks::CheckKind::Stateful(make)) => Some((r, *make)),
                    _ => None,
                })
        };
        let measuring = Tables::measuring();
        for (_, make) in makers() {
            make(&measuring);
        }
        let tables = Tables::within(measuring.nominal(), budget);
        let checks = makers()
            .map(|(r, make)| (Arc::clone(r), make(&tables)))
            .collect();
        StatefulEngine {
            checks,
            forgotten: tables.forgotten(),
        }
    }

    /// Keys the stateful checks' tables dropped so far to make room: history that rules
    /// comparing exchanges (duplicates, created and deleted resources, …) no longer see.
    pub fn keys_forgotten(&self) -> u64 {
        self.forgotten.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Observes one exchange; findings about it (or about earlier ones) come back as
    /// (exchange the finding belongs to, finding).
    pub fn observe(&mut self, ex: &Exchange) -> Vec<(ExchangeRef, Finding)> {
        let mut out = Vec::new();
        for (rule, check) in &mut self.checks {
            if !applies_to(rule, ex) || !rule.sees_whole(ex, None) {
                // History is not built from what was not seen.
                continue;
            }
            let mut hits = Vec::new();
            check.observe(ex, &mut hits);
            out.extend(hits.into_iter().map(|h| stateful_finding(rule, ex, h)));
        }
        out
    }

    /// End of input: rules that settle only when everything was seen.
    pub fn finish(&mut self) -> Vec<(ExchangeRef, Finding)> {
        let mut out = Vec::new();
        for (rule, check) in &mut self.checks {
            let mut hits = Vec::new();
            check.finish(&mut hits);
            out.extend(hits.into_iter().map(|h| {
                let at = h.at;
                (
                    at,
                    Finding {
                        rule: rule.id.clone(),
                        severity: h.severity.unwrap_or(rule.severity),
                        category: rule.category.clone(),
                        message: h.message,
                        evidence: h.evidence,
                        side: h.side,
                        related: h.related,
                        // The exchange has gone by: nothing to look at.
                        span: None,
                    },
                )
            }));
        }
        out
    }
}

fn stateful_finding(rule: &Rule, ex: &Exchange, h: StatefulHit) -> (ExchangeRef, Finding) {
    // A finding about this very exchange can point into it.
    let span = (h.at == ExchangeRef::of(ex))
        .then(|| span::derive(ex, h.side, &rule.category, &h.evidence))
        .flatten();
    (
        h.at,
        Finding {
            span,
            rule: rule.id.clone(),
            severity: h.severity.unwrap_or(rule.severity),
            category: rule.category.clone(),
            message: h.message,
            evidence: h.evidence,
            side: h.side,
            related: h.related,
        },
    )
}

#[cfg(test)]
mod silence_tests {
    //! Rules never judge what was not seen: every rule's bad example, damaged the ways
    //! captures damage messages, yields no finding from a rule that reads the damaged part.
    use super::*;
    use crate::http::AnomalyKind;

    /// Each bad example of the catalogue as exchanges, with the rule it is about.
    fn bad_examples(set: &RuleSet) -> Vec<(Arc<Rule>, Vec<Exchange>)> {
        set.rules
            .iter()
            .flat_map(|r| {
                r.examples
                    .iter()
                    .filter(|e| e.kind == ExampleKind::Bad)
                    .map(|e| (Arc::clone(r), examples::exchanges(e)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Findings of every rule (stateless and stateful) on a sequence of exchanges.
    fn findings(set: &RuleSet, exchanges: &[Exchange]) -> Vec<Finding> {
        let engine = Engine::new(set);
        let mut stateful = StatefulEngine::new(set);
        let mut out = Vec::new();
        for ex in exchanges {
            out.extend(engine.check(ex));
            out.extend(stateful.observe(ex).into_iter().map(|(_, f)| f));
        }
        out.extend(stateful.finish().into_iter().map(|(_, f)| f));
        out
    }

    fn damage(exchanges: &[Exchange], f: impl Fn(&mut Message)) -> Vec<Exchange> {
        let mut out = exchanges.to_vec();
        for ex in &mut out {
            for m in [ex.request.as_mut(), ex.response.as_mut()]
                .into_iter()
                .flatten()
            {
                f(m);
            }
        }
        out
    }

    /// `n` POSTs, each to its own path, then the first one again (a duplicate).
    fn posts_then_a_repeat(n: usize) -> Vec<Exchange> {
        let post = |i: usize, at: f64| {
            format!(
                "[[exchange]]\nat = {at:.3}\nrequest = \"POST /orders/{i} HTTP/1.1\\r\\nHost: api.example\\r\\n\
                 Content-Length: 2\\r\\n\\r\\n{{}}\"\nresponse = \"HTTP/1.1 204 No Content\\r\\n\\r\\n\"\n"
            )
        };
        let mut text = String::from("kind = \"bad\"\n");
        for i in 0..n {
            text.push_str(&post(i, i as f64 * 0.001));
        }
        text.push_str(&post(n - 1, n as f64 * 0.001));
        let example: ExampleFile = toml::from_str(&text).expect("example");
        examples::exchanges(&example)
    }

    #[test]
    fn stateful_tables_within_a_small_budget_forget_keys_and_count_them() {
        let set = RuleSet::builtin().expect("catalogue");
        let exchanges = posts_then_a_repeat(2_000);
        assert_eq!(exchanges.len(), 2_001);
        let run = |budget: usize| {
            let mut engine = StatefulEngine::with_memory(&set, budget);
            let mut rules = Vec::new();
            for ex in &exchanges {
                rules.extend(engine.observe(ex).into_iter().map(|(_, f)| f.rule));
            }
            let dup = rules
                .iter()
                .filter(|r| *r == "duplicate-unsafe-request")
                .count();
            (dup, engine.keys_forgotten())
        };
        assert_eq!(run(usize::MAX), (1, 0), "nominal tables forget nothing");
        // A tiny budget: each table keeps its floor of keys, so the 2,000 paths push keys
        // out (counted); the repeat right after its original is still found.
        let (dup, forgotten) = run(0);
        assert_eq!(dup, 1);
        assert!(forgotten >= 1_000, "{forgotten} keys forgotten");
    }

    #[test]
    fn a_head_cut_at_the_head_cap_is_judged_by_its_size_only() {
        let set = RuleSet::builtin().expect("catalogue");
        let mut size_findings = 0;
        for (rule, exchanges) in bad_examples(&set) {
            let damaged = damage(&exchanges, |m| {
                m.head_complete = false;
                m.add_anomaly(AnomalyKind::OversizedHead, "head larger than 65536 bytes");
            });
            for f in findings(&set, &damaged) {
                assert_eq!(
                    f.rule, "oversized-header-section",
                    "{} fired on a head cut at the cap (bad example of {}): {}",
                    f.rule, rule.id, f.message
                );
                assert!(
                    f.evidence.contains("head larger than 65536 bytes"),
                    "{}",
                    f.evidence
                );
                size_findings += 1;
            }
        }
        assert!(
            size_findings > 0,
            "the size rule judges heads cut at the cap"
        );
    }

    #[test]
    fn every_rule_is_silent_on_heads_it_did_not_see_whole() {
        let set = RuleSet::builtin().expect("catalogue");
        let examples = bad_examples(&set);
        assert!(examples.len() >= 150, "{} bad examples", examples.len());
        for kind in [AnomalyKind::Gap, AnomalyKind::Truncated] {
            for (rule, exchanges) in &examples {
                let damaged = damage(exchanges, |m| {
                    m.head_complete = false;
                    m.add_anomaly(kind, "part of the head was not captured");
                });
                let fired = findings(&set, &damaged);
                assert!(
                    fired.is_empty(),
                    "{}'s bad example with every head {}: {:?}",
                    rule.id,
                    kind.name(),
                    fired.iter().map(|f| &f.rule).collect::<Vec<_>>()
                );
            }
        }
    }

    /// On capped content, JSON validity comes from the http stage's verdict over the whole
    /// content: invalid-json-body fires on an invalid body however large, never on a valid
    /// one, and stays silent when the verdict is undecided.
    #[test]
    fn json_validity_on_capped_content_follows_the_streamed_verdict() {
        let set = RuleSet::builtin().expect("catalogue");
        let rule = set.get("invalid-json-body").expect("rule");
        assert!(rule.reads.body && rule.reads.body_verdict_enough);
        // `verdict`: `None` gives the one the http stage reaches on the example's bytes
        // when they outgrow the cap.
        let fired = |kind: ExampleKind, verdict: Option<Option<JsonVerdict>>| {
            let mut n = 0;
            for e in rule.examples.iter().filter(|e| e.kind == kind) {
                let exchanges = damage(&examples::exchanges(e), |m| {
                    let json = m.header("content-type").is_some_and(|c| c.contains("json"));
                    if m.body.size > 0 && json {
                        m.body.captured_all = false;
                        m.body.json = match &verdict {
                            Some(v) => v.clone(),
                            None => Some(crate::http::json_stream::validate(&m.body.captured)),
                        };
                    }
                });
                n += findings(&set, &exchanges)
                    .iter()
                    .filter(|f| f.rule == "invalid-json-body")
                    .count();
            }
            n
        };
        // The bad example's request is invalid, its response valid.
        assert_eq!(fired(ExampleKind::Bad, None), 1);
        let undecided = Some(JsonVerdict::Undecided("gap"));
        assert_eq!(fired(ExampleKind::Bad, Some(undecided)), 0);
        assert_eq!(fired(ExampleKind::Bad, Some(None)), 0);
        assert_eq!(fired(ExampleKind::Good, None), 0);
        // Member conditions need the value itself: never judged on capped content.
        let members = set
            .rules
            .iter()
            .filter(|r| r.reads.body && !r.reads.body_verdict_enough)
            .count();
        assert!(members > 0);
    }

    #[test]
    fn rules_that_read_content_are_silent_on_capped_or_lost_bodies() {
        let set = RuleSet::builtin().expect("catalogue");
        let readers: Vec<&Arc<Rule>> = set.rules.iter().filter(|r| r.reads.body).collect();
        assert!(readers.len() >= 20, "{} rules read content", readers.len());
        for (rule, exchanges) in bad_examples(&set) {
            // Lost bytes in every message: no content or framing rule may fire.
            let gapped = damage(&exchanges, |m| {
                m.add_anomaly(AnomalyKind::Gap, "bytes not captured")
            });
            let fired: Vec<String> = findings(&set, &gapped)
                .into_iter()
                .filter(|f| {
                    set.get(&f.rule)
                        .is_some_and(|r| r.reads.body || r.reads.framing)
                })
                .map(|f| f.rule)
                .collect();
            assert!(
                fired.is_empty(),
                "{}'s bad example, gapped: {fired:?}",
                rule.id
            );
            // Content cut by the kept-body cap: no content rule may fire on a message whose
            // content it reads and that was cut.
            // (Without a JSON verdict: with one, validity rules may judge; see below.)
            let capped = damage(&exchanges, |m| {
                if m.body.size > 0 {
                    m.body.captured_all = false;
                    m.body.json = None;
                }
            });
            for ex in &capped {
                let cut = |m: &Option<Message>| m.as_ref().is_some_and(|m| !m.body.captured_all);
                for f in findings(&set, std::slice::from_ref(ex)) {
                    let Some(r) = set.get(&f.rule).filter(|r| r.reads.body) else {
                        continue;
                    };
                    let reads_request = r.reads.request || f.side == Some(Side::Request);
                    let reads_response = r.reads.response || f.side == Some(Side::Response);
                    assert!(
                        !(reads_request && cut(&ex.request) || reads_response && cut(&ex.response)),
                        "{} fired on {}'s bad example with capped content",
                        f.rule,
                        rule.id
                    );
                }
            }
        }
    }
}
