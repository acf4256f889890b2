//! Body framing (RFC 9112 §6): how long a message's content is, and de-chunking.

use super::head::Side;
use super::message::{AnomalyKind, Framing, Header};

/// The framing decision for a message, with the anomalies its framing fields show.
#[derive(Debug, PartialEq, Eq)]
pub struct FramingDecision {
    pub framing: Framing,
    pub anomalies: Vec<(AnomalyKind, String)>,
}

/// What the response parser knows about the request a response answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub head: bool,
    pub connect: bool,
    pub http09: bool,
}

/// Decides the framing of a message from its start line and fields (RFC 9112 §6.3).
pub fn decide_framing(
    side: Side,
    status: Option<u16>,
    headers: &[Header],
    req: RequestContext,
) -> FramingDecision {
    let mut anomalies = Vec::new();
    let te: Vec<&str> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .map(|h| h.value.as_str())
        .collect();
    let cl_values: Vec<&str> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value.as_str())
        .collect();

    let content_length = parse_content_length(&cl_values, &mut anomalies);
    if !te.is_empty() && !cl_values.is_empty() {
        anomalies.push((
            AnomalyKind::ClAndTe,
            format!(
                "Transfer-Encoding: {} with Content-Length: {}",
                te.join(", "),
                cl_values.join(", ")
            ),
        ));
    }

    if let Some(code) = status {
        let no_body = req.head || (100..200).contains(&code) || code == 204 || code == 304;
        if req.connect && (200..300).contains(&code) {
            return FramingDecision {
                framing: Framing::Tunnel,
                anomalies,
            };
        }
        if code == 101 {
            return FramingDecision {
                framing: Framing::Tunnel,
                anomalies,
            };
        }
        if no_body {
            return FramingDecision {
                framing: Framing::None,
                anomalies,
            };
        }
    }

    if !te.is_empty() {
        let codings: Vec<String> = te
            .iter()
            .flat_map(|v| v.split(','))
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|c| !c.is_empty())
            .collect();
        if codings.last().map(String::as_str) == Some("chunked") {
            return FramingDecision {
                framing: Framing::Chunked,
                anomalies,
            };
        }
        anomalies.push((
            AnomalyKind::ChunkedNotFinal,
            format!("Transfer-Encoding: {}", te.join(", ")),
        ));
        // A response whose final coding is not chunked runs to close (RFC 9112 §6.3). A
        // request cannot be delimited at all (the server must answer 400 and close): what
        // follows its head cannot be told apart from its body.
        let framing = match side {
            Side::Response => Framing::Close,
            Side::Request => Framing::Undetermined,
        };
        return FramingDecision { framing, anomalies };
    }

    match (content_length, side) {
        (Some(n), _) => FramingDecision {
            framing: Framing::ContentLength(n),
            anomalies,
        },
        (None, Side::Request) if cl_values.is_empty() => FramingDecision {
            framing: Framing::None,
            anomalies,
        },
        // An unusable Content-Length on a request: nothing sensible to do but stop here.
        (None, Side::Request) => FramingDecision {
            framing: Framing::None,
            anomalies,
        },
        (None, Side::Response) => FramingDecision {
            framing: Framing::Close,
            anomalies,
        },
    }
}

/// Parses Content-Length field values. Repeated equal values are tolerated (with an anomaly);
/// differing or malformed ones are anomalies, and the last valid value is used, as
/// Wireshark does (RFC 9112 makes such a message invalid; any choice is a guess).
fn parse_content_length(
    values: &[&str],
    anomalies: &mut Vec<(AnomalyKind, String)>,
) -> Option<u64> {
    let mut parsed: Vec<u64> = Vec::new();
    let mut invalid = false;
    for value in values {
        for item in value.split(',') {
            let item = item.trim();
            let digits = item.trim_start_matches('0');
            let digits = if digits.is_empty() && !item.is_empty() {
                "0"
            } else {
                digits
            };
            if !item.is_empty() && digits.len() <= 19 && item.bytes().all(|b| b.is_ascii_digit()) {
                match digits.parse::<u64>() {
                    Ok(n) => parsed.push(n),
                    Err(_) => invalid = true,
                }
            } else {
                invalid = true;
            }
        }
    }
    if invalid {
        anomalies.push((
            AnomalyKind::InvalidContentLength,
            format!("Content-Length: {}", values.join(", ")),
        ));
    }
    if parsed.len() > 1 {
        let first = parsed[0];
        if parsed.iter().all(|&n| n == first) {
            anomalies.push((
                AnomalyKind::DuplicateContentLength,
                format!("Content-Length: {}", values.join(", ")),
            ));
        } else {
            anomalies.push((
                AnomalyKind::ConflictingContentLength,
                format!("Content-Length: {}", values.join(", ")),
            ));
        }
    }
    parsed.last().copied()
}

