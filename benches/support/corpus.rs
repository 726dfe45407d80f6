//! A deterministic generator of realistic CloudTrail traffic, for benchmarks and the sample
//! archive: mostly read-only Describe/List/Get calls by assumed roles, S3 data events, a few
//! percent of writes, service calls, errors and throttles, written in the S3 delivery layout.
//!
//! The same seed always gives the same bytes.

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use trailcedar::time::Timestamp;

/// Changes whenever the generator writes different bytes for the same spec, so that cached
/// corpora are regenerated.
pub const GENERATOR_VERSION: u32 = 2;

/// SplitMix64: small, fast, and good enough for synthetic traffic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One element of a slice; the generator only passes non-empty constant slices.
    #[allow(clippy::indexing_slicing)] // `below(len)` is in range
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(*self.pick(b"0123456789abcdef")))
            .collect()
    }

    fn alnum(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(*self.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")))
            .collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct CorpusSpec {
    pub events: u64,
    pub files: u64,
    pub seed: u64,
    /// The first day; files are spread over `days` days.
    pub start: Timestamp,
    pub days: u64,
    pub account: String,
    /// Events in a thousand whose caller is a session of its own: an assumed-role event from a
    /// distinct instance (a new session name), and every such event with a fresh access key and
    /// source address. 0 for the 30 actors' own sessions only; a large organization's
    /// aggregated trail looks like 400 (`cargo bench --bench scan -- --fresh 400`).
    pub fresh: u64,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec {
            events: 1_000_000,
            files: 200,
            seed: 2024,
            start: Timestamp::from_date(2024, 5, 1).unwrap_or(Timestamp(0)),
            days: 10,
            account: "123456789012".to_string(),
            fresh: 0,
        }
    }
}

const REGIONS: &[&str] = &[
    "ap-northeast-1",
    "ap-northeast-1",
    "ap-northeast-1",
    "us-east-1",
    "eu-west-1",
];

struct Actor {
    identity: Value,
    user_agent: String,
    ip: String,
}

fn actors(rng: &mut Rng, account: &str) -> Vec<Actor> {
    let mut out = Vec::new();
    let apps = [
        "order-api",
        "billing-worker",
        "image-resizer",
        "etl-nightly",
        "web-frontend",
        "search-indexer",
    ];
    for (i, app) in apps.iter().enumerate() {
        for _ in 0..3 {
            let instance = format!("i-0{}", rng.hex(16));
            let role_id = format!("AROAQ4BT4DHF{}", rng.alnum(9));
            out.push(Actor {
                identity: json!({
                    "type": "AssumedRole",
                    "principalId": format!("{role_id}:{instance}"),
                    "arn": format!("arn:aws:sts::{account}:assumed-role/{app}-role/{instance}"),
                    "accountId": account,
                    "accessKeyId": format!("ASIAQ4BT4DHF{}", rng.alnum(8)),
                    "sessionContext": {
                        "sessionIssuer": {"type": "Role", "principalId": role_id,
                            "arn": format!("arn:aws:iam::{account}:role/{app}-role"), "accountId": account,
                            "userName": format!("{app}-role")},
                        "webIdFederationData": {},
                        "attributes": {"creationDate": "2024-05-01T00:00:00Z", "mfaAuthenticated": "false"},
                        "ec2RoleDelivery": "2.0"
                    }
                }),
                user_agent: format!("aws-sdk-java/2.25.{} Linux/6.1.84-99.169.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS Java/21.0.3 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_EC2 io/sync http/Apache cfg/retry-mode#legacy", 10 + i),
                ip: format!("54.150.{}.{}", 100 + rng.below(100), 1 + rng.below(250)),
            });
        }
    }
    for f in ["thumbnail", "webhook", "audit-export", "cost-report"] {
        let role_id = format!("AROAQ4BT4DHF{}", rng.alnum(9));
        out.push(Actor {
            identity: json!({
                "type": "AssumedRole",
                "principalId": format!("{role_id}:{f}-fn"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{f}-lambda-role/{f}-fn"),
                "accountId": account,
                "accessKeyId": format!("ASIAQ4BT4DHF{}", rng.alnum(8)),
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": role_id,
                        "arn": format!("arn:aws:iam::{account}:role/{f}-lambda-role"), "accountId": account,
                        "userName": format!("{f}-lambda-role")},
                    "webIdFederationData": {},
                    "attributes": {"creationDate": "2024-05-01T03:00:00Z", "mfaAuthenticated": "false"}
                }
            }),
            user_agent: "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.214-223.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.84".to_string(),
            ip: format!("3.112.{}.{}", rng.below(250), 1 + rng.below(250)),
        });
    }
    for person in ["hanako.sato", "taro.suzuki", "yuki.tanaka", "ken.ito"] {
        let role_id = format!("AROAQ4BT4DHF{}", rng.alnum(9));
        out.push(Actor {
            identity: json!({
                "type": "AssumedRole",
                "principalId": format!("{role_id}:{person}@example.com"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/AWSReservedSSO_PowerUserAccess_1a2b3c4d5e6f7a8b/{person}@example.com"),
                "accountId": account,
                "accessKeyId": format!("ASIAQ4BT4DHF{}", rng.alnum(8)),
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": role_id,
                        "arn": format!("arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/ap-northeast-1/AWSReservedSSO_PowerUserAccess_1a2b3c4d5e6f7a8b"),
                        "accountId": account, "userName": "AWSReservedSSO_PowerUserAccess_1a2b3c4d5e6f7a8b"},
                    "webIdFederationData": {},
                    "attributes": {"creationDate": "2024-05-01T00:30:00Z", "mfaAuthenticated": "true"}
                }
            }),
            user_agent: "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/ec2.describe-instances".to_string(),
            ip: format!("203.0.113.{}", 10 + rng.below(40)),
        });
    }
    out
}

