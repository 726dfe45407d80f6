//! Resources: what an event acted on.
//!
//! In order of preference: the event's `resources[]`; else well-known request parameters of
//! the service (`bucketName`/`key`, `userName`, `roleName`, `instanceId`, ...); else the account
//! that received the event. Every resource is a `Resource` entity whose id is its ARN; an S3
//! object is in its bucket, and everything is in its `Account`.
//!
//! - `listed.rs` reads the `resources` list;
//! - `params.rs` reads the request parameters that name resources;
//! - `service/` names them, one file per service: adding a service's resources is one file
//!   beside its siblings and a line in its `SERVICES`.

mod listed;
mod params;
mod service;

use super::facts::{self, Attrs, FactCache};
use super::principal::PrincipalModel;
use super::{EventView, types, uid};
use crate::arn::Arn;
use crate::inventory::{Inventory, ResourceTags, Tags};
use crate::text::concat;
use crate::time::Timestamp;
use cedar_policy::{Entity, EntityUid};
use listed::{canonical_resources, quick_resources, resources_by_serde};
use service::from_request_parameters;
use std::borrow::Cow;
use std::collections::HashMap;

/// The attributes of `Resource`, with their Cedar schema types (`?`: optional).
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("type", "String"),
    ("arn?", "String"),
    ("name?", "String"),
    ("nameLower?", "String"),
    ("accountId?", "String"),
    ("region?", "String"),
    // From the inventory: present only when it can tell.
    ("accountInOrganization?", "Bool"),
    ("inventoryTakenAt?", "datetime"),
];

/// The resource attributes that come from the inventory.
pub const INVENTORY_ATTRIBUTES: &[&str] = &["accountInOrganization", "inventoryTakenAt"];

/// The value of an attribute of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrValue<'a> {
    Str(&'a str),
    /// A string, in lower case (lowered when added: a value's key is the string as it is).
    Lower(&'a str),
    Bool(bool),
    Time(Timestamp),
}

impl AttrValue<'_> {
    /// Adds the value to an entity's attributes.
    pub fn add_to(self, attrs: &mut Attrs, name: &str) {
        match self {
            AttrValue::Str(v) => attrs.string(name, Some(v)),
            AttrValue::Lower(v) => attrs.string(name, Some(&v.to_lowercase())),
            AttrValue::Bool(v) => attrs.bool(name, Some(v)),
            AttrValue::Time(v) => attrs.datetime(name, Some(v)),
        }
    }
}

/// A resource of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceModel {
    pub uid: EntityUid,
    /// The CloudTrail resource type, e.g. `AWS::S3::Object`; `AWS::Account` for the fallback.
    pub kind: String,
    pub arn: Option<String>,
    pub name: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// A containing resource (the bucket of an object).
    pub container: Option<Box<ResourceModel>>,
}

impl ResourceModel {
    fn new(kind: &str, arn: String, account_id: Option<String>) -> Self {
        let derived = ResourceAttrs::of_arn(kind, &arn, account_id.as_deref());
        let (name, region) = (
            derived.name().map(str::to_string),
            derived.region().map(str::to_string),
        );
        let account_id = derived.account_id().map(str::to_string);
        let bucket_arn = (kind == "AWS::S3::Object")
            .then(|| object_bucket_arn(&arn))
            .flatten();
        let mut model = ResourceModel {
            uid: uid(&types().resource, &arn),
            kind: kind.to_string(),
            arn: Some(arn),
            name,
            account_id,
            region,
            container: None,
        };
        if let Some(bucket_arn) = bucket_arn {
            model.container = Some(Box::new(ResourceModel::new(
                "AWS::S3::Bucket",
                bucket_arn,
                model.account_id.clone(),
            )));
        }
        model
    }

    /// The account itself, when the event names no resource.
    fn account(account_id: &str) -> Self {
        ResourceModel {
            uid: uid(&types().resource, account_id),
            kind: "AWS::Account".to_string(),
            arn: None,
            name: Some(account_id.to_string()),
            account_id: Some(account_id.to_string()),
            region: None,
            container: None,
        }
    }

