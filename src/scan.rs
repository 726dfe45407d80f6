//! The scan pipeline: inputs are read, decoded and evaluated in parallel, and their findings
//! are written in input order, a window of inputs at a time, so memory stays bounded by the
//! window and not by the archive.

use crate::decode::{self, ValueChunks};
use crate::engine::Severity;
use crate::engine::pack::Mode;
use crate::engine::{Engine, Verdict};
use crate::model::resource::resources_of;
use crate::model::{EventView, ResourceModel};
use crate::report::summary::{EXAMPLES, Problem, Summary};
use crate::report::{DetectionInfo, EventInfo, Finding, Location, ReadValue};
use crate::source::{Input, Inputs, Skip, TimeRange};
use crate::text::truncate;
use rayon::prelude::*;
use std::io;
use std::time::Instant;

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub range: TimeRange,
    /// Largest input (after decompression) read into memory.
    pub max_file_size: u64,
    /// `false`: decode and count only (for measuring the decoder).
    pub evaluate: bool,
    /// Inputs processed together; their findings are held until the window is written.
    pub window: usize,
    /// A policy that errs on an event counts as not satisfied and is not reported (for
    /// investigation queries, where a missing value simply does not match).
    pub rule_errors_are_false: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            range: TimeRange::default(),
            max_file_size: 512 * 1024 * 1024,
            evaluate: true,
            window: 4 * rayon::current_num_threads().max(1),
            rule_errors_are_false: false,
        }
    }
}

