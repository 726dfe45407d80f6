//! Elements of lists: "some element satisfies all of these".
//!
//! A policy annotated `@each("<path>")` is evaluated once per element of the lists its path
//! names, with `context.element` bound to the element, and it fires when its condition holds for
//! one of them. A path is a payload's name followed by tag paths, each ending in `[]` where the
//! list's elements are taken; several paths are joined by `|`:
//!
//! ```cedar
//! @each("requestParameters.ipPermissions.items[].ipRanges.items[] | requestParameters.ipPermissions.items[].ipv6Ranges.items[]")
//! forbid (principal, action == Action::"ec2:AuthorizeSecurityGroupIngress", resource)
//! when {
//!   context.element.hasTag("cidrIp") && context.element.getTag("cidrIp") == "0.0.0.0/0" &&
//!   context.element.parent.numbers.hasTag("fromPort") && context.element.parent.numbers.getTag("fromPort") <= 22
//! };
//! ```
//!
//! An element is an `Element` entity: its tags are its own fields (paths relative to it, as a
//! payload's are), with the typed views of [`super::typed`], its `path`
//! (`requestParameters.ipPermissions.items[1].ipRanges.items[0]`), its `index` in its list, its
//! `text` (a string element's value, any other element's JSON), and its `parent`: the element
//! of the enclosing list, or for a list at the top the payload itself as an element (whose
//! parent is itself). A member that is an object rather than a list is taken as a list of one;
//! `null` or an absent member has no element.

use super::fields::{Field, flattened, lookup, tag_text};
use super::typed;
use super::{EventView, types, uid};
use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use serde_json::Value;

/// Most elements (of every level) one path may bind on one event: a hostile payload's lists
/// cost a bounded amount, and past the bound the policy fails on the event, reported.
pub const MAX_ELEMENTS: usize = 1024;

/// A parsed `@each` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Each {
    /// As written.
    pub text: String,
    pub paths: Vec<EachPath>,
}

/// One path of an `@each`: a payload, then the tag paths of the nested lists, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EachPath {
    pub field: Field,
    /// The tag path of each list, relative to the element of the list before it (the first to
    /// the payload); empty for the payload itself.
    pub lists: Vec<String>,
}

impl Each {
    /// Parses `requestParameters.a.items[].b[] | responseElements.c[]`.
    pub fn parse(text: &str) -> Result<Each, String> {
        let mut paths = Vec::new();
        for alternative in text.split('|') {
            paths.push(EachPath::parse(alternative.trim())?);
        }
        Ok(Each {
            text: text.to_string(),
            paths,
        })
    }
}

impl EachPath {
    fn parse(text: &str) -> Result<EachPath, String> {
        let fields = Field::ALL.map(Field::name).join(", ");
        if !text.ends_with("[]") {
            return Err(format!(
                "`{text}` must end with `[]`, where the elements of a list are taken"
            ));
        }
        let mut parts = text.split("[]");
        let first = parts.next().unwrap_or_default();
        let (name, first_list) = match first.split_once('.') {
            Some((name, rest)) => (name, rest),
            None => (first, ""),
        };
        let field = Field::from_name(name).ok_or_else(|| {
            format!("`{text}` must start with the payload it reads: one of {fields}")
        })?;
        let mut lists = vec![first_list.to_string()];
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let list = part
                .strip_prefix('.')
                .filter(|l| !l.is_empty())
                .ok_or_else(|| {
                    format!("`{text}`: after `[]`, a nested list is named as `[].<path>[]`")
                })?;
            lists.push(list.to_string());
        }
        if text.split("[]").filter(|p| p.is_empty()).count() > 1 {
            return Err(format!("`{text}`: an empty path between two `[]`"));
        }
        if lists.iter().any(|l| l.contains(char::is_whitespace)) {
            return Err(format!("`{text}`: a path holds no spaces"));
        }
        Ok(EachPath { field, lists })
    }
}

