//! A progress line on stderr for long offline runs, only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Captures smaller than this finish before a progress line would help.
const MIN_BYTES: u64 = 64 * 1024 * 1024;

pub struct Progress {
    total: u64,
    enabled: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(total: u64, quiet: bool) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            enabled: !quiet && total >= MIN_BYTES && std::io::stderr().is_terminal(),
            started: now,
            last: now,
        }
    }

    pub fn update(&mut self, done: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let pct = done.saturating_mul(100) / self.total.max(1);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs / 1e6;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{pct:>3}%  {:.0} / {:.0} MB  {rate:.0} MB/s ",
            done as f64 / 1e6,
            self.total as f64 / 1e6
        );
        let _ = err.flush();
    }

    /// Clears the line before the report is printed.
    pub fn finish(&mut self) {
        if self.enabled {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}