/// What one input produced.
#[derive(Debug, Default)]
pub struct InputReport {
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// The id of the finding raised in allow-list mode.
pub const NOT_ALLOWED: &str = "not-allowed";

/// Reads, decodes and evaluates one file.
pub fn scan_file(engine: &Engine, input: &Input, opts: &ScanOptions) -> InputReport {
    let name = input.display_name();
    let bytes = match decode::read_input(input, opts.max_file_size) {
        Ok(b) => b,
        Err(e) => return unreadable(&name, e.0),
    };
    let text = match decode::as_text(&bytes) {
        Ok(t) => t,
        Err(e) => return unreadable(&name, e.0),
    };
    let mut report = scan_text(engine, &name, text, 0, opts);
    report.summary.files_read = 1;
    report.summary.bytes_read = bytes.len() as u64;
    report
}

fn unreadable(name: &str, reason: String) -> InputReport {
    let mut report = InputReport::default();
    report
        .summary
        .unreadable
        .push(Problem::new(name, None, reason));
    report
}

/// Decodes and evaluates every record of `text`, which was read from `name`.
///
/// A decoding error after some records keeps the findings of the records before it and reports
/// the input as unreadable from that point on.
pub fn scan_text(
    engine: &Engine,
    name: &str,
    text: &str,
    first_index: u64,
    opts: &ScanOptions,
) -> InputReport {
    let mut report = InputReport::default();
    let mut evaluator = engine.evaluator();
    let summary = &mut report.summary;
    let findings = &mut report.findings;
    let result = decode::for_each_record(text, first_index, &mut |record| {
        summary.events_read += 1;
        let reject = |summary: &mut Summary, reason: String| {
            summary.events_rejected += 1;
            if summary.rejected.len() < EXAMPLES {
                summary
                    .rejected
                    .push(Problem::new(name, Some(record.index), reason));
            }
        };
        let view = match record.data.into_event().and_then(EventView::new) {
            Ok(v) => v,
            Err(e) => return reject(summary, e),
        };
        if view.event.is_insight() {
            summary.events_insight += 1;
            return;
        }
        if !opts.range.contains(view.time) {
            summary.events_out_of_range += 1;
            return;
        }
        if !opts.evaluate {
            summary.events_evaluated += 1;
            return;
        }
        let verdict = match evaluator.evaluate(&view) {
            Ok(v) => v,
            Err(e) => return reject(summary, e),
        };
        summary.events_evaluated += 1;
        for e in verdict
            .errors
            .iter()
            .filter(|_| !opts.rule_errors_are_false)
        {
            summary.rule_errors += 1;
            if summary.rule_error_examples.len() < EXAMPLES {
                summary.rule_error_examples.push(Problem::new(
                    name,
                    Some(record.index),
                    format!("rule {}: {}", e.policy_id, truncate(&e.message, 300)),
                ));
            }
        }
        for (_, suppression) in &verdict.suppressed {
            if let Some(s) = engine.pack.suppressions.get(*suppression) {
                *summary
                    .suppressed
                    .entry(s.detection.id.clone())
                    .or_insert(0) += 1;
            }
        }
        if verdict.flagged() {
            summary.events_flagged += 1;
            for f in findings_of(engine, &view, &verdict, name, record.index) {
                summary.findings += 1;
                summary
                    .by_detection
                    .entry(f.detection.id.clone())
                    .or_insert((f.detection.severity, 0))
                    .1 += 1;
                findings.push(f);
            }
        }
    });
    match result {
        Ok(counts) => summary.digest_values += counts.digests,
        Err(e) => summary.unreadable.push(Problem::new(name, None, e.0)),
    }
    report
}

/// The findings of a flagged event, with their explanations.
pub fn findings_of(
    engine: &Engine,
    view: &EventView,
    verdict: &Verdict,
    name: &str,
    index: u64,
) -> Vec<Finding> {
    // A flagged event's principal is modelled (a not-allowed one's perhaps only now); the
    // model cannot fail where the engine read the same identity's facts.
    let Ok(principal) = verdict.principal(engine, view) else {
        return Vec::new();
    };
    let principal = &principal;
    let computed;
    let resources: &[ResourceModel] = match &verdict.resources {
        Some(r) => r,
        None => {
            computed = resources_of(view, principal).unwrap_or_default();
            &computed
        }
    };
    let fallback = resources.first();
    let event_info = |resource: Option<&ResourceModel>| {
        let e = &view.event;
        EventInfo {
            event_id: view.event_id().to_string(),
            event_time: view.time.to_string(),
            action: e.action_id(),
            principal: principal.display(),
            principal_type: principal.kind.type_name().to_string(),
            access_key_id: principal.access_key_id.clone(),
            resource: resource.map(ResourceModel::display).unwrap_or_default(),
            source_ip_address: e.source_ip_address.as_deref().map(str::to_string),
            aws_region: e.aws_region.as_deref().map(str::to_string),
            recipient_account_id: e.recipient_account_id.as_deref().map(str::to_string),
            user_agent: e.user_agent.as_deref().map(str::to_string),
            error_code: e.error_code.as_deref().map(str::to_string),
        }
    };
    let location = Location {
        file: name.to_string(),
        record: index,
    };
    let explain =
        |members: &[usize], resource: Option<&ResourceModel>| -> (Vec<ReadValue>, Vec<String>) {
            match resource {
                Some(r) => {
                    let e = engine.explain_values(members, view, principal, r);
                    let values = e
                        .values
                        .into_iter()
                        .map(|(field, value)| ReadValue::new(field, value))
                        .collect();
                    (values, e.notes)
                }
                None => (Vec::new(), Vec::new()),
            }
        };
    let mut out = Vec::new();
    for hit in verdict.reported() {
        let Some(d) = engine.pack.detections.get(hit.detection) else {
            continue;
        };
        let resource = hit.resource.and_then(|i| resources.get(i)).or(fallback);
        let (values, notes) = explain(&[hit.detection], resource);
        out.push(Finding {
            detection: DetectionInfo {
                id: d.id.clone(),
                title: d.title.clone(),
                severity: d.severity.unwrap_or(Severity::Medium),
                mitre: d.mitre.clone(),
                description: d.description.clone(),
                runbook: d.runbook.clone(),
                policy: format!("{}:{}", d.file, d.line),
            },
            event: event_info(resource),
            location: location.clone(),
            values,
            notes,
        });
    }
    if verdict.not_allowed && engine.pack.mode == Mode::AllowList {
        // The permits whose scope covers the event, those a principal guard set aside included:
        // each was considered, and what it read explains why it did not allow the event.
        let permits: Vec<usize> = engine
            .candidates(view, principal)
            .members
            .iter()
            .copied()
            .filter(|i| {
                engine
                    .pack
                    .detections
                    .get(*i)
                    .is_some_and(|d| d.effect == cedar_policy::Effect::Permit)
            })
            .collect();
        let names: Vec<&str> = permits
            .iter()
            .filter_map(|i| engine.pack.detections.get(*i).map(|d| d.id.as_str()))
            .collect();
        let mut vals = vec![ReadValue::text(
            "candidate permits",
            if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            },
        )];
        let (more, notes) = explain(&permits, fallback);
        vals.extend(more);
        out.push(Finding {
            detection: DetectionInfo {
                id: NOT_ALLOWED.to_string(),
                title: "Not allowed by any policy".to_string(),
                severity: Severity::Medium,
                mitre: None,
                description: Some(
                    "allow-list mode: no permit of the pack covers this event".to_string(),
                ),
                runbook: None,
                policy: engine.pack.origin.clone(),
            },
            event: event_info(fallback),
            location,
            values: vals,
            notes,
        });
    }
    out
}

