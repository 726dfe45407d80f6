//! Checks that a policy can fire as written, where Cedar's validator is silent: every `has`
//! names an attribute the schema declares.
//!
//! The validator types `e has a` as `false` when `e`'s type declares no `a`: correct Cedar, but
//! `unless { context has errrorCode }` then exempts nothing (the rule flags every failed call)
//! and `when { principal has accesKeyId }` never holds. Neither is what its author wrote, so a
//! `has` on a record or an entity whose attributes the schema knows must name one of them. Tag
//! keys (`hasTag`) stay free: tags are open by design.

use crate::model::PrincipalKind;
use crate::model::actions::closest;
use crate::model::schema::{AttrType, Shape, Shapes};
use cedar_policy::pst::{Clause, Expr, Literal, Var};

/// A `has` that names an attribute its subject's type does not declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeclaredHas {
    /// The expression tested, as Cedar prints it: `context`, `principal.instance`.
    pub subject: String,
    /// The attribute path after `has`: `["errrorCode"]`, `["tlsDetails", "tlsVersio"]`.
    pub path: Vec<String>,
    /// The position in `path` of the undeclared attribute.
    pub undeclared: usize,
    /// The declared attribute closest to it.
    pub suggestion: Option<String>,
    /// The type has tags (`context.requestParameters`, a principal): the author may have meant
    /// one.
    pub tagged: bool,
}

impl UndeclaredHas {
    /// The undeclared attribute.
    pub fn attr(&self) -> &str {
        self.path
            .get(self.undeclared)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// What was tested for it: `context`, `context.tlsDetails` for `context has tlsDetails.x`.
    pub fn owner(&self) -> String {
        let mut owner = self.subject.clone();
        for a in self.path.iter().take(self.undeclared) {
            owner.push('.');
            owner.push_str(a);
        }
        owner
    }

    /// The diagnostic's message.
    pub fn message(&self, policy: &str) -> String {
        format!(
            "`{} has {}` in policy {policy:?} is always false: `{}` has no attribute `{}`",
            self.subject,
            self.path.join("."),
            self.owner(),
            self.attr()
        )
    }

    /// The diagnostic's help.
    pub fn help(&self) -> String {
        let tag = format!(
            "`{}.hasTag({})`",
            self.owner(),
            serde_json::to_string(self.attr()).unwrap_or_default()
        );
        match (&self.suggestion, self.tagged) {
            (Some(s), false) => format!("did you mean `{s}`?"),
            (Some(s), true) => format!("did you mean `{s}`? For a tag, write {tag}"),
            (None, true) => format!("for a tag, write {tag}"),
            (None, false) => format!(
                "the attributes of `{}` are in docs/model.md and `trailcedar schema`",
                self.owner()
            ),
        }
    }
}

/// Whether a clause is written as a literal that makes the policy never fire: `when { false }`
/// or `unless { true }`.
pub fn literal_false(clauses: &[Clause]) -> bool {
    clauses.iter().any(|c| {
        matches!(
            c,
            Clause::When(e) if matches!(e.as_ref(), Expr::Literal(Literal::Bool(false)))
        ) || matches!(
            c,
            Clause::Unless(e) if matches!(e.as_ref(), Expr::Literal(Literal::Bool(true)))
        )
    })
}

/// Every `has` in the policy's conditions that names an undeclared attribute, in policy order.
pub fn undeclared_has(clauses: &[Clause], shapes: &Shapes) -> Vec<UndeclaredHas> {
    let mut out = Vec::new();
    for clause in clauses {
        let (Clause::When(e) | Clause::Unless(e)) = clause;
        visit(e, shapes, &mut out);
    }
    out
}

fn visit(e: &Expr, shapes: &Shapes, out: &mut Vec<UndeclaredHas>) {
    if let Expr::HasAttr { expr, attrs } = e {
        let path: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
        if let Some(problem) = check_has(expr, &path, shapes) {
            out.push(problem);
        }
    }
    for child in children(e) {
        visit(child, shapes, out);
    }
}

/// The direct subexpressions of `e`.
fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::UnaryOp { expr, .. }
        | Expr::GetAttr { expr, .. }
        | Expr::HasAttr { expr, .. }
        | Expr::Like { expr, .. } => vec![expr.as_ref()],
        Expr::BinaryOp { left, right, .. } => vec![left.as_ref(), right.as_ref()],
        Expr::Is { expr, in_expr, .. } => std::iter::once(expr.as_ref())
            .chain(in_expr.as_deref())
            .collect(),
        Expr::IfThenElse {
            cond,
            then_expr,
            else_expr,
        } => vec![cond.as_ref(), then_expr.as_ref(), else_expr.as_ref()],
        Expr::Set(items) => items.iter().map(AsRef::as_ref).collect(),
        Expr::Record(fields) => fields.values().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    }
}

