//! `wirelint.toml`: parse, build suppressions (globs), validate against the built-in rules,
//! and apply the selection and severity policy to them.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wirelint::config::{Config, Policy};
use wirelint::rules::RuleSet;

fuzz_target!(|data: &[u8]| {
    static BUILTIN: OnceLock<RuleSet> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<Config>(text) else {
        return;
    };
    let path = Path::new("wirelint.toml");
    let builtin = BUILTIN.get_or_init(|| RuleSet::builtin().expect("the built-in rules compile"));
    std::hint::black_box(config.suppressions(path).map(|s| s.len()).ok());
    std::hint::black_box(config.validate(builtin, path).is_ok());
    let policy = Policy::from_config(&config);
    let configured = RuleSet {
        rules: builtin.rules.clone(),
    }
    .configured(&policy);
    std::hint::black_box(configured.rules.iter().filter(|r| r.enabled).count());
});
