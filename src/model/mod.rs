//! The model: how a CloudTrail event becomes a Cedar request and its entities.
//!
//! `docs/model.md` is the reference for policy authors; this module is its implementation.
//!
//! - **principal**: an entity typed after `userIdentity.type` (`IAMUser`, `AssumedRole`, `Root`,
//!   ...), in its `Account`, and an assumed-role session in its `Role` ([`principal`]).
//! - **action**: `Action::"<service>:<eventName>"`, in the group `Action::"<service>"`.
//! - **resource**: a `Resource` entity per resource the event names, in its container and its
//!   `Account` ([`resource`]).
//! - **context**: the event's fields, typed ([`context`]); the free-form `requestParameters`,
//!   `responseElements`, `additionalEventData` and `serviceEventDetails` are entities whose
//!   *tags* are the flattened fields ([`fields`]), so that any key can be read and the policy
//!   still validates against the schema ([`schema`]).
//! - **inventory facts** ([`facts`]): tags, IAM, credentials, addresses, endpoints and accounts
//!   from [`crate::inventory`], joined into the entities above and into `context.source` and
//!   `context.vpcEndpoint`.

pub mod actions;
pub mod aws_ranges;
pub mod context;
pub mod copy;
pub mod document;
pub mod element;
pub mod facts;
pub mod fields;
pub mod principal;
mod quick;
pub mod resource;
pub mod schema;
pub mod sharing;
pub mod typed;

use crate::event::Event;
use crate::text::truncate;
use crate::time::Timestamp;
use cedar_policy::{EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::Value;
use std::cell::OnceCell;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;

pub use fields::Field;
pub use principal::{PrincipalKind, PrincipalModel};
pub use resource::ResourceModel;

/// Entity type names of the model, parsed once.
pub struct Types {
    pub account: EntityTypeName,
    pub organization: EntityTypeName,
    pub role: EntityTypeName,
    pub group: EntityTypeName,
    pub resource: EntityTypeName,
    pub action: EntityTypeName,
    pub address: EntityTypeName,
    pub network: EntityTypeName,
    pub instance: EntityTypeName,
    pub nat_gateway: EntityTypeName,
    pub vpc_endpoint: EntityTypeName,
    pub element: EntityTypeName,
    pub numbers: EntityTypeName,
    pub booleans: EntityTypeName,
    pub kinds: EntityTypeName,
    pub sizes: EntityTypeName,
    pub policy_document: EntityTypeName,
    pub sharing: EntityTypeName,
    principals: [EntityTypeName; PrincipalKind::ALL.len()],
    fields: [EntityTypeName; Field::ALL.len()],
}

impl Types {
    /// The entity type of a principal kind.
    #[allow(clippy::indexing_slicing)] // one entry per variant, in declaration order
    pub fn principal(&self, kind: PrincipalKind) -> &EntityTypeName {
        &self.principals[kind as usize]
    }

    /// The entity type of a free-form field.
    #[allow(clippy::indexing_slicing)] // one entry per variant, in declaration order
    pub fn field(&self, field: Field) -> &EntityTypeName {
        &self.fields[field as usize]
    }
}

#[allow(clippy::expect_used)]
fn type_name(name: &str) -> EntityTypeName {
    // Only called with the fixed identifiers of the model, covered by tests.
    EntityTypeName::from_str(name).expect("model type names are valid Cedar identifiers")
}

/// The model's entity type names.
pub fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| Types {
        account: type_name("Account"),
        organization: type_name("Organization"),
        role: type_name("Role"),
        group: type_name("Group"),
        resource: type_name("Resource"),
        action: type_name("Action"),
        address: type_name("Address"),
        network: type_name("Network"),
        instance: type_name("Instance"),
        nat_gateway: type_name("NatGateway"),
        vpc_endpoint: type_name("VpcEndpoint"),
        element: type_name("Element"),
        numbers: type_name("Numbers"),
        booleans: type_name("Booleans"),
        kinds: type_name("Kinds"),
        sizes: type_name("Sizes"),
        policy_document: type_name("PolicyDocument"),
        sharing: type_name("Sharing"),
        principals: PrincipalKind::ALL.map(|k| type_name(k.type_name())),
        fields: Field::ALL.map(|f| type_name(f.type_name())),
    })
}

