//! Message heads: recognising a start line, finding the end of the head, and parsing it
//! into a start line and fields while recording every syntax irregularity as an anomaly.
//!
//! `httparse` parses well-formed heads (the fast path). Heads it rejects — obs-fold or
//! whitespace before a colon in a request, bare CR, an invalid token — are parsed again by a
//! lenient line parser, because a linter must report malformed messages, not drop them.

use super::message::{AnomalyKind, Header, StartLine};

/// Direction of a byte stream: which kind of message it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Request,
    Response,
}

/// Result of looking at the start of a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum StartGuess {
    /// The bytes begin a message of this side.
    Yes,
    /// Not enough bytes yet to tell.
    NeedMore,
    No,
}

pub const MAX_METHOD_LEN: usize = 32;
/// A request line longer than this without its end is taken for a request only when it
/// starts with a standard method and a target of visible characters.
pub const LONG_LINE: usize = 16 * 1024;

fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Does `buf` begin with something that looks like an HTTP/1.x (or 0.9) request line?
/// Strict enough that binary protocols are not mistaken for HTTP.
pub fn looks_like_request(buf: &[u8]) -> StartGuess {
    let method_len = buf.iter().take(MAX_METHOD_LEN + 1).position(|&b| b == b' ');
    let Some(method_len) = method_len else {
        if buf.len() > MAX_METHOD_LEN || !buf.iter().all(|b| b.is_ascii_alphabetic()) {
            return StartGuess::No;
        }
        return StartGuess::NeedMore;
    };
    let method = &buf[..method_len];
    if method.is_empty()
        || !method
            .iter()
            .all(|&b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
    {
        return StartGuess::No;
    }
    // The line must end within a sane length, with printable bytes only; past that length
    // only a standard method followed by printable bytes is still taken for a request (an
    // over-long request-target is a request to report, not a reason to skip the
    // connection).
    let line_end = buf.iter().take(LONG_LINE).position(|&b| b == b'\n');
    let line = match line_end {
        Some(end) => &buf[..end],
        None if buf.len() >= LONG_LINE => {
            let printable = buf[method_len + 1..LONG_LINE]
                .iter()
                .all(|&b| b > 0x20 && b != 0x7f);
            return if is_common_method(method) && printable {
                StartGuess::Yes
            } else {
                StartGuess::No
            };
        }
        None => {
            let rest = &buf[method_len + 1..];
            return if rest.iter().all(|&b| b >= 0x20 || b == b'\t' || b == b'\r') {
                StartGuess::NeedMore
            } else {
                StartGuess::No
            };
        }
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().any(|&b| b < 0x20 && b != b'\t' && b != b'\r') {
        return StartGuess::No;
    }
    let rest = &line[method_len + 1..];
    if rest.is_empty() || rest[0] == b' ' && rest.iter().all(|&b| b == b' ') {
        return StartGuess::No;
    }
    // HTTP/1.x: ends with " HTTP/d.d" (any case); HTTP/0.9: "METHOD target" with no version.
    let upper_tail: Vec<u8> = rest
        .iter()
        .rev()
        .take(12)
        .rev()
        .map(u8::to_ascii_uppercase)
        .collect();
    let has_version = upper_tail.windows(6).any(|w| w == b" HTTP/");
    let http09_style = !rest.contains(&b' ') && rest.starts_with(b"/") && is_common_method(method);
    if has_version || http09_style {
        StartGuess::Yes
    } else {
        StartGuess::No
    }
}

/// A PROXY protocol header (HAProxy's, v1 text or v2 binary) at the start of a client
/// stream: load balancers put the original client's address there before the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A complete header of this many bytes.
    Len(usize),
    /// The bytes so far could begin one.
    NeedMore,
    No,
}

const PROXY_V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included (the specification's limit).
const PROXY_V1_MAX: usize = 107;

/// Recognises a PROXY protocol header at the start of `buf`.
pub fn proxy_header(buf: &[u8]) -> ProxyHeader {
    let prefix_of = |sig: &[u8]| buf.len() < sig.len() && sig.starts_with(buf);
    if buf.starts_with(PROXY_V2_SIGNATURE) {
        let (Some(&ver_cmd), Some(len)) = (buf.get(12), buf.get(14..16)) else {
            return ProxyHeader::NeedMore;
        };
        if ver_cmd >> 4 != 2 {
            return ProxyHeader::No;
        }
        let total = 16 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        return if buf.len() >= total {
            ProxyHeader::Len(total)
        } else {
            ProxyHeader::NeedMore
        };
    }
    if prefix_of(PROXY_V2_SIGNATURE) || prefix_of(b"PROXY ") {
        return ProxyHeader::NeedMore;
    }
    let Some(rest) = buf.strip_prefix(b"PROXY ") else {
        return ProxyHeader::No;
    };
    let protocol = [&b"TCP4 "[..], b"TCP6 ", b"UNKNOWN"];
    if !protocol
        .iter()
        .any(|p| rest.starts_with(p) || p.starts_with(rest))
    {
        return ProxyHeader::No;
    }
    let window = &buf[..buf.len().min(PROXY_V1_MAX)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end)
            if window[..end]
                .iter()
                .all(|b| b.is_ascii_graphic() || *b == b' ') =>
        {
            ProxyHeader::Len(end + 2)
        }
        Some(_) => ProxyHeader::No,
        None if buf.len() < PROXY_V1_MAX => ProxyHeader::NeedMore,
        None => ProxyHeader::No,
    }
}

/// A looser test for a request start, used once a connection is known to carry HTTP: a
/// method-like token (letters, digits, `_`, `-`), then a space or the end of the line.
/// Catches malformed request lines (`OPTIONS HTTP/1.1`, `CCM_POST /HTTP/1.1`, a bare method)
/// so they are reported rather than skipped.
pub fn looks_like_request_loose(buf: &[u8]) -> StartGuess {
    match looks_like_request(buf) {
        StartGuess::No => {}
        other => return other,
    }
    let token_len = buf
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_' || **b == b'-')
        .count();
    if token_len == 0 || token_len > MAX_METHOD_LEN || !buf[0].is_ascii_uppercase() {
        return StartGuess::No;
    }
    match buf.get(token_len) {
        None => StartGuess::NeedMore,
        Some(b' ' | b'\t' | b'\r' | b'\n') => {
            let line_end = buf.iter().take(16 * 1024).position(|&b| b == b'\n');
            match line_end {
                Some(end)
                    if buf[..end]
                        .iter()
                        .all(|&b| b >= 0x20 || b == b'\t' || b == b'\r') =>
                {
                    StartGuess::Yes
                }
                Some(_) => StartGuess::No,
                None if buf.len() >= 16 * 1024 => StartGuess::No,
                None => StartGuess::NeedMore,
            }
        }
        Some(_) => StartGuess::No,
    }
}

/// The methods of RFC 9110 §9 and PATCH: the only ones accepted in a request line without
/// a version, so that binary data is not mistaken for HTTP/0.9.
fn is_common_method(m: &[u8]) -> bool {
    matches!(
        m,
        b"GET"
            | b"HEAD"
            | b"POST"
            | b"PUT"
            | b"DELETE"
            | b"CONNECT"
            | b"OPTIONS"
            | b"TRACE"
            | b"PATCH"
    )
}

/// An HTTP/0.9 request is a single line, `GET target`, with no version and no fields:
/// returns the offset just past that line when `buf` holds such a request. A two-word line
/// followed by field lines is a malformed HTTP/1.x request instead, parsed as a head.
/// (Clients probing servers send other methods the same way; they count when nothing
/// follows the line.)
pub fn http09_request_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.iter().position(|&b| b == b'\n')?;
    let line = buf[..lf].strip_suffix(b"\r").unwrap_or(&buf[..lf]);
    let sp = line.iter().position(|&b| b == b' ')?;
    let (method, rest) = (&line[..sp], &line[sp + 1..]);
    if !(is_common_method(method) && rest.starts_with(b"/") && !rest.contains(&b' ')) {
        return None;
    }
    let after = &buf[lf + 1..];
    let next_line_is_field = after
        .iter()
        .take_while(|&&b| b != b'\n')
        .any(|&b| b == b':');
    let blank_follows = after.starts_with(b"\r\n") || after.starts_with(b"\n");
    if next_line_is_field || blank_follows {
        return None;
    }
    Some(lf + 1)
}

