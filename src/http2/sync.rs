//! Frame boundaries in an HTTP/2 byte stream the capture joined late (the connection was
//! open before capturing began): no preface, the first bytes are the middle of a frame.
//! A run of frame headers that each pass RFC 9113's per-type checks, back to back, marks
//! where frames start; HTTP/1 text never does (its first byte would be a length byte of 0).

use super::frames::{self, DEFAULT_MAX_FRAME_SIZE, FrameHeader, FrameType, HEADER_LEN};
use super::hpack::HeaderDecoder;

/// Frame headers in a row that make a boundary certain enough.
const CHAIN: usize = 3;

/// Where the first whole frame starts in `buf`, if it can be told yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSync {
    /// Frames start at this offset.
    At(usize),
    /// Not enough bytes to tell.
    NeedMore,
    /// No offset where a frame could start: not HTTP/2.
    No,
}

/// The frame header at `b` is one a peer could send: a defined type, its flags, stream and
/// length as §6 requires, and the default maximum frame size (a peer that raised it sends
/// larger DATA frames only, and the chain still finds the smaller ones).
fn plausible(h: &FrameHeader) -> bool {
    if h.length > DEFAULT_MAX_FRAME_SIZE {
        return false;
    }
    let (len, flags, stream) = (h.length, h.flags, h.stream);
    match h.kind {
        FrameType::Data => stream != 0 && flags & !0x09 == 0,
        FrameType::Headers => stream != 0 && flags & !0x2d == 0,
        FrameType::Priority => stream != 0 && len == 5 && flags == 0,
        FrameType::RstStream => stream != 0 && len == 4 && flags == 0,
        FrameType::Settings => stream == 0 && flags & !0x01 == 0 && len % 6 == 0,
        FrameType::PushPromise => stream != 0 && flags & !0x0c == 0 && len >= 4,
        FrameType::Ping => stream == 0 && len == 8 && flags & !0x01 == 0,
        FrameType::GoAway => stream == 0 && len >= 8 && flags == 0,
        FrameType::WindowUpdate => len == 4 && flags == 0,
        FrameType::Continuation => stream != 0 && flags & !0x04 == 0,
        FrameType::Unknown(_) => false,
    }
}

/// Looks for [`CHAIN`] plausible frames back to back, starting at the smallest offset. A
/// frame starts within the first `HEADER_LEN + DEFAULT_MAX_FRAME_SIZE` bytes of any cut;
/// when that many are here and none fits, the stream is not HTTP/2.
pub fn frame_sync(buf: &[u8]) -> FrameSync {
    let window = HEADER_LEN + DEFAULT_MAX_FRAME_SIZE as usize;
    let mut undecided = false;
    for start in 0..buf.len().min(window) {
        match chain_at(buf, start) {
            FrameSync::At(at) => return FrameSync::At(at),
            FrameSync::NeedMore => undecided = true,
            FrameSync::No => {}
        }
    }
    if undecided || buf.len() < window {
        FrameSync::NeedMore
    } else {
        FrameSync::No
    }
}

/// [`CHAIN`] plausible headers from `start`, or two whole frames that end exactly where the
/// bytes do (senders write whole frames, so segments tend to end on a boundary).
fn chain_at(buf: &[u8], start: usize) -> FrameSync {
    let mut at = start;
    for n in 0..CHAIN {
        if n == 2 && at == buf.len() {
            return FrameSync::At(start);
        }
        let Some(h) = buf.get(at..).and_then(FrameHeader::parse) else {
            return FrameSync::NeedMore;
        };
        if !plausible(&h) {
            return FrameSync::No;
        }
        at += HEADER_LEN + h.length as usize;
    }
    FrameSync::At(start)
}

/// Whether the frames of `buf` from `at` (a frame boundary) are a client's: the first
/// HEADERS frame whose block tells (`:method` or `:path` for a request, `:status` for a
/// response; encoders send the common ones from the static table, so they decode without
/// the connection's earlier state). `None` when no HEADERS frame tells.
pub fn sent_by_client(buf: &[u8], mut at: usize) -> Option<bool> {
    while let Some(h) = buf.get(at..).and_then(FrameHeader::parse) {
        let end = at + HEADER_LEN + h.length as usize;
        let Some(payload) = buf.get(at + HEADER_LEN..end) else {
            break;
        };
        if h.kind == FrameType::Headers
            && let Ok(block) = frames::headers_fragment(h.flags, payload)
        {
            // Stops at the first representation it cannot read (a block continued in
            // CONTINUATION frames): the fields before it are enough.
            let fields = HeaderDecoder::joined_late().decode_prefix(block);
            for (name, _) in fields {
                match name.as_slice() {
                    b":method" | b":path" => return Some(true),
                    b":status" => return Some(false),
                    _ => {}
                }
            }
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frames::{encode, settings_payload};

    fn frames() -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(encode(FrameType::Data, 0, 1, &[7; 300]));
        out.extend(encode(FrameType::WindowUpdate, 0, 0, &[0, 0, 1, 0]));
        out.extend(encode(FrameType::Headers, 0x05, 3, &[0x82, 0x84, 0x86]));
        out.extend(encode(
            FrameType::Settings,
            0,
            0,
            &settings_payload(&[(4, 1 << 20)]),
        ));
        out.extend(encode(FrameType::Ping, 0, 0, &[1; 8]));
        out
    }

    #[test]
    fn finds_the_first_frame_after_a_cut() {
        let all = frames();
        assert_eq!(frame_sync(&all), FrameSync::At(0));
        // Cut inside the DATA payload: the WINDOW_UPDATE after it is the first whole frame.
        let cut = &all[100..];
        assert_eq!(frame_sync(cut), FrameSync::At(9 + 300 - 100));
        // Too short to see three headers yet.
        assert_eq!(frame_sync(&all[100..250]), FrameSync::NeedMore);
        // Two whole frames up to the end: a boundary too.
        let two = 9 + 300 + (9 + 4) + (9 + 3);
        assert_eq!(frame_sync(&all[100..two]), FrameSync::At(9 + 300 - 100));
    }

    #[test]
    fn headers_tell_who_sent_them() {
        let mut enc = crate::http2::hpack::HeaderEncoder::default();
        let mut client = encode(FrameType::Data, 0, 1, &[7; 30]);
        let request = enc.encode(&[(":method", "POST"), (":path", "/x")]);
        client.extend(encode(FrameType::Headers, 0x04, 3, &request));
        assert_eq!(sent_by_client(&client, 0), Some(true));
        let response = enc.encode(&[(":status", "200")]);
        let server = encode(FrameType::Headers, 0x04, 3, &response);
        assert_eq!(sent_by_client(&server, 0), Some(false));
        assert_eq!(sent_by_client(&client[..40], 0), None);
    }

    #[test]
    fn http1_text_and_random_bytes_are_not_frames() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".repeat(500);
        assert_eq!(frame_sync(&text), FrameSync::No);
        let mut x: u32 = 12345;
        let noise: Vec<u8> = (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 8) as u8
            })
            .collect();
        assert_eq!(frame_sync(&noise), FrameSync::No);
    }
}
