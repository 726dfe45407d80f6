//! Suppressions: a `permit` with `@suppress` silences the findings of the detections it names on
//! the events it holds for, counted in the summary and the snapshot, tested like a detection.

use crate::authoring::pack_copy;
use crate::cli::trailcedar;
use std::path::Path;

/// A copy of the shipped pack with the example suppression (and its cases) beside the rule it
/// silences.
fn pack_with_suppression() -> tempfile::TempDir {
    let dir = pack_copy();
    for ext in ["cedar", "test.json", "allow.json", "flag.json"] {
        let name = format!("terraform_deployer.{ext}");
        std::fs::copy(
            Path::new("examples/suppressions").join(&name),
            dir.path().join("policies/iam").join(&name),
        )
        .unwrap();
    }
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_suppression_silences_its_detections_findings_and_is_counted() {
    let dir = pack_with_suppression();
    let pack = dir.path().join("policies");
    let iam = pack.join("iam");
    let (code, out, err) = trailcedar(
        &[
            "scan",
            "-p",
            path(&pack),
            "--color",
            "never",
            path(&iam.join("terraform_deployer.allow.json")),
            path(&iam.join("terraform_deployer.flag.json")),
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("and 1 suppression from"), "{err}");
    assert!(err.contains("flagged: 2 event(s), 2 finding(s)"), "{err}");
    assert!(
        err.contains("suppressed: 1 finding(s) by 1 suppression(s)"),
        "{err}"
    );
    assert!(err.contains("terraform-deployer-creates-users"), "{err}");
    assert!(
        !out.contains("svc-reporting"),
        "the silenced finding is not written: {out}"
    );
    assert!(
        out.contains("svc-backdoor") && out.contains("svc-other"),
        "{out}"
    );
    // It is no permit of an allow-list: the pack stays in detection mode.
    assert!(err.contains("(detection mode)"), "{err}");
}

#[test]
fn a_suppression_is_checked_and_tested_like_a_detection() {
    let dir = pack_with_suppression();
    let pack = dir.path().join("policies");
    let (code, _, err) = trailcedar(&["check", "-p", path(&pack), "--strict"], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("and 1 suppression in"), "{err}");
    let (code, out, _) = trailcedar(&["test", "-p", path(&pack), "--filter", "terraform"], None);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok    the deployer's CreateUser from the CI runners is silenced"),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 0 failed\n"), "{out}");

    // A suppression that leaves the wrong events alone fails its own case.
    let file = pack.join("iam/terraform_deployer.cedar");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("198.51.100.0/24", "198.51.100.0/28")).unwrap();
    let (code, out, _) = trailcedar(&["test", "-p", path(&pack), "--filter", "terraform"], None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  the deployer's CreateUser"), "{out}");

    // A misspelt detection, and a forbid, are errors.
    std::fs::write(
        &file,
        text.replace(
            "@suppress(\"iam-user-created\")",
            "@suppress(\"iam-user-create\")",
        ),
    )
    .unwrap();
    let (code, _, err) = trailcedar(&["check", "-p", path(&pack)], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("names `iam-user-create`"), "{err}");
    assert!(err.contains("did you mean `iam-user-created`?"), "{err}");
    std::fs::write(&file, text.replace("permit (", "forbid (")).unwrap();
    let (code, _, err) = trailcedar(&["check", "-p", path(&pack)], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is a forbid"), "{err}");
}

#[test]
fn snapshots_list_what_suppressions_silence() {
    let dir = pack_with_suppression();
    let pack = dir.path().join("policies");
    let snap = dir.path().join("s.snap");
    let (code, _, err) = trailcedar(
        &[
            "snapshot",
            "-p",
            path(&pack),
            "--corpus",
            path(&pack.join("iam/terraform_deployer.allow.json")),
            "--snapshot",
            path(&snap),
            "--update",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&snap).unwrap();
    assert!(
        text.contains("suppressed by terraform-deployer-creates-users: 1 finding(s)"),
        "{text}"
    );
}
