//! `cargo bench --bench scan`: events/s and peak memory of a scan, for the full pipeline and for
//! decoding alone, over a generated corpus of realistic CloudTrail delivery files.
//!
//! Options (after `--`): `--events N` (default 1000000), `--files N` (200), `--threads N`
//! (measured runs use 1 thread and then every core), `--repeat N` (3: each figure is the
//! fastest of N runs, as other load on the machine only ever slows a run down; the runs are
//! made in rounds of one of each, so that a slow spell falls on all alike), `--corpus DIR`
//! (default `target/bench-corpus/...`, generated once and reused).
//!
//! The inventory's cost per event is given three ways: between the fastest runs with and
//! without it; as the median of the rounds' ratios (each round's two runs were made side by
//! side); and file by file, the steadiest: one process scans every file with and without it in
//! turn, `--repeat` passes over the corpus (a slow spell of a shared machine lasts seconds,
//! longer than a file, so it falls on both scans of the file alike).
//!
//! `--against DIR` adds the full scan (one thread) with the pack in DIR to the same rounds, and
//! prints the measured pack's cost per event against it: a pack's detections measured by a pack
//! without them.
//!
//! `--inventory-resources N` (100000) and `--inventory-users N` (10000) size the generated
//! inventory of the `+inv` runs, which join it into every event (`scan --inventory`).
//!
//! Each measurement runs in a child process so that its peak resident memory (VmHWM) is its own.

/// The corpus generator: benchmark tooling, not part of the library. (Its tests run in the
/// integration tests' binary, which includes it too; a bench without the test harness compiles
/// them without running them.)
#[path = "support/corpus.rs"]
#[allow(dead_code, unused_imports)]
mod corpus;

/// A large pack of generated detections beside the embedded ones (`--large-pack N`).
#[path = "support/large_pack.rs"]
mod large_pack;

use corpus::CorpusSpec;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use trailcedar::engine::Engine;
use trailcedar::engine::pack;
use trailcedar::inventory::Inventory;
use trailcedar::model::aws_ranges::AwsRanges;
use trailcedar::scan::{self, ScanOptions};
use trailcedar::source::{self, TimeRange};

/// mimalloc: Cedar's evaluation and the entity stores allocate and free many small objects per
/// event, which glibc's allocator serves markedly slower once the heap holds a loaded inventory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// `--pack DIR`: the pack to scan with instead of the embedded one (given to the children too).
static PACK: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// The engine of the embedded pack, or of the `--pack` directory.
fn embedded_engine() -> Engine {
    let sources = match PACK.get().and_then(Option::as_ref) {
        Some(dir) => pack::sources_from_dir(dir).expect("--pack reads"),
        None => pack::embedded_sources(),
    };
    let pack = pack::load(sources, "bench").expect("the pack loads");
    Engine::new(pack, AwsRanges::embedded()).expect("index")
}

/// The CPU seconds this process has used, user and system, every thread (`/proc/self/stat`,
/// Linux only; in clock ticks of 1/100 s).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (in parentheses, which may hold spaces).
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs this benchmark again as a child process with `args`: its standard output.
fn run_child(args: &[&str]) -> String {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe).args(args).output().expect("child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The measured run, in the child process: prints `events seconds peak_mb findings bytes
/// inventory_load_seconds`.
fn child(mode: &str, dir: &Path, threads: usize, inventory: Option<&Path>) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("thread pool");
    let start = Instant::now();
    let mut engine = embedded_engine();
    let mut load_secs = 0.0;
    if let Some(inv) = inventory {
        let t = Instant::now();
        let inventory = Inventory::load(&[inv.to_path_buf()], None).expect("inventory loads");
        load_secs = t.elapsed().as_secs_f64();
        engine = engine.with_inventory(std::sync::Arc::new(inventory));
    }
    let inputs = source::resolve(&[dir.to_path_buf()], &TimeRange::default());
    let opts = ScanOptions {
        evaluate: mode == "full",
        ..ScanOptions::default()
    };
    let mut findings = 0usize;
    let summary = scan::run(&engine, &inputs, &opts, &(), &mut |_| {
        findings += 1;
        Ok(())
    })
    .expect("scan");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        summary.balanced() && !summary.has_errors(),
        "{}",
        summary.render()
    );
    println!(
        "{} {secs} {} {findings} {} {load_secs} {}",
        summary.events_read,
        peak_rss_mb(),
        summary.bytes_read,
        cpu_secs()
    );
}