struct Call {
    source: &'static str,
    name: &'static str,
    read_only: bool,
}

const READS: &[Call] = &[
    Call {
        source: "ec2",
        name: "DescribeInstances",
        read_only: true,
    },
    Call {
        source: "ec2",
        name: "DescribeSecurityGroups",
        read_only: true,
    },
    Call {
        source: "ec2",
        name: "DescribeVolumes",
        read_only: true,
    },
    Call {
        source: "ec2",
        name: "DescribeNetworkInterfaces",
        read_only: true,
    },
    Call {
        source: "iam",
        name: "GetRole",
        read_only: true,
    },
    Call {
        source: "iam",
        name: "ListRoles",
        read_only: true,
    },
    Call {
        source: "iam",
        name: "ListAttachedRolePolicies",
        read_only: true,
    },
    Call {
        source: "kms",
        name: "DescribeKey",
        read_only: true,
    },
    Call {
        source: "logs",
        name: "DescribeLogGroups",
        read_only: true,
    },
    Call {
        source: "lambda",
        name: "ListFunctions20150331",
        read_only: true,
    },
    Call {
        source: "rds",
        name: "DescribeDBInstances",
        read_only: true,
    },
    Call {
        source: "ssm",
        name: "GetParameter",
        read_only: true,
    },
    Call {
        source: "ssm",
        name: "GetParameters",
        read_only: true,
    },
    Call {
        source: "sts",
        name: "GetCallerIdentity",
        read_only: true,
    },
    Call {
        source: "secretsmanager",
        name: "GetSecretValue",
        read_only: true,
    },
    Call {
        source: "ecr",
        name: "GetAuthorizationToken",
        read_only: true,
    },
    Call {
        source: "monitoring",
        name: "GetMetricData",
        read_only: true,
    },
    Call {
        source: "dynamodb",
        name: "DescribeTable",
        read_only: true,
    },
    Call {
        source: "elasticloadbalancing",
        name: "DescribeTargetHealth",
        read_only: true,
    },
    Call {
        source: "s3",
        name: "ListBuckets",
        read_only: true,
    },
    Call {
        source: "s3",
        name: "GetBucketLocation",
        read_only: true,
    },
];

const WRITES: &[Call] = &[
    Call {
        source: "ec2",
        name: "CreateTags",
        read_only: false,
    },
    Call {
        source: "ssm",
        name: "PutParameter",
        read_only: false,
    },
    Call {
        source: "lambda",
        name: "UpdateFunctionCode20150331v2",
        read_only: false,
    },
    Call {
        source: "logs",
        name: "CreateLogStream",
        read_only: false,
    },
    Call {
        source: "iam",
        name: "PutRolePolicy",
        read_only: false,
    },
    Call {
        source: "ec2",
        name: "AuthorizeSecurityGroupIngress",
        read_only: false,
    },
    Call {
        source: "s3",
        name: "PutBucketTagging",
        read_only: false,
    },
    Call {
        source: "kms",
        name: "CreateGrant",
        read_only: false,
    },
];

