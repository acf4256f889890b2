//! The project's own captures (`captures/`, made by `examples/make_captures.rs`):
//!
//! - every capture's `wirelint exchanges --format jsonl` output equals its checked-in
//!   `X.expected.jsonl` (`WIRELINT_BLESS=1` rewrites those files; review the diff);
//! - the captures are reproducible: regenerating them gives byte-identical files;
//! - targeted assertions state what each case is for where the golden file alone would not.

#[path = "../examples/make_captures.rs"]
#[allow(dead_code)]
pub(crate) mod make_captures;

use std::path::PathBuf;
use std::process::Command;

use wirelint::http::{AnomalyKind, Exchange, Framing};
use wirelint::pipeline::RunSummary;

use crate::support;

const BLESS_HINT: &str = "if the new output is right, regenerate the expected files with \
     `WIRELINT_BLESS=1 cargo test --test tests captures` and review the diff";

/// Captures whose expected output is not checked in because the pipeline gets them wrong
/// today; each names the test below that fails until it is fixed. Once fixed, remove the
/// entry, bless, and review the new `.expected.jsonl`.
const AWAITING_FIX: &[(&str, &str)] = &[];

fn captures_dir() -> PathBuf {
    support::repo().join("captures")
}

fn is_capture(name: &str) -> bool {
    name.ends_with(".pcap") || name.ends_with(".pcapng")
}

/// Capture file names in `captures/`, sorted.
fn capture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(captures_dir())
        .expect("captures/ exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_capture(n))
        .collect();
    names.sort();
    names
}

fn expected_path(name: &str) -> PathBuf {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    captures_dir().join(format!("{stem}.expected.jsonl"))
}

/// `wirelint exchanges --format jsonl NAME` run in `captures/`, so the capture field is the
/// file name alone.
fn jsonl_of(name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .current_dir(captures_dir())
        .args(["exchanges", "--format", "jsonl", "--quiet", name])
        .output()
        .expect("running wirelint");
    assert!(
        out.status.success(),
        "wirelint exchanges {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("jsonl is UTF-8")
}

/// A unified-style line diff (expected `-`, actual `+`, two lines of context).
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', j + 1, b[j]));
            j += 1;
        } else {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        }
    }
    let near_change = |k: usize| {
        let lo = k.saturating_sub(2);
        let hi = (k + 3).min(ops.len());
        ops[lo..hi].iter().any(|op| op.0 != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line, text)) in ops.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("  ...\n");
                skipped = false;
            }
            out.push_str(&format!("{op} {line:>3} {text}\n"));
        } else {
            skipped = true;
        }
    }
    out
}

