//! The kinds of inventory file, recognised by their content.
//!
//! | kind | command | recognised by |
//! |---|---|---|
//! | resource tags | `aws resourcegroupstaggingapi get-resources` | `ResourceTagMappingList` |
//! | IAM | `aws iam get-account-authorization-details` | `UserDetailList` / `RoleDetailList` / `GroupDetailList` |
//! | IAM users, roles | `aws iam list-users`, `aws iam list-roles` | `Users`, `Roles` |
//! | user tags | `aws iam list-user-tags` with the user added (`jq '. + {UserName: "alice"}'`) | `UserName` + `Tags` |
//! | credential report | `aws iam get-credential-report` (base64 as returned, or the CSV) | `Content` + `ReportFormat`, or a `user,arn,...` header |
//! | access keys | `aws iam list-access-keys` | `AccessKeyMetadata` |
//! | instances | `aws ec2 describe-instances` | `Reservations` |
//! | NAT gateways | `aws ec2 describe-nat-gateways` | `NatGateways` |
//! | VPC endpoints | `aws ec2 describe-vpc-endpoints` | `VpcEndpoints` |
//! | Elastic IPs | `aws ec2 describe-addresses` | `Addresses` |
//! | accounts | `aws organizations list-accounts` | `Accounts` |
//! | Cedar entities | Cedar's entities JSON | a list of `{"uid": ..., ...}` |
//!
//! A JSON array of any of these (one command's output per user, say) is read element by element.

use super::{
    AccountFacts, Cidr, ElasticIpFacts, EndpointFacts, GroupFacts, InstanceFacts, KeyFacts,
    NatFacts, NetworkFacts, RoleFacts, Tags, UserFacts,
};
use crate::arn::Arn;
use crate::time::Timestamp;
use rustc_hash::FxHashMap as HashMap;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Facts of one kind from one file, by key. A file is one snapshot: the same fact given twice
/// in it with different values has no later one to keep, and whichever was kept, the order of
/// the file would decide a join; so it is an error. Given twice alike, it is one fact.
#[derive(Debug)]
pub struct Facts<V> {
    map: HashMap<String, V>,
    /// The first key given twice with different values.
    repeated: Option<String>,
}

impl<V> Default for Facts<V> {
    fn default() -> Self {
        Facts {
            map: HashMap::default(),
            repeated: None,
        }
    }
}

impl<V: PartialEq> Facts<V> {
    pub fn insert(&mut self, key: String, value: V) {
        if self.map.get(&key).is_some_and(|old| *old != value) && self.repeated.is_none() {
            self.repeated = Some(key.clone());
        }
        self.map.insert(key, value);
    }
}

impl<V> std::ops::Index<&str> for Facts<V> {
    type Output = V;
    #[allow(clippy::indexing_slicing)] // tests' shorthand, as for a map
    fn index(&self, key: &str) -> &V {
        &self.map[key]
    }
}

impl<V> IntoIterator for Facts<V> {
    type Item = (String, V);
    type IntoIter = std::collections::hash_map::IntoIter<String, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.into_iter()
    }
}

/// The facts of one file.
#[derive(Debug, Default)]
pub struct Loaded {
    pub kinds: BTreeSet<&'static str>,
    pub facts: usize,
    pub resource_tags: Facts<(Tags, Timestamp)>,
    pub users: Facts<UserFacts>,
    pub roles: Facts<RoleFacts>,
    pub groups: Facts<GroupFacts>,
    pub keys: Facts<KeyFacts>,
    pub key_users: Vec<String>,
    pub iam_accounts: HashMap<String, Timestamp>,
    pub role_accounts: HashMap<String, Timestamp>,
    pub instances: Facts<InstanceFacts>,
    pub nat_gateways: Facts<NatFacts>,
    pub endpoints: Facts<EndpointFacts>,
    pub elastic_ips: Vec<ElasticIpFacts>,
    pub accounts: Facts<AccountFacts>,
    pub organization: Option<Timestamp>,
    pub entity_tags: HashMap<String, HashMap<String, Tags>>,
    pub networks: Vec<NetworkFacts>,
}