/// The elements an event binds for an `@each`: the entities of every element (and of the
/// payloads and enclosing elements they are in), and those the policy is evaluated on.
#[derive(Debug, Default)]
pub struct Bound {
    pub entities: Vec<Entity>,
    pub leaves: Vec<Leaf>,
}

/// An element a policy is evaluated on.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub uid: EntityUid,
    /// `requestParameters.ipPermissions.items[1].ipRanges.items[0]`.
    pub path: String,
}

/// The elements of an event for `each`, in order; an error when a payload is unreadable or
/// binds more than [`MAX_ELEMENTS`].
pub fn bind(each: &Each, view: &EventView) -> Result<Bound, String> {
    let mut bound = Bound::default();
    let mut elements = 0usize;
    let mut roots: Vec<Field> = Vec::new();
    for path in &each.paths {
        let Some(payload) = view.field(path.field)? else {
            continue;
        };
        let root = element_uid(path.field.name());
        if !roots.contains(&path.field) {
            roots.push(path.field);
            let entity = element_entity(payload, path.field.name(), 0, &root, &mut bound)?;
            bound.entities.push(entity);
        }
        let mut level: Vec<(&Value, String, EntityUid)> =
            vec![(payload, path.field.name().to_string(), root)];
        for (depth, list) in path.lists.iter().enumerate() {
            let last = depth + 1 == path.lists.len();
            let mut next = Vec::new();
            for (node, node_path, node_uid) in &level {
                let items = if list.is_empty() {
                    Some(*node)
                } else {
                    lookup(node, list)
                };
                let items: Vec<&Value> = match items {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => items.iter().collect(),
                    Some(other) => vec![other],
                };
                for (i, item) in items.into_iter().enumerate() {
                    let separator = if list.is_empty() { "" } else { "." };
                    let item_path = format!("{node_path}{separator}{list}[{i}]");
                    elements += 1;
                    if elements > MAX_ELEMENTS {
                        return Err(format!(
                            "more than {MAX_ELEMENTS} elements under `{}`",
                            each.text
                        ));
                    }
                    let item_uid = element_uid(&item_path);
                    let entity = element_entity(item, &item_path, i, node_uid, &mut bound)?;
                    bound.entities.push(entity);
                    if last {
                        bound.leaves.push(Leaf {
                            uid: item_uid.clone(),
                            path: item_path.clone(),
                        });
                    }
                    next.push((item, item_path, item_uid));
                }
            }
            level = next;
        }
    }
    Ok(bound)
}

/// `Element::"<path>"`.
pub fn element_uid(path: &str) -> EntityUid {
    uid(&types().element, path)
}

/// The entity of one element, its views appended to `bound`.
fn element_entity(
    node: &Value,
    path: &str,
    index: usize,
    parent: &EntityUid,
    bound: &mut Bound,
) -> Result<Entity, String> {
    let mut attrs = typed::typed(Some(node), path, &mut bound.entities)?;
    attrs.push((
        "path".to_string(),
        RestrictedExpression::new_string(path.to_string()),
    ));
    attrs.push((
        "index".to_string(),
        RestrictedExpression::new_long(i64::try_from(index).unwrap_or(i64::MAX)),
    ));
    attrs.push((
        "text".to_string(),
        RestrictedExpression::new_string(tag_text(node).unwrap_or_else(|| "null".to_string())),
    ));
    attrs.push((
        "parent".to_string(),
        RestrictedExpression::new_entity_uid(parent.clone()),
    ));
    let tags = flattened(node)?
        .into_iter()
        .map(|(k, v)| (k, RestrictedExpression::new_string(v)));
    Entity::new_with_tags(element_uid(path), attrs, [], tags).map_err(|e| e.to_string())
}

