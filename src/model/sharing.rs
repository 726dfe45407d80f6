//! Sharing as facts: `context.sharing`, the accounts a call shares a snapshot, an image, a
//! document or a resource share with, or stops sharing it with, and whether it makes it public.
//!
//! | call | read from |
//! |---|---|
//! | `ec2:ModifySnapshotAttribute` | `createVolumePermission.add/remove.items[].userId`, `group: "all"` |
//! | `ec2:ModifyImageAttribute` | `launchPermission.add/remove.items[].userId`, `group: "all"`, `organizationArn`, `organizationalUnitArn` |
//! | `ec2:ModifyFpgaImageAttribute` | `loadPermission.add/remove.items[]`, as above |
//! | `rds:ModifyDBSnapshotAttribute`, `rds:ModifyDBClusterSnapshotAttribute` | `valuesToAdd`, `valuesToRemove` (`all` is public) of the `restore` attribute |
//! | `ssm:ModifyDocumentPermission` | `accountIdsToAdd`, `accountIdsToRemove` (`All` is public) |
//! | `redshift:AuthorizeSnapshotAccess`, `RevokeSnapshotAccess` | `accountWithRestoreAccess` |
//! | `ram:CreateResourceShare`, `AssociateResourceShare`, `DisassociateResourceShare` | `principals` (accounts, organizations, OUs) |
//!
//! Each item the call reads is what CloudTrail records of the request: a failed call shares
//! nothing, which a policy tells with `context has errorCode`.

use super::document::external;
use super::fields::lookup;
use super::{EventView, Field, types, uid};
use crate::inventory::Inventory;
use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

/// The attributes of `Sharing`, with their schema types.
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("accountsAdded", "Set<String>"),
    ("accountsRemoved", "Set<String>"),
    ("externalAccountsAdded", "Set<String>"),
    ("organizationsAdded", "Set<String>"),
    ("public", "Bool"),
    ("publicRemoved", "Bool"),
];

/// What a call shares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shared {
    pub accounts_added: BTreeSet<String>,
    pub accounts_removed: BTreeSet<String>,
    /// Organization and organizational unit ARNs (or ids) shared with.
    pub organizations_added: BTreeSet<String>,
    /// Shared with everyone.
    pub public: bool,
    /// No longer shared with everyone.
    pub public_removed: bool,
}

/// Whether an account or a principal is "everyone" in a sharing call.
fn everyone(value: &str) -> bool {
    value.eq_ignore_ascii_case("all")
}

impl Shared {
    /// Adds a value of a list of accounts (`added`, else removed): an account, "all", an
    /// organization or an organizational unit.
    fn value(&mut self, value: &str, added: bool) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        match (everyone(value), added) {
            (true, true) => self.public = true,
            (true, false) => self.public_removed = true,
            (false, true) if value.contains("organization") || value.starts_with("o-") => {
                self.organizations_added.insert(value.to_string());
            }
            (false, true) => {
                self.accounts_added.insert(account_of(value).to_string());
            }
            (false, false) => {
                self.accounts_removed.insert(account_of(value).to_string());
            }
        }
    }

    /// EC2's permission lists: `{"add": {"items": [{"userId": ...}, {"group": "all"}]}, "remove": ...}`.
    fn ec2_permission(&mut self, permission: &Value) {
        for (side, added) in [("add", true), ("remove", false)] {
            let items = match lookup(permission, side) {
                Some(Value::Object(o)) => o.get("items"),
                other => other,
            };
            let items: Vec<&Value> = match items {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(one @ Value::Object(_)) => vec![one],
                _ => Vec::new(),
            };
            for item in items {
                for key in [
                    "userId",
                    "group",
                    "organizationArn",
                    "organizationalUnitArn",
                ] {
                    if let Some(v) = item.get(key).and_then(Value::as_str) {
                        self.value(v, added);
                    }
                }
            }
        }
    }

    /// A list of strings (or one string) of accounts.
    fn list(&mut self, value: Option<&Value>, added: bool) {
        match value {
            Some(Value::String(s)) => self.value(s, added),
            Some(Value::Array(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    self.value(s, added);
                }
            }
            _ => {}
        }
    }
}

/// An account id from an ARN of a principal (`arn:aws:iam::123456789012:root`), or the value.
fn account_of(value: &str) -> &str {
    crate::arn::Arn::parse(value)
        .map(|a| a.account)
        .filter(|a| !a.is_empty())
        .unwrap_or(value)
}

/// What an event's call shares; `None` for a call that is not a sharing call.
pub fn shared(view: &EventView) -> Result<Option<Shared>, String> {
    let name = view.event.event_name.as_ref();
    let service = view.event.service();
    let known = matches!(
        (service, name),
        (
            "ec2",
            "ModifySnapshotAttribute" | "ModifyImageAttribute" | "ModifyFpgaImageAttribute"
        ) | (
            "rds",
            "ModifyDBSnapshotAttribute" | "ModifyDBClusterSnapshotAttribute"
        ) | ("ssm", "ModifyDocumentPermission")
            | (
                "redshift",
                "AuthorizeSnapshotAccess" | "RevokeSnapshotAccess"
            )
            | (
                "ram",
                "CreateResourceShare" | "AssociateResourceShare" | "DisassociateResourceShare"
            )
    );
    if !known {
        return Ok(None);
    }
    let Some(params) = view.field(Field::RequestParameters)? else {
        return Ok(Some(Shared::default()));
    };
    let mut s = Shared::default();
    let get = |path: &str| lookup(params, path);
    match (service, name) {
        ("ec2", _) => {
            for attr in [
                "createVolumePermission",
                "launchPermission",
                "loadPermission",
            ] {
                if let Some(p) = get(attr) {
                    s.ec2_permission(p);
                }
            }
        }
        ("rds", _) => {
            let restore = get("attributeName")
                .and_then(Value::as_str)
                .is_none_or(|a| a.eq_ignore_ascii_case("restore"));
            if restore {
                s.list(get("valuesToAdd"), true);
                s.list(get("valuesToRemove"), false);
            }
        }
        ("ssm", _) => {
            s.list(get("accountIdsToAdd"), true);
            s.list(get("accountIdsToRemove"), false);
        }
        ("redshift", "AuthorizeSnapshotAccess") => s.list(get("accountWithRestoreAccess"), true),
        ("redshift", _) => s.list(get("accountWithRestoreAccess"), false),
        ("ram", "DisassociateResourceShare") => s.list(get("principals"), false),
        ("ram", _) => s.list(get("principals"), true),
        _ => {}
    }
    Ok(Some(s))
}

