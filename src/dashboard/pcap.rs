//! `GET /exchanges/ID/connection.pcap`: the connection of an exchange as a pcap file, read
//! again from the run's capture files (the store keeps frame numbers, not packets). Only
//! for capture-file runs whose files are still where `analyze` read them (paths relative
//! to the directory the server runs in); live runs keep no packets.

use std::net::SocketAddr;
use std::path::PathBuf;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::pages::{PageError, read};
use crate::capture::CaptureSet;
use crate::decode::Decoder;
use crate::redact::Redactor;
use crate::store::Reader;
use crate::store::read::{ConnectionFrames, ExchangeDetail};
use crate::synth::{PcapWriter, TsPrecision};

/// Frames after a connection's last exchange still taken (its FIN and the last ACKs),
/// at most.
const TRAILING_FRAMES: i64 = 100_000;

/// The BPF expression selecting both directions of a TCP connection.
fn connection_filter(client: &str, server: &str) -> Option<String> {
    let c: SocketAddr = client.parse().ok()?;
    let s: SocketAddr = server.parse().ok()?;
    Some(format!(
        "tcp and host {} and host {} and port {} and port {}",
        c.ip(),
        s.ip(),
        c.port(),
        s.port()
    ))
}

/// A run's capture files opened again, with the BPF filter of one connection.
struct Source {
    set: CaptureSet,
    filter: String,
    conn: ConnectionFrames,
    ex: ExchangeDetail,
    files: Vec<String>,
}

fn source_of(r: &Reader, id: i64) -> Result<Source, PageError> {
    let ex = r
        .exchange(id)?
        .ok_or_else(|| PageError::NotFound(format!("no exchange {id} in this database")))?;
    let conn = r.connection_frames(ex.connection)?.ok_or_else(|| {
        PageError::NotFound(format!(
            "exchange {id}: its connection is not in the database"
        ))
    })?;
    let run = r
        .run(conn.run)?
        .ok_or_else(|| PageError::NotFound(format!("no run {} in this database", conn.run)))?;
    let source: serde_json::Value = serde_json::from_str(&run.source).unwrap_or_default();
    let files: Vec<String> = source["files"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        return Err(PageError::NotFound(format!(
            "run {} is a live capture: wirelint keeps no packets of it",
            conn.run
        )));
    }
    let paths: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        return Err(PageError::NotFound(format!(
            "the capture file {} is not there any more (paths are relative to the directory \
             the dashboard runs in)",
            missing.display()
        )));
    }
    let filter = connection_filter(&conn.client, &conn.server).ok_or_else(|| {
        PageError::Internal(format!(
            "connection {} → {}: not addresses",
            conn.client, conn.server
        ))
    })?;
    let set = CaptureSet::open(&paths)
        .map_err(|e| PageError::Internal(format!("reading the capture again: {e}")))?;
    Ok(Source {
        set,
        filter,
        conn,
        ex,
        files,
    })
}

fn pcap_of(r: &Reader, id: i64) -> Result<(String, Vec<u8>), PageError> {
    let Source {
        set,
        filter,
        conn,
        files,
        ..
    } = source_of(r, id)?;
    // A pcap file has one link type: the connection's first frame's (a connection seen on
    // interfaces of several types keeps the frames of that one).
    let mut writer: Option<(u32, PcapWriter)> = None;
    let in_range = |file: i64, number: i64| {
        let after_start = (file, number) >= (conn.first_file, conn.first_frame);
        let last = conn
            .last_frames
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, n)| *n);
        after_start && last.is_some_and(|last| number <= last.saturating_add(TRAILING_FRAMES))
    };
    set.for_each_frame(
        Some(&filter),
        |frame| {
            let number = i64::try_from(frame.id.number).unwrap_or(i64::MAX);
            if !in_range(i64::from(frame.id.file), number) {
                return;
            }
            let (link, w) = writer.get_or_insert_with(|| {
                (
                    frame.linktype,
                    PcapWriter::new(frame.linktype, TsPrecision::Nano),
                )
            });
            if *link == frame.linktype {
                w.frame(frame.ts, frame.data);
            }
        },
        |_| {},
    )
    .map_err(|e| PageError::Internal(format!("reading the capture again: {e}")))?;
    let (_, writer) = writer.ok_or_else(|| {
        PageError::NotFound(format!(
            "no frame of {} → {} in {}: has the file changed since it was analysed?",
            conn.client,
            conn.server,
            files.join(", ")
        ))
    })?;
    Ok((
        format!("wirelint-exchange-{id}-connection.pcap"),
        writer.finish(),
    ))
}

