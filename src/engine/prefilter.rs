//! The prefilter: what a policy's condition requires of an event, tested on the event's plain
//! fields before any Cedar work.
//!
//! The index selects candidates by action, principal type and (where a formula requires it,
//! [`Formula::error_code`]) whether the call failed; a condition can require more:
//! `principal has instanceId`, `unless { context has errorCode }`, `context.eventName ==
//! "ConsoleLogin"`, `!context.sourceInAws`, and tags of the event's fields read by literal keys,
//! `context.requestParameters.hasTag("secretId")`, `getTag("x-amz-acl") == "public-read"`
//! (read from the field's JSON as the model makes its tags: [`crate::model::fields::lookup`]).
//! From each policy's condition we derive a formula of such tests that holds whenever Cedar
//! would find the policy satisfied **or fail on it**, and evaluate it on the event's fields and
//! the principal's plain facts ([`Facts`]): a candidate whose formula is false is dropped, and
//! an event none of whose candidates survive costs no principal entity, no context, no entity
//! store and no Cedar call.
//!
//! Soundness: for an expression `E`, `holds(E)` is necessary for "E is true or E errors" and
//! `fails(E)` for "E is false or E errors", so dropping never hides a finding nor a rule error:
//! - a test (below) never errors and is two-valued on an event: `holds` is the test, `fails` its
//!   negation;
//! - `holds(A && B)` is `holds(A) ∧ holds(B)`, but only `holds(A)` when `A` may error (an error
//!   in `A` ends the evaluation); `fails(A && B)` is `fails(A) ∨ fails(B)`;
//! - `holds(A || B)` is `holds(A) ∨ holds(B)`; `fails(A || B)` is `fails(A) ∧ fails(B)`, but only
//!   `fails(A)` when `A` may error;
//! - `holds(!A)` is `fails(A)`, and `fails(!A)` is `holds(A)`;
//! - anything else holds and fails alike (it tells nothing).
//!
//! **Exact formulas.** Where a policy's scope is what the index and the formula decide and its
//! clauses are tests joined by `&&`, `||` and `!` ([`is_exact`]), the formula is not only
//! necessary but is the policy's decision wherever its tests tell: an event whose candidates
//! are all such forbids, all satisfied, is flagged without a request (no principal entity, no
//! context, no Cedar call), which is most of what correlations' per-event parts match.
//!
//! An expression may error when it holds arithmetic or datetime arithmetic (overflow); attribute
//! and tag reads cannot, since strict validation requires their guards. A test on what only the
//! inventory knows is unknown when an inventory is loaded (and absent, so false, without one);
//! an unknown test never drops anything. `tests/scan/prefilter.rs` holds the whole engine to
//! Cedar's own authorizer on generated events and policies.

use crate::model::context::Attr;
use crate::model::fields::{self, Field};
use crate::model::principal::{Facts, Flag, Str};
use crate::model::{EventView, PrincipalKind};
use cedar_policy::pst::{self, BinaryOp, Expr, Literal, PatternElem, UnaryOp, Var};
use std::collections::BTreeSet;

/// A test on an event that never errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    /// `context has <attr>`.
    ContextHas(Attr),
    /// `context.<attr> == "v"`: present and equal.
    ContextEquals(Attr, Box<str>),
    /// `["a", "b"].contains(context.<attr>)`: present and one of them.
    ContextIn(Attr, Vec<Box<str>>),
    /// `context.<attr> like "p*"`: present and matching.
    ContextLike(Attr, Glob),
    /// `context.<attr>` for a boolean attribute: present and true.
    ContextTrue(Attr),
    /// `principal is T`, or any of several.
    PrincipalIs(BTreeSet<PrincipalKind>),
    /// `principal has <attr>`.
    PrincipalHas(Str),
    /// `principal.<attr> == "v"`.
    PrincipalEquals(Str, Box<str>),
    /// `["a", "b"].contains(principal.<attr>)`.
    PrincipalIn(Str, Vec<Box<str>>),
    /// `principal.<attr> like "p*"`.
    PrincipalLike(Str, Glob),
    /// `principal.<flag>`.
    PrincipalFlag(Flag),
    /// `context.<field>.hasTag("k")`: the field has a value (not null) at `k`.
    TagHas(Field, Box<str>),
    /// `context.<field>.getTag("k") == "v"`: present and equal.
    TagEquals(Field, Box<str>, Box<str>),
    /// `["a", "b"].contains(context.<field>.getTag("k"))`: present and one of them.
    TagIn(Field, Box<str>, Vec<Box<str>>),
    /// `context.<field>.getTag("k") like "p*"`: present and matching.
    TagLike(Field, Box<str>, Glob),
    /// A fact only the inventory gives: `principal has <attr>` for an inventory attribute,
    /// `principal.hasTag(k)`, `resource.hasTag(k)`, `resource has accountInOrganization`.
    InventoryFact,
    /// `context has source`: the inventory knows addresses and the source is one.
    SourceKnown,
}

