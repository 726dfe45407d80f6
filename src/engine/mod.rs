//! The engine: an event in, a decision with its reasons out.
//!
//! A pack is loaded and validated ([`pack`]), analysed for what each policy reads
//! ([`analysis`]) and indexed by action, principal type and outcome ([`index`]). Then one event's way,
//! top to bottom ([`Evaluator::evaluate`]):
//!
//! 1. its principal, modelled once per distinct identity (`evaluate.rs`);
//! 2. its candidates: the index's set, narrowed by the principal guards that are false for the
//!    principal (`candidates.rs`); with none, it is decided without Cedar;
//! 3. what the candidates read of its resources, named without modelling them where it can;
//! 4. the memoized decision of requests alike, else the request built for what the candidates
//!    read (`request.rs`) and Cedar's decision on each of them (`decide.rs`);
//! 5. for a finding, its explanation (`explain.rs`).
//!
//! What repeats from event to event is kept in bounded caches (`caches.rs`).

pub mod analysis;
mod caches;
mod candidates;
pub mod correlation;
mod decide;
pub mod diagnostic;
mod evaluate;
mod explain;
pub mod index;
pub mod lint;
pub mod nesting;
pub mod pack;
pub mod prefilter;
mod request;

use crate::inventory::Inventory;
use crate::model::aws_ranges::AwsRanges;
use crate::model::context;
use crate::model::element::{self, Each};
use crate::model::facts::FactCache;
use crate::model::resource::resources_of;
use crate::model::{EventView, PrincipalModel, ResourceModel, action_uid, types, uid};
use analysis::Needs;
use caches::{Caches, KEPT};
use cedar_policy::{
    Authorizer, Entities, EvalResult, Policy, PolicyId, PolicySet, Request, Response,
    eval_expression,
};
use index::{CandidateSet, Index};
use pack::{Mode, Pack};
use request::{build_entities, event_entities};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use correlation::MatchKey;
pub use pack::{Detection, Severity};

pub use evaluate::Evaluator;
pub use explain::{Deciding, Explanation, MatchValue, Shown, Trace};

/// A pack ready to evaluate events. Cloning it is cheap next to loading (the policies are
/// shared), and gives an engine that can take another inventory.
#[derive(Clone)]
pub struct Engine {
    pub pack: Pack,
    ranges: AwsRanges,
    /// Facts joined into the entities; empty unless [`Engine::with_inventory`].
    inventory: Arc<Inventory>,
    /// Tells engines apart in the caches a thread keeps between inputs ([`Engine::evaluator`]).
    id: u64,
    index: Index,
    authorizer: Authorizer,
    /// The whole pack as Cedar sees it, with the baseline permit in detection mode, but for the
    /// policies with `@each`.
    policy_set: PolicySet,
    /// The policies with `@each`, by their lists, each set with the baseline permit.
    each_sets: Vec<(Arc<Each>, PolicySet)>,
    /// Detections with a principal guard.
    guarded: Vec<usize>,
    /// The detections' prefilters, each distinct test once.
    prefilters: prefilter::Prefilters,
}

/// The id of the baseline permit trailcedar adds in detection mode.
pub const BASELINE: &str = "trailcedar-baseline-permit";

/// A detection that fired on an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the detection in the pack.
    pub detection: usize,
    /// Index of the resource it fired on, in [`Verdict::resources`].
    pub resource: Option<usize>,
    /// For a detection whose matches feed correlations: what each of them groups, counts and
    /// orders it by ([`correlation::MatchKey`]).
    pub keys: Option<Arc<[MatchKey]>>,
}

/// A policy that failed to evaluate on an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub detection: Option<usize>,
    pub policy_id: String,
    pub message: String,
}