/// A file's content, parsed at its top level only: each member of a JSON object is parsed
/// when a kind reads it, straight into the types it needs (a large inventory would otherwise
/// be built as a tree of `Value`s first, several times its size).
pub enum Parsed<'t> {
    /// A decoded credential report.
    Csv(&'t str),
    Object(Doc<'t>),
    Array(Vec<&'t RawValue>),
}

/// A JSON object with its members unparsed.
pub struct Doc<'t> {
    text: &'t str,
    members: HashMap<String, &'t RawValue>,
}

impl<'t> Doc<'t> {
    fn parse(text: &'t str) -> Result<Doc<'t>, serde_json::Error> {
        Ok(Doc {
            text,
            members: serde_json::from_str(text)?,
        })
    }

    fn contains_key(&self, key: &str) -> bool {
        self.members.contains_key(key)
    }

    /// A member, parsed.
    fn get(&self, key: &str) -> Option<Value> {
        serde_json::from_str(self.members.get(key)?.get()).ok()
    }
}

/// Parses a file's text. An object that repeats a key is an error: which of its values a
/// reader takes would decide the join.
pub fn parse(text: &str) -> Result<Parsed<'_>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("user,arn,") {
        return Ok(Parsed::Csv(text));
    }
    let bad = |e: serde_json::Error| format!("not JSON, nor a credential report CSV: {e}");
    let parsed = if trimmed.starts_with('[') {
        serde_json::from_str(text).map(Parsed::Array).map_err(bad)?
    } else if trimmed.starts_with('{') {
        Doc::parse(text).map(Parsed::Object).map_err(bad)?
    } else {
        // Not a list or an object: the parser says what it is.
        return serde_json::from_str::<Value>(text)
            .map_err(bad)
            .and(Err("expected a JSON object or list".to_string()));
    };
    if let Some(key) = crate::decode::repeated_key(text) {
        return Err(format!(
            "the key {key:?} appears twice in one object: which value to join is ambiguous"
        ));
    }
    Ok(parsed)
}

/// The snapshot time a file records itself (the credential report's `GeneratedTime`).
pub fn recorded_time(parsed: &Parsed<'_>) -> Option<Timestamp> {
    let Parsed::Object(doc) = parsed else {
        return None;
    };
    let t = doc.get("GeneratedTime")?;
    Timestamp::parse(t.as_str()?).ok()
}

#[derive(Deserialize)]
struct Tag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

/// Tags from AWS's list of `{Key, Value}`; a key given twice with different values is an error
/// (see [`Facts`]).
fn tags(list: Option<Vec<Tag>>) -> Result<Tags, String> {
    let mut out = Tags::new();
    for t in list.unwrap_or_default() {
        if out.get(&t.key).is_some_and(|v| *v != t.value) {
            return Err(format!(
                "the tag {:?} is given twice with different values",
                t.key
            ));
        }
        out.insert(t.key, t.value);
    }
    Ok(out)
}

fn time(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(|t| Timestamp::parse(t).ok())
}

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// A list under `key`, each element deserialised, with the element's position in errors.
fn list<T: for<'de> Deserialize<'de>>(v: &Doc<'_>, key: &str) -> Result<Vec<T>, String> {
    let Some(raw) = v.members.get(key) else {
        return Ok(Vec::new());
    };
    let items: Vec<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| format!("`{key}` is not a list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_str::<T>(item.get()).map_err(|e| format!("{key}[{i}]: {e}"))
        })
        .collect()
}

/// Reads one file's text into `out`.
pub fn read(text: &str, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    read_parsed(&parse(text)?, at, out)
}

/// Reads one parsed file into `out`.
pub fn read_parsed(parsed: &Parsed<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    match parsed {
        Parsed::Csv(text) => credential_report_csv(text, at, out),
        Parsed::Object(doc) => read_object(doc, at, out),
        Parsed::Array(items) => read_array(items, at, out),
    }?;
    out.repeated_fact()
}

