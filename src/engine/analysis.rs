//! Static analysis of a policy: which events it can apply to, and what it reads.
//!
//! From Cedar's public syntax tree (PST) we take the scope (to index the policy by action and
//! principal type), the parts of the request the conditions read (so the model builds only those),
//! and the expressions whose values explain a finding.

use crate::model::PrincipalKind;
use crate::model::context::{Attr, AttrSet};
use crate::model::fields::{Field, FieldNeed};
use cedar_policy::Policy;
use cedar_policy::pst::{
    self, ActionConstraint, BinaryOp, EntityOrSlot, Expr, Literal, PrincipalConstraint,
    ResourceConstraint, Var,
};
use std::collections::BTreeSet;

/// An action the scope names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKey {
    /// `Action::"s3:PutObject"`.
    Exact { service: String, name: String },
    /// `Action::"s3"`: every action of the service.
    Service(String),
    /// Any service's action of this name: an unscoped policy whose condition requires
    /// `context.eventName` ([`Analysis::index`]).
    Name(String),
}

impl ActionKey {
    fn of(id: &str) -> ActionKey {
        match id.split_once(':') {
            Some((service, name)) => ActionKey::Exact {
                service: service.to_string(),
                name: name.to_string(),
            },
            None => ActionKey::Service(id.to_string()),
        }
    }
}

/// What the model must build for a set of policies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Needs {
    pub context: AttrSet,
    pub fields: [FieldNeed; 4],
    /// A request per resource of the event, with the resource entities.
    pub resource: bool,
    /// The action entity in its service group (for `action in Action::"s3"`).
    pub action_entity: bool,
    /// `resource.inventoryTakenAt`: a `datetime` that costs a parse per resource, so the
    /// resource entity has it only when a policy reads it.
    pub resource_taken_at: bool,
    /// The resource is read otherwise than by attributes and tags with literal names (its
    /// ancestors, its type, the entity itself).
    pub resource_other: bool,
    /// The attributes read on the resource (`resource.accountInOrganization`).
    pub resource_attrs: NameSet,
    /// The tag keys read on the resource (`resource.hasTag("service")`). When the resource is
    /// read only through these and `resource_attrs`, a decision depends on the resource only
    /// through their values.
    pub resource_tags: NameSet,
    /// Per free-form field (in the order of [`Field::ALL`]): its typed views or its own kind and
    /// size are read (`context.requestParameters.numbers`), so its entity carries them.
    pub typed: [bool; 4],
    /// `context.element` is read: the policy is evaluated per element of its `@each` lists.
    pub element: bool,
}

/// A set of names, kept sorted in a vector: read on every event, where walking a `BTreeSet`'s
/// nodes costs more than the few names it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NameSet(Vec<String>);

