//! HTTP/2 end to end on the project's h2c captures: what each one is for, and agreement
//! with tshark's HTTP/2 dissection (skipped with a reason when tshark is absent).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use wirelint::http::{Exchange, Message};

use crate::support;

fn capture(name: &str) -> PathBuf {
    support::repo().join("captures").join(name)
}

fn run(name: &str) -> Vec<Exchange> {
    support::exchanges_of(&[capture(name)], 2).0
}

fn by_stream(exchanges: &[Exchange], id: u32) -> &Exchange {
    exchanges
        .iter()
        .find(|e| e.stream_id == Some(id))
        .unwrap_or_else(|| panic!("no exchange on stream {id}"))
}

fn status(ex: &Exchange) -> Option<u16> {
    ex.response.as_ref().and_then(Message::status)
}

#[test]
fn prior_knowledge_streams_become_exchanges() {
    let ex = run("h2c-prior-knowledge.pcap");
    assert_eq!(ex.len(), 3);
    let post = by_stream(&ex, 3);
    let req = post.request.as_ref().expect("request");
    assert_eq!((req.method(), req.version()), (Some("POST"), "HTTP/2"));
    assert_eq!(req.header("host"), Some("api.example.test:8080"));
    assert_eq!(
        req.body.size, 83,
        "three DATA frames, one split across segments"
    );
    assert!(req.body.captured.starts_with(b"{\"title\""));
    assert_eq!(status(post), Some(201));
    let five = by_stream(&ex, 5);
    let resp = five.response.as_ref().expect("response");
    assert_eq!(resp.body.trailers.len(), 1);
    assert_eq!(resp.body.trailers[0].name, "server-timing");
    assert_eq!(
        resp.headers[0].name, ":status",
        "pseudo-headers are kept in order"
    );
    for e in &ex {
        assert!(e.anomaly_names().is_empty(), "{:?}", e.anomaly_names());
    }
}

#[test]
fn upgrade_continues_as_http2_on_stream_one() {
    let ex = run("h2c-upgrade.pcap");
    assert_eq!(ex.len(), 2);
    let first = by_stream(&ex, 1);
    assert_eq!(
        first.request.as_ref().map(Message::version),
        Some("HTTP/1.1")
    );
    assert_eq!(first.interim.first().and_then(Message::status), Some(101));
    assert_eq!(
        first.response.as_ref().map(Message::version),
        Some("HTTP/2")
    );
    assert_eq!(status(by_stream(&ex, 3)), Some(404));
}