impl Loaded {
    /// An error naming a fact given twice with different values, if one was (see [`Facts`]).
    fn repeated_fact(&self) -> Result<(), String> {
        let repeated = [
            ("tags of", &self.resource_tags.repeated),
            ("the user", &self.users.repeated),
            ("the role", &self.roles.repeated),
            ("the group", &self.groups.repeated),
            ("the access key", &self.keys.repeated),
            ("the instance", &self.instances.repeated),
            ("the NAT gateway", &self.nat_gateways.repeated),
            ("the VPC endpoint", &self.endpoints.repeated),
            ("the account", &self.accounts.repeated),
        ];
        match repeated
            .iter()
            .find_map(|(what, key)| Some((what, key.as_ref()?)))
        {
            Some((what, key)) => Err(format!(
                "{what} {key} is given twice in this file with different values: the file has one snapshot time, so neither can be kept"
            )),
            None => Ok(()),
        }
    }
}

/// A list of outputs (one command's per user, say), or Cedar entities.
fn read_array(items: &[&RawValue], at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    fn doc<'t>(i: usize, item: &'t RawValue) -> Result<Doc<'t>, String> {
        Doc::parse(item.get()).map_err(|_| format!("element {i}: expected a JSON object"))
    }
    let entities = match items.first() {
        Some(first) => doc(0, first)?.contains_key("uid"),
        None => false,
    };
    if entities {
        let values: Vec<Value> = items
            .iter()
            .map(|i| serde_json::from_str(i.get()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        return cedar_entities(&values, out);
    }
    for (i, item) in items.iter().enumerate() {
        read_object(&doc(i, item)?, at, out).map_err(|e| format!("element {i}: {e}"))?;
    }
    Ok(())
}

fn read_object(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    let map = v;
    if map.contains_key("ResourceTagMappingList") {
        resource_tags(v, at, out)
    } else if map.contains_key("UserDetailList")
        || map.contains_key("RoleDetailList")
        || map.contains_key("GroupDetailList")
    {
        authorization_details(v, at, out)
    } else if map.contains_key("Content") && map.contains_key("ReportFormat") {
        credential_report(v, at, out)
    } else if map.contains_key("AccessKeyMetadata") {
        access_keys(v, at, out)
    } else if map.contains_key("Reservations") {
        instances(v, at, out)
    } else if map.contains_key("NatGateways") {
        nat_gateways(v, at, out)
    } else if map.contains_key("VpcEndpoints") {
        vpc_endpoints(v, at, out)
    } else if map.contains_key("Addresses") {
        addresses(v, at, out)
    } else if map.contains_key("Accounts") {
        accounts(v, at, out)
    } else if map.contains_key("Users") {
        list_users(v, at, out)
    } else if map.contains_key("Roles") {
        list_roles(v, at, out)
    } else if map.contains_key("Tags") && map.contains_key("UserName") {
        user_tags(v, at, out)
    } else if map.contains_key("Tags") {
        Err("`aws iam list-user-tags` output does not name its user: add it, e.g. `jq '. + {UserName: \"alice\"}'`".to_string())
    } else {
        let mut keys: Vec<&str> = map.members.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys.truncate(5);
        Err(format!(
            "not an inventory this version reads (keys {keys:?}); the README (Inventory) lists the AWS CLI outputs it reads"
        ))
    }
}

fn resource_tags(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Mapping {
        #[serde(rename = "ResourceARN")]
        arn: String,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
    }
    out.kinds.insert("resourcegroupstaggingapi get-resources");
    for m in list::<Mapping>(v, "ResourceTagMappingList")? {
        out.facts += 1;
        out.resource_tags.insert(m.arn, (tags(m.tags)?, at));
    }
    Ok(())
}

#[derive(Deserialize)]
struct AttachedPolicy {
    #[serde(rename = "PolicyArn")]
    arn: String,
}

fn account_of(arn: &str) -> Option<String> {
    Arn::parse(arn)
        .map(|a| a.account.to_string())
        .filter(|a| !a.is_empty())
}

fn authorization_details(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct User {
        #[serde(rename = "UserName")]
        name: String,
        #[serde(rename = "Arn")]
        arn: String,
        #[serde(rename = "CreateDate", default)]
        created: Option<String>,
        #[serde(rename = "GroupList", default)]
        groups: Vec<String>,
        #[serde(rename = "AttachedManagedPolicies", default)]
        policies: Vec<AttachedPolicy>,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
    }
    #[derive(Deserialize)]
    struct Group {
        #[serde(rename = "GroupName")]
        name: String,
        #[serde(rename = "Arn")]
        arn: String,
        #[serde(rename = "AttachedManagedPolicies", default)]
        policies: Vec<AttachedPolicy>,
    }
    #[derive(Deserialize)]
    struct Role {
        #[serde(rename = "RoleName")]
        name: String,
        #[serde(rename = "Arn")]
        arn: String,
        #[serde(rename = "CreateDate", default)]
        created: Option<String>,
        #[serde(rename = "AttachedManagedPolicies", default)]
        policies: Vec<AttachedPolicy>,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
    }
    out.kinds.insert("iam get-account-authorization-details");
    let groups: Vec<Group> = list(v, "GroupDetailList")?;
    let group_arns: HashMap<String, String> = groups
        .iter()
        .map(|g| (g.name.clone(), g.arn.clone()))
        .collect();
    for g in groups {
        out.facts += 1;
        out.groups.insert(
            g.arn.clone(),
            GroupFacts {
                arn: g.arn,
                name: g.name,
                policies: g.policies.into_iter().map(|p| p.arn).collect(),
                taken_at: Some(at),
            },
        );
    }
    for u in list::<User>(v, "UserDetailList")? {
        out.facts += 1;
        let account = account_of(&u.arn)
            .ok_or_else(|| format!("user {}: {:?} is not an IAM ARN", u.name, u.arn))?;
        out.iam_accounts.insert(account.clone(), at);
        let groups = u
            .groups
            .iter()
            .map(|g| {
                group_arns
                    .get(g)
                    .cloned()
                    .unwrap_or_else(|| format!("arn:aws:iam::{account}:group/{g}"))
            })
            .collect();
        out.users.insert(
            u.arn.clone(),
            UserFacts {
                created: time(&u.created),
                arn: u.arn,
                name: u.name,
                groups,
                policies: u.policies.into_iter().map(|p| p.arn).collect(),
                tags: tags(u.tags)?,
                detailed: true,
                taken_at: Some(at),
                ..UserFacts::default()
            },
        );
    }
    for r in list::<Role>(v, "RoleDetailList")? {
        out.facts += 1;
        if let Some(a) = account_of(&r.arn) {
            out.role_accounts.insert(a, at);
        }
        out.roles.insert(
            r.arn.clone(),
            RoleFacts {
                created: time(&r.created),
                arn: r.arn,
                name: r.name,
                policies: r.policies.into_iter().map(|p| p.arn).collect(),
                tags: tags(r.tags)?,
                detailed: true,
                taken_at: Some(at),
            },
        );
    }
    Ok(())
}

/// A user or role of `aws iam list-users` / `list-roles`.
#[derive(Deserialize)]
struct Listed {
    #[serde(rename = "UserName", alias = "RoleName")]
    name: String,
    #[serde(rename = "Arn")]
    arn: String,
    #[serde(rename = "CreateDate", default)]
    created: Option<String>,
    #[serde(rename = "Tags", default)]
    tags: Option<Vec<Tag>>,
}

fn list_users(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    out.kinds.insert("iam list-users");
    for u in list::<Listed>(v, "Users")? {
        out.facts += 1;
        if let Some(a) = account_of(&u.arn) {
            out.iam_accounts.insert(a, at);
        }
        out.users.insert(
            u.arn.clone(),
            UserFacts {
                created: time(&u.created),
                arn: u.arn,
                name: u.name,
                tags: tags(u.tags)?,
                taken_at: Some(at),
                ..UserFacts::default()
            },
        );
    }
    Ok(())
}

fn list_roles(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    out.kinds.insert("iam list-roles");
    for r in list::<Listed>(v, "Roles")? {
        out.facts += 1;
        if let Some(a) = account_of(&r.arn) {
            out.role_accounts.insert(a, at);
        }
        out.roles.insert(
            r.arn.clone(),
            RoleFacts {
                created: time(&r.created),
                arn: r.arn,
                name: r.name,
                tags: tags(r.tags)?,
                taken_at: Some(at),
                ..RoleFacts::default()
            },
        );
    }
    Ok(())
}

fn user_tags(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct UserTags {
        #[serde(rename = "UserName")]
        name: String,
        #[serde(rename = "Arn", default)]
        arn: Option<String>,
        #[serde(rename = "Tags")]
        tags: Vec<Tag>,
    }
    out.kinds.insert("iam list-user-tags");
    let u: UserTags = serde_json::from_str(v.text).map_err(|e| e.to_string())?;
    out.facts += 1;
    // Without an ARN the user is known by name only; the model matches it in any account.
    let arn = u.arn.unwrap_or_else(|| format!("name:{}", u.name));
    out.users.insert(
        arn.clone(),
        UserFacts {
            arn,
            name: u.name,
            tags: tags(Some(u.tags))?,
            taken_at: Some(at),
            ..UserFacts::default()
        },
    );
    Ok(())
}

fn credential_report(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    use base64::Engine as _;
    let content = v.get("Content");
    let content = content
        .as_ref()
        .and_then(Value::as_str)
        .ok_or("`Content` is not a string")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content.trim())
        .map_err(|e| format!("`Content` is not base64: {e}"))?;
    let csv = String::from_utf8(bytes)
        .map_err(|_| "the credential report is not UTF-8 text".to_string())?;
    credential_report_csv(&csv, at, out)
}

