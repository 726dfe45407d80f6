//! The principal: who made the call, from `userIdentity`.
//!
//! The entity type is `userIdentity.type`. Every principal type has the same attributes (see
//! [`ATTRIBUTES`]), so `principal.accessKeyId` validates whatever the type; what CloudTrail does
//! not record for a type is simply absent (`principal has ...`).

use super::facts::{self, Attrs};
use super::{types, uid};
use crate::arn::Arn;
use crate::event::UserIdentity;
use crate::inventory::{Inventory, Tags, later};
use crate::time::Timestamp;
use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use serde_json::value::RawValue;

/// `userIdentity.type`, as an entity type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalKind {
    IamUser,
    AssumedRole,
    Root,
    AwsService,
    AwsAccount,
    FederatedUser,
    IdentityCenterUser,
    SamlUser,
    WebIdentityUser,
    Unknown,
}

impl PrincipalKind {
    /// Every kind, in declaration order.
    pub const ALL: [PrincipalKind; 10] = [
        PrincipalKind::IamUser,
        PrincipalKind::AssumedRole,
        PrincipalKind::Root,
        PrincipalKind::AwsService,
        PrincipalKind::AwsAccount,
        PrincipalKind::FederatedUser,
        PrincipalKind::IdentityCenterUser,
        PrincipalKind::SamlUser,
        PrincipalKind::WebIdentityUser,
        PrincipalKind::Unknown,
    ];

    /// The Cedar entity type name, which is CloudTrail's `userIdentity.type`.
    pub fn type_name(self) -> &'static str {
        match self {
            PrincipalKind::IamUser => "IAMUser",
            PrincipalKind::AssumedRole => "AssumedRole",
            PrincipalKind::Root => "Root",
            PrincipalKind::AwsService => "AWSService",
            PrincipalKind::AwsAccount => "AWSAccount",
            PrincipalKind::FederatedUser => "FederatedUser",
            PrincipalKind::IdentityCenterUser => "IdentityCenterUser",
            PrincipalKind::SamlUser => "SAMLUser",
            PrincipalKind::WebIdentityUser => "WebIdentityUser",
            PrincipalKind::Unknown => "Unknown",
        }
    }

    /// The kind for a `userIdentity.type` value; anything unrecognised is `Unknown`.
    pub fn from_identity_type(t: &str) -> PrincipalKind {
        PrincipalKind::ALL
            .into_iter()
            .find(|k| k.type_name() == t)
            .unwrap_or(PrincipalKind::Unknown)
    }

    /// The kind for a Cedar entity type name.
    pub fn from_type_name(t: &str) -> Option<PrincipalKind> {
        PrincipalKind::ALL.into_iter().find(|k| k.type_name() == t)
    }
}

/// The attributes every principal type has, with their Cedar schema types (`?`: optional).
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("type", "String"),
    ("arn?", "String"),
    ("accountId?", "String"),
    ("arnAccountId?", "String"),
    ("principalId?", "String"),
    ("accessKeyId?", "String"),
    ("longTermKey", "Bool"),
    ("temporaryKey", "Bool"),
    ("userName?", "String"),
    ("userNameLower?", "String"),
    ("roleArn?", "String"),
    ("roleName?", "String"),
    ("roleNameLower?", "String"),
    ("sessionName?", "String"),
    ("sessionCreationDate?", "datetime"),
    ("mfaAuthenticated", "Bool"),
    ("instanceId?", "String"),
    ("invokedBy?", "String"),
    ("sourceIdentity?", "String"),
    ("identityProvider?", "String"),
    ("ec2RoleDelivery?", "String"),
    ("anonymous", "Bool"),
    // From the inventory (docs/model.md, "Inventory"): present only when it can tell.
    ("inInventory?", "Bool"),
    ("createDate?", "datetime"),
    ("passwordEnabled?", "Bool"),
    ("mfaActive?", "Bool"),
    ("activeAccessKeys?", "Long"),
    ("accessKeyStatus?", "String"),
    ("attachedPolicies?", "Set<String>"),
    ("instance?", "Instance"),
    ("accountInOrganization?", "Bool"),
    ("inventoryTakenAt?", "datetime"),
];

