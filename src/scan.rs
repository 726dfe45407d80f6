//! The scan pipeline: inputs are read, decoded and evaluated in parallel, and their findings
//! are written in input order as they are decided.
//!
//! Each worker reads one input at a time as a stream (a block of it in memory, never the whole
//! input). The findings of the input being written go straight out; those of the inputs read
//! ahead of it (at most `window` inputs ahead) wait in memory up to a budget, and past it in a
//! temporary file, until their turn. So memory depends neither on the number of findings of an
//! input nor on how many inputs are read ahead.

use crate::correlate::sampling::Sampler;
use crate::correlate::{Correlator, state};
use crate::decode::{self, Limits, RawRecord};
use crate::engine::Severity;
use crate::engine::pack::Mode;
use crate::engine::{Engine, Evaluator, Verdict};
use crate::model::resource::resources_of;
use crate::model::{EventView, ResourceModel};
use crate::report::summary::{EXAMPLES, Problem, Summary};
use crate::report::{DetectionInfo, EventInfo, Finding, Location, Matched, ReadValue};
use crate::source::{Input, Inputs, Skip, TimeRange};
use crate::text::truncate;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Condvar, Mutex, PoisonError};
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
    /// How many inputs are read ahead of the one whose findings are being written.
    pub window: usize,
    /// A policy that errs on an event counts as not satisfied and is not reported (for
    /// investigation queries, where a missing value simply does not match).
    pub rule_errors_are_false: bool,
    /// Bytes of findings of inputs read ahead that wait in memory; past it they wait in a
    /// temporary file.
    pub held_findings: usize,
    /// The lateness bound and the caps of the correlations ([`crate::correlate`]).
    pub correlate: crate::correlate::Options,
    /// Each finding carries the event's JSON text as read (`--raw`).
    pub raw: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            range: TimeRange::default(),
            max_file_size: 512 * 1024 * 1024,
            evaluate: true,
            window: 4 * rayon::current_num_threads().max(1),
            rule_errors_are_false: false,
            held_findings: 32 << 20,
            correlate: crate::correlate::Options::default(),
            raw: false,
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

/// The stack of a scan's worker threads: room for Cedar to evaluate a policy at the nesting
/// limits of [`crate::engine::nesting`] (reserved address space; only what is used is memory).
pub const WORKER_STACK: usize = 64 << 20;

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
    scan_reader(engine, &name, reader, limits, opts, stop, sink)
}

/// Decodes and evaluates the records of `reader` (decompressed bytes, read as `name`); each
/// finding goes to `sink` as it is decided.
pub fn scan_reader(
    engine: &Engine,
    name: &str,
    reader: impl io::Read,
    limits: Limits,
    opts: &ScanOptions,
    stop: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(Finding),
) -> Summary {
    let mut records = Records::new(engine, name, opts);
    let decoded = decode::read_records(reader, limits, 0, stop, &mut |r| records.record(r, sink));
    let mut summary = records.into_summary();
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
        summary.unreadable.push(Problem::new(name, None, reason));
    }
    summary
}

/// An input opened as a stream, and how much of it may be read: a regular file or an S3 object
/// is bounded in total by `max`; standard input, pipes and devices only in the size of one value.
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
        // An object is bounded like a regular file.
        Input::Object(object) => {
            limits.total = Some(max);
            crate::source::s3::open(object)?
        }
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
    let mut summary = records.into_summary();
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
    /// Which matches for the correlations are explained (see [`matches_of`]).
    sampler: Sampler,
    /// Matches for the correlations per detection (by its index), put in the summary at the
    /// end: a match counted by its id would cost a copy of it.
    matches: Vec<u64>,
}

impl<'e> Records<'e> {
    fn new(engine: &'e Engine, name: &'e str, opts: &'e ScanOptions) -> Self {
        Records {
            engine,
            evaluator: engine.evaluator(),
            name,
            opts,
            summary: Summary::default(),
            sampler: Sampler::new(),
            matches: vec![0; engine.pack.detections.len()],
        }
    }