#[test]
fn grpc_status_is_recorded() {
    let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args(["exchanges", "--format", "jsonl", "-q"])
        .arg(capture("h2c-grpc.pcap"))
        .output()
        .expect("wirelint runs");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let statuses: Vec<(u64, &str)> = lines
        .iter()
        .map(|v| {
            (
                v["stream_id"].as_u64().unwrap_or(0),
                v["response"]["grpc_status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(statuses, vec![(1, "0"), (3, "5")]);
    assert_eq!(lines[0]["request"]["version"], "HTTP/2");
}

#[test]
fn each_violation_is_on_its_stream() {
    let ex = run("h2c-violations.pcap");
    let expect = [
        (1, "h2-connection-specific-field"),
        (3, "h2-uppercase-field-name"),
        (5, "h2-invalid-te"),
        (7, "h2-pseudo-header-error"),
        (9, "h2-content-length-mismatch"),
        (2, "h2-server-push"),
        (11, "h2-stream-reset"),
        (13, "h2-frame-size-violation"),
        (13, "h2-goaway"),
    ];
    for (id, name) in expect {
        let names = by_stream(&ex, id).anomaly_names();
        assert!(
            names.contains(&name),
            "stream {id}: {name} not in {names:?}"
        );
    }
    // The HTTP/1 connection's upgrade without HTTP2-Settings stays HTTP/1.
    assert!(
        ex.iter()
            .any(|e| e.stream_id.is_none() && status(e) == Some(200))
    );
}

#[test]
fn a_gap_stops_decoding_honestly() {
    let (ex, summary) = support::exchanges_of(&[capture("h2c-gap.pcap")], 1);
    assert_eq!(ex.len(), 2);
    assert!(
        ex.iter()
            .all(|e| e.anomaly_names().contains(&"h2-decoding-stopped"))
    );
    assert!(by_stream(&ex, 1).anomaly_names().contains(&"gap"));
    assert!(
        by_stream(&ex, 3).response.is_none(),
        "nothing is guessed after the gap"
    );
    assert_eq!(summary.http.http2_decoding_stopped, 1);
    assert_eq!(summary.http.http2_connections, 1);
}

// ---------------------------------------------------------------------------------------
// Agreement with tshark.

/// One connection's HTTP/2 as tshark dissects it: per stream, the header blocks (fields in
/// order) and the DATA payload bytes.
#[derive(Debug, Default, PartialEq, Eq)]
struct StreamView {
    blocks: Vec<Vec<(String, String)>>,
    data: u64,
}

type View = BTreeMap<(u16, u32), StreamView>;

fn as_list(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// tshark's view, keyed by (client port, stream id).
fn tshark_view(name: &str, decode_as: &[&str]) -> Option<View> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(capture(name));
    for d in decode_as {
        cmd.args(["-d", d]);
    }
    cmd.args(["-Y", "http2", "-T", "json", "--no-duplicate-keys"]);
    let out = cmd.output().ok()?;
    let packets: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tshark JSON");
    let mut view = View::new();
    for p in as_list(&packets) {
        let layers = &p["_source"]["layers"];
        let tcp = &layers["tcp"];
        let port = |f: &str| tcp[f].as_str().and_then(|s| s.parse::<u16>().ok());
        let (Some(src), Some(dst)) = (port("tcp.srcport"), port("tcp.dstport")) else {
            continue;
        };
        // The captures' clients use ports 41000–41999.
        let client = if (41000..42000).contains(&src) {
            src
        } else {
            dst
        };
        for h2 in as_list(&layers["http2"]) {
            for s in as_list(&h2["http2.stream"]) {
                let num = |f: &str| s[f].as_str().and_then(|v| v.parse::<u32>().ok());
                let (Some(id), Some(kind)) = (num("http2.streamid"), num("http2.type")) else {
                    continue;
                };
                match kind {
                    0 => {
                        view.entry((client, id)).or_default().data +=
                            num("http2.length").map_or(0, u64::from)
                    }
                    1 | 5 => {
                        let fields = as_list(&s["http2.header"])
                            .iter()
                            .map(|h| {
                                (
                                    h["http2.header.name"].as_str().unwrap_or("").to_string(),
                                    h["http2.header.value"].as_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect();
                        let stream = if kind == 5 {
                            num("http2.push_promise.promised_stream_id").unwrap_or(id)
                        } else {
                            id
                        };
                        view.entry((client, stream))
                            .or_default()
                            .blocks
                            .push(fields);
                    }
                    _ => {}
                }
            }
        }
    }
    Some(view)
}

/// wirelint's view of the same captures.
fn wirelint_view(name: &str) -> View {
    let mut view = View::new();
    for ex in run(name) {
        let Some(id) = ex.stream_id else { continue };
        let v = view.entry((ex.connection.client.port(), id)).or_default();
        let fields = |m: &Message| {
            m.headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect::<Vec<_>>()
        };
        let h2 = |m: &&Message| m.version() == "HTTP/2";
        for m in ex.request.iter().filter(h2) {
            v.blocks.push(fields(m));
        }
        for m in ex.interim.iter().chain(ex.response.iter()).filter(h2) {
            v.blocks.push(fields(m));
        }
        for m in ex.request.iter().chain(ex.response.iter()).filter(h2) {
            if !m.body.trailers.is_empty() {
                v.blocks.push(
                    m.body
                        .trailers
                        .iter()
                        .map(|h| (h.name.clone(), h.value.clone()))
                        .collect(),
                );
            }
            v.data += m.body.size;
        }
    }
    view
}

#[test]
fn exchanges_agree_with_tshark() {
    if Command::new("tshark").arg("--version").output().is_err() {
        println!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    }
    let cases: [(&str, &[&str]); 4] = [
        ("h2c-prior-knowledge.pcap", &["tcp.port==8080,http2"]),
        ("h2c-upgrade.pcap", &[]),
        ("h2c-grpc.pcap", &["tcp.port==50051,http2"]),
        ("h2c-violations.pcap", &["tcp.port==8080,http2"]),
    ];
    let mut compared = 0;
    for (name, decode_as) in cases {
        let Some(mut theirs) = tshark_view(name, decode_as) else {
            println!("skipped: tshark did not run");
            return;
        };
        let ours = wirelint_view(name);
        // Header blocks of one stream are compared as sets: tshark lists them in frame
        // order, wirelint by message (request, interim, response, trailers).
        for v in theirs.values_mut() {
            v.blocks.sort();
        }
        let mut ours_sorted = ours;
        for v in ours_sorted.values_mut() {
            v.blocks.sort();
        }
        // The violations capture has an HTTP/1 connection tshark also decodes as HTTP/2.
        theirs.retain(|k, _| ours_sorted.keys().any(|o| o.0 == k.0));
        assert_eq!(
            ours_sorted, theirs,
            "{name}: wirelint (left) and tshark (right) differ"
        );
        compared += ours_sorted.len();
    }
    assert!(compared >= 15, "compared only {compared} streams");
    println!("{compared} HTTP/2 streams agree with tshark");
}
