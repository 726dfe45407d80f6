//! Correlation detections: what is counted, grouped and ordered across events, declared in
//! annotations beside a policy's per-event condition.
//!
//! ```cedar
//! @id("s3-bulk-object-reads")
//! @group("principal, context.sourceIPAddress")   // Cedar expressions, read on each match
//! @window("10m")                                  // s, m, h, d
//! @threshold("500")                               // at least 500 matches per group within it
//! forbid (principal, action == Action::"s3:GetObject", resource)
//! when { context has sourceIPAddress } unless { context has errorCode };
//! ```
//!
//! - `@threshold("N")`: at least N matching events per group within the window (a **count**);
//! - `@distinct("expr")` with `@threshold("N")`: at least N distinct values of `expr`;
//! - `@after("a, b")`: a **sequence**: this detection's condition holds after detections `a`
//!   then `b` matched, in that order, for the same group within the window;
//! - `@group` and `@window` alone: **grouping**, one finding per group and window;
//! - `@buildingBlock`: a detection that feeds correlations and is not reported on its own.
//!
//! The per-event condition stays a policy like any other (validated, indexed, explained). The
//! expressions of `@group` and `@distinct` are type-checked as if they were read at the end of
//! the condition of every detection whose events they are read on (the detection itself, and
//! the steps of a sequence), so an optional attribute needs its `has` in the condition, as
//! anywhere else. They are evaluated by the engine when the policy is satisfied, on the same
//! request ([`Engine::match_keys`]), and what they read is built and memoized with it.

use super::analysis::{Needs, analyse};
use super::explain::{MatchValue, Shown};
use super::pack::Detection;
use super::{Engine, decide};
use crate::model::actions::closest;
use crate::model::element::{self, Leaf};
use crate::model::fields::{self, Field};
use crate::model::{EventView, PrincipalModel};
use cedar_policy::{Entities, EvalResult, Expression, Policy, PolicyId, Request, eval_expression};
use std::str::FromStr;
use std::sync::Arc;

/// The annotations of a correlation.
pub const ANNOTATIONS: [&str; 6] = [
    "group",
    "window",
    "threshold",
    "distinct",
    "after",
    "buildingBlock",
];

/// The largest `@threshold` of a count: a group's count is a number, not a list.
pub const MAX_COUNT_THRESHOLD: u64 = 1_000_000;

/// The largest `@threshold` of distinct values: a group keeps its values, up to the threshold.
pub const MAX_DISTINCT_THRESHOLD: u64 = 10_000;

/// The longest `@window`: open windows are held in memory and in `--state` files.
pub const MAX_WINDOW_MS: i64 = 7 * 86_400_000;

/// The most expressions of a `@group`, and steps of a sequence.
pub const MAX_PARTS: usize = 8;

/// What a correlation does with its matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// At least `threshold` matches per group within the window.
    Count,
    /// At least `threshold` distinct values of an expression per group within the window.
    Distinct,
    /// The detections of `@after`, then this one, in order, for a group within the window.
    Sequence,
    /// One finding per group and window, with the count.
    Group,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Count => "count",
            Kind::Distinct => "distinct",
            Kind::Sequence => "sequence",
            Kind::Group => "group",
        }
    }
}

/// An expression of `@group` or `@distinct`.
#[derive(Debug, Clone)]
pub struct KeyExpr {
    /// As written: `context.sourceIPAddress`; the name a finding shows its value under.
    pub text: String,
    pub expr: Expression,
    /// How it is read on a match.
    pub read: Read,
}

/// How an expression is read on a match: straight from the event and its principal when it is
/// one of these shapes (a match then costs no request), else by Cedar on the request the
/// condition held for. Either gives the value Cedar gives (`quick_reads_are_cedars` holds them
/// to it on every fixture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// `principal`.
    Principal,
    /// `principal.arn`, `principal.accessKeyId`, `principal.accountId`.
    PrincipalAttr(&'static str),
    /// `context.sourceIPAddress` and the other strings of the record.
    Context(&'static str),
    /// `context.requestParameters.getTag("key")`, and of the other free-form fields.
    Tag(Field, String),
    Cedar,
}

impl Read {
    /// How `text` is read.
    pub fn of(text: &str) -> Read {
        let t = text.trim();
        if t == "principal" {
            return Read::Principal;
        }
        if let Some(attr) = t.strip_prefix("principal.") {
            return ["arn", "accessKeyId", "accountId"]
                .into_iter()
                .find(|a| *a == attr)
                .map_or(Read::Cedar, Read::PrincipalAttr);
        }
        let Some(rest) = t.strip_prefix("context.") else {
            return Read::Cedar;
        };
        if let Some(attr) = CONTEXT_STRINGS.into_iter().find(|a| *a == rest) {
            return Read::Context(attr);
        }
        let tag = rest.split_once(".getTag(").and_then(|(field, arg)| {
            let field = Field::from_name(field)?;
            let literal = arg.strip_suffix(')')?;
            if literal.contains('\\') {
                return None;
            }
            let key: String = serde_json::from_str(literal).ok()?;
            Some(Read::Tag(field, key))
        });
        tag.unwrap_or(Read::Cedar)
    }
}

/// The context's attributes that are a record's strings as written.
const CONTEXT_STRINGS: [&str; 7] = [
    "eventName",
    "eventSource",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "recipientAccountId",
];

/// A window of time, as written and in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub text: String,
    pub ms: i64,
}

