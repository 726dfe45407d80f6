//! The engine: an event in, a decision with its reasons out.
//!
//! Per event: look up the candidate policies by action and principal type; if there are none,
//! decide without Cedar. Otherwise build only what the candidates read (caching the principal's
//! entities and, where it is the same for many events, the context), and ask Cedar once per
//! resource of the event.

pub mod analysis;
pub mod diagnostic;
pub mod index;
pub mod pack;

use crate::inventory::Inventory;
use crate::model::aws_ranges::AwsRanges;
use crate::model::context::{self, Attr, AttrSet};
use crate::model::facts;
use crate::model::facts::FactCache;
use crate::model::fields::{self, FieldNeed};
use crate::model::resource::{
    AttrValue, ResourceAttrs, ResourceKey, resource_attrs, resource_keys, resources_of,
};
use crate::model::{EventView, Field, PrincipalModel, ResourceModel, action_uid, types, uid};
use crate::text::{concat, push_number, push_value};
use analysis::Needs;
use cedar_policy::{
    Authorizer, Context, Effect, Entities, Entity, EntityUid, EvalResult, Expression, Policy,
    PolicyId, PolicySet, Request, Response, RestrictedExpression, eval_expression,
};
use index::{CandidateSet, Index};
use pack::{Mode, Pack};
use rustc_hash::{FxHashMap, FxHashSet};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Write;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use pack::{Detection, Severity};

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
    /// The whole pack as Cedar sees it, with the baseline permit in detection mode.
    policy_set: PolicySet,
    /// Detections with a principal guard.
    guarded: Vec<usize>,
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
    pub principal: Rc<PrincipalModel>,
    /// Detections that forbid the event, once each.
    pub hits: Vec<Hit>,
    /// Allow-list mode: no permit covers the event.
    pub not_allowed: bool,
    pub candidates: Arc<CandidateSet>,
    pub errors: Vec<RuleError>,
    /// The resources, when the candidates read them.
    pub resources: Option<Vec<ResourceModel>>,
}

impl Verdict {
    fn error(&mut self, detection: usize, d: &Detection, message: String) {
        if !self.errors.iter().any(|x| x.detection == Some(detection)) {
            self.errors.push(RuleError {
                detection: Some(detection),
                policy_id: d.id.clone(),
                message: format!("error while evaluating policy `{}`: {message}", d.id),
            });
        }
    }

    /// Whether the event is flagged.
    pub fn flagged(&self) -> bool {
        !self.hits.is_empty() || self.not_allowed
    }
}

/// The decision of a candidate set's memoized members, remembered for requests equal to the
/// ones it was made for.
#[derive(Clone)]
struct Decided {
    hits: Vec<Hit>,
    /// Per request: whether one of them is a satisfied forbid, a satisfied permit.
    flags: Vec<(bool, bool)>,
    errors: Vec<RuleError>,
}

/// Cache sizes past which an evaluator's caches start over: bounded memory on hostile input.
const CACHE_LIMIT: usize = 4096;

/// Longest key a principal, action, context, entity store or decision is cached under: a key
/// holds values of the event (an identity, a request parameter, a tag), which an attacker can
/// make as long as a record, and the caches outlive the file. An event with a longer key is
/// decided without the caches.
const MAX_KEY_BYTES: usize = 4096;

/// The next [`Engine::id`].
static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(0);

fn next_engine_id() -> u64 {
    NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed)
}

/// Engines whose caches a thread keeps (the most recently used): a program that alternates
/// between two engines (a scan with and without an inventory, side by side) keeps both warm.
const KEPT_ENGINES: usize = 2;

thread_local! {
    /// The caches of the last evaluators this thread dropped, with their engine's id, oldest
    /// first: the next evaluator of the same engine on this thread starts with them.
    static KEPT: RefCell<Vec<(u64, Caches)>> = const { RefCell::new(Vec::new()) };
}

