//! The NSS key log format (`SSLKEYLOGFILE`), as curl, browsers, OpenSSL, rustls and Go write
//! it: one `LABEL <client_random hex> <secret hex>` per line, `#` comments.
//!
//! Secrets are held here and handed to decryptors only; nothing in this module prints a
//! secret (the `Debug` forms show counts), and bad lines are counted, never echoed, since a
//! malformed line may still be a secret.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// A client random: the key of every key log line.
pub type ClientRandom = [u8; 32];

/// The secrets logged for one TLS connection (keyed by its client random).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS 1.2 and earlier: the 48-byte master secret (`CLIENT_RANDOM`).
    pub master: Option<Vec<u8>>,
    pub client_early: Option<Vec<u8>>,
    pub client_handshake: Option<Vec<u8>>,
    pub server_handshake: Option<Vec<u8>>,
    pub client_traffic_0: Option<Vec<u8>>,
    pub server_traffic_0: Option<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Which secrets are known, never their values.
        f.debug_struct("Secrets")
            .field("master", &self.master.is_some())
            .field("client_early", &self.client_early.is_some())
            .field("client_handshake", &self.client_handshake.is_some())
            .field("server_handshake", &self.server_handshake.is_some())
            .field("client_traffic_0", &self.client_traffic_0.is_some())
            .field("server_traffic_0", &self.server_traffic_0.is_some())
            .finish()
    }
}

impl Secrets {
    /// True when TLS 1.3 application data can be decrypted in both directions.
    pub fn has_tls13_traffic(&self) -> bool {
        self.client_traffic_0.is_some() && self.server_traffic_0.is_some()
    }
}

/// Counters of what a key log held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyLogStats {
    /// Lines that carried a secret we use.
    pub secrets: u64,
    /// Well-formed lines with a label we do not use (EXPORTER_SECRET, ECH, …).
    pub unused: u64,
    /// Lines that are neither comments nor well-formed (never printed: they may hold keys).
    pub bad_lines: u64,
}

/// Secrets by client random.
#[derive(Clone, Default)]
pub struct KeyLog {
    by_random: HashMap<ClientRandom, Secrets>,
    pub stats: KeyLogStats,
}

impl std::fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLog")
            .field("connections", &self.by_random.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

impl KeyLog {
    pub fn new() -> KeyLog {
        KeyLog::default()
    }

    /// Parses a whole key log.
    pub fn parse(text: &[u8]) -> KeyLog {
        let mut log = KeyLog::new();
        log.add_text(text);
        log
    }

    /// Adds every line of `text` (a key log, or the part of one appended since last read).
    pub fn add_text(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            self.add_line(line);
        }
    }

    /// Adds one line; blank lines and comments are skipped, malformed ones counted.
    pub fn add_line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            return;
        }
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            self.stats.bad_lines += 1;
            return;
        };
        let (Some(random), Some(secret)) = (unhex(random), unhex(secret)) else {
            self.stats.bad_lines += 1;
            return;
        };
        let Ok(random) = ClientRandom::try_from(random.as_slice()) else {
            self.stats.bad_lines += 1;
            return;
        };
        if secret.is_empty() || secret.len() > 64 {
            self.stats.bad_lines += 1;
            return;
        }
        fn entry(log: &mut KeyLog, random: ClientRandom) -> &mut Secrets {
            log.by_random.entry(random).or_default()
        }
        let slot = match label {
            b"CLIENT_RANDOM" => {
                if secret.len() != 48 {
                    self.stats.bad_lines += 1;
                    return;
                }
                &mut entry(self, random).master
            }
            b"CLIENT_EARLY_TRAFFIC_SECRET" => &mut entry(self, random).client_early,
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut entry(self, random).client_handshake,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut entry(self, random).server_handshake,
            b"CLIENT_TRAFFIC_SECRET_0" => &mut entry(self, random).client_traffic_0,
            b"SERVER_TRAFFIC_SECRET_0" => &mut entry(self, random).server_traffic_0,
            l if l
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_') =>
            {
                // EXPORTER_SECRET, EARLY_EXPORTER_SECRET, RSA, ECH_SECRET, …: known shapes
                // that decryption does not need.
                self.stats.unused += 1;
                return;
            }
            _ => {
                self.stats.bad_lines += 1;
                return;
            }
        };
        *slot = Some(secret);
        self.stats.secrets += 1;
    }

    /// Merges another key log into this one (its secrets win).
    pub fn merge(&mut self, other: KeyLog) {
        for (random, s) in other.by_random {
            let e = self.by_random.entry(random).or_default();
            let take = |mine: &mut Option<Vec<u8>>, theirs: Option<Vec<u8>>| {
                if theirs.is_some() {
                    *mine = theirs;
                }
            };
            take(&mut e.master, s.master);
            take(&mut e.client_early, s.client_early);
            take(&mut e.client_handshake, s.client_handshake);
            take(&mut e.server_handshake, s.server_handshake);
            take(&mut e.client_traffic_0, s.client_traffic_0);
            take(&mut e.server_traffic_0, s.server_traffic_0);
        }
        self.stats.secrets += other.stats.secrets;
        self.stats.unused += other.stats.unused;
        self.stats.bad_lines += other.stats.bad_lines;
    }

    pub fn get(&self, random: &ClientRandom) -> Option<&Secrets> {
        self.by_random.get(random)
    }

    /// Connections with at least one secret.
    pub fn len(&self) -> usize {
        self.by_random.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_random.is_empty()
    }
}

