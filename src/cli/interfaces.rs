//! `wirelint interfaces`: what `sniff -i` can capture on.

use std::io::Write;
use std::process::ExitCode;

use super::{InterfacesArgs, InterfacesFormat};
use crate::capture::live::interfaces;

pub fn run(args: InterfacesArgs) -> anyhow::Result<ExitCode> {
    let list = interfaces()?;
    let mut out = std::io::stdout().lock();
    match args.format {
        InterfacesFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        InterfacesFormat::Text => {
            let width = list.iter().map(|i| i.name.len()).max().unwrap_or(4).max(4);
            writeln!(out, "{:<width$}  {:<24}  addresses", "name", "flags")?;
            for i in &list {
                let mut flags = Vec::new();
                for (on, name) in [
                    (i.up, "up"),
                    (i.running, "running"),
                    (i.loopback, "loopback"),
                    (i.wireless, "wireless"),
                ] {
                    if on {
                        flags.push(name);
                    }
                }
                let mut last: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
                if let Some(d) = &i.description {
                    last.push(format!("({d})"));
                }
                let line = format!(
                    "{:<width$}  {:<24}  {}",
                    i.name,
                    flags.join(","),
                    last.join(" ")
                );
                writeln!(out, "{}", line.trim_end())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
