//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

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
        skip(format_args!(
            "{} is absent (it exists only beside the project's CI)",
            dir.display()
        ));
        None
    }
}

/// Tests that returned early for a missing prerequisite: (test name, reason).
static SKIPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static REPORT_AT_EXIT: Once = Once::new();

/// Records that the calling test skips its body because a prerequisite is missing (capture
/// permission, Chromium, the shared corpus), then returns so the caller can `return`.
///
/// libtest hides a passing test's output and has no runtime "ignored", so a skipped test
/// would show as plain `ok`. Instead every skip is listed on stderr when the test binary
/// exits, right below `test result: …`, where a plain `cargo test` shows it. Skips never
/// fail the run.
pub fn skip(reason: impl std::fmt::Display) {
    // libtest runs each test on a thread named after it.
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string();
    let reason = reason.to_string();
    println!("skipped: {reason}");
    SKIPPED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((test, reason));
    REPORT_AT_EXIT.call_once(|| {
        // SAFETY: atexit only stores the function pointer; `report_skipped` neither
        // unwinds (it catches nothing that can panic: lock poisoning is handled, writes
        // ignore errors) nor calls exit.
        unsafe { libc::atexit(report_skipped) };
    });
}

/// Runs when the test binary exits (after libtest's summary line): one line per skip.
extern "C" fn report_skipped() {
    use std::io::Write as _;
    let list = SKIPPED.lock().unwrap_or_else(|p| p.into_inner());
    if list.is_empty() {
        return;
    }
    // Straight to the file descriptor: libtest's capture only sees print! macros.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nskipped: {} {} passed without running their checks (missing prerequisites; see README, Tests):",
        list.len(),
        if list.len() == 1 { "test" } else { "tests" }
    );
    for (test, reason) in list.iter() {
        let _ = writeln!(err, "  {test}: {reason}");
    }
    let _ = writeln!(err);
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

/// Findings one per line, as `captures/X.findings.txt` holds them.
pub fn findings_text(jsonl: &str) -> String {
    let mut text = String::new();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("finding JSON");
        let ex = &v["exchange"];
        text.push_str(&format!(
            "{} #{} {} {}: {} | {}\n",
            ex["client"].as_str().unwrap_or("?"),
            ex["index"],
            v["rule"].as_str().unwrap_or(""),
            v["severity"].as_str().unwrap_or(""),
            v["message"].as_str().unwrap_or(""),
            v["evidence"].as_str().unwrap_or("")
        ));
    }
    text
}

/// Compares `actual` with the golden file at `path` (or writes it when `bless`): `None`
/// when they agree, else what differs. `module` names the test module to bless with.
pub fn check_golden(path: &Path, actual: &str, bless: bool, module: &str) -> Option<String> {
    if bless {
        std::fs::write(path, actual).expect("writing the golden file");
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{} differs; if the new output is right, run `WIRELINT_BLESS=1 cargo test --test tests {module}` and review the diff\n--- expected\n{expected}\n+++ actual\n{actual}",
            path.display()
        )),
        Err(_) => Some(format!("{} is missing", path.display())),
    }
}