fn request_parameters(rng: &mut Rng, call: &Call, region: &str, account: &str) -> Value {
    match (call.source, call.name) {
        ("ec2", "DescribeInstances") => {
            json!({"instancesSet": {"items": [{"instanceId": format!("i-0{}", rng.hex(16))}]}, "filterSet": {}})
        }
        ("ec2", "DescribeSecurityGroups") => {
            json!({"securityGroupSet": {}, "securityGroupIdSet": {"items": [{"groupId": format!("sg-0{}", rng.hex(16))}]}, "filterSet": {}})
        }
        ("ec2", "CreateTags") => {
            json!({"resourcesSet": {"items": [{"resourceId": format!("vol-0{}", rng.hex(16))}]}, "tagSet": {"items": [{"key": "Name", "value": "data"}]}})
        }
        ("ec2", "AuthorizeSecurityGroupIngress") => {
            json!({"groupId": format!("sg-0{}", rng.hex(16)), "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "groups": {}, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}, "ipv6Ranges": {}, "prefixListIds": {}}]}})
        }
        ("iam", "GetRole") | ("iam", "ListAttachedRolePolicies") => {
            json!({"roleName": *rng.pick(&["order-api-role", "etl-nightly-role", "web-frontend-role"])})
        }
        ("iam", "PutRolePolicy") => {
            json!({"roleName": "etl-nightly-role", "policyName": "s3-access", "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\"],\"Resource\":\"arn:aws:s3:::etl-input/*\"}]}"})
        }
        ("kms", _) => {
            json!({"keyId": format!("arn:aws:kms:{region}:{account}:key/{}", rng.uuid())})
        }
        ("ssm", "GetParameter") | ("ssm", "PutParameter") => {
            json!({"name": format!("/app/{}/config", rng.pick(&["order-api", "billing", "search"])), "withDecryption": true})
        }
        ("ssm", "GetParameters") => {
            json!({"names": ["/app/order-api/db-host", "/app/order-api/db-port"], "withDecryption": false})
        }
        ("secretsmanager", _) => {
            json!({"secretId": format!("arn:aws:secretsmanager:{region}:{account}:secret:prod/db-{}", rng.alnum(6))})
        }
        ("logs", _) => {
            json!({"logGroupName": format!("/aws/lambda/{}-fn", rng.pick(&["thumbnail", "webhook"])), "logStreamName": format!("2024/05/01/[$LATEST]{}", rng.hex(32))})
        }
        ("lambda", _) => json!({"functionName": "webhook-fn", "maxItems": 50}),
        ("rds", _) => json!({"dBInstanceIdentifier": "orders-prod"}),
        ("monitoring", _) => {
            json!({"startTime": "May 1, 2024, 00:00:00 AM", "endTime": "May 1, 2024, 01:00:00 AM", "metricDataQueries": [{"id": "m1"}]})
        }
        ("dynamodb", _) => json!({"tableName": "sessions"}),
        ("elasticloadbalancing", _) => {
            json!({"targetGroupArn": format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/web/{}", rng.hex(16))})
        }
        ("s3", "ListBuckets") => json!({"Host": format!("s3.{region}.amazonaws.com")}),
        ("s3", name) => {
            let bucket = rng.pick(&["order-exports", "image-uploads", "etl-input", "web-assets"]);
            if name == "PutBucketTagging" {
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "tagging": ""})
            } else {
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "location": ""})
            }
        }
        _ => Value::Null,
    }
}

/// A session of its own for `actor`'s role: a new session name where it is an instance's (a new
/// instance id), a fresh temporary key, and a fresh source address in the actor's range.
fn fresh_session(rng: &mut Rng, actor: &Actor) -> Actor {
    let mut identity = actor.identity.clone();
    let instance = format!("i-0{}", rng.hex(16));
    if let Some(obj) = identity.as_object_mut() {
        // `…/i-0abc` and `AROA…:i-0abc`: the session after the last `/` or `:`.
        let renamed = |v: &Value| {
            let s = v.as_str()?;
            let at = s.rfind(['/', ':'])?;
            let (head, session) = s.split_at(at + 1);
            session
                .starts_with("i-")
                .then(|| Value::String(format!("{head}{instance}")))
        };
        for key in ["arn", "principalId"] {
            if let Some(new) = obj.get(key).and_then(renamed) {
                obj.insert(key.to_string(), new);
            }
        }
        obj.insert(
            "accessKeyId".to_string(),
            json!(format!("ASIA{}", rng.alnum(16))),
        );
    }
    let prefix = actor.ip.rsplitn(3, '.').nth(2).unwrap_or("54.150");
    Actor {
        identity,
        user_agent: actor.user_agent.clone(),
        ip: format!("{prefix}.{}.{}", rng.below(256), 1 + rng.below(254)),
    }
}

