//! HAR entries → [`Exchange`]s: headers in order, content decoded from the HAR text (and
//! marked as already decoded), times from `startedDateTime` + `timings`, connections from
//! `serverIPAddress`/`connection` (else one per scheme and host). No wire bytes, no frames:
//! the exchanges are marked [`ExchangeSource::Har`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;

use super::model::{Entry, NameValue, PostData};
use crate::capture::FrameRef;
use crate::http::{
    Anomaly, AnomalyKind, Body, Connection, Exchange, ExchangeSource, Framing, Header, Message,
    StartLine,
};
use crate::time::Timestamp;

/// Reads the entries of one HAR file into exchanges.
pub(super) struct Importer {
    file: u16,
    body_cap: usize,
    connections: HashMap<ConnKey, (Arc<Connection>, u32)>,
    pub warnings: Vec<String>,
}

/// What identifies a connection in a HAR file: the server's address and the writer's
/// connection id when there are both; otherwise scheme and authority (one per host).
#[derive(Hash, PartialEq, Eq)]
struct ConnKey {
    server_ip: String,
    connection: String,
    origin: String,
}

/// The parts of a request URL: `https`, `example.com:8443`, `/path?query`.
pub(super) struct UrlParts<'a> {
    pub scheme: String,
    pub authority: &'a str,
    pub target: String,
}

pub(super) fn split_url(url: &str) -> UrlParts<'_> {
    let url = url.split('#').next().unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        let target = if url.is_empty() { "/" } else { url };
        return UrlParts {
            scheme: "http".into(),
            authority: "",
            target: target.to_string(),
        };
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let target = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    UrlParts {
        scheme: scheme.to_ascii_lowercase(),
        authority,
        target,
    }
}

/// The port of an authority, or the scheme's default.
fn port_of(authority: &str, scheme: &str) -> u16 {
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let after_host = match host_port.rfind(']') {
        Some(i) => &host_port[i + 1..],
        None => host_port,
    };
    after_host
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(if scheme == "https" || scheme == "wss" {
            443
        } else {
            80
        })
}

/// `HTTP/1.1`, `HTTP/2`, `HTTP/3`: the names the wire stages use, whatever the writer wrote
/// (`h2`, `HTTP/2.0`, `http/2.0`, `h3`, `h3-29`, …). Empty or unknown: `None`.
pub(super) fn normalize_version(v: &str) -> Option<String> {
    let v = v.trim();
    let lower = v.to_ascii_lowercase();
    let name = match lower.as_str() {
        "" | "unknown" => return None,
        "h2" | "h2c" | "http/2" | "http/2.0" => "HTTP/2",
        l if l.starts_with("h3") || l == "http/3" || l == "http/3.0" => "HTTP/3",
        "http/1.1" => "HTTP/1.1",
        "http/1.0" => "HTTP/1.0",
        "http/0.9" => "HTTP/0.9",
        _ => return Some(v.to_ascii_uppercase()),
    };
    Some(name.to_string())
}

/// Field lines in order. A value with line breaks (some writers join repeated fields such
/// as `Set-Cookie` with `\n`) becomes one line per value.
fn headers(list: &[NameValue]) -> Vec<Header> {
    let mut out = Vec::with_capacity(list.len());
    for h in list {
        for value in h.value.split('\n') {
            out.push(Header {
                name: h.name.clone(),
                value: value.trim().to_string(),
            });
        }
    }
    out
}

/// Milliseconds (HAR timings) to nanoseconds; negative or unknown is 0.
fn ms(v: f64) -> i64 {
    if v.is_finite() && v > 0.0 {
        (v * 1e6).round() as i64
    } else {
        0
    }
}