    /// What the input came to.
    fn into_summary(self) -> Summary {
        let mut summary = self.summary;
        for (i, n) in self.matches.into_iter().enumerate() {
            if let Some(d) = self.engine.pack.detections.get(i)
                && n > 0
            {
                *summary.matches.entry(d.id.clone()).or_insert(0) += n;
            }
        }
        summary
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
        let text = record.text;
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
            let reported = findings_of(self.engine, &view, &verdict, self.name, index);
            if !reported.is_empty() {
                summary.events_flagged += 1;
            }
            for mut f in reported {
                // Only what is written carries its event: a match a correlation only counts
                // would hold it for nothing.
                if self.opts.raw && f.matched.as_ref().is_none_or(|m| m.reported) {
                    f.raw = text.map(|t| crate::report::RawEvent(t.to_string()));
                }
                summary.findings += 1;
                summary
                    .by_detection
                    .entry(f.detection.id.clone())
                    .or_insert((f.detection.severity, 0))
                    .1 += 1;
                sink(f);
            }
            let location = (self.name, index);
            for mut f in matches_of(self.engine, &view, &verdict, location, &mut self.sampler) {
                if let Some(n) = f
                    .matched
                    .as_ref()
                    .and_then(|m| self.matches.get_mut(m.detection))
                {
                    *n += 1;
                }
                // A sampled match keeps its text, explained only if its group fires.
                if f.matched
                    .as_ref()
                    .is_some_and(|m| m.sampled && !m.explained)
                {
                    match text {
                        Some(t) if t.len() <= KEPT_TEXT => {
                            f.raw = Some(crate::report::RawEvent(t.to_string()));
                        }
                        Some(t) => f.notes.push(format!(
                            "not explained: its record ({} KiB) is larger than a match keeps",
                            t.len() / 1024
                        )),
                        None => {}
                    }
                }
                sink(f);
            }
        }
    }
}

/// Event content as a finding quotes it: at most [`MAX_QUOTE`] characters, then `…`.
fn quote(s: &str) -> String {
    if s.len() <= MAX_QUOTE {
        s.to_string()
    } else {
        truncate(s, MAX_QUOTE)
    }
}

/// [`quote`], of a string already made: kept, not copied, when it is short enough.
fn quoted_owned(s: String) -> String {
    if s.len() <= MAX_QUOTE { s } else { quote(&s) }
}

/// A value read, as a finding quotes it (see [`quote`]): its field, its Cedar spelling, and
/// every string in its JSON.
fn quoted(mut v: ReadValue) -> ReadValue {
    fn strings(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.len() > MAX_QUOTE => *s = truncate(s, MAX_QUOTE),
            serde_json::Value::Array(items) => items.iter_mut().for_each(strings),
            serde_json::Value::Object(map) => map.values_mut().for_each(strings),
            _ => {}
        }
    }
    v.field = quote(&v.field);
    v.value = v.value.as_deref().map(quote);
    if let Some(json) = &mut v.json {
        strings(json);
    }
    v
}

/// The largest record a sampled match keeps to be explained when its group fires (a CloudTrail
/// record is a few KiB; one larger is shown by its id, time, action and location, with a note).
pub const KEPT_TEXT: usize = 64 * 1024;

/// The most characters of event content a finding quotes in one field or value (a value a rule
/// read can be up to a MiB, and an event can make a finding per detection). The decision was
/// made on the whole value.
pub const MAX_QUOTE: usize = 4096;

/// The findings of a flagged event, with their explanations: those of the detections reported
/// on their own (a match of a detection that also feeds correlations carries its keys).
pub fn findings_of(
    engine: &Engine,
    view: &EventView,
    verdict: &Verdict,
    name: &str,
    index: u64,
) -> Vec<Finding> {
    findings_for(engine, view, verdict, (name, index), None)
}

/// The matches of an event for the correlations: those of the detections not reported on
/// their own (correlations' per-event parts, building blocks), with their keys. `sampler`
/// says which are explained; the others carry only their id, time, action and location.
pub fn matches_of(
    engine: &Engine,
    view: &EventView,
    verdict: &Verdict,
    (name, index): (&str, u64),
    sampler: &mut Sampler,
) -> Vec<Finding> {
    findings_for(engine, view, verdict, (name, index), Some(sampler))
}

