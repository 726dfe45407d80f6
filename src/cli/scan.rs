//! `trailcedar scan`: evaluate a pack over CloudTrail logs and report flagged events.

use super::{ColorChoice, FailOn, load_pack, note, parse_fail_on, parse_size, parse_time};
use crate::engine::Engine;
use crate::engine::pack::Mode;
use crate::model::aws_ranges::AwsRanges;
use crate::report;
use crate::report::Format;
use crate::scan::{self, Progress, ScanOptions};
use crate::source::{self, TimeRange};
use crate::time::Timestamp;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// `trailcedar scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories of CloudTrail logs (.json, .json.gz, NDJSON; any of CloudTrail's
    /// shapes), `s3://bucket/prefix/`, or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub s3: super::S3Args,

    /// Scan only part K of N of the inputs (1/4 to 4/4), dealt out by account and region, for
    /// N workers over one archive.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::source::shard::Shard>,

    /// With --shard: keep an account's files together per region (the default), or across
    /// every region (for detections over a principal's activity in several regions).
    #[arg(long, value_enum, default_value_t, requires = "shard")]
    pub shard_by: crate::source::shard::ShardBy,

    /// A directory of .cedar policies (repeatable). Default: the pack built into trailcedar.
    /// With --where, only the pack's actions.txt is used.
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,

    /// Instead of a pack, list the events for which this Cedar condition holds, in time order
    /// (an investigation query over the same model: `principal.accessKeyId == "AKIA..."`).
    #[arg(long = "where", value_name = "CONDITION")]
    pub where_: Option<String>,

    /// With --where: the most matches held for sorting.
    #[arg(long, value_name = "N", default_value_t = 100_000, requires = "where_")]
    pub limit: usize,

    /// Output format. Default: from the extension of --output (`.json`, `.jsonl`, `.ndjson`,
    /// `.csv`), else the table.
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,

    /// With json, jsonl or ocsf: each finding carries the event as it was read.
    #[arg(long)]
    pub raw: bool,

    /// Write findings to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The order of findings: as read (file by file, record by record), or by event time across
    /// every file (sorted in bounded memory, spilling to temporary files). --where is always in
    /// time order.
    #[arg(long, value_enum, default_value_t = Order::Input)]
    pub sort: Order,

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

    #[command(flatten)]
    pub inventory: super::InventoryArgs,

    /// Correlations: how much later than the latest event time seen a match may come and still
    /// be taken in time order (CloudTrail delivers within about 15 minutes). Later matches
    /// are counted in the summary, and applied when their window is still open.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_lateness)]
    pub lateness: i64,

    /// Correlations: the most open groups of one correlation; past it the group that would end
    /// first is dropped (or, if it fired, reported early), and the summary counts them.
    #[arg(long, value_name = "N", default_value_t = crate::correlate::MAX_GROUPS)]
    pub max_groups: usize,

    /// Correlations: resume the open windows and sequences saved in FILE by the previous run,
    /// and save this run's there at the end. A file that is not one is an error, never a
    /// fresh start; a missing file is the first run.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

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

fn parse_lateness(s: &str) -> Result<i64, String> {
    crate::engine::correlation::parse_duration(s)
}

/// `--sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// As read.
    Input,
    /// By event time.
    Time,
}

/// The format of `--output FILE` when `-f` does not say: from the file's extension (`.sarif`
/// is SARIF; OCSF is asked for by name).
pub fn format_for(output: Option<&std::path::Path>) -> Format {
    let ext = output
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => Format::Json,
        Some("jsonl" | "ndjson") => Format::Jsonl,
        Some("csv") => Format::Csv,
        Some("sarif") => Format::Sarif,
        _ => Format::Table,
    }
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

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Table => "a table",
        Format::Jsonl => "JSON lines",
        Format::Json => "a JSON array",
        Format::Csv => "CSV",
        Format::Sarif => "SARIF",
        Format::Ocsf => "OCSF Detection Findings",
    }
}

