//! HTTP/2 through the session, as the pipeline drives it: bytes in, exchanges out.

use std::net::SocketAddr;

use super::frames::{self, FrameType, PREFACE};
use super::hpack::HeaderEncoder;
use crate::capture::{FrameRef, Pos};
use crate::http::{AnomalyKind, Exchange};
use crate::reassembly::{CloseReason, Piece};
use crate::session::Session;

fn pos(n: u64) -> Pos {
    Pos {
        frame: FrameRef { file: 0, number: n },
        ts: crate::time::Timestamp(n as i64 * 1000),
        order: n,
    }
}

/// Both ends of a connection, writing frames.
struct Wire {
    session: Session,
    enc: [HeaderEncoder; 2],
    frame: u64,
    out: Vec<Exchange>,
}

impl Wire {
    fn new() -> Self {
        let ends: [SocketAddr; 2] = [
            "10.0.0.1:40000".parse().expect("addr"),
            "10.0.0.2:8080".parse().expect("addr"),
        ];
        Wire {
            session: Session::new(
                crate::session::SessionConfig::default(),
                ends,
                pos(1),
                Some(0),
                [false, false],
            ),
            enc: [HeaderEncoder::default(), HeaderEncoder::default()],
            frame: 1,
            out: Vec::new(),
        }
    }

    fn send(&mut self, dir: usize, bytes: &[u8]) {
        self.frame += 1;
        self.session
            .piece(dir, Piece::Data(bytes), pos(self.frame), &mut self.out);
    }

    fn headers(&mut self, dir: usize, stream: u32, fields: &[(&str, &str)], end: bool) -> Vec<u8> {
        let block = self.enc[dir].encode(fields);
        let flags = frames::END_HEADERS | if end { frames::END_STREAM } else { 0 };
        frames::encode(FrameType::Headers, flags, stream, &block)
    }

    fn close(&mut self) -> Vec<Exchange> {
        self.frame += 1;
        self.session.close(
            [true, true],
            CloseReason::Closed,
            pos(self.frame),
            &mut self.out,
        );
        std::mem::take(&mut self.out)
    }
}

fn settings() -> Vec<u8> {
    frames::encode(FrameType::Settings, 0, 0, &[])
}

fn data(stream: u32, bytes: &[u8], end: bool) -> Vec<u8> {
    frames::encode(
        FrameType::Data,
        if end { frames::END_STREAM } else { 0 },
        stream,
        bytes,
    )
}

const GET: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":authority", "api.example"),
    (":path", "/a"),
];

#[test]
fn prior_knowledge_interleaved_streams_with_body_and_trailers() {
    let mut w = Wire::new();
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    c.extend(w.headers(0, 1, GET, true));
    let post = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "api.example"),
        (":path", "/upload"),
        ("content-type", "application/json"),
        ("content-length", "12"),
    ];
    c.extend(w.headers(0, 3, &post, false));
    c.extend(data(3, b"{\"a\":", false));
    // The preface split across segments.
    w.send(0, &c[..10]);
    w.send(0, &c[10..]);
    let mut s = settings();
    s.extend(w.headers(1, 3, &[(":status", "100")], false));
    w.send(1, &s);
    w.send(0, &data(3, b"123456}", true));
    let mut s = w.headers(1, 3, &[(":status", "201"), ("location", "/upload/1")], true);
    s.extend(w.headers(
        1,
        1,
        &[(":status", "200"), ("content-type", "text/plain")],
        false,
    ));
    s.extend(data(1, b"hello", false));
    s.extend(w.headers(1, 1, &[("grpc-status", "0")], true));
    w.send(1, &s);
    let out = w.close();
    assert_eq!(out.len(), 2, "{out:#?}");
    let post_ex = out
        .iter()
        .find(|e| e.stream_id == Some(3))
        .expect("stream 3");
    let req = post_ex.request.as_ref().expect("request");
    assert_eq!(req.method(), Some("POST"));
    assert_eq!(req.version(), "HTTP/2");
    assert_eq!(req.header("host"), Some("api.example"));
    assert_eq!(req.body.size, 12);
    assert_eq!(req.body.captured, b"{\"a\":123456}");
    assert_eq!(post_ex.interim.len(), 1);
    assert_eq!(
        post_ex.response.as_ref().and_then(|r| r.status()),
        Some(201)
    );
    assert!(
        post_ex.anomaly_names().is_empty(),
        "{:?}",
        post_ex.anomaly_names()
    );
    let get_ex = out
        .iter()
        .find(|e| e.stream_id == Some(1))
        .expect("stream 1");
    assert_eq!(get_ex.index, 0);
    assert_eq!(post_ex.index, 1);
    let resp = get_ex.response.as_ref().expect("response");
    assert_eq!(resp.body.captured, b"hello");
    assert_eq!(resp.body.trailers[0].name, "grpc-status");
    assert_eq!(resp.headers[0].name, ":status");
    assert_eq!(w.session.stats().http2_connections, 1);
    assert_eq!(w.session.stats().exchanges, 2);
}

