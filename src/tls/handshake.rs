//! Handshake messages: framing across records, and the fields of ClientHello, ServerHello
//! (including HelloRetryRequest and `supported_versions`) and EncryptedExtensions that
//! decryption and reports need (randoms, version, cipher suite, ALPN, SNI, PSK).

pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;
pub const NEW_SESSION_TICKET: u8 = 4;
pub const END_OF_EARLY_DATA: u8 = 5;
pub const ENCRYPTED_EXTENSIONS: u8 = 8;
pub const FINISHED: u8 = 20;
pub const KEY_UPDATE: u8 = 24;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_EARLY_DATA: u16 = 42;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// SHA-256("HelloRetryRequest"): the ServerHello random that marks a HelloRetryRequest
/// (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// Messages we read whole; others are skipped without being buffered (certificates can be
/// large and are of no use here).
fn wanted(msg_type: u8) -> bool {
    matches!(
        msg_type,
        CLIENT_HELLO | SERVER_HELLO | ENCRYPTED_EXTENSIONS | FINISHED | KEY_UPDATE
    ) || msg_type == END_OF_EARLY_DATA
}

/// Cap on a message we buffer: a ClientHello with many extensions stays far below.
const MAX_MESSAGE: usize = 64 * 1024;

/// Cuts one direction's handshake byte stream (plaintext or decrypted) into messages.
#[derive(Debug, Default)]
pub struct HandshakeReader {
    header: Vec<u8>,
    msg_type: u8,
    remaining: usize,
    body: Vec<u8>,
    keep: bool,
}

/// A whole handshake message (its body only when the type is one we read).
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub msg_type: u8,
    pub body: Vec<u8>,
}

impl HandshakeReader {
    /// Feeds bytes; complete messages are appended to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Message>) {
        while !data.is_empty() {
            if self.header.len() < 4 {
                let take = (4 - self.header.len()).min(data.len());
                self.header.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.header.len() < 4 {
                    return;
                }
                self.msg_type = self.header[0];
                self.remaining = usize::from(self.header[1]) << 16
                    | usize::from(self.header[2]) << 8
                    | usize::from(self.header[3]);
                self.keep = wanted(self.msg_type) && self.remaining <= MAX_MESSAGE;
                self.body.clear();
            }
            let take = self.remaining.min(data.len());
            if self.keep {
                self.body.extend_from_slice(&data[..take]);
            }
            self.remaining -= take;
            data = &data[take..];
            if self.remaining == 0 {
                out.push(Message {
                    msg_type: self.msg_type,
                    body: std::mem::take(&mut self.body),
                });
                self.header.clear();
            }
        }
    }
}

/// A bounds-checked cursor.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
    fn random(&mut self) -> Option<[u8; 32]> {
        self.take(32)?.try_into().ok()
    }
}

/// Extensions as (type, data), in order; malformed trailing bytes end the list.
fn extensions(data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut c = Cursor(data);
    let mut out = Vec::new();
    while let (Some(t), Some(d)) = (c.u16(), c.vec16()) {
        out.push((t, d));
    }
    out
}

fn alpn_list(data: &[u8]) -> Vec<String> {
    let mut c = Cursor(data);
    let Some(list) = c.vec16() else {
        return Vec::new();
    };
    let mut l = Cursor(list);
    let mut out = Vec::new();
    while let Some(p) = l.vec8() {
        out.push(String::from_utf8_lossy(p).into_owned());
    }
    out
}

