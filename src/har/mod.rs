//! HAR files (HTTP Archive 1.2) as a source of exchanges, and as an output format.
//!
//! A HAR file is what a browser's developer tools, a proxy (Charles, Fiddler, mitmproxy) or
//! a test tool (Playwright, Postman) record: requests and responses with headers in order
//! and decoded content, but none of the bytes as sent. [`open`] reads such files into the
//! same [`Exchange`]s the wire stages produce, marked as read from HAR so that rules that
//! need wire bytes are skipped (see `rules::applies_to`). [`HarWriter`] writes any
//! exchanges, reassembled from packets or read from HAR, back out as HAR.

mod export;
mod import;
pub mod model;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use export::HarWriter;

use crate::http::Exchange;
use crate::time::Timestamp;

/// The tool could not read a HAR file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} is not a valid HAR file: at {path}: {message}")]
    Json {
        file: String,
        /// Where in the document, e.g. `log.entries[3].response.status`.
        path: String,
        message: String,
    },
    #[error(
        "{file} is JSON but not a HAR file: it has no log.entries array (a HAR file is {{\"log\": {{\"entries\": [...]}}}})"
    )]
    NotHar { file: String },
    #[error("too many HAR files ({0}); at most 65535 can be analysed together")]
    TooManyFiles(usize),
}

/// Whether a file is JSON (and so, for us, HAR) rather than a packet capture: by content,
/// whatever its name. A pcap or pcapng file never starts with `{`.
pub fn looks_like_har(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(n) = f.read(&mut head) else {
        return false;
    };
    let head = &head[..n];
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// The exchanges of one or more HAR files, in order of their start time.
#[derive(Debug, Default)]
pub struct HarSet {
    /// File names as given, indexed by `FrameRef::file`.
    pub files: Vec<String>,
    pub exchanges: Vec<Exchange>,
    /// Entries read (one exchange each).
    pub entries: u64,
    /// Size of the files.
    pub bytes: u64,
    /// Oddities that did not stop the run, each naming the file and JSON path.
    pub warnings: Vec<String>,
}

/// Reads every file; `body_cap` bounds the content bytes kept per message, as for captures.
pub fn open(paths: &[PathBuf], body_cap: usize) -> Result<HarSet, HarError> {
    if paths.len() > usize::from(u16::MAX) {
        return Err(HarError::TooManyFiles(paths.len()));
    }
    let mut set = HarSet::default();
    let mut all: Vec<(Timestamp, usize, usize, Exchange)> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| HarError::Io {
            file: name.clone(),
            source,
        })?;
        set.bytes += data.len() as u64;
        let file = u16::try_from(i).unwrap_or(u16::MAX);
        let (exchanges, warnings) = read_one(&data, &name, file, body_cap)?;
        set.entries += exchanges.len() as u64;
        set.warnings.extend(warnings);
        all.extend(
            exchanges
                .into_iter()
                .enumerate()
                .map(|(n, (at, ex))| (at, i, n, ex)),
        );
        set.files.push(name);
    }
    all.sort_by_key(|(at, file, n, _)| (*at, *file, *n));
    set.exchanges = all.into_iter().map(|(_, _, _, ex)| ex).collect();
    Ok(set)
}

/// Exchanges with their start times.
type Timed = Vec<(Timestamp, Exchange)>;

/// Parses one file: its exchanges (in start order, with their start times) and warnings.
fn read_one(
    data: &[u8],
    name: &str,
    file: u16,
    body_cap: usize,
) -> Result<(Timed, Vec<String>), HarError> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut de = serde_json::Deserializer::from_slice(data);
    let har: model::Har = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        HarError::Json {
            file: name.to_string(),
            path: if path == "." {
                "the top level".into()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })?;
    let entries = har
        .log
        .and_then(|l| l.entries)
        .ok_or_else(|| HarError::NotHar {
            file: name.to_string(),
        })?;
    let mut importer = import::Importer::new(file, body_cap);
    // Start times first (an unreadable one takes its predecessor's), then entries in
    // start order, so that positions on a connection follow time.
    let mut previous = Timestamp::ZERO;
    let mut order: Vec<(Timestamp, usize)> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = importer
            .started(entry, &format!("{name}: log.entries[{i}]"))
            .unwrap_or(previous);
        previous = at;
        order.push((at, i));
    }
    order.sort();
    let exchanges = order
        .into_iter()
        .map(|(at, i)| {
            let path = format!("{name}: log.entries[{i}]");
            (at, importer.exchange(&entries[i], at, &path))
        })
        .collect();
    Ok((exchanges, importer.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Exchange>, HarError> {
        read_one(text.as_bytes(), "t.har", 0, 1 << 20)
            .map(|(v, _)| v.into_iter().map(|(_, e)| e).collect())
    }

    #[test]
    fn errors_name_the_json_path() {
        let err = read(r#"{"log":{"entries":[{"request":{"headers":"oops"}}]}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("t.har") && err.contains("log.entries[0].request.headers"),
            "{err}"
        );
        let err = read(r#"{"log":{"version":"1.2"}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no log.entries"), "{err}");
        let err = read("{\"log\": {\"entries\": [")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("t.har") && e.contains("EOF")));
    }

    #[test]
    fn a_minimal_entry_is_enough() {
        let ex = read(
            r#"{"log":{"entries":[{"startedDateTime":"2024-05-01T10:00:00.000Z",
                "request":{"method":"GET","url":"http://a.test/x"},
                "response":{"status":200,"content":{"size":2,"text":"ok"}}}]}}"#,
        )
        .unwrap_or_default();
        assert_eq!(ex.len(), 1);
        let resp = ex[0].response.as_ref().map(|r| r.body.captured.clone());
        assert_eq!(resp.as_deref(), Some(&b"ok"[..]));
        assert!(!ex[0].has_wire_bytes());
    }
}
