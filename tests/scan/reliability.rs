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

/// `n` copies of the test event, with distinct ids, as NDJSON lines.
fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            event("").replace(
                "00000000-0000-4000-8000-000000000001",
                &format!("{i:08}-0000-4000-8000-000000000001"),
            )
        })
        .collect()
}

/// The summary's line of counts, from the binary's stderr.
fn counts(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.trim_start().starts_with("events:"))
        .unwrap_or_else(|| panic!("no counts in {stderr}"))
        .trim()
}

#[test]
fn one_bad_record_in_ndjson_or_an_array_costs_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = lines(1001);
    records.insert(1, "42".to_string());
    let ndjson = write(
        dir.path(),
        "bad.ndjson",
        (records.join("\n") + "\n").as_bytes(),
    );
    let array = write(
        dir.path(),
        "bad.json",
        format!("[{}]", records.join(",")).as_bytes(),
    );
    for path in [&ndjson, &array] {
        let (_, s) = scan_paths(
            shipped(),
            std::slice::from_ref(path),
            &ScanOptions::default(),
        );
        assert_eq!(
            (s.events_read, s.events_evaluated, s.events_rejected),
            (1002, 1001, 1),
            "{}: {}",
            path.display(),
            s.render()
        );
        assert_eq!(s.rejected[0].record, Some(1));
        assert!(s.unreadable.is_empty(), "{}", s.render());
    }
    // The same on standard input.
    let (code, _, err) = trailcedar(
        &["scan", "-f", "jsonl", "-"],
        Some(std::fs::read(&ndjson).unwrap().as_slice()),
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        counts(&err),
        "events: 1002 read = 1001 evaluated + 0 outside --since/--until + 0 Insights records + 1 rejected"
    );
}

#[test]
fn a_bad_line_on_standard_input_is_skipped_to_the_next_line() {
    // A line cut short and a line of garbage: each one rejected record, nothing else lost.
    let mut records = lines(300);
    records[1].truncate(60);
    records[150] = "garbage {{".to_string();
    let (code, out, err) = trailcedar(
        &["scan", "-f", "jsonl", "-"],
        Some((records.join("\n") + "\n").as_bytes()),
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        counts(&err),
        "events: 300 read = 298 evaluated + 0 outside --since/--until + 0 Insights records + 2 rejected",
        "{err}"
    );
    assert_eq!(out.lines().count(), 298, "every good line flags");
    assert!(err.contains("<stdin>#1: invalid JSON"), "{err}");
    assert!(err.contains("<stdin>#150: invalid JSON"), "{err}");
}

