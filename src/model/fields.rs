//! Free-form fields: `requestParameters` and its siblings as entities whose tags are the fields.
//!
//! Cedar records are closed: a schema must name every attribute, and CloudTrail's payloads differ
//! for every API. Entity tags take any key and still validate, so each payload is an entity
//! (`context.requestParameters` is a `RequestParameters` entity) and each field a tag:
//!
//! ```cedar
//! context.requestParameters.hasTag("x-amz-acl") &&
//! context.requestParameters.getTag("x-amz-acl") == "public-read"
//! ```
//!
//! Tag keys are paths: nested objects are joined with `.` and array elements are numbered
//! (`ipPermissions.items.0.ipRanges.items.0.cidrIp`). Every tag value is a string: strings as
//! they are, numbers and booleans in their JSON spelling, and an object or array as its compact
//! JSON text, so `getTag("ipPermissions.items") like "*0.0.0.0/0*"` matches any element.
//! JSON `null` is absent.

use crate::event::Event;
use cedar_policy::RestrictedExpression;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// The free-form payloads of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    RequestParameters,
    ResponseElements,
    AdditionalEventData,
    ServiceEventDetails,
}

impl Field {
    /// Every field, in declaration order.
    pub const ALL: [Field; 4] = [
        Field::RequestParameters,
        Field::ResponseElements,
        Field::AdditionalEventData,
        Field::ServiceEventDetails,
    ];

    /// The CloudTrail field name, which is also the context attribute.
    pub fn name(self) -> &'static str {
        match self {
            Field::RequestParameters => "requestParameters",
            Field::ResponseElements => "responseElements",
            Field::AdditionalEventData => "additionalEventData",
            Field::ServiceEventDetails => "serviceEventDetails",
        }
    }

    /// The Cedar entity type that carries the field's tags.
    pub fn type_name(self) -> &'static str {
        match self {
            Field::RequestParameters => "RequestParameters",
            Field::ResponseElements => "ResponseElements",
            Field::AdditionalEventData => "AdditionalEventData",
            Field::ServiceEventDetails => "ServiceEventDetails",
        }
    }

    /// The field from a context attribute name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The raw JSON of this field in `event`.
    pub fn raw<'a>(self, event: &Event<'a>) -> Option<&'a RawValue> {
        match self {
            Field::RequestParameters => event.request_parameters,
            Field::ResponseElements => event.response_elements,
            Field::AdditionalEventData => event.additional_event_data,
            Field::ServiceEventDetails => event.service_event_details,
        }
    }
}

/// Which tags of a field the policies can read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum FieldNeed {
    /// None: the entity need not be built.
    #[default]
    Nothing,
    /// Only these keys (every `getTag`/`hasTag` of the field uses a literal key).
    Keys(BTreeSet<String>),
    /// Every tag (some key is computed).
    All,
}

impl FieldNeed {
    /// The union of two needs.
    pub fn merge(&mut self, other: &FieldNeed) {
        match (&mut *self, other) {
            (_, FieldNeed::Nothing) | (FieldNeed::All, _) => {}
            (_, FieldNeed::All) => *self = FieldNeed::All,
            (FieldNeed::Nothing, FieldNeed::Keys(k)) => *self = FieldNeed::Keys(k.clone()),
            (FieldNeed::Keys(mine), FieldNeed::Keys(k)) => mine.extend(k.iter().cloned()),
        }
    }

    /// Whether the entity must exist at all.
    pub fn is_needed(&self) -> bool {
        !matches!(self, FieldNeed::Nothing)
    }
}

/// The most bytes of any value a rule may read: each top-level string of an event, the JSON
/// text of `userIdentity`, `resources` and `tlsDetails`, and of each free-form payload (so every
/// tag of it). An event with a larger one is rejected, with the field's name: one event must not
/// cost gigabytes and minutes (a `like` over a 300 MB string), and a value too large to read is
/// never read as absent. CloudTrail itself omits payloads far smaller than this.
pub const MAX_VALUE: usize = 1 << 20;