#[test]
fn every_capture_matches_its_expected_exchanges() {
    let bless = std::env::var_os("WIRELINT_BLESS").is_some_and(|v| v == "1");
    let names = capture_names();
    assert!(
        names.len() >= 50,
        "expected the project's captures in captures/, found {}",
        names.len()
    );
    let mut failures = Vec::new();
    for name in &names {
        let path = expected_path(name);
        if let Some((_, why)) = AWAITING_FIX.iter().find(|(n, _)| n == name) {
            if path.exists() {
                failures.push(format!(
                    "{name} is listed in AWAITING_FIX ({why}) but {} exists: remove the entry once the output is reviewed",
                    path.display()
                ));
            }
            continue;
        }
        let actual = jsonl_of(name);
        if bless {
            std::fs::write(&path, &actual)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: exchanges differ from {} (- expected, + actual):\n{}",
                path.display(),
                diff(&expected, &actual)
            )),
            Err(_) => failures.push(format!("{name}: {} is missing", path.display())),
        }
    }
    for (name, _) in AWAITING_FIX {
        if !names.iter().any(|n| n == name) {
            failures.push(format!(
                "AWAITING_FIX names {name}, which is not in captures/"
            ));
        }
    }
    // Expected files of captures that no longer exist.
    for entry in std::fs::read_dir(captures_dir()).expect("captures/") {
        let file = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(stem) = file.strip_suffix(".expected.jsonl")
            && !names
                .iter()
                .any(|n| n.rsplit_once('.').is_some_and(|(s, _)| s == stem))
        {
            failures.push(format!("captures/{file} belongs to no capture: delete it"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{BLESS_HINT}",
        failures.join("\n\n")
    );
}

#[test]
fn captures_regenerate_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let made = make_captures::write_all(tmp.path()).expect("writing captures");
    let mut problems = Vec::new();
    let mut made_names: Vec<&str> = made.iter().map(|c| c.name).collect();
    made_names.push("README.md");
    for name in &made_names {
        let fresh = std::fs::read(tmp.path().join(name)).expect("regenerated file");
        match std::fs::read(captures_dir().join(name)) {
            Ok(old) if old == fresh => {}
            Ok(_) => problems.push(format!(
                "captures/{name} differs from what examples/make_captures.rs makes"
            )),
            Err(_) => problems.push(format!("captures/{name} is missing")),
        }
    }
    for name in capture_names() {
        if !made_names.contains(&name.as_str()) {
            problems.push(format!(
                "captures/{name} is not made by examples/make_captures.rs"
            ));
        }
    }
    let total: u64 = made.iter().map(|c| c.bytes.len() as u64).sum();
    assert!(
        total < 512 * 1024,
        "the captures should stay small; they take {total} bytes"
    );
    assert!(
        problems.is_empty(),
        "{}\n\nregenerate with `cargo run --example make_captures`, then check the expected \
         exchanges (`cargo test --test tests captures`)",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// What each case is for.

fn run(name: &str) -> (Vec<Exchange>, RunSummary) {
    support::exchanges_of(&[captures_dir().join(name)], 2)
}

fn names(ex: &Exchange) -> Vec<&'static str> {
    ex.anomaly_names()
}

fn target(ex: &Exchange) -> &str {
    ex.request.as_ref().and_then(|m| m.target()).unwrap_or("")
}

fn status(ex: &Exchange) -> Option<u16> {
    ex.response.as_ref().and_then(|m| m.status())
}

/// Every exchange has a request and a response and no anomaly.
fn assert_clean(name: &str, exchanges: &[Exchange]) {
    for ex in exchanges {
        assert!(
            ex.request.is_some() && ex.response.is_some() && names(ex).is_empty(),
            "{name}: exchange {} ({}) is not clean: {:?}",
            ex.index,
            target(ex),
            names(ex)
        );
    }
}

#[test]
fn every_link_layer_and_file_format_gives_the_same_exchange() {
    let one = [
        "link-ethernet.pcap",
        "link-vlan.pcap",
        "link-qinq.pcap",
        "link-pppoe.pcap",
        "link-linux-sll.pcap",
        "link-linux-sll2.pcap",
        "link-ipv4.pcap",
        "link-ipv6.pcap",
        "format-pcap-ns.pcap",
        "format-pcapng.pcapng",
        "link-ppp.pcap",
        "link-ppp-hdlc.pcap",
        "link-cisco-hdlc.pcap",
        "link-mpls.pcap",
        "tunnel-mpls-pseudowire.pcap",
        "tunnel-gre.pcap",
        "tunnel-gre-ethernet.pcap",
        "tunnel-gre-ipv6.pcap",
        "tunnel-erspan2.pcap",
        "tunnel-erspan3.pcap",
        "tunnel-vxlan.pcap",
        "tunnel-vxlan-ipv6.pcap",
        "tunnel-geneve.pcap",
        "tunnel-ipip.pcap",
        "tunnel-ipv4-in-ipv6.pcap",
        "tunnel-6in4.pcap",
        "tunnel-nested.pcap",
    ];
    // The exchange every one of them carries, as the plain Ethernet capture gives it.
    let (plain, _) = run("link-ethernet.pcap");
    let (plain6, _) = run("link-ipv6.pcap");
    let shape = |ex: &Exchange| {
        let req = ex.request.as_ref().expect("request");
        let resp = ex.response.as_ref().expect("response");
        (
            ex.connection.client,
            ex.connection.server,
            req.method().map(str::to_owned),
            target(ex).to_owned(),
            req.headers.len(),
            resp.status(),
            resp.body.size,
            resp.body.captured.clone(),
            (req.first_frame, resp.last_frame),
        )
    };
    for name in one {
        let (ex, summary) = run(name);
        assert_eq!(ex.len(), 1, "{name}");
        assert_clean(name, &ex);
        assert_eq!(status(&ex[0]), Some(200), "{name}");
        assert!(
            summary.decode.errors.is_empty(),
            "{name}: {:?}",
            summary.decode.errors
        );
        assert_eq!(summary.decode.non_tcp, 0, "{name}");
        if !name.starts_with("format-") {
            let expected = if ex[0].connection.client.is_ipv6() {
                &plain6[0]
            } else {
                &plain[0]
            };
            assert_eq!(shape(&ex[0]), shape(expected), "{name}");
        }
        if name.starts_with("tunnel-") {
            assert_eq!(
                summary.decode.tunnelled_segments, summary.decode.tcp_segments,
                "{name}: every segment came through the tunnel"
            );
        }
    }
    let (ex, _) = run("link-ipv6.pcap");
    assert!(ex[0].connection.client.is_ipv6());
    for name in ["link-null.pcap", "link-loop.pcap", "link-raw.pcap"] {
        let (ex, summary) = run(name);
        assert_eq!(ex.len(), 2, "{name}");
        assert_clean(name, &ex);
        assert!(
            ex[0].connection.client.is_ipv4() && ex[1].connection.client.is_ipv6(),
            "{name}"
        );
        assert!(
            summary.decode.errors.is_empty(),
            "{name}: {:?}",
            summary.decode.errors
        );
    }
    let (ex, _) = run("format-pcapng-two-interfaces.pcapng");
    assert_eq!(ex.len(), 2);
    assert_clean("format-pcapng-two-interfaces.pcapng", &ex);
    assert_eq!(
        ex[1].connection.server.port(),
        8080,
        "the Linux SLL interface's connection"
    );
}

#[test]
fn an_undecodable_capture_says_what_it_skipped_even_when_quiet() {
    let (ex, summary) = run("skipped-unsupported-link.pcap");
    assert!(ex.is_empty());
    assert_eq!(
        summary.decode.errors.get("unsupported link type 147"),
        Some(&8)
    );
    assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
    for args in [
        &["exchanges", "-q"][..],
        &["analyze", "-q", "--no-db", "--fail-on", "never"][..],
        &["analyze", "--no-db", "--format", "json"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .current_dir(captures_dir())
            .args(args)
            .arg("skipped-unsupported-link.pcap")
            .output()
            .expect("running wirelint");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(
                "warning: no TCP segment found in 8 frames, so no HTTP exchange could be found: \
                 skipped unsupported link type 147 8"
            ),
            "{args:?}: {stderr}"
        );
        if args.contains(&"json") {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains("\"unsupported link type 147\":8")
                    && stdout.contains("\"skipped\":{}"),
                "{stdout}"
            );
        }
    }
}

#[test]
fn a_filter_that_misses_tunnelled_traffic_is_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .current_dir(captures_dir())
        .args([
            "exchanges",
            "-q",
            "--filter",
            "tcp port 80",
            "tunnel-vxlan.pcap",
        ])
        .output()
        .expect("running wirelint");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        stderr.starts_with("wirelint: warning: the filter removed all 8 frames")
            && stderr.contains("`udp port 4789` for VXLAN"),
        "{stderr}"
    );
    // Filters compile for the new link types (libpcap's DLT values are the same numbers),
    // and the tunnel filters the warning suggests do find the exchange.
    for (filter, name) in [
        ("tcp port 80", "link-ppp.pcap"),
        ("tcp port 80", "link-ppp-hdlc.pcap"),
        ("tcp port 80", "link-cisco-hdlc.pcap"),
        ("udp port 4789", "tunnel-vxlan.pcap"),
        ("geneve and tcp port 80", "tunnel-geneve.pcap"),
        ("mpls and tcp port 80", "link-mpls.pcap"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wirelint"))
            .current_dir(captures_dir())
            .args(["exchanges", "-q", "--filter", filter, name])
            .output()
            .expect("running wirelint");
        assert!(out.status.success(), "{filter} on {name}");
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(lines, 1, "{filter} on {name}");
    }
}

