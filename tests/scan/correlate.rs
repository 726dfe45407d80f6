//! Detections over many events, end to end: the keys read straight from events are Cedar's,
//! every output format shows the evidence, and `--state` carries windows from run to run.

use crate::cli::trailcedar;
use crate::support::shipped;
use trailcedar::decode;
use trailcedar::model::EventView;
use trailcedar::model::resource::resources_of;

/// Every fixture log of the repository.
fn fixture_logs() -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new("fixtures/events")
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn quick_reads_are_cedars() {
    // The keys read straight from the record must be the values Cedar gives the same
    // expressions on the full request, on every event of every fixture that feeds a correlation.
    let engine = shipped();
    let mut compared = 0;
    for log in fixture_logs() {
        let text = std::fs::read_to_string(&log).unwrap();
        let mut evaluator = engine.evaluator();
        decode::for_each_record(&text, 0, &mut |record| {
            let view = EventView::new(record.data.into_event().unwrap()).unwrap();
            let verdict = evaluator.evaluate(&view).unwrap();
            for hit in &verdict.hits {
                let d = &engine.pack.detections[hit.detection];
                if d.keyings.is_empty() {
                    continue;
                }
                let principal = verdict.principal(engine, &view).unwrap();
                let resource = resources_of(&view, &principal).unwrap().remove(0);
                let (request, entities) =
                    engine.full_request(&view, &principal, &resource).unwrap();
                let by_cedar = engine
                    .keys_of(hit.detection, &view, &request, &entities)
                    .unwrap();
                let made =
                    engine.match_keys_of(hit.detection, &view, &principal, hit.keys.as_deref());
                assert_eq!(
                    made.as_slice(),
                    &by_cedar[..],
                    "{} on {}#{}",
                    d.id,
                    log.display(),
                    record.index
                );
                compared += 1;
            }
        })
        .unwrap();
    }
    assert!(compared > 2500, "{compared} matches compared");
}

const READS: &str = "fixtures/events/s3/bulk_object_reads.flag.json";

