//! Resources: what an event acted on.
//!
//! In order of preference: the event's `resources[]`; else well-known request parameters of
//! the service (`bucketName`/`key`, `userName`, `roleName`, `instanceId`, ...); else the account
//! that received the event. Every resource is a `Resource` entity whose id is its ARN; an S3
//! object is in its bucket, and everything is in its `Account`.

use super::facts::{self, Attrs, FactCache};
use super::principal::{Arn, PrincipalModel};
use super::{EventView, Field, types, uid};
use crate::inventory::{Inventory, Tags};
use crate::time::Timestamp;
use cedar_policy::{Entity, EntityUid};
use serde_json::Value;

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
        let arn_text = arn.clone();
        let parts = Arn::parse(&arn_text);
        let region = parts
            .map(|a| a.region)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let account_id = account_id.filter(|a| !a.is_empty()).or_else(|| {
            parts
                .map(|a| a.account)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
        });
        let name = parts
            .map(|a| name_of(a.service, a.resource))
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let mut model = ResourceModel {
            uid: uid(&types().resource, &arn),
            kind: kind.to_string(),
            arn: Some(arn),
            name,
            account_id,
            region,
            container: None,
        };
        if let Some((bucket, _key)) = parts
            .filter(|a| a.service == "s3" && kind == "AWS::S3::Object")
            .and_then(|a| a.resource.split_once('/'))
        {
            let bucket_arn = format!(
                "arn:{}:s3:::{bucket}",
                parts.map(|a| a.partition).unwrap_or("aws")
            );
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
                Some(p) => {
                    let _ = write!(out, "+{}:{p}", p.len());
                }
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
        if inv.is_empty() {
            return (Tags::new(), None);
        }
        let (mut tags, taken) = self
            .arn
            .as_deref()
            .and_then(|a| inv.tags_of_resource(a))
            .unwrap_or_default();
        if self.arn.is_none() {
            tags = facts::with_extra_tags(tags, inv, "Resource", self.uid.id().unescaped());
        }
        (tags, taken)
    }

    /// This resource's own entity (not its containers' or account's).
    pub fn entity(&self, inv: &Inventory) -> Entity {
        self.entity_with(inv, true)
    }

    /// The entity, with `inventoryTakenAt` only when `taken_at` (it is parsed each time).
    pub fn entity_with(&self, inv: &Inventory, taken_at: bool) -> Entity {
        let mut attrs = Attrs::default();
        attrs.string("type", Some(&self.kind));
        attrs.string("arn", self.arn.as_deref());
        attrs.string("name", self.name.as_deref());
        attrs.string("accountId", self.account_id.as_deref());
        attrs.string("region", self.region.as_deref());
        let (tags, mut taken) = self.tags(inv);
        if !inv.is_empty() {
            if let Some(in_org) = self
                .account_id
                .as_deref()
                .and_then(|a| inv.in_organization(a))
            {
                attrs.bool("accountInOrganization", Some(in_org));
                taken = taken.max(inv.organization);
            }
            if taken_at {
                attrs.datetime("inventoryTakenAt", taken);
            }
        }
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

/// The short name of a resource from its ARN's resource part.
fn name_of<'a>(service: &str, resource: &'a str) -> &'a str {
    match service {
        // `bucket` or `bucket/key`: an object's name is its key.
        "s3" => resource.split_once('/').map(|(_, k)| k).unwrap_or(resource),
        _ => resource.rsplit(['/', ':']).next().unwrap_or(resource),
    }
}

#[derive(serde::Deserialize)]
struct ResourceEntry {
    #[serde(rename = "ARN", default)]
    arn: Option<String>,
    #[serde(rename = "ARNPrefix", default)]
    arn_prefix: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "accountId", default)]
    account_id: Option<String>,
}

/// The resources of an event (never empty); an error if `requestParameters` is unreadable.
pub fn resources_of(
    view: &EventView,
    principal: &PrincipalModel,
) -> Result<Vec<ResourceModel>, String> {
    let mut out = from_resources_field(view)?;
    if out.is_empty() {
        out = from_request_parameters(view, principal)?;
    }
    if out.is_empty() {
        let account = view
            .event
            .recipient_account_id
            .as_deref()
            .or(principal.account_id.as_deref())
            .unwrap_or("unknown");
        out.push(ResourceModel::account(account));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.uid.clone()));
    Ok(out)
}

fn from_resources_field(view: &EventView) -> Result<Vec<ResourceModel>, String> {
    let Some(raw) = view.event.resources else {
        return Ok(Vec::new());
    };
    let entries: Vec<ResourceEntry> =
        serde_json::from_str(raw.get()).map_err(|e| format!("resources: {e}"))?;
    let mut out: Vec<ResourceModel> = entries
        .into_iter()
        .filter_map(|e| {
            let arn = e.arn.or(e.arn_prefix).filter(|a| !a.is_empty())?;
            Some(ResourceModel::new(
                e.kind.as_deref().unwrap_or("Unknown"),
                arn,
                e.account_id,
            ))
        })
        .collect();
    // An S3 data event lists the object and its bucket; only the bucket entry says who owns
    // it. The object's container is that entry, and the object is in the owner's account too,
    // so that every copy of an entity in a request's store is the same.
    let listed = out.clone();
    for r in &mut out {
        if let Some(container) = &r.container
            && let Some(entry) = listed.iter().find(|l| l.uid == container.uid)
        {
            r.container = Some(Box::new(entry.clone()));
            if r.account_id.is_none() {
                r.account_id = entry.account_id.clone();
            }
        }
    }
    Ok(out)
}