#[test]
fn hostile_fragments_are_counted_and_the_exchange_survives() {
    let (ex, summary) = run("ip-fragments-hostile.pcap");
    assert_eq!(ex.len(), 1);
    assert_clean("ip-fragments-hostile.pcap", &ex);
    assert_eq!(target(&ex[0]), "/fragments");
    let d = &summary.decode;
    assert_eq!(
        (
            d.fragments_conflicting_overlap,
            d.fragments_teardrop,
            d.fragments_past_max_length,
            d.fragment_trains_unfinished
        ),
        (1, 1, 1, 1),
        "{d:?}"
    );
    // The request (108 bytes of TCP) in 40-byte pieces: two tiny ones and the conflicting
    // copy of the second; the teardrop pair's first piece (64 bytes) is not tiny.
    assert_eq!(d.fragments_tiny, 3, "{d:?}");
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    // The text summary names them, and the dropped train.
    let text = wirelint::report::summary::render(&summary, &Default::default());
    assert!(
        text.contains("1 trains dropped (0 timed out, 0 evicted, 1 unfinished at the end)")
            && text.contains(
                "fragments_conflicting_overlap 1, fragments_teardrop 1, fragments_tiny 3, fragments_past_max_length 1"
            ),
        "{text}"
    );
}

#[test]
fn nanosecond_timestamps_are_kept() {
    let (ex, _) = run("format-pcap-ns.pcap");
    let req = ex[0].request.as_ref().expect("request");
    // The capture starts at .123456789 s; the request is the fourth packet, 1 µs apart.
    assert_eq!(req.head_ts.as_nanos() % 1_000_000_000, 123_459_789);
}