/// Content from a HAR text field: base64 when so marked, otherwise the text's UTF-8 bytes.
fn content_bytes(text: &str, encoding: Option<&str>) -> Result<Vec<u8>, base64::DecodeError> {
    if encoding.is_some_and(|e| e.eq_ignore_ascii_case("base64")) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT.decode(compact)
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

/// Some writers (mitmproxy) put binary content in `text` one character per byte
/// (ISO-8859-1) rather than as base64: when the character count, not the UTF-8 length,
/// matches the recorded size, the bytes are those characters.
fn latin1_if_sized_so(text: &str, utf8: Vec<u8>, size: i64) -> Vec<u8> {
    let Ok(size) = usize::try_from(size) else {
        return utf8;
    };
    if utf8.len() == size || text.is_ascii() || text.chars().count() != size {
        return utf8;
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or(utf8)
}

/// A body from decoded content, and whether the HAR left the content out (`!complete`).
fn body(bytes: Vec<u8>, size: u64, complete: bool, cap: usize) -> (Body, bool) {
    let captured_all = complete && bytes.len() <= cap;
    let mut captured = bytes;
    captured.truncate(cap);
    let body = Body {
        framing: if size > 0 {
            Framing::ContentLength(size)
        } else {
            Framing::None
        },
        size,
        captured,
        captured_all,
        trailers: Vec::new(),
        content_decoded: true,
        json: None,
    };
    (body, !complete)
}

/// A message with no wire facts: frames numbered 0 (none), no raw head. Content the HAR
/// left out marks it `truncated`, so that body rules do not judge an empty body.
fn message(
    file: u16,
    start: StartLine,
    headers: Vec<Header>,
    (body, missing): (Body, bool),
    at: [Timestamp; 2],
) -> Message {
    let frame = FrameRef { file, number: 0 };
    let anomalies = if missing {
        vec![Anomaly::new(
            AnomalyKind::Truncated,
            format!(
                "the HAR file does not hold this content ({} bytes)",
                body.size
            ),
        )]
    } else {
        Vec::new()
    };
    Message {
        start,
        headers,
        raw_head: Vec::new(),
        body,
        first_frame: frame,
        head_frame: frame,
        last_frame: frame,
        first_ts: at[0],
        head_ts: at[0],
        last_ts: at[1],
        last_order: 0,
        anomalies,
        // The header list is whole; what HAR lacks (the bytes as sent) is `source`'s to say.
        head_complete: true,
    }
}

impl Importer {
    pub fn new(file: u16, body_cap: usize) -> Self {
        Importer {
            file,
            body_cap,
            connections: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The time an entry started, or `None` (with a warning) when it does not parse.
    pub fn started(&mut self, entry: &Entry, path: &str) -> Option<Timestamp> {
        match entry.started_date_time.trim().parse::<jiff::Timestamp>() {
            Ok(t) => Some(Timestamp(
                i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX),
            )),
            Err(_) => {
                self.warnings.push(format!(
                    "{path}.startedDateTime {:?} is not an RFC 3339 time; the entry is placed at the previous entry's time",
                    entry.started_date_time
                ));
                None
            }
        }
    }

    /// One entry as an exchange. `started` is the entry's start, `path` its JSON path (for
    /// warnings).
    pub fn exchange(&mut self, entry: &Entry, started: Timestamp, path: &str) -> Exchange {
        let req = &entry.request;
        let url = split_url(&req.url);
        let req_headers = headers(&req.headers);
        let pseudo = |name: &str| {
            req_headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.clone())
        };
        // No method at all: the entry records a response nobody was seen asking for.
        let method = if req.method.is_empty() {
            pseudo(":method").unwrap_or_default()
        } else {
            req.method.clone()
        };
        let authority = if url.authority.is_empty() {
            pseudo(":authority")
                .or_else(|| pseudo("host"))
                .unwrap_or_default()
        } else {
            url.authority.to_string()
        };
        let target = if method.eq_ignore_ascii_case("CONNECT") {
            authority.clone()
        } else {
            pseudo(":path").unwrap_or_else(|| url.target.clone())
        };
        let resp = &entry.response;
        let req_version = normalize_version(&req.http_version);
        let resp_version = normalize_version(&resp.http_version);
        let version = |own: &Option<String>, other: &Option<String>| {
            own.clone()
                .or_else(|| other.clone())
                .unwrap_or_else(|| "HTTP/1.1".into())
        };

        // Times: the request goes out after blocked/dns/connect, takes `send`; the response
        // starts after `wait` and takes `receive`.
        let t = &entry.timings;
        let sent_at = started
            .0
            .saturating_add(ms(t.blocked))
            .saturating_add(ms(t.dns))
            .saturating_add(ms(t.connect));
        let sent_end = sent_at.saturating_add(ms(t.send));
        let resp_start = sent_end.saturating_add(ms(t.wait));
        let resp_end = resp_start.saturating_add(ms(t.receive));

        let (connection, counted) =
            self.connection(entry, &url.scheme, &authority, Timestamp(sent_at));
        // Our own export says where the exchange was on its connection.
        let index = entry.wirelint.as_ref().map_or(counted, |w| w.index);

        let req_body = self.request_body(req.post_data.as_ref(), req.body_size, path);
        let request = (!method.is_empty()).then(|| {
            message(
                self.file,
                StartLine::Request {
                    method: method.clone(),
                    target,
                    version: version(&req_version, &resp_version),
                },
                req_headers,
                req_body,
                [Timestamp(sent_at), Timestamp(sent_end)],
            )
        });

        // Status 0: no response (failed, blocked or cancelled in the browser).
        let response = (resp.status > 0).then(|| {
            let status = u16::try_from(resp.status).unwrap_or(u16::MAX);
            let resp_headers = headers(&resp.headers);
            let no_body = method.eq_ignore_ascii_case("HEAD")
                || (100..200).contains(&status)
                || status == 204
                || status == 304;
            let body = if no_body {
                // These have no content by definition; what a browser shows is its cache.
                body(Vec::new(), 0, true, self.body_cap)
            } else {
                self.response_body(entry, &resp_headers, path)
            };
            message(
                self.file,
                StartLine::Response {
                    version: version(&resp_version, &req_version),
                    status,
                    reason: resp.status_text.clone(),
                },
                resp_headers,
                body,
                [Timestamp(resp_start), Timestamp(resp_end)],
            )
        });

        Exchange {
            connection,
            index,
            request,
            interim: Vec::new(),
            response,
            anomalies: Vec::new(),
            closed_order: 0,
            stream_id: None,
            source: ExchangeSource::Har,
        }
    }

    fn connection(
        &mut self,
        entry: &Entry,
        scheme: &str,
        authority: &str,
        first_ts: Timestamp,
    ) -> (Arc<Connection>, u32) {
        let key = conn_key(entry, scheme, authority);
        if let Some((c, next)) = self.connections.get_mut(&key) {
            *next += 1;
            return (Arc::clone(c), *next - 1);
        }
        let number = self.connections.len() as u64 + 1;
        let port = port_of(authority, scheme);
        let ip = server_ip(entry).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let ours = entry.wirelint.as_ref();
        let parse = |s: Option<&String>| s.and_then(|s| s.parse::<SocketAddr>().ok());
        let server = parse(ours.map(|w| &w.server)).unwrap_or(SocketAddr::new(ip, port));
        // The client's address is not in HAR: 0.0.0.0, port numbering the connection.
        let client = parse(ours.map(|w| &w.client)).unwrap_or(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            u16::try_from(number).unwrap_or(u16::MAX),
        ));
        let conn = Arc::new(Connection {
            client,
            server,
            first_frame: FrameRef {
                file: self.file,
                number,
            },
            first_ts,
            tls: scheme == "https" || scheme == "wss",
            // A HAR file names no TLS parameters.
            tls_info: None,
            mid_stream: false,
        });
        self.connections.insert(key, (Arc::clone(&conn), 1));
        (conn, 0)
    }

    fn request_body(
        &mut self,
        post: Option<&PostData>,
        body_size: i64,
        path: &str,
    ) -> (Body, bool) {
        let Some(post) = post else {
            return body(Vec::new(), 0, true, self.body_cap);
        };
        let declared = u64::try_from(body_size).ok();
        match &post.text {
            Some(text) => match content_bytes(text, post.encoding.as_deref()) {
                Ok(bytes) => {
                    let size = bytes.len() as u64;
                    body(bytes, size, true, self.body_cap)
                }
                Err(e) => {
                    self.warnings.push(format!(
                        "{path}.request.postData.text is not valid base64 ({e}); the request body is left out"
                    ));
                    body(Vec::new(), declared.unwrap_or(0), false, self.body_cap)
                }
            },
            None if !post.params.is_empty() => {
                // Only the form fields were recorded: rebuild a urlencoded body.
                let pairs: Vec<(&str, &str)> = post
                    .params
                    .iter()
                    .map(|p| (p.name.as_str(), p.value.as_deref().unwrap_or("")))
                    .collect();
                let urlencoded = post
                    .mime_type
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded");
                match serde_urlencoded::to_string(&pairs) {
                    Ok(text) if urlencoded => {
                        let size = text.len() as u64;
                        body(text.into_bytes(), size, true, self.body_cap)
                    }
                    _ => body(Vec::new(), declared.unwrap_or(0), false, self.body_cap),
                }
            }
            None => {
                let size = declared.unwrap_or(0);
                body(Vec::new(), size, size == 0, self.body_cap)
            }
        }
    }

    fn response_body(&mut self, entry: &Entry, headers: &[Header], path: &str) -> (Body, bool) {
        let content = &entry.response.content;
        let encoded = headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("content-encoding")
                && !h.value.trim().is_empty()
                && !h.value.trim().eq_ignore_ascii_case("identity")
        });
        let Some(text) = &content.text else {
            // No content recorded: complete only when the HAR says there was none.
            let size = u64::try_from(content.size).ok();
            return body(
                Vec::new(),
                size.unwrap_or(0),
                size == Some(0),
                self.body_cap,
            );
        };
        let bytes = match content_bytes(text, content.encoding.as_deref()) {
            Ok(b) => latin1_if_sized_so(text, b, content.size),
            Err(e) => {
                self.warnings.push(format!(
                    "{path}.response.content.text is not valid base64 ({e}); the response body is left out"
                ));
                let size = u64::try_from(content.size).unwrap_or(0);
                return body(Vec::new(), size, false, self.body_cap);
            }
        };
        // Body size is the content as sent: encoded, when a coding was applied and the HAR
        // says how big that was.
        let decoded_len = bytes.len() as u64;
        let size = if encoded {
            let from_compression = content
                .compression
                .and_then(|c| u64::try_from(content.size.checked_sub(c)?).ok())
                .filter(|&s| s > 0);
            let from_body_size = u64::try_from(entry.response.body_size)
                .ok()
                .filter(|&s| s > 0);
            from_body_size.or(from_compression).unwrap_or(decoded_len)
        } else {
            decoded_len
        };
        body(bytes, size, true, self.body_cap)
    }
}

