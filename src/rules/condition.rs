//! Declarative conditions (`[when]` in a rule file), compiled once at start-up into a tree
//! that is evaluated against an exchange without parsing or compiling anything per exchange.

use regex::Regex;

use super::template::Template;
use super::{RuleError, Subject};
use crate::http::{AnomalyKind, Message};

/// Which message a condition looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Request,
    Response,
    /// The message in scope (rules of scope `message`).
    Message,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Cmp {
    fn holds(self, left: u64, right: u64) -> bool {
        match self {
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
        }
    }
}

/// A set of status codes: single codes, classes (`4xx`) and ranges (`300-399`).
#[derive(Clone, Debug)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

#[derive(Clone, Debug)]
pub enum MediaPattern {
    Exact(String),
    /// `+json`: any structured-syntax suffix.
    Suffix(String),
    /// `text/*`.
    Type(String),
}

#[derive(Clone, Debug)]
pub enum JsonCond {
    Valid,
    Invalid,
    /// Top-level members that must equal these values, and members that must / must not exist.
    Members {
        equal: Vec<(String, serde_json::Value)>,
        has: Vec<String>,
        lacks: Vec<String>,
    },
}

/// What a condition reads (see [`Cond::reads`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct CondReads {
    pub request: bool,
    pub response: bool,
    /// The message in scope (`message.*` keys).
    pub subject: bool,
    /// Content: presence, size, JSON, body text.
    pub content: bool,
    /// Content beyond its size and JSON validity (body text, JSON members): needs the kept
    /// bytes themselves.
    pub content_bytes: bool,
    /// Parse anomalies, which say how the message was framed.
    pub framing: bool,
}

impl CondReads {
    fn mark(&mut self, w: Which) {
        match w {
            Which::Request => self.request = true,
            Which::Response => self.response = true,
            Which::Message => self.subject = true,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Method(Vec<String>),
    Status(StatusSet),
    Transport { tls: bool },
    Version(Which, Vec<String>),
    Present(Which, Vec<String>),
    Absent(Which, Vec<String>),
    AnyPresent(Which, Vec<String>),
    Count(Which, String, Cmp, u64),
    Header(Which, String, Regex),
    HeaderNot(Which, String, Regex),
    AnyLine(Which, String, Regex),
    AnyLineNot(Which, String, Regex),
    BodyPresent(Which, bool),
    BodySize(Which, Cmp, u64),
    ContentType(Which, Vec<MediaPattern>),
    Json(Which, JsonCond),
    BodyMatches(Which, regex::bytes::Regex),
    ListContains(Which, String, Template),
    ListLacks(Which, String, Template),
    Anomaly(Which, Vec<AnomalyKind>),
}

fn err(rule: &str, key: &str, msg: impl Into<String>) -> RuleError {
    RuleError::Condition {
        rule: rule.to_string(),
        key: key.to_string(),
        message: msg.into(),
    }
}

fn strings(rule: &str, key: &str, v: &toml::Value) -> Result<Vec<String>, RuleError> {
    match v {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(n) => Ok(n.to_string()),
                other => Err(err(rule, key, format!("expected strings, found {other}"))),
            })
            .collect(),
        other => Err(err(
            rule,
            key,
            format!("expected a list of strings, found {other}"),
        )),
    }
}

fn table<'a>(rule: &str, key: &str, v: &'a toml::Value) -> Result<&'a toml::Table, RuleError> {
    v.as_table()
        .ok_or_else(|| err(rule, key, format!("expected a table, found {v}")))
}

fn regex(rule: &str, key: &str, pattern: &str) -> Result<Regex, RuleError> {
    Regex::new(pattern).map_err(|e| err(rule, key, format!("invalid regex {pattern:?}: {e}")))
}

