//! Inventory as a user passes it: snapshot times and notes, bad files, conflicts, explain.

use crate::cli::trailcedar;
use std::path::Path;

const FIXTURES: &str = "fixtures/inventory/2024-05-13";

/// A copy of the fixture inventory under `dir/<name>`, without the credential report (which
/// records its own time).
fn copy_inventory(dir: &Path, name: &str) -> String {
    let target = dir.join(name);
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "credential-report.json" {
            std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
        }
    }
    target.to_str().unwrap().to_string()
}

fn findings(jsonl: &str) -> Vec<serde_json::Value> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_fact_taken_after_the_event_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let later = copy_inventory(dir.path(), "2024-05-20");
    let (code, out, err) = trailcedar(
        &[
            "scan",
            "-f",
            "jsonl",
            "--inventory",
            &later,
            "fixtures/events/inventory/user_not_in_inventory.flag.json",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("taken 2024-05-20T00:00:00Z (the date in its path)"),
        "{err}"
    );
    let found = findings(&out);
    assert_eq!(found.len(), 2, "{out}");
    for f in &found {
        let notes = f["notes"].to_string();
        assert!(
            notes.contains("principal: inventory taken 2024-05-20T00:00:00Z, 5 days")
                && notes.contains("after the event"),
            "{notes}"
        );
    }

    // Taken before the events, as in the fixtures: no note.
    let (_, out, _) = trailcedar(
        &[
            "scan",
            "-f",
            "jsonl",
            "--inventory",
            "fixtures/inventory",
            "fixtures/events/inventory/user_not_in_inventory.flag.json",
        ],
        None,
    );
    let found = findings(&out);
    assert_eq!(found.len(), 2, "{out}");
    assert!(found.iter().all(|f| f.get("notes").is_none()), "{out}");
}

#[test]
fn inventory_time_applies_to_files_that_record_none() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("instances.json");
    std::fs::copy(Path::new(FIXTURES).join("instances.json"), &file).unwrap();
    let (code, _, err) = trailcedar(
        &[
            "scan",
            "--inventory",
            file.to_str().unwrap(),
            "--inventory-time",
            "2024-06-01",
            "fixtures/events/inventory/long_term_key_on_instance.flag.json",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "ec2 describe-instances, 3 fact(s), taken 2024-06-01T00:00:00Z (--inventory-time)"
        ),
        "{err}"
    );
    // The credential report keeps its own time whatever the flag says.
    let (_, _, err) = trailcedar(
        &[
            "scan",
            "--inventory",
            &format!("{FIXTURES}/credential-report.json"),
            "--inventory-time",
            "2024-06-01",
            "fixtures/events/inventory/long_term_key_on_instance.flag.json",
        ],
        None,
    );
    assert!(
        err.contains("taken 2024-05-13T00:00:00Z (recorded in the file)"),
        "{err}"
    );
}

#[test]
fn bad_inventory_is_an_error_that_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.json");
    std::fs::write(&unknown, r#"{"Buckets": [{"Name": "x"}]}"#).unwrap();
    let malformed = dir.path().join("instances.json");
    std::fs::write(&malformed, r#"{"Reservations": [{"Instances": "#).unwrap();
    let partial = dir.path().join("nat.json");
    std::fs::write(
        &partial,
        r#"{"NatGateways": [{"NatGatewayAddresses": []}]}"#,
    )
    .unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (path, reason) in [
        (
            &unknown,
            "not an inventory this version reads (keys [\"Buckets\"])",
        ),
        (&malformed, "instances.json: "),
        (&partial, "NatGatewayId"),
        (&empty, "no inventory files"),
    ] {
        let (code, out, err) = trailcedar(
            &[
                "scan",
                "--inventory",
                path.to_str().unwrap(),
                "fixtures/events/inventory/long_term_key_on_instance.flag.json",
            ],
            None,
        );
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty(), "nothing scanned: {out}");
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(reason),
            "{reason}: {err}"
        );
        assert!(err.contains("nothing was scanned"), "{err}");
    }
}

#[test]
fn conflicting_facts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for (name, service) in [("2024-05-01", "web"), ("2024-05-10", "billing")] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("tags.json"),
            format!(
                r#"{{"ResourceTagMappingList": [{{"ResourceARN": "arn:aws:s3:::cm-website-assets", "Tags": [{{"Key": "service", "Value": "{service}"}}]}}]}}"#
            ),
        )
        .unwrap();
    }
    let (_, _, err) = trailcedar(
        &[
            "scan",
            "--inventory",
            dir.path().to_str().unwrap(),
            "fixtures/events/inventory/cross_service_access.flag.json",
        ],
        None,
    );
    assert!(
        err.contains("inventory: conflict: ")
            && err.contains("tags of arn:aws:s3:::cm-website-assets differ"),
        "{err}"
    );
}

#[test]
fn explain_shows_what_the_inventory_says_of_the_source() {
    let (code, out, _) = trailcedar(
        &[
            "explain",
            "--inventory",
            "fixtures/inventory",
            "fixtures/events/inventory/long_term_key_on_instance.flag.json",
            "--record",
            "1",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}");
    for needle in [
        "\"type\": \"Address\"",
        "\"id\": \"54.150.188.89\"",
        "\"type\": \"NatGateway\"",
        "\"id\": \"i-0aa11bb22cc33dd44\"",
        "FLAG   inventory-long-term-key-on-instance",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}

#[test]
fn case_files_take_their_own_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("p");
    std::fs::create_dir(&pol).unwrap();
    std::fs::write(
        pol.join("tagged.cedar"),
        "// test\n@id(\"tagged\")\n@title(\"t\")\n@severity(\"low\")\n@mitre(\"T1078\")\n@runbook(\"r\")\nforbid (principal, action, resource)\nwhen { principal.hasTag(\"service\") };\n",
    )
    .unwrap();
    let here = std::env::current_dir().unwrap();
    let inventory = here.join("fixtures/inventory");
    let log = here.join("fixtures/events/inventory/cross_service_access.flag.json");
    let cases = serde_json::json!({
        "inventory": inventory,
        "cases": [
            {"name": "from the file's inventory", "log": log, "expect": "flag"},
            {"name": "none", "log": log, "inventory": [], "expect": "allow"},
            {"name": "missing", "log": log, "inventory": "nowhere", "expect": "allow"}
        ]
    });
    std::fs::write(pol.join("tagged.test.json"), cases.to_string()).unwrap();
    let (code, out, _) = trailcedar(&["test", "-p", pol.to_str().unwrap()], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ok    from the file's inventory"), "{out}");
    assert!(out.contains("ok    none"), "{out}");
    assert!(out.contains("FAIL  missing"), "{out}");
    assert!(
        out.contains("nowhere"),
        "names the missing inventory: {out}"
    );
    assert!(out.ends_with("2 passed, 1 failed\n"), "{out}");
}