/// A detection's correlation, resolved against its pack.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub kind: Kind,
    /// Empty: every match is in one group.
    pub group: Vec<KeyExpr>,
    pub window: Window,
    /// The count or the number of distinct values that fires; 1 for grouping and sequences.
    pub threshold: u64,
    pub distinct: Option<KeyExpr>,
    /// A sequence's steps before this detection, in order: their ids and pack indices.
    pub after: Vec<(String, usize)>,
}

impl Correlation {
    /// How many steps a match can be at: the steps before this detection, and itself.
    pub fn steps(&self) -> usize {
        self.after.len() + 1
    }

    /// What the correlation declares, in the words of a finding:
    /// `count >= 500 per (principal) within 10m`.
    pub fn describe(&self) -> String {
        let group = if self.group.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = self.group.iter().map(|g| g.text.as_str()).collect();
            format!(" per ({})", names.join(", "))
        };
        let w = &self.window.text;
        match self.kind {
            Kind::Count => format!("count >= {}{group} within {w}", self.threshold),
            Kind::Distinct => format!(
                "distinct {} >= {}{group} within {w}",
                self.distinct.as_ref().map_or("", |d| d.text.as_str()),
                self.threshold
            ),
            Kind::Sequence => {
                let ids: Vec<&str> = self.after.iter().map(|(id, _)| id.as_str()).collect();
                format!("{}, then this{group} within {w}", ids.join(", then "))
            }
            Kind::Group => format!("grouped{group} and {w}"),
        }
    }
}

/// A detection's part in a correlation: its matches are read at `step` of `correlation` (a
/// pack index). For a count, distinct count or grouping, the correlation is the detection
/// itself at step 0; each step of a sequence is a keying of the step's detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keying {
    pub correlation: usize,
    pub step: usize,
    /// Every expression it reads is read straight from the event ([`Read`]): its keys are
    /// made with the finding, not with the decision.
    pub quick: bool,
}

/// What one match carries into a correlation: its group's values, its distinct values and its
/// weight (the elements it held for, for a policy with `@each`; else 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchKey {
    /// The correlation detection, by its index in the pack.
    pub correlation: usize,
    /// Its step in the correlation (a sequence's; 0 otherwise).
    pub step: usize,
    pub group: Vec<MatchValue>,
    pub distinct: Vec<MatchValue>,
    pub weight: u64,
}

/// A problem with a correlation's annotations, at a span of the policy's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// Offset and length in the policy file.
    pub span: (usize, usize),
    pub label: &'static str,
    pub help: Option<String>,
}

/// An annotation's value as written in the file: where its string starts, and for each
/// character of the value, its offset in the file (escapes take more than one).
#[derive(Debug, Clone, Default)]
pub struct Located {
    pub value: String,
    /// Offset in the file of the annotation (`@group(...)`) and its length.
    pub whole: (usize, usize),
    /// Per byte of `value`, its offset in the file; empty when it could not be followed.
    offsets: Vec<usize>,
}

impl Located {
    /// The span in the file of `value[start..start + len]`, or the whole annotation.
    pub fn span(&self, start: usize, len: usize) -> (usize, usize) {
        let first = self.offsets.get(start);
        let last = self.offsets.get((start + len).saturating_sub(1));
        match (first, last) {
            (Some(&a), Some(&b)) if b >= a && len > 0 => (a, b - a + 1),
            _ => self.whole,
        }
    }
}

