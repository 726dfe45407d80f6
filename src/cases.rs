//! Test cases for detections, kept beside each policy: `x.cedar` has its cases in `x.test.json`.
//!
//! ```json
//! { "cases": [
//!   { "name": "public-read PutObject", "log": "../../fixtures/events/s3/public_canned_acl.flag.json", "expect": "flag" },
//!   { "name": "private ACL, failed call", "log": "../../fixtures/events/s3/public_canned_acl.allow.json", "expect": "allow" },
//!   { "name": "inline", "events": [ { "eventVersion": "1.09", ... } ], "expect": "flag",
//!     "detections": ["s3-public-canned-acl"],
//!     "values": { "requestParameters[\"x-amz-acl\"]": "public-read", "errorCode": null } },
//!   { "name": "a known gap", "log": "...", "expect": "flag", "todo": "needs the bucket policy" },
//!   { "name": "with facts", "log": "...", "inventory": "../../fixtures/inventory", "expect": "flag" }
//! ] }
//! ```
//!
//! A case about a correlation (a detection with `@threshold`, `@distinct`, `@after` or a
//! grouping `@window`) is checked on its log as a whole: `flag` means the correlation reports at
//! least one finding over the case's events (taken in time order, whatever their order in the
//! log), `allow` that it reports none; `correlation` says which finding is expected, by the
//! values of its group and its count or number of distinct values:
//!
//! ```json
//! { "name": "1,168 reads in minutes", "log": "…", "expect": "flag",
//!   "correlation": { "group": { "principal.accessKeyId": "AKIA…" }, "count": 1168 } }
//! ```
//!
//! `inventory` (a path or a list of paths, relative to the case file) joins inventory facts, as
//! `--inventory` does, with `inventoryTime` for files that record no snapshot time. Given at the
//! top of the file it applies to every case that names none; a case or file without one uses the
//! command line's `--inventory` (none by default), so cases stay hermetic.
//!
//! Every event of a case is checked on its own: `flag` means each event is flagged by the
//! case's detections (by default, those of the policy file beside it), `allow` that none of them
//! flags any event. `values` are explanation values each flagging finding must report (a string
//! matches a Cedar string of that text, `null` an absent value). A `todo` case reports its outcome
//! without failing.

use crate::correlate::sampling::Sampler;
use crate::correlate::{self, Correlator};
use crate::decode;
use crate::engine::pack::Mode;
use crate::engine::{Engine, MatchValue};
use crate::model::EventView;
use crate::report::Finding;
use crate::scan::{NOT_ALLOWED, findings_of, matches_of};
use cedar_policy::Effect;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Explanation values every flagging finding must report; `null` for absent.
    #[serde(default)]
    pub values: Option<BTreeMap<String, Option<String>>>,
    /// A known gap: the reason it does not pass yet.
    #[serde(default)]
    pub todo: Option<String>,
    /// Inventory files or directories, relative to the case file.
    #[serde(default, deserialize_with = "one_or_many")]
    pub inventory: Option<Vec<PathBuf>>,
    /// The snapshot time of inventory files that record none.
    #[serde(default, rename = "inventoryTime")]
    pub inventory_time: Option<String>,
    /// For a correlation: the finding expected.
    #[serde(default)]
    pub correlation: Option<CorrelationExpect>,
}

/// The correlation finding a `flag` case expects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationExpect {
    /// Values of the group's expressions, by the expression as `@group` writes it: a string
    /// matches a Cedar string of that text, or the value's Cedar spelling.
    #[serde(default)]
    pub group: BTreeMap<String, String>,
    /// The count compared with the threshold (matching events, or elements for `@each`).
    #[serde(default)]
    pub count: Option<u64>,
    /// The number of distinct values.
    #[serde(default)]
    pub distinct: Option<u64>,
}

/// A file of cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The inventory of every case that names none.
    #[serde(default, deserialize_with = "one_or_many")]
    pub inventory: Option<Vec<PathBuf>>,
    #[serde(default, rename = "inventoryTime")]
    pub inventory_time: Option<String>,
    pub cases: Vec<Case>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<PathBuf>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    }))
}

/// An inventory (paths and time) and the engine with it, or why it did not load.
type Loaded = (Vec<PathBuf>, Option<String>, Result<Engine, String>);

