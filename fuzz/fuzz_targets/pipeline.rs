//! The whole offline pipeline on arbitrary capture bytes: read, decode, reassemble, parse
//! HTTP, run every built-in rule (per-exchange on the worker, stateful in the collector),
//! redact, and format each exchange as the `exchanges --format jsonl` object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelint::capture::CaptureSet;
use wirelint::pipeline::{self, Output, PipelineConfig};
use wirelint::redact::Redactor;
use wirelint::report::exchange_json::ExchangeJson;

fuzz_target!(|data: &[u8]| {
    let path = wirelint_fuzz::scratch_file(data);
    let Ok(captures) = CaptureSet::open(&[path]) else {
        return;
    };
    let cfg = PipelineConfig {
        workers: 1,
        rules: Some(wirelint_fuzz::builtin_rules()),
        redact: Some(Redactor::new(&["password".to_string()])),
        ..PipelineConfig::default()
    };
    let names = vec!["fuzz.pcap".to_string()];
    let sink = |out: Output| {
        if let Output::Exchange(a) = out {
            let json = serde_json::to_string(&ExchangeJson::new(&a.exchange, &names))
                .expect("an exchange always serialises");
            std::hint::black_box((json, a.findings.len()));
        }
        Ok(())
    };
    let _ = pipeline::run(&captures, &cfg, sink, |_| {});
});