/// The attributes of `Element`, besides the typed ones ([`typed::OWN_ATTRIBUTES`] and the
/// views), with their schema types.
pub const ATTRIBUTES: [(&str, &str); 4] = [
    ("path", "String"),
    ("index", "Long"),
    ("text", "String"),
    ("parent", "Element"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_a_payload_and_its_nested_lists() {
        let e = Each::parse(
            "requestParameters.ipPermissions.items[].ipRanges.items[] | responseElements.list[]",
        )
        .unwrap();
        assert_eq!(
            e.paths,
            vec![
                EachPath {
                    field: Field::RequestParameters,
                    lists: vec!["ipPermissions.items".into(), "ipRanges.items".into()]
                },
                EachPath {
                    field: Field::ResponseElements,
                    lists: vec!["list".into()]
                }
            ]
        );
        assert_eq!(
            Each::parse("requestParameters[]").unwrap().paths[0].lists,
            vec![String::new()]
        );
        for bad in [
            "requestParameters.items",
            "requestParametrs.items[]",
            "requestParameters.a[]b[]",
            "requestParameters.a[][]",
            "",
        ] {
            assert!(Each::parse(bad).is_err(), "{bad}");
        }
    }

    fn event(params: &str) -> String {
        format!(
            r#"{{"eventTime":"2024-05-14T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress","requestParameters":{params}}}"#
        )
    }

    #[test]
    fn binds_every_element_of_nested_lists_with_its_parent() {
        let json = event(
            r#"{"ipPermissions":{"items":[
                {"ipProtocol":"tcp","fromPort":443,"toPort":443,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}},
                {"ipProtocol":"tcp","fromPort":22,"toPort":22,"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"},{"cidrIp":"192.0.2.0/24"}]}}]}}"#,
        );
        let view = EventView::parse(&json).unwrap();
        let each = Each::parse("requestParameters.ipPermissions.items[].ipRanges.items[]").unwrap();
        let bound = bind(&each, &view).unwrap();
        let leaves: Vec<&str> = bound.leaves.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            leaves,
            vec![
                "requestParameters.ipPermissions.items[0].ipRanges.items[0]",
                "requestParameters.ipPermissions.items[1].ipRanges.items[0]",
                "requestParameters.ipPermissions.items[1].ipRanges.items[1]",
            ]
        );
        let entity = |path: &str| {
            bound
                .entities
                .iter()
                .find(|e| e.uid() == element_uid(path))
                .unwrap()
        };
        let leaf = entity("requestParameters.ipPermissions.items[1].ipRanges.items[1]");
        assert_eq!(
            leaf.tag("cidrIp").unwrap().unwrap().to_string(),
            r#""192.0.2.0/24""#
        );
        assert_eq!(
            leaf.attr("parent").unwrap().unwrap().to_string(),
            r#"Element::"requestParameters.ipPermissions.items[1]""#
        );
        assert_eq!(leaf.attr("index").unwrap().unwrap().to_string(), "1");
        let perm = entity("requestParameters.ipPermissions.items[1]");
        assert_eq!(
            perm.attr("parent").unwrap().unwrap().to_string(),
            r#"Element::"requestParameters""#
        );
        assert!(bound.entities.iter().any(|e| e.uid()
            == typed::view_uid(
                typed::View::Numbers,
                "requestParameters.ipPermissions.items[1]"
            )));
    }

    #[test]
    fn an_object_is_a_list_of_one_and_null_a_list_of_none() {
        let each = Each::parse("requestParameters.x[]").unwrap();
        for (params, n) in [
            (r#"{"x":{"a":1}}"#, 1),
            (r#"{"x":null}"#, 0),
            (r#"{}"#, 0),
            (r#"{"x":["a","b"]}"#, 2),
            ("null", 0),
        ] {
            let json = event(params);
            let view = EventView::parse(&json).unwrap();
            assert_eq!(bind(&each, &view).unwrap().leaves.len(), n, "{params}");
        }
    }

    #[test]
    fn a_hostile_list_is_bounded() {
        let items: Vec<String> = (0..MAX_ELEMENTS * 2)
            .map(|i| format!(r#"{{"n":{i}}}"#))
            .collect();
        let json = event(&format!(r#"{{"x":[{}]}}"#, items.join(",")));
        let view = EventView::parse(&json).unwrap();
        let each = Each::parse("requestParameters.x[]").unwrap();
        assert!(bind(&each, &view).unwrap_err().contains("more than"));
    }
}
