//! The request parameters that name resources, read without building the whole JSON value:
//! by the quick reader when they are plain, by serde_json (with a seed that keeps only what
//! names resources) otherwise. A differential test holds the two to the same reading.

use super::service::SERVICES;
use crate::model::Field;
use std::borrow::Cow;

/// The request parameters that name resources, read without building the whole JSON value
/// (each event's parameters differ, and a `serde_json::Value` costs a map and an allocation per
/// member): the string members named in [`SERVICES`] (the last of duplicates), the
/// `InstanceId` of a top-level member object (newer EC2 calls), and the `instanceId`s of
/// `instancesSet.items`. Anything else, or parameters that are not an object, name nothing.
#[derive(Default)]
pub(super) struct Params<'a> {
    /// The members read (a service's, from [`SERVICES`]), and the value of each: slots
    /// rather than a list, since the last of duplicates counts (and no allocation per event).
    keys: &'static [&'static str],
    strings: [Option<Cow<'a, str>>; MAX_PARAMETER_KEYS],
    pub nested_instance_ids: Vec<Cow<'a, str>>,
    pub items_instance_ids: Vec<Cow<'a, str>>,
}

/// The most members [`SERVICES`] reads for a service.
pub(super) const MAX_PARAMETER_KEYS: usize = 5;

// A service reading more members than there are slots would not build.
#[allow(clippy::indexing_slicing)] // evaluated at compile time, within bounds by the loop
const _: () = {
    let mut i = 0;
    while i < SERVICES.len() {
        assert!(SERVICES[i].keys.len() <= MAX_PARAMETER_KEYS);
        i += 1;
    }
};

impl<'a> Params<'a> {
    fn new(keys: &'static [&'static str]) -> Params<'a> {
        Params {
            keys,
            ..Params::default()
        }
    }

    /// Sets a member's value when it is one of `keys`.
    fn set(&mut self, key: &str, value: Cow<'a, str>) {
        let at = self.keys.iter().position(|k| *k == key);
        if let Some(slot) = at.and_then(|at| self.strings.get_mut(at)) {
            *slot = Some(value);
        }
    }

    /// The non-empty string members, in the order of the service's keys in [`SERVICES`]
    /// (taken: by position, not by searching the keys for each).
    pub fn take_strings(&mut self) -> [Option<Cow<'a, str>>; MAX_PARAMETER_KEYS] {
        std::mem::take(&mut self.strings).map(|v| v.filter(|v| !v.is_empty()))
    }
}

/// The request parameters as [`Params`] reads them with serde_json, by the quick reader
/// ([`crate::model::quick`]), with the string members named in `keys` (the service's, from
/// [`SERVICES`]): `None` when it gives up, on anything but an object whose members named
/// in `keys` are unescaped when they are strings. When `nested` (EC2 reads the ids
/// inside member objects) it reads member objects as [`Member`] does, and gives up on an escape
/// in their keys or ids too.
pub(super) fn quick_params<'a>(
    raw: &'a str,
    keys: &'static [&'static str],
    nested: bool,
) -> Option<Params<'a>> {
    let mut c = crate::model::quick::Cursor::new(raw);
    let mut out = Params::new(keys);
    let mut members = c.begin(b'{', b'}')?;
    while members {
        let key = c.key()?;
        match (keys.iter().position(|k| *k == key), c.peek()) {
            (_, Some(b'{')) if nested => {
                let (instance_id, items) = quick_member_object(&mut c)?;
                out.nested_instance_ids
                    .extend(instance_id.map(Cow::Borrowed));
                if key == "instancesSet" {
                    out.items_instance_ids = items.into_iter().map(Cow::Borrowed).collect();
                }
            }
            (Some(at), Some(b'"')) => {
                if let Some(slot) = out.strings.get_mut(at) {
                    *slot = Some(Cow::Borrowed(c.plain_string()?));
                }
            }
            _ => c.skip_value()?,
        }
        members = c.more(b'}')?;
    }
    c.at_end().then_some(out)
}

