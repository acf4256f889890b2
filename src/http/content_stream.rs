//! What becomes of a message's body bytes while they are parsed (after de-chunking):
//! transfer codings other than chunked are undone (RFC 9112 §6.1, §7: they are framing,
//! not content), the content is kept up to the body cap, and for JSON-typed messages whose
//! content outgrows the cap the whole content, Content-Encoding undone, runs through the
//! streaming JSON validator (from the kept bytes on), so the verdict covers every byte
//! whatever the cap. Content kept whole is judged by the rules from the kept bytes, so
//! the validator costs nothing there. Memory stays bounded: decoders hand on pieces of at
//! most [`coding::CHUNK`] bytes and the validator keeps one bit per level.

use super::coding::{self, Chain};
use super::json_stream::JsonValidator;
use super::message::{AnomalyKind, Body, Framing, JsonVerdict, Message};

/// The validator's side: Content-Encoding decoders in front of it.
#[derive(Debug)]
struct JsonCheck {
    decode: Option<Chain>,
    validator: JsonValidator,
    /// Why no verdict can be given.
    undecided: Option<&'static str>,
    /// The content outgrew the kept-body cap: the validator is being fed.
    streaming: bool,
}

impl JsonCheck {
    fn feed(&mut self, piece: &[u8]) {
        if self.undecided.is_some() || self.validator.settled() {
            return;
        }
        let validator = &mut self.validator;
        match self.decode.as_mut() {
            None => validator.feed(piece),
            Some(chain) => {
                if let Err(e) = chain.push(piece, &mut |d| validator.feed(d)) {
                    self.undecided = Some(match e {
                        coding::CodingError::Budget => {
                            "the decoded content grew past the decompression budget"
                        }
                        _ => "the Content-Encoding could not be undone",
                    });
                }
            }
        }
    }

    fn verdict(self) -> JsonVerdict {
        if let Some(reason) = self.undecided {
            return JsonVerdict::Undecided(reason);
        }
        if !self.validator.settled()
            && let Some(chain) = &self.decode
            && chain.finish().is_err()
        {
            return JsonVerdict::Undecided("the Content-Encoding could not be undone");
        }
        self.validator.finish()
    }
}

/// Decoded bytes per coded byte beyond which content that decodes past the cap is a
/// probable decompression bomb (real text and JSON compress 3–20:1; deflate's maximum is
/// 1032:1).
pub const BOMB_RATIO: u64 = 100;

/// The body pipeline of one message.
#[derive(Debug)]
pub struct ContentStream {
    /// Transfer codings to undo (chunked excluded), `None` when there are none.
    transfer: Option<Chain>,
    /// Bytes fed to the transfer decoders, and bytes they produced.
    coded_in: u64,
    decoded_out: u64,
    /// The kept-body cap, for the bomb verdict.
    cap: usize,
    /// The transfer codings could not be undone: the content was not seen.
    transfer_failed: Option<String>,
    /// Decoding stopped because nothing more was wanted (the kept bytes are full and the
    /// content is not JSON).
    stopped: bool,
    /// Bytes of the body were lost: decoding stopped there.
    lost: bool,
    json: Option<JsonCheck>,
}

/// Whether the message's Content-Type is JSON (`application/json` or any `+json`).
pub fn is_json_typed(msg: &Message) -> bool {
    let Some(ct) = msg.header("content-type") else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .split_once('/')
            .is_some_and(|(_, sub)| sub.to_ascii_lowercase().ends_with("+json"))
}

impl ContentStream {
    /// The pipeline for a message whose body is framed by `framing`; `None` when its
    /// bytes need only be kept (no transfer coding besides chunked, and not JSON or
    /// `validate_json` off).
    pub fn for_message(
        msg: &Message,
        framing: Framing,
        validate_json: bool,
    ) -> Option<ContentStream> {
        let mut transfer_codings = coding::codings(msg.header_values("transfer-encoding"));
        if framing == Framing::Chunked
            && transfer_codings.last().map(String::as_str) == Some("chunked")
        {
            // The http stage de-chunks.
            transfer_codings.pop();
        }
        let (transfer, transfer_failed) = match Chain::new(&transfer_codings) {
            Ok(chain) => (chain, None),
            Err(e) => (None, Some(format!("Transfer-Encoding: {e}"))),
        };
        let json = (validate_json && is_json_typed(msg)).then(|| {
            let content_codings: Vec<String> =
                coding::codings(msg.header_values("content-encoding"));
            let (decode, undecided) = match Chain::new(&content_codings) {
                Ok(chain) => (chain, None),
                Err(_) => (None, Some("the Content-Encoding has no decoder here")),
            };
            JsonCheck {
                decode,
                validator: JsonValidator::new(),
                undecided,
                streaming: false,
            }
        });
        if transfer.is_none() && transfer_failed.is_none() && json.is_none() {
            return None;
        }
        Some(ContentStream {
            transfer,
            coded_in: 0,
            decoded_out: 0,
            cap: 0,
            transfer_failed,
            stopped: false,
            lost: false,
            json,
        })
    }