#[test]
fn upgrade_h2c_makes_the_request_stream_one() {
    let mut w = Wire::new();
    w.send(
        0,
        b"GET /u HTTP/1.1\r\nHost: api.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    );
    let mut s =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    s.extend(settings());
    s.extend(w.headers(1, 1, &[(":status", "200"), ("content-length", "2")], false));
    w.send(1, &s);
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    c.extend(w.headers(0, 3, GET, true));
    w.send(0, &c);
    let mut s = data(1, b"ok", true);
    s.extend(w.headers(1, 3, &[(":status", "404")], true));
    w.send(1, &s);
    let out = w.close();
    assert_eq!(out.len(), 2, "{out:#?}");
    let first = &out[0];
    assert_eq!(first.stream_id, Some(1));
    assert_eq!(first.index, 0);
    assert_eq!(
        first.request.as_ref().map(|r| r.version()),
        Some("HTTP/1.1")
    );
    assert_eq!(first.interim[0].status(), Some(101));
    let resp = first.response.as_ref().expect("h2 response");
    assert_eq!(resp.version(), "HTTP/2");
    assert_eq!(resp.body.captured, b"ok");
    assert!(
        first.anomaly_names().is_empty(),
        "{:?}",
        first.anomaly_names()
    );
    assert_eq!(out[1].stream_id, Some(3));
    assert_eq!(out[1].index, 1);
    assert_eq!(out[1].response.as_ref().and_then(|r| r.status()), Some(404));
}

#[test]
fn http1_is_untouched_and_other_upgrades_stay_tunnels() {
    let mut w = Wire::new();
    w.send(
        0,
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    w.send(1, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello");
    assert!(w.session.is_done());
    let out = w.close();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].stream_id, None);
    assert_eq!(out[0].response.as_ref().and_then(|r| r.status()), Some(101));
}

#[test]
fn server_settings_first_waits_for_the_preface() {
    let mut w = Wire::new();
    w.send(1, &settings());
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    c.extend(w.headers(0, 1, GET, true));
    w.send(0, &c);
    let h = w.headers(1, 1, &[(":status", "204")], true);
    w.send(1, &h);
    let out = w.close();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].response.as_ref().and_then(|r| r.status()), Some(204));
}

#[test]
fn a_gap_stops_decoding_and_says_so() {
    let mut w = Wire::new();
    let mut c = PREFACE.to_vec();
    c.extend(w.headers(0, 1, GET, true));
    w.send(0, &c);
    w.frame += 1;
    w.session
        .piece(1, Piece::Gap(100), pos(w.frame), &mut w.out);
    assert!(w.session.is_done());
    let out = w.close();
    assert_eq!(out.len(), 1);
    assert!(out[0].anomaly_names().contains(&"h2-decoding-stopped"));
    assert_eq!(w.session.stats().http2_decoding_stopped, 1);
}

