//! The correlator on matches made by hand: what fires, when windows end, lateness, the caps
//! and the state between runs.

use super::*;
use crate::engine::pack::{self, PolicySource};
use crate::report::{EventInfo, Location, Matched};

const PACK: &str = r#"
@id("reads") @title("Reads") @severity("medium")
@group("principal") @window("10m") @threshold("3")
forbid (principal, action == Action::"s3:GetObject", resource);

@id("secrets") @title("Secrets") @severity("high")
@group("principal") @window("10m") @threshold("3")
@distinct("context.requestParameters.getTag(\"secretId\")")
forbid (principal, action == Action::"secretsmanager:GetSecretValue", resource)
when { context.requestParameters.hasTag("secretId") };

@id("whoami") @title("Who am I") @severity("info") @buildingBlock
forbid (principal, action == Action::"sts:GetCallerIdentity", resource);

@id("listed") @title("Listed") @severity("info") @buildingBlock
forbid (principal, action == Action::"iam:ListUsers", resource);

@id("created") @title("Created after recon") @severity("high")
@group("principal") @window("1h") @after("whoami, listed")
forbid (principal, action == Action::"iam:CreateUser", resource);

@id("root") @title("Root") @severity("high")
@group("principal") @window("1h")
forbid (principal is Root, action, resource);
"#;

