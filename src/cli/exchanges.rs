//! `wirelint exchanges FILE…`: every HTTP exchange, as text or JSON lines.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::{ExchangeFormat, ExchangesArgs};
use crate::capture::CaptureSet;
use crate::pipeline::{self, PipelineConfig};
use crate::redact::Redactor;
use crate::report::{exchange_json::ExchangeJson, exchange_text, summary};

pub fn run(args: ExchangesArgs) -> anyhow::Result<ExitCode> {
    let captures = CaptureSet::open(&args.files)?;
    let names = captures.file_names();
    let mut progress = super::progress::Progress::new(captures.total_bytes(), args.quiet);
    let mut cfg = PipelineConfig {
        workers: args.workers,
        filter: args.filter.clone(),
        redact: Some(Redactor::default()),
        ..PipelineConfig::default()
    };
    // Listing exchanges needs sizes, not body bytes.
    cfg.http.body_cap = args.body_cap.unwrap_or(0);
    // No rule reads a JSON verdict here.
    cfg.http.validate_json = false;

    let anomalies: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let counts = Arc::clone(&anomalies);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout);
    let format = args.format;
    let mut local: BTreeMap<&'static str, u64> = BTreeMap::new();
    let result = pipeline::run(
        &captures,
        &cfg,
        |item| {
            let pipeline::Output::Exchange(pipeline::Analyzed { exchange: ex, .. }) = item else {
                return Ok(());
            };
            for name in ex.anomaly_names() {
                *local.entry(name).or_default() += 1;
            }
            match format {
                ExchangeFormat::Jsonl => {
                    serde_json::to_writer(&mut out, &ExchangeJson::new(&ex, &names))
                        .map_err(std::io::Error::from)?;
                    out.write_all(b"\n")
                }
                ExchangeFormat::Text => writeln!(out, "{}", exchange_text::exchange_line(&ex)),
            }
        },
        |done| progress.update(done),
    );
    progress.finish();
    if let Ok(mut c) = counts.lock() {
        *c = std::mem::take(&mut local);
    }
    let summary_result = result.context("analysis failed")?;
    out.flush().context("writing output")?;
    if !args.quiet {
        let counts = anomalies.lock().map(|c| c.clone()).unwrap_or_default();
        eprint!("{}", summary::render(&summary_result, &counts));
    }
    Ok(ExitCode::SUCCESS)
}
