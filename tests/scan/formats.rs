//! SARIF and OCSF output, validated against their official JSON schemas (tests/schemas/, where
//! README.md names their sources), and `--raw`.

use crate::cli::trailcedar;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

fn schema(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("tests/schemas/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn sarif_is_valid_with_a_rule_per_detection_and_a_result_per_finding() {
    // The published schema's pattern for a `language` has a stray `]`, which ECMAScript reads
    // as a literal and the validator refuses as a regex; trailcedar writes no language.
    fn fix_language(v: &mut Value, fixed: &mut usize) {
        match v {
            Value::Object(map) => {
                if map.get("pattern").and_then(Value::as_str)
                    == Some("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$")
                {
                    map.insert("pattern".into(), "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into());
                    *fixed += 1;
                }
                map.values_mut().for_each(|v| fix_language(v, fixed));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| fix_language(v, fixed)),
            _ => {}
        }
    }
    let mut sarif_schema = schema("sarif-schema-2.1.0.json");
    let mut fixed = 0;
    fix_language(&mut sarif_schema, &mut fixed);
    assert_eq!(fixed, 2);
    let validator = jsonschema::options().build(&sarif_schema).unwrap();
    test_sarif_is_valid_with_a_result_per_failing_case(&validator);
    let (code, out, err) = trailcedar(&["scan", "fixtures/archive", "-f", "sarif"], None);
    assert_eq!(code, 1, "{err}");
    let sarif: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(errors(&validator, &sarif), Vec::<String>::new());
    let findings = jsonl(&crate::cli::archive_jsonl().1);

    let run = &sarif["runs"][0];
    let results = run["results"].as_array().unwrap();
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let fired: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["detection"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(rule_ids.len(), fired.len(), "one rule per detection");
    assert_eq!(rule_ids.iter().copied().collect::<BTreeSet<_>>(), fired);
    for (result, finding) in results.iter().zip(&findings) {
        let id = finding["detection"]["id"].as_str().unwrap();
        assert_eq!(result["ruleId"], id);
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], id);
        let level = match finding["detection"]["severity"].as_str().unwrap() {
            "critical" | "high" => "error",
            "medium" => "warning",
            _ => "note",
        };
        assert_eq!(result["level"], level);
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            finding["location"]["file"]
        );
    }
    let acl = rules
        .iter()
        .find(|r| r["id"] == "s3-public-canned-acl")
        .unwrap();
    assert_eq!(acl["defaultConfiguration"]["level"], "error");
    assert_eq!(acl["properties"]["security-severity"], "8.0");
    assert!(acl["help"]["text"].as_str().unwrap().contains("Runbook: "));
    assert!(
        acl["properties"]["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("external/mitre/T1530"))
    );

    // No finding: still a valid log, with no results.
    let (code, out, _) = trailcedar(
        &[
            "scan",
            "fixtures/archive",
            "-f",
            "sarif",
            "--since",
            "2030-01-01",
        ],
        None,
    );
    assert_eq!(code, 0);
    let empty: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(errors(&validator, &empty), Vec::<String>::new());
    assert_eq!(empty["runs"][0]["results"], Value::Array(Vec::new()));
}

/// The Detection Finding class, with every OCSF object it refers to registered by its URI.
fn ocsf_validator() -> jsonschema::Validator {
    let bundle = schema("ocsf-1.1.0-detection_finding.json");
    let resources: Vec<(String, jsonschema::Resource)> = bundle["objects"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(uri, s)| (uri.clone(), jsonschema::Resource::from_contents(s.clone())))
        .collect();
    let registry = jsonschema::Registry::new()
        .extend(resources)
        .unwrap()
        .prepare()
        .unwrap();
    // The registry is needed only while the validator is built.
    jsonschema::options()
        .with_registry(&registry)
        .build(&bundle["class"])
        .unwrap()
}

#[test]
fn ocsf_records_are_valid_detection_findings_one_per_finding() {
    let validator = ocsf_validator();
    let (code, out, err) = trailcedar(&["scan", "fixtures/archive", "-f", "ocsf", "--raw"], None);
    assert_eq!(code, 1, "{err}");
    let records = jsonl(&out);
    let findings = jsonl(&crate::cli::archive_jsonl().1);
    assert_eq!(records.len(), findings.len());
    let mut correlations = 0;
    for (record, finding) in records.iter().zip(&findings) {
        assert_eq!(errors(&validator, record), Vec::<String>::new(), "{record}");
        assert_eq!(record["class_uid"], 2004);
        assert_eq!(record["type_uid"], 200401);
        let e = &finding["event"];
        assert_eq!(
            record["finding_info"]["analytic"]["uid"],
            finding["detection"]["id"]
        );
        assert_eq!(record["cloud"]["region"], e["awsRegion"]);
        assert_eq!(record["cloud"]["account"]["uid"], e["recipientAccountId"]);
        assert_eq!(
            record["evidences"][0]["actor"]["user"]["uid"],
            e["principal"]
        );
        let action = e["action"].as_str().unwrap();
        assert!(action.ends_with(record["api"]["operation"].as_str().unwrap()));
        if finding.get("correlation").is_some() {
            // Over many events: counted and sampled, none carried whole.
            assert!(record.get("raw_data").is_none());
            assert_eq!(record["count"], finding["correlation"]["events"]);
            assert_eq!(
                record["unmapped"]["correlation"]["rule"],
                finding["correlation"]["rule"]
            );
            correlations += 1;
        } else {
            let raw: Value = serde_json::from_str(record["raw_data"].as_str().unwrap()).unwrap();
            assert_eq!(raw["eventID"], e["eventID"]);
        }
    }
    assert!(
        correlations > 0,
        "the sample archive has findings over many events"
    );
    // The schema is strict: a member OCSF does not define, or a required one missing, fails.
    let mut bad = records[0].clone();
    bad["finding_info"]["rule"] = "x".into();
    assert!(!errors(&validator, &bad).is_empty());
    let mut bad = records[0].clone();
    bad.as_object_mut().unwrap().remove("cloud");
    assert!(!errors(&validator, &bad).is_empty());
    let acl = records
        .iter()
        .find(|r| r["finding_info"]["analytic"]["uid"] == "s3-public-canned-acl")
        .unwrap();
    assert_eq!(acl["severity_id"], 4);
    let attack = &acl["finding_info"]["attacks"][0];
    assert_eq!(attack["technique"]["uid"], "T1530");
    assert_eq!(attack["technique"]["name"], "Data from Cloud Storage");
    assert_eq!(attack["tactic"]["uid"], "TA0009", "collection: {attack}");
    assert_eq!(attack["tactic"]["name"], "Collection");
    // Every attack of every record names the tactic its technique serves.
    for r in &records {
        for a in r["finding_info"]["attacks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(
                a["tactic"]["uid"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("TA")),
                "{a}"
            );
        }
    }
    assert_eq!(acl["evidences"][0]["src_endpoint"]["ip"], "203.0.113.24");
    assert!(acl["remediation"]["desc"].as_str().unwrap().len() > 10);
}

