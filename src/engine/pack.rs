//! Policy packs: `.cedar` files, parsed, annotated, and validated against the model's schema.
//!
//! A detection is a policy with `@id`, `@title` and, for a `forbid`, `@severity` (`info`, `low`,
//! `medium`, `high`, `critical`); `@mitre`, `@description` and `@runbook` are optional.
//!
//! The pack's mode follows from its policies, as Cedar's own semantics do:
//! - **detection mode** (only `forbid` policies): trailcedar supplies the baseline
//!   `permit(principal, action, resource);`, so an event is flagged exactly when a detection
//!   forbids it;
//! - **allow-list mode** (at least one `permit`): no baseline is added; an event that no permit
//!   covers is flagged as `not-allowed`, and any `forbid` still flags as a detection.

use crate::engine::analysis::{Analysis, analyse};
use crate::engine::correlation::{self, Correlation, Declared, Keying};
use crate::engine::diagnostic::InFile;
use crate::engine::lint;
use crate::engine::nesting;
use crate::model::actions::Catalog;
use crate::model::element::Each;
use crate::model::schema::{self, Shapes};
use cedar_policy::{
    Effect, Expression, Policy, PolicyId, PolicySet, ValidationError, ValidationMode,
    ValidationWarning, Validator,
};
use miette::{NamedSource, Report};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// How urgent a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown severity {s:?}: expected one of info, low, medium, high, critical")
            })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy file's name and text.
#[derive(Clone, Debug)]
pub struct PolicySource {
    pub name: String,
    pub text: Arc<str>,
}

/// One policy of a pack with its metadata.
#[derive(Clone, Debug)]
pub struct Detection {
    pub id: String,
    pub title: String,
    /// `None` for a `permit` without `@severity`.
    pub severity: Option<Severity>,
    pub mitre: Option<String>,
    pub description: Option<String>,
    pub runbook: Option<String>,
    pub effect: Effect,
    /// The policy file.
    pub file: String,
    /// 1-based line of the policy's first character (its first annotation).
    pub line: usize,
    pub policy: Policy,
    pub analysis: Analysis,
    /// [`Analysis::condition`], parsed.
    pub condition: Expression,
    /// [`Analysis::indexed_condition`], parsed: what the engine evaluates on candidates.
    pub indexed_condition: Expression,
    /// [`Analysis::principal_guard`], parsed.
    pub guard: Option<Expression>,
    /// `@each`: the lists whose elements the policy is evaluated on, one at a time
    /// ([`crate::model::element`]).
    pub each: Option<Arc<Each>>,
    /// `@suppress`: the ids of the detections this policy (a `permit`) silences; empty for a
    /// detection.
    pub suppresses: Vec<String>,
    /// The policy's scope and clauses, to trace which of them decided an event.
    pub body: Option<cedar_policy::pst::Template>,
    /// [`Detection::body`] parsed for explanations, on the first one; clones share it.
    pub trace: Arc<std::sync::OnceLock<crate::engine::Trace>>,
    /// `@group`, `@window`, `@threshold`, `@distinct`, `@after`: what this detection counts,
    /// groups or orders across events ([`crate::engine::correlation`]).
    pub correlation: Option<Arc<Correlation>>,
    /// `@buildingBlock`: its matches feed correlations and are not reported on their own.
    pub building_block: bool,
    /// The correlations its matches feed (its own, and the sequences it is a step of), whose
    /// keys the engine evaluates when it is satisfied.
    pub keyings: Vec<Keying>,
}

impl Detection {
    /// Whether the engine may decide it on an event from its prefilter's tests alone, without
    /// a request: a forbid whose formula is exact, without `@each`, that reads no resource, and
    /// whose correlation keys (if any) are read straight from the event.
    pub fn decided_by_tests(&self) -> bool {
        self.analysis.exact
            && self.effect == Effect::Forbid
            && self.each.is_none()
            && !self.analysis.needs.resource
            && self.keyings.iter().all(|k| k.quick)
    }

    /// Whether it is a detection over many events (a count, distinct count, sequence or
    /// grouping), reported once per group and window rather than once per event.
    pub fn is_correlation(&self) -> bool {
        self.correlation.is_some()
    }

    /// Whether its matches are findings of their own: neither a correlation's (reported by the
    /// correlation) nor a building block's.
    pub fn reported_alone(&self) -> bool {
        self.correlation.is_none() && !self.building_block
    }

    /// What kind of detection it is, in a listing's words.
    pub fn kind(&self) -> &'static str {
        match (&self.correlation, self.building_block) {
            (Some(_), _) => "correlation",
            (None, true) => "building block",
            (None, false) => "single event",
        }
    }
}

/// How events that no policy decides are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only detections: everything not forbidden is allowed.
    Detection,
    /// Permits describe expected behaviour: everything else is flagged.
    AllowList,
}

/// A policy that silences some detections' findings on the events it holds for: a `permit` with
/// `@suppress("id, id")`. It does not make its pack an allow-list.
#[derive(Debug, Clone)]
pub struct Suppression {
    pub detection: Detection,
    /// The detections it silences, by index in the pack.
    pub targets: Vec<usize>,
}

/// A loaded, validated pack.
#[derive(Debug, Clone)]
pub struct Pack {
    pub detections: Vec<Detection>,
    /// The suppressions, which silence some detections' findings.
    pub suppressions: Vec<Suppression>,
    pub mode: Mode,
    /// Where the pack came from, for the summary.
    pub origin: String,
    /// What loads but deserves a look: an action the catalog does not know, Cedar's own
    /// validation warnings. `check --strict` fails on them.
    pub warnings: Vec<Arc<Report>>,
    by_id: HashMap<String, usize>,
}

impl Pack {
    /// The detection a Cedar policy id belongs to.
    pub fn index_of(&self, id: &PolicyId) -> Option<usize> {
        self.by_id.get(AsRef::<str>::as_ref(id)).copied()
    }

    /// Every action id the pack names, for the schema.
    pub fn action_ids(&self) -> BTreeSet<String> {
        self.detections
            .iter()
            .flat_map(|d| d.analysis.action_ids.iter().cloned())
            .collect()
    }
}

/// Errors found while loading a pack, each a diagnostic pointing into its file, and the
/// warnings found with them.
#[derive(Debug)]
pub struct PackErrors {
    pub errors: Vec<Report>,
    pub warnings: Vec<Report>,
}

impl fmt::Display for PackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.errors.iter().chain(&self.warnings) {
            writeln!(f, "{r:?}")?;
        }
        write!(f, "{} error(s) in the policy pack", self.errors.len())
    }
}

