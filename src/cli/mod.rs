//! Command line: clap definitions, one file per subcommand.

pub mod analyze;
mod exchanges;
mod interfaces;
mod progress;
mod rules;
mod serve;
mod sniff;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// Check the HTTP traffic in capture files against the rules and report findings.
    Analyze(AnalyzeArgs),
    /// List every HTTP exchange found in capture files.
    Exchanges(ExchangesArgs),
    /// List the rules, or explain one (`wirelint rules explain ID`).
    Rules(RulesArgs),
    /// Serve the web dashboard over a database written by `analyze --db`.
    Serve(ServeArgs),
    /// Capture live traffic on an interface, check it, and record findings as they come.
    Sniff(SniffArgs),
    /// List the interfaces `sniff` can capture on.
    Interfaces(InterfacesArgs),
}

/// Which rules run and how: shared by `analyze` and `sniff`.
#[derive(Debug, clap::Args)]
pub struct RuleOptions {
    /// Configuration file (default: ./wirelint.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Extra folder of rule files (repeatable).
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Run only these rule ids or categories (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub select: Vec<String>,
    /// Do not run these rule ids or categories (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SniffFormat {
    /// One line per finding.
    Text,
    /// One JSON object per finding, with its exchange.
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct SniffArgs {
    /// Interface to capture on (`any` for all; see `wirelint interfaces`).
    #[arg(short, long, value_name = "IFACE")]
    pub interface: String,
    /// BPF filter (tcpdump syntax) run in the kernel.
    #[arg(long, value_name = "BPF", default_value = crate::capture::live::DEFAULT_FILTER)]
    pub filter: Option<String>,
    /// The database the run is recorded in, created when missing; each start adds a run.
    #[arg(long, value_name = "PATH", default_value = "wirelint.db")]
    pub db: PathBuf,
    /// Also serve the dashboard on ADDR (default 127.0.0.1:7878), updated live.
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = crate::dashboard::serve::DEFAULT_LISTEN)]
    pub serve: Option<String>,
    /// With --serve: the token every request must carry (needed off loopback).
    #[arg(long, value_name = "TOKEN", requires = "serve")]
    pub token: Option<String>,
    /// Bytes kept of each packet.
    #[arg(long, value_name = "N", default_value_t = crate::capture::live::DEFAULT_SNAPLEN,
          value_parser = clap::value_parser!(u32).range(64..))]
    pub snaplen: u32,
    /// Stop after this long (e.g. 90s, 10m, 2h; plain numbers are seconds).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Put the interface in promiscuous mode (see other hosts' traffic on a shared link).
    #[arg(long)]
    pub promiscuous: bool,
    /// Hand each packet over at once rather than within 100 ms. On Linux this switches
    /// libpcap to a ring with one slot per packet, which drops under load.
    #[arg(long)]
    pub immediate: bool,
    /// How findings are printed on stdout.
    #[arg(long, value_enum, default_value_t = SniffFormat::Text)]
    pub format: SniffFormat,
    /// Log format on stderr (`RUST_LOG` sets the level, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub rule_options: RuleOptions,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Content bytes kept per message for the rules, e.g. 512k or 4m (sizes and JSON
    /// validity still cover the whole content) [default: `body_cap` in wirelint.toml, else
    /// 256k].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub body_cap: Option<usize>,
    /// Do not print findings on stdout (they are still recorded).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `90`, `90s`, `15m`, `2h`, `1d`, or `500ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 10m, 2h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InterfacesFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct InterfacesArgs {
    #[arg(long, value_enum, default_value_t = InterfacesFormat::Text)]
    pub format: InterfacesFormat,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The database to browse (read only).
    #[arg(long, value_name = "PATH", default_value = "wirelint.db")]
    pub db: PathBuf,
    /// Address to listen on. Any address but loopback needs --token.
    #[arg(long, value_name = "ADDR", default_value = crate::dashboard::serve::DEFAULT_LISTEN)]
    pub listen: String,
    /// Token every request must carry (`Authorization: Bearer TOKEN` or `?token=TOKEN`):
    /// 16 to 256 letters, digits or `-._~`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Extra folder of rule files (repeatable), for their explanations.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindingFormat {
    Text,
    Json,
    Jsonl,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng). Several files are one capture, merged in time order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// BPF filter (tcpdump syntax) applied to every packet.
    #[arg(long)]
    pub filter: Option<String>,
    #[arg(long, value_enum, default_value_t = FindingFormat::Text)]
    pub format: FindingFormat,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    #[command(flatten)]
    pub rule_options: RuleOptions,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Also record the run (exchanges, findings, counters) in this SQLite database
    /// [default: ./wirelint.db], created when missing; each analysis adds a new run. The
    /// report is printed as without it.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Do not record the run in a database.
    #[arg(long, conflicts_with_all = ["db", "serve"])]
    pub no_db: bool,
    /// Then serve the dashboard over the database on ADDR (default 127.0.0.1:7878) until
    /// Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = crate::dashboard::serve::DEFAULT_LISTEN)]
    pub serve: Option<String>,
    /// With --serve: the token every request must carry (needed off loopback).
    #[arg(long, value_name = "TOKEN", requires = "serve")]
    pub token: Option<String>,
    /// Content bytes kept per message for the rules, e.g. 512k or 4m (sizes and JSON
    /// validity still cover the whole content) [default: `body_cap` in wirelint.toml, else
    /// 256k].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub body_cap: Option<usize>,
    /// Do not print the run summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub action: Option<RulesAction>,
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
    /// Extra folder of rule files (repeatable).
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// Print a rule's full documentation with its examples.
    Explain { id: String },
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
    /// Content bytes kept per message, e.g. 512k or 4m [default: 0: the listing needs
    /// sizes only].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub body_cap: Option<usize>,
    /// Do not print the run summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Exit status: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Exchanges(args) => exchanges::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Sniff(args) => sniff::run(args),
        Command::Interfaces(args) => interfaces::run(args),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }
}