/// A pack of one detection: the `--where` condition. Its diagnostics point into the condition.
/// The `actions.txt` of the packs in `dirs` add to the action catalog, as they do for a pack.
fn query_pack(condition: &str, dirs: &[PathBuf]) -> Result<crate::engine::pack::Pack, String> {
    let text = format!(
        "@id(\"where\")\n@title({})\n@severity(\"info\")\nforbid (principal, action, resource)\nwhen {{\n  {condition}\n}};\n",
        serde_json::to_string(condition).map_err(|e| e.to_string())?
    );
    let source = crate::engine::pack::PolicySource {
        name: "--where".to_string(),
        text: text.into(),
    };
    let options = crate::engine::pack::LoadOptions {
        lenient_optional: true,
        ..Default::default()
    };
    let mut sources = vec![source];
    if !dirs.is_empty() {
        let (pack, _) = super::pack_sources(dirs)?;
        sources.extend(
            pack.into_iter()
                .filter(|s| s.name.ends_with(crate::engine::pack::ACTIONS_FILE)),
        );
    }
    match crate::engine::pack::load_with(sources, "--where", options) {
        Ok(pack) => {
            super::print_reports(pack.warnings.iter().map(|w| w.as_ref()));
            Ok(pack)
        }
        Err(errors) => {
            super::print_reports(errors.errors.iter().chain(&errors.warnings));
            Err(format!(
                "{} error(s) in the --where condition",
                errors.errors.len()
            ))
        }
    }
}

/// Runs a scan; the exit code.
pub fn run(args: &ScanArgs) -> Result<u8, String> {
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
    let pack = match &args.where_ {
        Some(condition) => query_pack(condition, &args.policies)?,
        None => load_pack(&args.policies)?,
    };
    let mode = pack.mode;
    let policy_count = pack.detections.len();
    let suppression_count = pack.suppressions.len();
    let origin = pack.origin.clone();
    let inventory = args.inventory.load_from(!args.quiet, &args.s3.options())?;
    let engine = Engine::new(pack, ranges)?.with_inventory(inventory);
    let correlate = crate::correlate::Options {
        lateness_ms: args.lateness,
        max_groups: args.max_groups.max(1),
        ..crate::correlate::Options::default()
    };
    let resume = match &args.state {
        Some(path) => {
            let probe = crate::correlate::Correlator::new(&engine.pack, correlate);
            crate::correlate::state::load(path, &probe)?
        }
        None => None,
    };

    let mut inputs = source::resolve_with(&args.paths, &range, &args.s3.options());
    if let Some(shard) = args.shard {
        let shard = crate::source::shard::Shard {
            by: args.shard_by,
            ..shard
        };
        shard.apply(&mut inputs);
    }
    let stderr_tty = io::stderr().is_terminal();
    let closed = Arc::new(AtomicBool::new(false));
    let destination: Box<dyn Write> = match &args.output {
        Some(path) => {
            refuse_an_input(path, &inputs)?;
            Box::new(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None if stdout_was_closed() => {
            return Err("standard output is closed (`>&-`): the findings would be lost; write them with -o FILE, or discard them with >/dev/null".to_string());
        }
        None => Box::new(io::stdout().lock()),
    };
    let out: Box<dyn Write> = Box::new(io::BufWriter::new(Output {
        inner: destination,
        closed: closed.clone(),
    }));
    let color = super::use_color(args.color, args.output.is_some());
    let format = args
        .format
        .unwrap_or_else(|| format_for(args.output.as_deref()));
    if args.raw && !matches!(format, Format::Json | Format::Jsonl | Format::Ocsf) {
        return Err(format!(
            "--raw goes with -f json, jsonl or ocsf, not {}",
            format_name(format)
        ));
    }
    let mut writer = if args.where_.is_some() && format == Format::Table {
        report::timeline_writer(out)
    } else {
        report::writer(format, out, color)
    };

    if !args.quiet {
        let mode = match mode {
            Mode::Detection => "detection mode",
            Mode::AllowList => "allow-list mode",
        };
        let suppressions = match suppression_count {
            0 => String::new(),
            1 => " and 1 suppression".to_string(),
            n => format!(" and {n} suppressions"),
        };
        note!(
            "trailcedar: {policy_count} polic{}{suppressions} from {origin} ({mode}), {} input(s)",
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
        // In a query, a value the event lacks makes the condition false, not an error.
        rule_errors_are_false: args.where_.is_some(),
        correlate,
        raw: args.raw,
        ..ScanOptions::default()
    };
    // A query's matches are held and written in time order; a pack's findings stream out, or,
    // with --sort time, go through a sorter that spills to disk beyond a bound.
    let mut matches: Vec<report::Finding> = Vec::new();
    let mut over_limit = false;
    let limit = args.limit;
    let timeline = args.where_.is_some();
    let mut sorter =
        (!timeline && args.sort == Order::Time).then(report::sort::TimeSorter::default);
    let mut written = 0u64;
    let mut saved = None;
    let run = |writer: &mut Box<dyn report::FindingWriter + '_>| {
        let mut emit = |f: report::Finding| {
            written += 1;
            if timeline {
                if matches.len() < limit {
                    matches.push(f);
                } else {
                    over_limit = true;
                }
                return Ok(());
            }
            if let Some(sorter) = sorter.as_mut() {
                return sorter.push(f);
            }
            writer.write(&f)
        };
        let (summary, state) = scan::run_resumed(&engine, &inputs, &opts, &bar, &mut emit, resume)?;
        saved = Some(state);
        matches.sort_by_cached_key(report::sort::TimeKey::of);
        for f in &matches {
            writer.write(f)?;
        }
        if let Some(sorter) = sorter.take() {
            sorter.finish(writer.as_mut())?;
        }
        writer.finish()?;
        Ok::<_, io::Error>(summary)
    };
    let result = run(&mut writer);
    bar.bar.finish_and_clear();
    let mut summary = result.map_err(|e| format!("writing findings: {e}"))?;
    if let (Some(path), Some(state)) = (&args.state, &saved) {
        crate::correlate::state::save(path, state)?;
    } else {
        summary.correlation.saved = 0;
    }
    if !args.quiet {
        let _ = io::stderr().write_all(summary.render().as_bytes());
        if let Some(path) = &args.output {
            let shown = if timeline {
                written.min(limit as u64)
            } else {
                written
            };
            note!(
                "trailcedar: wrote {shown} finding(s) to {} as {}",
                path.display(),
                format_name(format)
            );
        }
    }
    if closed.load(Ordering::Relaxed) {
        note!(
            "trailcedar: the reader closed the output before every finding was written; the scan went on, and the exit status accounts for every input"
        );
    }
    // The process ends here: freeing a large inventory entry by entry only delays the exit.
    std::mem::forget(engine);
    if over_limit {
        note!(
            "trailcedar: more than {limit} events match: only the first {limit} read are listed; narrow the query or the time window, or raise --limit"
        );
        return Ok(2);
    }
    if summary.has_errors() {
        return Ok(2);
    }
    if timeline {
        return Ok(0);
    }
    let fail = match (args.fail_on, summary.max_severity()) {
        (FailOn::Severity(threshold), Some(max)) => max >= threshold,
        _ => false,
    };
    Ok(u8::from(fail))
}

/// Where findings go. A reader that closes its end (`| head`) stops the writing, not the scan:
/// the rest is discarded, the summary still accounts for every input, and the exit status
/// follows the findings and errors of the whole scan, as the README's table says.
struct Output<'w> {
    inner: Box<dyn Write + 'w>,
    closed: Arc<AtomicBool>,
}

impl Output<'_> {
    fn guard(&self, result: io::Result<usize>, len: usize) -> io::Result<usize> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed.store(true, Ordering::Relaxed);
                Ok(len)
            }
            other => other,
        }
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.guard(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let result = self.inner.flush().map(|()| 0);
        self.guard(result, 0).map(|_| ())
    }
}

