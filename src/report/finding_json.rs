//! A finding as JSON: the object of `analyze --format jsonl` (one per line) and of the
//! `findings` array of `--format json`. `exchange` is the same object `wirelint exchanges
//! --format jsonl` prints.

use serde::Serialize;

use super::exchange_json::ExchangeJson;
use crate::http::Exchange;
use crate::rules::{ExchangeRef, Finding, Severity, Side};

#[derive(Serialize)]
pub struct FindingJson<'a> {
    pub rule: &'a str,
    pub severity: Severity,
    pub category: &'a str,
    pub message: &'a str,
    pub evidence: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    pub exchange: ExchangeField<'a>,
    /// `"run"` for a finding about the run as a whole (`exchange` is null then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub related: &'a [ExchangeRef],
}

/// The exchange a finding is on: the full object, or (for findings settled at the end of
/// input about an exchange already printed) a reference to it.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ExchangeField<'a> {
    Full(Box<ExchangeJson<'a>>),
    Ref(ExchangeRef),
    /// A run-scope finding: about no exchange.
    None,
}

impl<'a> FindingJson<'a> {
    pub fn new(f: &'a Finding, ex: &'a Exchange, names: &'a [String]) -> Self {
        Self::with(
            f,
            ExchangeField::Full(Box::new(ExchangeJson::new(ex, names))),
        )
    }

    pub fn settled(f: &'a Finding, at: ExchangeRef) -> Self {
        Self::with(f, ExchangeField::Ref(at))
    }

    /// A finding about the run as a whole.
    pub fn run(f: &'a Finding) -> Self {
        FindingJson {
            scope: Some("run"),
            ..Self::with(f, ExchangeField::None)
        }
    }

    fn with(f: &'a Finding, exchange: ExchangeField<'a>) -> Self {
        FindingJson {
            scope: None,
            rule: &f.rule,
            severity: f.severity,
            category: &f.category,
            message: &f.message,
            evidence: &f.evidence,
            side: f.side,
            exchange,
            related: &f.related,
        }
    }
}
