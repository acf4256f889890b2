//! `wirelint sniff -i IFACE`: the daemon. Captures live traffic, runs the same pipeline and
//! rules as `analyze`, records everything in the database as it goes (the dashboard reads
//! it while it is written), and stops cleanly on SIGINT/SIGTERM.
//!
//! Threads: this one captures (it never waits on the others: full queues drop and count);
//! the pipeline's workers and collector; the database writer; a ticker that records the
//! capture counters on the run and logs them; with `--serve`, the dashboard's runtime.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};

use super::{ColorChoice, LogFormat, SniffArgs, SniffFormat};
use crate::capture::live::{LiveCapture, LiveConfig};
use crate::dashboard::{self, AppState};
use crate::http::Exchange;
use crate::packets::{PacketRing, PacketStoreConfig};
use crate::pipeline::{self, Analyzed, LiveCounters, LiveSummary, Output, PipelineConfig};
use crate::redact::Redactor;
use crate::report::finding_json::{Briefs, FindingJson};
use crate::report::findings_text::exchange_location;
use crate::rules::{ExchangeRef, Finding, Severity};
use crate::store::{RunSource, Store, WriterConfig};

/// How often the capture counters are written to the run.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);
/// How often followed TLS key logs are checked for new lines.
const KEYLOG_POLL: Duration = Duration::from_millis(100);
/// How often they are logged.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub fn run(args: SniffArgs, color: ColorChoice) -> anyhow::Result<ExitCode> {
    init_logging(
        args.log_format,
        color.enabled(std::io::stderr().is_terminal()),
    );
    let super::analyze::Checking {
        config,
        rules,
        suppressions,
    } = super::analyze::checking(&args.rule_options)?;
    // Bound before anything is recorded, so that a taken port leaves no empty run behind.
    let listener = args
        .serve
        .as_deref()
        .map(|text| super::serve::bind_dashboard(text, args.token.as_deref(), "--serve ADDR"))
        .transpose()?;

    let mut live_cfg = LiveConfig::new(&args.interface);
    live_cfg.snaplen = args.snaplen;
    live_cfg.promiscuous = args.promiscuous;
    live_cfg.immediate = args.immediate;
    if let Some(f) = &args.filter {
        live_cfg.filter = f.clone();
    }
    let mut capture = LiveCapture::open(&live_cfg)?;

    let store = Store::open(&args.db)?;
    let source = RunSource::Live {
        interface: args.interface.clone(),
        filter: Some(live_cfg.filter.clone()),
    };
    let run_id = store.begin_run(&source)?;
    let redact = Redactor::new(&config.redact);
    // The packets of flagged connections, for the dashboard's pcap and bytes views.
    let ring = (!args.no_packet_store).then(|| {
        PacketRing::new(
            PacketStoreConfig::with_disk_cap(args.packet_store as u64),
            redact.clone(),
        )
    });
    let writer = store.writer_with(
        run_id,
        &source,
        WriterConfig {
            redact: Some(redact.clone()),
            packet_cap: args.packet_store as u64,
            ..WriterConfig::default()
        },
    )?;

    // First signal: stop capturing, drain, flush, exit 0. Second: exit at once. The
    // conditional handler is registered first so that it sees the flag as it was.
    let stop = Arc::new(AtomicBool::new(false));
    for (sig, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        signal_hook::flag::register_conditional_shutdown(sig, code, Arc::clone(&stop))
            .context("installing the signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }

    let server = match listener {
        Some(listener) => {
            let state = AppState::new(&args.db, Arc::clone(&rules)).with_token(args.token.clone());
            Some(spawn_dashboard(state, listener, Arc::clone(&stop))?)
        }
        None => None,
    };

    tracing::info!(
        interface = %args.interface,
        linktype = capture.linktype(),
        filter = %live_cfg.filter,
        snaplen = args.snaplen,
        db = %args.db.display(),
        run = run_id,
        packet_store = ?ring.as_ref().map(PacketRing::config),
        "capturing; Ctrl-C or SIGTERM stops"
    );

    // Key logs are followed while capturing: a client writes a connection's keys just
    // after its ClientHello.
    let (tls, mut keylogs) = args.tls.follow();
    super::tls::poll(&mut keylogs, &tls.keys);
    let mut cfg = PipelineConfig {
        workers: args.workers,
        rules: Some(Arc::clone(&rules)),
        redact: Some(redact),
        tls: tls.clone(),
        reassembly: super::reassembly(args.memory_budget, config.memory_budget),
        http_ports: config.http_ports.as_slice().into(),
        ..PipelineConfig::default()
    };
    if let Some(cap) = args.body_cap.or(config.body_cap) {
        cfg.http.body_cap = cap;
    }
    let counters = LiveCounters::default();
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let format = args.format;
    let quiet = args.quiet;
    let color = color.enabled(std::io::stdout().is_terminal());
    let mut exchanges = 0u64;
    let store_err = |e: crate::store::StoreError| std::io::Error::other(e);

    let result = std::thread::scope(|scope| {
        if !keylogs.is_empty() {
            let done = &done;
            let keys = tls.keys.clone();
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(KEYLOG_POLL);
                    super::tls::poll(&mut keylogs, &keys);
                }
            });
        }
        // Counters to the run and the log; the deadline of --duration.
        let ticker = scope.spawn(|| {
            let mut last_log = Instant::now();
            let mut last_counters = Instant::now();
            let mut last_drops = 0;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if args.duration.is_some_and(|d| started.elapsed() >= d) {
                    stop.store(true, Ordering::Relaxed);
                }
                if last_counters.elapsed() < COUNTERS_EVERY {
                    continue;
                }
                last_counters = Instant::now();
                // Packets of flagged connections that came since the last second.
                for (first, packets) in ring.iter().flat_map(PacketRing::drain_flagged) {
                    if writer.packets(first, packets).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                let snap = counters.snapshot();
                if writer.live_counters(snap).is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                let drops = total_drops(&snap);
                if drops > last_drops {
                    tracing::warn!(
                        kernel = snap.kernel.dropped,
                        interface = snap.kernel.interface_dropped,
                        internal = snap.internal_dropped,
                        "packets dropped: wirelint is not keeping up (narrow --filter, or add --workers)"
                    );
                    last_drops = drops;
                }
                if last_log.elapsed() >= LOG_EVERY {
                    last_log = Instant::now();
                    log_counters(&snap, "capture");
                }
            }
        });

        let mut out = std::io::stdout();
        // Briefs of recent exchanges, for the `related` exchanges of JSON findings.
        let mut briefs = Briefs::default();
        let remember = !quiet && format == SniffFormat::Jsonl;
        // `ex` is `None` for a finding a stateful rule settled later, about `at`.
        let mut print = |f: &Finding,
                         ex: Option<&Exchange>,
                         at: ExchangeRef,
                         briefs: &Briefs|
         -> std::io::Result<()> {
            if quiet {
                return Ok(());
            }
            match (format, ex) {
                (SniffFormat::Jsonl, Some(ex)) => {
                    serde_json::to_writer(&mut out, &FindingJson::new(f, ex, &[], briefs))?;
                    out.write_all(b"\n")?;
                }
                (SniffFormat::Jsonl, None) => {
                    serde_json::to_writer(&mut out, &FindingJson::settled(f, at, briefs))?;
                    out.write_all(b"\n")?;
                }
                (SniffFormat::Text, _) => {
                    let location = ex.map_or_else(
                        || {
                            format!(
                                "exchange {} of the connection at frame {}",
                                at.index + 1,
                                at.connection.number
                            )
                        },
                        exchange_location,
                    );
                    writeln!(
                        out,
                        "{} {} {}  {}  {}",
                        crate::time::Timestamp::now().to_rfc3339(),
                        severity_label(f.severity, color),
                        f.rule,
                        f.message,
                        location
                    )?;
                }
            }
            out.flush()
        };
        let result = pipeline::run_live(
            &mut capture,
            &cfg,
            |item| match item {
                Output::Exchange(Analyzed {
                    exchange,
                    mut findings,
                }) => {
                    exchanges += 1;
                    findings.retain(|f| !super::analyze::suppressed(&suppressions, f, &exchange));
                    let at = ExchangeRef::of(&exchange);
                    if remember {
                        briefs.remember(&exchange);
                    }
                    for f in &findings {
                        print(f, Some(&exchange), at, &briefs)?;
                    }
                    let conn = std::sync::Arc::clone(&exchange.connection);
                    let flagged = !findings.is_empty();
                    writer
                        .write(Analyzed { exchange, findings })
                        .map_err(store_err)?;
                    // After the exchange (so the connection's row exists when they come).
                    if let Some(ring) = &ring {
                        if flagged {
                            if let Some((first, packets)) =
                                ring.flag(conn.first_frame, conn.client, conn.server)
                            {
                                writer.packets(first, packets).map_err(store_err)?;
                            }
                        } else {
                            ring.note(conn.first_frame, conn.client, conn.server);
                        }
                    }
                    Ok(())
                }
                Output::Settled(at, f) => {
                    print(&f, None, at, &briefs)?;
                    writer.settled(at, f).map_err(store_err)?;
                    if let Some((first, packets)) =
                        ring.as_ref().and_then(|r| r.flag_known(at.connection))
                    {
                        writer.packets(first, packets).map_err(store_err)?;
                    }
                    Ok(())
                }
            },
            Arc::clone(&stop),
            &counters,
            ring.as_ref(),
        );
        done.store(true, Ordering::Relaxed);
        let _ = ticker.join();
        result
    });
    // The dashboard stops with the capture (it watches the same flag).
    stop.store(true, Ordering::Relaxed);
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            writer.close()?;
            if let Some(h) = server {
                let _ = h.join();
            }
            return Err(anyhow::Error::new(e).context("live capture failed"));
        }
    };
    // The last packets of flagged connections, and what the store's caps left out.
    if let Some(ring) = &ring {
        for (first, packets) in ring.drain_flagged() {
            writer.packets(first, packets)?;
        }
        summary.packet_store = Some(ring.stats());
    }
    // Findings about the run as a whole (floods, evictions, drops), once each, at the end.
    for f in crate::rules::run::findings(&rules, &summary.counters()) {
        tracing::warn!(rule = %f.rule, "{}", f.message);
        writer.run_finding(f)?;
    }
    let written = writer.finish(&summary)?;
    if let Some(h) = server {
        let _ = h.join();
    }
    // Every connection of ours is closed now: leave only the database file.
    super::serve::tidy_db(&args.db);
    if let Some(live) = &summary.live {
        log_counters(live, "stopped");
    }
    if let Some(ring) = &ring {
        let st = ring.stats();
        tracing::info!(
            flagged_connections = st.flagged,
            packets = written.packets,
            over_connection_cap = st.over_connection_cap,
            flags_dropped = st.flags_dropped,
            evicted_connections = written.packet_evictions,
            "packet store"
        );
    }
    tracing::info!(
        run = written.run,
        exchanges,
        stored_exchanges = written.exchanges,
        findings = written.findings,
        db = %args.db.display(),
        "run recorded"
    );
    Ok(ExitCode::SUCCESS)
}

