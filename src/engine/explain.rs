//! Explanations: which parts of a policy decided an event, the values they read, and notes on
//! the inventory facts among them.
//!
//! A policy is `scope && when… && !unless…`, and Cedar evaluates `&&` and `||` left to right,
//! stopping at the first operand that settles them. An explanation follows the parts that
//! decided the event: for a policy that was satisfied, the parts that held (of an `a && b`,
//! both; of an `a || b`, each operand that is true, since each alone makes it fire); for one
//! that was not, the first part that was false (of an `a && b`, the first false operand; of an
//! `a || b`, both). `!a` is decided by `a`, an `if` by its condition and the branch taken. Only
//! the values those parts read are shown: a `DeleteTrail` finding of a rule whose other
//! branches test `UpdateTrail`'s parameters reads none of them.

use super::Engine;
use super::analysis::{Needs, Read, reads_of};
use super::decide::with_element;
use super::pack::Detection;
use crate::model::context::Attr;
use crate::model::element::{self, Each};
use crate::model::{EventView, PrincipalModel, ResourceModel};
use cedar_policy::pst::{BinaryOp, Clause, Expr, Literal, UnaryOp};
use cedar_policy::{Entities, EvalResult, Expression, Request, eval_expression};
use rustc_hash::FxHashSet;
use std::str::FromStr;

impl Engine {
    /// The values a detection reads, evaluated on the event, and notes on the inventory facts
    /// among them: its explanation. Of each detection, only the values of the parts of its
    /// condition that decided the event are shown (module doc).
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
            out.values.push((
                "element".to_string(),
                Some(Shown {
                    json: serde_json::Value::String(path.clone()),
                    cedar: path,
                }),
            ));
            request = bound;
            entities = store;
        }
        let eval = |expr: &str| parsed(expr, |e| eval_expression(&request, &entities, e?).ok());
        let mut seen = FxHashSet::default();
        let mut roots: Vec<&'static str> = Vec::new();
        for d in detections
            .iter()
            .filter_map(|i| self.pack.detections.get(*i))
        {
            let (reads, decided_by) = match trace(d, &request, &entities, principal) {
                Some((reads, decided)) => (reads, decided),
                // Not traced (the policy errs on the event): every value it reads.
                None => (d.analysis.reads.clone(), Vec::new()),
            };
            out.decided_by.extend(decided_by);
            for read in reads {
                if !seen.insert(read.label.clone()) {
                    continue;
                }
                let value = eval(&read.expr).map(|v| Shown::of(&v));
                if let Some(root) = read.inventory
                    && value.is_some()
                    && !roots.contains(&root)
                {
                    roots.push(root);
                }
                out.values.push((read.label, value));
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

/// Calls `f` with `text` parsed as a Cedar expression (`None` if it does not parse). A value an
/// explanation reads is one of a few hundred expressions of the pack, read on every finding and
/// on every correlation match explained: each thread parses each once.
fn parsed<T>(text: &str, f: impl FnOnce(Option<&Expression>) -> T) -> T {
    thread_local! {
        static PARSED: std::cell::RefCell<rustc_hash::FxHashMap<String, Option<Expression>>> =
            std::cell::RefCell::default();
    }
    PARSED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(text) {
            // Bounded, should a pack ever read more than this.
            if cache.len() >= 4096 {
                cache.clear();
            }
            cache.insert(text.to_string(), Expression::from_str(text).ok());
        }
        f(cache.get(text).and_then(Option::as_ref))
    })
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

/// Why a detection fired, or did not: the values it read, the parts that decided, and notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// `(label, value)`; `None` when the event has no such value.
    pub values: Vec<(String, Option<Shown>)>,
    /// For example: an inventory fact that was taken after the event.
    pub notes: Vec<String>,
    /// The parts of the conditions that decided, in evaluation order.
    pub decided_by: Vec<Deciding>,
}

/// A value an explanation shows: in Cedar's syntax, for people, and as JSON, for programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// `"public-read"`, `22`, `ip("10.0.0.1")`, `[Instance::"i-0f4…"]`.
    pub cedar: String,
    /// `"public-read"`, `22`, `"10.0.0.1"`, `[{"type": "Instance", "id": "i-0f4…"}]`.
    pub json: serde_json::Value,
}

