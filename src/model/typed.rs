//! Typed views of a free-form payload: the same paths as its string tags, each view holding the
//! values of one JSON type, so that a policy compares numbers as numbers and tells `false` from
//! `"false"`, `null` from absent, `{}` from `[]`.
//!
//! ```cedar
//! context.requestParameters.numbers.hasTag("fromPort") &&
//! context.requestParameters.numbers.getTag("fromPort") <= 22
//! ```
//!
//! A payload (or an element of one, [`super::element`]) has four views, each an entity whose
//! tags are keyed by path as its string tags are ([`super::fields`]):
//!
//! | view | tag type | holds |
//! |---|---|---|
//! | `numbers` | `Long` | integers (a number with a fraction or beyond 64 bits is in no view but `kinds`) |
//! | `booleans` | `Bool` | `true` and `false` |
//! | `kinds` | `String` | the JSON type of every member, `null` included: `string`, `number`, `boolean`, `object`, `array`, `null` |
//! | `sizes` | `Long` | the number of members of an object, of elements of an array |
//!
//! and two attributes of its own: `kind` (the payload's JSON type, `null` when CloudTrail wrote
//! `null` and `absent` when the record has no such member) and `size`.

use super::fields::{MAX_TAG_BYTES, MAX_TAGS, lookup};
use super::{types, uid};
use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use serde_json::Value;
use std::collections::HashSet;

/// A typed view of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum View {
    Numbers,
    Booleans,
    Kinds,
    Sizes,
}

impl View {
    /// Every view, in declaration order.
    pub const ALL: [View; 4] = [View::Numbers, View::Booleans, View::Kinds, View::Sizes];

    /// The attribute of a payload (or element) that refers to the view.
    pub fn attr(self) -> &'static str {
        match self {
            View::Numbers => "numbers",
            View::Booleans => "booleans",
            View::Kinds => "kinds",
            View::Sizes => "sizes",
        }
    }

    /// The view's entity type.
    pub fn type_name(self) -> &'static str {
        match self {
            View::Numbers => "Numbers",
            View::Booleans => "Booleans",
            View::Kinds => "Kinds",
            View::Sizes => "Sizes",
        }
    }

    /// The Cedar type of its tags.
    pub fn tag_type(self) -> &'static str {
        match self {
            View::Numbers | View::Sizes => "Long",
            View::Booleans => "Bool",
            View::Kinds => "String",
        }
    }

    /// The view an attribute refers to.
    pub fn from_attr(name: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.attr() == name)
    }

    /// The value of a node in this view; `None` when the node is not of its type.
    fn value(self, node: &Value) -> Option<RestrictedExpression> {
        match (self, node) {
            (View::Numbers, Value::Number(n)) => n.as_i64().map(RestrictedExpression::new_long),
            (View::Booleans, Value::Bool(b)) => Some(RestrictedExpression::new_bool(*b)),
            (View::Kinds, node) => Some(RestrictedExpression::new_string(
                kind_of(Some(node)).to_string(),
            )),
            (View::Sizes, Value::Object(_) | Value::Array(_)) => {
                Some(RestrictedExpression::new_long(size_of(Some(node))))
            }
            _ => None,
        }
    }
}

/// The attributes, besides the views, that a payload and an element have: their own kind and
/// size.
pub const OWN_ATTRIBUTES: [(&str, &str); 2] = [("kind", "String"), ("size", "Long")];

/// Whether a payload's attribute is typed (a view, or its own kind or size).
pub fn is_typed_attr(name: &str) -> bool {
    View::from_attr(name).is_some() || OWN_ATTRIBUTES.iter().any(|(n, _)| *n == name)
}

