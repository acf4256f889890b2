//! The TLS record layer of one direction (RFC 8446 §5.1, RFC 5246 §6.2): a byte stream in,
//! whole records out, whatever the TCP segmentation (records span segments; segments carry
//! several records).

pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;
pub const HEARTBEAT: u8 = 24;

pub const HEADER_LEN: usize = 5;
/// The largest record payload any version allows (TLS 1.2 ciphertext: 2^14 + 2048).
pub const MAX_PAYLOAD: usize = (1 << 14) + 2048;

/// One record: the 5-byte header and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub content_type: u8,
    pub version: u16,
    /// The header as sent (TLS 1.3 authenticates it as additional data).
    pub header: [u8; HEADER_LEN],
    pub payload: &'a [u8],
}

/// Does `h` start like a TLS record header?
pub fn plausible_header(h: &[u8]) -> Option<bool> {
    if h.len() < HEADER_LEN {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
    Some(
        (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&h[0])
            && h[1] == 3
            && h[2] <= 4
            && len <= MAX_PAYLOAD,
    )
}

/// True when `data` starts like a ClientHello record (as far as it goes): the test that
/// decides a connection is TLS.
pub fn looks_like_client_hello(data: &[u8]) -> bool {
    let want: [&dyn Fn(u8) -> bool; 6] = [
        &|b| b == HANDSHAKE,
        &|b| b == 3,
        &|b| b <= 4,
        &|_| true,
        &|_| true,
        &|b| b == 1, // handshake type client_hello
    ];
    !data.is_empty() && data.iter().zip(want.iter()).all(|(&b, f)| f(b))
}

/// The first record of `rest`: its header and its length with the header, or `None`
/// while it is incomplete.
pub fn split_record(rest: &[u8]) -> Result<Option<([u8; HEADER_LEN], usize)>, NotRecords> {
    match plausible_header(rest) {
        None => return Ok(None),
        Some(false) => return Err(NotRecords),
        Some(true) => {}
    }
    let len = HEADER_LEN + usize::from(u16::from_be_bytes([rest[3], rest[4]]));
    if rest.len() < len {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&rest[..HEADER_LEN]);
    Ok(Some((header, len)))
}

/// Reassembles records from one direction's bytes.
#[derive(Debug, Default)]
pub struct RecordReader {
    buf: Vec<u8>,
    start: usize,
}

/// The stream does not carry TLS records (or lost their boundaries).
#[derive(Debug, PartialEq, Eq)]
pub struct NotRecords;

impl RecordReader {
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes waiting for the rest of their record.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The bytes buffered, not yet returned as records.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops the first `n` buffered bytes (while looking for a record boundary).
    pub fn skip(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
    }

    /// Forgets what is buffered (after a gap).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// The next complete record, `Ok(None)` when more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, NotRecords> {
        let rest = &self.buf[self.start..];
        let Some((header, len)) = split_record(rest)? else {
            return Ok(None);
        };
        let at = self.start;
        self.start += len;
        Ok(Some(Record {
            content_type: header[0],
            version: u16::from_be_bytes([header[1], header[2]]),
            header,
            payload: &self.buf[at + HEADER_LEN..at + len],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ct: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![ct, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn records_spanning_segments_and_several_per_segment() {
        let mut wire = record(HANDSHAKE, b"hello");
        wire.extend(record(APPLICATION_DATA, &[9u8; 300]));
        wire.extend(record(ALERT, b"\x01\x00"));
        // Every split of the stream into two segments gives the same records.
        for cut in 0..wire.len() {
            let mut r = RecordReader::default();
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                r.push(part);
                while let Some(rec) = r.next_record().unwrap() {
                    got.push((rec.content_type, rec.payload.len()));
                }
            }
            assert_eq!(got, vec![(22, 5), (23, 300), (21, 2)], "cut at {cut}");
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn non_tls_bytes_are_refused() {
        let mut r = RecordReader::default();
        r.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(r.next_record(), Err(NotRecords));
        assert!(!looks_like_client_hello(b"GET /"));
        assert!(looks_like_client_hello(&[22, 3, 1, 0, 200, 1, 0]));
        assert!(looks_like_client_hello(&[22, 3]));
        assert!(!looks_like_client_hello(&[22, 3, 3, 0, 200, 2]));
    }
}