/// What must hold of an event for a policy to be satisfied or to fail on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Formula {
    /// A test, or its negation (`holds == false`).
    Test { test: Test, holds: bool },
    /// All of them (none: always).
    All(Vec<Formula>),
    /// One of them (none: never).
    AnyOf(Vec<Formula>),
}

impl Default for Formula {
    fn default() -> Formula {
        Formula::always()
    }
}

impl Formula {
    /// Always: tells nothing.
    pub fn always() -> Formula {
        Formula::All(Vec::new())
    }

    /// Never.
    pub fn never() -> Formula {
        Formula::AnyOf(Vec::new())
    }

    /// Whether it requires the event to have failed (`Some(true)`: `context has errorCode`),
    /// or not to have (`Some(false)`), or neither: the index keeps a rule of either kind out of
    /// the other events' candidates (most events succeed; a rule about denied calls, scoped to
    /// any action, would otherwise be a candidate of every one).
    pub fn error_code(&self) -> Option<bool> {
        match self {
            Formula::Test {
                test: Test::ContextHas(Attr::ErrorCode),
                holds,
            } => Some(*holds),
            Formula::Test {
                test:
                    Test::ContextEquals(Attr::ErrorCode, _)
                    | Test::ContextIn(Attr::ErrorCode, _)
                    | Test::ContextLike(Attr::ErrorCode, _),
                holds: true,
            } => Some(true),
            Formula::Test { .. } => None,
            Formula::All(parts) => parts.iter().find_map(Formula::error_code),
            Formula::AnyOf(parts) => {
                let first = parts.first()?.error_code()?;
                parts
                    .iter()
                    .all(|p| p.error_code() == Some(first))
                    .then_some(first)
            }
        }
    }

    /// Whether it tells nothing.
    pub fn is_always(&self) -> bool {
        matches!(self, Formula::All(v) if v.is_empty())
    }

    fn and(a: Formula, b: Formula) -> Formula {
        let mut parts = Vec::new();
        for f in [a, b] {
            match f {
                Formula::All(v) => parts.extend(v),
                other => parts.push(other),
            }
        }
        if parts
            .iter()
            .any(|p| matches!(p, Formula::AnyOf(v) if v.is_empty()))
        {
            return Formula::never();
        }
        match parts.len() {
            1 => parts.pop().unwrap_or_else(Formula::always),
            _ => Formula::All(parts),
        }
    }

    fn or(a: Formula, b: Formula) -> Formula {
        if a.is_always() || b.is_always() {
            return Formula::always();
        }
        let mut parts = Vec::new();
        for f in [a, b] {
            match f {
                Formula::AnyOf(v) => parts.extend(v),
                other => parts.push(other),
            }
        }
        match parts.len() {
            1 => parts.pop().unwrap_or_else(Formula::never),
            _ => Formula::AnyOf(parts),
        }
    }

    /// The conjuncts at its top: itself when it is not a conjunction.
    pub fn conjuncts(&self) -> &[Formula] {
        match self {
            Formula::All(v) => v,
            other => std::slice::from_ref(other),
        }
    }
}

/// What a formula is evaluated on: an event, its principal's facts, and what the inventory
/// knows.
pub struct On<'a> {
    pub view: &'a EventView<'a>,
    pub principal: &'a Facts,
    /// The inventory holds facts (the principal's inventory attributes may be present).
    pub inventory: bool,
    /// The inventory knows addresses (`context.source` may be present).
    pub addresses: bool,
    /// `sourceInAws`, worked out by the caller on first use.
    pub source_in_aws: &'a dyn Fn() -> bool,
}