/// An entity uid of one of the model's types.
pub fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

/// `Action::"<service>:<eventName>"`.
pub fn action_uid(action: &str) -> EntityUid {
    uid(&types().action, action)
}

/// `datetime("<text>")` as an entity or context value.
pub fn datetime_value(text: &str) -> RestrictedExpression {
    extension_value(Extension::Datetime, text)
}

/// `ip("<text>")` as an entity or context value.
pub fn ip_value(text: &str) -> RestrictedExpression {
    extension_value(Extension::Ip, text)
}

#[derive(Clone, Copy)]
enum Extension {
    Datetime,
    Ip,
}

/// `RestrictedExpression::new_datetime` and `new_ip` parse the function's name with Cedar's
/// parser on every call (about 48,000 instructions, where the rest of an entity costs a few
/// thousand), so each value is built once per thread and cloned: inventory times and addresses
/// repeat across entities and events.
fn extension_value(kind: Extension, text: &str) -> RestrictedExpression {
    use std::cell::RefCell;
    /// Values per thread past which the cache starts over: bounded memory on hostile input.
    const LIMIT: usize = 4096;
    type Cache = rustc_hash::FxHashMap<Box<str>, RestrictedExpression>;
    thread_local! {
        static CACHE: RefCell<(Cache, Cache)> = RefCell::default();
    }
    let build = || match kind {
        Extension::Datetime => RestrictedExpression::new_datetime(text),
        Extension::Ip => RestrictedExpression::new_ip(text),
    };
    CACHE
        .try_with(|caches| {
            let mut caches = caches.borrow_mut();
            let cache = match kind {
                Extension::Datetime => &mut caches.0,
                Extension::Ip => &mut caches.1,
            };
            if let Some(v) = cache.get(text) {
                return v.clone();
            }
            let v = build();
            if cache.len() >= LIMIT {
                cache.clear();
            }
            cache.insert(text.into(), v.clone());
            v
        })
        .unwrap_or_else(|_| build())
}

/// An event with what every stage derives from it once.
#[derive(Debug)]
pub struct EventView<'a> {
    pub event: Event<'a>,
    /// `eventTime`, parsed.
    pub time: Timestamp,
    source_ip: OnceCell<Option<IpAddr>>,
    parsed: [OnceCell<Result<Option<Value>, String>>; 4],
    grants: OnceCell<Result<Option<document::Grants>, String>>,
    shared: OnceCell<Result<Option<sharing::Shared>, String>>,
}

impl<'a> EventView<'a> {
    /// Parses one record; the error says why it cannot be evaluated.
    pub fn parse(json: &'a str) -> Result<Self, String> {
        Self::new(serde_json::from_str(json).map_err(|e| crate::event::field_error(json, &e))?)
    }

    /// Checks a parsed event; the error says why it cannot be evaluated.
    pub fn new(event: Event<'a>) -> Result<Self, String> {
        if let Some((name, len)) = event.oversized(fields::MAX_VALUE) {
            return Err(format!(
                "{name}: {len} bytes, more than the {} bytes a rule may read",
                fields::MAX_VALUE
            ));
        }
        let time = Timestamp::parse(&event.event_time).map_err(|e| {
            format!(
                "eventTime {:?} is not a time ({e}); times look like 2024-05-14T06:34:11Z",
                truncate(&event.event_time, 40)
            )
        })?;
        // Parsed when a policy reads it, and then dropped if it is not a record: decided here.
        if event.tls_details.is_some_and(|t| !t.get().starts_with('{')) {
            return Err("tlsDetails: expected a JSON object".to_string());
        }
        if event.event_name.is_empty() || event.event_source.is_empty() {
            return Err("eventName and eventSource must not be empty".to_string());
        }
        Ok(EventView {
            event,
            time,
            source_ip: OnceCell::new(),
            parsed: Default::default(),
            grants: OnceCell::new(),
            shared: OnceCell::new(),
        })
    }