#[test]
fn ip_fragments_are_reassembled() {
    let (ex, summary) = run("ip-fragments.pcap");
    assert_eq!(ex.len(), 2);
    assert_clean("ip-fragments.pcap", &ex);
    // The IPv4 request and response and the IPv6 response (the IPv6 request fits in one).
    assert_eq!(
        summary.decode.fragments_reassembled, 3,
        "{:?}",
        summary.decode
    );
    assert_eq!(summary.decode.fragments_dropped, 0);
    assert_eq!(ex[0].request.as_ref().map(|m| m.body.size), Some(400));
    assert!(ex[1].connection.client.is_ipv6());
}

#[test]
fn snaplen_cut_marks_the_message_truncated() {
    let (ex, summary) = run("snaplen-truncated.pcap");
    assert_eq!(ex.len(), 2);
    let big = ex[0].response.as_ref().expect("response");
    assert!(
        big.has_anomaly(AnomalyKind::Truncated),
        "{:?}",
        big.anomalies
    );
    assert_eq!(
        big.body.size, 1000,
        "the cut bytes still count toward the body"
    );
    assert!(
        names(&ex[1]).is_empty(),
        "the next exchange parses: {:?}",
        names(&ex[1])
    );
    assert_eq!(summary.decode.truncated_frames, 1);
}

#[test]
fn snaplen_cut_bytes_are_counted_in_the_summary() {
    let (_, summary) = run("snaplen-truncated.pcap");
    // 1000-byte body; the 200-byte frame kept 54 bytes of headers, the 118-byte head and
    // 28 bytes of body.
    assert_eq!(
        summary.reassembly.streams.cut_bytes, 972,
        "{:?}",
        summary.reassembly.streams
    );
}

#[test]
fn capture_starting_mid_connection_resynchronises() {
    let (ex, summary) = run("tcp-midstream.pcap");
    assert_eq!(
        ex.iter().map(target).collect::<Vec<_>>(),
        ["/after", "/again"]
    );
    // The first exchange says the capture began mid-connection; nothing else is wrong.
    assert_eq!(ex[0].anomaly_names(), ["mid-stream"]);
    assert_clean("tcp-midstream.pcap", &ex[1..]);
    assert!(
        summary.http.resync_skipped_bytes > 0,
        "the tail of the earlier body is skipped"
    );
}

