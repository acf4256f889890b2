//! Conformance on real captures: per connection, the requests (method, target) and the
//! responses (status) we find agree with tshark's on the public corpus, except where an
//! entry in `tests/conformance-allowlist.toml` documents why tshark is wrong.
//!
//! Connections are matched to tshark's TCP streams by the best agreement (tshark's stream
//! numbers count connections we do not report). A message we mark incomplete (a gap in the
//! capture, or cut short) that tshark does not report is not held against us: tshark only
//! reports a message once all its bytes arrived.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use wirelint::http::{Exchange, Message};

use crate::support;

#[derive(Debug, Default, Clone, PartialEq)]
struct ConnView {
    requests: Vec<(String, String)>,
    /// Statuses, with whether the message is incomplete.
    responses: Vec<(u16, bool)>,
    requests_incomplete: Vec<bool>,
}

#[derive(Deserialize)]
struct Truth {
    http_requests: Vec<TruthRequest>,
    http_responses: Vec<TruthResponse>,
}

#[derive(Deserialize)]
struct TruthRequest {
    frame: u64,
    tcp_stream: u64,
    method: Option<String>,
    uri: Option<String>,
    #[serde(default)]
    pdu_index_in_frame: u64,
}

#[derive(Deserialize)]
struct TruthResponse {
    frame: u64,
    tcp_stream: u64,
    status: u16,
    /// The frame of the request tshark pairs this response with.
    #[serde(default)]
    request_in: Option<u64>,
    #[serde(default)]
    pdu_index_in_frame: u64,
}

#[derive(Deserialize)]
struct Allowlist {
    deviation: Vec<Deviation>,
}

/// What a connection really carries where tshark says otherwise.
#[derive(Deserialize)]
struct Deviation {
    capture: String,
    client: String,
    requests: Vec<(String, String)>,
    responses: Vec<u16>,
    reason: String,
}

fn lcs<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut prev = 0;
        for (j, y) in b.iter().enumerate() {
            let tmp = row[j + 1];
            row[j + 1] = if x == y {
                prev + 1
            } else {
                row[j + 1].max(row[j])
            };
            prev = tmp;
        }
    }
    row[b.len()]
}

fn incomplete(m: &Message) -> bool {
    m.is_incomplete()
}

fn ours_by_connection(exchanges: &[Exchange]) -> BTreeMap<String, ConnView> {
    let mut map: BTreeMap<String, ConnView> = BTreeMap::new();
    for ex in exchanges {
        let key = ex.connection.client.to_string();
        let view = map.entry(key).or_default();
        if let Some(r) = &ex.request {
            view.requests.push((
                r.method().unwrap_or("").to_string(),
                r.target().unwrap_or("").to_string(),
            ));
            view.requests_incomplete.push(incomplete(r));
        }
        for m in ex.interim.iter().chain(ex.response.iter()) {
            view.responses
                .push((m.status().unwrap_or(0), incomplete(m)));
        }
    }
    map
}

/// (agreeing items, compared items) between what is expected and what we found, letting
/// our incomplete messages drop out when that agrees better.
fn score(exp_req: &[(String, String)], exp_resp: &[u16], ours: &ConnView) -> (usize, usize) {
    let best = |exp_len: usize,
                full: usize,
                complete_only: usize,
                lcs_full: usize,
                lcs_complete: usize| {
        let full_score = (lcs_full, exp_len.max(full));
        let partial_score = (lcs_complete, exp_len.max(complete_only));
        if full_score.1 - full_score.0 <= partial_score.1 - partial_score.0 {
            full_score
        } else {
            partial_score
        }
    };
    let req_complete: Vec<(String, String)> = ours
        .requests
        .iter()
        .zip(&ours.requests_incomplete)
        .filter(|(_, inc)| !**inc)
        .map(|(r, _)| r.clone())
        .collect();
    let resp_all: Vec<u16> = ours.responses.iter().map(|r| r.0).collect();
    let resp_complete: Vec<u16> = ours
        .responses
        .iter()
        .filter(|r| !r.1)
        .map(|r| r.0)
        .collect();
    let (a1, t1) = best(
        exp_req.len(),
        ours.requests.len(),
        req_complete.len(),
        lcs(exp_req, &ours.requests),
        lcs(exp_req, &req_complete),
    );
    let (a2, t2) = best(
        exp_resp.len(),
        resp_all.len(),
        resp_complete.len(),
        lcs(exp_resp, &resp_all),
        lcs(exp_resp, &resp_complete),
    );
    (a1 + a2, t1 + t2)
}

/// An item of tshark's output with the frame and position in the frame that order it.
type Keyed<T> = (u64, u64, T);
/// What one connection should carry: a label, its requests and its response statuses.
type KeyedStream = (Vec<Keyed<(String, String)>>, Vec<Keyed<u16>>);
type Expectation = (String, Vec<(String, String)>, Vec<u16>);

struct CaptureResult {
    name: String,
    agree: usize,
    total: usize,
    disagreements: Vec<String>,
    /// Responses tshark pairs with a request that we pair with the same request.
    pairs_agree: usize,
    pairs_total: usize,
    pair_disagreements: Vec<String>,
}

