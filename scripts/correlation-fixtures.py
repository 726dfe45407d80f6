#!/usr/bin/env python3
"""Writes the fixture logs of the correlation detections (fixtures/events/**): each flagging case
and its near misses (one short of the threshold, outside the window, the wrong order, the calls
a detection leaves out), as CloudTrail records, many of them.

    python3 scripts/correlation-fixtures.py          # from the repository's root

The records follow CloudTrail's own (the S3 data events with their resources, additionalEventData
and TLS details; sign-in failures as CloudTrail writes them); the same seed writes the same bytes.
Every scenario has actors of its own (keys, sessions, addresses), so that the sample archive,
which mixes every fixture into one day, does not join two scenarios into one group. After
running it, regenerate the sample archive: `cargo run --example sample_archive`.
"""

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

ACCOUNT = "123456789012"
DAY = datetime(2024, 5, 14, tzinfo=timezone.utc)
RNG = random.Random(17)

CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off command/{}"
BOTO = "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84"
STRATUS = "stratus-red-team_8c1d7e64-2f3a-4f55-a5b0-6a5a2c0f9d11"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def uuid():
    h = "".join(RNG.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def alnum(n):
    return "".join(RNG.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(n))


def at(hh, mm, ss=0.0):
    return DAY + timedelta(hours=hh, minutes=mm, seconds=ss)


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# The users and roles the fixtures act as: the fixture inventory lists them (inventory()), so
# that they are not users missing from the inventory.
USERS = {}
ROLES = {}


def stable_id(prefix, name):
    h = 0
    for c in name:
        h = (h * 131 + ord(c)) % (36 ** 9)
    digits = ""
    for _ in range(9):
        h, d = divmod(h, 36)
        digits += "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[d]
    return prefix + "Q4BT4DHF" + digits


def user(name, key):
    USERS[name] = stable_id("AIDA", name)
    return {
        "type": "IAMUser",
        "principalId": USERS[name],
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "userName": name,
    }


def session(role, name, key, created, instance=False):
    role_id = stable_id("AROA", role)
    ROLES[role] = (role_id, instance)
    path = "/aws-reserved/sso.amazonaws.com/ap-northeast-1/" if role.startswith("AWSReservedSSO_") else "/"
    identity = {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{name}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{ACCOUNT}:role{path}{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": stamp(created), "mfaAuthenticated": "false"},
        },
    }
    if instance:
        identity["sessionContext"]["ec2RoleDelivery"] = "2.0"
    return identity


def call(identity, t, source, name, region, ip, ua, request=None, response=None, error=None,
         read_only=True, extra=None):
    r = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": stamp(t),
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": ua,
    }
    if error:
        r["errorCode"] = error[0]
        r["errorMessage"] = error[1]
    r["requestParameters"] = request
    r["responseElements"] = None if error else response
    r["requestID"] = uuid()
    r["eventID"] = uuid()
    r["readOnly"] = read_only
    r["eventType"] = "AwsApiCall"
    r["managementEvent"] = True
    r["recipientAccountId"] = ACCOUNT
    r["eventCategory"] = "Management"
    r["tlsDetails"] = {
        "tlsVersion": "TLSv1.3",
        "cipherSuite": "TLS_AES_128_GCM_SHA256",
        "clientProvidedHostHeader": f"{source}.{region}.amazonaws.com",
    }
    if extra:
        r.update(extra)
    return r


