#!/usr/bin/env python3
"""Regenerate src/model/actions.txt, the catalog of CloudTrail actions, from the AWS SDK's
service models (the botocore package on PyPI ships them as data/<service>/<version>/service-2.json).

Usage:
    pip download botocore --no-deps -d /tmp/botocore
    python3 scripts/action-catalog.py /tmp/botocore/botocore-*.whl > src/model/actions.txt

One line per CloudTrail service (the event source without `.amazonaws.com`): the service, then
its event names. A service's event source is its model's `signingName`, else its
`endpointPrefix`, with the exceptions in EVENT_SOURCE below; models that share an event source
(s3 and s3control) are merged.

Event names are not only operation names:
- Lambda's CloudTrail names carry the API version of their path (`ListFunctions20150331`,
  `AddLayerVersionPermission20181031`, `ListTags20170331`), for every version of the model
  botocore keeps; both spellings are kept.
- CloudFront's carry the version in the operation's own `name` (`CreateDistribution2020_05_31`),
  for every version of the model botocore keeps; both spellings are kept.
- Events that are no operation of any SDK model (sign-in, AWS service events with `eventType`
  `AwsServiceEvent`, Lambda's second versions `...20150331v2`, data events) are added from EXTRA,
  each group with the public source that shows CloudTrail recording it.
"""
import gzip
import json
import re
import sys
import zipfile
from collections import defaultdict

# signingName / endpointPrefix -> CloudTrail event source, where they differ.
EVENT_SOURCE = {
    "awsssoportal": "sso",
    "sso-oauth": "sso-oauth",
    "execute-api": "apigateway",
    "s3-control": "s3",
    "states": "states",
    "mobiletargeting": "mobiletargeting",
    "email": "ses",
}

# Services whose every model version is read, for event names that carry the version.
ALL_VERSIONS = {"lambda", "cloudfront"}

# CloudTrail events that are not operations of any SDK model: (where they are documented or
# recorded, {event source: [event names]}).
EXTRA = [
    ("AWS CloudTrail User Guide, 'AWS Management Console sign-in events' "
     "(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-aws-console-sign-in-events.html)",
     {"signin": ["ConsoleLogin", "CheckMfa", "SwitchRole", "ExitRole", "RenewRole", "ConsoleLogout",
                 "PasswordUpdated"]}),
    ("IAM Identity Center User Guide, 'Understanding IAM Identity Center sign-in events' "
     "(https://docs.aws.amazon.com/singlesignon/latest/userguide/understanding-sign-in-events.html), "
     "and 'Troubleshooting IAM Identity Center issues' (ExternalIdPDirectoryLogin)",
     {"signin": ["UserAuthentication", "CredentialChallenge", "CredentialVerification",
                 "ExternalIdPDirectoryLogin"],
      "sso": ["Authenticate", "Federate", "Logout", "ListAccountRoles", "ListAccounts",
              "GetRoleCredentials", "ListApplications", "ListProfilesForApplication"]}),
    ("IAM User Guide, 'Enable custom identity broker access to the AWS console' "
     "(https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_enable-console-custom-url.html): "
     "the federation endpoint's GetSigninToken; recorded in panther-labs/panther-analysis "
     "rules/aws_cloudtrail_rules/aws_console_getsignintoken.yml",
     {"signin": ["GetSigninToken"]}),
    ("IAM User Guide, 'Logging IAM and AWS STS API calls with AWS CloudTrail'",
     {"sts": ["RenewRoleCredentials"]}),
    # S3 logs some calls under names other than their SDK operations' (DeletePublicAccessBlock is
    # DeleteBucketPublicAccessBlock; S3 Control's account-level calls have names of their own).
    ("Amazon S3 User Guide, 'Amazon S3 CloudTrail events' "
     "(https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-s3-info.html)",
     {"s3": ["ListObjects", "ListObjectVersions", "HeadObject", "HeadBucket",
             "DeleteBucketPublicAccessBlock", "GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock",
             "DeleteAccountPublicAccessBlock", "GetAccountPublicAccessBlock", "PutAccountPublicAccessBlock",
             "PutBucketLifecycle", "GetBucketLifecycle", "PutBucketNotification", "GetBucketNotification"]}),
    ("AWS CloudTrail User Guide: console actions on trails",
     {"cloudtrail": ["ConsoleAction"]}),
    # Lambda records some calls under a second version of their name. The Lambda Developer Guide
    # ('Logging AWS Lambda API calls using AWS CloudTrail') says an event name "might include date
    # and version information"; these are the ones recorded in public CloudTrail data.
    ("DataDog/stratus-red-team docs/detonation-logs/aws.persistence.lambda-backdoor-function.json "
     "and panther-labs/panther-analysis rules/aws_cloudtrail_rules/aws_backdoor_lambda_function.py",
     {"lambda": ["AddPermission20150331v2"]}),
    ("DataDog/stratus-red-team docs/detonation-logs/aws.persistence.lambda-layer-extension.json, "
     "and the technique aws.persistence.lambda-overwrite-code ('UpdateFunctionCode20150331v2')",
     {"lambda": ["UpdateFunctionConfiguration20150331v2", "UpdateFunctionCode20150331v2"]}),
    ("Lambda's versioned operations as its service model names them in AWS SDK for JavaScript v3 "
     "builds (RemovePermission20150331v2Command, GetPolicy20150331v2Command, ...), and recorded in "
     "CloudTrail by CloudFormation and SAM deployments",
     {"lambda": ["RemovePermission20150331v2", "GetPolicy20150331v2", "GetFunction20150331v2",
                 "GetFunctionConfiguration20150331v2", "PublishVersion20150331v2",
                 "TagResource20170331v2", "UntagResource20170331v2"]}),
    ("Amazon CloudFront Developer Guide, 'Logging Amazon CloudFront API calls using AWS "
     "CloudTrail': an example record of UpdateDistribution2014_01_31, a version older than "
     "botocore's models",
     {"cloudfront": ["UpdateDistribution2014_01_31"]}),
    # AWS service events (eventType AwsServiceEvent): made by AWS, not by a call.
    ("AWS KMS Developer Guide, CloudTrail examples 'RotateKey', 'DeleteExpiredKeyMaterial', "
     "'DeleteKey' (https://docs.aws.amazon.com/kms/latest/developerguide/ct-rotatekey.html)",
     {"kms": ["RotateKey", "DeleteExpiredKeyMaterial", "DeleteKey"]}),
    ("Amazon EBS User Guide, 'Share an Amazon EBS snapshot': CloudTrail logging for shared "
     "snapshots (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html)",
     {"ec2": ["SharedSnapshotCopyInitiated", "SharedSnapshotVolumeCreated"]}),
    ("Amazon Cognito Developer Guide, 'Understanding Amazon Cognito sign-in events' "
     "(https://docs.aws.amazon.com/cognito/latest/developerguide/understanding-amazon-cognito-entries.html)",
     {"cognito-idp": ["Login_GET"]}),
    ("Bedrock model access, before AWS retired it: DataDog/stratus-red-team "
     "docs/detonation-logs/aws.impact.bedrock-invoke-model.json (PutUseCaseForModelAccess, "
     "CreateFoundationModelAgreement, PutFoundationModelEntitlement)",
     {"bedrock": ["PutFoundationModelEntitlement", "PutUseCaseForModelAccess",
                  "CreateFoundationModelAgreement"]}),
]

