//! The exchange page: both messages as on the wire with the lines the findings are about
//! marked (finding ↔ line linked), findings worst first with their explanations rendered
//! (inline code, RFC links), times, the neighbours on the connection, Wireshark filters
//! and the request as a `curl` command.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::pages::{PageError, findings_href, latency_text, read};
use crate::rules::Side;
use crate::rules::span::Part;
use crate::store::Reader;
use crate::store::read::{FindingFilter, FindingRow};
use crate::time::Timestamp;

/// The stored `exchanges --format jsonl` object, as far as the page needs it.
#[derive(Default, Deserialize)]
#[serde(default)]
struct ExchangeJson {
    capture: String,
    client: String,
    server: String,
    index: u64,
    request: Option<MessageJson>,
    response: Option<MessageJson>,
    anomalies: Vec<serde_json::Value>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct MessageJson {
    method: Option<String>,
    target: Option<String>,
    version: Option<String>,
    host: Option<String>,
    status: Option<u16>,
    reason: Option<String>,
    frame: Option<i64>,
    headers: Vec<(String, String)>,
    body_bytes: u64,
}

/// One header line, with the findings that point at it.
#[derive(Serialize)]
pub struct LineView {
    /// The anchor (`request-3`).
    pub anchor: String,
    pub name: String,
    pub value: String,
    /// Findings about this line, worst first: `(finding id, severity)`.
    pub marks: Vec<(i64, &'static str)>,
}

/// One side of an exchange as on the wire.
#[derive(Serialize)]
pub struct MessageView {
    pub title: &'static str,
    pub side: &'static str,
    pub present: bool,
    pub frame: Option<i64>,
    pub start_line: String,
    /// Findings whose span is the start line: `(finding id, severity)`.
    pub start_marks: Vec<(i64, &'static str)>,
    /// In wire order, redacted.
    pub headers: Vec<LineView>,
    pub body_bytes: u64,
    pub preview: Option<String>,
    /// Findings whose span is in the body.
    pub body_marks: Vec<(i64, &'static str)>,
    /// The preview cut around the first body span it holds: before, marked, after.
    pub preview_marked: Option<(String, String, String)>,
    pub preview_cut: bool,
    /// When the head was complete: absolute, and since the run's first exchange.
    pub at: Option<String>,
    pub since_start: Option<String>,
}

/// A piece of rendered prose: text, `code`, or a link.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub code: bool,
    pub href: Option<String>,
}

#[derive(Serialize)]
pub struct FindingView {
    #[serde(flatten)]
    pub row: FindingRow,
    /// The rule's explanation as pieces (absent for a rule this build does not know).
    pub why: Vec<Piece>,
    /// References, each linked where it names an RFC (section).
    pub refs: Vec<Vec<Piece>>,
    /// The header line the finding is about (its anchor), when one is.
    pub line: Option<String>,
}

#[derive(Serialize, askama::Template)]
#[template(path = "exchange.html")]
pub struct ExchangeView {
    pub id: i64,
    pub run: i64,
    pub capture: String,
    pub client: String,
    pub server: String,
    pub index: u64,
    pub latency_ns: Option<i64>,
    pub latency: Option<String>,
    /// Wireshark display filter selecting the exchange's head frame in `capture` (capture
    /// files only: live frame numbers count what wirelint read, not a file's frames).
    pub wireshark: Option<String>,
    /// Wireshark display filter selecting the whole connection, in any capture of it.
    pub conversation: Option<String>,
    pub anomalies: Vec<String>,
    pub messages: Vec<MessageView>,
    /// Worst first.
    pub findings: Vec<FindingView>,
    /// The exchanges before and after this one on its connection.
    pub prev: Option<i64>,
    pub next: Option<i64>,
    /// The request as a `curl` command (secrets stay masked: put yours in).
    pub curl: Option<String>,
    /// The connection as a pcap file (capture-file runs, and live runs whose packet store
    /// kept its packets).
    pub pcap: Option<String>,
    /// `pcap` comes from the packet store of a live run (secrets masked in it).
    pub pcap_live: bool,
    /// `HTTP/1.1`, `HTTP/2`, … (of the request, else the response).
    pub version: Option<String>,
    /// What the connection's TLS negotiated (protocol, cipher suite, ALPN, SNI), when it
    /// was decrypted; `None` in clear.
    pub tls: Option<crate::http::TlsInfo>,
    #[serde(skip)]
    pub run_href: String,
}

fn message_view(
    title: &'static str,
    side: &'static str,
    m: Option<MessageJson>,
    preview: Option<String>,
    cut: bool,
    (at, start): (Option<i64>, Option<i64>),
) -> MessageView {
    let present = m.is_some();
    let m = m.unwrap_or_default();
    let part = |v: Option<String>| v.unwrap_or_default();
    // HTTP/2 has no start line: its pseudo-header fields, kept first in the header list,
    // say the same, so the message is shown as the header list it was.
    let http2 = m.version.as_deref() == Some("HTTP/2");
    let start_line = match m.status {
        _ if http2 => String::new(),
        Some(status) => format!(
            "{} {status} {}",
            part(m.version),
            m.reason.unwrap_or_default()
        ),
        None => format!("{} {} {}", part(m.method), part(m.target), part(m.version)),
    };
    MessageView {
        title,
        side,
        present,
        frame: m.frame,
        start_line: start_line.trim_end().to_string(),
        start_marks: Vec::new(),
        headers: m
            .headers
            .into_iter()
            .enumerate()
            .map(|(i, (name, value))| LineView {
                anchor: format!("{side}-{}", i + 1),
                name,
                value,
                marks: Vec::new(),
            })
            .collect(),
        body_bytes: m.body_bytes,
        preview: preview.filter(|p| !p.is_empty()),
        body_marks: Vec::new(),
        preview_marked: None,
        preview_cut: cut,
        at: at.map(|t| Timestamp(t).to_rfc3339()),
        since_start: match (at, start) {
            (Some(t), Some(s)) => Some(format!("+{:.6} s", (t - s) as f64 / 1e9)),
            _ => None,
        },
    }
}

/// Where on the page a finding's stored span is: marks it there and returns the anchor.
/// `None` when the finding has no span (or one this page cannot show), so the evidence
/// is looked at instead.
fn mark_span(f: &FindingRow, messages: &mut [MessageView]) -> Option<String> {
    let span = f.span.as_ref()?;
    let side = match span.side {
        Side::Request => "request",
        Side::Response => "response",
    };
    let m = messages.iter_mut().find(|m| m.side == side && m.present)?;
    let mark = (f.id, f.severity.as_str());
    match &span.part {
        Part::Header { name, index } => {
            let line = m.headers.get_mut(usize::try_from(*index).ok()?)?;
            // HTTP/2 pseudo-headers and redaction keep names; a mismatch means another
            // list than the engine saw: fall back to the evidence.
            if !line.name.eq_ignore_ascii_case(name) {
                return None;
            }
            line.marks.push(mark);
            Some(line.anchor.clone())
        }
        Part::StartLine => {
            if m.start_line.is_empty() {
                return None;
            }
            m.start_marks.push(mark);
            Some(format!("{side}-start"))
        }
        Part::Body { start, end } => {
            m.body_marks.push(mark);
            if m.preview_marked.is_none()
                && let Some(p) = &m.preview
            {
                m.preview_marked = split_marked(p, *start, *end);
            }
            Some(format!("{side}-body"))
        }
    }
}

/// `text` cut at byte offsets `start..end` (moved to char boundaries; `end` clamped),
/// unless `start` is past it or the span is the whole text (then nothing is worth marking
/// apart from the body itself).
fn split_marked(text: &str, start: u64, end: u64) -> Option<(String, String, String)> {
    let len = text.len();
    let mut a = usize::try_from(start).ok().filter(|a| *a < len)?;
    let mut b = usize::try_from(end).unwrap_or(usize::MAX).min(len);
    if a == 0 && b >= len {
        return None;
    }
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    b = b.max(a + 1);
    while !text.is_char_boundary(b) {
        b += 1;
    }
    Some((
        text[..a].to_string(),
        text[a..b].to_string(),
        text[b..].to_string(),
    ))
}

/// The header line a finding is about: its evidence names the header (`Name: value`, or
/// the name alone); on the finding's side, or either side when it names none. The line
/// whose value is also the evidence's wins over one with the name only.
fn line_of(f: &FindingRow, messages: &[MessageView]) -> Option<(usize, usize)> {
    let ev = f.evidence.trim();
    let (name, value) = match ev.split_once(':') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (ev, None),
    };
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    let mut best: Option<((usize, usize), bool)> = None;
    for (mi, m) in messages.iter().enumerate() {
        if f.side.as_deref().is_some_and(|s| s != m.side) {
            continue;
        }
        for (li, line) in m.headers.iter().enumerate() {
            if !line.name.eq_ignore_ascii_case(name) {
                continue;
            }
            let same_value = value.is_some_and(|v| line.value.trim() == v);
            if best.is_none_or(|(_, exact)| same_value && !exact) {
                best = Some(((mi, li), same_value));
            }
        }
    }
    best.map(|(at, _)| at)
}

/// Renders rule prose: `` `code` `` spans become code pieces, "RFC 9110 §15.3.2" and
/// "RFC 6265" become links to the RFC Editor's page (section anchor included). Everything
/// stays text for the template to escape.
pub fn prose(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        if part.is_empty() {
            continue;
        }
        if i % 2 == 1 {
            out.push(Piece {
                text: part.to_string(),
                code: true,
                href: None,
            });
        } else {
            out.extend(rfc_links(part));
        }
    }
    out
}

fn plain(text: &str) -> Piece {
    Piece {
        text: text.to_string(),
        code: false,
        href: None,
    }
}

/// Splits `text` at RFC references, each a link.
fn rfc_links(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("RFC ") {
        let after = &rest[i + 4..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            out.push(plain(&rest[..i + 4]));
            rest = after;
            continue;
        }
        let mut end = i + 4 + digits.len();
        let mut href = format!("https://www.rfc-editor.org/rfc/rfc{digits}");
        let tail = &rest[end..];
        let section = tail
            .strip_prefix(" §")
            .or_else(|| tail.strip_prefix(", Section "))
            .or_else(|| tail.strip_prefix(" Section "));
        if let Some(sec) = section {
            let num: String = sec
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            let num = num.trim_end_matches('.');
            if !num.is_empty() {
                end += tail.len() - sec.len() + num.len();
                let kind = if num.starts_with(|c: char| c.is_ascii_uppercase()) {
                    "appendix"
                } else {
                    "section"
                };
                href.push_str(&format!("#{kind}-{num}"));
            }
        }
        out.push(plain(&rest[..i]));
        out.push(Piece {
            text: rest[i..end].to_string(),
            code: false,
            href: Some(href),
        });
        rest = &rest[end..];
    }
    out.push(plain(rest));
    out.retain(|p| !p.text.is_empty());
    out
}

/// Quotes for a POSIX shell.
fn sh(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// The request as `curl` would send it: method, URL (from Host, else the server address;
/// https on port 443), headers in order (without the ones curl writes itself), and the body
/// when the whole of it was kept. Masked values (`****`) stay as placeholders.
fn curl(m: &MessageJson, server: &str, body: Option<&str>, body_whole: bool) -> Option<String> {
    let method = m.method.as_deref()?;
    let target = m.target.as_deref().unwrap_or("/");
    let host = m
        .host
        .clone()
        .or_else(|| {
            m.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| server.to_string());
    let https = server.ends_with(":443");
    let url = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        format!("{}://{host}{target}", if https { "https" } else { "http" })
    };
    let mut parts = vec!["curl".to_string()];
    if m.version.as_deref() == Some("HTTP/1.0") {
        parts.push("--http1.0".into());
    }
    if method != "GET" || body.is_some() {
        parts.push(format!("--request {}", sh(method)));
    }
    parts.push(format!("--url {}", sh(&url)));
    for (name, value) in &m.headers {
        if ["host", "content-length", "transfer-encoding"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        parts.push(format!("--header {}", sh(&format!("{name}: {value}"))));
    }
    if let Some(b) = body.filter(|_| body_whole) {
        parts.push(format!("--data-binary {}", sh(b)));
    }
    Some(parts.join(" \\\n  "))
}

/// `ip.addr == A && ip.addr == B && tcp.port == P && tcp.port == Q` for a connection's two
/// endpoints ("ip:port", IPv6 as "[addr]:port").
fn conversation_filter(client: &str, server: &str) -> Option<String> {
    let c: std::net::SocketAddr = client.parse().ok()?;
    let s: std::net::SocketAddr = server.parse().ok()?;
    let field = |a: &std::net::SocketAddr| if a.is_ipv4() { "ip.addr" } else { "ipv6.addr" };
    Some(format!(
        "{} == {} && {} == {} && tcp.port == {} && tcp.port == {}",
        field(&c),
        c.ip(),
        field(&s),
        s.ip(),
        c.port(),
        s.port()
    ))
}

fn exchange_data(r: &Reader, s: &AppState, id: i64) -> Result<ExchangeView, PageError> {
    let ex = r
        .exchange(id)?
        .ok_or_else(|| PageError::NotFound(format!("no exchange {id} in this database")))?;
    let json: ExchangeJson = serde_json::from_str(&ex.json)
        .map_err(|e| PageError::Internal(format!("exchange {id}: stored JSON: {e}")))?;
    let filter = FindingFilter {
        exchange: Some(id),
        ..FindingFilter::default()
    };
    let mut rows = r.findings(&filter, None, 1000)?.findings;
    // Worst first, then in the order they were found.
    rows.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
    let run_start = r.run(ex.run)?.and_then(|x| x.first_ts);
    let req_whole = !ex.req_preview_cut
        && json
            .request
            .as_ref()
            .is_some_and(|m| ex.req_preview.as_ref().map_or(0, |p| p.len() as u64) == m.body_bytes);
    let curl = json.request.as_ref().and_then(|m| {
        curl(
            m,
            &json.server,
            ex.req_preview.as_deref().filter(|p| !p.is_empty()),
            req_whole,
        )
    });
    let mut messages = vec![
        message_view(
            "Request",
            "request",
            json.request,
            ex.req_preview,
            ex.req_preview_cut,
            (ex.req_last_ts.or(ex.req_first_ts), run_start),
        ),
        message_view(
            "Response",
            "response",
            json.response,
            ex.resp_preview,
            ex.resp_preview_cut,
            (ex.resp_first_ts, run_start),
        ),
    ];
    let findings: Vec<FindingView> = rows
        .into_iter()
        .map(|row| {
            let rule = s.rules().rules.iter().find(|x| x.id == row.rule);
            let line = mark_span(&row, &mut messages).or_else(|| {
                line_of(&row, &messages).map(|(mi, li)| {
                    let l = &mut messages[mi].headers[li];
                    l.marks.push((row.id, row.severity.as_str()));
                    l.anchor.clone()
                })
            });
            FindingView {
                why: rule.map(|x| prose(&x.why)).unwrap_or_default(),
                refs: rule
                    .map(|x| x.refs.iter().map(|r| rfc_links(r)).collect())
                    .unwrap_or_default(),
                line,
                row,
            }
        })
        .collect();
    let frame = ex.req_frame.or(ex.resp_frame).or(ex.first_frame);
    let wireshark = frame
        .filter(|_| !json.capture.is_empty())
        .map(|n| format!("frame.number == {n}"));
    let conversation = conversation_filter(&json.client, &json.server);
    let (prev, next) = r.neighbours(ex.connection, ex.idx)?;
    // Capture files are read again; a live run's connection has packets when the packet
    // store kept them (it got a finding, and they were not evicted since).
    let pcap_live = json.capture.is_empty() && r.connection_has_packets(ex.connection)?;
    let pcap =
        (!json.capture.is_empty() || pcap_live).then(|| format!("/exchanges/{id}/connection.pcap"));
    Ok(ExchangeView {
        id: ex.id,
        run: ex.run,
        run_href: findings_href(Some(ex.run), &[]),
        capture: json.capture,
        client: json.client,
        server: json.server,
        index: json.index,
        latency_ns: ex.latency_ns,
        latency: ex.latency_ns.map(latency_text),
        wireshark,
        conversation,
        pcap_live,
        anomalies: json
            .anomalies
            .iter()
            .map(|a| match a {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        messages,
        findings,
        prev,
        next,
        curl,
        pcap,
        version: ex.version,
        tls: ex.tls,
    })
}

pub async fn exchange(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = exchange_id(&id)?;
    let v = read(&s, move |r, s| exchange_data(r, s, id)).await?;
    Ok(axum::response::IntoResponse::into_response(
        axum::response::Html(askama::Template::render(&v)?),
    ))
}

pub async fn exchange_api(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExchangeView>, PageError> {
    let id = exchange_id(&id)?;
    Ok(Json(read(&s, move |r, s| exchange_data(r, s, id)).await?))
}

fn exchange_id(text: &str) -> Result<i64, PageError> {
    text.trim()
        .parse()
        .map_err(|_| PageError::bad("id", format!("{text:?} is not an exchange number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_filters_name_both_endpoints() {
        assert_eq!(
            conversation_filter("192.0.2.1:40000", "198.51.100.2:80").as_deref(),
            Some(
                "ip.addr == 192.0.2.1 && ip.addr == 198.51.100.2 && tcp.port == 40000 && tcp.port == 80"
            )
        );
        assert_eq!(
            conversation_filter("[2001:db8::1]:5000", "[2001:db8::2]:443").as_deref(),
            Some(
                "ipv6.addr == 2001:db8::1 && ipv6.addr == 2001:db8::2 && tcp.port == 5000 && tcp.port == 443"
            )
        );
        assert_eq!(conversation_filter("not an address", "x"), None);
    }

    #[test]
    fn prose_renders_code_and_rfc_links_as_pieces() {
        let p = prose("A `201` needs `Location` (RFC 9110 §15.3.2; see RFC 6265).");
        assert_eq!(
            p[1],
            Piece {
                text: "201".into(),
                code: true,
                href: None
            }
        );
        let links: Vec<_> = p.iter().filter_map(|x| x.href.as_deref()).collect();
        assert_eq!(
            links,
            [
                "https://www.rfc-editor.org/rfc/rfc9110#section-15.3.2",
                "https://www.rfc-editor.org/rfc/rfc6265"
            ]
        );
        let text: String = p.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(
            text,
            "A 201 needs Location (RFC 9110 §15.3.2; see RFC 6265)."
        );
        assert_eq!(
            rfc_links("RFC 9112 §A.2")[0].href.as_deref(),
            Some("https://www.rfc-editor.org/rfc/rfc9112#appendix-A.2")
        );
    }

    #[test]
    fn curl_repeats_the_request_with_masks_as_placeholders() {
        let m = MessageJson {
            method: Some("POST".into()),
            target: Some("/books?x='1'".into()),
            version: Some("HTTP/1.1".into()),
            host: Some("api.example".into()),
            headers: vec![
                ("Host".into(), "api.example".into()),
                ("Authorization".into(), "Bearer ****".into()),
                ("Content-Length".into(), "2".into()),
            ],
            body_bytes: 2,
            ..MessageJson::default()
        };
        let c = curl(&m, "192.0.2.1:80", Some("{}"), true).expect("a command");
        assert!(c.contains("--request 'POST'"), "{c}");
        assert!(
            c.contains("--url 'http://api.example/books?x='\\''1'\\'''"),
            "{c}"
        );
        assert!(c.contains("--header 'Authorization: Bearer ****'"), "{c}");
        assert!(!c.contains("Content-Length"), "{c}");
        assert!(c.contains("--data-binary '{}'"), "{c}");
        let cut = curl(&m, "192.0.2.1:443", Some("{"), false).expect("a command");
        assert!(!cut.contains("--data-binary"), "{cut}");
        assert!(cut.contains("https://"), "{cut}");
    }
}
