//! Nothing lost, nothing amplified (issue 21): every input path accounted for, what one event
//! may cost bounded. One test per defect, each with its own generated input.

use crate::cli::trailcedar;
use crate::support::*;
use trailcedar::report::summary::MAX_REASON;
use trailcedar::scan::ScanOptions;

#[test]
fn a_huge_value_of_the_wrong_type_is_not_quoted_whole_in_the_rejection() {
    // serde quotes the string it could not read as a boolean: 4 MB of it.
    let huge = "A".repeat(4 << 20);
    let text = event("").replace(r#""readOnly":true"#, &format!(r#""readOnly":"{huge}""#));
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mistyped.json", text.as_bytes());
    let (_, s) = scan_paths(
        shipped(),
        std::slice::from_ref(&path),
        &ScanOptions::default(),
    );
    assert_eq!(s.events_rejected, 1, "{}", s.render());
    let reason = &s.rejected[0].reason;
    assert!(
        reason.chars().count() <= MAX_REASON + 1,
        "{} characters",
        reason.len()
    );
    assert!(
        reason.starts_with("readOnly: invalid type: string"),
        "{reason}"
    );
    let (code, _, err) = trailcedar(&["scan", path.to_str().unwrap()], None);
    assert_eq!(code, 2);
    assert!(
        err.len() < 4096,
        "{} bytes of stderr for one event",
        err.len()
    );
}