    /// The ARN, else what the entity stands for: what a person should see.
    pub fn display(&self) -> String {
        match (&self.arn, self.kind.as_str()) {
            (Some(arn), _) => arn.clone(),
            (None, "AWS::Account") => format!("account {}", self.uid.id().unescaped()),
            (None, _) => self.uid.id().unescaped().to_string(),
        }
    }

    /// Appends a key equal for two resources exactly when their entities are: everything the
    /// entities are built from, length-prefixed.
    pub fn write_key(&self, out: &mut String) {
        use std::fmt::Write;
        for part in [
            Some(&self.kind),
            self.arn.as_ref(),
            self.name.as_ref(),
            self.account_id.as_ref(),
            self.region.as_ref(),
        ] {
            match part {
                Some(p) => crate::text::push_value(out, 's', p),
                None => out.push('-'),
            }
        }
        let _ = write!(out, "{}", self.uid);
        match &self.container {
            Some(c) => {
                out.push('<');
                c.write_key(out);
                out.push('>');
            }
            None => out.push('.'),
        }
    }

    /// The resource entity, its container, and its account, with the inventory's tags.
    pub fn entities(&self, inv: &Inventory) -> Vec<Entity> {
        let mut out = Vec::with_capacity(3);
        self.entities_cached(inv, true, &mut FactCache::default(), &mut out);
        out
    }

    /// Appends the resource's entities to `out`: its own (built each time: an object rarely
    /// repeats), its containers' and its accounts' (from `cache`: they do). With
    /// `inventoryTakenAt` only when `taken_at`.
    pub fn entities_cached(
        &self,
        inv: &Inventory,
        taken_at: bool,
        cache: &mut FactCache,
        out: &mut Vec<Entity>,
    ) {
        out.push(self.entity_with(inv, taken_at));
        let mut accounts: Vec<&str> = self.account_id.as_deref().into_iter().collect();
        let mut next = self.container.as_deref();
        while let Some(c) = next {
            // Keyed by everything the entity is made of (the same bucket may be recorded with
            // different owners), containers included.
            let mut key = format!("res:{taken_at}:");
            c.write_key(&mut key);
            cache.extend_with(out, key, || vec![c.entity_with(inv, taken_at)]);
            if let Some(a) = c.account_id.as_deref()
                && !accounts.contains(&a)
            {
                accounts.push(a);
            }
            next = c.container.as_deref();
        }
        for a in accounts {
            cache.extend_with(out, format!("acct:{a}"), || facts::account_entities(a, inv));
        }
    }

    /// The resource's tags (its entity's tags), and when the inventory took them.
    pub fn tags(&self, inv: &Inventory) -> (Tags, Option<Timestamp>) {
        self.tags_ref(inv).owned().unwrap_or_default()
    }

    /// The resource's tags, borrowed from the inventory.
    pub fn tags_ref<'i>(&self, inv: &'i Inventory) -> ResourceTags<'i> {
        self.key().tags(inv)
    }

    /// What identifies the resource.
    pub fn key(&self) -> ResourceKey<'_> {
        match self.arn.as_deref() {
            Some(arn) => ResourceKey::Arn(Cow::Borrowed(arn)),
            None => ResourceKey::Account(self.uid.id().unescaped()),
        }
    }

    /// The attributes of the resource's entity ([`ATTRIBUTES`]), `inventoryTakenAt` only when
    /// `taken_at`.
    pub fn attr_values(
        &self,
        inv: &Inventory,
        taken_at: bool,
    ) -> Vec<(&'static str, AttrValue<'_>)> {
        self.attrs().values(&self.key(), inv, taken_at)
    }

    /// What its attributes are made of, borrowed.
    pub fn attrs(&self) -> ResourceAttrs<'_> {
        ResourceAttrs {
            kind: &self.kind,
            arn: self.arn.as_deref(),
            name: Some(self.name.as_deref()),
            account_id: self.account_id.as_deref(),
            region: Some(self.region.as_deref()),
        }
    }

    /// This resource's own entity (not its containers' or account's).
    pub fn entity(&self, inv: &Inventory) -> Entity {
        self.entity_with(inv, true)
    }

    /// The entity, with `inventoryTakenAt` only when `taken_at` (it is parsed each time).
    pub fn entity_with(&self, inv: &Inventory, taken_at: bool) -> Entity {
        let mut attrs = Attrs::default();
        for (name, value) in self.attr_values(inv, taken_at) {
            value.add_to(&mut attrs, name);
        }
        let (tags, _) = self.tags(inv);
        // Ancestors are listed in full, so no transitive closure is needed later.
        let mut parents = Vec::new();
        let mut next = self.container.as_deref();
        while let Some(c) = next {
            parents.push(c.uid.clone());
            if let Some(a) = &c.account_id {
                parents.push(uid(&types().account, a));
            }
            next = c.container.as_deref();
        }
        if let Some(a) = &self.account_id {
            parents.push(uid(&types().account, a));
        }
        parents.sort_by_key(|u| u.to_string());
        parents.dedup();
        facts::entity(self.uid.clone(), attrs, parents, &tags)
    }
}

