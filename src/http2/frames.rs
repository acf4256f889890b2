//! HTTP/2 frames (RFC 9113 §4, §6): the fixed 9-byte header and the payload layouts of the
//! frame types wirelint reads. Parsing only; what the frames mean is in [`super::connection`].

/// What a client sends first on an HTTP/2 connection (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of every frame header.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE until the peer says otherwise.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// Flow-control windows until SETTINGS or WINDOW_UPDATE change them.
pub const DEFAULT_WINDOW: i64 = 65_535;
/// SETTINGS_HEADER_TABLE_SIZE until the peer says otherwise.
pub const DEFAULT_HEADER_TABLE_SIZE: u32 = 4096;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// Frame types of RFC 9113 §6; others must be ignored (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameType {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl FrameType {
    pub fn from_u8(t: u8) -> FrameType {
        match t {
            0 => FrameType::Data,
            1 => FrameType::Headers,
            2 => FrameType::Priority,
            3 => FrameType::RstStream,
            4 => FrameType::Settings,
            5 => FrameType::PushPromise,
            6 => FrameType::Ping,
            7 => FrameType::GoAway,
            8 => FrameType::WindowUpdate,
            9 => FrameType::Continuation,
            t => FrameType::Unknown(t),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            FrameType::Data => 0,
            FrameType::Headers => 1,
            FrameType::Priority => 2,
            FrameType::RstStream => 3,
            FrameType::Settings => 4,
            FrameType::PushPromise => 5,
            FrameType::Ping => 6,
            FrameType::GoAway => 7,
            FrameType::WindowUpdate => 8,
            FrameType::Continuation => 9,
            FrameType::Unknown(t) => t,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameType::Data => "DATA",
            FrameType::Headers => "HEADERS",
            FrameType::Priority => "PRIORITY",
            FrameType::RstStream => "RST_STREAM",
            FrameType::Settings => "SETTINGS",
            FrameType::PushPromise => "PUSH_PROMISE",
            FrameType::Ping => "PING",
            FrameType::GoAway => "GOAWAY",
            FrameType::WindowUpdate => "WINDOW_UPDATE",
            FrameType::Continuation => "CONTINUATION",
            FrameType::Unknown(_) => "unknown",
        }
    }
}

/// The 9-byte frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub length: u32,
    pub kind: FrameType,
    pub flags: u8,
    /// Stream identifier (the reserved bit cleared).
    pub stream: u32,
}

impl FrameHeader {
    /// Reads a header from the first 9 bytes; `None` when fewer are there.
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h = b.get(..HEADER_LEN)?;
        Some(FrameHeader {
            length: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: FrameType::from_u8(h[3]),
            flags: h[4],
            stream: u32_at(h, 5).unwrap_or(0) & 0x7fff_ffff,
        })
    }
}

/// A payload that does not have the layout its frame type requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("padding longer than the payload")]
    Padding,
    #[error("payload too short for its fields")]
    Short,
    #[error("payload of the wrong length")]
    Length,
}

/// A big-endian u32 at `at`.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The payload without its padding (DATA, HEADERS, PUSH_PROMISE with PADDED).
pub fn unpad(flags: u8, payload: &[u8]) -> Result<&[u8], PayloadError> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload.split_first().ok_or(PayloadError::Padding)?;
    let pad = usize::from(pad);
    if pad > rest.len() {
        return Err(PayloadError::Padding);
    }
    Ok(&rest[..rest.len() - pad])
}

/// The header block fragment of a HEADERS frame (padding and priority fields removed).
pub fn headers_fragment(flags: u8, payload: &[u8]) -> Result<&[u8], PayloadError> {
    let rest = unpad(flags, payload)?;
    if flags & PRIORITY != 0 {
        return rest.get(5..).ok_or(PayloadError::Short);
    }
    Ok(rest)
}

/// The promised stream id and header block fragment of a PUSH_PROMISE frame.
pub fn push_promise(flags: u8, payload: &[u8]) -> Result<(u32, &[u8]), PayloadError> {
    let rest = unpad(flags, payload)?;
    let promised = u32_at(rest, 0).ok_or(PayloadError::Short)? & 0x7fff_ffff;
    Ok((promised, &rest[4..]))
}

/// The (identifier, value) pairs of a SETTINGS frame.
pub fn settings(payload: &[u8]) -> Result<Vec<(u16, u32)>, PayloadError> {
    if !payload.len().is_multiple_of(6) {
        return Err(PayloadError::Length);
    }
    Ok(payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect())
}

/// The error code name of RFC 9113 §7.
pub fn error_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        other => return format!("error code {other:#x}"),
    };
    name.to_string()
}

/// One frame as bytes (header + payload), for tests and synthetic captures.
pub fn encode(kind: FrameType, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind.as_u8());
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS payload from (identifier, value) pairs.
pub fn settings_payload(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 6);
    for (id, v) in pairs {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

/// SETTINGS with SETTINGS_INITIAL_WINDOW_SIZE = `window`, then a WINDOW_UPDATE raising the
/// connection's window by as much: what an end sends so that its peer may send `window`
/// bytes per stream and on the connection (synthetic captures).
pub fn settings_with_window(window: u32) -> Vec<u8> {
    let mut out = encode(FrameType::Settings, 0, 0, &settings_payload(&[(4, window)]));
    out.extend(encode(FrameType::WindowUpdate, 0, 0, &window.to_be_bytes()));
    out
}

/// Decodes base64url without padding (the `HTTP2-Settings` field, RFC 7540 §3.2.1);
/// `None` on any character outside the alphabet.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let f = encode(FrameType::Headers, END_HEADERS | END_STREAM, 3, b"abc");
        let h = FrameHeader::parse(&f).expect("header");
        assert_eq!(h.length, 3);
        assert_eq!(h.kind, FrameType::Headers);
        assert_eq!(h.flags, END_HEADERS | END_STREAM);
        assert_eq!(h.stream, 3);
        assert_eq!(&f[HEADER_LEN..], b"abc");
        assert_eq!(FrameHeader::parse(&f[..8]), None);
    }

    #[test]
    fn padding_and_priority_are_removed() {
        // pad length 2, priority (5 bytes), fragment "xy", padding 2
        let p = [2, 0, 0, 0, 1, 16, b'x', b'y', 0, 0];
        assert_eq!(headers_fragment(PADDED | PRIORITY, &p), Ok(&b"xy"[..]));
        assert_eq!(unpad(PADDED, &[5, 1, 2]), Err(PayloadError::Padding));
        assert_eq!(unpad(PADDED, &[]), Err(PayloadError::Padding));
        assert_eq!(
            headers_fragment(PRIORITY, &[0, 0]),
            Err(PayloadError::Short)
        );
    }

    #[test]
    fn settings_pairs() {
        let p = settings_payload(&[(SETTINGS_MAX_FRAME_SIZE, 32768), (0x4, 1)]);
        assert_eq!(settings(&p), Ok(vec![(5, 32768), (4, 1)]));
        assert_eq!(settings(&p[..5]), Err(PayloadError::Length));
    }

    #[test]
    fn base64url() {
        // RFC 7540 §3.2 example value: SETTINGS with no parameters is empty; this one is
        // MAX_CONCURRENT_STREAMS=100, INITIAL_WINDOW_SIZE=65535 as curl sends it.
        let v = base64url_decode("AAMAAABkAAQAAP__").expect("decodes");
        assert_eq!(settings(&v), Ok(vec![(3, 100), (4, 65535)]));
        assert_eq!(base64url_decode("a b"), None);
    }
}
