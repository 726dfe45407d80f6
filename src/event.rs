//! The CloudTrail record, typed and borrowed from the decoded buffer.
//!
//! Only the fields every event needs are parsed eagerly. `userIdentity`, `resources`,
//! `tlsDetails` and the free-form payloads stay as raw JSON until a policy or a finding needs
//! them, which keeps decoding close to the cost of scanning the bytes.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One CloudTrail event record.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    #[serde(borrow, default)]
    pub event_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_identity: Option<&'a RawValue>,
    #[serde(borrow)]
    pub event_time: Cow<'a, str>,
    #[serde(borrow)]
    pub event_source: Cow<'a, str>,
    #[serde(borrow)]
    pub event_name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub aws_region: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "sourceIPAddress")]
    pub source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub error_message: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "raw_keeping_null")]
    pub request_parameters: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_keeping_null")]
    pub response_elements: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_keeping_null")]
    pub additional_event_data: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_keeping_null")]
    pub service_event_details: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "requestID")]
    pub request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "eventID")]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(borrow, default)]
    pub resources: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub api_version: Option<Cow<'a, str>>,
    #[serde(default)]
    pub management_event: Option<bool>,
    #[serde(borrow, default)]
    pub recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "sharedEventID")]
    pub shared_event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub vpc_endpoint_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub vpc_endpoint_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub event_category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub tls_details: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "bool_or_string")]
    pub session_credential_from_console: Option<bool>,
    #[serde(borrow, default)]
    pub insight_details: Option<&'a RawValue>,
    /// Members of an envelope, not of an event (`Records`, `Events`, EventBridge's `detail`):
    /// an object that has them is read by its shape, not as an event (see `decode`).
    #[serde(borrow, default, rename = "Records")]
    envelope_records: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "Events")]
    envelope_events: Option<&'a RawValue>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
    #[serde(default, rename = "detail-type")]
    detail_type: Option<IgnoredAny>,
}

impl Event<'_> {
    /// Whether the object also has a list of records or an EventBridge detail: then it is an
    /// envelope as well as an event, which the decoder reads by its shape.
    pub fn has_envelope_members(&self) -> bool {
        let list = |v: Option<&RawValue>| v.is_some_and(|r| r.get().starts_with('['));
        list(self.envelope_records)
            || list(self.envelope_events)
            || (self.detail.is_some() && self.detail_type.is_some())
    }

    /// The first field a rule can read that is longer than `limit` bytes, and its length: a
    /// top-level string, or the JSON of `userIdentity`, `resources` or `tlsDetails`. (The
    /// free-form payloads are measured when a rule reads them.)
    pub fn oversized(&self, limit: usize) -> Option<(&'static str, usize)> {
        let text = |v: &Option<Cow<'_, str>>| v.as_deref().map_or(0, str::len);
        let raw = |v: Option<&RawValue>| v.map_or(0, |r| r.get().len());
        [
            ("eventVersion", text(&self.event_version)),
            ("eventTime", self.event_time.len()),
            ("eventSource", self.event_source.len()),
            ("eventName", self.event_name.len()),
            ("awsRegion", text(&self.aws_region)),
            ("sourceIPAddress", text(&self.source_ip_address)),
            ("userAgent", text(&self.user_agent)),
            ("errorCode", text(&self.error_code)),
            ("errorMessage", text(&self.error_message)),
            ("requestID", text(&self.request_id)),
            ("eventID", text(&self.event_id)),
            ("eventType", text(&self.event_type)),
            ("apiVersion", text(&self.api_version)),
            ("recipientAccountId", text(&self.recipient_account_id)),
            ("sharedEventID", text(&self.shared_event_id)),
            ("vpcEndpointId", text(&self.vpc_endpoint_id)),
            ("vpcEndpointAccountId", text(&self.vpc_endpoint_account_id)),
            ("eventCategory", text(&self.event_category)),
            ("userIdentity", raw(self.user_identity)),
            ("resources", raw(self.resources)),
            ("tlsDetails", raw(self.tls_details)),
        ]
        .into_iter()
        .find(|(_, len)| *len > limit)
    }

    /// The service part of `eventSource`: `s3.amazonaws.com` is `s3`.
    pub fn service(&self) -> &str {
        service_of(&self.event_source)
    }

    /// CloudTrail Insights records are analyses of other events, not API calls.
    pub fn is_insight(&self) -> bool {
        self.insight_details.is_some()
            || self.event_type.as_deref() == Some("AwsCloudTrailInsight")
            || self.event_category.as_deref() == Some("Insight")
    }

    /// The Cedar action id, `<service>:<eventName>`.
    pub fn action_id(&self) -> String {
        format!("{}:{}", self.service(), self.event_name)
    }
}