/// What a resource's attributes are made of, borrowed: from its model, or straight from the
/// event's names ([`resource_attrs`]), derived from its ARN in one place. What comes from the
/// ARN is derived when it is read: per event, policies read one or two attributes.
pub struct ResourceAttrs<'a> {
    kind: &'a str,
    arn: Option<&'a str>,
    /// Given (the model's, the account's); `None` to derive from the ARN.
    name: Option<Option<&'a str>>,
    /// Given by the event; else the ARN's.
    account_id: Option<&'a str>,
    /// Given (the model's); `None` to derive from the ARN.
    region: Option<Option<&'a str>>,
}

/// `Some` unless empty.
fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl<'a> ResourceAttrs<'a> {
    /// A resource named by its ARN: its name, region and (unless given) account from the ARN.
    fn of_arn(kind: &'a str, arn: &'a str, account_id: Option<&'a str>) -> Self {
        ResourceAttrs {
            kind,
            arn: Some(arn),
            name: None,
            account_id,
            region: None,
        }
    }

    /// The account itself, when the event names no resource (as [`ResourceModel::account`]).
    fn of_account(account_id: &'a str) -> Self {
        ResourceAttrs {
            kind: "AWS::Account",
            arn: None,
            name: Some(Some(account_id)),
            account_id: Some(account_id),
            region: Some(None),
        }
    }

    fn parts(&self) -> Option<Arn<'a>> {
        self.arn.and_then(Arn::parse)
    }

    /// Its short name: given, else from the ARN's resource part.
    fn name(&self) -> Option<&'a str> {
        match self.name {
            Some(given) => given.and_then(non_empty),
            None => self
                .parts()
                .and_then(|a| non_empty(name_of(a.service, a.resource))),
        }
    }

    /// Its account: given, else the ARN's.
    pub fn account_id(&self) -> Option<&'a str> {
        self.account_id
            .and_then(non_empty)
            .or_else(|| self.parts().and_then(|a| non_empty(a.account)))
    }

    fn region(&self) -> Option<&'a str> {
        match self.region {
            Some(given) => given.and_then(non_empty),
            None => self.parts().and_then(|a| non_empty(a.region)),
        }
    }

    /// The value of one attribute ([`ATTRIBUTES`]) of the resource `key` names;
    /// `inventoryTakenAt` only when `taken_at`.
    pub fn value(
        &self,
        attr: &str,
        key: &ResourceKey,
        inv: &Inventory,
        taken_at: bool,
    ) -> Option<AttrValue<'a>> {
        let in_org = || self.account_id().and_then(|a| inv.in_organization(a));
        match attr {
            "type" => non_empty(self.kind).map(AttrValue::Str),
            "arn" => self.arn.and_then(non_empty).map(AttrValue::Str),
            "name" => self.name().map(AttrValue::Str),
            "nameLower" => self.name().map(AttrValue::Lower),
            "accountId" => self.account_id().map(AttrValue::Str),
            "region" => self.region().map(AttrValue::Str),
            _ if inv.is_empty() => None,
            "accountInOrganization" => in_org().map(AttrValue::Bool),
            "inventoryTakenAt" if taken_at => {
                // When the facts read were taken: the tags' (looked up again for it) and the
                // organization's, when it says whether the account is in it.
                let tags = key.tags(inv).base.and_then(|(_, at)| at);
                let org = in_org().and(inv.organization);
                tags.max(org).map(AttrValue::Time)
            }
            _ => None,
        }
    }

    /// The attribute values ([`ATTRIBUTES`]) of the resource `key` names, in that order,
    /// `inventoryTakenAt` only when `taken_at`.
    pub fn values(
        &self,
        key: &ResourceKey,
        inv: &Inventory,
        taken_at: bool,
    ) -> Vec<(&'static str, AttrValue<'a>)> {
        ATTRIBUTES
            .iter()
            .map(|(name, _)| name.trim_end_matches('?'))
            .filter_map(|name| Some((name, self.value(name, key, inv, taken_at)?)))
            .collect()
    }
}

