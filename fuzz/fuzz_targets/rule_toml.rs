//! A rule file: parse and compile (conditions, templates, escalations, check names), then
//! run its own examples through the http stage and the engine, as `wirelint` does with
//! every rule it loads and the test suite with every shipped one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelint::rules::{Engine, RuleSet, StatefulEngine, examples};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = RuleSet::compile(text, "fuzz.toml") else {
        return;
    };
    let exchanges: Vec<_> = rule.examples.iter().flat_map(examples::exchanges).collect();
    let set = RuleSet::from_rules(vec![rule]);
    let engine = Engine::new(&set);
    let mut stateful = StatefulEngine::new(&set);
    for ex in &exchanges {
        std::hint::black_box(engine.check(ex));
        std::hint::black_box(stateful.observe(ex));
    }
    std::hint::black_box(stateful.finish());
});
