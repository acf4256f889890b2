//! `GET /exchanges/ID/connection.pcap`: the connection of an exchange as a pcap file, read
//! again from the run's capture files (the store keeps frame numbers, not packets). Only
//! for capture-file runs whose files are still where `analyze` read them (paths relative
//! to the directory the server runs in); live runs keep no packets.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::pages::{PageError, read};
use crate::capture::CaptureSet;
use crate::store::Reader;
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

fn pcap_of(r: &Reader, id: i64) -> Result<(String, Vec<u8>), PageError> {
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

#[cfg(test)]
mod tests {
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
