//! `scan --state FILE`: the windows that have not fired and the sequences under way at the end
//! of a run, saved for the next run to resume (a daily scan of yesterday's logs catches a
//! burst or a sequence that crosses midnight).
//!
//! The file is JSON: a `format` naming it, a `version`, the correlations of the pack it was
//! written for (each id with its rule: group, window, threshold, distinct, steps), the latest
//! event time seen, and the open groups. A file that does not parse, of another format or
//! version, or written for other correlations is an error that names it: never a silent fresh
//! start. A file that does not exist is the first run.

use super::group::{Chain, Group, Step};
use super::{Correlator, Evidence};
use crate::engine::MatchValue;
use crate::engine::correlation::Correlation;
use crate::report::KeyValue;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::rc::Rc;

/// What the `format` field says.
pub const FORMAT: &str = "trailcedar-correlation-state";

/// The version this trailcedar reads and writes.
pub const VERSION: u32 = 1;

/// A state file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub format: String,
    pub version: u32,
    /// The correlations of the pack it was written for.
    pub correlations: Vec<Identity>,
    /// The latest event time of a match seen, in milliseconds.
    pub latest: Option<i64>,
    pub groups: Vec<SavedGroup>,
}

/// A correlation as a state file records it: its id and everything that decides its windows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub id: String,
    /// [`Correlation::describe`]: the group, window, threshold, distinct expression or steps.
    pub rule: String,
}

/// An open group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedGroup {
    pub correlation: String,
    pub key: Vec<KeyValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Distinct values: value, the step it was last seen at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct: Vec<(KeyValue, i64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<Evidence>,
    /// A sequence's chains, per step before its last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<Option<SavedChain>>,
}

/// A chain of a sequence under way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedChain {
    pub start: i64,
    pub last: i64,
    pub events: Vec<Evidence>,
}

impl SavedGroup {
    /// A group's open window, as saved.
    pub fn of(correlation: &str, g: &Group) -> SavedGroup {
        let mut distinct: Vec<(u64, KeyValue, i64)> = g
            .seen
            .iter()
            .map(|(v, (last, order))| (*order, KeyValue::of(v), *last))
            .collect();
        distinct.sort_by_key(|(order, _, _)| *order);
        SavedGroup {
            correlation: correlation.to_string(),
            key: g.values.iter().map(KeyValue::of).collect(),
            steps: g.steps.iter().copied().collect(),
            distinct: distinct.into_iter().map(|(_, v, last)| (v, last)).collect(),
            sample: g.sample.iter().map(|e| Evidence::clone(e)).collect(),
            chains: g
                .chains
                .iter()
                .map(|ch| {
                    ch.as_ref().map(|ch| SavedChain {
                        start: ch.start,
                        last: ch.last,
                        events: ch.events.iter().map(|e| Evidence::clone(e)).collect(),
                    })
                })
                .collect(),
        }
    }

    /// The group again.
    pub fn into_group(self, c: &Correlation) -> Group {
        let mut g = Group::new(self.key.into_iter().map(value).collect(), c);
        g.steps = self.steps.into_iter().collect();
        for (order, (v, last)) in self.distinct.into_iter().enumerate() {
            g.seen.insert(value(v), (last, order as u64));
            g.seen_order = order as u64 + 1;
        }
        g.sample = self.sample.into_iter().map(Rc::new).collect();
        for (slot, ch) in g.chains.iter_mut().zip(self.chains) {
            *slot = ch.map(|ch| Chain {
                start: ch.start,
                last: ch.last,
                events: ch.events.into_iter().map(Rc::new).collect(),
            });
        }
        g
    }
}

/// Reads a state file for `correlator`'s pack: `Ok(None)` when it does not exist.
pub fn load(path: &Path, correlator: &Correlator) -> Result<Option<State>, String> {
    let name = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("--state {name}: {e}")),
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("--state {name}: not a state file (corrupt JSON: {e})"))?;
    let format = value.get("format").and_then(serde_json::Value::as_str);
    if format != Some(FORMAT) {
        return Err(format!(
            "--state {name}: not a trailcedar state file (its format is {}, expected {FORMAT:?})",
            format.map_or_else(|| "not given".to_string(), |f| format!("{f:?}"))
        ));
    }
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(VERSION)) {
        return Err(format!(
            "--state {name}: state version {}, this trailcedar reads version {VERSION}; remove the file to start afresh",
            version.map_or_else(|| "missing".to_string(), |v| v.to_string())
        ));
    }
    let state: State = serde_json::from_value(value)
        .map_err(|e| format!("--state {name}: a corrupt state file: {e}"))?;
    let mut theirs = state.correlations.clone();
    let mut ours = correlator.identities();
    theirs.sort();
    ours.sort();
    if theirs != ours {
        let differ: Vec<String> = theirs
            .iter()
            .filter(|t| !ours.contains(t))
            .map(|t| format!("{} ({})", t.id, t.rule))
            .chain(
                ours.iter()
                    .filter(|o| !theirs.contains(o))
                    .map(|o| format!("now {} ({})", o.id, o.rule)),
            )
            .collect();
        return Err(format!(
            "--state {name}: written for other correlations than this pack's: {}; remove the file to start afresh",
            differ.join("; ")
        ));
    }
    if let Some(g) = state
        .groups
        .iter()
        .find(|g| !ours.iter().any(|o| o.id == g.correlation))
    {
        return Err(format!(
            "--state {name}: a window of correlation {:?}, which the file does not list",
            g.correlation
        ));
    }
    Ok(Some(state))
}

/// Writes a state file: to a temporary file beside it, then renamed over it, so that a run
/// that stops half-way leaves the previous state whole.
pub fn save(path: &Path, state: &State) -> Result<(), String> {
    let name = path.display();
    let text = serde_json::to_string(state).map_err(|e| format!("--state {name}: {e}"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("--state {name}: {e}"))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .map_err(|e| format!("--state {name}: {e}"))?;
    tmp.persist(path)
        .map_err(|e| format!("--state {name}: {}", e.error))?;
    Ok(())
}

impl State {
    /// The state to save after a run.
    pub fn of(correlator: &Correlator, groups: Vec<SavedGroup>) -> State {
        State {
            format: FORMAT.to_string(),
            version: VERSION,
            correlations: correlator.identities(),
            latest: correlator.latest(),
            groups,
        }
    }
}

/// A saved value as a match would read it.
fn value(v: KeyValue) -> MatchValue {
    MatchValue::of(crate::engine::Shown {
        cedar: v.cedar,
        json: v.json,
    })
}
