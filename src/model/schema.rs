//! The Cedar schema of the model, generated from the same tables the model is built from.
//!
//! Policies are validated against it in strict mode when a pack loads, so a misspelt attribute
//! or a type error is a load error, not a detection that silently never fires.

use super::Field;
use super::actions::Catalog;
use super::context::ATTRS;
use super::document::ATTRIBUTES as DOCUMENT_ATTRS;
use super::element::ATTRIBUTES as ELEMENT_ATTRS;
use super::facts::ENTITY_DECLS;
use super::principal::{ATTRIBUTES as PRINCIPAL_ATTRS, PrincipalKind, ROLE_ATTRIBUTES};
use super::resource::ATTRIBUTES as RESOURCE_ATTRS;
use super::sharing::ATTRIBUTES as SHARING_ATTRS;
use super::typed::{OWN_ATTRIBUTES, View};
use cedar_policy::Schema;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

fn attr_line(out: &mut String, name: &str, ty: &str) {
    let (name, optional) = match name.strip_suffix('?') {
        Some(n) => (n, "?"),
        None => (name, ""),
    };
    let _ = writeln!(out, "  \"{name}\"{optional}: {ty},");
}

/// The parent types a principal type may have.
fn principal_parents(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::IamUser => "Group, Account",
        PrincipalKind::AssumedRole => "Role, Account",
        PrincipalKind::FederatedUser => "IAMUser, Account",
        _ => "Account",
    }
}

/// The schema in Cedar's human-readable format, declaring `actions` (`<service>:<eventName>`)
/// and a group per service. Every action has the same principals, resource and context.
pub fn schema_text(actions: &BTreeSet<String>) -> String {
    let mut out = String::new();
    out.push_str(
        "// The trailcedar model: a CloudTrail event as a Cedar request. See docs/model.md.\n\n",
    );
    out.push_str("type TlsDetails = {\n");
    for name in ["tlsVersion?", "cipherSuite?", "clientProvidedHostHeader?"] {
        attr_line(&mut out, name, "String");
    }
    out.push_str("};\n\n");

    out.push_str("type Copy = {\n");
    for (name, ty) in super::copy::ATTRIBUTES {
        attr_line(&mut out, name, ty);
    }
    out.push_str("};\n\n");

    out.push_str("type EventContext = {\n");
    for info in &ATTRS {
        let name = if info.required {
            info.name.to_string()
        } else {
            format!("{}?", info.name)
        };
        attr_line(&mut out, &name, info.cedar_type);
    }
    out.push_str("};\n\n");

    // The inventory's entity types (accounts, groups, instances, addresses, ...).
    for decl in ENTITY_DECLS {
        if decl.parents.is_empty() {
            let _ = writeln!(out, "entity {} = {{", decl.name);
        } else {
            let _ = writeln!(
                out,
                "entity {} in [{}] = {{",
                decl.name,
                decl.parents.join(", ")
            );
        }
        for (name, ty) in decl.attrs {
            attr_line(&mut out, name, ty);
        }
        out.push_str("} tags String;\n\n");
    }
    out.push_str("entity Role in [Account] = {\n");
    for (name, ty) in ROLE_ATTRIBUTES {
        attr_line(&mut out, name, ty);
    }
    out.push_str("} tags String;\n\n");
    // Every principal type has the same attributes, so `principal.<attr>` validates for all.
    for kind in PrincipalKind::ALL {
        let _ = writeln!(
            out,
            "entity {} in [{}] = {{",
            kind.type_name(),
            principal_parents(kind)
        );
        for (name, ty) in PRINCIPAL_ATTRS {
            attr_line(&mut out, name, ty);
        }
        out.push_str("} tags String;\n\n");
    }
    out.push_str("entity Resource in [Resource, Account] = {\n");
    for (name, ty) in RESOURCE_ATTRS {
        attr_line(&mut out, name, ty);
    }
    out.push_str("} tags String;\n\n");
    // The free-form payloads, their typed views, and the elements of their lists.
    for view in View::ALL {
        let _ = writeln!(out, "entity {} tags {};", view.type_name(), view.tag_type());
    }
    out.push('\n');
    let typed_attrs = |out: &mut String| {
        for (name, ty) in OWN_ATTRIBUTES {
            attr_line(out, name, ty);
        }
        for view in View::ALL {
            attr_line(out, view.attr(), view.type_name());
        }
    };
    for field in Field::ALL {
        let _ = writeln!(out, "entity {} = {{", field.type_name());
        typed_attrs(&mut out);
        out.push_str("} tags String;\n\n");
    }
    out.push_str("entity Element = {\n");
    for (name, ty) in ELEMENT_ATTRS {
        attr_line(&mut out, name, ty);
    }
    typed_attrs(&mut out);
    out.push_str("} tags String;\n\n");
    for (entity, attrs) in [
        ("PolicyDocument", DOCUMENT_ATTRS),
        ("Sharing", SHARING_ATTRS),
    ] {
        let _ = writeln!(out, "entity {entity} = {{");
        for (name, ty) in attrs {
            attr_line(&mut out, name, ty);
        }
        out.push_str("};\n\n");
    }

    // One declaration per service: its group, then all its actions in the group.
    let mut by_service: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for action in actions {
        if let Some((service, _)) = action.split_once(':') {
            by_service.entry(service).or_default().push(action);
        }
    }
    let principals: Vec<&str> = PrincipalKind::ALL.iter().map(|k| k.type_name()).collect();
    let principals = principals.join(", ");
    for (service, names) in by_service {
        let _ = writeln!(out, "action {};", quote(service));
        let names: Vec<String> = names.iter().map(|n| quote(n)).collect();
        let _ = writeln!(
            out,
            "action {} in [{}] appliesTo {{\n  principal: [{principals}],\n  resource: [Resource],\n  context: EventContext,\n}};",
            names.join(", "),
            quote(service)
        );
    }
    out
}

/// The schema of every action in `catalog`, in Cedar's human-readable format.
pub fn catalog_schema_text(catalog: &Catalog) -> String {
    let actions: BTreeSet<String> = catalog
        .services()
        .flat_map(|(service, names)| names.iter().map(move |n| format!("{service}:{n}")))
        .collect();
    schema_text(&actions)
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

/// The schema, parsed.
pub fn schema(actions: &BTreeSet<String>) -> Result<Schema, String> {
    let text = schema_text(actions);
    Schema::from_cedarschema_str(&text)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses_and_lists_actions() {
        let actions: BTreeSet<String> = ["s3:PutObject", "iam:CreateUser"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let schema = schema(&actions).unwrap();
        let names: Vec<String> = schema.actions().map(|a| a.to_string()).collect();
        assert!(
            names.contains(&r#"Action::"s3:PutObject""#.to_string()),
            "{names:?}"
        );
        assert!(names.contains(&r#"Action::"iam""#.to_string()), "{names:?}");
        let types: Vec<String> = schema.entity_types().map(|t| t.to_string()).collect();
        for t in [
            "IAMUser",
            "AssumedRole",
            "Root",
            "Resource",
            "RequestParameters",
            "Account",
            "Role",
        ] {
            assert!(types.contains(&t.to_string()), "{t} in {types:?}");
        }
    }

    #[test]
    fn the_full_catalog_schema_loads() {
        let catalog = Catalog::embedded();
        let text = catalog_schema_text(catalog);
        let (schema, _) = Schema::from_cedarschema_str(&text).unwrap();
        assert_eq!(
            schema.actions().count(),
            catalog.len() + catalog.services().count()
        );
    }
}