impl Shown {
    /// A string, as [`Shown::of`] shows `EvalResult::String`, without making one: the keys of
    /// correlation matches are mostly strings read straight from the event.
    pub fn text(s: &str) -> Shown {
        let plain = s
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        let cedar = if plain {
            let mut c = String::with_capacity(s.len() + 2);
            c.push('"');
            c.push_str(s);
            c.push('"');
            c
        } else {
            format!("\"{}\"", s.escape_debug())
        };
        Shown {
            cedar,
            json: serde_json::Value::String(s.to_string()),
        }
    }

    /// An entity, as [`Shown::of`] shows `EvalResult::EntityUid`, without formatting one.
    pub fn entity(type_name: &str, id: &str) -> Shown {
        Shown {
            cedar: format!("{type_name}::{}", Shown::text(id).cedar),
            json: serde_json::json!({"type": type_name, "id": id}),
        }
    }

    pub fn of(v: &EvalResult) -> Shown {
        Shown {
            cedar: v.to_string(),
            json: json_of(v),
        }
    }
}

/// A value a match is grouped or counted by (`@group`, `@distinct`), kept as it was read: most
/// are a string or an entity read straight from the event, spelled in Cedar and as JSON only
/// when a finding shows them, so that a match reaches the correlations without the allocations
/// a [`Shown`] costs. Two values are equal when Cedar spells them alike ([`MatchValue::of`] keeps
/// a string or an entity in its own variant, whichever way it was made).
#[derive(Debug, Clone)]
pub enum MatchValue {
    /// A string.
    Text(Box<str>),
    /// An entity: its type and id.
    Entity(Box<str>, Box<str>),
    /// Any other value, as Cedar spells it and as JSON.
    Other(Box<Shown>),
}

impl MatchValue {
    pub fn text(s: &str) -> MatchValue {
        MatchValue::Text(s.into())
    }

    pub fn entity(type_name: &str, id: &str) -> MatchValue {
        MatchValue::Entity(type_name.into(), id.into())
    }

    /// A value Cedar gave: a string or an entity becomes the variant a value read straight
    /// from the event is, when Cedar spells it as [`Shown::text`] or [`Shown::entity`] does.
    pub fn of(shown: Shown) -> MatchValue {
        use serde_json::Value;
        match &shown.json {
            Value::String(s) if Shown::text(s).cedar == shown.cedar => MatchValue::text(s),
            Value::Object(map) if map.len() == 2 => match (map.get("type"), map.get("id")) {
                (Some(Value::String(t)), Some(Value::String(id)))
                    if Shown::entity(t, id).cedar == shown.cedar =>
                {
                    MatchValue::entity(t, id)
                }
                _ => MatchValue::Other(Box::new(shown)),
            },
            _ => MatchValue::Other(Box::new(shown)),
        }
    }

    /// The value in Cedar's spelling and as JSON.
    pub fn shown(&self) -> Shown {
        match self {
            MatchValue::Text(s) => Shown::text(s),
            MatchValue::Entity(t, id) => Shown::entity(t, id),
            MatchValue::Other(shown) => Shown::clone(shown),
        }
    }

    /// The value in Cedar's spelling.
    pub fn cedar(&self) -> String {
        match self {
            MatchValue::Other(shown) => shown.cedar.clone(),
            _ => self.shown().cedar,
        }
    }

    /// What equality, hashing and order go by.
    fn parts(&self) -> (u8, &str, &str) {
        match self {
            MatchValue::Text(s) => (0, s, ""),
            MatchValue::Entity(t, id) => (1, t, id),
            MatchValue::Other(shown) => (2, &shown.cedar, ""),
        }
    }
}

