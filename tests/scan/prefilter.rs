//! The prefilter and the index on what conditions require, held to Cedar's own authorizer on
//! generated policies and events: whatever the engine leaves out before Cedar, Cedar would have
//! found neither satisfied nor failing.

use crate::pipeline::assert_agrees_with_cedar;
use crate::support::engine_from;
use serde_json::{Value, json};
use trailcedar::engine::pack::PolicySource;

/// SplitMix64: the same generated policies and events on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "GetObject",
    "PutObject",
    "ConsoleLogin",
    "CreateUser",
    "StopLogging",
    "DescribeInstances",
];

/// A condition that validates in strict mode: each read with its guard.
fn atom(r: &mut Rng) -> String {
    let name = *r.pick(NAMES);
    let other = *r.pick(NAMES);
    let choices = [
        format!(r#"context.eventName == "{name}""#),
        format!(r#"["{name}", "{other}"].contains(context.eventName)"#),
        r#"context.eventName like "*Object""#.to_string(),
        r#"context.eventSource == "s3.amazonaws.com""#.to_string(),
        "context has errorCode".to_string(),
        r#"(context has errorCode && context.errorCode == "AccessDenied")"#.to_string(),
        "(context has readOnly && context.readOnly)".to_string(),
        "context.sourceInAws".to_string(),
        "context has sourceIP".to_string(),
        "context has vpcEndpointId".to_string(),
        "principal is Root".to_string(),
        "principal is AssumedRole".to_string(),
        "principal has instanceId".to_string(),
        r#"(principal has userName && principal.userName == "alice")"#.to_string(),
        r#"(principal has userName && principal.userName like "a*")"#.to_string(),
        "principal.longTermKey".to_string(),
        "principal has inInventory".to_string(),
        r#"principal.hasTag("service")"#.to_string(),
        r#"(resource.hasTag("service") && resource.getTag("service") == "billing")"#.to_string(),
        // Tags of a field with literal keys: strings, a number or a boolean as text, a
        // header in another case, a nested path, a null.
        r#"context.requestParameters.hasTag("bucketName")"#.to_string(),
        r#"(context.requestParameters.hasTag("bucketName") && context.requestParameters.getTag("bucketName") == "b")"#.to_string(),
        r#"(context.requestParameters.hasTag("key") && context.requestParameters.getTag("key") like "k*")"#.to_string(),
        r#"(context.requestParameters.hasTag("n") && ["5", "true"].contains(context.requestParameters.getTag("n")))"#.to_string(),
        r#"(context.requestParameters.hasTag("x-amz-acl") && context.requestParameters.getTag("x-amz-acl") == "public-read")"#.to_string(),
        r#"context.requestParameters.hasTag("filter.name")"#.to_string(),
        r#"context.requestParameters.hasTag("nothing")"#.to_string(),
        // What the prefilter cannot read: it must keep the event.
        r#"resource.type == "AWS::S3::Object""#.to_string(),
        // What may error: an overflow when the request holds a large number.
        r#"(context.requestParameters.numbers.hasTag("n") && context.requestParameters.numbers.getTag("n") + 9223372036854775000 > 0)"#.to_string(),
    ];
    r.pick(&choices).clone()
}

fn condition(r: &mut Rng, depth: usize) -> String {
    if depth == 0 || r.below(3) == 0 {
        return atom(r);
    }
    match r.below(3) {
        0 => format!(
            "({} && {})",
            condition(r, depth - 1),
            condition(r, depth - 1)
        ),
        1 => format!(
            "({} || {})",
            condition(r, depth - 1),
            condition(r, depth - 1)
        ),
        _ => format!("!({})", condition(r, depth - 1)),
    }
}

fn policy(r: &mut Rng, i: usize) -> String {
    let scope = match r.below(5) {
        0 => r#"principal, action == Action::"s3:GetObject", resource"#.to_string(),
        1 => r#"principal is IAMUser, action, resource"#.to_string(),
        _ => "principal, action, resource".to_string(),
    };
    let mut clauses = String::new();
    for _ in 0..1 + r.below(2) {
        let kind = if r.below(3) == 0 { "unless" } else { "when" };
        clauses.push_str(&format!(" {kind} {{ {} }}", condition(r, 3)));
    }
    format!(
        "@id(\"gen-{i}\")\n@title(\"generated {i}\")\n@severity(\"low\")\nforbid ({scope}){clauses};\n"
    )
}

fn event(r: &mut Rng, i: usize) -> Value {
    let name = *r.pick(NAMES);
    let source = match name {
        "GetObject" | "PutObject" => "s3.amazonaws.com",
        "ConsoleLogin" => "signin.amazonaws.com",
        "CreateUser" => "iam.amazonaws.com",
        "StopLogging" => "cloudtrail.amazonaws.com",
        _ => "ec2.amazonaws.com",
    };
    let identity = match r.below(4) {
        0 => {
            json!({"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"})
        }
        1 => {
            json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE1", "arn": "arn:aws:iam::111122223333:user/alice",
                    "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLEALICE0001", "userName": "alice"})
        }
        2 => {
            json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE2", "arn": "arn:aws:iam::111122223333:user/bob",
                    "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLEBOB000001", "userName": "bob"})
        }
        _ => json!({"type": "AssumedRole", "principalId": format!("AROAEXAMPLE:i-0{i:016x}"),
                    "arn": format!("arn:aws:sts::111122223333:assumed-role/app/i-0{i:016x}"), "accountId": "111122223333",
                    "accessKeyId": format!("ASIA{i:016}"),
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/app", "userName": "app"},
                                       "attributes": {"creationDate": "2024-05-01T00:00:00Z", "mfaAuthenticated": "false"}}}),
    };
    let ip = *r.pick(&[
        "54.150.10.20",
        "203.0.113.9",
        "10.1.2.3",
        "AWS Internal",
        "s3.amazonaws.com",
    ]);
    let mut e = json!({
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": format!("2024-05-01T00:{:02}:00Z", i % 60),
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15", "eventID": format!("00000000-0000-0000-0000-{i:012}"),
        "recipientAccountId": "111122223333",
    });
    let o = e.as_object_mut().unwrap();
    if r.below(3) == 0 {
        o.insert(
            "errorCode".into(),
            json!(*r.pick(&["AccessDenied", "ThrottlingException"])),
        );
    }
    if r.below(2) == 0 {
        o.insert("readOnly".into(), json!(r.below(2) == 0));
    }
    if r.below(5) == 0 {
        o.insert("vpcEndpointId".into(), json!("vpce-0a1b2c3d"));
    }
    let params = match r.below(7) {
        0 => json!({"bucketName": "b", "key": "k"}),
        1 => json!({"n": 5}),
        2 => json!({"n": 4000}),
        3 => json!({"bucketName": "c", "key": "x/k", "X-Amz-Acl": "public-read"}),
        4 => json!({"n": true, "filter": {"name": "x"}, "nothing": null}),
        5 => json!({"n": "5", "bucketName": "b", "x-amz-acl": "private"}),
        _ => Value::Null,
    };
    o.insert("requestParameters".into(), params);
    e
}