/// Finds `@name(` in a policy's text (at `offset` in its file) and follows its string literal,
/// so that an error can point into the value.
pub fn locate(text: &str, offset: usize, name: &str, value: &str) -> Located {
    let whole_of = |at: usize| {
        let end = text
            .get(at..)
            .and_then(|rest| rest.find(')'))
            .map_or(name.len() + 1, |e| e + 1);
        (offset + at, end)
    };
    let pattern = format!("@{name}");
    let mut found = None;
    for (at, _) in text.match_indices(&pattern) {
        let after = text.get(at + pattern.len()..).unwrap_or("");
        let trimmed = after.trim_start();
        if trimmed.starts_with('(') {
            found = Some((at, at + pattern.len() + (after.len() - trimmed.len())));
            break;
        }
    }
    let Some((at, paren)) = found else {
        return Located {
            value: value.to_string(),
            whole: (offset, 1),
            offsets: Vec::new(),
        };
    };
    let whole = whole_of(at);
    let rest = text.get(paren + 1..).unwrap_or("");
    let lead = rest.len() - rest.trim_start().len();
    let quote = paren + 1 + lead;
    if !rest.trim_start().starts_with('"') {
        return Located {
            value: value.to_string(),
            whole,
            offsets: Vec::new(),
        };
    }
    // Follow the literal: a plain character is itself; `\"`, `\\`, `\n`… are two characters
    // for one; anything else (`\u{…}`) stops the mapping.
    let mut offsets = Vec::with_capacity(value.len());
    let mut chars = text
        .get(quote + 1..)
        .unwrap_or("")
        .char_indices()
        .map(|(i, c)| (quote + 1 + i, c));
    let mut followed = true;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some((_, 'u')) | None => {
                    followed = false;
                    break;
                }
                Some(_) => offsets.push(offset + i),
            },
            c => {
                for _ in 0..c.len_utf8() {
                    offsets.push(offset + i);
                }
            }
        }
    }
    if !followed || offsets.len() != value.len() {
        offsets.clear();
    }
    Located {
        value: value.to_string(),
        whole,
        offsets,
    }
}

/// The elements of a set literal's inside (`a, f(b, c), "d,e"`), each with its offset and
/// trimmed: commas inside calls, brackets, braces and strings do not split.
pub fn split_elements(value: &str) -> Result<Vec<(usize, &str)>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("an unmatched `{c}`"));
                }
            }
            ',' if depth == 0 => {
                out.push(trimmed(value, start, i)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_string {
        return Err("an unterminated string".to_string());
    }
    if depth != 0 {
        return Err("an unclosed bracket".to_string());
    }
    out.push(trimmed(value, start, value.len())?);
    Ok(out)
}

fn trimmed(value: &str, start: usize, end: usize) -> Result<(usize, &str), String> {
    let part = value.get(start..end).unwrap_or("");
    let lead = part.len() - part.trim_start().len();
    let text = part.trim();
    if text.is_empty() {
        return Err("an empty expression (two commas, or a comma at an end)".to_string());
    }
    Ok((start + lead, text))
}

/// Reads a duration: a whole number and a unit, `s`, `m`, `h` or `d` (`30s`, `10m`, `1h`, `1d`);
/// `0` alone is nothing.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(0);
    }
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = t.split_at(digits);
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?} is not a duration: write a whole number and a unit, s, m, h or d (30s, 10m, 1h, 1d)"
            ));
        }
    };
    let n: i64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration: write a whole number and a unit (10m, 1h)")
    })?;
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Reads a window: a duration (`10m`) from 1s to 7d.
pub fn parse_window(text: &str) -> Result<Window, String> {
    let ms = parse_duration(text)?;
    if ms < 1_000 {
        return Err(format!("{text:?}: a window is at least 1s"));
    }
    if ms > MAX_WINDOW_MS {
        return Err(format!("{text:?}: a window is at most 7d"));
    }
    Ok(Window {
        text: text.trim().to_string(),
        ms,
    })
}