impl std::error::Error for PackErrors {}

/// Reads every `*.cedar` file under `dir`, in path order.
pub fn sources_from_dir(dir: &Path) -> Result<Vec<PolicySource>, String> {
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        let is_policy = entry.path().extension().is_some_and(|e| e == "cedar");
        let is_actions = entry.file_name() == ACTIONS_FILE;
        if entry.file_type().is_file() && (is_policy || is_actions) {
            let text = std::fs::read_to_string(entry.path())
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            out.push(PolicySource {
                name: entry.path().display().to_string(),
                text: text.into(),
            });
        }
    }
    if !out.iter().any(|s| s.name.ends_with(".cedar")) {
        return Err(format!("{}: no .cedar files", dir.display()));
    }
    Ok(out)
}

/// A pack's own additions to the action catalog: `service:EventName` per line.
pub const ACTIONS_FILE: &str = "actions.txt";

/// The pack compiled into the binary from `policies/`.
pub fn embedded_sources() -> Vec<PolicySource> {
    crate::embedded::POLICIES
        .iter()
        .map(|(name, text)| PolicySource {
            name: format!("embedded:policies/{name}"),
            text: (*text).into(),
        })
        .collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|t| t.matches('\n').count())
        .unwrap_or(0)
        + 1
}

/// How strictly a pack is validated.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Accept reads of optional attributes and tags without a `has`/`hasTag` guard: for
    /// investigation queries, where a missing value simply does not match.
    pub lenient_optional: bool,
    /// The sources are the pack embedded in this binary, which its tests validate in strict
    /// mode (`embedded_pack_validates_strictly`): Cedar's validator, nine tenths of loading it
    /// (0.5 of 0.55 CPU s), is not run again on every scan. Parsing, annotations, correlations
    /// and suppressions are still checked. `check` always validates.
    pub prevalidated: bool,
}

/// Parses, annotates and validates a pack. Every problem is reported, not only the first.
pub fn load(sources: Vec<PolicySource>, origin: &str) -> Result<Pack, PackErrors> {
    load_with(sources, origin, LoadOptions::default())
}

/// [`load`] with options.
pub fn load_with(
    sources: Vec<PolicySource>,
    origin: &str,
    options: LoadOptions,
) -> Result<Pack, PackErrors> {
    nesting::on_deep_stack(move || load_on_this_stack(sources, origin, options))
}

