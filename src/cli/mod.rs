//! Command line: clap definitions, one file per subcommand.

pub mod analyze;
mod exchanges;
mod input;
mod interfaces;
mod progress;
mod rules;
mod serve;
mod sniff;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// wirelint — an HTTP traffic linter: finds where HTTP/1.x servers and clients break the
/// specs, from saved captures or live traffic.
#[derive(Debug, Parser)]
#[command(name = "wirelint", version, about, long_about = None)]
pub struct Cli {
    /// When to colour the output: `auto` on a terminal unless NO_COLOR is set (non-empty).
    #[arg(long, value_enum, value_name = "WHEN", global = true,
          default_value_t = ColorChoice::Auto, display_order = 100)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`: whether to add ANSI colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always, even into a pipe or with NO_COLOR set.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether output to a stream (a terminal when `terminal`) gets colours, reading
    /// NO_COLOR from the environment (<https://no-color.org>).
    pub fn enabled(self, terminal: bool) -> bool {
        self.resolve(terminal, std::env::var_os("NO_COLOR").as_deref())
    }

    /// [`ColorChoice::enabled`] with the environment given: NO_COLOR counts when present
    /// and not empty, whatever its value.
    pub fn resolve(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
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
    /// Configuration file [default: ./wirelint.toml when present].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Extra folder of rule files (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Run only these rule ids or categories (comma-separated or repeated).
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub select: Vec<String>,
    /// Do not run these rule ids or categories (comma-separated or repeated).
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SniffFormat {
    /// One line per finding: time, severity, rule, message, exchange.
    Text,
    /// One JSON object per finding, with its exchange and related exchanges.
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
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
    /// Bytes kept of each packet (at least 64).
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
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = SniffFormat::Text)]
    pub format: SniffFormat,
    /// Log format on stderr (`RUST_LOG` sets the level, default info).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub rule_options: RuleOptions,
    #[command(flatten)]
    pub tls: tls::TlsOptions,
    /// Worker threads that parse and check traffic [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub workers: usize,
    /// Memory budget of the whole process, e.g. 256MiB or 1G: connections (reassembly,
    /// parsers, pending requests) get 1/2 of it, IP fragments 1/8, the stateful rules'
    /// tables 1/8; past their share the least recently seen connections are evicted and
    /// counted [default: `memory_budget` in wirelint.toml, else 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub memory_budget: Option<usize>,
    /// Content bytes kept per message for the rules, e.g. 512k or 4m (sizes and JSON
    /// validity still cover the whole content) [default: `body_cap` in wirelint.toml, else
    /// 256k].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub body_cap: Option<usize>,
    /// Bytes of packets the database keeps for the dashboard's pcap download and bytes
    /// view: the packets of connections that got a finding, secrets masked, all runs
    /// together; past it the oldest connections' packets are deleted and counted. Up to a
    /// quarter of it (at most 16MiB) is held in memory for connections not yet flagged.
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size,
          default_value = "64MiB", conflicts_with = "no_packet_store")]
    pub packet_store: usize,
    /// Keep no packets (the dashboard then offers no pcap of live connections).
    #[arg(long)]
    pub no_packet_store: bool,
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
    /// A table: name, flags, addresses.
    Text,
    /// A JSON array of interfaces.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct InterfacesArgs {
    /// How the list is printed.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = InterfacesFormat::Text)]
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
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindingFormat {
    /// Findings grouped by rule (a few samples each, then a count), then totals.
    Text,
    /// One JSON document: the findings and a summary with the totals.
    Json,
    /// One JSON object per finding, with its exchange and related exchanges.
    Jsonl,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Fail on errors.
    Error,
    /// Fail on warnings and errors.
    Warning,
    /// Fail on any finding.
    Info,
    /// Never fail because of findings.
    Never,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng; several are one capture, merged in time order), or
    /// HAR files (recognised by content).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// BPF filter (tcpdump syntax) applied to every packet.
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// How findings are printed on stdout.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = FindingFormat::Text)]
    pub format: FindingFormat,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    #[command(flatten)]
    pub rule_options: RuleOptions,
    #[command(flatten)]
    pub tls: tls::TlsOptions,
    /// Worker threads that parse and check traffic [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub workers: usize,
    /// The SQLite database the run (exchanges, findings, counters) is recorded in
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
    /// Memory budget of the whole process, e.g. 256MiB or 1G: connections (reassembly,
    /// parsers, pending requests) get 1/2 of it, IP fragments 1/8, the stateful rules'
    /// tables 1/8; past their share the least recently seen connections are evicted and
    /// counted [default: `memory_budget` in wirelint.toml, else 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub memory_budget: Option<usize>,
    /// Content bytes kept per message for the rules, e.g. 512k or 4m (sizes and JSON
    /// validity still cover the whole content) [default: `body_cap` in wirelint.toml, else
    /// 256k].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub body_cap: Option<usize>,
    /// Do not print the run summary on stderr (warnings about data not analysed still are).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// One line per rule: id, severity, category, summary.
    Text,
    /// A JSON array with each rule's metadata and explanation.
    Json,
    /// The Markdown catalogue (rules/README.md).
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub action: Option<RulesAction>,
    /// How the catalogue is printed.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
    /// Extra folder of rule files (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// Print a rule's full documentation with its examples.
    Explain {
        /// The rule's id, as `wirelint rules` lists them (e.g. created-without-location).
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExchangeFormat {
    /// One line per exchange.
    Text,
    /// One JSON object per exchange (the contract in README.md).
    Jsonl,
    /// HAR 1.2, for other tools (browsers' devtools, HAR viewers, test tools).
    Har,
}

#[derive(Debug, clap::Args)]
pub struct ExchangesArgs {
    /// Capture files (pcap or pcapng; several are one capture, merged in time order), or
    /// HAR files (recognised by content).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// BPF filter (tcpdump syntax) applied to every packet.
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// How exchanges are printed on stdout.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = ExchangeFormat::Text)]
    pub format: ExchangeFormat,
    #[command(flatten)]
    pub tls: tls::TlsOptions,
    /// Worker threads that parse and check traffic [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub workers: usize,
    /// Memory all connections may hold together (reassembly, parsers, pending requests),
    /// e.g. 256MiB or 1G; past it the least recently seen connections are evicted and
    /// counted [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub memory_budget: Option<usize>,
    /// Content bytes kept per message, e.g. 512k or 4m [default: 0: the listing needs
    /// sizes only].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub body_cap: Option<usize>,
    /// Do not print the run summary on stderr (warnings about data not analysed still are).
    #[arg(long, short)]
    pub quiet: bool,
}

/// The reassembly limits of a run: the command line's memory budget, else the
/// configuration's, else the default.
fn reassembly(flag: Option<usize>, config: Option<usize>) -> crate::reassembly::ReassemblyConfig {
    let mut r = crate::reassembly::ReassemblyConfig::default();
    if let Some(b) = flag.or(config) {
        r.memory_budget = b;
    }
    r
}

/// Parses the process's arguments. clap prints help and usage errors before [`Cli`] exists,
/// so `--color` is looked up in the raw arguments first and handed to clap as well.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color = match color_in_args(&args) {
        Some(ColorChoice::Always) => clap::ColorChoice::Always,
        Some(ColorChoice::Never) => clap::ColorChoice::Never,
        // clap's own `auto` already honours NO_COLOR.
        Some(ColorChoice::Auto) | None => clap::ColorChoice::Auto,
    };
    let matches = Cli::command().color(color).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The last `--color WHEN` or `--color=WHEN` before a `--`, if it names a valid choice.
fn color_in_args(args: &[std::ffi::OsString]) -> Option<ColorChoice> {
    let mut found = None;
    let mut words = args.iter().map(|a| a.to_str().unwrap_or(""));
    while let Some(word) = words.next() {
        let value = match word {
            "--" => break,
            "--color" => words.next().unwrap_or(""),
            _ => match word.strip_prefix("--color=") {
                Some(v) => v,
                None => continue,
            },
        };
        if let Ok(choice) = ColorChoice::from_str(value, false) {
            found = Some(choice);
        }
    }
    found
}

/// Exit status: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args, cli.color),
        Command::Exchanges(args) => exchanges::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Sniff(args) => sniff::run(args, cli.color),
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
    fn no_color_turns_auto_off_but_not_always() {
        use std::ffi::OsStr;
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(ColorChoice::Auto.resolve(true, None));
        assert!(!ColorChoice::Auto.resolve(false, None));
        assert!(!ColorChoice::Auto.resolve(true, set));
        assert!(!ColorChoice::Auto.resolve(true, Some(OsStr::new("false"))));
        assert!(
            ColorChoice::Auto.resolve(true, empty),
            "empty NO_COLOR is unset"
        );
        assert!(ColorChoice::Always.resolve(false, set));
        assert!(!ColorChoice::Never.resolve(true, None));
    }

    #[test]
    fn color_is_found_in_the_raw_arguments() {
        let args = |list: &[&str]| -> Vec<std::ffi::OsString> {
            list.iter().map(std::ffi::OsString::from).collect()
        };
        assert_eq!(
            color_in_args(&args(&["wirelint", "rules", "--color", "never", "--help"])),
            Some(ColorChoice::Never)
        );
        assert_eq!(
            color_in_args(&args(&["wirelint", "--color=always", "rules"])),
            Some(ColorChoice::Always)
        );
        assert_eq!(color_in_args(&args(&["wirelint", "rules"])), None);
        assert_eq!(
            color_in_args(&args(&["wirelint", "analyze", "--", "--color", "never"])),
            None
        );
    }

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
