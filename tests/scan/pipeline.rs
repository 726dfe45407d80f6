//! The scan pipeline: accounting, time windows, shapes, parallelism, modes and rule errors.

use crate::support::*;
use std::io::Read;
use std::path::PathBuf;
use trailcedar::scan::ScanOptions;

#[test]
fn sample_archive_accounts_for_every_file_and_event() {
    let (findings, s) = scan(shipped_with_inventory(), &["fixtures/archive"]);
    assert!(s.balanced(), "{}", s.render());
    assert!(!s.has_errors(), "{}", s.render());
    assert_eq!(s.files_read as usize, archive_files().len());
    assert_eq!((s.files_skipped_digest, s.files_skipped_insight), (1, 1));
    assert_eq!(s.events_read, s.events_evaluated);
    assert_eq!(s.findings as usize, findings.len());
    // The seed scenarios all show up.
    for id in [
        "s3-public-canned-acl",
        "ec2-instance-credentials-used-outside-aws",
        "iam-access-key-for-another-user",
        "iam-login-profile-changed",
        "iam-user-created",
        "iam-administrator-access-attached",
        "ec2-instance-given-role",
        "root-account-activity",
        "root-access-key-created",
        "cloudtrail-logging-impaired",
        "sts-get-caller-identity-long-term-key",
        "inventory-cross-service-access",
        "inventory-long-term-key-on-instance",
        "inventory-foreign-credentials-on-our-network",
        "inventory-foreign-bucket-write",
        "inventory-access-key-not-active",
        "inventory-user-not-in-inventory",
    ] {
        assert!(
            findings.iter().any(|f| f.detection.id == id),
            "{id} missing"
        );
    }
}

#[test]
fn inventory_detections_are_silent_without_inventory() {
    let (with, _) = scan(shipped_with_inventory(), &["fixtures/archive"]);
    let (without, s) = scan(shipped(), &["fixtures/archive"]);
    assert!(!s.has_errors(), "{}", s.render());
    assert!(
        without
            .iter()
            .all(|f| !f.detection.id.starts_with("inventory-")),
        "{}",
        render(&without)
    );
    // The rest of the pack decides alike, save the instance-credentials rule, which compares
    // the caller's address with the instance's own when it can, and the rules on external
    // accounts, which are those outside the organization when the inventory lists it (else
    // every account but the event's).
    let differs = [
        "ec2-instance-credentials-used-outside-aws",
        "resource-policy-external-account",
        "iam-role-trust-external-account",
        "sharing-with-another-account",
    ];
    let others = |fs: &[trailcedar::report::Finding]| {
        let mut v: Vec<String> = fs
            .iter()
            .filter(|f| !f.detection.id.starts_with("inventory-"))
            .filter(|f| !differs.contains(&f.detection.id.as_str()))
            .map(|f| format!("{} {}", f.detection.id, f.event.event_id))
            .collect();
        v.sort();
        v
    };
    assert_eq!(others(&with), others(&without));
}

#[test]
fn time_window_skips_files_by_path_and_events_by_time() {
    let (all, _) = scan(shipped(), &["fixtures/archive"]);
    let opts = window("2024-05-14T02:00:00Z", "2024-05-14T03:00:00Z");
    let (findings, s) = scan_paths(shipped(), &[PathBuf::from("fixtures/archive")], &opts);
    assert!(s.balanced(), "{}", s.render());
    assert!(s.events_out_of_range > 0);
    assert!(
        findings
            .iter()
            .all(|f| f.event.event_time.starts_with("2024-05-14T02:")),
        "{}",
        render(&findings)
    );
    let expected: Vec<_> = all
        .iter()
        .filter(|f| f.event.event_time.starts_with("2024-05-14T02:"))
        .collect();
    assert_eq!(findings.len(), expected.len());
    assert!(
        findings.len() >= 10,
        "the seed 004 attack happens between 02:00 and 03:00"
    );

    // A window days away from the archive's day skips every delivery file unopened.
    let far = window("2024-06-01", "2024-06-02");
    let (none, s) = scan_paths(shipped(), &[PathBuf::from("fixtures/archive")], &far);
    assert!(none.is_empty());
    assert_eq!(
        (
            s.files_read,
            s.files_skipped_out_of_range as usize,
            s.events_read
        ),
        (0, archive_files().len(), 0)
    );
}