/// A free-form payload, parsed: an error when it is larger than [`MAX_VALUE`], or when one of its
/// objects repeats a key (AWS never writes one; whichever reading won, the order of the keys
/// could hide a finding, so the event is ambiguous).
pub fn parse(field: Field, raw: &RawValue) -> Result<Value, String> {
    let json = raw.get();
    check(field, json)?;
    serde_json::from_str(json).map_err(|e| format!("{}: {e}", field.name()))
}

/// Whether a rule may read a free-form payload, for readers that do not [`parse`] it: not
/// larger than [`MAX_VALUE`], and no key repeated in one of its objects.
pub fn check<'a>(field: Field, json: &'a str) -> Result<(), String> {
    if json.len() > MAX_VALUE {
        return Err(format!(
            "{}: {} bytes, more than the {MAX_VALUE} bytes a rule may read",
            field.name(),
            json.len()
        ));
    }
    // A header is read without regard to case (`is_header`): `X-Amz-Acl` repeats `x-amz-acl`.
    let spelled = |key: Cow<'a, str>| match is_header(&key) {
        true => Cow::Owned(key.to_ascii_lowercase()),
        false => key,
    };
    if let Some(key) = crate::decode::repeated_key_as(json, spelled) {
        return Err(format!(
            "{}: the key {:?} appears twice in one object: the event is ambiguous",
            field.name(),
            crate::model::truncate(&key, 100)
        ));
    }
    Ok(())
}

/// Most tags one field may have when a policy reads every tag.
pub const MAX_TAGS: usize = 10_000;

/// Most bytes of tag values one field may have when a policy reads every tag (an object's tag
/// holds its JSON text, so deep nesting multiplies the size of a payload).
pub const MAX_TAG_BYTES: usize = 16 << 20;

/// The tags of `field` for `need`. A payload too large to be represented in full is an error,
/// never a partial set of tags that a policy could be evaded with.
pub fn tags(
    field: Field,
    value: Option<&Value>,
    need: &FieldNeed,
) -> Result<Vec<(String, RestrictedExpression)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    Ok(match need {
        FieldNeed::Nothing => Vec::new(),
        FieldNeed::Keys(keys) => key_values(Some(value), keys)
            .filter_map(|(k, text)| Some((k.clone(), RestrictedExpression::new_string(text?))))
            .collect(),
        FieldNeed::All => flattened(value)
            .map_err(|e| format!("{}: {e}", field.name()))?
            .into_iter()
            .map(|(k, v)| (k, RestrictedExpression::new_string(v)))
            .collect(),
    })
}

/// The tag of each of `keys` in a field (`None` where it has none): all that a policy reading
/// only these literal keys can see of it, so a decision is a function of these values.
pub fn key_values<'k>(
    value: Option<&Value>,
    keys: &'k BTreeSet<String>,
) -> impl Iterator<Item = (&'k String, Option<String>)> {
    keys.iter()
        .map(move |k| (k, value.and_then(|v| lookup(v, k)).and_then(tag_text)))
}

/// Every (path, value) of a field, as `getTag` sees them: each path's value is the one
/// [`lookup`] finds, so reading every tag and reading one key always agree, even where a key
/// containing `.` makes two paths spell the same.
pub fn flattened(value: &Value) -> Result<Vec<(String, String)>, String> {
    let mut paths = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut path = String::new();
    collect_paths(value, &mut path, &mut paths, &mut seen)?;
    // A header recorded in another case is also read by its lower-case name, as by `lookup`.
    let aliases: Vec<String> = paths
        .iter()
        .filter(|p| is_header(p) && p.to_ascii_lowercase() != **p)
        .map(|p| p.to_ascii_lowercase())
        .filter(|p| !seen.contains(p))
        .collect();
    paths.extend(aliases);
    let mut bytes = 0usize;
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        if let Some(text) = lookup(value, &p).and_then(tag_text) {
            bytes += p.len() + text.len();
            if bytes > MAX_TAG_BYTES {
                return Err(format!("more than {MAX_TAG_BYTES} bytes of fields"));
            }
            out.push((p, text));
        }
    }
    Ok(out)
}

