//! The files of a run: packet captures or HAR files, told apart by content.

use std::path::PathBuf;

use crate::capture::CaptureSet;
use crate::har::{self, HarSet};
use crate::pipeline::{self, Output, PipelineConfig, PipelineError, RunSummary};

/// What `analyze` and `exchanges` read. One run is either packet captures (merged in time
/// order) or HAR files: a mix is a usage error, since the two have nothing to merge on.
pub(super) enum Input {
    Capture(CaptureSet),
    Har(HarSet),
}

impl Input {
    /// Opens every file up front, so that input errors come before any output.
    /// `body_cap` bounds the content kept per HAR message (captures take it from `cfg`).
    pub fn open(files: &[PathBuf], filter: Option<&str>, body_cap: usize) -> anyhow::Result<Input> {
        let (hars, captures): (Vec<&PathBuf>, Vec<&PathBuf>) =
            files.iter().partition(|p| har::looks_like_har(p));
        if hars.is_empty() {
            let set = CaptureSet::open(files)?;
            if let Some(f) = filter {
                set.check_filter(f)?;
            }
            return Ok(Input::Capture(set));
        }
        if let Some(capture) = captures.first() {
            // A missing or unreadable file is reported as such, not as a mix.
            let paths: Vec<PathBuf> = captures.iter().map(|p| p.to_path_buf()).collect();
            CaptureSet::open(&paths)?;
            anyhow::bail!(
                "cannot analyse HAR files and packet captures in one run ({} is HAR, {} is not): run wirelint once for each",
                hars[0].display(),
                capture.display()
            );
        }
        if filter.is_some() {
            anyhow::bail!(
                "--filter selects packets, and HAR files ({}) have none: leave it out",
                hars[0].display()
            );
        }
        Ok(Input::Har(har::open(files, body_cap)?))
    }

    pub fn file_names(&self) -> Vec<String> {
        match self {
            Input::Capture(c) => c.file_names(),
            Input::Har(h) => h.files.clone(),
        }
    }

    /// Bytes to read (the progress bar's end; HAR files are read before the run starts).
    pub fn total_bytes(&self) -> u64 {
        match self {
            Input::Capture(c) => c.total_bytes(),
            Input::Har(_) => 0,
        }
    }

    /// Runs the pipeline over the input, handing every exchange to `sink`.
    pub fn run(
        self,
        cfg: &PipelineConfig,
        sink: impl FnMut(Output) -> std::io::Result<()> + Send,
        progress: impl FnMut(u64),
    ) -> Result<RunSummary, PipelineError> {
        match self {
            Input::Capture(set) => pipeline::run(&set, cfg, sink, progress),
            Input::Har(set) => {
                let mut summary = pipeline::run_exchanges(set.exchanges, cfg, sink)?;
                summary.bytes = set.bytes;
                summary.warnings = set.warnings;
                if let Some(h) = &mut summary.har {
                    h.files = set.files.len() as u64;
                    h.entries = set.entries;
                }
                Ok(summary)
            }
        }
    }
}