#[test]
fn reordered_retransmitted_and_overlapping_segments_give_clean_exchanges() {
    let (ex, summary) = run("tcp-out-of-order.pcap");
    assert_clean("tcp-out-of-order.pcap", &ex);
    assert_eq!(ex.len(), 2);
    assert!(summary.reassembly.streams.out_of_order_segments >= 2);
    assert_eq!(ex[0].request.as_ref().map(|m| m.body.size), Some(66));

    let (ex, summary) = run("tcp-retransmission.pcap");
    assert_clean("tcp-retransmission.pcap", &ex);
    assert_eq!(ex.len(), 2);
    assert!(summary.reassembly.streams.retransmitted_segments >= 4);

    let (ex, summary) = run("tcp-overlap.pcap");
    assert_clean("tcp-overlap.pcap", &ex);
    assert_eq!(ex.len(), 2);
    assert!(summary.reassembly.streams.overlapping_segments >= 2);
    assert_eq!(summary.reassembly.streams.conflicting_overlaps, 0);
}

#[test]
fn conflicting_overlap_is_reported_on_the_message() {
    let (ex, summary) = run("tcp-overlap-conflict.pcap");
    assert_eq!(ex.len(), 2);
    // First data wins: the response is the original one.
    assert_eq!(status(&ex[0]), Some(200));
    // Two conflicting copies: the tail (held out of order) and the head (already delivered).
    assert_eq!(
        summary.reassembly.streams.conflicting_overlaps, 2,
        "{:?}",
        summary.reassembly.streams
    );
    let resp = ex[0].response.as_ref().expect("response");
    assert!(
        resp.has_anomaly(AnomalyKind::ConflictingOverlap),
        "the response whose bytes were sent twice differently carries conflicting-overlap: {:?}",
        resp.anomalies
    );
}

#[test]
fn gap_marks_the_message_and_parsing_resumes() {
    let (ex, summary) = run("tcp-gap.pcap");
    assert_eq!(ex.len(), 2);
    let resp = ex[0].response.as_ref().expect("response");
    assert!(resp.has_anomaly(AnomalyKind::Gap), "{:?}", resp.anomalies);
    assert!(resp.is_incomplete());
    assert_eq!(
        resp.body.size, 2000,
        "the missing bytes count toward the declared length"
    );
    assert_eq!(target(&ex[1]), "/after-the-hole");
    assert!(names(&ex[1]).is_empty());
    assert_eq!(
        (
            summary.reassembly.streams.gaps,
            summary.reassembly.streams.gap_bytes
        ),
        (1, 500)
    );
}

#[test]
fn sequence_numbers_wrap_inside_messages() {
    let (ex, _) = run("tcp-seq-wrap.pcap");
    assert_eq!(ex.len(), 2);
    assert_clean("tcp-seq-wrap.pcap", &ex);
    assert_eq!(ex[0].request.as_ref().map(|m| m.body.size), Some(514));
    assert_eq!(ex[0].response.as_ref().map(|m| m.body.size), Some(720));
}

#[test]
fn reused_port_is_a_second_connection() {
    let (ex, summary) = run("tcp-port-reuse.pcap");
    assert_eq!(ex.len(), 2);
    assert_clean("tcp-port-reuse.pcap", &ex);
    assert_eq!(summary.reassembly.connections, 2);
    assert_eq!(summary.reassembly.port_reuses, 1);
    assert_eq!((ex[0].index, ex[1].index), (0, 0));
    assert_ne!(ex[0].connection.first_frame, ex[1].connection.first_frame);
}

#[test]
fn reset_after_a_complete_exchange_is_not_an_anomaly() {
    let (ex, _) = run("tcp-rst.pcap");
    assert_eq!(target(&ex[0]), "/then-reset");
    assert!(names(&ex[0]).is_empty());
}

#[test]
fn reset_instead_of_an_answer_leaves_the_request_unanswered() {
    let (ex, _) = run("tcp-rst.pcap");
    let refused = ex
        .iter()
        .find(|e| target(e) == "/refused")
        .expect("the refused request");
    assert!(refused.response.is_none());
    assert_eq!(
        names(refused),
        ["unanswered-request"],
        "the server was seen (SYN-ACK, RST) and reset the connection instead of answering"
    );
}

#[test]
fn non_http_on_port_80_yields_no_exchange() {
    let (ex, summary) = run("non-http-port-80.pcap");
    assert!(ex.is_empty(), "{} exchanges", ex.len());
    assert_eq!(summary.reassembly.connections, 1);
    assert_eq!(summary.http.non_http_connections, 1);
    assert_eq!(summary.http.http_connections, 0);
}

