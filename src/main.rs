use std::process::ExitCode;

fn main() -> ExitCode {
    wirelint::cli::run(wirelint::cli::parse())
}