/// Engines with the inventories the cases of a file name, loaded once each.
struct Engines<'e> {
    base: &'e Engine,
    dir: PathBuf,
    loaded: Vec<Loaded>,
}

impl<'e> Engines<'e> {
    /// The engine for a case: with its inventory, or the base engine.
    fn get(
        &mut self,
        paths: Option<&Vec<PathBuf>>,
        time: Option<&String>,
    ) -> Result<&Engine, String> {
        let Some(paths) = paths else {
            return Ok(self.base);
        };
        let known = |(p, t, _): &Loaded| p == paths && t.as_ref() == time;
        if !self.loaded.iter().any(known) {
            let engine = self.load(paths, time);
            self.loaded.push((paths.clone(), time.cloned(), engine));
        }
        match self.loaded.iter().find(|l| known(l)) {
            Some((_, _, engine)) => engine.as_ref().map_err(Clone::clone),
            None => Err("inventory not loaded".to_string()),
        }
    }

    fn load(&self, paths: &[PathBuf], time: Option<&String>) -> Result<Engine, String> {
        let at = match time {
            Some(t) => Some(
                crate::time::Timestamp::parse(t)
                    .map_err(|e| format!("inventoryTime {t:?}: {e}"))?,
            ),
            None => None,
        };
        let full: Vec<PathBuf> = paths.iter().map(|p| self.dir.join(p)).collect();
        let inventory = crate::inventory::Inventory::load(&full, at)
            .map_err(|e| format!("inventory: {}", e.0.join("; ")))?;
        Ok(self
            .base
            .clone()
            .with_inventory(std::sync::Arc::new(inventory)))
    }
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Each message says which record, what was expected and what happened.
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
    /// The detections the case was about.
    pub detections: Vec<String>,
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
    let mut engines = Engines {
        base: engine,
        dir: base.to_path_buf(),
        loaded: Vec::new(),
    };
    Ok(file
        .cases
        .iter()
        .map(|case| {
            let detections: Vec<String> = case.detections.clone().unwrap_or_else(|| own.to_vec());
            let (inventory, time) = match &case.inventory {
                Some(paths) => (Some(paths), case.inventory_time.as_ref()),
                None => (
                    file.inventory.as_ref(),
                    case.inventory_time
                        .as_ref()
                        .or(file.inventory_time.as_ref()),
                ),
            };
            let outcome = match engines
                .get(inventory, time)
                .and_then(|engine| run_case(engine, base, case, &detections))
            {
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
                detections,
                outcome,
            }
        })
        .collect())
}

/// The text of a case's events: its log, or its inline events.
fn case_text(base: &Path, case: &Case) -> Result<String, String> {
    match (&case.log, &case.events) {
        (Some(log), None) => {
            let path = base.join(log);
            let file =
                std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let bytes = decode::read_all(std::io::BufReader::new(file), 512 << 20, 0)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            decode::as_text(&bytes)
                .map(str::to_string)
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        (None, Some(events)) => serde_json::to_string(events).map_err(|e| e.to_string()),
        _ => Err("a case needs exactly one of \"log\" and \"events\"".to_string()),
    }
}

/// What a case's targets are, by kind.
struct Targets<'c> {
    /// Every name, as written.
    names: BTreeSet<&'c str>,
    /// The correlations: their findings over the whole log flag.
    correlations: BTreeSet<usize>,
    /// The `forbid` detections: a finding of theirs flags.
    forbids: BTreeSet<usize>,
    /// The `permit`s (allow-list mode): an event they cover is allowed.
    permits: BTreeSet<usize>,
    /// `not-allowed` named, or a permit: the pack's verdict that no permit covers the event
    /// flags.
    not_allowed: bool,
}