impl On<'_> {
    /// The tag `key` of a field, as `getTag` reads it (`None` inside: no such tag); unknown
    /// when the field cannot be read (the request would fail on it, and Cedar says so).
    fn tag(&self, field: Field, key: &str) -> Option<Option<std::borrow::Cow<'_, str>>> {
        let value = self.view.field(field).ok()?;
        Some(
            value
                .and_then(|v| fields::lookup(v, key))
                .and_then(fields::tag_str),
        )
    }

    /// A string attribute of the context, as read natively: `None` when the attribute is not
    /// one read here, `Some(None)` when the event has no such value.
    fn context_str(&self, attr: Attr) -> Option<Option<&str>> {
        let e = &self.view.event;
        Some(match attr {
            Attr::EventName => Some(e.event_name.as_ref()),
            Attr::EventSource => Some(e.event_source.as_ref()),
            Attr::EventId => e.event_id.as_deref(),
            Attr::EventVersion => e.event_version.as_deref(),
            Attr::EventType => e.event_type.as_deref(),
            Attr::EventCategory => e.event_category.as_deref(),
            Attr::AwsRegion => e.aws_region.as_deref(),
            Attr::SourceIpAddress => e.source_ip_address.as_deref(),
            Attr::UserAgent => e.user_agent.as_deref(),
            Attr::ErrorCode => e.error_code.as_deref(),
            Attr::ErrorMessage => e.error_message.as_deref(),
            Attr::RecipientAccountId => e.recipient_account_id.as_deref(),
            Attr::RequestId => e.request_id.as_deref(),
            Attr::SharedEventId => e.shared_event_id.as_deref(),
            Attr::VpcEndpointId => e.vpc_endpoint_id.as_deref(),
            Attr::VpcEndpointAccountId => e.vpc_endpoint_account_id.as_deref(),
            Attr::ApiVersion => e.api_version.as_deref(),
            _ => return None,
        })
    }

    /// A boolean attribute of the context: `None` when not read here.
    fn context_bool(&self, attr: Attr) -> Option<Option<bool>> {
        let e = &self.view.event;
        Some(match attr {
            Attr::ReadOnly => e.read_only,
            Attr::ManagementEvent => e.management_event,
            Attr::SessionCredentialFromConsole => e.session_credential_from_console,
            Attr::SourceInAws => Some((self.source_in_aws)()),
            _ => return None,
        })
    }

    /// The value of a test; `None` when it cannot tell.
    fn test(&self, test: &Test) -> Option<bool> {
        let p = self.principal;
        Some(match test {
            Test::ContextHas(Attr::SourceIp) => self.view.source_ip().is_some(),
            Test::ContextHas(Attr::VpcEndpoint) => self
                .view
                .event
                .vpc_endpoint_id
                .as_deref()
                .is_some_and(|v| !v.is_empty()),
            Test::ContextHas(attr) => match self.context_str(*attr) {
                Some(v) => v.is_some(),
                None => self.context_bool(*attr)?.is_some(),
            },
            Test::TagHas(field, key) => self.tag(*field, key)?.is_some(),
            Test::TagEquals(field, key, v) => self.tag(*field, key)?.as_deref() == Some(v.as_ref()),
            Test::TagIn(field, key, vs) => self
                .tag(*field, key)?
                .is_some_and(|s| vs.iter().any(|v| v.as_ref() == s)),
            Test::TagLike(field, key, glob) => {
                self.tag(*field, key)?.is_some_and(|s| glob.matches(&s))
            }
            Test::ContextEquals(attr, v) => self.context_str(*attr)? == Some(v.as_ref()),
            Test::ContextIn(attr, vs) => self
                .context_str(*attr)?
                .is_some_and(|s| vs.iter().any(|v| v.as_ref() == s)),
            Test::ContextLike(attr, glob) => {
                self.context_str(*attr)?.is_some_and(|s| glob.matches(s))
            }
            Test::ContextTrue(attr) => self.context_bool(*attr)? == Some(true),
            Test::PrincipalIs(kinds) => kinds.contains(&p.kind()),
            Test::PrincipalHas(attr) => p.string(*attr).is_some(),
            Test::PrincipalEquals(attr, v) => p.string(*attr) == Some(v.as_ref()),
            Test::PrincipalIn(attr, vs) => p
                .string(*attr)
                .is_some_and(|s| vs.iter().any(|v| v.as_ref() == s)),
            Test::PrincipalLike(attr, glob) => p.string(*attr).is_some_and(|s| glob.matches(s)),
            Test::PrincipalFlag(flag) => p.flag(*flag),
            Test::InventoryFact if self.inventory => return None,
            Test::InventoryFact => false,
            Test::SourceKnown if self.addresses => self.view.source_ip().is_some(),
            Test::SourceKnown => false,
        })
    }
}

/// The values a formula requires of a context attribute at its top: `Some` when one of its
/// conjuncts is a test (or a disjunction of tests) that the attribute equals one of them.
pub fn required_values(f: &Formula, attr: Attr) -> Option<BTreeSet<String>> {
    fn values(f: &Formula, attr: Attr) -> Option<BTreeSet<String>> {
        match f {
            Formula::Test {
                test: Test::ContextEquals(a, v),
                holds: true,
            } if *a == attr => Some(BTreeSet::from([v.to_string()])),
            Formula::Test {
                test: Test::ContextIn(a, vs),
                holds: true,
            } if *a == attr => Some(vs.iter().map(|v| v.to_string()).collect()),
            Formula::AnyOf(parts) if !parts.is_empty() => {
                let mut all = BTreeSet::new();
                for p in parts {
                    all.extend(values(p, attr)?);
                }
                Some(all)
            }
            _ => None,
        }
    }
    let mut found: Option<BTreeSet<String>> = None;
    for c in f.conjuncts() {
        if let Some(v) = values(c, attr) {
            found = Some(match found {
                None => v,
                Some(before) => before.intersection(&v).cloned().collect(),
            });
        }
    }
    found
}