impl Engine {
    /// Indexes a pack.
    pub fn new(pack: Pack, ranges: AwsRanges) -> Result<Engine, String> {
        let index = Index::build(&pack)?;
        let mut policies: Vec<Policy> = pack.detections.iter().map(|d| d.policy.clone()).collect();
        if pack.mode == Mode::Detection {
            let baseline = Policy::parse(
                Some(PolicyId::new(BASELINE)),
                "permit (principal, action, resource);",
            )
            .map_err(|e| e.to_string())?;
            policies.push(baseline);
        }
        let policy_set = PolicySet::from_policies(policies).map_err(|e| e.to_string())?;
        let guarded = (0..pack.detections.len())
            .filter(|&i| pack.detections.get(i).is_some_and(|d| d.guard.is_some()))
            .collect();
        Ok(Engine {
            id: next_engine_id(),
            guarded,
            pack,
            ranges,
            inventory: Arc::new(Inventory::default()),
            index,
            authorizer: Authorizer::new(),
            policy_set,
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
        self.index
            .candidates(view.event.service(), &view.event.event_name, principal.kind)
    }

    /// Whether a detection's condition holds for a request: Cedar's meaning of "satisfied".
    pub fn satisfied(
        &self,
        detection: usize,
        request: &Request,
        entities: &Entities,
    ) -> Result<bool, String> {
        let d = self
            .pack
            .detections
            .get(detection)
            .ok_or_else(|| format!("no detection {detection}"))?;
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
    /// one file to the next. They stay bounded ([`CACHE_LIMIT`] entries each, per thread).
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
        }
    }

    /// The guarded detections whose principal guard is false for `principal`. A guard that
    /// errors, or entities that do not build, drop nothing: the full evaluation reports it.
    fn failed_guards(&self, principal: &PrincipalModel, resource: &EntityUid) -> Vec<usize> {
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
    fn request_for(
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
        .add_entities(field_entities(view, needs)?, None)
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

    /// Cedar's own authorizer, on the full request for each resource of the event, with the
    /// whole pack: the reference the engine's decisions are held to, and what `explain` shows.
    pub fn cedar_responses(
        &self,
        view: &EventView,
        principal: &PrincipalModel,
    ) -> Result<Vec<(ResourceModel, Response)>, String> {
        let mut out = Vec::new();
        for resource in resources_of(view, principal)? {
            let (request, entities) = self.full_request(view, principal, &resource)?;
            let response = self
                .authorizer
                .is_authorized(&request, &self.policy_set, &entities);
            out.push((resource, response));
        }
        Ok(out)
    }

    /// The values a detection reads, evaluated on the event, and notes on the inventory facts
    /// among them: its explanation.
    pub fn explain_values(
        &self,
        detections: &[usize],
        view: &EventView,
        principal: &PrincipalModel,
        resource: &ResourceModel,
    ) -> Explanation {
        // Only what these detections read: an explanation costs no more than the decision did.
        let mut needs = Needs {
            resource: true,
            action_entity: true,
            ..Needs::default()
        };
        for d in detections
            .iter()
            .filter_map(|i| self.pack.detections.get(*i))
        {
            needs.merge(&d.analysis.needs);
        }
        needs.context.insert(Attr::EventTime);
        let mut out = Explanation::default();
        let Ok((request, entities)) = self.request_for(view, principal, resource, &needs) else {
            return out;
        };
        let eval = |expr: &str| {
            Expression::from_str(expr)
                .ok()
                .and_then(|e| eval_expression(&request, &entities, &e).ok())
        };
        let mut seen = FxHashSet::default();
        let mut roots: Vec<&'static str> = Vec::new();
        for d in detections
            .iter()
            .filter_map(|i| self.pack.detections.get(*i))
        {
            for read in &d.analysis.reads {
                if !seen.insert(read.label.clone()) {
                    continue;
                }
                let value = eval(&read.expr).map(|v| v.to_string());
                if let Some(root) = read.inventory
                    && value.is_some()
                    && !roots.contains(&root)
                {
                    roots.push(root);
                }
                out.values.push((read.label.clone(), value));
            }
        }
        // A fact taken after the event may not have held when it happened.
        for root in roots {
            let expr = format!(
                "{root}.inventoryTakenAt.durationSince(context.eventTime).toMilliseconds()"
            );
            if let Some(EvalResult::Long(ms)) = eval(&expr)
                && ms > 0
            {
                let taken = crate::time::Timestamp(view.time.0.saturating_add(ms));
                let name = root.strip_prefix("context.").unwrap_or(root);
                out.notes.push(format!(
                    "{name}: inventory taken {taken}, {} after the event",
                    crate::time::human_duration(ms)
                ));
            }
        }
        out
    }
}

/// Why a detection fired: the values it read, and notes about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// `(label, value)`; `None` when the event has no such value.
    pub values: Vec<(String, Option<String>)>,
    /// For example: an inventory fact that was taken after the event.
    pub notes: Vec<String>,
}

/// What an evaluator builds once and reuses for the events that repeat it.
struct Caches {
    /// Keyed by the raw `userIdentity` JSON (up to [`MAX_KEY_BYTES`]): each with its serial.
    principals: FxHashMap<Box<str>, (Rc<PrincipalModel>, usize)>,
    /// The serial of the next principal modelled. The other caches key a principal by its
    /// serial, never reused (not even past a clear), so that a principal too long to cache
    /// cannot share their entries with another.
    next_principal: usize,
    contexts: FxHashMap<String, Context>,
    entities: FxHashMap<String, Arc<Entities>>,
    actions: FxHashMap<String, EntityUid>,
    /// Decisions of requests that are equal by construction (same principal, context, action).
    decisions: FxHashMap<String, Decided>,
    /// Per principal (by serial): the detections whose principal guard is false for it.
    guards: FxHashMap<usize, Rc<Vec<usize>>>,
    facts: FactCache,
    /// Candidate sets without those detections, per (set, principal).
    narrowed: FxHashMap<(usize, usize), Arc<CandidateSet>>,
    /// The id of the next narrowed set (ids above the index's own).
    next_set: usize,
}

impl Caches {
    fn new(next_set: usize) -> Caches {
        Caches {
            principals: FxHashMap::default(),
            next_principal: 0,
            contexts: FxHashMap::default(),
            entities: FxHashMap::default(),
            actions: FxHashMap::default(),
            decisions: FxHashMap::default(),
            guards: FxHashMap::default(),
            facts: FactCache::default(),
            narrowed: FxHashMap::default(),
            next_set,
        }
    }
}

/// Evaluates the events of one input, with caches for what repeats in it.
pub struct Evaluator<'e> {
    engine: &'e Engine,
    caches: Caches,
    key: String,
    memo_key: String,
    /// For policies that read the resources only through attributes and tags with literal
    /// names: the values read, resource after resource (ending at `stand_in_ends`).
    stand_in_values: String,
    stand_in_ends: Vec<usize>,
    /// The keys of an event's resources, empty between events: its allocation is reused.
    keys: Vec<ResourceKey<'static>>,
    /// The resource of a request whose policies do not read the resource.
    no_resource: EntityUid,
}

impl Drop for Evaluator<'_> {
    fn drop(&mut self) {
        let caches = std::mem::replace(&mut self.caches, Caches::new(0));
        let id = self.engine.id;
        // At a thread's exit the slot may be gone: the caches are then dropped with it.
        let _ = KEPT.try_with(|k| {
            if let Ok(mut k) = k.try_borrow_mut() {
                k.retain(|(kept, _)| *kept != id);
                if k.len() >= KEPT_ENGINES {
                    k.remove(0);
                }
                k.push((id, caches));
            }
        });
    }
}