/// The JSON type of a node: `absent` for none.
pub fn kind_of(node: Option<&Value>) -> &'static str {
    match node {
        None => "absent",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// The members of an object, the elements of an array; 0 otherwise.
pub fn size_of(node: Option<&Value>) -> i64 {
    let n = match node {
        Some(Value::Array(items)) => items.len(),
        Some(Value::Object(map)) => map.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Every path of a node, nulls included, each once: objects' members joined by `.`, arrays'
/// elements numbered, as the string tags are. Bounded as they are.
fn paths(value: &Value) -> Result<Vec<String>, String> {
    fn walk(
        value: &Value,
        path: &mut String,
        out: &mut Vec<String>,
        seen: &mut HashSet<String>,
        bytes: &mut usize,
    ) -> Result<(), String> {
        if !path.is_empty() && seen.insert(path.clone()) {
            if out.len() >= MAX_TAGS {
                return Err(format!("more than {MAX_TAGS} fields"));
            }
            *bytes += path.len();
            if *bytes > MAX_TAG_BYTES {
                return Err(format!("more than {MAX_TAG_BYTES} bytes of fields"));
            }
            out.push(path.clone());
        }
        let len = path.len();
        let mut child = |key: &str, v: &Value, path: &mut String| {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let r = walk(v, path, out, seen, bytes);
            path.truncate(len);
            r
        };
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    child(k, v, path)?;
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    child(&i.to_string(), v, path)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(
        value,
        &mut String::new(),
        &mut out,
        &mut HashSet::new(),
        &mut 0,
    )?;
    Ok(out)
}

/// The tags of a node's view: each path's value is that of the node [`lookup`] finds, as for
/// the string tags, so that the views and the tags always agree on what a path names.
pub fn view_tags(
    node: Option<&Value>,
    view: View,
) -> Result<Vec<(String, RestrictedExpression)>, String> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for path in paths(node)? {
        if let Some(v) = lookup(node, &path).and_then(|n| view.value(n)) {
            out.push((path, v));
        }
    }
    Ok(out)
}

/// The uid of a view of the payload or element whose entity id is `id`.
pub fn view_uid(view: View, id: &str) -> EntityUid {
    let t = types();
    let ty = match view {
        View::Numbers => &t.numbers,
        View::Booleans => &t.booleans,
        View::Kinds => &t.kinds,
        View::Sizes => &t.sizes,
    };
    uid(ty, id)
}

/// The typed attributes of a payload or element whose entity id is `id` (its views, its kind,
/// its size), and the entities of its views, appended to `entities`.
pub fn typed(
    node: Option<&Value>,
    id: &str,
    entities: &mut Vec<Entity>,
) -> Result<Vec<(String, RestrictedExpression)>, String> {
    let mut attrs = vec![
        (
            "kind".to_string(),
            RestrictedExpression::new_string(kind_of(node).to_string()),
        ),
        (
            "size".to_string(),
            RestrictedExpression::new_long(size_of(node)),
        ),
    ];
    for view in View::ALL {
        let uid = view_uid(view, id);
        let tags = view_tags(node, view)?;
        entities.push(Entity::new_with_tags(uid.clone(), [], [], tags).map_err(|e| e.to_string())?);
        attrs.push((
            view.attr().to_string(),
            RestrictedExpression::new_entity_uid(uid),
        ));
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The view's tags as text, read back from the entity they make.
    fn tags(node: &Value, view: View) -> Vec<(String, String)> {
        let tags = view_tags(Some(node), view).unwrap();
        let keys: Vec<String> = tags.iter().map(|(k, _)| k.clone()).collect();
        let entity = Entity::new_with_tags(view_uid(view, "t"), [], [], tags).unwrap();
        keys.into_iter()
            .map(|k| {
                let v = entity.tag(&k).unwrap().unwrap().to_string();
                (k, v)
            })
            .collect()
    }

    #[test]
    fn each_view_holds_the_values_of_its_type() {
        let v = json!({"fromPort": 22, "toPort": "22", "egress": false, "ratio": 0.5,
            "big": 18446744073709551615u64, "none": null, "list": [], "obj": {"a": true}});
        assert_eq!(
            tags(&v, View::Numbers),
            vec![("fromPort".to_string(), "22".to_string())],
            "a number-like string, a fraction and a number past 64 bits are not numbers"
        );
        assert_eq!(
            tags(&v, View::Booleans),
            vec![
                ("egress".to_string(), "false".to_string()),
                ("obj.a".to_string(), "true".to_string())
            ]
        );
        let kinds = tags(&v, View::Kinds);
        let kind = |k: &str| kinds.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
        assert_eq!(kind("none").as_deref(), Some(r#""null""#));
        assert_eq!(kind("list").as_deref(), Some(r#""array""#));
        assert_eq!(kind("toPort").as_deref(), Some(r#""string""#));
        assert_eq!(kind("ratio").as_deref(), Some(r#""number""#));
        assert_eq!(kind("missing"), None);
        assert_eq!(
            tags(&v, View::Sizes),
            vec![
                ("list".to_string(), "0".to_string()),
                ("obj".to_string(), "1".to_string())
            ]
        );
    }

    #[test]
    fn a_payloads_own_kind_tells_null_absent_and_empty_apart() {
        assert_eq!(kind_of(None), "absent");
        assert_eq!(kind_of(Some(&Value::Null)), "null");
        assert_eq!(kind_of(Some(&json!({}))), "object");
        assert_eq!(kind_of(Some(&json!([]))), "array");
        assert_eq!(size_of(Some(&json!({"a": 1, "b": 2}))), 2);
        assert_eq!(size_of(None), 0);
    }

    #[test]
    fn views_are_bounded_like_the_tags() {
        let wide: serde_json::Map<String, Value> = (0..MAX_TAGS + 1)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        let err = view_tags(Some(&Value::Object(wide)), View::Numbers).unwrap_err();
        assert!(err.contains("fields"), "{err}");
    }
}