/// Generates the events of file `index` (of `spec.files`), in time order.
pub fn file_events(spec: &CorpusSpec, index: u64) -> (String, Timestamp, Vec<Value>) {
    let mut rng = Rng::new(spec.seed ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let actors = actors(&mut Rng::new(spec.seed), &spec.account);
    let region = *rng.pick(REGIONS);
    let files = spec.files.max(1);
    let per_file = spec.events / files + u64::from(index < spec.events % files);
    // Files cover consecutive slices of the period.
    let period_ms = spec.days.max(1) as i64 * 86_400_000;
    let slice = period_ms / files as i64;
    let start = Timestamp(spec.start.0 + slice * index as i64);
    let account = spec.account.as_str();
    let mut events = Vec::with_capacity(per_file as usize);
    for i in 0..per_file {
        let t = Timestamp(start.0 + (slice * i as i64) / per_file.max(1) as i64);
        let roll = rng.below(1000);
        let actor = rng.pick(&actors);
        let fresh_actor;
        let actor = if spec.fresh > 0 && rng.below(1000) < spec.fresh {
            fresh_actor = fresh_session(&mut rng, actor);
            &fresh_actor
        } else {
            actor
        };
        // About one event in five thousand is one the default pack flags.
        let suspicious = rng.below(5000) == 0;
        let mut e = if suspicious {
            suspicious_event(&mut rng, actor, region, account)
        } else if roll < 150 {
            s3_data_event(&mut rng, actor, region, account)
        } else if roll < 190 {
            service_event(&mut rng, region, account)
        } else {
            let call = if roll < 230 {
                rng.pick(WRITES)
            } else {
                rng.pick(READS)
            };
            api_event(&mut rng, actor, call, region, account)
        };
        if let Some(obj) = e.as_object_mut() {
            obj.insert("eventTime".into(), json!(t.to_string()));
            if roll % 31 == 7 {
                obj.insert("errorCode".into(), json!("AccessDenied"));
                obj.insert(
                    "errorMessage".into(),
                    json!("User is not authorized to perform this operation"),
                );
                obj.insert("responseElements".into(), Value::Null);
            } else if roll % 37 == 11 {
                obj.insert("errorCode".into(), json!("ThrottlingException"));
                obj.insert("errorMessage".into(), json!("Rate exceeded"));
                obj.insert("responseElements".into(), Value::Null);
            }
        }
        events.push(e);
    }
    (region.to_string(), start, events)
}

#[allow(clippy::too_many_arguments)] // the fields every record shares
fn base(
    rng: &mut Rng,
    identity: &Value,
    source: &str,
    name: &str,
    region: &str,
    ip: &str,
    ua: &str,
    account: &str,
) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": "",
        "eventSource": format!("{source}.amazonaws.com"),
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": Value::Null,
        "responseElements": Value::Null,
        "requestID": rng.uuid(),
        "eventID": rng.uuid(),
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": format!("{source}.{region}.amazonaws.com")}
    })
}

fn api_event(rng: &mut Rng, actor: &Actor, call: &Call, region: &str, account: &str) -> Value {
    let mut e = base(
        rng,
        &actor.identity,
        call.source,
        call.name,
        region,
        &actor.ip,
        &actor.user_agent,
        account,
    );
    if let Some(obj) = e.as_object_mut() {
        obj.insert(
            "requestParameters".into(),
            request_parameters(rng, call, region, account),
        );
        obj.insert("readOnly".into(), json!(call.read_only));
        if !call.read_only {
            obj.insert(
                "responseElements".into(),
                json!({"requestId": rng.uuid(), "_return": true}),
            );
        }
    }
    e
}

fn s3_data_event(rng: &mut Rng, actor: &Actor, region: &str, account: &str) -> Value {
    let name = *rng.pick(&[
        "GetObject",
        "GetObject",
        "GetObject",
        "HeadObject",
        "PutObject",
    ]);
    let bucket = *rng.pick(&["order-exports", "image-uploads", "etl-input", "web-assets"]);
    let key = format!(
        "{}/{}/{}.{}",
        rng.pick(&["2024/05/01", "uploads", "exports"]),
        rng.hex(8),
        rng.hex(12),
        rng.pick(&["json", "jpg", "csv.gz"])
    );
    let mut e = base(
        rng,
        &actor.identity,
        "s3",
        name,
        region,
        &actor.ip,
        &actor.user_agent,
        account,
    );
    let read_only = name != "PutObject";
    if let Some(obj) = e.as_object_mut() {
        obj.insert("requestParameters".into(), json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "key": key}));
        obj.insert(
            "additionalEventData".into(),
            json!({
                "SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": if read_only { 0 } else { 10_000 + rng.below(90_000) },
                "AuthenticationMethod": "AuthHeader", "x-amz-id-2": format!("{}=", rng.alnum(56)),
                "bytesTransferredOut": if read_only { 1000 + rng.below(900_000) } else { 0 }
            }),
        );
        obj.insert("resources".into(), json!([
            {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
            {"accountId": account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
        ]));
        obj.insert("readOnly".into(), json!(read_only));
        obj.insert("managementEvent".into(), json!(false));
        obj.insert("eventCategory".into(), json!("Data"));
        obj.insert("requestID".into(), json!(rng.alnum(16)));
    }
    e
}