fn check_has(subject: &Expr, path: &[String], shapes: &Shapes) -> Option<UndeclaredHas> {
    let mut current = type_of(subject, shapes);
    for (i, attr) in path.iter().enumerate() {
        if current.is_empty() {
            // A primitive, or a type this check does not follow: Cedar's validator decides.
            return None;
        }
        if current.iter().any(|s| s.attrs.contains_key(attr)) {
            current = current
                .iter()
                .filter_map(|s| s.attrs.get(attr))
                .filter_map(|t| resolve(t, shapes))
                .collect();
            continue;
        }
        let declared: Vec<&str> = current
            .iter()
            .flat_map(|s| s.attrs.keys().map(String::as_str))
            .collect();
        return Some(UndeclaredHas {
            subject: subject.to_string(),
            path: path.to_vec(),
            undeclared: i,
            suggestion: closest(attr, declared.iter().copied()).map(str::to_string),
            tagged: current.iter().all(|s| s.tags),
        });
    }
    None
}

/// The shapes `e` may have: several for `principal`, whose type is one of the principal types.
/// Empty when `e` is not a record or an entity the schema describes.
fn type_of<'s>(e: &Expr, shapes: &'s Shapes) -> Vec<&'s Shape> {
    match e {
        Expr::Var(Var::Context) => shapes.get("EventContext").into_iter().collect(),
        Expr::Var(Var::Resource) => shapes.get("Resource").into_iter().collect(),
        Expr::Var(Var::Principal) => PrincipalKind::ALL
            .iter()
            .filter_map(|k| shapes.get(k.type_name()))
            .collect(),
        Expr::Literal(Literal::EntityUID(uid)) => {
            shapes.get(&uid.ty.to_string()).into_iter().collect()
        }
        Expr::GetAttr { expr, attr } => type_of(expr, shapes)
            .iter()
            .filter_map(|s| s.attrs.get(attr.as_str()))
            .filter_map(|t| resolve(t, shapes))
            .collect(),
        _ => Vec::new(),
    }
}

fn resolve<'s>(t: &'s AttrType, shapes: &'s Shapes) -> Option<&'s Shape> {
    match t {
        AttrType::Named(name) => shapes.get(name),
        AttrType::Record(shape) => Some(shape),
        AttrType::Other => None,
    }
}

/// The span of `has <path>` in `text` whose path holds `attr` at `position`, for a diagnostic:
/// the PST keeps no source locations.
pub fn locate_has(text: &str, path: &[String]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = text.get(from..).and_then(|t| t.find("has")) {
        let start = from + i;
        from = start + 3;
        let before = text
            .get(..start)
            .and_then(|t| t.chars().next_back())
            .unwrap_or(' ');
        if before.is_alphanumeric() || before == '_' || before == '.' {
            continue;
        }
        let rest = text.get(from..).unwrap_or("");
        let trimmed = rest.trim_start();
        if trimmed.len() == rest.len() {
            continue;
        }
        let written = written_path(trimmed);
        if written
            .iter()
            .map(String::as_str)
            .eq(path.iter().map(String::as_str))
        {
            let end = text.len() - trimmed.len() + path_len(trimmed);
            return Some((start, end - start));
        }
    }
    None
}

/// The attribute path at the start of `text`: `a.b` or `"a"`.
fn written_path(text: &str) -> Vec<String> {
    if let Some(quoted) = text.strip_prefix('"') {
        return quoted
            .split('"')
            .next()
            .map(|s| vec![s.to_string()])
            .unwrap_or_default();
    }
    let end = path_len(text);
    text.get(..end)
        .unwrap_or("")
        .split('.')
        .map(str::to_string)
        .collect()
}