/// Does `buf` begin with a status line (`HTTP/d.d NNN`, case-insensitive protocol name)?
pub fn looks_like_response(buf: &[u8]) -> StartGuess {
    const PREFIX: &[u8] = b"HTTP/";
    let n = buf.len().min(PREFIX.len());
    if !buf[..n].eq_ignore_ascii_case(&PREFIX[..n]) {
        return StartGuess::No;
    }
    if buf.len() < 9 {
        return StartGuess::NeedMore;
    }
    if !buf[5].is_ascii_digit() {
        return StartGuess::No;
    }
    StartGuess::Yes
}

pub fn looks_like(side: Side, buf: &[u8]) -> StartGuess {
    match side {
        Side::Request => looks_like_request(buf),
        Side::Response => looks_like_response(buf),
    }
}

/// Finds the end of a head: the offset just past the empty line that ends it.
/// Accepts CRLF CRLF, and bare LF line endings (recorded as anomalies by the parser).
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.saturating_sub(3);
    while let Some(p) = memchr_lf(&buf[i..]) {
        let lf = i + p;
        // The line that ends here is empty if the previous byte is LF, or CR preceded by LF.
        if lf >= 1 && buf[lf - 1] == b'\n' {
            return Some(lf + 1);
        }
        if lf >= 2 && buf[lf - 1] == b'\r' && buf[lf - 2] == b'\n' {
            return Some(lf + 1);
        }
        if lf == 0 || (lf == 1 && buf[0] == b'\r') {
            // An empty line at the very start is not a head end.
        }
        i = lf + 1;
    }
    None
}