#[test]
fn malformed_fields_reset_push_and_violations_are_anomalies() {
    let mut w = Wire::new();
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    let bad = [
        (":method", "GET"),
        (":path", "/x"),
        ("Accept", "*/*"),
        (":scheme", "http"),
        ("connection", "keep-alive"),
        ("te", "gzip"),
    ];
    c.extend(w.headers(0, 1, &bad, true));
    c.extend(w.headers(0, 3, GET, true));
    w.send(0, &c);
    // Server: a push, a frame larger than allowed, a reset, a length mismatch.
    let mut s = settings();
    let block = w.enc[1].encode(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "api.example"),
        (":path", "/style.css"),
    ]);
    let mut pp = 2u32.to_be_bytes().to_vec();
    pp.extend(block);
    s.extend(frames::encode(
        FrameType::PushPromise,
        frames::END_HEADERS,
        1,
        &pp,
    ));
    s.extend(w.headers(1, 1, &[(":status", "200"), ("content-length", "3")], false));
    s.extend(data(1, &[b'x'; 20_000], true));
    s.extend(w.headers(1, 2, &[(":status", "200")], true));
    s.extend(frames::encode(
        FrameType::RstStream,
        0,
        3,
        &8u32.to_be_bytes(),
    ));
    w.send(1, &s);
    let out = w.close();
    let by_id = |id| {
        out.iter()
            .find(|e| e.stream_id == Some(id))
            .expect("stream")
    };
    let names = by_id(1).anomaly_names();
    for n in [
        "h2-uppercase-field-name",
        "h2-pseudo-header-error",
        "h2-connection-specific-field",
        "h2-invalid-te",
        "h2-frame-size-violation",
        "h2-content-length-mismatch",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(by_id(2).anomaly_names().contains(&"h2-server-push"));
    assert_eq!(
        by_id(2).request.as_ref().and_then(|r| r.target()),
        Some("/style.css")
    );
    assert!(by_id(3).anomaly_names().contains(&"h2-stream-reset"));
    let kinds: Vec<_> = by_id(3).anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AnomalyKind::H2StreamReset]);
}

#[test]
fn flow_control_violation() {
    let mut w = Wire::new();
    let mut c = PREFACE.to_vec();
    // The client allows 10 bytes per stream.
    c.extend(frames::encode(
        FrameType::Settings,
        0,
        0,
        &frames::settings_payload(&[(frames::SETTINGS_INITIAL_WINDOW_SIZE, 10)]),
    ));
    c.extend(w.headers(0, 1, GET, true));
    w.send(0, &c);
    let mut s = settings();
    s.extend(w.headers(1, 1, &[(":status", "200")], false));
    s.extend(data(1, b"0123456789", false));
    w.send(1, &s);
    w.send(1, &data(1, b"x", true));
    let out = w.close();
    assert!(
        out[0]
            .anomaly_names()
            .contains(&"h2-flow-control-violation")
    );
}

#[test]
fn not_a_preface_is_http1() {
    let mut w = Wire::new();
    w.send(0, b"PRI * HTTP/1.1\r\nHost: a\r\n\r\n");
    w.send(
        1,
        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n",
    );
    let out = w.close();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].stream_id, None);
    assert_eq!(
        out[0].request.as_ref().and_then(|r| r.method()),
        Some("PRI")
    );
}

#[test]
fn open_streams_are_bounded() {
    let mut w = Wire::new();
    let mut c = PREFACE.to_vec();
    for i in 0..4100u32 {
        c.extend(w.headers(0, 2 * i + 1, GET, true));
    }
    w.send(0, &c);
    assert_eq!(
        w.out.len(),
        4,
        "the four oldest streams are released: {:?}",
        w.session.stats()
    );
    assert!(
        w.out[0].anomaly_names().is_empty(),
        "their requests were complete"
    );
    assert_eq!(w.out[0].stream_id, Some(1));
    assert_eq!(w.close().len(), 4100);
}

proptest::proptest! {
    /// Any bytes after the preface: exchanges or anomalies, never a panic.
    #[test]
    fn arbitrary_frames_do_not_panic(
        c in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let mut w = Wire::new();
        let mut first = PREFACE.to_vec();
        first.extend(c);
        w.send(0, &first);
        w.send(1, &s);
        let _ = w.close();
    }
}