/// A payload as written, `null` included: `None` only when the record has no such member, so
/// that a policy tells a call CloudTrail recorded with `null` parameters from one without.
fn raw_keeping_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// `s3.amazonaws.com` is `s3`; a source without that suffix is kept whole.
pub fn service_of(event_source: &str) -> &str {
    event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source)
}

/// `userIdentity`, parsed when a principal is first seen in a file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub principal_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub access_key_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub invoked_by: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub identity_provider: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub session_context: Option<SessionContext<'a>>,
    #[serde(borrow, default)]
    pub on_behalf_of: Option<OnBehalfOf<'a>>,
}

/// `userIdentity.sessionContext`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow, default)]
    pub session_issuer: Option<SessionIssuer<'a>>,
    #[serde(borrow, default)]
    pub attributes: Option<SessionAttributes<'a>>,
    #[serde(borrow, default)]
    pub source_identity: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub ec2_role_delivery: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub web_id_federation_data: Option<WebIdFederationData<'a>>,
}

/// `sessionContext.sessionIssuer`: the role (or user) that issued the session.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub principal_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_name: Option<Cow<'a, str>>,
}

/// `sessionContext.attributes`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes<'a> {
    #[serde(borrow, default)]
    pub creation_date: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "bool_or_string")]
    pub mfa_authenticated: Option<bool>,
}

/// `sessionContext.webIdFederationData`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebIdFederationData<'a> {
    #[serde(borrow, default)]
    pub federated_provider: Option<Cow<'a, str>>,
}

/// `userIdentity.onBehalfOf` (IAM Identity Center users).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnBehalfOf<'a> {
    #[serde(borrow, default)]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub identity_store_arn: Option<Cow<'a, str>>,
}

/// One entry of `resources[]`.
#[derive(Debug, Deserialize)]
pub struct ResourceRef<'a> {
    #[serde(borrow, default, rename = "ARN")]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "ARNPrefix")]
    pub arn_prefix: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "accountId")]
    pub account_id: Option<Cow<'a, str>>,
}

/// `tlsDetails`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails<'a> {
    #[serde(borrow, default)]
    pub tls_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub cipher_suite: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub client_provided_host_header: Option<Cow<'a, str>>,
}

/// CloudTrail writes some flags as the strings `"true"`/`"false"`; accept both spellings.
fn bool_or_string<'de, D>(deserializer: D) -> Result<Option<bool>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean or \"true\"/\"false\"")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v {
                "true" | "True" | "TRUE" => Ok(Some(true)),
                "false" | "False" | "FALSE" | "" => Ok(Some(false)),
                _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// A JSON parse error of a record, with the path of the field it is about:
/// `eventTime: invalid type: integer `5`, expected a string`. serde reports only a line and a
/// column; the field is found by walking the record's objects to the value that spans the
/// error's position. A syntax error, or one no field spans, is reported as serde wrote it.
pub fn field_error(json: &str, error: &serde_json::Error) -> String {
    let (path, message) = locate_error(json, error);
    match path.is_empty() {
        true => message,
        false => format!("{}: {message}", path.join(".")),
    }
}

/// [`field_error`] for a field parsed on its own (`userIdentity`), named from the record.
pub fn nested_field_error(field: &str, json: &str, error: &serde_json::Error) -> String {
    let (path, message) = locate_error(json, error);
    let mut full = vec![field.to_string()];
    full.extend(path);
    format!("{}: {message}", full.join("."))
}

/// The path of the field an error is about (empty if none), and the error's message: without
/// its line and column when the path says where.
fn locate_error(json: &str, error: &serde_json::Error) -> (Vec<String>, String) {
    let text = error.to_string();
    let mut path = Vec::new();
    if let Some(at) = offset_of(json, error.line(), error.column()) {
        field_at(json, json, at, &mut path);
    }
    if path.is_empty() {
        return (path, text);
    }
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&position).unwrap_or(&text).to_string();
    (path, message)
}

/// The byte offset of a 1-based line and column.
fn offset_of(json: &str, line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        json.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    Some(line_start + column.saturating_sub(1)).filter(|at| *at <= json.len())
}