/// The principal attributes that come from the inventory.
pub const INVENTORY_ATTRIBUTES: &[&str] = &[
    "inInventory",
    "createDate",
    "passwordEnabled",
    "mfaActive",
    "activeAccessKeys",
    "accessKeyStatus",
    "attachedPolicies",
    "instance",
    "accountInOrganization",
    "inventoryTakenAt",
];

/// The attributes of `Role`, with their Cedar schema types.
pub const ROLE_ATTRIBUTES: &[(&str, &str)] = &[
    ("arn", "String"),
    ("roleName?", "String"),
    ("accountId?", "String"),
    ("createDate?", "datetime"),
    ("attachedPolicies?", "Set<String>"),
    ("inventoryTakenAt?", "datetime"),
];

/// A principal and the entities it brings: itself, its role, its account.
#[derive(Debug, Clone)]
pub struct PrincipalModel {
    pub kind: PrincipalKind,
    pub uid: EntityUid,
    pub arn: Option<String>,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    /// `aws`, `aws-cn` or `aws-us-gov`, from the ARN.
    pub partition: String,
    /// The principal first, then its ancestors.
    pub entities: Vec<Entity>,
    /// Its own attributes as plain values: what the prefilter reads.
    pub facts: Facts,
}

impl PrincipalModel {
    /// Builds the principal of a raw `userIdentity` (absent: an `Unknown` principal), with what
    /// the inventory knows of it.
    pub fn from_identity(raw: Option<&RawValue>, inv: &Inventory) -> Result<Self, String> {
        let identity: UserIdentity = match raw {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| crate::event::nested_field_error("userIdentity", raw.get(), &e))?,
            None => UserIdentity::default(),
        };
        Self::build(&identity, inv)
    }

    fn build(id: &UserIdentity, inv: &Inventory) -> Result<Self, String> {
        let t = types();
        let kind = PrincipalKind::from_identity_type(id.kind.as_deref().unwrap_or("Unknown"));
        let arn = id.arn.as_deref().filter(|s| !s.is_empty());
        let arn_parts = arn.and_then(Arn::parse);
        let account_id = id
            .account_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(arn_parts
                .as_ref()
                .map(|a| a.account)
                .filter(|a| !a.is_empty()))
            .map(str::to_string);
        let partition = arn_parts
            .as_ref()
            .map(|a| a.partition)
            .unwrap_or("aws")
            .to_string();
        let session = id.session_context.as_ref();
        let issuer = session.and_then(|s| s.session_issuer.as_ref());
        let attributes = session.and_then(|s| s.attributes.as_ref());

        let principal_id = id.principal_id.as_deref().filter(|s| !s.is_empty());
        let entity_id = match kind {
            PrincipalKind::AwsService => id.invoked_by.as_deref().or(arn),
            PrincipalKind::AwsAccount => account_id.as_deref().or(principal_id),
            PrincipalKind::IdentityCenterUser => id
                .on_behalf_of
                .as_ref()
                .and_then(|o| o.user_id.as_deref())
                .or(principal_id),
            _ => arn.or(principal_id),
        }
        .or(principal_id)
        .unwrap_or("unknown");
        let principal_uid = uid(t.principal(kind), entity_id);

        let facts = Facts::of(id);
        let mut attrs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(24);
        for attr in Str::ALL {
            if let Some(v) = facts.string(attr) {
                attrs.push((
                    attr.name().to_string(),
                    RestrictedExpression::new_string(v.to_string()),
                ));
            }
        }
        // IAM names are unique without regard to case: `Alice` and `alice` are one user.
        for (name, v) in [
            ("userNameLower", facts.string(Str::UserName)),
            ("roleNameLower", facts.string(Str::RoleName)),
        ] {
            if let Some(v) = v {
                attrs.push((
                    name.to_string(),
                    RestrictedExpression::new_string(v.to_lowercase()),
                ));
            }
        }
        if let Some(created) = attributes
            .and_then(|a| a.creation_date.as_deref())
            .and_then(|d| Timestamp::parse(d).ok())
        {
            attrs.push((
                "sessionCreationDate".to_string(),
                super::datetime_value(&created.to_cedar_string()),
            ));
        }
        for attr in Flag::ALL {
            attrs.push((
                attr.name().to_string(),
                RestrictedExpression::new_bool(facts.flag(attr)),
            ));
        }
        let access_key = facts.string(Str::AccessKeyId);
        let role_arn = facts.string(Str::RoleArn);
        let instance_id = facts.string(Str::InstanceId);

        let account_uid = account_id.as_deref().map(|a| uid(&t.account, a));
        let mut parents: Vec<EntityUid> = account_uid.iter().cloned().collect();
        let mut entities = Vec::with_capacity(3);
        let mut ancestors = Vec::new();
        match (kind, issuer) {
            (PrincipalKind::AssumedRole, Some(i)) if i.kind.as_deref() == Some("Role") => {
                if let Some(role_arn) = i.arn.as_deref().filter(|a| !a.is_empty()) {
                    let role_uid = uid(&t.role, role_arn);
                    let role_account = i
                        .account_id
                        .as_deref()
                        .filter(|a| !a.is_empty())
                        .or(account_id.as_deref());
                    let mut role_attrs = vec![(
                        "arn".to_string(),
                        RestrictedExpression::new_string(role_arn.to_string()),
                    )];
                    if let Some(n) = i.user_name.as_deref() {
                        role_attrs.push((
                            "roleName".to_string(),
                            RestrictedExpression::new_string(n.to_string()),
                        ));
                    }
                    if let Some(a) = role_account {
                        role_attrs.push((
                            "accountId".to_string(),
                            RestrictedExpression::new_string(a.to_string()),
                        ));
                    }
                    let role_parents: Vec<EntityUid> = role_account
                        .map(|a| uid(&t.account, a))
                        .into_iter()
                        .collect();
                    let role = inv.role(role_arn);
                    let mut more = Attrs::default();
                    if let Some(r) = role {
                        more.datetime("createDate", r.created);
                        if r.detailed {
                            more.strings("attachedPolicies", &r.policies);
                        }
                        more.datetime("inventoryTakenAt", r.taken_at);
                    }
                    role_attrs.extend(more.0);
                    ancestors.push(facts::entity(
                        role_uid.clone(),
                        Attrs(role_attrs),
                        role_parents.clone(),
                        &role_tags(role_arn, inv),
                    ));
                    parents.push(role_uid);
                    parents.extend(role_parents);
                }
            }
            (PrincipalKind::FederatedUser, Some(i)) if i.kind.as_deref() == Some("IAMUser") => {
                if let Some(user_arn) = i.arn.as_deref().filter(|a| !a.is_empty()) {
                    parents.push(uid(t.principal(PrincipalKind::IamUser), user_arn));
                }
            }
            _ => {}
        }
        let known = inventory_facts(
            kind,
            id,
            Who {
                arn,
                account: account_id.as_deref(),
                access_key,
                role_arn,
                instance_id,
            },
            inv,
        );
        attrs.extend(known.attrs.0);
        for group in &known.groups {
            parents.push(uid(&t.group, group));
            ancestors.extend(facts::group_entities(group, inv));
        }
        ancestors.extend(known.entities);
        parents.sort_by_key(|u| u.to_string());
        parents.dedup();
        for account in parents.iter().filter(|p| p.type_name() == &t.account) {
            ancestors.extend(facts::account_entities(account.id().unescaped(), inv));
        }
        let tags = facts::with_extra_tags(known.tags, inv, kind.type_name(), entity_id);
        entities.push(facts::entity(
            principal_uid.clone(),
            Attrs(attrs),
            parents,
            &tags,
        ));
        let mut seen = std::collections::HashSet::new();
        ancestors.retain(|e| seen.insert(e.uid()));
        entities.extend(ancestors);
        Ok(PrincipalModel {
            kind,
            uid: principal_uid,
            arn: arn.map(str::to_string),
            account_id,
            access_key_id: access_key.map(str::to_string),
            partition,
            entities,
            facts,
        })
    }

    /// The best name for people: the ARN, else the entity id.
    pub fn display(&self) -> String {
        self.arn
            .clone()
            .unwrap_or_else(|| self.uid.id().unescaped().to_string())
    }
}

