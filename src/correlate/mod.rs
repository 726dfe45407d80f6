//! Correlations: the matches of a scan grouped, counted and ordered in event time.
//!
//! Per-event matching stays parallel: the engine decides each event and evaluates the
//! expressions its correlations group and count by ([`crate::engine::correlation`]); the
//! matches reach the [`Correlator`] in input order, one thread, beside the findings.
//!
//! **Time is event time.** A trail's files interleave by region and delivery, so matches come
//! roughly, not exactly, in time order. The correlator holds each match in a heap by event time
//! until it is older than the latest event time seen minus the **lateness bound** (15 minutes
//! by default, CloudTrail's delivery delay; `--lateness`), then processes the matches in time
//! order. A match that comes later than that is counted in the summary and applied when its
//! group's window is still open; one whose window has closed is counted as too late (with
//! examples), never silently dropped.
//!
//! **Memory is bounded by the open groups**, not by the archive: a group's window closes and
//! frees the group as time passes it; a group holds at most 60 step counters, its distinct
//! values up to the threshold and [`crate::report::SAMPLE`] sampled events (a sequence, a
//! chain per step); past `--max-groups` open groups of one correlation the group that would
//! expire first is dropped (or, if it fired, reported early), counted; and at most
//! [`Options::max_pending`] matches wait for the lateness bound.

pub mod group;
pub mod sampling;
pub mod state;

use crate::engine::correlation::{Correlation, Kind};
use crate::engine::pack::Pack;
use crate::engine::{MatchKey, MatchValue, Severity};
use crate::report::summary::{EXAMPLES, Problem, Summary};
use crate::report::{
    Contributing, Correlated, DetectionInfo, DistinctValues, EventInfo, Finding, Matched, ReadValue,
};
use crate::time::Timestamp;
use group::{Arrival, Fired, Group, Outcome};
use serde::{Deserialize, Serialize};

use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::io;
use std::rc::Rc;
use std::sync::Arc;

/// CloudTrail delivers an event within about 15 minutes of its time.
pub const LATENESS_MS: i64 = 15 * 60_000;

/// The default cap on the open groups of one correlation.
pub const MAX_GROUPS: usize = 100_000;

/// The most matches that wait for the lateness bound.
pub const MAX_PENDING: usize = 50_000;

/// How correlations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How far behind the latest event time a match may come and still be taken in order.
    pub lateness_ms: i64,
    /// The most open groups of one correlation.
    pub max_groups: usize,
    /// The most matches waiting for the lateness bound; past it the oldest is taken early.
    pub max_pending: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lateness_ms: LATENESS_MS,
            max_groups: MAX_GROUPS,
            max_pending: MAX_PENDING,
        }
    }
}

impl Options {
    /// Every match held until the end and taken in exact time order: for test cases, whose
    /// events are few and in any order.
    pub fn exact() -> Options {
        Options {
            lateness_ms: i64::MAX,
            max_groups: MAX_GROUPS,
            max_pending: usize::MAX,
        }
    }
}

/// An event a correlation counted, as a finding shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Evidence {
    /// Milliseconds since the epoch.
    pub time: i64,
    pub shown: Contributing,
    /// The whole event, when the scan explained it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The record's text, for a sampled match not yet explained: explained if its group fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A match waiting for the lateness bound.
