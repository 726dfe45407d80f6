//! The context: the event's own fields, typed.
//!
//! Only the attributes some candidate policy reads are built ([`AttrSet`]): extension values
//! such as `datetime` and `ip` cost several microseconds each to construct in Cedar.

use super::aws_ranges::AwsRanges;
use super::{EventView, Field, types, uid};
use crate::inventory::Inventory;
use cedar_policy::{Context, RestrictedExpression};

/// A context attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    EventTime,
    EventName,
    EventSource,
    EventId,
    EventVersion,
    EventType,
    EventCategory,
    AwsRegion,
    SourceIpAddress,
    SourceIp,
    SourceInAws,
    UserAgent,
    ErrorCode,
    ErrorMessage,
    ReadOnly,
    ManagementEvent,
    RecipientAccountId,
    RequestId,
    SharedEventId,
    VpcEndpointId,
    VpcEndpointAccountId,
    ApiVersion,
    SessionCredentialFromConsole,
    TlsDetails,
    RequestParameters,
    ResponseElements,
    AdditionalEventData,
    ServiceEventDetails,
    Source,
    VpcEndpoint,
    UserAgentLower,
    PolicyDocument,
    Sharing,
    Copy,
    Element,
}

/// How an attribute is declared and whether it is unique to each event.
pub struct AttrInfo {
    pub attr: Attr,
    pub name: &'static str,
    /// The Cedar schema type.
    pub cedar_type: &'static str,
    pub required: bool,
    /// Different for nearly every event: a context holding it is not worth caching.
    pub volatile: bool,
    pub doc: &'static str,
}

const fn a(
    attr: Attr,
    name: &'static str,
    cedar_type: &'static str,
    required: bool,
    volatile: bool,
    doc: &'static str,
) -> AttrInfo {
    AttrInfo {
        attr,
        name,
        cedar_type,
        required,
        volatile,
        doc,
    }
}

