//! The candidates of an event: the index's set for its action and principal type, narrowed by
//! the principal guards that are false for its principal.

use super::caches::CACHE_LIMIT;
use super::index::CandidateSet;
use super::{Engine, Evaluator};
use crate::model::{PrincipalModel, action_uid};
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
        if !set.members.iter().any(|m| engine.guarded.contains(m)) {
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
}