fn targets<'c>(engine: &Engine, detections: &'c [String]) -> Result<Targets<'c>, String> {
    let names: BTreeSet<&str> = detections.iter().map(String::as_str).collect();
    if names.is_empty() {
        return Err("no detections to check: name them in \"detections\"".to_string());
    }
    let allow_list = engine.pack.mode == Mode::AllowList;
    let mut t = Targets {
        names,
        correlations: BTreeSet::new(),
        forbids: BTreeSet::new(),
        permits: BTreeSet::new(),
        not_allowed: false,
    };
    for name in &t.names {
        if *name == NOT_ALLOWED {
            if !allow_list {
                return Err(format!(
                    "{NOT_ALLOWED:?} is what an allow-list pack (one with a permit) reports; this pack has only detections"
                ));
            }
            t.not_allowed = true;
            continue;
        }
        let Some(i) = engine.pack.detections.iter().position(|d| d.id == *name) else {
            return Err(format!("unknown detection {name:?}"));
        };
        let permit = engine.pack.detections.get(i).map(|d| d.effect) == Some(Effect::Permit);
        let correlation = engine
            .pack
            .detections
            .get(i)
            .is_some_and(|d| d.is_correlation());
        if correlation {
            t.correlations.insert(i);
        } else if permit {
            t.permits.insert(i);
            t.not_allowed = true;
        } else {
            t.forbids.insert(i);
        }
    }
    if !t.correlations.is_empty() && (!t.forbids.is_empty() || t.not_allowed) {
        return Err(
            "a case checks correlations or per-event detections, not both: split it in two"
                .to_string(),
        );
    }
    Ok(t)
}

fn run_case(
    engine: &Engine,
    base: &Path,
    case: &Case,
    detections: &[String],
) -> Result<Vec<String>, String> {
    let text = case_text(base, case)?;
    let targets = targets(engine, detections)?;
    if !targets.correlations.is_empty() {
        return run_correlation_case(engine, &text, case, &targets);
    }
    if case.correlation.is_some() {
        return Err(format!(
            "\"correlation\" is for a correlation's case; {} decide(s) each event alone",
            join(&targets.names)
        ));
    }
    let mut failures = Vec::new();
    let mut evaluator = engine.evaluator();
    let mut sampler = Sampler::everything();
    let mut events = 0;
    let result = decode::for_each_record(&text, 0, &mut |record| {
        events += 1;
        let index = record.index;
        let view = match record.data.into_event().and_then(EventView::new) {
            Ok(v) => v,
            Err(e) => return failures.push(format!("record {index}: not evaluated: {e}")),
        };
        let id = match view.event_id() {
            "" => format!("record {index}"),
            id => format!("record {index} ({id})"),
        };
        let verdict = match evaluator.evaluate(&view) {
            Ok(v) => v,
            Err(e) => return failures.push(format!("{id}: not evaluated: {e}")),
        };
        for e in &verdict.errors {
            failures.push(format!("{id}: {}", e.message));
        }
        // A building block's matches are its findings here.
        let matches = matches_of(engine, &view, &verdict, ("case", index), &mut sampler);
        let findings: Vec<Finding> = findings_of(engine, &view, &verdict, "case", index)
            .into_iter()
            .chain(matches)
            .filter(|f| {
                targets.names.contains(f.detection.id.as_str())
                    || (targets.not_allowed && f.detection.id == NOT_ALLOWED)
            })
            .collect();
        match case.expect {
            Expect::Flag if findings.is_empty() => {
                failures.push(format!(
                    "{id}: {}",
                    why_not_flagged(engine, &view, &verdict, &targets)
                ));
            }
            Expect::Flag => {
                if let Some(expected) = &case.values {
                    for f in &findings {
                        for (label, want) in expected {
                            let got = f
                                .values
                                .iter()
                                .find(|v| &v.field == label)
                                .and_then(|v| v.value.clone());
                            if !value_matches(got.as_deref(), want.as_deref()) {
                                failures.push(format!(
                                    "{id}: {} read {label} = {}, expected {}",
                                    f.detection.id,
                                    got.as_deref().unwrap_or("(absent)"),
                                    want.as_deref()
                                        .map(|w| format!("{w:?}"))
                                        .unwrap_or_else(|| "(absent)".to_string())
                                ));
                            }
                        }
                    }
                }
            }
            Expect::Allow if !findings.is_empty() => {
                let read = |f: &Finding| -> Vec<String> {
                    f.values
                        .iter()
                        .filter(|v| v.field != "candidate permits")
                        .filter_map(|v| v.value.as_ref().map(|x| format!("{} = {x}", v.field)))
                        .collect()
                };
                for f in &findings {
                    if f.detection.id == NOT_ALLOWED {
                        let wanted = if targets.permits.is_empty() {
                            "a permit".to_string()
                        } else {
                            names(engine, &targets.permits)
                        };
                        let considered = candidate_permits(engine, &view, &verdict);
                        failures.push(format!(
                            "{id}: expected {wanted} to allow it, but no permit covers it (permits considered: {}); it read: {}",
                            if considered.is_empty() {
                                "none".to_string()
                            } else {
                                names(engine, &considered)
                            },
                            read(f).join("; ")
                        ));
                    } else {
                        failures.push(format!(
                            "{id}: expected it allowed, but {} flagged it: {}",
                            f.detection.id,
                            read(f).join("; ")
                        ));
                    }
                }
            }
            Expect::Allow if !targets.permits.is_empty() => {
                // Allowed by the pack: by the case's permits, or by others?
                match satisfied_permits(engine, &view, &verdict) {
                    Ok(by) if !by.is_disjoint(&targets.permits) => {}
                    Ok(by) => failures.push(format!(
                        "{id}: expected {} to allow it, but it was allowed by {} instead",
                        names(engine, &targets.permits),
                        names(engine, &by)
                    )),
                    Err(e) => failures.push(format!("{id}: not evaluated: {e}")),
                }
            }
            Expect::Allow => {}
        }
    });
    if let Err(e) = result {
        failures.push(format!("not readable: {e}"));
    }
    if events == 0 {
        failures.push("the case holds no events".to_string());
    }
    Ok(failures)
}