/// Every context attribute, in declaration order of [`Attr`].
pub const ATTRS: [AttrInfo; 35] = [
    a(
        Attr::EventTime,
        "eventTime",
        "datetime",
        true,
        true,
        "`eventTime` as a Cedar datetime",
    ),
    a(
        Attr::EventName,
        "eventName",
        "String",
        true,
        false,
        "`eventName`",
    ),
    a(
        Attr::EventSource,
        "eventSource",
        "String",
        true,
        false,
        "`eventSource`, e.g. `s3.amazonaws.com`",
    ),
    a(Attr::EventId, "eventID", "String", false, true, "`eventID`"),
    a(
        Attr::EventVersion,
        "eventVersion",
        "String",
        false,
        false,
        "`eventVersion`",
    ),
    a(
        Attr::EventType,
        "eventType",
        "String",
        false,
        false,
        "`eventType`: `AwsApiCall`, `AwsConsoleSignIn`, ...",
    ),
    a(
        Attr::EventCategory,
        "eventCategory",
        "String",
        false,
        false,
        "`eventCategory`: `Management` or `Data`",
    ),
    a(
        Attr::AwsRegion,
        "awsRegion",
        "String",
        false,
        false,
        "`awsRegion`",
    ),
    a(
        Attr::SourceIpAddress,
        "sourceIPAddress",
        "String",
        false,
        false,
        "`sourceIPAddress` as written: an address, a service name or `AWS Internal`",
    ),
    a(
        Attr::SourceIp,
        "sourceIP",
        "ipaddr",
        false,
        false,
        "`sourceIPAddress` as a Cedar `ip`, when it is an address",
    ),
    a(
        Attr::SourceInAws,
        "sourceInAws",
        "Bool",
        true,
        false,
        "whether `sourceIP` is in AWS's published address ranges",
    ),
    a(
        Attr::UserAgent,
        "userAgent",
        "String",
        false,
        false,
        "`userAgent`",
    ),
    a(
        Attr::ErrorCode,
        "errorCode",
        "String",
        false,
        false,
        "`errorCode`: present when the call failed",
    ),
    a(
        Attr::ErrorMessage,
        "errorMessage",
        "String",
        false,
        false,
        "`errorMessage`",
    ),
    a(
        Attr::ReadOnly,
        "readOnly",
        "Bool",
        false,
        false,
        "`readOnly`",
    ),
    a(
        Attr::ManagementEvent,
        "managementEvent",
        "Bool",
        false,
        false,
        "`managementEvent`",
    ),
    a(
        Attr::RecipientAccountId,
        "recipientAccountId",
        "String",
        false,
        false,
        "`recipientAccountId`",
    ),
    a(
        Attr::RequestId,
        "requestID",
        "String",
        false,
        true,
        "`requestID`",
    ),
    a(
        Attr::SharedEventId,
        "sharedEventID",
        "String",
        false,
        true,
        "`sharedEventID`",
    ),
    a(
        Attr::VpcEndpointId,
        "vpcEndpointId",
        "String",
        false,
        false,
        "`vpcEndpointId`: the call came through a VPC endpoint",
    ),
    a(
        Attr::VpcEndpointAccountId,
        "vpcEndpointAccountId",
        "String",
        false,
        false,
        "`vpcEndpointAccountId`",
    ),
    a(
        Attr::ApiVersion,
        "apiVersion",
        "String",
        false,
        false,
        "`apiVersion`",
    ),
    a(
        Attr::SessionCredentialFromConsole,
        "sessionCredentialFromConsole",
        "Bool",
        false,
        false,
        "`sessionCredentialFromConsole`",
    ),
    a(
        Attr::TlsDetails,
        "tlsDetails",
        "TlsDetails",
        false,
        false,
        "`tlsDetails`: `tlsVersion`, `cipherSuite`, `clientProvidedHostHeader`",
    ),
    a(
        Attr::RequestParameters,
        "requestParameters",
        "RequestParameters",
        true,
        false,
        "`requestParameters`: tags are the fields",
    ),
    a(
        Attr::ResponseElements,
        "responseElements",
        "ResponseElements",
        true,
        false,
        "`responseElements`: tags are the fields",
    ),
    a(
        Attr::AdditionalEventData,
        "additionalEventData",
        "AdditionalEventData",
        true,
        false,
        "`additionalEventData`: tags are the fields",
    ),
    a(
        Attr::ServiceEventDetails,
        "serviceEventDetails",
        "ServiceEventDetails",
        true,
        false,
        "`serviceEventDetails`: tags are the fields",
    ),
    a(
        Attr::Source,
        "source",
        "Address",
        false,
        false,
        "what the inventory says `sourceIP` is: the `Address` entity (present when an address inventory was loaded)",
    ),
    a(
        Attr::VpcEndpoint,
        "vpcEndpoint",
        "VpcEndpoint",
        false,
        false,
        "the `VpcEndpoint` entity the call came through, with its account and inventory facts",
    ),
    a(
        Attr::UserAgentLower,
        "userAgentLower",
        "String",
        false,
        false,
        "`userAgent` in lower case: user agents are compared without case",
    ),
    a(
        Attr::PolicyDocument,
        "policyDocument",
        "PolicyDocument",
        false,
        true,
        "what the policy documents in the request grant, and to whom (`docs/model.md`)",
    ),
    a(
        Attr::Sharing,
        "sharing",
        "Sharing",
        false,
        true,
        "the accounts a snapshot, image, document or resource share is shared with",
    ),
    a(
        Attr::Copy,
        "copy",
        "Copy",
        false,
        true,
        "an S3 copy's source and destination buckets, keys and owners",
    ),
    a(
        Attr::Element,
        "element",
        "Element",
        true,
        true,
        "in a policy with `@each`, the element it is evaluated on",
    ),
];

impl Attr {
    /// The attribute's declaration.
    #[allow(clippy::indexing_slicing)] // one entry per variant, in declaration order
    pub fn info(self) -> &'static AttrInfo {
        &ATTRS[self as usize]
    }

    /// The attribute of a context attribute name.
    pub fn from_name(name: &str) -> Option<Attr> {
        ATTRS.iter().find(|i| i.name == name).map(|i| i.attr)
    }

    /// The free-form field this attribute refers to, if it is one.
    pub fn field(self) -> Option<Field> {
        match self {
            Attr::RequestParameters => Some(Field::RequestParameters),
            Attr::ResponseElements => Some(Field::ResponseElements),
            Attr::AdditionalEventData => Some(Field::AdditionalEventData),
            Attr::ServiceEventDetails => Some(Field::ServiceEventDetails),
            _ => None,
        }
    }
}

/// A set of context attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AttrSet(u64);

