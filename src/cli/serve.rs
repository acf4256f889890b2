//! `wirelint serve`: the web dashboard over a database.

use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::ServeArgs;
use crate::config::Config;
use crate::dashboard::serve::ServeError;
use crate::dashboard::{self, AppState};
use crate::rules::RuleSet;
use crate::store::Reader;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (config, config_path) = Config::discover(None)?;
    let rules = super::analyze::load_rules(&config, config_path.as_deref(), &args.rules, &[], &[])?;
    check_db(&args.db)?;
    let listener = bind_dashboard(&args.listen, args.token.as_deref(), "--listen ADDR")?;
    serve_db(&args.db, listener, args.token, Arc::new(rules))?;
    Ok(ExitCode::SUCCESS)
}

/// Parses and binds the dashboard's address, before any other work, so that a taken port
/// fails at once. `flag` is the option that names the address (`--serve ADDR` for `analyze`
/// and `sniff`, `--listen ADDR` for `serve`): the error says which to change.
pub(super) fn bind_dashboard(
    text: &str,
    token: Option<&str>,
    flag: &str,
) -> anyhow::Result<TcpListener> {
    let addr = dashboard::serve::parse_listen(text)?;
    dashboard::serve::bind(addr, token).map_err(|e| match &e {
        ServeError::Bind { error, .. } if error.kind() == std::io::ErrorKind::AddrInUse => {
            anyhow::anyhow!("{e}; pick another port with {flag}")
        }
        _ => e.into(),
    })
}

/// Fails when `db` is not a wirelint database this build can read.
fn check_db(db: &Path) -> anyhow::Result<()> {
    if !db.is_file() {
        anyhow::bail!(
            "database {} does not exist; write one with `wirelint analyze CAPTURE --db {}`",
            db.display(),
            db.display()
        );
    }
    // Fails here, not on the first request, when the file is not a wirelint database.
    Reader::open(db)?
        .runs()
        .with_context(|| format!("reading {}", db.display()))?;
    Ok(())
}

/// Serves the dashboard over `db` on `listener` until Ctrl-C, then leaves only the
/// database file behind (no `-wal`/`-shm`).
pub(super) fn serve_db(
    db: &Path,
    listener: TcpListener,
    token: Option<String>,
    rules: Arc<RuleSet>,
) -> anyhow::Result<()> {
    let state = AppState::new(db, rules).with_token(token);
    dashboard::serve(state, listener)?;
    tidy_db(db);
    Ok(())
}

/// Folds the write-ahead log back into `db` and removes `-wal`/`-shm` (when no other
/// process has it open). The dashboard's readers are read-only and cannot do it
/// themselves. A failure only leaves the two files, so it is a warning.
pub(super) fn tidy_db(db: &Path) {
    if let Err(e) = crate::store::checkpoint_and_close(db) {
        eprintln!("wirelint: warning: {e}");
    }
}