/// The decision on one event.
pub struct Verdict {
    /// The principal as modelled; `None` when no candidate survived the prefilter, so the event
    /// was decided on its plain fields and its principal never modelled ([`Verdict::principal`]).
    pub principal: Option<Rc<PrincipalModel>>,
    /// Detections that forbid the event, once each.
    pub hits: Vec<Hit>,
    /// Allow-list mode: no permit covers the event.
    pub not_allowed: bool,
    pub candidates: Arc<CandidateSet>,
    pub errors: Vec<RuleError>,
    /// The resources, when the candidates read them.
    pub resources: Option<Vec<ResourceModel>>,
    /// The hits a suppression silenced: (detection, suppression), by index in the pack.
    pub suppressed: Vec<(usize, usize)>,
}

impl Verdict {
    pub(super) fn error(&mut self, detection: usize, d: &Detection, message: String) {
        if !self.errors.iter().any(|x| x.detection == Some(detection)) {
            self.errors.push(RuleError {
                detection: Some(detection),
                policy_id: d.id.clone(),
                message: format!("error while evaluating policy `{}`: {message}", d.id),
            });
        }
    }

    /// The principal as modelled, modelling it now when the engine did not need to.
    pub fn principal(
        &self,
        engine: &Engine,
        view: &EventView,
    ) -> Result<Rc<PrincipalModel>, String> {
        match &self.principal {
            Some(p) => Ok(p.clone()),
            None => engine.principal(view).map(Rc::new),
        }
    }

    /// Whether a detection's hit on the event is silenced by a suppression.
    pub fn is_suppressed(&self, detection: usize) -> bool {
        self.suppressed.iter().any(|(d, _)| *d == detection)
    }

    /// The hits reported: those no suppression silenced.
    pub fn reported(&self) -> impl Iterator<Item = &Hit> {
        self.hits
            .iter()
            .filter(|h| !self.is_suppressed(h.detection))
    }

    /// Whether the event is flagged (by a hit no suppression silenced, or as not allowed).
    pub fn flagged(&self) -> bool {
        self.reported().next().is_some() || self.not_allowed
    }
}

/// The next [`Engine::id`].
static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(0);

fn next_engine_id() -> u64 {
    NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed)
}

