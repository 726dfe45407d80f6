//! Test cases for detections, kept beside each policy: `x.cedar` has its cases in `x.test.json`.
//!
//! ```json
//! { "cases": [
//!   { "name": "public-read PutObject", "log": "../../fixtures/events/s3/public_canned_acl.flag.json", "expect": "flag" },
//!   { "name": "private ACL, failed call", "log": "../../fixtures/events/s3/public_canned_acl.allow.json", "expect": "allow" },
//!   { "name": "inline", "events": [ { "eventVersion": "1.09", ... } ], "expect": "flag",
//!     "detections": ["s3-public-canned-acl"] },
//!   { "name": "a known gap", "log": "...", "expect": "flag", "todo": "needs the bucket policy" }
//! ] }
//! ```
//!
//! Every event of a case is checked on its own: `flag` means each event is flagged by the
//! case's detections (by default, those of the policy file beside it), `allow` that none of them
//! flags any event. A `todo` case reports its outcome without failing.

use crate::engine::Engine;
use crate::report::Finding;
use crate::scan::{ScanOptions, scan_text};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Flag,
    Allow,
}

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// A fixture log, relative to the case file.
    #[serde(default)]
    pub log: Option<PathBuf>,
    /// Events written inline.
    #[serde(default)]
    pub events: Option<Vec<serde_json::Value>>,
    pub expect: Expect,
    /// The detections this case is about; default: those of the policy file beside it.
    #[serde(default)]
    pub detections: Option<Vec<String>>,
    /// A known gap: the reason it does not pass yet.
    #[serde(default)]
    pub todo: Option<String>,
}

/// A file of cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub cases: Vec<Case>,
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(Vec<String>),
    /// A `todo` case: whether it would pass now, and its reason.
    Todo {
        passes: bool,
        reason: String,
    },
}

/// A case and how it ended.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: PathBuf,
    pub name: String,
    pub expect: Expect,
    pub outcome: Outcome,
}

/// The case file of a policy file: `x.cedar` → `x.test.json`.
pub fn case_file_for(policy: &Path) -> PathBuf {
    policy.with_extension("test.json")
}

/// Runs the cases in `path` against `engine`; `own` are the detections of the policy beside it.
pub fn run_file(engine: &Engine, path: &Path, own: &[String]) -> Result<Vec<CaseResult>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: CaseFile =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(file
        .cases
        .iter()
        .map(|case| {
            let outcome = match run_case(engine, base, case, own) {
                Ok(failures) if case.todo.is_some() => Outcome::Todo {
                    passes: failures.is_empty(),
                    reason: case.todo.clone().unwrap_or_default(),
                },
                Ok(failures) if failures.is_empty() => Outcome::Pass,
                Ok(failures) => Outcome::Fail(failures),
                Err(e) => Outcome::Fail(vec![e]),
            };
            CaseResult {
                file: path.to_path_buf(),
                name: case.name.clone(),
                expect: case.expect,
                outcome,
            }
        })
        .collect())
}

fn run_case(
    engine: &Engine,
    base: &Path,
    case: &Case,
    own: &[String],
) -> Result<Vec<String>, String> {
    let (name, text) = match (&case.log, &case.events) {
        (Some(log), None) => {
            let path = base.join(log);
            let bytes = crate::decode::read_all(
                std::io::BufReader::new(
                    std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                ),
                512 << 20,
                0,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
            let text = crate::decode::as_text(&bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .to_string();
            (path.display().to_string(), text)
        }
        (None, Some(events)) => (
            "inline".to_string(),
            serde_json::to_string(events).map_err(|e| e.to_string())?,
        ),
        _ => return Err("a case needs exactly one of \"log\" and \"events\"".to_string()),
    };
    let targets: BTreeSet<&str> = match &case.detections {
        Some(ids) => ids.iter().map(String::as_str).collect(),
        None => own.iter().map(String::as_str).collect(),
    };
    if targets.is_empty() {
        return Err("no detections to check: name them in \"detections\"".to_string());
    }
    for t in &targets {
        if !engine.pack.detections.iter().any(|d| d.id == *t) {
            return Err(format!("unknown detection {t:?}"));
        }
    }
    let report = scan_text(engine, &name, &text, 0, &ScanOptions::default());
    let s = &report.summary;
    let mut failures = Vec::new();
    if s.events_read == 0 {
        failures.push("the case holds no events".to_string());
    }
    for p in s.rejected.iter().chain(&s.unreadable) {
        failures.push(format!(
            "record {}: not evaluated: {}",
            p.record.unwrap_or(0),
            p.reason
        ));
    }
    for p in &s.rule_error_examples {
        failures.push(format!("record {}: {}", p.record.unwrap_or(0), p.reason));
    }
    for record in 0..s.events_read {
        let fired: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.location.record == record && targets.contains(f.detection.id.as_str()))
            .collect();
        let event_id = event_id_of(&text, record);
        match case.expect {
            Expect::Flag if fired.is_empty() => failures.push(format!(
                "record {record} ({event_id}): expected {} to flag it, but it was allowed",
                join(&targets)
            )),
            Expect::Allow if !fired.is_empty() => {
                let ids: BTreeSet<&str> = fired.iter().map(|f| f.detection.id.as_str()).collect();
                let values: Vec<String> = fired
                    .iter()
                    .flat_map(|f| f.values.iter())
                    .filter_map(|v| v.value.as_ref().map(|x| format!("{} = {x}", v.field)))
                    .collect();
                failures.push(format!(
                    "record {record} ({event_id}): expected it allowed, but {} flagged it ({})",
                    join(&ids),
                    values.join("; ")
                ));
            }
            _ => {}
        }
    }
    Ok(failures)
}

fn join(ids: &BTreeSet<&str>) -> String {
    ids.iter().copied().collect::<Vec<_>>().join(", ")
}

fn event_id_of(text: &str, record: u64) -> String {
    let mut id = String::new();
    let _ = crate::decode::for_each_record(text, 0, &mut |r| {
        if r.index == record {
            id = r
                .data
                .into_event()
                .ok()
                .and_then(|e| e.event_id.map(|i| i.into_owned()))
                .unwrap_or_default();
        }
    });
    if id.is_empty() {
        "no eventID".to_string()
    } else {
        id
    }
}