/// A string attribute of a principal, of its own (not from the inventory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Str {
    Type,
    Arn,
    AccountId,
    ArnAccountId,
    PrincipalId,
    AccessKeyId,
    UserName,
    RoleArn,
    RoleName,
    SessionName,
    InstanceId,
    InvokedBy,
    SourceIdentity,
    IdentityProvider,
    Ec2RoleDelivery,
}

impl Str {
    /// Every one, in declaration order.
    pub const ALL: [Str; 15] = [
        Str::Type,
        Str::Arn,
        Str::AccountId,
        Str::ArnAccountId,
        Str::PrincipalId,
        Str::AccessKeyId,
        Str::UserName,
        Str::RoleArn,
        Str::RoleName,
        Str::SessionName,
        Str::InstanceId,
        Str::InvokedBy,
        Str::SourceIdentity,
        Str::IdentityProvider,
        Str::Ec2RoleDelivery,
    ];

    /// The attribute's name.
    pub fn name(self) -> &'static str {
        match self {
            Str::Type => "type",
            Str::Arn => "arn",
            Str::AccountId => "accountId",
            Str::ArnAccountId => "arnAccountId",
            Str::PrincipalId => "principalId",
            Str::AccessKeyId => "accessKeyId",
            Str::UserName => "userName",
            Str::RoleArn => "roleArn",
            Str::RoleName => "roleName",
            Str::SessionName => "sessionName",
            Str::InstanceId => "instanceId",
            Str::InvokedBy => "invokedBy",
            Str::SourceIdentity => "sourceIdentity",
            Str::IdentityProvider => "identityProvider",
            Str::Ec2RoleDelivery => "ec2RoleDelivery",
        }
    }

    /// The attribute of a name.
    pub fn from_name(name: &str) -> Option<Str> {
        Str::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A boolean attribute of a principal, of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    LongTermKey,
    TemporaryKey,
    MfaAuthenticated,
    Anonymous,
}