fn status_set(rule: &str, key: &str, v: &toml::Value) -> Result<StatusSet, RuleError> {
    let items: Vec<toml::Value> = match v {
        toml::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            toml::Value::Integer(n) => {
                let n = u16::try_from(n)
                    .map_err(|_| err(rule, key, format!("status {n} out of range")))?;
                out.push((n, n));
            }
            toml::Value::String(s) => {
                let s = s.trim();
                if let Some(class) = s.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()) {
                    out.push((class * 100, class * 100 + 99));
                } else if let Some((lo, hi)) = s.split_once('-') {
                    let lo = lo
                        .trim()
                        .parse()
                        .map_err(|_| err(rule, key, format!("bad range {s:?}")))?;
                    let hi = hi
                        .trim()
                        .parse()
                        .map_err(|_| err(rule, key, format!("bad range {s:?}")))?;
                    out.push((lo, hi));
                } else {
                    let n = s
                        .parse()
                        .map_err(|_| err(rule, key, format!("bad status {s:?}")))?;
                    out.push((n, n));
                }
            }
            other => return Err(err(rule, key, format!("bad status {other}"))),
        }
    }
    Ok(StatusSet(out))
}

fn comparison(rule: &str, key: &str, s: &str) -> Result<(Cmp, u64), RuleError> {
    let s = s.trim();
    let (cmp, rest) = if let Some(r) = s.strip_prefix(">=") {
        (Cmp::Ge, r)
    } else if let Some(r) = s.strip_prefix("<=") {
        (Cmp::Le, r)
    } else if let Some(r) = s.strip_prefix("==") {
        (Cmp::Eq, r)
    } else if let Some(r) = s.strip_prefix("!=") {
        (Cmp::Ne, r)
    } else if let Some(r) = s.strip_prefix('>') {
        (Cmp::Gt, r)
    } else if let Some(r) = s.strip_prefix('<') {
        (Cmp::Lt, r)
    } else {
        (Cmp::Eq, s)
    };
    let n = rest.trim().parse().map_err(|_| {
        err(
            rule,
            key,
            format!("expected a comparison like \">1\", found {s:?}"),
        )
    })?;
    Ok((cmp, n))
}

fn media_patterns(rule: &str, key: &str, v: &toml::Value) -> Result<Vec<MediaPattern>, RuleError> {
    Ok(strings(rule, key, v)?
        .into_iter()
        .map(|p| {
            let p = p.to_ascii_lowercase();
            if let Some(suffix) = p.strip_prefix('+') {
                MediaPattern::Suffix(suffix.to_string())
            } else if let Some(ty) = p.strip_suffix("/*") {
                MediaPattern::Type(ty.to_string())
            } else {
                MediaPattern::Exact(p)
            }
        })
        .collect())
}

fn json_cond(rule: &str, key: &str, v: &toml::Value) -> Result<JsonCond, RuleError> {
    match v {
        toml::Value::String(s) if s == "valid" => Ok(JsonCond::Valid),
        toml::Value::String(s) if s == "invalid" => Ok(JsonCond::Invalid),
        toml::Value::Table(t) => {
            let mut equal = Vec::new();
            let mut has = Vec::new();
            let mut lacks = Vec::new();
            for (k, val) in t {
                match k.as_str() {
                    "has" => has = strings(rule, key, val)?,
                    "lacks" => lacks = strings(rule, key, val)?,
                    _ => {
                        let json = serde_json::to_value(val)
                            .map_err(|e| err(rule, key, format!("value of {k}: {e}")))?;
                        equal.push((k.clone(), json));
                    }
                }
            }
            Ok(JsonCond::Members { equal, has, lacks })
        }
        other => Err(err(
            rule,
            key,
            format!("expected \"valid\", \"invalid\" or a table, found {other}"),
        )),
    }
}