/// The annotations of a correlation as a policy declares them, before its pack is known.
#[derive(Debug, Clone)]
pub struct Declared {
    pub group: Vec<(Located, usize, String)>,
    pub window: Option<Window>,
    pub threshold: Option<u64>,
    pub distinct: Option<(Located, usize, String)>,
    pub after: Vec<(String, (usize, usize))>,
    /// Where each annotation is, for errors about how they combine.
    pub spans: Vec<(&'static str, (usize, usize))>,
}

/// Reads a policy's correlation annotations: `Ok(None)` when it has none. `text` is the
/// policy's text at `offset` in its file; `annotation` reads an annotation's value. Every
/// problem is returned, not only the first.
pub fn declared(
    id: &str,
    text: &str,
    offset: usize,
    annotation: &dyn Fn(&str) -> Option<String>,
    is_permit: bool,
) -> Result<Option<Declared>, Vec<Problem>> {
    let present: Vec<&'static str> = ANNOTATIONS
        .into_iter()
        .filter(|a| *a != "buildingBlock" && annotation(a).is_some())
        .collect();
    let building_block = annotation("buildingBlock");
    let mut problems = Vec::new();
    let at = |name: &str| locate(text, offset, name, &annotation(name).unwrap_or_default());
    if let Some(v) = &building_block
        && !matches!(v.trim(), "" | "true")
    {
        problems.push(Problem {
            message: format!(
                "policy {id:?}: @buildingBlock takes no value (or \"true\"), not {v:?}"
            ),
            span: at("buildingBlock").whole,
            label: "here",
            help: Some("write @buildingBlock on its own".to_string()),
        });
    }
    if is_permit {
        for name in present
            .iter()
            .copied()
            .chain(building_block.is_some().then_some("buildingBlock"))
        {
            problems.push(Problem {
                message: format!(
                    "permit {id:?} has @{name}: correlations and building blocks are detections (forbid)"
                ),
                span: at(name).whole,
                label: "on a permit",
                help: None,
            });
        }
        return Err(problems);
    }
    if present.is_empty() {
        return if problems.is_empty() {
            Ok(None)
        } else {
            Err(problems)
        };
    }
    let mut d = Declared {
        group: Vec::new(),
        window: None,
        threshold: None,
        distinct: None,
        after: Vec::new(),
        spans: present.iter().map(|name| (*name, at(name).whole)).collect(),
    };
    if let Some(value) = annotation("group") {
        let located = at("group");
        match split_elements(&value) {
            Err(e) => problems.push(Problem {
                message: format!("policy {id:?}: @group: {e}"),
                span: located.whole,
                label: "here",
                help: Some(
                    "write Cedar expressions separated by commas: @group(\"principal, context.sourceIPAddress\")"
                        .to_string(),
                ),
            }),
            Ok(parts) if parts.len() > MAX_PARTS => problems.push(Problem {
                message: format!(
                    "policy {id:?}: @group has {} expressions; at most {MAX_PARTS}",
                    parts.len()
                ),
                span: located.whole,
                label: "here",
                help: None,
            }),
            Ok(parts) => {
                for (start, part) in parts {
                    if let Err(e) = Expression::from_str(part) {
                        problems.push(Problem {
                            message: format!(
                                "policy {id:?}: @group: `{part}` is not a Cedar expression: {e}"
                            ),
                            span: located.span(start, part.len()),
                            label: "not an expression",
                            help: None,
                        });
                    } else {
                        d.group.push((located.clone(), start, part.to_string()));
                    }
                }
            }
        }
    }
    if let Some(value) = annotation("window") {
        match parse_window(&value) {
            Ok(w) => d.window = Some(w),
            Err(e) => problems.push(Problem {
                message: format!("policy {id:?}: @window: {e}"),
                span: at("window").whole,
                label: "here",
                help: None,
            }),
        }
    }
    if let Some(value) = annotation("distinct") {
        let located = at("distinct");
        let part = value.trim();
        let start = value.len() - value.trim_start().len();
        match Expression::from_str(part) {
            Ok(_) if !part.is_empty() => {
                d.distinct = Some((located, start, part.to_string()));
            }
            Ok(_) => {}
            Err(e) => problems.push(Problem {
                message: format!(
                    "policy {id:?}: @distinct: `{part}` is not a Cedar expression: {e}"
                ),
                span: located.span(start, part.len()),
                label: "not an expression",
                help: None,
            }),
        }
    }
    if let Some(value) = annotation("threshold") {
        let limit = if annotation("distinct").is_some() {
            MAX_DISTINCT_THRESHOLD
        } else {
            MAX_COUNT_THRESHOLD
        };
        match value.trim().parse::<u64>() {
            Ok(n) if (2..=limit).contains(&n) => d.threshold = Some(n),
            Ok(1) => problems.push(Problem {
                message: format!(
                    "policy {id:?}: @threshold(\"1\") fires on every match: that is grouping"
                ),
                span: at("threshold").whole,
                label: "here",
                help: Some("leave @threshold out for one finding per group and window".to_string()),
            }),
            _ => problems.push(Problem {
                message: format!(
                    "policy {id:?}: @threshold({value:?}) is not a whole number from 2 to {limit}"
                ),
                span: at("threshold").whole,
                label: "here",
                help: Some("for example @threshold(\"100\")".to_string()),
            }),
        }
    }
    if let Some(value) = annotation("after") {
        let located = at("after");
        match split_elements(&value) {
            Err(e) => problems.push(Problem {
                message: format!("policy {id:?}: @after: {e}"),
                span: located.whole,
                label: "here",
                help: Some(
                    "name the detections before this one, in order: @after(\"id-a, id-b\")"
                        .to_string(),
                ),
            }),
            Ok(parts) if parts.len() >= MAX_PARTS => problems.push(Problem {
                message: format!(
                    "policy {id:?}: @after names {} steps; at most {}",
                    parts.len(),
                    MAX_PARTS - 1
                ),
                span: located.whole,
                label: "here",
                help: None,
            }),
            Ok(parts) => {
                for (start, part) in parts {
                    d.after
                        .push((part.to_string(), located.span(start, part.len())));
                }
            }
        }
    }
    // Annotations that need each other.
    let has = |name: &str| present.contains(&name);
    let span_of = |name: &str| at(name).whole;
    let mut needs = |name: &'static str, needed: &str, help: &str| {
        problems.push(Problem {
            message: format!("policy {id:?}: @{name} needs @{needed}"),
            span: span_of(name),
            label: "here",
            help: Some(help.to_string()),
        });
    };
    if !has("window") {
        let first = present.first().copied().unwrap_or("group");
        needs(
            first,
            "window",
            "say within how long: @window(\"10m\") (s, m, h, d)",
        );
    }
    if has("distinct") && !has("threshold") {
        needs(
            "distinct",
            "threshold",
            "say how many distinct values fire: @threshold(\"10\")",
        );
    }
    if has("window") && !has("group") && !has("threshold") && !has("after") && !has("distinct") {
        problems.push(Problem {
            message: format!(
                "policy {id:?}: @window alone counts nothing: add @group (one finding per group and window), @threshold or @after"
            ),
            span: span_of("window"),
            label: "here",
            help: None,
        });
    }
    if has("after") {
        for other in ["threshold", "distinct"] {
            if has(other) {
                problems.push(Problem {
                    message: format!(
                        "policy {id:?}: a sequence (@after) takes no @{other}: it fires when its steps happen in order"
                    ),
                    span: span_of(other),
                    label: "here",
                    help: Some(
                        "count the steps in a detection of their own, or leave it out".to_string(),
                    ),
                });
            }
        }
    }
    if building_block.is_some() {
        problems.push(Problem {
            message: format!(
                "policy {id:?}: a building block is a per-event detection, and cannot also be a correlation"
            ),
            span: at("buildingBlock").whole,
            label: "here",
            help: Some(
                "a correlation's matches are not reported on their own already; remove @buildingBlock"
                    .to_string(),
            ),
        });
    }
    if problems.is_empty() {
        Ok(Some(d))
    } else {
        Err(problems)
    }
}