/// A resource of an event as named, before it is modelled: enough for its key and attributes.
pub struct NamedResource<'a> {
    pub key: ResourceKey<'a>,
    kind: Cow<'a, str>,
    account_id: Option<Cow<'a, str>>,
}

impl NamedResource<'_> {
    /// Its ARN; `None` for the account.
    fn arn(&self) -> Option<&str> {
        match &self.key {
            ResourceKey::Arn(a) => Some(a),
            ResourceKey::Account(_) => None,
        }
    }

    /// Its attributes, borrowed.
    pub fn attrs(&self) -> ResourceAttrs<'_> {
        match &self.key {
            ResourceKey::Arn(arn) => {
                ResourceAttrs::of_arn(&self.kind, arn, self.account_id.as_deref())
            }
            ResourceKey::Account(id) => ResourceAttrs::of_account(id),
        }
    }
}

/// The resources of an event as [`resources_of`] models them, in the same order and number, with
/// the same attributes, without building their entity uids and containers: what the engine needs
/// per event when policies read resources only by attributes and tags with literal names.
pub fn resource_attrs<'a>(
    view: &'a EventView,
    principal: &'a PrincipalModel,
) -> Result<Vec<NamedResource<'a>>, String> {
    let mut out = Vec::with_capacity(2);
    let listed = match find(view, principal, &mut out, |n| NamedResource {
        key: ResourceKey::Arn(n.arn),
        kind: n.kind,
        account_id: n.account_id,
    })? {
        Found::Account(account) => {
            return Ok(vec![NamedResource {
                key: ResourceKey::Account(account),
                kind: Cow::Borrowed("AWS::Account"),
                account_id: Some(Cow::Borrowed(account)),
            }]);
        }
        Found::Named { listed } => listed,
    };
    // As in `resources_of`: a listed object without an account is in its bucket entry's.
    if listed {
        let arn = NamedResource::arn;
        let index = FirstByArn::of(&out, arn);
        for i in 0..out.len() {
            let Some(r) = out.get(i) else { continue };
            if r.kind != "AWS::S3::Object" || r.attrs().account_id().is_some() {
                continue;
            }
            let Some(bucket) = arn(r).and_then(object_bucket_arn) else {
                continue;
            };
            let account = index
                .find(&out, arn, &bucket)
                .and_then(|e| out.get(e))
                .and_then(|e| e.attrs().account_id().map(str::to_string));
            if let (Some(account), Some(r)) = (account, out.get_mut(i)) {
                r.account_id = Some(Cow::Owned(account));
            }
        }
    }
    dedup_by(&mut out, |r| r.key.id());
    Ok(out)
}

/// Where the first item with each ARN is: found by a scan among a few items, through a map among
/// many (a hostile event can list thousands of objects, and each looks its bucket up).
struct FirstByArn(Option<HashMap<String, usize>>);

impl FirstByArn {
    fn of<T>(items: &[T], arn: fn(&T) -> Option<&str>) -> FirstByArn {
        if items.len() <= 16 {
            return FirstByArn(None);
        }
        let mut first = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(a) = arn(item) {
                first.entry(a.to_string()).or_insert(i);
            }
        }
        FirstByArn(Some(first))
    }

    fn find<T>(&self, items: &[T], arn: fn(&T) -> Option<&str>, wanted: &str) -> Option<usize> {
        match &self.0 {
            Some(first) => first.get(wanted).copied(),
            None => items.iter().position(|l| arn(l) == Some(wanted)),
        }
    }
}

