//! Resources: what an event acted on.
//!
//! In order of preference: the event's `resources[]`; else well-known request parameters of
//! the service (`bucketName`/`key`, `userName`, `roleName`, `instanceId`, ...); else the account
//! that received the event. Every resource is a `Resource` entity whose id is its ARN; an S3
//! object is in its bucket, and everything is in its `Account`.

use super::facts::{self, Attrs, FactCache};
use super::principal::PrincipalModel;
use super::{EventView, Field, types, uid};
use crate::arn::Arn;
use crate::inventory::{Inventory, ResourceTags, Tags};
use crate::text::concat;
use crate::time::Timestamp;
use cedar_policy::{Entity, EntityUid};
use std::borrow::Cow;
use std::collections::HashMap;

/// The attributes of `Resource`, with their Cedar schema types (`?`: optional).
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("type", "String"),
    ("arn?", "String"),
    ("name?", "String"),
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
    Bool(bool),
    Time(Timestamp),
}

impl AttrValue<'_> {
    /// Adds the value to an entity's attributes.
    pub fn add_to(self, attrs: &mut Attrs, name: &str) {
        match self {
            AttrValue::Str(v) => attrs.string(name, Some(v)),
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

#[derive(serde::Deserialize)]
struct ResourceEntry<'a> {
    #[serde(rename = "ARN", default, borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(rename = "ARNPrefix", default, borrow)]
    arn_prefix: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "accountId", default, borrow)]
    account_id: Option<Cow<'a, str>>,
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

#[cold]
#[inline(never)]
fn resources_by_serde(raw: &str) -> Result<Vec<Named<'_>>, String> {
    let entries: Vec<ResourceEntry> =
        serde_json::from_str(raw).map_err(|e| format!("resources: {e}"))?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let arn = e.arn.or(e.arn_prefix).filter(|a| !a.is_empty())?;
            Some(Named {
                kind: e.kind.unwrap_or(Cow::Borrowed("Unknown")),
                arn,
                account_id: e.account_id,
            })
        })
        .collect())
}