#[test]
fn http_on_a_non_standard_port_is_recognised() {
    let (ex, _) = run("http-port-5000.pcap");
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].connection.server.port(), 5000);
    assert_clean("http-port-5000.pcap", &ex);
}

#[test]
fn pipelined_requests_pair_in_order() {
    let (ex, _) = run("http-pipelining.pcap");
    assert_eq!(
        ex.iter().map(target).collect::<Vec<_>>(),
        ["/a", "/b", "/c"]
    );
    assert_clean("http-pipelining.pcap", &ex);
    for e in &ex {
        let body = String::from_utf8_lossy(&e.response.as_ref().expect("response").body.captured)
            .into_owned();
        assert!(
            body.contains(&format!("<title>{}</title>", target(e))),
            "{} got {body}",
            target(e)
        );
        assert_eq!(
            e.request.as_ref().map(|m| m.head_frame),
            ex[0].request.as_ref().map(|m| m.head_frame)
        );
    }
}

#[test]
fn bodies_are_framed_by_length_chunks_or_close() {
    let (ex, _) = run("http-content-length.pcap");
    assert_clean("http-content-length.pcap", &ex);
    let req = ex[0].request.as_ref().expect("request");
    assert_eq!(req.body.framing, Framing::ContentLength(2511));
    assert_ne!(req.head_frame, req.last_frame, "the body spans segments");

    let (ex, _) = run("http-chunked.pcap");
    assert_clean("http-chunked.pcap", &ex);
    let req = ex[0].request.as_ref().expect("request");
    assert_eq!(
        (req.body.framing, req.body.captured.as_slice()),
        (Framing::Chunked, &b"first linesecond line"[..])
    );
    let resp = ex[0].response.as_ref().expect("response");
    assert_eq!(resp.body.captured, b"hello, world!");
    let trailers: Vec<(&str, &str)> = resp
        .body
        .trailers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(trailers, [("X-Checksum", "6f1ed002"), ("X-Rows", "3")]);

    let (ex, _) = run("http-close-delimited.pcap");
    assert_clean("http-close-delimited.pcap", &ex);
    let resp = ex[0].response.as_ref().expect("response");
    assert_eq!((resp.body.framing, resp.body.size), (Framing::Close, 2150));
}

#[test]
fn head_204_and_304_answers_have_no_body() {
    for (name, count) in [("http-head.pcap", 2), ("http-204-304.pcap", 3)] {
        let (ex, _) = run(name);
        assert_eq!(ex.len(), count, "{name}");
        assert_clean(name, &ex);
        for e in &ex[..count - 1] {
            let resp = e.response.as_ref().expect("response");
            assert_eq!(
                (resp.body.framing, resp.body.size),
                (Framing::None, 0),
                "{name} {}",
                target(e)
            );
        }
    }
}

#[test]
fn interim_responses_attach_to_their_request() {
    let (ex, _) = run("http-100-continue.pcap");
    assert_eq!(ex.len(), 2);
    assert_clean("http-100-continue.pcap", &ex);
    let interim: Vec<Vec<u16>> = ex
        .iter()
        .map(|e| e.interim.iter().filter_map(|m| m.status()).collect())
        .collect();
    assert_eq!(interim, [vec![100], vec![103]]);
    assert_eq!(status(&ex[0]), Some(201));
    assert_eq!(ex[0].request.as_ref().map(|m| m.body.size), Some(41));
}

#[test]
fn upgrade_and_connect_stop_parsing() {
    for (name, code) in [("http-upgrade-101.pcap", 101), ("http-connect.pcap", 200)] {
        let (ex, summary) = run(name);
        assert_eq!(
            ex.len(),
            1,
            "{name}: the HTTP-looking bytes inside the tunnel are not parsed"
        );
        assert_eq!(status(&ex[0]), Some(code), "{name}");
        assert_eq!(
            ex[0].response.as_ref().map(|m| m.body.framing),
            Some(Framing::Tunnel),
            "{name}"
        );
        assert!(names(&ex[0]).is_empty(), "{name}: {:?}", names(&ex[0]));
        assert_eq!(summary.http.tunnels, 1, "{name}");
    }
}

