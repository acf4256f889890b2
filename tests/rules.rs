//! Every example of every shipped rule, through the real http stage and engine: a `bad`
//! example must fire its rule, a `good` one must not. Also checks each file's shape (id =
//! file name, category = folder).

use wirelint::rules::{Engine, ExampleKind, RuleSet, StatefulEngine, examples};

fn fired(set: &RuleSet, example: &wirelint::rules::ExampleFile) -> Vec<(String, String)> {
    let engine = Engine::new(set);
    let mut stateful = StatefulEngine::new(set);
    let mut out = Vec::new();
    for ex in examples::exchanges(example) {
        out.extend(engine.check(&ex).into_iter().map(|f| (f.rule, f.message)));
        out.extend(
            stateful
                .observe(&ex)
                .into_iter()
                .map(|(_, f)| (f.rule, f.message)),
        );
    }
    out.extend(
        stateful
            .finish()
            .into_iter()
            .map(|(_, f)| (f.rule, f.message)),
    );
    out
}

#[test]
fn every_rule_example_behaves() {
    let mut problems = Vec::new();
    let mut compiled = Vec::new();
    for (path, text) in RuleSet::builtin_files() {
        match RuleSet::compile(text, path) {
            Ok(rule) => {
                let stem = path
                    .rsplit('/')
                    .next()
                    .unwrap_or(path)
                    .trim_end_matches(".toml");
                let folder = path.split('/').next().unwrap_or("");
                if rule.id != stem {
                    problems.push(format!(
                        "{path}: id {} does not match the file name",
                        rule.id
                    ));
                }
                if rule.category != folder {
                    problems.push(format!(
                        "{path}: category {} does not match the folder",
                        rule.category
                    ));
                }
                let bad = rule
                    .examples
                    .iter()
                    .filter(|e| e.kind == ExampleKind::Bad)
                    .count();
                let good = rule
                    .examples
                    .iter()
                    .filter(|e| e.kind == ExampleKind::Good)
                    .count();
                if bad == 0 || good == 0 {
                    problems.push(format!(
                        "{path}: needs at least one bad and one good example"
                    ));
                }
                compiled.push(rule);
            }
            Err(e) => problems.push(format!("{path}: {e}")),
        }
    }
    let set = RuleSet::from_rules(compiled);
    let mut checked = 0;
    for rule in &set.rules {
        for (i, example) in rule.examples.iter().enumerate() {
            checked += 1;
            let hits = fired(&set, example);
            let fires = hits.iter().any(|(id, _)| id == &rule.id);
            let note = example.note.as_deref().unwrap_or("");
            match example.kind {
                ExampleKind::Bad if !fires => problems.push(format!(
                    "{}: bad example #{i} ({note}) does not fire it; fired: {:?}",
                    rule.id,
                    hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>()
                )),
                ExampleKind::Good if fires => problems.push(format!(
                    "{}: good example #{i} ({note}) fires it: {:?}",
                    rule.id,
                    hits.iter()
                        .filter(|h| h.0 == rule.id)
                        .map(|h| h.1.as_str())
                        .collect::<Vec<_>>()
                )),
                _ => {}
            }
        }
    }
    println!("{} rules, {checked} examples", set.rules.len());
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A clean HTTP/2 exchange fires no rule about HTTP/1 framing nor about pseudo-header
/// fields as if they were regular fields, and the same exchange over HTTP/1.1 fires what
/// HTTP/1.1 requires (Host) — so the engine really tells the versions apart.
#[test]
fn http2_exchanges_skip_http1_framing_rules() {
    let set = RuleSet::builtin().expect("rules");
    let example = |version: Option<&str>, request: &str, response: &str| {
        let mut text = String::from("kind = \"good\"\n");
        if let Some(v) = version {
            text.push_str(&format!("version = {v:?}\n"));
        }
        text.push_str(&format!("request = {request:?}\nresponse = {response:?}\n"));
        let file: wirelint::rules::ExampleFile = toml::from_str(&text).expect("example");
        let mut ids: Vec<String> = fired(&set, &file).into_iter().map(|f| f.0).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let h2 = example(
        Some("HTTP/2"),
        ":method: GET\n:scheme: http\n:authority: api.example\n:path: /books\naccept: application/json\nx-trace: 1\n\n",
        ":status: 200\ndate: Mon, 03 Mar 2025 10:00:00 GMT\ncontent-type: application/json\ncontent-length: 2\n\n[]",
    );
    assert!(
        h2.iter().all(|id| id == "x-prefixed-header"),
        "fired on a clean HTTP/2 exchange: {h2:?}"
    );
    // Transfer-Encoding in HTTP/2 is the HTTP/2 rule's business, not HTTP/1 framing's.
    let h2_te = example(
        Some("HTTP/2"),
        ":method: GET\n:scheme: http\n:authority: api.example\n:path: /books\n\n",
        ":status: 200\ndate: Tue, 04 Mar 2025 10:00:00 GMT\ncontent-type: text/plain\ntransfer-encoding: gzip\n\nok",
    );
    assert!(
        h2_te.contains(&"connection-specific-field-in-http2".to_string()),
        "{h2_te:?}"
    );
    assert!(
        !h2_te.contains(&"unknown-transfer-coding".to_string()),
        "{h2_te:?}"
    );
    let h1 = example(
        None,
        "GET /books HTTP/1.1\nAccept: application/json\n\n",
        "HTTP/1.1 200 OK\nDate: Tue, 04 Mar 2025 10:00:00 GMT\nContent-Type: application/json\nContent-Length: 2\n\n[]",
    );
    assert!(h1.contains(&"missing-host".to_string()), "{h1:?}");
}
