//! `--tls-keylog FILE` and `SSLKEYLOGFILE`: where the keys that decrypt HTTPS come from
//! (with the secrets embedded in pcapng files). Shared by `analyze`, `exchanges` and
//! `sniff`. Secrets go to the pipeline only; what is reported is counts.

use std::path::PathBuf;

use anyhow::Context;

use crate::tls::{KeyLog, KeyLogFollower, Keys, TlsConfig};

#[derive(Debug, Default, clap::Args)]
pub struct TlsOptions {
    /// TLS key log to decrypt HTTPS with (NSS format, as curl, browsers, OpenSSL and Go
    /// write it through SSLKEYLOGFILE; repeatable). SSLKEYLOGFILE is read too when set, and
    /// secrets embedded in pcapng files are used.
    #[arg(long = "tls-keylog", value_name = "FILE")]
    pub tls_keylog: Vec<PathBuf>,
}

/// The environment variable clients write their key log to.
pub const SSLKEYLOGFILE: &str = "SSLKEYLOGFILE";

impl TlsOptions {
    /// Key log files to read: the ones given, then `SSLKEYLOGFILE` when it names a file.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = self.tls_keylog.clone();
        if let Some(env) = std::env::var_os(SSLKEYLOGFILE).filter(|v| !v.is_empty()) {
            let env = PathBuf::from(env);
            if !files.contains(&env) {
                files.push(env);
            }
        }
        files
    }

    /// Offline: every key log read once, with `embedded` (pcapng secrets) added. A file
    /// given with `--tls-keylog` must be readable; `SSLKEYLOGFILE` naming no file is
    /// skipped (the variable is often left set).
    pub fn load(&self, embedded: &[u8]) -> anyhow::Result<TlsConfig> {
        let mut log = KeyLog::parse(embedded);
        for path in &self.tls_keylog {
            log.merge(crate::tls::keylog::read_file(path)?);
        }
        if let Some(env) = self
            .files()
            .into_iter()
            .find(|f| !self.tls_keylog.contains(f))
            && env.is_file()
        {
            let read = crate::tls::keylog::read_file(&env)
                .with_context(|| format!("reading {SSLKEYLOGFILE}"))?;
            log.merge(read);
        }
        Ok(TlsConfig {
            keys: Keys::new(log),
            wait_for_keys: false,
        })
    }

    /// Live: the key logs are followed as they grow (a client logs a connection's keys
    /// after its ClientHello went out), so connections wait, bounded, for their keys.
    pub fn follow(&self) -> (TlsConfig, Vec<KeyLogFollower>) {
        let keys = Keys::default();
        let followers = self.files().into_iter().map(KeyLogFollower::new).collect();
        (
            TlsConfig {
                keys,
                wait_for_keys: true,
            },
            followers,
        )
    }
}

/// Reads what the followed key logs gained since the last call.
pub fn poll(followers: &mut [KeyLogFollower], keys: &Keys) {
    for f in followers {
        if let Err(e) = f.poll(keys) {
            tracing::warn!(error = %e, "cannot read the TLS key log");
        }
    }
}