/// The ARN of an S3 object's bucket, as [`ResourceModel::new`] makes its container.
fn object_bucket_arn(arn: &str) -> Option<String> {
    let parts = Arn::parse(arn).filter(|a| a.service == "s3")?;
    let (bucket, _key) = parts.resource.split_once('/')?;
    Some(concat(&["arn:", parts.partition, ":s3:::", bucket]))
}

/// The short name of a resource from its ARN's resource part.
fn name_of<'a>(service: &str, resource: &'a str) -> &'a str {
    match service {
        // `bucket` or `bucket/key`: an object's name is its key.
        "s3" => resource.split_once('/').map(|(_, k)| k).unwrap_or(resource),
        _ => resource.rsplit(['/', ':']).next().unwrap_or(resource),
    }
}

/// A resource as the event names it, before it is modelled.
struct Named<'a> {
    kind: Cow<'a, str>,
    arn: Cow<'a, str>,
    account_id: Option<Cow<'a, str>>,
}

/// What an event acted on: named resources (at least one, given to the caller as they are
/// found), else its account.
enum Found<'a> {
    /// With whether they are the event's `resources` list (else from its request parameters).
    Named {
        listed: bool,
    },
    Account(&'a str),
}

/// What identifies a resource of an event: its ARN, or for the account fallback the account.
/// Enough to look up its tags without modelling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceKey<'a> {
    Arn(Cow<'a, str>),
    Account(&'a str),
}

impl ResourceKey<'_> {
    /// Its text: the ARN, or the account id (the resource entity's id).
    pub fn id(&self) -> &str {
        match self {
            ResourceKey::Arn(arn) => arn,
            ResourceKey::Account(id) => id,
        }
    }

    /// The same key, borrowing from this one.
    pub fn borrowed(&self) -> ResourceKey<'_> {
        match self {
            ResourceKey::Arn(arn) => ResourceKey::Arn(Cow::Borrowed(arn)),
            ResourceKey::Account(id) => ResourceKey::Account(id),
        }
    }

    /// The resource's tags, borrowed from the inventory (as [`ResourceModel::tags_ref`]).
    pub fn tags<'i>(&self, inv: &'i Inventory) -> ResourceTags<'i> {
        if inv.is_empty() {
            return ResourceTags::default();
        }
        match self {
            ResourceKey::Arn(arn) => inv.resource_tags_ref(arn),
            ResourceKey::Account(id) => ResourceTags {
                base: None,
                extra: inv.extra_tags("Resource", id),
            },
        }
    }

    /// The resource's entity uid, as [`ResourceModel::uid`].
    pub fn uid(&self) -> EntityUid {
        uid(&types().resource, self.id())
    }
}

/// The resources of an event (never empty); an error if `requestParameters` is unreadable.
pub fn resources_of(
    view: &EventView,
    principal: &PrincipalModel,
) -> Result<Vec<ResourceModel>, String> {
    let mut out = Vec::with_capacity(2);
    let listed = match find(view, principal, &mut out, |n| {
        ResourceModel::new(
            &n.kind,
            n.arn.into_owned(),
            n.account_id.map(Cow::into_owned),
        )
    })? {
        Found::Account(account) => return Ok(vec![ResourceModel::account(account)]),
        Found::Named { listed } => listed,
    };
    // An S3 data event lists the object and its bucket; only the bucket entry says who owns
    // it. The object's container is that entry, and the object is in the owner's account too,
    // so that every copy of an entity in a request's store is the same.
    // (An entry that is a container names a bucket: it has no container of its own to change.)
    if listed {
        let arn: fn(&ResourceModel) -> Option<&str> = |r| r.arn.as_deref();
        let index = FirstByArn::of(&out, arn);
        for i in 0..out.len() {
            let entry = out
                .get(i)
                .and_then(|r| r.container.as_ref())
                .and_then(|c| c.arn.as_deref())
                .and_then(|c| index.find(&out, arn, c))
                .and_then(|e| out.get(e))
                .cloned();
            if let (Some(entry), Some(r)) = (entry, out.get_mut(i)) {
                if r.account_id.is_none() {
                    r.account_id = entry.account_id.clone();
                }
                r.container = Some(Box::new(entry));
            }
        }
    }
    dedup_by(&mut out, |r| r.arn.as_deref().unwrap_or_default());
    Ok(out)
}