#[test]
fn standard_input_that_is_not_text_ends_with_an_error() {
    // `scan - < /dev/zero` reads a block and stops.
    let zeros = std::fs::File::open("/dev/zero").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailcedar"))
        .args(["scan", "-"])
        .stdin(zeros)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("<stdin>: not text: a NUL byte at offset 0"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn pipes_fifos_and_standard_input_are_read_like_files_gzip_included() {
    let dir = tempfile::tempdir().unwrap();
    let text = lines(3).join("\n") + "\n";
    let gz = gz(text.as_bytes());
    for (label, bytes) in [("plain", text.as_bytes().to_vec()), ("gzip", gz.clone())] {
        // Standard input as `-` and as /dev/stdin (a pipe, which cannot seek back).
        for arg in ["-", "/dev/stdin"] {
            let (code, out, err) = trailcedar(&["scan", "-f", "jsonl", arg], Some(&bytes));
            assert_eq!(code, 1, "{label} {arg}: {err}");
            assert_eq!(out.lines().count(), 3, "{label} {arg}: {err}");
        }
        // A FIFO, as process substitution makes.
        let fifo = dir.path().join(format!("{label}.fifo"));
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
        };
        let (code, out, err) = trailcedar(&["scan", "-f", "jsonl", fifo.to_str().unwrap()], None);
        writer.join().unwrap();
        assert_eq!(code, 1, "{label} fifo: {err}");
        assert_eq!(out.lines().count(), 3, "{label} fifo: {err}");
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn short_files_odd_members_and_damaged_gzip_lose_nothing_readable() {
    let dir = tempfile::tempdir().unwrap();
    let records = lines(50);
    let delivery = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let one_byte = write(dir.path(), "one.json", b"{");
    // An event that has a Records member of its own: neither it nor its records vanish.
    let with_member = write(
        dir.path(),
        "member.json",
        event(&format!(r#""Records":[{}]"#, records[0])).as_bytes(),
    );
    let mut padded = gz(delivery.as_bytes());
    padded.extend([0u8; 1000]);
    let padded = write(dir.path(), "padded.json.gz", &padded);
    let mut garbage = gz(delivery.as_bytes());
    garbage.extend(b"trailing junk");
    let garbage = write(dir.path(), "garbage.json.gz", &garbage);
    let ndjson = records.join("\n") + "\n";
    let full = gz(ndjson.as_bytes());
    let cut = &full[..full.len() * 2 / 3];
    let truncated = write(dir.path(), "truncated.json.gz", cut);
    // What a gzip reader makes of the cut stream before its error: every complete line of it.
    let decodable = {
        use std::io::Read;
        let mut decoder = flate2::read::GzDecoder::new(cut);
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = decoder.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        out.iter().filter(|b| **b == b'\n').count() as u64
    };

    let one = |p: &std::path::PathBuf| {
        scan_paths(shipped(), std::slice::from_ref(p), &ScanOptions::default()).1
    };
    let s = one(&one_byte);
    assert_eq!(
        s.unreadable.len(),
        1,
        "a one-byte file is read, and reported: {}",
        s.render()
    );
    assert!(
        s.unreadable[0].reason.contains("invalid JSON"),
        "{}",
        s.render()
    );

    let s = one(&with_member);
    assert_eq!(
        (s.events_read, s.events_evaluated, s.events_rejected),
        (2, 1, 1),
        "{}",
        s.render()
    );
    assert!(
        s.rejected[0].reason.contains("both a list of records"),
        "{}",
        s.render()
    );

    let s = one(&padded);
    assert_eq!(
        (s.events_evaluated, s.unreadable.len()),
        (50, 0),
        "zero padding: {}",
        s.render()
    );

    let s = one(&garbage);
    assert_eq!(s.events_evaluated, 50, "{}", s.render());
    assert_eq!(s.unreadable.len(), 1);
    assert!(
        s.unreadable[0].reason.contains("not gzip data"),
        "{}",
        s.render()
    );

    let s = one(&truncated);
    assert!(decodable > 0);
    assert_eq!(
        s.events_evaluated,
        decodable,
        "the decodable records are read: {}",
        s.render()
    );
    assert!(s.balanced());
    assert_eq!(s.unreadable.len(), 1);
    assert!(
        s.unreadable[0].reason.starts_with("gzip:"),
        "{}",
        s.render()
    );
}

/// Writes `files` NDJSON files of `events` flagged events each under `dir`.
fn flagged_inputs(dir: &std::path::Path, files: usize, events: usize) {
    let lines = lines(events).join("\n") + "\n";
    for i in 0..files {
        write(dir, &format!("flagged-{i}.json"), lines.as_bytes());
    }
}

/// In a child process (see below): scans `files` inputs of `events` flagged events each on two
/// threads, writing every finding as a JSON line to nowhere, and prints the peak resident
/// memory (VmHWM) in kB.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "run by findings_stream_in_bounded_memory in a process of its own"]
fn findings_memory_child() {
    let Ok(spec) = std::env::var("TRAILCEDAR_MEMORY_CHILD") else {
        return;
    };
    let (files, events) = spec.split_once('x').unwrap();
    let dir = tempfile::tempdir().unwrap();
    flagged_inputs(dir.path(), files.parse().unwrap(), events.parse().unwrap());
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let inputs = trailcedar::source::resolve(&[dir.path().to_path_buf()], &Default::default());
    let opts = ScanOptions {
        window: 8,
        held_findings: 1 << 20,
        ..ScanOptions::default()
    };
    let mut written = 0u64;
    let engine = engine_of(
        r#"@id("cli-calls") @title("Calls made with the CLI") @severity("low")
forbid (principal, action, resource) when { context has userAgent && context.userAgent like "aws-cli/*" };"#,
    );
    let s = trailcedar::scan::run(&engine, &inputs, &opts, &(), &mut |f| {
        written += trailcedar::report::sanitize::json_line(&f)?.len() as u64;
        Ok(())
    })
    .unwrap();
    assert!(s.balanced() && written > 0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap();
    println!(
        "PEAK {} FINDINGS {}",
        peak.trim().trim_end_matches(" kB"),
        s.findings
    );
}

/// The peak memory of a scan of `files` inputs of `events` flagged events each, in MB, and the
/// findings it wrote, measured in a process of its own.
#[cfg(target_os = "linux")]
fn peak_of_scan(files: usize, events: usize) -> (f64, u64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "reliability::findings_memory_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TRAILCEDAR_MEMORY_CHILD", format!("{files}x{events}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let at = stdout
        .find("PEAK ")
        .unwrap_or_else(|| panic!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    let mut parts = stdout[at..].split_whitespace();
    let kb: f64 = parts.nth(1).unwrap().parse().unwrap();
    let findings: u64 = parts.nth(1).unwrap().parse().unwrap();
    (kb / 1024.0, findings)
}

#[cfg(target_os = "linux")]
#[test]
fn findings_stream_in_bounded_memory() {
    // Four times the findings per input, all inputs read ahead at once: held whole, as before,
    // the findings alone would take some 60 MB more.
    let (small, n_small) = peak_of_scan(4, 1_000);
    let (large, n_large) = peak_of_scan(4, 4_000);
    assert_eq!((n_small, n_large), (4_000, 16_000));
    assert!(
        large - small < 8.0,
        "peak {small:.1} MB with 6,000 findings, {large:.1} MB with 24,000"
    );
}

#[test]
fn an_output_file_that_is_an_input_is_refused_before_it_is_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let text = lines(3).join("\n") + "\n";
    let input = write(dir.path(), "logs/events.json", text.as_bytes());
    // Named as the input, and as a file of a scanned directory.
    for scanned in [input.clone(), dir.path().join("logs")] {
        let (code, out, err) = trailcedar(
            &[
                "scan",
                "-o",
                input.to_str().unwrap(),
                scanned.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty());
        assert!(err.contains("is also an input of the scan"), "{err}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text, "untouched");
    }
}

/// Runs the binary under bash, `$B` standing for it; (exit status as the script prints it, stderr).
#[cfg(target_os = "linux")]
fn sh(script: &str) -> (String, String) {
    let out = std::process::Command::new("bash")
        .args(["-c", script])
        .env("B", env!("CARGO_BIN_EXE_trailcedar"))
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn a_closed_standard_output_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "events.json",
        (lines(3).join("\n") + "\n").as_bytes(),
    );
    let (status, err) = sh(&format!(r#""$B" scan {} >&-; echo $?"#, input.display()));
    assert_eq!(status, "2", "{err}");
    assert!(err.contains("standard output is closed"), "{err}");
    // Sending the findings to /dev/null on purpose is not that.
    let (status, err) = sh(&format!(
        r#""$B" scan -q {} >/dev/null; echo $?"#,
        input.display()
    ));
    assert_eq!(status, "1", "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_reader_that_closes_the_pipe_does_not_turn_the_status_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    // Far more findings than a pipe holds, so that writing meets the closed pipe.
    let input = write(
        dir.path(),
        "many.json",
        (lines(2_000).join("\n") + "\n").as_bytes(),
    );
    let bad = write(dir.path(), "bad.json", b"{oops");
    let script = |paths: &str| {
        format!(r#"set -o pipefail; "$B" scan -f jsonl {paths} | head -c 100 >/dev/null; echo $?"#)
    };
    let (status, err) = sh(&script(&input.display().to_string()));
    assert_eq!(status, "1", "findings: {err}");
    assert!(err.contains("the reader closed the output"), "{err}");
    assert!(
        err.contains("events: 2000 read = 2000 evaluated"),
        "the scan went on to the end: {err}"
    );
    let (status, err) = sh(&script(&format!("{} {}", input.display(), bad.display())));
    assert_eq!(
        status, "2",
        "an unreadable input after the pipe closed: {err}"
    );
}

/// Whether the tests run as root, whom permissions do not stop.
#[cfg(unix)]
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .is_some_and(|uids| uids.split_whitespace().nth(1) == Some("0"))
    })
}

#[cfg(unix)]
#[test]
fn inventory_directories_are_walked_like_log_directories() {
    use std::os::unix::fs::symlink;
    use trailcedar::inventory::Inventory;
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let keys = write(
        &elsewhere,
        "access-keys.json",
        br#"{"AccessKeyMetadata":[{"UserName":"alice","AccessKeyId":"AKIAIOSFODNN7EXAMPLE","Status":"Inactive"}]}"#,
    );
    let inv = dir.path().join("inventory/2024-05-13");
    std::fs::create_dir_all(&inv).unwrap();
    write(
        &inv,
        "accounts.json",
        br#"{"Accounts":[{"Id":"123456789012","Name":"main","Status":"ACTIVE"}]}"#,
    );
    // A link to a file is followed, as the scan's walk follows it: its facts are joined.
    symlink(&keys, inv.join("access-keys.json")).unwrap();
    let loaded = Inventory::load(std::slice::from_ref(&inv), None).unwrap();
    assert_eq!(loaded.files.len(), 2, "{:?}", loaded.files);
    assert_eq!(
        loaded
            .keys
            .get("AKIAIOSFODNN7EXAMPLE")
            .map(|k| k.status.as_str()),
        Some("Inactive")
    );
    // A broken link and a cycle are errors that name them, never a partial join.
    symlink(dir.path().join("gone.json"), inv.join("broken.json")).unwrap();
    symlink(&inv, inv.join("loop")).unwrap();
    let errors = Inventory::load(std::slice::from_ref(&inv), None)
        .unwrap_err()
        .0;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("broken.json")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("loop")), "{errors:?}");
    std::fs::remove_file(inv.join("broken.json")).unwrap();
    std::fs::remove_file(inv.join("loop")).unwrap();
    // An unreadable directory too (permissions do not stop root, who runs some CI).
    if !root() {
        use std::os::unix::fs::PermissionsExt;
        let closed = inv.join("closed");
        std::fs::create_dir(&closed).unwrap();
        write(&closed, "instances.json", br#"{"Reservations":[]}"#);
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
        let result = Inventory::load(std::slice::from_ref(&inv), None);
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
        let errors = result.unwrap_err().0;
        assert!(errors.iter().any(|e| e.contains("closed")), "{errors:?}");
    }
}

#[cfg(unix)]
#[test]
fn an_inventory_that_is_not_text_fails_at_once_with_its_own_limit() {
    let (code, _, err) = trailcedar(
        &[
            "scan",
            "--inventory",
            "/dev/zero",
            "fixtures/events/iam/user_created.flag.json",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("/dev/zero: not text: a NUL byte at offset 0"),
        "{err}"
    );
    assert!(!err.contains("--max-file-size"), "{err}");
}

#[test]
fn policies_at_the_nesting_limits_decide_and_past_them_are_a_pointed_error() {
    use trailcedar::engine::nesting::{MAX_DEPTH, MAX_OPERATORS};
    let dir = tempfile::tempdir().unwrap();
    let term = r#"context.eventName == "GetCallerIdentity""#;
    // Each term is two operators (`.`, `==`) and joining it one more.
    let chain = vec![term; MAX_OPERATORS / 3].join(" && ");
    // The policy's scope and `when { }` are two levels of brackets.
    let parens = MAX_DEPTH - 2;
    let nested = format!("{}{term}{}", "(".repeat(parens), ")".repeat(parens));
    let policy = |id: &str, cond: &str| {
        format!(
            "@id(\"{id}\")\n@title(\"{id}\")\n@severity(\"low\")\nforbid (principal, action, resource) when {{ {cond} }};\n"
        )
    };
    write(
        dir.path(),
        "chain.cedar",
        policy("long-chain", &chain).as_bytes(),
    );
    write(
        dir.path(),
        "nested.cedar",
        policy("deeply-nested", &nested).as_bytes(),
    );
    let events = write(
        dir.path(),
        "events.json",
        (lines(2).join("\n") + "\n").as_bytes(),
    );
    let (code, out, err) = trailcedar(
        &[
            "scan",
            "-f",
            "jsonl",
            "-p",
            dir.path().to_str().unwrap(),
            events.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.matches(r#""id":"long-chain""#).count(), 2, "{out}");
    assert_eq!(out.matches(r#""id":"deeply-nested""#).count(), 2, "{out}");
    assert!(!err.contains("rule errors"), "{err}");

    // Past them: a diagnostic and exit code 2, never a crash (exit 134).
    let long = vec!["true"; 3_000].join(" && ");
    let deep = format!("{}{term}{}", "(".repeat(550), ")".repeat(550));
    for (condition, expected) in [
        (&long, "more than 1000 operators in one policy"),
        (&deep, "brackets nested more than 64 deep"),
    ] {
        let (code, _, err) = trailcedar(
            &["scan", "--where", condition, events.to_str().unwrap()],
            None,
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(expected), "{err}");
    }
    std::fs::remove_file(dir.path().join("chain.cedar")).unwrap();
    write(
        dir.path(),
        "deep.cedar",
        policy("too-deep", &deep).as_bytes(),
    );
    let (code, _, err) = trailcedar(&["check", "-p", dir.path().to_str().unwrap()], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("deep.cedar:4:"),
        "points at the file and line: {err}"
    );
}

/// A PutUserPolicy event whose document is `document` (a JSON string's content).
fn put_user_policy(document: &str) -> String {
    event("")
        .replace(
            r#""eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity""#,
            r#""eventSource":"iam.amazonaws.com","eventName":"PutUserPolicy""#,
        )
        .replace(
            r#""requestParameters":null"#,
            &format!(
                r#""requestParameters":{{"userName":"bob","policyName":"p","policyDocument":{}}}"#,
                serde_json::to_string(document).unwrap()
            ),
        )
}

#[test]
fn what_one_event_may_cost_is_bounded_and_said() {
    use trailcedar::model::fields::MAX_VALUE;
    use trailcedar::scan::MAX_QUOTE;
    let dir = tempfile::tempdir().unwrap();
    // A document past the limit that nearly allows everything.
    let near_miss = r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b"}"#
        .repeat(MAX_VALUE / 60 + 10);
    // One within it that matches, padded with a long statement first.
    // Fewer statements than the model reads in one document (1,000), each a long one.
    let statement = format!(
        r#"{{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::{}"}},"#,
        "x".repeat(1800)
    );
    let padding = statement.repeat(MAX_VALUE / statement.len() - 10);
    let full = format!(
        r#"{{"Version":"2012-10-17","Statement":[{padding}{{"Effect":"Allow","Action":"*","Resource":"*"}}]}}"#
    );
    assert!(full.len() < MAX_VALUE && full.len() > MAX_QUOTE * 100);
    let long_agent = event("").replace("aws-cli/2.15.30", &"a".repeat(MAX_VALUE + 1));
    let records = [
        put_user_policy(&near_miss),
        put_user_policy(&full),
        long_agent,
    ];
    let path = write(
        dir.path(),
        "costly.json",
        (records.join("\n") + "\n").as_bytes(),
    );
    let started = std::time::Instant::now();
    let (findings, s) = scan_paths(shipped(), &[path], &ScanOptions::default());
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert_eq!(
        (s.events_read, s.events_evaluated, s.events_rejected),
        (3, 1, 2),
        "{}",
        s.render()
    );
    assert!(
        s.rejected[0].reason.starts_with("requestParameters: ")
            && s.rejected[0]
                .reason
                .contains("more than the 1048576 bytes a rule may read"),
        "{}",
        s.rejected[0].reason
    );
    assert!(
        s.rejected[1].reason.starts_with("userAgent: 1048577 bytes"),
        "{}",
        s.rejected[1].reason
    );
    let flagged: Vec<_> = findings
        .iter()
        .filter(|f| f.detection.id == "iam-full-access-policy-document")
        .collect();
    assert_eq!(
        flagged.len(),
        1,
        "the document within the limit is read whole"
    );
    for f in &findings {
        for v in &f.values {
            let shown = v.value.as_deref().unwrap_or_default();
            assert!(
                shown.chars().count() <= MAX_QUOTE + 1,
                "{}: {} characters",
                v.field,
                shown.len()
            );
        }
    }
}

/// A PutObject event with `params` as its request parameters (a JSON object's body).
fn put_object(params: &str) -> String {
    event("")
        .replace(
            r#""eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity""#,
            r#""eventSource":"s3.amazonaws.com","eventName":"PutObject""#,
        )
        .replace(
            r#""requestParameters":null"#,
            &format!(r#""requestParameters":{{{params}}}"#),
        )
}

#[test]
fn the_order_of_duplicate_keys_never_hides_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let records = [
        put_object(r#""bucketName":"b","key":"k","x-amz-acl":"public-read","x-amz-acl":"private""#),
        put_object(r#""bucketName":"b","key":"k","x-amz-acl":"private","x-amz-acl":"public-read""#),
        put_object(
            r#""bucketName":"b","key":"k","x-amz-acl":"private","x-amz-\u0061cl":"public-read""#,
        ),
        put_object(r#""bucketName":"b","key":"k","x-amz-acl":"private","X-Amz-Acl":"public-read""#),
        put_object(r#""bucketName":"b","key":"k","x-amz-acl":"public-read""#),
    ];
    let path = write(
        dir.path(),
        "dup.json",
        (records.join("\n") + "\n").as_bytes(),
    );
    let (findings, s) = scan_paths(
        shipped(),
        std::slice::from_ref(&path),
        &ScanOptions::default(),
    );
    assert_eq!((s.events_read, s.events_rejected), (5, 4), "{}", s.render());
    for p in &s.rejected {
        assert!(
            p.reason.contains(
                r#"the key "x-amz-acl" appears twice in one object: the event is ambiguous"#
            ),
            "{}",
            p.reason
        );
    }
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.detection.id == "s3-public-canned-acl")
            .count(),
        1
    );
    // A rule that reads only the resource, named from a repeated bucketName.
    let engine = engine_of(
        r#"@id("secret-bucket") @title("Writes to the secret bucket") @severity("high")
forbid (principal, action, resource in Resource::"arn:aws:s3:::secret");"#,
    );
    let both = [
        put_object(r#""bucketName":"secret","bucketName":"public","key":"k""#),
        put_object(r#""bucketName":"public","bucketName":"secret","key":"k""#),
    ];
    let path = write(
        dir.path(),
        "dup-bucket.json",
        (both.join("\n") + "\n").as_bytes(),
    );
    let (findings, s) = scan_paths(&engine, &[path], &ScanOptions::default());
    assert!(findings.is_empty());
    assert_eq!(s.events_rejected, 2, "{}", s.render());
    assert!(
        s.rejected[0]
            .reason
            .contains(r#""bucketName" appears twice"#),
        "{}",
        s.rejected[0].reason
    );
}

#[test]
fn a_fact_given_twice_in_one_inventory_file_is_an_error_not_the_last_word() {
    use trailcedar::inventory::Inventory;
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 6] = [
        (
            "tags.json",
            r#"{"ResourceTagMappingList":[{"ResourceARN":"arn:aws:s3:::b","Tags":[{"Key":"service","Value":"a"}]},{"ResourceARN":"arn:aws:s3:::b","Tags":[{"Key":"service","Value":"b"}]}]}"#,
            "tags of arn:aws:s3:::b is given twice in this file",
        ),
        (
            "tag-list.json",
            r#"{"ResourceTagMappingList":[{"ResourceARN":"arn:aws:s3:::b","Tags":[{"Key":"service","Value":"a"},{"Key":"service","Value":"b"}]}]}"#,
            r#"the tag "service" is given twice with different values"#,
        ),
        (
            "keys.json",
            r#"[{"AccessKeyMetadata":[{"UserName":"alice","AccessKeyId":"AKIAIOSFODNN7EXAMPLE","Status":"Inactive"}]},{"AccessKeyMetadata":[{"UserName":"alice","AccessKeyId":"AKIAIOSFODNN7EXAMPLE","Status":"Active"}]}]"#,
            "the access key AKIAIOSFODNN7EXAMPLE is given twice",
        ),
        (
            "json-key.json",
            r#"{"AccessKeyMetadata":[{"UserName":"alice","AccessKeyId":"AKIAIOSFODNN7EXAMPLE","Status":"Inactive","Status":"Active"}]}"#,
            r#"the key "Status" appears twice in one object"#,
        ),
        (
            "entities.json",
            r#"[{"uid":{"type":"Role","id":"arn:aws:iam::123456789012:role/ci"},"attrs":{},"tags":{"service":"a","service":"b"}}]"#,
            r#"the key "service" appears twice in one object"#,
        ),
        (
            "entities-twice.json",
            r#"[{"uid":{"type":"Role","id":"arn:aws:iam::123456789012:role/ci"},"attrs":{},"tags":{"service":"a"}},{"uid":{"type":"Role","id":"arn:aws:iam::123456789012:role/ci"},"attrs":{},"tags":{"service":"b"}}]"#,
            r#"the tag "service" is given twice in this file"#,
        ),
    ];
    for (name, text, expected) in cases {
        let path = write(dir.path(), &format!("2024-05-13/{name}"), text.as_bytes());
        let errors = Inventory::load(std::slice::from_ref(&path), None)
            .unwrap_err()
            .0;
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert!(errors[0].contains(expected), "{name}: {errors:?}");
        std::fs::remove_file(path).unwrap();
    }
    // The same fact twice alike is one fact.
    let same = write(
        dir.path(),
        "2024-05-13/same.json",
        br#"[{"AccessKeyMetadata":[{"UserName":"alice","AccessKeyId":"AKIAIOSFODNN7EXAMPLE","Status":"Inactive"}]},{"AccessKeyMetadata":[{"UserName":"alice","AccessKeyId":"AKIAIOSFODNN7EXAMPLE","Status":"Inactive"}]}]"#,
    );
    assert!(Inventory::load(&[same], None).is_ok());
}

#[test]
fn invisible_characters_reach_neither_the_terminal_nor_a_spreadsheet() {
    let dir = tempfile::tempdir().unwrap();
    // "ignore previous" smuggled in TAG characters, Hangul fillers, a Mongolian vowel separator,
    // and a formula behind a blank and behind a full-width equals sign.
    let smuggled: String = "ignore previous"
        .chars()
        .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
        .collect();
    let agent = format!(" =HYPERLINK(\"x\")\u{3164}\u{115F}\u{180E}{smuggled}");
    let region = "\u{FF1D}cmd|' /C calc'!A0";
    let text = event("")
        .replace("aws-cli/2.15.30", &agent.replace('"', "\\\""))
        .replace("ap-northeast-1", region);
    let path = write(dir.path(), "invisible.json", text.as_bytes());
    for format in ["table", "csv", "jsonl"] {
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
        assert_eq!(code, 1, "{err}");
        for invisible in ['\u{E0069}', '\u{3164}', '\u{115F}', '\u{180E}'] {
            assert!(
                !out.contains(invisible) && !err.contains(invisible),
                "{format}: U+{:04X} in {out}",
                invisible as u32
            );
        }
        if format == "csv" {
            assert!(out.contains(",\"' =HYPERLINK"), "{out}");
            assert!(out.contains(",'\u{FF1D}cmd"), "{out}");
        }
    }
}