/// `Sharing::"event"`.
pub fn sharing_uid() -> EntityUid {
    uid(&types().sharing, "event")
}

/// The entity of what a call shares, with the accounts added that are external: outside the
/// organization when the inventory lists it, else other than `own` (the event's account).
pub fn entity(s: &Shared, own: Option<&str>, inv: &Inventory) -> Result<Entity, String> {
    let external_accounts_added = external(&s.accounts_added, own, inv);
    let set = |items: &BTreeSet<String>| {
        RestrictedExpression::new_set(
            items
                .iter()
                .map(|v| RestrictedExpression::new_string(v.clone())),
        )
    };
    let attrs = [
        ("accountsAdded", set(&s.accounts_added)),
        ("accountsRemoved", set(&s.accounts_removed)),
        ("externalAccountsAdded", set(&external_accounts_added)),
        ("organizationsAdded", set(&s.organizations_added)),
        ("public", RestrictedExpression::new_bool(s.public)),
        (
            "publicRemoved",
            RestrictedExpression::new_bool(s.public_removed),
        ),
    ]
    .map(|(k, v)| (k.to_string(), v));
    Entity::new(sharing_uid(), attrs.into_iter().collect(), HashSet::new())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_by(source: &str, name: &str, params: &str) -> Option<Shared> {
        let json = format!(
            r#"{{"eventTime":"2024-05-14T00:00:00Z","eventSource":"{source}","eventName":"{name}","recipientAccountId":"111122223333","requestParameters":{params}}}"#
        );
        let view = EventView::parse(&json).unwrap();
        shared(&view).unwrap()
    }

    fn external_of(s: &Shared) -> BTreeSet<String> {
        external(
            &s.accounts_added,
            Some("111122223333"),
            &Inventory::default(),
        )
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn snapshots_and_images_shared_with_accounts_or_everyone() {
        let s = shared_by(
            "ec2.amazonaws.com",
            "ModifySnapshotAttribute",
            r#"{"snapshotId":"snap-0123","attributeType":"CREATE_VOLUME_PERMISSION","createVolumePermission":{"add":{"items":[{"userId":"444455556666"},{"userId":"111122223333"}]}}}"#,
        )
        .unwrap();
        assert_eq!(s.accounts_added, set(&["111122223333", "444455556666"]));
        assert_eq!(external_of(&s), set(&["444455556666"]));
        assert!(!s.public);
        let public = shared_by(
            "ec2.amazonaws.com",
            "ModifyImageAttribute",
            r#"{"imageId":"ami-0123","launchPermission":{"add":{"items":[{"group":"all"}]}}}"#,
        )
        .unwrap();
        assert!(public.public);
        let removed = shared_by(
            "ec2.amazonaws.com",
            "ModifySnapshotAttribute",
            r#"{"snapshotId":"snap-0123","createVolumePermission":{"remove":{"items":[{"userId":"444455556666"},{"group":"all"}]}}}"#,
        )
        .unwrap();
        assert!(removed.accounts_added.is_empty() && !removed.public);
        assert!(removed.public_removed);
        assert_eq!(removed.accounts_removed, set(&["444455556666"]));
    }

    #[test]
    fn rds_ssm_and_ram_sharing() {
        let rds = shared_by(
            "rds.amazonaws.com",
            "ModifyDBSnapshotAttribute",
            r#"{"dBSnapshotIdentifier":"db-snap","attributeName":"restore","valuesToAdd":["444455556666","all"]}"#,
        )
        .unwrap();
        assert!(rds.public);
        assert_eq!(external_of(&rds), set(&["444455556666"]));
        let other_attribute = shared_by(
            "rds.amazonaws.com",
            "ModifyDBClusterSnapshotAttribute",
            r#"{"attributeName":"something","valuesToAdd":["all"]}"#,
        )
        .unwrap();
        assert!(!other_attribute.public);
        let ssm = shared_by(
            "ssm.amazonaws.com",
            "ModifyDocumentPermission",
            r#"{"name":"doc","permissionType":"Share","accountIdsToAdd":["All"]}"#,
        )
        .unwrap();
        assert!(ssm.public);
        let ram = shared_by(
            "ram.amazonaws.com",
            "CreateResourceShare",
            r#"{"name":"s","principals":["arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5","444455556666"],"allowExternalPrincipals":true}"#,
        )
        .unwrap();
        assert_eq!(ram.accounts_added, set(&["444455556666"]));
        assert_eq!(ram.organizations_added.len(), 1);
        assert!(shared_by("ec2.amazonaws.com", "DescribeSnapshots", "{}").is_none());
    }
}