/// The key log as the pipeline's workers see it: shared, and growing while `sniff` follows
/// the file (a client writes a connection's keys after its ClientHello went out).
#[derive(Clone, Debug, Default)]
pub struct Keys {
    inner: Arc<RwLock<KeyLog>>,
}

impl Keys {
    pub fn new(log: KeyLog) -> Keys {
        Keys {
            inner: Arc::new(RwLock::new(log)),
        }
    }

    /// The secrets of one connection, if logged yet.
    pub fn lookup(&self, random: &ClientRandom) -> Option<Secrets> {
        self.inner.read().ok()?.get(random).cloned()
    }

    /// Adds newly read lines.
    pub fn add_text(&self, text: &[u8]) {
        if let Ok(mut log) = self.inner.write() {
            log.add_text(text);
        }
    }

    pub fn merge(&self, other: KeyLog) {
        if let Ok(mut log) = self.inner.write() {
            log.merge(other);
        }
    }

    pub fn stats(&self) -> KeyLogStats {
        self.inner.read().map(|l| l.stats).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().map(|l| l.is_empty()).unwrap_or(true)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    #[error("cannot read the TLS key log {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a key log file.
pub fn read_file(path: &Path) -> Result<KeyLog, KeyLogError> {
    std::fs::read(path)
        .map(|t| KeyLog::parse(&t))
        .map_err(|source| KeyLogError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Follows a key log file that grows while a live capture runs: each `poll` reads the lines
/// appended since the last one (a partial last line waits for its newline). A file that
/// shrank (rotated or truncated) is read again from its start.
#[derive(Debug)]
pub struct KeyLogFollower {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl KeyLogFollower {
    pub fn new(path: PathBuf) -> KeyLogFollower {
        KeyLogFollower {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Reads what was appended and adds it to `keys`. Returns the number of new lines.
    pub fn poll(&mut self, keys: &Keys) -> std::io::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            // Not created yet: the client writes it on its first connection.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return Ok(0);
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.take(len - self.offset).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(0);
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let lines = complete.iter().filter(|&&b| b == b'\n').count();
        keys.add_text(&complete);
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "0102030405060708091011121314151617181920212223242526272829303132";

    #[test]
    fn parses_labels_comments_and_counts_bad_lines() {
        let master = "ab".repeat(48);
        let text = format!(
            "# comment\n\nCLIENT_RANDOM {R} {master}\r\nSERVER_HANDSHAKE_TRAFFIC_SECRET {R} {}\n\
             EXPORTER_SECRET {R} {}\nCLIENT_RANDOM {R} zz\nnonsense\nCLIENT_RANDOM abcd {master}\n",
            "cd".repeat(32),
            "ef".repeat(32)
        );
        let log = KeyLog::parse(text.as_bytes());
        assert_eq!(log.stats.secrets, 2);
        assert_eq!(log.stats.unused, 1);
        assert_eq!(log.stats.bad_lines, 3);
        let random: ClientRandom = unhex(R.as_bytes()).unwrap().try_into().unwrap();
        let s = log.get(&random).unwrap();
        assert_eq!(s.master.as_deref(), Some(&[0xab; 48][..]));
        assert_eq!(s.server_handshake.as_deref(), Some(&[0xcd; 32][..]));
        assert!(s.client_traffic_0.is_none());
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("CLIENT_RANDOM {R} {}\n", "ab".repeat(48));
        let log = KeyLog::parse(text.as_bytes());
        let random: ClientRandom = unhex(R.as_bytes()).unwrap().try_into().unwrap();
        let shown = format!("{log:?} {:?}", log.get(&random).unwrap());
        assert!(
            !shown.contains("ab, ab") && !shown.contains("171"),
            "{shown}"
        );
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    }

    #[test]
    fn follower_reads_appended_lines_and_waits_for_a_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.log");
        let keys = Keys::default();
        let mut f = KeyLogFollower::new(path.clone());
        assert_eq!(f.poll(&keys).unwrap(), 0, "a missing file is not an error");
        let line = format!("CLIENT_RANDOM {R} {}\n", "ab".repeat(48));
        std::fs::write(&path, &line[..40]).unwrap();
        assert_eq!(f.poll(&keys).unwrap(), 0);
        assert!(keys.is_empty());
        std::fs::write(&path, &line).unwrap();
        assert_eq!(f.poll(&keys).unwrap(), 1);
        assert_eq!(keys.stats().secrets, 1);
        let random: ClientRandom = unhex(R.as_bytes()).unwrap().try_into().unwrap();
        assert!(keys.lookup(&random).is_some_and(|s| s.master.is_some()));
    }
}
