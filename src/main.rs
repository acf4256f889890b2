use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    wirelint::cli::run(wirelint::cli::Cli::parse())
}
