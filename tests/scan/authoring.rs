//! The authoring loop as a user runs it: check, test, snapshot, explain, schema, --where.

use crate::cli::trailcedar;
use crate::support::{shipped_cases, shipped_size};
use std::path::Path;

/// A copy of the shipped pack and its fixtures in a temporary directory, laid out as in the repo.
pub fn pack_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for top in ["policies", "fixtures/events", "fixtures/inventory"] {
        for entry in walkdir::WalkDir::new(top)
            .into_iter()
            .filter_map(Result::ok)
        {
            let target = dir.path().join(entry.path());
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&target).unwrap();
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    dir
}

/// Breaks the public-ACL rule of a copied pack: it no longer knows `public-read`.
fn forget_public_read(dir: &Path) {
    let file = dir.join("policies/s3/public_canned_acl.cedar");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("\"public-read\", ", "")).unwrap();
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_accepts_the_shipped_pack_and_points_at_typos() {
    let (code, _, err) = trailcedar(&["check", "-p", "policies", "--strict"], None);
    assert_eq!(code, 0, "{err}");
    let (policies, files) = shipped_size();
    assert!(
        err.contains(&format!(
            "{policies} policies in {files} file(s) valid in strict mode, 0 warning(s)"
        )),
        "{err}"
    );

    let dir = pack_copy();
    let file = dir.path().join("policies/s3/public_canned_acl.cedar");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("Action::\"s3:PutObject\"", "Action::\"s3:PutObjetc\""),
    )
    .unwrap();
    let bad = dir.path().join("policies/iam/user_created.cedar");
    let text = std::fs::read_to_string(&bad).unwrap();
    std::fs::write(
        &bad,
        text.replace(
            "unless { context has errorCode }",
            "unless { context has errorCode || context.sourceIPAdress == \"1.2.3.4\" }",
        ),
    )
    .unwrap();
    let (code, _, err) = trailcedar(&["check", "-p", path(&dir.path().join("policies"))], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown action `s3:PutObjetc`"), "{err}");
    assert!(err.contains("did you mean `s3:PutObject`?"), "{err}");
    assert!(
        err.contains("public_canned_acl.cedar:14:"),
        "points at the line: {err}"
    );
    assert!(err.contains("did you mean `sourceIPAddress`?"), "{err}");
    assert!(err.contains("user_created.cedar:"), "{err}");
    assert!(
        err.contains(&format!("1 error(s), 1 warning(s) in {files} file(s)")),
        "one per mistake, not one per principal type; an unknown action is a warning: {err}"
    );
}

/// A pack of one policy file in a temporary directory.
fn one_policy_pack(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rule.cedar"), text).unwrap();
    dir
}

const RULE_HEAD: &str = "// test\n@id(\"rule\")\n@title(\"t\")\n@severity(\"low\")\n@mitre(\"T1078\")\n@runbook(\"r\")\n";