    /// Takes the next bytes of the body (de-chunked).
    pub fn push(&mut self, body: &mut Body, data: &[u8], cap: usize) {
        body.size += data.len() as u64;
        if self.lost || self.stopped || self.transfer_failed.is_some() {
            return;
        }
        let json = &mut self.json;
        let Some(chain) = self.transfer.as_mut() else {
            take(body, json, data, cap);
            return;
        };
        let wanted = json
            .as_ref()
            .is_some_and(|j| j.undecided.is_none() && !j.validator.settled());
        if !wanted && body.captured.len() >= cap {
            // Nothing more to keep or judge: a bomb costs nothing past this point.
            body.captured_all = false;
            self.stopped = true;
            return;
        }
        self.cap = cap;
        self.coded_in += data.len() as u64;
        let out = &mut self.decoded_out;
        let result = chain.push(data, &mut |piece| {
            *out += piece.len() as u64;
            take(body, json, piece, cap)
        });
        if let Err(e) = result {
            self.transfer_failed = Some(format!("Transfer-Encoding: {e}"));
        }
    }

    /// Bytes of the body were not captured: nothing after them can be decoded.
    pub fn lose(&mut self) {
        self.lost = true;
    }

    /// The body ended: records on `msg` whether its content was seen and the JSON verdict.
    pub fn finish(mut self, msg: &mut Message) {
        let incomplete = self.lost || msg.is_incomplete() || !msg.head_complete;
        if let Some(chain) = &self.transfer
            && self.transfer_failed.is_none()
            && !self.stopped
            && !incomplete
            && let Err(e) = chain.finish()
        {
            self.transfer_failed = Some(format!("Transfer-Encoding: {e}"));
        }
        if self.decoded_out > self.cap as u64
            && self.decoded_out > BOMB_RATIO.saturating_mul(self.coded_in)
        {
            msg.add_anomaly(
                AnomalyKind::CompressionBomb,
                format!(
                    "Transfer-Encoding decoded {} bytes from the first {} (ratio {}:1) before decoding stopped at the {}-byte cap",
                    self.decoded_out,
                    self.coded_in,
                    self.decoded_out / self.coded_in.max(1),
                    self.cap
                ),
            );
        }
        if let Some(reason) = &self.transfer_failed {
            // The content was not seen: no rule may judge the bytes kept so far.
            msg.body.captured_all = false;
            if !incomplete {
                msg.add_anomaly(AnomalyKind::UndecodedTransferCoding, reason.clone());
            }
        }
        let Some(json) = self.json else {
            return;
        };
        if !json.streaming && !incomplete && self.transfer_failed.is_none() {
            // Kept whole: the rules read the kept bytes.
            return;
        }
        msg.body.json = Some(if incomplete {
            JsonVerdict::Undecided("bytes of the content were not captured")
        } else if self.transfer_failed.is_some() {
            JsonVerdict::Undecided("a transfer coding could not be undone")
        } else {
            json.verdict()
        });
    }
}

/// The JSON verdict on content kept whole, its Content-Encoding undone as it streams: for
/// the rules, where the content decodes past what they decode at once.
pub fn json_verdict_of_kept(msg: &Message) -> JsonVerdict {
    let codings = if msg.body.content_decoded {
        Vec::new()
    } else {
        coding::codings(msg.header_values("content-encoding"))
    };
    let Ok(decode) = Chain::new(&codings) else {
        return JsonVerdict::Undecided("the Content-Encoding has no decoder here");
    };
    let mut check = JsonCheck {
        decode,
        validator: JsonValidator::new(),
        undecided: None,
        streaming: true,
    };
    check.feed(&msg.body.captured);
    check.verdict()
}

/// Keeps a piece of content, and feeds the validator once the content outgrew the cap
/// (first with what was kept before the piece).
fn take(body: &mut Body, json: &mut Option<JsonCheck>, piece: &[u8], cap: usize) {
    let before = body.captured.len();
    keep(body, piece, cap);
    let Some(j) = json.as_mut() else { return };
    if !j.streaming && !body.captured_all {
        j.streaming = true;
        j.feed(&body.captured[..before]);
    }
    if j.streaming {
        j.feed(piece);
    }
}