LAMBDA_VERSIONED = re.compile(r"^/(\d{4})-(\d{2})-(\d{2})/")


def models(wheel):
    """(service, version, model), the latest version of each service, every version of those
    in ALL_VERSIONS."""
    with zipfile.ZipFile(wheel) as z:
        versions = defaultdict(list)
        for name in z.namelist():
            m = re.match(r"botocore/data/([^/]+)/([^/]+)/service-2\.json(\.gz)?$", name)
            if m:
                versions[m.group(1)].append((m.group(2), name))
        for service in sorted(versions):
            chosen = sorted(versions[service])
            if service not in ALL_VERSIONS:
                chosen = chosen[-1:]
            for version, name in chosen:
                raw = z.read(name)
                if name.endswith(".gz"):
                    raw = gzip.decompress(raw)
                yield service, version, json.loads(raw)


def main():
    version = re.search(r"botocore-([0-9.]+)", sys.argv[1])
    actions = defaultdict(set)
    latest = set()
    for service, _, model in models(sys.argv[1]):
        meta = model["metadata"]
        key = meta.get("signingName") or meta.get("endpointPrefix") or service
        source = EVENT_SOURCE.get(key, key)
        latest.add(service)
        for op, spec in model["operations"].items():
            actions[source].add(op)
            # CloudFront's versioned names (CreateDistribution2020_05_31).
            if spec.get("name", op) != op:
                actions[source].add(spec["name"])
            uri = spec.get("http", {}).get("requestUri", "")
            m = LAMBDA_VERSIONED.match(uri)
            if source == "lambda" and m:
                actions[source].add(op + "".join(m.groups()))
    sdk = sum(len(v) for v in actions.values())
    for _, groups in EXTRA:
        for source, names in groups.items():
            actions[source].update(names)
    total = sum(len(v) for v in actions.values())
    print(f"# botocore {version.group(1) if version else '?'}: {len(latest)} service models, "
          f"{len(actions)} event sources, {total} actions; generated by scripts/action-catalog.py")
    print(f"# {total - sdk} of them from the sources EXTRA cites, not from the SDK's models: "
          f"sign-in, AWS service events, Lambda's second versions")
    for source in sorted(actions):
        print(source, " ".join(sorted(actions[source])))


if __name__ == "__main__":
    main()