#[test]
fn a_misspelt_has_fails_check_with_a_suggestion() {
    for (condition, wrong, right) in [
        (
            "unless { context has errrorCode }",
            "errrorCode",
            "errorCode",
        ),
        (
            "when { principal has accesKeyId }",
            "accesKeyId",
            "accessKeyId",
        ),
        (
            "when { context has tlsDetails.tlsVersoin }",
            "tlsVersoin",
            "tlsVersion",
        ),
    ] {
        let dir = one_policy_pack(&format!(
            "{RULE_HEAD}forbid (principal, action == Action::\"iam:CreateUser\", resource)\n{condition};\n"
        ));
        for args in [vec!["check"], vec!["check", "--strict"]] {
            let mut args = args.clone();
            args.extend(["-p", path(dir.path())]);
            let (code, _, err) = trailcedar(&args, None);
            assert_eq!(code, 1, "{condition}: {err}");
            assert!(err.contains(&format!("`{wrong}`")), "{err}");
            assert!(err.contains("is always false"), "{err}");
            assert!(err.contains(&format!("did you mean `{right}`?")), "{err}");
            assert!(err.contains("rule.cedar:8:"), "points at the line: {err}");
        }
        // The same check when a scan loads the pack, and in --where.
        let (code, _, err) = trailcedar(
            &["scan", "-p", path(dir.path()), "fixtures/events/iam"],
            None,
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("did you mean `{right}`?")), "{err}");
    }
    let (code, _, err) = trailcedar(
        &[
            "scan",
            "fixtures/events/iam",
            "--where",
            "context has errrorCode",
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean `errorCode`?"), "{err}");
}

#[test]
fn check_reports_what_can_never_fire_and_cedars_warnings() {
    let dir = one_policy_pack(&format!(
        "{RULE_HEAD}forbid (principal, action == Action::\"iam:CreateUser\", resource)\nwhen {{ false }};\n"
    ));
    let (code, _, err) = trailcedar(&["check", "-p", path(dir.path())], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("policy \"rule\" can never fire"), "{err}");
    assert!(err.contains("the literal `false`"), "{err}");

    // A string mixing scripts loads, with Cedar's warning: an error only under --strict.
    let dir = one_policy_pack(&format!(
        "{RULE_HEAD}forbid (principal, action == Action::\"iam:CreateUser\", resource)\nwhen {{ context.eventName == \"curl{}\" }};\n",
        '\u{0441}'
    ));
    std::fs::write(dir.path().join("rule.test.json"), r#"{"cases": []}"#).unwrap();
    let (code, _, err) = trailcedar(&["check", "-p", path(dir.path())], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 warning(s)"), "{err}");
    assert!(err.to_lowercase().contains("script"), "{err}");
    let (code, _, err) = trailcedar(&["check", "--strict", "-p", path(dir.path())], None);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn an_error_hides_only_its_own_artefacts() {
    // Every getTag here is guarded; after the misspelt attribute Cedar would report each as
    // unsafe. Only the misspelling is reported.
    let dir = one_policy_pack(&format!(
        "{RULE_HEAD}forbid (principal, action == Action::\"s3:PutObject\", resource)\nwhen {{ context.requestParameters.hasTag(\"x-amz-acl\") && context.sourceIPAdress == \"1.2.3.4\" && context.requestParameters.getTag(\"x-amz-acl\") == \"public-read\" && context.requestParameters.getTag(\"x-amz-acl\") != \"private\" }};\n"
    ));
    let (code, _, err) = trailcedar(&["check", "-p", path(dir.path())], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1 error(s)"), "{err}");
    assert!(err.contains("did you mean `sourceIPAddress`?"), "{err}");
    assert!(!err.to_lowercase().contains("unsafe"), "{err}");
}

#[test]
fn test_runs_every_case_and_reports_failures() {
    let (code, out, err) = trailcedar(&["test", "-p", "policies"], None);
    assert_eq!(code, 0, "{out}{err}");
    let (counted, todo) = shipped_cases();
    assert!(
        out.ends_with(&format!("{counted} passed, 0 failed\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{todo} todo (known gaps, not counted)")),
        "{out}"
    );
    assert!(
        !err.contains("warning"),
        "every detection has a flagging case and a near miss: {err}"
    );

    let dir = pack_copy();
    forget_public_read(dir.path());
    let junit = dir.path().join("junit.xml");
    let (code, out, _) = trailcedar(
        &[
            "test",
            "-p",
            path(&dir.path().join("policies")),
            "--junit",
            path(&junit),
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  public-read PutObject"), "{out}");
    assert!(out.contains("expected s3-public-canned-acl to flag it, but it was allowed; it read: requestParameters[\"x-amz-acl\"] = \"public-read\""), "{out}");
    assert!(
        out.ends_with(&format!("{} passed, 1 failed\n", counted - 1)),
        "{out}"
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains(&format!(
            "tests=\"{}\" skipped=\"{todo}\" failures=\"1\"",
            counted + todo
        )),
        "{xml}"
    );
}

#[test]
fn cases_can_be_inline_and_check_values() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("p");
    std::fs::create_dir(&pol).unwrap();
    std::fs::write(
        pol.join("acl.cedar"),
        "// test\n@id(\"acl\")\n@title(\"t\")\n@severity(\"low\")\n@mitre(\"T1530\")\n@runbook(\"r\")\nforbid (principal, action == Action::\"s3:PutObject\", resource)\nwhen { context.requestParameters.hasTag(\"x-amz-acl\") && context.requestParameters.getTag(\"x-amz-acl\") like \"public-*\" };\n",
    )
    .unwrap();
    let event = crate::support::event("")
        .replace(
            r#""eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity""#,
            r#""eventSource":"s3.amazonaws.com","eventName":"PutObject""#,
        )
        .replace(
            r#""requestParameters":null"#,
            r#""requestParameters":{"bucketName":"b","key":"k","x-amz-acl":"public-read"}"#,
        );
    let cases = format!(
        r#"{{"cases": [
  {{"name": "right value", "events": [{event}], "expect": "flag", "values": {{"requestParameters[\"x-amz-acl\"]": "public-read"}}}},
  {{"name": "wrong value", "events": [{event}], "expect": "flag", "values": {{"requestParameters[\"x-amz-acl\"]": "private"}}}},
  {{"name": "near miss", "events": [{}], "expect": "allow"}}
]}}"#,
        event.replace("public-read", "private")
    );
    std::fs::write(pol.join("acl.test.json"), cases).unwrap();
    let (code, out, err) = trailcedar(&["test", "-p", path(&pol)], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("ok    right value"), "{out}");
    assert!(out.contains("FAIL  wrong value"), "{out}");
    assert!(
        out.contains(
            "acl read requestParameters[\"x-amz-acl\"] = \"public-read\", expected \"private\""
        ),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 1 failed\n"), "{out}");
}

#[test]
fn snapshots_show_a_rule_change_as_a_diff() {
    let dir = pack_copy();
    let snap = dir.path().join("findings.snap");
    let (code, _, err) = trailcedar(
        &[
            "snapshot",
            "--corpus",
            "fixtures/archive",
            "--snapshot",
            path(&snap),
            "--update",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (findings, _) = crate::support::scan_paths(
        crate::support::shipped(),
        &[std::path::PathBuf::from("fixtures/archive")],
        &trailcedar::scan::ScanOptions::default(),
    );
    assert!(
        err.contains(&format!("{} finding(s)", findings.len())),
        "as many as the scan finds: {err}"
    );
    let (code, _, err) = trailcedar(
        &[
            "snapshot",
            "--corpus",
            "fixtures/archive",
            "--snapshot",
            path(&snap),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("unchanged"), "{err}");

    forget_public_read(dir.path());
    let pack = dir.path().join("policies");
    let (code, out, err) = trailcedar(
        &[
            "snapshot",
            "--corpus",
            "fixtures/archive",
            "--snapshot",
            path(&snap),
            "-p",
            path(&pack),
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains(
            "-s3-public-canned-acl [high] 2024-05-14T06:34:11Z dbf010c4-aabf-5e50-82d6-75e8e46d040c"
        ),
        "{out}"
    );
    assert!(
        out.contains("-  in AWSLogs/123456789012/CloudTrail/ap-northeast-1/2024/05/14/"),
        "locations are relative to the corpus: {out}"
    );
    assert!(!out.contains("+s3-"), "nothing appeared: {out}");
    assert!(err.contains("+0 -12 line(s)"), "{err}");
    let (code, _, err) = trailcedar(
        &[
            "snapshot",
            "--corpus",
            "fixtures/archive",
            "--snapshot",
            path(&dir.path().join("missing.snap")),
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("create it with --update"), "{err}");
}

#[test]
fn explain_shows_the_request_and_each_candidate() {
    let file = "fixtures/events/s3/public_canned_acl.flag.json";
    let (code, out, _) = trailcedar(&["explain", file, "--record", "0"], None);
    assert_eq!(code, 1, "flagged: {out}");
    assert!(out.contains("principal  AssumedRole::\"arn:aws:sts::123456789012:assumed-role/log-uploader/ar-cred-proc\""), "{out}");
    assert!(
        out.contains("\"x-amz-acl\": \"public-read\""),
        "entities as Cedar JSON: {out}"
    );
    let (policies, _) = shipped_size();
    assert!(
        out.contains(&format!("candidates: 9 of {policies} policies")),
        "{out}"
    );
    // A rule about denied calls, scoped to any action, is set aside for a call that succeeded.
    assert!(
        out.contains("its condition requires a call that failed (context has errorCode)"),
        "{out}"
    );
    assert!(out.contains("FLAG   s3-public-canned-acl"), "{out}");
    assert!(out.contains("Deny (s3-public-canned-acl)"), "{out}");
    let (code, json, _) = trailcedar(
        &[
            "explain",
            "--json",
            "fixtures/events/s3/public_canned_acl.allow.json",
            "--record",
            "0",
        ],
        None,
    );
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["flagged"], false);
    assert_eq!(doc["requests"][0]["cedar"]["decision"], "Allow");
    let (code, _, err) = trailcedar(&["explain", file, "--record", "99"], None);
    assert_eq!(code, 2);
    assert!(
        err.contains("has 4 record(s); there is no record 99"),
        "{err}"
    );
}

#[test]
fn schema_lists_every_action() {
    let (code, out, _) = trailcedar(&["schema"], None);
    assert_eq!(code, 0);
    assert!(out.starts_with("// Actions: botocore "), "{}", &out[..200]);
    for needle in [
        "entity AssumedRole in [Role, Account]",
        "\"s3:PutObject\"",
        "\"signin:ConsoleLogin\"",
        "type EventContext",
    ] {
        assert!(out.contains(needle), "{needle}");
    }
    let (code, json, _) = trailcedar(&["schema", "--json"], None);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        doc[""]["actions"]["s3:PutObject"]["appliesTo"]["resourceTypes"][0] == "Resource",
        "{}",
        &json[..300]
    );
}

#[test]
fn where_lists_an_investigation_in_time_order() {
    let (code, out, err) = trailcedar(
        &[
            "scan",
            "fixtures/archive",
            "--where",
            "principal.accessKeyId == \"AKIAQ4BT4DHFLEAKED01\" && !(context has errorCode)",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 68, "{out}");
    let times: Vec<&str> = lines.iter().map(|l| &l[..20]).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "in time order");
    let first = |call: &str| lines.iter().position(|l| l.contains(call));
    assert!(
        first("sts:GetCallerIdentity") < first("iam:CreateAccessKey"),
        "the intruder asks who it is first: {out}"
    );
    assert!(
        out.contains("iam:CreateAccessKey") && out.contains("cloudtrail:StopLogging"),
        "{out}"
    );

    let (code, _, err) = trailcedar(
        &[
            "scan",
            "fixtures/archive",
            "--where",
            "context.sourceIPAdress == \"1.2.3.4\"",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `sourceIPAddress`?"), "{err}");
    assert!(err.contains("--where:"), "{err}");
    // Every event created after a time, in any region, by principals created... as a datetime query.
    let (code, out, _) = trailcedar(
        &[
            "scan",
            "fixtures/archive",
            "-f",
            "jsonl",
            "--where",
            "action == Action::\"ec2:RunInstances\" && context.eventTime >= datetime(\"2024-05-14T02:20:00Z\") && context.eventTime < datetime(\"2024-05-14T06:00:00Z\")",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().count(),
        12,
        "the intruder's six (two refused), the deployer's, the administrators' and Auto Scaling's: {out}"
    );
}

#[test]
fn allow_list_cases_pass_and_fail_with_the_permits_considered() {
    let (code, out, err) = trailcedar(&["test", "-p", "examples/allow-list"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("7 passed, 0 failed\n"), "{out}");
    assert!(
        !err.contains("warning"),
        "each permit has a flag case and a near miss: {err}"
    );
    let (code, _, err) = trailcedar(&["check", "--strict", "-p", "examples/allow-list"], None);
    assert_eq!(code, 0, "{err}");

    // A permit that covers too much: its `flag` case fails, naming it.
    let dir = tempfile::tempdir().unwrap();
    for entry in walkdir::WalkDir::new("examples/allow-list")
        .into_iter()
        .filter_map(Result::ok)
    {
        let target = dir
            .path()
            .join(entry.path().strip_prefix("examples/allow-list").unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    let rule = dir.path().join("ci_deploys.cedar");
    let text = std::fs::read_to_string(&rule).unwrap();
    std::fs::write(
        &rule,
        text.replace(
            "principal.roleName == \"ci-deploy\"",
            "principal.roleName like \"*\"",
        ),
    )
    .unwrap();
    let (code, out, _) = trailcedar(&["test", "-p", path(dir.path())], None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("expected it not allowed, but ci-deploys allowed it (permits considered: ci-deploys); it read: principal.roleName = \"developer\""),
        "{out}"
    );
    // One that covers too little: its `allow` case fails, saying what it read.
    std::fs::write(&rule, text.replace("\"ci-deploy\"", "\"ci-deployer\"")).unwrap();
    let (code, out, _) = trailcedar(&["test", "-p", path(dir.path())], None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("expected ci-deploys to allow it, but no permit covers it (permits considered: ci-deploys); it read: principal.roleName = \"ci-deploy\""),
        "{out}"
    );
    // `not-allowed` names the verdict only where there is one.
    let (code, out, _) = trailcedar(
        &["test", "-p", "fixtures/authoring/lambda-permission"],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let cases = dir.path().join("whoami.test.json");
    std::fs::write(
        &cases,
        r#"{"cases": [{"name": "named", "log": "events/list_users.json", "expect": "flag", "detections": ["not-allowed"]},
                     {"name": "unknown", "log": "events/list_users.json", "expect": "flag", "detections": ["not-alowed"]}]}"#,
    )
    .unwrap();
    let (_, out, _) = trailcedar(&["test", "-p", path(dir.path())], None);
    assert!(out.contains("ok    named"), "{out}");
    assert!(out.contains("unknown detection \"not-alowed\""), "{out}");
}

#[test]
fn explanations_show_what_decided() {
    // A DeleteTrail finding of a rule whose other branches test UpdateTrail's and
    // PutEventSelectors' parameters: only what decided it, which is nothing but the action.
    let (_, out, _) = trailcedar(
        &[
            "scan",
            "-f",
            "jsonl",
            "fixtures/events/cloudtrail/logging_impaired.flag.json",
        ],
        None,
    );
    let delete = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|f| f["event"]["action"] == "cloudtrail:DeleteTrail")
        .expect("a DeleteTrail finding");
    // The rule flags attempts too, so it reads no errorCode: the action alone decided.
    assert_eq!(delete["values"], serde_json::json!([]), "{delete}");

    // explain: the part that held in a policy that fired, the part that was false in one that
    // did not, and the scope that kept a policy out.
    let (code, out, _) = trailcedar(
        &[
            "explain",
            "fixtures/events/root/root_activity.flag.json",
            "--record",
            "0",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}");
    let block = |id: &str| -> String {
        out.lines()
            .skip_while(|l| !l.contains(id))
            .skip(1)
            .take_while(|l| l.starts_with("         "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let root = block("root-account-activity");
    assert!(root.contains("true:  principal is Root"), "{root}");
    assert!(root.contains("false: principal has invokedBy"), "{root}");
    assert!(root.contains("eventType = \"AwsConsoleSignIn\""), "{root}");
    let missing = block("inventory-user-not-in-inventory");
    assert!(
        missing.contains("false: principal has inInventory"),
        "{missing}"
    );
    assert!(
        out.contains("not candidates: their scope names this action, but not a Root principal or not a call that succeeded"),
        "{out}"
    );
    let kept_out = block("inventory-access-key-not-active");
    assert!(
        kept_out.contains("false: principal is IAMUser (principal is Root)"),
        "{kept_out}"
    );
    let (_, json, _) = trailcedar(
        &[
            "explain",
            "--json",
            "fixtures/events/root/root_activity.flag.json",
            "--record",
            "0",
        ],
        None,
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let excluded = doc["excluded"].as_array().unwrap();
    assert!(
        excluded
            .iter()
            .any(|e| e["id"] == "inventory-access-key-not-active"
                && e["decidedBy"][0]["part"] == "principal is IAMUser"
                && e["decidedBy"][0]["value"] == false
                && e["decidedBy"][0]["actual"] == "principal is Root")
    );
}

#[test]
fn json_values_are_json() {
    let (_, out, _) = trailcedar(
        &[
            "scan",
            "-f",
            "jsonl",
            "--inventory",
            "fixtures/inventory",
            "fixtures/archive",
        ],
        None,
    );
    let nat = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|f| f["event"]["eventID"] == "804dca54-550d-0652-a295-4ce89b24b39c")
        .expect("the NAT gateway finding of the README");
    let value = |field: &str| {
        nat["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["field"] == field)
            .cloned()
            .unwrap_or_else(|| panic!("{field} in {nat}"))
    };
    assert_eq!(value("principal.longTermKey")["value"], true);
    assert_eq!(value("principal.longTermKey")["cedar"], "true");
    assert_eq!(
        value("source.instances")["value"],
        serde_json::json!([
            {"type": "Instance", "id": "i-0989653702d4b4d51"},
            {"type": "Instance", "id": "i-0aa11bb22cc33dd44"}
        ])
    );
    assert_eq!(
        value("source.natGateway")["cedar"],
        "NatGateway::\"nat-0a1b2c3d4e5f60718\""
    );
    // A string is the string, an address its text.
    let (_, out, _) = trailcedar(
        &[
            "scan",
            "-f",
            "jsonl",
            "fixtures/events/ec2/instance_credentials_outside_aws.flag.json",
        ],
        None,
    );
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let values = first["values"].as_array().unwrap();
    let ip = values.iter().find(|v| v["field"] == "sourceIP").unwrap();
    assert!(
        ip["value"].as_str().is_some_and(|s| !s.contains("ip(")),
        "{ip}"
    );
    assert!(
        ip["cedar"].as_str().is_some_and(|s| s.starts_with("ip(\"")),
        "{ip}"
    );
}