fn pack() -> Pack {
    pack::load(
        vec![PolicySource {
            name: "t.cedar".into(),
            text: PACK.into(),
        }],
        "t",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A detection of [`PACK`] by its index.
fn index(id: &str) -> usize {
    static IDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| pack().detections.iter().map(|d| d.id.clone()).collect())
        .iter()
        .position(|d| d == id)
        .unwrap_or_else(|| panic!("no detection {id}"))
}

fn ms(t: &str) -> i64 {
    Timestamp::parse(t).unwrap().0
}

fn value(v: &str) -> MatchValue {
    MatchValue::text(v)
}

/// A match of `detection` for `correlation`'s `step`, in group `who`, at `at` (minutes past
/// 02:00, seconds allowed as a fraction), record `record`.
fn m(detection: &str, correlation: &str, step: usize, who: &str, at: f64, record: u64) -> Finding {
    with_distinct(detection, correlation, step, who, at, record, &[])
}

fn with_distinct(
    detection: &str,
    correlation: &str,
    step: usize,
    who: &str,
    at: f64,
    record: u64,
    distinct: &[&str],
) -> Finding {
    let time = ms("2024-05-14T02:00:00Z") + (at * 60_000.0) as i64;
    Finding {
        detection: DetectionInfo {
            id: detection.into(),
            title: String::new(),
            severity: Severity::Info,
            mitre: None,
            description: None,
            runbook: None,
            policy: String::new(),
        },
        event: EventInfo {
            principal: who.into(),
            principal_type: "IAMUser".into(),
            ..EventInfo::identified(
                format!("e{record}"),
                Timestamp(time).to_string(),
                "x:Y".into(),
            )
        },
        location: Location {
            file: "f.json".into(),
            record,
        },
        values: Vec::new(),
        notes: Vec::new(),
        correlation: None,
        matched: Some(Box::new(Matched {
            detection: index(detection),
            time,
            keys: vec![MatchKey {
                correlation: index(correlation),
                step,
                group: vec![value(who)],
                distinct: distinct.iter().map(|d| value(d)).collect(),
                weight: 1,
            }],
            reported: false,
            explained: true,
            sampled: true,
        })),
        raw: None,
    }
}

/// The findings of these matches, in this order, with `opts`.
fn run_with(opts: Options, matches: Vec<Finding>) -> (Vec<Finding>, Correlator) {
    let mut c = Correlator::new(&pack(), opts);
    let mut out = Vec::new();
    for f in matches {
        c.route(f, &mut |f| {
            out.push(f);
            Ok(())
        })
        .unwrap();
    }
    c.finish(&mut |f| {
        out.push(f);
        Ok(())
    })
    .unwrap();
    (out, c)
}

fn run(matches: Vec<Finding>) -> Vec<Finding> {
    run_with(Options::default(), matches).0
}

fn counts(findings: &[Finding]) -> Vec<(String, u64)> {
    findings
        .iter()
        .map(|f| {
            let c = f.correlation.as_ref().unwrap();
            (f.detection.id.clone(), c.count)
        })
        .collect()
}

fn reads(times: &[f64]) -> Vec<Finding> {
    let alice: Vec<(&str, f64)> = times.iter().map(|t| ("alice", *t)).collect();
    reads_by(&alice)
}

/// Reads by each principal at each time (minutes past 02:00), records in this order.
fn reads_by(calls: &[(&str, f64)]) -> Vec<Finding> {
    calls
        .iter()
        .enumerate()
        .map(|(i, (who, t))| m("reads", "reads", 0, who, *t, i as u64))
        .collect()
}

#[test]
fn a_count_fires_at_its_threshold_within_the_window() {
    let found = run(reads(&[0.0, 2.0, 4.0]));
    assert_eq!(counts(&found), [("reads".to_string(), 3)]);
    let c = found[0].correlation.as_ref().unwrap();
    assert_eq!(
        (c.first.as_str(), c.last.as_str()),
        ("2024-05-14T02:00:00Z", "2024-05-14T02:04:00Z")
    );
    assert_eq!(c.end, "2024-05-14T02:10:00Z");
    assert_eq!(c.group[0].value.as_deref(), Some("\"alice\""));
}

#[test]
fn one_short_of_the_threshold_or_outside_the_window_does_not_fire() {
    assert!(run(reads(&[0.0, 2.0])).is_empty(), "one short");
    assert!(
        run(reads(&[0.0, 6.0, 12.5])).is_empty(),
        "12.5 minutes apart"
    );
    // A window is 60 steps of 10 seconds: 9m50s apart always count together.
    assert_eq!(run(reads(&[0.0, 5.0, 9.8])).len(), 1);
}

#[test]
fn groups_count_apart() {
    let mut matches = reads(&[0.0, 1.0]);
    matches.push(m("reads", "reads", 0, "bob", 1.5, 9));
    assert!(run(matches).is_empty());
}

#[test]
fn later_matches_of_the_window_join_its_finding_and_the_next_window_starts_afresh() {
    let found = run(reads(&[0.0, 1.0, 2.0, 3.0, 9.0, 10.5, 11.0]));
    assert_eq!(
        counts(&found),
        [("reads".to_string(), 5)],
        "10.5 and 11 are two"
    );
    let c = found[0].correlation.as_ref().unwrap();
    assert_eq!(c.last, "2024-05-14T02:09:00Z");
}

#[test]
fn a_finding_shows_the_first_events_and_the_last() {
    let times: Vec<f64> = (0..30).map(|i| f64::from(i) * 0.1).collect();
    let found = run(reads(&times));
    let c = found[0].correlation.as_ref().unwrap();
    assert_eq!(c.count, 30);
    assert_eq!(c.sample.len(), SAMPLE_SHOWN + 1);
    assert_eq!(c.sample[0].event_id, "e0");
    assert_eq!(c.sample.last().unwrap().event_id, "e29");
    assert_eq!(c.omitted, 30 - c.sample.len() as u64);
    assert_eq!(
        found[0].location.record, 0,
        "the finding's event is its first"
    );
}

const SAMPLE_SHOWN: usize = crate::report::SAMPLE;

#[test]
fn distinct_values_fire_at_the_threshold() {
    let s = |who: &str, at: f64, n: u64, v: &str| {
        with_distinct("secrets", "secrets", 0, who, at, n, &[v])
    };
    let repeats = vec![
        s("a", 0.0, 0, "x"),
        s("a", 1.0, 1, "y"),
        s("a", 2.0, 2, "x"),
    ];
    assert!(
        run(repeats.clone()).is_empty(),
        "two distinct in three reads"
    );
    let mut three = repeats;
    three.push(s("a", 3.0, 3, "z"));
    three.push(s("a", 4.0, 4, "w"));
    let found = run(three);
    let d = found[0]
        .correlation
        .as_ref()
        .unwrap()
        .distinct
        .clone()
        .unwrap();
    assert_eq!(d.count, 4);
    let values: Vec<&str> = d.values.iter().map(|v| v.cedar.as_str()).collect();
    assert_eq!(values, ["\"x\"", "\"y\"", "\"z\"", "\"w\""]);
    let apart = vec![
        s("a", 0.0, 0, "x"),
        s("a", 11.0, 1, "y"),
        s("a", 22.0, 2, "z"),
    ];
    assert!(run(apart).is_empty(), "outside the window");
}

fn sequence(steps: &[(&str, usize, f64)]) -> Vec<Finding> {
    run(steps
        .iter()
        .enumerate()
        .map(|(i, (d, step, at))| m(d, "created", *step, "k", *at, i as u64))
        .collect())
}

#[test]
fn a_sequence_fires_in_order_within_its_window() {
    let found = sequence(&[("whoami", 0, 0.0), ("listed", 1, 5.0), ("created", 2, 30.0)]);
    assert_eq!(found.len(), 1);
    let c = found[0].correlation.as_ref().unwrap();
    assert_eq!(c.steps, ["whoami", "listed", "created"]);
    let shown: Vec<&str> = c.sample.iter().map(|e| e.detection.as_str()).collect();
    assert_eq!(shown, ["whoami", "listed", "created"]);
}

#[test]
fn a_sequence_out_of_order_outside_its_window_or_incomplete_does_not_fire() {
    assert!(
        sequence(&[("listed", 1, 0.0), ("whoami", 0, 1.0), ("created", 2, 2.0)]).is_empty(),
        "wrong order"
    );
    assert!(
        sequence(&[("whoami", 0, 0.0), ("listed", 1, 5.0), ("created", 2, 61.0)]).is_empty(),
        "61 minutes"
    );
    assert!(
        sequence(&[("whoami", 0, 0.0), ("created", 2, 2.0)]).is_empty(),
        "a step missing"
    );
}

#[test]
fn one_event_is_not_two_steps() {
    // An event that matched both steps (by two detections) completes neither chain twice.
    let mut both = m("whoami", "created", 0, "k", 0.0, 0);
    if let Some(matched) = &mut both.matched {
        let mut second = matched.keys[0].clone();
        second.step = 1;
        matched.keys.push(second);
    }
    let found = run(vec![both, m("created", "created", 2, "k", 1.0, 1)]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn grouping_makes_one_finding_per_group_and_window() {
    let calls: Vec<Finding> = (0..25)
        .map(|i| m("root", "root", 0, "root", f64::from(i) * 2.0, i as u64))
        .collect();
    let found = run(calls);
    assert_eq!(
        counts(&found),
        [("root".into(), 25)],
        "50 minutes: one hour"
    );
    let more: Vec<Finding> = (0..4)
        .map(|i| m("root", "root", 0, "root", f64::from(i) * 40.0, i as u64))
        .collect();
    assert_eq!(counts(&run(more)), [("root".into(), 2), ("root".into(), 2)]);
}

#[test]
fn matches_in_any_order_within_the_lateness_bound_count_as_in_order() {
    let in_order = run(reads(&[0.0, 2.0, 4.0, 20.0, 21.0, 22.0]));
    let mut shuffled = reads(&[0.0, 2.0, 4.0, 20.0, 21.0, 22.0]);
    shuffled.swap(0, 4);
    shuffled.swap(1, 5);
    let found = run(shuffled);
    assert_eq!(counts(&found), counts(&in_order));
    assert_eq!(counts(&found).len(), 2);
}

#[test]
fn a_match_later_than_the_bound_is_applied_to_an_open_window_or_counted_too_late() {
    let opts = Options {
        lateness_ms: 60_000,
        ..Options::default()
    };
    // Alice reads at 0 and 1 minutes; bob's read at 5 is taken once carol's at 7 is seen;
    // alice's third read, at 3, comes after: later than the minute of lateness, but her
    // window is open.
    let late = vec![
        m("reads", "reads", 0, "alice", 0.0, 0),
        m("reads", "reads", 0, "alice", 1.0, 1),
        m("reads", "reads", 0, "bob", 5.0, 2),
        m("reads", "reads", 0, "carol", 7.0, 3),
        m("reads", "reads", 0, "alice", 3.0, 4),
    ];
    let (found, c) = run_with(opts, late);
    assert_eq!(counts(&found), [("reads".into(), 3)]);
    let mut summary = Summary::default();
    c.summarise(&mut summary);
    assert_eq!(summary.correlation.late_applied, 1);
    // Far behind: its window has closed.
    let too_late = vec![
        m("reads", "reads", 0, "alice", 30.0, 0),
        m("reads", "reads", 0, "bob", 45.0, 1),
        m("reads", "reads", 0, "alice", 0.0, 2),
    ];
    let (_, c) = run_with(opts, too_late);
    let mut summary = Summary::default();
    c.summarise(&mut summary);
    assert_eq!(summary.correlation.too_late, 1);
    assert_eq!(summary.correlation.too_late_examples[0].record, Some(2));
    assert!(
        summary.render().contains("1 too late"),
        "{}",
        summary.render()
    );
}

#[test]
fn past_max_groups_the_group_that_ends_first_goes_and_is_counted() {
    let opts = Options {
        max_groups: 10,
        ..Options::default()
    };
    let many: Vec<Finding> = (0..100)
        .map(|i: u32| {
            m(
                "reads",
                "reads",
                0,
                &format!("u{i}"),
                f64::from(i) * 0.01,
                u64::from(i),
            )
        })
        .collect();
    let (_, c) = run_with(opts, many);
    let mut summary = Summary::default();
    c.summarise(&mut summary);
    assert_eq!(summary.correlation.evicted, 90);
    assert_eq!(summary.correlation.peak_groups, 10);
}

/// Matches taken as they come (no lateness): time passes with each.
fn at_once() -> Options {
    Options {
        lateness_ms: 0,
        ..Options::default()
    }
}

#[test]
fn a_group_matched_again_outlives_the_time_its_first_match_gave_it() {
    // Alice's first match would end her window at 02:10; her second puts it off to 02:15. Bob's
    // match at 02:12 moves time past 02:10: Alice's group must still hold 02:05, so that 02:13
    // and 02:14 make three.
    let matches = reads_by(&[
        ("alice", 0.0),
        ("alice", 5.0),
        ("bob", 12.0),
        ("alice", 13.0),
        ("alice", 14.0),
    ]);
    let (found, _) = run_with(at_once(), matches);
    assert_eq!(counts(&found), [("reads".to_string(), 3)]);
    let c = found[0].correlation.as_ref().unwrap();
    assert_eq!(c.first, "2024-05-14T02:05:00Z");
}

#[test]
fn past_max_groups_the_group_that_truly_ends_first_goes() {
    // Alice's place among the expiries is her first match's (02:10) until it is checked; her
    // second match makes her end at 02:18, after Bob (02:11): Bob goes, Alice fires.
    let opts = Options {
        max_groups: 2,
        ..at_once()
    };
    let matches = reads_by(&[
        ("alice", 0.0),
        ("alice", 8.0),
        ("bob", 1.0),
        ("carol", 8.5),
        ("alice", 9.0),
    ]);
    let (found, c) = run_with(opts, matches);
    assert_eq!(counts(&found), [("reads".to_string(), 3)]);
    assert_eq!(
        found[0].correlation.as_ref().unwrap().group[0]
            .value
            .as_deref(),
        Some("\"alice\"")
    );
    let mut summary = Summary::default();
    c.summarise(&mut summary);
    assert_eq!(summary.correlation.evicted, 1, "Bob");
}

#[test]
fn memory_is_bounded_by_the_open_groups_under_a_million_distinct_keys() {
    // A hostile trail: a million calls, each by a principal of its own, within minutes.
    let opts = Options {
        max_groups: 1_000,
        max_pending: 5_000,
        ..Options::default()
    };
    let mut c = Correlator::new(&pack(), opts);
    let mut most = (0, 0);
    let mut found = 0;
    for i in 0..1_000_000u64 {
        let f = m("reads", "reads", 0, &i.to_string(), i as f64 * 0.000_01, i);
        c.route(f, &mut |_| {
            found += 1;
            Ok(())
        })
        .unwrap();
        let (groups, pending) = c.held();
        most = (most.0.max(groups), most.1.max(pending));
    }
    assert!(most.0 <= 1_000, "open groups {}", most.0);
    assert!(most.1 <= 5_001, "waiting matches {}", most.1);
    assert_eq!(found, 0);
    let mut summary = Summary::default();
    c.summarise(&mut summary);
    assert!(
        summary.correlation.evicted >= 990_000,
        "{:?}",
        summary.correlation
    );
}

#[test]
fn open_windows_and_sequences_resume_in_the_next_run() {
    let first_day = vec![
        m("reads", "reads", 0, "alice", 0.0, 0),
        m("reads", "reads", 0, "alice", 1.0, 1),
        m("whoami", "created", 0, "k", 2.0, 2),
    ];
    let (found, mut c) = run_with(Options::default(), first_day);
    assert!(found.is_empty());
    let saved = c.finish(&mut |_| Ok(())).unwrap();
    assert!(saved.is_empty(), "finish took them already");
    // Again, keeping what finish saves.
    let mut c = Correlator::new(&pack(), Options::default());
    for f in [
        m("reads", "reads", 0, "alice", 0.0, 0),
        m("reads", "reads", 0, "alice", 1.0, 1),
        m("whoami", "created", 0, "k", 2.0, 2),
    ] {
        c.route(f, &mut |_| Ok(())).unwrap();
    }
    let groups = c.finish(&mut |_| Ok(())).unwrap();
    assert_eq!(groups.len(), 2);
    let state = state::State::of(&c, groups);
    let text = serde_json::to_string(&state).unwrap();
    let back: state::State = serde_json::from_str(&text).unwrap();
    let mut next = Correlator::new(&pack(), Options::default());
    assert_eq!(next.resume(back).unwrap(), 2);
    let mut out = Vec::new();
    for f in [
        m("reads", "reads", 0, "alice", 3.0, 0),
        m("created", "created", 2, "k", 4.0, 1),
    ] {
        next.route(f, &mut |f| {
            out.push(f);
            Ok(())
        })
        .unwrap();
    }
    // The sequence needs its second step: only the reads fire.
    next.finish(&mut |f| {
        out.push(f);
        Ok(())
    })
    .unwrap();
    assert_eq!(counts(&out), [("reads".into(), 3)]);
}

#[test]
fn a_state_file_that_is_not_ours_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = Correlator::new(&pack(), Options::default());
    let path = dir.path().join("state.json");
    assert_eq!(state::load(&path, &c), Ok(None), "no file: the first run");
    let cases = [
        ("{not json", "corrupt JSON"),
        (
            r#"{"format": "something-else", "version": 1}"#,
            "not a trailcedar state file",
        ),
        (
            r#"{"format": "trailcedar-correlation-state", "version": 9, "correlations": [], "latest": null, "groups": []}"#,
            "state version 9",
        ),
        (
            r#"{"format": "trailcedar-correlation-state", "version": 1, "correlations": [{"id": "reads", "rule": "count >= 5 per principal within 10m"}], "latest": null, "groups": []}"#,
            "written for other correlations",
        ),
        (
            r#"{"format": "trailcedar-correlation-state", "version": 1, "correlations": 3}"#,
            "a corrupt state file",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&path, text).unwrap();
        let e = state::load(&path, &c).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
        assert!(e.contains("state.json"), "names the file: {e}");
    }
    let saved = state::State::of(&c, Vec::new());
    state::save(&path, &saved).unwrap();
    assert_eq!(state::load(&path, &c), Ok(Some(saved)));
}