/// The principal types a formula requires at its top, if it does.
pub fn required_kinds(f: &Formula) -> Option<BTreeSet<PrincipalKind>> {
    let mut found: Option<BTreeSet<PrincipalKind>> = None;
    for c in f.conjuncts() {
        if let Formula::Test {
            test: Test::PrincipalIs(kinds),
            holds: true,
        } = c
        {
            found = Some(match found {
                None => kinds.clone(),
                Some(before) => before.intersection(kinds).copied().collect(),
            });
        }
    }
    found
}

/// A `like` pattern as the literal runs between its wildcards: Cedar's `like`, where `*`
/// matches any run of characters (an escaped `\*` is a literal star, which the syntax tree
/// already gives as a character), matched without allocating.
#[derive(Clone, Debug)]
pub struct Glob {
    /// The literal runs, in order: the first a prefix, the last a suffix (either empty where
    /// the pattern starts or ends with a wildcard).
    parts: Vec<Box<str>>,
    /// A searcher for each run between the first and the last, made once: a `like` with a
    /// run inside (`"*AccessDenied*"`, `"arn:aws:iam::*:role/service-role/*"`) is tested on
    /// most events of a busy rule, and a searcher costs more to make than to run.
    middle: Vec<memchr::memmem::Finder<'static>>,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}
impl Eq for Glob {}

impl Glob {
    /// The glob of a pattern.
    pub fn of(pattern: &[PatternElem]) -> Glob {
        let mut parts: Vec<Box<str>> = Vec::new();
        let mut run = String::new();
        for e in pattern {
            match e {
                PatternElem::Char(c) => run.push(*c),
                PatternElem::Wildcard => parts.push(Box::from(std::mem::take(&mut run).as_str())),
            }
        }
        parts.push(Box::from(run.as_str()));
        let middle = match parts.as_slice() {
            [_, middle @ .., _] => middle
                .iter()
                .map(|p| memchr::memmem::Finder::new(p.as_bytes()).into_owned())
                .collect(),
            _ => Vec::new(),
        };
        Glob { parts, middle }
    }