/// Compiles a `[when]` table.
pub fn compile(rule: &str, t: &toml::Table) -> Result<Cond, RuleError> {
    let mut all = Vec::new();
    for (key, v) in t {
        let k = key.as_str();
        match k {
            "method" => all.push(Cond::Method(strings(rule, k, v)?)),
            "method_not" => all.push(Cond::Not(Box::new(Cond::Method(strings(rule, k, v)?)))),
            "status" => all.push(Cond::Status(status_set(rule, k, v)?)),
            "status_not" => all.push(Cond::Not(Box::new(Cond::Status(status_set(rule, k, v)?)))),
            "transport" => match v.as_str() {
                Some("tls") => all.push(Cond::Transport { tls: true }),
                Some("cleartext") => all.push(Cond::Transport { tls: false }),
                _ => return Err(err(rule, k, "expected \"tls\" or \"cleartext\"")),
            },
            "request_version" => all.push(Cond::Version(Which::Request, strings(rule, k, v)?)),
            "response_version" => all.push(Cond::Version(Which::Response, strings(rule, k, v)?)),
            "request" | "response" | "message" => {
                let which = match k {
                    "request" => Which::Request,
                    "response" => Which::Response,
                    _ => Which::Message,
                };
                compile_message(rule, which, table(rule, k, v)?, &mut all)?;
            }
            "any" => {
                let items = v
                    .as_array()
                    .ok_or_else(|| err(rule, k, "expected an array of tables ([[when.any]])"))?;
                let mut alts = Vec::new();
                for item in items {
                    alts.push(compile(rule, table(rule, k, item)?)?);
                }
                all.push(Cond::Any(alts));
            }
            "not" => all.push(Cond::Not(Box::new(compile(rule, table(rule, k, v)?)?))),
            other => {
                return Err(err(
                    rule,
                    other,
                    "unknown condition key (see rules/FORMAT.md)",
                ));
            }
        }
    }
    // Cheap tests first: a rule about 405s should not decode a body to learn it is a 200.
    all.sort_by_key(Cond::cost);
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        Cond::All(all)
    })
}

