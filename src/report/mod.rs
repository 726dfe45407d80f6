//! Reports: findings as a terminal table, JSON lines, a JSON array, CSV, SARIF or OCSF, and the
//! summary.

pub mod attack;
pub mod ocsf;
pub mod sanitize;
pub mod sarif;
pub mod snapshot;
pub mod sort;
pub mod summary;

use crate::engine::{MatchKey, MatchValue, Severity};
use sanitize::{csv_cell, json_line, terminal};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

/// A flagged event and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub detection: DetectionInfo,
    pub event: EventInfo,
    pub location: Location,
    /// The event values the deciding policy reads, in the policy's terms.
    pub values: Vec<ReadValue>,
    /// Caveats, such as an inventory fact taken after the event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A detection over many events: its group, window, counts and the events that made it.
    /// `event`, `location` and `values` are then those of the first event shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Box<Correlated>>,
    /// On its way from the events to the correlations: a match and what it is grouped by.
    /// Taken off before a finding is written.
    #[serde(skip)]
    pub matched: Option<Box<Matched>>,
    /// The event as read (`--raw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawEvent>,
}

/// A finding over many events ([`crate::engine::correlation`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Correlated {
    /// `count`, `distinct`, `sequence` or `group`.
    pub kind: String,
    /// What the detection declares: `count >= 500 per principal within 10m`.
    pub rule: String,
    /// Each expression of `@group` with its value.
    pub group: Vec<ReadValue>,
    /// `10m`.
    pub window: String,
    /// The window: from the first event to the first plus the window's length.
    pub start: String,
    pub end: String,
    /// The times of the first and last events counted.
    pub first: String,
    pub last: String,
    /// What is compared with the threshold: matching events (for a policy with `@each`, the
    /// elements its condition held for).
    pub count: u64,
    /// Matching events.
    pub events: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<DistinctValues>,
    /// A sequence's steps, in order, this detection last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// The events shown: the first of the window (at most [`SAMPLE`]) and the last.
    pub sample: Vec<Contributing>,
    /// Matching events not shown.
    pub omitted: u64,
}

/// How many events a correlation finding shows, besides its last.
pub const SAMPLE: usize = 10;

/// The distinct values a correlation counted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DistinctValues {
    /// The expression of `@distinct`.
    pub expression: String,
    pub count: u64,
    /// The values, in the order first seen, at most [`DISTINCT_SHOWN`].
    pub values: Vec<KeyValue>,
    /// Whether more values were seen than kept: `count` is then a lower bound.
    #[serde(default)]
    pub more: bool,
}

/// The most distinct values a finding keeps and shows, when the threshold is lower.
pub const DISTINCT_SHOWN: usize = 100;

/// An event a correlation counted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Contributing {
    /// The detection that matched it (for a sequence, its step).
    pub detection: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub event_time: String,
    pub action: String,
    pub location: Location,
    /// What its condition read; empty when not kept (see [`Matched::explained`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<ReadValue>,
    /// The record's text, until the scan explains it as the finding is written
    /// (see [`Matched::sampled`]); never written out.
    #[serde(skip)]
    pub text: Option<String>,
}

/// A value in Cedar's spelling and as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct KeyValue {
    pub cedar: String,
    pub json: serde_json::Value,
}

impl KeyValue {
    /// A match's value as a finding shows it.
    pub fn of(v: &MatchValue) -> KeyValue {
        let shown = v.shown();
        KeyValue {
            cedar: shown.cedar,
            json: shown.json,
        }
    }
}

/// A match of a detection that feeds correlations, with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The detection that matched, by its index in the pack.
    pub detection: usize,
    /// The event's time, in milliseconds since the epoch.
    pub time: i64,
    pub keys: Vec<MatchKey>,
    /// The detection is reported on its own too (a step of a sequence that is a detection of
    /// its own): the finding is written as well as counted.
    pub reported: bool,
    /// Its event and the values its condition read are filled in (test cases explain every
    /// match at once).
    pub explained: bool,
    /// One of the first matches of its group in its input and window: it carries its record's
    /// text (in `Finding::raw`), explained only if the group's window fires. The others give
    /// only their id, time, action and location: most matches are counted, not shown.
    pub sampled: bool,
}