impl Declared {
    /// The kind the annotations declare.
    pub fn kind(&self) -> Kind {
        match (
            self.after.is_empty(),
            self.distinct.is_some(),
            self.threshold,
        ) {
            (false, _, _) => Kind::Sequence,
            (true, true, _) => Kind::Distinct,
            (true, false, Some(_)) => Kind::Count,
            (true, false, None) => Kind::Group,
        }
    }

    /// The correlation, with its `@after` ids found in the pack (`ids`, in pack order; `own`
    /// is this detection's index). An unknown id gets the closest known one as a suggestion.
    pub fn resolve(&self, id: &str, own: usize, ids: &[&str]) -> Result<Correlation, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut after = Vec::new();
        for (step, span) in &self.after {
            match ids.iter().position(|i| i == step) {
                Some(i) if i == own => problems.push(Problem {
                    message: format!("policy {id:?}: @after names the detection itself"),
                    span: *span,
                    label: "itself",
                    help: Some(
                        "the detection is the sequence's last step already; name the steps before it"
                            .to_string(),
                    ),
                }),
                Some(i) => after.push((step.clone(), i)),
                None => problems.push(Problem {
                    message: format!("policy {id:?}: @after: no detection {step:?} in the pack"),
                    span: *span,
                    label: "unknown detection",
                    help: closest(step, ids.iter().copied())
                        .map(|s| format!("did you mean `{s}`?")),
                }),
            }
        }
        let group = self
            .group
            .iter()
            .filter_map(|(_, _, text)| key_expr(text))
            .collect();
        let distinct = self
            .distinct
            .as_ref()
            .and_then(|(_, _, text)| key_expr(text));
        let window = self.window.clone().unwrap_or(Window {
            text: "0s".to_string(),
            ms: 0,
        });
        if problems.is_empty() {
            Ok(Correlation {
                kind: self.kind(),
                group,
                window,
                threshold: self.threshold.unwrap_or(1),
                distinct,
                after,
            })
        } else {
            Err(problems)
        }
    }

    /// The expressions to type-check, each with where it is: `(name, located, start, text)`.
    pub fn expressions(&self) -> Vec<(&'static str, &Located, usize, &str)> {
        let mut out: Vec<(&'static str, &Located, usize, &str)> = self
            .group
            .iter()
            .map(|(l, s, t)| ("group", l, *s, t.as_str()))
            .collect();
        if let Some((l, s, t)) = &self.distinct {
            out.push(("distinct", l, *s, t.as_str()));
        }
        out
    }
}

fn key_expr(text: &str) -> Option<KeyExpr> {
    Expression::from_str(text).ok().map(|expr| KeyExpr {
        text: text.to_string(),
        expr,
        read: Read::of(text),
    })
}