/// A call the default pack flags: root activity, a public object, a key for another user.
fn suspicious_event(rng: &mut Rng, actor: &Actor, region: &str, account: &str) -> Value {
    match rng.below(3) {
        0 => {
            let root = json!({"type": "Root", "principalId": account, "arn": format!("arn:aws:iam::{account}:root"), "accountId": account});
            base(
                rng,
                &root,
                "iam",
                "ListUsers",
                region,
                "192.0.2.44",
                "AWS Internal",
                account,
            )
        }
        1 => {
            let mut e = s3_data_event(rng, actor, region, account);
            if let Some(obj) = e.as_object_mut() {
                obj.insert("eventName".into(), json!("PutObject"));
                obj.insert("readOnly".into(), json!(false));
                if let Some(p) = obj
                    .get_mut("requestParameters")
                    .and_then(Value::as_object_mut)
                {
                    p.insert("x-amz-acl".into(), json!("public-read"));
                }
            }
            e
        }
        _ => {
            let mut e = api_event(
                rng,
                actor,
                &Call {
                    source: "iam",
                    name: "CreateAccessKey",
                    read_only: false,
                },
                region,
                account,
            );
            if let Some(obj) = e.as_object_mut() {
                obj.insert("requestParameters".into(), json!({"userName": "ci-runner"}));
            }
            e
        }
    }
}

fn service_event(rng: &mut Rng, region: &str, account: &str) -> Value {
    let (source, name, by) = *rng.pick(&[
        ("kms", "Decrypt", "secretsmanager.amazonaws.com"),
        ("kms", "GenerateDataKey", "s3.amazonaws.com"),
        ("sts", "AssumeRole", "lambda.amazonaws.com"),
        ("sts", "AssumeRole", "ecs-tasks.amazonaws.com"),
    ]);
    let identity = json!({"type": "AWSService", "invokedBy": by});
    let mut e = base(rng, &identity, source, name, region, by, by, account);
    if let Some(obj) = e.as_object_mut() {
        let params = if source == "kms" {
            json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": format!("arn:aws:kms:{region}:{account}:key/{}", rng.uuid())})
        } else {
            json!({"roleArn": format!("arn:aws:iam::{account}:role/webhook-lambda-role"), "roleSessionName": "webhook-fn"})
        };
        obj.insert("requestParameters".into(), params);
        obj.insert("resources".into(), json!([{"accountId": account, "type": if source == "kms" { "AWS::KMS::Key" } else { "AWS::IAM::Role" },
            "ARN": if source == "kms" { format!("arn:aws:kms:{region}:{account}:key/{}", rng.uuid()) } else { format!("arn:aws:iam::{account}:role/webhook-lambda-role") }}]));
        obj.remove("tlsDetails");
    }
    e
}

/// The S3-layout path of a delivery file.
pub fn delivery_path(
    root: &Path,
    account: &str,
    region: &str,
    end: Timestamp,
    suffix: &str,
) -> PathBuf {
    let s = end.to_string();
    let (y, m, d) = (
        s.get(0..4).unwrap_or("1970"),
        s.get(5..7).unwrap_or("01"),
        s.get(8..10).unwrap_or("01"),
    );
    let hhmm = format!(
        "{}{}",
        s.get(11..13).unwrap_or("00"),
        s.get(14..16).unwrap_or("00")
    );
    root.join("AWSLogs")
        .join(account)
        .join("CloudTrail")
        .join(region)
        .join(y)
        .join(m)
        .join(d)
        .join(format!(
            "{account}_CloudTrail_{region}_{y}{m}{d}T{hhmm}Z_{suffix}.json.gz"
        ))
}

/// Writes `{"Records": events}` gzip-compressed.
pub fn write_gz(path: &Path, events: &[Value]) -> io::Result<u64> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(path)?;
    let mut gz = GzEncoder::new(io::BufWriter::new(file), Compression::new(6));
    let body = serde_json::to_vec(&json!({ "Records": events })).map_err(io::Error::other)?;
    gz.write_all(&body)?;
    gz.finish()?.flush()?;
    Ok(body.len() as u64)
}

/// Writes the whole corpus under `root`; returns the uncompressed bytes written.
pub fn write_corpus(root: &Path, spec: &CorpusSpec) -> io::Result<u64> {
    let mut total = 0;
    for index in 0..spec.files {
        let (region, start, events) = file_events(spec, index);
        let mut rng = Rng::new(spec.seed.wrapping_add(index));
        let path = delivery_path(root, &spec.account, &region, start, &rng.alnum(16));
        total += write_gz(&path, &events)?;
    }
    Ok(total)
}