/// The keys of an event's resources, in the order and number of [`resources_of`], without
/// modelling them: what the engine needs per event when policies read resources only by tags.
/// Appended to `keys` (empty: the engine reuses its allocation from event to event).
pub fn resource_keys<'a>(
    view: &'a EventView,
    principal: &'a PrincipalModel,
    keys: &mut Vec<ResourceKey<'a>>,
) -> Result<(), String> {
    // Room for an S3 data event's object and bucket, reserved at once: growing from nothing
    // takes mimalloc's slow path for a size class nothing else uses per event.
    keys.reserve(2);
    match find(view, principal, keys, |n| ResourceKey::Arn(n.arn))? {
        Found::Account(account) => keys.push(ResourceKey::Account(account)),
        Found::Named { .. } => dedup_by(keys, ResourceKey::id),
    }
    Ok(())
}

/// Keeps the first of each key, in order (the key is a resource's uid).
fn dedup_by<T>(items: &mut Vec<T>, key: impl Fn(&T) -> &str) {
    // Few resources per event: a scan beats hashing, but not on a hostile event with thousands.
    if items.len() <= 16 {
        let mut i = 0;
        while i < items.len() {
            let dup = items
                .get(i)
                .is_some_and(|x| items.iter().take(i).any(|y| key(y) == key(x)));
            if dup {
                items.remove(i);
            } else {
                i += 1;
            }
        }
        return;
    }
    dedup_many(items, key);
}

/// [`dedup_by`] for many items (a hostile event's): by hashing.
#[cold]
#[inline(never)]
fn dedup_many<T>(items: &mut Vec<T>, key: impl Fn(&T) -> &str) {
    let mut seen = std::collections::HashSet::new();
    let keys: Vec<bool> = items
        .iter()
        .map(|x| seen.insert(key(x).to_string()))
        .collect();
    let mut keep = keys.into_iter();
    items.retain(|_| keep.next().unwrap_or(false));
}

/// Names the resources of an event into `out` (empty), each made by `make` from how the event
/// names it: no list of [`Named`] in between, on the path of every event whose resources a
/// policy reads.
fn find<'a, T>(
    view: &'a EventView,
    principal: &'a PrincipalModel,
    out: &mut Vec<T>,
    mut make: impl FnMut(Named<'a>) -> T,
) -> Result<Found<'a>, String> {
    if let Some(raw) = view.event.resources {
        // Each reader gives up on what it does not expect, and what it gave is read again.
        if canonical_resources(raw.get(), &mut |n| out.push(make(n))).is_none() {
            out.clear();
            if quick_resources(raw.get(), &mut |n| out.push(make(n))).is_none() {
                out.clear();
                out.extend(resources_by_serde(raw.get())?.into_iter().map(&mut make));
            }
        }
        if !out.is_empty() {
            return Ok(Found::Named { listed: true });
        }
    }
    from_request_parameters(view, principal, &mut |n| out.push(make(n)))?;
    if !out.is_empty() {
        return Ok(Found::Named { listed: false });
    }
    Ok(Found::Account(
        view.event
            .recipient_account_id
            .as_deref()
            .or(principal.account_id.as_deref())
            .unwrap_or("unknown"),
    ))
}

/// What the tests of the resource modules share.
#[cfg(test)]
mod testing {
    pub use super::*;

