//! One group of one correlation: what its matches add up to, until its window fires and ends.
//!
//! Counts and distinct values are kept over a sliding window measured in steps of a sixtieth
//! of its length (10 seconds for 10 minutes): a group fires when the matches of its last 60
//! steps reach the threshold. So matches within `window − window/60` of each other always
//! count together, and matches further apart than the window never do; and a group holds at
//! most 60 counters, whatever its traffic. A sequence keeps, for each of its steps, the chain
//! of matches that reached it with the latest start.
//!
//! Once a group fires, its finding covers the window from its first counted match: later
//! matches of the window are added to it (count, last time, distinct values, the first events
//! up to the sample), and when the window ends the finding is reported and the group starts
//! over.

use super::Evidence;
use crate::engine::MatchValue;
use crate::engine::correlation::{Correlation, Kind};
use crate::report::{DISTINCT_SHOWN, KeyValue, SAMPLE};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

/// Steps in a window.
pub const STEPS: i64 = 60;

/// The length of a correlation's step, in milliseconds.
pub fn step_ms(window_ms: i64) -> i64 {
    (window_ms / STEPS).max(1)
}

/// The matches of one step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    pub index: i64,
    /// Weighted, as compared with the threshold.
    pub count: u64,
    pub events: u64,
    /// The time of its first match.
    pub first: i64,
}

/// A chain of matches that reached a step of a sequence.
#[derive(Debug, Clone)]
pub struct Chain {
    pub start: i64,
    pub last: i64,
    pub events: Vec<Rc<Evidence>>,
}

/// A group that fired: its finding, growing until its window ends.
#[derive(Debug, Clone)]
pub struct Fired {
    pub start: i64,
    pub end: i64,
    pub first: i64,
    pub last: i64,
    pub count: u64,
    pub events: u64,
    /// Distinct values in the order seen, at most the threshold or [`DISTINCT_SHOWN`].
    pub distinct: Vec<KeyValue>,
    pub distinct_seen: HashSet<MatchValue>,
    pub more: bool,
    pub sample: Vec<Rc<Evidence>>,
    pub last_event: Rc<Evidence>,
    /// Reported before its window ended (`--max-groups`).
    pub closed_early: bool,
}

/// What one match brings to a group.
pub struct Arrival<'a> {
    pub time: i64,
    pub step: usize,
    pub weight: u64,
    pub distinct: &'a [MatchValue],
    pub evidence: &'a Rc<Evidence>,
}

/// The state of one group.
#[derive(Debug, Clone)]
pub struct Group {
    /// The values of `@group` (also the group's key).
    pub values: Rc<[MatchValue]>,
    /// Counts of the steps within the window, oldest first.
    pub steps: VecDeque<Step>,
    /// Distinct values within the window: the step each was last seen at, and the order in
    /// which they were first seen.
    pub seen: HashMap<MatchValue, (i64, u64)>,
    pub seen_order: u64,
    /// The first matches within the window, at most [`SAMPLE`].
    pub sample: Vec<Rc<Evidence>>,
    /// For a sequence: per step before the last, the chain that reached it with the latest
    /// start.
    pub chains: Vec<Option<Chain>>,
    pub fired: Option<Fired>,
}

/// What became of a match in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted.
    Applied,
    /// Older than the group's window: not counted.
    TooLate,
}