fn credential_report_csv(text: &str, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    out.kinds.insert("iam get-credential-report");
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("credential report: {e}"))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(user_col), Some(arn_col)) = (column("user"), column("arn")) else {
        return Err("credential report: no `user` and `arn` columns".to_string());
    };
    let flag = |row: &csv::StringRecord, name: &str| -> Option<bool> {
        match row.get(column(name)?)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    };
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("credential report line {}: {e}", i + 2))?;
        let (Some(user), Some(arn)) = (row.get(user_col), row.get(arn_col)) else {
            return Err(format!(
                "credential report line {}: missing user or arn",
                i + 2
            ));
        };
        let account = account_of(arn)
            .ok_or_else(|| format!("credential report line {}: {arn:?} is not an ARN", i + 2))?;
        out.iam_accounts.insert(account, at);
        if user == "<root_account>" {
            continue;
        }
        out.facts += 1;
        let active = [
            flag(&row, "access_key_1_active"),
            flag(&row, "access_key_2_active"),
        ];
        let active_keys = if active.iter().all(Option::is_none) {
            None
        } else {
            Some(active.iter().filter(|a| **a == Some(true)).count() as i64)
        };
        out.users.insert(
            arn.to_string(),
            UserFacts {
                arn: arn.to_string(),
                name: user.to_string(),
                created: column("user_creation_time")
                    .and_then(|c| row.get(c))
                    .and_then(|t| Timestamp::parse(t).ok()),
                password_enabled: flag(&row, "password_enabled"),
                mfa_active: flag(&row, "mfa_active"),
                active_keys,
                taken_at: Some(at),
                ..UserFacts::default()
            },
        );
    }
    Ok(())
}