fn collect_paths(
    value: &Value,
    path: &mut String,
    out: &mut Vec<String>,
    seen: &mut std::collections::HashSet<String>,
) -> Result<(), String> {
    if !path.is_empty() && !value.is_null() && seen.insert(path.clone()) {
        if out.len() >= MAX_TAGS {
            return Err(format!("more than {MAX_TAGS} fields"));
        }
        out.push(path.clone());
    }
    let len = path.len();
    let mut child = |key: &str, v: &Value, path: &mut String| {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let r = collect_paths(v, path, out, seen);
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

/// The tag value of a JSON node; `None` for null.
pub fn tag_text(value: &Value) -> Option<String> {
    tag_str(value).map(std::borrow::Cow::into_owned)
}

/// [`tag_text`], borrowed where the node is a string (the prefilter's tag tests).
pub fn tag_str(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match value {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Object(_) | Value::Array(_) => serde_json::to_string(value).ok().map(Cow::Owned),
    }
}

/// Whether a key is an HTTP header of S3's (`x-amz-acl`, `X-Amz-Copy-Source`): header names
/// are case-insensitive, so a policy's `x-amz-acl` reads a header recorded as `X-Amz-Acl`.
fn is_header(key: &str) -> bool {
    key.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"))
}

/// The node at a tag path. A key that itself contains `.` is found too, and a header key
/// ([`is_header`]) without regard to case when it is not there as written.
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(path) {
                return Some(v);
            }
            let dotted = path.match_indices('.').find_map(|(i, _)| {
                let head = path.get(..i)?;
                let tail = path.get(i + 1..)?;
                lookup(map.get(head)?, tail)
            });
            if dotted.is_some() || !is_header(path) {
                return dotted;
            }
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(path))
                .map(|(_, v)| v)
        }
        Value::Array(items) => {
            let (head, tail) = match path.split_once('.') {
                Some((h, t)) => (h, Some(t)),
                None => (path, None),
            };
            let item = items.get(head.parse::<usize>().ok()?)?;
            match tail {
                Some(t) => lookup(item, t),
                None => Some(item),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sg_ingress() -> Value {
        json!({
            "groupId": "sg-0123456789abcdef0",
            "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]},
            "dryRun": false,
            "tagSpecificationSet": null,
            "a.b": "dotted key"
        })
    }

    #[test]
    fn flattens_paths_and_scalars() {
        let flat = flattened(&sg_ingress()).unwrap();
        let get = |k: &str| flat.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("ipPermissions.items.0.ipRanges.items.0.cidrIp"),
            Some("0.0.0.0/0")
        );
        assert_eq!(get("ipPermissions.items.0.fromPort"), Some("22"));
        assert_eq!(get("dryRun"), Some("false"));
        assert_eq!(get("tagSpecificationSet"), None, "null is absent");
        assert!(
            get("ipPermissions.items")
                .unwrap()
                .contains(r#""cidrIp":"0.0.0.0/0""#)
        );
    }

    #[test]
    fn lookup_agrees_with_flatten() {
        let v = sg_ingress();
        for (path, text) in flattened(&v).unwrap() {
            assert_eq!(lookup(&v, &path).and_then(tag_text), Some(text), "{path}");
        }
        assert_eq!(lookup(&v, "a.b"), Some(&json!("dotted key")));
        assert_eq!(lookup(&v, "ipPermissions.items.7"), None);
        assert_eq!(lookup(&v, "ipPermissions.items.x"), None);
    }

    #[test]
    fn builds_only_the_needed_keys() {
        let v = json!({"x-amz-acl": "public-read", "bucketName": "b", "key": "k"});
        let need = FieldNeed::Keys(["x-amz-acl".to_string(), "missing".to_string()].into());
        let tags = tags(Field::RequestParameters, Some(&v), &need).unwrap();
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].0, "x-amz-acl");
    }

    #[test]
    fn hostile_payloads_are_bounded() {
        let wide: serde_json::Map<String, Value> = (0..MAX_TAGS * 2)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        let err = tags(
            Field::RequestParameters,
            Some(&Value::Object(wide)),
            &FieldNeed::All,
        )
        .unwrap_err();
        assert_eq!(
            err,
            format!("requestParameters: more than {MAX_TAGS} fields")
        );
        let mut deep = json!("x".repeat(1 << 20));
        for _ in 0..40 {
            deep = json!({ "k": deep });
        }
        assert!(
            flattened(&deep).unwrap_err().contains("bytes"),
            "nesting multiplies the bytes"
        );
    }

    #[test]
    fn every_tag_agrees_with_its_lookup() {
        // Two spellings of `a.b.c`: the one lookup finds is the tag's value in both modes.
        let v = json!({"a": {"b.c": "x"}, "a.b": {"c": "y"}});
        let all = flattened(&v).unwrap();
        let abc: Vec<&str> = all
            .iter()
            .filter(|(p, _)| p == "a.b.c")
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(abc, vec!["x"]);
        assert_eq!(lookup(&v, "a.b.c").and_then(tag_text).as_deref(), Some("x"));
    }

    #[test]
    fn header_keys_are_read_without_regard_to_case() {
        let v = json!({"X-Amz-Acl": "public-read", "bucketName": "b", "Key": "k"});
        assert_eq!(lookup(&v, "x-amz-acl"), Some(&json!("public-read")));
        assert_eq!(lookup(&v, "key"), None, "only headers");
        let all = flattened(&v).unwrap();
        assert!(all.contains(&("x-amz-acl".to_string(), "public-read".to_string())));
        let exact = json!({"X-Amz-Acl": "private", "x-amz-acl": "public-read"});
        assert_eq!(lookup(&exact, "x-amz-acl"), Some(&json!("public-read")));
        assert_eq!(
            flattened(&exact)
                .unwrap()
                .iter()
                .filter(|(k, _)| k == "x-amz-acl")
                .count(),
            1
        );
    }

    #[test]
    fn a_repeated_key_makes_a_payload_ambiguous_at_any_depth_and_in_any_spelling() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        for (json, key) in [
            (
                r#"{"x-amz-acl":"public-read","x-amz-acl":"private"}"#,
                "x-amz-acl",
            ),
            (
                r#"{"x-amz-acl":"private","x-amz-acl":"public-read"}"#,
                "x-amz-acl",
            ),
            (r#"{"a":{"b":[{"c":1,"c":2}]}}"#, "c"),
            (
                r#"{"x-amz-acl":"public-read","x-amz-\u0061cl":"private"}"#,
                "x-amz-acl",
            ),
        ] {
            assert_eq!(
                crate::decode::repeated_key(json).as_deref(),
                Some(key),
                "{json}"
            );
            let err = parse(Field::RequestParameters, &raw(json)).unwrap_err();
            assert!(err.contains("appears twice"), "{err}");
        }
        for json in [
            r#"{"a":{"a":"a"},"b":["a","a",{"a":1}],"c":"\"a\"","d":{"e":1},"e":{"d":1}}"#,
            r#"{"k":"v","k\"":"w"}"#,
            r#"{"Key":"a","key":"b"}"#,
        ] {
            assert_eq!(crate::decode::repeated_key(json), None, "{json}");
            assert!(parse(Field::RequestParameters, &raw(json)).is_ok());
        }
        // A header is read without regard to case: in two cases, it is given twice.
        let cases = r#"{"X-Amz-Acl":"public-read","x-amz-acl":"private"}"#;
        let err = parse(Field::RequestParameters, &raw(cases)).unwrap_err();
        assert!(
            err.contains(r#"the key "x-amz-acl" appears twice"#),
            "{err}"
        );
    }

    #[test]
    fn a_payload_larger_than_a_rule_may_read_is_an_error() {
        let big =
            serde_json::to_string(&json!({ "policyDocument": "x".repeat(MAX_VALUE) })).unwrap();
        let raw = serde_json::from_str::<Box<RawValue>>(&big).unwrap();
        let err = parse(Field::RequestParameters, &raw).unwrap_err();
        assert!(
            err.starts_with("requestParameters: 1048597 bytes, more than the 1048576 bytes"),
            "{err}"
        );
    }

    #[test]
    fn merges_needs() {
        let mut n = FieldNeed::Nothing;
        n.merge(&FieldNeed::Keys(["a".to_string()].into()));
        n.merge(&FieldNeed::Keys(["b".to_string()].into()));
        assert_eq!(
            n,
            FieldNeed::Keys(["a".to_string(), "b".to_string()].into())
        );
        n.merge(&FieldNeed::All);
        assert_eq!(n, FieldNeed::All);
        n.merge(&FieldNeed::Keys(["c".to_string()].into()));
        assert_eq!(n, FieldNeed::All);
    }
}
