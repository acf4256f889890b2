//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

use wirelint::capture::CaptureSet;
use wirelint::http::Exchange;
use wirelint::pipeline::{self, PipelineConfig, RunSummary};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/captures/public` when present; `None` (and a printed reason) when absent, as
/// in a user's clone.
pub fn public_captures() -> Option<PathBuf> {
    let dir = repo().join("../shared/captures/public");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: {} is absent (it exists only beside the project's CI)",
            dir.display()
        );
        None
    }
}

/// Runs the offline pipeline on files and returns every exchange in output order.
pub fn exchanges_of(files: &[PathBuf], workers: usize) -> (Vec<Exchange>, RunSummary) {
    let captures = CaptureSet::open(files).unwrap_or_else(|e| panic!("opening {files:?}: {e}"));
    let cfg = PipelineConfig {
        workers,
        ..PipelineConfig::default()
    };
    let mut out = Vec::new();
    let summary = pipeline::run(
        &captures,
        &cfg,
        |item| {
            if let pipeline::Output::Exchange(a) = item {
                out.push(a.exchange);
            }
            Ok(())
        },
        |_| {},
    )
    .unwrap_or_else(|e| panic!("analysing {files:?}: {e}"));
    (out, summary)
}

/// The capture file in a folder (the one that is not truth.json or a README).
pub fn capture_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "pcap" | "pcapng" | "cap"))
        })
}
