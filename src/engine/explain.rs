//! Explanations: the values a detection read on an event, and notes on the inventory facts
//! among them.

use super::Engine;
use super::analysis::Needs;
use super::decide::with_element;
use super::pack::Detection;
use crate::model::context::Attr;
use crate::model::element::{self, Each};
use crate::model::{EventView, PrincipalModel, ResourceModel};
use cedar_policy::{Entities, EvalResult, Expression, Request, eval_expression};
use rustc_hash::FxHashSet;
use std::str::FromStr;

impl Engine {
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
        let Ok((mut request, mut entities)) = self.request_for(view, principal, resource, &needs)
        else {
            return out;
        };
        // A policy with `@each` is explained on the first element it holds for.
        let each = detections
            .iter()
            .filter_map(|i| self.pack.detections.get(*i))
            .find_map(|d| Some((d, d.each.as_ref()?)));
        if let Some((d, each)) = each
            && let Some((path, bound, store)) = first_element(each, view, &request, &entities, d)
        {
            out.values.push(("element".to_string(), Some(path)));
            request = bound;
            entities = store;
        }
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

/// The first element of `each` on which `d`'s condition holds (else the first element), with
/// the request bound to it and the store that holds it.
fn first_element(
    each: &Each,
    view: &EventView,
    request: &Request,
    entities: &Entities,
    d: &Detection,
) -> Option<(String, Request, Entities)> {
    let bound = element::bind(each, view).ok()?;
    let store = entities.clone().add_entities(bound.entities, None).ok()?;
    let mut first = None;
    for leaf in bound.leaves {
        let request = with_element(request, &leaf.uid).ok()?;
        let holds = matches!(
            eval_expression(&request, &store, &d.condition),
            Ok(EvalResult::Bool(true))
        );
        if holds {
            return Some((leaf.path, request, store));
        }
        first.get_or_insert((leaf.path, request));
    }
    first.map(|(path, request)| (path, request, store))
}

/// Why a detection fired: the values it read, and notes about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// `(label, value)`; `None` when the event has no such value.
    pub values: Vec<(String, Option<String>)>,
    /// For example: an inventory fact that was taken after the event.
    pub notes: Vec<String>,
}