fn path_len(text: &str) -> usize {
    if let Some(quoted) = text.strip_prefix('"') {
        return quoted.find('"').map_or(text.len(), |i| i + 2);
    }
    text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::Policy;
    use std::str::FromStr;

    fn problems(condition: &str) -> Vec<UndeclaredHas> {
        let policy = Policy::from_str(&format!(
            "forbid (principal, action, resource) when {{ {condition} }};"
        ))
        .unwrap();
        let pst = policy.to_pst().unwrap();
        undeclared_has(pst.body().clauses(), Shapes::model())
    }

    fn one(condition: &str) -> UndeclaredHas {
        let mut p = problems(condition);
        assert_eq!(p.len(), 1, "{condition}: {p:?}");
        p.remove(0)
    }

    #[test]
    fn a_misspelt_has_is_found_with_its_suggestion() {
        let p = one("!(context has errrorCode)");
        assert_eq!((p.subject.as_str(), p.attr()), ("context", "errrorCode"));
        assert_eq!(p.suggestion.as_deref(), Some("errorCode"));
        assert_eq!(
            p.help(),
            "did you mean `errorCode`?",
            "the context has no tags"
        );
        let p = one("principal has accesKeyId");
        assert_eq!(p.suggestion.as_deref(), Some("accessKeyId"));
        assert!(
            p.message("x")
                .contains("`principal` has no attribute `accesKeyId`"),
            "{}",
            p.message("x")
        );
    }

    #[test]
    fn nested_records_entities_and_paths_are_followed() {
        let p = one("context has tlsDetails.tlsVersio");
        assert_eq!(
            (p.owner().as_str(), p.attr()),
            ("context.tlsDetails", "tlsVersio")
        );
        assert_eq!(p.suggestion.as_deref(), Some("tlsVersion"));
        let p = one("context has source && context.source has natGatway");
        assert_eq!(p.suggestion.as_deref(), Some("natGateway"));
        let p = one("principal has instance && principal.instance has vpcID");
        assert_eq!(p.suggestion.as_deref(), Some("vpcId"));
        let p = one("resource has nmae");
        assert_eq!(p.suggestion.as_deref(), Some("name"));
        let p = one("Account::\"1\" has acountId");
        assert_eq!(p.suggestion.as_deref(), Some("accountId"));
        let p = one("context has zzzzzzzz");
        assert_eq!(p.suggestion, None);
        assert!(p.help().contains("docs/model.md"), "{}", p.help());
    }

    #[test]
    fn free_form_fields_point_at_their_tags() {
        let p = one("context.requestParameters has bucketName");
        assert!(p.tagged);
        assert_eq!(
            p.help(),
            "for a tag, write `context.requestParameters.hasTag(\"bucketName\")`"
        );
        let p = one("principal has tema");
        assert_eq!(p.help(), "for a tag, write `principal.hasTag(\"tema\")`");
    }

    #[test]
    fn declared_attributes_and_tags_pass() {
        for ok in [
            "context has errorCode",
            "context has tlsDetails.tlsVersion",
            "principal has accessKeyId && principal.hasTag(\"anything\")",
            "principal has instance.vpcId",
            "resource has accountInOrganization",
            "context.requestParameters.hasTag(\"whatever\")",
            "context has source && context.source has natGateway",
            // Unknown to this check (a set element, a conditional): left to Cedar.
            "if context.readOnly then true else principal has userName",
        ] {
            assert_eq!(problems(ok), vec![], "{ok}");
        }
    }

    #[test]
    fn has_is_located_in_the_text() {
        let text = "when { context has errorCode || context has\n  errrorCode || x has \"a b\" }";
        let (at, len) = locate_has(text, &["errrorCode".to_string()]).unwrap();
        assert_eq!(&text[at..at + len], "has\n  errrorCode");
        let (at, len) = locate_has(text, &["a b".to_string()]).unwrap();
        assert_eq!(&text[at..at + len], "has \"a b\"");
        let text = "context.hash has tls.x";
        let (at, len) = locate_has(text, &["tls".into(), "x".into()]).unwrap();
        assert_eq!(&text[at..at + len], "has tls.x");
        assert_eq!(locate_has("hasTag(\"x\")", &["x".to_string()]), None);
    }
}
