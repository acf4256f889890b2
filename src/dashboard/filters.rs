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
use crate::store::read::{
    EndpointColumn, FindingFilter, FindingOrder, MAX_COMBINATIONS, SortColumn,
};
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
    /// HTTP versions, a list: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` (or `1.1`, `2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `yes` (decrypted TLS), `no` (cleartext), or a TLS version (`TLS 1.3`, `1.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// The sort column: `time` (default), `severity`, `rule`, `host`, `path`, `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `asc` or `desc` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Keyset cursor: the id of the last finding of the previous page (in the default
    /// order, newest first, the findings with a smaller id).
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
                "version" => &mut q.version,
                "tls" => &mut q.tls,
                "sort" => &mut q.sort,
                "dir" => &mut q.dir,
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
            &mut self.version,
            &mut self.tls,
            &mut self.sort,
            &mut self.dir,
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

    /// The order asked for (`sort`, `dir`). Errors name the parameter.
    pub fn order(&self) -> Result<FindingOrder, PageError> {
        let column = match self.sort.as_deref().map(str::trim) {
            None => SortColumn::Time,
            Some(name) => SortColumn::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
                PageError::bad(
                    "sort",
                    format!(
                        "sort={name:?} is not one of {}",
                        SortColumn::NAMES.join(", ")
                    ),
                )
            })?,
        };
        let ascending = match self.dir.as_deref().map(|d| d.trim().to_ascii_lowercase()) {
            None => false,
            Some(d) if d == "asc" => true,
            Some(d) if d == "desc" => false,
            Some(d) => {
                return Err(PageError::bad(
                    "dir",
                    format!("dir={d:?} is not asc or desc"),
                ));
            }
        };
        Ok(FindingOrder { column, ascending })
    }

    /// The address of this list sorted by `column` (a table header's link): descending
    /// first, ascending when it is already sorted descending by it; every filter kept, the
    /// cursor dropped.
    pub fn sort_href(&self, column: &str) -> String {
        let current = self.order().unwrap_or_default();
        let asc = current.column.name() == column && !current.ascending;
        let q = FindingsQuery {
            before: None,
            sort: (column != "time" || asc).then(|| column.to_string()),
            dir: asc.then(|| "asc".to_string()),
            ..self.clone()
        };
        let rest = serde_urlencoded::to_string(&q).unwrap_or_default();
        if rest.is_empty() {
            "/findings".into()
        } else {
            format!("/findings?{rest}")
        }
    }

    /// `aria-sort` of a column header: `descending`, `ascending` or `none`.
    pub fn aria_sort(&self, column: &str) -> &'static str {
        match self.order() {
            Ok(o) if o.column.name() == column => {
                if o.ascending {
                    "ascending"
                } else {
                    "descending"
                }
            }
            _ => "none",
        }
    }

    /// The arrow a sorted column's header shows (` ▲`, ` ▼`), or nothing.
    pub fn sort_mark(&self, column: &str) -> &'static str {
        match self.aria_sort(column) {
            "ascending" => " ▲",
            "descending" => " ▼",
            _ => "",
        }
    }

    /// The order in words: "newest first", "by host, A to Z".
    pub fn order_text(&self) -> String {
        let o = self.order().unwrap_or_default();
        match (o.column, o.ascending) {
            (SortColumn::Time, false) => "newest first".into(),
            (SortColumn::Time, true) => "oldest first".into(),
            (SortColumn::Severity, false) => "by severity, worst first".into(),
            (SortColumn::Severity, true) => "by severity, info first".into(),
            (SortColumn::Status, asc) => {
                format!(
                    "by status, {}",
                    if asc { "lowest first" } else { "highest first" }
                )
            }
            (c, asc) => format!("by {}, {}", c.name(), if asc { "A to Z" } else { "Z to A" }),
        }
    }

    /// The `/api/events` address that follows this filter from finding `after` on.
    pub fn live(&self, after: i64) -> String {
        let q = FindingsQuery {
            before: None,
            limit: None,
            sort: None,
            dir: None,
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
        if self.version.is_some() || self.tls.is_some() {
            let versions: Option<Vec<String>> = self
                .version
                .as_deref()
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(http_version)
                        .collect::<Result<_, _>>()
                })
                .transpose()?;
            let tls = self.tls.as_deref().map(tls_filter).transpose()?;
            let pairs = r
                .transports()?
                .into_iter()
                // Every exchange has a version: a pair without one is of findings about a
                // run as a whole, which no transport filter means.
                .filter(|(v, t)| {
                    v.is_some()
                        && versions
                            .as_ref()
                            .is_none_or(|vs| v.as_ref().is_some_and(|v| vs.contains(v)))
                        && tls.as_ref().is_none_or(|want| match want {
                            TlsFilter::Yes => t.is_some(),
                            TlsFilter::No => t.is_none(),
                            TlsFilter::Version(x) => t.as_deref() == Some(x.as_str()),
                        })
                })
                .collect();
            f.transports = Some(pairs);
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
            ("version", &self.version),
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
        match self.tls.as_deref().map(tls_filter) {
            Some(Ok(TlsFilter::Yes)) => parts.push("over TLS".into()),
            Some(Ok(TlsFilter::No)) => parts.push("in clear".into()),
            Some(Ok(TlsFilter::Version(v))) => parts.push(format!("over {v}")),
            _ => {}
        }
        if self.from.is_some() || self.to.is_some() {
            parts.push("a time range".into());
        }
        parts.join(" · ")
    }
}