fn memchr_lf(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

/// A parsed head.
#[derive(Debug)]
pub struct ParsedHead {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub anomalies: Vec<(AnomalyKind, String)>,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Byte-level irregularities that `httparse` accepts silently: bare LF line endings and
/// obs-fold in responses. Checked on every head; cheap (one pass).
fn scan_line_endings(head: &[u8], anomalies: &mut Vec<(AnomalyKind, String)>) {
    let mut bare_lf = None;
    let mut bare_cr = None;
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\n' if i == 0 || head[i - 1] != b'\r' => {
                bare_lf.get_or_insert(i);
            }
            b'\r' if head.get(i + 1) != Some(&b'\n') => {
                bare_cr.get_or_insert(i);
            }
            _ => {}
        }
    }
    if let Some(i) = bare_lf {
        anomalies.push((
            AnomalyKind::BareLf,
            format!("line ending without CR at byte {i} of the head"),
        ));
    }
    if let Some(i) = bare_cr {
        anomalies.push((
            AnomalyKind::BareCr,
            format!("CR without LF at byte {i} of the head"),
        ));
    }
}

/// Parses a complete head (start line through the empty line).
pub fn parse_head(side: Side, head: &[u8]) -> Option<ParsedHead> {
    let mut anomalies = Vec::new();
    scan_line_endings(head, &mut anomalies);
    let fast = match side {
        Side::Request => parse_request_fast(head),
        Side::Response => parse_response_fast(head),
    };
    let mut parsed = match fast {
        Some(p) if !anomalies.iter().any(|(k, _)| *k == AnomalyKind::BareCr) => p,
        _ => parse_lenient(side, head)?,
    };
    check_fields(&parsed.headers, &mut parsed.anomalies);
    anomalies.append(&mut parsed.anomalies);
    anomalies.dedup_by_key(|(k, _)| *k);
    parsed.anomalies = anomalies;
    Some(parsed)
}

fn version_string(v: u8) -> String {
    format!("HTTP/1.{v}")
}

fn parse_request_fast(head: &[u8]) -> Option<ParsedHead> {
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let start = StartLine::Request {
        method: req.method?.to_string(),
        target: req.path?.to_string(),
        version: version_string(req.version?),
    };
    // httparse accepts multiple spaces between tokens; the lenient parser reports them.
    let first_line_end = head.iter().position(|&b| b == b'\n')?;
    let line = trim_eol(&head[..first_line_end]);
    if line.iter().filter(|&&b| b == b' ').count() != 2 || line.contains(&b'\t') {
        return None;
    }
    Some(ParsedHead {
        start,
        headers: req
            .headers
            .iter()
            .map(|h| Header {
                name: h.name.to_string(),
                value: lossy(trim_ows(h.value)),
            })
            .collect(),
        anomalies: Vec::new(),
    })
}

