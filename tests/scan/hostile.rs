//! Hostile input: log content and file names are attacker-controlled.

use crate::cli::trailcedar;
use crate::support::*;
use std::io::Write;
use std::path::PathBuf;
use trailcedar::scan::ScanOptions;

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn compression_bombs_are_bounded_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = gz(&vec![b' '; 8 << 20]);
    assert!(bomb.len() < 256 << 10);
    let path = write(dir.path(), "bomb.json.gz", &bomb);
    let opts = ScanOptions {
        max_file_size: 1 << 20,
        ..ScanOptions::default()
    };
    let (_, s) = scan_paths(shipped(), &[path], &opts);
    assert_eq!(s.unreadable.len(), 1);
    assert!(
        s.unreadable[0]
            .reason
            .contains("exceeds the limit of 1048576 bytes"),
        "{:?}",
        s.unreadable
    );
}

#[test]
fn broken_inputs_are_reported_with_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = gz(format!(r#"{{"Records":[{}]}}"#, event("")).as_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.json.gz", good[..good.len() / 2].to_vec(), "gzip"),
        (
            "syntax.json",
            br#"{"Records":[{"eventName":}]}"#.to_vec(),
            "invalid JSON",
        ),
        (
            "latin1.json",
            b"{\"Records\":[{\"userAgent\":\"caf\xe9\"}]}".to_vec(),
            "not UTF-8",
        ),
    ];
    // Values that are JSON but not CloudTrail are rejected records: counted, and the rest of
    // their input read.
    let not_records: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "other.json",
            br#"{"Items":[1,2,3]}"#.to_vec(),
            "not a CloudTrail event",
        ),
        (
            "scalar.json",
            b"42".to_vec(),
            "expected a JSON object or array, found a number",
        ),
    ];
    let mut paths = Vec::new();
    for (name, bytes, _) in cases.iter().chain(&not_records) {
        paths.push(write(dir.path(), name, bytes));
    }
    paths.push(dir.path().join("missing.json"));
    let (findings, s) = scan_paths(shipped(), &paths, &ScanOptions::default());
    assert!(findings.is_empty());
    assert_eq!(s.unreadable.len(), cases.len() + 1, "{}", s.render());
    for (name, _, reason) in &cases {
        let p = s
            .unreadable
            .iter()
            .find(|p| p.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported"));
        assert!(p.reason.contains(reason), "{name}: {}", p.reason);
    }
    assert!(
        s.unreadable
            .iter()
            .any(|p| p.path.ends_with("missing.json") && p.reason.contains("No such file"))
    );
    assert_eq!(s.events_rejected, 2, "{}", s.render());
    for (name, _, reason) in &not_records {
        let p = s
            .rejected
            .iter()
            .find(|p| p.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not rejected"));
        assert!(p.reason.contains(reason), "{name}: {}", p.reason);
    }
    assert!(s.balanced());
}

#[test]
fn malformed_records_are_rejected_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let records = [
        event(""),
        r#"{"eventTime":5,"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#.to_string(),
        event("").replace("2024-05-14T02:10:05Z", "yesterday"),
        r#""just a string""#.to_string(),
        event(r#""eventName":"Twice""#),
        event(r#""userIdentity2":1"#).replace(r#""userIdentity":{"#, r#""userIdentity":7,"x":{"#),
        event(""),
    ];
    let path = write(
        dir.path(),
        "mixed.json",
        format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes(),
    );
    let (findings, s) = scan_paths(shipped(), &[path], &ScanOptions::default());
    assert_eq!(
        (s.events_read, s.events_evaluated, s.events_rejected),
        (7, 2, 5),
        "{}",
        s.render()
    );
    assert!(s.balanced());
    let indexes: Vec<u64> = s.rejected.iter().map(|p| p.record.unwrap()).collect();
    assert_eq!(indexes, vec![1, 2, 3, 4, 5]);
    assert!(
        s.rejected[1].reason.contains("eventTime"),
        "{}",
        s.rejected[1].reason
    );
    assert!(
        s.rejected[3].reason.contains("duplicate field"),
        "{}",
        s.rejected[3].reason
    );
    assert_eq!(
        findings.len(),
        2,
        "both good records flag GetCallerIdentity with a long-term key"
    );
}

#[test]
fn payloads_too_large_to_model_are_rejected_not_truncated() {
    let engine = engine_of(
        r#"@id("computed-key") @title("Reads a computed tag key") @severity("low")
forbid (principal, action, resource) when { principal has userName && context.requestParameters.hasTag(principal.userName) };"#,
    );
    let keys: Vec<String> = (0..50_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let text = event("").replace(
        r#""requestParameters":null"#,
        &format!(
            r#""requestParameters":{{{},"alice":"yes"}}"#,
            keys.join(",")
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "wide.json", text.as_bytes());
    let (findings, s) = scan_paths(&engine, &[path], &ScanOptions::default());
    assert!(findings.is_empty());
    assert_eq!(s.events_rejected, 1, "{}", s.render());
    assert!(
        s.rejected[0]
            .reason
            .contains("requestParameters: more than 10000 fields"),
        "{}",
        s.rejected[0].reason
    );
    // A policy reading literal keys does not need the whole payload and still decides.
    let literal = engine_of(
        r#"@id("literal-key") @title("Reads one key") @severity("low")
forbid (principal, action, resource) when { context.requestParameters.hasTag("alice") };"#,
    );
    let (findings, s) = scan(&literal, &[dir.path().join("wide.json").to_str().unwrap()]);
    assert!(!s.has_errors(), "{}", s.render());
    assert_eq!(findings.len(), 1);
}

#[test]
fn escape_sequences_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let ua = r#"\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202etxt.exe"#;
    let text = event("").replace(
        r#""userAgent":"aws-cli/2.15.30""#,
        &format!(r#""userAgent":"=HYPERLINK(\"http://x\") {ua}""#),
    );
    let name = "evil\u{1b}[31m.json";
    let path: PathBuf = write(dir.path(), name, text.as_bytes());
    for format in ["table", "jsonl", "json", "csv"] {
        let (code, out, err) = trailcedar(
            &[
                "scan",
                "--color",
                "never",
                "-f",
                format,
                path.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code, 1, "{format}: {err}");
        for (stream, bytes) in [("stdout", &out), ("stderr", &err)] {
            assert!(
                !bytes.contains('\u{1b}'),
                "{format} {stream} holds ESC: {bytes}"
            );
            assert!(
                !bytes.contains('\u{9b}'),
                "{format} {stream} holds CSI: {bytes}"
            );
            assert!(
                !bytes.contains('\u{202e}'),
                "{format} {stream} holds RLO: {bytes}"
            );
        }
        if format == "csv" {
            assert!(out.contains(",\"'=HYPERLINK"), "formula neutralised: {out}");
        }
        if format == "jsonl" {
            let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
            assert!(
                v["event"]["userAgent"].as_str().unwrap().contains('\u{1b}'),
                "JSON keeps the value, escaped"
            );
        }
    }
}

#[test]
fn deep_nesting_neither_crashes_nor_hides_a_payload() {
    let dir = tempfile::tempdir().unwrap();
    // A million levels in a field nobody reads: skipped without recursion.
    let ignored = event(&format!(
        r#""unusedField":{}1{}"#,
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    ));
    // Too deep to parse in requestParameters, which the public-ACL rule reads: the event is
    // rejected with the reason, not evaluated as if it had no parameters.
    let hidden = event("")
        .replace(
            r#""eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity""#,
            r#""eventSource":"s3.amazonaws.com","eventName":"PutObject""#,
        )
        .replace(
            r#""requestParameters":null"#,
            &format!(
                r#""requestParameters":{{"x-amz-acl":"public-read","pad":{}1{}}}"#,
                "[".repeat(500),
                "]".repeat(500)
            ),
        );
    let path = write(
        dir.path(),
        "deep.json",
        format!(r#"{{"Records":[{ignored},{hidden}]}}"#).as_bytes(),
    );
    let (findings, s) = scan_paths(shipped(), &[path], &ScanOptions::default());
    assert_eq!(
        (s.events_read, s.events_evaluated, s.events_rejected),
        (2, 1, 1),
        "{}",
        s.render()
    );
    assert!(
        s.rejected[0]
            .reason
            .contains("requestParameters: recursion limit exceeded"),
        "{}",
        s.rejected[0].reason
    );
    assert_eq!(
        findings.len(),
        1,
        "the first event still flags GetCallerIdentity"
    );
}