impl PartialEq for MatchValue {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for MatchValue {}

impl std::hash::Hash for MatchValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialOrd for MatchValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MatchValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// A Cedar value as JSON: records and sets as objects and arrays, an entity as its type and id,
/// an extension value (`ip("10.0.0.1")`, `datetime("…")`) as the text it was made from.
pub fn json_of(v: &EvalResult) -> serde_json::Value {
    use serde_json::Value;
    match v {
        EvalResult::Bool(b) => Value::Bool(*b),
        EvalResult::Long(n) => Value::from(*n),
        EvalResult::String(s) => Value::String(s.clone()),
        EvalResult::EntityUid(uid) => serde_json::json!({
            "type": uid.type_name().to_string(),
            "id": uid.id().unescaped(),
        }),
        EvalResult::Set(items) => Value::Array(items.iter().map(json_of).collect()),
        EvalResult::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), json_of(v)))
                .collect(),
        ),
        EvalResult::ExtensionValue(text) => Value::String(extension_argument(text)),
    }
}

/// `ip("10.0.0.1")` is `10.0.0.1`; anything else stays as it is.
fn extension_argument(text: &str) -> String {
    let inner = text
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .and_then(|arg| serde_json::from_str::<String>(arg).ok());
    inner.unwrap_or_else(|| text.to_string())
}

/// A part of a policy that decided an event: what held in a satisfied policy, what was false
/// in one that was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deciding {
    /// The detection's id.
    pub policy: String,
    /// The part in Cedar's syntax: `principal is IAMUser`, `context has errorCode`.
    pub part: String,
    /// Its value on the event.
    pub value: bool,
    /// For a type test that was false, what the entity is: `principal is Root`.
    pub actual: Option<String>,
}

/// A policy's scope and clauses as an explanation walks them: every operand it may evaluate,
/// parsed once (on the policy's first explanation) rather than on every finding.
#[derive(Debug)]
pub struct Trace {
    /// `principal is Root`, `action in [...]`: the scope's parts, in Cedar's order.
    scope: Vec<Node>,
    /// `(when, clause)`: a `when` must hold, an `unless` must not.
    clauses: Vec<(bool, Node)>,
}

/// An operand of a condition.
#[derive(Debug)]
struct Node {
    /// In Cedar's syntax.
    text: String,
    /// Parsed back, to be evaluated on its own; `None` if it does not parse (never expected).
    expr: Option<Expression>,
    shape: Shape,
}

#[derive(Debug)]
enum Shape {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    /// `true` or `false`: decides nothing worth showing.
    Literal,
    /// Anything else, with the values it reads.
    Leaf(Vec<Read>),
}

impl Node {
    fn of_text(text: String) -> Node {
        let expr = Expression::from_str(&text).ok();
        Node {
            text,
            expr,
            shape: Shape::Leaf(Vec::new()),
        }
    }

    fn of(e: &Expr) -> Node {
        let node = |e: &Expr| Box::new(Node::of(e));
        let shape = match e {
            Expr::BinaryOp {
                op: BinaryOp::And,
                left,
                right,
            } => Shape::And(node(left), node(right)),
            Expr::BinaryOp {
                op: BinaryOp::Or,
                left,
                right,
            } => Shape::Or(node(left), node(right)),
            Expr::UnaryOp {
                op: UnaryOp::Not,
                expr,
            } => Shape::Not(node(expr)),
            Expr::IfThenElse {
                cond,
                then_expr,
                else_expr,
            } => Shape::If(node(cond), node(then_expr), node(else_expr)),
            Expr::Literal(Literal::Bool(_)) => Shape::Literal,
            other => Shape::Leaf(reads_of(other)),
        };
        let text = e.to_string();
        Node {
            expr: Expression::from_str(&text).ok(),
            text,
            shape,
        }
    }

    fn eval(&self, request: &Request, entities: &Entities) -> Option<bool> {
        match eval_expression(request, entities, self.expr.as_ref()?) {
            Ok(EvalResult::Bool(b)) => Some(b),
            _ => None,
        }
    }
}