/// A gRPC-style h2c connection that was open before the capture began: the capture starts
/// inside a DATA frame of each direction.
#[test]
fn a_connection_joined_late_is_decoded_from_its_first_frame_boundary() {
    let mut enc = [HeaderEncoder::default(), HeaderEncoder::default()];
    let mut block = |dir: usize, stream: u32, fields: &[(&str, &str)], end: bool| {
        let flags = frames::END_HEADERS | if end { frames::END_STREAM } else { 0 };
        frames::encode(FrameType::Headers, flags, stream, &enc[dir].encode(fields))
    };
    let request = |path| {
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "grpc.local"),
            (":path", path),
            ("x-tenant", "acme"),
            ("content-type", "application/grpc"),
        ]
    };
    let response = [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("x-served-by", "node-1"),
    ];
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    c.extend(block(0, 1, &request("/svc/A"), false));
    c.extend(data(1, &[0; 40], true));
    let c_cut = c.len() - 20;
    for stream in [3, 5] {
        c.extend(block(0, stream, &request("/svc/B"), false));
        c.extend(data(stream, b"payload", true));
    }
    let mut s = settings();
    s.extend(block(1, 1, &response, false));
    s.extend(data(1, b"resp", false));
    let s_cut = s.len() - 2;
    s.extend(block(1, 1, &[("grpc-status", "0")], true));
    for stream in [3, 5] {
        s.extend(block(1, stream, &response, false));
        s.extend(data(stream, b"ok", false));
        s.extend(block(1, stream, &[("grpc-status", "0")], true));
    }

    let ends: [SocketAddr; 2] = [
        "10.0.0.1:40000".parse().expect("addr"),
        "10.0.0.2:8080".parse().expect("addr"),
    ];
    // Whole, and byte by byte (each byte searched a bounded number of times).
    for piece_len in [usize::MAX, 1] {
        let mut session = joined_late_session(ends);
        let mut out = Vec::new();
        for (dir, bytes, at) in [(0, &c[c_cut..], 2), (1, &s[s_cut..], 3)] {
            for piece in bytes.chunks(piece_len.min(bytes.len())) {
                session.piece(dir, Piece::Data(piece), pos(at), &mut out);
            }
        }
        session.close([true, true], CloseReason::Closed, pos(4), &mut out);
        check_joined_late(&session, &out);
    }
}

/// A session between `ends` joined mid-stream both ways, with no SYN seen.
fn joined_late_session(ends: [SocketAddr; 2]) -> Session {
    Session::new(
        crate::session::SessionConfig::default(),
        ends,
        pos(1),
        None,
        [true, true],
    )
}

fn check_joined_late(session: &Session, out: &[Exchange]) {
    let stats = session.stats();
    assert_eq!(stats.http2_joined_late, 1);
    assert_eq!(stats.http2_connections, 1);
    // Stream 1's trailers arrived within the capture; its opening did not.
    assert_eq!(stats.http2_frames_before_capture, 1);
    assert_eq!(out.len(), 2, "{out:#?}");
    for (ex, stream) in out.iter().zip([3, 5]) {
        assert_eq!(ex.stream_id, Some(stream));
        let req = ex.request.as_ref().expect("request");
        assert_eq!((req.method(), req.target()), (Some("POST"), Some("/svc/B")));
        // :authority, x-tenant and content-type were indexed before the capture.
        assert!(!req.head_complete);
        assert!(
            req.has_anomaly(AnomalyKind::H2HeaderStateUnknown),
            "{req:#?}"
        );
        assert!(!req.has_anomaly(AnomalyKind::H2PseudoHeader), "{req:#?}");
        let resp = ex.response.as_ref().expect("response");
        assert_eq!(resp.status(), Some(200));
        // x-served-by was indexed before the capture.
        assert!(
            resp.has_anomaly(AnomalyKind::H2HeaderStateUnknown),
            "{resp:#?}"
        );
        assert_eq!(resp.header("content-type"), Some("application/grpc"));
        assert_eq!(resp.body.trailers.len(), 1, "{resp:#?}");
        assert!(
            !ex.anomalies
                .iter()
                .any(|a| a.kind == AnomalyKind::H2ProtocolError)
        );
    }
}

/// A connection that began before the capture and is HTTP/1 stays HTTP/1.
#[test]
fn a_joined_late_http1_connection_is_not_taken_for_http2() {
    let ends: [SocketAddr; 2] = [
        "10.0.0.1:40000".parse().expect("addr"),
        "10.0.0.2:8080".parse().expect("addr"),
    ];
    let mut session = joined_late_session(ends);
    let mut out = Vec::new();
    let body_tail = vec![0x5a; 3000];
    session.piece(1, Piece::Data(&body_tail), pos(2), &mut out);
    session.piece(
        0,
        Piece::Data(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"),
        pos(3),
        &mut out,
    );
    session.piece(
        1,
        Piece::Data(b"HTTP/1.1 204 No Content\r\n\r\n"),
        pos(4),
        &mut out,
    );
    session.close([true, true], CloseReason::Closed, pos(5), &mut out);
    assert_eq!(session.stats().http2_connections, 0);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].response.as_ref().and_then(|r| r.status()), Some(204));
}