fn access_keys(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Key {
        #[serde(rename = "UserName")]
        user: String,
        #[serde(rename = "AccessKeyId")]
        id: String,
        #[serde(rename = "Status")]
        status: String,
        #[serde(rename = "CreateDate", default)]
        created: Option<String>,
    }
    out.kinds.insert("iam list-access-keys");
    for k in list::<Key>(v, "AccessKeyMetadata")? {
        out.facts += 1;
        out.key_users.push(k.user.clone());
        out.keys.insert(
            k.id.clone(),
            KeyFacts {
                created: time(&k.created),
                id: k.id,
                user: k.user,
                status: k.status,
                taken_at: at,
            },
        );
    }
    Ok(())
}

fn instances(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Reservation {
        #[serde(rename = "OwnerId", default)]
        owner: Option<String>,
        #[serde(rename = "Instances", default)]
        instances: Vec<Value>,
    }
    #[derive(Deserialize)]
    struct Instance {
        #[serde(rename = "InstanceId")]
        id: String,
        #[serde(rename = "PrivateIpAddress", default)]
        private_ip: Option<String>,
        #[serde(rename = "PublicIpAddress", default)]
        public_ip: Option<String>,
        #[serde(rename = "VpcId", default)]
        vpc: Option<String>,
        #[serde(rename = "SubnetId", default)]
        subnet: Option<String>,
        #[serde(rename = "IamInstanceProfile", default)]
        profile: Option<Profile>,
        #[serde(rename = "State", default)]
        state: Option<State>,
        #[serde(rename = "NetworkInterfaces", default)]
        interfaces: Vec<Interface>,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
    }
    #[derive(Deserialize)]
    struct Profile {
        #[serde(rename = "Arn", default)]
        arn: Option<String>,
    }
    #[derive(Deserialize)]
    struct State {
        #[serde(rename = "Name", default)]
        name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Interface {
        #[serde(rename = "PrivateIpAddresses", default)]
        addresses: Vec<Address>,
        #[serde(rename = "Association", default)]
        association: Option<Association>,
    }
    #[derive(Deserialize)]
    struct Address {
        #[serde(rename = "PrivateIpAddress", default)]
        private_ip: Option<String>,
        #[serde(rename = "Association", default)]
        association: Option<Association>,
    }
    #[derive(Deserialize)]
    struct Association {
        #[serde(rename = "PublicIp", default)]
        public_ip: Option<String>,
    }
    out.kinds.insert("ec2 describe-instances");
    for (ri, r) in list::<Reservation>(v, "Reservations")?
        .into_iter()
        .enumerate()
    {
        for (ii, raw) in r.instances.into_iter().enumerate() {
            let i: Instance = serde_json::from_value(raw)
                .map_err(|e| format!("Reservations[{ri}].Instances[{ii}]: {e}"))?;
            out.facts += 1;
            let mut facts = InstanceFacts {
                id: i.id.clone(),
                account: r.owner.clone(),
                vpc: i.vpc,
                subnet: i.subnet,
                profile_arn: i.profile.and_then(|p| p.arn),
                state: i.state.and_then(|s| s.name),
                tags: tags(i.tags)?,
                taken_at: Some(at),
                ..InstanceFacts::default()
            };
            facts
                .private_ips
                .extend(i.private_ip.as_deref().and_then(ip));
            facts.public_ips.extend(i.public_ip.as_deref().and_then(ip));
            for nic in i.interfaces {
                facts.public_ips.extend(
                    nic.association
                        .and_then(|a| a.public_ip)
                        .as_deref()
                        .and_then(ip),
                );
                for a in nic.addresses {
                    facts
                        .private_ips
                        .extend(a.private_ip.as_deref().and_then(ip));
                    facts.public_ips.extend(
                        a.association
                            .and_then(|a| a.public_ip)
                            .as_deref()
                            .and_then(ip),
                    );
                }
            }
            out.instances.insert(i.id, facts);
        }
    }
    Ok(())
}

fn nat_gateways(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Nat {
        #[serde(rename = "NatGatewayId")]
        id: String,
        #[serde(rename = "VpcId", default)]
        vpc: Option<String>,
        #[serde(rename = "SubnetId", default)]
        subnet: Option<String>,
        #[serde(rename = "NatGatewayAddresses", default)]
        addresses: Vec<NatAddress>,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
    }
    #[derive(Deserialize)]
    struct NatAddress {
        #[serde(rename = "PublicIp", default)]
        public_ip: Option<String>,
        #[serde(rename = "PrivateIp", default)]
        private_ip: Option<String>,
        #[serde(rename = "NetworkInterfaceId", default)]
        interface: Option<String>,
    }
    out.kinds.insert("ec2 describe-nat-gateways");
    for n in list::<Nat>(v, "NatGateways")? {
        out.facts += 1;
        let mut facts = NatFacts {
            id: n.id.clone(),
            vpc: n.vpc,
            subnet: n.subnet,
            tags: tags(n.tags)?,
            taken_at: Some(at),
            ..NatFacts::default()
        };
        for a in n.addresses {
            facts.public_ips.extend(a.public_ip.as_deref().and_then(ip));
            facts
                .private_ips
                .extend(a.private_ip.as_deref().and_then(ip));
            facts.network_interfaces.extend(a.interface);
        }
        out.nat_gateways.insert(n.id, facts);
    }
    Ok(())
}

fn vpc_endpoints(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Endpoint {
        #[serde(rename = "VpcEndpointId")]
        id: String,
        #[serde(rename = "VpcEndpointType", default)]
        kind: Option<String>,
        #[serde(rename = "VpcId", default)]
        vpc: Option<String>,
        #[serde(rename = "ServiceName", default)]
        service: Option<String>,
        #[serde(rename = "OwnerId", default)]
        owner: Option<String>,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
    }
    out.kinds.insert("ec2 describe-vpc-endpoints");
    for e in list::<Endpoint>(v, "VpcEndpoints")? {
        out.facts += 1;
        out.endpoints.insert(
            e.id.clone(),
            EndpointFacts {
                id: e.id,
                vpc: e.vpc,
                service: e.service,
                owner: e.owner,
                kind: e.kind,
                tags: tags(e.tags)?,
                taken_at: Some(at),
            },
        );
    }
    Ok(())
}

fn addresses(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Address {
        #[serde(rename = "PublicIp", default)]
        public_ip: Option<String>,
        #[serde(rename = "InstanceId", default)]
        instance: Option<String>,
        #[serde(rename = "NetworkInterfaceId", default)]
        interface: Option<String>,
        #[serde(rename = "Tags", default)]
        tags: Option<Vec<Tag>>,
    }
    out.kinds.insert("ec2 describe-addresses");
    for a in list::<Address>(v, "Addresses")? {
        out.facts += 1;
        out.elastic_ips.push(ElasticIpFacts {
            ip: a.public_ip.as_deref().and_then(ip),
            instance: a.instance,
            network_interface: a.interface,
            tags: tags(a.tags)?,
            taken_at: Some(at),
        });
    }
    Ok(())
}

fn accounts(v: &Doc<'_>, at: Timestamp, out: &mut Loaded) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Account {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Arn", default)]
        arn: Option<String>,
        #[serde(rename = "Name", default)]
        name: Option<String>,
        #[serde(rename = "Email", default)]
        email: Option<String>,
        #[serde(rename = "Status", default)]
        status: Option<String>,
    }
    out.kinds.insert("organizations list-accounts");
    out.organization = Some(at);
    for a in list::<Account>(v, "Accounts")? {
        out.facts += 1;
        // arn:aws:organizations::<management>:account/<o-org>/<id>
        let organization = a
            .arn
            .as_deref()
            .and_then(|arn| arn.split('/').nth(1))
            .filter(|o| o.starts_with("o-"))
            .map(str::to_string);
        out.accounts.insert(
            a.id.clone(),
            AccountFacts {
                id: a.id,
                name: a.name,
                email: a.email,
                status: a.status,
                organization,
                taken_at: Some(at),
            },
        );
    }
    Ok(())
}