impl Trace {
    /// The trace of a policy's syntax tree.
    pub fn of(body: &cedar_policy::pst::Template) -> Trace {
        let scope = [
            ("principal", body.principal.to_string()),
            ("action", body.action.to_string()),
            ("resource", body.resource.to_string()),
        ]
        .into_iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(var, c)| Node::of_text(format!("{var} {c}")))
        .collect();
        let clauses = body
            .clauses()
            .iter()
            .map(|clause| match clause {
                Clause::When(e) => (true, Node::of(e)),
                Clause::Unless(e) => (false, Node::of(e)),
            })
            .collect();
        Trace { scope, clauses }
    }
}

/// The values read by the parts of `d` that decided the event, and those parts; `None` when
/// the policy cannot be traced (it errs on the event, or has no syntax tree).
fn trace(
    d: &Detection,
    request: &Request,
    entities: &Entities,
    principal: &PrincipalModel,
) -> Option<(Vec<Read>, Vec<Deciding>)> {
    let body = d.body.as_ref()?;
    let trace = d.trace.get_or_init(|| Trace::of(body));
    let satisfied = match eval_expression(request, entities, &d.condition) {
        Ok(EvalResult::Bool(b)) => b,
        _ => return None,
    };
    let mut parts: Vec<(&Node, bool)> = Vec::new();
    if satisfied {
        parts.extend(trace.scope.iter().map(|s| (s, true)));
        for (when, node) in &trace.clauses {
            deciding(node, *when, request, entities, &mut parts);
        }
    } else if let Some(part) = trace
        .scope
        .iter()
        .find(|s| s.eval(request, entities) == Some(false))
    {
        parts.push((part, false));
    } else {
        // The first clause that fails: a `when` that is false, an `unless` that is true.
        for (when, node) in &trace.clauses {
            match node.eval(request, entities) {
                Some(v) if v != *when => {
                    deciding(node, v, request, entities, &mut parts);
                    break;
                }
                Some(_) => {}
                None => return None,
            }
        }
    }
    let mut reads: Vec<Read> = Vec::new();
    for (node, _) in &parts {
        if let Shape::Leaf(leaf_reads) = &node.shape {
            for r in leaf_reads {
                if !reads.iter().any(|x| x.label == r.label) {
                    reads.push(r.clone());
                }
            }
        }
    }
    let decided = parts
        .into_iter()
        .map(|(node, value)| Deciding {
            actual: (!value)
                .then(|| actual_type(&node.text, principal))
                .flatten(),
            policy: d.id.clone(),
            part: node.text.clone(),
            value,
        })
        .collect();
    Some((reads, decided))
}

/// For a test of the principal's type (`principal is IAMUser`), what it is.
fn actual_type(part: &str, principal: &PrincipalModel) -> Option<String> {
    part.strip_prefix("principal is ")
        .map(|_| format!("principal is {}", principal.kind.type_name()))
}

