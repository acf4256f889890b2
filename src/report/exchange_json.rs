//! The exchange object of `wirelint exchanges --format jsonl` — a contract other tools read,
//! and the `exchange` member of every finding in `analyze --format jsonl`.

use serde::Serialize;

use crate::http::{Exchange, Message, StartLine};

/// Formats an address as `ip:port`, IPv6 as `[addr]:port`.
pub fn endpoint(addr: &std::net::SocketAddr) -> String {
    addr.to_string()
}

#[derive(Serialize)]
pub struct ExchangeJson<'a> {
    pub capture: &'a str,
    pub client: String,
    pub server: String,
    pub index: u32,
    /// The HTTP/2 stream (absent for HTTP/1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<u32>,
    pub request: Option<RequestJson<'a>>,
    pub response: Option<ResponseJson<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interim: Vec<ResponseJson<'a>>,
    pub anomalies: Vec<&'static str>,
}

#[derive(Serialize)]
pub struct RequestJson<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub version: &'a str,
    pub host: Option<&'a str>,
    /// `null` for an exchange read from a HAR file (no frames).
    pub frame: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<&'a str>,
    pub ts: String,
    pub headers: Vec<[&'a str; 2]>,
    pub body_bytes: u64,
}

#[derive(Serialize)]
pub struct ResponseJson<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub version: &'a str,
    pub frame: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<&'a str>,
    pub ts: String,
    pub headers: Vec<[&'a str; 2]>,
    pub body_bytes: u64,
    /// gRPC status (the `grpc-status` trailer, or header in a trailers-only response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<&'a str>,
}

fn headers(m: &Message) -> Vec<[&str; 2]> {
    m.headers
        .iter()
        .map(|h| [h.name.as_str(), h.value.as_str()])
        .collect()
}

/// Name of the capture file a message came from, when it differs from the exchange's.
fn other_capture<'a>(m: &Message, exchange_file: u16, names: &'a [String]) -> Option<&'a str> {
    (m.head_frame.file != exchange_file)
        .then(|| {
            names
                .get(usize::from(m.head_frame.file))
                .map(String::as_str)
        })
        .flatten()
}

fn response_json<'a>(
    m: &'a Message,
    wire: bool,
    file: u16,
    names: &'a [String],
) -> Option<ResponseJson<'a>> {
    let StartLine::Response {
        version,
        status,
        reason,
    } = &m.start
    else {
        return None;
    };
    Some(ResponseJson {
        status: *status,
        reason,
        version,
        frame: wire.then_some(m.head_frame.number),
        capture: other_capture(m, file, names),
        ts: m.head_ts.to_rfc3339(),
        headers: headers(m),
        body_bytes: m.body.size,
        grpc_status: m
            .body
            .trailers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("grpc-status"))
            .map(|h| h.value.as_str())
            .or_else(|| m.header("grpc-status")),
    })
}

impl<'a> ExchangeJson<'a> {
    /// `names` are the run's capture file names, indexed by `FrameRef::file`.
    pub fn new(ex: &'a Exchange, names: &'a [String]) -> Self {
        let file = ex
            .request
            .as_ref()
            .or(ex.response.as_ref())
            .map_or(ex.connection.first_frame.file, |m| m.head_frame.file);
        let capture = names.get(usize::from(file)).map_or("", String::as_str);
        let wire = ex.has_wire_bytes();
        let request = ex.request.as_ref().and_then(|m| {
            let StartLine::Request {
                method,
                target,
                version,
            } = &m.start
            else {
                return None;
            };
            Some(RequestJson {
                method,
                target,
                version,
                host: m.host(),
                frame: wire.then_some(m.head_frame.number),
                capture: other_capture(m, file, names),
                ts: m.head_ts.to_rfc3339(),
                headers: headers(m),
                body_bytes: m.body.size,
            })
        });
        ExchangeJson {
            capture,
            client: endpoint(&ex.connection.client),
            server: endpoint(&ex.connection.server),
            index: ex.index,
            stream_id: ex.stream_id,
            request,
            response: ex
                .response
                .as_ref()
                .and_then(|m| response_json(m, wire, file, names)),
            interim: ex
                .interim
                .iter()
                .filter_map(|m| response_json(m, wire, file, names))
                .collect(),
            anomalies: ex.anomaly_names(),
        }
    }
}