/// [`findings_of`], or with a sampler [`matches_of`].
fn findings_for(
    engine: &Engine,
    view: &EventView,
    verdict: &Verdict,
    (name, index): (&str, u64),
    mut matches: Option<&mut Sampler>,
) -> Vec<Finding> {
    // Findings are the hits of detections reported on their own (and, in allow-list mode, an
    // event not allowed); matches are the others: each call leaves the other kind alone.
    let alone = matches.is_none();
    let wanted = |detection: usize| {
        engine
            .pack
            .detections
            .get(detection)
            .is_some_and(|d| d.reported_alone() == alone)
    };
    let not_allowed = alone && verdict.not_allowed && engine.pack.mode == Mode::AllowList;
    if !not_allowed && !verdict.reported().any(|h| wanted(h.detection)) {
        return Vec::new();
    }
    // A flagged event's principal is modelled (a not-allowed one's perhaps only now); the
    // model cannot fail where the engine read the same identity's facts.
    let Ok(principal) = verdict.principal(engine, view) else {
        return Vec::new();
    };
    let principal = &principal;
    // Modelled only for a finding that shows them: most matches are counted, not shown.
    let computed = std::cell::OnceCell::new();
    let resources = || -> &[ResourceModel] {
        match &verdict.resources {
            Some(r) => r,
            None => computed.get_or_init(|| resources_of(view, principal).unwrap_or_default()),
        }
    };
    let fallback = || resources().first();
    let event_info = |resource: Option<&ResourceModel>| {
        let e = &view.event;
        let text = |s: Option<&str>| s.map(quote);
        EventInfo {
            event_id: quote(view.event_id()),
            event_time: view.time.to_string(),
            action: quoted_owned(e.action_id()),
            principal: quote(&principal.display()),
            principal_type: principal.kind.type_name().to_string(),
            access_key_id: text(principal.access_key_id.as_deref()),
            resource: resource.map_or_else(String::new, |r| quote(&r.display())),
            source_ip_address: text(e.source_ip_address.as_deref()),
            aws_region: text(e.aws_region.as_deref()),
            recipient_account_id: text(e.recipient_account_id.as_deref()),
            user_agent: text(e.user_agent.as_deref()),
            error_code: text(e.error_code.as_deref()),
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
                        .map(|(field, value)| quoted(ReadValue::new(field, value)))
                        .collect();
                    (values, e.notes)
                }
                None => (Vec::new(), Vec::new()),
            }
        };
    let mut out = Vec::new();
    for hit in verdict.reported() {
        if !wanted(hit.detection) {
            continue;
        }
        let Some(d) = engine.pack.detections.get(hit.detection) else {
            continue;
        };
        let keys = if d.keyings.is_empty() {
            Vec::new()
        } else {
            engine.match_keys_of(hit.detection, view, principal, hit.keys.as_deref())
        };
        let (explained, sampled) = match matches.as_deref_mut() {
            None => (true, false),
            Some(sampler) => {
                let window = keys
                    .first()
                    .and_then(|k| engine.pack.detections.get(k.correlation))
                    .and_then(|c| c.correlation.as_ref())
                    .map_or(0, |c| c.window.ms);
                let sampled = sampler.wants(hit.detection, &keys, view.time.0, window);
                (sampled && sampler.eager(), sampled)
            }
        };
        let matched = (!keys.is_empty() || !d.reported_alone()).then(|| {
            Box::new(Matched {
                detection: hit.detection,
                time: view.time.0,
                keys,
                reported: d.reported_alone(),
                explained,
                sampled,
            })
        });
        if !explained {
            out.push(unexplained(d, view, &location, matched));
            continue;
        }
        let resource = hit.resource.and_then(|i| resources().get(i)).or(fallback());
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
            correlation: None,
            matched,
            raw: None,
        });
    }
    if not_allowed {
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
        let (more, notes) = explain(&permits, fallback());
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
            event: event_info(fallback()),
            location,
            values: vals,
            notes,
            correlation: None,
            matched: None,
            raw: None,
        });
    }
    out
}

