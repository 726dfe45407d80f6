//! `cargo bench --bench scan`: events/s and peak memory of a scan, for the full pipeline and for
//! decoding alone, over a generated corpus of realistic CloudTrail delivery files.
//!
//! Options (after `--`): `--events N` (default 1000000), `--files N` (200), `--threads N`
//! (measured runs use 1 thread and then every core), `--repeat N` (3: each figure is the
//! fastest of N runs, as other load on the machine only ever slows a run down), `--corpus DIR`
//! (default `target/bench-corpus/...`, generated once and reused).
//!
//! Each measurement runs in a child process so that its peak resident memory (VmHWM) is its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use trailcedar::corpus::{self, CorpusSpec};
use trailcedar::engine::Engine;
use trailcedar::engine::pack;
use trailcedar::model::aws_ranges::AwsRanges;
use trailcedar::scan::{self, ScanOptions};
use trailcedar::source::{self, TimeRange};

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

/// The measured run, in the child process: prints `events seconds peak_mb findings`.
fn child(mode: &str, dir: &Path, threads: usize) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("thread pool");
    let start = Instant::now();
    let pack = pack::load(pack::embedded_sources(), "embedded").expect("the embedded pack loads");
    let engine = Engine::new(pack, AwsRanges::embedded()).expect("index");
    let inputs = source::resolve(&[dir.to_path_buf()], &TimeRange::default());
    let opts = ScanOptions {
        evaluate: mode == "full",
        ..ScanOptions::default()
    };
    let mut findings = 0usize;
    let summary = scan::run(&engine, &inputs, &opts, &(), &mut |r| {
        findings += r.findings.len();
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
        "{} {secs} {} {findings} {}",
        summary.events_read,
        peak_rss_mb(),
        summary.bytes_read
    );
}

struct Run {
    label: String,
    events: u64,
    secs: f64,
    peak_mb: f64,
    findings: u64,
    bytes: u64,
}

/// The fastest of `repeat` runs (the largest peak memory among them).
fn best_of(repeat: usize, mode: &str, dir: &Path, threads: usize) -> Run {
    let runs: Vec<Run> = (0..repeat.max(1))
        .map(|_| measure(mode, dir, threads))
        .collect();
    let peak = runs.iter().map(|r| r.peak_mb).fold(0.0, f64::max);
    let mut best = runs
        .into_iter()
        .min_by(|a, b| a.secs.total_cmp(&b.secs))
        .expect("one run");
    best.peak_mb = peak;
    best
}

fn measure(mode: &str, dir: &Path, threads: usize) -> Run {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args([
            "--child",
            mode,
            dir.to_str().expect("utf-8 path"),
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    Run {
        label: format!(
            "{mode:<6} {threads} thread{}",
            if threads == 1 { "" } else { "s" }
        ),
        events: f[0].parse().expect("events"),
        secs: f[1].parse().expect("secs"),
        peak_mb: f[2].parse().expect("peak"),
        findings: f[3].parse().expect("findings"),
        bytes: f[4].parse().expect("bytes"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = arg(&args, "--child") {
        let dir = PathBuf::from(
            args.get(args.iter().position(|a| a == "--child").expect("--child") + 2)
                .expect("dir"),
        );
        let threads = arg(&args, "--threads")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1);
        return child(&mode, &dir, threads);
    }
    let events: u64 = arg(&args, "--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let files: u64 = arg(&args, "--files")
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let spec = CorpusSpec {
        events,
        files,
        ..CorpusSpec::default()
    };
    let dir = arg(&args, "--corpus")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(format!(
                "target/bench-corpus/{events}-{files}-{}-v{}",
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
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads: usize = arg(&args, "--threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or(cores);
    let repeat: usize = arg(&args, "--repeat")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut runs = vec![
        best_of(repeat, "decode", &dir, 1),
        best_of(repeat, "full", &dir, 1),
    ];
    if threads > 1 {
        runs.push(best_of(repeat, "decode", &dir, threads));
        runs.push(best_of(repeat, "full", &dir, threads));
    }
    println!(
        "corpus: {} ({events} events, {files} files); best of {repeat} runs each",
        dir.display()
    );
    println!(
        "{:<16} {:>10} {:>9} {:>12} {:>10} {:>9} {:>9}",
        "run", "events", "seconds", "events/s", "MB/s json", "peak MB", "findings"
    );
    for r in &runs {
        println!(
            "{:<16} {:>10} {:>9.2} {:>12.0} {:>10.0} {:>9.1} {:>9}",
            r.label,
            r.events,
            r.secs,
            r.events as f64 / r.secs,
            r.bytes as f64 / 1e6 / r.secs,
            r.peak_mb,
            r.findings
        );
    }
    let decode = &runs[0];
    let full = &runs[1];
    println!(
        "one thread: the full scan runs at {:.0}% of the decode-only rate ({:.2} us/event evaluating, {:.2} us/event decoding)",
        100.0 * (full.events as f64 / full.secs) / (decode.events as f64 / decode.secs),
        (full.secs - decode.secs) * 1e6 / full.events as f64,
        decode.secs * 1e6 / decode.events as f64
    );
}