impl NameSet {
    pub fn insert(&mut self, name: String) {
        if let Err(at) = self.0.binary_search(&name) {
            self.0.insert(at, name);
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names in order.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
}

impl Extend<String> for NameSet {
    fn extend<I: IntoIterator<Item = String>>(&mut self, names: I) {
        for name in names {
            self.insert(name);
        }
    }
}

impl<'a> IntoIterator for &'a NameSet {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Needs {
    /// Everything: what an explanation or `explain` builds.
    pub fn everything() -> Needs {
        Needs {
            context: AttrSet::all(),
            fields: std::array::from_fn(|_| FieldNeed::All),
            resource: true,
            action_entity: true,
            resource_taken_at: true,
            resource_other: true,
            resource_attrs: NameSet::default(),
            resource_tags: NameSet::default(),
            typed: [true; 4],
            element: false,
        }
    }

    /// The union of two needs.
    pub fn merge(&mut self, other: &Needs) {
        self.context = self.context.union(other.context);
        for (mine, theirs) in self.fields.iter_mut().zip(&other.fields) {
            mine.merge(theirs);
        }
        self.resource |= other.resource;
        self.action_entity |= other.action_entity;
        self.resource_taken_at |= other.resource_taken_at;
        self.resource_other |= other.resource_other;
        self.resource_attrs
            .extend(other.resource_attrs.iter().cloned());
        self.resource_tags
            .extend(other.resource_tags.iter().cloned());
        for (mine, theirs) in self.typed.iter_mut().zip(other.typed) {
            *mine |= theirs;
        }
        self.element |= other.element;
    }

    /// Whether a decision that reads this is a function of the principal, the action, a
    /// context that repeats ([`AttrSet::cacheable`]), the values of the resource's attributes
    /// and tags with literal names, and the values of the free-form fields' tags with literal
    /// keys ([`crate::model::fields::key_values`]): then requests alike in those are decided once.
    pub fn memoizable(&self) -> bool {
        !self.resource_other
            && !self.element
            && !self.typed.contains(&true)
            && self.context.cacheable()
            && !Field::ALL
                .iter()
                .any(|f| matches!(self.field(*f), FieldNeed::All))
    }

    /// The need for one field.
    #[allow(clippy::indexing_slicing)] // one entry per variant, in declaration order
    pub fn field(&self, field: Field) -> &FieldNeed {
        &self.fields[field as usize]
    }

    #[allow(clippy::indexing_slicing)] // one entry per variant, in declaration order
    fn field_mut(&mut self, field: Field) -> &mut FieldNeed {
        &mut self.fields[field as usize]
    }

    /// Whether a field's typed views (and own kind and size) are read.
    #[allow(clippy::indexing_slicing)] // one entry per variant, in declaration order
    pub fn typed(&self, field: Field) -> bool {
        self.typed[field as usize]
    }

    #[allow(clippy::indexing_slicing)] // one entry per variant, in declaration order
    fn need_typed(&mut self, field: Field) {
        self.need_field(field);
        self.typed[field as usize] = true;
    }

    fn need_field(&mut self, field: Field) {
        self.context.insert(field_attr(field));
        if !self.field(field).is_needed() {
            *self.field_mut(field) = FieldNeed::Keys(BTreeSet::new());
        }
    }
}

fn field_attr(field: Field) -> Attr {
    match field {
        Field::RequestParameters => Attr::RequestParameters,
        Field::ResponseElements => Attr::ResponseElements,
        Field::AdditionalEventData => Attr::AdditionalEventData,
        Field::ServiceEventDetails => Attr::ServiceEventDetails,
    }
}

/// A value a policy reads, shown in a finding's explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// How it is shown: `requestParameters["x-amz-acl"]`, `principal.userName`, `errorCode`.
    pub label: String,
    /// The Cedar expression that yields it.
    pub expr: String,
    /// The entity whose inventory facts it is (`principal`, `resource`, `context.source`,
    /// `context.vpcEndpoint`), so that an explanation can tell when they were taken.
    pub inventory: Option<&'static str>,
}

/// The analysis of one policy.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// `None`: the scope does not constrain the action.
    pub actions: Option<BTreeSet<ActionKey>>,
    /// For a policy whose scope does not constrain the action, what its condition requires of
    /// the event's source and name (`context.eventSource`, `context.eventName`): the index files
    /// it under those as under a scope. `None`: it requires neither.
    pub index: Option<BTreeSet<ActionKey>>,
    /// `None`: any principal type.
    pub principal_kinds: Option<BTreeSet<PrincipalKind>>,
    pub needs: Needs,
    pub reads: Vec<Read>,
    /// Every `Action::"..."` the policy names, for the schema.
    pub action_ids: BTreeSet<String>,
    /// The policy's whole condition, scope included, as one Cedar expression: the policy is
    /// satisfied exactly when it evaluates to `true`.
    pub condition: String,
    /// [`Analysis::condition`] without the action's scope when the index decides it (`==`, `in`
    /// a list or a service): what the engine evaluates on the candidates the index selects for
    /// the event's action. Cedar builds a scope's list of actions as a set on every evaluation,
    /// the dearest part of a cheap condition.
    pub indexed_condition: String,
    /// The leading conjuncts of the first `when` clause that read nothing but the principal
    /// (`principal has inInventory && !principal.inInventory`), as one expression. Cedar
    /// evaluates them first and stops at the first false one, so when the guard is false for a
    /// principal the policy cannot be satisfied by any of its events, and cannot error on them:
    /// the engine decides the guard once per principal and skips the policy where it is false.
    pub principal_guard: Option<String>,
    /// What the condition requires of an event, tested on its plain fields before any Cedar
    /// work ([`super::prefilter`]).
    pub prefilter: super::prefilter::Formula,
    /// The prefilter's formula is the policy's decision wherever it has a value
    /// ([`super::prefilter::is_exact`]).
    pub exact: bool,
}

/// Analyses a static policy.
pub fn analyse(policy: &Policy) -> Result<Analysis, String> {
    let pst = policy.to_pst().map_err(|e| e.to_string())?;
    let body = pst.body();
    let mut a = Analysis::default();
    let mut reads = Vec::new();

    a.actions = match &body.action {
        ActionConstraint::Any => None,
        ActionConstraint::Eq(uid) => Some(BTreeSet::from([ActionKey::of(&uid.eid)])),
        ActionConstraint::In(uids) => Some(uids.iter().map(|u| ActionKey::of(&u.eid)).collect()),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    if let ActionConstraint::Eq(uid) = &body.action {
        note_action(&mut a, &uid.eid);
    }
    if let ActionConstraint::In(uids) = &body.action {
        for u in uids {
            note_action(&mut a, &u.eid);
        }
    }

    a.principal_kinds = match &body.principal {
        PrincipalConstraint::Is(ty) | PrincipalConstraint::IsIn(ty, _) => Some(
            PrincipalKind::from_type_name(&ty.to_string())
                .into_iter()
                .collect(),
        ),
        PrincipalConstraint::Eq(EntityOrSlot::Entity(uid)) => Some(
            PrincipalKind::from_type_name(&uid.ty.to_string())
                .into_iter()
                .collect(),
        ),
        _ => None,
    };
    if !matches!(body.resource, ResourceConstraint::Any) {
        a.needs.resource = true;
        a.needs.resource_other = true;
    }
    for clause in body.clauses() {
        let (pst::Clause::When(e) | pst::Clause::Unless(e)) = clause;
        walk(e, &mut a, &mut reads);
    }
    a.reads = reads;
    a.condition = condition(body, true)?;
    a.indexed_condition = condition(body, a.actions.is_none())?;
    a.principal_guard = principal_guard(body);
    a.prefilter = super::prefilter::of_policy(body);
    a.exact = super::prefilter::is_exact(body);
    // What the condition requires of the event's name, source and principal type indexes the
    // policy as its scope would: `context.eventName == "ConsoleLogin"` in an unscoped policy
    // makes it a candidate for that event only.
    if let Some(kinds) = super::prefilter::required_kinds(&a.prefilter) {
        a.principal_kinds = Some(match a.principal_kinds.take() {
            Some(scope) => scope.intersection(&kinds).copied().collect(),
            None => kinds,
        });
    }
    if a.actions.is_none() {
        let names = super::prefilter::required_values(&a.prefilter, Attr::EventName);
        let sources = super::prefilter::required_values(&a.prefilter, Attr::EventSource);
        let services: Option<BTreeSet<String>> = sources.map(|s| {
            s.iter()
                .map(|source| crate::event::service_of(source).to_string())
                .collect()
        });
        a.index = match (services, names) {
            (Some(services), Some(names)) => Some(
                services
                    .iter()
                    .flat_map(|s| {
                        names.iter().map(move |n| ActionKey::Exact {
                            service: s.clone(),
                            name: n.clone(),
                        })
                    })
                    .collect(),
            ),
            (Some(services), None) => Some(services.into_iter().map(ActionKey::Service).collect()),
            (None, Some(names)) => Some(names.into_iter().map(ActionKey::Name).collect()),
            (None, None) => None,
        };
    }
    Ok(a)
}

/// The values an expression reads, as an explanation shows them, in the order it reads them.
pub fn reads_of(e: &Expr) -> Vec<Read> {
    let mut scratch = Analysis::default();
    let mut reads = Vec::new();
    walk(e, &mut scratch, &mut reads);
    reads
}

/// See [`Analysis::principal_guard`].
fn principal_guard(body: &pst::Template) -> Option<String> {
    let first = body.clauses().first()?;
    let pst::Clause::When(e) = first else {
        return None;
    };
    let mut conjuncts = Vec::new();
    flatten_and(e.as_ref(), &mut conjuncts);
    let guard: Vec<String> = conjuncts
        .iter()
        .take_while(|c| principal_only(c))
        .map(|c| format!("({c})"))
        .collect();
    (!guard.is_empty()).then(|| guard.join(" && "))
}

/// `a && b && c` as `[a, b, c]`, in evaluation order.
fn flatten_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp {
            op: BinaryOp::And,
            left,
            right,
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        other => out.push(other),
    }
}

/// Whether an expression reads nothing but the principal entity itself: its attributes, tags
/// and ancestors (all in the principal's own entities), and literals.
fn principal_only(e: &Expr) -> bool {
    let direct = |x: &Expr| matches!(x, Expr::Var(Var::Principal));
    match e {
        Expr::Literal(_) => true,
        Expr::Var(Var::Principal) => true,
        Expr::GetAttr { expr, .. } | Expr::HasAttr { expr, .. } => direct(expr),
        Expr::BinaryOp {
            op: BinaryOp::GetTag | BinaryOp::HasTag,
            left,
            right,
        } => direct(left) && principal_only(right),
        Expr::BinaryOp { left, right, .. } => principal_only(left) && principal_only(right),
        Expr::UnaryOp { expr, .. } | Expr::Like { expr, .. } => principal_only(expr),
        Expr::Is { expr, in_expr, .. } => {
            principal_only(expr) && in_expr.as_ref().is_none_or(|i| principal_only(i))
        }
        Expr::IfThenElse {
            cond,
            then_expr,
            else_expr,
        } => principal_only(cond) && principal_only(then_expr) && principal_only(else_expr),
        Expr::Set(items) => items.iter().all(|i| principal_only(i)),
        Expr::Record(fields) => fields.values().all(|v| principal_only(v)),
        _ => false,
    }
}

/// `scope && when && !unless`, Cedar's meaning of a policy, as an expression.
/// The scope and clauses as one expression; without the action's scope unless `with_action`.
fn condition(body: &pst::Template, with_action: bool) -> Result<String, String> {
    let mut parts = Vec::new();
    let scope = [
        (
            "principal",
            body.principal.to_string(),
            body.principal.has_slot(),
        ),
        ("action", body.action.to_string(), false),
        (
            "resource",
            body.resource.to_string(),
            body.resource.has_slot(),
        ),
    ];
    for (var, constraint, slot) in scope {
        if slot {
            return Err("templates (with ?principal or ?resource) are not supported".to_string());
        }
        if !constraint.is_empty() && (with_action || var != "action") {
            parts.push(format!("({var} {constraint})"));
        }
    }
    for clause in body.clauses() {
        match clause {
            pst::Clause::When(e) => parts.push(format!("({e})")),
            pst::Clause::Unless(e) => parts.push(format!("!({e})")),
        }
    }
    Ok(if parts.is_empty() {
        "true".to_string()
    } else {
        parts.join(" && ")
    })
}

fn note_action(a: &mut Analysis, id: &str) {
    if !id.contains(':') {
        a.needs.action_entity = true;
    }
    a.action_ids.insert(id.to_string());
}

/// Records a read once, in the order the policy reads it.
fn read(reads: &mut Vec<Read>, label: String, expr: String) {
    read_fact(reads, label, expr, None);
}

/// Records a read that may come from the inventory.
fn read_fact(reads: &mut Vec<Read>, label: String, expr: String, inventory: Option<&'static str>) {
    if !reads.iter().any(|r| r.label == label) {
        reads.push(Read {
            label,
            expr,
            inventory,
        });
    }
}

/// The inventory root of `principal.<attr>` or `resource.<attr>`, if the attribute comes from
/// the inventory.
fn attr_fact(var: &Var, attr: &str) -> Option<&'static str> {
    match var {
        Var::Principal if crate::model::principal::INVENTORY_ATTRIBUTES.contains(&attr) => {
            Some("principal")
        }
        Var::Resource if crate::model::resource::INVENTORY_ATTRIBUTES.contains(&attr) => {
            Some("resource")
        }
        _ => None,
    }
}