/// The inventory's cost measured file by file, in the child process: on one thread, every
/// input is scanned by the engine without the inventory and by the engine with it, one right
/// after the other (in alternating order), `passes` times over the corpus. A slow spell of the
/// machine lasts longer than one file, so it falls on both scans of a file alike: the ratio
/// of the two sums is much steadier than that of two whole runs made seconds apart. Prints
/// `events seconds_without seconds_with median_file_ratio`.
fn paired_child(dir: &Path, inventory: &Path, passes: usize) {
    let inventory = Inventory::load(&[inventory.to_path_buf()], None).expect("inventory loads");
    let engines = [
        embedded_engine(),
        embedded_engine().with_inventory(std::sync::Arc::new(inventory)),
    ];
    let inputs = source::resolve(&[dir.to_path_buf()], &TimeRange::default());
    let opts = ScanOptions::default();
    let (mut secs, mut events, mut ratios) = ([0.0f64; 2], [0u64; 2], Vec::new());
    for pass in 0..passes.max(1) {
        for (i, input) in inputs.inputs.iter().enumerate() {
            let order = if (i + pass) % 2 == 0 { [0, 1] } else { [1, 0] };
            // Read once untimed, so that neither scan is the one that brings the file into
            // the page cache (which would make the order count, not the inventory).
            if let source::Input::File(path) = input {
                let _ = std::fs::read(path);
            }
            let mut file = [0.0f64; 2];
            for k in order {
                let start = Instant::now();
                let report = scan::scan_file(&engines[k], input, &opts);
                file[k] = start.elapsed().as_secs_f64();
                let s = &report.summary;
                assert!(s.balanced() && !s.has_errors(), "{}", s.render());
                events[k] += s.events_read;
            }
            secs[0] += file[0];
            secs[1] += file[1];
            ratios.push(file[1] / file[0]);
        }
    }
    assert_eq!(events[0], events[1], "both engines read the same events");
    ratios.sort_by(f64::total_cmp);
    println!(
        "{} {} {} {}",
        events[0],
        secs[0],
        secs[1],
        ratios[ratios.len() / 2]
    );
}

#[derive(Clone)]
struct Run {
    label: String,
    events: u64,
    secs: f64,
    peak_mb: f64,
    findings: u64,
    bytes: u64,
    load_secs: f64,
    /// CPU seconds of the whole process (loading included).
    cpu_secs: f64,
}

/// One configuration of a run: mode, threads, inventory.
/// A configuration: the mode, threads, the inventory, and another pack than the one measured
/// (`--against`).
type Config<'a> = (&'a str, usize, Option<&'a Path>, Option<&'a Path>);

/// Each configuration run `repeat` times, interleaved (one of each per round, so that a slow
/// spell of the machine falls on all of them alike): per configuration, the runs in round order.
fn rounds(repeat: usize, dir: &Path, configs: &[Config]) -> Vec<Vec<Run>> {
    let mut out: Vec<Vec<Run>> = configs.iter().map(|_| Vec::new()).collect();
    for _ in 0..repeat.max(1) {
        for (runs, &(mode, threads, inv, other)) in out.iter_mut().zip(configs) {
            runs.push(measure(mode, dir, threads, inv, other));
        }
    }
    out
}

/// The fastest of the runs of a configuration (with the largest peak memory among them).
fn best(runs: &[Run]) -> Run {
    let peak = runs.iter().map(|r| r.peak_mb).fold(0.0, f64::max);
    let mut best = runs
        .iter()
        .min_by(|a, b| a.secs.total_cmp(&b.secs))
        .expect("one run")
        .clone();
    best.peak_mb = peak;
    best
}

/// Seconds of scanning per event: an inventory's load time is not scan time.
fn per_event(r: &Run) -> f64 {
    (r.secs - r.load_secs) / r.events as f64
}

fn measure(
    mode: &str,
    dir: &Path,
    threads: usize,
    inv: Option<&Path>,
    other: Option<&Path>,
) -> Run {
    let (threads_arg, inv_arg) = (
        threads.to_string(),
        inv.map(|p| p.to_str().expect("utf-8 path")),
    );
    let mut args = vec![
        "--child",
        mode,
        dir.to_str().expect("utf-8 path"),
        "--threads",
        &threads_arg,
    ];
    if let Some(inv) = inv_arg {
        args.extend(["--with-inventory", inv]);
    }
    let pack = other
        .or(PACK.get().and_then(Option::as_ref).map(PathBuf::as_path))
        .map(|p| p.to_str().expect("utf-8 path"));
    if let Some(pack) = pack {
        args.extend(["--pack", pack]);
    }
    let text = run_child(&args);
    let f: Vec<&str> = text.split_whitespace().collect();
    Run {
        label: format!(
            "{:<8} {threads} thread{}",
            if other.is_some() {
                format!("{mode}/vs")
            } else if inv.is_some() {
                format!("{mode}+inv")
            } else {
                mode.to_string()
            },
            if threads == 1 { "" } else { "s" }
        ),
        events: f[0].parse().expect("events"),
        secs: f[1].parse().expect("secs"),
        peak_mb: f[2].parse().expect("peak"),
        findings: f[3].parse().expect("findings"),
        bytes: f[4].parse().expect("bytes"),
        load_secs: f[5].parse().expect("load seconds"),
        cpu_secs: f[6].parse().expect("cpu seconds"),
    }
}

