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
        let (exchanges, warnings) = read_one(data, &name, file, body_cap)?;
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
    data: Vec<u8>,
    name: &str,
    file: u16,
    body_cap: usize,
) -> Result<(Timed, Vec<String>), HarError> {
    let json = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&data);
    let mut de = serde_json::Deserializer::from_slice(json);
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
    drop(data);
    let mut entries = har
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
            // Each entry is freed once converted: a file's entries and exchanges are not
            // all held at once.
            let entry = std::mem::take(&mut entries[i]);
            (at, importer.exchange(&entry, at, &path))
        })
        .collect();
    Ok((exchanges, importer.warnings))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::http::Message;

    fn read(text: &str) -> Result<Vec<Exchange>, HarError> {
        read_one(text.as_bytes().to_vec(), "t.har", 0, 1 << 20)
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

    /// Shapes seen from Chrome DevTools (h2 pseudo-headers, `_` fields, `connection` ids),
    /// Firefox (h3, `[::1]`), Safari/Charles (missing arrays, `null`s, sizes as strings)
    /// and failed requests (status 0), in one file written by hand.
    #[test]
    fn real_world_variants_are_read() {
        let text = r#"{"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
          "pages": [{"id": "page_1", "title": "x", "startedDateTime": "2024-05-01T10:00:00.000Z"}],
          "entries": [
            {"_initiator": {"type": "script"}, "_priority": "High", "_resourceType": "fetch",
             "startedDateTime": "2024-05-01T10:00:00.100Z", "time": 12.5,
             "request": {"method": "POST", "url": "https://api.test/v1/items?debug=1", "httpVersion": "h2",
               "headers": [{"name": ":authority", "value": "api.test"}, {"name": ":method", "value": "POST"},
                           {"name": ":path", "value": "/v1/items?debug=1"}, {"name": ":scheme", "value": "https"},
                           {"name": "content-type", "value": "application/x-www-form-urlencoded"}],
               "queryString": [{"name": "debug", "value": "1"}], "cookies": [],
               "headersSize": -1, "bodySize": 7,
               "postData": {"mimeType": "application/x-www-form-urlencoded",
                            "params": [{"name": "a", "value": "1 2"}]}},
             "response": {"status": 201, "statusText": "", "httpVersion": "h2",
               "headers": [{"name": "content-type", "value": "application/json"},
                           {"name": "content-encoding", "value": "br"}],
               "cookies": [], "content": {"size": 120, "mimeType": "application/json", "compression": 80,
                                          "text": "eyJpZCI6IDF9", "encoding": "base64"},
               "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 140, "_error": null},
             "cache": {}, "timings": {"blocked": 1.5, "dns": -1, "ssl": -1, "connect": -1, "send": 0.2,
                                      "wait": 10.1, "receive": 0.7, "_blocked_queueing": 1.2},
             "serverIPAddress": "[2001:db8::1]", "_fromCache": null, "connection": 4711},
            {"startedDateTime": "2024-05-01T12:00:00.200+02:00", "time": null,
             "request": {"method": "GET", "url": "https://api.test/v1/items/1", "httpVersion": "HTTP/3",
                         "headers": [{"name": "Host", "value": "api.test"}], "headersSize": "312", "bodySize": null},
             "response": {"status": "200", "statusText": "OK", "httpVersion": "h3",
                          "headers": [{"name": "Set-Cookie", "value": "a=1; Secure\nb=2; Secure"}],
                          "content": {"mimeType": "text/plain"}},
             "serverIPAddress": "2001:db8::1", "connection": "4711"},
            {"startedDateTime": "2024-05-01T10:00:00.300Z",
             "request": {"method": "GET", "url": "https://blocked.test/ad.js", "httpVersion": ""},
             "response": {"status": 0, "statusText": "", "httpVersion": "", "_error": "net::ERR_BLOCKED_BY_CLIENT",
                          "content": {"size": 0, "mimeType": "x-unknown"}}}
          ]}}"#;
        let ex = read(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ex.len(), 3);
        let (a, b, failed) = (&ex[0], &ex[1], &ex[2]);
        // The same server address and connection id: one connection, in start order.
        assert!(Arc::ptr_eq(&a.connection, &b.connection));
        assert_eq!((a.index, b.index), (0, 1));
        assert_eq!(a.connection.server.to_string(), "[2001:db8::1]:443");
        assert!(a.connection.tls);
        let req = a
            .request
            .as_ref()
            .map(|m| (m.version(), m.target(), m.host()));
        assert_eq!(
            req,
            Some(("HTTP/2", Some("/v1/items?debug=1"), Some("api.test")))
        );
        let post = a.request.as_ref().map(|m| m.body.captured.clone());
        assert_eq!(post.as_deref(), Some(&b"a=1+2"[..]));
        let resp = a.response.as_ref().map(|m| &m.body);
        assert_eq!(
            resp.map(|b| b.captured.as_slice()),
            Some(&b"{\"id\": 1}"[..])
        );
        assert_eq!(resp.map(|b| (b.size, b.content_decoded)), Some((40, true)));
        // Times: queued 1.5 ms, sent 0.2 ms, first byte 10.1 ms later.
        let q = a.request.as_ref().map_or(0, |m| m.first_ts.0);
        let r = a.response.as_ref().map_or(0, |m| m.first_ts.0);
        assert_eq!(r - q, 10_300_000);
        // Strings for numbers, nulls, a missing text with an unknown size.
        let resp = b
            .response
            .as_ref()
            .map(|m| (m.status(), m.version(), m.headers.len()));
        assert_eq!(resp, Some((Some(200), "HTTP/3", 2)));
        assert!(b.response.as_ref().is_some_and(Message::is_incomplete));
        // Status 0: the request never got an answer.
        assert!(failed.response.is_none());
        assert_eq!(
            failed.request.as_ref().map(Message::version),
            Some("HTTP/1.1")
        );
    }

    /// Hostile numbers and odd shapes are read without panicking, and written back out.
    #[test]
    fn extreme_values_do_not_panic() {
        let text = r#"{"log":{"entries":[
            {"startedDateTime":"9999-12-31T23:59:59.999Z","time":1e308,
             "request":{"method":"GET","url":"http://[::1","headers":[{"name":":path"}],
                        "postData":{"text":"!!","_encoding":"base64"},"bodySize":1e30},
             "response":{"status":99999999,"content":{"size":-5,"compression":9e18,"text":"x"},
                         "headers":[{"name":"Content-Encoding","value":"gzip"}],"bodySize":-9e18},
             "timings":{"blocked":1e300,"send":1e300,"wait":-1e300,"receive":"NaN"},
             "serverIPAddress":"not an ip","connection":{"id":1}},
            {"startedDateTime":"not a date","request":{"method":"","url":""},"response":{}}
        ]}}"#;
        // `connection` as an object is a type error, reported with its path.
        let err = read(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("log.entries[0].connection"), "{err}");
        let text = text.replace(r#","connection":{"id":1}"#, "");
        let ex = read(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ex.len(), 2);
        let mut out = Vec::new();
        let mut w = HarWriter::begin(&mut out, vec!["t.har".into()]).expect("begin");
        for e in &ex {
            w.entry(&mut out, e).expect("entry");
        }
        w.finish(&mut out).expect("finish");
        assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
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