impl Engine {
    /// Indexes a pack.
    pub fn new(pack: Pack, ranges: AwsRanges) -> Result<Engine, String> {
        let index = Index::build(&pack)?;
        let baseline = Policy::parse(
            Some(PolicyId::new(BASELINE)),
            "permit (principal, action, resource);",
        )
        .map_err(|e| e.to_string())?;
        // The policies with `@each` are decided on each element, in sets of their own (with the
        // baseline, so that an element no forbid holds for is allowed).
        let mut policies: Vec<Policy> = Vec::new();
        let mut each_sets: Vec<(Arc<Each>, Vec<Policy>)> = Vec::new();
        for d in &pack.detections {
            match &d.each {
                None => policies.push(d.policy.clone()),
                Some(each) => match each_sets.iter_mut().find(|(e, _)| e.text == each.text) {
                    Some((_, set)) => set.push(d.policy.clone()),
                    None => {
                        each_sets.push((each.clone(), vec![d.policy.clone(), baseline.clone()]))
                    }
                },
            }
        }
        if pack.mode == Mode::Detection {
            policies.push(baseline);
        }
        let policy_set = PolicySet::from_policies(policies).map_err(|e| e.to_string())?;
        let each_sets = each_sets
            .into_iter()
            .map(|(each, set)| {
                Ok((
                    each,
                    PolicySet::from_policies(set).map_err(|e| e.to_string())?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let guarded = (0..pack.detections.len())
            .filter(|&i| pack.detections.get(i).is_some_and(|d| d.guard.is_some()))
            .collect();
        let prefilters =
            prefilter::Prefilters::of(pack.detections.iter().map(|d| &d.analysis.prefilter));
        Ok(Engine {
            id: next_engine_id(),
            prefilters,
            guarded,
            pack,
            ranges,
            inventory: Arc::new(Inventory::default()),
            index,
            authorizer: Authorizer::new(),
            policy_set,
            each_sets,
        })
    }

    /// Joins inventory facts into every request.
    pub fn with_inventory(mut self, inventory: Arc<Inventory>) -> Engine {
        self.inventory = inventory;
        // What the caches hold was built with the other inventory.
        self.id = next_engine_id();
        self
    }

    /// The facts joined into the entities.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The principal of an event, with the inventory's facts.
    pub fn principal(&self, view: &EventView) -> Result<PrincipalModel, String> {
        PrincipalModel::from_identity(view.event.user_identity, &self.inventory)
    }

    /// The policies that can apply to an event, by its action and principal type.
    pub fn candidates(&self, view: &EventView, principal: &PrincipalModel) -> &Arc<CandidateSet> {
        self.index.candidates(
            view.event.service(),
            &view.event.event_name,
            principal.kind,
            view.event.error_code.is_some(),
        )
    }

    /// Whether a detection's condition holds for a request: Cedar's meaning of "satisfied". A
    /// policy with `@each` is satisfied when it holds for one of the event's elements.
    pub fn satisfied(
        &self,
        detection: usize,
        view: &EventView,
        request: &Request,
        entities: &Entities,
    ) -> Result<bool, String> {
        let d = self
            .pack
            .detections
            .get(detection)
            .ok_or_else(|| format!("no detection {detection}"))?;
        if let Some(each) = &d.each {
            let bound = element::bind(each, view)?;
            let store = entities
                .clone()
                .add_entities(bound.entities, None)
                .map_err(|e| e.to_string())?;
            for leaf in &bound.leaves {
                let request = decide::with_element(request, &leaf.uid)?;
                match eval_expression(&request, &store, &d.condition) {
                    Ok(EvalResult::Bool(false)) => {}
                    Ok(EvalResult::Bool(true)) => return Ok(true),
                    Ok(other) => return Err(format!("the condition is {other}, not a boolean")),
                    Err(e) => return Err(format!("on {}: {e}", leaf.path)),
                }
            }
            return Ok(false);
        }
        match eval_expression(request, entities, &d.condition) {
            Ok(EvalResult::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("the condition is {other}, not a boolean")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// How many distinct candidate sets the index holds.
    pub fn candidate_sets(&self) -> usize {
        self.index.set_count()
    }

    /// An evaluator for the events of one input, with caches for what repeats in it. The
    /// caches outlive it: the next evaluator of this engine on the same thread starts with
    /// them, since the principals, entities and decisions of an archive's files repeat from
    /// one file to the next. They stay bounded (`caches::CACHE_LIMIT` entries each, per thread).
    pub fn evaluator(&self) -> Evaluator<'_> {
        let kept = KEPT
            .try_with(|k| {
                let mut k = k.try_borrow_mut().ok()?;
                let at = k.iter().position(|(id, _)| *id == self.id)?;
                Some(k.remove(at).1)
            })
            .ok()
            .flatten();
        let caches = kept.unwrap_or_else(|| Caches::new(self.index.set_count()));
        Evaluator {
            engine: self,
            caches,
            key: String::new(),
            memo_key: String::new(),
            stand_in_values: String::new(),
            stand_in_ends: Vec::new(),
            keys: Vec::new(),
            no_resource: uid(&types().resource, ""),
            tested: Vec::new(),
            tested_now: false,
        }
    }

    /// The request and entities of an event with everything built, as `explain` shows them.
    pub fn full_request(
        &self,
        view: &EventView,
        principal: &PrincipalModel,
        resource: &ResourceModel,
    ) -> Result<(Request, Entities), String> {
        self.request_for(view, principal, resource, &Needs::everything())
    }

    /// The request and entities of an event with what `needs` says is read.
    pub(super) fn request_for(
        &self,
        view: &EventView,
        principal: &PrincipalModel,
        resource: &ResourceModel,
        needs: &Needs,
    ) -> Result<(Request, Entities), String> {
        let resources = std::slice::from_ref(resource);
        let mut facts = FactCache::default();
        let entities = build_entities(
            view,
            principal,
            needs,
            resources,
            [],
            &self.inventory,
            &mut facts,
        )?
        .add_entities(event_entities(view, needs, &self.inventory)?, None)
        .map_err(|e| e.to_string())?;
        let ctx = context::build(view, needs.context, &self.ranges, &self.inventory)?;
        let request = Request::new(
            principal.uid.clone(),
            action_uid(&view.event.action_id()),
            resource.uid.clone(),
            ctx,
            None,
        )
        .map_err(|e| e.to_string())?;
        Ok((request, entities))
    }

    /// Records which of a verdict's hits the pack's suppressions silence: a suppression naming
    /// the hit's detection whose condition holds on the full request of the hit's resource (of
    /// any resource, for a detection that does not read it). Only flagged events pay for it. A
    /// suppression that fails on the event silences nothing, and its error is reported.
    pub fn suppress(&self, view: &EventView, verdict: &mut Verdict) {
        if self.pack.suppressions.is_empty() || verdict.hits.is_empty() {
            return;
        }
        let Some(principal) = verdict.principal.clone() else {
            return;
        };
        let resources = match &verdict.resources {
            Some(r) => r.clone(),
            None => resources_of(view, &principal).unwrap_or_default(),
        };
        let mut requests: Vec<Option<(Request, Entities)>> = vec![None; resources.len()];
        for hit in verdict.hits.clone() {
            for (si, s) in self.pack.suppressions.iter().enumerate() {
                if !s.targets.contains(&hit.detection) {
                    continue;
                }
                let indices: Vec<usize> = match hit.resource {
                    Some(i) => vec![i],
                    None => (0..resources.len()).collect(),
                };
                for ri in indices {
                    let (Some(resource), Some(slot)) = (resources.get(ri), requests.get_mut(ri))
                    else {
                        continue;
                    };
                    if slot.is_none() {
                        *slot = self.full_request(view, &principal, resource).ok();
                    }
                    let Some((request, entities)) = slot.as_ref() else {
                        continue;
                    };
                    match eval_expression(request, entities, &s.detection.condition) {
                        Ok(EvalResult::Bool(true)) => {
                            if !verdict.is_suppressed(hit.detection) {
                                verdict.suppressed.push((hit.detection, si));
                            }
                        }
                        Ok(_) => {}
                        Err(_) if verdict.errors.iter().any(|x| x.policy_id == s.detection.id) => {}
                        Err(e) => verdict.errors.push(RuleError {
                            detection: None,
                            policy_id: s.detection.id.clone(),
                            message: format!(
                                "error while evaluating suppression `{}`: {e}",
                                s.detection.id
                            ),
                        }),
                    }
                }
            }
        }
    }

    /// Cedar's own authorizer, on the full request for each resource of the event, with the
    /// whole pack: the reference the engine's decisions are held to, and what `explain` shows.
    /// Per resource, the response of the pack but its `@each` policies, then those of the
    /// `@each` policies on each of their elements, in order.
    pub fn cedar_responses(
        &self,
        view: &EventView,
        principal: &PrincipalModel,
    ) -> Result<Vec<(ResourceModel, Vec<Response>)>, String> {
        let mut out = Vec::new();
        for resource in resources_of(view, principal)? {
            let (request, entities) = self.full_request(view, principal, &resource)?;
            let mut responses =
                vec![
                    self.authorizer
                        .is_authorized(&request, &self.policy_set, &entities),
                ];
            for (each, set) in &self.each_sets {
                let bound = element::bind(each, view)?;
                let store = entities
                    .clone()
                    .add_entities(bound.entities, None)
                    .map_err(|e| e.to_string())?;
                for leaf in &bound.leaves {
                    let request = decide::with_element(&request, &leaf.uid)?;
                    responses.push(self.authorizer.is_authorized(&request, set, &store));
                }
            }
            out.push((resource, responses));
        }
        Ok(out)
    }
}

/// What the engine's tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn embedded_engine() -> Engine {
        let pack = pack::load(pack::embedded_sources(), "embedded").expect("pack");
        Engine::new(pack, AwsRanges::embedded()).expect("engine")
    }

    /// The ids of the detections a verdict flags.
    pub fn hit_ids<'e>(engine: &'e Engine, verdict: &Verdict) -> Vec<&'e str> {
        verdict
            .hits
            .iter()
            .map(|h| engine.pack.detections[h.detection].id.as_str())
            .collect()
    }
}
