//! Snapshots of findings: a rule change shows up as a readable diff of what it flags.

use crate::support::{render, render_summary, scan, shipped_with_inventory};

/// Every fixture file with the whole pack and the fixture inventory: what each rule, including
/// those its cases do not name, makes of it.
#[test]
fn fixture_findings() {
    insta::glob!("../../fixtures/events", "**/*.json", |path| {
        let (findings, summary) = scan(shipped_with_inventory(), &[path.to_str().unwrap()]);
        assert!(!summary.has_errors(), "{}", summary.render());
        insta::assert_snapshot!(render(&findings));
    });
}

#[test]
fn sample_archive_findings() {
    let (findings, summary) = scan(shipped_with_inventory(), &["fixtures/archive"]);
    insta::assert_snapshot!(format!(
        "{}\n{}",
        render_summary(&summary),
        render(&findings)
    ));
}