#[test]
fn the_engine_agrees_with_cedar_on_generated_policies_and_events() {
    let mut r = Rng(0x5eed_1234);
    // Sixty policies that load (the pack rejects a condition that can never hold).
    let mut text = String::new();
    let mut kept = 0;
    let mut each = std::collections::HashMap::new();
    for i in 0.. {
        let p = policy(&mut r, i);
        let one = vec![PolicySource {
            name: "one.cedar".into(),
            text: p.clone().into(),
        }];
        if trailcedar::engine::pack::load(one, "one").is_ok() {
            text.push_str(&p);
            each.insert(format!("gen-{i}"), p);
            kept += 1;
        }
        if kept == 60 {
            break;
        }
    }
    // An error in a condition's first part must be reported whatever its later parts say.
    const OVERFLOW: &str = r#"(context.requestParameters.numbers.hasTag("n") && context.requestParameters.numbers.getTag("n") + 9223372036854775000 > 0)"#;
    for (i, when) in [
        format!(r#"when {{ {OVERFLOW} && context.eventName == "ConsoleLogin" }}"#),
        format!(r#"when {{ !({OVERFLOW} || context.eventName == "GetObject") }}"#),
        format!(r#"when {{ {OVERFLOW} }} when {{ principal is Root }}"#),
        format!(r#"unless {{ {OVERFLOW} || context has errorCode }}"#),
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "@id(\"err-{i}\")\n@title(\"errs\")\n@severity(\"low\")\nforbid (principal, action, resource) {when};\n"
        ));
    }
    let engine = engine_from(vec![PolicySource {
        name: "generated.cedar".into(),
        text: text.into(),
    }]);
    // The generated conditions exercise the prefilter and the index, not only Cedar.
    let analysed: Vec<_> = engine.pack.detections.iter().map(|d| &d.analysis).collect();
    assert!(analysed.iter().filter(|a| !a.prefilter.is_always()).count() > 30);
    assert!(analysed.iter().any(|a| a.index.is_some()));
    let events: Vec<Value> = (0..800).map(|i| event(&mut r, i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generated.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&json!({ "Records": events })).unwrap(),
    )
    .unwrap();
    let checked = assert_agrees_with_cedar(&engine, &[path.to_str().unwrap()]);
    assert_eq!(checked, 800);
    // A policy whose tests are its whole condition, alone in its pack, is decided from them on
    // every event where they tell (no request built): still Cedar's decisions.
    let exact: Vec<&str> = engine
        .pack
        .detections
        .iter()
        .filter(|d| d.decided_by_tests())
        .map(|d| d.id.as_str())
        .collect();
    assert!(exact.len() >= 10, "{} exact of 60", exact.len());
    assert!(
        exact.len() < 60,
        "the formulas that tell nothing are not exact"
    );
    for id in exact {
        let alone = engine_from(vec![PolicySource {
            name: "alone.cedar".into(),
            text: each[id].clone().into(),
        }]);
        assert_eq!(
            assert_agrees_with_cedar(&alone, &[path.to_str().unwrap()]),
            800,
            "{}",
            each[id]
        );
    }
}