impl Correlation {
    /// Whether the keys of a match at `step` are all read straight from the event, for a
    /// detection with (`each`) or without `@each`.
    pub fn quick(&self, step: usize, each: bool) -> bool {
        let own = step + 1 == self.steps();
        let group = self.group.iter().all(|g| g.read != Read::Cedar);
        let distinct = match (&self.distinct, own) {
            (Some(d), true) => !each && d.read != Read::Cedar,
            _ => true,
        };
        group && distinct
    }
}

/// A policy made of `base` (a policy's text) with one more `when` clause that reads each of
/// `exprs` (`(e) == (e)`), and where in the text each expression's two copies start.
pub fn reading_policy(
    id: &str,
    base: &str,
    exprs: &[&str],
) -> Result<(Policy, Vec<[usize; 2]>), String> {
    let head = base.trim_end().trim_end_matches(';');
    let mut text = format!("{head}\nwhen {{ ");
    let mut at = Vec::new();
    for (i, e) in exprs.iter().enumerate() {
        if i > 0 {
            text.push_str(" && ");
        }
        text.push('(');
        let first = text.len();
        text.push_str(e);
        text.push_str(") == (");
        let second = text.len();
        text.push_str(e);
        text.push(')');
        at.push([first, second]);
    }
    text.push_str(" };");
    let policy =
        Policy::parse(Some(PolicyId::new(id)), &text).map_err(|e| format!("{e}: {text}"))?;
    Ok((policy, at))
}

/// What the expressions read, as the engine must build it for them: merged into the needs of
/// every detection whose matches evaluate them.
pub fn needs_of(exprs: &[&str]) -> Result<Needs, String> {
    if exprs.is_empty() {
        return Ok(Needs::default());
    }
    let (policy, _) = reading_policy(
        "trailcedar-keys",
        "forbid (principal, action, resource);",
        exprs,
    )?;
    Ok(analyse(&policy)?.needs)
}

impl Engine {
    /// The keys of a match of detection `d`, one per correlation it feeds, evaluated on the
    /// request its condition held for. For a policy with `@each`, `elements` holds the store
    /// with its elements and the elements: the weight is the number of elements its condition
    /// holds for, and the distinct values are read on each of them.
    pub(super) fn match_keys(
        &self,
        (member, d): (usize, &Detection),
        request: &Request,
        entities: &Entities,
        elements: Option<(&Entities, &[Leaf])>,
        quick_too: bool,
    ) -> Result<Arc<[MatchKey]>, String> {
        let mut out = Vec::with_capacity(d.keyings.len());
        for k in d.keyings.iter().filter(|k| quick_too || !k.quick) {
            let Some(c) = self
                .pack
                .detections
                .get(k.correlation)
                .and_then(|c| c.correlation.as_deref())
            else {
                continue;
            };
            let mut group = Vec::with_capacity(c.group.len());
            for g in &c.group {
                group.push(MatchValue::of(evaluate(request, entities, g)?));
            }
            let own = k.correlation == member;
            let mut distinct = Vec::new();
            let mut weight = 1u64;
            match (own, elements) {
                (true, Some((store, leaves))) => {
                    weight = 0;
                    for leaf in leaves {
                        let bound = decide::with_element(request, &leaf.uid)?;
                        let holds = matches!(
                            eval_expression(&bound, store, &d.condition),
                            Ok(EvalResult::Bool(true))
                        );
                        if !holds {
                            continue;
                        }
                        weight += 1;
                        if let Some(e) = &c.distinct {
                            push_distinct(
                                &mut distinct,
                                MatchValue::of(evaluate(&bound, store, e)?),
                            );
                        }
                    }
                    weight = weight.max(1);
                }
                _ => {
                    if own && let Some(e) = &c.distinct {
                        push_distinct(
                            &mut distinct,
                            MatchValue::of(evaluate(request, entities, e)?),
                        );
                    }
                }
            }
            out.push(MatchKey {
                correlation: k.correlation,
                step: k.step,
                group,
                distinct,
                weight,
            });
        }
        Ok(out.into())
    }
}

impl Engine {
    /// The keys of a match of detection `member` on a request built for the event (`explain`).
    pub fn keys_of(
        &self,
        member: usize,
        view: &EventView,
        request: &Request,
        entities: &Entities,
    ) -> Result<Arc<[MatchKey]>, String> {
        let d = self
            .pack
            .detections
            .get(member)
            .ok_or_else(|| format!("no detection {member}"))?;
        match &d.each {
            Some(each) => {
                let bound = element::bind(each, view)?;
                let store = entities
                    .clone()
                    .add_entities(bound.entities, None)
                    .map_err(|e| e.to_string())?;
                self.match_keys(
                    (member, d),
                    request,
                    entities,
                    Some((&store, &bound.leaves)),
                    true,
                )
            }
            None => self.match_keys((member, d), request, entities, None, true),
        }
    }