impl Evaluator<'_> {
    /// The candidates without the detections whose principal guard is false for this principal
    /// ([`analysis::Analysis::principal_guard`]): they cannot be satisfied, nor fail, on any of
    /// its events.
    fn narrow(
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

    /// The principal of an event and its serial, built once per distinct `userIdentity`
    /// (while cached).
    fn principal(&mut self, view: &EventView) -> Result<(Rc<PrincipalModel>, usize), String> {
        let raw = view.event.user_identity;
        let key = raw.map(|r| r.get()).unwrap_or("");
        if let Some((p, serial)) = self.caches.principals.get(key) {
            return Ok((p.clone(), *serial));
        }
        self.new_principal(raw, key)
    }

    /// A principal not in the cache, modelled and cached.
    #[cold]
    #[inline(never)]
    fn new_principal(
        &mut self,
        raw: Option<&serde_json::value::RawValue>,
        key: &str,
    ) -> Result<(Rc<PrincipalModel>, usize), String> {
        let p = Rc::new(PrincipalModel::from_identity(raw, &self.engine.inventory)?);
        let serial = self.caches.next_principal;
        self.caches.next_principal += 1;
        // A hostile identity as long as a record is modelled on each of its events, not kept.
        if key.len() > MAX_KEY_BYTES {
            return Ok((p, serial));
        }
        if self.caches.principals.len() >= CACHE_LIMIT {
            // The entries keyed by these principals' serials would not be used again.
            self.caches.principals.clear();
            self.caches.entities.clear();
            self.caches.decisions.clear();
            self.caches.guards.clear();
            self.caches.narrowed.clear();
        }
        self.caches
            .principals
            .insert(key.into(), (p.clone(), serial));
        Ok((p, serial))
    }

    /// Decides one event. An error means the event cannot be modelled (it is rejected).
    pub fn evaluate(&mut self, view: &EventView) -> Result<Verdict, String> {
        let engine = self.engine;
        let (principal, serial) = self.principal(view)?;
        let candidates = engine
            .index
            .candidates(view.event.service(), &view.event.event_name, principal.kind)
            .clone();
        let candidates = self.narrow(candidates, (&principal, serial));
        let allow_list = engine.pack.mode == Mode::AllowList;
        let mut verdict = Verdict {
            principal: principal.clone(),
            hits: Vec::new(),
            not_allowed: false,
            candidates: candidates.clone(),
            errors: Vec::new(),
            resources: None,
        };
        if candidates.members.is_empty() {
            verdict.not_allowed = allow_list;
            return Ok(verdict);
        }
        let needs = &candidates.needs;
        // Policies that read the resources only through attributes and tags with literal names
        // see a resource as the values of those: requests are made of stand-ins with just
        // those values (`Resource::"stand-in<values>"`), so that resources alike share their
        // entities and decisions. When only tags are read the event's resources are not even
        // modelled, only named to look up their tags; a finding models them to show them.
        // When attributes are read too, the resources are named with what their attributes
        // are made of, still without modelling them.
        let by_stand_ins = needs.resource && !needs.resource_other;
        let resources = if needs.resource && !by_stand_ins {
            Some(resources_of(view, &principal)?)
        } else {
            None
        };
        let named = if by_stand_ins && !needs.resource_attrs.is_empty() {
            resource_attrs(view, &principal)?
        } else {
            Vec::new()
        };
        // The values read are also the resources' part of the key of memoized decisions.
        let values_read = by_stand_ins || candidates.memoized.needs.resource;
        let mut keys = recycle(std::mem::take(&mut self.keys));
        match (&resources, values_read) {
            (_, false) => {}
            (Some(rs), true) => keys.extend(rs.iter().map(ResourceModel::key)),
            (None, true) if !named.is_empty() => {
                keys.extend(named.iter().map(|n| n.key.borrowed()))
            }
            (None, true) => resource_keys(view, &principal, &mut keys)?,
        }
        let attrs: Vec<ResourceAttrs> = match &resources {
            _ if needs.resource_attrs.is_empty() => Vec::new(),
            Some(rs) => rs.iter().map(ResourceModel::attrs).collect(),
            None => named.iter().map(|n| n.attrs()).collect(),
        };
        self.stand_in_values.clear();
        self.stand_in_ends.clear();
        write_values(
            (&mut self.stand_in_values, &mut self.stand_in_ends),
            &keys,
            &attrs,
            needs,
            &engine.inventory,
        );
        let memoized = &candidates.memoized;
        let requests = resources.as_ref().map_or(keys.len().max(1), Vec::len);
        // Members whose requests are made only of the principal, a reusable context, (when one
        // reads it) the action, and resources read only through attributes and tags with
        // literal names are decided once per distinct request: Cedar's evaluation is a
        // function of the request and the entities, and what these members can read of the
        // entities is the principal's values and those of the resources' attributes and tags.
        // The others (those that read a free-form field, for one) are evaluated on every event.
        // The context is built (or found in its cache) only when the memo does not settle the
        // event: when every member is memoized, the memo's key holds every value the context is
        // made of (and a decision is kept only for a context that built).
        let mut replayed: Option<Decided> = None;
        let mut context_keyed = false;
        if !memoized.members.is_empty() {
            self.write_memo_key(view, serial, &candidates, requests)?;
            context_keyed = memoized.needs.context == candidates.needs.context;
            if let Some(d) = self.caches.decisions.get(self.memo_key.as_str()) {
                if candidates.all_memoized() {
                    verdict.hits = d.hits.clone();
                    verdict.not_allowed = allow_list && d.flags.iter().any(|&(f, p)| !f && !p);
                    verdict.errors = d.errors.clone();
                    self.keys = recycle(keys);
                    verdict.resources = resources;
                    return Ok(verdict);
                }
                replayed = Some(d.clone());
            }
        }
        let ctx = self.context(view, &candidates, context_keyed)?;
        let mut verdict = self.decide(
            view,
            (&principal, serial, &candidates, ctx),
            (resources.as_deref(), &keys, &attrs, by_stand_ins),
            replayed,
            verdict,
        )?;
        self.keys = recycle(keys);
        verdict.resources = resources;
        Ok(verdict)
    }

    /// The rest of [`Evaluator::evaluate`] when the memoized decision did not settle the event:
    /// Cedar decides the members not `replayed`, on each request. Apart, so that the path of an
    /// event the memo settles stays short (it is most events).
    #[inline(never)]
    fn decide(
        &mut self,
        view: &EventView,
        (principal, serial, candidates, ctx): (&Rc<PrincipalModel>, usize, &CandidateSet, Context),
        (resources, keys, attrs, by_stand_ins): (
            Option<&[ResourceModel]>,
            &[ResourceKey],
            &[ResourceAttrs],
            bool,
        ),
        replayed: Option<Decided>,
        mut verdict: Verdict,
    ) -> Result<Verdict, String> {
        let engine = self.engine;
        let needs = &candidates.needs;
        let memoized = &candidates.memoized;
        let allow_list = engine.pack.mode == Mode::AllowList;
        let requests = resources.map_or(keys.len().max(1), <[ResourceModel]>::len);
        let stand_ins = if by_stand_ins {
            self.stand_ins()
        } else {
            Vec::new()
        };
        let entities = self.entities(
            view,
            (principal, serial),
            needs,
            resources,
            (&stand_ins, keys, attrs),
        )?;
        let action = self.action(view);
        // The memoized members' (forbid satisfied, permit satisfied), request by request.
        let mut flags: Vec<(bool, bool)> = Vec::with_capacity(requests);
        // The members (by position, the first 64) found satisfied or not on the first request:
        // one that does not read the resource decides alike on the others.
        let (mut first_true, mut first_false) = (0u64, 0u64);
        for ri in 0..requests {
            let stand_in = stand_ins.get(ri);
            let resource = match (stand_in, resources) {
                (Some(s), _) => s,
                (None, Some(rs)) => rs.get(ri).map_or(&self.no_resource, |r| &r.uid),
                (None, None) => &self.no_resource,
            };
            let request = Request::new(
                principal.uid.clone(),
                action.clone(),
                resource.clone(),
                ctx.clone(),
                None,
            )
            .map_err(|e| e.to_string())?;
            // An error names the resource the event acted on, not its stand-in.
            let message = |m: String| match (stand_in, keys.get(ri)) {
                (Some(s), Some(k)) => m.replace(&s.to_string(), &k.uid().to_string()),
                _ => m,
            };
            let resource_index = (needs.resource).then_some(ri);
            // Cedar's authorization, policy by policy: a policy is satisfied when its condition
            // (scope and clauses) is true; an error skips it and is reported; any satisfied
            // forbid denies; otherwise a satisfied permit allows, else the default deny. The
            // baseline permit of detection mode is implied. `tests/scan/pipeline.rs` checks
            // these decisions against `Authorizer::is_authorized` on full requests.
            let (mut forbade, mut permitted) = replayed
                .as_ref()
                .and_then(|d| d.flags.get(ri).copied())
                .unwrap_or_default();
            let mut memo_flags = (false, false);
            for (pos, &member) in candidates.members.iter().enumerate() {
                let memo = memoized.members.contains(&member);
                if memo && replayed.is_some() {
                    continue;
                }
                let Some(d) = engine.pack.detections.get(member) else {
                    continue;
                };
                let bit = 1u64.checked_shl(pos as u32).unwrap_or(0);
                let satisfied = if ri > 0 && !d.analysis.needs.resource && first_true & bit != 0 {
                    true
                } else if ri > 0 && !d.analysis.needs.resource && first_false & bit != 0 {
                    false
                } else {
                    let outcome = match eval_expression(&request, &entities, &d.indexed_condition) {
                        Ok(EvalResult::Bool(b)) => Some(b),
                        Ok(other) => {
                            let m = format!("the condition is {other}, not a boolean");
                            verdict.error(member, d, message(m));
                            None
                        }
                        Err(e) => {
                            verdict.error(member, d, message(e.to_string()));
                            None
                        }
                    };
                    match (ri, outcome) {
                        (0, Some(true)) => first_true |= bit,
                        (0, Some(false)) => first_false |= bit,
                        _ => {}
                    }
                    outcome == Some(true)
                };
                if !satisfied {
                    continue;
                }
                if d.effect == Effect::Forbid {
                    forbade = true;
                    memo_flags.0 |= memo;
                    if !verdict.hits.iter().any(|h| h.detection == member) {
                        verdict.hits.push(Hit {
                            detection: member,
                            resource: resource_index,
                        });
                    }
                } else {
                    permitted = true;
                    memo_flags.1 |= memo;
                }
            }
            flags.push(memo_flags);
            if allow_list && !forbade && !permitted {
                verdict.not_allowed = true;
            }
        }
        if let Some(d) = replayed {
            verdict.hits.extend(d.hits);
            verdict.errors.extend(d.errors);
        } else if !memoized.members.is_empty() {
            let memo = |detection: &usize| memoized.members.contains(detection);
            let decided = Decided {
                hits: verdict
                    .hits
                    .iter()
                    .filter(|h| memo(&h.detection))
                    .cloned()
                    .collect(),
                flags,
                errors: verdict
                    .errors
                    .iter()
                    .filter(|e| e.detection.as_ref().is_some_and(memo))
                    .cloned()
                    .collect(),
            };
            keep(&mut self.caches.decisions, &self.memo_key, decided);
        }
        verdict.hits.sort_by_key(|h| h.detection);
        verdict.errors.sort_by_key(|e| e.detection);
        Ok(verdict)
    }

    /// The key of the memoized members' decision on this event, in `memo_key`: the principal
    /// (by serial, like the entity caches), the context they read, the action when one reads
    /// it, the number of requests, the values read of each resource and those of the free-form
    /// fields' tags they read. An error when a field they read is not valid JSON.
    fn write_memo_key(
        &mut self,
        view: &EventView,
        principal: usize,
        candidates: &CandidateSet,
        requests: usize,
    ) -> Result<(), String> {
        let group = &candidates.memoized;
        // The key of the context the group reads: `context` keeps it when it is the one the
        // candidates read.
        context_key(view, group.needs.context, candidates.id, &mut self.key);
        let out = &mut self.memo_key;
        out.clear();
        push_number(out, principal);
        out.push('|');
        out.push_str(&self.key);
        if group.reads_action {
            out.push('|');
            out.push_str(&view.event.event_source);
            out.push(':');
            out.push_str(&view.event.event_name);
        }
        out.push_str("|n");
        push_number(out, requests);
        if group.needs.resource {
            for values in each_resource(&self.stand_in_values, &self.stand_in_ends) {
                out.push_str("|r");
                out.push_str(values);
            }
        }
        for field in Field::ALL {
            let FieldNeed::Keys(keys) = group.needs.field(field) else {
                continue;
            };
            out.push_str("|f");
            for (_, value) in fields::key_values(view.field(field)?, keys) {
                match value {
                    Some(v) => push_value(out, 's', &v),
                    None => out.push_str(":-"),
                }
            }
        }
        Ok(())
    }
    /// `Action::"<service>:<eventName>"`, built once per action (while cached).
    fn action(&mut self, view: &EventView) -> EntityUid {
        self.key.clear();
        self.key.push_str(view.event.service());
        self.key.push(':');
        self.key.push_str(&view.event.event_name);
        if let Some(a) = self.caches.actions.get(self.key.as_str()) {
            return a.clone();
        }
        let a = action_uid(&self.key);
        keep(&mut self.caches.actions, &self.key, a.clone());
        a
    }

    /// The context the candidates read, from its cache when it is cacheable; `keyed` when
    /// `self.key` already holds its cache key (written by [`Evaluator::write_memo_key`]).
    fn context(
        &mut self,
        view: &EventView,
        candidates: &CandidateSet,
        keyed: bool,
    ) -> Result<Context, String> {
        let attrs: AttrSet = candidates.needs.context;
        let (ranges, inv) = (&self.engine.ranges, &self.engine.inventory);
        if !attrs.cacheable() {
            return context::build(view, attrs, ranges, inv);
        }
        if !keyed {
            context_key(view, attrs, candidates.id, &mut self.key);
        }
        if let Some(c) = self.caches.contexts.get(self.key.as_str()) {
            return Ok(c.clone());
        }
        let c = context::build(view, attrs, ranges, inv)?;
        keep(&mut self.caches.contexts, &self.key, c.clone());
        Ok(c)
    }

    /// The stand-ins of the event's resources (see `evaluate`), in order.
    fn stand_ins(&self) -> Vec<EntityUid> {
        each_resource(&self.stand_in_values, &self.stand_in_ends)
            .map(|values| uid(&types().resource, &concat(&["stand-in", values])))
            .collect()
    }

    fn entities(
        &mut self,
        view: &EventView,
        (principal, serial): (&Rc<PrincipalModel>, usize),
        needs: &Needs,
        resources: Option<&[ResourceModel]>,
        (stand_ins, keys, attrs): (&[EntityUid], &[ResourceKey], &[ResourceAttrs]),
    ) -> Result<Arc<Entities>, String> {
        let models = resources.unwrap_or_default();
        let resources = if stand_ins.is_empty() { models } else { &[] };
        // Principal, action and resources repeat: reuse the store built for the same ones.
        self.key.clear();
        push_number(&mut self.key, serial);
        if needs.action_entity {
            self.key.push('|');
            self.key.push_str(&view.event.event_source);
            self.key.push(':');
            self.key.push_str(&view.event.event_name);
        }
        for r in resources {
            self.key.push('|');
            r.write_key(&mut self.key);
        }
        for id in stand_ins {
            self.key.push_str("|s");
            self.key.push_str(id.id().unescaped());
        }
        if needs.resource_taken_at {
            self.key.push_str("|taken");
        }
        // The inventory's entities for the source address and the VPC endpoint.
        if needs.context.contains(Attr::Source) {
            let _ = write!(
                self.key,
                "|src:{}",
                view.source_ip()
                    .map(|ip| ip.to_string())
                    .unwrap_or_default()
            );
        }
        if needs.context.contains(Attr::VpcEndpoint) {
            let e = &view.event;
            let id = e.vpc_endpoint_id.as_deref().unwrap_or("");
            let account = e.vpc_endpoint_account_id.as_deref().unwrap_or("");
            let _ = write!(self.key, "|vpce:{}:{id}:{account}", id.len());
        }
        let base = match self.caches.entities.get(self.key.as_str()) {
            Some(e) => e.clone(),
            None => {
                let e = Arc::new(build_entities(
                    view,
                    principal,
                    needs,
                    resources,
                    stand_in_entities(stand_ins, keys, attrs, needs, &self.engine.inventory),
                    &self.engine.inventory,
                    &mut self.caches.facts,
                )?);
                keep(&mut self.caches.entities, &self.key, e.clone());
                e
            }
        };
        // The free-form fields are the event's own: added to a copy of the shared store.
        let fields = field_entities(view, needs)?;
        if fields.is_empty() {
            return Ok(base);
        }
        Entities::clone(&base)
            .add_entities(fields, None)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }
}