fn server_name(data: &[u8]) -> Option<String> {
    let mut c = Cursor(data);
    let mut list = Cursor(c.vec16()?);
    while let Some(kind) = list.u8() {
        let name = list.vec16()?;
        if kind == 0 {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    None
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub random: [u8; 32],
    pub legacy_version: u16,
    pub session_id: Vec<u8>,
    pub cipher_suites: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub supported_versions: Vec<u16>,
    /// Offers a pre-shared key (TLS 1.3 resumption).
    pub psk: bool,
    pub early_data: bool,
}

pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello> {
    let mut c = Cursor(body);
    let legacy_version = c.u16()?;
    let random = c.random()?;
    let session_id = c.vec8()?.to_vec();
    let suites = c.vec16()?;
    c.vec8()?; // compression methods
    let mut hello = ClientHello {
        random,
        legacy_version,
        session_id,
        cipher_suites: suites
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect(),
        ..ClientHello::default()
    };
    for (t, d) in c.vec16().map(extensions).unwrap_or_default() {
        match t {
            EXT_SERVER_NAME => hello.sni = server_name(d),
            EXT_ALPN => hello.alpn = alpn_list(d),
            EXT_SUPPORTED_VERSIONS => {
                let mut v = Cursor(d);
                if let Some(list) = v.vec8() {
                    hello.supported_versions = list
                        .chunks_exact(2)
                        .map(|p| u16::from_be_bytes([p[0], p[1]]))
                        .collect();
                }
            }
            EXT_PRE_SHARED_KEY => hello.psk = true,
            EXT_EARLY_DATA => hello.early_data = true,
            _ => {}
        }
    }
    Some(hello)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub random: [u8; 32],
    /// The negotiated version: `supported_versions` when present, else the legacy field.
    pub version: u16,
    pub cipher_suite: u16,
    pub session_id: Vec<u8>,
    /// TLS 1.2 and earlier carry ALPN here; TLS 1.3 in EncryptedExtensions.
    pub alpn: Option<String>,
    /// The server accepted a pre-shared key (TLS 1.3 resumption).
    pub psk: bool,
    pub hello_retry: bool,
}

pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut c = Cursor(body);
    let legacy_version = c.u16()?;
    let random = c.random()?;
    let session_id = c.vec8()?.to_vec();
    let cipher_suite = c.u16()?;
    c.u8()?; // compression
    let mut hello = ServerHello {
        random,
        version: legacy_version,
        cipher_suite,
        session_id,
        hello_retry: random == HRR_RANDOM,
        ..ServerHello::default()
    };
    for (t, d) in c.vec16().map(extensions).unwrap_or_default() {
        match t {
            EXT_SUPPORTED_VERSIONS if d.len() == 2 => {
                hello.version = u16::from_be_bytes([d[0], d[1]]);
            }
            EXT_ALPN => hello.alpn = alpn_list(d).into_iter().next(),
            EXT_PRE_SHARED_KEY => hello.psk = true,
            _ => {}
        }
    }
    Some(hello)
}

/// The ALPN protocol selected in a TLS 1.3 EncryptedExtensions message.
pub fn parse_encrypted_extensions(body: &[u8]) -> Option<String> {
    let mut c = Cursor(body);
    extensions(c.vec16()?)
        .into_iter()
        .find(|(t, _)| *t == EXT_ALPN)
        .and_then(|(_, d)| alpn_list(d).into_iter().next())
}

#[cfg(test)]
pub(crate) mod build {
    //! Writers of handshake messages, for tests.

    pub fn ext(t: u16, data: &[u8]) -> Vec<u8> {
        let mut e = t.to_be_bytes().to_vec();
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
        e
    }

    pub fn alpn(protos: &[&str]) -> Vec<u8> {
        let mut list = Vec::new();
        for p in protos {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        let mut d = (list.len() as u16).to_be_bytes().to_vec();
        d.extend(list);
        ext(16, &d)
    }

    pub fn sni(name: &str) -> Vec<u8> {
        let mut entry = vec![0u8];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name.as_bytes());
        let mut d = (entry.len() as u16).to_be_bytes().to_vec();
        d.extend(entry);
        ext(0, &d)
    }

    pub fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![msg_type];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }

    pub fn client_hello(random: [u8; 32], suites: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(0);
        b.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            b.extend_from_slice(&s.to_be_bytes());
        }
        b.extend_from_slice(&[1, 0]);
        let all: Vec<u8> = exts.concat();
        b.extend_from_slice(&(all.len() as u16).to_be_bytes());
        b.extend(all);
        message(super::CLIENT_HELLO, &b)
    }

    pub fn server_hello(random: [u8; 32], suite: u16, exts: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(0);
        b.extend_from_slice(&suite.to_be_bytes());
        b.push(0);
        let all: Vec<u8> = exts.concat();
        b.extend_from_slice(&(all.len() as u16).to_be_bytes());
        b.extend(all);
        message(super::SERVER_HELLO, &b)
    }

    pub fn tls13_version() -> Vec<u8> {
        ext(43, &[3, 4])
    }

    pub fn encrypted_extensions(exts: &[Vec<u8>]) -> Vec<u8> {
        let all: Vec<u8> = exts.concat();
        let mut b = (all.len() as u16).to_be_bytes().to_vec();
        b.extend(all);
        message(super::ENCRYPTED_EXTENSIONS, &b)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn client_hello_fields() {
        let ch = client_hello(
            [7; 32],
            &[0x1301, 0xc02f],
            &[
                sni("example.test"),
                alpn(&["h2", "http/1.1"]),
                ext(43, &[4, 3, 4, 3, 3]),
                ext(41, &[]),
            ],
        );
        let mut r = HandshakeReader::default();
        let mut out = Vec::new();
        // One byte at a time: messages span records.
        for b in &ch {
            r.push(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out.len(), 1);
        let hello = parse_client_hello(&out[0].body).unwrap();
        assert_eq!(hello.random, [7; 32]);
        assert_eq!(hello.cipher_suites, vec![0x1301, 0xc02f]);
        assert_eq!(hello.sni.as_deref(), Some("example.test"));
        assert_eq!(hello.alpn, vec!["h2", "http/1.1"]);
        assert_eq!(hello.supported_versions, vec![0x0304, 0x0303]);
        assert!(hello.psk);
        assert!(!hello.early_data);
    }

    #[test]
    fn server_hello_version_alpn_and_retry() {
        let sh = server_hello([1; 32], 0x1302, &[tls13_version()]);
        let mut out = Vec::new();
        HandshakeReader::default().push(&sh, &mut out);
        let hello = parse_server_hello(&out[0].body).unwrap();
        assert_eq!((hello.version, hello.cipher_suite), (0x0304, 0x1302));
        assert!(!hello.hello_retry);

        let hrr = server_hello(HRR_RANDOM, 0x1301, &[tls13_version()]);
        let mut out = Vec::new();
        HandshakeReader::default().push(&hrr, &mut out);
        assert!(parse_server_hello(&out[0].body).unwrap().hello_retry);

        let sh12 = server_hello([2; 32], 0xc02f, &[alpn(&["http/1.1"])]);
        let mut out = Vec::new();
        HandshakeReader::default().push(&sh12, &mut out);
        let hello = parse_server_hello(&out[0].body).unwrap();
        assert_eq!(hello.version, 0x0303);
        assert_eq!(hello.alpn.as_deref(), Some("http/1.1"));

        let ee = encrypted_extensions(&[alpn(&["h2"])]);
        let mut out = Vec::new();
        HandshakeReader::default().push(&ee, &mut out);
        assert_eq!(
            parse_encrypted_extensions(&out[0].body).as_deref(),
            Some("h2")
        );
    }

    #[test]
    fn truncated_messages_parse_to_none_not_panic() {
        let ch = client_hello([7; 32], &[0x1301], &[sni("a")]);
        for cut in 0..ch.len() {
            let _ = parse_client_hello(&ch[4..cut.max(4)]);
            let _ = parse_server_hello(&ch[4..cut.max(4)]);
            let _ = parse_encrypted_extensions(&ch[4..cut.max(4)]);
        }
        // A large uninteresting message (a certificate) is skipped, not buffered.
        let cert = message(11, &vec![0u8; 200_000]);
        let mut r = HandshakeReader::default();
        let mut out = Vec::new();
        r.push(&cert, &mut out);
        assert_eq!(
            out,
            vec![Message {
                msg_type: 11,
                body: Vec::new()
            }]
        );
    }
}
