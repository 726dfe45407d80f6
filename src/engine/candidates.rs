//! The candidates of an event: the index's set for its action and principal type, without the
//! members whose prefilter is false on the event's plain fields, and without those whose
//! principal guard is false for its principal.

use super::caches::CACHE_LIMIT;
use super::index::CandidateSet;
use super::prefilter::On;
use super::{Engine, Evaluator};
use crate::model::principal::Facts;
use crate::model::{EventView, PrincipalModel, action_uid};
use cedar_policy::{Context, Entities, EntityUid, EvalResult, Request, eval_expression};
use std::rc::Rc;
use std::sync::Arc;

impl Engine {
    /// The guarded detections whose principal guard is false for `principal`. A guard that
    /// errors, or entities that do not build, drop nothing: the full evaluation reports it.
    pub(super) fn failed_guards(
        &self,
        principal: &PrincipalModel,
        resource: &EntityUid,
    ) -> Vec<usize> {
        let Ok(entities) = Entities::from_entities(principal.entities.iter().cloned(), None) else {
            return Vec::new();
        };
        let Ok(request) = Request::new(
            principal.uid.clone(),
            action_uid("trailcedar:guard"),
            resource.clone(),
            Context::empty(),
            None,
        ) else {
            return Vec::new();
        };
        self.guarded
            .iter()
            .copied()
            .filter(|&i| {
                self.pack
                    .detections
                    .get(i)
                    .and_then(|d| d.guard.as_ref())
                    .is_some_and(|g| {
                        matches!(
                            eval_expression(&request, &entities, g),
                            Ok(EvalResult::Bool(false))
                        )
                    })
            })
            .collect()
    }
}

impl Evaluator<'_> {
    /// The candidates without the detections whose principal guard is false for this principal
    /// ([`analysis::Analysis::principal_guard`]): they cannot be satisfied, nor fail, on any of
    /// its events.
    pub(super) fn narrow(
        &mut self,
        set: Arc<CandidateSet>,
        (principal, serial): (&PrincipalModel, usize),
    ) -> Arc<CandidateSet> {
        let engine = self.engine;
        if !set.guarded {
            return set;
        }
        let dropped = match self.caches.guards.get(&serial) {
            Some(d) => d.clone(),
            None => {
                let d = Rc::new(engine.failed_guards(principal, &self.no_resource));
                self.caches.guards.insert(serial, d.clone());
                d
            }
        };
        if !set.members.iter().any(|m| dropped.contains(m)) {
            return set;
        }
        if let Some(n) = self.caches.narrowed.get(&(set.id, serial)) {
            return n.clone();
        }
        let members: Vec<usize> = set
            .members
            .iter()
            .copied()
            .filter(|m| !dropped.contains(m))
            .collect();
        let n = Arc::new(CandidateSet::new(
            self.caches.next_set,
            members,
            &engine.pack,
        ));
        self.caches.next_set += 1;
        if self.caches.narrowed.len() >= CACHE_LIMIT {
            self.caches.narrowed.clear();
        }
        self.caches.narrowed.insert((set.id, serial), n.clone());
        n
    }

    /// The candidates without the members whose prefilter ([`super::prefilter`]) is false on
    /// the event: they can be neither satisfied nor fail on it. The sets without some members
    /// are kept by (set, dropped members), among the first 128 members (any past those stay).
    pub(super) fn prefiltered(
        &mut self,
        set: Arc<CandidateSet>,
        view: &EventView,
        facts: &Facts,
    ) -> Arc<CandidateSet> {
        if set.prefiltered.is_empty() {
            self.tested_now = false;
            return set;
        }
        let engine = self.engine;
        let mut dropped = 0u128;
        self.with_tests(view, facts, false, |on, tested| {
            for &pos in &set.prefiltered {
                let Some(&member) = set.members.get(pos) else {
                    continue;
                };
                if engine.prefilters.eval(member, on, tested) == Some(false) {
                    dropped |= 1u128.checked_shl(pos as u32).unwrap_or(0);
                }
            }
        });
        if dropped == 0 {
            return set;
        }
        if let Some(found) = self.caches.prefiltered.get(&(set.id, dropped)) {
            return found.clone();
        }
        let members: Vec<usize> = set
            .members
            .iter()
            .enumerate()
            .filter(|(pos, _)| dropped & 1u128.checked_shl(*pos as u32).unwrap_or(0) == 0)
            .map(|(_, m)| *m)
            .collect();
        let kept = Arc::new(CandidateSet::new(
            self.caches.next_set,
            members,
            &engine.pack,
        ));
        self.caches.next_set += 1;
        if self.caches.prefiltered.len() >= CACHE_LIMIT {
            self.caches.prefiltered.clear();
        }
        self.caches
            .prefiltered
            .insert((set.id, dropped), kept.clone());
        kept
    }

    /// Whether every member of `set` (one [`CandidateSet::decided_by_tests`]) is satisfied on
    /// the event by its prefilter's tests: `false` where a test cannot tell (the inventory's
    /// facts) or a formula is false, and Cedar decides as usual.
    pub(super) fn all_hold(&mut self, set: &CandidateSet, view: &EventView, facts: &Facts) -> bool {
        let engine = self.engine;
        // The tests `prefiltered` computed on this event are kept; none if it had none to do.
        let kept = self.tested_now;
        self.with_tests(view, facts, kept, |on, tested| {
            set.members
                .iter()
                .all(|&m| engine.prefilters.eval(m, on, tested) == Some(true))
        })
    }

    /// Runs `f` with the prefilter's view of the event and the memo of its tests (one byte per
    /// test), cleared first unless `keep` (the memo already holds this event's tests).
    fn with_tests<R>(
        &mut self,
        view: &EventView,
        facts: &Facts,
        keep: bool,
        f: impl FnOnce(&On, &mut [u8]) -> R,
    ) -> R {
        let engine = self.engine;
        let in_aws = std::cell::OnceCell::new();
        let source_in_aws = || {
            *in_aws.get_or_init(|| {
                view.source_ip()
                    .is_some_and(|ip| engine.ranges.contains(ip))
            })
        };
        let on = On {
            view,
            principal: facts,
            inventory: !engine.inventory.is_empty(),
            addresses: engine.inventory.knows_addresses(),
            source_in_aws: &source_in_aws,
        };
        if !keep {
            // Each test once per event, whichever members share it.
            self.tested.clear();
            self.tested.resize(engine.prefilters.tests(), 0);
        }
        self.tested_now = true;
        f(&on, &mut self.tested)
    }
}