    pub fn view(json: &str) -> EventView<'_> {
        EventView::parse(json).unwrap()
    }

    pub fn principal() -> PrincipalModel {
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(
            r#"{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012"}"#,
        )
        .unwrap();
        PrincipalModel::from_identity(Some(&raw), &Inventory::default()).unwrap()
    }

    pub fn keys_of<'a>(v: &'a EventView, p: &'a PrincipalModel) -> Vec<ResourceKey<'a>> {
        let mut keys = Vec::new();
        resource_keys(v, p, &mut keys).unwrap();
        keys
    }

    pub fn ids(rs: &[ResourceModel]) -> Vec<String> {
        rs.iter().map(|r| format!("{} {}", r.kind, r.uid)).collect()
    }

    /// A pseudo-random number below `n`: generated inputs that are the same on every run.
    pub fn xorshift(state: &mut u64, n: usize) -> usize {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;

    #[test]
    fn prefers_the_resources_field() {
        let v = view(
            r#"{"eventTime":"2024-01-07T22:35:30Z","eventSource":"s3.amazonaws.com","eventName":"GetObject",
            "requestParameters":{"bucketName":"hoge0108","key":"hoge.txt"},
            "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::hoge0108/hoge.txt"},
            {"accountId":"123456789012","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::hoge0108"}]}"#,
        );
        let rs = resources_of(&v, &principal()).unwrap();
        assert_eq!(
            ids(&rs),
            vec![
                r#"AWS::S3::Object Resource::"arn:aws:s3:::hoge0108/hoge.txt""#,
                r#"AWS::S3::Bucket Resource::"arn:aws:s3:::hoge0108""#
            ]
        );
        assert_eq!(rs[0].name.as_deref(), Some("hoge.txt"));
        let object_entities: Vec<String> = rs[0]
            .entities(&Inventory::default())
            .iter()
            .map(|e| e.uid().to_string())
            .collect();
        assert_eq!(
            object_entities,
            vec![
                r#"Resource::"arn:aws:s3:::hoge0108/hoge.txt""#,
                r#"Resource::"arn:aws:s3:::hoge0108""#,
                r#"Account::"123456789012""#
            ]
        );
        assert_eq!(
            rs[0].account_id.as_deref(),
            Some("123456789012"),
            "the bucket owner's"
        );
        assert_eq!(
            rs[0].container.as_deref(),
            Some(&rs[1]),
            "the container is the listed bucket"
        );
    }

    #[test]
    fn names_resources_in_the_principals_partition() {
        for partition in ["aws", "aws-cn", "aws-us-gov", "aws-iso-b"] {
            let raw: Box<serde_json::value::RawValue> = serde_json::from_str(&format!(
                r#"{{"type":"IAMUser","arn":"arn:{partition}:iam::123456789012:user/alice","accountId":"123456789012"}}"#
            ))
            .unwrap();
            let principal =
                PrincipalModel::from_identity(Some(&raw), &Inventory::default()).unwrap();
            for (source, params, arn) in [
                ("iam", r#"{"roleName":"ops"}"#, "iam::123456789012:role/ops"),
                ("s3", r#"{"bucketName":"b","key":"k/1"}"#, "s3:::b/k/1"),
                (
                    "ec2",
                    r#"{"instanceId":"i-0abc"}"#,
                    "ec2:eu-west-1:123456789012:instance/i-0abc",
                ),
                (
                    "lambda",
                    r#"{"functionName":"f"}"#,
                    "lambda:eu-west-1:123456789012:function:f",
                ),
            ] {
                let json = format!(
                    r#"{{"eventTime":"2024-01-07T22:35:30Z","eventSource":"{source}.amazonaws.com","eventName":"X","awsRegion":"eu-west-1","recipientAccountId":"123456789012","requestParameters":{params}}}"#
                );
                let v = view(&json);
                let keys: Vec<String> = keys_of(&v, &principal)
                    .iter()
                    .map(|k| k.id().to_string())
                    .collect();
                assert_eq!(keys, vec![format!("arn:{partition}:{arn}")]);
            }
        }
    }

    #[test]
    fn derives_from_request_parameters() {
        let v = view(
            r#"{"eventTime":"2024-01-07T22:35:30Z","eventSource":"iam.amazonaws.com","eventName":"AttachUserPolicy",
            "recipientAccountId":"123456789012",
            "requestParameters":{"userName":"bob","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}}"#,
        );
        let rs = resources_of(&v, &principal()).unwrap();
        assert_eq!(
            ids(&rs),
            vec![
                r#"AWS::IAM::User Resource::"arn:aws:iam::123456789012:user/bob""#,
                r#"AWS::IAM::ManagedPolicy Resource::"arn:aws:iam::aws:policy/AdministratorAccess""#
            ]
        );
        assert_eq!(rs[0].name.as_deref(), Some("bob"));
        let entities: Vec<String> = rs[0]
            .entities(&Inventory::default())
            .iter()
            .map(|e| e.uid().to_string())
            .collect();
        assert!(entities.contains(&r#"Account::"123456789012""#.to_string()));

        let run = view(
            r#"{"eventTime":"2024-01-07T22:35:30Z","eventSource":"ec2.amazonaws.com","eventName":"StopInstances",
            "awsRegion":"ap-northeast-1","recipientAccountId":"123456789012",
            "requestParameters":{"instancesSet":{"items":[{"instanceId":"i-0f48040475b4f3464"}]}}}"#,
        );
        assert_eq!(
            ids(&resources_of(&run, &principal()).unwrap()),
            vec![
                r#"AWS::EC2::Instance Resource::"arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0f48040475b4f3464""#
            ]
        );
    }

    #[test]
    fn objects_of_a_long_list_are_in_their_bucket_entrys_account() {
        // Past 16 entries the bucket entry is found through a map: the same answer as a scan.
        for objects in [3, 40] {
            let mut list: Vec<String> = (0..objects)
                .map(|i| format!(r#"{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k{i}"}}"#))
                .collect();
            list.push(r#"{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::other/k"}"#.into());
            list.push(
                r#"{"accountId":"444455556666","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"}"#
                    .into(),
            );
            let json = format!(
                r#"{{"eventTime":"2024-01-07T22:35:30Z","eventSource":"s3.amazonaws.com","eventName":"DeleteObjects","resources":[{}]}}"#,
                list.join(",")
            );
            let v = view(&json);
            let p = principal();
            let models = resources_of(&v, &p).unwrap();
            let named = resource_attrs(&v, &p).unwrap();
            assert_eq!(models.len(), objects + 2);
            assert_eq!(named.len(), objects + 2);
            for (m, n) in models.iter().zip(&named) {
                let expected = match m.arn.as_deref() {
                    Some(a) if a.starts_with("arn:aws:s3:::b") => Some("444455556666"),
                    _ => None,
                };
                assert_eq!(m.account_id.as_deref(), expected, "{:?}", m.arn);
                assert_eq!(n.attrs().account_id(), expected, "{:?}", m.arn);
                let container = m.container.as_ref().and_then(|c| c.account_id.as_deref());
                if m.kind == "AWS::S3::Object" {
                    assert_eq!(container, expected, "{:?}", m.arn);
                }
            }
        }
    }

    #[test]
    fn a_lower_case_arn_names_the_resource() {
        // Panther's test events and several exporters write `arn` for CloudTrail's `ARN`.
        let v = view(
            r#"{"eventTime":"2024-01-07T22:35:30Z","eventSource":"s3.amazonaws.com","eventName":"GetObject",
            "requestParameters":{"bucketName":"other","key":"x"},
            "resources":[{"type":"AWS::S3::Object","arn":"arn:aws:s3:::hoge0108/hoge.txt"},
            {"accountId":"123456789012","type":"AWS::S3::Bucket","arn":"arn:aws:s3:::hoge0108"}]}"#,
        );
        let expected = vec![
            r#"AWS::S3::Object Resource::"arn:aws:s3:::hoge0108/hoge.txt""#,
            r#"AWS::S3::Bucket Resource::"arn:aws:s3:::hoge0108""#,
        ];
        let p = principal();
        assert_eq!(ids(&resources_of(&v, &p).unwrap()), expected);
        let keys: Vec<String> = keys_of(&v, &p)
            .iter()
            .map(|k| k.uid().to_string())
            .collect();
        assert_eq!(
            keys,
            expected
                .iter()
                .map(|e| e.split_once(' ').unwrap().1)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            resource_attrs(&v, &p).unwrap()[0].attrs().account_id(),
            Some("123456789012")
        );
    }

    #[test]
    fn falls_back_to_the_account() {
        let v = view(
            r#"{"eventTime":"2024-01-07T22:35:30Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity",
            "recipientAccountId":"123456789012","requestParameters":null}"#,
        );
        let rs = resources_of(&v, &principal()).unwrap();
        assert_eq!(ids(&rs), vec![r#"AWS::Account Resource::"123456789012""#]);
    }
}