impl AttrSet {
    /// Every attribute.
    pub fn all() -> Self {
        AttrSet((1u64 << ATTRS.len()) - 1)
    }

    pub fn insert(&mut self, a: Attr) {
        self.0 |= 1 << a as u32;
    }

    pub fn contains(&self, a: Attr) -> bool {
        self.0 & (1 << a as u32) != 0
    }

    pub fn union(self, other: AttrSet) -> AttrSet {
        AttrSet(self.0 | other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The attributes in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Attr> {
        // The set's bits, lowest first: the attributes in declaration order, without a test
        // (and a branch to mispredict) per attribute not in the set.
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let at = bits.trailing_zeros() as usize;
            bits &= bits.wrapping_sub(1);
            ATTRS.get(at).map(|i| i.attr)
        })
    }

    /// Whether a context with these attributes can be reused across events.
    pub fn cacheable(&self) -> bool {
        self.iter().all(|a| !a.info().volatile)
    }
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_string())
}

/// The value of one attribute for `view`; `None` when the event does not have it.
pub fn value(
    view: &EventView,
    attr: Attr,
    ranges: &AwsRanges,
    inv: &Inventory,
) -> Option<RestrictedExpression> {
    let e = &view.event;
    let opt = |v: &Option<std::borrow::Cow<str>>| v.as_deref().map(s);
    match attr {
        Attr::EventTime => Some(RestrictedExpression::new_datetime(
            view.time.to_cedar_string(),
        )),
        Attr::EventName => Some(s(&e.event_name)),
        Attr::EventSource => Some(s(&e.event_source)),
        Attr::EventId => opt(&e.event_id),
        Attr::EventVersion => opt(&e.event_version),
        Attr::EventType => opt(&e.event_type),
        Attr::EventCategory => opt(&e.event_category),
        Attr::AwsRegion => opt(&e.aws_region),
        Attr::SourceIpAddress => opt(&e.source_ip_address),
        Attr::SourceIp => view.source_ip().map(|ip| super::ip_value(&cedar_ip(ip))),
        Attr::SourceInAws => Some(RestrictedExpression::new_bool(
            view.source_ip().is_some_and(|ip| ranges.contains(ip)),
        )),
        Attr::UserAgent => opt(&e.user_agent),
        Attr::ErrorCode => opt(&e.error_code),
        Attr::ErrorMessage => opt(&e.error_message),
        Attr::ReadOnly => e.read_only.map(RestrictedExpression::new_bool),
        Attr::ManagementEvent => e.management_event.map(RestrictedExpression::new_bool),
        Attr::RecipientAccountId => opt(&e.recipient_account_id),
        Attr::RequestId => opt(&e.request_id),
        Attr::SharedEventId => opt(&e.shared_event_id),
        Attr::VpcEndpointId => opt(&e.vpc_endpoint_id),
        Attr::VpcEndpointAccountId => opt(&e.vpc_endpoint_account_id),
        Attr::ApiVersion => opt(&e.api_version),
        Attr::SessionCredentialFromConsole => e
            .session_credential_from_console
            .map(RestrictedExpression::new_bool),
        Attr::TlsDetails => {
            let tls: crate::event::TlsDetails = serde_json::from_str(e.tls_details?.get()).ok()?;
            let fields = [
                ("tlsVersion", tls.tls_version),
                ("cipherSuite", tls.cipher_suite),
                ("clientProvidedHostHeader", tls.client_provided_host_header),
            ];
            RestrictedExpression::new_record(
                fields
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_string(), s(&v?)))),
            )
            .ok()
        }
        Attr::UserAgentLower => e.user_agent.as_deref().map(|u| s(&u.to_lowercase())),
        Attr::PolicyDocument => view
            .grants()
            .ok()?
            .map(|_| RestrictedExpression::new_entity_uid(super::document::document_uid())),
        Attr::Sharing => view
            .shared()
            .ok()?
            .map(|_| RestrictedExpression::new_entity_uid(super::sharing::sharing_uid())),
        Attr::Copy => super::copy::copy_of(view).and_then(|c| super::copy::value(&c)),
        // Bound for each element of a policy with `@each`, by the engine.
        Attr::Element => None,
        Attr::Source => source_uid(view, inv).map(RestrictedExpression::new_entity_uid),
        Attr::VpcEndpoint => vpc_endpoint_uid(view).map(RestrictedExpression::new_entity_uid),
        Attr::RequestParameters
        | Attr::ResponseElements
        | Attr::AdditionalEventData
        | Attr::ServiceEventDetails => {
            let field = attr.field()?;
            Some(RestrictedExpression::new_entity_uid(field_uid(field)))
        }
    }
}