#[test]
fn raw_carries_the_event_as_read_on_one_line_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    // Pretty-printed, with a bidirectional override in a value.
    let event =
        crate::support::event(r#""eventSource": "s3.amazonaws.com", "eventName": "PutObject""#)
            .replace(
                "\"eventSource\":\"sts.amazonaws.com\",\"eventName\":\"GetCallerIdentity\",",
                "",
            );
    let mut value: Value = serde_json::from_str(&event).unwrap();
    value["requestParameters"] = serde_json::json!({
        "bucketName": "b", "key": "evil\u{202e}fdp.exe", "x-amz-acl": "public-read"
    });
    let pretty = serde_json::to_string_pretty(&serde_json::json!({ "Records": [value] })).unwrap();
    let path = crate::support::write(dir.path(), "pretty.json", pretty.as_bytes());
    let path = path.to_str().unwrap();
    for format in ["jsonl", "json"] {
        let (code, out, err) = trailcedar(&["scan", path, "-f", format, "--raw"], None);
        assert_eq!(code, 1, "{err}");
        assert!(!out.contains('\u{202e}'), "{out}");
        assert!(out.contains("\\u202e"), "{out}");
        let first = match format {
            "json" => serde_json::from_str::<Value>(&out).unwrap()[0].clone(),
            _ => {
                assert_eq!(out.lines().count(), 1, "one line per finding: {out}");
                jsonl(&out).remove(0)
            }
        };
        assert_eq!(first["raw"], value, "{format}");
    }
    let (code, _, err) = trailcedar(&["scan", path, "--raw"], None);
    assert_eq!(code, 2);
    assert!(err.contains("--raw goes with"), "{err}");
    // Without --raw, no event.
    let (_, out, _) = trailcedar(&["scan", path, "-f", "jsonl"], None);
    let plain: HashMap<String, Value> = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(!plain.contains_key("raw"));
}

/// `trailcedar test --sarif`: a failing case is an error at its line, a todo that passes a note,
/// and passing cases are not results.
fn test_sarif_is_valid_with_a_result_per_failing_case(validator: &jsonschema::Validator) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        "policies/s3/public_canned_acl.cedar",
        dir.path().join("acl.cedar"),
    )
    .unwrap();
    let log = std::fs::canonicalize("fixtures/events/s3/public_canned_acl.flag.json").unwrap();
    let allow = std::fs::canonicalize("fixtures/events/s3/public_canned_acl.allow.json").unwrap();
    let cases = serde_json::json!({ "cases": [
        { "name": "flags as it should", "log": log, "expect": "flag" },
        { "name": "wrongly expected <quiet>", "log": log, "expect": "allow" },
        { "name": "a gap closed", "log": log, "expect": "flag", "todo": "waits for nothing" },
        { "name": "quiet", "log": allow, "expect": "allow" },
    ]});
    std::fs::write(
        dir.path().join("acl.test.json"),
        serde_json::to_string_pretty(&cases).unwrap(),
    )
    .unwrap();
    let out = dir.path().join("test.sarif");
    let (code, stdout, err) = trailcedar(
        &[
            "test",
            "-p",
            dir.path().to_str().unwrap(),
            "--sarif",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(stdout.contains("2 passed, 1 failed"), "{stdout}");
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(errors(validator, &sarif), Vec::<String>::new());
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    let failed = &results[0];
    assert_eq!(failed["level"], "error");
    assert_eq!(failed["ruleId"], "s3-public-canned-acl");
    assert!(
        failed["message"]["text"]
            .as_str()
            .unwrap()
            .contains("wrongly expected <quiet>"),
        "{failed}"
    );
    let location = &failed["locations"][0]["physicalLocation"];
    assert!(
        location["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("acl.test.json")
    );
    // At the line of the case's name in its file.
    let text = std::fs::read_to_string(dir.path().join("acl.test.json")).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("wrongly expected"))
        .unwrap()
        + 1;
    assert!(line > 1);
    assert_eq!(location["region"]["startLine"], line, "{location}");
    assert_eq!(results[1]["level"], "note");
    assert!(
        results[1]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("remove the todo")
    );
}