    /// The keys of a match of detection `member`, one per correlation it feeds: those read
    /// straight from the event made here, the others taken from the decision (`decided`).
    /// A key that cannot be read (never expected: what a key reads is tested by the condition)
    /// leaves its correlation out.
    pub fn match_keys_of(
        &self,
        member: usize,
        view: &EventView,
        principal: &PrincipalModel,
        decided: Option<&[MatchKey]>,
    ) -> Vec<MatchKey> {
        let Some(d) = self.pack.detections.get(member) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(d.keyings.len());
        for k in &d.keyings {
            if !k.quick {
                let found = decided
                    .into_iter()
                    .flatten()
                    .find(|x| x.correlation == k.correlation && x.step == k.step);
                out.extend(found.cloned());
                continue;
            }
            let Some(c) = self
                .pack
                .detections
                .get(k.correlation)
                .and_then(|c| c.correlation.as_deref())
            else {
                continue;
            };
            let group: Result<Vec<MatchValue>, String> =
                c.group.iter().map(|g| quick(view, principal, g)).collect();
            let distinct: Result<Vec<MatchValue>, String> = match &c.distinct {
                Some(e) if k.correlation == member => quick(view, principal, e).map(|v| {
                    let mut out = Vec::new();
                    push_distinct(&mut out, v);
                    out
                }),
                _ => Ok(Vec::new()),
            };
            if let (Ok(group), Ok(distinct)) = (group, distinct) {
                out.push(MatchKey {
                    correlation: k.correlation,
                    step: k.step,
                    group,
                    distinct,
                    weight: 1,
                });
            }
        }
        out
    }
}

/// An expression read straight from the event: the value Cedar would give, or the error Cedar
/// would raise for a value the event does not have.
fn quick(view: &EventView, principal: &PrincipalModel, e: &KeyExpr) -> Result<MatchValue, String> {
    let missing = || format!("`{}`: the event has no such value", e.text);
    let text = |v: Option<&str>| v.map(MatchValue::text).ok_or_else(missing);
    let ev = &view.event;
    match &e.read {
        Read::Principal => Ok(MatchValue::entity(
            principal.kind.type_name(),
            principal.uid.id().unescaped(),
        )),
        Read::PrincipalAttr("arn") => text(principal.arn.as_deref()),
        Read::PrincipalAttr("accessKeyId") => text(principal.access_key_id.as_deref()),
        Read::PrincipalAttr("accountId") => text(principal.account_id.as_deref()),
        Read::Context("eventName") => text(Some(&ev.event_name)),
        Read::Context("eventSource") => text(Some(&ev.event_source)),
        Read::Context("awsRegion") => text(ev.aws_region.as_deref()),
        Read::Context("sourceIPAddress") => text(ev.source_ip_address.as_deref()),
        Read::Context("userAgent") => text(ev.user_agent.as_deref()),
        Read::Context("errorCode") => text(ev.error_code.as_deref()),
        Read::Context("recipientAccountId") => text(ev.recipient_account_id.as_deref()),
        Read::Tag(field, key) => {
            let value = view.field(*field)?;
            value
                .and_then(|v| fields::lookup(v, key))
                .and_then(fields::tag_text)
                .map(|t| MatchValue::Text(t.into_boxed_str()))
                .ok_or_else(missing)
        }
        _ => Err(format!("`{}` is not read from the event", e.text)),
    }
}

fn evaluate(request: &Request, entities: &Entities, e: &KeyExpr) -> Result<Shown, String> {
    eval_expression(request, entities, &e.expr)
        .map(|v| Shown::of(&v))
        .map_err(|err| format!("`{}`: {err}", e.text))
}

/// A distinct value. A list counts each of its elements: a Cedar set's, and a payload's list
/// as its tag spells it (`getTag("instanceIds")` is the JSON text `["i-1","i-2"]`).
fn push_distinct(out: &mut Vec<MatchValue>, v: MatchValue) {
    let items: Vec<MatchValue> = match &v {
        MatchValue::Other(shown) if shown.json.is_array() => {
            split_set(shown).into_iter().map(MatchValue::of).collect()
        }
        MatchValue::Text(text) if text.starts_with('[') => {
            match serde_json::from_str::<Vec<serde_json::Value>>(text) {
                Ok(list) => list
                    .iter()
                    .filter_map(fields::tag_text)
                    .map(|t| MatchValue::Text(t.into_boxed_str()))
                    .collect(),
                Err(_) => vec![v],
            }
        }
        _ => vec![v],
    };
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
}