/// `Address::"<ip>"` of the event's source, when it is an address and addresses can be looked
/// up in the inventory.
pub fn source_uid(view: &EventView, inv: &Inventory) -> Option<cedar_policy::EntityUid> {
    let ip = view.source_ip()?;
    inv.knows_addresses()
        .then(|| uid(&types().address, &cedar_ip(ip)))
}

/// `VpcEndpoint::"vpce-..."` of an event that came through a VPC endpoint.
pub fn vpc_endpoint_uid(view: &EventView) -> Option<cedar_policy::EntityUid> {
    let id = view
        .event
        .vpc_endpoint_id
        .as_deref()
        .filter(|v| !v.is_empty())?;
    Some(uid(&types().vpc_endpoint, id))
}

/// An address as Cedar's `ip()` reads it: IPv6 in full, as Cedar refuses IPv4 written inside
/// an IPv6 address (`::1.2.3.4`), which is how Rust prints some.
pub(crate) fn cedar_ip(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}:{e:x}:{f:x}:{g:x}:{h:x}")
        }
    }
}

/// The uid of the entity that carries a free-form field's tags: `RequestParameters::"event"`.
///
/// The same for every event (each request has its own entity store), so that a context that
/// refers to it can be reused across events.
pub fn field_uid(field: Field) -> cedar_policy::EntityUid {
    uid(types().field(field), "event")
}

/// The context with the attributes in `attrs` that the event has.
pub fn build(
    view: &EventView,
    attrs: AttrSet,
    ranges: &AwsRanges,
    inv: &Inventory,
) -> Result<Context, String> {
    Context::from_pairs(
        attrs
            .iter()
            .filter_map(|a| Some((a.info().name.to_string(), value(view, a, ranges, inv)?))),
    )
    .map_err(|e| e.to_string())
}

/// A key equal for two events exactly when [`build`] gives them equal contexts.
///
/// Only meaningful for a [`AttrSet::cacheable`] set.
pub fn cache_key(view: &EventView, attrs: AttrSet, key: &mut String) {
    key.clear();
    let e = &view.event;
    let mut address_keyed = false;
    for attr in attrs.iter() {
        let part: Option<&str> = match attr {
            Attr::EventName => Some(&e.event_name),
            Attr::EventSource => Some(&e.event_source),
            Attr::EventVersion => e.event_version.as_deref(),
            Attr::EventType => e.event_type.as_deref(),
            Attr::EventCategory => e.event_category.as_deref(),
            Attr::AwsRegion => e.aws_region.as_deref(),
            // The address determines `sourceIP` and `sourceInAws` as well: keyed once.
            Attr::SourceIpAddress | Attr::SourceIp | Attr::SourceInAws | Attr::Source
                if address_keyed =>
            {
                continue;
            }
            Attr::SourceIpAddress | Attr::SourceIp | Attr::SourceInAws | Attr::Source => {
                address_keyed = true;
                e.source_ip_address.as_deref()
            }
            Attr::UserAgent | Attr::UserAgentLower => e.user_agent.as_deref(),
            Attr::ErrorCode => e.error_code.as_deref(),
            Attr::ErrorMessage => e.error_message.as_deref(),
            Attr::ReadOnly => Some(bool_key(e.read_only)),
            Attr::ManagementEvent => Some(bool_key(e.management_event)),
            Attr::RecipientAccountId => e.recipient_account_id.as_deref(),
            Attr::VpcEndpointId => e.vpc_endpoint_id.as_deref(),
            // The endpoint's entity also holds the event's `vpcEndpointAccountId`.
            Attr::VpcEndpoint => {
                crate::text::push_value(
                    key,
                    's',
                    e.vpc_endpoint_account_id.as_deref().unwrap_or(""),
                );
                e.vpc_endpoint_id.as_deref()
            }
            Attr::VpcEndpointAccountId => e.vpc_endpoint_account_id.as_deref(),
            Attr::ApiVersion => e.api_version.as_deref(),
            Attr::SessionCredentialFromConsole => Some(bool_key(e.session_credential_from_console)),
            Attr::TlsDetails => e.tls_details.map(|r| r.get()),
            _ => None,
        };
        // Presence and value, separated so that ("a", "bc") and ("ab", "c") differ.
        match part {
            Some(p) => crate::text::push_value(key, 's', p),
            None => key.push('-'),
        }
    }
}