    /// Whether `text` matches: the first run as its prefix, the last as its suffix, the others
    /// in order between them (leftmost matches, which decide a wildcard match).
    pub fn matches(&self, text: &str) -> bool {
        let Some((first, rest)) = self.parts.split_first() else {
            return text.is_empty();
        };
        let Some(after) = text.strip_prefix(first.as_ref()) else {
            return false;
        };
        let Some((last, _)) = rest.split_last() else {
            // No wildcard: the whole text.
            return after.is_empty();
        };
        let mut at = after.as_bytes();
        for finder in &self.middle {
            match finder.find(at) {
                Some(i) => at = at.get(i + finder.needle().len()..).unwrap_or_default(),
                None => return false,
            }
        }
        at.len() >= last.len() && at.ends_with(last.as_bytes())
    }
}

/// The formula of a policy: what its scope's principal type and its clauses require. The
/// action's scope is the index's.
pub fn of_policy(body: &pst::Template) -> Formula {
    let mut formula = Formula::always();
    let kinds: Option<BTreeSet<PrincipalKind>> = match &body.principal {
        pst::PrincipalConstraint::Is(ty) | pst::PrincipalConstraint::IsIn(ty, _) => Some(
            PrincipalKind::from_type_name(&ty.to_string())
                .into_iter()
                .collect(),
        ),
        _ => None,
    };
    if let Some(kinds) = kinds {
        formula = Formula::and(
            formula,
            Formula::Test {
                test: Test::PrincipalIs(kinds),
                holds: true,
            },
        );
    }
    for clause in body.clauses() {
        let (expr, when) = match clause {
            pst::Clause::When(e) => (e, true),
            pst::Clause::Unless(e) => (e, false),
        };
        let d = derive(expr);
        formula = Formula::and(formula, if when { d.holds } else { d.fails });
        // An error in a clause ends the evaluation: the clauses after it tell nothing.
        if d.may_error {
            break;
        }
    }
    formula
}

/// Whether a policy's formula ([`of_policy`]) is not only necessary but exact: its scope is
/// what the index and the formula decide (any principal or one principal type, any resource,
/// the action by the index) and its clauses are tests joined by `&&`, `||` and `!`, none of
/// which can error. Where such a formula has a value on an event, it is Cedar's decision of the
/// policy, and the engine need not ask Cedar ([`crate::engine::Detection::decided_by_tests`]).
pub fn is_exact(body: &pst::Template) -> bool {
    let principal = match &body.principal {
        pst::PrincipalConstraint::Any => true,
        pst::PrincipalConstraint::Is(ty) => {
            PrincipalKind::from_type_name(&ty.to_string()).is_some()
        }
        _ => false,
    };
    let action = matches!(
        body.action,
        pst::ActionConstraint::Any | pst::ActionConstraint::Eq(_) | pst::ActionConstraint::In(_)
    );
    let resource = matches!(body.resource, pst::ResourceConstraint::Any);
    principal
        && action
        && resource
        && body.clauses().iter().all(|c| {
            let (pst::Clause::When(e) | pst::Clause::Unless(e)) = c;
            exact(e)
        })
}

/// Whether an expression is exactly the formula [`derive`] makes of it: tests and boolean
/// literals joined by `&&`, `||` and `!`.
fn exact(e: &Expr) -> bool {
    if as_test(e).is_some() {
        return true;
    }
    match e {
        Expr::Literal(Literal::Bool(_)) => true,
        Expr::UnaryOp {
            op: UnaryOp::Not,
            expr,
        } => exact(expr),
        Expr::BinaryOp {
            op: BinaryOp::And | BinaryOp::Or,
            left,
            right,
        } => exact(left) && exact(right),
        _ => false,
    }
}

/// The prefilters of a pack, each distinct test once: a test several policies share
/// (`context has errorCode`, a user agent's pattern) is evaluated once per event.
#[derive(Clone, Debug, Default)]
pub struct Prefilters {
    tests: Vec<Test>,
    /// Per detection, in pack order.
    formulas: Vec<Node>,
}

/// A formula over the table's tests.
#[derive(Clone, Debug)]
enum Node {
    Test { id: usize, holds: bool },
    All(Vec<Node>),
    AnyOf(Vec<Node>),
}

impl Prefilters {
    /// The table of the formulas of a pack's detections, in order.
    pub fn of<'a>(formulas: impl IntoIterator<Item = &'a Formula>) -> Prefilters {
        fn node(f: &Formula, tests: &mut Vec<Test>) -> Node {
            match f {
                Formula::Test { test, holds } => {
                    let id = match tests.iter().position(|t| t == test) {
                        Some(id) => id,
                        None => {
                            tests.push(test.clone());
                            tests.len() - 1
                        }
                    };
                    Node::Test { id, holds: *holds }
                }
                Formula::All(v) => Node::All(v.iter().map(|f| node(f, tests)).collect()),
                Formula::AnyOf(v) => Node::AnyOf(v.iter().map(|f| node(f, tests)).collect()),
            }
        }
        let mut tests = Vec::new();
        let formulas = formulas.into_iter().map(|f| node(f, &mut tests)).collect();
        Prefilters { tests, formulas }
    }

    /// How many distinct tests the pack's formulas hold: the size of a memo.
    pub fn tests(&self) -> usize {
        self.tests.len()
    }

    /// The value of a detection's formula on an event (`Some(false)`: it can be neither
    /// satisfied nor fail on it), each test computed at most once per event in `memo` (one byte
    /// per test, zero for not computed yet, cleared between events).
    pub fn eval(&self, detection: usize, on: &On, memo: &mut [u8]) -> Option<bool> {
        self.formulas
            .get(detection)
            .map_or(Some(true), |n| self.node(n, on, memo))
    }

