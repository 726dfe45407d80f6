//! `trailcedar check`: parse and validate a pack in strict mode against the model's schema,
//! check its actions against the catalog and lint its annotations.

use super::{authoring_dirs, pack_sources, print_reports};
use crate::cases::case_file_for;
use crate::engine::pack::{self, Pack};
use std::path::{Path, PathBuf};

/// `trailcedar check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Directories of .cedar policies (repeatable). Default: `./policies` when it exists, else
    /// the pack built into trailcedar.
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,

    /// Fail on warnings too.
    #[arg(long)]
    pub strict: bool,
}

/// Warnings about a pack that loads: what a reviewer would ask for.
pub fn warnings(pack: &Pack) -> Vec<String> {
    let mut out = Vec::new();
    for d in &pack.detections {
        let at = format!("{}:{}: {}", d.file, d.line, d.id);
        if d.effect == cedar_policy::Effect::Forbid && d.mitre.is_none() {
            out.push(format!("{at}: no @mitre technique"));
        }
        // A building block is not reported: its correlations carry the runbook.
        if d.effect == cedar_policy::Effect::Forbid && d.runbook.is_none() && !d.building_block {
            out.push(format!("{at}: no @runbook"));
        }
        let file = Path::new(&d.file);
        if file.exists() && !case_file_for(file).exists() {
            out.push(format!(
                "{at}: no test cases (expected {})",
                case_file_for(file).display()
            ));
        }
    }
    for s in &pack.suppressions {
        let d = &s.detection;
        let at = format!("{}:{}: suppression {}", d.file, d.line, d.id);
        if d.description.is_none() {
            out.push(format!(
                "{at}: no @description saying why it is safe to silence"
            ));
        }
        let file = Path::new(&d.file);
        if file.exists() && !case_file_for(file).exists() {
            out.push(format!(
                "{at}: no test cases (expected {})",
                case_file_for(file).display()
            ));
        }
    }
    out
}

/// Checks the pack; the exit code: 0 when it loads (and, with `--strict`, has no warnings).
pub fn run(args: &CheckArgs) -> Result<u8, String> {
    let (sources, origin) = pack_sources(&authoring_dirs(&args.policies))?;
    let files = sources
        .iter()
        .filter(|s| s.name.ends_with(".cedar"))
        .count();
    match pack::load(sources, &origin) {
        Err(e) => {
            print_reports(e.errors.iter().chain(&e.warnings));
            eprintln!(
                "trailcedar: {origin}: {} error(s), {} warning(s) in {files} file(s)",
                e.errors.len(),
                e.warnings.len()
            );
            Ok(1)
        }
        Ok(pack) => {
            print_reports(pack.warnings.iter().map(|w| w.as_ref()));
            let lints = warnings(&pack);
            for w in &lints {
                eprintln!("warning: {w}");
            }
            let count = pack.warnings.len() + lints.len();
            let suppressions = match pack.suppressions.len() {
                0 => String::new(),
                1 => " and 1 suppression".to_string(),
                n => format!(" and {n} suppressions"),
            };
            eprintln!(
                "trailcedar: {origin}: {} policies{suppressions} in {files} file(s) valid in strict mode, {count} warning(s)",
                pack.detections.len(),
            );
            Ok(u8::from(args.strict && count > 0))
        }
    }
}
