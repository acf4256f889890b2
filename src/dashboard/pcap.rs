//! `GET /exchanges/ID/connection.pcap`: the connection of an exchange as a pcap file, and
//! `GET /exchanges/ID/bytes`, its frames' payloads. For capture-file runs the frames are
//! read again from the run's capture files (the store keeps frame numbers, not packets),
//! when the files are still where `analyze` read them (paths relative to the directory
//! the server runs in). For live runs they come from the packet store (`crate::packets`),
//! which keeps the packets of connections that got a finding, secrets masked, up to its
//! cap.

use std::net::SocketAddr;
use std::path::PathBuf;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::pages::{PageError, read};
use crate::capture::{CaptureSet, Frame, FrameRef};
use crate::decode::Decoder;
use crate::redact::Redactor;
use crate::store::Reader;
use crate::store::read::{ConnectionFrames, ExchangeDetail, PacketRow};
use crate::synth::{PcapWriter, TsPrecision};
use crate::time::Timestamp;

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

/// Where an exchange's frames are read from.
enum Frames {
    /// A run's capture files opened again, with the BPF filter of one connection.
    Files {
        set: CaptureSet,
        filter: String,
        files: Vec<String>,
    },
    /// The packets a live run's packet store kept of the connection.
    Stored(Vec<PacketRow>),
}

struct Source {
    frames: Frames,
    conn: ConnectionFrames,
    ex: ExchangeDetail,
}

impl Source {
    /// Calls `f` with every frame of the connection (capture files: every frame that
    /// passes its filter, possibly of earlier or later connections on the same addresses).
    fn for_each_frame(&self, mut f: impl FnMut(Frame<'_>)) -> Result<(), PageError> {
        match &self.frames {
            Frames::Files { set, filter, .. } => set
                .for_each_frame(Some(filter), |frame| f(*frame), |_| {})
                .map(|_| ())
                .map_err(|e| PageError::Internal(format!("reading the capture again: {e}"))),
            Frames::Stored(packets) => {
                for p in packets {
                    f(Frame {
                        id: FrameRef {
                            file: 0,
                            number: u64::try_from(p.frame).unwrap_or(0),
                        },
                        ts: Timestamp(p.ts),
                        linktype: p.linktype,
                        data: &p.data,
                        orig_len: p.orig_len,
                    });
                }
                Ok(())
            }
        }
    }

    /// What the frames are read from, for the page.
    fn origin(&self) -> String {
        match &self.frames {
            Frames::Files { files, .. } => files
                .get(usize::try_from(self.ex.file).unwrap_or(0))
                .cloned()
                .unwrap_or_default(),
            Frames::Stored(_) => "live capture (packets kept by the packet store)".into(),
        }
    }
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
        let stored = r.connection_packets(ex.connection)?;
        if stored.packets.is_empty() {
            let why = if stored.evicted {
                "its packets were evicted when the packet store reached its cap (see \
                 `--packet-store`)"
            } else {
                "the packet store keeps the packets of connections with findings only, and \
                 not when the run was started with `--no-packet-store`"
            };
            return Err(PageError::NotFound(format!(
                "run {} is a live capture and no packet of this connection was kept: {why}",
                conn.run
            )));
        }
        return Ok(Source {
            frames: Frames::Stored(stored.packets),
            conn,
            ex,
        });
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
        frames: Frames::Files { set, filter, files },
        conn,
        ex,
    })
}

fn pcap_of(r: &Reader, id: i64) -> Result<(String, Vec<u8>), PageError> {
    let source = source_of(r, id)?;
    let conn = &source.conn;
    let stored = matches!(source.frames, Frames::Stored(_));
    // A pcap file has one link type: the connection's first frame's (a connection seen on
    // interfaces of several types keeps the frames of that one).
    let mut writer: Option<(u32, PcapWriter)> = None;
    let in_range = |file: i64, number: i64| {
        // The packet store keeps the connection's packets only.
        if stored {
            return true;
        }
        let after_start = (file, number) >= (conn.first_file, conn.first_frame);
        let last = conn
            .last_frames
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, n)| *n);
        after_start && last.is_some_and(|last| number <= last.saturating_add(TRAILING_FRAMES))
    };
    source.for_each_frame(|frame| {
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
    })?;
    let (_, writer) = writer.ok_or_else(|| {
        PageError::NotFound(format!(
            "no frame of {} → {} in {}: has the file changed since it was analysed?",
            conn.client,
            conn.server,
            source.origin()
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
    let source = source_of(r, id)?;
    let (conn, ex) = (&source.conn, &source.ex);
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
    source.for_each_frame(|frame| {
        let number = i64::try_from(frame.id.number).unwrap_or(i64::MAX);
        if i64::from(frame.id.file) != ex.file || number < first || number > last {
            return;
        }
        let Some(seg) = decoder.decode(&frame) else {
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
    })?;
    Ok(BytesView {
        id,
        capture: source.origin(),
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