#[test]
fn content_codings_decode_to_the_same_document() {
    let (ex, _) = run("http-content-encoding.pcap");
    assert_eq!(ex.len(), 3);
    assert_clean("http-content-encoding.pcap", &ex);
    let mut docs = Vec::new();
    for e in &ex {
        let resp = e.response.as_ref().expect("response");
        let (doc, capped) = wirelint::http::content::decoded_body(resp, 1 << 20)
            .unwrap_or_else(|err| panic!("{}: {err}", target(e)));
        assert!(!capped);
        assert!(
            doc.len() > resp.body.captured.len(),
            "{}: compressed",
            target(e)
        );
        docs.push(doc);
    }
    assert!(docs.iter().all(|d| d == &docs[0]));
    let json: serde_json::Value = serde_json::from_slice(&docs[0]).expect("JSON");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(12));
}

#[test]
fn old_http_versions() {
    let (ex, _) = run("http-1.0.pcap");
    assert_clean("http-1.0.pcap", &ex);
    assert!(ex.iter().all(|e| {
        e.request
            .as_ref()
            .is_some_and(|m| m.version() == "HTTP/1.0")
    }));
    assert_eq!(
        ex[0].response.as_ref().map(|m| m.body.framing),
        Some(Framing::Close)
    );

    let (ex, _) = run("http-0.9.pcap");
    assert_eq!(ex.len(), 1);
    assert_eq!(
        ex[0].request.as_ref().map(|m| m.version()),
        Some("HTTP/0.9")
    );
    assert_eq!(ex[0].response.as_ref().map(|m| m.body.size), Some(118));
    assert_eq!(names(&ex[0]), ["http09"]);
}

/// Each anomaly capture: the first exchange carries exactly its anomaly, the rest are clean.
#[test]
fn each_anomaly_capture_names_its_anomaly() {
    let cases: &[(&str, &[&str])] = &[
        ("anomaly-obs-fold.pcap", &["obs-fold"]),
        ("anomaly-bare-lf.pcap", &["bare-lf"]),
        (
            "anomaly-whitespace-before-colon.pcap",
            &["whitespace-before-colon"],
        ),
        ("anomaly-invalid-header-name.pcap", &["invalid-header-name"]),
        ("anomaly-cl-and-te.pcap", &["cl-and-te"]),
        (
            "anomaly-conflicting-content-length.pcap",
            &["conflicting-content-length"],
        ),
        (
            "anomaly-invalid-content-length.pcap",
            &["invalid-content-length"],
        ),
        ("anomaly-malformed-chunk.pcap", &["malformed-chunk"]),
        ("anomaly-extra-data.pcap", &["extra-data"]),
        ("anomaly-body-on-head.pcap", &["body-on-head"]),
        ("anomaly-body-on-204.pcap", &["body-on-204"]),
        ("anomaly-body-on-304.pcap", &["body-on-304"]),
    ];
    for (name, expected) in cases {
        let (ex, _) = run(name);
        assert!(!ex.is_empty(), "{name}");
        assert_eq!(
            names(&ex[0]),
            *expected,
            "{name}: first exchange ({})",
            target(&ex[0])
        );
    }
    // The ones whose later exchanges the pipeline already gets right.
    for name in [
        "anomaly-body-on-head.pcap",
        "anomaly-conflicting-content-length.pcap",
        "anomaly-invalid-header-name.pcap",
        "anomaly-malformed-chunk.pcap",
    ] {
        let (ex, _) = run(name);
        assert_eq!(ex.len(), 2, "{name}");
        assert_clean(name, &ex[1..]);
    }
}

#[test]
fn unanswered_requests_and_unrequested_responses() {
    let (ex, _) = run("anomaly-unanswered-request.pcap");
    assert_eq!(ex.len(), 2);
    assert!(names(&ex[0]).is_empty());
    assert_eq!(
        (target(&ex[1]), names(&ex[1])),
        ("/never-answered", vec!["unanswered-request"])
    );

    let (ex, _) = run("anomaly-response-without-request.pcap");
    assert_eq!(ex.len(), 2);
    assert!(ex[1].request.is_none());
    assert_eq!(names(&ex[1]), ["response-without-request"]);
}