impl Flag {
    /// Every one, in declaration order.
    pub const ALL: [Flag; 4] = [
        Flag::LongTermKey,
        Flag::TemporaryKey,
        Flag::MfaAuthenticated,
        Flag::Anonymous,
    ];

    /// The attribute's name.
    pub fn name(self) -> &'static str {
        match self {
            Flag::LongTermKey => "longTermKey",
            Flag::TemporaryKey => "temporaryKey",
            Flag::MfaAuthenticated => "mfaAuthenticated",
            Flag::Anonymous => "anonymous",
        }
    }

    /// The attribute of a name.
    pub fn from_name(name: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A principal's own attributes as plain values, computed from `userIdentity` without Cedar: what
/// its entity is built from, and what the engine's prefilter reads before building anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub kind: Option<PrincipalKind>,
    strings: [Option<Box<str>>; Str::ALL.len()],
    flags: [bool; Flag::ALL.len()],
}

impl Facts {
    /// The facts of a parsed `userIdentity`.
    pub fn of(id: &UserIdentity) -> Facts {
        let kind = PrincipalKind::from_identity_type(id.kind.as_deref().unwrap_or("Unknown"));
        fn non_empty(v: Option<&str>) -> Option<&str> {
            v.filter(|v| !v.is_empty())
        }
        let arn = non_empty(id.arn.as_deref());
        let arn_parts = arn.and_then(Arn::parse);
        let account_id = non_empty(id.account_id.as_deref()).or(arn_parts
            .as_ref()
            .map(|a| a.account)
            .filter(|a| !a.is_empty()));
        let session = id.session_context.as_ref();
        let issuer = session.and_then(|s| s.session_issuer.as_ref());
        let attributes = session.and_then(|s| s.attributes.as_ref());
        let principal_id = non_empty(id.principal_id.as_deref());
        let access_key = non_empty(id.access_key_id.as_deref());
        let (role_arn, role_name) = match (kind, issuer) {
            (PrincipalKind::AssumedRole, Some(i)) => (i.arn.as_deref(), i.user_name.as_deref()),
            _ => (None, None),
        };
        let session_name = match kind {
            PrincipalKind::AssumedRole | PrincipalKind::FederatedUser => {
                arn.and_then(|a| a.rsplit_once('/')).map(|(_, n)| n)
            }
            _ => None,
        };
        let instance_id = session_name.filter(|n| is_instance_id(n));
        let value = |attr: Str| -> Option<&str> {
            match attr {
                Str::Type => Some(kind.type_name()),
                Str::Arn => arn,
                Str::AccountId => account_id,
                Str::ArnAccountId => arn_parts.as_ref().map(|a| a.account),
                Str::PrincipalId => principal_id,
                Str::AccessKeyId => access_key,
                Str::UserName => id.user_name.as_deref(),
                Str::RoleArn => role_arn,
                Str::RoleName => role_name,
                Str::SessionName => session_name,
                Str::InstanceId => instance_id,
                Str::InvokedBy => id.invoked_by.as_deref(),
                Str::SourceIdentity => session.and_then(|s| s.source_identity.as_deref()),
                Str::IdentityProvider => id.identity_provider.as_deref().or(session
                    .and_then(|s| s.web_id_federation_data.as_ref())
                    .and_then(|w| w.federated_provider.as_deref())),
                Str::Ec2RoleDelivery => session.and_then(|s| s.ec2_role_delivery.as_deref()),
            }
        };
        let strings = Str::ALL.map(|attr| non_empty(value(attr)).map(Box::from));
        let flags = Flag::ALL.map(|flag| match flag {
            Flag::LongTermKey => access_key.is_some_and(|k| k.starts_with("AKIA")),
            Flag::TemporaryKey => access_key.is_some_and(|k| k.starts_with("ASIA")),
            Flag::MfaAuthenticated => attributes
                .and_then(|a| a.mfa_authenticated)
                .unwrap_or(false),
            Flag::Anonymous => [account_id, principal_id].contains(&Some("ANONYMOUS_PRINCIPAL")),
        });
        Facts {
            kind: Some(kind),
            strings,
            flags,
        }
    }