/// Refuses an output file that is one of the inputs: creating it would empty it before it is
/// read.
fn refuse_an_input(output: &std::path::Path, inputs: &source::Inputs) -> Result<(), String> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in &inputs.inputs {
        if let source::Input::File(path) = input
            && std::fs::metadata(path).is_ok_and(|m| same_file(&out, &m, output, path))
        {
            return Err(format!(
                "-o {}: this file is also an input of the scan ({}); it was not written",
                output.display(),
                path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(
    a: &std::fs::Metadata,
    b: &std::fs::Metadata,
    _: &std::path::Path,
    _: &std::path::Path,
) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(
    _: &std::fs::Metadata,
    _: &std::fs::Metadata,
    a: &std::path::Path,
    b: &std::path::Path,
) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Whether standard output was closed when the process started (`>&-`). The Rust runtime then
/// opens /dev/null in its place, read-write, so that findings would vanish without an error;
/// a shell's `>/dev/null` opens it write-only. Linux only: elsewhere writes are trusted.
fn stdout_was_closed() -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    let null =
        std::fs::read_link("/proc/self/fd/1").is_ok_and(|t| t == std::path::Path::new("/dev/null"));
    null && std::fs::read_to_string("/proc/self/fdinfo/1").is_ok_and(|info| {
        info.lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .is_some_and(|flags| flags & 0o3 == 0o2)
    })
}