pub async fn connection_pcap(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id: i64 = id
        .trim()
        .parse()
        .map_err(|_| PageError::bad("id", format!("{id:?} is not an exchange number")))?;
    let (name, bytes) = read(&s, move |r, _| pcap_of(r, id)).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.tcpdump.pcap".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Bytes shown per frame on the bytes page.
const BYTES_PER_FRAME: usize = 1024;
/// Frames shown on the bytes page.
const FRAMES_SHOWN: usize = 16;

/// One frame's TCP payload as hex and ASCII rows.
pub struct FrameBytes {
    pub number: u64,
    /// "client → server" or "server → client".
    pub direction: &'static str,
    pub len: usize,
    /// `(offset, hex, ascii)`, 16 bytes a row.
    pub rows: Vec<(String, String, String)>,
    pub cut: bool,
}

#[derive(Template)]
#[template(path = "bytes.html")]
pub struct BytesView {
    pub id: i64,
    pub capture: String,
    pub frames: Vec<FrameBytes>,
    /// Frames of the exchange left out (beyond [`FRAMES_SHOWN`]).
    pub more: usize,
}

/// `bytes` with the value of every sensitive header line (Authorization, Cookie, …)
/// masked, as everywhere else in wirelint; other bytes as they are.
fn mask_lines(redactor: &Redactor, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let masked = std::str::from_utf8(line).ok().and_then(|text| {
            let (name, rest) = text.split_once(':')?;
            let value = rest.trim_end_matches(['\r', '\n']);
            let eol = &rest[value.len()..];
            match redactor.header_value(name.trim(), value.trim()) {
                std::borrow::Cow::Owned(v) => Some(format!("{name}: {v}{eol}")),
                std::borrow::Cow::Borrowed(_) => None,
            }
        });
        match masked {
            Some(m) => out.extend_from_slice(m.as_bytes()),
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// Hex and printable-ASCII rows of `bytes`, 16 a row.
pub fn hex_rows(bytes: &[u8]) -> Vec<(String, String, String)> {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = chunk
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            (format!("{:04x}", i * 16), hex.join(" "), ascii)
        })
        .collect()
}

fn bytes_of(r: &Reader, id: i64) -> Result<BytesView, PageError> {
    let Source {
        set,
        filter,
        conn,
        ex,
        files,
    } = source_of(r, id)?;
    let first = ex
        .first_frame
        .or(ex.req_frame)
        .or(ex.resp_frame)
        .unwrap_or(0);
    let last = ex
        .last_frame
        .or(ex.resp_frame)
        .or(ex.req_frame)
        .unwrap_or(first);
    let mut decoder = Decoder::new();
    let redactor = Redactor::new(&[]);
    let mut frames = Vec::new();
    let mut more = 0;
    set.for_each_frame(
        Some(&filter),
        |frame| {
            let number = i64::try_from(frame.id.number).unwrap_or(i64::MAX);
            if i64::from(frame.id.file) != ex.file || number < first || number > last {
                return;
            }
            let Some(seg) = decoder.decode(frame) else {
                return;
            };
            if seg.payload.is_empty() {
                return;
            }
            if frames.len() >= FRAMES_SHOWN {
                more += 1;
                return;
            }
            let masked = mask_lines(&redactor, &seg.payload);
            let shown = &masked[..masked.len().min(BYTES_PER_FRAME)];
            frames.push(FrameBytes {
                number: frame.id.number,
                direction: if seg.src.to_string() == conn.client {
                    "client → server"
                } else {
                    "server → client"
                },
                len: seg.payload.len(),
                rows: hex_rows(shown),
                cut: seg.payload.len() > BYTES_PER_FRAME,
            });
        },
        |_| {},
    )
    .map_err(|e| PageError::Internal(format!("reading the capture again: {e}")))?;
    Ok(BytesView {
        id,
        capture: files
            .get(usize::try_from(ex.file).unwrap_or(0))
            .cloned()
            .unwrap_or_default(),
        frames,
        more,
    })
}

/// `GET /exchanges/ID/bytes`: the TCP payload of each frame of the exchange, as hex and
/// ASCII, read again from the capture file.
pub async fn exchange_bytes(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id: i64 = id
        .trim()
        .parse()
        .map_err(|_| PageError::bad("id", format!("{id:?} is not an exchange number")))?;
    let view = read(&s, move |r, _| bytes_of(r, id)).await?;
    Ok(Html(view.render()?).into_response())
}

#[cfg(test)]
mod tests {
    use super::hex_rows;

    #[test]
    fn secrets_in_the_bytes_are_masked() {
        let r = super::Redactor::new(&[]);
        let out = super::mask_lines(
            &r,
            b"GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\nX: y\r\n\r\n\x00\xff",
        );
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nAuthorization: Bearer ****\r\nX: y\r\n\r\n\x00\xff".to_vec()
        );
    }

    #[test]
    fn bytes_show_as_hex_and_printable_ascii() {
        let rows = hex_rows(b"GET / HTTP/1.1\r\nHost: a\r\n");
        assert_eq!(rows[0].0, "0000");
        assert_eq!(rows[0].1, "47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a");
        assert_eq!(rows[0].2, "GET / HTTP/1.1..");
        assert_eq!(rows[1].0, "0010");
        assert_eq!(rows[1].2, "Host: a..");
    }

    use super::connection_filter;

    #[test]
    fn the_filter_names_both_ends() {
        assert_eq!(
            connection_filter("192.0.2.1:40000", "[2001:db8::2]:80").as_deref(),
            Some("tcp and host 192.0.2.1 and host 2001:db8::2 and port 40000 and port 80")
        );
        assert_eq!(connection_filter("x", "y"), None);
    }
}
