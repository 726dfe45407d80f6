//! Records as AWS and common exporters write them: every time spelling is read, and a value of
//! the wrong kind rejects its event, naming the field.

use crate::cli::trailcedar;

#[test]
fn the_time_spellings_of_exporters_are_evaluated() {
    // One second, written three ways: `2022-09-15 13:45:24`, with microseconds and `+00:00`,
    // and with a `T` and no zone (UTC).
    let file = "fixtures/authoring/records/time-spellings.json";
    let (code, out, err) = trailcedar(
        &[
            "scan",
            file,
            "-f",
            "jsonl",
            "--where",
            "context.eventTime >= datetime(\"2022-09-15T13:45:24Z\") && context.eventTime < datetime(\"2022-09-15T13:45:25Z\")",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("3 read = 3 evaluated"), "{err}");
    let times: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event"]["eventTime"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        times,
        [
            "2022-09-15T13:45:24Z",
            "2022-09-15T13:45:24Z",
            "2022-09-15T13:45:24.123Z"
        ],
        "in time order, each read as UTC: {out}"
    );
    // No zone is UTC: the spelling without one is not nine hours off in another reading.
    let (_, out, _) = trailcedar(
        &[
            "scan",
            file,
            "--where",
            "context.eventTime == datetime(\"2022-09-15T13:45:24Z\")",
        ],
        None,
    );
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn a_value_of_the_wrong_kind_rejects_its_event_naming_the_field() {
    let (code, _, err) = trailcedar(
        &[
            "scan",
            "fixtures/authoring/records/wrong-types.json",
            "--where",
            "principal.userName == \"analyst\"",
        ],
        None,
    );
    assert_eq!(code, 2, "a rejected event is an error: {err}");
    assert!(err.contains("5 read = 1 evaluated"), "{err}");
    for reason in [
        "wrong-types.json#1: eventTime \"redacted\" is not a time",
        "wrong-types.json#2: eventName: invalid type: integer `42`, expected a string",
        "wrong-types.json#3: userIdentity.arn: invalid type: sequence, expected a string",
        "wrong-types.json#4: tlsDetails: expected a JSON object",
    ] {
        assert!(err.contains(reason), "{reason}: {err}");
    }
    assert!(!err.contains(" column "), "the field, not a column: {err}");
}
