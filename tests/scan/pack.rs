//! The shipped pack: every detection has a flagging case and a near miss, and all pass; the
//! README's coverage tables are the pack's.

use crate::support::{engine_from, shipped};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use trailcedar::cases::{self, Expect, Outcome};
use trailcedar::engine::pack;

fn policy_files() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new("policies")
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_shipped_case_passes() {
    let engine = shipped();
    let mut failures = Vec::new();
    let mut passed = 0;
    for policy in policy_files() {
        let own: Vec<String> = engine
            .pack
            .detections
            .iter()
            .filter(|d| Path::new(&d.file) == policy)
            .map(|d| d.id.clone())
            .collect();
        assert!(!own.is_empty(), "{} defines no detection", policy.display());
        let case_file = cases::case_file_for(&policy);
        let results = cases::run_file(engine, &case_file, &own).unwrap_or_else(|e| panic!("{e}"));
        let expects: BTreeSet<_> = results.iter().map(|r| format!("{:?}", r.expect)).collect();
        assert!(
            results.iter().any(|r| r.expect == Expect::Flag)
                && results.iter().any(|r| r.expect == Expect::Allow),
            "{} needs a flagging case and a near miss, has {expects:?}",
            case_file.display()
        );
        for r in results {
            match r.outcome {
                Outcome::Pass => passed += 1,
                Outcome::Fail(msgs) => failures.push(format!(
                    "{} / {}:\n    {}",
                    r.file.display(),
                    r.name,
                    msgs.join("\n    ")
                )),
                Outcome::Todo { .. } => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} passed, {} failed:\n{}",
        passed,
        failures.len(),
        failures.join("\n")
    );
    assert!(passed >= 140, "{passed} cases");
}

#[test]
fn a_broken_detection_fails_its_cases() {
    // The same pack with the public-ACL rule looking at the wrong header must fail its flag case.
    let mut sources = pack::sources_from_dir(Path::new("policies")).unwrap();
    for s in &mut sources {
        if s.name.ends_with("public_canned_acl.cedar") {
            s.text = s.text.replace("\"public-read\", ", "").into();
        }
    }
    let engine = engine_from(sources);
    let own = vec!["s3-public-canned-acl".to_string()];
    let results = cases::run_file(
        &engine,
        Path::new("policies/s3/public_canned_acl.test.json"),
        &own,
    )
    .unwrap();
    let flag = results.iter().find(|r| r.expect == Expect::Flag).unwrap();
    match &flag.outcome {
        Outcome::Fail(msgs) => {
            assert_eq!(
                msgs.len(),
                2,
                "PutObject and CopyObject used public-read: {msgs:?}"
            );
            assert!(
                msgs[0].contains("expected s3-public-canned-acl to flag it"),
                "{msgs:?}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn embedded_pack_is_the_policies_directory() {
    let embedded = pack::load(pack::embedded_sources(), "embedded").unwrap();
    let ids = |p: &pack::Pack| {
        p.detections
            .iter()
            .map(|d| d.id.clone())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(ids(&embedded), ids(&shipped().pack));
    assert_eq!(embedded.mode, pack::Mode::Detection);
}

/// A scan skips validating the embedded pack (`LoadOptions::prevalidated`): it must validate,
/// strictly, without a warning.
#[test]
fn embedded_pack_validates_strictly() {
    let embedded = pack::load(pack::embedded_sources(), "embedded").unwrap();
    assert!(embedded.warnings.is_empty(), "{:?}", embedded.warnings);
    let skipped = pack::load_with(
        pack::embedded_sources(),
        "embedded",
        pack::LoadOptions {
            prevalidated: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(skipped.detections.len(), embedded.detections.len());
    // What validation finds in a pack that is not embedded is still found.
    let wrong = pack::PolicySource {
        name: "wrong.cedar".into(),
        text: "@id(\"w\") @title(\"t\") @severity(\"low\") forbid (principal, action, resource) when { context.eventName == 3 };".into(),
    };
    assert!(pack::load(vec![wrong], "wrong").is_err());
}

#[test]
fn every_detection_is_annotated() {
    for d in &shipped().pack.detections {
        assert!(d.severity.is_some(), "{}", d.id);
        assert!(
            d.mitre.as_deref().is_some_and(|m| m.starts_with('T')),
            "{} needs @mitre",
            d.id
        );
        // A building block is not reported: the correlations it feeds carry the runbook.
        assert!(
            d.runbook.is_some() || d.building_block,
            "{} needs @runbook",
            d.id
        );
        let text = std::fs::read_to_string(&d.file).unwrap();
        assert!(
            text.starts_with("//"),
            "{} starts with a doc comment",
            d.file
        );
    }
}

#[test]
fn model_reference_documents_every_attribute() {
    use trailcedar::model::{context, principal, resource};
    let doc = std::fs::read_to_string("docs/model.md").unwrap();
    let names = context::ATTRS
        .iter()
        .map(|a| a.name)
        .chain(
            principal::ATTRIBUTES
                .iter()
                .map(|(n, _)| n.trim_end_matches('?')),
        )
        .chain(
            resource::ATTRIBUTES
                .iter()
                .map(|(n, _)| n.trim_end_matches('?')),
        )
        .chain(
            trailcedar::model::PrincipalKind::ALL
                .iter()
                .map(|k| k.type_name()),
        )
        .chain(
            principal::ROLE_ATTRIBUTES
                .iter()
                .map(|(n, _)| n.trim_end_matches('?')),
        )
        .chain(trailcedar::model::facts::ENTITY_DECLS.iter().flat_map(|d| {
            std::iter::once(d.name).chain(d.attrs.iter().map(|(n, _)| n.trim_end_matches('?')))
        }))
        // The typed views, elements, policy documents, sharing and copies.
        .chain(
            trailcedar::model::typed::View::ALL
                .iter()
                .flat_map(|v| [v.attr(), v.type_name()]),
        )
        .chain(
            trailcedar::model::typed::OWN_ATTRIBUTES
                .iter()
                .map(|(n, _)| *n),
        )
        .chain(
            trailcedar::model::element::ATTRIBUTES
                .iter()
                .map(|(n, _)| *n),
        )
        .chain(
            trailcedar::model::document::ATTRIBUTES
                .iter()
                .map(|(n, _)| *n),
        )
        .chain(
            trailcedar::model::sharing::ATTRIBUTES
                .iter()
                .map(|(n, _)| *n),
        )
        .chain(
            trailcedar::model::copy::ATTRIBUTES
                .iter()
                .map(|(n, _)| n.trim_end_matches('?')),
        )
        .chain(["Element", "PolicyDocument", "Sharing", "Copy", "@each"]);
    for name in names {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/model.md does not document `{name}`"
        );
    }
}

const README_BEGIN: &str = "<!-- BEGIN trailcedar list --format markdown -->\n";
const README_END: &str = "<!-- END trailcedar list --format markdown -->\n";

/// The README's coverage tables are `trailcedar list --format markdown` of the embedded pack;
/// `TRAILCEDAR_UPDATE_README=1` rewrites them.
#[test]
fn readme_coverage_is_generated_from_the_pack() {
    use trailcedar::cli::list;
    let embedded = pack::load(pack::embedded_sources(), "embedded").unwrap();
    let generated = list::markdown(&list::entries(&embedded));
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme
        .find(README_BEGIN)
        .expect("README has the BEGIN marker")
        + README_BEGIN.len();
    let end = readme[start..]
        .find(README_END)
        .expect("README has the END marker")
        + start;
    let current = &readme[start..end];
    if current == generated {
        return;
    }
    if std::env::var_os("TRAILCEDAR_UPDATE_README").is_some() {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write("README.md", updated).unwrap();
        return;
    }
    let diff = similar::TextDiff::from_lines(current, generated.as_str())
        .unified_diff()
        .header("README.md", "trailcedar list --format markdown")
        .to_string();
    panic!(
        "the README's coverage tables differ from the pack's; regenerate them with \
         TRAILCEDAR_UPDATE_README=1 cargo test readme\n{diff}"
    );
}

#[test]
fn every_technique_has_a_tactic_and_every_stratus_id_a_tactic_of_its_own() {
    use trailcedar::cli::list;
    for e in list::entries(&shipped().pack) {
        for t in &e.techniques {
            assert_ne!(
                t.tactic, "unknown",
                "{}: add {} to list::TECHNIQUES",
                e.id, t.id
            );
        }
        for s in &e.stratus {
            let tactic = s.strip_prefix("aws.").and_then(|r| r.split_once('.'));
            assert!(
                tactic.is_some_and(|(t, name)| {
                    list::TACTICS.iter().any(|(id, _)| *id == t) && !name.is_empty()
                }),
                "{}: {s} is not a Stratus Red Team AWS technique id",
                e.id
            );
        }
        for c in &e.cis {
            assert!(
                list::CIS_CONTROLS.iter().any(|(id, _)| id == c),
                "{}: CIS control {c}",
                e.id
            );
        }
    }
}

#[test]
fn every_cis_monitoring_control_has_a_detection() {
    use trailcedar::cli::list;
    let entries = list::entries(&shipped().pack);
    for (control, name) in list::CIS_CONTROLS {
        assert!(
            entries.iter().any(|e| e.cis.iter().any(|c| c == control)),
            "CIS {control} {name} has no detection"
        );
    }
}

#[test]
fn the_pack_adds_the_event_names_the_catalog_lacks() {
    // Lambda's versioned event name is in the pack's actions.txt, embedded with the policies.
    let embedded = pack::embedded_sources();
    assert!(
        embedded.iter().any(|s| s.name.ends_with("actions.txt")
            && s.text.contains("lambda:AddPermission20150331v2")),
        "policies/actions.txt is embedded"
    );
    assert!(
        shipped()
            .pack
            .action_ids()
            .contains("lambda:AddPermission20150331v2")
    );
}