impl Group {
    pub fn new(values: Rc<[MatchValue]>, c: &Correlation) -> Group {
        Group {
            values,
            steps: VecDeque::new(),
            seen: HashMap::new(),
            seen_order: 0,
            sample: Vec::new(),
            chains: vec![None; c.after.len()],
            fired: None,
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
            && self.fired.is_none()
            && self.chains.iter().all(Option::is_none)
            && self.seen.is_empty()
    }

    /// When the group has nothing left to wait for, if no match comes: its finding's window
    /// ends, its counted matches leave the window, its chains are too old to complete.
    pub fn expires(&self, c: &Correlation) -> i64 {
        if let Some(f) = &self.fired {
            return f.end;
        }
        let step = step_ms(c.window.ms);
        let counted = self
            .steps
            .back()
            .map(|s| (s.index + STEPS).saturating_mul(step));
        let chained = self
            .chains
            .iter()
            .flatten()
            .map(|ch| ch.start.saturating_add(c.window.ms))
            .max();
        counted.into_iter().chain(chained).max().unwrap_or(i64::MIN)
    }

    /// Adds a match; a finding that this match ended (its window is over) is returned first,
    /// before the match starts the group afresh.
    pub fn add(&mut self, c: &Correlation, a: &Arrival) -> (Outcome, Option<Fired>) {
        let mut ended = None;
        let window = self.fired.as_ref().map(|f| (f.start, f.end));
        if let Some((start, end)) = window {
            if a.time < start {
                return (Outcome::TooLate, None);
            }
            if a.time < end {
                // A sequence's earlier steps may start the chains of its next finding.
                if c.kind == Kind::Sequence && a.step + 1 != c.steps() {
                    return (self.chain(c, a), None);
                }
                if let Some(f) = &mut self.fired {
                    f.absorb(c, a);
                }
                return (Outcome::Applied, None);
            }
            ended = self.fired.take();
        }
        let outcome = match c.kind {
            Kind::Sequence => self.chain(c, a),
            Kind::Count | Kind::Distinct | Kind::Group => self.count(c, a),
        };
        (outcome, ended)
    }

    fn count(&mut self, c: &Correlation, a: &Arrival) -> Outcome {
        let step = step_ms(c.window.ms);
        let s = a.time.div_euclid(step);
        let newest = self.steps.back().map_or(s, |b| b.index.max(s));
        let oldest = newest - (STEPS - 1);
        if s < oldest {
            return Outcome::TooLate;
        }
        while self.steps.front().is_some_and(|f| f.index < oldest) {
            self.steps.pop_front();
        }
        match self.steps.iter().position(|x| x.index >= s) {
            Some(i) if self.steps.get(i).is_some_and(|x| x.index == s) => {
                if let Some(x) = self.steps.get_mut(i) {
                    x.count = x.count.saturating_add(a.weight);
                    x.events += 1;
                    x.first = x.first.min(a.time);
                }
            }
            at => self.steps.insert(
                at.unwrap_or(self.steps.len()),
                Step {
                    index: s,
                    count: a.weight,
                    events: 1,
                    first: a.time,
                },
            ),
        }
        let from = oldest.saturating_mul(step);
        self.sample.retain(|e| e.time >= from);
        if self.sample.len() < SAMPLE {
            let at = self.sample.partition_point(|e| e.time <= a.time);
            self.sample.insert(at, a.evidence.clone());
        }
        if c.kind == Kind::Distinct {
            for v in a.distinct {
                self.seen_order += 1;
                let order = self.seen_order;
                match self.seen.get_mut(v) {
                    Some(entry) => entry.0 = entry.0.max(s),
                    None => {
                        self.seen.insert(v.clone(), (s, order));
                    }
                }
            }
            if self.seen.len() as u64 >= c.threshold {
                self.seen.retain(|_, (last, _)| *last >= oldest);
            }
        }
        let reached = match c.kind {
            Kind::Distinct => self.seen.len() as u64 >= c.threshold,
            _ => self.steps.iter().map(|x| x.count).sum::<u64>() >= c.threshold,
        };
        if reached {
            self.fire(c, a);
        }
        Outcome::Applied
    }

    /// The group fires: its finding starts at its first counted match.
    fn fire(&mut self, c: &Correlation, a: &Arrival) {
        let start = self
            .steps
            .front()
            .map_or(a.time, |s| s.first)
            .min(self.sample.first().map_or(a.time, |e| e.time));
        let mut seen: Vec<(u64, MatchValue)> = self
            .seen
            .drain()
            .map(|(v, (_, order))| (order, v))
            .collect();
        seen.sort_by_key(|(order, _)| *order);
        let cap = distinct_cap(c);
        let more = seen.len() > cap;
        seen.truncate(cap);
        let distinct: Vec<KeyValue> = seen.iter().map(|(_, v)| KeyValue::of(v)).collect();
        let distinct_seen = seen.into_iter().map(|(_, v)| v).collect();
        self.fired = Some(Fired {
            start,
            end: start.saturating_add(c.window.ms),
            first: start,
            last: a.time,
            count: self.steps.iter().map(|x| x.count).sum(),
            events: self.steps.iter().map(|x| x.events).sum(),
            distinct,
            distinct_seen,
            more,
            sample: std::mem::take(&mut self.sample),
            last_event: a.evidence.clone(),
            closed_early: false,
        });
        self.steps.clear();
    }

    fn chain(&mut self, c: &Correlation, a: &Arrival) -> Outcome {
        let last = c.after.len();
        let within = |ch: &Chain| a.time >= ch.last && a.time - ch.start <= c.window.ms;
        if a.step == last {
            let Some(Some(ch)) = self.chains.last().cloned().map(|ch| ch.filter(within)) else {
                return Outcome::Applied;
            };
            let mut sample = ch.events.clone();
            sample.push(a.evidence.clone());
            self.fired = Some(Fired {
                start: ch.start,
                end: ch.start.saturating_add(c.window.ms),
                first: ch.start,
                last: a.time,
                count: a.weight,
                events: 1,
                distinct: Vec::new(),
                distinct_seen: HashSet::new(),
                more: false,
                sample,
                last_event: a.evidence.clone(),
                closed_early: false,
            });
            // The chains are spent: the next finding needs its own first step.
            for ch in &mut self.chains {
                *ch = None;
            }
            return Outcome::Applied;
        }
        let candidate = if a.step == 0 {
            Some(Chain {
                start: a.time,
                last: a.time,
                events: vec![a.evidence.clone()],
            })
        } else {
            self.chains
                .get(a.step - 1)
                .cloned()
                .flatten()
                .filter(within)
                .map(|mut ch| {
                    ch.last = a.time;
                    ch.events.push(a.evidence.clone());
                    ch
                })
        };
        if let (Some(new), Some(slot)) = (candidate, self.chains.get_mut(a.step)) {
            // The chain that started last has the most time left to complete.
            if slot.as_ref().is_none_or(|old| new.start >= old.start) {
                *slot = Some(new);
            }
        }
        Outcome::Applied
    }

    /// Drops what the window has left behind at `now`: counted steps, distinct values and
    /// chains too old to count.
    pub fn age(&mut self, c: &Correlation, now: i64) {
        let step = step_ms(c.window.ms);
        let oldest = now.div_euclid(step) - (STEPS - 1);
        while self.steps.front().is_some_and(|f| f.index < oldest) {
            self.steps.pop_front();
        }
        self.sample
            .retain(|e| e.time >= oldest.saturating_mul(step));
        self.seen.retain(|_, (last, _)| *last >= oldest);
        for ch in &mut self.chains {
            if ch
                .as_ref()
                .is_some_and(|x| x.start.saturating_add(c.window.ms) < now)
            {
                *ch = None;
            }
        }
    }
}

/// How many distinct values a finding keeps.
fn distinct_cap(c: &Correlation) -> usize {
    (c.threshold as usize).max(DISTINCT_SHOWN)
}

impl Fired {
    /// A later match of the window.
    fn absorb(&mut self, c: &Correlation, a: &Arrival) {
        self.count = self.count.saturating_add(a.weight);
        self.events += 1;
        if a.time >= self.last {
            self.last = a.time;
            self.last_event = a.evidence.clone();
        }
        if self.sample.len() < SAMPLE {
            let at = self.sample.partition_point(|e| e.time <= a.time);
            self.sample.insert(at, a.evidence.clone());
        }
        let cap = distinct_cap(c);
        for v in a.distinct {
            if self.distinct_seen.contains(v) {
                continue;
            }
            if self.distinct.len() >= cap {
                self.more = true;
                continue;
            }
            self.distinct_seen.insert(v.clone());
            self.distinct.push(KeyValue::of(v));
        }
    }
}
