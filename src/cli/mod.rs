//! The command line: arguments, resolved once into a configuration, then a run.
//!
//! Exit codes:
//! - `0`: the scan completed and no finding reached `--fail-on`;
//! - `1`: at least one finding at or above `--fail-on` (default: any finding);
//! - `2`: an error: bad arguments, a policy pack that does not load, an unreadable input, a
//!   rejected event or a rule that failed to evaluate. Findings are still written.

pub mod check;
pub mod explain;
pub mod install;
pub mod list;
pub mod scan;
pub mod schema;
pub mod snapshot;
pub mod test;

use crate::engine::Severity;
use crate::engine::pack::{self, PolicySource};
use crate::inventory::Inventory;
use crate::time::Timestamp;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "trailcedar", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of `scan`'s arguments costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a policy pack over CloudTrail logs and report flagged events.
    Scan(scan::ScanArgs),
    /// Validate a pack against the model's schema and lint its annotations.
    Check(check::CheckArgs),
    /// Run the test cases beside each policy (`x.test.json` for `x.cedar`).
    Test(test::TestArgs),
    /// Render a pack's findings over a corpus as text, and compare them with a snapshot.
    Snapshot(snapshot::SnapshotArgs),
    /// Show the Cedar request an event becomes and how each candidate policy decides it.
    Explain(explain::ExplainArgs),
    /// Print the Cedar schema of the model, with every CloudTrail action.
    Schema(schema::SchemaArgs),
    /// List a pack's detections: severity, ATT&CK technique and tactic, the data they need.
    List(list::ListArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(install::CompletionsArgs),
    /// Print the man page of trailcedar, or of one of its commands.
    Man(install::ManArgs),
}

/// When to colour the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The severity threshold for exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Severity(Severity),
    Never,
}

pub(crate) fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    if s == "never" {
        return Ok(FailOn::Never);
    }
    s.parse::<Severity>()
        .map(FailOn::Severity)
        .map_err(|e| format!("{e}, or never"))
}

pub(crate) fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| format!("{e}: expected YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ"))
}

/// A size such as `512M`: K, M, G and T are binary (KiB, MiB...), as `--max-file-size` always
/// read them.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s)
        .map_err(|e| format!("{s:?}: {e}: expected a size such as 512M"))
}

/// Writes a line on standard error, like `eprintln!`, but a closed or broken standard error
/// (`2>&- `, `2>&1 | head`) is not worth a panic: the exit status still tells.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Snapshot(args) => snapshot::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::List(args) => list::run(&args),
        Command::Completions(args) => install::completions(&args),
        Command::Man(args) => install::man(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            note!(
                "trailcedar: {}",
                crate::report::sanitize::terminal(&message)
            );
            ExitCode::from(2)
        }
    }
}

/// Whether to colour output on standard output.
pub fn use_color(choice: ColorChoice, to_file: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            !to_file && io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Where S3 is, when the environment does not say (`AWS_ENDPOINT_URL`, `AWS_REGION`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct S3Args {
    /// The endpoint of an S3-compatible store for s3:// paths (default: AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// The region of s3:// buckets (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's,
    /// else asked of S3).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,

    /// The AWS CLI profile to read s3:// paths with: access keys, credential_process, or SSO
    /// and assumed roles through the AWS CLI (default: AWS_PROFILE, else `default` when
    /// environment variables hold no access key).
    #[arg(long, value_name = "NAME")]
    pub s3_profile: Option<String>,
}

impl S3Args {
    /// The options of the S3 client.
    pub fn options(&self) -> crate::source::s3::S3Options {
        crate::source::s3::S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            credentials: None,
            profile: self.s3_profile.clone(),
        }
    }
}

/// `--inventory` and `--inventory-time`, shared by the commands that evaluate events.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InventoryArgs {
    /// Inventory facts to join into the entities: AWS CLI output (tags, IAM, credential report,
    /// access keys, EC2, NAT gateways, VPC endpoints, Elastic IPs, organization accounts) or
    /// Cedar entities JSON; a file or a directory of them (repeatable).
    #[arg(long, value_name = "FILE_OR_DIR")]
    pub inventory: Vec<PathBuf>,

    /// The snapshot time of inventory files that do not record one (default: each file's
    /// modification time).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub inventory_time: Option<Timestamp>,
}