/// A correlation's case: every event of the log evaluated, the matches taken in time order, and
/// the correlations' findings checked against the case's expectation.
fn run_correlation_case(
    engine: &Engine,
    text: &str,
    case: &Case,
    targets: &Targets,
) -> Result<Vec<String>, String> {
    let mut failures = Vec::new();
    let mut evaluator = engine.evaluator();
    let mut sampler = Sampler::everything();
    let mut correlator = Correlator::new(&engine.pack, correlate::Options::exact());
    let mut found: Vec<Finding> = Vec::new();
    // Per correlation: the events its condition matched, and their groups.
    let mut matched: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    let mut events = 0;
    let mut fed = Ok(());
    let result = decode::for_each_record(text, 0, &mut |record| {
        events += 1;
        let index = record.index;
        let view = match record.data.into_event().and_then(EventView::new) {
            Ok(v) => v,
            Err(e) => return failures.push(format!("record {index}: not evaluated: {e}")),
        };
        let verdict = match evaluator.evaluate(&view) {
            Ok(v) => v,
            Err(e) => return failures.push(format!("record {index}: not evaluated: {e}")),
        };
        for e in &verdict.errors {
            failures.push(format!("record {index}: {}", e.message));
        }
        let all = findings_of(engine, &view, &verdict, "case", index)
            .into_iter()
            .chain(matches_of(
                engine,
                &view,
                &verdict,
                ("case", index),
                &mut sampler,
            ));
        for f in all {
            for k in f.matched.iter().flat_map(|m| &m.keys) {
                let group: Vec<String> = k.group.iter().map(MatchValue::cedar).collect();
                let Some(c) = engine.pack.detections.get(k.correlation) else {
                    continue;
                };
                let entry = matched.entry(c.id.clone()).or_default();
                entry.0 += 1;
                entry.1.insert(group.join(", "));
            }
            if fed.is_ok() {
                fed = correlator.route(f, &mut |f| {
                    found.push(f);
                    Ok(())
                });
            }
        }
    });
    if let Err(e) = result {
        failures.push(format!("not readable: {e}"));
    }
    if events == 0 {
        failures.push("the case holds no events".to_string());
    }
    let finished = fed.and_then(|()| {
        correlator.finish(&mut |f| {
            found.push(f);
            Ok(())
        })
    });
    if let Err(e) = finished {
        failures.push(format!("the correlations failed: {e}"));
    }
    let ids: BTreeSet<&str> = targets
        .correlations
        .iter()
        .filter_map(|i| engine.pack.detections.get(*i).map(|d| d.id.as_str()))
        .collect();
    let ours: Vec<&Finding> = found
        .iter()
        .filter(|f| ids.contains(f.detection.id.as_str()) && f.correlation.is_some())
        .collect();
    let expect = case.correlation.clone().unwrap_or_default();
    match case.expect {
        Expect::Flag if ours.is_empty() => {
            let seen: Vec<String> = ids
                .iter()
                .map(|id| match matched.get(*id) {
                    Some((n, groups)) => format!(
                        "{id} matched {n} event(s) in {} group(s) ({})",
                        groups.len(),
                        shorten(groups)
                    ),
                    None => format!("{id} matched none of the {events} event(s)"),
                })
                .collect();
            failures.push(format!(
                "expected a finding of {}, but there was none: {}",
                join(&ids),
                seen.join("; ")
            ));
        }
        Expect::Flag => {
            if !ours.iter().any(|f| fits(f, &expect)) {
                let got: Vec<String> = ours.iter().map(|f| describe(f)).collect();
                failures.push(format!(
                    "expected a finding{} but found {}",
                    expected(&expect),
                    got.join("; ")
                ));
            }
        }
        Expect::Allow if !ours.is_empty() => {
            for f in ours {
                failures.push(format!("expected no finding, but found {}", describe(f)));
            }
        }
        Expect::Allow => {}
    }
    Ok(failures)
}