fn from_request_parameters(
    view: &EventView,
    principal: &PrincipalModel,
) -> Result<Vec<ResourceModel>, String> {
    let Some(params) = view.field(Field::RequestParameters)? else {
        return Ok(Vec::new());
    };
    let str_of = |key: &str| {
        params
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let p = principal.partition.as_str();
    let account = view
        .event
        .recipient_account_id
        .as_deref()
        .or(principal.account_id.as_deref())
        .unwrap_or("");
    let region = view.event.aws_region.as_deref().unwrap_or("");
    let mut out = Vec::new();
    let mut push = |kind: &str, arn: String, account_id: Option<&str>| {
        out.push(ResourceModel::new(
            kind,
            arn,
            account_id.map(str::to_string),
        ));
    };
    // An ARN given in full is used as it is; a name is qualified in the caller's account.
    let arn_or = |value: &str, build: &dyn Fn(&str) -> String| {
        if value.starts_with("arn:") {
            value.to_string()
        } else {
            build(value)
        }
    };
    match view.event.service() {
        "s3" => {
            if let Some(bucket) = str_of("bucketName") {
                match str_of("key") {
                    Some(key) => push(
                        "AWS::S3::Object",
                        format!("arn:{p}:s3:::{bucket}/{key}"),
                        None,
                    ),
                    None => push("AWS::S3::Bucket", format!("arn:{p}:s3:::{bucket}"), None),
                }
            }
        }
        "iam" => {
            for (key, kind, path) in [
                ("userName", "AWS::IAM::User", "user"),
                ("roleName", "AWS::IAM::Role", "role"),
                ("groupName", "AWS::IAM::Group", "group"),
                (
                    "instanceProfileName",
                    "AWS::IAM::InstanceProfile",
                    "instance-profile",
                ),
            ] {
                if let Some(name) = str_of(key) {
                    push(
                        kind,
                        format!("arn:{p}:iam::{account}:{path}/{name}"),
                        Some(account),
                    );
                }
            }
            if let Some(arn) = str_of("policyArn") {
                push("AWS::IAM::ManagedPolicy", arn.to_string(), None);
            }
        }
        "ec2" => {
            let mut ids: Vec<&str> = str_of("instanceId").into_iter().collect();
            // Newer EC2 calls record their request object: {"AssociateIamInstanceProfileRequest": {"InstanceId": ...}}.
            ids.extend(
                params
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter_map(|v| v.get("InstanceId")?.as_str()),
            );
            if let Some(items) = params
                .pointer("/instancesSet/items")
                .and_then(Value::as_array)
            {
                ids.extend(items.iter().filter_map(|i| i.get("instanceId")?.as_str()));
            }
            for id in ids {
                push(
                    "AWS::EC2::Instance",
                    format!("arn:{p}:ec2:{region}:{account}:instance/{id}"),
                    Some(account),
                );
            }
            if let Some(id) = str_of("groupId") {
                push(
                    "AWS::EC2::SecurityGroup",
                    format!("arn:{p}:ec2:{region}:{account}:security-group/{id}"),
                    Some(account),
                );
            }
        }
        "cloudtrail" => {
            if let Some(name) = str_of("name").or(str_of("trailName")) {
                let arn = arn_or(name, &|n| {
                    format!("arn:{p}:cloudtrail:{region}:{account}:trail/{n}")
                });
                push("AWS::CloudTrail::Trail", arn, None);
            }
        }
        "lambda" => {
            if let Some(name) = str_of("functionName") {
                let arn = arn_or(name, &|n| {
                    format!("arn:{p}:lambda:{region}:{account}:function:{n}")
                });
                push("AWS::Lambda::Function", arn, None);
            }
        }
        "kms" => {
            if let Some(key) = str_of("keyId") {
                let arn = arn_or(key, &|k| format!("arn:{p}:kms:{region}:{account}:key/{k}"));
                push("AWS::KMS::Key", arn, None);
            }
        }
        "secretsmanager" => {
            if let Some(id) = str_of("secretId") {
                let arn = arn_or(id, &|s| {
                    format!("arn:{p}:secretsmanager:{region}:{account}:secret:{s}")
                });
                push("AWS::SecretsManager::Secret", arn, None);
            }
        }
        "sts" => {
            if let Some(arn) = str_of("roleArn") {
                push("AWS::IAM::Role", arn.to_string(), None);
            }
        }
        _ => {}
    }
    Ok(out)
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
    fn falls_back_to_the_account() {
        let v = view(
            r#"{"eventTime":"2024-01-07T22:35:30Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity",
            "recipientAccountId":"123456789012","requestParameters":null}"#,
        );
        let rs = resources_of(&v, &principal()).unwrap();
        assert_eq!(ids(&rs), vec![r#"AWS::Account Resource::"123456789012""#]);
    }
}
