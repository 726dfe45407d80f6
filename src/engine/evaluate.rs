//! One event's way through the engine, top to bottom: its principal, its candidates, what they
//! read of the resources, the memoized decision, and else the decision by Cedar.

use super::caches::{CACHE_LIMIT, Caches, KEPT, KEPT_ENGINES, MAX_KEY_BYTES, recycle};
use super::decide::Decided;
use super::pack::Mode;
use super::request::write_values;
use super::{Engine, Verdict};
use crate::model::principal::Facts;
use crate::model::resource::{
    ResourceAttrs, ResourceKey, resource_attrs, resource_keys, resources_of,
};
use crate::model::{EventView, PrincipalModel, ResourceModel};
use cedar_policy::EntityUid;
use std::rc::Rc;

/// Evaluates the events of one input, with caches for what repeats in it.
pub struct Evaluator<'e> {
    pub(super) engine: &'e Engine,
    pub(super) caches: Caches,
    pub(super) key: String,
    pub(super) memo_key: String,
    /// For policies that read the resources only through attributes and tags with literal
    /// names: the values read, resource after resource (ending at `stand_in_ends`).
    pub(super) stand_in_values: String,
    pub(super) stand_in_ends: Vec<usize>,
    /// The keys of an event's resources, empty between events: its allocation is reused.
    pub(super) keys: Vec<ResourceKey<'static>>,
    /// The resource of a request whose policies do not read the resource.
    pub(super) no_resource: EntityUid,
    /// The prefilter's tests computed on the current event ([`super::prefilter::Prefilters`]).
    pub(super) tested: Vec<u8>,
    /// Whether `tested` holds the current event's tests (`prefiltered` had some to do).
    pub(super) tested_now: bool,
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
    /// The principal of an event and its serial when it is cached (modelled once per distinct
    /// `userIdentity` while cached).
    fn cached_principal(&self, view: &EventView) -> Option<(Rc<PrincipalModel>, usize)> {
        let key = view.event.user_identity.map(|r| r.get()).unwrap_or("");
        self.caches
            .principals
            .get(key)
            .map(|(p, serial)| (p.clone(), *serial))
    }

    /// The principal of an event and its serial, modelled and cached when it is not.
    fn principal(&mut self, view: &EventView) -> Result<(Rc<PrincipalModel>, usize), String> {
        if let Some(found) = self.cached_principal(view) {
            return Ok(found);
        }
        let raw = view.event.user_identity;
        self.new_principal(raw, raw.map(|r| r.get()).unwrap_or(""))
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

    /// Decides one event, then which of its findings the pack's suppressions silence. An error
    /// means the event cannot be modelled (it is rejected).
    pub fn evaluate(&mut self, view: &EventView) -> Result<Verdict, String> {
        let mut verdict = self.decide_event(view)?;
        self.engine.suppress(view, &mut verdict);
        Ok(verdict)
    }

    /// The decision on one event, every finding included.
    fn decide_event(&mut self, view: &EventView) -> Result<Verdict, String> {
        let engine = self.engine;
        let allow_list = engine.pack.mode == Mode::AllowList;
        // The candidates: the index's for the event's action and principal type, then those
        // whose prefilter holds on its plain fields and its principal's facts. A principal not
        // cached is read as facts only, and modelled when a candidate survives.
        let cached = self.cached_principal(view);
        let read;
        let facts = match &cached {
            Some((p, _)) => &p.facts,
            None => {
                read = Facts::of_raw(view.event.user_identity)?;
                &read
            }
        };
        let indexed = engine
            .index
            .candidates(
                view.event.service(),
                &view.event.event_name,
                facts.kind(),
                view.event.error_code.is_some(),
            )
            .clone();
        // A principal seen before has its guards' verdicts cached: the detections they rule out
        // go before the prefilter would test them on every event (a rule for one kind of role,
        // scoped to any action, is a candidate of every event of every role).
        let indexed = match &cached {
            Some((p, serial)) => self.narrow(indexed, (p, *serial)),
            None => indexed,
        };
        let candidates = self.prefiltered(indexed, view, facts);
        if candidates.members.is_empty() {
            return Ok(Verdict {
                principal: cached.map(|(p, _)| p),
                hits: Vec::new(),
                not_allowed: allow_list,
                candidates,
                errors: Vec::new(),
                resources: None,
                suppressed: Vec::new(),
            });
        }
        // Detections whose tests are their whole condition, all satisfied: the verdict without
        // a request (a correlation's per-event part on a busy event, typically).
        if candidates.decided_by_tests && self.all_hold(&candidates, view, facts) {
            let (principal, _) = match cached {
                Some(found) => found,
                None => self.principal(view)?,
            };
            let hits = candidates
                .members
                .iter()
                .map(|&detection| super::Hit {
                    detection,
                    resource: None,
                    keys: None,
                })
                .collect();
            return Ok(Verdict {
                principal: Some(principal),
                hits,
                not_allowed: false,
                candidates,
                errors: Vec::new(),
                resources: None,
                suppressed: Vec::new(),
            });
        }
        // A principal cached was narrowed for before the prefilter; one modelled now is here.
        let (principal, serial, candidates) = match cached {
            Some((principal, serial)) => (principal, serial, candidates),
            None => {
                let (principal, serial) = self.principal(view)?;
                let candidates = self.narrow(candidates, (&principal, serial));
                (principal, serial, candidates)
            }
        };
        let mut verdict = Verdict {
            principal: Some(principal.clone()),
            hits: Vec::new(),
            not_allowed: false,
            candidates: candidates.clone(),
            errors: Vec::new(),
            resources: None,
            suppressed: Vec::new(),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{embedded_engine, hit_ids};

    #[test]
    fn principals_too_long_to_cache_share_no_decision() {
        let engine = embedded_engine();
        // The same call by the root user then by an IAM user (one that candidates survive for,
        // so that both principals are modelled), each identity padded past what is cached: the
        // second must not be decided with the first's serial.
        let event = |identity: &str| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-05-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userIdentity":{identity},"requestParameters":{{"userName":"backup"}},"recipientAccountId":"111122223333"}}"#
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
    fn an_event_no_candidate_survives_for_models_nothing() {
        let engine = embedded_engine();
        // An instance session calling from inside AWS, without network inventory: the
        // instance-credentials rule's prefilter is false, and no other rule applies.
        let json = r#"{"eventVersion":"1.08","eventTime":"2024-05-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"ap-northeast-1","sourceIPAddress":"54.150.10.20","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-0123456789abcdef0","arn":"arn:aws:sts::111122223333:assumed-role/app/i-0123456789abcdef0","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/app","userName":"app"},"attributes":{"creationDate":"2024-05-01T00:00:00Z","mfaAuthenticated":"false"}}},"recipientAccountId":"111122223333"}"#;
        std::thread::scope(|s| {
            s.spawn(|| {
                let view = EventView::parse(json).expect("event");
                let indexed = engine.index.candidates(
                    "ec2",
                    "DescribeInstances",
                    crate::model::PrincipalKind::AssumedRole,
                    false,
                );
                assert!(!indexed.members.is_empty(), "the index has candidates");
                let mut e = engine.evaluator();
                let verdict = e.evaluate(&view).expect("evaluated");
                assert!(
                    verdict.candidates.members.is_empty(),
                    "none survives the prefilter"
                );
                assert!(verdict.principal.is_none(), "the principal is not modelled");
                assert!(e.caches.principals.is_empty(), "nor cached");
                // Modelled when asked for (a finding or a test case would).
                let p = verdict.principal(&engine, &view).expect("modelled");
                assert_eq!(p.kind, crate::model::PrincipalKind::AssumedRole);
                // From outside AWS, the same session is a finding.
                let outside = json.replace("54.150.10.20", "198.51.100.7");
                let view = EventView::parse(&outside).expect("event");
                let ids = hit_ids(&engine, &e.evaluate(&view).expect("evaluated"));
                assert!(
                    ids.contains(&"ec2-instance-credentials-used-outside-aws"),
                    "{ids:?}"
                );
            });
        });
    }
}
