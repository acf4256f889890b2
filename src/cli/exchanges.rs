//! `wirelint exchanges FILE…`: every HTTP exchange, as text or JSON lines.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::input::Input;
use super::{ExchangeFormat, ExchangesArgs};
use crate::har::HarWriter;
use crate::pipeline::{self, PipelineConfig};
use crate::redact::Redactor;
use crate::report::{exchange_json::ExchangeJson, exchange_text, summary};

pub fn run(args: ExchangesArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = PipelineConfig {
        workers: args.workers,
        filter: args.filter.clone(),
        redact: Some(Redactor::default()),
        reassembly: super::reassembly(args.memory_budget, None),
        ..PipelineConfig::default()
    };
    // Listing exchanges needs sizes, not body bytes; HAR output carries the content.
    if args.format != ExchangeFormat::Har {
        cfg.http.body_cap = args.body_cap.unwrap_or(0);
    } else if let Some(cap) = args.body_cap {
        cfg.http.body_cap = cap;
    }
    // No rule reads a JSON verdict here.
    cfg.http.validate_json = false;
    let input = Input::open(&args.files, args.filter.as_deref(), cfg.http.body_cap)?;
    cfg.tls = args.tls.load(&input.tls_secrets())?;
    let names = input.file_names();
    let mut progress = super::progress::Progress::new(input.total_bytes(), args.quiet);

    let anomalies: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let counts = Arc::clone(&anomalies);
    let stdout = std::io::stdout();
    let shared = Mutex::new(BufWriter::with_capacity(256 * 1024, stdout));
    let poisoned = || std::io::Error::other("the output lock was poisoned");
    let format = args.format;
    let mut local: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut har = match format {
        ExchangeFormat::Har => {
            let mut out = shared.lock().map_err(|_| poisoned())?;
            Some(HarWriter::begin(&mut *out, names.clone())?)
        }
        _ => None,
    };
    // Exchanges reach the reader as they are found: the reader thread flushes what was
    // written each time it reports progress (every 8 MiB read), at most every 100 ms, so
    // the first lines of a long capture show at once.
    let mut last_flush = std::time::Instant::now();
    let result = input.run(
        &cfg,
        |item| {
            let pipeline::Output::Exchange(pipeline::Analyzed { exchange: ex, .. }) = item else {
                return Ok(());
            };
            for name in ex.anomaly_names() {
                *local.entry(name).or_default() += 1;
            }
            let mut out = shared.lock().map_err(|_| poisoned())?;
            let out = &mut *out;
            if let Some(w) = har.as_mut() {
                return w.entry(out, &ex);
            }
            match format {
                ExchangeFormat::Har => {}
                ExchangeFormat::Jsonl => {
                    serde_json::to_writer(&mut *out, &ExchangeJson::new(&ex, &names))
                        .map_err(std::io::Error::from)?;
                    out.write_all(b"\n")?;
                }
                ExchangeFormat::Text => writeln!(out, "{}", exchange_text::exchange_line(&ex))?,
            }
            Ok(())
        },
        |done| {
            progress.update(done);
            if last_flush.elapsed() >= std::time::Duration::from_millis(100)
                && let Ok(mut out) = shared.try_lock()
                && !out.buffer().is_empty()
            {
                // A failed write shows again at the next one, where it stops the run.
                let _ = out.flush();
                last_flush = std::time::Instant::now();
            }
        },
    );
    let mut out = shared.into_inner().map_err(|_| poisoned())?;
    progress.finish();
    if let Ok(mut c) = counts.lock() {
        *c = std::mem::take(&mut local);
    }
    let summary_result = result.context("analysis failed")?;
    if let Some(w) = har {
        w.finish(&mut out)?;
    }
    out.flush().context("writing output")?;
    if !args.quiet {
        let counts = anomalies.lock().map(|c| c.clone()).unwrap_or_default();
        eprint!("{}", summary::render(&summary_result, &counts));
    }
    // Never silenced: the listing above does not cover what these name.
    eprint!("{}", summary::warnings(&summary_result));
    Ok(ExitCode::SUCCESS)
}