/// Where a chunked decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading the trailer section after the last chunk.
    Trailers,
}

/// Parses a chunk-size line (without its line ending). Returns the size, or `None` when
/// the line is not a valid `chunk-size [chunk-ext]`.
pub fn parse_chunk_size_line(line: &[u8]) -> Option<u64> {
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut with_crlf = Vec::with_capacity(line.len() + 2);
    with_crlf.extend_from_slice(line);
    with_crlf.extend_from_slice(b"\r\n");
    match httparse::parse_chunk_size(&with_crlf) {
        Ok(httparse::Status::Complete((_, size))) => Some(size),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    fn kinds(d: &FramingDecision) -> Vec<AnomalyKind> {
        d.anomalies.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn framing_by_status_and_method() {
        let none = RequestContext::default();
        let head = RequestContext { head: true, ..none };
        let d = decide_framing(Side::Response, Some(200), &[h("Content-Length", "5")], head);
        assert_eq!(d.framing, Framing::None);
        let d = decide_framing(Side::Response, Some(304), &[h("Content-Length", "5")], none);
        assert_eq!(d.framing, Framing::None);
        let d = decide_framing(Side::Response, Some(200), &[], none);
        assert_eq!(d.framing, Framing::Close);
        let d = decide_framing(Side::Request, None, &[], none);
        assert_eq!(d.framing, Framing::None);
        let d = decide_framing(
            Side::Response,
            Some(200),
            &[h("Connection", "close")],
            RequestContext {
                connect: true,
                ..none
            },
        );
        assert_eq!(d.framing, Framing::Tunnel);
    }

    #[test]
    fn chunked_wins_over_content_length() {
        let d = decide_framing(
            Side::Response,
            Some(200),
            &[
                h("Content-Length", "10"),
                h("Transfer-Encoding", "gzip, chunked"),
            ],
            RequestContext::default(),
        );
        assert_eq!(d.framing, Framing::Chunked);
        assert_eq!(kinds(&d), vec![AnomalyKind::ClAndTe]);
    }

    #[test]
    fn content_length_variants() {
        let ctx = RequestContext::default();
        let d = decide_framing(
            Side::Request,
            None,
            &[h("Content-Length", "3"), h("Content-Length", "3")],
            ctx,
        );
        assert_eq!(
            (d.framing, kinds(&d)),
            (
                Framing::ContentLength(3),
                vec![AnomalyKind::DuplicateContentLength]
            )
        );
        let d = decide_framing(Side::Request, None, &[h("Content-Length", "3, 4")], ctx);
        assert_eq!(kinds(&d), vec![AnomalyKind::ConflictingContentLength]);
        let d = decide_framing(Side::Request, None, &[h("Content-Length", "+3")], ctx);
        assert_eq!(kinds(&d), vec![AnomalyKind::InvalidContentLength]);
        let d = decide_framing(Side::Request, None, &[h("Content-Length", "0003")], ctx);
        assert_eq!(d.framing, Framing::ContentLength(3));
        let d = decide_framing(
            Side::Request,
            None,
            &[h("Transfer-Encoding", "chunked, gzip")],
            ctx,
        );
        assert_eq!(kinds(&d), vec![AnomalyKind::ChunkedNotFinal]);
    }

    #[test]
    fn chunk_size_lines() {
        assert_eq!(parse_chunk_size_line(b"1a"), Some(26));
        assert_eq!(parse_chunk_size_line(b"1A;name=value"), Some(26));
        assert_eq!(parse_chunk_size_line(b"0"), Some(0));
        assert_eq!(parse_chunk_size_line(b"zz"), None);
        assert_eq!(parse_chunk_size_line(b""), None);
        assert_eq!(parse_chunk_size_line(b"fffffffffffffffffff"), None);
    }
}