/// How well a message of ours matches the one tshark reports in `frame`: tshark names the
/// frame in which it had the whole message. Exactly our head's or our end's frame is best;
/// otherwise a frame between them (the end judged differently, e.g. a multipart/byteranges
/// body that we read to the connection's close), the narrower the better.
fn frame_distance(m: &Message, frame: u64) -> Option<u64> {
    let (head, last) = (m.head_frame.number, m.last_frame.number);
    if m.head_frame.file != 0 {
        return None;
    }
    if head == frame || last == frame {
        Some(0)
    } else if (head..=last).contains(&frame) {
        Some(1 + last - head)
    } else {
        None
    }
}

fn at_frame(m: &Message, frame: u64) -> bool {
    frame_distance(m, frame).is_some()
}

/// For every response tshark pairs with a request (`request_in`), whether we pair the same
/// two messages.
fn check_pairs(truth: &Truth, exchanges: &[Exchange]) -> (usize, usize, Vec<String>) {
    let (mut agree, mut total, mut wrong) = (0, 0, Vec::new());
    for r in &truth.http_responses {
        let Some(request_in) = r.request_in else {
            continue;
        };
        total += 1;
        let ours = exchanges
            .iter()
            .filter_map(|ex| {
                ex.interim
                    .iter()
                    .chain(ex.response.iter())
                    .filter(|m| m.status() == Some(r.status))
                    .filter_map(|m| frame_distance(m, r.frame))
                    .min()
                    .map(|d| (d, ex))
            })
            .min_by_key(|(d, _)| *d)
            .map(|(_, ex)| ex);
        match ours {
            Some(ex) if ex.request.as_ref().is_some_and(|q| at_frame(q, request_in)) => agree += 1,
            Some(ex) => wrong.push(format!(
                "response {} in frame {}: tshark pairs it with frame {request_in}, we with {:?}",
                r.status,
                r.frame,
                ex.request
                    .as_ref()
                    .map(|q| (q.head_frame.number, q.last_frame.number))
            )),
            None => wrong.push(format!(
                "response {} in frame {} (request in frame {request_in}): not found",
                r.status, r.frame
            )),
        }
    }
    (agree, total, wrong)
}