/// A member object of the request parameters, as [`MemberVisitor`] reads it: its `InstanceId`
/// (the last, when a string) and the `instanceId`s of the objects of its `items` list (the last
/// `items`).
fn quick_member_object<'a>(
    c: &mut crate::model::quick::Cursor<'a>,
) -> Option<(Option<&'a str>, Vec<&'a str>)> {
    let (mut instance_id, mut items) = (None, Vec::new());
    let mut members = c.begin(b'{', b'}')?;
    while members {
        let key = c.key()?;
        match key {
            "InstanceId" => instance_id = quick_string_or_skip(c)?,
            "items" if c.peek() == Some(b'[') => {
                items.clear();
                let mut more = c.begin(b'[', b']')?;
                while more {
                    if c.peek() == Some(b'{') {
                        let mut id = None;
                        let mut members = c.begin(b'{', b'}')?;
                        while members {
                            let key = c.key()?;
                            if key == "instanceId" {
                                id = quick_string_or_skip(c)?;
                            } else {
                                c.skip_value()?;
                            }
                            members = c.more(b'}')?;
                        }
                        items.extend(id);
                    } else {
                        c.skip_value()?;
                    }
                    more = c.more(b']')?;
                }
            }
            "items" => {
                items.clear();
                c.skip_value()?;
            }
            _ => c.skip_value()?,
        }
        members = c.more(b'}')?;
    }
    Some((instance_id, items))
}

/// A plain string, or `None` past a value of another kind; `None` outside when it gives up.
fn quick_string_or_skip<'a>(c: &mut crate::model::quick::Cursor<'a>) -> Option<Option<&'a str>> {
    if c.peek() == Some(b'"') {
        Some(Some(c.plain_string()?))
    } else {
        c.skip_value()?;
        Some(None)
    }
}

/// The request parameters read by serde_json, with the string members named in `keys`.
#[cold]
#[inline(never)]
pub(super) fn params_by_serde<'a>(
    raw: &'a str,
    keys: &'static [&'static str],
) -> Result<Params<'a>, String> {
    let error = |e: serde_json::Error| format!("{}: {e}", Field::RequestParameters.name());
    let mut de = serde_json::Deserializer::from_str(raw);
    let params =
        serde::de::DeserializeSeed::deserialize(ParamsSeed(keys), &mut de).map_err(error)?;
    de.end().map_err(error)?;
    Ok(params)
}

/// Reads [`Params`] with serde_json, with the string members named in its keys.
struct ParamsSeed(&'static [&'static str]);

impl<'de> serde::de::DeserializeSeed<'de> for ParamsSeed {
    type Value = Params<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Params<'de>, D::Error> {
        struct Top(&'static [&'static str]);
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = Params<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("request parameters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Params<'de>, A::Error> {
                let mut out = Params::new(self.0);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let member: Member<'de> = map.next_value()?;
                    match member {
                        Member::Str(v) => out.set(&key, v),
                        Member::Object { instance_id, items } => {
                            out.nested_instance_ids.extend(instance_id);
                            if key == "instancesSet" {
                                // The last `instancesSet`, as for any member.
                                out.items_instance_ids = items;
                            }
                        }
                        Member::Other => {}
                    }
                }
                Ok(out)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Params<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Params::default())
            }
            fn visit_unit<E>(self) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
        }
        d.deserialize_any(Top(self.0))
    }
}

/// A member of the request parameters, as far as resources go.
enum Member<'a> {
    Str(Cow<'a, str>),
    /// An object: its `InstanceId` string, and the `instanceId`s of its `items` list.
    Object {
        instance_id: Option<Cow<'a, str>>,
        items: Vec<Cow<'a, str>>,
    },
    Other,
}

impl<'de> serde::Deserialize<'de> for Member<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MemberVisitor {
            inner: Inner::Member,
        })
    }
}

/// What a [`MemberVisitor`] is reading: a top-level member, an element of `items`, or a value
/// whose only use is a string (`InstanceId`, `instanceId`).
#[derive(Clone, Copy, PartialEq)]
enum Inner {
    Member,
    Item,
    Str,
}

/// Reads a member, an `items` element or a string; anything else is skipped whole.
struct MemberVisitor {
    inner: Inner,
}

