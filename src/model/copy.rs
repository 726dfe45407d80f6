//! Copies between buckets: `context.copy`, an S3 copy's source and destination, each with its
//! bucket's owner, so that a policy compares the two resources of one event.
//!
//! Read from `s3:CopyObject` and `s3:UploadPartCopy`: the destination from `bucketName` and
//! `key`, the source from `x-amz-copy-source` (`bucket/key`, with or without a leading `/`,
//! URL-encoded or not, a `?versionId=` dropped), and each bucket's owner from the event's
//! `resources` (`accountId` of its `AWS::S3::Bucket` entry), which CloudTrail records when it
//! knows it.

use super::fields::lookup;
use super::{EventView, Field};
use cedar_policy::RestrictedExpression;
use serde_json::Value;

/// The attributes of the `Copy` record, with their schema types.
pub const ATTRIBUTES: &[(&str, &str)] = &[
    ("sourceBucket", "String"),
    ("sourceKey?", "String"),
    ("sourceAccountId?", "String"),
    ("destinationBucket", "String"),
    ("destinationKey?", "String"),
    ("destinationAccountId?", "String"),
];

/// An S3 copy's two ends.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copy {
    pub source_bucket: String,
    pub source_key: Option<String>,
    pub source_account_id: Option<String>,
    pub destination_bucket: String,
    pub destination_key: Option<String>,
    pub destination_account_id: Option<String>,
}

/// `%2F` and the like decoded; the text itself when it holds no valid escape.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// The copy an event makes; `None` for an event that is not an S3 copy or names no source.
pub fn copy_of(view: &EventView) -> Option<Copy> {
    let e = &view.event;
    if e.service() != "s3" || !matches!(e.event_name.as_ref(), "CopyObject" | "UploadPartCopy") {
        return None;
    }
    let params = view.field(Field::RequestParameters).ok()??;
    let text = |path: &str| lookup(params, path).and_then(Value::as_str);
    let source = text("x-amz-copy-source")?;
    let source = percent_decoded(source);
    let source = source.split('?').next().unwrap_or_default();
    let source = source.strip_prefix('/').unwrap_or(source);
    let (source_bucket, source_key) = match source.split_once('/') {
        Some((b, k)) => (b.to_string(), Some(k.to_string()).filter(|k| !k.is_empty())),
        None => (source.to_string(), None),
    };
    let destination_bucket = text("bucketName")?.to_string();
    if source_bucket.is_empty() || destination_bucket.is_empty() {
        return None;
    }
    // Each bucket's owner, from its entry in `resources`.
    let listed: Vec<Value> = e
        .resources
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default();
    let owner = |bucket: &str| {
        listed.iter().find_map(|r| {
            let arn = r.get("ARN").or_else(|| r.get("arn"))?.as_str()?;
            let named = arn.rsplit(":::").next()? == bucket;
            let is_bucket = r.get("type").and_then(Value::as_str) == Some("AWS::S3::Bucket");
            (named && is_bucket)
                .then(|| r.get("accountId")?.as_str().map(str::to_string))
                .flatten()
        })
    };
    Some(Copy {
        source_account_id: owner(&source_bucket),
        destination_account_id: owner(&destination_bucket),
        source_bucket,
        source_key,
        destination_key: text("key").map(str::to_string),
        destination_bucket,
    })
}

/// The `Copy` record.
pub fn value(c: &Copy) -> Option<RestrictedExpression> {
    let s = |v: &str| RestrictedExpression::new_string(v.to_string());
    let fields = [
        ("sourceBucket", Some(c.source_bucket.as_str())),
        ("sourceKey", c.source_key.as_deref()),
        ("sourceAccountId", c.source_account_id.as_deref()),
        ("destinationBucket", Some(c.destination_bucket.as_str())),
        ("destinationKey", c.destination_key.as_deref()),
        ("destinationAccountId", c.destination_account_id.as_deref()),
    ];
    RestrictedExpression::new_record(
        fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), s(v?)))),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(params: &str, resources: &str) -> Option<Copy> {
        let json = format!(
            r#"{{"eventTime":"2024-05-14T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"CopyObject","requestParameters":{params},"resources":{resources}}}"#
        );
        copy_of(&EventView::parse(&json).unwrap())
    }

    #[test]
    fn both_ends_with_their_owners() {
        let c = copy(
            r#"{"bucketName":"attacker-drop","key":"dump/customers.csv","x-amz-copy-source":"/prod-data/exports%2Fcustomers.csv?versionId=3"}"#,
            r#"[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::prod-data/exports/customers.csv"},{"accountId":"111122223333","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::prod-data"},{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::attacker-drop/dump/customers.csv"},{"accountId":"999988887777","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::attacker-drop"}]"#,
        )
        .unwrap();
        assert_eq!(
            c,
            Copy {
                source_bucket: "prod-data".into(),
                source_key: Some("exports/customers.csv".into()),
                source_account_id: Some("111122223333".into()),
                destination_bucket: "attacker-drop".into(),
                destination_key: Some("dump/customers.csv".into()),
                destination_account_id: Some("999988887777".into()),
            }
        );
    }

    #[test]
    fn an_owner_not_recorded_is_absent_and_a_copy_needs_a_source() {
        let c = copy(
            r#"{"bucketName":"b","key":"k","x-amz-copy-source":"a/k"}"#,
            "null",
        )
        .unwrap();
        assert_eq!(
            (c.source_account_id, c.destination_account_id),
            (None, None)
        );
        assert!(copy(r#"{"bucketName":"b","key":"k"}"#, "null").is_none());
    }
}