impl Correlated {
    /// What was counted, in a line: `4 events from … to …`, with the distinct values.
    pub fn counted(&self) -> String {
        let mut s = match self.kind.as_str() {
            "sequence" => format!(
                "{} then {} completing event(s), from {} to {}",
                self.steps
                    .iter()
                    .take(self.steps.len().saturating_sub(1))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", then "),
                self.count,
                self.first,
                self.last
            ),
            _ if self.count != self.events => format!(
                "{} in {} event(s), from {} to {}",
                self.count, self.events, self.first, self.last
            ),
            _ => format!(
                "{} event(s), from {} to {}",
                self.events, self.first, self.last
            ),
        };
        if let Some(d) = &self.distinct {
            s.push_str(&format!(
                "; {}{} distinct {}",
                if d.more { "at least " } else { "" },
                d.count,
                d.expression
            ));
        }
        s
    }

    /// The distinct values, in Cedar's spelling, at most `n` of them.
    pub fn distinct_values(&self, n: usize) -> Option<String> {
        let d = self.distinct.as_ref()?;
        let shown: Vec<&str> = d.values.iter().take(n).map(|v| v.cedar.as_str()).collect();
        let more = d.values.len().saturating_sub(n);
        Some(if more > 0 || d.more {
            format!("{} …", shown.join(", "))
        } else {
            shown.join(", ")
        })
    }
}

impl Contributing {
    /// What its condition read, in a line: `a = 1; b absent`.
    pub fn read(&self) -> String {
        self.values
            .iter()
            .map(|v| match &v.value {
                Some(value) => format!("{} = {value}", v.field),
                None => format!("{} absent", v.field),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// An event's JSON text as it stood in its input, written as JSON (not as a string) and through
/// the same escapes as the rest of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent(pub String);

impl Serialize for RawEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.0.clone()) {
            Ok(raw) => raw.serialize(serializer),
            // The decoder hands over only valid JSON; were it not, the text as a string.
            Err(_) => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(RawEvent(raw.get().to_string()))
    }
}

impl Finding {
    /// The fields the policy read that the event does not have.
    pub fn absent_fields(&self) -> Vec<&str> {
        self.values
            .iter()
            .filter(|v| v.value.is_none())
            .map(|v| v.field.as_str())
            .collect()
    }
}

/// The detection that fired.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DetectionInfo {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// `file:line` of the policy.
    pub policy: String,
}

/// What identifies the event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventInfo {
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub event_time: String,
    /// `<service>:<eventName>`.
    pub action: String,
    pub principal: String,
    pub principal_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    pub resource: String,
    #[serde(
        rename = "sourceIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl EventInfo {
    /// An event known only by its id, time and action (a match counted, not explained).
    pub fn identified(event_id: String, event_time: String, action: String) -> EventInfo {
        EventInfo {
            event_id,
            event_time,
            action,
            principal: String::new(),
            principal_type: String::new(),
            access_key_id: None,
            resource: String::new(),
            source_ip_address: None,
            aws_region: None,
            recipient_account_id: None,
            user_agent: None,
            error_code: None,
        }
    }
}

/// Where the event was read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    /// 0-based index of the record in the file.
    pub record: u64,
}

