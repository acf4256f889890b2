//! `wirelint analyze FILE…`: run the rules over captures and report the findings.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};

use super::input::Input;
use super::{AnalyzeArgs, ColorChoice, FailOn, FindingFormat, RuleOptions};
use crate::config::{Config, Policy, Suppression};
use crate::http::Exchange;
use crate::pipeline::{Analyzed, Output, PipelineConfig};
use crate::redact::Redactor;
use crate::report::finding_json::{Briefs, FindingJson};
use crate::report::findings_text::{SeverityTotals, TextReport, exchange_location};
use crate::report::{count, sarif, summary};
use crate::rules::{ExchangeRef, Finding, RuleSet, Severity};
use crate::store::{RunSource, Store, WriterConfig};

/// Loads the catalogue with the user's rule folders and policy applied.
pub fn load_rules(
    config: &Config,
    config_path: Option<&std::path::Path>,
    extra_dirs: &[std::path::PathBuf],
    select: &[String],
    ignore: &[String],
) -> anyhow::Result<RuleSet> {
    let mut set = RuleSet::builtin().context("loading the built-in rules")?;
    for dir in config.rule_dirs.iter().chain(extra_dirs) {
        set.add_dir(dir)
            .with_context(|| format!("loading rules from {}", dir.display()))?;
    }
    if let Some(path) = config_path {
        config.validate(&set, path)?;
    }
    let mut policy = Policy::from_config(config);
    policy.select.extend(select.iter().cloned());
    policy.ignore.extend(ignore.iter().cloned());
    for name in select.iter().chain(ignore) {
        if !set
            .rules
            .iter()
            .any(|r| &r.id == name || &r.category == name || name == "all")
        {
            anyhow::bail!("unknown rule id or category {name:?} (see `wirelint rules`)");
        }
    }
    let mut set = set.configured(&policy);
    for rule in &mut set.rules {
        let Some(t) = config.rules.get(&rule.id).and_then(|s| s.threshold) else {
            continue;
        };
        match Arc::make_mut(rule).run.as_mut() {
            Some(run) => run.threshold = t,
            None => anyhow::bail!("rules.{}: only run-scope rules take a threshold", rule.id),
        }
    }
    Ok(set)
}

pub(super) fn suppressed(sups: &[Suppression], f: &Finding, ex: &Exchange) -> bool {
    if sups.is_empty() {
        return false;
    }
    let req = ex.request.as_ref();
    let host = req.and_then(|r| r.host());
    let path = req
        .and_then(|r| r.target())
        .map(|t| t.split('?').next().unwrap_or(t));
    sups.iter().any(|s| s.matches(&f.rule, host, path))
}

fn threshold(fail_on: FailOn) -> Option<Severity> {
    match fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    }
}

/// How long streamed output may wait in the buffer before it is flushed.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Where `analyze` records its run without `--db` (and `serve` reads without `--db`).
pub const DEFAULT_DB: &str = "wirelint.db";

/// The configuration, the rules it and the command line select, and its suppressions.
pub(super) struct Checking {
    pub config: Config,
    pub rules: Arc<RuleSet>,
    pub suppressions: Vec<Suppression>,
}

/// Loads what `analyze` and `sniff` check traffic with.
pub(super) fn checking(opts: &RuleOptions) -> anyhow::Result<Checking> {
    let (config, config_path) = Config::discover(opts.config.as_deref())?;
    let rules = Arc::new(load_rules(
        &config,
        config_path.as_deref(),
        &opts.rules,
        &opts.select,
        &opts.ignore,
    )?);
    let suppressions = match &config_path {
        Some(p) => config.suppressions(p)?,
        None => Vec::new(),
    };
    Ok(Checking {
        config,
        rules,
        suppressions,
    })
}

