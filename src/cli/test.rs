//! `trailcedar test`: run the cases beside each policy and report `N passed, N failed`.

use super::{authoring_dirs, load_pack};
use crate::cases::{self, CaseResult, Expect, Outcome};
use crate::engine::Engine;
use crate::model::aws_ranges::AwsRanges;
use crate::report::sanitize::terminal;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `trailcedar test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Directories of .cedar policies with their .test.json cases (repeatable). Default:
    /// `./policies` when it exists, else the pack built into trailcedar (whose cases are not).
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,

    #[command(flatten)]
    pub inventory: super::InventoryArgs,

    /// Also write the results as JUnit XML, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write the failing cases as SARIF 2.1.0, for code-scanning UIs (GitHub code
    /// scanning shows each at its case's line).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,

    /// Only the case files whose path contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
}

/// The results of every case file of a pack, and what it could not run.
pub struct Report {
    pub results: Vec<CaseResult>,
    /// Case files that could not be read.
    pub errors: Vec<String>,
    /// Detections without a flagging case or without a near miss.
    pub uncovered: Vec<String>,
}

/// Runs every case file beside the policies of `engine`'s pack.
pub fn run_cases(engine: &Engine, filter: Option<&str>) -> Report {
    let mut by_file: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for d in &engine.pack.detections {
        by_file
            .entry(PathBuf::from(&d.file))
            .or_default()
            .push(d.id.clone());
    }
    // A suppression's cases are about the detections it silences: `allow` that they report
    // nothing (silenced), `flag` that they still report what it leaves alone.
    for s in &engine.pack.suppressions {
        let targets = s
            .targets
            .iter()
            .filter_map(|i| engine.pack.detections.get(*i).map(|d| d.id.clone()));
        by_file
            .entry(PathBuf::from(&s.detection.file))
            .or_default()
            .extend(targets);
    }
    let mut report = Report {
        results: Vec::new(),
        errors: Vec::new(),
        uncovered: Vec::new(),
    };
    for (policy, own) in &by_file {
        let case_file = cases::case_file_for(policy);
        if filter.is_some_and(|f| !case_file.display().to_string().contains(f)) {
            continue;
        }
        if !case_file.exists() {
            report.uncovered.extend(
                own.iter()
                    .map(|id| format!("{id}: no cases ({})", case_file.display())),
            );
            continue;
        }
        match cases::run_file(engine, &case_file, own) {
            Ok(results) => {
                for id in own {
                    let covers = |e: Expect| {
                        results
                            .iter()
                            .any(|r| r.expect == e && r.todo_free() && r.detections.contains(id))
                    };
                    if !covers(Expect::Flag) || !covers(Expect::Allow) {
                        report.uncovered.push(format!(
                            "{id}: needs a flagging case and a near miss ({})",
                            case_file.display()
                        ));
                    }
                }
                report.results.extend(results);
            }
            Err(e) => report.errors.push(e),
        }
    }
    report
}

impl CaseResult {
    fn todo_free(&self) -> bool {
        !matches!(self.outcome, Outcome::Todo { .. })
    }
}

/// Runs the tests; exit code 0 when every case passes, 1 otherwise, 2 on errors.
pub fn run(args: &TestArgs) -> Result<u8, String> {
    let dirs = authoring_dirs(&args.policies);
    let pack = load_pack(&dirs)?;
    eprintln!(
        "trailcedar: testing {} polic{} from {}",
        pack.detections.len(),
        if pack.detections.len() == 1 {
            "y"
        } else {
            "ies"
        },
        pack.origin
    );
    if dirs.is_empty() {
        return Err(format!(
            "there is no ./{} here, and the embedded pack's cases are kept in trailcedar's repository, not in the binary: name your pack with -p DIR",
            super::AUTHORING_DIR
        ));
    }
    let inventory = args.inventory.load(false)?;
    let engine = Engine::new(pack, AwsRanges::embedded())?.with_inventory(inventory);
    let report = run_cases(&engine, args.filter.as_deref());
    let mut out = String::new();
    let mut current: Option<&Path> = None;
    let (mut passed, mut failed, mut todo) = (0, 0, 0);
    for r in &report.results {
        if current != Some(r.file.as_path()) {
            let _ = writeln!(out, "{}", terminal(&r.file.display().to_string()));
            current = Some(r.file.as_path());
        }
        let name = terminal(&r.name);
        match &r.outcome {
            Outcome::Pass => {
                passed += 1;
                let _ = writeln!(out, "  ok    {name}");
            }
            Outcome::Fail(messages) => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "  FAIL  {name} (expect {:?} by {})",
                    format!("{:?}", r.expect).to_lowercase(),
                    r.detections.join(", ")
                );
                for m in messages {
                    let _ = writeln!(out, "        {}", terminal(m));
                }
            }
            Outcome::Todo { passes, reason } => {
                todo += 1;
                let state = if *passes {
                    "passes now: remove the todo"
                } else {
                    "still fails"
                };
                let _ = writeln!(out, "  todo  {name} ({state}: {})", terminal(reason));
            }
        }
    }
    print!("{out}");
    for e in &report.errors {
        eprintln!("error: {}", terminal(e));
    }
    for u in &report.uncovered {
        eprintln!("warning: {}", terminal(u));
    }
    if todo > 0 {
        println!("{todo} todo (known gaps, not counted)");
    }
    println!("{passed} passed, {failed} failed");
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&report.results)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.sarif {
        std::fs::write(path, sarif(&report.results)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(if !report.errors.is_empty() {
        2
    } else {
        u8::from(failed > 0)
    })
}

/// Control characters made visible (`\u{1b}`): XML 1.0 allows none but newline and tab, even
/// escaped, and a case's message may quote an event's.
fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if c.is_control() && !matches!(c, '\n' | '\t') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// The results as JUnit XML (written by `quick-junit`): a test suite per case file, a test case
/// per case; a `todo` case is skipped.
pub fn junit(results: &[CaseResult]) -> Result<String, String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suites: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        suites
            .entry(r.file.display().to_string())
            .or_default()
            .push(r);
    }
    let mut report = Report::new("trailcedar");
    for (file, cases) in suites {
        let mut suite = TestSuite::new(visible(&file));
        let ids: BTreeSet<&str> = cases
            .iter()
            .flat_map(|c| c.detections.iter().map(String::as_str))
            .collect();
        let classname = ids.into_iter().collect::<Vec<_>>().join(",");
        for c in cases {
            let status = match &c.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail(messages) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_message(visible(
                            messages.first().map(String::as_str).unwrap_or("failed"),
                        ))
                        .set_description(visible(&messages.join("\n")));
                    status
                }
                Outcome::Todo { reason, .. } => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(format!("todo: {}", visible(reason)));
                    status
                }
            };
            let mut case = TestCase::new(visible(&c.name), status);
            case.set_classname(visible(&classname));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .map_err(|e| format!("writing JUnit XML: {e}"))
}

/// The cases that need attention as a SARIF 2.1.0 log (written through `serde-sarif`'s types): a
/// failing case is an error, a `todo` case that passes now a note (remove the todo); one rule
/// per detection a case is about (the first it names), each result at the line of the case's
/// `"name"` in its file. Passing cases are not results: SARIF lists problems.
pub fn sarif(results: &[CaseResult]) -> Result<String, String> {
    use serde_sarif::sarif::{
        ArtifactLocation, Location, LogicalLocation, Message, PhysicalLocation, Region,
        ReportingDescriptor, Result as Hit, ResultLevel, Run, Sarif, Tool, ToolComponent,
    };
    let mut rules: Vec<String> = Vec::new();
    let mut texts: BTreeMap<PathBuf, Option<String>> = BTreeMap::new();
    let mut hits = Vec::new();
    for r in results {
        let (level, message) = match &r.outcome {
            Outcome::Pass | Outcome::Todo { passes: false, .. } => continue,
            Outcome::Fail(messages) => (
                ResultLevel::Error,
                format!(
                    "case \"{}\" (expect {}) failed: {}",
                    r.name,
                    format!("{:?}", r.expect).to_lowercase(),
                    messages.join("; ")
                ),
            ),
            Outcome::Todo { reason, .. } => (
                ResultLevel::Note,
                format!(
                    "case \"{}\" is marked todo ({reason}) but passes now: remove the todo",
                    r.name
                ),
            ),
        };
        let rule = r
            .detections
            .first()
            .cloned()
            .unwrap_or_else(|| "trailcedar-test".to_string());
        let index = match rules.iter().position(|x| *x == rule) {
            Some(i) => i,
            None => {
                rules.push(rule.clone());
                rules.len() - 1
            }
        };
        let text = texts
            .entry(r.file.clone())
            .or_insert_with(|| std::fs::read_to_string(&r.file).ok());
        let line = text.as_deref().map_or(1, |t| line_of_case(t, &r.name));
        let file = r.file.display().to_string();
        let location = Location::builder()
            .physical_location(
                PhysicalLocation::builder()
                    .artifact_location(
                        ArtifactLocation::builder()
                            .uri(crate::report::sarif::uri(&file))
                            .build(),
                    )
                    .region(Region::builder().start_line(line as i64).build())
                    .build(),
            )
            .logical_locations(vec![
                LogicalLocation::builder()
                    .name(visible(&r.name))
                    .kind("test".to_string())
                    .build(),
            ])
            .build();
        hits.push(
            Hit::builder()
                .rule_id(rule)
                .rule_index(index as i64)
                .level(level)
                .message(Message::builder().text(visible(&message)).build())
                .locations(vec![location])
                .build(),
        );
    }
    let rules = rules
        .into_iter()
        .map(|id| {
            ReportingDescriptor::builder()
                .id(id.clone())
                .name(id)
                .build()
        })
        .collect::<Vec<_>>();
    let driver = ToolComponent::builder()
        .name("trailcedar test")
        .version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    let log = Sarif::builder()
        .version(serde_json::json!("2.1.0"))
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .runs(vec![
            Run::builder()
                .tool(Tool::builder().driver(driver).build())
                .results(hits)
                .build(),
        ])
        .build();
    serde_json::to_string_pretty(&log).map_err(|e| format!("writing SARIF: {e}"))
}

/// The 1-based line of a case in its file: where its `"name"` is, else the first line.
fn line_of_case(text: &str, name: &str) -> usize {
    let quoted = serde_json::to_string(name).unwrap_or_default();
    text.lines()
        .position(|l| l.contains("\"name\"") && l.contains(&quoted))
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts() {
        let r = |name: &str, outcome| CaseResult {
            file: PathBuf::from("p/x.test.json"),
            name: name.into(),
            expect: Expect::Flag,
            detections: vec!["x".into()],
            outcome,
        };
        let xml = junit(&[
            r("a <b> & \"c\"", Outcome::Pass),
            r(
                "bad",
                Outcome::Fail(vec!["record 0: expected x\u{1b}".into()]),
            ),
            r(
                "gap",
                Outcome::Todo {
                    passes: false,
                    reason: "later".into(),
                },
            ),
        ])
        .unwrap();
        assert!(
            xml.contains(
                "<testsuites name=\"trailcedar\" tests=\"3\" skipped=\"1\" failures=\"1\""
            ),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"a &lt;b&gt; &amp; &quot;c&quot;\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"record 0: expected x\\u{1b}\">"),
            "{xml}"
        );
        assert!(xml.contains("<skipped message=\"todo: later\"/>"), "{xml}");
        assert!(!xml.contains('\u{1b}'));
    }
}