fn bool_key(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "t",
        Some(false) => "f",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"eventTime":"2022-06-28T00:20:59Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets",
        "awsRegion":"ap-northeast-1","sourceIPAddress":"52.197.156.173","readOnly":true,"eventID":"e1",
        "tlsDetails":{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256"}}"#;

    #[test]
    fn attributes_are_declared_in_order() {
        for (i, info) in ATTRS.iter().enumerate() {
            assert_eq!(info.attr as usize, i, "{}", info.name);
            assert_eq!(Attr::from_name(info.name), Some(info.attr));
        }
        assert!(AttrSet::all().iter().count() == ATTRS.len());
        let some = [
            Attr::EventTime,
            Attr::SourceIp,
            Attr::TlsDetails,
            Attr::VpcEndpoint,
        ];
        let mut set = AttrSet::default();
        for attr in some.iter().rev() {
            set.insert(*attr);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), some, "in declaration order");
        assert_eq!(AttrSet::default().iter().count(), 0);
    }

    #[test]
    fn builds_only_what_is_asked() {
        let view = EventView::parse(EVENT).unwrap();
        let ranges = AwsRanges::embedded();
        let mut attrs = AttrSet::default();
        attrs.insert(Attr::SourceIp);
        attrs.insert(Attr::SourceInAws);
        attrs.insert(Attr::ErrorCode);
        let ctx = build(&view, attrs, &ranges, &Inventory::default()).unwrap();
        assert!(ctx.get("sourceIP").is_some());
        assert_eq!(
            ctx.get("sourceInAws").map(|v| v.to_string()).as_deref(),
            Some("true")
        );
        assert!(ctx.get("errorCode").is_none(), "absent in the event");
        assert!(ctx.get("userAgent").is_none(), "not asked for");
        let full = build(&view, AttrSet::all(), &ranges, &Inventory::default()).unwrap();
        assert!(
            full.get("tlsDetails")
                .unwrap()
                .to_string()
                .contains("TLSv1.2")
        );
        assert!(
            full.get("requestParameters")
                .unwrap()
                .to_string()
                .contains(r#"RequestParameters::"event""#)
        );
    }

    #[test]
    fn every_address_form_builds() {
        let ranges = AwsRanges::embedded();
        let mut attrs = AttrSet::default();
        attrs.insert(Attr::SourceIp);
        for addr in [
            "::ffff:198.51.100.7",
            "::1.2.3.4",
            "2001:db8::1",
            "::1",
            "203.0.113.9",
        ] {
            let e = format!(
                r#"{{"eventTime":"2022-06-28T00:20:59Z","eventSource":"s","eventName":"X","sourceIPAddress":"{addr}"}}"#
            );
            let view = EventView::parse(&e).unwrap();
            let ctx = build(&view, attrs, &ranges, &Inventory::default())
                .unwrap_or_else(|e| panic!("{addr}: {e}"));
            assert!(ctx.get("sourceIP").is_some(), "{addr}");
        }
    }

    #[test]
    fn cache_keys_separate_values() {
        let a = EventView::parse(r#"{"eventTime":"2022-06-28T00:20:59Z","eventSource":"s","eventName":"ab","awsRegion":"c"}"#).unwrap();
        let b = EventView::parse(r#"{"eventTime":"2022-06-28T00:20:59Z","eventSource":"s","eventName":"a","awsRegion":"bc"}"#).unwrap();
        let mut attrs = AttrSet::default();
        attrs.insert(Attr::EventName);
        attrs.insert(Attr::AwsRegion);
        let (mut ka, mut kb) = (String::new(), String::new());
        cache_key(&a, attrs, &mut ka);
        cache_key(&b, attrs, &mut kb);
        assert_ne!(ka, kb);
        assert!(attrs.cacheable());
        attrs.insert(Attr::EventTime);
        assert!(!attrs.cacheable());
    }
}
