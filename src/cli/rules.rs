//! `wirelint rules`: the catalogue; `wirelint rules explain ID`: one rule in full.

use std::process::ExitCode;

use super::{RulesAction, RulesArgs, RulesFormat};
use crate::config::Config;
use crate::report::rules_doc;

pub fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    let (config, config_path) = Config::discover(None)?;
    let set = super::analyze::load_rules(&config, config_path.as_deref(), &args.rules, &[], &[])?;
    match args.action {
        Some(RulesAction::Explain { id }) => match set.get(&id) {
            Some(rule) => print!("{}", rules_doc::explain(rule)),
            None => anyhow::bail!("no rule {id:?} (see `wirelint rules`)"),
        },
        None => match args.format {
            RulesFormat::Text => print!("{}", rules_doc::text(&set)),
            RulesFormat::Json => {
                println!("{}", serde_json::to_string_pretty(&rules_doc::json(&set))?)
            }
            RulesFormat::Markdown => print!("{}", rules_doc::markdown(&set)),
        },
    }
    Ok(ExitCode::SUCCESS)
}
