//! Shared helpers: the shipped pack from `policies/`, scans of text and paths, finding rendering.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use trailcedar::engine::Engine;
use trailcedar::engine::pack::{self, PolicySource};
use trailcedar::model::aws_ranges::AwsRanges;
use trailcedar::report::Finding;
use trailcedar::report::summary::Summary;
use trailcedar::scan::{self, ScanOptions};
use trailcedar::source::{self, TimeRange};

/// The shipped pack, loaded from `policies/` so that file names are repository paths.
pub fn shipped() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let sources = pack::sources_from_dir(Path::new("policies")).expect("policies/ loads");
        engine_from(sources)
    })
}

/// The shipped pack with the fixture inventory (`fixtures/inventory`), as the README runs it.
pub fn shipped_with_inventory() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let inventory =
            trailcedar::inventory::Inventory::load(&[PathBuf::from("fixtures/inventory")], None)
                .expect("fixtures/inventory loads");
        let sources = pack::sources_from_dir(Path::new("policies")).expect("policies/ loads");
        engine_from(sources).with_inventory(std::sync::Arc::new(inventory))
    })
}

/// The shipped pack's size: its detections and its `.cedar` files, for messages that count them.
pub fn shipped_size() -> (usize, usize) {
    let files = walkdir::WalkDir::new("policies")
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cedar"))
        .count();
    (shipped().pack.detections.len(), files)
}

/// The shipped pack's test cases: those counted, and the `todo` ones.
pub fn shipped_cases() -> (usize, usize) {
    let (mut counted, mut todo) = (0, 0);
    for entry in walkdir::WalkDir::new("policies")
        .into_iter()
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".test.json") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
        for case in cases["cases"].as_array().unwrap() {
            if case.get("todo").is_some() {
                todo += 1;
            } else {
                counted += 1;
            }
        }
    }
    (counted, todo)
}

/// An engine from policy sources; panics with the diagnostics if they do not load.
pub fn engine_from(sources: Vec<PolicySource>) -> Engine {
    let pack = pack::load(sources, "test").unwrap_or_else(|e| panic!("{e}"));
    Engine::new(pack, AwsRanges::embedded()).expect("index builds")
}

/// An engine from one policy text.
pub fn engine_of(text: &str) -> Engine {
    engine_from(vec![PolicySource {
        name: "test.cedar".into(),
        text: text.into(),
    }])
}

/// Scans paths with the given options; returns the findings in output order and the summary.
pub fn scan_paths(
    engine: &Engine,
    paths: &[PathBuf],
    opts: &ScanOptions,
) -> (Vec<Finding>, Summary) {
    let inputs = source::resolve(paths, &opts.range);
    let mut findings = Vec::new();
    let summary = scan::run(engine, &inputs, opts, &(), &mut |f| {
        findings.push(f);
        Ok(())
    })
    .expect("scan runs");
    (findings, summary)
}

/// Scans paths with default options.
pub fn scan(engine: &Engine, paths: &[&str]) -> (Vec<Finding>, Summary) {
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    scan_paths(engine, &paths, &ScanOptions::default())
}

/// Options with a time window.
pub fn window(since: &str, until: &str) -> ScanOptions {
    ScanOptions {
        range: TimeRange {
            since: trailcedar::time::Timestamp::parse(since).ok(),
            until: trailcedar::time::Timestamp::parse(until).ok(),
        },
        ..ScanOptions::default()
    }
}

/// Findings as sorted, stable text (the library's snapshot rendering, without locations).
pub fn render(findings: &[Finding]) -> String {
    trailcedar::report::snapshot::render(findings, None)
}

/// A summary's counts as stable text (no timing).
pub fn render_summary(s: &Summary) -> String {
    let mut out = format!(
        "files: {} read, skipped {} digest / {} insight / {} out of range / {} not logs, {} unreadable\n\
         events: {} read = {} evaluated + {} out of range + {} insight + {} rejected\n\
         flagged {} events, {} findings, {} rule errors\n",
        s.files_read,
        s.files_skipped_digest + s.digest_values,
        s.files_skipped_insight,
        s.files_skipped_out_of_range,
        s.files_skipped_not_log,
        s.unreadable.len(),
        s.events_read,
        s.events_evaluated,
        s.events_out_of_range,
        s.events_insight,
        s.events_rejected,
        s.events_flagged,
        s.findings,
        s.rule_errors
    );
    for (id, (sev, n)) in &s.by_detection {
        out.push_str(&format!("  {id} [{sev}] {n}\n"));
    }
    out
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A minimal valid event with the given extra top-level fields (a JSON object body without braces).
pub fn event(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAIOSFODNN7EXAMPLE","userName":"alice"}},"eventTime":"2024-05-14T02:10:05Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","awsRegion":"ap-northeast-1","sourceIPAddress":"198.51.100.23","userAgent":"aws-cli/2.15.30","requestParameters":null,"responseElements":null,"eventID":"00000000-0000-4000-8000-000000000001","readOnly":true,"eventType":"AwsApiCall","recipientAccountId":"123456789012"{sep}{extra}}}"#
    )
}

/// The delivery files of the sample archive: every `.json.gz` but the digest and the Insights
/// delivery.
pub fn archive_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = walkdir::WalkDir::new("fixtures/archive")
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().to_path_buf())
        .filter(|p| {
            let p = p.to_string_lossy();
            p.ends_with(".json.gz")
                && !p.contains("CloudTrail-Digest")
                && !p.contains("CloudTrail-Insight")
        })
        .collect();
    files.sort();
    files
}

/// The records of the sample archive's delivery files, counted apart from the scan: every
/// `Records` entry of every file but the digest and the Insights delivery.
pub fn archive_records() -> usize {
    let mut n = 0;
    for entry in walkdir::WalkDir::new("fixtures/archive")
        .into_iter()
        .filter_map(Result::ok)
    {
        let p = entry.path().to_string_lossy().to_string();
        if !p.ends_with(".json.gz")
            || p.contains("CloudTrail-Digest")
            || p.contains("CloudTrail-Insight")
        {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(entry.path()).unwrap()),
            &mut text,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        n += v["Records"].as_array().unwrap().len();
    }
    assert!(n > 1000, "{n} records in the sample archive");
    n
}