def s3_object(identity, t, name, bucket, key, ip, ua, region="ap-northeast-1", error=None,
              out_bytes=None, version=None, endpoint=None):
    request = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", "key": key}
    if version:
        request["versionId"] = version
    read = name in ("GetObject", "HeadObject")
    r = call(identity, t, "s3", name, region, ip, ua, request, None, error, read_only=read)
    r["additionalEventData"] = {
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": 0,
        "AuthenticationMethod": "AuthHeader",
        "x-amz-id-2": alnum(56) + "=",
        "bytesTransferredOut": 0 if error or not read else (out_bytes or RNG.randint(2_000, 900_000)),
    }
    r["resources"] = [
        {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
        {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
    ]
    r["managementEvent"] = False
    r["eventCategory"] = "Data"
    r["tlsDetails"]["clientProvidedHostHeader"] = f"{bucket}.s3.{region}.amazonaws.com"
    if endpoint:
        r["vpcEndpointId"] = endpoint
        r["vpcEndpointAccountId"] = ACCOUNT
    return r


def s3_bucket(identity, t, name, bucket, ip, ua, request, region="ap-northeast-1", error=None):
    req = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com"}
    req.update(request)
    r = call(identity, t, "s3", name, region, ip, ua, req, None, error,
             read_only=name.startswith("List"))
    r["additionalEventData"] = {
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": 0 if name.startswith("List") else 2318,
        "AuthenticationMethod": "AuthHeader",
        "x-amz-id-2": alnum(56) + "=",
        "bytesTransferredOut": 0 if error else 51_234,
    }
    r["resources"] = [
        {"type": "AWS::S3::Object", "ARNPrefix": f"arn:aws:s3:::{bucket}/"},
        {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
    ]
    r["managementEvent"] = False
    r["eventCategory"] = "Data"
    return r


def spread(start, count, seconds):
    """`count` times from `start`, evenly over `seconds`."""
    return [start + timedelta(seconds=seconds * i / max(count, 1)) for i in range(count)]


def object_key(prefix):
    return f"{prefix}/{RNG.randint(2019, 2024)}/{alnum(8).lower()}-{RNG.randint(1, 9999):04d}.csv.gz"


def write(path, records):
    records.sort(key=lambda r: r["eventTime"])
    p = Path("fixtures/events") / path
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(r, separators=(",", ":")) for r in records)
    p.write_text('{"Records": [\n' + lines + "\n]}\n")
    print(f"{p}: {len(records)} record(s)")


# --- S3: bulk reads (the ransomware lab's 1,168 GetObject), bulk deletes (Stratus individual
# deletion), versions listed then batch-deleted (Stratus batch deletion).

RANSOM = user("data-sync", "AKIAQ4BT4DHFRANSOM01")
RANSOM_IP = "203.0.113.77"


def bulk_reads():
    flag = [
        s3_object(RANSOM, t, "GetObject", "cm-customer-exports", object_key("exports"),
                  RANSOM_IP, CLI.format("s3.cp"))
        for t in spread(at(3, 30), 1168, 280)
    ]
    write("s3/bulk_object_reads.flag.json", flag)
    one_short = user("report-sync", "AKIAQ4BT4DHFSYNC0001")
    apart = user("archive-sync", "AKIAQ4BT4DHFSYNC0002")
    app = session("etl-nightly-role", "i-0c1d2e3f4a5b6c7d8", "ASIAQ4BT4DHFETL00001", at(4, 0),
                  instance=True)
    allow = [
        s3_object(one_short, t, "GetObject", "cm-reports", object_key("reports"),
                  "203.0.113.78", CLI.format("s3.sync"))
        for t in spread(at(5, 0), 499, 240)
    ]
    allow += [
        s3_object(apart, t, "GetObject", "cm-archive", object_key("archive"), "203.0.113.79",
                  CLI.format("s3.sync"))
        for t in spread(at(5, 30), 260, 120) + spread(at(5, 45), 260, 120)
    ]
    # From an instance, inside AWS: an application reading its own bucket.
    allow += [
        s3_object(app, t, "GetObject", "etl-input", object_key("input"), "54.150.188.40", BOTO)
        for t in spread(at(4, 5), 520, 200)
    ]
    write("s3/bulk_object_reads.allow.json", allow)


def bulk_deletes():
    keys = [object_key("exports") for _ in range(51)]
    flag = [
        s3_object(RANSOM, t, "DeleteObject", "cm-customer-exports", k, RANSOM_IP, STRATUS,
                  version=alnum(32))
        for t, k in zip(spread(at(3, 36), 51, 30), keys)
    ]
    write("s3/bulk_object_deletes.flag.json", flag)
    short = user("cleanup-job", "AKIAQ4BT4DHFCLEAN001")
    apart = user("retention-job", "AKIAQ4BT4DHFCLEAN002")
    denied = user("intern", "AKIAQ4BT4DHFDENIED01")
    allow = [
        s3_object(short, t, "DeleteObject", "cm-tmp", object_key("tmp"), "203.0.113.81",
                  CLI.format("s3.rm"))
        for t in spread(at(6, 0), 49, 60)
    ]
    allow += [
        s3_object(apart, t, "DeleteObject", "cm-tmp", object_key("tmp"), "203.0.113.82",
                  CLI.format("s3.rm"))
        for t in spread(at(6, 10), 30, 30) + spread(at(6, 25), 30, 30)
    ]
    allow += [
        s3_object(denied, t, "DeleteObject", "cm-customer-exports", object_key("exports"),
                  "203.0.113.83", CLI.format("s3.rm"), error=("AccessDenied", "Access Denied"))
        for t in spread(at(6, 40), 60, 60)
    ]
    write("s3/bulk_object_deletes.allow.json", allow)


def versions_listed(identity, t, bucket, ip, error=None):
    return s3_bucket(identity, t, "ListObjectVersions", bucket, ip, STRATUS,
                     {"versions": "", "list-type": "2"}, error=error)


def batch_deleted(identity, t, bucket, ip, error=None):
    return s3_bucket(identity, t, "DeleteObjects", bucket, ip, STRATUS,
                     {"delete": "", "x-id": "DeleteObjects"}, error=error)


def versions_batch_deleted():
    actor = user("vault-admin", "AKIAQ4BT4DHFRANSOM02")
    flag = [
        versions_listed(actor, at(4, 10, 0), "cm-backups", "198.51.100.44"),
        batch_deleted(actor, at(4, 10, 3), "cm-backups", "198.51.100.44"),
        s3_object(actor, at(4, 10, 5), "PutObject", "cm-backups", "FILES-DELETED.txt",
                  "198.51.100.44", STRATUS),
    ]
    write("s3/object_versions_batch_deleted.flag.json", flag)
    order = user("media-admin", "AKIAQ4BT4DHFBATCH001")
    late = user("logs-admin", "AKIAQ4BT4DHFBATCH002")
    other = user("assets-admin", "AKIAQ4BT4DHFBATCH003")
    failed = user("reports-admin", "AKIAQ4BT4DHFBATCH004")
    allow = [
        # The wrong order: deleted, then listed.
        batch_deleted(order, at(4, 40, 0), "cm-media", "198.51.100.45"),
        versions_listed(order, at(4, 40, 5), "cm-media", "198.51.100.45"),
        # Outside the window: 15 minutes apart.
        versions_listed(late, at(5, 0, 0), "cm-logs", "198.51.100.46"),
        batch_deleted(late, at(5, 15, 0), "cm-logs", "198.51.100.46"),
        # Another bucket.
        versions_listed(other, at(5, 30, 0), "cm-assets", "198.51.100.47"),
        batch_deleted(other, at(5, 30, 10), "cm-assets-staging", "198.51.100.47"),
        # Denied.
        versions_listed(failed, at(5, 40, 0), "cm-reports", "198.51.100.48"),
        batch_deleted(failed, at(5, 40, 5), "cm-reports", "198.51.100.48",
                      error=("AccessDenied", "Access Denied")),
    ]
    write("s3/object_versions_batch_deleted.allow.json", allow)
    lister = user("inventory-bot", "AKIAQ4BT4DHFLIST0001")
    write("s3/object_versions_listed.flag.json",
          [versions_listed(lister, at(7, 0), "cm-inventory", "203.0.113.90")])
    write("s3/object_versions_listed.allow.json", [
        versions_listed(lister, at(7, 5), "cm-inventory", "203.0.113.90",
                        error=("AccessDenied", "Access Denied")),
        s3_bucket(lister, at(7, 6), "ListObjects", "cm-inventory", "203.0.113.90",
                  CLI.format("s3.ls"), {"list-type": "2"}),
    ])


# --- Credentials: many secrets, many SecureString parameters.

def secrets():
    ci = session("ci-runner-role", "build-4411", "ASIAQ4BT4DHFCIRUN001", at(6, 0))

    def read(identity, t, secret, ip="198.51.100.71", error=None):
        arn = f"arn:aws:secretsmanager:ap-northeast-1:{ACCOUNT}:secret:{secret}-{alnum(6)}"
        return call(identity, t, "secretsmanager", "GetSecretValue", "ap-northeast-1", ip, STRATUS,
                    {"secretId": arn}, None, error)

    flag = [read(ci, t, f"stratus-red-team-retrieve-secret-{i}")
            for i, t in enumerate(spread(at(6, 1), 20, 40))]
    write("secretsmanager/many_secrets_read.flag.json", flag)
    short = session("ci-runner-role", "build-4412", "ASIAQ4BT4DHFCIRUN002", at(6, 20))
    app = session("order-api-role", "i-0a1b2c3d4e5f60718", "ASIAQ4BT4DHFORDER001", at(6, 0),
                  instance=True)
    apart = session("ci-runner-role", "build-4413", "ASIAQ4BT4DHFCIRUN003", at(6, 40))
    allow = [read(short, t, f"ci/deploy-key-{i}") for i, t in enumerate(spread(at(6, 21), 9, 60))]
    # An application reading its own three secrets, again and again.
    fixed = [f"arn:aws:secretsmanager:ap-northeast-1:{ACCOUNT}:secret:prod/order-api/{n}-Ab12Cd"
             for n in ("db", "stripe", "jwt")]
    allow += [
        call(app, t, "secretsmanager", "GetSecretValue", "ap-northeast-1", "54.150.188.41", BOTO,
             {"secretId": fixed[i % 3]})
        for i, t in enumerate(spread(at(6, 30), 60, 300))
    ]
    allow += [read(apart, t, f"ci/artifact-{i}")
              for i, t in enumerate(spread(at(6, 41), 6, 30) + spread(at(7, 1), 6, 30))]
    write("secretsmanager/many_secrets_read.allow.json", allow)


def parameters():
    op = user("backup-operator", "AKIAQ4BT4DHFSSMOP001")
    names = [f"/stratus-red-team/credentials/param-{i}" for i in range(42)]
    flag = [
        call(op, at(8, 0, 0), "ssm", "DescribeParameters", "ap-northeast-1", "198.51.100.72",
             STRATUS, {"maxResults": 50}),
    ]
    for i, t in enumerate(spread(at(8, 0, 5), 5, 20)):
        batch = names[i * 10:(i + 1) * 10]
        flag.append(call(op, t, "ssm", "GetParameters", "ap-northeast-1", "198.51.100.72", STRATUS,
                         {"names": batch, "withDecryption": True},
                         {"invalidParameters": [], "parameters": [
                             {"name": n, "type": "SecureString", "version": 1} for n in batch]}))
    write("ssm/many_parameters_decrypted.flag.json", flag)
    short = user("deploy-operator", "AKIAQ4BT4DHFSSMOP002")
    plain = user("config-reader", "AKIAQ4BT4DHFSSMOP003")
    app = session("billing-worker-role", "i-0b2c3d4e5f6071829", "ASIAQ4BT4DHFBILL0001", at(8, 0),
                  instance=True)
    allow = [
        call(short, t, "ssm", "GetParameter", "ap-northeast-1", "198.51.100.73", CLI.format(
            "ssm.get-parameter"), {"name": f"/deploy/secret-{i}", "withDecryption": True})
        for i, t in enumerate(spread(at(8, 20), 9, 120))
    ]
    # Thirty names, not decrypted.
    allow.append(call(plain, at(8, 30), "ssm", "GetParameters", "ap-northeast-1", "198.51.100.74",
                      CLI.format("ssm.get-parameters"),
                      {"names": [f"/config/setting-{i}" for i in range(10)],
                       "withDecryption": False}))
    allow.append(call(plain, at(8, 31), "ssm", "GetParametersByPath", "ap-northeast-1",
                      "198.51.100.74", CLI.format("ssm.get-parameters-by-path"),
                      {"path": "/config", "recursive": True, "withDecryption": False}))
    # An application decrypting its own three parameters, again and again.
    allow += [
        call(app, t, "ssm", "GetParameter", "ap-northeast-1", "54.150.188.42", BOTO,
             {"name": f"/app/billing/{('db-password', 'api-key', 'signing-key')[i % 3]}",
              "withDecryption": True})
        for i, t in enumerate(spread(at(8, 40), 45, 300))
    ]
    write("ssm/many_parameters_decrypted.allow.json", allow)


def commands():
    admin = user("ops-admin", "AKIAQ4BT4DHFSSMCMD01")

    def send(identity, t, instances, ip):
        return call(identity, t, "ssm", "SendCommand", "ap-northeast-1", ip, STRATUS,
                    {"instanceIds": instances, "documentName": "AWS-RunShellScript",
                     "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
                     "interactive": False},
                    {"command": {"commandId": uuid(), "documentName": "AWS-RunShellScript",
                                 "instanceIds": instances, "status": "Pending"}},
                    read_only=False)

    def start(identity, t, instance, ip):
        return call(identity, t, "ssm", "StartSession", "ap-northeast-1", ip,
                    CLI.format("ssm.start-session"), {"target": instance},
                    {"sessionId": f"{identity['userName']}-{alnum(17).lower()}",
                     "tokenValue": "Value hidden due to security reasons.",
                     "streamUrl": "wss://ssmmessages.ap-northeast-1.amazonaws.com/v1/data-channel/x"},
                    read_only=False)

    instances = ["i-0a9b8c7d6e5f40312", "i-0b8c7d6e5f4031221", "i-0c7d6e5f403122130"]
    flag = [send(admin, at(9, 0), instances, "198.51.100.75"),
            start(admin, at(9, 4), "i-0d6e5f40312213049", "198.51.100.75")]
    write("ssm/commands_on_many_instances.flag.json", flag)
    two = user("patch-admin", "AKIAQ4BT4DHFSSMCMD02")
    same = user("db-admin", "AKIAQ4BT4DHFSSMCMD03")
    apart = user("web-admin", "AKIAQ4BT4DHFSSMCMD04")
    allow = [
        send(two, at(9, 20), ["i-0e5f4031221304958", "i-0f40312213049586a"], "198.51.100.76"),
        start(same, at(9, 30), "i-0123456789abcdef0", "198.51.100.77"),
        start(same, at(9, 33), "i-0123456789abcdef0", "198.51.100.77"),
        start(same, at(9, 36), "i-0123456789abcdef0", "198.51.100.77"),
        send(apart, at(9, 40), ["i-01a2b3c4d5e6f7081", "i-02b3c4d5e6f708192"], "198.51.100.78"),
        start(apart, at(9, 55), "i-03c4d5e6f708192a3", "198.51.100.78"),
    ]
    write("ssm/commands_on_many_instances.allow.json", allow)


# --- EC2: launches in many regions (seed 004), bursts of GPU and very large instances.

def run_instances(identity, t, region, ip, instance_type, error=None, ua=None):
    request = {
        "instancesSet": {"items": [{"imageId": f"ami-0{alnum(16).lower()}", "minCount": 1,
                                    "maxCount": 1}]},
        "instanceType": instance_type,
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "disableApiStop": False,
        "clientToken": uuid(),
    }
    response = {
        "requestId": uuid(),
        "reservationId": f"r-0{alnum(16).lower()}",
        "ownerId": ACCOUNT,
        "instancesSet": {"items": [{"instanceId": f"i-0{alnum(16).lower()}",
                                    "instanceType": instance_type,
                                    "instanceState": {"code": 0, "name": "pending"}}]},
    }
    return call(identity, t, "ec2", "RunInstances", region, ip, ua or CLI.format(
        "ec2.run-instances"), request, response, error, read_only=False)


def regions():
    leaked = user("deploy-bot", "AKIAQ4BT4DHFLEAKED01")
    flag = [
        run_instances(leaked, at(2, 31), "us-west-2", "198.51.100.23", "c5.4xlarge"),
        run_instances(leaked, at(2, 33), "eu-west-1", "198.51.100.23", "c5.4xlarge",
                      error=("Client.VcpuLimitExceeded",
                             "You have requested more vCPU capacity than your current vCPU limit of 8 allows for the instance bucket that the specified instance type belongs to.")),
        run_instances(leaked, at(2, 35), "ap-southeast-1", "198.51.100.23", "c5.4xlarge"),
        run_instances(leaked, at(2, 37), "sa-east-1", "198.51.100.23", "c5.4xlarge"),
    ]
    write("ec2/instances_in_many_regions.flag.json", flag)
    two = user("ml-engineer", "AKIAQ4BT4DHFREGION02")
    slow = user("dr-drill", "AKIAQ4BT4DHFREGION03")
    one = user("web-deployer", "AKIAQ4BT4DHFREGION04")
    allow = [
        run_instances(two, at(10, 0), "us-east-1", "203.0.113.91", "m5.large"),
        run_instances(two, at(10, 5), "us-west-2", "203.0.113.91", "m5.large"),
        run_instances(slow, at(11, 0), "us-east-1", "203.0.113.92", "t3.medium"),
        run_instances(slow, at(12, 30), "eu-west-1", "203.0.113.92", "t3.medium"),
        run_instances(slow, at(14, 0), "ap-southeast-1", "203.0.113.92", "t3.medium"),
    ]
    allow += [run_instances(one, t, "ap-northeast-1", "203.0.113.93", "t3.small")
              for t in spread(at(10, 20), 5, 600)]
    write("ec2/instances_in_many_regions.allow.json", allow)


def large_instances():
    miner = user("gpu-lab", "AKIAQ4BT4DHFMINER001")
    vcpu = ("Client.VcpuLimitExceeded",
            "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to.")
    flag = [
        run_instances(miner, at(12, 0), "us-east-1", "198.51.100.24", "p3.16xlarge", error=vcpu),
        run_instances(miner, at(12, 3), "us-east-1", "198.51.100.24", "g5.48xlarge", error=vcpu),
        run_instances(miner, at(12, 6), "us-east-1", "198.51.100.24", "g4dn.12xlarge"),
        run_instances(miner, at(12, 9), "us-east-1", "198.51.100.24", "p4d.24xlarge", error=vcpu),
    ]
    write("ec2/large_instance_burst.flag.json", flag)
    two = user("ml-research", "AKIAQ4BT4DHFMINER002")
    small = user("web-scaling", "AKIAQ4BT4DHFMINER003")
    slow = user("render-farm", "AKIAQ4BT4DHFMINER004")
    allow = [
        run_instances(two, at(13, 0), "us-east-1", "203.0.113.94", "g5.2xlarge"),
        run_instances(two, at(13, 20), "us-east-1", "203.0.113.94", "g5.2xlarge"),
    ]
    allow += [run_instances(small, t, "us-east-1", "203.0.113.95", "t3.micro")
              for t in spread(at(13, 30), 5, 300)]
    allow += [run_instances(slow, at(h, 0), "us-east-1", "203.0.113.96", "g4dn.xlarge")
              for h in (14, 15, 16)]
    write("ec2/large_instance_burst.allow.json", allow)


# --- Sign-in failures, AccessDenied across services, discovery from an instance, SES.

# Of the names a password spray tries, those of the account's users (harvested elsewhere);
# CloudTrail hides the names of users that do not exist.
SIGN_IN_USERS = {"admin", "tanaka", "suzuki", "ops", "devops", "backup", "deploy", "security",
                 "finance", "sato"}


def console_login(name, t, ip, ok, mfa="No"):
    if ok or name in SIGN_IN_USERS:
        USERS[name] = stable_id("AIDA", name)
        identity = {
            "type": "IAMUser",
            "principalId": USERS[name],
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "accountId": ACCOUNT,
            "accessKeyId": "",
            "userName": name,
        }
    else:
        identity = {
            "type": "IAMUser",
            "principalId": "",
            "accountId": ACCOUNT,
            "accessKeyId": "",
            "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
        }
    r = call(identity, t, "signin", "ConsoleLogin", "us-east-1", ip, BROWSER,
             None, {"ConsoleLogin": "Success" if ok else "Failure"},
             None if ok else ("Failed authentication", "Failed authentication"), read_only=False)
    if not ok:
        # CloudTrail keeps the response of a failed sign-in.
        r["responseElements"] = {"ConsoleLogin": "Failure"}
        del r["errorCode"]
        r["errorMessage"] = "Failed authentication"
    r["additionalEventData"] = {
        "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
        "MobileVersion": "No",
        "MFAUsed": mfa,
    }
    r["eventType"] = "AwsConsoleSignIn"
    r["readOnly"] = False
    del r["tlsDetails"]
    return r


def login_failures():
    users = ["admin", "administrator", "tanaka", "suzuki", "ops", "devops", "backup", "deploy",
             "ops-lead", "security", "finance", "sato"]
    flag = [console_login(u, t, "192.0.2.200", False)
            for u, t in zip(users, spread(at(15, 0), 12, 150))]
    write("signin/console_login_failure_burst.flag.json", flag)
    allow = [console_login(u, t, "192.0.2.201", False)
             for u, t in zip(users[:9], spread(at(15, 30), 9, 200))]
    allow += [console_login(u, t, "192.0.2.202", False)
              for u, t in zip(users[:6] + users[:6], spread(at(16, 0), 6, 60) +
                              spread(at(16, 20), 6, 60))]
    allow += [console_login(u, t, "203.0.113.24", True, mfa="Yes")
              for u, t in zip(users, spread(at(16, 40), 12, 300))]
    write("signin/console_login_failure_burst.allow.json", allow)


DENIED_CALLS = [
    ("iam", "ListUsers", "us-east-1"),
    ("s3", "ListBuckets", "us-east-1"),
    ("ec2", "DescribeInstances", "ap-northeast-1"),
    ("lambda", "ListFunctions20150331", "ap-northeast-1"),
    ("rds", "DescribeDBInstances", "ap-northeast-1"),
    ("dynamodb", "ListTables", "ap-northeast-1"),
    ("secretsmanager", "ListSecrets", "ap-northeast-1"),
]


def denied(identity, t, service, name, region, ip):
    code = {
        "ec2": ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
        "lambda": ("AccessDenied", "User is not authorized to perform: lambda:ListFunctions"),
        "dynamodb": ("AccessDeniedException", "User is not authorized to perform: dynamodb:ListTables"),
        "secretsmanager": ("AccessDeniedException", "User is not authorized to perform: secretsmanager:ListSecrets"),
    }.get(service, ("AccessDenied", f"User is not authorized to perform: {service}:{name}"))
    return call(identity, t, service, name, region, ip, BOTO, None, None, code)


def access_denied():
    enum = user("legacy-ci", "AKIAQ4BT4DHFENUM0001")
    flag = [denied(enum, t, *c, "198.51.100.66")
            for c, t in zip(DENIED_CALLS, spread(at(17, 0), 7, 50))]
    write("discovery/access_denied_across_services.flag.json", flag)
    short = user("report-bot", "AKIAQ4BT4DHFENUM0002")
    one = user("backup-bot", "AKIAQ4BT4DHFENUM0003")
    apart = user("audit-bot", "AKIAQ4BT4DHFENUM0004")
    allow = [denied(short, t, *c, "198.51.100.67")
             for c, t in zip(DENIED_CALLS[:4], spread(at(17, 20), 4, 60))]
    allow += [denied(one, t, "s3", "ListBuckets", "us-east-1", "198.51.100.68")
              for t in spread(at(17, 30), 30, 120)]
    allow += [denied(apart, t, *c, "198.51.100.69")
              for c, t in zip(DENIED_CALLS[:3] + DENIED_CALLS[3:6],
                              spread(at(17, 40), 3, 30) + spread(at(18, 10), 3, 30))]
    write("discovery/access_denied_across_services.allow.json", allow)


DISCOVERY = [
    ("sts", "GetCallerIdentity", None),
    ("s3", "ListBuckets", {"Host": "s3.ap-northeast-1.amazonaws.com"}),
    ("iam", "GetAccountSummary", None),
    ("iam", "ListRoles", None),
    ("iam", "ListUsers", None),
    ("iam", "GetAccountAuthorizationDetails", None),
    ("ec2", "DescribeSnapshots", {"snapshotSet": {}, "ownersSet": {}, "restorableBySet": {},
                                  "filterSet": {}}),
    ("cloudtrail", "DescribeTrails", None),
    ("guardduty", "ListDetectors", None),
]


def discovery():
    instance = "i-0e1f2a3b4c5d6e7f8"
    role = session("web-frontend-role", instance, "ASIAQ4BT4DHFWEBFE001", at(18, 0), instance=True)
    region = "ap-northeast-1"
    flag = [call(role, t, s, n, "us-east-1" if s == "iam" else region, "54.150.188.90", STRATUS, r)
            for (s, n, r), t in zip(DISCOVERY, spread(at(18, 30), len(DISCOVERY), 60))]
    write("discovery/burst_from_instance.flag.json", flag)
    short = session("search-indexer-role", "i-0f1a2b3c4d5e6f708", "ASIAQ4BT4DHFSEARC001",
                    at(18, 0), instance=True)
    person = session("AWSReservedSSO_AdministratorAccess_9f8e7d6c5b4a3921", "hanako.sato@example.com",
                     "ASIAQ4BT4DHFSSOADM01", at(18, 0))
    busy = session("image-resizer-role", "i-0a2b3c4d5e6f70819", "ASIAQ4BT4DHFIMAGE001", at(18, 0),
                   instance=True)
    allow = [call(short, t, s, n, region, "54.150.188.91", BOTO, r)
             for (s, n, r), t in zip(DISCOVERY[1:5], spread(at(19, 0), 4, 60))]
    allow += [call(person, t, s, n, region, "203.0.113.24", CLI.format("iam.list-users"), r)
              for (s, n, r), t in zip(DISCOVERY, spread(at(19, 10), len(DISCOVERY), 60))]
    allow += [call(busy, t, "s3", "ListBuckets", region, "54.150.188.92", BOTO,
                   {"Host": "s3.ap-northeast-1.amazonaws.com"})
              for t in spread(at(19, 20), 50, 300)]
    write("discovery/burst_from_instance.allow.json", allow)


def ses():
    spam = user("newsletter-app", "AKIAQ4BT4DHFSESENUM1")
    region = "us-east-1"
    calls = [
        ("GetAccountSendingEnabled", None, {"enabled": True}),
        ("GetSendQuota", None, None),
        ("ListIdentities", {"maxItems": 100}, None),
        ("GetIdentityVerificationAttributes", {"identities": ["example.com", "news@example.com"]},
         None),
    ]
    flag = [call(spam, t, "ses", n, region, "198.51.100.88", STRATUS, r, resp)
            for (n, r, resp), t in zip(calls, spread(at(20, 0), 4, 20))]
    write("discovery/ses_enumeration.flag.json", flag)
    mailer = user("mailer", "AKIAQ4BT4DHFSESENUM2")
    slow = user("mail-monitor", "AKIAQ4BT4DHFSESENUM3")
    allow = [call(mailer, t, "ses", n, region, "203.0.113.97", BOTO, r, resp)
             for (n, r, resp), t in zip(calls[1:3], spread(at(20, 20), 2, 30))]
    allow += [call(mailer, t, "ses", "SendEmail", region, "203.0.113.97", BOTO,
                   {"source": "news@example.com"}, {"messageId": alnum(20).lower()},
                   read_only=False)
              for t in spread(at(20, 21), 20, 60)]
    allow += [call(slow, t, "ses", n, region, "203.0.113.98", BOTO, r, resp)
              for (n, r, resp), t in zip(calls[:3], [at(21, 0), at(21, 30), at(22, 0)])]
    write("discovery/ses_enumeration.allow.json", allow)


# --- The leaked-key sequence of seed 004: who am I, then credentials of one's own.

def sequence():
    key = user("ci-deployer", "AKIAQ4BT4DHFLEAKED09")
    ip = "198.51.100.99"
    ua = CLI.format("sts.get-caller-identity")

    def whoami(identity, t, ip):
        return call(identity, t, "sts", "GetCallerIdentity", "ap-northeast-1", ip, ua)

    def iam(identity, t, name, request, ip):
        return call(identity, t, "iam", name, "us-east-1", ip, CLI.format("iam"), request,
                    {"user": {"userName": request.get("userName", "x")}}, read_only=False)

    flag = [
        whoami(key, at(21, 0), ip),
        iam(key, at(21, 12), "CreateUser", {"userName": "support-sync"}, ip),
        iam(key, at(21, 13), "CreateAccessKey", {"userName": "support-sync"}, ip),
        iam(key, at(21, 14), "CreateLoginProfile", {"userName": "support-sync",
                                                    "passwordResetRequired": False}, ip),
    ]
    write("iam/credentials_created_after_identity_check.flag.json", flag)
    order = user("onboarding-bot", "AKIAQ4BT4DHFSEQUEN02")
    late = user("ops-onboarding", "AKIAQ4BT4DHFSEQUEN03")
    first = user("helpdesk", "AKIAQ4BT4DHFSEQUEN04")
    second = user("helpdesk", "AKIAQ4BT4DHFSEQUEN05")
    role = session("admin-role", "taro.suzuki", "ASIAQ4BT4DHFSEQUEN06", at(22, 0))
    allow = [
        # The wrong order.
        iam(order, at(22, 0), "CreateUser", {"userName": "temp-1"}, "203.0.113.31"),
        whoami(order, at(22, 5), "203.0.113.31"),
        # Outside the window: 90 minutes apart.
        whoami(late, at(19, 0), "203.0.113.32"),
        iam(late, at(20, 30), "CreateUser", {"userName": "temp-2"}, "203.0.113.32"),
        # Two keys of one user.
        whoami(first, at(22, 10), "203.0.113.33"),
        iam(second, at(22, 15), "CreateAccessKey", {"userName": "helpdesk"}, "203.0.113.33"),
        # A role's session: a temporary key.
        whoami(role, at(22, 20), "203.0.113.34"),
        iam(role, at(22, 25), "CreateUser", {"userName": "temp-3"}, "203.0.113.34"),
    ]
    write("iam/credentials_created_after_identity_check.allow.json", allow)


# --- Root: grouped per root session and hour.

def root_session():
    identity = {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAQ4BT4DHFROOTCON1",
        "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {},
                           "attributes": {"creationDate": stamp(at(10, 0)),
                                          "mfaAuthenticated": "true"}},
    }
    names = [("iam", "ListUsers"), ("iam", "GetAccountSummary"), ("ec2", "DescribeInstances"),
             ("s3", "ListBuckets"), ("billing", "GetBillingData"), ("iam", "ListRoles"),
             ("ce", "GetCostAndUsage"), ("iam", "GetAccountPasswordPolicy")]
    records = []
    for i, t in enumerate(spread(at(10, 1), 60, 2700)):
        s, n = names[i % len(names)]
        r = call(identity, t, s, n, "us-east-1", "192.0.2.45", BROWSER)
        r["sessionCredentialFromConsole"] = "true"
        records.append(r)
    write("root/root_activity.session.json", records)


def inventory():
    """Adds the fixtures' users and roles to the fixture inventory's IAM listing (once)."""
    path = Path("fixtures/inventory/2024-05-13/iam-authorization-details.json")
    doc = json.loads(path.read_text())
    users = {u["UserName"] for u in doc["UserDetailList"]}
    roles = {r["RoleName"] for r in doc["RoleDetailList"]}
    for name in sorted(USERS):
        if name in users:
            continue
        doc["UserDetailList"].append({
            "Path": "/", "UserName": name, "UserId": USERS[name],
            "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "CreateDate": "2023-09-01T00:00:00Z",
            "UserPolicyList": [], "GroupList": [], "AttachedManagedPolicies": [], "Tags": [],
        })
    for name in sorted(ROLES):
        if name in roles:
            continue
        role_id, instance = ROLES[name]
        service = "ec2.amazonaws.com" if instance else "codebuild.amazonaws.com"
        if name.startswith("AWSReservedSSO_") or name == "admin-role":
            principal = {"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_0123456789abcdef_DO_NOT_DELETE"}
            action = "sts:AssumeRoleWithSAML"
        else:
            principal = {"Service": service}
            action = "sts:AssumeRole"
        path_ = "/aws-reserved/sso.amazonaws.com/ap-northeast-1/" if name.startswith("AWSReservedSSO_") else "/"
        doc["RoleDetailList"].append({
            "Path": path_, "RoleName": name, "RoleId": role_id,
            "Arn": f"arn:aws:iam::{ACCOUNT}:role{path_}{name}", "CreateDate": "2023-09-01T00:00:00Z",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": principal, "Action": action}]},
            "InstanceProfileList": [], "RolePolicyList": [], "AttachedManagedPolicies": [],
            "RoleLastUsed": {}, "Tags": [],
        })
    path.write_text(json.dumps(doc, indent=2))
    print(f"{path}: {len(doc['UserDetailList'])} users, {len(doc['RoleDetailList'])} roles")


if __name__ == "__main__":
    bulk_reads()
    bulk_deletes()
    versions_batch_deleted()
    secrets()
    parameters()
    commands()
    regions()
    large_instances()
    login_failures()
    access_denied()
    discovery()
    ses()
    sequence()
    root_session()
    inventory()