fn total_drops(s: &LiveSummary) -> u64 {
    s.kernel.dropped + s.kernel.interface_dropped + s.internal_dropped
}

fn log_counters(s: &LiveSummary, what: &str) {
    tracing::info!(
        packets = s.frames,
        bytes = s.bytes,
        kernel_dropped = s.kernel.dropped,
        interface_dropped = s.kernel.interface_dropped,
        internal_dropped = s.internal_dropped,
        decode_errors = s.decode_errors,
        "{what}"
    );
}

fn severity_label(s: Severity, color: bool) -> String {
    let name = s.as_str();
    if !color {
        return format!("{name:<7}");
    }
    let colour = match s {
        Severity::Error => "31",
        Severity::Warning => "33",
        Severity::Info => "36",
    };
    format!("\x1b[{colour}m{name:<7}\x1b[0m")
}

/// Structured logs on stderr: `RUST_LOG` filters (default `info`), text or JSON lines;
/// `color` colours the text.
fn init_logging(format: LogFormat, color: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A subscriber may already be set (tests calling in-process): keep it.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(color).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Serves the dashboard on its own runtime thread until `stop` is set.
fn spawn_dashboard(
    state: AppState,
    listener: std::net::TcpListener,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let local = listener.local_addr()?;
    tracing::info!(url = %format!("http://{local}/"), "dashboard");
    let stopped = async move {
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let handle = std::thread::Builder::new()
        .name("wirelint-dashboard".into())
        .spawn(move || {
            if let Err(e) = dashboard::serve::serve_until(state, listener, stopped) {
                tracing::error!(error = %e, "the dashboard stopped");
            }
        })
        .context("starting the dashboard thread")?;
    Ok(handle)
}