fn load_on_this_stack(
    sources: Vec<PolicySource>,
    origin: &str,
    options: LoadOptions,
) -> Result<Pack, PackErrors> {
    let mut errors: Vec<Report> = Vec::new();
    let mut warnings: Vec<Report> = Vec::new();
    let mut detections: Vec<Detection> = Vec::new();
    let mut file_of: HashMap<String, usize> = HashMap::new();
    // Policies with an error of their own, whose follow-on errors are withheld (see `validate`).
    let mut wrong: HashSet<String> = HashSet::new();
    // Policies whose condition is a literal `false`, for the "never fires" diagnostic's help.
    let mut literal_false: HashSet<String> = HashSet::new();
    // Each detection's correlation annotations, read; resolved once every id is known.
    let mut declared: Vec<Option<Declared>> = Vec::new();

    // The action catalog, with what the pack adds to it.
    let (action_files, sources): (Vec<PolicySource>, Vec<PolicySource>) = sources
        .into_iter()
        .partition(|s| s.name.ends_with(ACTIONS_FILE));
    let catalog = if action_files.is_empty() {
        Cow::Borrowed(Catalog::embedded())
    } else {
        let mut c = Catalog::embedded().clone();
        for f in &action_files {
            for (line, text) in c.extend_from(&f.text) {
                errors.push(miette::miette!(
                    "{}:{line}: {text:?} is not an action: write one `service:EventName` per line",
                    f.name
                ));
            }
        }
        Cow::Owned(c)
    };

    for (file_index, source) in sources.iter().enumerate() {
        let named = || NamedSource::new(source.name.clone(), source.text.clone());
        if let Err(e) = nesting::check(&source.text) {
            errors.push(e.report(named()));
            continue;
        }
        let set = match PolicySet::from_str(&source.text) {
            Ok(set) => set,
            Err(e) => {
                errors.extend(e.iter().map(|pe| Report::new(InFile::wrap(pe, named()))));
                continue;
            }
        };
        if let Some(t) = set.templates().next() {
            let text = t.to_string();
            let offset = source.text.find(text.as_str()).unwrap_or(0);
            errors.push(Report::new(InFile::new(
                "policy templates are not supported in a pack yet; write a static policy"
                    .to_string(),
                (
                    offset,
                    text.len().min(source.text.len().saturating_sub(offset)),
                )
                    .into(),
                "this template",
                None,
                named(),
            )));
        }
        // Policies in file order: each one's text is a slice of the file.
        let mut placed: Vec<(usize, usize, &Policy)> = Vec::new();
        let mut taken: Vec<usize> = Vec::new();
        for p in set.policies() {
            let text = p.to_cedar().unwrap_or_default();
            let offset = source
                .text
                .match_indices(text.as_str())
                .map(|(i, _)| i)
                .find(|i| !taken.contains(i))
                .unwrap_or(0);
            taken.push(offset);
            placed.push((offset, text.len(), p));
        }
        placed.sort_by_key(|(o, _, _)| *o);
        for (offset, len, policy) in placed {
            let err = |message: String, help: Option<String>| {
                Report::new(InFile::new(
                    message,
                    (offset, len).into(),
                    "in this policy",
                    help,
                    named(),
                ))
            };
            let ann = |k: &str| policy.annotation(k).map(str::to_string);
            let Some(id) = ann("id").filter(|i| valid_id(i)) else {
                errors.push(err(
                    "a policy needs an @id: letters, digits and - _ . : only".to_string(),
                    Some(
                        "add a line such as @id(\"s3-public-object-acl\") above the policy"
                            .to_string(),
                    ),
                ));
                continue;
            };
            let title = ann("title").unwrap_or_default();
            if title.trim().is_empty() {
                errors.push(err(format!("policy {id:?} needs a @title"), None));
            }
            let effect = policy.effect();
            // A suppression names the detections it silences.
            let suppresses: Vec<String> = ann("suppress")
                .map(|list| {
                    list.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if ann("suppress").is_some() && suppresses.is_empty() {
                errors.push(err(
                    format!("suppression {id:?} names no detection"),
                    Some("@suppress(\"iam-user-created, cis-iam-policy-changed\")".to_string()),
                ));
            }
            if !suppresses.is_empty() && effect == Effect::Forbid {
                errors.push(err(
                    format!("suppression {id:?} is a forbid: a suppression is a `permit` of what the detections it names should not report"),
                    Some("write `permit (...)` with the condition of the events to leave out".to_string()),
                ));
            }
            let severity = match (ann("severity"), effect) {
                (Some(s), _) => match Severity::from_str(&s) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        errors.push(err(format!("policy {id:?}: {e}"), None));
                        None
                    }
                },
                (None, Effect::Forbid) => {
                    errors.push(err(
                        format!("detection {id:?} needs a @severity"),
                        Some("one of info, low, medium, high, critical".to_string()),
                    ));
                    None
                }
                (None, Effect::Permit) => None,
            };
            if let Some(previous) = file_of.get(&id) {
                let where_ = sources
                    .get(*previous)
                    .map(|s| s.name.as_str())
                    .unwrap_or("?");
                errors.push(err(format!("@id {id:?} is already used in {where_}"), None));
                continue;
            }
            file_of.insert(id.clone(), file_index);
            let renamed = policy.new_id(PolicyId::new(id.clone()));
            let analysis = match analyse(&renamed) {
                Ok(a) => a,
                Err(e) => {
                    errors.push(err(
                        format!("policy {id:?} could not be analysed: {e}"),
                        None,
                    ));
                    continue;
                }
            };
            let parsed = [&analysis.condition, &analysis.indexed_condition]
                .map(|c| Expression::from_str(c).map_err(|e| e.to_string()));
            let (condition, indexed_condition) = match parsed {
                [Ok(c), Ok(i)] => (c, i),
                [Err(e), _] | [_, Err(e)] => {
                    errors.push(err(
                        format!("internal error: the condition of {id:?} does not parse: {e}"),
                        None,
                    ));
                    continue;
                }
            };
            let each = match ann("each").map(|text| Each::parse(&text)) {
                None => None,
                Some(Ok(each)) => Some(Arc::new(each)),
                Some(Err(e)) => {
                    errors.push(err(
                        format!("policy {id:?}: @each: {e}"),
                        Some("for example @each(\"requestParameters.ipPermissions.items[].ipRanges.items[]\")".to_string()),
                    ));
                    None
                }
            };
            if analysis.needs.element && ann("each").is_none() {
                errors.push(err(
                    format!("policy {id:?} reads context.element but has no @each"),
                    Some(
                        "name the lists it is evaluated on: @each(\"requestParameters.<list>[]\")"
                            .to_string(),
                    ),
                ));
            }
            if ann("each").is_some() && !analysis.needs.element {
                errors.push(err(
                    format!("policy {id:?} has @each but never reads context.element"),
                    Some(
                        "it would decide alike on every element: remove @each, or test the element"
                            .to_string(),
                    ),
                ));
            }
            // A guard that does not parse back is only a missed shortcut.
            let guard = analysis
                .principal_guard
                .as_deref()
                .and_then(|g| Expression::from_str(g).ok());
            let text = source.text.get(offset..offset + len).unwrap_or("");
            let building_block = ann("buildingBlock").is_some();
            let declaration =
                match correlation::declared(&id, text, offset, &ann, effect == Effect::Permit) {
                    Ok(d) => d,
                    Err(problems) => {
                        wrong.insert(id.clone());
                        for p in problems {
                            errors.push(Report::new(InFile::new(
                                p.message,
                                p.span.into(),
                                p.label,
                                p.help,
                                named(),
                            )));
                        }
                        None
                    }
                };
            let body = renamed.to_pst().ok().map(|pst| pst.body().clone());
            let clauses = body
                .as_ref()
                .map(|b| b.clauses().to_vec())
                .unwrap_or_default();
            if lint::literal_false(&clauses) {
                literal_false.insert(id.clone());
            }
            for problem in lint::undeclared_has(&clauses, Shapes::model()) {
                let at = lint::locate_has(text, &problem.path)
                    .map(|(i, l)| (offset + i, l))
                    .unwrap_or((offset, len));
                wrong.insert(id.clone());
                errors.push(Report::new(InFile::new(
                    problem.message(&id),
                    at.into(),
                    "no such attribute",
                    Some(problem.help()),
                    named(),
                )));
            }
            for action in &analysis.action_ids {
                if catalog.contains(action) {
                    continue;
                }
                let literal = format!(
                    "Action::{}",
                    serde_json::to_string(action).unwrap_or_default()
                );
                let at = text
                    .find(&literal)
                    .map(|i| (offset + i, literal.len()))
                    .unwrap_or((offset, len));
                let Some(spelling) = plausible_action(action) else {
                    errors.push(Report::new(InFile::new(
                        format!("`{action}` in policy {id:?} is not an action: CloudTrail actions are `service:EventName` (`s3:PutObject`) or a service (`s3`)"),
                        at.into(),
                        "not an action",
                        None,
                        named(),
                    )));
                    continue;
                };
                let help = match catalog.suggest(action) {
                    Some(s) => format!(
                        "did you mean `{s}`? If `{action}` is an event CloudTrail records, list it in the pack's {ACTIONS_FILE} to silence this warning"
                    ),
                    None => format!(
                        "if `{action}` is an event CloudTrail records, list it in the pack's {ACTIONS_FILE} to silence this warning"
                    ),
                };
                warnings.push(Report::new(
                    InFile::new(
                        format!(
                            "unknown {spelling} `{action}` in policy {id:?}: not in the catalog of CloudTrail events, so the policy may never match"
                        ),
                        at.into(),
                        "not in the catalog",
                        Some(help),
                        named(),
                    )
                    .warning(),
                ));
            }
            detections.push(Detection {
                id,
                title,
                severity,
                mitre: ann("mitre"),
                description: ann("description"),
                runbook: ann("runbook"),
                effect,
                file: source.name.clone(),
                line: line_of(&source.text, offset),
                policy: renamed,
                analysis,
                condition,
                indexed_condition,
                guard,
                each,
                suppresses,
                body,
                trace: Arc::default(),
                correlation: None,
                building_block,
                keyings: Vec::new(),
            });
            declared.push(declaration);
        }
    }
    if detections.is_empty() && errors.is_empty() {
        errors.push(miette::miette!("the policy pack holds no policies"));
    }

    // Suppressions go after the detections (in their order), so that the indexes correlations
    // keep are those of the pack's detections once the suppressions are set apart.
    let (suppressing, kept): (Vec<_>, Vec<_>) = detections
        .into_iter()
        .zip(declared)
        .partition(|(d, _)| !d.suppresses.is_empty());
    let count = kept.len();
    let (mut detections, declared): (Vec<Detection>, Vec<Option<Declared>>) =
        kept.into_iter().chain(suppressing).unzip();

    // Correlations name detections of the whole pack: resolved once every id is known.
    correlation_steps(
        detections.get_mut(..count).unwrap_or_default(),
        declared.get(..count).unwrap_or_default(),
        &sources,
        &file_of,
        &mut errors,
        &mut warnings,
    );

    // Type errors are worth reporting alongside annotation and action mistakes.
    if !detections.is_empty() {
        let found = Validation {
            declared: &declared,
            detections: &detections,
            sources: &sources,
            file_of: &file_of,
            options,
            wrong,
            literal_false,
        };
        if !options.prevalidated {
            found.run(&mut errors, &mut warnings);
        }
    }
    // Suppressions are not detections: they silence the findings of those they name.
    let suppressions = detections.split_off(count);
    let ids: Vec<&str> = detections.iter().map(|d| d.id.as_str()).collect();
    let mut resolved = Vec::new();
    for s in suppressions {
        let mut targets = Vec::new();
        for name in &s.suppresses {
            match ids.iter().position(|id| id == name) {
                Some(i) => targets.push(i),
                None => {
                    let help = crate::model::actions::closest(name, ids.iter().copied())
                        .map(|c| format!("did you mean `{c}`?"));
                    errors.push(miette::miette!(
                        help = help.unwrap_or_else(|| "name a detection of the pack".to_string()),
                        "{}:{}: suppression {:?} names `{name}`, which is no detection of the pack",
                        s.file,
                        s.line,
                        s.id
                    ));
                }
            }
        }
        resolved.push(Suppression {
            detection: s,
            targets,
        });
    }
    if errors.is_empty()
        && let Err(e) = key_needs(&mut detections)
    {
        errors.push(miette::miette!("internal error: what the keys read: {e}"));
    }
    if !errors.is_empty() {
        return Err(PackErrors { errors, warnings });
    }
    let mode = if detections.iter().any(|d| d.effect == Effect::Permit) {
        Mode::AllowList
    } else {
        Mode::Detection
    };
    let by_id = detections
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    Ok(Pack {
        detections,
        suppressions: resolved,
        mode,
        origin: origin.to_string(),
        warnings: warnings.into_iter().map(Arc::new).collect(),
        by_id,
    })
}

