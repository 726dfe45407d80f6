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

use crate::model::aws_ranges::AwsRanges;
use crate::model::context::{self, AttrSet};
use crate::model::fields::{self, FieldNeed};
use crate::model::resource::resources_of;
use crate::model::{EventView, Field, PrincipalModel, ResourceModel, action_uid, types, uid};
use analysis::Needs;
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, Expression, Request,
    eval_expression,
};
use index::{CandidateSet, Index};
use pack::{Mode, Pack};
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

pub use pack::{Detection, Severity};

/// A pack ready to evaluate events.
pub struct Engine {
    pub pack: Pack,
    pub ranges: AwsRanges,
    index: Index,
    authorizer: Authorizer,
}

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
    /// Whether the event is flagged.
    pub fn flagged(&self) -> bool {
        !self.hits.is_empty() || self.not_allowed
    }
}

/// Cache sizes past which a file's caches start over: bounded memory on hostile input.
const CACHE_LIMIT: usize = 4096;

impl Engine {
    /// Indexes a pack.
    pub fn new(pack: Pack, ranges: AwsRanges) -> Result<Engine, String> {
        let index = Index::build(&pack)?;
        Ok(Engine {
            pack,
            ranges,
            index,
            authorizer: Authorizer::new(),
        })
    }

    /// How many distinct candidate sets the index holds.
    pub fn candidate_sets(&self) -> usize {
        self.index.set_count()
    }

    /// An evaluator for the events of one input, with caches for what repeats in it.
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            engine: self,
            principals: FxHashMap::default(),
            contexts: FxHashMap::default(),
            entities: FxHashMap::default(),
            key: String::new(),
        }
    }

    /// The request and entities of an event with everything built, as `explain` shows them.
    pub fn full_request(
        &self,
        view: &EventView,
        principal: &PrincipalModel,
        resource: &ResourceModel,
    ) -> Result<(Request, Entities), String> {
        let needs = Needs::everything();
        let resources = std::slice::from_ref(resource);
        let entities = build_entities(view, principal, &needs, resources)?;
        let ctx = context::build(view, needs.context, &self.ranges)?;
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

    /// The values a detection reads, evaluated on the event: its explanation.
    pub fn explain_values(
        &self,
        detections: &[usize],
        view: &EventView,
        principal: &PrincipalModel,
        resource: &ResourceModel,
    ) -> Vec<(String, Option<String>)> {
        let Ok((request, entities)) = self.full_request(view, principal, resource) else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for d in detections
            .iter()
            .filter_map(|i| self.pack.detections.get(*i))
        {
            for read in &d.analysis.reads {
                if !seen.insert(read.label.clone()) {
                    continue;
                }
                let value = Expression::from_str(&read.expr)
                    .ok()
                    .and_then(|e| eval_expression(&request, &entities, &e).ok())
                    .map(|v| v.to_string());
                out.push((read.label.clone(), value));
            }
        }
        out
    }
}

/// Evaluates the events of one input, with caches for what repeats in it.
pub struct Evaluator<'e> {
    engine: &'e Engine,
    /// Keyed by the raw `userIdentity` JSON.
    principals: FxHashMap<Box<str>, Rc<PrincipalModel>>,
    contexts: FxHashMap<String, Context>,
    entities: FxHashMap<String, Arc<Entities>>,
    key: String,
}