/// The allocation of a vector of keys, emptied, for keys that borrow from another event; not
/// when a hostile event's thousands of resources made it large.
fn recycle<'b>(mut keys: Vec<ResourceKey<'_>>) -> Vec<ResourceKey<'b>> {
    if keys.capacity() > 64 {
        return Vec::new();
    }
    keys.clear();
    // Collected in place: the same allocation, since the item type only changes lifetime.
    #[allow(clippy::unnecessary_filter_map)] // no item: what changes is the type
    keys.into_iter().filter_map(|_| None).collect()
}

/// Keeps `value` in a cache under `key`, unless the key is longer than [`MAX_KEY_BYTES`]; a
/// cache of [`CACHE_LIMIT`] entries starts over.
fn keep<V>(cache: &mut FxHashMap<String, V>, key: &str, value: V) {
    if key.len() > MAX_KEY_BYTES {
        return;
    }
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key.to_string(), value);
}

/// The key of the context `attrs` of an event, for the candidate set `set`, in `key`.
fn context_key(view: &EventView, attrs: AttrSet, set: usize, key: &mut String) {
    context::cache_key(view, attrs, key);
    key.push('#');
    push_number(key, set);
}

/// The entities of the free-form fields the policies read.
fn field_entities(view: &EventView, needs: &Needs) -> Result<Vec<Entity>, String> {
    let mut out = Vec::new();
    for field in Field::ALL {
        let need = needs.field(field);
        if !need.is_needed() {
            continue;
        }
        let tags = fields::tags(field, view.field(field)?, need)?;
        out.push(
            Entity::new_with_tags(context::field_uid(field), [], [], tags)
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// The stand-in of each resource: an entity with just the attributes and tags read.
fn stand_in_entities(
    uids: &[EntityUid],
    keys: &[ResourceKey],
    attrs: &[ResourceAttrs],
    needs: &Needs,
    inv: &Inventory,
) -> Vec<Entity> {
    uids.iter()
        .zip(keys)
        .enumerate()
        .map(|(i, (id, key))| {
            let tags = key.tags(inv);
            let tags = needs.resource_tags.iter().filter_map(|k| {
                tags.get(k)
                    .map(|v| (k.clone(), RestrictedExpression::new_string(v.to_string())))
            });
            let mut values = facts::Attrs::default();
            if let Some(a) = attrs.get(i) {
                for name in &needs.resource_attrs {
                    if let Some(value) = a.value(name, key, inv, needs.resource_taken_at) {
                        value.add_to(&mut values, name);
                    }
                }
            }
            Entity::new_with_tags(id.clone(), values.0, [], tags)
                .unwrap_or_else(|_| Entity::with_uid(id.clone()))
        })
        .collect()
}

/// Appends the values `needs` reads of each resource, its tags then its attributes (from
/// `attrs`, given when some are read), and the end of each resource's values to `ends`.
fn write_values(
    (out, ends): (&mut String, &mut Vec<usize>),
    keys: &[ResourceKey],
    attrs: &[ResourceAttrs],
    needs: &Needs,
    inv: &Inventory,
) {
    for (i, k) in keys.iter().enumerate() {
        let tags = k.tags(inv);
        for key in &needs.resource_tags {
            match tags.get(key) {
                Some(v) => push_value(out, 's', v),
                None => out.push_str(":-"),
            }
        }
        for name in &needs.resource_attrs {
            let value = attrs
                .get(i)
                .and_then(|a| a.value(name, k, inv, needs.resource_taken_at));
            match value {
                Some(AttrValue::Str(v)) => push_value(out, 's', v),
                Some(AttrValue::Bool(b)) => out.push_str(if b { ":b1" } else { ":b0" }),
                Some(AttrValue::Time(t)) => {
                    out.push_str(":t");
                    push_number(out, t.0 as usize);
                }
                None => out.push_str(":-"),
            }
        }
        ends.push(out.len());
    }
}

/// Each resource's part of the values [`write_values`] wrote, in order.
fn each_resource<'a>(values: &'a str, ends: &'a [usize]) -> impl Iterator<Item = &'a str> {
    let mut start = 0;
    ends.iter().map(move |&end| {
        let part = values.get(start..end).unwrap_or_default();
        start = end;
        part
    })
}

/// The entity store shared by events: principal and ancestors, action, resources.
fn build_entities(
    view: &EventView,
    principal: &PrincipalModel,
    needs: &Needs,
    resources: &[ResourceModel],
    stand_ins: impl IntoIterator<Item = Entity>,
    inv: &Inventory,
    cache: &mut FactCache,
) -> Result<Entities, String> {
    let mut all: Vec<Entity> = principal.entities.clone();
    all.extend(stand_ins);
    if needs.action_entity {
        let service = view.event.service();
        all.push(Entity::new_no_attrs(
            action_uid(&view.event.action_id()),
            HashSet::from([action_uid(service)]),
        ));
    }
    for r in resources {
        r.entities_cached(inv, needs.resource_taken_at, cache, &mut all);
    }
    if needs.context.contains(Attr::Source)
        && inv.knows_addresses()
        && let Some(ip) = view.source_ip()
    {
        cache.extend_with(&mut all, format!("src:{ip}"), || {
            facts::address_entities(ip, inv)
        });
    }
    if needs.context.contains(Attr::VpcEndpoint) {
        let e = &view.event;
        let key = format!(
            "vpce:{}:{}",
            e.vpc_endpoint_id.as_deref().unwrap_or(""),
            e.vpc_endpoint_account_id.as_deref().unwrap_or("")
        );
        cache.extend_with(&mut all, key, || {
            facts::vpc_endpoint_entity(view, inv).into_iter().collect()
        });
    }
    let mut seen = FxHashSet::default();
    all.retain(|e| seen.insert(e.uid()));
    Entities::from_entities(all, None).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded_engine() -> Engine {
        let pack = pack::load(pack::embedded_sources(), "embedded").expect("pack");
        Engine::new(pack, AwsRanges::embedded()).expect("engine")
    }

    /// The ids of the detections a verdict flags.
    fn hit_ids<'e>(engine: &'e Engine, verdict: &Verdict) -> Vec<&'e str> {
        verdict
            .hits
            .iter()
            .map(|h| engine.pack.detections[h.detection].id.as_str())
            .collect()
    }

    #[test]
    fn a_vector_of_keys_is_recycled_empty_with_its_allocation_unless_large() {
        let text = String::from("arn:aws:s3:::b");
        let keys = vec![
            ResourceKey::Arn(std::borrow::Cow::Borrowed(text.as_str())),
            ResourceKey::Account("123456789012"),
        ];
        let at = keys.as_ptr() as usize;
        let recycled: Vec<ResourceKey<'static>> = recycle(keys);
        drop(text);
        assert!(recycled.is_empty());
        assert_eq!(recycled.as_ptr() as usize, at, "the same allocation");
        let large: Vec<ResourceKey> = (0..100).map(|_| ResourceKey::Account("1")).collect();
        assert_eq!(recycle(large).capacity(), 0, "a hostile event's is let go");
    }

    #[test]
    fn a_thread_keeps_the_caches_of_its_two_last_engines() {
        let (a, b, c) = (embedded_engine(), embedded_engine(), embedded_engine());
        let json = r#"{"eventVersion":"1.08","eventTime":"2024-05-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice"},"recipientAccountId":"111122223333"}"#;
        // A thread of its own: its caches start empty whatever else ran on the test's thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let view = EventView::parse(json).expect("event");
                // How many principals an evaluator of `engine` starts with, then one evaluated.
                let warm = |engine: &Engine| {
                    let mut e = engine.evaluator();
                    let cached = e.caches.principals.len();
                    e.evaluate(&view).expect("evaluated");
                    cached
                };
                assert_eq!(warm(&a), 0);
                assert_eq!(warm(&b), 0);
                assert_eq!(warm(&a), 1, "a's caches were kept beside b's");
                assert_eq!(warm(&b), 1, "b's caches were kept beside a's");
                assert_eq!(warm(&c), 0);
                assert_eq!(warm(&b), 1, "b was used after a");
                assert_eq!(warm(&a), 0, "a's caches went for c's");
            });
        });
    }

    #[test]
    fn principals_too_long_to_cache_share_no_decision() {
        let engine = embedded_engine();
        // The same call by the root user then by an IAM user, each identity padded past what
        // is cached: the second must not be decided with the first's serial.
        let event = |identity: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-05-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userIdentity":{identity},"recipientAccountId":"111122223333"}}"#
            )
        };
        let pad = "p".repeat(MAX_KEY_BYTES);
        let root = format!(
            r#"{{"type":"Root","principalId":"111122223333","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE","padding":"{pad}"}}"#
        );
        let alice = format!(
            r#"{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice","padding":"{pad}"}}"#
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut e = engine.evaluator();
                for (identity, root_flagged) in [(&root, true), (&alice, false), (&root, true)] {
                    let json = event(identity);
                    let view = EventView::parse(&json).expect("event");
                    let ids = hit_ids(&engine, &e.evaluate(&view).expect("evaluated"));
                    assert_eq!(
                        ids.contains(&"root-account-activity"),
                        root_flagged,
                        "{ids:?}"
                    );
                }
                assert!(
                    e.caches.principals.is_empty(),
                    "long identities are not kept"
                );
                assert_eq!(e.caches.next_principal, 3, "each got a serial of its own");
            });
        });
    }

    #[test]
    fn values_longer_than_a_cached_key_are_decided_without_the_caches() {
        let engine = embedded_engine();
        // The public-ACL rule is memoised by the value of `x-amz-acl`: an attacker's long value
        // must not be kept as a key, and must still be decided.
        let put = |acl: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-05-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice"}},"requestParameters":{{"bucketName":"b","key":"k","x-amz-acl":"{acl}"}},"recipientAccountId":"111122223333"}}"#
            )
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut e = engine.evaluator();
                let long_private = "private".repeat(1000);
                for (acl, flagged) in [
                    (long_private.as_str(), false),
                    ("public-read", true),
                    ("private", false),
                ] {
                    let json = put(acl);
                    let view = EventView::parse(&json).expect("event");
                    let ids = hit_ids(&engine, &e.evaluate(&view).expect("evaluated"));
                    assert_eq!(ids.contains(&"s3-public-canned-acl"), flagged, "{ids:?}");
                }
                assert!(e.caches.decisions.keys().all(|k| k.len() <= MAX_KEY_BYTES));
                assert_eq!(e.caches.decisions.len(), 2, "the short values are memoised");
            });
        });
    }
}
