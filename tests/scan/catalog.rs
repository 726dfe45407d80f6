//! The action catalog: every event name CloudTrail records, and what an unknown one costs.

use crate::cli::trailcedar;
use std::path::Path;

const LAMBDA_PACK: &str = "fixtures/authoring/lambda-permission";
const LAMBDA_EVENTS: [&str; 2] = [
    "fixtures/authoring/lambda-permission/add_permission.flag.json",
    "fixtures/authoring/lambda-permission/add_permission.allow.json",
];

#[test]
fn a_versioned_lambda_name_checks_and_matches() {
    let (code, _, err) = trailcedar(&["check", "--strict", "-p", LAMBDA_PACK], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 warning(s)"), "{err}");
    let (code, out, err) = trailcedar(&["test", "-p", LAMBDA_PACK], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("2 passed, 0 failed\n"), "{out}");
    let (code, out, err) = trailcedar(
        &[
            "scan",
            "-p",
            LAMBDA_PACK,
            "-f",
            "jsonl",
            &format!("{LAMBDA_PACK}/add_permission.flag.json"),
        ],
        None,
    );
    assert_eq!(code, 1, "a finding: {err}");
    let finding: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        finding["event"]["action"], "lambda:AddPermission20150331v2",
        "{out}"
    );
    assert_eq!(finding["detection"]["id"], "lambda-public-invoke", "{out}");
}

/// A pack of one policy naming `action`, with what `check --strict` wants besides.
fn pack_naming(action: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rule.cedar"),
        format!(
            "// test\n@id(\"rule\")\n@title(\"t\")\n@severity(\"low\")\n@mitre(\"T1078\")\n@runbook(\"r\")\nforbid (principal, action == Action::\"{action}\", resource);\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("rule.test.json"), r#"{"cases": []}"#).unwrap();
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_unknown_but_plausible_action_is_a_warning_then_an_error_under_strict() {
    let dir = pack_naming("lambda:AddPermission20991231v9");
    let (code, _, err) = trailcedar(&["check", "-p", path(dir.path())], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("unknown action `lambda:AddPermission20991231v9`"),
        "{err}"
    );
    assert!(err.contains("did you mean `lambda:AddPermission"), "{err}");
    assert!(err.contains("1 warning(s)"), "{err}");
    let (code, _, err) = trailcedar(&["check", "--strict", "-p", path(dir.path())], None);
    assert_eq!(code, 1, "{err}");
    // A scan loads the pack, says so, and runs.
    let (code, _, err) = trailcedar(
        &["scan", "-p", path(dir.path()), "fixtures/events/iam"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("unknown action"), "{err}");
    // The pack's actions.txt makes it known.
    std::fs::write(
        dir.path().join("actions.txt"),
        "lambda:AddPermission20991231v9 # not yet in the catalog\n",
    )
    .unwrap();
    let (code, _, err) = trailcedar(&["check", "--strict", "-p", path(dir.path())], None);
    assert_eq!(code, 0, "{err}");
    // What is not spelt like an event name stays an error.
    let dir = pack_naming("lambda:Add Permission");
    let (code, _, err) = trailcedar(&["check", "-p", path(dir.path())], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not an action"), "{err}");
}

#[test]
fn where_warns_of_unknown_actions_and_reads_the_packs_actions_txt() {
    let condition = "action == Action::\"lambda:AddPermission20991231v9\"";
    let (code, _, err) = trailcedar(
        &[
            "scan",
            LAMBDA_EVENTS[0],
            LAMBDA_EVENTS[1],
            "--where",
            condition,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("unknown action `lambda:AddPermission20991231v9`"),
        "{err}"
    );
    let dir = pack_naming("lambda:AddPermission20150331v2");
    std::fs::write(
        dir.path().join("actions.txt"),
        "lambda:AddPermission20991231v9\n",
    )
    .unwrap();
    let (code, _, err) = trailcedar(
        &[
            "scan",
            LAMBDA_EVENTS[0],
            LAMBDA_EVENTS[1],
            "-p",
            path(dir.path()),
            "--where",
            condition,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("unknown action"), "{err}");
    // The versioned name itself is known, and --where finds its event.
    let (code, out, err) = trailcedar(
        &[
            "scan",
            LAMBDA_EVENTS[0],
            LAMBDA_EVENTS[1],
            "--where",
            "action == Action::\"lambda:AddPermission20150331v2\" && !(context has errorCode)",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(!err.contains("unknown action"), "{err}");
}