/// Appends the parts of `node`, whose value was `value`, that made it so (module doc). An
/// operand whose value cannot be found (it errs) stands for itself.
fn deciding<'n>(
    node: &'n Node,
    value: bool,
    request: &Request,
    entities: &Entities,
    out: &mut Vec<(&'n Node, bool)>,
) {
    let eval = |n: &Node| n.eval(request, entities);
    match &node.shape {
        Shape::And(left, right) => {
            if value {
                deciding(left, true, request, entities, out);
                deciding(right, true, request, entities, out);
            } else {
                match eval(left) {
                    Some(false) => deciding(left, false, request, entities, out),
                    Some(true) => deciding(right, false, request, entities, out),
                    None => out.push((node, value)),
                }
            }
        }
        Shape::Or(left, right) => {
            if value {
                // Every operand that holds is a reason on its own: all are shown.
                let (l, r) = (eval(left), eval(right));
                if l == Some(true) {
                    deciding(left, true, request, entities, out);
                }
                if r == Some(true) {
                    deciding(right, true, request, entities, out);
                }
                if l != Some(true) && r != Some(true) {
                    out.push((node, value));
                }
            } else {
                deciding(left, false, request, entities, out);
                deciding(right, false, request, entities, out);
            }
        }
        Shape::Not(inner) => deciding(inner, !value, request, entities, out),
        Shape::If(cond, then, otherwise) => match eval(cond) {
            Some(c) => {
                deciding(cond, c, request, entities, out);
                let taken = if c { then } else { otherwise };
                deciding(taken, value, request, entities, out);
            }
            None => out.push((node, value)),
        },
        Shape::Literal => {}
        Shape::Leaf(_) => out.push((node, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pack::{self, PolicySource};
    use crate::model::aws_ranges::AwsRanges;
    use crate::model::resource::resources_of;

    #[test]
    fn a_string_is_shown_as_cedar_shows_it() {
        for s in [
            "arn:aws:iam::111122223333:user/alice",
            "",
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "\u{1b}[31mred",
            "\u{301}accent first",
            "日本語",
        ] {
            assert_eq!(
                Shown::text(s),
                Shown::of(&EvalResult::String(s.to_string())),
                "{s:?}"
            );
        }
    }

    /// The labels and the decided parts of one policy on one event.
    fn explained(condition: &str, event: &str) -> (Vec<String>, Vec<(String, bool)>) {
        let text = format!(
            "@id(\"x\") @title(\"t\") @severity(\"low\") forbid (principal, action, resource) {condition};"
        );
        let source = PolicySource {
            name: "t.cedar".into(),
            text: text.into(),
        };
        let engine = Engine::new(
            pack::load(vec![source], "t").unwrap(),
            AwsRanges::embedded(),
        )
        .unwrap();
        let view = EventView::parse(event).unwrap();
        let principal = engine.principal(&view).unwrap();
        let resource = resources_of(&view, &principal).unwrap().remove(0);
        let e = engine.explain_values(&[0], &view, &principal, &resource);
        (
            e.values.into_iter().map(|(l, _)| l).collect(),
            e.decided_by
                .into_iter()
                .map(|d| (d.part, d.value))
                .collect(),
        )
    }

    const EVENT: &str = r#"{"eventTime":"2024-05-14T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"eu-west-1","userAgent":"ua","requestParameters":{"a":"1","b":"2"}}"#;

    #[test]
    fn every_true_operand_of_an_or_and_both_of_an_and() {
        let (reads, parts) = explained(
            r#"when { (context has awsRegion && context.awsRegion == "eu-west-1") || context has errorCode || context.eventName == "PutObject" }"#,
            EVENT,
        );
        assert_eq!(
            reads,
            ["awsRegion", "eventName"],
            "not errorCode: {parts:?}"
        );
        assert!(
            parts.contains(&("context has awsRegion".to_string(), true)),
            "{parts:?}"
        );
    }

    #[test]
    fn the_first_false_part_of_a_policy_that_did_not_fire() {
        let (reads, parts) = explained(
            r#"when { context has awsRegion && context.eventName == "Other" && context has errorCode }"#,
            EVENT,
        );
        assert_eq!(reads, ["eventName"]);
        assert_eq!(parts.len(), 1, "{parts:?}");
        assert!(parts[0].0.contains("eventName") && !parts[0].1, "{parts:?}");
        // An unless that holds is what stopped it; a negation is decided by what it negates.
        let (reads, _) = explained(
            r#"when { context.requestParameters.hasTag("a") } unless { context has userAgent && !(context has errorCode) }"#,
            EVENT,
        );
        assert_eq!(reads, ["userAgent", "errorCode"]);
    }

    #[test]
    fn values_become_json() {
        let json = |v: EvalResult| json_of(&v).to_string();
        assert_eq!(json(EvalResult::String("ci".into())), r#""ci""#);
        assert_eq!(json(EvalResult::Long(22)), "22");
        assert_eq!(json(EvalResult::Bool(true)), "true");
        assert_eq!(
            json(EvalResult::ExtensionValue("ip(\"10.0.0.1\")".into())),
            r#""10.0.0.1""#
        );
        assert_eq!(
            json(EvalResult::ExtensionValue(
                "datetime(\"2024-05-14T00:00:00.000Z\")".into()
            )),
            r#""2024-05-14T00:00:00.000Z""#
        );
        assert_eq!(extension_argument("odd"), "odd");
    }
}
