//! What the README says is so: exit codes, the example finding, output files, orders, defaults.

use crate::cli::trailcedar;
use crate::support::shipped_size;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string("README.md").unwrap()
}

#[test]
fn the_main_command_exits_1_because_it_finds_things() {
    let (code, out, err) = trailcedar(
        &[
            "scan",
            "--inventory",
            "fixtures/inventory",
            "fixtures/archive",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        readme().contains("exits with code 1"),
        "the README says why"
    );
    // The example finding is the one the command prints, record number and all.
    let text = readme();
    let example = text
        .lines()
        .skip_while(|l| !l.starts_with("## What a finding looks like"))
        .find(|l| l.starts_with("  event "))
        .expect("an example finding");
    assert!(
        out.lines().any(|l| l == example),
        "{example}\nnot in\n{out}"
    );
    let nat = text
        .lines()
        .find(|l| l.contains("because   source.instances = [Instance::\"i-0989653702d4b4d51\""))
        .expect("the NAT gateway example");
    assert!(out.lines().any(|l| l == nat), "{nat}");
}

#[test]
fn the_documents_name_no_path_outside_the_repository() {
    for doc in [
        "README.md",
        "docs/model.md",
        "docs/scale-out.md",
        "BENCHMARKS.md",
    ] {
        let text = std::fs::read_to_string(doc).unwrap();
        for bad in ["`../", "](../", "/work/", "../shared"] {
            assert!(!text.contains(bad), "{doc} mentions {bad}");
        }
    }
}

#[test]
fn output_files_take_their_format_from_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    for (name, check) in [
        ("findings.json", "json"),
        ("findings.jsonl", "jsonl"),
        ("findings.csv", "csv"),
        ("findings.txt", "table"),
    ] {
        let out = dir.path().join(name);
        let (code, _, err) = trailcedar(
            &[
                "scan",
                "fixtures/events/s3/public_canned_acl.flag.json",
                "-o",
                out.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code, 1, "{err}");
        let text = std::fs::read_to_string(&out).unwrap();
        match check {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(v.as_array().is_some_and(|a| !a.is_empty()), "{text}");
                assert!(err.contains("as a JSON array"), "{err}");
            }
            "jsonl" => {
                for l in text.lines() {
                    serde_json::from_str::<serde_json::Value>(l).unwrap();
                }
                assert!(err.contains("as JSON lines"), "{err}");
            }
            "csv" => assert!(text.starts_with("severity,"), "{text}"),
            _ => assert!(text.starts_with("HIGH "), "{text}"),
        }
        assert!(
            err.contains(&format!("finding(s) to {}", out.display())),
            "{err}"
        );
    }
}

#[test]
fn sort_time_orders_findings_across_files() {
    let (_, input, _) = trailcedar(&["scan", "fixtures/archive", "-f", "jsonl"], None);
    let (code, sorted, err) = trailcedar(
        &["scan", "fixtures/archive", "-f", "jsonl", "--sort", "time"],
        None,
    );
    assert_eq!(code, 1, "{err}");
    let times = |text: &str| -> Vec<i64> {
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                trailcedar::time::Timestamp::parse(v["event"]["eventTime"].as_str().unwrap())
                    .unwrap()
                    .0
            })
            .collect()
    };
    let (mut a, b) = (times(&input), times(&sorted));
    assert_ne!(a, b, "the archive's files interleave in time");
    assert!(b.windows(2).all(|w| w[0] <= w[1]), "in time order");
    a.sort();
    assert_eq!(a, b, "the same findings");
    let mut x: Vec<&str> = input.lines().collect();
    let mut y: Vec<&str> = sorted.lines().collect();
    x.sort();
    y.sort();
    assert_eq!(x, y, "each finding intact");
}

#[test]
fn check_and_test_say_which_pack_they_use() {
    let bin = env!("CARGO_BIN_EXE_trailcedar");
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str], dir: &std::path::Path| {
        let out = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (policies, _) = shipped_size();
    // No ./policies: the embedded pack, as scan uses.
    let (code, err) = run(&["check"], empty.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("embedded pack: {policies} policies")),
        "{err}"
    );
    let (code, err) = run(&["test"], empty.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("testing {policies} policies from embedded pack")),
        "{err}"
    );
    assert!(err.contains("name your pack with -p DIR"), "{err}");
    // In a rule repository: its ./policies.
    let repo = std::env::current_dir().unwrap();
    let (code, err) = run(&["check"], &repo);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("trailcedar: policies: {policies} policies")),
        "{err}"
    );
    let (code, err) = run(&["test"], &repo);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("testing {policies} policies from policies")),
        "{err}"
    );
    let (_, err) = run(&["scan", "fixtures/archive", "-q"], &repo);
    assert!(!err.contains("embedded"), "-q is quiet: {err}");
    let (_, err) = run(&["scan", "fixtures/archive"], &repo);
    assert!(
        err.contains(&format!("{policies} policies from embedded pack")),
        "{err}"
    );
}
