//! Exchanges → HAR 1.2, streamed entry by entry (memory stays flat however long the
//! capture). Content is written decoded (HAR's `content.text` is what the client saw),
//! as text when it is UTF-8 and as base64 otherwise; what HAR has no field for — both
//! addresses, frame numbers, anomalies — goes in the `_wirelint` vendor object.

use std::io::Write;

use base64::Engine as _;

use super::model::{
    Content, Cookie, Entry, NameValue, PostData, Request, Response, Timings, WirelintFields,
};
use crate::http::{Exchange, Message, content};
use crate::report::exchange_json::endpoint;
use crate::time::Timestamp;

/// Decoded content written per message at most (the rest is left out and said so).
const CONTENT_CAP: usize = 16 * 1024 * 1024;

/// Writes `{"log": {..., "entries": [` … `]}}` around the entries it is given, to the
/// writer passed to each call (so that the caller keeps its output for other use).
pub struct HarWriter {
    names: Vec<String>,
    entries: u64,
}

impl HarWriter {
    /// Starts the document. `names` are the run's input files, indexed by `FrameRef::file`.
    pub fn begin(out: &mut impl Write, names: Vec<String>) -> std::io::Result<Self> {
        write!(
            out,
            "{{\"log\":{{\"version\":\"1.2\",\"creator\":{{\"name\":\"wirelint\",\"version\":\"{}\"}},\"entries\":[",
            env!("CARGO_PKG_VERSION")
        )?;
        Ok(HarWriter { names, entries: 0 })
    }

    pub fn entry(&mut self, out: &mut impl Write, ex: &Exchange) -> std::io::Result<()> {
        let entry = entry(ex, &self.names);
        if self.entries > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\n")?;
        serde_json::to_writer(&mut *out, &entry).map_err(std::io::Error::from)?;
        self.entries += 1;
        Ok(())
    }

    /// Closes the document; returns the number of entries.
    pub fn finish(self, out: &mut impl Write) -> std::io::Result<u64> {
        out.write_all(b"\n]}}\n")?;
        Ok(self.entries)
    }
}

fn ms_between(later: Timestamp, earlier: Timestamp) -> f64 {
    let ns = later.0.saturating_sub(earlier.0).max(0);
    // Microsecond precision, as browsers write it.
    (ns as f64 / 1000.0).round() / 1000.0
}

fn rfc3339_ms(ts: Timestamp) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ts.0)) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

fn name_values(m: &Message) -> Vec<NameValue> {
    m.headers
        .iter()
        .map(|h| NameValue {
            name: h.name.clone(),
            value: h.value.clone(),
        })
        .collect()
}

/// `name=value` pairs of `Cookie` fields (request) or the first pair of each `Set-Cookie`.
fn cookies(m: &Message, set_cookie: bool) -> Vec<Cookie> {
    let pair = |s: &str| {
        let (n, v) = s.split_once('=').unwrap_or((s, ""));
        Cookie {
            name: n.trim().to_string(),
            value: v.trim().to_string(),
        }
    };
    if set_cookie {
        m.header_values("set-cookie")
            .map(|v| pair(v.split(';').next().unwrap_or(v)))
            .collect()
    } else {
        m.header_values("cookie")
            .flat_map(|v| v.split(';'))
            .filter(|s| !s.trim().is_empty())
            .map(pair)
            .collect()
    }
}

fn query_string(target: &str) -> Vec<NameValue> {
    let Some((_, query)) = target.split_once('?') else {
        return Vec::new();
    };
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_else(|_| {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, v) = p.split_once('=').unwrap_or((p, ""));
                (n.to_string(), v.to_string())
            })
            .collect()
    });
    pairs
        .into_iter()
        .map(|(name, value)| NameValue { name, value })
        .collect()
}

/// The URL of a request: absolute-form as is, otherwise scheme, authority and target.
fn url(ex: &Exchange, req: &Message) -> String {
    let target = req.target().unwrap_or("/");
    if target.contains("://") {
        return target.to_string();
    }
    let scheme = if ex.connection.tls { "https" } else { "http" };
    let authority = req
        .host()
        .map_or_else(|| endpoint(&ex.connection.server), str::to_string);
    if req.method() == Some("CONNECT") || !target.starts_with('/') {
        return format!("{scheme}://{authority}");
    }
    format!("{scheme}://{authority}{target}")
}

/// The whole content of a message, decoded, if it was captured whole and decodes.
fn whole_content(m: &Message) -> Option<Vec<u8>> {
    if !m.body.captured_all || m.is_incomplete() {
        return None;
    }
    match content::decoded_body(m, CONTENT_CAP) {
        Ok((bytes, false)) => Some(bytes.into_owned()),
        _ => None,
    }
}

/// Text when the bytes are UTF-8, else base64 with the encoding named.
fn text_of(bytes: Vec<u8>) -> (String, Option<String>) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            Some("base64".into()),
        ),
    }
}