/// One value a policy read: `requestParameters["x-amz-acl"] = "public-read"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReadValue {
    pub field: String,
    /// The value as JSON (`"public-read"`, `22`, `true`, a list); `null` when the event has no
    /// such value, which can be the reason too (`unless { context has errorCode }`).
    #[serde(rename = "value", default)]
    pub json: Option<serde_json::Value>,
    /// In Cedar syntax (strings quoted), as the table shows it; `None` when absent.
    #[serde(rename = "cedar", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl ReadValue {
    /// A value read, or its absence.
    pub fn new(field: String, shown: Option<crate::engine::Shown>) -> ReadValue {
        let (value, json) = match shown {
            Some(s) => (Some(s.cedar), Some(s.json)),
            None => (None, None),
        };
        ReadValue { field, json, value }
    }

    /// A value that is no Cedar value (`candidate permits`): shown as it is.
    pub fn text(field: &str, text: String) -> ReadValue {
        ReadValue {
            field: field.to_string(),
            json: Some(serde_json::Value::String(text.clone())),
            value: Some(text),
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable blocks, coloured on a terminal.
    Table,
    /// One JSON object per line.
    Jsonl,
    /// One JSON array.
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// SARIF 2.1.0, for code-scanning UIs: a rule per detection, a result per finding.
    Sarif,
    /// OCSF Detection Findings (class 2004) as JSON lines, for Security Lake and SIEMs.
    Ocsf,
}

/// A finding in one line of text: the detection's title, who did what to what, and the values
/// the detection read.
pub fn finding_text(f: &Finding) -> String {
    let e = &f.event;
    if let Some(c) = &f.correlation {
        let group: Vec<String> = c
            .group
            .iter()
            .map(|g| format!("{} = {}", g.field, g.value.as_deref().unwrap_or("-")))
            .collect();
        return format!(
            "{}: {} ({}): {}",
            f.detection.title,
            c.rule,
            group.join(", "),
            c.counted()
        );
    }
    let mut text = format!(
        "{}: {} {} {} on {}",
        f.detection.title, e.principal_type, e.principal, e.action, e.resource
    );
    if let Some(ip) = &e.source_ip_address {
        text.push_str(&format!(" from {ip}"));
    }
    let because: Vec<String> = f
        .values
        .iter()
        .map(|v| match &v.value {
            Some(value) => format!("{} = {value}", v.field),
            None => format!("{} absent", v.field),
        })
        .collect();
    if !because.is_empty() {
        text.push_str(&format!(" ({})", because.join("; ")));
    }
    text
}

/// A destination for findings.
pub trait FindingWriter {
    fn write(&mut self, finding: &Finding) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

/// The writer for `format`, writing to `out`.
pub fn writer<'w>(
    format: Format,
    out: Box<dyn Write + 'w>,
    color: bool,
) -> Box<dyn FindingWriter + 'w> {
    match format {
        Format::Table => Box::new(TableWriter {
            out,
            color,
            count: 0,
        }),
        Format::Jsonl => Box::new(JsonWriter {
            out,
            array: false,
            count: 0,
        }),
        Format::Json => Box::new(JsonWriter {
            out,
            array: true,
            count: 0,
        }),
        Format::Csv => Box::new(CsvWriter {
            out: csv::Writer::from_writer(out),
            header: false,
        }),
        Format::Sarif => Box::new(sarif::SarifWriter::new(out)),
        Format::Ocsf => Box::new(ocsf::OcsfWriter { out }),
    }
}

/// One line per event, for an investigation's timeline.
pub fn timeline_writer<'w>(out: Box<dyn Write + 'w>) -> Box<dyn FindingWriter + 'w> {
    Box::new(TimelineWriter { out })
}

struct TimelineWriter<'w> {
    out: Box<dyn Write + 'w>,
}

impl FindingWriter for TimelineWriter<'_> {
    fn write(&mut self, f: &Finding) -> io::Result<()> {
        let t = |s: &str| terminal(s).into_owned();
        let e = &f.event;
        let key = e
            .access_key_id
            .as_deref()
            .map(|k| format!("  key {}", t(k)))
            .unwrap_or_default();
        let failed = e
            .error_code
            .as_deref()
            .map(|c| format!("  failed: {}", t(c)))
            .unwrap_or_default();
        writeln!(
            self.out,
            "{}  {:<40} {} {}{key}  from {}  on {}{failed}  [{}]",
            t(&e.event_time),
            t(&e.action),
            t(&e.principal_type),
            t(&e.principal),
            t(e.source_ip_address.as_deref().unwrap_or("-")),
            t(&e.resource),
            t(&e.event_id)
        )
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

struct JsonWriter<'w> {
    out: Box<dyn Write + 'w>,
    array: bool,
    count: u64,
}