#[test]
fn every_format_shows_a_correlations_evidence() {
    let (code, json, _) = trailcedar(&["scan", "-q", "-f", "json", READS], None);
    assert_eq!(code, 1);
    let findings: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = &findings[0]["correlation"];
    assert_eq!(c["kind"], "count");
    assert_eq!(c["count"], 1168);
    assert_eq!(c["threshold"], 500);
    assert_eq!(c["window"], "10m");
    assert_eq!(c["group"][0]["field"], "principal.accessKeyId");
    assert_eq!(c["group"][0]["value"], "AKIAQ4BT4DHFRANSOM01");
    assert_eq!(
        c["sample"].as_array().unwrap().len(),
        11,
        "the first ten and the last"
    );
    assert_eq!(c["sample"][0]["location"]["record"], 0);
    assert!(
        c["sample"][0]["values"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(c["omitted"], 1168 - 11);
    // The sampled events kept their records and are explained as the finding is written; the
    // last was only counted.
    let sample = c["sample"].as_array().unwrap();
    for (i, e) in sample.iter().enumerate() {
        let explained = e["values"].as_array().is_some_and(|v| !v.is_empty());
        assert_eq!(explained, i < 10, "sample {i}: {e}");
        assert!(e.get("text").is_none(), "a kept record is not written: {e}");
    }
    assert_eq!(
        sample[10]["eventTime"], "2024-05-14T03:34:39Z",
        "{}",
        sample[10]
    );
    let event = &findings[0]["event"];
    assert!(
        event["principal"]
            .as_str()
            .is_some_and(|p| p.contains("user/data-sync")),
        "the first event whole: {event}"
    );
    assert!(findings[0].get("matched").is_none(), "no match leaks out");
    // From standard input (findings sent one at a time, not in batches): the same finding.
    let bytes = std::fs::read(READS).unwrap();
    let (code, piped, _) = trailcedar(&["scan", "-q", "-f", "json", "-"], Some(&bytes));
    assert_eq!(code, 1);
    assert_eq!(piped.replace("\"<stdin>\"", &format!("{READS:?}")), json);
    let (_, jsonl, _) = trailcedar(&["scan", "-q", "-f", "jsonl", READS], None);
    assert_eq!(jsonl.lines().count(), 1, "one finding, not 1,168");
    let (_, csv, _) = trailcedar(&["scan", "-q", "-f", "csv", READS], None);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let at = header.iter().position(|h| h == "correlation").unwrap();
    let row = rows.records().next().unwrap().unwrap();
    let cell = row.get(at).unwrap();
    assert!(cell.contains("count >= 500"), "{cell}");
    assert!(cell.contains("1168 event(s)"), "{cell}");
    assert!(
        cell.contains("bulk_object_reads.flag.json#1167"),
        "the last: {cell}"
    );
    let (_, table, _) = trailcedar(&["scan", "-q", READS], None);
    assert!(table.contains("counted   1168 event(s)"), "{table}");
    assert!(
        table.contains("group     context.sourceIPAddress = \"203.0.113.77\""),
        "{table}"
    );
    assert!(table.contains("… 1157 more"), "{table}");
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("findings.snap");
    let (code, _, err) = trailcedar(
        &[
            "snapshot",
            "--corpus",
            "fixtures/events/s3",
            "--snapshot",
            snap.to_str().unwrap(),
            "--update",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&snap).unwrap();
    assert!(
        text.contains("1168 event(s), from 2024-05-14T03:30:00Z"),
        "{text}"
    );
    assert!(
        text.contains("bulk_object_reads.flag.json#0"),
        "relative locations: {text}"
    );
}

#[test]
fn a_sampled_record_too_large_to_keep_is_shown_unexplained_with_a_note() {
    let mut log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(READS).unwrap()).unwrap();
    log["Records"][0]["additionalEventData"] =
        serde_json::json!({ "padding": "x".repeat(trailcedar::scan::KEPT_TEXT) });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reads.json");
    std::fs::write(&path, log.to_string()).unwrap();
    let (code, json, err) = trailcedar(&["scan", "-q", "-f", "json", path.to_str().unwrap()], None);
    assert_eq!(code, 1, "{err}");
    let findings: serde_json::Value = serde_json::from_str(&json).unwrap();
    let f = &findings[0];
    assert_eq!(f["correlation"]["count"], 1168);
    let sample = f["correlation"]["sample"].as_array().unwrap();
    assert!(sample[0].get("values").is_none(), "{}", sample[0]);
    assert!(
        sample[1]["values"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );
    let notes = f["notes"].to_string();
    assert!(notes.contains("larger than a match keeps"), "{notes}");
}

/// The bulk-reads fixture's events in two logs, at the `at`th event.
fn split_reads(dir: &std::path::Path, at: usize) -> (String, String) {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(READS).unwrap()).unwrap();
    let records = doc["Records"].as_array().unwrap();
    let write = |name: &str, part: &[serde_json::Value]| {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::json!({ "Records": part }).to_string()).unwrap();
        path.display().to_string()
    };
    (
        write("day1.json", &records[..at]),
        write("day2.json", &records[at..]),
    )
}

#[test]
fn state_carries_an_open_window_into_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let (day1, day2) = split_reads(dir.path(), 300);
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let run = |log: &str, with_state: bool| {
        let mut args = vec!["scan", "-f", "jsonl", log];
        if with_state {
            args.extend(["--state", state]);
        }
        trailcedar(&args, None)
    };
    // The first 300 reads alone do not reach the threshold of 500.
    let (code, out, _) = run(&day1, false);
    assert_eq!((code, out.lines().count()), (0, 0));
    let (code, out, err) = run(&day1, true);
    assert_eq!((code, out.lines().count()), (0, 0), "{err}");
    assert!(
        err.contains("state: 0 open window(s) resumed, 1 saved"),
        "{err}"
    );
    let (code, out, err) = run(&day2, true);
    assert_eq!(code, 1, "{err}");
    let f: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(f["correlation"]["count"], 1168, "both runs' reads: {err}");
    assert!(err.contains("1 open window(s) resumed"), "{err}");
}

#[test]
fn a_state_file_that_is_not_one_stops_the_scan_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        "{\"format\": \"trailcedar-correlation-state\", \"version\": 1",
    )
    .unwrap();
    let (code, out, err) = trailcedar(&["scan", READS, "--state", state.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "nothing scanned: {out}");
    assert!(err.contains("state.json"), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "{\"format\": \"trailcedar-correlation-state\", \"version\": 1",
        "left as it was"
    );
}

#[test]
fn matches_later_than_the_lateness_bound_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    // The later reads first (their file is given first), then the earlier ones.
    let (day1, day2) = split_reads(dir.path(), 300);
    let (code, out, err) = trailcedar(
        &["scan", "-f", "jsonl", "--lateness", "1m", &day2, &day1],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("late matches: 300 after the 1 minute lateness bound"),
        "{err}"
    );
    assert!(err.contains("too late for theirs"), "{err}");
    let f: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    // The window starts at the first read counted (record 300, at 03:31:11): the three earlier
    // reads of that same second are late but inside it, so applied; the other 297 are not.
    assert_eq!(
        f["correlation"]["count"],
        1168 - 297,
        "the window had started after them"
    );
    // Within the default bound of 15 minutes, the order of the files does not matter.
    let (code, out, err) = trailcedar(&["scan", "-f", "jsonl", &day2, &day1], None);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("late matches:"), "{err}");
    let f: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(f["correlation"]["count"], 1168);
}
