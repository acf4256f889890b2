//! TLS decryption from a key log: the NSS key log format ([`keylog`]), the hellos
//! ([`handshake`]), the key schedules of TLS 1.2 and 1.3 ([`keys`]), the record layer
//! ([`record`]) and [`TlsDecryptor`], which turns a connection's ciphertext pieces into
//! plaintext pieces for the HTTP parsers.
//!
//! Keys never leave this module: nothing here prints, stores or serialises a secret.

pub mod decrypt;
pub mod handshake;
pub mod keylog;
pub mod keys;
pub mod record;

pub use decrypt::{TlsDecryptor, TlsFacts, TlsStats, TlsStatus};
pub use keylog::{KeyLog, KeyLogFollower, KeyLogStats, Keys};

/// How a run decrypts TLS.
#[derive(Clone, Debug, Default)]
pub struct TlsConfig {
    /// Secrets by client random (possibly none: TLS connections are then counted, not
    /// decrypted).
    pub keys: Keys,
    /// Live capture: keys may be logged after a connection started; hold its records
    /// (bounded) until they are.
    pub wait_for_keys: bool,
}