impl FindingWriter for JsonWriter<'_> {
    fn write(&mut self, finding: &Finding) -> io::Result<()> {
        let line = json_line(finding)?;
        if self.array {
            self.out
                .write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
        }
        self.out.write_all(&line)?;
        if !self.array {
            self.out.write_all(b"\n")?;
        }
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.array {
            self.out
                .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 21] = [
    "severity",
    "detection",
    "title",
    "mitre",
    "eventTime",
    "eventID",
    "action",
    "principal",
    "principalType",
    "accessKeyId",
    "resource",
    "sourceIPAddress",
    "awsRegion",
    "recipientAccountId",
    "userAgent",
    "errorCode",
    "values",
    "notes",
    "file",
    "record",
    "correlation",
];

struct CsvWriter<'w> {
    out: csv::Writer<Box<dyn Write + 'w>>,
    header: bool,
}

impl FindingWriter for CsvWriter<'_> {
    fn write(&mut self, f: &Finding) -> io::Result<()> {
        if !self.header {
            self.out.write_record(CSV_HEADER)?;
            self.header = true;
        }
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let values = f
            .values
            .iter()
            .map(|v| match &v.value {
                Some(value) => format!("{} = {value}", v.field),
                None => format!("{} absent", v.field),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let e = &f.event;
        let record = [
            f.detection.severity.to_string(),
            f.detection.id.clone(),
            f.detection.title.clone(),
            o(&f.detection.mitre),
            e.event_time.clone(),
            e.event_id.clone(),
            e.action.clone(),
            e.principal.clone(),
            e.principal_type.clone(),
            o(&e.access_key_id),
            e.resource.clone(),
            o(&e.source_ip_address),
            o(&e.aws_region),
            o(&e.recipient_account_id),
            o(&e.user_agent),
            o(&e.error_code),
            values,
            f.notes.join("; "),
            f.location.file.clone(),
            f.location.record.to_string(),
            f.correlation
                .as_deref()
                .map(correlation_cell)
                .unwrap_or_default(),
        ];
        self.out
            .write_record(record.iter().map(|c| csv_cell(c).into_owned()))?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.header {
            self.out.write_record(CSV_HEADER)?;
        }
        self.out.flush()
    }
}

/// A correlation finding in one CSV cell: its rule, group, counts and events.
fn correlation_cell(c: &Correlated) -> String {
    let group: Vec<String> = c
        .group
        .iter()
        .map(|g| format!("{} = {}", g.field, g.value.as_deref().unwrap_or("-")))
        .collect();
    let events: Vec<String> = c
        .sample
        .iter()
        .map(|e| {
            format!(
                "{} {} {}#{}",
                e.event_time, e.event_id, e.location.file, e.location.record
            )
        })
        .collect();
    let mut cell = format!("{}; {}", c.rule, c.counted());
    if !group.is_empty() {
        cell.push_str(&format!("; group {}", group.join(", ")));
    }
    if let Some(values) = c.distinct_values(DISTINCT_SHOWN) {
        cell.push_str(&format!("; values {values}"));
    }
    cell.push_str(&format!("; events {}", events.join(", ")));
    if c.omitted > 0 {
        cell.push_str(&format!(" and {} more", c.omitted));
    }
    cell
}

/// How many distinct values the table shows.
const TABLE_DISTINCT: usize = 20;

struct TableWriter<'w> {
    out: Box<dyn Write + 'w>,
    color: bool,
    count: u64,
}

fn severity_style(s: Severity) -> anstyle::Style {
    use anstyle::AnsiColor::{BrightWhite, Cyan, Red, White, Yellow};
    let bold = anstyle::Style::new().bold();
    match s {
        Severity::Critical => bold
            .fg_color(Some(BrightWhite.into()))
            .bg_color(Some(Red.into())),
        Severity::High => bold.fg_color(Some(Red.into())),
        Severity::Medium => bold.fg_color(Some(Yellow.into())),
        Severity::Low => bold.fg_color(Some(Cyan.into())),
        Severity::Info => bold.fg_color(Some(White.into())),
    }
}