/// A match counted, not shown: its detection, event id, time, action and location.
fn unexplained(
    d: &crate::engine::Detection,
    view: &EventView,
    location: &Location,
    matched: Option<Box<Matched>>,
) -> Finding {
    Finding {
        detection: DetectionInfo {
            id: d.id.clone(),
            title: String::new(),
            severity: d.severity.unwrap_or(Severity::Medium),
            mitre: None,
            description: None,
            runbook: None,
            policy: String::new(),
        },
        // Its time is formatted only if a correlation shows it (see `correlate::build`).
        event: EventInfo::identified(
            quote(view.event_id()),
            String::new(),
            quoted_owned(view.event.action_id()),
        ),
        location: location.clone(),
        values: Vec::new(),
        notes: Vec::new(),
        correlation: None,
        matched,
        raw: None,
    }
}

/// Progress of a scan, for a progress bar.
pub trait Progress: Sync {
    fn input_done(&self, bytes: u64, events: u64);
}

impl Progress for () {
    fn input_done(&self, _: u64, _: u64) {}
}

/// What a worker tells the writer.
#[allow(clippy::large_enum_variant)] // moved once per finding; a box would cost an allocation
enum Message {
    /// Findings of input `.0`, in order: a batch of up to [`BATCH`] from a file or object (one
    /// wake-up of the writer each, not one a finding), one at a time from a stream.
    Findings(usize, Vec<Finding>),
    Done(usize, Summary),
}

/// The most findings a worker sends the writer at once.
const BATCH: usize = 64;

/// Scans every input; `emit` receives every finding, in input order, as it is decided, and the
/// findings of correlations as their windows end (the last at the end). An error from `emit`
/// stops the scan and is returned once the workers have stopped.
pub fn run(
    engine: &Engine,
    inputs: &Inputs,
    opts: &ScanOptions,
    progress: &dyn Progress,
    emit: &mut dyn FnMut(Finding) -> io::Result<()>,
) -> io::Result<Summary> {
    run_resumed(engine, inputs, opts, progress, emit, None).map(|(summary, _)| summary)
}

/// [`run`], with the correlations' open windows of an earlier run resumed; also returns the
/// windows to save for the next (`scan --state`).
pub fn run_resumed(
    engine: &Engine,
    inputs: &Inputs,
    opts: &ScanOptions,
    progress: &dyn Progress,
    emit: &mut dyn FnMut(Finding) -> io::Result<()>,
    resume: Option<state::State>,
) -> io::Result<(Summary, state::State)> {
    // The correlations take the matches in input order, between the workers and `emit`.
    let mut correlator = Correlator::new(&engine.pack, opts.correlate);
    if let Some(saved) = resume {
        correlator.resume(saved).map_err(io::Error::other)?;
    }
    // Correlations want events in about the order they happened: a multi-region archive's
    // files are read interleaved by their delivery time.
    let ordered: Vec<Input>;
    let units: &[Input] = if correlator.is_active() {
        let mut by_delivery: Vec<&Input> = inputs.inputs.iter().collect();
        crate::source::delivery_order(&mut by_delivery);
        ordered = by_delivery.into_iter().cloned().collect();
        &ordered
    } else {
        &inputs.inputs
    };
    let mut explainer = Explainer::new(engine);
    let mut emit = |mut f: Finding| {
        explainer.fill(&mut f);
        emit(f)
    };
    let mut routed = |f: Finding| correlator.route(f, &mut emit);
    let mut summary = scan_inputs(engine, inputs, units, opts, progress, &mut routed)?;
    let groups = correlator.finish(&mut emit)?;
    correlator.saved(groups.len() as u64);
    correlator.summarise(&mut summary);
    let saved = state::State::of(&correlator, groups);
    Ok((summary, saved))
}

/// Explains the sampled events of a correlation finding as it is written, from the text their
/// matches kept: only the groups that fire cost an explanation (see [`Sampler`]).
struct Explainer<'e> {
    engine: &'e Engine,
    evaluator: Option<Evaluator<'e>>,
}

impl<'e> Explainer<'e> {
    fn new(engine: &'e Engine) -> Self {
        Explainer {
            engine,
            evaluator: None,
        }
    }