    fn node(&self, n: &Node, on: &On, memo: &mut [u8]) -> Option<bool> {
        match n {
            Node::Test { id, holds } => {
                let value = match memo.get(*id).copied().unwrap_or(0) {
                    1 => Some(false),
                    2 => Some(true),
                    3 => None,
                    _ => {
                        let v = self.tests.get(*id).and_then(|t| on.test(t));
                        if let Some(slot) = memo.get_mut(*id) {
                            *slot = match v {
                                Some(false) => 1,
                                Some(true) => 2,
                                None => 3,
                            };
                        }
                        v
                    }
                };
                value.map(|v| v == *holds)
            }
            Node::All(parts) => {
                let mut unknown = false;
                for p in parts {
                    match self.node(p, on, memo) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                (!unknown).then_some(true)
            }
            Node::AnyOf(parts) => {
                let mut unknown = false;
                for p in parts {
                    match self.node(p, on, memo) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(false)
            }
        }
    }
}

/// What an expression tells: necessary for "true or error", for "false or error", and whether
/// it may error.
struct Derived {
    holds: Formula,
    fails: Formula,
    may_error: bool,
}

impl Derived {
    fn unknown(may_error: bool) -> Derived {
        Derived {
            holds: Formula::always(),
            fails: Formula::always(),
            may_error,
        }
    }

    fn test(test: Test) -> Derived {
        Derived {
            holds: Formula::Test {
                test: test.clone(),
                holds: true,
            },
            fails: Formula::Test { test, holds: false },
            may_error: false,
        }
    }
}

/// The context attribute an expression reads (`context.<attr>`).
fn context_attr(e: &Expr) -> Option<Attr> {
    match e {
        Expr::GetAttr { expr, attr } if matches!(expr.as_ref(), Expr::Var(Var::Context)) => {
            Attr::from_name(attr)
        }
        _ => None,
    }
}

/// The field of the context an expression is (`context.requestParameters`).
fn context_field(e: &Expr) -> Option<Field> {
    context_attr(e)?.field()
}

/// The field and literal key of a tag an expression reads
/// (`context.requestParameters.getTag("k")`).
fn context_tag(e: &Expr) -> Option<(Field, Box<str>)> {
    match e {
        Expr::BinaryOp {
            op: BinaryOp::GetTag,
            left,
            right,
        } => Some((context_field(left)?, string_literal(right)?)),
        _ => None,
    }
}

/// The principal attribute an expression reads (`principal.<attr>`).
fn principal_attr(e: &Expr) -> Option<&str> {
    match e {
        Expr::GetAttr { expr, attr } if matches!(expr.as_ref(), Expr::Var(Var::Principal)) => {
            Some(attr.as_str())
        }
        _ => None,
    }
}

fn string_literal(e: &Expr) -> Option<Box<str>> {
    match e {
        Expr::Literal(Literal::String(s)) => Some(Box::from(s.as_str())),
        _ => None,
    }
}

/// `["a", "b"]`, strings only.
fn string_set(e: &Expr) -> Option<Vec<Box<str>>> {
    match e {
        Expr::Set(items) => items.iter().map(|i| string_literal(i)).collect(),
        _ => None,
    }
}

/// Whether an expression may error on a validated policy: arithmetic and datetime arithmetic
/// (overflow), and what the analysis does not know.
fn may_error(e: &Expr) -> bool {
    match e {
        Expr::Literal(_) | Expr::Var(_) | Expr::Slot(_) => false,
        Expr::UnaryOp { op, expr } => {
            matches!(op, UnaryOp::Neg | UnaryOp::ToDate | UnaryOp::ToTime) || may_error(expr)
        }
        Expr::BinaryOp { op, left, right } => {
            matches!(
                op,
                BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Mul
                    | BinaryOp::Offset
                    | BinaryOp::DurationSince
            ) || may_error(left)
                || may_error(right)
        }
        Expr::GetAttr { expr, .. } | Expr::HasAttr { expr, .. } | Expr::Like { expr, .. } => {
            may_error(expr)
        }
        Expr::Is { expr, in_expr, .. } => {
            may_error(expr) || in_expr.as_ref().is_some_and(|i| may_error(i))
        }
        Expr::IfThenElse {
            cond,
            then_expr,
            else_expr,
        } => may_error(cond) || may_error(then_expr) || may_error(else_expr),
        Expr::Set(items) => items.iter().any(|i| may_error(i)),
        Expr::Record(fields) => fields.values().any(|v| may_error(v)),
        _ => true,
    }
}

/// A test an expression is exactly, if it is one.
fn as_test(e: &Expr) -> Option<Test> {
    match e {
        Expr::HasAttr { expr, attrs } if attrs.len() == 1 => match expr.as_ref() {
            Expr::Var(Var::Context) => {
                let attr = Attr::from_name(attrs.first())?;
                match attr {
                    Attr::Source => Some(Test::SourceKnown),
                    _ => Some(Test::ContextHas(attr)),
                }
            }
            Expr::Var(Var::Principal) => {
                let name = attrs.first().as_str();
                if let Some(s) = Str::from_name(name) {
                    Some(Test::PrincipalHas(s))
                } else if crate::model::principal::INVENTORY_ATTRIBUTES.contains(&name) {
                    Some(Test::InventoryFact)
                } else {
                    None
                }
            }
            Expr::Var(Var::Resource)
                if crate::model::resource::INVENTORY_ATTRIBUTES
                    .contains(&attrs.first().as_str()) =>
            {
                Some(Test::InventoryFact)
            }
            _ => None,
        },
        Expr::BinaryOp {
            op: BinaryOp::HasTag,
            left,
            right,
        } if let Some(field) = context_field(left) => {
            Some(Test::TagHas(field, string_literal(right)?))
        }
        // Principals and resources have tags only from the inventory (Cedar entities JSON
        // included).
        Expr::BinaryOp {
            op: BinaryOp::HasTag,
            left,
            ..
        } if matches!(
            left.as_ref(),
            Expr::Var(Var::Principal) | Expr::Var(Var::Resource)
        ) =>
        {
            Some(Test::InventoryFact)
        }
        Expr::BinaryOp {
            op: BinaryOp::Eq,
            left,
            right,
        } => {
            let (attr_side, value) = match (string_literal(left), string_literal(right)) {
                (Some(v), None) => (right.as_ref(), v),
                (None, Some(v)) => (left.as_ref(), v),
                _ => return None,
            };
            if let Some(attr) = context_attr(attr_side) {
                return Some(Test::ContextEquals(attr, value));
            }
            if let Some((field, key)) = context_tag(attr_side) {
                return Some(Test::TagEquals(field, key, value));
            }
            Str::from_name(principal_attr(attr_side)?).map(|s| Test::PrincipalEquals(s, value))
        }
        Expr::BinaryOp {
            op: BinaryOp::Contains,
            left,
            right,
        } => {
            let values = string_set(left)?;
            if let Some(attr) = context_attr(right) {
                return Some(Test::ContextIn(attr, values));
            }
            if let Some((field, key)) = context_tag(right) {
                return Some(Test::TagIn(field, key, values));
            }
            Str::from_name(principal_attr(right)?).map(|s| Test::PrincipalIn(s, values))
        }
        Expr::Like { expr, pattern } => {
            if let Some(attr) = context_attr(expr) {
                return Some(Test::ContextLike(attr, Glob::of(pattern)));
            }
            if let Some((field, key)) = context_tag(expr) {
                return Some(Test::TagLike(field, key, Glob::of(pattern)));
            }
            Str::from_name(principal_attr(expr)?).map(|s| Test::PrincipalLike(s, Glob::of(pattern)))
        }
        Expr::Is {
            expr,
            entity_type,
            in_expr: None,
        } if matches!(expr.as_ref(), Expr::Var(Var::Principal)) => {
            let kind = PrincipalKind::from_type_name(&entity_type.to_string())?;
            Some(Test::PrincipalIs(BTreeSet::from([kind])))
        }
        Expr::GetAttr { .. } => {
            if let Some(attr) = context_attr(e) {
                return matches!(
                    attr,
                    Attr::ReadOnly
                        | Attr::ManagementEvent
                        | Attr::SessionCredentialFromConsole
                        | Attr::SourceInAws
                )
                .then_some(Test::ContextTrue(attr));
            }
            Flag::from_name(principal_attr(e)?).map(Test::PrincipalFlag)
        }
        _ => None,
    }
}

fn derive(e: &Expr) -> Derived {
    if let Some(test) = as_test(e) {
        return Derived::test(test);
    }
    match e {
        Expr::Literal(Literal::Bool(true)) => Derived {
            holds: Formula::always(),
            fails: Formula::never(),
            may_error: false,
        },
        Expr::Literal(Literal::Bool(false)) => Derived {
            holds: Formula::never(),
            fails: Formula::always(),
            may_error: false,
        },
        Expr::UnaryOp {
            op: UnaryOp::Not,
            expr,
        } => {
            let d = derive(expr);
            Derived {
                holds: d.fails,
                fails: d.holds,
                may_error: d.may_error,
            }
        }
        Expr::BinaryOp {
            op: BinaryOp::And,
            left,
            right,
        } => {
            let (a, b) = (derive(left), derive(right));
            Derived {
                holds: if a.may_error {
                    a.holds
                } else {
                    Formula::and(a.holds, b.holds)
                },
                fails: Formula::or(a.fails, b.fails),
                may_error: a.may_error || b.may_error,
            }
        }
        Expr::BinaryOp {
            op: BinaryOp::Or,
            left,
            right,
        } => {
            let (a, b) = (derive(left), derive(right));
            Derived {
                holds: Formula::or(a.holds, b.holds),
                fails: if a.may_error {
                    a.fails
                } else {
                    Formula::and(a.fails, b.fails)
                },
                may_error: a.may_error || b.may_error,
            }
        }
        other => Derived::unknown(may_error(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::Policy;
    use std::str::FromStr;

    fn formula(when: &str) -> Formula {
        let p = Policy::from_str(&format!("forbid (principal, action, resource) {when};")).unwrap();
        of_policy(p.to_pst().unwrap().body())
    }

    fn pattern(s: &str) -> Vec<PatternElem> {
        s.chars()
            .map(|c| {
                if c == '*' {
                    PatternElem::Wildcard
                } else {
                    PatternElem::Char(c)
                }
            })
            .collect()
    }

    #[test]
    fn a_formula_is_exact_when_tests_are_the_whole_condition() {
        let exact = |text: &str| {
            let p = Policy::from_str(text).unwrap();
            is_exact(p.to_pst().unwrap().body())
        };
        assert!(exact(
            r#"forbid (principal is AssumedRole, action in [Action::"a", Action::"b"], resource)
               when { principal has instanceId && !(context has errorCode) }
               unless { context.eventName like "Describe*" || context.sourceInAws };"#
        ));
        assert!(exact("forbid (principal, action, resource);"));
        for not in [
            // The resource's scope, a principal's identity, what is not a test, arithmetic.
            r#"forbid (principal, action, resource is S3Object);"#,
            r#"forbid (principal == IAMUser::"a", action, resource);"#,
            r#"forbid (principal, action, resource) when { context.requestParameters has bucketName };"#,
            r#"forbid (principal, action, resource) when { context has n && context.n + 1 > 2 };"#,
        ] {
            assert!(!exact(not), "{not}");
        }
    }

    #[test]
    fn like_matches_as_cedar_does() {
        for (text, pat, expected) in [
            ("DeleteTrail", "Delete*", true),
            ("DeleteTrail", "*Trail", true),
            ("DeleteTrail", "*le*Tr*", true),
            ("DeleteTrail", "Delete", false),
            ("", "*", true),
            ("", "", true),
            ("a", "", false),
            ("abcabc", "*abc", true),
            ("abcab", "*abc", false),
            ("日本語", "日*語", true),
            ("aXbXc", "a*b*c", true),
            ("ab", "a*b*c", false),
            ("abc", "abc", true),
            ("abcd", "abc", false),
            ("aa", "a*a", true),
            ("a", "a*a", false),
        ] {
            assert_eq!(
                Glob::of(&pattern(pat)).matches(text),
                expected,
                "{text} like {pat}"
            );
        }
    }

    #[test]
    fn conditions_become_formulas_of_tests() {
        let f = formula(
            r#"when { context.eventName == "StopLogging" } unless { context has errorCode }"#,
        );
        assert_eq!(
            f,
            Formula::All(vec![
                Formula::Test {
                    test: Test::ContextEquals(Attr::EventName, "StopLogging".into()),
                    holds: true
                },
                Formula::Test {
                    test: Test::ContextHas(Attr::ErrorCode),
                    holds: false
                },
            ])
        );
        let f = formula(r#"when { ["A", "B"].contains(context.eventName) || principal is Root }"#);
        assert!(matches!(f, Formula::AnyOf(ref v) if v.len() == 2), "{f:?}");
    }

    #[test]
    fn tags_read_by_literal_keys_are_tests() {
        let f = formula(
            r#"when { context.requestParameters.hasTag("x-amz-acl") && ["public-read"].contains(context.requestParameters.getTag("x-amz-acl")) && context.responseElements.getTag("ConsoleLogin") == "Failure" && context.requestParameters.getTag("instanceType") like "p*" }"#,
        );
        let tests: Vec<Test> = f
            .conjuncts()
            .iter()
            .filter_map(|c| match c {
                Formula::Test { test, holds: true } => Some(test.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(tests.len(), 4, "{f:?}");
        assert!(
            matches!(&tests[0], Test::TagHas(Field::RequestParameters, k) if &**k == "x-amz-acl")
        );
        assert!(
            matches!(&tests[1], Test::TagIn(Field::RequestParameters, k, v) if &**k == "x-amz-acl" && v.len() == 1)
        );
        assert!(
            matches!(&tests[2], Test::TagEquals(Field::ResponseElements, k, v) if &**k == "ConsoleLogin" && &**v == "Failure")
        );
        assert!(
            matches!(&tests[3], Test::TagLike(Field::RequestParameters, k, _) if &**k == "instanceType")
        );
    }

    #[test]
    fn what_cannot_be_read_natively_tells_nothing() {
        for when in [
            r#"when { context.requestParameters.getTag("k") == context.requestParameters.getTag("j") }"#,
            r#"when { resource.name == "x" }"#,
            r#"when { principal in Role::"r" }"#,
            r#"when { context.sourceIP.isInRange(ip("10.0.0.0/8")) }"#,
        ] {
            assert!(formula(when).is_always(), "{when}");
        }
    }

    #[test]
    fn what_may_error_stops_the_formula() {
        // The first clause may overflow: its error ends the evaluation, so the second tells
        // nothing about whether the policy errors.
        let f = formula(
            r#"when { context.requestParameters.hasTag("n") && 9223372036854775807 + 1 > 0 } when { context.eventName == "X" }"#,
        );
        assert_eq!(
            f,
            Formula::Test {
                test: Test::TagHas(Field::RequestParameters, "n".into()),
                holds: true
            },
            "the first clause's guard only"
        );
        // Within a clause: `A && B` with `A` erring keeps only `A`'s part.
        let f = formula(r#"when { (1 + 1 == 2) && context.eventName == "X" }"#);
        assert!(f.is_always(), "{f:?}");
        let f = formula(r#"when { context.eventName == "X" && (1 + 1 == 2) }"#);
        assert_eq!(f.conjuncts().len(), 1, "{f:?}");
    }
}
