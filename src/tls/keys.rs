//! Cipher suites and the key schedules that turn logged secrets into record keys: TLS 1.3
//! (RFC 8446 §7: HKDF-Expand-Label, traffic keys and IVs, KeyUpdate) and TLS 1.2 (RFC 5246
//! §5–6.3: the PRF and the key block). The AEAD ciphers are `ring`'s; HKDF, HMAC and the
//! hashes RustCrypto's.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Sha256, Sha384};

/// The hash of a suite (its HKDF / PRF hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
}

impl HashAlg {
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }
}

/// The AEAD of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadAlg {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl AeadAlg {
    pub fn key_len(self) -> usize {
        match self {
            AeadAlg::Aes128Gcm => 16,
            AeadAlg::Aes256Gcm | AeadAlg::ChaCha20Poly1305 => 32,
        }
    }
}

/// How a record's nonce is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceStyle {
    /// TLS 1.3, and ChaCha20-Poly1305 in TLS 1.2 (RFC 7905): a 12-byte IV XOR the sequence
    /// number.
    XorSequence,
    /// AES-GCM in TLS 1.2 (RFC 5288): a 4-byte implicit salt and 8 explicit bytes sent at
    /// the front of each record.
    ExplicitGcm,
}

/// A cipher suite we can decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    pub id: u16,
    pub aead: AeadAlg,
    pub hash: HashAlg,
    pub tls13: bool,
}

impl Suite {
    pub fn nonce_style(&self) -> NonceStyle {
        if self.tls13 || self.aead == AeadAlg::ChaCha20Poly1305 {
            NonceStyle::XorSequence
        } else {
            NonceStyle::ExplicitGcm
        }
    }

    /// The IV length taken from the TLS 1.2 key block (RFC 5288 §3, RFC 7905 §2).
    fn tls12_iv_len(&self) -> usize {
        match self.nonce_style() {
            NonceStyle::XorSequence => 12,
            NonceStyle::ExplicitGcm => 4,
        }
    }
}

/// The suites we decrypt. Others are reported by name as unsupported.
pub fn supported_suite(id: u16) -> Option<Suite> {
    use AeadAlg::*;
    use HashAlg::*;
    let (aead, hash, tls13) = match id {
        0x1301 => (Aes128Gcm, Sha256, true),
        0x1302 => (Aes256Gcm, Sha384, true),
        0x1303 => (ChaCha20Poly1305, Sha256, true),
        // TLS 1.2 AES-GCM (RFC 5288, RFC 5289): RSA, DHE_RSA, ECDHE_ECDSA, ECDHE_RSA.
        0x009C | 0x009E | 0xC02B | 0xC02F => (Aes128Gcm, Sha256, false),
        0x009D | 0x009F | 0xC02C | 0xC030 => (Aes256Gcm, Sha384, false),
        // TLS 1.2 ChaCha20-Poly1305 (RFC 7905): ECDHE_RSA, ECDHE_ECDSA, DHE_RSA.
        0xCCA8..=0xCCAA => (ChaCha20Poly1305, Sha256, false),
        _ => return None,
    };
    Some(Suite {
        id,
        aead,
        hash,
        tls13,
    })
}

/// The IANA name of a cipher suite, for reports.
pub fn suite_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0x009C => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009D => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009E => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009F => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0xC02B => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02C => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xC02F => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xC030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xCCA8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xCCA9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xCCAA => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0x002F => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x003C => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003D => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0xC009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xC00A => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xC013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xC014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xC023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xC024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xC027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xC028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        _ => return None,
    })
}

/// A keyed AEAD.
pub struct Cipher {
    alg: AeadAlg,
    key: LessSafeKey,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str(match self.alg {
            AeadAlg::Aes128Gcm => "Cipher(AES-128-GCM)",
            AeadAlg::Aes256Gcm => "Cipher(AES-256-GCM)",
            AeadAlg::ChaCha20Poly1305 => "Cipher(ChaCha20-Poly1305)",
        })
    }
}

pub const TAG_LEN: usize = 16;