#[test]
fn open_streams_and_their_bodies_count_in_the_connections_memory() {
    let mut w = Wire::new();
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    w.send(0, &c);
    w.send(1, &settings());
    let idle = w.session.buffered();
    // 100 requests with 16 KiB of body each, none ended: all of it is held.
    let chunk = vec![b'x'; 16 * 1024];
    for k in 0..100u32 {
        let id = 2 * k + 1;
        let mut f = w.headers(0, id, GET, false);
        f.extend(data(id, &chunk, false));
        w.send(0, &f);
    }
    let busy = w.session.buffered();
    assert!(
        busy >= idle + 100 * chunk.len(),
        "{busy} bytes counted with 1.6 MB of bodies open (idle {idle})"
    );
    // Ended and answered, the streams leave and so does their memory.
    for k in 0..100u32 {
        let id = 2 * k + 1;
        w.send(0, &data(id, b"", true));
        let response = w.headers(1, id, &[(":status", "204")], true);
        w.send(1, &response);
    }
    let after = w.session.buffered();
    assert!(
        after < idle + 64 * 1024,
        "{after} bytes counted once every stream ended (idle {idle})"
    );
    assert_eq!(w.close().len(), 100);
}

#[test]
fn repeated_trailer_blocks_keep_at_most_1024_fields() {
    let mut w = Wire::new();
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    c.extend(w.headers(0, 1, GET, false));
    w.send(0, &c);
    // 100 blocks of 20 trailer fields each, none ending the stream, then the end.
    let fields: Vec<(String, String)> = (0..20).map(|i| (format!("x-t{i}"), "v".into())).collect();
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    for _ in 0..100 {
        let block = w.headers(0, 1, &fields, false);
        w.send(0, &block);
    }
    w.send(0, &data(1, b"", true));
    let response = w.headers(1, 1, &[(":status", "204")], true);
    w.send(1, &response);
    let out = w.close();
    assert_eq!(out.len(), 1, "{out:#?}");
    let req = out[0].request.as_ref().expect("request");
    assert_eq!(req.body.trailers.len(), 1024);
    assert!(
        req.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::OversizedHead
                && a.detail == "more than 1024 trailer fields: the rest not kept"),
        "{:?}",
        req.anomalies
    );
}

/// An HPACK bomb in one HEADERS frame: a 120-octet field, then 10,000 one-octet references
/// to it (1.6 MB decoded from 10 KB). The request keeps its first fields up to the head cap,
/// is marked oversized and incomplete, and still pairs with its response.
#[test]
fn an_hpack_bomb_keeps_the_fields_within_the_head_cap() {
    let mut w = Wire::new();
    // :method GET, :scheme http, :path /, then :authority and x-bomb with indexing.
    let mut block = vec![0x82, 0x86, 0x84, 0x41, 11];
    block.extend_from_slice(b"api.example");
    block.extend([0x40, 6]);
    block.extend_from_slice(b"x-bomb");
    block.push(120);
    block.extend([b'v'; 120]);
    block.extend(std::iter::repeat_n(0xbe, 10_000));
    let mut c = PREFACE.to_vec();
    c.extend(settings());
    c.extend(frames::encode(
        FrameType::Headers,
        frames::END_HEADERS | frames::END_STREAM,
        1,
        &block,
    ));
    w.send(0, &c);
    let before_response = w.session.buffered();
    let response = w.headers(1, 1, &[(":status", "204")], true);
    w.send(1, &response);
    let out = w.close();
    assert_eq!(out.len(), 1, "{out:#?}");
    let req = out[0].request.as_ref().expect("request");
    assert_eq!(req.method(), Some("GET"));
    assert_eq!(req.target(), Some("/"));
    assert!(!req.head_complete);
    let size: usize = req
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 32)
        .sum();
    assert!(size <= 64 * 1024, "{size} header list octets kept");
    let kept_bombs = req.headers.iter().filter(|h| h.name == "x-bomb").count();
    assert!(kept_bombs > 400, "{kept_bombs}");
    let not_kept = 10_001 - kept_bombs;
    let detail = format!("header list larger than 65536 bytes: {not_kept} fields past it not kept");
    assert!(
        req.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::OversizedHead && a.detail == detail),
        "{:?}",
        req.anomalies
    );
    assert_eq!(out[0].response.as_ref().and_then(|r| r.status()), Some(204));
    assert!(
        before_response < 256 * 1024,
        "{before_response} bytes held with the request open"
    );
}
