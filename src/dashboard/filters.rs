//! The findings filters as the address bar and the form write them, and their resolution
//! into a [`FindingFilter`] of exact values.
//!
//! A value is a case-insensitive substring (`host=espn`, `method=get`), a quoted exact
//! value (`host="www.espn.com"`: what every count link of the dashboard writes, so that the
//! list it opens has exactly that count), or `(none)` for "no value". Statuses take classes
//! (`4xx`) and lists (`404,5xx`); severities take lists (`error,warning`, or the parameter
//! repeated). Substrings are looked up in the small rollup tables, never in `findings`.

use serde::{Deserialize, Serialize};

use super::errors::PageError;
use crate::rules::Severity;
use crate::store::read::{EndpointColumn, FindingFilter, MAX_COMBINATIONS};
use crate::store::{Reader, RunId};

/// Findings per page, unless `limit` says otherwise.
pub const PAGE_SIZE: usize = 100;
/// The largest `limit` served.
pub const MAX_LIMIT: usize = 1000;

/// The findings filters as query parameters; empty values (from the form) mean "any".
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct FindingsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A path template, e.g. `/users/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Capture time range `[from, to)`: ns since the epoch or RFC 3339; needs `run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Keyset cursor: findings with a smaller id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// Parses a number parameter; the error names the parameter.
pub fn number<T: std::str::FromStr>(
    name: &str,
    v: &Option<String>,
) -> Result<Option<T>, PageError> {
    v.as_deref()
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| PageError::bad(name, format!("{name}={s:?} is not a number")))
        })
        .transpose()
}

/// `limit`, defaulting to `default` and capped at [`MAX_LIMIT`].
pub fn limit(v: &Option<String>, default: usize) -> Result<usize, PageError> {
    Ok(number::<usize>("limit", v)?
        .unwrap_or(default)
        .clamp(1, MAX_LIMIT))
}

/// One filter value as written.
#[derive(Debug, PartialEq, Eq)]
enum Term<'a> {
    Exact(&'a str),
    Nothing,
    Contains(&'a str),
}

fn term(v: &str) -> Term<'_> {
    let v = v.trim();
    if v == "(none)" {
        Term::Nothing
    } else if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        Term::Exact(&v[1..v.len() - 1])
    } else {
        Term::Contains(v)
    }
}

/// The parameter value that selects exactly `v` (`(none)` for an empty one).
pub fn exact(v: &str) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        format!("\"{v}\"")
    }
}

/// A capture time: ns since the epoch or RFC 3339.
fn time(name: &str, v: &str) -> Result<i64, PageError> {
    let v = v.trim();
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    v.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| i64::try_from(t.as_nanosecond()).ok())
        .ok_or_else(|| {
            PageError::bad(
                name,
                format!("{name}={v:?} is neither nanoseconds since 1970 nor an RFC 3339 time"),
            )
        })
}

