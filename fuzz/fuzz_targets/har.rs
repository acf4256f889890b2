//! HAR files (browser and proxy exports a user hands to `analyze`): read, checked by every
//! built-in rule (per-exchange and stateful), written back as HAR by `exchanges --format
//! har`, and that output read again: it must be a HAR file with the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelint::har::{self, HarWriter};
use wirelint::pipeline::{self, Output, PipelineConfig};

fuzz_target!(|data: &[u8]| {
    let path = wirelint_fuzz::scratch_file(data);
    let Ok(set) = har::open(&[path], 4096) else {
        return;
    };
    let cfg = PipelineConfig {
        workers: 1,
        rules: Some(wirelint_fuzz::builtin_rules()),
        ..PipelineConfig::default()
    };
    let mut written = Vec::new();
    let mut writer =
        HarWriter::begin(&mut written, set.files.clone()).expect("writing to memory");
    let mut failed = None;
    let sink = |out: Output| {
        if let Output::Exchange(a) = out
            && let Err(e) = writer.entry(&mut written, &a.exchange)
        {
            failed = Some(e);
        }
        Ok(())
    };
    if pipeline::run_exchanges(set.exchanges, &cfg, sink).is_err() {
        return;
    }
    assert!(failed.is_none(), "writing an entry failed: {failed:?}");
    let entries = writer.finish(&mut written).expect("writing to memory");
    let again = wirelint_fuzz::scratch_file(&written);
    match har::open(&[again], 4096) {
        Ok(reread) => assert_eq!(reread.entries, entries, "entries lost in the round trip"),
        Err(e) => panic!("wirelint's own HAR output does not read back: {e}"),
    }
});