/// What `tls=` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TlsFilter {
    Yes,
    No,
    /// `TLS 1.2`, `TLS 1.3` (as the store writes it).
    Version(String),
}

/// `yes`/`no` (also `true`/`false`, `1`/`0`), or a TLS version: `TLS 1.3`, `tls1.3`, `1.3`.
fn tls_filter(v: &str) -> Result<TlsFilter, PageError> {
    let l = v.trim().to_ascii_lowercase();
    match l.as_str() {
        "yes" | "true" | "1" | "on" => return Ok(TlsFilter::Yes),
        "no" | "false" | "0" | "off" => return Ok(TlsFilter::No),
        _ => {}
    }
    let n = l
        .strip_prefix("tls")
        .unwrap_or(&l)
        .trim()
        .trim_start_matches('v');
    match n {
        "1.2" | "1.3" => Ok(TlsFilter::Version(format!("TLS {n}"))),
        _ => Err(PageError::bad(
            "tls",
            format!("tls={v:?} is not yes, no, TLS 1.2 or TLS 1.3"),
        )),
    }
}

/// An HTTP version as the store writes it: `HTTP/1.1` from `http/1.1`, `1.1`, `h2`, `2`.
fn http_version(v: &str) -> Result<String, PageError> {
    let l = v.trim().to_ascii_lowercase();
    let n = l.strip_prefix("http/").unwrap_or(&l);
    let n = match n {
        "h2" | "h2c" | "2.0" => "2",
        "h3" | "3.0" => "3",
        other => other,
    };
    match n {
        "0.9" | "1.0" | "1.1" | "2" | "3" => Ok(format!("HTTP/{n}")),
        _ => Err(PageError::bad(
            "version",
            format!("version={v:?} is not one of HTTP/1.0, HTTP/1.1, HTTP/2"),
        )),
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

    #[test]
    fn versions_and_tls_read_as_the_store_writes_them() {
        assert_eq!(http_version("1.1").ok().as_deref(), Some("HTTP/1.1"));
        assert_eq!(http_version("http/2").ok().as_deref(), Some("HTTP/2"));
        assert_eq!(http_version("h2").ok().as_deref(), Some("HTTP/2"));
        assert!(http_version("HTTP/7").is_err());
        assert_eq!(tls_filter("yes").ok(), Some(TlsFilter::Yes));
        assert_eq!(tls_filter("No").ok(), Some(TlsFilter::No));
        assert_eq!(
            tls_filter("tls1.3").ok(),
            Some(TlsFilter::Version("TLS 1.3".into()))
        );
        assert_eq!(
            tls_filter("TLS 1.2").ok(),
            Some(TlsFilter::Version("TLS 1.2".into()))
        );
        assert!(tls_filter("1.1").is_err());
    }

    #[test]
    fn sort_links_keep_the_filters_and_flip_the_direction() {
        let q = FindingsQuery::parse(Some("run=2&host=api&before=99")).expect("parses");
        assert_eq!(q.sort_href("host"), "/findings?run=2&host=api&sort=host");
        assert_eq!(q.aria_sort("time"), "descending");
        assert_eq!(q.aria_sort("host"), "none");
        let q = FindingsQuery::parse(Some("run=2&sort=host")).expect("parses");
        assert_eq!(q.sort_href("host"), "/findings?run=2&sort=host&dir=asc");
        assert_eq!(q.aria_sort("host"), "descending");
        assert_eq!(q.sort_href("time"), "/findings?run=2");
        let q = FindingsQuery::parse(Some("sort=status&dir=asc")).expect("parses");
        assert_eq!(q.aria_sort("status"), "ascending");
        assert_eq!(q.sort_href("status"), "/findings?sort=status");
        assert!(
            FindingsQuery::parse(Some("sort=nope"))
                .expect("parses")
                .order()
                .is_err()
        );
        assert!(
            FindingsQuery::parse(Some("dir=up"))
                .expect("parses")
                .order()
                .is_err()
        );
    }
}