/// Whether a correlation finding is the one expected.
fn fits(f: &Finding, expect: &CorrelationExpect) -> bool {
    let Some(c) = &f.correlation else {
        return false;
    };
    let group = expect.group.iter().all(|(field, want)| {
        c.group
            .iter()
            .find(|g| &g.field == field)
            .is_some_and(|g| value_matches(g.value.as_deref(), Some(want)))
    });
    let distinct = c.distinct.as_ref().map(|d| d.count);
    group
        && expect.count.is_none_or(|n| n == c.count)
        && expect.distinct.is_none_or(|n| Some(n) == distinct)
}

/// ` with group a = "x", count 3`.
fn expected(expect: &CorrelationExpect) -> String {
    let mut parts: Vec<String> = expect
        .group
        .iter()
        .map(|(k, v)| format!("{k} = {v:?}"))
        .collect();
    if let Some(n) = expect.count {
        parts.push(format!("count {n}"));
    }
    if let Some(n) = expect.distinct {
        parts.push(format!("{n} distinct"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" with {}", parts.join(", "))
    }
}

/// A correlation finding in a failure message.
fn describe(f: &Finding) -> String {
    let Some(c) = &f.correlation else {
        return f.detection.id.clone();
    };
    let group: Vec<String> = c
        .group
        .iter()
        .map(|g| format!("{} = {}", g.field, g.value.as_deref().unwrap_or("-")))
        .collect();
    let distinct = c
        .distinct
        .as_ref()
        .map(|d| format!(", {} distinct", d.count))
        .unwrap_or_default();
    format!(
        "{} (group {}; count {}{distinct}; {} to {})",
        f.detection.id,
        if group.is_empty() {
            "-".to_string()
        } else {
            group.join(", ")
        },
        c.count,
        c.first,
        c.last
    )
}

/// A few of a set, and how many more.
fn shorten(items: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = items.iter().take(3).map(String::as_str).collect();
    match items.len().saturating_sub(3) {
        0 => shown.join("; "),
        more => format!("{}; and {more} more", shown.join("; ")),
    }
}

/// Why a `flag` case's event was not flagged: what the expected detections read, and, in an
/// allow-list pack, which permits allowed it.
fn why_not_flagged(
    engine: &Engine,
    view: &EventView,
    verdict: &crate::engine::Verdict,
    targets: &Targets,
) -> String {
    let mut reads: BTreeSet<usize> = targets.forbids.clone();
    if !targets.not_allowed {
        let read = explain_reads(engine, view, verdict, &reads);
        return format!(
            "expected {} to flag it, but it was allowed{read}",
            join(&targets.names)
        );
    }
    let by = satisfied_permits(engine, view, verdict).unwrap_or_default();
    reads.extend(by.iter().copied());
    let read = explain_reads(engine, view, verdict, &reads);
    let considered = candidate_permits(engine, view, verdict);
    let allowed = if by.is_empty() {
        "it was allowed".to_string()
    } else {
        format!("{} allowed it", names(engine, &by))
    };
    let forbids = if targets.forbids.is_empty() {
        String::new()
    } else {
        format!(
            " and no forbid of {} fired",
            names(engine, &targets.forbids)
        )
    };
    format!(
        "expected it not allowed, but {allowed}{forbids} (permits considered: {}){read}",
        if considered.is_empty() {
            "none".to_string()
        } else {
            names(engine, &considered)
        }
    )
}

/// The permits that are candidates for the event: those whose scope covers it.
fn candidate_permits(
    engine: &Engine,
    view: &EventView,
    verdict: &crate::engine::Verdict,
) -> BTreeSet<usize> {
    let Ok(principal) = verdict.principal(engine, view) else {
        return BTreeSet::new();
    };
    engine
        .candidates(view, &principal)
        .members
        .iter()
        .copied()
        .filter(|i| engine.pack.detections.get(*i).map(|d| d.effect) == Some(Effect::Permit))
        .collect()
}

/// The permits satisfied by every request of the event (one per resource): those that allow it.
fn satisfied_permits(
    engine: &Engine,
    view: &EventView,
    verdict: &crate::engine::Verdict,
) -> Result<BTreeSet<usize>, String> {
    let principal = verdict.principal(engine, view)?;
    let resources = match &verdict.resources {
        Some(r) => r.clone(),
        None => crate::model::resource::resources_of(view, &principal)?,
    };
    let mut by: Option<BTreeSet<usize>> = None;
    for resource in &resources {
        let (request, entities) = engine.full_request(view, &principal, resource)?;
        let mut here = BTreeSet::new();
        for i in candidate_permits(engine, view, verdict) {
            if engine.satisfied(i, view, &request, &entities)? {
                here.insert(i);
            }
        }
        by = Some(match by {
            None => here,
            Some(before) => before.intersection(&here).copied().collect(),
        });
    }
    Ok(by.unwrap_or_default())
}

/// The ids of detections, joined.
fn names(engine: &Engine, indices: &BTreeSet<usize>) -> String {
    let ids: BTreeSet<&str> = indices
        .iter()
        .filter_map(|i| engine.pack.detections.get(*i).map(|d| d.id.as_str()))
        .collect();
    join(&ids)
}

/// `; it read: a = 1; b absent` for the detections `indices` on this event.
fn explain_reads(
    engine: &Engine,
    view: &EventView,
    verdict: &crate::engine::Verdict,
    indices: &BTreeSet<usize>,
) -> String {
    let Ok(principal) = verdict.principal(engine, view) else {
        return String::new();
    };
    let resources = match &verdict.resources {
        Some(r) => r.clone(),
        None => crate::model::resource::resources_of(view, &principal).unwrap_or_default(),
    };
    let Some(resource) = resources.first() else {
        return String::new();
    };
    let members: Vec<usize> = indices.iter().copied().collect();
    let explanation = engine.explain_values(&members, view, &principal, resource);
    if explanation.values.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = explanation
        .values
        .into_iter()
        .map(|(label, value)| match value {
            Some(v) => format!("{label} = {}", v.cedar),
            None => format!("{label} absent"),
        })
        .chain(explanation.notes.into_iter().map(|n| format!("note: {n}")))
        .collect();
    format!("; it read: {}", parts.join("; "))
}

/// Whether an explanation value (Cedar syntax) is the expected one: a string matches the Cedar
/// string of that text, or the value's Cedar syntax itself (`true`, `ip("1.2.3.4")`).
pub fn value_matches(got: Option<&str>, want: Option<&str>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) => g == w || g == format!("\"{}\"", w.escape_debug()),
        _ => false,
    }
}

fn join(ids: &BTreeSet<&str>) -> String {
    ids.iter().copied().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_cedar_strings_and_literals() {
        assert!(value_matches(Some("\"public-read\""), Some("public-read")));
        assert!(value_matches(Some("true"), Some("true")));
        assert!(value_matches(
            Some("ip(\"10.0.0.1\")"),
            Some("ip(\"10.0.0.1\")")
        ));
        assert!(value_matches(None, None));
        assert!(!value_matches(Some("\"private\""), Some("public-read")));
        assert!(!value_matches(None, Some("x")));
        assert!(value_matches(Some("\"a\\\"b\""), Some("a\"b")));
    }
}