/// The inventory root of a context entity attribute (`context.source`, `context.vpcEndpoint`).
fn context_fact(record: &str, attr: &str) -> Option<&'static str> {
    match (record, attr) {
        ("source", _) => Some("context.source"),
        ("vpcEndpoint", "vpcEndpointId" | "accountId") => None,
        ("vpcEndpoint", _) => Some("context.vpcEndpoint"),
        _ => None,
    }
}

/// What a tag is read on: `principal`, `resource`, `context.source`, `context.vpcEndpoint`.
fn tag_owner(e: &Expr) -> Option<(&'static str, Option<Attr>)> {
    match e {
        Expr::Var(Var::Principal) => Some(("principal", None)),
        Expr::Var(Var::Resource) => Some(("resource", None)),
        Expr::GetAttr { expr, attr } if matches!(expr.as_ref(), Expr::Var(Var::Context)) => {
            match attr.as_str() {
                "source" => Some(("context.source", Some(Attr::Source))),
                "vpcEndpoint" => Some(("context.vpcEndpoint", Some(Attr::VpcEndpoint))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `context.<field>` as a free-form field, if `e` is one.
fn field_of(e: &Expr) -> Option<Field> {
    match e {
        Expr::GetAttr { expr, attr } if matches!(expr.as_ref(), Expr::Var(Var::Context)) => {
            Field::from_name(attr)
        }
        _ => None,
    }
}

/// `context.<record>.<attr>` (a record such as `tlsDetails`, or an entity such as `source`).
fn context_record_read(a: &mut Analysis, reads: &mut Vec<Read>, record: &str, attr: &str) {
    if let Some(at) = Attr::from_name(record) {
        a.needs.context.insert(at);
    }
    read_fact(
        reads,
        format!("{record}.{attr}"),
        format!("context.{record}.{attr}"),
        context_fact(record, attr),
    );
    // A policy document's grant is shown with where it is and which statements make it.
    if record == "policyDocument" {
        let with: &[&str] = match attr {
            "public" => &["publicStatements", "parameters"],
            _ => &["parameters"],
        };
        for more in with {
            read(
                reads,
                format!("policyDocument.{more}"),
                format!("context.policyDocument.{more}"),
            );
        }
    }
}

/// The attributes an expression reads from the context, outermost first:
/// `context.element.parent.numbers` is `["element", "parent", "numbers"]`.
fn context_chain(e: &Expr) -> Option<Vec<&str>> {
    match e {
        Expr::GetAttr { expr, attr } => match expr.as_ref() {
            Expr::Var(Var::Context) => Some(vec![attr.as_str()]),
            inner => {
                let mut chain = context_chain(inner)?;
                chain.push(attr.as_str());
                Some(chain)
            }
        },
        _ => None,
    }
}

/// Reads of a payload's typed views (`context.requestParameters.numbers.getTag("fromPort")`,
/// `context.requestParameters.kind`) and of `context.element`: what they need, and the values
/// an explanation shows. `false` when `e` is none of these.
fn typed_or_element(e: &Expr, a: &mut Analysis, reads: &mut Vec<Read>) -> bool {
    // What is read: a tag (with its key) of an entity of the chain, or the chain's attribute.
    let (chain, key) = match e {
        Expr::BinaryOp {
            op: BinaryOp::GetTag | BinaryOp::HasTag,
            left,
            right,
        } => (context_chain(left), Some(right.as_ref())),
        Expr::GetAttr { .. } => (context_chain(e), None),
        _ => return false,
    };
    let Some(chain) = chain else {
        return false;
    };
    let Some(&root) = chain.first() else {
        return false;
    };
    let field = Field::from_name(root);
    if root == "element" {
        a.needs.element = true;
        a.needs.context.insert(Attr::Element);
    } else if let Some(field) = field {
        // `context.requestParameters.getTag(...)` and `context.requestParameters` are the string
        // tags, read as before; a typed view or the payload's kind or size is typed.
        match (chain.get(1), key) {
            (Some(attr), _) if crate::model::typed::is_typed_attr(attr) => {
                a.needs.need_typed(field)
            }
            _ => return false,
        }
    } else {
        return false;
    }
    let path = chain.join(".");
    match key {
        Some(Expr::Literal(Literal::String(key))) => {
            let quoted = serde_json::to_string(key.as_str()).unwrap_or_default();
            read(
                reads,
                format!("{path}[{quoted}]"),
                format!("context.{path}.getTag({quoted})"),
            );
        }
        Some(other) => walk(other, a, reads),
        // An attribute with a value worth showing (not an entity such as `parent` or a view).
        None => {
            let last = chain.last().copied().unwrap_or_default();
            let scalar = matches!(last, "path" | "index" | "text" | "kind" | "size");
            if scalar {
                read(reads, path.clone(), format!("context.{path}"));
            }
        }
    }
    true
}

fn walk(e: &Expr, a: &mut Analysis, reads: &mut Vec<Read>) {
    if typed_or_element(e, a, reads) {
        return;
    }
    match e {
        Expr::Literal(Literal::EntityUID(uid)) => {
            if uid.ty.to_string() == "Action" {
                note_action(a, &uid.eid);
            }
        }
        Expr::Literal(_) | Expr::Slot(_) | Expr::Unknown { .. } => {}
        Expr::Var(Var::Context) => {
            // The whole context is used as a value: build all of it.
            a.needs.context = AttrSet::all();
            for f in Field::ALL {
                a.needs.need_field(f);
            }
        }
        Expr::Var(Var::Resource) => {
            a.needs.resource = true;
            a.needs.resource_other = true;
        }
        Expr::Var(Var::Action) => a.needs.action_entity = true,
        Expr::Var(_) => {}
        Expr::GetAttr { expr, attr } => match expr.as_ref() {
            Expr::Var(Var::Context) => {
                if let Some(at) = Attr::from_name(attr) {
                    a.needs.context.insert(at);
                    if let Some(f) = at.field() {
                        a.needs.need_field(f);
                    } else {
                        read(reads, attr.to_string(), format!("context.{attr}"));
                    }
                }
            }
            Expr::GetAttr {
                expr: inner,
                attr: record,
            } if matches!(inner.as_ref(), Expr::Var(Var::Context)) => {
                context_record_read(a, reads, record, attr);
            }
            Expr::Var(Var::Principal) => {
                read_fact(
                    reads,
                    format!("principal.{attr}"),
                    format!("principal.{attr}"),
                    attr_fact(&Var::Principal, attr),
                );
            }
            Expr::Var(Var::Resource) => {
                a.needs.resource = true;
                a.needs.resource_attrs.insert(attr.to_string());
                a.needs.resource_taken_at |= attr == "inventoryTakenAt";
                read_fact(
                    reads,
                    format!("resource.{attr}"),
                    format!("resource.{attr}"),
                    attr_fact(&Var::Resource, attr),
                );
            }
            other => walk(other, a, reads),
        },
        Expr::HasAttr { expr, attrs } => match expr.as_ref() {
            Expr::Var(Var::Context) => {
                let first = attrs.first();
                if let Some(at) = Attr::from_name(first) {
                    a.needs.context.insert(at);
                    // The facts' presence is shown by the facts read of them, not as an entity.
                    let entity = matches!(at, Attr::PolicyDocument | Attr::Sharing | Attr::Copy);
                    if at.field().is_none() && !(entity && attrs.len() == 1) {
                        let path: Vec<&str> = attrs.iter().map(|s| s.as_str()).collect();
                        let path = path.join(".");
                        read(reads, path.clone(), format!("context.{path}"));
                    }
                }
            }
            Expr::Var(Var::Principal) => {
                read_fact(
                    reads,
                    format!("principal.{}", attrs.first()),
                    format!("principal.{}", attrs.first()),
                    attr_fact(&Var::Principal, attrs.first()),
                );
            }
            Expr::Var(Var::Resource) => {
                a.needs.resource = true;
                a.needs.resource_attrs.insert(attrs.first().to_string());
                a.needs.resource_taken_at |= attrs.first() == "inventoryTakenAt";
                read_fact(
                    reads,
                    format!("resource.{}", attrs.first()),
                    format!("resource.{}", attrs.first()),
                    attr_fact(&Var::Resource, attrs.first()),
                );
            }
            Expr::GetAttr {
                expr: inner,
                attr: record,
            } if matches!(inner.as_ref(), Expr::Var(Var::Context)) => {
                context_record_read(a, reads, record, attrs.first());
            }
            other => walk(other, a, reads),
        },
        Expr::BinaryOp { op, left, right } => {
            if let (BinaryOp::GetTag | BinaryOp::HasTag, Some(field)) = (op, field_of(left)) {
                a.needs.need_field(field);
                match right.as_ref() {
                    Expr::Literal(Literal::String(key)) => {
                        if let FieldNeed::Keys(keys) = a.needs.field_mut(field) {
                            keys.insert(key.to_string());
                        }
                        let quoted = serde_json::to_string(key.as_str()).unwrap_or_default();
                        read(
                            reads,
                            format!("{}[{quoted}]", field.name()),
                            format!("context.{}.getTag({quoted})", field.name()),
                        );
                    }
                    other => {
                        *a.needs.field_mut(field) = FieldNeed::All;
                        walk(other, a, reads);
                    }
                }
                return;
            }
            if let (BinaryOp::GetTag | BinaryOp::HasTag, Some((owner, attr))) =
                (op, tag_owner(left))
            {
                match (attr, owner, right.as_ref()) {
                    (Some(at), _, _) => a.needs.context.insert(at),
                    (None, "resource", Expr::Literal(Literal::String(key))) => {
                        a.needs.resource = true;
                        a.needs.resource_tags.insert(key.to_string());
                    }
                    (None, _, _) => walk(left, a, reads),
                }
                if let Expr::Literal(Literal::String(key)) = right.as_ref() {
                    let quoted = serde_json::to_string(key.as_str()).unwrap_or_default();
                    let label = owner.strip_prefix("context.").unwrap_or(owner);
                    read_fact(
                        reads,
                        format!("{label}.getTag({quoted})"),
                        format!("{owner}.getTag({quoted})"),
                        Some(owner),
                    );
                } else {
                    walk(right, a, reads);
                }
                return;
            }
            walk(left, a, reads);
            walk(right, a, reads);
        }
        Expr::UnaryOp { expr, .. } => walk(expr, a, reads),
        Expr::Like { expr, .. } => walk(expr, a, reads),
        Expr::Is { expr, in_expr, .. } => {
            walk(expr, a, reads);
            if let Some(i) = in_expr {
                walk(i, a, reads);
            }
        }
        Expr::IfThenElse {
            cond,
            then_expr,
            else_expr,
        } => {
            walk(cond, a, reads);
            walk(then_expr, a, reads);
            walk(else_expr, a, reads);
        }
        Expr::Set(items) => {
            for i in items {
                walk(i, a, reads);
            }
        }
        Expr::Record(fields) => {
            for v in fields.values() {
                walk(v, a, reads);
            }
        }
        // A construct this analysis does not know: assume it may read anything.
        _ => a.needs = Needs::everything(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn name_sets_hold_each_name_once_in_order() {
        let mut names = NameSet::default();
        assert!(names.is_empty());
        names.extend(["service", "owner", "service", "env"].map(String::from));
        names.insert("owner".to_string());
        let listed: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(listed, ["env", "owner", "service"]);
        assert!(names.contains("owner") && !names.contains("team"));
    }

    fn analysis(src: &str) -> Analysis {
        analyse(&Policy::from_str(src).unwrap()).unwrap()
    }

    #[test]
    fn scope_becomes_index_keys() {
        let a = analysis(
            r#"forbid (principal is Root, action in [Action::"s3:PutObject", Action::"iam"], resource);"#,
        );
        assert_eq!(
            a.actions.unwrap().into_iter().collect::<Vec<_>>(),
            vec![
                ActionKey::Exact {
                    service: "s3".into(),
                    name: "PutObject".into()
                },
                ActionKey::Service("iam".into())
            ]
        );
        assert_eq!(
            a.principal_kinds,
            Some(BTreeSet::from([PrincipalKind::Root]))
        );
        assert_eq!(
            a.condition,
            r#"(principal is Root) && (action in [Action::"s3:PutObject", Action::"iam"])"#
        );
        assert!(
            a.needs.action_entity,
            "a service group needs the action's parent"
        );
        assert!(!a.needs.resource);
        assert!(a.needs.context.is_empty());
    }

    #[test]
    fn conditions_become_needs_and_reads() {
        let a = analysis(
            r#"forbid (principal, action == Action::"s3:PutObject", resource)
            when { context.requestParameters.hasTag("x-amz-acl") &&
                   context.requestParameters.getTag("x-amz-acl") like "public-*" &&
                   principal.userName == resource.name }
            unless { context has errorCode || context.tlsDetails.tlsVersion == "TLSv1" };"#,
        );
        assert!(a.actions.is_some());
        assert!(!a.needs.action_entity);
        assert!(a.needs.resource);
        assert_eq!(
            a.needs.field(Field::RequestParameters),
            &FieldNeed::Keys(BTreeSet::from(["x-amz-acl".to_string()]))
        );
        assert_eq!(a.needs.field(Field::ResponseElements), &FieldNeed::Nothing);
        for attr in [Attr::RequestParameters, Attr::ErrorCode, Attr::TlsDetails] {
            assert!(a.needs.context.contains(attr), "{attr:?}");
        }
        assert!(!a.needs.context.contains(Attr::EventTime));
        let labels: Vec<&str> = a.reads.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "requestParameters[\"x-amz-acl\"]",
                "principal.userName",
                "resource.name",
                "errorCode",
                "tlsDetails.tlsVersion"
            ]
        );
    }

    #[test]
    fn principal_guards_are_leading_principal_only_conjuncts() {
        let guard = |when: &str| {
            analysis(&format!(
                "@id(\"x\") forbid (principal, action, resource) when {{ {when} }};"
            ))
            .principal_guard
        };
        assert_eq!(
            guard("principal has inInventory && !principal.inInventory").as_deref(),
            Some("(principal has inInventory) && (!principal.inInventory)")
        );
        assert_eq!(
            guard("principal.hasTag(\"service\") && resource.hasTag(\"service\") && principal.hasTag(\"x\")")
                .as_deref(),
            Some("(principal.hasTag(\"service\"))"),
            "only the leading ones: later ones may never be evaluated"
        );
        assert_eq!(
            guard("principal in Group::\"g\" && context.readOnly").as_deref(),
            Some("(principal in Group::\"g\")")
        );
        assert_eq!(guard("context.readOnly && principal.longTermKey"), None);
        assert_eq!(
            guard("principal.instance.vpcId == \"v\""),
            None,
            "another entity"
        );
        assert_eq!(guard("principal == resource"), None);
        let unless_first = analysis(
            "@id(\"x\") forbid (principal, action, resource) unless { principal.longTermKey } when { principal.longTermKey };",
        );
        assert_eq!(unless_first.principal_guard, None);
    }

    #[test]
    fn computed_tag_keys_need_every_tag() {
        let a = analysis(
            r#"forbid (principal, action, resource) when { context.requestParameters.hasTag(principal.userName) };"#,
        );
        assert_eq!(a.needs.field(Field::RequestParameters), &FieldNeed::All);
        assert!(a.actions.is_none());
        assert!(a.principal_kinds.is_none());
    }
}