impl InventoryArgs {
    /// Loads the inventory (empty without `--inventory`); with `describe`, one line per file and
    /// every conflict on stderr.
    pub fn load(&self, describe: bool) -> Result<Arc<Inventory>, String> {
        self.load_from(describe, &crate::source::s3::S3Options::default())
    }

    /// Loads the inventory as [`InventoryArgs::load`] does, with `s3://` paths read through
    /// the given S3 options.
    pub fn load_from(
        &self,
        describe: bool,
        s3: &crate::source::s3::S3Options,
    ) -> Result<Arc<Inventory>, String> {
        if self.inventory.is_empty() {
            return Ok(Arc::new(Inventory::default()));
        }
        let inventory =
            Inventory::load_with(&self.inventory, self.inventory_time, s3).map_err(|e| {
                let n = e.0.len();
                for line in &e.0 {
                    note!("inventory: {}", crate::report::sanitize::terminal(line));
                }
                format!("{n} unreadable inventory file(s); nothing was scanned")
            })?;
        if describe {
            for line in inventory.describe() {
                note!("inventory: {}", crate::report::sanitize::terminal(&line));
            }
            for c in &inventory.conflicts {
                note!(
                    "inventory: conflict: {}",
                    crate::report::sanitize::terminal(c)
                );
            }
        }
        Ok(Arc::new(inventory))
    }
}

/// The sources of the packs in `dirs`, or of the embedded pack when there are none.
pub fn pack_sources(dirs: &[PathBuf]) -> Result<(Vec<PolicySource>, String), String> {
    if dirs.is_empty() {
        return Ok((pack::embedded_sources(), "embedded pack".to_string()));
    }
    let mut all = Vec::new();
    for d in dirs {
        all.extend(pack::sources_from_dir(d)?);
    }
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Ok((all, names.join(", ")))
}

/// The pack directory `check` and `test` use without `-p`.
pub const AUTHORING_DIR: &str = "policies";

/// The packs an authoring command (`check`, `test`) works on: `-p`, else `./policies` when it
/// exists, else none (the embedded pack). `scan`, `explain` and `snapshot` use the embedded
/// pack without `-p`, wherever they run.
pub fn authoring_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    if dirs.is_empty() && std::path::Path::new(AUTHORING_DIR).is_dir() {
        vec![PathBuf::from(AUTHORING_DIR)]
    } else {
        dirs.to_vec()
    }
}

/// Prints a pack's diagnostics on stderr.
pub fn print_reports<'r>(reports: impl IntoIterator<Item = &'r miette::Report>) {
    for report in reports {
        note!("{report:?}");
    }
}

/// Loads the pack named by `--policies`, or the embedded one. Diagnostics, warnings included,
/// go to stderr.
pub fn load_pack(dirs: &[PathBuf]) -> Result<pack::Pack, String> {
    let (sources, origin) = pack_sources(dirs)?;
    let options = pack::LoadOptions {
        prevalidated: dirs.is_empty(),
        ..Default::default()
    };
    match pack::load_with(sources, &origin, options) {
        Ok(pack) => {
            print_reports(pack.warnings.iter().map(|w| w.as_ref()));
            Ok(pack)
        }
        Err(e) => {
            print_reports(e.errors.iter().chain(&e.warnings));
            Err(format!(
                "{} error(s) in the policy pack ({origin})",
                e.errors.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_thresholds() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert!(parse_size("1X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999G").is_err());
        assert_eq!(
            parse_fail_on("high").unwrap(),
            FailOn::Severity(Severity::High)
        );
        assert_eq!(parse_fail_on("never").unwrap(), FailOn::Never);
        assert!(parse_fail_on("loud").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