/// Resolves each correlation's `@after` ids against the pack, gives each detection the keyings
/// of the correlations its matches feed, and warns of a building block that feeds none.
fn correlation_steps(
    detections: &mut [Detection],
    declared: &[Option<Declared>],
    sources: &[PolicySource],
    file_of: &HashMap<String, usize>,
    errors: &mut Vec<Report>,
    warnings: &mut Vec<Report>,
) {
    let named = |id: &str| {
        file_of
            .get(id)
            .and_then(|i| sources.get(*i))
            .map(|s| NamedSource::new(s.name.clone(), s.text.clone()))
            .unwrap_or_else(|| NamedSource::new("?", Arc::from("")))
    };
    let ids: Vec<String> = detections.iter().map(|d| d.id.clone()).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut keyings: Vec<Vec<Keying>> = vec![Vec::new(); detections.len()];
    for (i, declaration) in declared.iter().enumerate() {
        let (Some(declaration), Some(id)) = (declaration, ids.get(i)) else {
            continue;
        };
        match declaration.resolve(id, i, &id_refs) {
            Ok(c) => {
                for (step, (step_id, at)) in c.after.iter().enumerate() {
                    let permit = detections.get(*at).map(|d| d.effect) == Some(Effect::Permit);
                    if permit {
                        let span = declaration
                            .after
                            .iter()
                            .find(|(s, _)| s == step_id)
                            .map_or((0, 0), |(_, span)| *span);
                        errors.push(Report::new(InFile::new(
                            format!("policy {id:?}: @after names {step_id:?}, a permit: the steps of a sequence are detections"),
                            span.into(),
                            "a permit",
                            None,
                            named(id),
                        )));
                    }
                    let each = detections.get(*at).is_some_and(|d| d.each.is_some());
                    if let Some(k) = keyings.get_mut(*at) {
                        k.push(Keying {
                            correlation: i,
                            step,
                            quick: c.quick(step, each),
                        });
                    }
                }
                let each = detections.get(i).is_some_and(|d| d.each.is_some());
                if let Some(k) = keyings.get_mut(i) {
                    k.push(Keying {
                        correlation: i,
                        step: c.after.len(),
                        quick: c.quick(c.after.len(), each),
                    });
                }
                if let Some(d) = detections.get_mut(i) {
                    d.correlation = Some(Arc::new(c));
                }
            }
            Err(problems) => {
                for p in problems {
                    errors.push(Report::new(InFile::new(
                        p.message,
                        p.span.into(),
                        p.label,
                        p.help,
                        named(id),
                    )));
                }
            }
        }
    }
    for (d, k) in detections.iter_mut().zip(keyings) {
        if d.building_block && k.is_empty() {
            let text = file_of
                .get(&d.id)
                .and_then(|i| sources.get(*i))
                .map(|s| s.text.clone())
                .unwrap_or_else(|| Arc::from(""));
            let at = text.find("@buildingBlock").unwrap_or(0);
            warnings.push(Report::new(
                InFile::new(
                    format!(
                        "building block {:?} feeds no correlation: its matches are never reported",
                        d.id
                    ),
                    (at, "@buildingBlock".len()).into(),
                    "not reported on its own",
                    Some("name it in a sequence's @after, or remove @buildingBlock".to_string()),
                    named(&d.id),
                )
                .warning(),
            ));
        }
        d.keyings = k;
    }
}

