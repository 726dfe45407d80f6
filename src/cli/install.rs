//! `trailcedar completions SHELL` and `trailcedar man [COMMAND]`: what an installed tool
//! brings, generated from the same clap definitions as the parser, so they never drift.

use super::Cli;
use clap::CommandFactory;
use std::io::{self, Write};

/// `trailcedar completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `trailcedar man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// A command's own page (`trailcedar-scan(1)`); without it, trailcedar(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Prints the completion script of a shell.
pub fn completions(args: &CompletionsArgs) -> Result<u8, String> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "trailcedar", &mut out);
    write_out(&out)
}

/// Prints a man page (roff): `trailcedar man | man -l -`, or into `man1/` when packaging.
pub fn man(args: &ManArgs) -> Result<u8, String> {
    let mut cmd = Cli::command();
    cmd.build();
    let man = match &args.command {
        None => clap_mangen::Man::new(cmd),
        Some(name) => {
            let sub = cmd
                .find_subcommand(name)
                .ok_or_else(|| format!("no command {name:?}: see trailcedar --help"))?
                .clone()
                .display_name(format!("trailcedar-{name}"))
                .bin_name(format!("trailcedar {name}"));
            clap_mangen::Man::new(sub).title(format!("trailcedar-{name}"))
        }
    };
    let man = man.source(format!("trailcedar {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render(&mut out).map_err(|e| e.to_string())?;
    write_out(&out)
}

fn write_out(bytes: &[u8]) -> Result<u8, String> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(format!("writing to standard output: {e}")),
    }
}