/// Progress of a scan, for a progress bar.
pub trait Progress: Sync {
    fn input_done(&self, bytes: u64, events: u64);
}

impl Progress for () {
    fn input_done(&self, _: u64, _: u64) {}
}

/// Scans every input; `emit` receives each input's report in input order.
pub fn run(
    engine: &Engine,
    inputs: &Inputs,
    opts: &ScanOptions,
    progress: &dyn Progress,
    emit: &mut dyn FnMut(InputReport) -> io::Result<()>,
) -> io::Result<Summary> {
    let start = Instant::now();
    let mut summary = Summary {
        files_skipped_digest: inputs.skipped(Skip::Digest) as u64,
        files_skipped_insight: inputs.skipped(Skip::Insight) as u64,
        files_skipped_out_of_range: inputs.skipped(Skip::OutOfRange) as u64,
        files_skipped_not_log: inputs.skipped(Skip::NotLog) as u64,
        ..Summary::default()
    };
    for e in &inputs.errors {
        summary
            .unreadable
            .push(Problem::new(&e.path, None, e.reason.clone()));
    }
    let window = opts.window.max(1);
    let files: Vec<&Input> = inputs
        .inputs
        .iter()
        .filter(|i| **i != Input::Stdin)
        .collect();
    for chunk in files.chunks(window) {
        let reports: Vec<InputReport> = chunk
            .par_iter()
            .map(|input| {
                let r = scan_file(engine, input, opts);
                progress.input_done(r.summary.bytes_read, r.summary.events_read);
                r
            })
            .collect();
        for mut r in reports {
            summary.absorb(std::mem::take(&mut r.summary));
            emit(r)?;
        }
    }
    if inputs.inputs.contains(&Input::Stdin) {
        scan_stdin(engine, opts, progress, &mut summary, emit)?;
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

fn scan_stdin(
    engine: &Engine,
    opts: &ScanOptions,
    progress: &dyn Progress,
    summary: &mut Summary,
    emit: &mut dyn FnMut(InputReport) -> io::Result<()>,
) -> io::Result<()> {
    let name = Input::Stdin.display_name();
    let mut chunks = ValueChunks::new(io::stdin().lock(), 4 * 1024 * 1024, opts.max_file_size);
    let mut next_index = 0u64;
    summary.files_read += 1;
    loop {
        // Read a window of chunks, then evaluate them in parallel.
        let mut batch: Vec<(u64, String)> = Vec::new();
        let mut failed = None;
        while batch.len() < opts.window.max(1) {
            match chunks.next_chunk() {
                Ok(Some(chunk)) => {
                    // Record indexes continue across chunks: count the chunk's records first.
                    let mut n = 0u64;
                    let _ = decode::for_each_record(&chunk, 0, &mut |_| n += 1);
                    batch.push((next_index, chunk));
                    next_index += n;
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let done = batch.is_empty();
        let reports: Vec<InputReport> = batch
            .par_iter()
            .map(|(first, text)| {
                let mut r = scan_text(engine, &name, text, *first, opts);
                r.summary.bytes_read = text.len() as u64;
                progress.input_done(text.len() as u64, r.summary.events_read);
                r
            })
            .collect();
        for mut r in reports {
            summary.absorb(std::mem::take(&mut r.summary));
            emit(r)?;
        }
        if let Some(e) = failed {
            summary
                .unreadable
                .push(Problem::new(&name, Some(next_index), e.0));
            return Ok(());
        }
        if done {
            return Ok(());
        }
    }
}