fn check_capture(dir: &Path, name: &str, deviations: &[&Deviation]) -> CaptureResult {
    let truth: Truth = serde_json::from_slice(
        &std::fs::read(dir.join("truth.json")).unwrap_or_else(|e| panic!("{name}/truth.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("{name}/truth.json: {e}"));
    let file = support::capture_in(dir).unwrap_or_else(|| panic!("{name}: no capture file"));
    let (exchanges, _) = support::exchanges_of(&[file], 2);
    let ours = ours_by_connection(&exchanges);
    let (pairs_agree, pairs_total, pair_disagreements) = check_pairs(&truth, &exchanges);

    let mut expected: BTreeMap<u64, KeyedStream> = BTreeMap::new();
    for r in &truth.http_requests {
        expected.entry(r.tcp_stream).or_default().0.push((
            r.frame,
            r.pdu_index_in_frame,
            (
                r.method.clone().unwrap_or_default(),
                r.uri.clone().unwrap_or_default(),
            ),
        ));
    }
    for r in &truth.http_responses {
        expected
            .entry(r.tcp_stream)
            .or_default()
            .1
            .push((r.frame, r.pdu_index_in_frame, r.status));
    }
    let mut streams: Vec<Expectation> = expected
        .into_iter()
        .map(|(s, (mut q, mut r))| {
            q.sort_by_key(|x| (x.0, x.1));
            r.sort_by_key(|x| (x.0, x.1));
            (
                format!("tcp.stream {s}"),
                q.into_iter().map(|x| x.2).collect(),
                r.into_iter().map(|x| x.2).collect(),
            )
        })
        .collect();

    // Match tshark's streams to our connections, best agreement first.
    let mut matched: BTreeMap<String, usize> = BTreeMap::new();
    let mut pairs: Vec<(usize, usize, String)> = Vec::new();
    for (i, (_, q, r)) in streams.iter().enumerate() {
        for (client, view) in &ours {
            let (a, _) = score(q, r, view);
            if a > 0 {
                pairs.push((a, i, client.clone()));
            }
        }
    }
    pairs.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut stream_taken = vec![false; streams.len()];
    for (_, i, client) in pairs {
        if stream_taken[i] || matched.contains_key(&client) {
            continue;
        }
        stream_taken[i] = true;
        matched.insert(client, i);
    }
    // Documented deviations replace what tshark says for that connection.
    for d in deviations {
        let fixed = (d.requests.clone(), d.responses.clone());
        match matched.get(&d.client) {
            Some(&i) => {
                streams[i].1 = fixed.0;
                streams[i].2 = fixed.1;
            }
            None => {
                streams.push((format!("{} (allowlisted)", d.client), fixed.0, fixed.1));
                stream_taken.push(true);
                matched.insert(d.client.clone(), streams.len() - 1);
            }
        }
    }

    let mut agree = 0;
    let mut total = 0;
    let mut disagreements = Vec::new();
    let empty = ConnView::default();
    for (i, (label, q, r)) in streams.iter().enumerate() {
        let client = matched
            .iter()
            .find(|&(_, &j)| j == i)
            .map(|(c, _)| c.clone());
        let view = client.as_ref().and_then(|c| ours.get(c)).unwrap_or(&empty);
        let (a, t) = score(q, r, view);
        agree += a;
        total += t;
        if a != t {
            let ours_resp: Vec<u16> = view.responses.iter().map(|x| x.0).collect();
            disagreements.push(format!(
                "{label} ↔ ours {}: tshark {q:?} {r:?}; ours {:?} {ours_resp:?}",
                client.as_deref().unwrap_or("(none)"),
                view.requests
            ));
        }
    }
    for (client, view) in &ours {
        if matched.contains_key(client) {
            continue;
        }
        let (a, t) = score(&[], &[], view);
        agree += a;
        total += t;
        if t > 0 {
            let ours_resp: Vec<u16> = view.responses.iter().map(|x| x.0).collect();
            disagreements.push(format!(
                "ours only {client}: {:?} {ours_resp:?}",
                view.requests
            ));
        }
    }
    CaptureResult {
        name: name.to_string(),
        agree,
        total,
        disagreements,
        pairs_agree,
        pairs_total,
        pair_disagreements,
    }
}

#[test]
fn public_captures_agree_with_tshark() {
    let Some(root) = support::public_captures() else {
        return;
    };
    let allow: Allowlist = toml::from_str(
        &std::fs::read_to_string(support::repo().join("tests/conformance-allowlist.toml"))
            .expect("tests/conformance-allowlist.toml"),
    )
    .expect("allowlist parses");
    for d in &allow.deviation {
        assert!(
            !d.reason.trim().is_empty(),
            "allowlist entry for {} has no reason",
            d.capture
        );
    }
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("truth.json").is_file())
        .collect();
    dirs.sort();
    let mut results = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let devs: Vec<&Deviation> = allow
            .deviation
            .iter()
            .filter(|d| d.capture == name)
            .collect();
        results.push(check_capture(dir, &name, &devs));
    }
    let agree: usize = results.iter().map(|r| r.agree).sum();
    let total: usize = results.iter().map(|r| r.total).sum();
    let ratio = agree as f64 / total.max(1) as f64;
    println!(
        "conformance: {agree}/{total} = {:.2}% over {} captures",
        ratio * 100.0,
        results.len()
    );
    let mut worst: Vec<&CaptureResult> = results.iter().filter(|r| r.agree != r.total).collect();
    worst.sort_by(|a, b| {
        let ra = a.agree as f64 / a.total.max(1) as f64;
        let rb = b.agree as f64 / b.total.max(1) as f64;
        ra.total_cmp(&rb)
    });
    for r in &worst {
        println!("  {} {}/{}", r.name, r.agree, r.total);
        for d in &r.disagreements {
            println!("      {d}");
        }
    }
    let pairs_agree: usize = results.iter().map(|r| r.pairs_agree).sum();
    let pairs_total: usize = results.iter().map(|r| r.pairs_total).sum();
    let pairs_ratio = pairs_agree as f64 / pairs_total.max(1) as f64;
    println!(
        "pairing: {pairs_agree}/{pairs_total} = {:.2}% of the responses tshark pairs with a request",
        pairs_ratio * 100.0
    );
    for r in results.iter().filter(|r| !r.pair_disagreements.is_empty()) {
        println!("  {} pairs {}/{}", r.name, r.pairs_agree, r.pairs_total);
        for d in &r.pair_disagreements {
            println!("      {d}");
        }
    }
    assert!(
        results.len() >= 50,
        "expected the 50 public captures, found {}",
        results.len()
    );
    assert!(
        pairs_ratio >= 0.99,
        "pairing agreement {:.2}% is below 99%",
        pairs_ratio * 100.0
    );
    assert!(
        ratio >= 0.99,
        "agreement {:.2}% is below 99%",
        ratio * 100.0
    );
}

/// `analyze` runs over every public capture without a panic or an error, whatever the
/// capture throws at the rules (truncated messages, HTTP/0.9, tunnels, odd link types).
#[test]
fn analyze_runs_on_every_public_capture() {
    let Some(root) = support::public_captures() else {
        return;
    };
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("truth.json").is_file())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    let mut findings = 0usize;
    for dir in &dirs {
        let Some(file) = support::capture_in(dir) else {
            continue;
        };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .args([
                "analyze",
                "--no-db",
                "--format",
                "jsonl",
                "--fail-on",
                "never",
                "-q",
            ])
            .arg(&file)
            .output()
            .expect("the wirelint binary runs");
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        findings += String::from_utf8_lossy(&out.stdout).lines().count();
    }
    println!("analyze: {} captures, {findings} findings", dirs.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