/// The elements of a set value, each in Cedar's spelling (cut from the set's own text).
fn split_set(v: &Shown) -> Vec<Shown> {
    let inner = v
        .cedar
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or("");
    let texts = split_elements(inner).unwrap_or_default();
    let jsons = match &v.json {
        serde_json::Value::Array(items) => items.clone(),
        _ => Vec::new(),
    };
    if inner.trim().is_empty() {
        return Vec::new();
    }
    if texts.len() != jsons.len() {
        return vec![v.clone()];
    }
    texts
        .into_iter()
        .zip(jsons)
        .map(|((_, cedar), json)| Shown {
            cedar: cedar.to_string(),
            json,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_a_number_and_a_unit() {
        assert_eq!(parse_window("10m").unwrap().ms, 600_000);
        assert_eq!(parse_window("1h").unwrap().ms, 3_600_000);
        assert_eq!(parse_window("30s").unwrap().ms, 30_000);
        assert_eq!(parse_window("7d").unwrap().ms, 7 * 86_400_000);
        for bad in ["10", "10 min", "m", "-1m", "0m", "1.5h", "8d", "10M"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("15m"), Ok(900_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400_000));
    }

    #[test]
    fn elements_split_at_top_level_commas_only() {
        let parts =
            split_elements(r#"principal, context.requestParameters.getTag("a,b"), f(x, [1, 2])"#)
                .unwrap();
        let texts: Vec<&str> = parts.iter().map(|(_, t)| *t).collect();
        assert_eq!(
            texts,
            [
                "principal",
                r#"context.requestParameters.getTag("a,b")"#,
                "f(x, [1, 2])"
            ]
        );
        assert_eq!(parts[1].0, 11, "offsets point at each element");
        assert!(split_elements("a,,b").is_err());
        assert!(split_elements("a, f(b").is_err());
        assert!(split_elements(r#"a, "b"#).is_err());
    }

    #[test]
    fn a_list_counts_each_of_its_elements_as_a_distinct_value() {
        let of = |s: &str| MatchValue::of(Shown::of(&EvalResult::String(s.into())));
        let mut out = Vec::new();
        push_distinct(&mut out, of(r#"["i-1","i-2",3]"#));
        push_distinct(&mut out, of("i-2"));
        let cedar: Vec<String> = out.iter().map(MatchValue::cedar).collect();
        assert_eq!(cedar, [r#""i-1""#, r#""i-2""#, r#""3""#]);
        let mut one = Vec::new();
        push_distinct(&mut one, of("[not a list"));
        assert_eq!(one.len(), 1);
        let mut set = Vec::new();
        let instances = Shown {
            cedar: r#"[Instance::"i-1", Instance::"i-2"]"#.into(),
            json: serde_json::json!([
                {"type": "Instance", "id": "i-1"},
                {"type": "Instance", "id": "i-2"}
            ]),
        };
        push_distinct(&mut set, MatchValue::of(instances));
        assert_eq!(
            set,
            [
                MatchValue::entity("Instance", "i-1"),
                MatchValue::entity("Instance", "i-2")
            ],
            "a set's elements are values of their own, an entity as read from an event"
        );
    }

    #[test]
    fn a_value_cedar_gives_equals_the_same_value_read_from_the_event() {
        // A group's key is looked up by value: a string or an entity that Cedar evaluated (a
        // step whose keys need a request) must meet the one a quick read made.
        for text in ["alice", "a \"quoted\" \\ name", "tab\there", "ユーザー"] {
            let evaluated = MatchValue::of(Shown::of(&EvalResult::String(text.into())));
            assert_eq!(evaluated, MatchValue::text(text), "{text:?}");
            assert_eq!(evaluated.shown(), Shown::text(text));
        }
        let arn = "arn:aws:sts::111122223333:assumed-role/app/i-0abc";
        let uid = cedar_policy::EntityUid::from_str(&format!("AssumedRole::{arn:?}")).unwrap();
        let evaluated = MatchValue::of(Shown::of(&EvalResult::EntityUid(uid)));
        assert_eq!(evaluated, MatchValue::entity("AssumedRole", arn));
        assert_eq!(evaluated.shown().json["id"], arn);
        // A record with the same two fields is not an entity.
        let record = MatchValue::of(Shown {
            cedar: r#"{"id": "x", "type": "T"}"#.into(),
            json: serde_json::json!({"type": "T", "id": "x"}),
        });
        assert!(matches!(record, MatchValue::Other(_)));
        assert_ne!(record, MatchValue::entity("T", "x"));
    }

    #[test]
    fn an_annotation_is_followed_through_its_escapes() {
        let text = r#"@distinct("context.requestParameters.getTag(\"secretId\")")"#;
        let value = r#"context.requestParameters.getTag("secretId")"#;
        let l = locate(text, 100, "distinct", value);
        let at = value.find("secretId").unwrap();
        let (start, len) = l.span(at, "secretId".len());
        assert_eq!(&text[start - 100..start - 100 + len], "secretId");
        assert_eq!(l.whole.0, 100);
    }
}
