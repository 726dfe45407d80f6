//! The request: the action, the context and the entity store of an event, built for what the
//! candidates read and cached where they repeat.

use super::Evaluator;
use super::analysis::Needs;
use super::caches::keep;
use super::index::CandidateSet;
use crate::inventory::Inventory;
use crate::model::context::{self, Attr, AttrSet};
use crate::model::facts::{self, FactCache};
use crate::model::fields::{self};
use crate::model::resource::{AttrValue, ResourceAttrs, ResourceKey};
use crate::model::{EventView, Field, PrincipalModel, ResourceModel, action_uid, types, uid};
use crate::text::{concat, push_number, push_value};
use cedar_policy::{Context, Entities, Entity, EntityUid, RestrictedExpression};
use rustc_hash::FxHashSet;
use std::collections::HashSet;
use std::fmt::Write;
use std::rc::Rc;
use std::sync::Arc;

impl Evaluator<'_> {
    /// `Action::"<service>:<eventName>"`, built once per action (while cached).
    pub(super) fn action(&mut self, view: &EventView) -> EntityUid {
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
    pub(super) fn context(
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
    pub(super) fn stand_ins(&self) -> Vec<EntityUid> {
        each_resource(&self.stand_in_values, &self.stand_in_ends)
            .map(|values| uid(&types().resource, &concat(&["stand-in", values])))
            .collect()
    }

    pub(super) fn entities(
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
        let fields = event_entities(view, needs, &self.engine.inventory)?;
        if fields.is_empty() {
            return Ok(base);
        }
        Entities::clone(&base)
            .add_entities(fields, None)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }
}

/// The key of the context `attrs` of an event, for the candidate set `set`, in `key`.
pub(super) fn context_key(view: &EventView, attrs: AttrSet, set: usize, key: &mut String) {
    context::cache_key(view, attrs, key);
    key.push('#');
    push_number(key, set);
}

/// The entities that are the event's own, for what the policies read: the free-form fields
/// (with their typed views when read), and the facts of its policy documents and sharing.
pub(super) fn event_entities(
    view: &EventView,
    needs: &Needs,
    inv: &Inventory,
) -> Result<Vec<Entity>, String> {
    let mut out = Vec::new();
    for field in Field::ALL {
        let need = needs.field(field);
        if !need.is_needed() {
            continue;
        }
        let value = view.field(field)?;
        let tags = fields::tags(field, value, need)?;
        let mut typed = Vec::new();
        let attrs = if needs.typed(field) {
            crate::model::typed::typed(value, field.name(), &mut typed)?
        } else {
            Vec::new()
        };
        out.push(
            Entity::new_with_tags(context::field_uid(field), attrs, [], tags)
                .map_err(|e| e.to_string())?,
        );
        out.extend(typed);
    }
    let own = view.event.recipient_account_id.as_deref();
    if needs.context.contains(Attr::PolicyDocument)
        && let Some(g) = view.grants()?
    {
        out.push(crate::model::document::entity(g, own, inv)?);
    }
    if needs.context.contains(Attr::Sharing)
        && let Some(s) = view.shared()?
    {
        out.push(crate::model::sharing::entity(s, own, inv)?);
    }
    Ok(out)
}

/// The stand-in of each resource: an entity with just the attributes and tags read.
pub(super) fn stand_in_entities(
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
pub(super) fn write_values(
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
                Some(AttrValue::Lower(v)) => push_value(out, 'l', v),
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
pub(super) fn each_resource<'a>(
    values: &'a str,
    ends: &'a [usize],
) -> impl Iterator<Item = &'a str> {
    let mut start = 0;
    ends.iter().map(move |&end| {
        let part = values.get(start..end).unwrap_or_default();
        start = end;
        part
    })
}

/// The entity store shared by events: principal and ancestors, action, resources.
pub(super) fn build_entities(
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