/// Keeps content bytes up to the cap; sizes are counted by the caller.
pub fn keep(body: &mut Body, piece: &[u8], cap: usize) {
    let room = cap.saturating_sub(body.captured.len());
    if room > 0 {
        body.captured
            .extend_from_slice(&piece[..piece.len().min(room)]);
    }
    if piece.len() > room {
        body.captured_all = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{Side, parse_head};
    use std::io::Write;

    fn response(fields: &str) -> Message {
        let raw = format!("HTTP/1.1 200 OK\r\n{fields}\r\n");
        let parsed = parse_head(Side::Response, raw.as_bytes()).expect("head");
        Message {
            start: parsed.start,
            headers: parsed.headers,
            raw_head: raw.into_bytes(),
            body: Body::default(),
            first_frame: Default::default(),
            head_frame: Default::default(),
            last_frame: Default::default(),
            first_ts: Default::default(),
            head_ts: Default::default(),
            last_ts: Default::default(),
            last_order: 0,
            anomalies: Vec::new(),
            head_complete: true,
        }
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    /// Feeds `wire` in segment-sized pieces; returns the finished message.
    fn run(mut msg: Message, framing: Framing, wire: &[u8], cap: usize) -> Message {
        let Some(mut stream) = ContentStream::for_message(&msg, framing, true) else {
            for piece in wire.chunks(1460) {
                msg.body.size += piece.len() as u64;
                keep(&mut msg.body, piece, cap);
            }
            return msg;
        };
        for piece in wire.chunks(1460) {
            stream.push(&mut msg.body, piece, cap);
        }
        stream.finish(&mut msg);
        msg
    }

    #[test]
    fn identity_needs_no_stream_and_json_gets_a_verdict() {
        let plain = response("Content-Type: text/plain\r\n");
        assert!(ContentStream::for_message(&plain, Framing::Chunked, true).is_none());
        let json = response("Content-Type: application/json\r\n");
        assert!(ContentStream::for_message(&json, Framing::Chunked, false).is_none());
        // Kept whole: the rules judge the kept bytes, no verdict is needed.
        let m = run(json, Framing::ContentLength(9), b"{\"a\": [1]", 1024);
        assert!(m.body.captured_all);
        assert_eq!(m.body.json, None);
        let json = response("Content-Type: application/problem+json\r\n");
        let m = run(json, Framing::ContentLength(9), b"{\"a\": [1]", 4);
        assert_eq!(m.body.captured, b"{\"a\"");
        assert!(!m.body.captured_all);
        assert!(matches!(
            m.body.json,
            Some(JsonVerdict::Invalid { at: 9, .. })
        ));
    }

    #[test]
    fn transfer_gzip_is_undone_and_content_gzip_only_for_the_verdict() {
        let doc = br#"{"items":[1,2,3]}"#;
        let m = response(
            "Content-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: gzip, chunked\r\n",
        );
        let m = run(m, Framing::Chunked, &gz(&gz(doc)), 1 << 20);
        assert_eq!(
            m.body.captured,
            gz(doc),
            "content keeps its Content-Encoding"
        );
        assert!(m.body.captured_all);
        assert_eq!(m.body.json, None, "kept whole");
        assert!(m.anomalies.is_empty());
        let capped = response(
            "Content-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: gzip, chunked\r\n",
        );
        let m = run(capped, Framing::Chunked, &gz(&gz(doc)), 5);
        assert!(!m.body.captured_all);
        assert_eq!(m.body.json, Some(JsonVerdict::Valid));
    }

    #[test]
    fn undecodable_transfer_codings_leave_the_content_unseen() {
        for te in ["compress", "chunked, gzip", "gzip"] {
            let m = response(&format!(
                "Content-Type: application/json\r\nTransfer-Encoding: {te}\r\n"
            ));
            let m = run(m, Framing::Close, b"{\"not\": \"coded\"}", 1 << 20);
            assert!(!m.body.captured_all, "{te}");
            assert!(m.has_anomaly(AnomalyKind::UndecodedTransferCoding), "{te}");
            assert!(
                matches!(m.body.json, Some(JsonVerdict::Undecided(_))),
                "{te}: {:?}",
                m.body.json
            );
        }
    }

    #[test]
    fn a_transfer_coded_bomb_costs_the_cap_not_its_size() {
        // 256 MiB of zeros in ~250 KiB on the wire.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            e.write_all(&zeros).expect("write");
        }
        let bomb = e.finish().expect("finish");
        for ct in ["application/octet-stream", "application/json"] {
            let m = response(&format!(
                "Content-Type: {ct}\r\nTransfer-Encoding: gzip\r\n"
            ));
            let mut m = m;
            let mut stream = ContentStream::for_message(&m, Framing::Close, true).expect("stream");
            let mut pieces = bomb.chunks(1460);
            for piece in pieces.by_ref() {
                stream.push(&mut m.body, piece, 64 * 1024);
                if stream.stopped {
                    break;
                }
            }
            // Zeros are not JSON: the verdict is known at the first byte, and decoding stops
            // once the kept bytes are full, within the first few segments of ~180.
            assert!(stream.stopped, "{ct}");
            assert!(
                pieces.len() > 150,
                "{ct}: stopped after {} pieces",
                180 - pieces.len()
            );
            for piece in pieces {
                stream.push(&mut m.body, piece, 64 * 1024);
            }
            stream.finish(&mut m);
            assert!(
                m.has_anomaly(AnomalyKind::CompressionBomb),
                "{ct}: {:?}",
                m.anomalies
            );
            assert_eq!(m.body.captured.len(), 64 * 1024, "{ct}");
            assert!(!m.body.captured_all);
            assert_eq!(m.body.size, bomb.len() as u64);
            if ct == "application/json" {
                assert!(matches!(
                    m.body.json,
                    Some(JsonVerdict::Invalid { at: 0, .. })
                ));
            }
        }
    }
}
