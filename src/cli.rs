//! The command line: arguments, resolved once into a configuration, then a run.
//!
//! Exit codes:
//! - `0`: the scan completed and no finding reached `--fail-on`;
//! - `1`: at least one finding at or above `--fail-on` (default: any finding);
//! - `2`: an error: bad arguments, a policy pack that does not load, an unreadable input, a
//!   rejected event or a rule that failed to evaluate. Findings are still written.

use crate::engine::pack::{self, Mode, PolicySource};
use crate::engine::{Engine, Severity};
use crate::model::aws_ranges::AwsRanges;
use crate::report::{self, Format};
use crate::scan::{self, Progress, ScanOptions};
use crate::source::{self, TimeRange};
use crate::time::Timestamp;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

/// CloudTrail detections as Cedar policies.
#[derive(Debug, Parser)]
#[command(name = "trailcedar", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a policy pack over CloudTrail logs and report flagged events.
    Scan(ScanArgs),
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

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    if s == "never" {
        return Ok(FailOn::Never);
    }
    s.parse::<Severity>()
        .map(FailOn::Severity)
        .map_err(|e| format!("{e}, or never"))
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| format!("{e}: expected YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 512M"))?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `trailcedar scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories of CloudTrail logs (.json, .json.gz, NDJSON; any of CloudTrail's
    /// shapes), or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// A directory of .cedar policies (repeatable). Default: the pack built into trailcedar.
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write findings to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Only events at or after this time (YYYY-MM-DD or an ISO 8601 time, UTC unless it says).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Timestamp>,

    /// Only events before this time; a date alone includes that whole day.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Exit 1 when a finding is at least this severe: info, low, medium, high, critical, or never.
    #[arg(long, value_name = "SEVERITY", default_value = "info", value_parser = parse_fail_on)]
    pub fail_on: FailOn,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Largest input read, after decompression (e.g. 512M); larger ones are reported unreadable.
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    pub max_file_size: u64,

    /// AWS's ip-ranges.json, to replace the embedded table behind `context.sourceInAws`.
    #[arg(long, value_name = "FILE")]
    pub aws_ip_ranges: Option<PathBuf>,

    /// Colour the table.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

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
    match cli.command {
        Command::Scan(args) => match run_scan(&args) {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("trailcedar: {message}");
                ExitCode::from(2)
            }
        },
    }
}

/// Loads the pack named by `--policies`, or the embedded one. Diagnostics go to stderr.
pub fn load_pack(dirs: &[PathBuf]) -> Result<pack::Pack, String> {
    let (sources, origin): (Vec<PolicySource>, String) = if dirs.is_empty() {
        (pack::embedded_sources(), "embedded pack".to_string())
    } else {
        let mut all = Vec::new();
        for d in dirs {
            all.extend(pack::sources_from_dir(d)?);
        }
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        (all, names.join(", "))
    };
    pack::load(sources, &origin).map_err(|errors| {
        let n = errors.0.len();
        for report in errors.0 {
            eprintln!("{report:?}");
        }
        format!("{n} error(s) in the policy pack ({origin})")
    })
}

struct Bar {
    bar: ProgressBar,
    events: AtomicU64,
}

impl Progress for Bar {
    fn input_done(&self, _bytes: u64, events: u64) {
        let total = self.events.fetch_add(events, Ordering::Relaxed) + events;
        self.bar.inc(1);
        self.bar.set_message(format!("{total} events"));
    }
}

fn run_scan(args: &ScanArgs) -> Result<u8, String> {
    let until = match &args.until {
        None => None,
        Some(s) => {
            let t = parse_time(s)?;
            // A bare date includes the whole day.
            Some(if s.len() == 10 { t.plus_days(1) } else { t })
        }
    };
    let range = TimeRange {
        since: args.since,
        until,
    };
    if let (Some(s), Some(u)) = (range.since, range.until)
        && s >= u
    {
        return Err("--since must be before --until".to_string());
    }
    let ranges = match &args.aws_ip_ranges {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            AwsRanges::from_ip_ranges_json(&text, &path.display().to_string())?
        }
        None => AwsRanges::embedded(),
    };
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .map_err(|e| format!("--threads: {e}"))?;
    }
    let pack = load_pack(&args.policies)?;
    let mode = pack.mode;
    let policy_count = pack.detections.len();
    let origin = pack.origin.clone();
    let engine = Engine::new(pack, ranges)?;

    let inputs = source::resolve(&args.paths, &range);
    let stderr_tty = io::stderr().is_terminal();
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            args.output.is_none()
                && io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let mut writer = report::writer(args.format, out, color);

    if !args.quiet {
        let mode = match mode {
            Mode::Detection => "detection mode",
            Mode::AllowList => "allow-list mode",
        };
        eprintln!(
            "trailcedar: {policy_count} polic{} from {origin} ({mode}), {} input(s)",
            if policy_count == 1 { "y" } else { "ies" },
            inputs.inputs.len()
        );
    }
    let bar = Bar {
        bar: if stderr_tty && !args.no_progress && !args.quiet {
            ProgressBar::with_draw_target(
                Some(inputs.inputs.len() as u64),
                ProgressDrawTarget::stderr(),
            )
        } else {
            ProgressBar::hidden()
        },
        events: AtomicU64::new(0),
    };
    bar.bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} inputs, {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let opts = ScanOptions {
        range,
        max_file_size: args.max_file_size,
        ..ScanOptions::default()
    };
    let run = |writer: &mut Box<dyn report::FindingWriter + '_>| {
        let summary = scan::run(&engine, &inputs, &opts, &bar, &mut |r| {
            for f in &r.findings {
                writer.write(f)?;
            }
            Ok(())
        })?;
        writer.finish()?;
        Ok::<_, io::Error>(summary)
    };
    let result = run(&mut writer);
    bar.bar.finish_and_clear();
    let summary = match result {
        Ok(s) => s,
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(0),
        Err(e) => return Err(format!("writing findings: {e}")),
    };
    if !args.quiet {
        eprint!("{}", summary.render());
    }
    if summary.has_errors() {
        return Ok(2);
    }
    let fail = match (args.fail_on, summary.max_severity()) {
        (FailOn::Severity(threshold), Some(max)) => max >= threshold,
        _ => false,
    };
    Ok(u8::from(fail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_thresholds() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("10").unwrap(), 10);
        assert!(parse_size("1T").is_err());
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