struct Pending {
    time: i64,
    seq: u64,
    evidence: Rc<Evidence>,
    /// Each key with the index of its correlation's spec.
    keys: Vec<(usize, MatchKey)>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed: the heap's top is the earliest (then the first to arrive).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// A group's key: its values, as the matches read them (looked up by a match's own, without a
/// copy); also the group's values.
type Key = Rc<[MatchValue]>;

/// The open groups of a correlation, by key. Keys are the event's content, so hashed with a
/// random seed; foldhash, as hashbrown's own, is several times faster than std's SipHash on
/// keys of a hundred bytes (a principal's ARN), looked up at every match.
type Groups = HashMap<Key, (Group, i64), foldhash::quality::RandomState>;

/// A new group's place in `expiries`, before it has one.
const QUEUED_NOWHERE: i64 = i64::MIN;

/// One correlation detection and its open groups.
struct Spec {
    info: DetectionInfo,
    correlation: Arc<Correlation>,
    /// A sequence's steps, the detection last.
    steps: Vec<String>,
    /// Each open group, with its place in `expiries`.
    groups: Groups,
    /// `(time, key)` of each group, to close windows as time passes them: a group's time here
    /// is at most when it expires (put off as it goes, not at each match).
    expiries: BTreeSet<(i64, Key)>,
}

/// The correlations of a pack over a scan's matches.
pub struct Correlator {
    specs: Vec<Spec>,
    by_id: HashMap<String, usize>,
    /// The spec of each detection of the pack that is a correlation, by the detection's index.
    spec_of: Vec<Option<usize>>,
    pending: BinaryHeap<Pending>,
    seq: u64,
    /// The latest event time of a match seen.
    latest: Option<i64>,
    /// The time of the last match processed in order.
    clock: Option<i64>,
    opts: Options,
    open: u64,
    stats: crate::report::summary::Correlations,
    findings: Vec<(String, Severity)>,
}

impl Correlator {
    /// The correlations of `pack`.
    pub fn new(pack: &Pack, opts: Options) -> Correlator {
        let mut specs = Vec::new();
        let mut by_id = HashMap::new();
        let mut spec_of = vec![None; pack.detections.len()];
        for (i, d) in pack.detections.iter().enumerate() {
            let Some(c) = &d.correlation else {
                continue;
            };
            if let Some(slot) = spec_of.get_mut(i) {
                *slot = Some(specs.len());
            }
            let mut steps: Vec<String> = c.after.iter().map(|(id, _)| id.clone()).collect();
            steps.push(d.id.clone());
            by_id.insert(d.id.clone(), specs.len());
            specs.push(Spec {
                info: DetectionInfo {
                    id: d.id.clone(),
                    title: d.title.clone(),
                    severity: d.severity.unwrap_or(Severity::Medium),
                    mitre: d.mitre.clone(),
                    description: d.description.clone(),
                    runbook: d.runbook.clone(),
                    policy: format!("{}:{}", d.file, d.line),
                },
                correlation: c.clone(),
                steps,
                groups: Groups::default(),
                expiries: BTreeSet::new(),
            });
        }
        Correlator {
            specs,
            by_id,
            spec_of,
            pending: BinaryHeap::new(),
            seq: 0,
            latest: None,
            clock: None,
            opts,
            open: 0,
            stats: crate::report::summary::Correlations {
                lateness_ms: opts.lateness_ms,
                ..Default::default()
            },
            findings: Vec::new(),
        }
    }

    /// Whether the pack has correlations.
    pub fn is_active(&self) -> bool {
        !self.specs.is_empty()
    }

    /// How many groups are open, and how many matches wait for the lateness bound.
    pub fn held(&self) -> (u64, usize) {
        (self.open, self.pending.len())
    }

    /// A finding of the per-event pipeline: passed on to `out`, or, a match, taken in (and
    /// passed on too when its detection is reported on its own). Correlation findings go to
    /// `out` as their windows end.
    pub fn route(
        &mut self,
        mut f: Finding,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some(mut matched) = f.matched.take() else {
            return out(f);
        };
        if matched.reported {
            self.take(evidence(f.clone(), &matched), matched.keys, out)?;
            return out(f);
        }
        let keys = std::mem::take(&mut matched.keys);
        self.take(evidence(f, &matched), keys, out)
    }

    fn take(
        &mut self,
        evidence: Evidence,
        keys: Vec<MatchKey>,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        let keys: Vec<(usize, MatchKey)> = keys
            .into_iter()
            .filter_map(|k| Some((self.spec_of.get(k.correlation).copied().flatten()?, k)))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let time = evidence.time;
        let evidence = Rc::new(evidence);
        self.latest = Some(self.latest.map_or(time, |l| l.max(time)));
        if let Some(clock) = self.clock
            && time < clock
        {
            return self.late(clock, time, &evidence, keys, out);
        }
        self.seq += 1;
        self.pending.push(Pending {
            time,
            seq: self.seq,
            evidence,
            keys,
        });
        self.release(false, out)
    }

    /// A match older than the matches already processed: applied where its window is open.
    fn late(
        &mut self,
        clock: i64,
        time: i64,
        evidence: &Rc<Evidence>,
        keys: Vec<(usize, MatchKey)>,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut applied = false;
        for (s, k) in keys {
            let window = self
                .specs
                .get(s)
                .map_or(0, |spec| spec.correlation.window.ms);
            if time.saturating_add(window) <= clock {
                continue;
            }
            applied |= self.apply(s, time, evidence, k, out)? == Outcome::Applied;
        }
        if applied {
            self.stats.late_applied += 1;
        } else {
            self.stats.too_late += 1;
            if self.stats.too_late_examples.len() < EXAMPLES {
                let shown = &evidence.shown;
                self.stats.too_late_examples.push(Problem {
                    path: shown.location.file.clone(),
                    record: Some(shown.location.record),
                    reason: format!(
                        "{} at {}, {} after a later match had been taken",
                        shown.detection,
                        Timestamp(time),
                        crate::time::human_duration(clock - time)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Processes the waiting matches the lateness bound has passed (all, at the end), in time
    /// order, then closes the windows that ended.
    fn release(
        &mut self,
        all: bool,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        let bound = self
            .latest
            .map_or(i64::MIN, |l| l.saturating_sub(self.opts.lateness_ms));
        while let Some(top) = self.pending.peek() {
            let over = self.pending.len() > self.opts.max_pending;
            if !(all || top.time <= bound || over) {
                break;
            }
            if over && top.time > bound && !all {
                self.stats.released_early += 1;
            }
            let Some(p) = self.pending.pop() else {
                break;
            };
            self.clock = Some(self.clock.map_or(p.time, |c| c.max(p.time)));
            // A sequence's later steps first, so that one event is not two steps.
            let mut keys = p.keys;
            keys.sort_by_key(|(_, k)| std::cmp::Reverse(k.step));
            for (s, k) in keys {
                self.apply(s, p.time, &p.evidence, k, out)?;
            }
        }
        if let Some(clock) = self.clock {
            self.expire(clock, out)?;
        }
        Ok(())
    }

    /// Adds a match to its group of correlation `s`.
    fn apply(
        &mut self,
        s: usize,
        time: i64,
        evidence: &Rc<Evidence>,
        k: MatchKey,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<Outcome> {
        let MatchKey {
            step,
            group: mut values,
            distinct,
            weight,
            ..
        } = k;
        let exists = self
            .specs
            .get(s)
            .is_some_and(|spec| spec.groups.contains_key(values.as_slice()));
        // A new group takes the match's values as its key.
        let made: Option<Key> = if exists {
            None
        } else {
            self.make_room(s, out)?;
            let Some(spec) = self.specs.get_mut(s) else {
                return Ok(Outcome::TooLate);
            };
            let key: Key = std::mem::take(&mut values).into();
            let group = Group::new(key.clone(), &spec.correlation);
            spec.groups.insert(key.clone(), (group, QUEUED_NOWHERE));
            self.open += 1;
            self.stats.peak_groups = self.stats.peak_groups.max(self.open);
            Some(key)
        };
        let key: &[MatchValue] = made.as_deref().unwrap_or(values.as_slice());
        let Some(spec) = self.specs.get_mut(s) else {
            return Ok(Outcome::TooLate);
        };
        let c = &spec.correlation;
        let Some((group, queued)) = spec.groups.get_mut(key) else {
            return Ok(Outcome::TooLate);
        };
        let arrival = Arrival {
            time,
            step,
            weight: weight.max(1),
            distinct: &distinct,
            evidence,
        };
        let (outcome, ended) = group.add(c, &arrival);
        let finding = ended.map(|f| build(&spec.info, c, &spec.steps, &group.values, &f));
        let old = *queued;
        // A group's place in `expiries` is never later than when it expires; most matches make
        // it expire later, and leave its place where it is (see `expire`).
        let place = if group.is_empty() {
            None
        } else {
            let new = group.expires(c);
            if old != QUEUED_NOWHERE && new >= old {
                Some(old)
            } else {
                *queued = new;
                Some(new)
            }
        };
        if place != Some(old)
            && let Some((key, _)) = spec.groups.get_key_value(key)
        {
            let key = key.clone();
            spec.expiries.remove(&(old, key.clone()));
            match place {
                Some(new) => {
                    spec.expiries.insert((new, key));
                }
                None => {
                    spec.groups.remove(&key);
                    self.open = self.open.saturating_sub(1);
                }
            }
        }
        if let Some(f) = finding {
            self.emit(f, out)?;
        }
        Ok(outcome)
    }

    /// Keeps the open groups of correlation `s` under the cap: the group that would expire
    /// first goes, reported if it fired.
    fn make_room(
        &mut self,
        s: usize,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        let max = self.opts.max_groups.max(1);
        loop {
            let Some(spec) = self.specs.get_mut(s) else {
                return Ok(());
            };
            if spec.groups.len() < max {
                return Ok(());
            }
            let Some((at, key)) = spec.expiries.pop_first() else {
                return Ok(());
            };
            // A place taken before the group's later matches: the group goes to its own.
            if let Some((group, queued)) = spec.groups.get_mut(&key) {
                let expires = group.expires(&spec.correlation);
                if expires > at {
                    *queued = expires;
                    spec.expiries.insert((expires, key));
                    continue;
                }
            }
            let Some((group, _)) = spec.groups.remove(&key) else {
                continue;
            };
            self.open = self.open.saturating_sub(1);
            match group.fired {
                Some(mut f) => {
                    f.closed_early = true;
                    self.stats.closed_early += 1;
                    let finding = build(
                        &spec.info,
                        &spec.correlation,
                        &spec.steps,
                        &group.values,
                        &f,
                    );
                    self.emit(finding, out)?;
                }
                None => self.stats.evicted += 1,
            }
        }
    }

    /// Closes the windows that ended by `now`: their findings are reported, and what the
    /// window left behind is dropped. A group whose place in `expiries` was taken before its
    /// later matches is put back at the time it expires now.
    fn expire(
        &mut self,
        now: i64,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        for s in 0..self.specs.len() {
            while let Some(spec) = self.specs.get_mut(s) {
                let Some((at, key)) = spec.expiries.first().cloned() else {
                    break;
                };
                if at > now {
                    break;
                }
                spec.expiries.remove(&(at, key.clone()));
                let c = &spec.correlation;
                let Some((group, queued)) = spec.groups.get_mut(&key) else {
                    continue;
                };
                let expires = group.expires(c);
                if expires > now {
                    *queued = expires;
                    spec.expiries.insert((expires, key));
                    continue;
                }
                let ended = group.fired.take_if(|f| f.end <= now);
                group.age(c, now);
                let finding = ended.map(|f| build(&spec.info, c, &spec.steps, &group.values, &f));
                if group.is_empty() {
                    spec.groups.remove(&key);
                    self.open = self.open.saturating_sub(1);
                } else {
                    let new = group.expires(c).max(now.saturating_add(1));
                    *queued = new;
                    spec.expiries.insert((new, key));
                }
                if let Some(f) = finding {
                    self.emit(f, out)?;
                }
            }
        }
        Ok(())
    }

    fn emit(
        &mut self,
        f: Finding,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        self.findings
            .push((f.detection.id.clone(), f.detection.severity));
        out(f)
    }

    /// The end of the input: every waiting match is processed, the findings of windows that
    /// fired are reported (cut at the end of the input), and the windows that have not fired,
    /// with the sequences under way, are returned to be saved (`--state`).
    pub fn finish(
        &mut self,
        out: &mut dyn FnMut(Finding) -> io::Result<()>,
    ) -> io::Result<Vec<state::SavedGroup>> {
        self.release(true, out)?;
        let mut saved = Vec::new();
        for s in 0..self.specs.len() {
            let Some(spec) = self.specs.get_mut(s) else {
                continue;
            };
            let mut groups: Vec<(Key, (Group, i64))> = spec.groups.drain().collect();
            spec.expiries.clear();
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            let mut findings = Vec::new();
            for (_, (mut group, _)) in groups {
                if let Some(f) = group.fired.take() {
                    findings.push((
                        f.start,
                        build(
                            &spec.info,
                            &spec.correlation,
                            &spec.steps,
                            &group.values,
                            &f,
                        ),
                    ));
                }
                if !group.is_empty() {
                    saved.push(state::SavedGroup::of(&spec.info.id, &group));
                }
            }
            self.open = 0;
            findings.sort_by_key(|(start, _)| *start);
            for (_, f) in findings {
                self.emit(f, out)?;
            }
        }
        Ok(saved)
    }

    /// Adds what the correlations found and did to a scan's summary.
    pub fn summarise(&self, summary: &mut Summary) {
        for (id, severity) in &self.findings {
            summary.findings += 1;
            summary
                .by_detection
                .entry(id.clone())
                .or_insert((*severity, 0))
                .1 += 1;
        }
        summary.correlation = self.stats.clone();
    }

    /// The correlations' identities, as a state file records them.
    pub fn identities(&self) -> Vec<state::Identity> {
        self.specs
            .iter()
            .map(|s| state::Identity {
                id: s.info.id.clone(),
                rule: s.correlation.describe(),
            })
            .collect()
    }

    /// Takes the open windows of an earlier run.
    pub fn resume(&mut self, saved: state::State) -> Result<u64, String> {
        let mut n = 0;
        self.latest = saved.latest;
        for g in saved.groups {
            let Some(&s) = self.by_id.get(&g.correlation) else {
                return Err(format!(
                    "a window of unknown correlation {:?}",
                    g.correlation
                ));
            };
            let Some(spec) = self.specs.get_mut(s) else {
                continue;
            };
            let group = g.into_group(&spec.correlation);
            let key: Key = group.values.clone();
            let expires = group.expires(&spec.correlation);
            spec.expiries.insert((expires, key.clone()));
            if spec.groups.insert(key, (group, expires)).is_none() {
                self.open += 1;
                n += 1;
            }
        }
        self.stats.resumed = n;
        Ok(n)
    }

    /// Records how many windows were saved.
    pub fn saved(&mut self, n: u64) {
        self.stats.saved = n;
    }

    /// The latest event time of a match seen, for the state file.
    pub fn latest(&self) -> Option<i64> {
        self.latest
    }
}

/// What a correlation keeps of a match: its finding's id, time, action and location, and, if
/// explained, its event and values; else the record's text if it was sampled.
fn evidence(mut f: Finding, matched: &Matched) -> Evidence {
    let explained = matched.explained;
    // An event not explained is shown by these alone: taken, not copied.
    let (event_id, event_time, action) = if explained {
        (
            f.event.event_id.clone(),
            f.event.event_time.clone(),
            f.event.action.clone(),
        )
    } else {
        (
            std::mem::take(&mut f.event.event_id),
            std::mem::take(&mut f.event.event_time),
            std::mem::take(&mut f.event.action),
        )
    };
    Evidence {
        time: matched.time,
        shown: Contributing {
            detection: f.detection.id,
            event_id,
            event_time,
            action,
            location: f.location,
            values: if explained { f.values } else { Vec::new() },
            text: None,
        },
        event: explained.then_some(f.event),
        notes: f.notes,
        text: f.raw.map(|r| r.0).filter(|_| !explained),
    }
}

/// The finding of a window that fired.
fn build(
    info: &DetectionInfo,
    c: &Correlation,
    steps: &[String],
    values: &[MatchValue],
    f: &Fired,
) -> Finding {
    // A match counted, not explained, carries its time as a number only.
    let shown = |e: &Evidence| {
        let mut c = Contributing {
            text: e.text.clone(),
            ..e.shown.clone()
        };
        if c.event_time.is_empty() {
            c.event_time = Timestamp(e.time).to_string();
        }
        c
    };
    let mut sample: Vec<Contributing> = f.sample.iter().map(|e| shown(e)).collect();
    if !f.sample.iter().any(|e| Rc::ptr_eq(e, &f.last_event)) {
        sample.push(shown(&f.last_event));
    }
    let shown_events = match c.kind {
        Kind::Sequence => f.events + c.after.len() as u64,
        _ => f.events,
    };
    let first = f.sample.first().unwrap_or(&f.last_event);
    let event = first.event.clone().unwrap_or_else(|| {
        EventInfo::identified(
            first.shown.event_id.clone(),
            Timestamp(first.time).to_string(),
            first.shown.action.clone(),
        )
    });
    let mut notes = first.notes.clone();
    if f.closed_early {
        notes.push(
            "reported before its window ended: more groups were open than --max-groups".to_string(),
        );
    }
    let time = |ms: i64| Timestamp(ms).to_string();
    let group = c
        .group
        .iter()
        .zip(values)
        .map(|(g, v)| {
            let v = v.shown();
            ReadValue {
                field: g.text.clone(),
                json: Some(v.json),
                value: Some(v.cedar),
            }
        })
        .collect();
    let distinct = (c.kind == Kind::Distinct).then(|| DistinctValues {
        expression: c
            .distinct
            .as_ref()
            .map(|d| d.text.clone())
            .unwrap_or_default(),
        count: f.distinct.len() as u64,
        values: f.distinct.clone(),
        more: f.more,
    });
    Finding {
        detection: info.clone(),
        event,
        location: first.shown.location.clone(),
        values: first.shown.values.clone(),
        notes,
        correlation: Some(Box::new(Correlated {
            kind: c.kind.as_str().to_string(),
            rule: c.describe(),
            group,
            window: c.window.text.clone(),
            start: time(f.start),
            end: time(f.end),
            first: time(f.first),
            last: time(f.last),
            count: f.count,
            events: shown_events,
            threshold: matches!(c.kind, Kind::Count | Kind::Distinct).then_some(c.threshold),
            distinct,
            steps: if c.kind == Kind::Sequence {
                steps.to_vec()
            } else {
                Vec::new()
            },
            omitted: shown_events.saturating_sub(sample.len() as u64),
            sample,
        })),
        matched: None,
        // A finding over many events carries none of them whole.
        raw: None,
    }
}

#[cfg(test)]
mod tests;
