//! Command line: clap definitions, one file per subcommand.

mod exchanges;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// wirelint — an HTTP traffic linter: finds where HTTP/1.x servers and clients break the
/// specs, from saved captures or live traffic.
#[derive(Debug, Parser)]
#[command(name = "wirelint", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every HTTP exchange found in capture files.
    Exchanges(ExchangesArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExchangeFormat {
    Text,
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct ExchangesArgs {
    /// Capture files (pcap or pcapng). Several files are one capture, merged in time order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// BPF filter (tcpdump syntax) applied to every packet.
    #[arg(long)]
    pub filter: Option<String>,
    #[arg(long, value_enum, default_value_t = ExchangeFormat::Text)]
    pub format: ExchangeFormat,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Do not print the run summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Exit status: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Exchanges(args) => exchanges::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("wirelint: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