impl<'de> serde::de::Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Member<'de>, E> {
        Ok(Member::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Member<'de>, E> {
        Ok(Member::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Member<'de>, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Member::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Member<'de>, A::Error> {
        let (mut instance_id, mut items) = (None, Vec::new());
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match (self.inner, key.as_ref()) {
                (Inner::Member, "InstanceId") | (Inner::Item, "instanceId") => {
                    instance_id = match map.next_value_seed(Seed(Inner::Str))? {
                        Member::Str(s) => Some(s),
                        _ => None,
                    };
                }
                (Inner::Member, "items") => items = map.next_value_seed(ItemsSeed)?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if self.inner == Inner::Str {
            return Ok(Member::Other);
        }
        Ok(Member::Object { instance_id, items })
    }
}

struct Seed(Inner);

impl<'de> serde::de::DeserializeSeed<'de> for Seed {
    type Value = Member<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Member<'de>, D::Error> {
        d.deserialize_any(MemberVisitor { inner: self.0 })
    }
}

/// `items`: the `instanceId` of each element; nothing if it is not a list.
struct ItemsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for ItemsSeed {
    type Value = Vec<Cow<'de, str>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = Vec<Cow<'de, str>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element_seed(Seed(Inner::Item))? {
                    if let Member::Object {
                        instance_id: Some(id),
                        ..
                    } = item
                    {
                        out.push(id);
                    }
                }
                Ok(out)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Vec::new())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
        }
        d.deserialize_any(Items)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::xorshift;
    use super::*;

    #[test]
    fn the_quick_reader_of_request_parameters_agrees_with_serde_json() {
        let keys = [
            r#""bucketName""#,
            r#""key""#,
            r#""instanceId""#,
            r#""roleArn""#,
            r#""instancesSet""#,
            r#""AssociateRequest""#,
            r#""policyDocument""#,
            r#""ke\u0079""#,
            r#""""#,
        ];
        let values = [
            r#""hoge0108""#,
            r#""i-0123""#,
            r#""""#,
            r#""{\"Version\":\"2012-10-17\"}""#,
            "null",
            "42",
            r#"[1,{"instanceId":"i-9"}]"#,
            r#"{"items":[{"instanceId":"i-1"},{"instanceId":"i-2"}]}"#,
            r#"{"InstanceId":"i-3","x":{}}"#,
            "false",
            r#"{"items":[{"instanceId":"i-4","instanceId":7},"i-5",[],{"InstanceId":"i-6"}]}"#,
            r#"{ "InstanceId" : "i-7" , "InstanceId" : {"a":1}, "items" : {"instanceId":"i-8"} }"#,
            r#"{"items":[{"instanceId":"i-9"}],"items":null,"InstanceId":"i-0"}"#,
            r#"{"items":[ {"x":{"instanceId":"i-10"},"instanceId":"i-11"} ],"items":[{"instanceId":"i-12"}]}"#,
            r#"{"items":[{"instanceId":"i-1\"3"}],"Instance\u0049d":"i-14"}"#,
            r#"{}"#,
        ];
        let spaces = ["", " ", "\r\n"];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut pick = |n: usize| xorshift(&mut state, n);
        let render = |p: &Params, nested: bool| {
            let mut out: Vec<String> = p
                .keys
                .iter()
                .zip(&p.strings)
                .filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?)))
                .collect();
            if nested {
                out.push(format!(
                    "{:?} {:?}",
                    p.nested_instance_ids, p.items_instance_ids
                ));
            }
            out
        };
        let (mut quick, mut quick_ids) = (0, 0);
        for _ in 0..5000 {
            let mut text = format!("{}{{", spaces[pick(3)]);
            for m in 0..pick(5) {
                if m > 0 {
                    text.push(',');
                }
                let (k, v) = (keys[pick(keys.len())], values[pick(values.len())]);
                text.push_str(&format!(
                    "{}{k}{}:{}{v}",
                    spaces[pick(3)],
                    spaces[pick(3)],
                    spaces[pick(3)]
                ));
            }
            text.push_str(&format!("}}{}", spaces[pick(3)]));
            let nested = pick(2) == 0;
            let keys = SERVICES[pick(SERVICES.len())].keys;
            let by_serde = params_by_serde(&text, keys).unwrap();
            if let Some(q) = quick_params(&text, keys, nested) {
                quick += 1;
                if nested && !(q.nested_instance_ids.is_empty() && q.items_instance_ids.is_empty())
                {
                    quick_ids += 1;
                }
                assert_eq!(render(&q, nested), render(&by_serde, nested), "{text}");
            }
        }
        assert!(quick > 1000, "the quick reader read {quick} objects");
        assert!(
            quick_ids > 100,
            "the quick reader found ids in {quick_ids} objects"
        );
    }
}