    /// Fills in the values of `f`'s sampled events, and its first event's whole.
    fn fill(&mut self, f: &mut Finding) {
        let Some(c) = f.correlation.as_deref_mut() else {
            return;
        };
        for (i, shown) in c.sample.iter_mut().enumerate() {
            let Some(text) = shown.text.take() else {
                continue;
            };
            let Some(found) = self.explain(&text, shown) else {
                continue;
            };
            shown.values.clone_from(&found.values);
            if i == 0 {
                f.event = found.event;
                f.values = found.values;
                f.notes.splice(0..0, found.notes);
            }
        }
    }

    /// The match of `shown`'s detection in its record's `text`, explained: the same finding
    /// the scan would have made of it then (the same record, pack and inventory).
    fn explain(&mut self, text: &str, shown: &crate::report::Contributing) -> Option<Finding> {
        let engine = self.engine;
        let evaluator = self.evaluator.get_or_insert_with(|| engine.evaluator());
        let location = (shown.location.file.as_str(), shown.location.record);
        let mut found = None;
        let _ = decode::for_each_record(text, location.1, &mut |r| {
            let Ok(view) = r.data.into_event().and_then(EventView::new) else {
                return;
            };
            let Ok(verdict) = evaluator.evaluate(&view) else {
                return;
            };
            let mut everything = Sampler::everything();
            found = found.take().or_else(|| {
                matches_of(engine, &view, &verdict, location, &mut everything)
                    .into_iter()
                    .find(|m| m.detection.id == shown.detection)
            });
        });
        found
    }
}

/// Scans `units` (the inputs, perhaps reordered) with the workers, writing in their order.
fn scan_inputs(
    engine: &Engine,
    inputs: &Inputs,
    units: &[Input],
    opts: &ScanOptions,
    progress: &dyn Progress,
    emit: &mut dyn FnMut(Finding) -> io::Result<()>,
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
    let workers = rayon::current_num_threads().clamp(1, units.len().max(1));
    let window = opts.window.max(workers);
    let (tx, rx) = sync_channel::<Message>(1024);
    let shared = Shared {
        next: AtomicUsize::new(0),
        head: Mutex::new(0),
        moved: Condvar::new(),
        abort: AtomicBool::new(false),
        window,
    };
    let outcome = std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let shared = &shared;
            std::thread::Builder::new()
                .name("trailcedar-scan".to_string())
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || {
                    worker(engine, units, opts, progress, shared, tx)
                })?;
        }
        drop(tx);
        write_in_order(rx, &shared, opts.held_findings, &mut summary, emit)
    });
    outcome?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// What the workers and the writer share: the next input to take, and the input being
/// written, which bounds how far ahead the workers read.
struct Shared {
    next: AtomicUsize,
    head: Mutex<usize>,
    moved: Condvar,
    abort: AtomicBool,
    window: usize,
}

