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
use cedar_policy::{Schema, SchemaFragment};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::OnceLock;

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

/// An attribute's type, as the schema declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrType {
    /// A record type or an entity type, by name (`TlsDetails`, `Instance`), or a primitive
    /// (`String`, `datetime`).
    Named(String),
    /// A record written in place.
    Record(Shape),
    /// Anything else (a set).
    Other,
}

/// The attributes of a record or an entity type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub attrs: BTreeMap<String, AttrType>,
    /// Whether the entity type has tags (records never do).
    pub tags: bool,
}

/// What the schema declares of each entity type and record type: what `has` may name.
///
/// Cedar's validator types `e has a` as `false` when `e`'s type declares no `a`, and only
/// warns when that makes the whole policy impossible; `unless { context has errrorCode }` is
/// not impossible, just wrong. The pack loader checks every `has` against these shapes.
#[derive(Debug, Clone, Default)]
pub struct Shapes {
    /// Entity types and common (record) types, by name.
    types: BTreeMap<String, Shape>,
}

impl Shapes {
    /// The model's shapes, read from its schema.
    pub fn model() -> &'static Shapes {
        static SHAPES: OnceLock<Shapes> = OnceLock::new();
        SHAPES.get_or_init(|| {
            Shapes::from_schema_text(&schema_text(&BTreeSet::new())).unwrap_or_default()
        })
    }

    /// The shapes of a schema in Cedar's human-readable format.
    pub fn from_schema_text(text: &str) -> Result<Shapes, String> {
        let (fragment, _) =
            SchemaFragment::from_cedarschema_str(text).map_err(|e| e.to_string())?;
        let json = fragment.to_json_value().map_err(|e| e.to_string())?;
        let mut shapes = Shapes::default();
        let Some(namespaces) = json.as_object() else {
            return Err("the schema is not a JSON object".to_string());
        };
        for ns in namespaces.values() {
            for (section, is_entity) in [("commonTypes", false), ("entityTypes", true)] {
                let Some(types) = ns.get(section).and_then(|t| t.as_object()) else {
                    continue;
                };
                for (name, decl) in types {
                    let shape = if is_entity {
                        let mut s = decl.get("shape").map(shape_of).unwrap_or_default();
                        s.tags = decl.get("tags").is_some();
                        s
                    } else {
                        shape_of(decl)
                    };
                    shapes.types.insert(name.clone(), shape);
                }
            }
        }
        Ok(shapes)
    }

    /// The shape of a named entity or record type; `None` for primitives and unknown names.
    pub fn get(&self, name: &str) -> Option<&Shape> {
        self.types.get(name)
    }
}

/// A record type of the JSON schema format as a [`Shape`].
fn shape_of(json: &serde_json::Value) -> Shape {
    let attrs = json
        .get("attributes")
        .and_then(|a| a.as_object())
        .map(|attrs| {
            attrs
                .iter()
                .map(|(name, ty)| (name.clone(), attr_type(ty)))
                .collect()
        })
        .unwrap_or_default();
    Shape { attrs, tags: false }
}

fn attr_type(json: &serde_json::Value) -> AttrType {
    let name = || {
        json.get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string)
    };
    match json.get("type").and_then(|t| t.as_str()) {
        Some("Record") => AttrType::Record(shape_of(json)),
        Some("EntityOrCommon" | "Entity") => name().map_or(AttrType::Other, AttrType::Named),
        Some(primitive @ ("String" | "Long" | "Boolean" | "Bool")) => {
            AttrType::Named(primitive.to_string())
        }
        _ => AttrType::Other,
    }
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
    fn shapes_are_what_the_schema_declares() {
        let shapes = Shapes::model();
        let context = shapes.get("EventContext").unwrap();
        assert_eq!(
            context.attrs.get("errorCode"),
            Some(&AttrType::Named("String".to_string()))
        );
        assert_eq!(
            context.attrs.get("tlsDetails"),
            Some(&AttrType::Named("TlsDetails".to_string()))
        );
        assert!(
            shapes
                .get("TlsDetails")
                .unwrap()
                .attrs
                .contains_key("tlsVersion")
        );
        let user = shapes.get("IAMUser").unwrap();
        assert!(user.tags && user.attrs.contains_key("accessKeyId"));
        assert_eq!(
            user.attrs.get("instance"),
            Some(&AttrType::Named("Instance".to_string()))
        );
        let params = shapes.get("RequestParameters").unwrap();
        assert!(params.tags && params.attrs.contains_key("kind"));
        assert!(
            shapes
                .get("Address")
                .unwrap()
                .attrs
                .contains_key("natGateway")
        );
        assert!(shapes.get("String").is_none());
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