impl FindingsQuery {
    /// Reads a query string, joining a repeated `severity` (the form's checkboxes) into a
    /// list.
    pub fn parse(raw: Option<&str>) -> Result<FindingsQuery, PageError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| PageError::bad("", format!("the query string does not parse: {e}")))?;
        let mut q = FindingsQuery::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "run" => &mut q.run,
                "rule" => &mut q.rule,
                "severity" => {
                    q.severity = Some(match q.severity.take() {
                        Some(prev) if !prev.trim().is_empty() => format!("{prev},{v}"),
                        _ => v,
                    });
                    continue;
                }
                "category" => &mut q.category,
                "host" => &mut q.host,
                "method" => &mut q.method,
                "status" => &mut q.status,
                "path" => &mut q.path,
                "from" => &mut q.from,
                "to" => &mut q.to,
                "before" => &mut q.before,
                "limit" => &mut q.limit,
                _ => continue,
            };
            *slot = Some(v);
        }
        Ok(q.normalized())
    }

    /// The same query with blank values dropped.
    pub fn normalized(mut self) -> Self {
        for v in [
            &mut self.run,
            &mut self.rule,
            &mut self.severity,
            &mut self.category,
            &mut self.host,
            &mut self.method,
            &mut self.status,
            &mut self.path,
            &mut self.from,
            &mut self.to,
            &mut self.before,
            &mut self.limit,
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
        if self.run.as_deref() == Some("all") {
            self.run = None;
        }
        self
    }

    /// The `/api/events` address that follows this filter from finding `after` on.
    pub fn live(&self, after: i64) -> String {
        let q = FindingsQuery {
            before: None,
            limit: None,
            ..self.clone()
        };
        let rest = serde_urlencoded::to_string(&q).unwrap_or_default();
        if rest.is_empty() {
            format!("/api/events?after={after}")
        } else {
            format!("/api/events?after={after}&{rest}")
        }
    }

    /// The query string of the page after this one.
    pub fn next(&self, before: i64) -> String {
        let next = FindingsQuery {
            before: Some(before.to_string()),
            ..self.clone()
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    }

    /// The query string without the cursor (for the CSV export and the form).
    pub fn without_cursor(&self) -> String {
        let q = FindingsQuery {
            before: None,
            ..self.clone()
        };
        serde_urlencoded::to_string(&q).unwrap_or_default()
    }

    /// The severities asked for (checked boxes).
    pub fn severities(&self) -> Vec<&str> {
        self.severity
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The filter of exact values this query stands for, looking substrings up in the
    /// rollup tables. Errors name the parameter.
    pub fn resolve(&self, r: &Reader) -> Result<FindingFilter, PageError> {
        let run: Option<RunId> = number("run", &self.run)?;
        if let Some(id) = run
            && r.run(id)?.is_none()
        {
            return Err(PageError::bad(
                "run",
                format!("no run {id} in this database"),
            ));
        }
        let mut f = FindingFilter {
            run,
            ..FindingFilter::default()
        };
        if let Some(v) = &self.rule {
            f.rules = Some(match term(v) {
                Term::Exact(x) => vec![x.to_string()],
                Term::Nothing => Vec::new(),
                Term::Contains(x) => r.rule_values(false, x)?,
            });
        }
        if let Some(v) = &self.category {
            f.categories = Some(match term(v) {
                Term::Exact(x) => vec![x.to_string()],
                Term::Nothing => Vec::new(),
                Term::Contains(x) => r.rule_values(true, x)?,
            });
        }
        let endpoint = |col, v: &Option<String>| -> Result<_, PageError> {
            Ok(match v.as_deref().map(term) {
                None => None,
                Some(Term::Exact(x)) => Some(vec![Some(x.to_string())]),
                Some(Term::Nothing) => Some(vec![None]),
                Some(Term::Contains(x)) => Some(
                    r.endpoint_values(col, x, run)?
                        .into_iter()
                        .map(|v| (!v.is_empty()).then_some(v))
                        .collect(),
                ),
            })
        };
        f.hosts = endpoint(EndpointColumn::Host, &self.host)?;
        f.methods = endpoint(EndpointColumn::Method, &self.method)?;
        f.path_templates = endpoint(EndpointColumn::PathTemplate, &self.path)?;
        if self.severity.is_some() {
            let mut sev = Vec::new();
            for s in self.severities() {
                let v = Severity::parse(s).ok_or_else(|| {
                    PageError::bad(
                        "severity",
                        format!("severity={s:?} is not one of error, warning, info"),
                    )
                })?;
                if !sev.contains(&v) {
                    sev.push(v);
                }
            }
            f.severities = Some(sev);
        }
        if let Some(v) = &self.status {
            let mut out: Vec<Option<u16>> = Vec::new();
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let lower = item.to_ascii_lowercase();
                if lower == "(none)" {
                    out.push(None);
                } else if let Some(d) = lower
                    .strip_suffix("xx")
                    .and_then(|d| d.parse::<u16>().ok())
                    .filter(|d| (1..=9).contains(d))
                {
                    out.extend(
                        r.statuses_between(d * 100, d * 100 + 99)?
                            .into_iter()
                            .map(Some),
                    );
                } else {
                    let n: u16 = item.parse().map_err(|_| {
                        PageError::bad(
                            "status",
                            format!("status={item:?} is not a status code (404), a class (4xx) or (none)"),
                        )
                    })?;
                    out.push(Some(n));
                }
            }
            out.dedup();
            f.statuses = Some(out);
        }
        let from = self.from.as_deref().map(|v| time("from", v)).transpose()?;
        let to = self.to.as_deref().map(|v| time("to", v)).transpose()?;
        if from.is_some() || to.is_some() {
            if run.is_none() {
                return Err(PageError::bad(
                    "from",
                    "a time range is within one run: choose a run".to_string(),
                ));
            }
            f.time = Some((from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)));
        }
        if f.combinations() > MAX_COMBINATIONS {
            let broad = [
                ("host", f.hosts.as_ref().map_or(0, Vec::len)),
                ("path", f.path_templates.as_ref().map_or(0, Vec::len)),
                ("rule", f.rules.as_ref().map_or(0, Vec::len)),
                ("category", f.categories.as_ref().map_or(0, Vec::len)),
                ("method", f.methods.as_ref().map_or(0, Vec::len)),
                ("status", f.statuses.as_ref().map_or(0, Vec::len)),
            ]
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or("host", |(name, _)| name);
            return Err(PageError::bad(
                broad,
                format!(
                    "the filters match too many values together (more than {MAX_COMBINATIONS} \
                     combinations); narrow {broad}"
                ),
            ));
        }
        Ok(f)
    }

    /// The filter in words, e.g. "run 3 · severity error · host contains \"espn\"".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match &self.run {
            Some(r) => parts.push(format!("run {r}")),
            None => parts.push("all runs".to_string()),
        }
        for (name, v) in [
            ("rule", &self.rule),
            ("severity", &self.severity),
            ("category", &self.category),
            ("host", &self.host),
            ("method", &self.method),
            ("status", &self.status),
            ("path", &self.path),
        ] {
            if let Some(v) = v {
                let said = match term(v) {
                    Term::Exact(x) => format!("{name} {x}"),
                    Term::Nothing => format!("no {name}"),
                    Term::Contains(x) if matches!(name, "severity" | "status") => {
                        format!("{name} {x}")
                    }
                    Term::Contains(x) => format!("{name} contains \"{x}\""),
                };
                parts.push(said);
            }
        }
        if self.from.is_some() || self.to.is_some() {
            parts.push("a time range".into());
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_substrings_unless_quoted() {
        assert_eq!(term("espn"), Term::Contains("espn"));
        assert_eq!(term(" \"espn.com\" "), Term::Exact("espn.com"));
        assert_eq!(term("(none)"), Term::Nothing);
        assert_eq!(term("\""), Term::Contains("\""));
        assert_eq!(exact(""), "(none)");
        assert_eq!(exact("GET"), "\"GET\"");
    }

    #[test]
    fn repeated_severities_join_and_blanks_drop() {
        let q = FindingsQuery::parse(Some("severity=error&severity=warning&host=&run=all"))
            .expect("parses");
        assert_eq!(q.severities(), ["error", "warning"]);
        assert_eq!(q.host, None);
        assert_eq!(q.run, None);
    }

    #[test]
    fn times_are_nanoseconds_or_rfc3339() {
        assert_eq!(time("from", "1000").ok(), Some(1000));
        assert_eq!(
            time("from", "1970-01-01T00:00:01Z").ok(),
            Some(1_000_000_000)
        );
        assert!(time("from", "yesterday").is_err());
    }
}
