//! Snapshots of findings: a rule change shows up as a readable diff of what it flags.

use crate::support::{render, render_summary, scan, shipped};

#[test]
fn fixture_findings() {
    insta::glob!("../../fixtures/events", "**/*.json", |path| {
        let (findings, summary) = scan(shipped(), &[path.to_str().unwrap()]);
        assert!(!summary.has_errors(), "{}", summary.render());
        insta::assert_snapshot!(render(&findings));
    });
}

#[test]
fn sample_archive_findings() {
    let (findings, summary) = scan(shipped(), &["fixtures/archive"]);
    insta::assert_snapshot!(format!(
        "{}\n{}",
        render_summary(&summary),
        render(&findings)
    ));
}
