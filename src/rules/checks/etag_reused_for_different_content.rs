//! `etag-reused-for-different-content`: one host sends the same strong ETag for different
//! content of one URL (RFC 9110 §8.8.3, §8.8.3.3, §13.1.5): either two bodies of the same
//! variant (same content coding, same values of the request fields named in Vary) differ
//! after content decoding, or the same ETag labels two content codings. Stateful: it
//! compares responses across exchanges and connections.
//!
//! Bodies are compared by length and a 128-bit hash of the decoded content (the dependency
//! set has no SHA-256; the hash only has to tell one version from another). State is keyed
//! by hashes and capped, with the oldest entries forgotten first. The rule's `[when]`
//! (GET, 200, a strong-looking ETag) is applied here, as stateful checks see every exchange.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use super::{CheckKind, StatefulCheck, StatefulHit};
use crate::http::{Exchange, Message, content};
use crate::rules::syntax::entity_tag;
use crate::rules::syntax::stateful::{Bounded, Keyer, LazySummary, Summary, Tables};
use crate::rules::syntax::token::split_list;
use crate::rules::{ExchangeRef, Side};

pub const CHECK: CheckKind = CheckKind::Stateful(make);

/// Variants (and ETags per URL) remembered.
const MAX_ENTRIES: usize = 50_000;
/// Characters of a Content-Encoding value kept (state stays small whatever is sent).
const MAX_CODING: usize = 64;
/// Decoded content hashed at most; a body that decodes to more is not compared.
const DECODE_CAP: usize = 8 * 1024 * 1024;

static SUMMARY: LazySummary =
    LazyLock::new(|| Summary::builtin("etag-reused-for-different-content"));

fn make(tables: &Tables) -> Box<dyn StatefulCheck> {
    Box::new(EtagReuse {
        keyer: Keyer::default(),
        bodies: tables.bounded(MAX_ENTRIES),
        codings: tables.bounded(MAX_ENTRIES),
        reported: tables.bounded(MAX_ENTRIES),
    })
}

/// A 128-bit digest of decoded content (two differently seeded SipHashes).
fn digest(body: &[u8]) -> u128 {
    let mut a = DefaultHasher::new();
    let mut b = DefaultHasher::new();
    0x9e37_79b9_7f4a_7c15u64.hash(&mut b);
    body.hash(&mut a);
    body.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// A response seen earlier.
#[derive(Clone)]
struct Seen {
    body_hash: u128,
    body_len: usize,
    /// The content codings, normalised (`identity`, `gzip`, `gzip,br`), at most
    /// [`MAX_CODING`] characters.
    coding: String,
    /// CRC and length of the body as sent (still encoded): equal raw bytes need no decoding.
    raw_hash: u128,
    at: ExchangeRef,
    frame: u64,
}

struct EtagReuse {
    keyer: Keyer,
    /// (host, target, coding, Vary-listed request values, ETag) → first response.
    bodies: Bounded<u64, Seen>,
    /// (host, target, ETag) → first response.
    codings: Bounded<u64, Seen>,
    /// (host, target, ETag) already reported.
    reported: Bounded<u64, ()>,
}

/// The response's strong ETag, as written, when it has exactly one valid one.
fn strong_etag(resp: &Message) -> Option<&str> {
    let mut values = resp.header_values("etag");
    let v = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let tag = entity_tag::parse(v)?;
    (!tag.weak).then_some(tag.opaque)
}

fn coding(resp: &Message) -> String {
    let codings: Vec<String> = resp
        .header_values("content-encoding")
        .flat_map(split_list)
        .map(|c| match c.to_ascii_lowercase().as_str() {
            "x-gzip" => "gzip".to_string(),
            other => other.to_string(),
        })
        .filter(|c| c != "identity")
        .collect();
    if codings.is_empty() {
        "identity".to_string()
    } else {
        codings.join(",").chars().take(MAX_CODING).collect()
    }
}

/// The request's values of the fields the response's Vary names (`None` for `Vary: *`,
/// where no two requests are known to select the same variant).
fn vary_values(req: &Message, resp: &Message) -> Option<Vec<u8>> {
    let mut names: Vec<String> = resp
        .header_values("vary")
        .flat_map(split_list)
        .map(str::to_ascii_lowercase)
        .collect();
    if names.iter().any(|n| n == "*") {
        return None;
    }
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        match req.combined(&n) {
            Some(v) => out.extend_from_slice(v.as_bytes()),
            None => out.push(0xff),
        }
        out.push(0);
    }
    Some(out)
}