    /// `sourceIPAddress` when it is an address (it can also be a service name or `AWS Internal`);
    /// an IPv4-mapped IPv6 address (`::ffff:198.51.100.7`) is the IPv4 address it maps.
    pub fn source_ip(&self) -> Option<IpAddr> {
        *self.source_ip.get_or_init(|| {
            let ip = IpAddr::from_str(self.event.source_ip_address.as_deref()?).ok()?;
            Some(match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            })
        })
    }

    /// A free-form field as a JSON value, parsed on first use; `None` when absent.
    ///
    /// A field that cannot be parsed (nested deeper than serde_json's limit of 128) is an error,
    /// never an empty field: a policy must not be evaded by making a payload unreadable.
    #[allow(clippy::indexing_slicing)] // one cell per variant, in declaration order
    pub fn field(&self, field: Field) -> Result<Option<&Value>, String> {
        self.parsed[field as usize]
            .get_or_init(|| match field.raw(&self.event) {
                None => Ok(None),
                Some(raw) => fields::parse(field, raw).map(Some),
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    /// What the policy documents of the request grant ([`document`]), read on first use;
    /// `None` when it holds none.
    pub fn grants(&self) -> Result<Option<&document::Grants>, String> {
        self.grants
            .get_or_init(|| document::grants(self))
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    /// What the call shares ([`sharing`]), read on first use; `None` for a call that shares
    /// nothing.
    pub fn shared(&self) -> Result<Option<&sharing::Shared>, String> {
        self.shared
            .get_or_init(|| sharing::shared(self))
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    /// `eventID`, or an empty string.
    pub fn event_id(&self) -> &str {
        self.event.event_id.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_name_parses() {
        let t = types();
        for kind in PrincipalKind::ALL {
            assert_eq!(t.principal(kind).to_string(), kind.type_name());
        }
        for field in Field::ALL {
            assert_eq!(t.field(field).to_string(), field.type_name());
        }
        assert_eq!(
            action_uid("s3:PutObject").to_string(),
            r#"Action::"s3:PutObject""#
        );
    }

    #[test]
    fn view_rejects_bad_times_and_parses_ips() {
        let e = r#"{"eventTime":"yesterday","eventSource":"s3.amazonaws.com","eventName":"X"}"#;
        assert!(EventView::parse(e).unwrap_err().contains("eventTime"));
        let e = r#"{"eventTime":"2022-06-27T06:55:24Z","eventSource":"s3.amazonaws.com","eventName":"X","sourceIPAddress":"AWS Internal","requestParameters":{"a":{"b":1}}}"#;
        let v = EventView::parse(e).unwrap();
        assert_eq!(v.source_ip(), None);
        let mapped = r#"{"eventTime":"2022-06-27T06:55:24Z","eventSource":"s","eventName":"X","sourceIPAddress":"::ffff:198.51.100.7"}"#;
        assert_eq!(
            EventView::parse(mapped).unwrap().source_ip(),
            "198.51.100.7".parse().ok()
        );
        assert_eq!(
            v.field(Field::RequestParameters).unwrap().unwrap()["a"]["b"],
            1
        );
        assert!(v.field(Field::ResponseElements).unwrap().is_none());
        let deep = format!(
            r#"{{"eventTime":"2022-06-27T06:55:24Z","eventSource":"s","eventName":"X","requestParameters":{{"a":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let v = EventView::parse(&deep).unwrap();
        assert!(
            v.field(Field::RequestParameters)
                .unwrap_err()
                .contains("recursion limit")
        );
    }
}