impl Cipher {
    pub fn new(alg: AeadAlg, key: &[u8]) -> Option<Cipher> {
        let algorithm = match alg {
            AeadAlg::Aes128Gcm => &aead::AES_128_GCM,
            AeadAlg::Aes256Gcm => &aead::AES_256_GCM,
            AeadAlg::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        let key = UnboundKey::new(algorithm, key).ok()?;
        Some(Cipher {
            alg,
            key: LessSafeKey::new(key),
        })
    }

    /// Decrypts `buf` (ciphertext followed by the 16-byte tag) in place; returns the
    /// plaintext length, or `None` when the tag does not verify.
    pub fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> Option<usize> {
        let nonce = Nonce::assume_unique_for_key(*nonce);
        let plain = self.key.open_in_place(nonce, Aad::from(aad), buf).ok()?;
        Some(plain.len())
    }

    /// Encrypts `msg` and appends the tag (tests build records with it).
    pub fn seal(&self, nonce: &[u8; 12], aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut buf = msg.to_vec();
        let nonce = Nonce::assume_unique_for_key(*nonce);
        if let Ok(tag) = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf)
        {
            buf.extend_from_slice(tag.as_ref());
        }
        buf
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1).
pub fn hkdf_expand_label(
    hash: HashAlg,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let mut info = Vec::with_capacity(4 + 6 + label.len() + context.len());
    info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(6 + label.len()).ok()?);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    let mut out = vec![0u8; len];
    match hash {
        HashAlg::Sha256 => Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        HashAlg::Sha384 => Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

/// The key and IV of one direction, with its record sequence number.
#[derive(Debug)]
pub struct DirectionKeys {
    pub cipher: Cipher,
    pub iv: [u8; 12],
    /// TLS 1.2 AES-GCM: only the first 4 bytes of `iv` are used (the implicit salt).
    pub style: NonceStyle,
    pub seq: u64,
}

impl DirectionKeys {
    /// The nonce of the next record (`explicit`: the 8 bytes a TLS 1.2 GCM record carries).
    pub fn nonce(&self, explicit: Option<&[u8]>) -> Option<[u8; 12]> {
        let mut n = self.iv;
        match self.style {
            NonceStyle::XorSequence => {
                for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
                    *b ^= s;
                }
            }
            NonceStyle::ExplicitGcm => n[4..].copy_from_slice(explicit?.get(..8)?),
        }
        Some(n)
    }
}

/// TLS 1.3 traffic keys from a traffic secret (RFC 8446 §7.3).
pub fn tls13_keys(suite: &Suite, secret: &[u8]) -> Option<DirectionKeys> {
    let key = hkdf_expand_label(suite.hash, secret, b"key", b"", suite.aead.key_len())?;
    let iv = hkdf_expand_label(suite.hash, secret, b"iv", b"", 12)?;
    Some(DirectionKeys {
        cipher: Cipher::new(suite.aead, &key)?,
        iv: iv.try_into().ok()?,
        style: NonceStyle::XorSequence,
        seq: 0,
    })
}

/// The next application traffic secret after a KeyUpdate (RFC 8446 §7.2).
pub fn tls13_next_secret(suite: &Suite, secret: &[u8]) -> Option<Vec<u8>> {
    hkdf_expand_label(
        suite.hash,
        secret,
        b"traffic upd",
        b"",
        suite.hash.output_len(),
    )
}

fn hmac(hash: HashAlg, key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
    Some(match hash {
        HashAlg::Sha256 => {
            let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).ok()?;
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        HashAlg::Sha384 => {
            let mut m = <Hmac<Sha384> as hmac::KeyInit>::new_from_slice(key).ok()?;
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
    })
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed).
pub fn tls12_prf(
    hash: HashAlg,
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut a = hmac(hash, secret, &[label, seed])?;
    while out.len() < len {
        out.extend_from_slice(&hmac(hash, secret, &[&a, label, seed])?);
        a = hmac(hash, secret, &[&a])?;
    }
    out.truncate(len);
    Some(out)
}

/// TLS 1.2 record keys of both directions from the master secret (RFC 5246 §6.3):
/// `[client_write, server_write]`. AEAD suites have no MAC keys.
pub fn tls12_keys(
    suite: &Suite,
    master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Option<[DirectionKeys; 2]> {
    let key_len = suite.aead.key_len();
    let iv_len = suite.tls12_iv_len();
    let mut seed = Vec::with_capacity(64);
    seed.extend_from_slice(server_random);
    seed.extend_from_slice(client_random);
    let block = tls12_prf(
        suite.hash,
        master,
        b"key expansion",
        &seed,
        2 * (key_len + iv_len),
    )?;
    let (client_key, rest) = block.split_at(key_len);
    let (server_key, rest) = rest.split_at(key_len);
    let (client_iv, server_iv) = rest.split_at(iv_len);
    let make = |key: &[u8], iv: &[u8]| {
        let mut full = [0u8; 12];
        full[..iv.len()].copy_from_slice(iv);
        Some(DirectionKeys {
            cipher: Cipher::new(suite.aead, key)?,
            iv: full,
            style: suite.nonce_style(),
            seq: 0,
        })
    };
    Some([make(client_key, client_iv)?, make(server_key, server_iv)?])
}

#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8448 §3 (Simple 1-RTT Handshake).
    const SERVER_HS_SECRET: &str = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4
        e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
    const SERVER_HS_KEY: &str = "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc";
    const SERVER_HS_IV: &str = "5d 31 3e b2 67 12 76 ee 13 00 0b 30";
    const CLIENT_APP_SECRET: &str = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52
        87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";
    const CLIENT_APP_KEY: &str = "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51";
    const CLIENT_APP_IV: &str = "5b 78 92 3d ee 08 57 90 33 e5 23 d9";

    #[test]
    fn tls13_traffic_keys_match_rfc8448() {
        let suite = supported_suite(0x1301).unwrap();
        let s = unhex(SERVER_HS_SECRET);
        assert_eq!(
            hkdf_expand_label(suite.hash, &s, b"key", b"", 16).unwrap(),
            unhex(SERVER_HS_KEY)
        );
        assert_eq!(
            hkdf_expand_label(suite.hash, &s, b"iv", b"", 12).unwrap(),
            unhex(SERVER_HS_IV)
        );
        let c = unhex(CLIENT_APP_SECRET);
        assert_eq!(
            hkdf_expand_label(suite.hash, &c, b"key", b"", 16).unwrap(),
            unhex(CLIENT_APP_KEY)
        );
        let keys = tls13_keys(&suite, &c).unwrap();
        assert_eq!(keys.iv.to_vec(), unhex(CLIENT_APP_IV));
    }

    #[test]
    fn rfc8448_client_application_record_decrypts() {
        // RFC 8448 §3: "{client} send application_data record", 50 bytes 00 01 .. 31.
        let record = unhex(
            "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9
             14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f
             5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4",
        );
        let suite = supported_suite(0x1301).unwrap();
        let keys = tls13_keys(&suite, &unhex(CLIENT_APP_SECRET)).unwrap();
        let nonce = keys.nonce(None).unwrap();
        let (aad, body) = record.split_at(5);
        let mut body = body.to_vec();
        let n = keys.cipher.open(&nonce, aad, &mut body).unwrap();
        let want: Vec<u8> = (0u8..=0x31).chain([0x17]).collect();
        assert_eq!(&body[..n], &want[..]);
    }

    #[test]
    fn tls12_prf_matches_a_known_vector() {
        // The widely used TLS 1.2 PRF-SHA256 test vector (IETF TLS WG mailing list,
        // "TLS 1.2 PRF test vectors").
        let secret = unhex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = unhex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let out = tls12_prf(HashAlg::Sha256, &secret, b"test label", &seed, 100).unwrap();
        let want = unhex(
            "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4
             e6 1e db 5a 6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17
             ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1
             22 ee 42 c5 a7 2e 5a 51 10 ff f7 01 87 34 7b 66",
        );
        assert_eq!(out, want);
    }

    #[test]
    fn seal_then_open_round_trips_and_a_flipped_bit_fails() {
        for alg in [
            AeadAlg::Aes128Gcm,
            AeadAlg::Aes256Gcm,
            AeadAlg::ChaCha20Poly1305,
        ] {
            let c = Cipher::new(alg, &vec![7u8; alg.key_len()]).unwrap();
            let nonce = [1u8; 12];
            let mut sealed = c.seal(&nonce, b"aad", b"hello");
            let mut bad = sealed.clone();
            assert_eq!(c.open(&nonce, b"aad", &mut sealed), Some(5));
            assert_eq!(&sealed[..5], b"hello");
            bad[0] ^= 1;
            assert_eq!(c.open(&nonce, b"aad", &mut bad), None);
        }
    }

    #[test]
    fn key_update_secret_is_derived_with_the_traffic_upd_label() {
        let suite = supported_suite(0x1301).unwrap();
        let s = unhex(CLIENT_APP_SECRET);
        let next = tls13_next_secret(&suite, &s).unwrap();
        assert_eq!(next.len(), 32);
        assert_eq!(
            next,
            hkdf_expand_label(suite.hash, &s, b"traffic upd", b"", 32).unwrap()
        );
        assert_ne!(next, s);
    }
}