/// Merges what the correlations' expressions read into the needs of each detection whose
/// matches evaluate them on the request, so that the engine builds it (and memoizes decisions
/// by it). Expressions read straight from the event ([`correlation::Read`]) need nothing.
fn key_needs(detections: &mut [Detection]) -> Result<(), String> {
    let mut merged: Vec<Option<crate::engine::analysis::Needs>> = Vec::new();
    for d in detections.iter() {
        let mut texts: Vec<String> = Vec::new();
        // Keys read straight from the event need nothing of the request.
        for k in d.keyings.iter().filter(|k| !k.quick) {
            let Some(c) = detections
                .get(k.correlation)
                .and_then(|c| c.correlation.as_deref())
            else {
                continue;
            };
            texts.extend(c.group.iter().map(|g| g.text.clone()));
            if k.step + 1 == c.steps()
                && let Some(e) = &c.distinct
            {
                texts.push(e.text.clone());
            }
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        merged.push(if refs.is_empty() {
            None
        } else {
            Some(correlation::needs_of(&refs)?)
        });
    }
    for (d, needs) in detections.iter_mut().zip(merged) {
        if let Some(n) = needs {
            d.analysis.needs.merge(&n);
        }
    }
    Ok(())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Whether `action` is spelt like a CloudTrail action: `service:EventName` (an `action`), or a
/// service alone (a `service`), in the characters event sources and names are made of.
fn plausible_action(action: &str) -> Option<&'static str> {
    let service_ok = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    match action.split_once(':') {
        None => service_ok(action).then_some("service"),
        Some((service, name)) => (service_ok(service)
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        .then_some("action"),
    }
}

/// Strict validation of a pack's policies against the model's schema.
///
/// After a genuine error in a policy (an unknown attribute, a type mismatch, a `has` of an
/// undeclared attribute), its unsafe-access errors and its "impossible policy" are withheld:
/// Cedar's typechecker loses what the guards before an error established, so every correctly
/// guarded `getTag` after it would be reported as unsafe, and a condition that fails to type
/// may look impossible. They are artefacts of the first error more often than not; real ones
/// are reported once the genuine errors are fixed, so no unsafe access is ever accepted.
struct Validation<'a> {
    detections: &'a [Detection],
    sources: &'a [PolicySource],
    file_of: &'a HashMap<String, usize>,
    options: LoadOptions,
    /// Policies with a genuine error found before validation (`has` of undeclared attributes).
    wrong: HashSet<String>,
    literal_false: HashSet<String>,
    /// The correlation annotations of each detection, to type-check their expressions.
    declared: &'a [Option<Declared>],
}

/// Errors that may be artefacts of an earlier error in the same policy.
fn follow_on(e: &ValidationError) -> bool {
    matches!(
        e,
        ValidationError::UnsafeOptionalAttributeAccess(_) | ValidationError::UnsafeTagAccess(_)
    )
}

impl Validation<'_> {
    fn named(&self, policy: &PolicyId) -> Option<NamedSource<Arc<str>>> {
        self.file_of
            .get(AsRef::<str>::as_ref(policy))
            .and_then(|i| self.sources.get(*i))
            .map(|s| NamedSource::new(s.name.clone(), s.text.clone()))
    }

    fn report(&self, policy: &PolicyId, d: &dyn miette::Diagnostic) -> InFile {
        match self.named(policy) {
            Some(named) => InFile::wrap(d, named),
            None => InFile::wrap(d, NamedSource::new("?", Arc::from(""))),
        }
    }

    /// The actions a policy is validated against: those it names, with a placeholder member
    /// for a service group it names without one, and a placeholder action (every action has the
    /// same principals, resource and context, so one stands for the others).
    fn actions_of<'d>(detections: impl IntoIterator<Item = &'d Detection>) -> BTreeSet<String> {
        let ids: BTreeSet<&String> = detections
            .into_iter()
            .flat_map(|d| d.analysis.action_ids.iter())
            .collect();
        let mut actions: BTreeSet<String> = ids
            .iter()
            .filter(|a| a.contains(':'))
            .map(|a| a.to_string())
            .collect();
        for group in ids.iter().filter(|a| !a.contains(':')) {
            if !actions.iter().any(|a| a.starts_with(&format!("{group}:"))) {
                // A group is declared with its members; give a group its placeholder member.
                actions.insert(format!("{group}:*"));
            }
        }
        actions.insert("sts:GetCallerIdentity".to_string());
        actions
    }

    fn run(mut self, errors: &mut Vec<Report>, warnings: &mut Vec<Report>) {
        // Cedar typechecks a policy once per action (and principal type) its scope admits: a
        // policy whose scope names actions, against those only, but an unscoped one against
        // every action of the schema, so that a pack's validation grew with the square of its
        // size. Policies with an action scope are validated against one schema of every action
        // the pack names; unscoped ones against a schema of only the actions they name, since
        // the others, alike but for their names, tell nothing more.
        let (scoped, unscoped): (Vec<&Detection>, Vec<&Detection>) = self
            .detections
            .iter()
            .partition(|d| d.analysis.actions.is_some());
        let mut groups: Vec<(BTreeSet<String>, Vec<Policy>)> = Vec::new();
        if !scoped.is_empty() {
            let actions = Self::actions_of(self.detections.iter());
            groups.push((actions, scoped.iter().map(|d| d.policy.clone()).collect()));
        }
        let mut by_actions: BTreeMap<BTreeSet<String>, Vec<Policy>> = BTreeMap::new();
        for d in unscoped {
            by_actions
                .entry(Self::actions_of([d]))
                .or_default()
                .push(d.policy.clone());
        }
        groups.extend(by_actions);
        let mut results = Vec::new();
        for (actions, policies) in groups {
            let schema = match schema::schema(&actions) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(miette::miette!(
                        "internal error: the model schema does not parse: {e}"
                    ));
                    return;
                }
            };
            let set = match PolicySet::from_policies(policies) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(miette::miette!("{e}"));
                    return;
                }
            };
            results.push(Validator::new(schema).validate(&set, ValidationMode::Strict));
        }
        let lenient = |e: &ValidationError| {
            self.options.lenient_optional
                && matches!(
                    e,
                    ValidationError::UnsafeOptionalAttributeAccess(_)
                        | ValidationError::UnsafeTagAccess(_)
                )
        };
        let all_errors = || results.iter().flat_map(|r| r.validation_errors());
        for e in all_errors() {
            if !follow_on(e) {
                self.wrong.insert(e.policy_id().to_string());
            }
        }
        // The same mistake is reported once for each principal type it applies to: keep one.
        let mut seen = HashSet::new();
        for e in all_errors() {
            let policy = e.policy_id().to_string();
            if lenient(e) || (follow_on(e) && self.wrong.contains(&policy)) {
                continue;
            }
            let spans: Vec<(usize, usize)> = miette::Diagnostic::labels(e)
                .map(|l| l.map(|l| (l.offset(), l.len())).collect())
                .unwrap_or_default();
            let help = miette::Diagnostic::help(e).map(|h| h.to_string());
            let kind = std::mem::discriminant(e);
            if !seen.insert((policy, spans, help, format!("{kind:?}"))) {
                continue;
            }
            errors.push(Report::new(self.report(e.policy_id(), e)));
        }
        for w in results.iter().flat_map(|r| r.validation_warnings()) {
            let policy = w.policy_id().to_string();
            match w {
                ValidationWarning::ImpossiblePolicy(_) => {
                    if self.wrong.contains(&policy) {
                        continue;
                    }
                    let help = if self.literal_false.contains(&policy) {
                        "its condition is the literal `false` (`when { false }`, `unless { true }`)"
                            .to_string()
                    } else {
                        "for no principal type and action can its scope and conditions all hold: look for a `principal is` no event has, an attribute compared with a value of another type, or a condition that contradicts another".to_string()
                    };
                    errors.push(Report::new(self.report(w.policy_id(), w).reworded(
                        format!(
                            "policy {policy:?} can never fire: its condition is false for every event"
                        ),
                        Some(help),
                    ).error()));
                }
                _ => warnings.push(Report::new(self.report(w.policy_id(), w).warning())),
            }
        }
        self.check_keys(errors);
    }

    /// Type-checks the expressions of `@group` and `@distinct`: each as if read at the end of
    /// the condition of every detection whose events it is read on (the detection, and for
    /// `@group` each step of its sequence), in strict mode; errors point into the annotation.
    fn check_keys(&self, errors: &mut Vec<Report>) {
        if self.detections.iter().all(|d| d.correlation.is_none()) {
            return;
        }
        // Every step a key is read on is scoped to its actions or, unscoped, typechecks the same
        // against any: one schema of the pack's actions serves them all.
        let validator = match schema::schema(&Self::actions_of(self.detections.iter())) {
            Ok(schema) => Validator::new(schema),
            Err(e) => {
                errors.push(miette::miette!(
                    "internal error: the model schema does not parse: {e}"
                ));
                return;
            }
        };
        let mut seen = HashSet::new();
        for (i, d) in self.detections.iter().enumerate() {
            let (Some(Some(declared)), Some(c)) = (self.declared.get(i), &d.correlation) else {
                continue;
            };
            let Some(named) = self.named(d.policy.id()) else {
                continue;
            };
            if self.wrong.contains(&d.id) {
                continue;
            }
            let exprs = declared.expressions();
            let problem = |at: (usize, usize), message: String, help: Option<String>| {
                Report::new(InFile::new(message, at.into(), "here", help, named.clone()))
            };
            // What they read: the group is read on the event, not on one of its elements.
            for (name, located, start, text) in &exprs {
                let reads_element = correlation::needs_of(&[text]).is_ok_and(|n| n.element);
                let allowed = *name == "distinct" && d.each.is_some();
                if reads_element && !allowed {
                    errors.push(problem(
                        located.span(*start, text.len()),
                        format!("@{name} of policy {:?} reads context.element", d.id),
                        Some(if *name == "group" {
                            "a group is read on the event, not on one of its elements".to_string()
                        } else {
                            "only a policy with @each has elements: add @each, or read the event"
                                .to_string()
                        }),
                    ));
                }
            }
            let mut targets = vec![(i, true)];
            targets.extend(c.after.iter().map(|(_, step)| (*step, false)));
            for (t, own) in targets {
                let Some(step) = self.detections.get(t) else {
                    continue;
                };
                if self.wrong.contains(&step.id) {
                    continue;
                }
                let chosen: Vec<&(&str, &correlation::Located, usize, &str)> = exprs
                    .iter()
                    .filter(|(name, ..)| own || *name == "group")
                    .collect();
                if chosen.is_empty() {
                    continue;
                }
                let base = step
                    .policy
                    .to_cedar()
                    .unwrap_or_else(|| step.policy.to_string());
                let texts: Vec<&str> = chosen.iter().map(|x| x.3).collect();
                let (policy, at) =
                    match correlation::reading_policy(&format!("{}#keys", d.id), &base, &texts) {
                        Ok(p) => p,
                        Err(e) => {
                            errors.push(miette::miette!(
                                "internal error: the keys of {:?} do not parse: {e}",
                                d.id
                            ));
                            continue;
                        }
                    };
                let set = match PolicySet::from_policies([policy]) {
                    Ok(s) => s,
                    Err(e) => {
                        errors.push(miette::miette!("{e}"));
                        continue;
                    }
                };
                let on = if own {
                    String::new()
                } else {
                    format!(" (read on the events of step {:?})", step.id)
                };
                let result = validator.validate(&set, ValidationMode::Strict);
                for e in result.validation_errors() {
                    // Which expression, and where in it: each is in the clause twice.
                    let label = miette::Diagnostic::labels(e)
                        .and_then(|mut l| l.next())
                        .map(|l| (l.offset(), l.len()));
                    let found = label.and_then(|(o, l)| {
                        at.iter().enumerate().find_map(|(k, copies)| {
                            let len = texts.get(k)?.len();
                            let copy = copies.iter().find(|c| o >= **c && o < **c + len)?;
                            Some((k, o - copy, l.min(len - (o - copy))))
                        })
                    });
                    let (k, rel, len) = found.unwrap_or((0, 0, 0));
                    let Some((name, located, start, text)) = chosen.get(k).copied() else {
                        continue;
                    };
                    let span = if found.is_some() {
                        located.span(start + rel, len)
                    } else {
                        located.span(*start, text.len())
                    };
                    let mut help = miette::Diagnostic::help(e).map(|h| h.to_string());
                    if matches!(
                        e,
                        ValidationError::UnsafeOptionalAttributeAccess(_)
                            | ValidationError::UnsafeTagAccess(_)
                    ) {
                        help = Some(format!(
                            "the {name} is read on the events {:?}'s condition holds for: test the value there (`… has …`, `hasTag`), so that an event without it does not match",
                            step.id
                        ));
                    }
                    // Cedar names the policy it checked, which is ours, not the author's.
                    let cedar = e.to_string();
                    let cedar = cedar
                        .strip_prefix(&format!("for policy `{}#keys`, ", d.id))
                        .unwrap_or(&cedar);
                    let message = format!("@{name} of policy {:?}{on}: {cedar}", d.id);
                    let kind = format!("{:?}", std::mem::discriminant(e));
                    if !seen.insert((d.id.clone(), span, help.clone(), kind)) {
                        continue;
                    }
                    errors.push(problem(span, message, help));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Vec<PolicySource> {
        vec![PolicySource {
            name: "t.cedar".to_string(),
            text: text.into(),
        }]
    }

    const OK: &str = r#"
// A comment before the policy.
@id("s3-public")
@title("Public object")
@severity("high")
@mitre("T1530")
forbid (principal, action == Action::"s3:PutObject", resource)
when { context.requestParameters.hasTag("x-amz-acl") && context.requestParameters.getTag("x-amz-acl") == "public-read" };
"#;

    #[test]
    fn loads_a_detection_with_its_line() {
        let pack = load(src(OK), "test").unwrap();
        assert_eq!(pack.mode, Mode::Detection);
        let d = &pack.detections[0];
        assert_eq!(
            (d.id.as_str(), d.line, d.severity),
            ("s3-public", 3, Some(Severity::High))
        );
        assert_eq!(d.mitre.as_deref(), Some("T1530"));
        assert_eq!(d.policy.id().to_string(), "s3-public");
    }

    fn errors(text: &str) -> String {
        let e = load(src(text), "test").unwrap_err();
        format!("{e}")
    }

    #[test]
    fn annotations_are_required() {
        let e = errors(r#"forbid (principal, action, resource);"#);
        assert!(e.contains("needs an @id"), "{e}");
        let e = errors(r#"@id("x") @title("t") forbid (principal, action, resource);"#);
        assert!(e.contains("needs a @severity"), "{e}");
        let e = errors(
            r#"@id("x") @title("t") @severity("urgent") forbid (principal, action, resource);"#,
        );
        assert!(e.contains("unknown severity"), "{e}");
        let twice = format!("{OK}\n{OK}");
        assert!(errors(&twice).contains("already used"));
    }

    #[test]
    fn validation_catches_typos() {
        let e = errors(
            r#"@id("x") @title("t") @severity("low") forbid (principal, action, resource) when { context.sourceIPAdress == "1.2.3.4" };"#,
        );
        assert!(e.contains("sourceIPAdress"), "{e}");
        let e = errors(
            r#"@id("x") @title("t") @severity("low") forbid (principal, action, resource) when { context.requestParameters.getTag("k") == "v" };"#,
        );
        assert!(e.to_lowercase().contains("tag"), "unguarded getTag: {e}");
        let e = errors("@id(\"x\") forbid (principal, action, resource) when { ");
        assert!(e.contains("t.cedar"), "parse errors name the file: {e}");
    }

    fn warnings(text: &str) -> Vec<String> {
        let pack = load(src(text), "test").unwrap_or_else(|e| panic!("{e}"));
        pack.warnings.iter().map(|w| format!("{w:?}")).collect()
    }

    const HEAD: &str = r#"@id("x") @title("t") @severity("low") "#;

    #[test]
    fn unknown_actions_are_warnings_with_a_suggestion() {
        let w = warnings(&format!(
            r#"{HEAD}forbid (principal, action == Action::"s3:PutObjetc", resource);"#
        ));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("unknown action `s3:PutObjetc`"), "{w:?}");
        assert!(w[0].contains("did you mean `s3:PutObject`?"), "{w:?}");
        let w = warnings(&format!(
            r#"{HEAD}forbid (principal, action in [Action::"newservice"], resource);"#
        ));
        assert!(w[0].contains("unknown service `newservice`"), "{w:?}");
        let with_extension = vec![
            PolicySource { name: "t.cedar".into(), text: r#"@id("x") @title("t") @severity("low") forbid (principal, action == Action::"s3:BrandNewCall", resource);"#.into() },
            PolicySource { name: "pack/actions.txt".into(), text: "s3:BrandNewCall\n".into() },
        ];
        assert!(load(with_extension, "test").unwrap().warnings.is_empty());
    }

    #[test]
    fn what_is_not_spelt_like_an_action_is_an_error() {
        for bad in [
            "s3:Put Object",
            "s3:",
            ":PutObject",
            "s3:3Put",
            "s3:Put\u{202e}Object",
        ] {
            let e = errors(&format!(
                r#"{HEAD}forbid (principal, action == Action::"{bad}", resource);"#
            ));
            assert!(e.contains("is not an action"), "{bad}: {e}");
        }
    }

    #[test]
    fn has_must_name_a_declared_attribute() {
        let e = errors(&format!(
            "{HEAD}forbid (principal, action, resource)\nunless {{ context has errrorCode }};"
        ));
        assert!(
            e.contains("`context has errrorCode` in policy \"x\" is always false"),
            "{e}"
        );
        assert!(e.contains("did you mean `errorCode`?"), "{e}");
        assert!(e.contains("t.cedar:2:18"), "points at the has: {e}");
        let e = errors(&format!(
            "{HEAD}forbid (principal, action, resource) when {{ principal has accesKeyId }};"
        ));
        assert!(e.contains("did you mean `accessKeyId`?"), "{e}");
        assert!(
            e.ends_with("1 error(s) in the policy pack"),
            "not also reported as impossible: {e}"
        );
    }

    #[test]
    fn errors_after_a_genuine_error_are_withheld() {
        let e = errors(&format!(
            r#"{HEAD}forbid (principal, action, resource) when {{
                context.requestParameters.hasTag("a") && context.sourceIPAdress == "x" &&
                context.requestParameters.getTag("a") == "b" && context.requestParameters.getTag("a") != "c" }};"#
        ));
        assert!(e.contains("sourceIPAdress"), "{e}");
        assert!(!e.to_lowercase().contains("unsafe"), "{e}");
        assert!(e.ends_with("1 error(s) in the policy pack"), "{e}");
        // Without the genuine error, a truly unguarded getTag is still an error.
        let e = errors(&format!(
            r#"{HEAD}forbid (principal, action, resource) when {{ context.requestParameters.getTag("a") == "b" }};"#
        ));
        assert!(e.to_lowercase().contains("tag"), "{e}");
    }

    #[test]
    fn policies_that_can_never_fire_are_errors() {
        let e = errors(&format!(
            "{HEAD}forbid (principal, action, resource) when {{ false }};"
        ));
        assert!(e.contains("policy \"x\" can never fire"), "{e}");
        assert!(e.contains("literal `false`"), "{e}");
        let e = errors(&format!(
            "{HEAD}forbid (principal, action, resource) unless {{ true }};"
        ));
        assert!(e.contains("can never fire"), "{e}");
        let e = errors(&format!(
            "{HEAD}forbid (principal, action, resource) when {{ context.readOnly && false }};"
        ));
        assert!(e.contains("can never fire"), "{e}");
        assert!(!e.contains("literal `false`"), "{e}");
    }

    #[test]
    fn cedars_other_warnings_are_warnings() {
        let w = warnings(&format!(
            "{HEAD}forbid (principal, action, resource) when {{ context.eventName == \"Get{}ole\" }};",
            '\u{0420}'
        ));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_lowercase().contains("script"), "{w:?}");
    }

    const COUNT: &str =
        r#"@id("reads") @title("t") @severity("low") @window("10m") @threshold("100")"#;

    #[test]
    fn correlations_are_read_with_their_kind_and_keyings() {
        let text = format!(
            r#"{COUNT} @group("principal.accessKeyId, context.sourceIPAddress")
            forbid (principal, action == Action::"s3:GetObject", resource)
            when {{ principal has accessKeyId && context has sourceIPAddress }};
            @id("whoami") @title("t") @severity("info") @buildingBlock
            forbid (principal, action == Action::"sts:GetCallerIdentity", resource)
            when {{ principal has accessKeyId }};
            @id("after") @title("t") @severity("high") @group("principal.accessKeyId") @window("1h") @after("whoami")
            forbid (principal, action == Action::"iam:CreateUser", resource)
            when {{ principal has accessKeyId }};"#
        );
        let pack = load(src(&text), "test").unwrap_or_else(|e| panic!("{e}"));
        let [reads, whoami, after] = &pack.detections[..] else {
            panic!("three detections")
        };
        assert_eq!(reads.kind(), "correlation");
        assert_eq!(whoami.kind(), "building block");
        assert!(!whoami.reported_alone() && !after.reported_alone());
        let c = reads.correlation.as_ref().unwrap();
        assert_eq!(
            (c.kind, c.threshold, c.window.ms),
            (correlation::Kind::Count, 100, 600_000)
        );
        let texts: Vec<&str> = c.group.iter().map(|g| g.text.as_str()).collect();
        assert_eq!(texts, ["principal.accessKeyId", "context.sourceIPAddress"]);
        assert_eq!(
            whoami.keyings,
            [Keying {
                correlation: 2,
                step: 0,
                quick: true
            }],
            "a step is keyed for its sequence"
        );
        assert_eq!(
            after.correlation.as_ref().unwrap().kind,
            correlation::Kind::Sequence
        );
    }

    #[test]
    fn group_expressions_are_type_checked_inside_their_annotation() {
        let e = errors(&format!(
            "{COUNT}\n@group(\"principal.accesKeyId\")\nforbid (principal, action == Action::\"s3:GetObject\", resource);"
        ));
        assert!(e.contains("@group of policy \"reads\""), "{e}");
        assert!(e.contains("did you mean `accessKeyId`?"), "{e}");
        assert!(e.contains("t.cedar:2:9"), "points into the annotation: {e}");
        // An optional attribute needs its `has` in the condition.
        let e = errors(&format!(
            "{COUNT} @group(\"context.sourceIPAddress\") forbid (principal, action, resource);"
        ));
        assert!(e.contains("attribute `sourceIPAddress`"), "{e}");
        assert!(e.contains("the value there"), "{e}");
        let e = errors(&format!(
            r#"{COUNT} @distinct("context.requestParameters.getTag(\"secretId\")") forbid (principal, action, resource);"#
        ));
        assert!(e.contains("@distinct of policy"), "{e}");
    }

    #[test]
    fn a_sequences_group_is_checked_on_each_step() {
        let e = errors(
            r#"@id("whoami") @title("t") @severity("info") @buildingBlock
            forbid (principal, action == Action::"sts:GetCallerIdentity", resource);
            @id("after") @title("t") @severity("high") @group("principal.accessKeyId") @window("1h") @after("whoami")
            forbid (principal, action == Action::"iam:CreateUser", resource)
            when { principal has accessKeyId };"#,
        );
        assert!(e.contains("(read on the events of step \"whoami\")"), "{e}");
        assert!(
            e.ends_with("1 error(s) in the policy pack"),
            "the sequence's own is fine: {e}"
        );
    }

    #[test]
    fn after_names_detections_of_the_pack() {
        let e = errors(
            r#"@id("sts-whoami") @title("t") @severity("info")
            forbid (principal, action == Action::"sts:GetCallerIdentity", resource);
            @id("after") @title("t") @severity("high") @window("1h") @after("sts-whoam")
            forbid (principal, action == Action::"iam:CreateUser", resource);"#,
        );
        assert!(e.contains("no detection \"sts-whoam\" in the pack"), "{e}");
        assert!(e.contains("did you mean `sts-whoami`?"), "{e}");
        let e = errors(
            r#"@id("after") @title("t") @severity("high") @window("1h") @after("after")
            forbid (principal, action == Action::"iam:CreateUser", resource);"#,
        );
        assert!(e.contains("@after names the detection itself"), "{e}");
    }

    #[test]
    fn correlation_annotations_are_read_with_pointed_errors() {
        let head = r#"@id("x") @title("t") @severity("low") "#;
        let body = r#" @group("principal") forbid (principal, action, resource);"#;
        for (annotations, want) in [
            (r#"@window("10 min") @threshold("5")"#, "is not a duration"),
            (r#"@window("8d") @threshold("5")"#, "at most 7d"),
            (r#"@window("10m") @threshold("1")"#, "that is grouping"),
            (r#"@window("10m") @threshold("many")"#, "not a whole number"),
            (r#"@threshold("5")"#, "needs @window"),
            (
                r#"@window("10m") @distinct("context.eventName")"#,
                "@distinct needs @threshold",
            ),
            (
                r#"@window("10m") @threshold("5") @after("x")"#,
                "takes no @threshold",
            ),
            (
                r#"@window("10m") @buildingBlock"#,
                "a building block is a per-event detection",
            ),
            (
                r#"@window("10m") @threshold("5") @group("a,,b")"#,
                "an empty expression",
            ),
        ] {
            let body = if annotations.contains("@group") {
                " forbid (principal, action, resource);"
            } else {
                body
            };
            let e = errors(&format!("{head}{annotations}{body}"));
            assert!(e.contains(want), "{annotations}: {e}");
        }
        let e = errors(
            r#"@id("x") @title("t") @severity("low") @window("10m") forbid (principal, action, resource);"#,
        );
        assert!(e.contains("@window alone counts nothing"), "{e}");
        let e = errors(
            r#"@id("x") @title("t") @window("10m") @group("principal") permit (principal, action, resource);"#,
        );
        assert!(
            e.contains("correlations and building blocks are detections"),
            "{e}"
        );
    }

    #[test]
    fn a_building_block_no_correlation_reads_is_a_warning() {
        let w = warnings(
            r#"@id("x") @title("t") @severity("low") @buildingBlock forbid (principal, action, resource);"#,
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("feeds no correlation"), "{w:?}");
    }

    #[test]
    fn permits_select_allow_list_mode() {
        let pack = load(
            src(r#"@id("ci") @title("CI deploys") permit (principal, action in Action::"s3", resource);"#),
            "test",
        )
        .unwrap();
        assert_eq!(pack.mode, Mode::AllowList);
        assert_eq!(pack.detections[0].severity, None);
    }
}
