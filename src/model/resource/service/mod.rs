//! Naming the resources of an event from its request parameters, one file per service.
//!
//! Each service declares the string members it reads ([`Naming::keys`], at most
//! [`MAX_PARAMETER_KEYS`]) and a function that names its resources from their values, taken by
//! position in that order. Adding a service is a file here and a line in [`SERVICES`].

mod cloudtrail;
mod ec2;
mod iam;
mod kms;
mod lambda;
mod s3;
mod secretsmanager;
mod sts;

use super::Named;
use super::params::{MAX_PARAMETER_KEYS, Params, params_by_serde, quick_params};
use crate::model::{EventView, PrincipalModel};
use crate::text::concat;
use std::borrow::Cow;

/// Gives a resource to the caller: its CloudTrail type, its ARN, and its account when the
/// naming knows it.
pub(super) type Push<'p, 'a> = &'p mut dyn FnMut(&'static str, Cow<'a, str>, Option<&'a str>);

/// The non-empty string members a service reads, in the order of its [`Naming::keys`].
pub(super) type Strings<'a> = [Option<Cow<'a, str>>; MAX_PARAMETER_KEYS];

/// How a service's request parameters name its resources.
pub(super) struct Naming {
    /// The `eventSource` without `.amazonaws.com`.
    pub service: &'static str,
    /// The string members read, in the order [`Naming::name`] takes their values.
    pub keys: &'static [&'static str],
    /// Whether member objects are read too: the `InstanceId` of a request object and the
    /// `instanceId`s of `instancesSet.items` (EC2).
    pub nested: bool,
    /// Names the resources from the members' values.
    pub name: for<'p, 'a> fn(Strings<'a>, &Params<'a>, &Namer<'a>, Push<'p, 'a>),
}

/// The services whose request parameters name resources: the other services' parameters are not
/// read at all (`every_parameter_read_names_its_resource` reads each member).
pub(super) const SERVICES: &[Naming] = &[
    s3::NAMING,
    iam::NAMING,
    ec2::NAMING,
    cloudtrail::NAMING,
    lambda::NAMING,
    kms::NAMING,
    secretsmanager::NAMING,
    sts::NAMING,
];

/// What names are qualified with: the caller's partition, account and region.
pub(super) struct Namer<'a> {
    /// `arn:<partition>:`, written once: each part of an ARN is one more copy to join.
    head: Cow<'static, str>,
    pub account: &'a str,
    region: &'a str,
}

impl<'a> Namer<'a> {
    /// `arn:<partition>:` followed by `parts`.
    pub fn arn(&self, parts: &[&str]) -> Cow<'a, str> {
        let len = self.head.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut out = String::with_capacity(len);
        out.push_str(&self.head);
        for p in parts {
            out.push_str(p);
        }
        out.into()
    }

    /// A resource of the service in the caller's account and region: `service` with its `:`,
    /// `kind` with the `:` before it.
    pub fn regional(&self, service: &str, kind: &str, name: &str) -> Cow<'a, str> {
        concat(&[
            &self.head,
            service,
            self.region,
            ":",
            self.account,
            kind,
            name,
        ])
        .into()
    }

    /// An ARN given in full is used as it is; a name is qualified in the caller's account.
    pub fn arn_or(&self, value: Cow<'a, str>, service: &str, kind: &str) -> Cow<'a, str> {
        if value.starts_with("arn:") {
            value
        } else {
            self.regional(service, kind, &value)
        }
    }
}

/// Gives `push` the resources the event's request parameters name.
pub(super) fn from_request_parameters<'a>(
    view: &'a EventView,
    principal: &'a PrincipalModel,
    push: &mut impl FnMut(Named<'a>),
) -> Result<(), String> {
    let Some(raw) = view.event.request_parameters else {
        return Ok(());
    };
    let service = view.event.service();
    let Some(naming) = SERVICES.iter().find(|n| n.service == service) else {
        return Ok(());
    };
    crate::model::fields::check(crate::model::Field::RequestParameters, raw.get())?;
    let mut params = match quick_params(raw.get(), naming.keys, naming.nested) {
        Some(p) => p,
        None => params_by_serde(raw.get(), naming.keys)?,
    };
    let strings = params.take_strings();
    let head: Cow<'static, str> = match principal.partition.as_str() {
        "aws" => "arn:aws:".into(),
        "aws-cn" => "arn:aws-cn:".into(),
        "aws-us-gov" => "arn:aws-us-gov:".into(),
        p => concat(&["arn:", p, ":"]).into(),
    };
    let namer = Namer {
        head,
        account: view
            .event
            .recipient_account_id
            .as_deref()
            .or(principal.account_id.as_deref())
            .unwrap_or(""),
        region: view.event.aws_region.as_deref().unwrap_or(""),
    };
    (naming.name)(strings, &params, &namer, &mut |kind, arn, account_id| {
        push(Named {
            kind: Cow::Borrowed(kind),
            arn,
            account_id: account_id.map(Cow::Borrowed),
        })
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::SERVICES;

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
        // Duplicate members: ambiguous, an error (issue 21), never the last or the first.
        let v = view(
            r#"{"eventTime":"2024-01-07T22:35:30Z","eventSource":"ec2.amazonaws.com","eventName":"X","requestParameters":{"instanceId":"i-1","instanceId":"i-9"}}"#,
        );
        assert!(
            resources_of(&v, &principal())
                .unwrap_err()
                .contains("appears twice")
        );
    }

    #[test]
    fn only_the_listed_services_parameters_name_resources() {
        let params: Vec<String> = SERVICES
            .iter()
            .flat_map(|n| n.keys)
            .map(|k| format!(r#""{k}":"arn:aws:iam::123456789012:role/x""#))
            .collect();
        let named = |service: &str| {
            let json = format!(
                r#"{{"eventTime":"2024-01-07T22:35:30Z","eventSource":"{service}.amazonaws.com","eventName":"X","awsRegion":"us-east-1","recipientAccountId":"123456789012","requestParameters":{{{}}}}}"#,
                params.join(",")
            );
            ids(&resources_of(&view(&json), &principal()).unwrap())
        };
        for service in SERVICES.iter().map(|n| n.service) {
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
}