fn compile_message(
    rule: &str,
    which: Which,
    t: &toml::Table,
    all: &mut Vec<Cond>,
) -> Result<(), RuleError> {
    for (key, v) in t {
        let k = key.as_str();
        let named = |v: &toml::Value| -> Result<Vec<(String, String)>, RuleError> {
            table(rule, k, v)?
                .iter()
                .map(|(name, p)| {
                    p.as_str()
                        .map(|p| (name.clone(), p.to_string()))
                        .ok_or_else(|| err(rule, k, format!("value for {name} must be a string")))
                })
                .collect()
        };
        match k {
            "present" => all.push(Cond::Present(which, strings(rule, k, v)?)),
            "absent" => all.push(Cond::Absent(which, strings(rule, k, v)?)),
            "any_present" => all.push(Cond::AnyPresent(which, strings(rule, k, v)?)),
            "count" => {
                for (name, c) in named(v)? {
                    let (cmp, n) = comparison(rule, k, &c)?;
                    all.push(Cond::Count(which, name, cmp, n));
                }
            }
            "header" | "header_not" | "any_line" | "any_line_not" => {
                for (name, p) in named(v)? {
                    let re = regex(rule, k, &p)?;
                    all.push(match k {
                        "header" => Cond::Header(which, name, re),
                        "header_not" => Cond::HeaderNot(which, name, re),
                        "any_line" => Cond::AnyLine(which, name, re),
                        _ => Cond::AnyLineNot(which, name, re),
                    });
                }
            }
            "body" => match v.as_str() {
                Some("present") => all.push(Cond::BodyPresent(which, true)),
                Some("none" | "absent" | "empty") => all.push(Cond::BodyPresent(which, false)),
                _ => return Err(err(rule, k, "expected \"present\" or \"none\"")),
            },
            "body_size" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| err(rule, k, "expected a comparison string"))?;
                let (cmp, n) = comparison(rule, k, s)?;
                all.push(Cond::BodySize(which, cmp, n));
            }
            "content_type" => all.push(Cond::ContentType(which, media_patterns(rule, k, v)?)),
            "json" => all.push(Cond::Json(which, json_cond(rule, k, v)?)),
            "body_matches" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| err(rule, k, "expected a regex string"))?;
                let re = regex::bytes::Regex::new(s)
                    .map_err(|e| err(rule, k, format!("invalid regex {s:?}: {e}")))?;
                all.push(Cond::BodyMatches(which, re));
            }
            "list_contains" | "list_lacks" => {
                for (name, tpl) in named(v)? {
                    let tpl = Template::parse(&tpl);
                    if let Some(bad) = tpl.unknown().first() {
                        return Err(err(rule, k, format!("unknown placeholder {{{bad}}}")));
                    }
                    all.push(if k == "list_contains" {
                        Cond::ListContains(which, name, tpl)
                    } else {
                        Cond::ListLacks(which, name, tpl)
                    });
                }
            }
            "anomaly" => {
                let kinds = strings(rule, k, v)?
                    .into_iter()
                    .map(|n| {
                        AnomalyKind::from_name(&n)
                            .ok_or_else(|| err(rule, k, format!("unknown anomaly {n:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                all.push(Cond::Anomaly(which, kinds));
            }
            other => {
                return Err(err(
                    rule,
                    other,
                    "unknown message condition key (see rules/FORMAT.md)",
                ));
            }
        }
    }
    Ok(())
}

impl Cond {
    /// Whether the condition reads content (body bytes, JSON) or framing anomalies of a
    /// message: such rules are not judged on a message the capture lost part of.
    /// Records what the condition reads: which messages, and whether their content or
    /// their framing anomalies.
    pub fn reads(&self, r: &mut CondReads) {
        match self {
            Cond::All(c) | Cond::Any(c) => c.iter().for_each(|c| c.reads(r)),
            Cond::Not(c) => c.reads(r),
            Cond::Method(_) => r.mark(Which::Request),
            Cond::Status(_) => r.mark(Which::Response),
            Cond::Transport { .. } => {}
            Cond::BodyPresent(w, _)
            | Cond::BodySize(w, ..)
            | Cond::Json(w, JsonCond::Valid | JsonCond::Invalid) => {
                // Sizes are exact and the http stage judged JSON validity over the whole
                // content, whatever the kept-body cap.
                r.mark(*w);
                r.content = true;
            }
            Cond::Json(w, JsonCond::Members { .. }) | Cond::BodyMatches(w, _) => {
                r.mark(*w);
                r.content = true;
                r.content_bytes = true;
            }
            Cond::Anomaly(w, _) => {
                r.mark(*w);
                r.framing = true;
            }
            Cond::Version(w, _)
            | Cond::Present(w, _)
            | Cond::Absent(w, _)
            | Cond::AnyPresent(w, _)
            | Cond::Count(w, ..)
            | Cond::Header(w, ..)
            | Cond::HeaderNot(w, ..)
            | Cond::AnyLine(w, ..)
            | Cond::AnyLineNot(w, ..)
            | Cond::ContentType(w, _)
            | Cond::ListContains(w, ..)
            | Cond::ListLacks(w, ..) => r.mark(*w),
        }
    }

    /// A rough evaluation cost, to evaluate cheap conditions first.
    fn cost(&self) -> u8 {
        match self {
            Cond::Method(_) | Cond::Status(_) | Cond::Transport { .. } | Cond::Version(..) => 0,
            Cond::Present(..) | Cond::Absent(..) | Cond::AnyPresent(..) | Cond::Count(..) => 1,
            Cond::Anomaly(..)
            | Cond::BodyPresent(..)
            | Cond::BodySize(..)
            | Cond::ContentType(..) => 2,
            Cond::Header(..) | Cond::HeaderNot(..) | Cond::AnyLine(..) | Cond::AnyLineNot(..) => 3,
            Cond::ListContains(..) | Cond::ListLacks(..) => 3,
            Cond::Not(c) => c.cost(),
            Cond::All(c) | Cond::Any(c) => c.iter().map(Cond::cost).max().unwrap_or(0),
            Cond::Json(..) | Cond::BodyMatches(..) => 9,
        }
    }

    /// The statuses this condition requires at its top level, if it says.
    pub fn required_status(&self) -> Option<&StatusSet> {
        match self {
            Cond::Status(s) => Some(s),
            Cond::All(c) => c.iter().find_map(|c| match c {
                Cond::Status(s) => Some(s),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The methods this condition requires at its top level, if it says.
    pub fn required_methods(&self) -> Option<&[String]> {
        match self {
            Cond::Method(m) => Some(m),
            Cond::All(c) => c.iter().find_map(|c| match c {
                Cond::Method(m) => Some(m.as_slice()),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Evaluates the condition. `evidence` receives the first concrete thing that made a
    /// leaf hold (a field line, an absent field, an anomaly).
    pub fn eval(&self, s: &Subject<'_>, evidence: &mut Option<String>) -> bool {
        match self {
            Cond::All(c) => c.iter().all(|c| c.eval(s, evidence)),
            Cond::Any(c) => c.iter().any(|c| c.eval(s, evidence)),
            Cond::Not(c) => {
                let mut ignored = None;
                !c.eval(s, &mut ignored)
            }
            Cond::Method(m) => s
                .request()
                .and_then(Message::method)
                .is_some_and(|x| m.iter().any(|y| y == x)),
            Cond::Status(set) => s
                .response()
                .and_then(Message::status)
                .is_some_and(|x| set.contains(x)),
            Cond::Transport { tls } => s.tls() == *tls,
            Cond::Version(w, versions) => s
                .msg(*w)
                .is_some_and(|m| versions.iter().any(|v| v == m.version())),
            Cond::Present(w, names) => s.msg(*w).is_some_and(|m| {
                let holds = names.iter().all(|n| m.has_header(n));
                if holds && let Some(first) = names.first() {
                    record_field(m, first, evidence);
                }
                holds
            }),
            Cond::Absent(w, names) => s.msg(*w).is_some_and(|m| {
                let holds = names.iter().all(|n| !m.has_header(n));
                if holds && evidence.is_none() {
                    *evidence = Some(format!("no {} field", names.join(" or ")));
                }
                holds
            }),
            Cond::AnyPresent(w, names) => {
                s.msg(*w)
                    .is_some_and(|m| match names.iter().find(|n| m.has_header(n)) {
                        Some(n) => {
                            record_field(m, n, evidence);
                            true
                        }
                        None => false,
                    })
            }
            Cond::Count(w, name, cmp, n) => s
                .msg(*w)
                .is_some_and(|m| cmp.holds(m.header_values(name).count() as u64, *n)),
            Cond::Header(w, name, re) => s.msg(*w).is_some_and(|m| match m.combined_ref(name) {
                Some(v) if re.is_match(&v) => {
                    evidence.get_or_insert_with(|| format!("{name}: {v}"));
                    true
                }
                _ => false,
            }),
            Cond::HeaderNot(w, name, re) => s.msg(*w).is_some_and(|m| match m.combined_ref(name) {
                Some(v) => {
                    let holds = !re.is_match(&v);
                    if holds {
                        evidence.get_or_insert_with(|| format!("{name}: {v}"));
                    }
                    holds
                }
                None => true,
            }),
            Cond::AnyLine(w, name, re) => s.msg(*w).is_some_and(|m| {
                m.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name) && re.is_match(&h.value))
                    .map(|h| evidence.get_or_insert_with(|| format!("{}: {}", h.name, h.value)))
                    .is_some()
            }),
            Cond::AnyLineNot(w, name, re) => s.msg(*w).is_some_and(|m| {
                m.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name) && !re.is_match(&h.value))
                    .map(|h| evidence.get_or_insert_with(|| format!("{}: {}", h.name, h.value)))
                    .is_some()
            }),
            Cond::BodyPresent(w, present) => s.msg(*w).is_some_and(|m| {
                let has = m.body.size > 0;
                if has && *present {
                    evidence.get_or_insert_with(|| format!("{} bytes of content", m.body.size));
                }
                has == *present
            }),
            Cond::BodySize(w, cmp, n) => s.msg(*w).is_some_and(|m| cmp.holds(m.body.size, *n)),
            Cond::ContentType(w, patterns) => s.msg(*w).is_some_and(|m| {
                let Some(essence) = media_essence(m) else {
                    return false;
                };
                patterns.iter().any(|p| match p {
                    MediaPattern::Exact(e) => &essence == e,
                    MediaPattern::Suffix(sfx) => essence
                        .split_once('/')
                        .is_some_and(|(_, sub)| sub.ends_with(&format!("+{sfx}"))),
                    MediaPattern::Type(t) => essence.split_once('/').is_some_and(|(ty, _)| ty == t),
                })
            }),
            Cond::Json(w, JsonCond::Invalid) => {
                let holds = s.json(*w, &JsonCond::Invalid, |_| false);
                // Judged over more than the kept bytes: say where the text breaks.
                if holds
                    && let Some(side) = s.side_of(*w)
                    && let Some(crate::http::JsonVerdict::Invalid { at, reason }) =
                        s.streamed_verdict(side)
                {
                    *evidence = Some(format!("not valid JSON at byte {at}: {reason}"));
                }
                holds
            }
            Cond::Json(w, cond) => s.json(*w, cond, |parsed| match (cond, parsed) {
                (JsonCond::Members { equal, has, lacks }, Some(serde_json::Value::Object(obj))) => {
                    let holds = equal.iter().all(|(k, v)| obj.get(k) == Some(v))
                        && has.iter().all(|k| obj.contains_key(k))
                        && lacks.iter().all(|k| !obj.contains_key(k));
                    if holds {
                        let shown: Vec<String> = equal
                            .iter()
                            .map(|(k, v)| format!("\"{k}\": {v}"))
                            .chain(has.iter().map(|k| format!("\"{k}\": …")))
                            .collect();
                        evidence
                            .get_or_insert_with(|| format!("JSON body with {}", shown.join(", ")));
                    }
                    holds
                }
                _ => false,
            }),
            Cond::BodyMatches(w, re) => {
                let Some(body) = s.body_prefix(*w) else {
                    return false;
                };
                match re.find(body) {
                    Some(m) => {
                        evidence.get_or_insert_with(|| {
                            let end = (m.start() + 80).min(body.len());
                            format!("body: {:?}", String::from_utf8_lossy(&body[m.start()..end]))
                        });
                        true
                    }
                    None => false,
                }
            }
            Cond::ListContains(w, name, tpl) => s.msg(*w).is_some_and(|m| {
                let wanted = tpl.render(s);
                list_items(m, name).any(|i| i == wanted)
            }),
            Cond::ListLacks(w, name, tpl) => s.msg(*w).is_some_and(|m| {
                if !m.has_header(name) {
                    return false;
                }
                let wanted = tpl.render(s);
                let lacks = !list_items(m, name).any(|i| i == wanted);
                if lacks {
                    evidence.get_or_insert_with(|| {
                        format!("{name}: {}", m.combined(name).unwrap_or_default())
                    });
                }
                lacks
            }),
            Cond::Anomaly(w, kinds) => s.msg(*w).is_some_and(|m| {
                match m.anomalies.iter().find(|a| kinds.contains(&a.kind)) {
                    Some(a) => {
                        evidence.get_or_insert_with(|| a.detail.clone());
                        true
                    }
                    None => false,
                }
            }),
        }
    }
}

/// Records `Name: value` of a present field as evidence (the field line as sent).
fn record_field(m: &Message, name: &str, evidence: &mut Option<String>) {
    if evidence.is_none()
        && let Some(h) = m.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name))
    {
        *evidence = Some(format!("{}: {}", h.name, h.value));
    }
}

fn list_items<'a>(m: &'a Message, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    m.header_values(name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|i| !i.is_empty())
}

/// The media type of a message without parameters, lower-cased.
pub fn media_essence(m: &Message) -> Option<String> {
    let ct = m.header("content-type")?;
    let essence = ct.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}