/// An inventory for the corpus of `spec`, taken on its first day, for the benchmark of the
/// join: `resources` tagged resources (the corpus's buckets among them) and `users` IAM users,
/// with the corpus's roles, instances (at the addresses its sessions call from), access keys, a
/// credential report and the organization. Written as the AWS CLI writes them, under
/// `root/<date>/`; returns the bytes written.
pub fn write_inventory(
    root: &Path,
    spec: &CorpusSpec,
    resources: u64,
    users: u64,
) -> io::Result<u64> {
    let day = spec.start.to_string();
    let dir = root.join(day.get(0..10).unwrap_or("1970-01-01"));
    std::fs::create_dir_all(&dir)?;
    let account = spec.account.as_str();
    let mut rng = Rng::new(spec.seed ^ 0x1a2b_3c4d);
    let services = ["platform", "billing", "web", "search", "analytics", "ml"];
    let mut total = 0u64;
    let mut write = |name: &str, v: &Value| -> io::Result<()> {
        let bytes = serde_json::to_vec(v).map_err(io::Error::other)?;
        total += bytes.len() as u64;
        std::fs::write(dir.join(name), bytes)
    };
    // Tags: the corpus's buckets say `platform`, as its roles do: joined, and quiet.
    let mut mappings: Vec<Value> = ["order-exports", "image-uploads", "etl-input", "web-assets"]
        .iter()
        .map(|b| json!({"ResourceARN": format!("arn:aws:s3:::{b}"), "Tags": [{"Key": "service", "Value": "platform"}, {"Key": "owner", "Value": "platform-team"}]}))
        .collect();
    let kinds = ["s3", "ec2", "lambda", "secretsmanager", "dynamodb", "sqs"];
    for i in 0..resources.saturating_sub(mappings.len() as u64) {
        let service = *rng.pick(&services);
        let arn = match *rng.pick(&kinds) {
            "s3" => format!("arn:aws:s3:::{service}-data-{i}"),
            "ec2" => format!(
                "arn:aws:ec2:ap-northeast-1:{account}:instance/i-0{}",
                rng.hex(16)
            ),
            "lambda" => {
                format!("arn:aws:lambda:ap-northeast-1:{account}:function:{service}-fn-{i}")
            }
            "secretsmanager" => format!(
                "arn:aws:secretsmanager:ap-northeast-1:{account}:secret:{service}/db-{i}-{}",
                rng.alnum(6)
            ),
            "dynamodb" => {
                format!("arn:aws:dynamodb:ap-northeast-1:{account}:table/{service}-table-{i}")
            }
            _ => format!("arn:aws:sqs:ap-northeast-1:{account}:{service}-queue-{i}"),
        };
        mappings.push(json!({"ResourceARN": arn, "Tags": [
            {"Key": "service", "Value": service},
            {"Key": "env", "Value": *rng.pick(&["prod", "staging", "dev"])},
            {"Key": "cost-center", "Value": format!("cc-{}", 100 + rng.below(50))}
        ]}));
    }
    write(
        "resource-tags.json",
        &json!({"ResourceTagMappingList": mappings}),
    )?;

    // IAM: the users, in groups; the corpus's roles.
    let groups: Vec<Value> = services
        .iter()
        .map(|s| json!({"Path": "/", "GroupName": format!("{s}-team"), "GroupId": format!("AGPA{}", rng.alnum(17)),
            "Arn": format!("arn:aws:iam::{account}:group/{s}-team"), "CreateDate": "2021-01-01T00:00:00Z",
            "GroupPolicyList": [], "AttachedManagedPolicies": [{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]}))
        .collect();
    let mut user_list = Vec::with_capacity(users as usize);
    let mut keys = Vec::with_capacity(users as usize);
    let mut report = String::from(
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n",
    );
    for i in 0..users {
        let name = format!("user-{i:05}");
        let service = *rng.pick(&services);
        let arn = format!("arn:aws:iam::{account}:user/{name}");
        user_list.push(json!({"Path": "/", "UserName": name, "UserId": format!("AIDA{}", rng.alnum(17)), "Arn": arn,
            "CreateDate": "2022-04-01T00:00:00Z", "UserPolicyList": [], "GroupList": [format!("{service}-team")],
            "AttachedManagedPolicies": [], "Tags": [{"Key": "service", "Value": service}]}));
        let key = format!("AKIA{}", rng.alnum(16).to_uppercase());
        keys.push(json!({"AccessKeyMetadata": [{"UserName": name, "AccessKeyId": key, "Status": "Active", "CreateDate": "2022-04-01T00:00:00Z"}]}));
        report.push_str(&format!("{name},{arn},2022-04-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2022-04-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"));
    }
    let actors = actors(&mut Rng::new(spec.seed), account);
    let mut roles: Vec<Value> = Vec::new();
    let mut instances: Vec<Value> = Vec::new();
    for a in &actors {
        let Some(issuer) = a.identity.pointer("/sessionContext/sessionIssuer") else {
            continue;
        };
        let field = |k: &str| issuer.get(k).cloned().unwrap_or(Value::Null);
        let (Some(role_arn), Some(role_name)) = (
            issuer.get("arn").and_then(Value::as_str),
            issuer.get("userName").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !roles
            .iter()
            .any(|r| r.get("Arn").and_then(Value::as_str) == Some(role_arn))
        {
            roles.push(json!({"Path": "/", "RoleName": role_name, "RoleId": field("principalId"), "Arn": role_arn,
                "CreateDate": "2023-03-01T00:00:00Z", "RolePolicyList": [], "InstanceProfileList": [],
                "AttachedManagedPolicies": [{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
                "Tags": [{"Key": "service", "Value": "platform"}]}));
        }
        let session = a
            .identity
            .get("arn")
            .and_then(Value::as_str)
            .and_then(|s| s.rsplit('/').next())
            .unwrap_or("");
        if session.starts_with("i-") {
            instances.push(json!({"InstanceId": session, "PrivateIpAddress": format!("10.0.{}.{}", rng.below(250), 1 + rng.below(250)),
                "PublicIpAddress": a.ip, "VpcId": "vpc-0a1b2c3d4e5f60718", "SubnetId": "subnet-0a1b2c3d4e5f60718",
                "State": {"Code": 16, "Name": "running"}, "IamInstanceProfile": {"Arn": format!("arn:aws:iam::{account}:instance-profile/{role_name}")},
                "Tags": [{"Key": "service", "Value": "platform"}]}));
        }
    }
    write(
        "iam.json",
        &json!({"UserDetailList": user_list, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": []}),
    )?;
    write("access-keys.json", &Value::Array(keys))?;
    {
        use base64::Engine as _;
        let content = base64::engine::general_purpose::STANDARD.encode(report.as_bytes());
        write(
            "credential-report.json",
            &json!({"Content": content, "ReportFormat": "text/csv", "GeneratedTime": format!("{}", spec.start)}),
        )?;
    }
    write(
        "instances.json",
        &json!({"Reservations": [{"ReservationId": "r-0123456789abcdef0", "OwnerId": account, "Groups": [], "Instances": instances}]}),
    )?;
    let mut accounts = vec![
        json!({"Id": account, "Name": "production", "Email": "aws-prod@example.com", "Status": "ACTIVE"}),
    ];
    for i in 0..50u64 {
        accounts.push(json!({"Id": format!("{:012}", 210_000_000_000 + i), "Name": format!("member-{i}"), "Email": format!("aws-{i}@example.com"), "Status": "ACTIVE"}));
    }
    write("accounts.json", &json!({"Accounts": accounts}))?;
    Ok(total)
}

/// The sample archive shipped in `fixtures/archive`: a day of generated background traffic on
/// 2024-05-14 with every fixture event of `events_dir` (the seed scenarios and their near
/// misses) mixed in, delivered per region every 15 minutes (what CloudTrail does every five, in
/// fewer files), plus a digest file and an
/// Insights file that a scan must skip.
pub fn write_sample_archive(root: &Path, events_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let account = "123456789012";
    let day = Timestamp::from_date(2024, 5, 14).unwrap_or(Timestamp(0));
    let spec = CorpusSpec {
        events: 1200,
        files: 8,
        seed: 514,
        start: day,
        days: 1,
        account: account.to_string(),
        fresh: 0,
    };
    let mut all: Vec<(Timestamp, String, Value)> = Vec::new();
    for index in 0..spec.files {
        let (region, _, events) = file_events(&spec, index);
        for e in events {
            let t = e
                .get("eventTime")
                .and_then(Value::as_str)
                .and_then(|t| Timestamp::parse(t).ok());
            all.push((t.unwrap_or(day), region.clone(), e));
        }
    }
    let mut fixture_files: Vec<PathBuf> = walkdir::WalkDir::new(events_dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| e.into_path())
        .collect();
    fixture_files.sort();
    for path in fixture_files {
        let text = std::fs::read_to_string(&path)?;
        let doc: Value = serde_json::from_str(&text).map_err(io::Error::other)?;
        for e in doc
            .get("Records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let t = e
                .get("eventTime")
                .and_then(Value::as_str)
                .and_then(|t| Timestamp::parse(t).ok());
            let region = e
                .get("awsRegion")
                .and_then(Value::as_str)
                .unwrap_or("ap-northeast-1");
            all.push((t.unwrap_or(day), region.to_string(), e.clone()));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut files: std::collections::BTreeMap<(String, i64), Vec<Value>> =
        std::collections::BTreeMap::new();
    let block = 15 * 60_000;
    for (t, region, e) in all {
        files
            .entry((region, t.0.div_euclid(block)))
            .or_default()
            .push(e);
    }
    let mut rng = Rng::new(514);
    let mut written = Vec::new();
    for ((region, slot), events) in files {
        // Delivered a few minutes after the block ends.
        let end = Timestamp((slot + 1) * block + 5 * 60_000);
        let end = if end.0 >= day.plus_days(1).0 {
            Timestamp(day.plus_days(1).0 - 60_000)
        } else {
            end
        };
        let path = delivery_path(root, account, &region, end, &rng.alnum(16));
        write_gz(&path, &events)?;
        written.push(path);
    }
    let digest_dir = root.join(format!(
        "AWSLogs/{account}/CloudTrail-Digest/ap-northeast-1/2024/05/14"
    ));
    std::fs::create_dir_all(&digest_dir)?;
    let digest = digest_dir.join(format!("{account}_CloudTrail-Digest_ap-northeast-1_org-trail_ap-northeast-1_20240514T230000Z.json.gz"));
    let log_files: Vec<Value> = written
        .iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .map(|p| json!({"s3Bucket": "cm-cloudtrail-logs", "s3Object": p.display().to_string(), "hashValue": rng.hex(64), "hashAlgorithm": "SHA-256"}))
        .collect();
    let body = json!({
        "awsAccountId": account, "digestStartTime": "2024-05-14T00:00:00Z", "digestEndTime": "2024-05-14T23:00:00Z",
        "digestS3Bucket": "cm-cloudtrail-logs", "digestS3Object": digest.strip_prefix(root).map(|p| p.display().to_string()).unwrap_or_default(),
        "digestPublicKeyFingerprint": rng.hex(32), "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": "2024-05-14T22:59:00Z", "oldestEventTime": "2024-05-14T00:00:00Z",
        "previousDigestS3Bucket": null, "previousDigestS3Object": null, "previousDigestHashValue": null,
        "previousDigestHashAlgorithm": null, "previousDigestSignature": null, "logFiles": log_files
    });
    let file = std::fs::File::create(&digest)?;
    let mut gz = GzEncoder::new(io::BufWriter::new(file), Compression::new(6));
    gz.write_all(&serde_json::to_vec(&body).map_err(io::Error::other)?)?;
    gz.finish()?.flush()?;
    written.push(digest);
    let insight = root.join(format!(
        "AWSLogs/{account}/CloudTrail-Insight/us-east-1/2024/05/14/{account}_CloudTrail-Insight_us-east-1_20240514T0235Z_{}.json.gz",
        rng.alnum(16)
    ));
    write_gz(
        &insight,
        &[json!({
            "eventVersion": "1.08", "eventTime": "2024-05-14T02:15:00Z", "awsRegion": "us-east-1", "eventID": rng.uuid(),
            "eventType": "AwsCloudTrailInsight", "recipientAccountId": account, "sharedEventID": rng.uuid(),
            "insightDetails": {"state": "Start", "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
                "insightType": "ApiCallRateInsight", "insightContext": {"statistics": {"baseline": {"average": 0.0011}, "insight": {"average": 3.0}}}},
            "eventCategory": "Insight"
        })],
    )?;
    written.push(insight);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let spec = CorpusSpec {
            events: 1000,
            files: 4,
            ..CorpusSpec::default()
        };
        let (_, _, a) = file_events(&spec, 1);
        let (_, _, b) = file_events(&spec, 1);
        assert_eq!(a, b);
        assert_eq!(a.len(), 250);
        let bytes: usize = a
            .iter()
            .map(|e| serde_json::to_string(e).unwrap().len())
            .sum();
        let avg = bytes / a.len();
        assert!((900..1800).contains(&avg), "average record size {avg}");
        for e in &a {
            let text = serde_json::to_string(e).unwrap();
            trailcedar::model::EventView::parse(&text).unwrap();
        }
    }

    #[test]
    fn delivery_paths_follow_the_s3_layout() {
        let p = delivery_path(
            Path::new("x"),
            "123456789012",
            "us-east-1",
            Timestamp::parse("2024-05-01T13:05:00Z").unwrap(),
            "ABC",
        );
        assert_eq!(
            p,
            Path::new(
                "x/AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/123456789012_CloudTrail_us-east-1_20240501T1305Z_ABC.json.gz"
            )
        );
        assert_eq!(
            trailcedar::source::s3_delivery_day(&p),
            Timestamp::from_date(2024, 5, 1)
        );
    }
}
