//! `--format sarif`: SARIF 2.1.0 for code-scanning UIs (GitHub code scanning and other viewers).
//!
//! One rule per detection that fired (its id, title, description, severity as the level and as
//! GitHub's `security-severity`, the runbook as help, the ATT&CK techniques as tags) and one
//! result per finding, located at the input and the record's index. Findings stream out as they
//! are decided: the results are written first and the tool with its rules after them (the order
//! of an object's members means nothing in JSON), so memory holds the rules, not the results.
//! Each part is a `serde-sarif` structure, serialised through the same escapes as JSON output.

use super::sanitize::json_line;
use super::{FindingWriter, finding_text};
use crate::engine::Severity;
use crate::report::Finding;
use serde_sarif::sarif::{
    ArtifactLocation, Location, LogicalLocation, Message, MultiformatMessageString,
    PhysicalLocation, PropertyBag, ReportingConfiguration, ReportingDescriptor, Result as Hit,
    ResultLevel, Tool, ToolComponent,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

pub(crate) struct SarifWriter<'w> {
    out: Box<dyn Write + 'w>,
    rules: Vec<ReportingDescriptor>,
    rule_index: HashMap<String, usize>,
    count: u64,
}

impl<'w> SarifWriter<'w> {
    pub(crate) fn new(out: Box<dyn Write + 'w>) -> Self {
        SarifWriter {
            out,
            rules: Vec::new(),
            rule_index: HashMap::new(),
            count: 0,
        }
    }

    fn head(&mut self) -> io::Result<()> {
        self.out.write_all(
            b"{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\",\"runs\":[{\"results\":[\n",
        )
    }

    /// The index of the finding's rule, added on first sight.
    fn rule(&mut self, f: &Finding) -> usize {
        if let Some(i) = self.rule_index.get(&f.detection.id) {
            return *i;
        }
        let i = self.rules.len();
        self.rules.push(rule(f));
        self.rule_index.insert(f.detection.id.clone(), i);
        i
    }
}

/// The level a severity shows as.
pub fn level(s: Severity) -> ResultLevel {
    match s {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Info => ResultLevel::Note,
    }
}

/// GitHub's `security-severity` (0.0 to 10.0, CVSS-like: 9+ critical, 7+ high, 4+ medium).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

fn text(s: &str) -> MultiformatMessageString {
    MultiformatMessageString::builder()
        .text(s.to_string())
        .build()
}

fn rule(f: &Finding) -> ReportingDescriptor {
    let d = &f.detection;
    let mut tags = vec!["security".to_string(), "cloudtrail".to_string()];
    tags.extend(
        d.mitre
            .iter()
            .flat_map(|m| m.split(','))
            .map(|t| format!("external/mitre/{}", t.trim()))
            .filter(|t| t.len() > "external/mitre/".len()),
    );
    let mut properties = BTreeMap::new();
    properties.insert(
        "security-severity".to_string(),
        security_severity(d.severity).into(),
    );
    properties.insert("severity".to_string(), d.severity.as_str().into());
    properties.insert("policy".to_string(), d.policy.clone().into());
    let help = match &d.runbook {
        Some(r) => format!("{}\n\nRunbook: {r}", d.title),
        None => d.title.clone(),
    };
    ReportingDescriptor::builder()
        .id(d.id.clone())
        .name(d.id.clone())
        .short_description(text(&d.title))
        .full_description(text(d.description.as_deref().unwrap_or(&d.title)))
        .help(text(&help))
        .default_configuration(
            ReportingConfiguration::builder()
                .level(serde_json::to_value(level(d.severity)).unwrap_or_default())
                .build(),
        )
        .properties(
            PropertyBag::builder()
                .tags(tags)
                .additional_properties(properties)
                .build(),
        )
        .build()
}

fn result(f: &Finding, rule_index: usize) -> Hit {
    let e = &f.event;
    let physical = PhysicalLocation::builder()
        .artifact_location(
            ArtifactLocation::builder()
                .uri(uri(&f.location.file))
                .build(),
        )
        .build();
    let logical = LogicalLocation::builder()
        .name(format!("record {}", f.location.record))
        .fully_qualified_name(format!("{}#{}", f.location.file, f.location.record))
        .kind("object".to_string())
        .build();
    let location = Location::builder()
        .physical_location(physical)
        .logical_locations(vec![logical])
        .build();
    let mut fingerprints = BTreeMap::new();
    let window = f.correlation.as_ref().map_or("", |c| c.start.as_str());
    fingerprints.insert(
        "trailcedar/v1".to_string(),
        format!("{}:{}:{window}", f.detection.id, e.event_id),
    );
    let mut properties = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            properties.insert(k.to_string(), serde_json::Value::from(v));
        }
    };
    put("eventID", Some(&e.event_id));
    put("eventTime", Some(&e.event_time));
    put("action", Some(&e.action));
    put("principal", Some(&e.principal));
    put("principalType", Some(&e.principal_type));
    put("resource", Some(&e.resource));
    put("accessKeyId", e.access_key_id.as_deref());
    put("sourceIPAddress", e.source_ip_address.as_deref());
    put("awsRegion", e.aws_region.as_deref());
    put("recipientAccountId", e.recipient_account_id.as_deref());
    put("userAgent", e.user_agent.as_deref());
    put("errorCode", e.error_code.as_deref());
    properties.insert(
        "values".to_string(),
        serde_json::to_value(&f.values).unwrap_or_default(),
    );
    if let Some(c) = &f.correlation {
        properties.insert(
            "correlation".to_string(),
            serde_json::to_value(c).unwrap_or_default(),
        );
    }
    Hit::builder()
        .rule_id(f.detection.id.clone())
        .rule_index(rule_index as i64)
        .level(level(f.detection.severity))
        .message(Message::builder().text(finding_text(f)).build())
        .locations(vec![location])
        .partial_fingerprints(fingerprints)
        .properties(
            PropertyBag::builder()
                .additional_properties(properties)
                .build(),
        )
        .build()
}

/// A file's name as a URI reference: a relative path stays relative (to the directory of the
/// scan, as code scanning expects), an `s3://` URL stays as it is, and characters a URI may not
/// hold are percent-encoded.
pub(crate) fn uri(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FindingWriter for SarifWriter<'_> {
    fn write(&mut self, f: &Finding) -> io::Result<()> {
        if self.count == 0 {
            self.head()?;
        } else {
            self.out.write_all(b",\n")?;
        }
        let index = self.rule(f);
        self.out.write_all(&json_line(&result(f, index))?)?;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.count == 0 {
            self.head()?;
        }
        let driver = ToolComponent::builder()
            .name("trailcedar".to_string())
            .version(env!("CARGO_PKG_VERSION").to_string())
            .semantic_version(env!("CARGO_PKG_VERSION").to_string())
            .rules(std::mem::take(&mut self.rules))
            .build();
        let tool = Tool::builder().driver(driver).build();
        self.out.write_all(b"\n],\"tool\":")?;
        self.out.write_all(&json_line(&tool)?)?;
        self.out.write_all(b"}]}\n")?;
        self.out.flush()
    }
}
