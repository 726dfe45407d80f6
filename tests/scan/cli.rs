//! The command line as a user runs it: exit codes, formats, stdin, diagnostics.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn trailcedar(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailcedar"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_follow_findings_and_errors() {
    let archive = "fixtures/archive";
    assert_eq!(trailcedar(&["scan", "-q", archive], None).0, 1, "findings");
    assert_eq!(
        trailcedar(&["scan", "-q", "--fail-on", "never", archive], None).0,
        0
    );
    assert_eq!(
        trailcedar(&["scan", "-q", "--fail-on", "critical", archive], None).0,
        1,
        "the archive has critical findings"
    );
    let near_misses = "fixtures/events/iam/user_created.allow.json";
    assert_eq!(trailcedar(&["scan", "-q", near_misses], None).0, 0, "clean");
    let info_only = "fixtures/events/sts/get_caller_identity_long_term_key.flag.json";
    assert_eq!(
        trailcedar(&["scan", "-q", "--fail-on", "low", info_only], None).0,
        0
    );
    assert_eq!(
        trailcedar(&["scan", "-q", "--fail-on", "info", info_only], None).0,
        1
    );
    let (code, _, err) = trailcedar(&["scan", "no/such/dir"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such/dir"), "{err}");
    assert_eq!(trailcedar(&["scan"], None).0, 2, "usage error");
    assert_eq!(
        trailcedar(&["scan", "--fail-on", "loud", archive], None).0,
        2
    );
}

#[test]
fn a_typo_in_a_policy_is_a_pointed_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.cedar"),
        "@id(\"typo\")\n@title(\"t\")\n@severity(\"low\")\nforbid (principal, action, resource)\nwhen { context.sourceIPAdress == \"1.2.3.4\" };\n",
    )
    .unwrap();
    let (code, out, err) = trailcedar(
        &[
            "scan",
            "-p",
            dir.path().to_str().unwrap(),
            "fixtures/archive",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("typo.cedar:5:"), "file and line: {err}");
    assert!(err.contains("did you mean `sourceIPAddress`?"), "{err}");
}

#[test]
fn formats_are_machine_readable() {
    let file = "fixtures/events/iam/administrator_access_attached.flag.json";
    let (_, jsonl, _) = trailcedar(&["scan", "-q", "-f", "jsonl", file], None);
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Two attachments, the first also a CIS 4.4 change (a user's policy); by record, then id.
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["detection"]["id"], "cis-iam-policy-changed");
    assert_eq!(
        lines[1]["detection"]["id"],
        "iam-administrator-access-attached"
    );
    assert_eq!(
        lines[1]["values"][0]["field"],
        "requestParameters[\"policyArn\"]"
    );
    assert_eq!(
        lines[1]["values"][0]["value"],
        "arn:aws:iam::aws:policy/AdministratorAccess"
    );
    assert_eq!(lines[1]["location"]["record"], 0);
    let (_, json, _) = trailcedar(&["scan", "-q", "-f", "json", file], None);
    let array: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(array, lines);
    let (_, csv, _) = trailcedar(&["scan", "-q", "-f", "csv", file], None);
    let mut rows = csv.lines();
    assert!(
        rows.next()
            .unwrap()
            .starts_with("severity,detection,title,mitre,eventTime")
    );
    assert_eq!(rows.count(), 3);
    let (_, empty, _) = trailcedar(
        &[
            "scan",
            "-q",
            "-f",
            "json",
            "fixtures/events/iam/user_created.allow.json",
        ],
        None,
    );
    assert_eq!(empty.trim(), "[]");
}