pub fn run(args: AnalyzeArgs, color: ColorChoice) -> anyhow::Result<ExitCode> {
    let Checking {
        config,
        rules,
        suppressions,
    } = checking(&args.rule_options)?;
    let body_cap = args
        .body_cap
        .or(config.body_cap)
        .unwrap_or(crate::http::HttpConfig::default().body_cap);
    let input = Input::open(&args.files, args.filter.as_deref(), body_cap)?;
    let names = input.file_names();
    let mut progress = super::progress::Progress::new(input.total_bytes(), args.quiet);
    let mut cfg = PipelineConfig {
        workers: args.workers,
        filter: args.filter.clone(),
        rules: Some(Arc::clone(&rules)),
        redact: Some(Redactor::new(&config.redact)),
        tls: args.tls.load(&input.tls_secrets())?,
        reassembly: super::reassembly(args.memory_budget, config.memory_budget),
        http_ports: config.http_ports.as_slice().into(),
        ..PipelineConfig::default()
    };
    if let Some(cap) = args.body_cap.or(config.body_cap) {
        cfg.http.body_cap = cap;
    }
    // The run is recorded in ./wirelint.db unless told otherwise (SPEC: `--db` defaults to
    // it), so that `wirelint serve` in the same folder shows it. With --serve, the address
    // is bound before anything is analysed: a taken port fails at once and records no run.
    let db_path = if args.no_db {
        None
    } else {
        Some(
            args.db
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_DB)),
        )
    };
    let listener: Option<TcpListener> = args
        .serve
        .as_deref()
        .map(|text| super::serve::bind_dashboard(text, args.token.as_deref(), "--serve ADDR"))
        .transpose()?;
    // Opened before any output, so that a bad path fails the run up front.
    let db = match &db_path {
        Some(path) => {
            let store = Store::open(path).map_err(|e| {
                let err = anyhow::Error::new(e);
                if args.db.is_none() {
                    err.context("recording the run in the default database (--no-db skips it)")
                } else {
                    err
                }
            })?;
            let source = RunSource::Files {
                files: names.clone(),
            };
            let run = store.begin_run(&source)?;
            let writer_cfg = WriterConfig {
                redact: cfg.redact.clone(),
                mask_json: !config.redact.is_empty(),
                ..WriterConfig::default()
            };
            Some(store.writer_with(run, &source, writer_cfg)?)
        }
        None => None,
    };
    let store_err = |e: crate::store::StoreError| std::io::Error::other(e);

    let stdout = std::io::stdout();
    let color = color.enabled(stdout.is_terminal());
    let mut out = BufWriter::with_capacity(256 * 1024, stdout);
    let format = args.format;
    let mut text = TextReport::default();
    let mut worst: Option<Severity> = None;
    let mut totals = SeverityTotals::default();
    // Briefs of recent exchanges, for the `related` exchanges of JSON findings.
    let json_output = matches!(format, FindingFormat::Json | FindingFormat::Jsonl);
    let mut briefs = Briefs::default();
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut anomalies: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut first_json = true;
    let rule_index: BTreeMap<&str, usize> = rules
        .rules
        .iter()
        .filter(|r| r.enabled)
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();

    match format {
        FindingFormat::Json => write!(out, "{{\"findings\":[")?,
        FindingFormat::Sarif => {
            let driver = serde_json::to_string(&sarif::driver(&rules))?;
            write!(
                out,
                "{{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\",\"runs\":[{{\"tool\":{{\"driver\":{driver}}},\"results\":["
            )?;
        }
        _ => {}
    }

    // `at` names the exchange of a finding settled at the end of input (`ex` is `None`
    // then: that exchange was already reported); both are `None` for a run-scope finding.
    let mut emit = |f: &Finding,
                    ex: Option<&Exchange>,
                    at: Option<ExchangeRef>,
                    briefs: &Briefs,
                    out: &mut BufWriter<std::io::Stdout>|
     -> std::io::Result<()> {
        worst = Some(worst.map_or(f.severity, |w| w.max(f.severity)));
        totals.add(f.severity);
        *by_rule.entry(f.rule.clone()).or_default() += 1;
        let capture_of = |ex: &Exchange| {
            let file = ex
                .request
                .as_ref()
                .or(ex.response.as_ref())
                .map_or(0, |m| m.head_frame.file);
            names.get(usize::from(file)).cloned().unwrap_or_default()
        };
        match format {
            FindingFormat::Text => {
                text.add(f, || match (ex, at) {
                    (Some(ex), _) => exchange_location(ex),
                    (None, None) => format!("the run ({})", names.join(", ")),
                    (None, Some(_)) => String::new(),
                });
                Ok(())
            }
            FindingFormat::Jsonl | FindingFormat::Json => {
                if format == FindingFormat::Json && !std::mem::take(&mut first_json) {
                    out.write_all(b",")?;
                }
                let json = match (ex, at) {
                    (Some(ex), _) => {
                        serde_json::to_writer(&mut *out, &FindingJson::new(f, ex, &names, briefs))
                    }
                    (None, Some(at)) => {
                        serde_json::to_writer(&mut *out, &FindingJson::settled(f, at, briefs))
                    }
                    (None, None) => serde_json::to_writer(&mut *out, &FindingJson::run(f)),
                };
                json.map_err(std::io::Error::from)?;
                if format == FindingFormat::Jsonl {
                    out.write_all(b"\n")?;
                }
                Ok(())
            }
            FindingFormat::Sarif => {
                if !std::mem::take(&mut first_json) {
                    out.write_all(b",")?;
                }
                let capture = ex
                    .map(capture_of)
                    .unwrap_or_else(|| names.first().cloned().unwrap_or_default());
                let idx = rule_index.get(f.rule.as_str()).copied().unwrap_or(0);
                serde_json::to_writer(&mut *out, &sarif::result(f, ex, &capture, idx))
                    .map_err(std::io::Error::from)
            }
        }
    };

    // First SIGINT/SIGTERM: stop reading, drain what was read, report it, exit 130/143.
    // A second one exits at once. The conditional handler is registered first so that it
    // sees the flag as it was.
    let stop = Arc::new(AtomicBool::new(false));
    let signalled = [
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    ];
    for (sig, code, flag) in [(SIGINT, 130, &signalled[0]), (SIGTERM, 143, &signalled[1])] {
        signal_hook::flag::register_conditional_shutdown(sig, code, Arc::clone(&stop))
            .context("installing the signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(flag))
            .context("installing the signal handlers")?;
    }

    // Streamed formats reach the reader as they are produced: the reader thread flushes
    // what the collector wrote each time it reports progress (every 8 MiB read) when
    // FLUSH_EVERY has passed, so a finding does not wait for the end of a long run.
    let streamed = format == FindingFormat::Jsonl;
    let mut last_flush = Instant::now();
    let shared = std::sync::Mutex::new(out);
    let poisoned = || std::io::Error::other("the output lock was poisoned");
    let mut exchanges = 0u64;
    let result = input.run_until(
        &cfg,
        Arc::clone(&stop),
        |item| {
            let mut guard = shared.lock().map_err(|_| poisoned())?;
            let out = &mut *guard;
            match item {
                Output::Exchange(Analyzed {
                    exchange,
                    mut findings,
                }) => {
                    exchanges += 1;
                    for name in exchange.anomaly_names() {
                        *anomalies.entry(name).or_default() += 1;
                    }
                    findings.retain(|f| !suppressed(&suppressions, f, &exchange));
                    if json_output {
                        briefs.remember(&exchange);
                    }
                    for f in &findings {
                        emit(
                            f,
                            Some(&exchange),
                            Some(ExchangeRef::of(&exchange)),
                            &briefs,
                            out,
                        )?;
                    }
                    match &db {
                        Some(w) => w.write(Analyzed { exchange, findings }).map_err(store_err),
                        None => Ok(()),
                    }
                }
                Output::Settled(at, f) => {
                    emit(&f, None, Some(at), &briefs, out)?;
                    match &db {
                        Some(w) => w.settled(at, f).map_err(store_err),
                        None => Ok(()),
                    }
                }
            }
        },
        |done| {
            progress.update(done);
            if streamed
                && last_flush.elapsed() >= FLUSH_EVERY
                && let Ok(mut out) = shared.try_lock()
                && !out.buffer().is_empty()
            {
                // A failed write shows again at the next one, where it stops the run.
                let _ = out.flush();
                last_flush = Instant::now();
            }
        },
    );
    let mut out = shared.into_inner().map_err(|_| poisoned())?;
    progress.finish();
    let run_summary = match result {
        Ok(s) => s,
        Err(e) => {
            // The writer's own error (which names the database) explains a stopped sink
            // better than the pipeline's; otherwise keep what was analysed so far.
            if let Some(w) = db {
                w.close()?;
            }
            return Err(anyhow::Error::new(e).context("analysis failed"));
        }
    };
    let interrupted = if signalled[1].load(Ordering::Relaxed) {
        Some(("SIGTERM", 143))
    } else if signalled[0].load(Ordering::Relaxed) {
        Some(("SIGINT", 130))
    } else {
        None
    };
    // Findings about the run as a whole (floods, evictions, drops): once each, with counts.
    for f in crate::rules::run::findings(&rules, &run_summary.counters()) {
        emit(&f, None, None, &briefs, &mut out)?;
        if let Some(w) = &db {
            w.run_finding(f)?;
        }
    }
    if let (Some(w), Some((reason, _))) = (&db, interrupted) {
        w.interrupted(reason)?;
    }
    let written = db.map(|w| w.finish(&run_summary)).transpose()?;
    text.exchanges = exchanges;
    match format {
        FindingFormat::Text => out.write_all(text.render(&rules, color).as_bytes())?,
        FindingFormat::Json => {
            let summary = serde_json::json!({
                "exchanges": exchanges,
                "findings_by_severity": totals,
                "findings_by_rule": by_rule,
                "run": run_summary,
            });
            write!(out, "],\"summary\":{summary}}}")?;
            out.write_all(b"\n")?;
        }
        FindingFormat::Sarif => {
            let artifacts: Vec<serde_json::Value> = names
                .iter()
                .map(|n| serde_json::json!({"location": {"uri": n}}))
                .collect();
            write!(
                out,
                "],\"artifacts\":{}}}]}}",
                serde_json::Value::Array(artifacts)
            )?;
            out.write_all(b"\n")?;
        }
        FindingFormat::Jsonl => {}
    }
    out.flush().context("writing output")?;
    if !args.quiet {
        if let Some((reason, _)) = interrupted {
            eprintln!("wirelint: interrupted by {reason}: the report covers what was read");
        }
        eprint!("{}", summary::render(&run_summary, &anomalies));
        if let (Some(w), Some(path)) = (written, &db_path) {
            eprintln!(
                "  database: run {} written to {} ({}, {})",
                w.run,
                path.display(),
                count(w.exchanges, "exchange", "exchanges"),
                count(w.findings, "finding", "findings")
            );
        }
    }
    // Never silenced: the report above does not cover what these name.
    eprint!("{}", summary::warnings(&run_summary));
    if let Some((_, code)) = interrupted {
        return Ok(ExitCode::from(code));
    }
    let fail = threshold(args.fail_on).is_some_and(|t| worst.is_some_and(|w| w >= t));
    if let (Some(listener), Some(path)) = (listener, &db_path) {
        super::serve::serve_db(path, listener, args.token.clone(), Arc::clone(&rules))?;
    }
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