impl Shared {
    /// Waits until input `i` is within the window of the one being written.
    fn wait_for(&self, i: usize) {
        let mut head = self.head.lock().unwrap_or_else(PoisonError::into_inner);
        while i >= *head + self.window && !self.abort.load(Ordering::Relaxed) {
            head = self
                .moved
                .wait(head)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn advance(&self, head: usize) {
        *self.head.lock().unwrap_or_else(PoisonError::into_inner) = head;
        self.moved.notify_all();
    }

    fn stop(&self) {
        self.abort.store(true, Ordering::Relaxed);
        self.moved.notify_all();
    }
}

/// Takes inputs in order and scans each, sending its findings as they are decided.
fn worker(
    engine: &Engine,
    units: &[Input],
    opts: &ScanOptions,
    progress: &dyn Progress,
    shared: &Shared,
    tx: SyncSender<Message>,
) {
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(input) = units.get(i) else {
            return;
        };
        shared.wait_for(i);
        if shared.abort.load(Ordering::Relaxed) {
            return;
        }
        let stop = || shared.abort.load(Ordering::Relaxed);
        // A stream's findings go out as decided; a file's, which ends soon, in batches.
        let batch = if input.is_bounded() { BATCH } else { 1 };
        let mut findings = Vec::new();
        let summary = scan_input(engine, input, opts, &stop, &mut |f| {
            findings.push(f);
            if findings.len() >= batch {
                // The writer only goes away after an error, which stops the scan.
                let _ = tx.send(Message::Findings(i, std::mem::take(&mut findings)));
            }
        });
        if !findings.is_empty() {
            let _ = tx.send(Message::Findings(i, findings));
        }
        progress.input_done(summary.bytes_read, summary.events_read);
        if tx.send(Message::Done(i, summary)).is_err() {
            return;
        }
    }
}

/// Writes findings in input order as they come: those of the input being written at once,
/// the others held (in memory up to `budget` bytes, then in a temporary file) until their turn.
fn write_in_order(
    rx: Receiver<Message>,
    shared: &Shared,
    budget: usize,
    summary: &mut Summary,
    emit: &mut dyn FnMut(Finding) -> io::Result<()>,
) -> io::Result<()> {
    let mut order = Reorder {
        head: 0,
        held: BTreeMap::new(),
        held_bytes: 0,
        budget,
    };
    let mut failed = None;
    for message in rx {
        if failed.is_some() {
            // Drained, so that no worker waits on a full channel.
            continue;
        }
        if let Err(e) = order.take(message, summary, emit, shared) {
            failed = Some(e);
            shared.stop();
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The findings of inputs read ahead of the one being written.
struct Reorder {
    /// The input being written.
    head: usize,
    held: BTreeMap<usize, Held>,
    /// Estimated bytes of the findings held in memory.
    held_bytes: usize,
    budget: usize,
}

#[derive(Default)]
struct Held {
    findings: VecDeque<Finding>,
    /// Once a held input's findings no longer fit the budget, they go here, after those in
    /// memory, in order.
    spill: Option<Spill>,
    summary: Option<Summary>,
}

impl Reorder {
    /// A finding of input `i`: written if it is the one being written, else held.
    fn finding(
        &mut self,
        i: usize,
        f: Finding,
        emit: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        if i == self.head {
            return emit(f);
        }
        let size = approx_size(&f);
        let held = self.held.entry(i).or_default();
        if held.spill.is_none() && self.held_bytes + size <= self.budget {
            self.held_bytes += size;
            held.findings.push_back(f);
            return Ok(());
        }
        let spill = match &mut held.spill {
            Some(s) => s,
            None => held.spill.insert(Spill::new()?),
        };
        spill.push(&f)
    }

    fn take(
        &mut self,
        message: Message,
        summary: &mut Summary,
        emit: &mut dyn FnMut(Finding) -> io::Result<()>,
        shared: &Shared,
    ) -> io::Result<()> {
        match message {
            Message::Findings(i, findings) => {
                for f in findings {
                    self.finding(i, f, emit)?;
                }
                Ok(())
            }
            Message::Done(i, s) => {
                if i != self.head {
                    self.held.entry(i).or_default().summary = Some(s);
                    return Ok(());
                }
                summary.absorb(s);
                self.head += 1;
                // Inputs read ahead are written now, up to one still being read.
                while let Some(held) = self.held.remove(&self.head) {
                    for f in held.findings {
                        self.held_bytes = self.held_bytes.saturating_sub(approx_size(&f));
                        emit(f)?;
                    }
                    if let Some(spill) = held.spill {
                        spill.drain(emit)?;
                    }
                    match held.summary {
                        Some(s) => {
                            summary.absorb(s);
                            self.head += 1;
                        }
                        None => break,
                    }
                }
                shared.advance(self.head);
                Ok(())
            }
        }
    }
}

/// About how much memory a finding holds.
fn approx_size(f: &Finding) -> usize {
    let e = &f.event;
    let strings = [
        &f.detection.id,
        &f.detection.title,
        &f.detection.policy,
        &e.event_id,
        &e.event_time,
        &e.action,
        &e.principal,
        &e.principal_type,
        &e.resource,
        &f.location.file,
    ];
    let optional = [
        &f.detection.mitre,
        &f.detection.description,
        &f.detection.runbook,
        &e.access_key_id,
        &e.source_ip_address,
        &e.aws_region,
        &e.recipient_account_id,
        &e.user_agent,
        &e.error_code,
    ];
    let values: usize = f
        .values
        .iter()
        .map(|v| 64 + v.field.len() + v.value.as_ref().map_or(0, String::len))
        .sum();
    512 + strings.iter().map(|s| s.len()).sum::<usize>()
        + optional
            .iter()
            .map(|s| s.as_ref().map_or(0, String::len))
            .sum::<usize>()
        + values
        + f.notes.iter().map(|n| 32 + n.len()).sum::<usize>()
        + f.raw.as_ref().map_or(0, |r| r.0.len())
}

/// Findings waiting in a temporary file (removed by the system when closed), one JSON line each.
struct Spill {
    file: io::BufWriter<std::fs::File>,
}

fn spill_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!(
        "a temporary file for findings waiting their turn: {e}"
    ))
}

impl Spill {
    fn new() -> io::Result<Spill> {
        let file = tempfile::tempfile().map_err(spill_error)?;
        Ok(Spill {
            file: io::BufWriter::with_capacity(256 * 1024, file),
        })
    }

    fn push(&mut self, f: &Finding) -> io::Result<()> {
        serde_json::to_writer(&mut self.file, f).map_err(spill_error)?;
        self.file.write_all(b"\n").map_err(spill_error)
    }

    fn drain(self, emit: &mut dyn FnMut(Finding) -> io::Result<()>) -> io::Result<()> {
        use std::io::Seek;
        let mut file = self.file.into_inner().map_err(|e| spill_error(e.error()))?;
        file.rewind().map_err(spill_error)?;
        for line in io::BufReader::with_capacity(256 * 1024, file).lines() {
            let line = line.map_err(spill_error)?;
            emit(serde_json::from_str(&line).map_err(spill_error)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(input: usize, n: u64) -> Finding {
        let mut f = crate::report::tests::sample();
        f.location = Location {
            file: format!("input{input}"),
            record: n,
        };
        f
    }

    fn shared() -> Shared {
        Shared {
            next: AtomicUsize::new(0),
            head: Mutex::new(0),
            moved: Condvar::new(),
            abort: AtomicBool::new(false),
            window: 8,
        }
    }

    #[test]
    fn findings_of_inputs_read_ahead_are_written_in_order_and_spill_past_the_budget() {
        // Three inputs whose findings arrive interleaved, the last input first.
        let mut messages = Vec::new();
        for n in 0..50 {
            messages.push(Message::Findings(2, vec![finding(2, n)]));
            messages.push(Message::Findings(1, vec![finding(1, n)]));
            messages.push(Message::Findings(0, vec![finding(0, n)]));
        }
        messages.push(Message::Done(2, Summary::default()));
        messages.push(Message::Done(1, Summary::default()));
        messages.push(Message::Done(0, Summary::default()));
        // Room for about three findings in memory: the rest of inputs 1 and 2 spill.
        let budget = 3 * approx_size(&finding(0, 0));
        let mut order = Reorder {
            head: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            budget,
        };
        let shared = shared();
        let mut summary = Summary::default();
        let mut written = Vec::new();
        let mut most_held = 0;
        for m in messages {
            order
                .take(
                    m,
                    &mut summary,
                    &mut |f| {
                        written.push((f.location.file.clone(), f.location.record));
                        Ok(())
                    },
                    &shared,
                )
                .unwrap();
            most_held = most_held.max(order.held_bytes);
            assert!(order.held_bytes <= budget);
        }
        assert!(
            order.held.values().all(|h| h.spill.is_none()),
            "nothing left"
        );
        assert!(most_held > 0, "some findings waited in memory");
        let expected: Vec<(String, u64)> = (0..3)
            .flat_map(|i| (0..50).map(move |n| (format!("input{i}"), n)))
            .collect();
        assert_eq!(written, expected);
        assert_eq!(order.head, 3);
        assert_eq!(*shared.head.lock().unwrap(), 3, "the workers may read on");
    }

    #[test]
    fn a_spilled_finding_reads_back_the_same() {
        let mut spill = Spill::new().unwrap();
        let f = finding(7, 3);
        spill.push(&f).unwrap();
        let mut back = Vec::new();
        spill
            .drain(&mut |g| {
                back.push(g);
                Ok(())
            })
            .unwrap();
        assert_eq!(back, vec![f]);
    }
}