    /// The facts of a raw `userIdentity` (absent: an `Unknown` principal).
    pub fn of_raw(raw: Option<&RawValue>) -> Result<Facts, String> {
        let identity: UserIdentity = match raw {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| crate::event::nested_field_error("userIdentity", raw.get(), &e))?,
            None => UserIdentity::default(),
        };
        Ok(Facts::of(&identity))
    }

    /// The principal's type.
    pub fn kind(&self) -> PrincipalKind {
        self.kind.unwrap_or(PrincipalKind::Unknown)
    }

    /// A string attribute; `None` when absent.
    #[allow(clippy::indexing_slicing)] // one slot per variant, in declaration order
    pub fn string(&self, attr: Str) -> Option<&str> {
        self.strings[attr as usize].as_deref()
    }

    /// A boolean attribute.
    #[allow(clippy::indexing_slicing)] // one slot per variant, in declaration order
    pub fn flag(&self, attr: Flag) -> bool {
        self.flags[attr as usize]
    }
}

/// What identifies a principal to the inventory.
struct Who<'a> {
    arn: Option<&'a str>,
    account: Option<&'a str>,
    access_key: Option<&'a str>,
    role_arn: Option<&'a str>,
    instance_id: Option<&'a str>,
}

/// What the inventory adds to a principal.
#[derive(Default)]
struct Known {
    attrs: Attrs,
    tags: Tags,
    /// ARNs of the groups of an IAM user.
    groups: Vec<String>,
    /// Entities the attributes refer to (an instance-profile session's instance).
    entities: Vec<Entity>,
}

/// A role's tags: from IAM, and from Cedar entities JSON.
fn role_tags(role_arn: &str, inv: &Inventory) -> Tags {
    let tags = inv
        .role(role_arn)
        .map(|r| r.tags.clone())
        .unwrap_or_default();
    facts::with_extra_tags(tags, inv, "Role", role_arn)
}