/// The entity types whose tags Cedar entities JSON can add to.
pub const TAGGABLE: &[&str] = &[
    "IAMUser",
    "AssumedRole",
    "Root",
    "AWSService",
    "AWSAccount",
    "FederatedUser",
    "IdentityCenterUser",
    "SAMLUser",
    "WebIdentityUser",
    "Unknown",
    "Role",
    "Group",
    "Account",
    "Resource",
    "Instance",
    "NatGateway",
    "VpcEndpoint",
    "Address",
    "Network",
];

/// Cedar entities JSON: tags for entities of the model, and `Network`s (named address ranges,
/// such as offices) with their `ranges`. Everything else about an entity comes from the event
/// and the AWS inventory, so other attributes and parents are refused rather than ignored.
fn cedar_entities(items: &[Value], out: &mut Loaded) -> Result<(), String> {
    out.kinds.insert("Cedar entities");
    for (i, item) in items.iter().enumerate() {
        let uid = item
            .get("uid")
            .ok_or_else(|| format!("entity {i}: no uid"))?;
        let uid = uid.get("__entity").unwrap_or(uid);
        let (Some(ty), Some(id)) = (
            uid.get("type").and_then(Value::as_str),
            uid.get("id").and_then(Value::as_str),
        ) else {
            return Err(format!(
                "entity {i}: the uid needs a string `type` and `id`"
            ));
        };
        if !TAGGABLE.contains(&ty) {
            return Err(format!(
                "entity {i}: type {ty:?} is not an entity type of the model; entities JSON adds tags to {}",
                TAGGABLE.join(", ")
            ));
        }
        let attrs = match item.get("attrs") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(format!(
                    "entity {i} ({ty}::{id:?}): `attrs` is not an object"
                ));
            }
        };
        if item
            .get("parents")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty())
        {
            return Err(format!(
                "entity {i} ({ty}::{id:?}): parents are not read; group membership and accounts come from the IAM and Organizations inventory"
            ));
        }
        let mut tags = Tags::new();
        match item.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    tags.insert(k.clone(), text);
                }
            }
            Some(_) => {
                return Err(format!(
                    "entity {i} ({ty}::{id:?}): `tags` is not an object"
                ));
            }
        }
        out.facts += 1;
        if ty == "Network" {
            let ranges =
                network_ranges(&attrs).map_err(|e| format!("entity {i} (Network::{id:?}): {e}"))?;
            out.networks.push(NetworkFacts {
                id: id.to_string(),
                ranges,
                tags,
            });
            continue;
        }
        if let Some(name) = attrs.keys().next() {
            return Err(format!(
                "entity {i} ({ty}::{id:?}): attribute {name:?} is not read; entities JSON gives tags (and a Network's `ranges`), attributes come from the event and the AWS inventory"
            ));
        }
        let known = out
            .entity_tags
            .entry(ty.to_string())
            .or_default()
            .entry(id.to_string())
            .or_default();
        for (k, v) in tags {
            if known.get(&k).is_some_and(|old| *old != v) {
                return Err(format!(
                    "entity {i} ({ty}::{id:?}): the tag {k:?} is given twice in this file with different values"
                ));
            }
            known.insert(k, v);
        }
    }
    Ok(())
}