/// Appends to `path` the keys (and indices) leading from `value`, a slice of `whole`, to the
/// innermost value whose text spans `at`.
fn field_at(whole: &str, value: &str, at: usize, path: &mut Vec<String>) {
    let offset = |s: &str| (s.as_ptr() as usize).checked_sub(whole.as_ptr() as usize);
    // serde reports a type error just before a value (a sequence, a map) or just after it (a
    // number, a string): either way within the value's text, its `:` or its end.
    let spans = |raw: &RawValue| {
        offset(raw.get())
            .is_some_and(|start| (start.saturating_sub(1)..=start + raw.get().len()).contains(&at))
    };
    let found = match value.trim_start().as_bytes().first() {
        Some(b'{') => {
            serde_json::from_str::<std::collections::BTreeMap<Cow<str>, &RawValue>>(value)
                .ok()
                .and_then(|fields| {
                    fields
                        .into_iter()
                        .find(|(_, raw)| spans(raw))
                        .map(|(key, raw)| (key.into_owned(), raw))
                })
        }
        Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(value)
            .ok()
            .and_then(|items| {
                items
                    .into_iter()
                    .enumerate()
                    .find(|(_, raw)| spans(raw))
                    .map(|(i, raw)| (i.to_string(), raw))
            }),
        _ => None,
    };
    if let Some((key, raw)) = found {
        path.push(key);
        field_at(whole, raw.get(), at, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_seed_record_lazily() {
        let text = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/a"},
            "eventTime":"2022-06-27T06:55:24Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets",
            "awsRegion":"ap-northeast-1","sourceIPAddress":"52.197.156.173","responseElements":null,
            "requestParameters":{"Host":"s3.ap-northeast-1.amazonaws.com"},"readOnly":true,
            "sessionCredentialFromConsole":"true"}"#;
        let e: Event = serde_json::from_str(text).unwrap();
        assert_eq!(e.service(), "s3");
        assert_eq!(e.action_id(), "s3:ListBuckets");
        assert_eq!(
            e.response_elements.map(RawValue::get),
            Some("null"),
            "JSON null is kept, to be told from an absent member"
        );
        assert!(e.additional_event_data.is_none());
        assert_eq!(
            e.request_parameters.unwrap().get(),
            r#"{"Host":"s3.ap-northeast-1.amazonaws.com"}"#
        );
        assert_eq!(e.session_credential_from_console, Some(true));
        assert!(!e.is_insight());
    }

    #[test]
    fn rejects_duplicate_fields_and_wrong_types() {
        let dup = r#"{"eventTime":"2022-06-27T06:55:24Z","eventSource":"s3.amazonaws.com","eventName":"A","eventName":"B"}"#;
        assert!(serde_json::from_str::<Event>(dup).is_err());
        let wrong = r#"{"eventTime":"2022-06-27T06:55:24Z","eventSource":"s3.amazonaws.com","eventName":"A","readOnly":"maybe"}"#;
        assert!(serde_json::from_str::<Event>(wrong).is_err());
    }

    #[test]
    fn type_errors_name_their_field() {
        let error = |json: &str| {
            let e = serde_json::from_str::<Event>(json).unwrap_err();
            field_error(json, &e)
        };
        let e = error(r#"{"eventTime":5,"eventSource":"s3.amazonaws.com","eventName":"A"}"#);
        assert_eq!(e, "eventTime: invalid type: integer `5`, expected a string");
        let e = error(
            "{\"eventTime\":\"2022-06-27T06:55:24Z\",\n\"eventSource\":\"s3.amazonaws.com\",\"eventName\":[\"A\"]}",
        );
        assert!(e.starts_with("eventName: invalid type: sequence"), "{e}");
        let e = error(r#"{"eventTime":"t","eventSource":"s","eventName":"A","readOnly":"maybe"}"#);
        assert!(e.starts_with("readOnly: invalid type"), "{e}");
        let e = error(r#"{"eventTime":"t","eventSource":"s","eventName":"A","awsRegion":{"a":1}}"#);
        assert!(e.starts_with("awsRegion: "), "{e}");
        // Missing fields are named by serde; syntax errors keep their position.
        assert!(error(r#"{"eventSource":"s","eventName":"A"}"#).contains("`eventTime`"));
        assert!(error(r#"{"eventTime":"t","#).contains("line 1"));
        // Nested records name the whole path.
        let json = r#"{"type":"AssumedRole","sessionContext":{"attributes":{"creationDate":7}}}"#;
        let e = serde_json::from_str::<UserIdentity>(json).unwrap_err();
        assert_eq!(
            field_error(json, &e),
            "sessionContext.attributes.creationDate: invalid type: integer `7`, expected a string"
        );
        let json = r#"[{"ARN":"a"},{"ARN":false}]"#;
        let e = serde_json::from_str::<Vec<ResourceRef>>(json).unwrap_err();
        assert!(
            field_error(json, &e).starts_with("1.ARN: "),
            "{}",
            field_error(json, &e)
        );
    }

    #[test]
    fn service_of_keeps_unusual_sources() {
        assert_eq!(service_of("signin.amazonaws.com"), "signin");
        assert_eq!(service_of("custom.example"), "custom.example");
    }
}