/// The inventory's facts about a principal: an IAM user's (its groups, tags, credentials), or
/// for an assumed-role session its role's (tags, policies) and its instance.
fn inventory_facts(kind: PrincipalKind, id: &UserIdentity, who: Who, inv: &Inventory) -> Known {
    let mut known = Known::default();
    if inv.is_empty() {
        return known;
    }
    let mut taken: Option<Timestamp> = None;
    match kind {
        PrincipalKind::IamUser => {
            let name = id.user_name.as_deref().filter(|n| !n.is_empty());
            let user = inv.user(who.arn, name);
            // Listing an account's users proves absence; a user known by name only (from
            // `list-user-tags`) proves nothing about the account.
            if let Some(listed) = who.account.and_then(|a| inv.users_listed(a)) {
                known.attrs.bool("inInventory", Some(user.is_some()));
                taken = later(taken, Some(listed));
            }
            if let Some(u) = user {
                known.attrs.datetime("createDate", u.created);
                known.attrs.bool("passwordEnabled", u.password_enabled);
                known.attrs.bool("mfaActive", u.mfa_active);
                known.attrs.long("activeAccessKeys", u.active_keys);
                if u.detailed {
                    known
                        .attrs
                        .strings("attachedPolicies", &inv.user_policies(u));
                    known.groups = u.groups.iter().cloned().collect();
                }
                known.tags = u.tags.clone();
                taken = later(taken, u.taken_at);
            }
            if let Some(key) = who.access_key.filter(|k| k.starts_with("AKIA"))
                && let Some((status, at)) = inv.key_status(key, name, user)
            {
                known.attrs.string("accessKeyStatus", Some(status));
                taken = later(taken, Some(at));
            }
        }
        PrincipalKind::AssumedRole => {
            if let Some(role_arn) = who.role_arn.filter(|r| !r.is_empty()) {
                let role = inv.role(role_arn);
                let role_account = Arn::parse(role_arn).map(|a| a.account).or(who.account);
                if let Some(listed) = role_account.and_then(|a| inv.roles_listed(a)) {
                    known.attrs.bool("inInventory", Some(role.is_some()));
                    taken = later(taken, Some(listed));
                }
                if let Some(r) = role {
                    if r.detailed {
                        known.attrs.strings("attachedPolicies", &r.policies);
                    }
                    taken = later(taken, r.taken_at);
                }
                // A session acts with its role's tags (seed 003).
                known.tags = role_tags(role_arn, inv);
            }
            if let Some(i) = who.instance_id.and_then(|i| inv.instances.get(i)) {
                known
                    .attrs
                    .entity("instance", Some(uid(&types().instance, &i.id)));
                known.entities.extend(facts::instance_entities(i, inv));
                taken = later(taken, i.taken_at);
            }
        }
        _ => {}
    }
    if let Some(in_org) = who.account.and_then(|a| inv.in_organization(a)) {
        known.attrs.bool("accountInOrganization", Some(in_org));
        taken = later(taken, inv.organization);
    }
    known.attrs.datetime("inventoryTakenAt", taken);
    known
}