/// A `Network`'s `ranges`: a list of CIDR blocks (or single addresses).
fn network_ranges(attrs: &serde_json::Map<String, Value>) -> Result<Vec<Cidr>, String> {
    if let Some(name) = attrs.keys().find(|k| *k != "ranges") {
        return Err(format!(
            "attribute {name:?} is not read; a Network has `ranges`"
        ));
    }
    let list = attrs
        .get("ranges")
        .and_then(Value::as_array)
        .ok_or("a Network needs `ranges`, a list of CIDR blocks such as \"198.51.100.0/24\"")?;
    list.iter()
        .map(|v| {
            let text = v
                .as_str()
                .ok_or_else(|| format!("range {v} is not a string"))?;
            Cidr::parse(text).ok_or_else(|| format!("range {text:?} is not a CIDR block"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Loaded, String> {
        let mut out = Loaded::default();
        read(text, Timestamp(0), &mut out)?;
        Ok(out)
    }

    #[test]
    fn bad_inventory_names_what_is_wrong() {
        let e = load(r#"{"ResourceTagMappingList": [{"Tags": []}]}"#).unwrap_err();
        assert!(
            e.contains("ResourceTagMappingList[0]") && e.contains("ResourceARN"),
            "{e}"
        );
        let e =
            load(r#"{"Tags": [{"Key": "a", "Value": "b"}], "IsTruncated": false}"#).unwrap_err();
        assert!(e.contains("does not name its user"), "{e}");
        let e = load(r#"{"Buckets": []}"#).unwrap_err();
        assert!(e.contains("not an inventory"), "{e}");
        let e = load(r#"{"Content": "@@@", "ReportFormat": "text/csv"}"#).unwrap_err();
        assert!(e.contains("base64"), "{e}");
        let e = load(r#"[{"uid": {"type": "Office", "id": "tokyo"}}]"#).unwrap_err();
        assert!(e.contains("not an entity type of the model"), "{e}");
        assert!(load("{\"Reservations\": [").is_err());
    }

    #[test]
    fn reads_a_plain_csv_report_and_user_tags() {
        let csv = "user,arn,user_creation_time,password_enabled,mfa_active,access_key_1_active,access_key_2_active\nbob,arn:aws:iam::111122223333:user/bob,2024-01-01T00:00:00+00:00,true,false,true,true\n";
        let out = load(csv).unwrap();
        let bob = &out.users["arn:aws:iam::111122223333:user/bob"];
        assert_eq!(
            (bob.active_keys, bob.mfa_active, bob.password_enabled),
            (Some(2), Some(false), Some(true))
        );
        let seed003 =
            load(r#"[{"UserName": "hoge0108", "Tags": [{"Key": "hoge0108", "Value": "aaa"}]}]"#)
                .unwrap();
        assert_eq!(seed003.users["name:hoge0108"].tags["hoge0108"], "aaa");
    }
}