/// A start line right after bytes that do not end in LF (a stray body after a 204/304, bytes
/// beyond Content-Length, a JSON body before the next response) must still be found.
#[test]
fn start_line_after_unterminated_bytes_is_found() {
    for name in ["anomaly-body-on-204.pcap", "anomaly-body-on-304.pcap"] {
        let (ex, _) = run(name);
        assert_eq!(ex.len(), 2, "{name}");
        assert_eq!(
            (target(&ex[1]), status(&ex[1])),
            ("/fine", Some(200)),
            "{name}: {:?}",
            names(&ex[1])
        );
        assert!(names(&ex[1]).is_empty(), "{name}: {:?}", names(&ex[1]));
    }

    let (ex, _) = run("anomaly-content-length-mismatch.pcap");
    let got: Vec<(&str, Option<u16>, Vec<&str>)> = ex
        .iter()
        .map(|e| (target(e), status(e), names(e)))
        .collect();
    assert_eq!(
        got,
        [
            ("/longer", Some(200), vec!["content-length-mismatch"]),
            ("/fine", Some(200), vec![]),
            ("/shorter", Some(200), vec!["content-length-mismatch"]),
        ]
    );

    // 27 requests (as tshark counts them) and the 304 nobody asked for.
    let (ex, _) = run("demo-api.pcap");
    assert_eq!(ex.len(), 28);
    let unanswered: Vec<&str> = ex
        .iter()
        .filter(|e| e.response.is_none())
        .map(target)
        .collect();
    assert!(unanswered.is_empty(), "demo-api: unanswered {unanswered:?}");
}

#[test]
fn demo_api_holds_what_the_readme_promises() {
    let (ex, summary) = run("demo-api.pcap");
    assert_eq!(summary.reassembly.connections, 3);
    assert!(ex.len() >= 28);
    let has = |method: &str, code: u16| {
        ex.iter().any(|e| {
            e.request.as_ref().and_then(|m| m.method()) == Some(method) && status(e) == Some(code)
        })
    };
    for (method, code) in [
        ("POST", 201),
        ("GET", 200),
        ("GET", 404),
        ("GET", 401),
        ("DELETE", 204),
        ("OPTIONS", 204),
        ("POST", 500),
        ("GET", 304),
    ] {
        assert!(
            has(method, code),
            "demo-api has no {method} answered {code}"
        );
    }
    let body_on_204 = ex
        .iter()
        .filter(|e| names(e).contains(&"body-on-204"))
        .count();
    let stray_304 = ex
        .iter()
        .filter(|e| {
            e.request.is_none()
                && status(e) == Some(304)
                && names(e) == ["response-without-request"]
        })
        .count();
    assert_eq!((body_on_204, stray_304), (1, 1));
    for e in &ex {
        if let Some(resp) = &e.response {
            assert!(
                resp.has_header("date") && resp.has_header("server"),
                "{}: Date and Server",
                target(e)
            );
        }
    }
}

/// Path of a capture's expected findings (`X.findings.txt`).
fn findings_path(name: &str) -> PathBuf {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    captures_dir().join(format!("{stem}.findings.txt"))
}

/// `analyze` on one capture, one compact line per finding (client, exchange index, rule,
/// severity, message, evidence), in output order.
fn findings_of(name: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wirelint"))
        .args([
            "analyze",
            "--no-db",
            "--format",
            "jsonl",
            "--fail-on",
            "never",
            "-q",
            name,
        ])
        .current_dir(captures_dir())
        .output()
        .expect("the wirelint binary runs");
    assert!(
        out.status.success(),
        "wirelint analyze {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    support::findings_text(&String::from_utf8_lossy(&out.stdout))
}

/// Golden findings: every capture's findings are checked in and reviewed like code.
#[test]
fn every_capture_matches_its_expected_findings() {
    let bless = std::env::var_os("WIRELINT_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for name in capture_names() {
        let path = findings_path(&name);
        let actual = findings_of(&name);
        if bless {
            std::fs::write(&path, &actual)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: findings differ from {} (- expected, + actual):\n{}",
                path.display(),
                diff(&expected, &actual)
            )),
            Err(_) => failures.push(format!("{name}: {} is missing", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{BLESS_HINT}",
        failures.join("\n\n")
    );
}