fn parse_response_fast(head: &[u8]) -> Option<ParsedHead> {
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut storage);
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(false);
    config.allow_obsolete_multiline_headers_in_responses(false);
    match config.parse_response(&mut resp, head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let first_line_end = head.iter().position(|&b| b == b'\n')?;
    let line = trim_eol(&head[..first_line_end]);
    // httparse accepts "HTTP/1.1 200" and a few other shapes the strict grammar reports.
    if line.len() < 13 || line[12] != b' ' || line[8] != b' ' {
        return None;
    }
    let start = StartLine::Response {
        version: version_string(resp.version?),
        status: resp.code?,
        reason: resp.reason.unwrap_or("").to_string(),
    };
    Some(ParsedHead {
        start,
        headers: resp
            .headers
            .iter()
            .map(|h| Header {
                name: h.name.to_string(),
                value: lossy(trim_ows(h.value)),
            })
            .collect(),
        anomalies: Vec::new(),
    })
}

fn trim_eol(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits a head into lines on LF (a CR before the LF is dropped), and on bare CR too,
/// which some servers use as a line terminator.
fn split_lines(head: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        match head[i] {
            b'\n' => {
                lines.push(trim_eol(&head[start..i]));
                start = i + 1;
            }
            b'\r' if head.get(i + 1) != Some(&b'\n') => {
                lines.push(&head[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < head.len() {
        lines.push(trim_eol(&head[start..]));
    }
    lines
}

/// The tolerant parser: every line is interpreted as a recipient that recovers would,
/// and every deviation from RFC 9112 is recorded.
fn parse_lenient(side: Side, head: &[u8]) -> Option<ParsedHead> {
    let mut anomalies = Vec::new();
    let lines = split_lines(head);
    let mut iter = lines.into_iter().skip_while(|l| l.is_empty());
    let first = iter.next()?;
    let start = match side {
        Side::Request => parse_request_line(first, &mut anomalies)?,
        Side::Response => parse_status_line(first, &mut anomalies)?,
    };
    let mut headers: Vec<Header> = Vec::new();
    let mut first_field = true;
    for line in iter {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if first_field {
                anomalies.push((AnomalyKind::LeadingWhitespaceLine, lossy(line)));
                continue;
            }
            anomalies.push((AnomalyKind::ObsFold, lossy(line)));
            if let Some(last) = headers.last_mut() {
                last.value.push(' ');
                last.value.push_str(&lossy(trim_ows(line)));
            }
            continue;
        }
        first_field = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            anomalies.push((AnomalyKind::MissingColon, lossy(line)));
            continue;
        };
        let raw_name = &line[..colon];
        let name = trim_ows(raw_name);
        if name.len() != raw_name.len() {
            anomalies.push((AnomalyKind::WhitespaceBeforeColon, lossy(line)));
        }
        headers.push(Header {
            name: lossy(name),
            value: lossy(trim_ows(&line[colon + 1..])),
        });
    }
    Some(ParsedHead {
        start,
        headers,
        anomalies,
    })
}

fn parse_request_line(
    line: &[u8],
    anomalies: &mut Vec<(AnomalyKind, String)>,
) -> Option<StartLine> {
    let text = lossy(line);
    let parts: Vec<&[u8]> = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|p| !p.is_empty())
        .collect();
    let well_formed_separators = line.iter().filter(|&&b| b == b' ').count()
        == parts.len().saturating_sub(1)
        && !line.contains(&b'\t')
        && line.first() != Some(&b' ');
    match parts.as_slice() {
        [method] => {
            anomalies.push((AnomalyKind::InvalidRequestLine, text));
            Some(StartLine::Request {
                method: lossy(method),
                target: String::new(),
                version: String::new(),
            })
        }
        [method, target] if is_common_method(method) && target.starts_with(b"/") => {
            anomalies.push((AnomalyKind::Http09, text));
            Some(StartLine::Request {
                method: lossy(method),
                target: lossy(target),
                version: String::new(),
            })
        }
        [method, target] => {
            anomalies.push((AnomalyKind::InvalidRequestLine, text));
            Some(StartLine::Request {
                method: lossy(method),
                target: lossy(target),
                version: String::new(),
            })
        }
        [method, middle @ .., version] => {
            let version_ok = matches!(*version, b"HTTP/1.0" | b"HTTP/1.1");
            if !well_formed_separators || middle.len() > 1 || !version_ok || !is_token(method) {
                anomalies.push((AnomalyKind::InvalidRequestLine, text));
            }
            // A target with raw spaces is rejoined as sent.
            let target = middle
                .iter()
                .map(|p| lossy(p))
                .collect::<Vec<_>>()
                .join(" ");
            Some(StartLine::Request {
                method: lossy(method),
                target,
                version: lossy(version),
            })
        }
        [] => None,
    }
}

fn parse_status_line(line: &[u8], anomalies: &mut Vec<(AnomalyKind, String)>) -> Option<StartLine> {
    let text = lossy(line);
    let sp = line.iter().position(|&b| b == b' ' || b == b'\t')?;
    let version = &line[..sp];
    let rest = &line[sp..];
    let rest_trimmed = {
        let mut r = rest;
        while let [b' ' | b'\t', tail @ ..] = r {
            r = tail;
        }
        r
    };
    let code_len = rest_trimmed
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if code_len == 0 {
        return None;
    }
    let code: u32 = std::str::from_utf8(&rest_trimmed[..code_len])
        .ok()?
        .parse()
        .ok()?;
    let after = &rest_trimmed[code_len..];
    let reason = trim_ows(after);
    let strict_version = version.len() == 8
        && version.starts_with(b"HTTP/")
        && version[5].is_ascii_digit()
        && version[6] == b'.'
        && version[7].is_ascii_digit();
    // RFC 9112 §4: the SP after the status code is required even with an empty reason.
    let strict = strict_version
        && rest.len() - rest_trimmed.len() == 1
        && rest[0] == b' '
        && code_len == 3
        && after.first() == Some(&b' ')
        && reason
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    if !strict {
        anomalies.push((AnomalyKind::InvalidStatusLine, text));
    }
    Some(StartLine::Response {
        version: lossy(version),
        status: u16::try_from(code).unwrap_or(u16::MAX),
        reason: lossy(reason),
    })
}

/// Field-level checks shared by both parsers: names must be tokens, values free of controls.
fn check_fields(headers: &[Header], anomalies: &mut Vec<(AnomalyKind, String)>) {
    for h in headers {
        if !is_token(h.name.as_bytes()) {
            anomalies.push((
                AnomalyKind::InvalidHeaderName,
                format!("{}: {}", h.name, h.value),
            ));
        }
        if h.value
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            anomalies.push((
                AnomalyKind::InvalidHeaderValue,
                format!("{}: {}", h.name, h.value.escape_debug()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(p: &ParsedHead) -> Vec<AnomalyKind> {
        p.anomalies.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn recognises_start_lines() {
        assert_eq!(looks_like_request(b"GET / HTTP/1.1\r\n"), StartGuess::Yes);
        assert_eq!(looks_like_request(b"GE"), StartGuess::NeedMore);
        assert_eq!(looks_like_request(b"\x16\x03\x01\x02\x00"), StartGuess::No);
        assert_eq!(looks_like_request(b"SSH-2.0-OpenSSH\r\n"), StartGuess::No);
        assert_eq!(looks_like_request(b"GET /index.html\r\n"), StartGuess::Yes);
        assert_eq!(looks_like_response(b"HTTP/1.1 200 OK\r\n"), StartGuess::Yes);
        assert_eq!(looks_like_response(b"http/1.1 200 OK\r\n"), StartGuess::Yes);
        assert_eq!(looks_like_response(b"HTT"), StartGuess::NeedMore);
        assert_eq!(looks_like_response(b"SSH-2.0"), StartGuess::No);
    }

    #[test]
    fn head_end_with_crlf_and_bare_lf() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody", 0),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\nbody", 0), Some(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn clean_request_has_no_anomalies() {
        let p = parse_head(
            Side::Request,
            b"GET /a?b HTTP/1.1\r\nHost: x\r\nAccept:  */*  \r\n\r\n",
        )
        .unwrap();
        assert_eq!(p.headers.len(), 2);
        assert_eq!(p.headers[1].value, "*/*");
        assert!(p.anomalies.is_empty(), "{:?}", p.anomalies);
    }

    #[test]
    fn obs_fold_and_space_before_colon_in_request() {
        let p = parse_head(
            Side::Request,
            b"GET / HTTP/1.1\r\nHost : x\r\nX-A: one\r\n two\r\n\r\n",
        )
        .unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::ObsFold));
        assert!(kinds(&p).contains(&AnomalyKind::WhitespaceBeforeColon));
        assert_eq!(p.headers[1].value, "one two");
        assert_eq!(p.headers[0].name, "Host");
    }

    #[test]
    fn bare_lf_and_bare_cr() {
        let p = parse_head(Side::Response, b"HTTP/1.1 200 OK\nContent-Length: 0\n\n").unwrap();
        assert_eq!(kinds(&p), vec![AnomalyKind::BareLf]);
        let p = parse_head(
            Side::Response,
            b"HTTP/1.1 200 OK\rContent-Length: 0\r\r\n\r\n",
        )
        .unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::BareCr));
        assert_eq!(p.headers[0].name, "Content-Length");
    }

    #[test]
    fn odd_status_lines() {
        let p = parse_head(Side::Response, b"HTTP/1.01 200 OK\r\n\r\n").unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::InvalidStatusLine));
        let p = parse_head(Side::Response, b"HTTP/1.1 2000 OK\r\n\r\n").unwrap();
        assert_eq!(
            p.start,
            StartLine::Response {
                version: "HTTP/1.1".into(),
                status: 2000,
                reason: "OK".into()
            }
        );
        let p = parse_head(Side::Response, b"http/1.1 404 Not Found\r\n\r\n").unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::InvalidStatusLine));
        let p = parse_head(Side::Response, b"HTTP/1.1 200 \r\n\r\n").unwrap();
        assert!(p.anomalies.is_empty(), "{:?}", p.anomalies);
        let p = parse_head(Side::Response, b"HTTP/1.1 200\r\n\r\n").unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::InvalidStatusLine));
    }

    #[test]
    fn request_line_variants() {
        let p = parse_head(Side::Request, b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::InvalidRequestLine));
        assert_eq!(
            p.start,
            StartLine::Request {
                method: "GET".into(),
                target: "/a b".into(),
                version: "HTTP/1.1".into()
            }
        );
        let p = parse_head(Side::Request, b"GET /\r\n\r\n").unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::Http09));
    }

    #[test]
    fn invalid_names_and_missing_colon() {
        let p = parse_head(
            Side::Request,
            b"GET / HTTP/1.1\r\nHo(st: x\r\nnocolon\r\n\r\n",
        )
        .unwrap();
        assert!(kinds(&p).contains(&AnomalyKind::InvalidHeaderName));
        assert!(kinds(&p).contains(&AnomalyKind::MissingColon));
    }

    #[test]
    fn proxy_protocol_headers_are_recognised() {
        let v1 = b"PROXY TCP4 192.0.2.1 10.0.0.2 51000 8000\r\nGET / HTTP/1.1\r\n";
        assert_eq!(proxy_header(v1), ProxyHeader::Len(42));
        assert_eq!(proxy_header(b"PROXY UNKNOWN\r\n"), ProxyHeader::Len(15));
        assert_eq!(
            proxy_header(b"PROXY TCP6 ::1 ::1 1 2"),
            ProxyHeader::NeedMore
        );
        assert_eq!(proxy_header(b"PRO"), ProxyHeader::NeedMore);
        assert_eq!(proxy_header(b"PROXY /x HTTP/1.1\r\n"), ProxyHeader::No);
        assert_eq!(proxy_header(b"GET / HTTP/1.1\r\n"), ProxyHeader::No);
        assert_eq!(proxy_header(&[b'P'; 200]), ProxyHeader::No);
        let mut v2 = PROXY_V2_SIGNATURE.to_vec();
        v2.extend([0x21, 0x11, 0, 12]);
        assert_eq!(proxy_header(&v2), ProxyHeader::NeedMore);
        v2.extend([0; 12]);
        v2.extend(b"GET / HTTP/1.1\r\n");
        assert_eq!(proxy_header(&v2), ProxyHeader::Len(28));
        assert_eq!(proxy_header(&v2[..5]), ProxyHeader::NeedMore);
        v2[12] = 0x11;
        assert_eq!(proxy_header(&v2), ProxyHeader::No);
    }
}
