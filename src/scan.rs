//! The scan pipeline: inputs are read, decoded and evaluated in parallel, and their findings
//! are written in input order, a window of inputs at a time. Each input is read as a stream:
//! a block of it in memory, never the whole input.

use crate::decode::{self, Limits, RawRecord};
use crate::engine::Severity;
use crate::engine::pack::Mode;
use crate::engine::{Engine, Evaluator, Verdict};
use crate::model::resource::resources_of;
use crate::model::{EventView, ResourceModel};
use crate::report::summary::{EXAMPLES, Problem, Summary};
use crate::report::{DetectionInfo, EventInfo, Finding, Location, ReadValue};
use crate::source::{Input, Inputs, Skip, TimeRange};
use crate::text::truncate;
use std::io;
use std::time::Instant;

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub range: TimeRange,
    /// The most bytes read from one file after decompression, and the largest single JSON value
    /// held of any input (standard input and pipes are not bounded in total).
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

/// Reads, decodes and evaluates one input, holding its findings (for tools and tests; a scan
/// streams them with [`run`]).
pub fn scan_file(engine: &Engine, input: &Input, opts: &ScanOptions) -> InputReport {
    let mut findings = Vec::new();
    let summary = scan_input(engine, input, opts, &|| false, &mut |f| findings.push(f));
    InputReport { findings, summary }
}

/// Reads, decodes and evaluates one input; each finding goes to `sink` as it is decided.
/// `stop` is asked between blocks of the input whether to give up.
pub fn scan_input(
    engine: &Engine,
    input: &Input,
    opts: &ScanOptions,
    stop: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(Finding),
) -> Summary {
    let name = input.display_name();
    let (reader, limits) = match open(input, opts.max_file_size) {
        Ok(r) => r,
        Err(reason) => {
            let mut summary = Summary::default();
            summary.unreadable.push(Problem::new(&name, None, reason));
            return summary;
        }
    };
    let mut records = Records::new(engine, &name, opts);
    let decoded = decode::read_records(reader, limits, 0, stop, &mut |r| records.record(r, sink));
    let mut summary = records.summary;
    summary.files_read = 1;
    summary.bytes_read = decoded.bytes;
    summary.digest_values += decoded.counts.digests;
    if let Some(e) = decoded.error {
        let flag = if decoded.limit_reached {
            " (--max-file-size)"
        } else {
            ""
        };
        let reason = format!(
            "{}{flag}; the {} record(s) before it were read, none after",
            e.0, decoded.records
        );
        summary.unreadable.push(Problem::new(&name, None, reason));
    }
    summary
}

/// An input opened as a stream, and how much of it may be read: a regular file is bounded in
/// total by `max`; standard input, pipes and devices only in the size of one value.
fn open(input: &Input, max: u64) -> Result<(Box<dyn io::Read + Send>, Limits), String> {
    let mut limits = Limits {
        value: max,
        total: None,
    };
    let reader: Box<dyn io::Read + Send> = match input {
        Input::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
            let meta = file.metadata().map_err(|e| e.to_string())?;
            if meta.is_dir() {
                return Err("a directory".to_string());
            }
            if meta.is_file() {
                limits.total = Some(max);
            }
            Box::new(file)
        }
        Input::Stdin => Box::new(io::stdin()),
    };
    let reader = decode::sniffed(reader).map_err(|e| e.to_string())?;
    Ok((reader, limits))
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
    let mut findings = Vec::new();
    let mut records = Records::new(engine, name, opts);
    let result = decode::for_each_record(text, first_index, &mut |r| {
        records.record(r, &mut |f| findings.push(f))
    });
    let mut summary = records.summary;
    match result {
        Ok(counts) => summary.digest_values += counts.digests,
        Err(e) => summary.unreadable.push(Problem::new(name, None, e.0)),
    }
    InputReport { findings, summary }
}

/// One input's records on their way: each is counted once, as evaluated, outside the window,
/// an Insights record or rejected, and a flagged one becomes findings.
struct Records<'e> {
    engine: &'e Engine,
    evaluator: Evaluator<'e>,
    name: &'e str,
    opts: &'e ScanOptions,
    summary: Summary,
}

impl<'e> Records<'e> {
    fn new(engine: &'e Engine, name: &'e str, opts: &'e ScanOptions) -> Self {
        Records {
            engine,
            evaluator: engine.evaluator(),
            name,
            opts,
            summary: Summary::default(),
        }
    }

    fn reject(&mut self, index: u64, reason: String) {
        let summary = &mut self.summary;
        summary.events_rejected += 1;
        if summary.rejected.len() < EXAMPLES {
            summary
                .rejected
                .push(Problem::new(self.name, Some(index), reason));
        }
    }

    fn record(&mut self, record: RawRecord<'_>, sink: &mut dyn FnMut(Finding)) {
        self.summary.events_read += 1;
        let index = record.index;
        let view = match record.data.into_event().and_then(EventView::new) {
            Ok(v) => v,
            Err(e) => return self.reject(index, e),
        };
        if view.event.is_insight() {
            self.summary.events_insight += 1;
            return;
        }
        if !self.opts.range.contains(view.time) {
            self.summary.events_out_of_range += 1;
            return;
        }
        if !self.opts.evaluate {
            self.summary.events_evaluated += 1;
            return;
        }
        let verdict = match self.evaluator.evaluate(&view) {
            Ok(v) => v,
            Err(e) => return self.reject(index, e),
        };
        let summary = &mut self.summary;
        summary.events_evaluated += 1;
        if !self.opts.rule_errors_are_false {
            for e in &verdict.errors {
                summary.rule_errors += 1;
                if summary.rule_error_examples.len() < EXAMPLES {
                    summary.rule_error_examples.push(Problem::new(
                        self.name,
                        Some(index),
                        format!("rule {}: {}", e.policy_id, truncate(&e.message, 300)),
                    ));
                }
            }
        }
        for (_, suppression) in &verdict.suppressed {
            if let Some(s) = self.engine.pack.suppressions.get(*suppression) {
                *summary
                    .suppressed
                    .entry(s.detection.id.clone())
                    .or_insert(0) += 1;
            }
        }
        if verdict.flagged() {
            summary.events_flagged += 1;
            for f in findings_of(self.engine, &view, &verdict, self.name, index) {
                summary.findings += 1;
                summary
                    .by_detection
                    .entry(f.detection.id.clone())
                    .or_insert((f.detection.severity, 0))
                    .1 += 1;
                sink(f);
            }
        }
    }
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
    use rayon::prelude::*;
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
    for chunk in inputs.inputs.chunks(opts.window.max(1)) {
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
    summary.elapsed = start.elapsed();
    Ok(summary)
}