impl StatefulCheck for EtagReuse {
    fn observe(&mut self, ex: &Exchange, out: &mut Vec<StatefulHit>) {
        let (Some(req), Some(resp)) = (&ex.request, &ex.response) else {
            return;
        };
        if req.method() != Some("GET") || resp.status() != Some(200) {
            return;
        }
        let Some(etag) = strong_etag(resp) else {
            return;
        };
        if resp.is_incomplete() || !resp.body.captured_all {
            return;
        }
        let Some(vary) = vary_values(req, resp) else {
            return;
        };
        let Some(host) = self.keyer.host(ex) else {
            return;
        };
        let target = req.target().unwrap_or("");
        let resp_coding = coding(resp);
        let url_key = self.keyer.key((host, target, etag));
        let variant_key = self.keyer.key((host, target, &resp_coding, &vary, etag));
        // CRC-32 (SIMD-fast) and length of the bytes as sent: enough to recognise a repeat.
        let raw_hash = {
            let mut crc = flate2::Crc::new();
            crc.update(&resp.body.captured);
            (u128::from(crc.sum()) << 64) | resp.body.captured.len() as u128
        };
        // The same bytes as the first response of this variant: same content, and decoding
        // (the expensive part, on the thread that sees every exchange) is not needed.
        if self.bodies.peek(&variant_key).is_some_and(|first| first.raw_hash == raw_hash) {
            return;
        }
        // A body that does not decode is still a content coding: only the body comparison
        // needs the bytes.
        let body = match content::decoded_body(resp, DECODE_CAP) {
            Ok((body, false)) => Some(body),
            _ => None,
        };
        let this = Seen {
            body_hash: body.as_deref().map_or(0, digest),
            body_len: body.as_ref().map_or(0, |b| b.len()),
            coding: resp_coding,
            raw_hash,
            at: ExchangeRef::of(ex),
            frame: resp.first_frame.number,
        };
        let mut finding = None;
        if let Some(first) = self.codings.get_mut(&url_key)
            && first.coding != this.coding
        {
            finding = Some((
                format!(
                    "same ETag for {} and {} content, responses in frames {} and {}",
                    first.coding, this.coding, first.frame, this.frame
                ),
                first.at,
            ));
        } else if body.is_some()
            && let Some(first) = self.bodies.get_mut(&variant_key)
            && first.body_hash != this.body_hash
        {
            let sizes = if first.body_len == this.body_len {
                format!("both {} bytes", this.body_len)
            } else {
                format!("{} vs {} bytes", first.body_len, this.body_len)
            };
            finding = Some((
                format!(
                    "same ETag, 2 bodies ({sizes}), responses in frames {} and {}",
                    first.frame, this.frame
                ),
                first.at,
            ));
        }
        if let Some((evidence, earlier)) = finding
            && self.reported.peek(&url_key).is_none()
        {
            self.reported.insert(url_key, ());
            out.push(StatefulHit {
                at: this.at,
                message: SUMMARY.render(ex, &evidence),
                evidence,
                severity: None,
                side: Some(Side::Response),
                related: vec![earlier],
            });
        }
        if self.codings.peek(&url_key).is_none() {
            self.codings.insert(url_key, this.clone());
        }
        if body.is_some() && self.bodies.peek(&variant_key).is_none() {
            self.bodies.insert(variant_key, this);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::syntax::testing::exchanges;
    use std::fmt::Write;

    /// Exchanges of GET /b, each response given as (extra fields, body).
    fn run(responses: &[(&str, &str)]) -> Vec<String> {
        let mut toml = String::new();
        for (fields, body) in responses {
            let _ = write!(
                toml,
                "[[exchange]]\nrequest = \"GET /b HTTP/1.1\\nHost: a\\nAccept-Language: en\\n\\n\"\nresponse = \"HTTP/1.1 200 OK\\n{fields}Content-Length: {}\\n\\n{body}\"\n",
                body.len()
            );
        }
        let mut check = make(&Tables::measuring());
        let mut out = Vec::new();
        for ex in exchanges(&toml) {
            check.observe(&ex, &mut out);
        }
        out.into_iter().map(|h| h.evidence).collect()
    }

    #[test]
    fn different_bodies_fire_once() {
        let got = run(&[
            ("ETag: \\\"v7\\\"\\n", "one"),
            ("ETag: \\\"v7\\\"\\n", "two!"),
            ("ETag: \\\"v7\\\"\\n", "three"),
        ]);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("same ETag, 2 bodies (3 vs 4 bytes)"),
            "{got:?}"
        );
    }

    #[test]
    fn same_body_weak_tags_and_vary_do_not_fire() {
        assert!(
            run(&[
                ("ETag: \\\"v7\\\"\\n", "one"),
                ("ETag: \\\"v7\\\"\\n", "one")
            ])
            .is_empty()
        );
        assert!(
            run(&[
                ("ETag: W/\\\"v7\\\"\\n", "one"),
                ("ETag: W/\\\"v7\\\"\\n", "two")
            ])
            .is_empty()
        );
        assert!(
            run(&[
                ("ETag: \\\"v7\\\"\\nVary: *\\n", "one"),
                ("ETag: \\\"v7\\\"\\nVary: *\\n", "two")
            ])
            .is_empty()
        );
    }

    #[test]
    fn two_codings_under_one_tag_fire() {
        let got = run(&[
            ("ETag: \\\"v7\\\"\\n", "one"),
            ("ETag: \\\"v7\\\"\\nContent-Encoding: br\\n", "not brotli"),
        ]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("same ETag for identity and br content"),
            "{got:?}"
        );
    }
}