/// What [`paired_child`] measured.
struct Paired {
    without: f64,
    with: f64,
    median_file: f64,
}

fn paired_run(dir: &Path, inv: &Path, passes: usize) -> Paired {
    let text = run_child(&[
        "--paired-child",
        dir.to_str().expect("utf-8 path"),
        "--with-inventory",
        inv.to_str().expect("utf-8 path"),
        "--passes",
        &passes.to_string(),
    ]);
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse().expect("a number"))
        .collect();
    Paired {
        without: f[1],
        with: f[2],
        median_file: f[3],
    }
}

/// The inventory's cost per event, three ways (fastest runs, median of rounds, file by file).
/// The measured pack's cost per event against `--against`'s, one thread: the fastest runs'
/// ratio and the median of the rounds' (each round's two runs made side by side).
fn pack_cost(all: &[Vec<Run>], other: &Path) {
    let (Some(ours), Some(theirs)) = (all.get(1), all.last()) else {
        return;
    };
    let mut paired: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| 100.0 * per_event(a) / per_event(b) - 100.0)
        .collect();
    paired.sort_by(f64::total_cmp);
    let median = paired[paired.len() / 2];
    let fastest = |runs: &[Run]| runs.iter().map(per_event).fold(f64::INFINITY, f64::min);
    println!(
        "against {}: one thread, {:+.1}% per event (fastest runs), {median:+.1}% (median of {} rounds: {})",
        other.display(),
        100.0 * fastest(ours) / fastest(theirs) - 100.0,
        paired.len(),
        paired
            .iter()
            .map(|p| format!("{p:+.1}%"))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn inventory_cost(
    all: &[Vec<Run>],
    runs: &[Run],
    dir: &Path,
    inv_dir: &Path,
    repeat: usize,
    (resources, users): (u64, u64),
) {
    // The inventory's cost per event, round by round: the scans with and without it ran side
    // by side, so their ratio is steadier than that of two fastest runs.
    let mut paired: Vec<f64> = all[1]
        .iter()
        .zip(&all[2])
        .map(|(full, inv)| 100.0 * per_event(inv) / per_event(full) - 100.0)
        .collect();
    paired.sort_by(f64::total_cmp);
    let median = paired[paired.len() / 2];
    let full = &runs[1];
    let inv = &runs[2];
    // The inventory is loaded before the scan starts: its load time is not scan time.
    println!(
        "inventory ({resources} tagged resources, {users} users): loaded in {:.2} s; one thread: {:.0} events/s scanning with it, {:+.1}% per event against the scan without it (fastest runs), {median:+.1}% (median of {} rounds: {})",
        inv.load_secs,
        1.0 / per_event(inv),
        100.0 * per_event(inv) / per_event(full) - 100.0,
        paired.len(),
        paired
            .iter()
            .map(|p| format!("{p:+.1}%"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // The steadier figure: each file scanned with and without the inventory in turn.
    let paired = paired_run(dir, inv_dir, repeat);
    println!(
        "inventory, file by file ({} passes over the corpus, one thread; each file scanned without and with it, one right after the other): {:+.1}% per event ({:.2} s against {:.2} s), {:+.1}% for the median file",
        repeat.max(1),
        100.0 * paired.with / paired.without - 100.0,
        paired.with,
        paired.without,
        100.0 * paired.median_file - 100.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut pack = arg(&args, "--pack").map(PathBuf::from);
    // `--large-pack N`: the embedded pack and N generated detections (half of them unscoped).
    if let Some(n) = arg(&args, "--large-pack").and_then(|n| n.parse::<usize>().ok()) {
        let dir = PathBuf::from(format!("target/bench-pack-large-{n}"));
        let total = large_pack::write_large_pack(&dir, n).expect("large pack written");
        eprintln!("pack: {total} detections under {}", dir.display());
        pack = Some(dir);
    }
    let _ = PACK.set(pack);
    if let Some(dir) = arg(&args, "--paired-child") {
        let inv = arg(&args, "--with-inventory").expect("--with-inventory");
        let passes = arg(&args, "--passes")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        return paired_child(Path::new(&dir), Path::new(&inv), passes);
    }
    if let Some(mode) = arg(&args, "--child") {
        let dir = PathBuf::from(
            args.get(args.iter().position(|a| a == "--child").expect("--child") + 2)
                .expect("dir"),
        );
        let threads = arg(&args, "--threads")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1);
        let inv = arg(&args, "--with-inventory").map(PathBuf::from);
        return child(&mode, &dir, threads, inv.as_deref());
    }
    let events: u64 = arg(&args, "--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let files: u64 = arg(&args, "--files")
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let fresh: u64 = arg(&args, "--fresh")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let spec = CorpusSpec {
        events,
        files,
        fresh,
        ..CorpusSpec::default()
    };
    let variant = if fresh > 0 {
        format!("-fresh{fresh}")
    } else {
        String::new()
    };
    let dir = arg(&args, "--corpus")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(format!(
                "target/bench-corpus/{events}-{files}-{}-v{}{variant}",
                spec.seed,
                corpus::GENERATOR_VERSION
            ))
        });
    let marker = dir.join(".complete");
    if !marker.exists() {
        eprintln!(
            "generating {events} events in {files} files under {} ...",
            dir.display()
        );
        let _ = std::fs::remove_dir_all(&dir);
        let t = Instant::now();
        let bytes = corpus::write_corpus(&dir, &spec).expect("corpus written");
        std::fs::write(&marker, "").expect("marker");
        eprintln!(
            "  {:.0} MB of JSON in {:.1} s",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    let resources: u64 = arg(&args, "--inventory-resources")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let users: u64 = arg(&args, "--inventory-users")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let inv_dir = dir.with_file_name(format!(
        "{}-inventory-{resources}-{users}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("corpus")
    ));
    let inv_marker = inv_dir.join(".complete");
    if !inv_marker.exists() {
        let _ = std::fs::remove_dir_all(&inv_dir);
        let bytes =
            corpus::write_inventory(&inv_dir, &spec, resources, users).expect("inventory written");
        std::fs::write(&inv_marker, "").expect("marker");
        eprintln!(
            "  inventory: {resources} tagged resources, {users} users, {:.0} MB under {}",
            bytes as f64 / 1e6,
            inv_dir.display()
        );
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads: usize = arg(&args, "--threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or(cores);
    let repeat: usize = arg(&args, "--repeat")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // `--no-inventory`: only the scans without it (faster, for other corpora and packs).
    let with_inventory = !args.iter().any(|a| a == "--no-inventory");
    let mut configs: Vec<Config> = vec![("decode", 1, None, None), ("full", 1, None, None)];
    if with_inventory {
        configs.push(("full", 1, Some(&inv_dir), None));
    }
    if threads > 1 {
        configs.push(("decode", threads, None, None));
        configs.push(("full", threads, None, None));
        if with_inventory {
            configs.push(("full", threads, Some(&inv_dir), None));
        }
    }
    // `--against DIR`: the full scan with another pack too, in the same rounds (one thread):
    // what the measured pack costs against it (a pack without some detections, say).
    let against = arg(&args, "--against").map(PathBuf::from);
    if let Some(other) = &against {
        configs.push(("full", 1, None, Some(other)));
    }
    let all = rounds(repeat, &dir, &configs);
    let runs: Vec<Run> = all.iter().map(|r| best(r)).collect();
    println!(
        "corpus: {} ({events} events, {files} files); best of {repeat} runs each",
        dir.display()
    );
    println!(
        "{:<16} {:>10} {:>9} {:>12} {:>8} {:>14} {:>10} {:>9} {:>9}",
        "run",
        "events",
        "seconds",
        "events/s",
        "cpu s",
        "events/cpu s",
        "MB/s json",
        "peak MB",
        "findings"
    );
    // Seconds of scanning: an inventory's load time is reported on its own line. CPU seconds
    // are the whole process's, the pack's and the inventory's loading included.
    for r in &runs {
        let secs = r.secs - r.load_secs;
        println!(
            "{:<16} {:>10} {:>9.2} {:>12.0} {:>8.2} {:>14.0} {:>10.0} {:>9.1} {:>9}",
            r.label,
            r.events,
            secs,
            r.events as f64 / secs,
            r.cpu_secs,
            r.events as f64 / r.cpu_secs,
            r.bytes as f64 / 1e6 / secs,
            r.peak_mb,
            r.findings
        );
    }
    let decode = &runs[0];
    let full = &runs[1];
    if let Some(other) = &against {
        pack_cost(&all, other);
    }
    if with_inventory {
        inventory_cost(&all, &runs, &dir, &inv_dir, repeat, (resources, users));
    }
    println!(
        "one thread: the full scan runs at {:.0}% of the decode-only rate ({:.2} us/event evaluating, {:.2} us/event decoding)",
        100.0 * (full.events as f64 / full.secs) / (decode.events as f64 / decode.secs),
        (full.secs - decode.secs) * 1e6 / full.events as f64,
        decode.secs * 1e6 / decode.events as f64
    );
}