/// The `resources` list as CloudTrail writes it, read in a straight line: entries
/// `{"accountId":"…","type":"…","ARN":"…"}` (`accountId` optional), members in that order, with
/// no whitespace and no escapes. `None` on anything else, and the quick reader reads it. (An S3
/// data event lists its object and its bucket: this is the list read most often.)
fn canonical_resources<'a>(raw: &'a str, push: &mut impl FnMut(Named<'a>)) -> Option<()> {
    /// The string after `prefix` (which opens it) up to its unescaped closing quote, consumed.
    fn string<'a>(rest: &mut &'a str, prefix: &str) -> Option<&'a str> {
        let body = rest.strip_prefix(prefix)?;
        let end = memchr::memchr2(b'"', b'\\', body.as_bytes())?;
        if body.as_bytes().get(end) != Some(&b'"') {
            return None;
        }
        let value = body.get(..end)?;
        *rest = body.get(end + 1..)?;
        Some(value)
    }
    let mut rest = raw.strip_prefix('[')?;
    if rest == "]" {
        return Some(());
    }
    loop {
        let account = if rest.starts_with(r#"{"accountId":""#) {
            let account = string(&mut rest, r#"{"accountId":""#)?;
            rest = rest.strip_prefix(',')?;
            Some(account)
        } else {
            rest = rest.strip_prefix('{')?;
            None
        };
        let kind = string(&mut rest, r#""type":""#)?;
        let arn = string(&mut rest, r#","ARN":""#)?;
        if !arn.is_empty() {
            push(Named {
                kind: Cow::Borrowed(kind),
                arn: Cow::Borrowed(arn),
                account_id: account.map(Cow::Borrowed),
            });
        }
        rest = rest.strip_prefix('}')?;
        match rest {
            "]" => return Some(()),
            _ => rest = rest.strip_prefix(',')?,
        }
    }
}

/// The `resources` list as [`resources_by_serde`] reads it, by the quick reader
/// ([`super::quick`]), each resource given to `push` as it is read: `None` when it gives up, on
/// anything but a list of objects whose `ARN`, `ARNPrefix`, `type` and `accountId` members are
/// unescaped strings, once each.
fn quick_resources<'a>(raw: &'a str, push: &mut impl FnMut(Named<'a>)) -> Option<()> {
    let mut c = super::quick::Cursor::new(raw);
    let mut more = c.begin(b'[', b']')?;
    while more {
        let (mut arn, mut prefix, mut kind, mut account) = (None, None, None, None);
        let mut members = c.begin(b'{', b'}')?;
        while members {
            let key = c.key()?;
            let slot = match key {
                "ARN" => &mut arn,
                "ARNPrefix" => &mut prefix,
                "type" => &mut kind,
                "accountId" => &mut account,
                _ => {
                    c.skip_value()?;
                    members = c.more(b'}')?;
                    continue;
                }
            };
            // A duplicate is an error to serde_json: left to it.
            if slot.is_some() {
                return None;
            }
            *slot = Some(c.plain_string()?);
            members = c.more(b'}')?;
        }
        if let Some(arn) = arn.or(prefix).filter(|a| !a.is_empty()) {
            push(Named {
                kind: Cow::Borrowed(kind.unwrap_or("Unknown")),
                arn: Cow::Borrowed(arn),
                account_id: account.map(Cow::Borrowed),
            });
        }
        more = c.more(b']')?;
    }
    c.at_end().then_some(())
}

/// The request parameters that name resources, read without building the whole JSON value
/// (each event's parameters differ, and a `serde_json::Value` costs a map and an allocation per
/// member): the string members named in [`PARAMETER_KEYS`] (the last of duplicates), the
/// `InstanceId` of a top-level member object (newer EC2 calls), and the `instanceId`s of
/// `instancesSet.items`. Anything else, or parameters that are not an object, name nothing.
#[derive(Default)]
struct Params<'a> {
    /// The members read (a service's, from [`PARAMETER_KEYS`]), and the value of each: slots
    /// rather than a list, since the last of duplicates counts (and no allocation per event).
    keys: &'static [&'static str],
    strings: [Option<Cow<'a, str>>; MAX_PARAMETER_KEYS],
    nested_instance_ids: Vec<Cow<'a, str>>,
    items_instance_ids: Vec<Cow<'a, str>>,
}

/// The most members [`PARAMETER_KEYS`] reads for a service.
const MAX_PARAMETER_KEYS: usize = 5;

// A service reading more members than there are slots would not build.
#[allow(clippy::indexing_slicing)] // evaluated at compile time, within bounds by the loop
const _: () = {
    let mut i = 0;
    while i < PARAMETER_KEYS.len() {
        assert!(PARAMETER_KEYS[i].1.len() <= MAX_PARAMETER_KEYS);
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

    /// The non-empty string members, in the order of the service's keys in [`PARAMETER_KEYS`]
    /// (taken: by position, not by searching the keys for each).
    fn take_strings(&mut self) -> [Option<Cow<'a, str>>; MAX_PARAMETER_KEYS] {
        std::mem::take(&mut self.strings).map(|v| v.filter(|v| !v.is_empty()))
    }
}

/// The request parameters as [`Params`] reads them with serde_json, by the quick reader
/// ([`super::quick`]), with the string members named in `keys` (the service's, from
/// [`PARAMETER_KEYS`]): `None` when it gives up, on anything but an object whose members named
/// in `keys` are unescaped when they are strings. When `nested` (EC2 reads the ids
/// inside member objects) it reads member objects as [`Member`] does, and gives up on an escape
/// in their keys or ids too.
fn quick_params<'a>(
    raw: &'a str,
    keys: &'static [&'static str],
    nested: bool,
) -> Option<Params<'a>> {
    let mut c = super::quick::Cursor::new(raw);
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
    c: &mut super::quick::Cursor<'a>,
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
fn quick_string_or_skip<'a>(c: &mut super::quick::Cursor<'a>) -> Option<Option<&'a str>> {
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
fn params_by_serde<'a>(raw: &'a str, keys: &'static [&'static str]) -> Result<Params<'a>, String> {
    let error = |e: serde_json::Error| format!("{}: {e}", Field::RequestParameters.name());
    let mut de = serde_json::Deserializer::from_str(raw);
    let params =
        serde::de::DeserializeSeed::deserialize(ParamsSeed(keys), &mut de).map_err(error)?;
    de.end().map_err(error)?;
    Ok(params)
}