impl Evaluator<'_> {
    /// The principal of an event, built once per distinct `userIdentity` in the input.
    pub fn principal(&mut self, view: &EventView) -> Result<Rc<PrincipalModel>, String> {
        let raw = view.event.user_identity;
        let key = raw.map(|r| r.get()).unwrap_or("");
        if let Some(p) = self.principals.get(key) {
            return Ok(p.clone());
        }
        let p = Rc::new(PrincipalModel::from_identity(raw)?);
        if self.principals.len() >= CACHE_LIMIT {
            // Entity stores are keyed by principal identity: they go with the principals.
            self.principals.clear();
            self.entities.clear();
        }
        self.principals.insert(key.into(), p.clone());
        Ok(p)
    }

    /// Decides one event. An error means the event cannot be modelled (it is rejected).
    pub fn evaluate(&mut self, view: &EventView) -> Result<Verdict, String> {
        let engine = self.engine;
        let principal = self.principal(view)?;
        let candidates = engine
            .index
            .candidates(view.event.service(), &view.event.event_name, principal.kind)
            .clone();
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
        let resources = if needs.resource {
            Some(resources_of(view, &principal)?)
        } else {
            None
        };
        let ctx = self.context(view, &candidates)?;
        let entities = self.entities(view, &principal, needs, resources.as_deref())?;
        let action = action_uid(&view.event.action_id());
        let placeholder = [uid(&types().resource, "")];
        let resource_uids: Vec<&EntityUid> = match &resources {
            Some(rs) => rs.iter().map(|r| &r.uid).collect(),
            None => placeholder.iter().collect(),
        };
        for (ri, resource) in resource_uids.into_iter().enumerate() {
            let request = Request::new(
                principal.uid.clone(),
                action.clone(),
                resource.clone(),
                ctx.clone(),
                None,
            )
            .map_err(|e| e.to_string())?;
            let response =
                engine
                    .authorizer
                    .is_authorized(&request, &candidates.policies, &entities);
            let resource_index = resources.as_ref().map(|_| ri);
            let mut forbade = false;
            if response.decision() == Decision::Deny {
                for id in response.diagnostics().reason() {
                    forbade = true;
                    if let Some(d) = engine.pack.index_of(id)
                        && !verdict.hits.iter().any(|h| h.detection == d)
                    {
                        verdict.hits.push(Hit {
                            detection: d,
                            resource: resource_index,
                        });
                    }
                }
                if allow_list && !forbade {
                    verdict.not_allowed = true;
                }
            }
            for e in response.diagnostics().errors() {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(err) = e;
                let policy_id = err.policy_id().to_string();
                if !verdict.errors.iter().any(|x| x.policy_id == policy_id) {
                    verdict.errors.push(RuleError {
                        detection: engine.pack.index_of(err.policy_id()),
                        policy_id,
                        message: err.to_string(),
                    });
                }
            }
        }
        verdict.hits.sort_by_key(|h| h.detection);
        verdict.resources = resources;
        Ok(verdict)
    }

    fn context(&mut self, view: &EventView, candidates: &CandidateSet) -> Result<Context, String> {
        let attrs: AttrSet = candidates.needs.context;
        let ranges = &self.engine.ranges;
        if !attrs.cacheable() {
            return context::build(view, attrs, ranges);
        }
        context::cache_key(view, attrs, &mut self.key);
        self.key.push('#');
        self.key.push_str(&candidates.id.to_string());
        if let Some(c) = self.contexts.get(self.key.as_str()) {
            return Ok(c.clone());
        }
        let c = context::build(view, attrs, ranges)?;
        if self.contexts.len() >= CACHE_LIMIT {
            self.contexts.clear();
        }
        self.contexts.insert(self.key.clone(), c.clone());
        Ok(c)
    }

    fn entities(
        &mut self,
        view: &EventView,
        principal: &Rc<PrincipalModel>,
        needs: &Needs,
        resources: Option<&[ResourceModel]>,
    ) -> Result<Arc<Entities>, String> {
        let per_event = Field::ALL.iter().any(|f| needs.field(*f).is_needed());
        let resources = resources.unwrap_or_default();
        if per_event {
            return build_entities(view, principal, needs, resources).map(Arc::new);
        }
        // Principal, action and resources repeat: reuse the store built for the same ones.
        self.key.clear();
        self.key
            .push_str(&(Rc::as_ptr(principal) as usize).to_string());
        if needs.action_entity {
            self.key.push('|');
            self.key.push_str(&view.event.event_source);
            self.key.push(':');
            self.key.push_str(&view.event.event_name);
        }
        for r in resources {
            self.key.push('|');
            self.key.push_str(&r.uid.to_string());
        }
        if let Some(e) = self.entities.get(self.key.as_str()) {
            return Ok(e.clone());
        }
        let e = Arc::new(build_entities(view, principal, needs, resources)?);
        if self.entities.len() >= CACHE_LIMIT {
            self.entities.clear();
        }
        self.entities.insert(self.key.clone(), e.clone());
        Ok(e)
    }
}

/// The entity store for a request: principal and ancestors, action, resources, free-form fields.
fn build_entities(
    view: &EventView,
    principal: &PrincipalModel,
    needs: &Needs,
    resources: &[ResourceModel],
) -> Result<Entities, String> {
    let mut all: Vec<Entity> = principal.entities.clone();
    if needs.action_entity {
        let service = view.event.service();
        all.push(Entity::new_no_attrs(
            action_uid(&view.event.action_id()),
            HashSet::from([action_uid(service)]),
        ));
    }
    for r in resources {
        all.extend(r.entities());
    }
    for field in Field::ALL {
        let need = needs.field(field);
        if !need.is_needed() {
            continue;
        }
        let tags = match need {
            FieldNeed::Nothing => Vec::new(),
            need => fields::tags(view.field(field)?, need),
        };
        all.push(
            Entity::new_with_tags(context::field_uid(view, field), [], [], tags)
                .map_err(|e| e.to_string())?,
        );
    }
    let mut seen = HashSet::new();
    all.retain(|e| seen.insert(e.uid()));
    Entities::from_entities(all, None).map_err(|e| e.to_string())
}