/// `i-` followed by 8 or 17 hexadecimal digits: an EC2 instance id.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(json: &str) -> PrincipalModel {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        PrincipalModel::from_identity(Some(&raw), &Inventory::default()).unwrap()
    }

    fn attr(p: &PrincipalModel, name: &str) -> Option<String> {
        p.entities[0].attr(name).map(|v| v.unwrap().to_string())
    }

    #[test]
    fn instance_profile_session() {
        let p = principal(
            r#"{"type":"AssumedRole","principalId":"AROAQ4BT4DHFO2FNYZAOZ:i-0f48040475b4f3464",
            "arn":"arn:aws:sts::123456789012:assumed-role/s3readonly/i-0f48040475b4f3464",
            "accountId":"123456789012","accessKeyId":"ASIAQ123456789012345",
            "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAQ4BT4DHFO2FNYZAOZ",
            "arn":"arn:aws:iam::123456789012:role/s3readonly","accountId":"123456789012","userName":"s3readonly"},
            "webIdFederationData":{},"attributes":{"creationDate":"2022-06-28T00:11:43Z","mfaAuthenticated":"false"},
            "ec2RoleDelivery":"2.0"}}"#,
        );
        assert_eq!(p.kind, PrincipalKind::AssumedRole);
        assert_eq!(
            p.uid.to_string(),
            r#"AssumedRole::"arn:aws:sts::123456789012:assumed-role/s3readonly/i-0f48040475b4f3464""#
        );
        assert_eq!(
            attr(&p, "instanceId").as_deref(),
            Some(r#""i-0f48040475b4f3464""#)
        );
        assert_eq!(attr(&p, "roleName").as_deref(), Some(r#""s3readonly""#));
        assert_eq!(attr(&p, "temporaryKey").as_deref(), Some("true"));
        assert_eq!(attr(&p, "longTermKey").as_deref(), Some("false"));
        assert!(
            attr(&p, "sessionCreationDate")
                .unwrap()
                .contains("2022-06-28T00:11:43")
        );
        let ancestors: Vec<String> = p
            .entities
            .iter()
            .skip(1)
            .map(|e| e.uid().to_string())
            .collect();
        assert_eq!(
            ancestors,
            vec![
                r#"Role::"arn:aws:iam::123456789012:role/s3readonly""#,
                r#"Account::"123456789012""#
            ]
        );
    }

    #[test]
    fn iam_user_with_long_term_key() {
        let p = principal(
            r#"{"type":"IAMUser","principalId":"AIDAQ4BT4DHFPP4W7TSKU","arn":"arn:aws:iam::123456789012:user/access-key-on-ec2",
            "accountId":"123456789012","accessKeyId":"AKIAIOSFODNN7EXAMPLE","userName":"access-key-on-ec2"}"#,
        );
        assert_eq!(p.kind, PrincipalKind::IamUser);
        assert_eq!(attr(&p, "longTermKey").as_deref(), Some("true"));
        assert_eq!(
            attr(&p, "userName").as_deref(),
            Some(r#""access-key-on-ec2""#)
        );
        assert_eq!(attr(&p, "instanceId"), None);
    }

    #[test]
    fn services_anonymous_and_unknown() {
        let s = principal(r#"{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}"#);
        assert_eq!(s.uid.to_string(), r#"AWSService::"ec2.amazonaws.com""#);
        let a = principal(
            r#"{"type":"AWSAccount","principalId":"","accountId":"ANONYMOUS_PRINCIPAL"}"#,
        );
        assert_eq!(attr(&a, "anonymous").as_deref(), Some("true"));
        let u = principal(r#"{"type":"Directory","principalId":"x"}"#);
        assert_eq!(u.kind, PrincipalKind::Unknown);
        assert_eq!(attr(&u, "type").as_deref(), Some(r#""Unknown""#));
        let none = PrincipalModel::from_identity(None, &Inventory::default()).unwrap();
        assert_eq!(none.uid.to_string(), r#"Unknown::"unknown""#);
        assert!(
            PrincipalModel::from_identity(
                Some(&serde_json::from_str::<Box<RawValue>>("5").unwrap()),
                &Inventory::default()
            )
            .is_err()
        );
    }

    #[test]
    fn root_account_from_arn() {
        let r = principal(
            r#"{"type":"Root","principalId":"123456789012","arn":"arn:aws:iam::123456789012:root"}"#,
        );
        assert_eq!(r.account_id.as_deref(), Some("123456789012"));
        assert_eq!(r.entities.len(), 2);
    }

    #[test]
    fn instance_ids() {
        assert!(is_instance_id("i-0f48040475b4f3464"));
        assert!(is_instance_id("i-1a2b3c4d"));
        assert!(!is_instance_id("i-xyz"));
        assert!(!is_instance_id("botocore-session-1656375659"));
    }

    fn with_inventory(json: &str) -> PrincipalModel {
        let inv = Inventory::load(&[std::path::PathBuf::from("fixtures/inventory")], None).unwrap();
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        PrincipalModel::from_identity(Some(&raw), &inv).unwrap()
    }

    fn tag(p: &PrincipalModel, key: &str) -> Option<String> {
        p.entities[0].tag(key).map(|v| v.unwrap().to_string())
    }

    #[test]
    fn an_iam_user_with_its_inventory() {
        let alice = with_inventory(
            r#"{"type":"IAMUser","principalId":"AIDAQ4BT4DHFALICE0001","arn":"arn:aws:iam::123456789012:user/alice",
            "accountId":"123456789012","accessKeyId":"AKIAQ4BT4DHFALICE001","userName":"alice"}"#,
        );
        assert_eq!(attr(&alice, "inInventory").as_deref(), Some("true"));
        assert_eq!(attr(&alice, "mfaActive").as_deref(), Some("true"));
        assert_eq!(attr(&alice, "activeAccessKeys").as_deref(), Some("1"));
        assert_eq!(
            attr(&alice, "accessKeyStatus").as_deref(),
            Some(r#""Active""#)
        );
        assert_eq!(
            attr(&alice, "accountInOrganization").as_deref(),
            Some("true")
        );
        assert!(
            attr(&alice, "attachedPolicies")
                .unwrap()
                .contains("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            "its group's policies"
        );
        assert_eq!(tag(&alice, "service").as_deref(), Some(r#""web""#));
        let parents: Vec<String> = alice.entities[0]
            .clone()
            .into_inner()
            .2
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert!(
            parents.contains(
                &r#"Group::"arn:aws:iam::123456789012:group/web-developers""#.to_string()
            ),
            "{parents:?}"
        );
        let ancestors: Vec<String> = alice.entities.iter().map(|e| e.uid().to_string()).collect();
        assert!(
            ancestors.contains(&r#"Organization::"o-a1b2c3d4e5""#.to_string()),
            "{ancestors:?}"
        );

        let stranger = with_inventory(
            r#"{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/backup-admin","accountId":"123456789012",
            "accessKeyId":"AKIAQ4BT4DHFBACKUP01","userName":"backup-admin"}"#,
        );
        assert_eq!(attr(&stranger, "inInventory").as_deref(), Some("false"));
        assert_eq!(attr(&stranger, "accessKeyStatus"), None, "cannot tell");
        let staging = with_inventory(
            r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ci","accountId":"111122223333",
            "accessKeyId":"AKIAQ4BT4DHFSTAGING1","userName":"ci"}"#,
        );
        assert_eq!(
            attr(&staging, "inInventory"),
            None,
            "its users were not listed"
        );
        assert_eq!(
            attr(&staging, "accountInOrganization").as_deref(),
            Some("true")
        );
        let foreign = with_inventory(
            r#"{"type":"IAMUser","arn":"arn:aws:iam::444455556666:user/chibayuki","accountId":"444455556666",
            "accessKeyId":"AKIAZZ7FOREIGNKEY001","userName":"chibayuki"}"#,
        );
        assert_eq!(
            attr(&foreign, "accountInOrganization").as_deref(),
            Some("false")
        );
    }

    #[test]
    fn a_session_with_its_role_and_instance() {
        let s = with_inventory(
            r#"{"type":"AssumedRole","principalId":"AROAQ4BT4DHFO2FNYZAOZ:i-0f48040475b4f3464",
            "arn":"arn:aws:sts::123456789012:assumed-role/log-uploader/i-0f48040475b4f3464",
            "accountId":"123456789012","accessKeyId":"ASIAQ4BT4DHFUPLOADER2",
            "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123456789012:role/log-uploader",
            "accountId":"123456789012","userName":"log-uploader"},"attributes":{"mfaAuthenticated":"false"}}}"#,
        );
        assert_eq!(
            tag(&s, "service").as_deref(),
            Some(r#""logging""#),
            "the role's tag"
        );
        assert_eq!(
            tag(&s, "owner").as_deref(),
            Some(r#""platform""#),
            "from entities JSON"
        );
        assert_eq!(attr(&s, "inInventory").as_deref(), Some("true"));
        assert_eq!(
            attr(&s, "instance").as_deref(),
            Some(r#"Instance::"i-0f48040475b4f3464""#)
        );
        assert!(
            s.entities
                .iter()
                .any(|e| e.uid().to_string() == r#"Instance::"i-0f48040475b4f3464""#)
        );
        assert!(attr(&s, "inventoryTakenAt").is_some());
    }
}
