//! `wirelint.toml`: which rules run and how loud they are, suppressions, extra rule folders.
//! Detection is separate from policy: rules say what is wrong, this file says what the user
//! wants to hear about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::rules::{Rule, RuleSet, Severity};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rule ids or categories to run (default: all).
    #[serde(default)]
    pub select: Vec<String>,
    /// Rule ids or categories not to run.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Per-rule settings: `[rules.cookie-without-secure] severity = "error"`.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSettings>,
    #[serde(default)]
    pub suppress: Vec<SuppressFile>,
    /// Extra folders of rule files.
    #[serde(default)]
    pub rule_dirs: Vec<PathBuf>,
    /// TCP ports whose traffic is treated as HTTP even when it does not start like HTTP.
    #[serde(default)]
    pub http_ports: Vec<u16>,
    /// Extra header names and JSON fields whose values are masked.
    #[serde(default)]
    pub redact: Vec<String>,
    /// Bytes the flow tables of all workers may hold together, e.g. `"256MiB"` or a number
    /// of bytes (`--memory-budget` overrides it).
    #[serde(default, deserialize_with = "byte_size")]
    pub memory_budget: Option<usize>,
    /// Content bytes kept per message for the rules, e.g. `"512k"`, `"4MiB"` or a number of
    /// bytes (`--body-cap` overrides it). Sizes and JSON validity cover the whole content
    /// whatever the cap; rules that need the bytes themselves skip content past it.
    #[serde(default, deserialize_with = "byte_size")]
    pub body_cap: Option<usize>,
}

/// A size written as bytes (`1048576`) or with a unit (`512KiB`, `256MiB`, `1G`).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: usize = n
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 256MiB, 1G)"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(usize),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(Some(n)),
        Size::Text(t) => parse_size(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    pub severity: Option<Severity>,
    pub enabled: Option<bool>,
    /// Run-scope rules: the count at which the rule fires.
    pub threshold: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressFile {
    pub rule: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    pub reason: String,
}

/// A compiled suppression.
#[derive(Debug, Clone)]
pub struct Suppression {
    pub rule: String,
    host: Option<GlobMatcher>,
    path: Option<GlobMatcher>,
    pub reason: String,
}

impl Suppression {
    pub fn matches(&self, rule: &str, host: Option<&str>, path: Option<&str>) -> bool {
        self.rule == rule
            && self
                .host
                .as_ref()
                .is_none_or(|g| host.is_some_and(|h| g.is_match(h)))
            && self
                .path
                .as_ref()
                .is_none_or(|g| path.is_some_and(|p| g.is_match(p)))
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for dir in &mut cfg.rule_dirs {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        Ok(cfg)
    }

    /// `--config PATH`, else `./wirelint.toml` when present, else defaults.
    pub fn discover(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        match explicit {
            Some(p) => Ok((Config::load(p)?, Some(p.to_path_buf()))),
            None => {
                let p = PathBuf::from("wirelint.toml");
                if p.is_file() {
                    Ok((Config::load(&p)?, Some(p)))
                } else {
                    Ok((Config::default(), None))
                }
            }
        }
    }

    pub fn suppressions(&self, source: &Path) -> Result<Vec<Suppression>, ConfigError> {
        let glob = |g: &Option<String>| -> Result<Option<GlobMatcher>, ConfigError> {
            g.as_ref()
                .map(|g| {
                    Glob::new(g)
                        .map(|g| g.compile_matcher())
                        .map_err(|e| ConfigError::Invalid {
                            path: source.to_path_buf(),
                            message: format!("suppress: bad glob {g:?}: {e}"),
                        })
                })
                .transpose()
        };
        self.suppress
            .iter()
            .map(|s| {
                Ok(Suppression {
                    rule: s.rule.clone(),
                    host: glob(&s.host)?,
                    path: glob(&s.path)?,
                    reason: s.reason.clone(),
                })
            })
            .collect()
    }

    /// Checks that every id or category the configuration names exists.
    pub fn validate(&self, set: &RuleSet, source: &Path) -> Result<(), ConfigError> {
        let known = |name: &str| set.rules.iter().any(|r| r.id == name || r.category == name);
        let mut unknown: Vec<&str> = self
            .select
            .iter()
            .chain(&self.ignore)
            .map(String::as_str)
            .chain(self.rules.keys().map(String::as_str))
            .chain(self.suppress.iter().map(|s| s.rule.as_str()))
            .filter(|n| !known(n))
            .collect();
        unknown.dedup();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                path: source.to_path_buf(),
                message: format!("unknown rule ids or categories: {}", unknown.join(", ")),
            })
        }
    }
}

/// Selection and severity from the command line and the configuration file, applied to a
/// rule set.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    pub select: Vec<String>,
    pub ignore: Vec<String>,
    pub severity: BTreeMap<String, Severity>,
    pub enabled: BTreeMap<String, bool>,
}

impl Policy {
    pub fn from_config(cfg: &Config) -> Policy {
        Policy {
            select: cfg.select.clone(),
            ignore: cfg.ignore.clone(),
            severity: cfg
                .rules
                .iter()
                .filter_map(|(id, s)| s.severity.map(|sev| (id.clone(), sev)))
                .collect(),
            enabled: cfg
                .rules
                .iter()
                .filter_map(|(id, s)| s.enabled.map(|e| (id.clone(), e)))
                .collect(),
        }
    }

    fn names(list: &[String], rule: &Rule) -> bool {
        list.iter()
            .any(|n| n == &rule.id || n == &rule.category || n == "all")
    }

    /// Whether a rule runs, and at which severity.
    pub fn decide(&self, rule: &Rule) -> (bool, Severity) {
        let mut on = rule.enabled && (self.select.is_empty() || Self::names(&self.select, rule));
        if Self::names(&self.ignore, rule) {
            on = false;
        }
        if let Some(e) = self.enabled.get(&rule.id) {
            on = *e;
        }
        (
            on,
            self.severity
                .get(&rule.id)
                .copied()
                .unwrap_or(rule.severity),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_budget_takes_bytes_or_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
        let c: Config = toml::from_str("memory_budget = \"64MiB\"").expect("parses");
        assert_eq!(c.memory_budget, Some(64 << 20));
        let c: Config = toml::from_str("memory_budget = 4096").expect("parses");
        assert_eq!(c.memory_budget, Some(4096));
        assert!(toml::from_str::<Config>("memory_budget = \"lots\"").is_err());
    }

    #[test]
    fn body_cap_takes_bytes_or_units() {
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4m"), Ok(4 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("big").is_err());
        let c: Config = toml::from_str("body_cap = \"4m\"").expect("parses");
        assert_eq!(c.body_cap, Some(4 << 20));
        let c: Config = toml::from_str("body_cap = 1000").expect("parses");
        assert_eq!(c.body_cap, Some(1000));
        assert_eq!(Config::default().body_cap, None);
        assert!(toml::from_str::<Config>("body_cap = \"lots\"").is_err());
    }
}