impl TableWriter<'_> {
    fn paint(&self, style: anstyle::Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

impl FindingWriter for TableWriter<'_> {
    fn write(&mut self, f: &Finding) -> io::Result<()> {
        let t = |s: &str| terminal(s).into_owned();
        let e = &f.event;
        let sev = format!("{:<8}", f.detection.severity.as_str().to_uppercase());
        let mut block = String::new();
        if self.count > 0 {
            block.push('\n');
        }
        block.push_str(&format!(
            "{} {}  {}\n",
            self.paint(severity_style(f.detection.severity), &sev),
            self.paint(anstyle::Style::new().bold(), &t(&f.detection.id)),
            t(&f.detection.title)
        ));
        let label =
            |name: &str| self.paint(anstyle::Style::new().dimmed(), &format!("  {name:<10}"));
        if let Some(c) = &f.correlation {
            block.push_str(&format!("{}{}\n", label("rule"), t(&c.rule)));
            for g in &c.group {
                block.push_str(&format!(
                    "{}{} = {}\n",
                    label("group"),
                    t(&g.field),
                    t(g.value.as_deref().unwrap_or("-"))
                ));
            }
            block.push_str(&format!(
                "{}{}, in the window {} to {}\n",
                label("counted"),
                t(&c.counted()),
                t(&c.start),
                t(&c.end)
            ));
            if let Some(values) = c.distinct_values(TABLE_DISTINCT) {
                block.push_str(&format!("{}{}\n", label("values"), t(&values)));
            }
        }
        let key = e
            .access_key_id
            .as_deref()
            .map(|k| format!("  key {}", t(k)))
            .unwrap_or_default();
        block.push_str(&format!(
            "{}{} {}{key}\n",
            label("principal"),
            t(&e.principal_type),
            t(&e.principal)
        ));
        let failed = e
            .error_code
            .as_deref()
            .map(|c| format!("  (failed: {})", t(c)))
            .unwrap_or_default();
        block.push_str(&format!(
            "{}{} on {}{failed}\n",
            label("action"),
            t(&e.action),
            t(&e.resource)
        ));
        let region = e
            .aws_region
            .as_deref()
            .map(|r| format!("  in {}", t(r)))
            .unwrap_or_default();
        let source = e.source_ip_address.as_deref().unwrap_or("-");
        block.push_str(&format!(
            "{}{}  from {}{region}\n",
            label("when"),
            t(&e.event_time),
            t(source)
        ));
        // A correlation's events show what each read, below.
        let values: &[ReadValue] = if f.correlation.is_some() {
            &[]
        } else {
            &f.values
        };
        for v in values {
            if let Some(value) = &v.value {
                block.push_str(&format!(
                    "{}{} = {}\n",
                    label("because"),
                    t(&v.field),
                    t(value)
                ));
            }
        }
        let absent: Vec<String> = f.absent_fields().into_iter().map(t).collect();
        if !absent.is_empty() && f.correlation.is_none() {
            block.push_str(&format!("{}{}\n", label("absent"), absent.join(", ")));
        }
        for n in &f.notes {
            block.push_str(&format!("{}{}\n", label("note"), t(n)));
        }
        if let Some(m) = &f.detection.mitre {
            block.push_str(&format!("{}{}\n", label("mitre"), t(m)));
        }
        if let Some(r) = &f.detection.runbook {
            block.push_str(&format!("{}{}\n", label("runbook"), t(r)));
        }
        block.push_str(&format!(
            "{}{}  {}#{}  policy {}\n",
            label("event"),
            t(&e.event_id),
            t(&f.location.file),
            f.location.record,
            t(&f.detection.policy)
        ));
        if let Some(c) = &f.correlation {
            block.push_str(&format!(
                "{}{} shown of {}\n",
                label("events"),
                c.sample.len(),
                c.events
            ));
            let mut before = String::new();
            for (i, x) in c.sample.iter().enumerate() {
                if i + 1 == c.sample.len() && c.omitted > 0 {
                    block.push_str(&format!("              … {} more\n", c.omitted));
                }
                block.push_str(&format!(
                    "    {}  {:<28} {}  {}#{}  {}\n",
                    t(&x.event_time),
                    t(&x.action),
                    t(&x.event_id),
                    t(&x.location.file),
                    x.location.record,
                    t(&x.detection)
                ));
                // What each read, once: the events of a burst mostly read the same.
                let read = x.read();
                if !x.values.is_empty() && read != before {
                    block.push_str(&format!("      read {}\n", t(&read)));
                    before = read;
                }
            }
        }
        self.out.write_all(block.as_bytes())?;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Finding {
        Finding {
            detection: DetectionInfo {
                id: "s3-public-object-acl".into(),
                title: "Public ACL".into(),
                severity: Severity::High,
                mitre: Some("T1530".into()),
                description: None,
                runbook: None,
                policy: "policies/s3/public_object_acl.cedar:1".into(),
            },
            event: EventInfo {
                event_id: "e1".into(),
                event_time: "2020-02-03T15:34:11Z".into(),
                action: "s3:PutObject".into(),
                principal: "arn:aws:iam::123456789012:user/a".into(),
                principal_type: "IAMUser".into(),
                access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
                resource: "arn:aws:s3:::b/k".into(),
                source_ip_address: Some("203.0.113.10".into()),
                aws_region: Some("ap-northeast-1".into()),
                recipient_account_id: None,
                user_agent: Some("=cmd|' /C calc'!A0 \u{1b}[2J".into()),
                error_code: None,
            },
            location: Location {
                file: "f.json".into(),
                record: 3,
            },
            values: vec![
                ReadValue {
                    field: "requestParameters[\"x-amz-acl\"]".into(),
                    json: Some(serde_json::Value::String("public-read".into())),
                    value: Some("\"public-read\"".into()),
                },
                ReadValue::new("errorCode".into(), None),
            ],
            notes: Vec::new(),
            correlation: None,
            matched: None,
            raw: None,
        }
    }

    fn render(format: Format) -> String {
        let mut buf = Vec::new();
        {
            let mut w = writer(format, Box::new(&mut buf), false);
            w.write(&sample()).unwrap();
            w.finish().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn no_escape_sequence_reaches_any_format() {
        for format in [
            Format::Table,
            Format::Jsonl,
            Format::Json,
            Format::Csv,
            Format::Sarif,
            Format::Ocsf,
        ] {
            let out = render(format);
            assert!(!out.contains('\u{1b}'), "{format:?}: {out}");
        }
    }

    #[test]
    fn csv_neutralises_formulas_and_json_parses() {
        let csv = render(Format::Csv);
        assert!(csv.contains("'=cmd"), "{csv}");
        let json: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(
            json[0]["event"]["userAgent"], "=cmd|' /C calc'!A0 \u{1b}[2J",
            "JSON keeps the value, escaped"
        );
        let line: serde_json::Value = serde_json::from_str(render(Format::Jsonl).trim()).unwrap();
        assert_eq!(line["detection"]["severity"], "high");
        assert_eq!(
            line["values"][0]["value"], "public-read",
            "the JSON value, not a Cedar literal in a string"
        );
        assert_eq!(line["values"][0]["cedar"], "\"public-read\"");
        assert_eq!(line["values"][1]["value"], serde_json::Value::Null);
        assert!(line["values"][1].get("cedar").is_none());
    }

    #[test]
    fn table_reads_well() {
        let t = render(Format::Table);
        assert!(
            t.starts_with("HIGH     s3-public-object-acl  Public ACL\n"),
            "{t}"
        );
        assert!(
            t.contains("because   requestParameters[\"x-amz-acl\"] = \"public-read\""),
            "{t}"
        );
        assert!(t.contains("absent    errorCode\n"), "{t}");
    }
}
