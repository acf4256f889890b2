//! A finding as JSON: the object of `analyze --format jsonl` (one per line) and of the
//! `findings` array of `--format json`. `exchange` is the same object `wirelint exchanges
//! --format jsonl` prints.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use super::exchange_json::ExchangeJson;
use crate::capture::FrameRef;
use crate::http::Exchange;
use crate::rules::span::Span;
use crate::rules::syntax::stateful::clip;
use crate::rules::{ExchangeRef, Finding, Severity, Side, VALUE_MAX};

#[derive(Serialize)]
pub struct FindingJson<'a> {
    pub rule: &'a str,
    pub severity: Severity,
    pub category: &'a str,
    pub message: &'a str,
    pub evidence: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// The part of the message the finding is about (header line, start line, body bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<&'a Span>,
    pub exchange: ExchangeField<'a>,
    /// `"run"` for a finding about the run as a whole (`exchange` is null then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<RelatedJson<'a>>,
}

/// The exchange a finding is on: the full object, or (for findings settled at the end of
/// input about an exchange already printed) a reference to it with its brief.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ExchangeField<'a> {
    Full(Box<ExchangeJson<'a>>),
    Ref(RelatedJson<'a>),
    /// A run-scope finding: about no exchange.
    None,
}

/// Another exchange a finding refers to: where it is (`connection`, `index`) and enough to
/// recognise it without the rest of the output — its request line, host, status and
/// frames. The brief is absent when the exchange is older than [`Briefs`] remembers.
#[derive(Serialize)]
pub struct RelatedJson<'a> {
    pub connection: FrameRef,
    pub index: u32,
    #[serde(flatten)]
    pub brief: Option<&'a Brief>,
}

/// What a reference to an exchange shows of it: its values cut at [`VALUE_MAX`] characters,
/// as in a finding's message (a brief is kept for each of the last [`Briefs::CAPACITY`]
/// exchanges, whatever their request-targets' length).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Brief {
    /// `POST /books HTTP/1.1`, or `null` for a response nobody asked for.
    pub request: Option<String>,
    pub host: Option<String>,
    pub status: Option<u16>,
    /// First and last frame (1-based, as Wireshark counts them).
    pub frames: Option<[u64; 2]>,
}

impl Brief {
    pub fn of(ex: &Exchange) -> Brief {
        let req = ex.request.as_ref();
        Brief {
            request: req.map(|r| {
                format!(
                    "{} {} {}",
                    clip(r.method().unwrap_or("?"), VALUE_MAX),
                    clip(r.target().unwrap_or(""), VALUE_MAX),
                    clip(r.version(), VALUE_MAX)
                )
            }),
            host: req
                .and_then(|r| r.header("host"))
                .map(|h| clip(h, VALUE_MAX)),
            status: ex.response.as_ref().and_then(|r| r.status()),
            frames: ex.frame_span().map(|(a, b)| [a, b]),
        }
    }
}

/// Briefs of the most recent exchanges, so that a finding printed later can describe the
/// exchanges it refers to. Bounded: a stateful rule relates an exchange to recent ones, and
/// a multi-GB capture or a day of `sniff` must not keep every exchange.
pub struct Briefs {
    /// Keyed by connection and index (an [`ExchangeRef`]'s parts).
    by_ref: HashMap<(FrameRef, u32), Brief>,
    order: VecDeque<(FrameRef, u32)>,
    capacity: usize,
}

impl Default for Briefs {
    fn default() -> Self {
        Briefs::with_capacity(Briefs::CAPACITY)
    }
}

impl Briefs {
    /// About 100 bytes each, at most about 700 with values clipped: ~10 MB, at most ~70 MB.
    pub const CAPACITY: usize = 100_000;

    pub fn with_capacity(capacity: usize) -> Briefs {
        Briefs {
            by_ref: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn remember(&mut self, ex: &Exchange) {
        let at = ExchangeRef::of(ex);
        let at = (at.connection, at.index);
        if self.by_ref.insert(at, Brief::of(ex)).is_none() {
            self.order.push_back(at);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.by_ref.remove(&old);
            }
        }
    }

    pub fn related(&self, at: ExchangeRef) -> RelatedJson<'_> {
        RelatedJson {
            connection: at.connection,
            index: at.index,
            brief: self.by_ref.get(&(at.connection, at.index)),
        }
    }
}

impl<'a> FindingJson<'a> {
    /// A finding on `ex`; `briefs` describes its related exchanges.
    pub fn new(f: &'a Finding, ex: &'a Exchange, names: &'a [String], briefs: &'a Briefs) -> Self {
        Self::with(
            f,
            ExchangeField::Full(Box::new(ExchangeJson::new(ex, names))),
            briefs,
        )
    }

    /// A finding settled at the end of input about the exchange `at`, printed before.
    pub fn settled(f: &'a Finding, at: ExchangeRef, briefs: &'a Briefs) -> Self {
        Self::with(f, ExchangeField::Ref(briefs.related(at)), briefs)
    }

    /// A finding about the run as a whole.
    pub fn run(f: &'a Finding) -> Self {
        FindingJson {
            scope: Some("run"),
            rule: &f.rule,
            severity: f.severity,
            category: &f.category,
            message: &f.message,
            evidence: &f.evidence,
            side: f.side,
            span: f.span.as_ref(),
            exchange: ExchangeField::None,
            related: Vec::new(),
        }
    }

    fn with(f: &'a Finding, exchange: ExchangeField<'a>, briefs: &'a Briefs) -> Self {
        FindingJson {
            scope: None,
            rule: &f.rule,
            severity: f.severity,
            category: &f.category,
            message: &f.message,
            evidence: &f.evidence,
            side: f.side,
            span: f.span.as_ref(),
            exchange,
            related: f.related.iter().map(|r| briefs.related(*r)).collect(),
        }
    }
}