#[test]
fn standard_input_and_output_files() {
    let flag = std::fs::read_to_string("fixtures/events/iam/user_created.flag.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&flag).unwrap();
    let ndjson: String = v["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{e}\n"))
        .collect();
    let (code, out, err) = trailcedar(&["scan", "-f", "jsonl", "-"], Some(ndjson.as_bytes()));
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("\"file\":\"<stdin>\""), "{out}");
    assert!(err.contains("events: 1 read = 1 evaluated"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("findings.csv");
    let (code, out, _) = trailcedar(
        &[
            "scan",
            "-q",
            "-f",
            "csv",
            "-o",
            target.to_str().unwrap(),
            "fixtures/archive",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(std::fs::read_to_string(target).unwrap().lines().count() > 30);
}

#[test]
fn summary_accounts_for_the_sample_archive() {
    // The README's command.
    let (_, out, err) = trailcedar(
        &[
            "scan",
            "--color",
            "never",
            "--inventory",
            "fixtures/inventory",
            "fixtures/archive",
        ],
        None,
    );
    let (policies, _) = crate::support::shipped_size();
    assert!(
        err.contains(&format!(
            "{policies} policies from embedded pack (detection mode)"
        )),
        "{err}"
    );
    assert!(
        err.contains("inventory: fixtures/inventory/2024-05-13/credential-report.json: iam get-credential-report, 6 fact(s), taken 2024-05-13T00:00:00Z (recorded in the file)"),
        "each inventory file and its snapshot time: {err}"
    );
    assert!(
        out.contains("because   source.instances = [Instance::\"i-0989653702d4b4d51\", Instance::\"i-0aa11bb22cc33dd44\"]"),
        "seed 000: the instances behind the NAT gateway: {out}"
    );
    assert!(err.contains("files skipped: 1 digest, 1 Insights"), "{err}");
    let events = crate::support::archive_records();
    assert!(
        err.contains(&format!("events: {events} read = {events} evaluated + 0 outside --since/--until + 0 Insights records + 0 rejected")),
        "{err}"
    );
    assert!(
        out.contains("because   requestParameters[\"x-amz-acl\"] = \"public-read\""),
        "seed 002 explained: {out}"
    );
    assert!(
        out.contains("CRITICAL cloudtrail-logging-impaired"),
        "{out}"
    );
}

/// `scan fixtures/archive -f jsonl`, run once for the tests that compare other runs with it.
pub fn archive_jsonl() -> &'static (i32, String, String) {
    static RUN: std::sync::OnceLock<(i32, String, String)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| trailcedar(&["scan", "fixtures/archive", "-f", "jsonl"], None))
}

#[test]
fn shards_are_disjoint_and_together_are_one_run() {
    let paths = ["fixtures/archive", "fixtures/events"];
    let run = |extra: &[&str]| {
        let mut args = vec!["scan", "-f", "jsonl", "--fail-on", "never"];
        args.extend(paths);
        args.extend(extra);
        let (code, out, err) = trailcedar(&args, None);
        assert_eq!(code, 0, "{err}");
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let mut whole = run(&[]);
    for (n, by) in [(3, "region")] {
        let mut union = Vec::new();
        let mut owners: std::collections::HashMap<String, usize> = Default::default();
        for k in 1..=n {
            for line in run(&["--shard", &format!("{k}/{n}"), "--shard-by", by]) {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let file = v["location"]["file"].as_str().unwrap().to_string();
                let owner = *owners.entry(file.clone()).or_insert(k);
                assert_eq!(owner, k, "{file} is in shards {owner} and {k} of {n}");
                union.push(line);
            }
        }
        // One account and region's files stay in one shard.
        let mut by_region: std::collections::HashMap<String, usize> = Default::default();
        for (file, k) in &owners {
            if let Some((account, region)) =
                trailcedar::source::s3_account_region(std::path::Path::new(file))
            {
                let group = match by {
                    "region" => format!("{account}/{region}"),
                    _ => account.to_string(),
                };
                let owner = *by_region.entry(group).or_insert(*k);
                assert_eq!(owner, *k, "{account}/{region} is split");
            }
        }
        union.sort();
        whole.sort();
        // By region, a finding over many events whose group spans regions or files outside the
        // layout (the CIS controls' per principal and hour) is counted in parts: what crosses
        // shards (docs/scale-out.md). Every finding on one event is the same.
        let single = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| !l.contains("\"correlation\":"))
                .cloned()
                .collect()
        };
        assert_eq!(single(&union), single(&whole), "{n} shards by {by}");
        assert!(single(&whole).len() > 100);
    }
    // One account's archive by account: every group whole, so every finding the same.
    let archive = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "fixtures/archive",
            "-f",
            "jsonl",
            "--fail-on",
            "never",
        ];
        args.extend(extra);
        let (_, out, _) = trailcedar(&args, None);
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let mut parts: Vec<String> = (1..=2)
        .flat_map(|k| archive(&["--shard", &format!("{k}/2"), "--shard-by", "account"]))
        .collect();
    parts.sort();
    let mut one: Vec<String> = archive_jsonl().1.lines().map(str::to_string).collect();
    one.sort();
    assert!(one.iter().any(|l| l.contains("\"correlation\":")));
    assert_eq!(parts, one);
    let (code, _, err) = trailcedar(&["scan", "fixtures/archive", "--shard", "4/3"], None);
    assert_eq!(code, 2);
    assert!(err.contains("K/N"), "{err}");
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definitions() {
    let (code, bash, _) = trailcedar(&["completions", "bash"], None);
    assert_eq!(code, 0);
    assert!(bash.contains("complete -F"), "{bash}");
    for word in [
        "scan",
        "check",
        "test",
        "explain",
        "--shard",
        "--s3-endpoint",
        "sarif",
        "ocsf",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish"] {
        let (code, script, _) = trailcedar(&["completions", shell], None);
        assert_eq!(code, 0);
        assert!(script.contains("max-file-size"), "{shell}");
    }
    let (code, page, _) = trailcedar(&["man"], None);
    assert_eq!(code, 0);
    assert!(
        page.starts_with(".ie") || page.contains(".TH trailcedar 1"),
        "{page}"
    );
    assert!(
        page.contains("scan") && page.contains("completions"),
        "{page}"
    );
    let (code, page, _) = trailcedar(&["man", "scan"], None);
    assert_eq!(code, 0);
    assert!(page.contains(".TH trailcedar-scan 1"), "{page}");
    for option in ["shard", "s3\\-endpoint", "max\\-file\\-size", "raw"] {
        assert!(page.contains(option), "the page lacks --{option}");
    }
    let (code, _, err) = trailcedar(&["man", "nope"], None);
    assert_eq!(code, 2);
    assert!(err.contains("no command"), "{err}");
}
