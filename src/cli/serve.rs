//! `wirelint serve`: the web dashboard over a database.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::ServeArgs;
use crate::config::Config;
use crate::dashboard::{self, AppState};
use crate::rules::RuleSet;
use crate::store::Reader;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (config, config_path) = Config::discover(None)?;
    let rules = super::analyze::load_rules(&config, config_path.as_deref(), &args.rules, &[], &[])?;
    serve_db(&args.db, &args.listen, args.token, Arc::new(rules))?;
    Ok(ExitCode::SUCCESS)
}

/// Checks the address and the database, then serves until Ctrl-C.
pub fn serve_db(
    db: &Path,
    listen: &str,
    token: Option<String>,
    rules: Arc<RuleSet>,
) -> anyhow::Result<()> {
    let addr = dashboard::serve::parse_listen(listen)?;
    dashboard::serve::check_listen(addr, token.as_deref())?;
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
    let listener = dashboard::serve::bind(addr, token.as_deref())?;
    let state = AppState::new(db, rules).with_token(token);
    dashboard::serve(state, listener)?;
    Ok(())
}
