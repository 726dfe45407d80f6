//! The decision: Cedar's evaluation of the candidates on each request of an event, and the memo
//! of decisions for requests that repeat.

use super::caches::keep;
use super::index::CandidateSet;
use super::pack::Mode;
use super::request::{context_key, each_resource};
use super::{Evaluator, Hit, RuleError, Verdict};
use crate::model::element::{self, Each, Leaf};
use crate::model::fields::{self, FieldNeed};
use crate::model::resource::{ResourceAttrs, ResourceKey};
use crate::model::{EventView, Field, PrincipalModel, ResourceModel};
use crate::text::{push_number, push_value};
use cedar_policy::{
    Context, Effect, Entities, EntityUid, EvalResult, Expression, Request, RestrictedExpression,
    eval_expression,
};
use std::rc::Rc;
use std::sync::Arc;

/// The decision of a candidate set's memoized members, remembered for requests equal to the
/// ones it was made for.
#[derive(Clone)]
pub(super) struct Decided {
    pub(super) hits: Vec<Hit>,
    /// Per request: whether one of them is a satisfied forbid, a satisfied permit.
    pub(super) flags: Vec<(bool, bool)>,
    pub(super) errors: Vec<RuleError>,
}

impl Evaluator<'_> {
    /// The rest of [`Evaluator::evaluate`] when the memoized decision did not settle the event:
    /// Cedar decides the members not `replayed`, on each request. Apart, so that the path of an
    /// event the memo settles stays short (it is most events).
    #[inline(never)]
    pub(super) fn decide(
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
        // The elements of the `@each` lists of the members that have them, bound once per event.
        let mut elements = Elements::default();
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
                    let evaluated = match &d.each {
                        None => eval_expression(&request, &entities, &d.indexed_condition)
                            .map_err(|e| e.to_string()),
                        Some(each) => {
                            let bound = elements.bind(each, view, &entities);
                            bound.and_then(|b| b.any(&request, &d.indexed_condition))
                        }
                    };
                    let outcome = match evaluated {
                        Ok(EvalResult::Bool(b)) => Some(b),
                        Ok(other) => {
                            let m = format!("the condition is {other}, not a boolean");
                            verdict.error(member, d, message(m));
                            None
                        }
                        Err(e) => {
                            verdict.error(member, d, message(e));
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
                        // What its correlations group and count it by, where a key is not
                        // read straight from the event: on this request (and so memoized with
                        // the decision, which reads what the key reads).
                        let keys = if d.keyings.iter().all(|k| k.quick) {
                            None
                        } else {
                            let bound = d
                                .each
                                .as_ref()
                                .and_then(|each| elements.bind(each, view, &entities).ok());
                            let on = bound.as_deref().map(|b| (&b.entities, b.leaves.as_slice()));
                            match engine.match_keys((member, d), &request, &entities, on, false) {
                                Ok(k) => Some(k),
                                Err(e) => {
                                    verdict.error(member, d, message(e));
                                    None
                                }
                            }
                        };
                        verdict.hits.push(Hit {
                            detection: member,
                            resource: resource_index,
                            keys,
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
    pub(super) fn write_memo_key(
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
}

/// The elements of the `@each` lists of an event, bound on first use (per list text), with the
/// entity store that holds them.
#[derive(Default)]
struct Elements {
    bound: Vec<(Arc<Each>, Binding)>,
}

/// The elements of one `@each` on an event, or why they could not be bound.
type Binding = Result<Arc<BoundStore>, String>;

/// An event's store with the elements of one `@each` added, and the elements to evaluate on.
struct BoundStore {
    entities: Entities,
    leaves: Vec<Leaf>,
}

impl Elements {
    /// The elements of `each` on this event, with `base` (the request's store) holding them.
    fn bind(&mut self, each: &Arc<Each>, view: &EventView, base: &Entities) -> Binding {
        if let Some((_, found)) = self.bound.iter().find(|(e, _)| e.text == each.text) {
            return found.clone();
        }
        let store = element::bind(each, view).and_then(|b| {
            let entities = base
                .clone()
                .add_entities(b.entities, None)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(BoundStore {
                entities,
                leaves: b.leaves,
            }))
        });
        self.bound.push((each.clone(), store.clone()));
        store
    }
}

/// `request` with `context.element` bound to `element`.
pub(super) fn with_element(request: &Request, element: &EntityUid) -> Result<Request, String> {
    let missing = || "a request without its parts".to_string();
    let context = request
        .context()
        .ok_or_else(missing)?
        .clone()
        .merge([(
            "element".to_string(),
            RestrictedExpression::new_entity_uid(element.clone()),
        )])
        .map_err(|e| e.to_string())?;
    Request::new(
        request.principal().ok_or_else(missing)?.clone(),
        request.action().ok_or_else(missing)?.clone(),
        request.resource().ok_or_else(missing)?.clone(),
        context,
        None,
    )
    .map_err(|e| e.to_string())
}

impl BoundStore {
    /// Whether `condition` holds for some element: evaluated on each in turn with
    /// `context.element` bound to it, until one holds. An error on an element is the policy's
    /// error on the event; no element, `false`.
    fn any(&self, request: &Request, condition: &Expression) -> Result<EvalResult, String> {
        for leaf in &self.leaves {
            let bound = with_element(request, &leaf.uid)?;
            match eval_expression(&bound, &self.entities, condition) {
                Ok(EvalResult::Bool(false)) => continue,
                Ok(other) => return Ok(other),
                Err(e) => return Err(format!("on {}: {e}", leaf.path)),
            }
        }
        Ok(EvalResult::Bool(false))
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::caches::MAX_KEY_BYTES;
    use crate::engine::testing::hit_ids;
    use crate::model::EventView;

    #[test]
    fn values_longer_than_a_cached_key_are_decided_without_the_caches() {
        // A rule memoised by the value of `x-amz-acl` (and the source, which its address range
        // reads: no prefilter test decides it): an attacker's long value must not be kept as a
        // key, and must still be decided.
        let text = r#"@id("s3-public-canned-acl") @title("t") @severity("high")
forbid (principal, action == Action::"s3:PutObject", resource)
when {
  context.requestParameters.hasTag("x-amz-acl") &&
  context.requestParameters.getTag("x-amz-acl") like "public-*" &&
  context has sourceIP && !context.sourceIP.isInRange(ip("10.0.0.0/8"))
};"#;
        let pack = crate::engine::pack::load(
            vec![crate::engine::pack::PolicySource {
                name: "acl.cedar".into(),
                text: text.into(),
            }],
            "test",
        )
        .expect("pack");
        let engine =
            crate::engine::Engine::new(pack, crate::model::aws_ranges::AwsRanges::embedded())
                .expect("engine");
        let put = |acl: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-05-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice"}},"requestParameters":{{"bucketName":"b","key":"k","x-amz-acl":"{acl}"}},"recipientAccountId":"111122223333"}}"#
            )
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut e = engine.evaluator();
                // The long value passes the prefilter's `like`, so Cedar decides it.
                let long_public = format!("public-{}", "x".repeat(7000));
                for (acl, flagged) in [
                    (long_public.as_str(), true),
                    ("public-read", true),
                    ("public-read-write", true),
                    ("private", false),
                ] {
                    let json = put(acl);
                    let view = EventView::parse(&json).expect("event");
                    let ids = hit_ids(&engine, &e.evaluate(&view).expect("evaluated"));
                    assert_eq!(ids.contains(&"s3-public-canned-acl"), flagged, "{ids:?}");
                }
                assert!(e.caches.decisions.keys().all(|k| k.len() <= MAX_KEY_BYTES));
                // The two short public values; `private` is dropped by the prefilter.
                assert_eq!(e.caches.decisions.len(), 2, "the short values are memoised");
            });
        });
    }
}