fn size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn request(ex: &Exchange, m: &Message) -> Request {
    let version = match m.version() {
        "" => "HTTP/0.9",
        v => v,
    };
    let post_data = (m.body.size > 0).then(|| {
        let mime_type = m.header("content-type").unwrap_or("").to_string();
        match whole_content(m) {
            Some(bytes) => {
                let (text, encoding) = text_of(bytes);
                PostData {
                    mime_type,
                    text: Some(text),
                    encoding,
                    ..PostData::default()
                }
            }
            None => PostData {
                mime_type,
                comment: Some(format!(
                    "{} bytes of content, not captured whole",
                    m.body.size
                )),
                ..PostData::default()
            },
        }
    });
    Request {
        method: m.method().unwrap_or("").to_string(),
        url: url(ex, m),
        http_version: version.to_string(),
        cookies: cookies(m, false),
        headers: name_values(m),
        query_string: query_string(m.target().unwrap_or("")),
        post_data,
        headers_size: if ex.has_wire_bytes() {
            size(m.raw_head.len() as u64)
        } else {
            -1
        },
        body_size: size(m.body.size),
        comment: None,
    }
}

fn response(ex: &Exchange, m: &Message) -> Response {
    let mime_type = m.header("content-type").unwrap_or("").to_string();
    let content = match whole_content(m) {
        Some(bytes) => {
            let decoded = size(bytes.len() as u64);
            let sent = size(m.body.size);
            let (text, encoding) = text_of(bytes);
            Content {
                size: decoded,
                compression: (decoded > sent && sent > 0).then(|| decoded - sent),
                mime_type,
                text: (m.body.size > 0).then_some(text),
                encoding: encoding.filter(|_| m.body.size > 0),
                comment: None,
            }
        }
        None => Content {
            size: size(m.body.size),
            mime_type,
            comment: (m.body.size > 0).then(|| "content not captured whole".to_string()),
            ..Content::default()
        },
    };
    Response {
        status: i64::from(m.status().unwrap_or(0)),
        status_text: m.reason().unwrap_or("").to_string(),
        http_version: m.version().to_string(),
        cookies: cookies(m, true),
        headers: name_values(m),
        content,
        redirect_url: m.header("location").unwrap_or("").to_string(),
        headers_size: if ex.has_wire_bytes() {
            size(m.raw_head.len() as u64)
        } else {
            -1
        },
        body_size: size(m.body.size),
        comment: None,
    }
}

/// One exchange as a HAR entry.
pub fn entry(ex: &Exchange, names: &[String]) -> Entry {
    let req = ex.request.as_ref();
    let resp = ex.response.as_ref();
    let started = req.or(resp).map_or(Timestamp::ZERO, |m| m.first_ts);
    let send = req.map_or(-1.0, |m| ms_between(m.last_ts, m.first_ts));
    let (wait, receive) = match (req, resp) {
        (Some(q), Some(r)) => (
            ms_between(r.first_ts, q.last_ts),
            ms_between(r.last_ts, r.first_ts),
        ),
        (None, Some(r)) => (-1.0, ms_between(r.last_ts, r.first_ts)),
        _ => (-1.0, -1.0),
    };
    let wire = ex.has_wire_bytes();
    let frames = |m: &Message| wire.then_some([m.first_frame.number, m.last_frame.number]);
    let file = req
        .or(resp)
        .map_or(ex.connection.first_frame.file, |m| m.head_frame.file);
    let c = &ex.connection;
    Entry {
        pageref: None,
        started_date_time: rfc3339_ms(started),
        time: [send, wait, receive].iter().filter(|v| **v > 0.0).sum(),
        request: req.map(|m| request(ex, m)).unwrap_or_else(|| Request {
            http_version: resp.map_or("", |r| r.version()).to_string(),
            url: format!(
                "{}://{}/",
                if c.tls { "https" } else { "http" },
                endpoint(&c.server)
            ),
            comment: Some("no request was seen for this response".into()),
            headers_size: -1,
            body_size: -1,
            ..Request::default()
        }),
        response: resp.map(|m| response(ex, m)).unwrap_or_else(|| Response {
            http_version: req.map_or("", |r| r.version()).to_string(),
            comment: Some("no response was seen for this request".into()),
            headers_size: -1,
            body_size: -1,
            content: Content {
                size: -1,
                ..Content::default()
            },
            ..Response::default()
        }),
        cache: serde_json::Map::new(),
        timings: Timings {
            send,
            wait,
            receive,
            ..Timings::default()
        },
        server_ip_address: Some(c.server.ip().to_string()),
        connection: Some(format!("{}:{}", c.first_frame.file, c.first_frame.number)),
        comment: None,
        wirelint: Some(WirelintFields {
            source: if wire { "wire" } else { "har" }.into(),
            capture: names.get(usize::from(file)).cloned().unwrap_or_default(),
            client: endpoint(&c.client),
            server: endpoint(&c.server),
            index: ex.index,
            request_frames: req.and_then(frames),
            response_frames: resp.and_then(frames),
            anomalies: ex.anomaly_names().into_iter().map(String::from).collect(),
            interim: ex.interim.iter().filter_map(Message::status).collect(),
        }),
    }
}