#[test]
fn parallel_output_is_the_sequential_output() {
    let paths = [
        PathBuf::from("fixtures/archive"),
        PathBuf::from("fixtures/events"),
    ];
    let one = ScanOptions {
        window: 1,
        ..ScanOptions::default()
    };
    let many = ScanOptions {
        window: 64,
        ..ScanOptions::default()
    };
    let (a, sa) = scan_paths(shipped(), &paths, &one);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let (b, sb) = pool.install(|| scan_paths(shipped(), &paths, &many));
    assert_eq!(a, b, "same findings in the same order");
    assert_eq!(render_summary(&sa), render_summary(&sb));
}

#[test]
fn every_cloudtrail_shape_gives_the_same_finding() {
    let dir = tempfile::tempdir().unwrap();
    let event = r#"{"eventVersion":"1.09","userIdentity":{"type":"Root","principalId":"123456789012","arn":"arn:aws:iam::123456789012:root","accountId":"123456789012"},"eventTime":"2024-05-14T09:02:41Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.44","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"eventID":"11111111-2222-4333-8444-555555555555","eventType":"AwsConsoleSignIn","recipientAccountId":"123456789012"}"#;
    let quoted = serde_json::to_string(event).unwrap();
    let shapes = [
        ("records.json", format!(r#"{{"Records":[{event}]}}"#)),
        ("array.json", format!("[{event}]")),
        ("single.json", event.to_string()),
        ("lines.jsonl", format!("{event}\n")),
        (
            "lookup.json",
            format!(
                r#"{{"Events":[{{"EventId":"11111111-2222-4333-8444-555555555555","EventName":"ConsoleLogin","CloudTrailEvent":{quoted}}}]}}"#
            ),
        ),
        (
            "bridge.json",
            format!(
                r#"{{"version":"0","id":"x","detail-type":"AWS Console Sign In via CloudTrail","source":"aws.signin","account":"123456789012","time":"2024-05-14T09:02:41Z","region":"us-east-1","resources":[],"detail":{event}}}"#
            ),
        ),
    ];
    for (name, text) in shapes {
        let path = write(dir.path(), name, text.as_bytes());
        let (findings, s) = scan(shipped(), &[path.to_str().unwrap()]);
        assert!(!s.has_errors(), "{name}: {}", s.render());
        let ids: Vec<&str> = findings.iter().map(|f| f.detection.id.as_str()).collect();
        assert_eq!(ids, vec!["root-account-activity"], "{name}");
        assert_eq!(
            findings[0].event.event_id,
            "11111111-2222-4333-8444-555555555555"
        );
    }
}

#[test]
fn insights_records_and_digests_are_counted_not_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let insight = r#"{"Records":[{"eventVersion":"1.08","eventTime":"2024-05-14T02:15:00Z","awsRegion":"us-east-1","eventID":"x","eventType":"AwsCloudTrailInsight","recipientAccountId":"123456789012","insightDetails":{"state":"Start"},"eventCategory":"Insight","eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey"}]}"#;
    let digest =
        r#"{"awsAccountId":"123456789012","digestStartTime":"2024-05-14T00:00:00Z","logFiles":[]}"#;
    let a = write(dir.path(), "insight.json", insight.as_bytes());
    let b = write(dir.path(), "digest.json", digest.as_bytes());
    let (findings, s) = scan(shipped(), &[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(findings.is_empty());
    assert_eq!(
        (
            s.events_read,
            s.events_insight,
            s.events_evaluated,
            s.digest_values
        ),
        (1, 1, 0, 1)
    );
    assert!(s.balanced() && !s.has_errors());
}

#[test]
fn allow_list_mode_flags_what_no_permit_covers() {
    let engine = engine_of(
        r#"
@id("sessions-read") @title("Sessions may read S3")
permit (principal is AssumedRole, action in [Action::"s3:ListBuckets", Action::"s3:GetObject"], resource);
@id("whoami") @title("Anyone may ask who they are")
permit (principal, action == Action::"sts:GetCallerIdentity", resource);
@id("no-root") @title("Root is never expected") @severity("high")
forbid (principal is Root, action, resource);
"#,
    );
    let (findings, s) = scan(
        &engine,
        &[
            "fixtures/events/ec2/instance_credentials_outside_aws.allow.json",
            "fixtures/events/root/root_activity.flag.json",
        ],
    );
    assert!(!s.has_errors(), "{}", s.render());
    let got: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f.detection.id.clone(), f.event.action.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("not-allowed".to_string(), "kms:Decrypt".to_string()),
            ("no-root".to_string(), "signin:ConsoleLogin".to_string()),
            ("no-root".to_string(), "signin:ConsoleLogin".to_string()),
            ("no-root".to_string(), "iam:ListUsers".to_string()),
        ],
        "ListBuckets by sessions is permitted; KMS Decrypt is not; root is forbidden"
    );
    assert!(
        findings[0]
            .values
            .iter()
            .any(|v| v.field == "candidate permits")
    );
}

#[test]
fn rules_decided_once_and_rules_decided_per_event_combine() {
    // `bob-writes` and `alice-writes` read only the principal: decided once per principal and
    // replayed. `public-acl` reads a request parameter by its literal key: decided once per
    // principal and value of that key (events 1 and 2, 3 and 4 differ only there). `late`
    // reads the event's time: evaluated on every event. In allow-list mode an event is not
    // allowed when no permit and no forbid is satisfied, so the replayed half and the
    // evaluated half must be combined request by request.
    let engine = engine_of(
        r#"
@id("bob-writes") @title("Bob may write")
permit (principal is IAMUser, action == Action::"s3:PutObject", resource)
when { principal has userName && principal.userName == "bob" };
@id("alice-writes") @title("Alice writes") @severity("low")
forbid (principal is IAMUser, action == Action::"s3:PutObject", resource)
when { principal has userName && principal.userName == "alice" };
@id("public-acl") @title("Public ACL") @severity("high")
forbid (principal, action == Action::"s3:PutObject", resource)
when { context.requestParameters.hasTag("x-amz-acl") && context.requestParameters.getTag("x-amz-acl") like "public-*" };
@id("late") @title("Written after 2030") @severity("low")
forbid (principal, action == Action::"s3:PutObject", resource)
when { context.eventTime > datetime("2030-01-01T00:00:00Z") };
"#,
    );
    let put = |n: u32, user: &str, acl: &str| {
        let params = match acl {
            "" => r#"{"bucketName":"shared","key":"k"}"#.to_string(),
            acl => format!(r#"{{"bucketName":"shared","key":"k","x-amz-acl":"{acl}"}}"#),
        };
        event("")
            .replace("user/alice", &format!("user/{user}"))
            .replace(r#""userName":"alice""#, &format!(r#""userName":"{user}""#))
            .replace(
                r#""eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity""#,
                r#""eventSource":"s3.amazonaws.com","eventName":"PutObject""#,
            )
            .replace(
                r#""requestParameters":null"#,
                &format!(r#""requestParameters":{params}"#),
            )
            .replace(
                "00000000-0000-4000-8000-000000000001",
                &format!("00000000-0000-4000-8000-00000000000{n}"),
            )
    };
    let records = [
        put(1, "alice", ""),
        put(2, "alice", "public-read"),
        put(3, "bob", "public-read"),
        put(4, "bob", ""),
        put(5, "carol", ""),
        put(6, "carol", ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "puts.json",
        format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes(),
    );
    let view = trailcedar::model::EventView::parse(&records[1]).unwrap();
    let principal = engine.principal(&view).unwrap();
    let set = engine.candidates(&view, &principal);
    let memoized: Vec<&str> = set
        .memoized
        .members
        .iter()
        .map(|&m| engine.pack.detections[m].id.as_str())
        .collect();
    assert_eq!(memoized, ["bob-writes", "alice-writes", "public-acl"]);
    assert_eq!(set.members.len(), 4);
    let (findings, s) = scan(&engine, &[path.to_str().unwrap()]);
    assert!(!s.has_errors(), "{}", s.render());
    let mut got: Vec<String> = findings
        .iter()
        .map(|f| format!("{} {}", &f.event.event_id[35..], f.detection.id))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "1 alice-writes",
            "2 alice-writes",
            "2 public-acl",
            "3 public-acl",
            "5 not-allowed",
            "6 not-allowed",
        ]
    );
    assert_agrees_with_cedar(&engine, &[path.to_str().unwrap()]);
}

#[test]
fn a_rule_that_errs_is_reported_not_allowed() {
    let engine = engine_of(
        r#"@id("overflow") @title("Overflows on every event") @severity("low")
forbid (principal, action == Action::"sts:GetCallerIdentity", resource) when { 9223372036854775807 + (if context.sourceInAws then 1 else 2) > 0 };"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "e.json", event("").as_bytes());
    let (findings, s) = scan(&engine, &[path.to_str().unwrap()]);
    assert!(findings.is_empty());
    assert_eq!(s.rule_errors, 1);
    assert!(s.has_errors());
    let reason = &s.rule_error_examples[0].reason;
    assert!(reason.contains("overflow"), "{reason}");
}

#[test]
fn sample_archive_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let written =
        crate::corpus::write_sample_archive(dir.path(), std::path::Path::new("fixtures/events"))
            .unwrap();
    let gunzip = |p: &std::path::Path| {
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    for p in &written {
        let rel = p.strip_prefix(dir.path()).unwrap();
        let shipped = PathBuf::from("fixtures/archive").join(rel);
        assert!(
            shipped.exists(),
            "{} is missing: run `cargo run --example sample_archive`",
            shipped.display()
        );
        assert_eq!(
            gunzip(p),
            gunzip(&shipped),
            "{} is stale: run `cargo run --example sample_archive`",
            shipped.display()
        );
    }
    let count = walkdir::WalkDir::new("fixtures/archive")
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(
        count,
        written.len(),
        "fixtures/archive holds files the generator does not write"
    );
}

/// The engine evaluates only the candidate policies, on requests built with only what they
/// read; Cedar's own authorizer, on full requests with the whole pack, must decide the same.
pub fn assert_agrees_with_cedar(engine: &trailcedar::engine::Engine, paths: &[&str]) -> usize {
    use std::collections::BTreeSet;
    use trailcedar::decode;
    use trailcedar::model::EventView;
    let inputs = trailcedar::source::resolve(
        &paths.iter().map(PathBuf::from).collect::<Vec<_>>(),
        &Default::default(),
    );
    let mut checked = 0;
    for input in &inputs.inputs {
        let bytes = decode::read_input(input, 1 << 30).unwrap();
        let text = decode::as_text(&bytes).unwrap();
        let mut evaluator = engine.evaluator();
        decode::for_each_record(text, 0, &mut |r| {
            let Ok(view) = r.data.into_event().and_then(EventView::new) else {
                return;
            };
            let verdict = evaluator.evaluate(&view).unwrap();
            let ours: BTreeSet<String> = verdict
                .hits
                .iter()
                .map(|h| engine.pack.detections[h.detection].id.clone())
                .collect();
            let our_errors: BTreeSet<String> =
                verdict.errors.iter().map(|e| e.policy_id.clone()).collect();
            let principal = verdict.principal(engine, &view).unwrap();
            let responses = engine.cedar_responses(&view, &principal).unwrap();
            let mut theirs = BTreeSet::new();
            let mut their_errors = BTreeSet::new();
            let mut not_allowed = false;
            // Per resource, the pack's response, then its `@each` policies' on each element.
            let all = responses.iter().flat_map(|(_, r)| r.iter().enumerate());
            for (position, response) in all {
                let forbids: Vec<String> = response
                    .diagnostics()
                    .reason()
                    .map(|id| id.to_string())
                    .filter(|id| {
                        engine
                            .pack
                            .detections
                            .iter()
                            .any(|d| &d.id == id && d.effect == cedar_policy::Effect::Forbid)
                    })
                    .collect();
                // An element's response is of the `@each` policies and the baseline only.
                not_allowed |= position == 0
                    && response.decision() == cedar_policy::Decision::Deny
                    && forbids.is_empty();
                theirs.extend(forbids);
                for e in response.diagnostics().errors() {
                    let cedar_policy::AuthorizationError::PolicyEvaluationError(err) = e;
                    their_errors.insert(err.policy_id().to_string());
                }
            }
            let id = view.event_id().to_string();
            assert_eq!(
                ours,
                theirs,
                "detections on {id} in {}",
                input.display_name()
            );
            assert_eq!(verdict.not_allowed, not_allowed, "not-allowed on {id}");
            assert_eq!(our_errors, their_errors, "errors on {id}");
            checked += 1;
        })
        .unwrap();
    }
    checked
}

#[test]
fn decisions_agree_with_cedars_authorizer() {
    let n = assert_agrees_with_cedar(shipped(), &["fixtures/events", "fixtures/archive"]);
    assert!(n > 1300, "{n} events checked");
    // With inventory, resources read only by their tags are decided through stand-ins.
    let n = assert_agrees_with_cedar(
        shipped_with_inventory(),
        &["fixtures/events", "fixtures/archive"],
    );
    assert!(n > 1300, "{n} events checked with inventory");
    let allow_list = engine_of(
        r#"
@id("sessions-read") @title("Sessions may read") permit (principal is AssumedRole, action, resource) when { context has readOnly && context.readOnly };
@id("services") @title("Services") permit (principal is AWSService, action, resource);
@id("buckets") @title("Own buckets") permit (principal, action in Action::"s3", resource in Resource::"arn:aws:s3:::cm-app-logs");
@id("no-public") @title("No public ACL") @severity("high") forbid (principal, action == Action::"s3:PutObject", resource)
  when { context.requestParameters.hasTag("x-amz-acl") && context.requestParameters.getTag("x-amz-acl") like "public-*" };
"#,
    );
    assert_agrees_with_cedar(&allow_list, &["fixtures/events", "fixtures/archive"]);
}

#[test]
fn resources_named_for_their_attributes_are_the_modelled_ones() {
    // Where policies read resources only by attributes and tags, the engine names them with
    // what their attributes are made of instead of modelling them: the same resources, in the
    // same order, with the same attribute values, on every fixture event and the sample
    // archive, with the fixture inventory (accounts in and out of the organization).
    use trailcedar::decode;
    use trailcedar::model::EventView;
    use trailcedar::model::resource::{resource_attrs, resources_of};
    let engine = shipped_with_inventory();
    let inv = engine.inventory();
    let owner = |account: &str| {
        event(&format!(
            r#""resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::shared/k"}},{{"accountId":"{account}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::shared"}}]"#
        ))
    };
    let lone_object =
        event(r#""resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::shared/k"}]"#);
    let dir = tempfile::tempdir().unwrap();
    let crafted = write(
        dir.path(),
        "crafted.json",
        format!(
            r#"{{"Records":[{},{},{}]}}"#,
            owner("444455556666"),
            owner(""),
            lone_object
        )
        .as_bytes(),
    );
    let paths = [
        PathBuf::from("fixtures/events"),
        PathBuf::from("fixtures/archive"),
        crafted,
    ];
    let inputs = trailcedar::source::resolve(&paths, &Default::default());
    let mut checked = 0;
    for input in &inputs.inputs {
        let bytes = decode::read_input(input, 1 << 30).unwrap();
        let text = decode::as_text(&bytes).unwrap();
        decode::for_each_record(text, 0, &mut |r| {
            let Ok(view) = r.data.into_event().and_then(EventView::new) else {
                return;
            };
            let principal = engine.principal(&view).unwrap();
            let Ok(models) = resources_of(&view, &principal) else {
                return;
            };
            let named = resource_attrs(&view, &principal).unwrap();
            let render =
                |key: String, values: Vec<(&str, trailcedar::model::resource::AttrValue)>| {
                    format!("{key} {values:?}")
                };
            let theirs: Vec<String> = models
                .iter()
                .map(|m| render(m.key().uid().to_string(), m.attr_values(inv, true)))
                .collect();
            let ours: Vec<String> = named
                .iter()
                .map(|n| render(n.key.uid().to_string(), n.attrs().values(&n.key, inv, true)))
                .collect();
            assert_eq!(ours, theirs, "{}", view.event_id());
            checked += 1;
        })
        .unwrap();
    }
    assert!(checked > 1300, "{checked} events checked");
}

#[test]
fn an_error_names_the_resource_not_its_stand_in() {
    // The policy reads the resource only by a tag: the engine decides on a stand-in with just
    // that tag, but an error must still name the object the event acted on. (Only a query
    // loaded leniently may read a tag without `hasTag`.)
    use trailcedar::engine::pack::{self, LoadOptions, PolicySource};
    let source = PolicySource {
        name: "query.cedar".into(),
        text: r#"@id("billing-only") @title("Billing's resources") @severity("low")
forbid (principal, action, resource) when { resource.getTag("service") == "billing" };"#
            .into(),
    };
    let options = LoadOptions {
        lenient_optional: true,
        ..Default::default()
    };
    let pack = pack::load_with(vec![source], "test", options).unwrap();
    let engine =
        trailcedar::engine::Engine::new(pack, trailcedar::model::aws_ranges::AwsRanges::embedded())
            .unwrap();
    let json = event(r#""resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::shared/k"}]"#);
    let view = trailcedar::model::EventView::parse(&json).unwrap();
    let mut evaluator = engine.evaluator();
    let verdict = evaluator.evaluate(&view).unwrap();
    assert!(verdict.hits.is_empty());
    let message = &verdict.errors[0].message;
    assert!(
        message.contains("arn:aws:s3:::shared/k") && !message.contains("stand-in"),
        "{message}"
    );
}

#[test]
fn caches_never_change_a_decision() {
    // The same principal reads the same bucket twice; the owners differ. Each event alone and
    // both in one file must be decided alike.
    let engine = engine_of(
        r#"@id("foreign-bucket") @title("Bucket of another account") @severity("medium")
forbid (principal, action == Action::"s3:GetObject", resource is Resource)
when { resource.type == "AWS::S3::Bucket" && resource has accountId && principal has accountId && resource.accountId != principal.accountId };"#,
    );
    let get = |owner: &str, id: &str| {
        event("")
            .replace(r#""eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity""#, r#""eventSource":"s3.amazonaws.com","eventName":"GetObject""#)
            .replace("00000000-0000-4000-8000-000000000001", id)
            .replace(r#""requestParameters":null"#, &format!(
                r#""requestParameters":{{"bucketName":"shared","key":"k"}},"resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::shared/k"}},{{"accountId":"{owner}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::shared"}}]"#
            ))
    };
    let ours = get("123456789012", "00000000-0000-4000-8000-00000000000a");
    let theirs = get("444455556666", "00000000-0000-4000-8000-00000000000b");
    let dir = tempfile::tempdir().unwrap();
    let both = write(
        dir.path(),
        "both.json",
        format!(r#"{{"Records":[{ours},{theirs}]}}"#).as_bytes(),
    );
    let alone = write(
        dir.path(),
        "alone.json",
        format!(r#"{{"Records":[{theirs}]}}"#).as_bytes(),
    );
    let (a, _) = scan(&engine, &[both.to_str().unwrap()]);
    let (b, _) = scan(&engine, &[alone.to_str().unwrap()]);
    assert_eq!(a.len(), 1, "{}", render(&a));
    assert_eq!(a[0].event.event_id, "00000000-0000-4000-8000-00000000000b");
    assert_eq!(b.len(), 1);
    // And the object is in the bucket owner's account, as the bucket entry says.
    let object_owner = engine_of(
        r#"@id("object-in-account") @title("Object of account 444455556666") @severity("low")
forbid (principal, action == Action::"s3:GetObject", resource in Account::"444455556666")
when { resource.type == "AWS::S3::Object" };"#,
    );
    let (c, _) = scan(&object_owner, &[both.to_str().unwrap()]);
    assert_eq!(c.len(), 1, "{}", render(&c));
}

#[test]
fn caches_a_thread_keeps_belong_to_their_engine() {
    // An evaluator leaves its caches to the next one of the same engine on its thread. One
    // thread, the same events, evaluators of three engines in turn: each decides as if alone.
    use std::collections::BTreeSet;
    use trailcedar::model::EventView;
    let text = std::fs::read_to_string("fixtures/events/inventory/cross_service_access.flag.json")
        .unwrap();
    let hits = |engine: &trailcedar::engine::Engine| {
        let mut evaluator = engine.evaluator();
        let mut ids = BTreeSet::new();
        trailcedar::decode::for_each_record(&text, 0, &mut |r| {
            let view = r.data.into_event().and_then(EventView::new).unwrap();
            for h in evaluator.evaluate(&view).unwrap().hits {
                ids.insert(engine.pack.detections[h.detection].id.clone());
            }
        })
        .unwrap();
        ids
    };
    let inventory =
        trailcedar::inventory::Inventory::load(&[PathBuf::from("fixtures/inventory")], None)
            .unwrap();
    let without = shipped();
    let with = without
        .clone()
        .with_inventory(std::sync::Arc::new(inventory));
    let first = hits(without);
    assert!(
        !first.contains("inventory-cross-service-access"),
        "{first:?}"
    );
    let joined = hits(&with);
    assert!(
        joined.contains("inventory-cross-service-access"),
        "{joined:?}"
    );
    assert_eq!(hits(without), first);
    assert_eq!(hits(&with), joined);
}

#[test]
fn ipv4_mapped_addresses_are_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let text = event("").replace("198.51.100.23", "::ffff:198.51.100.23");
    let path = write(dir.path(), "mapped.json", text.as_bytes());
    let engine = engine_of(
        r#"@id("doc-range") @title("From the documentation range") @severity("low")
forbid (principal, action, resource) when { context has sourceIP && context.sourceIP.isInRange(ip("198.51.100.0/24")) };"#,
    );
    let (findings, s) = scan(&engine, &[path.to_str().unwrap()]);
    assert!(!s.has_errors(), "{}", s.render());
    assert_eq!(findings.len(), 1);
}