/// The services whose request parameters name resources, and the members read for them (at
/// most [`MAX_PARAMETER_KEYS`]): the arms of the `match` in [`from_request_parameters`], which
/// take each member's value by its position here (`every_parameter_read_names_its_resource`
/// reads each one).
const PARAMETER_KEYS: &[(&str, &[&str])] = &[
    ("s3", &["bucketName", "key"]),
    (
        "iam",
        &[
            "userName",
            "roleName",
            "groupName",
            "instanceProfileName",
            "policyArn",
        ],
    ),
    ("ec2", &["instanceId", "groupId"]),
    ("cloudtrail", &["name", "trailName"]),
    ("lambda", &["functionName"]),
    ("kms", &["keyId"]),
    ("secretsmanager", &["secretId"]),
    ("sts", &["roleArn"]),
];

/// The request parameters read for a service; `None` for a service whose parameters name no
/// resource.
fn parameter_keys(service: &str) -> Option<&'static [&'static str]> {
    PARAMETER_KEYS
        .iter()
        .find(|(s, _)| *s == service)
        .map(|(_, keys)| *keys)
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

/// Gives `push` the resources the event's request parameters name.
fn from_request_parameters<'a>(
    view: &'a EventView,
    principal: &'a PrincipalModel,
    push: &mut impl FnMut(Named<'a>),
) -> Result<(), String> {
    let Some(raw) = view.event.request_parameters else {
        return Ok(());
    };
    let service = view.event.service();
    // The other services' parameters are not read at all.
    let Some(keys) = parameter_keys(service) else {
        return Ok(());
    };
    let mut params = match quick_params(raw.get(), keys, service == "ec2") {
        Some(p) => p,
        None => params_by_serde(raw.get(), keys)?,
    };
    // Each arm reads its members by position, in the order of its keys in PARAMETER_KEYS.
    let strings = params.take_strings();
    // `arn:<partition>:`, written once: each part of an ARN is one more copy to join.
    let head: Cow<str> = match principal.partition.as_str() {
        "aws" => "arn:aws:".into(),
        "aws-cn" => "arn:aws-cn:".into(),
        "aws-us-gov" => "arn:aws-us-gov:".into(),
        p => concat(&["arn:", p, ":"]).into(),
    };
    let head = head.as_ref();
    let account = view
        .event
        .recipient_account_id
        .as_deref()
        .or(principal.account_id.as_deref())
        .unwrap_or("");
    let region = view.event.aws_region.as_deref().unwrap_or("");
    let mut push = |kind: &'static str, arn: Cow<'a, str>, account_id: Option<&'a str>| {
        push(Named {
            kind: Cow::Borrowed(kind),
            arn,
            account_id: account_id.map(Cow::Borrowed),
        });
    };
    // A resource of the service in the caller's account and region: `service` with its `:`,
    // `kind` with the `:` before it.
    let regional = |service: &str, kind: &str, name: &str| -> Cow<'a, str> {
        concat(&[head, service, region, ":", account, kind, name]).into()
    };
    // An ARN given in full is used as it is; a name is qualified in the caller's account.
    let arn_or = |value: Cow<'a, str>, service: &str, kind: &str| -> Cow<'a, str> {
        if value.starts_with("arn:") {
            value
        } else {
            regional(service, kind, &value)
        }
    };
    // A service added here is added to PARAMETER_KEYS, with the members it reads.
    match service {
        "s3" => {
            let [bucket_name, key, ..] = strings;
            if let Some(bucket) = bucket_name {
                match key {
                    Some(key) => push(
                        "AWS::S3::Object",
                        concat(&[head, "s3:::", &bucket, "/", &key]).into(),
                        None,
                    ),
                    None => push(
                        "AWS::S3::Bucket",
                        concat(&[head, "s3:::", &bucket]).into(),
                        None,
                    ),
                }
            }
        }
        "iam" => {
            let [user, role, group, profile, policy_arn] = strings;
            for (name, kind, path) in [
                (user, "AWS::IAM::User", ":user/"),
                (role, "AWS::IAM::Role", ":role/"),
                (group, "AWS::IAM::Group", ":group/"),
                (profile, "AWS::IAM::InstanceProfile", ":instance-profile/"),
            ] {
                if let Some(name) = name {
                    push(
                        kind,
                        concat(&[head, "iam::", account, path, &name]).into(),
                        Some(account),
                    );
                }
            }
            if let Some(arn) = policy_arn {
                push("AWS::IAM::ManagedPolicy", arn, None);
            }
        }
        "ec2" => {
            // Newer EC2 calls record their request object: {"AssociateIamInstanceProfileRequest": {"InstanceId": ...}}.
            let [instance_id, group_id, ..] = strings;
            let ids = instance_id
                .into_iter()
                .chain(params.nested_instance_ids.iter().cloned())
                .chain(params.items_instance_ids.iter().cloned());
            for id in ids {
                push(
                    "AWS::EC2::Instance",
                    regional("ec2:", ":instance/", &id),
                    Some(account),
                );
            }
            if let Some(id) = group_id {
                push(
                    "AWS::EC2::SecurityGroup",
                    regional("ec2:", ":security-group/", &id),
                    Some(account),
                );
            }
        }
        "cloudtrail" => {
            let [name, trail_name, ..] = strings;
            if let Some(name) = name.or(trail_name) {
                push(
                    "AWS::CloudTrail::Trail",
                    arn_or(name, "cloudtrail:", ":trail/"),
                    None,
                );
            }
        }
        "lambda" => {
            let [function_name, ..] = strings;
            if let Some(name) = function_name {
                push(
                    "AWS::Lambda::Function",
                    arn_or(name, "lambda:", ":function:"),
                    None,
                );
            }
        }
        "kms" => {
            let [key_id, ..] = strings;
            if let Some(key) = key_id {
                push("AWS::KMS::Key", arn_or(key, "kms:", ":key/"), None);
            }
        }
        "secretsmanager" => {
            let [secret_id, ..] = strings;
            if let Some(id) = secret_id {
                push(
                    "AWS::SecretsManager::Secret",
                    arn_or(id, "secretsmanager:", ":secret:"),
                    None,
                );
            }
        }
        "sts" => {
            let [role_arn, ..] = strings;
            if let Some(arn) = role_arn {
                push("AWS::IAM::Role", arn, None);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(json: &str) -> EventView<'_> {
        EventView::parse(json).unwrap()
    }

    fn principal() -> PrincipalModel {
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(
            r#"{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012"}"#,
        )
        .unwrap();
        PrincipalModel::from_identity(Some(&raw), &Inventory::default()).unwrap()
    }

    fn keys_of<'a>(v: &'a EventView, p: &'a PrincipalModel) -> Vec<ResourceKey<'a>> {
        let mut keys = Vec::new();
        resource_keys(v, p, &mut keys).unwrap();
        keys
    }

    fn ids(rs: &[ResourceModel]) -> Vec<String> {
        rs.iter().map(|r| format!("{} {}", r.kind, r.uid)).collect()
    }

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
    fn every_parameter_read_names_its_resource() {
        let named = |service: &str, params: &str| {
            let json = format!(
                r#"{{"eventTime":"2024-01-07T22:35:30Z","eventSource":"{service}.amazonaws.com","eventName":"X","awsRegion":"us-east-1","recipientAccountId":"123456789012","requestParameters":{params}}}"#
            );
            let v = view(&json);
            let keys: Vec<String> = keys_of(&v, &principal())
                .iter()
                .map(|k| k.id().to_string())
                .collect();
            let models: Vec<String> = resources_of(&v, &principal())
                .unwrap()
                .iter()
                .map(|r| format!("{} {}", r.kind, r.uid.id().unescaped()))
                .collect();
            assert_eq!(
                keys,
                models
                    .iter()
                    .map(|m| m.split_once(' ').unwrap().1.to_string())
                    .collect::<Vec<_>>(),
                "{params}"
            );
            models.join(", ")
        };
        let regional = "us-east-1:123456789012";
        for (service, params, expected) in [
            ("s3", r#"{"bucketName":"b"}"#, "AWS::S3::Bucket arn:aws:s3:::b".to_string()),
            ("s3", r#"{"key":"k","bucketName":"b"}"#, "AWS::S3::Object arn:aws:s3:::b/k".into()),
            ("s3", r#"{"key":"k"}"#, "AWS::Account 123456789012".into()),
            ("iam", r#"{"userName":"u"}"#, "AWS::IAM::User arn:aws:iam::123456789012:user/u".into()),
            ("iam", r#"{"roleName":"r"}"#, "AWS::IAM::Role arn:aws:iam::123456789012:role/r".into()),
            ("iam", r#"{"groupName":"g"}"#, "AWS::IAM::Group arn:aws:iam::123456789012:group/g".into()),
            (
                "iam",
                r#"{"instanceProfileName":"p"}"#,
                "AWS::IAM::InstanceProfile arn:aws:iam::123456789012:instance-profile/p".into(),
            ),
            (
                "iam",
                r#"{"policyArn":"arn:aws:iam::aws:policy/P","userName":"u"}"#,
                "AWS::IAM::User arn:aws:iam::123456789012:user/u, AWS::IAM::ManagedPolicy arn:aws:iam::aws:policy/P".into(),
            ),
            ("ec2", r#"{"instanceId":"i-1"}"#, format!("AWS::EC2::Instance arn:aws:ec2:{regional}:instance/i-1")),
            ("ec2", r#"{"groupId":"sg-1"}"#, format!("AWS::EC2::SecurityGroup arn:aws:ec2:{regional}:security-group/sg-1")),
            ("cloudtrail", r#"{"name":"t"}"#, format!("AWS::CloudTrail::Trail arn:aws:cloudtrail:{regional}:trail/t")),
            (
                "cloudtrail",
                r#"{"trailName":"arn:aws:cloudtrail:eu-west-1:111122223333:trail/t"}"#,
                "AWS::CloudTrail::Trail arn:aws:cloudtrail:eu-west-1:111122223333:trail/t".into(),
            ),
            ("lambda", r#"{"functionName":"f"}"#, format!("AWS::Lambda::Function arn:aws:lambda:{regional}:function:f")),
            ("kms", r#"{"keyId":"k"}"#, format!("AWS::KMS::Key arn:aws:kms:{regional}:key/k")),
            (
                "secretsmanager",
                r#"{"secretId":"s"}"#,
                format!("AWS::SecretsManager::Secret arn:aws:secretsmanager:{regional}:secret:s"),
            ),
            (
                "sts",
                r#"{"roleArn":"arn:aws:iam::111122223333:role/x"}"#,
                "AWS::IAM::Role arn:aws:iam::111122223333:role/x".into(),
            ),
            ("sts", r#"{"roleArn":""}"#, "AWS::Account 123456789012".into()),
        ] {
            assert_eq!(named(service, params), expected, "{service} {params}");
        }
    }

    #[test]
    fn request_parameters_name_resources_whatever_their_shape() {
        let ec2 = |params: &str| {
            let json = format!(
                r#"{{"eventTime":"2024-01-07T22:35:30Z","eventSource":"ec2.amazonaws.com","eventName":"X","awsRegion":"us-east-1","recipientAccountId":"123456789012","requestParameters":{params}}}"#
            );
            let v = view(&json);
            let keys: Vec<String> = keys_of(&v, &principal())
                .iter()
                .map(|k| k.uid().to_string())
                .collect();
            assert_eq!(
                keys,
                ids(&resources_of(&v, &principal()).unwrap())
                    .iter()
                    .map(|i| i.split_once(' ').unwrap().1.to_string())
                    .collect::<Vec<_>>(),
                "keys and models agree"
            );
            keys
        };
        let arn =
            |id: &str| format!(r#"Resource::"arn:aws:ec2:us-east-1:123456789012:instance/{id}""#);
        // A request object, a set of items, an escaped string, and the same id twice.
        assert_eq!(
            ec2(
                r#"{"instanceId":"i-1","AssociateIamInstanceProfileRequest":{"InstanceId":"i-2","x":[1,{"y":null}]},"instancesSet":{"items":[{"instanceId":"i-\u0033"},{"instanceId":"i-1"},7,"s"]}}"#
            ),
            vec![arn("i-1"), arn("i-2"), arn("i-3")]
        );
        // Not an object, or members of other types: nothing named, the account instead.
        for params in [
            r#""i-1""#,
            "[1,2]",
            "null",
            "5",
            r#"{"instanceId":5,"instancesSet":{"items":"i-1"}}"#,
        ] {
            assert_eq!(
                ec2(params),
                vec![r#"Resource::"123456789012""#.to_string()],
                "{params}"
            );
        }
        // The last of duplicate members.
        assert_eq!(
            ec2(r#"{"instanceId":"i-1","instanceId":"i-9"}"#),
            vec![arn("i-9")]
        );
    }

    #[test]
    fn only_the_listed_services_parameters_name_resources() {
        let params: Vec<String> = PARAMETER_KEYS
            .iter()
            .flat_map(|(_, keys)| *keys)
            .map(|k| format!(r#""{k}":"arn:aws:iam::123456789012:role/x""#))
            .collect();
        let named = |service: &str| {
            let json = format!(
                r#"{{"eventTime":"2024-01-07T22:35:30Z","eventSource":"{service}.amazonaws.com","eventName":"X","awsRegion":"us-east-1","recipientAccountId":"123456789012","requestParameters":{{{}}}}}"#,
                params.join(",")
            );
            ids(&resources_of(&view(&json), &principal()).unwrap())
        };
        for (service, _) in PARAMETER_KEYS {
            assert_ne!(
                named(service),
                vec![r#"AWS::Account Resource::"123456789012""#],
                "{service}"
            );
        }
        for service in ["dynamodb", "logs", "ssm", "monitoring"] {
            assert_eq!(
                named(service),
                vec![r#"AWS::Account Resource::"123456789012""#],
                "{service}"
            );
        }
    }

    /// A pseudo-random number below `n`: generated inputs that are the same on every run.
    fn xorshift(state: &mut u64, n: usize) -> usize {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state % n as u64) as usize
    }

    /// Named resources as text, to compare two readers' lists.
    fn render(named: &[Named]) -> Vec<String> {
        named
            .iter()
            .map(|n| format!("{}|{}|{:?}", n.kind, n.arn, n.account_id))
            .collect()
    }

    #[test]
    fn the_quick_reader_of_resources_agrees_with_serde_json() {
        let keys = [
            r#""ARN""#,
            r#""ARNPrefix""#,
            r#""type""#,
            r#""accountId""#,
            r#""other""#,
            r#""AR\u004e""#,
            r#""""#,
        ];
        let values = [
            r#""arn:aws:s3:::b/k""#,
            r#""AWS::S3::Bucket""#,
            r#""""#,
            r#""x\"y""#,
            r#""\u0041""#,
            "null",
            "-7.5e2",
            r#"[1,{"a":[]},"]"]"#,
            r#"{"ARN":"z","n":{}}"#,
            "true",
        ];
        let spaces = ["", " ", "\n\t"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut pick = |n: usize| xorshift(&mut state, n);
        let mut quick = 0;
        for _ in 0..5000 {
            let mut text = format!("{}[", spaces[pick(3)]);
            for e in 0..pick(4) {
                if e > 0 {
                    text.push(',');
                }
                text.push_str(spaces[pick(3)]);
                if pick(8) == 0 {
                    text.push_str(values[pick(values.len())]);
                    continue;
                }
                text.push('{');
                for m in 0..pick(5) {
                    if m > 0 {
                        text.push(',');
                    }
                    let (k, v) = (keys[pick(keys.len())], values[pick(values.len())]);
                    text.push_str(&format!("{}{k}{}:{v}", spaces[pick(3)], spaces[pick(3)]));
                }
                text.push('}');
            }
            text.push_str(&format!("]{}", spaces[pick(3)]));
            let by_serde = resources_by_serde(&text);
            let mut q = Vec::new();
            if quick_resources(&text, &mut |n| q.push(n)).is_some() {
                quick += 1;
                assert_eq!(render(&q), render(by_serde.as_ref().unwrap()), "{text}");
            }
            let mut c = Vec::new();
            if canonical_resources(&text, &mut |n| c.push(n)).is_some() {
                assert_eq!(render(&c), render(&by_serde.unwrap()), "{text}");
            }
        }
        assert!(quick > 500, "the quick reader read {quick} lists");
    }

    #[test]
    fn the_reader_of_cloudtrails_own_resources_lists_agrees_with_serde_json() {
        // Lists in CloudTrail's shape and near it: members in its order or not, with spaces,
        // escapes, empty strings, values of other kinds, a truncated or trailing text.
        let strings = [
            r#""arn:aws:s3:::b/k""#,
            r#""AWS::S3::Bucket""#,
            r#""123456789012""#,
            r#""""#,
            r#""x\"y""#,
            r#""\u0041""#,
            "null",
            "7",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut pick = |n: usize| xorshift(&mut state, n);
        let mut canonical = 0;
        for _ in 0..5000 {
            let mut text = String::from("[");
            for e in 0..pick(4) {
                if e > 0 {
                    text.push_str([",", ", "][usize::from(pick(20) == 0)]);
                }
                let mut members = vec![
                    format!(r#""type":{}"#, strings[pick(strings.len())]),
                    format!(r#""ARN":{}"#, strings[pick(strings.len())]),
                ];
                if pick(2) == 0 {
                    members.insert(
                        0,
                        format!(r#""accountId":{}"#, strings[pick(strings.len())]),
                    );
                }
                if pick(10) == 0 {
                    members.swap(0, 1);
                }
                if pick(20) == 0 {
                    members.pop();
                }
                text.push_str(&format!("{{{}}}", members.join(",")));
            }
            text.push_str(["]", "] ", "", "]]"][if pick(20) == 0 { pick(4) } else { 0 }]);
            let mut c = Vec::new();
            if canonical_resources(&text, &mut |n| c.push(n)).is_some() {
                canonical += 1;
                let by_serde = resources_by_serde(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(render(&c), render(&by_serde), "{text}");
            }
        }
        assert!(
            canonical > 300,
            "{canonical} lists were read in a straight line"
        );
    }

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
            let (_, keys) = PARAMETER_KEYS[pick(PARAMETER_KEYS.len())];
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