/// The server address a HAR entry records (`203.0.113.5`, `[2001:db8::1]`, `::1`).
fn server_ip(entry: &Entry) -> Option<IpAddr> {
    entry
        .server_ip_address
        .as_deref()
        .map(|s| s.trim().trim_start_matches('[').trim_end_matches(']'))
        .and_then(|s| s.parse::<IpAddr>().ok())
}

fn conn_key(entry: &Entry, scheme: &str, authority: &str) -> ConnKey {
    ConnKey {
        server_ip: server_ip(entry)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        connection: entry.connection.clone().unwrap_or_default(),
        origin: format!("{scheme}://{}", authority.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_target() {
        let u = split_url("https://api.test:8443/books?id=1#top");
        assert_eq!(
            (u.scheme.as_str(), u.authority, u.target.as_str()),
            ("https", "api.test:8443", "/books?id=1")
        );
        let u = split_url("http://api.test?x");
        assert_eq!((u.authority, u.target.as_str()), ("api.test", "/?x"));
        assert_eq!(split_url("/relative").target, "/relative");
        assert_eq!(port_of("api.test:8443", "https"), 8443);
        assert_eq!(port_of("[::1]", "https"), 443);
        assert_eq!(port_of("[::1]:81", "http"), 81);
        assert_eq!(port_of("user:pw@h", "http"), 80);
    }

    #[test]
    fn versions_take_the_wire_names() {
        for (given, want) in [
            ("h2", Some("HTTP/2")),
            ("HTTP/2.0", Some("HTTP/2")),
            ("http/2.0", Some("HTTP/2")),
            ("h3", Some("HTTP/3")),
            ("h3-29", Some("HTTP/3")),
            ("http/1.1", Some("HTTP/1.1")),
            ("HTTP/1.0", Some("HTTP/1.0")),
            ("", None),
            ("unknown", None),
        ] {
            assert_eq!(normalize_version(given).as_deref(), want, "{given}");
        }
    }

    #[test]
    fn binary_text_one_char_per_byte_is_read_back_as_bytes() {
        let text: String = (0u8..=255).map(char::from).collect();
        let utf8 = text.as_bytes().to_vec();
        let bytes = latin1_if_sized_so(&text, utf8.clone(), 256);
        assert_eq!(bytes, (0u8..=255).collect::<Vec<u8>>());
        // Real UTF-8 text whose size is its UTF-8 length stays as it is.
        assert_eq!(
            latin1_if_sized_so("é", "é".as_bytes().to_vec(), 2),
            "é".as_bytes()
        );
        assert_eq!(latin1_if_sized_so(&text, utf8.clone(), -1), utf8);
    }

    #[test]
    fn joined_header_values_are_split() {
        let h = headers(&[NameValue {
            name: "Set-Cookie".into(),
            value: "a=1\nb=2".into(),
        }]);
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].value, "b=2");
    }

    #[test]
    fn base64_content_tolerates_line_breaks_and_missing_padding() {
        assert_eq!(content_bytes("aGk=", Some("base64")).unwrap(), b"hi");
        assert_eq!(content_bytes("aG\nk", Some("base64")).unwrap(), b"hi");
        assert_eq!(content_bytes("aGk=", None).unwrap(), b"aGk=");
        assert!(content_bytes("!!", Some("base64")).is_err());
    }
}
