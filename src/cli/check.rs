//! `trailcedar check`: parse and validate a pack in strict mode against the model's schema,
//! check its actions against the catalog and lint its annotations.

use super::pack_sources;
use crate::cases::case_file_for;
use crate::engine::pack::{self, Pack};
use std::path::{Path, PathBuf};

/// `trailcedar check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Directories of .cedar policies (repeatable).
    #[arg(short, long, value_name = "DIR", default_value = "policies")]
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
        if d.effect == cedar_policy::Effect::Forbid && d.runbook.is_none() {
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
    out
}

/// Checks the pack; the exit code: 0 when it loads (and, with `--strict`, has no warnings).
pub fn run(args: &CheckArgs) -> Result<u8, String> {
    let (sources, origin) = pack_sources(&args.policies)?;
    let files = sources
        .iter()
        .filter(|s| s.name.ends_with(".cedar"))
        .count();
    match pack::load(sources, &origin) {
        Err(errors) => {
            let n = errors.0.len();
            for report in errors.0 {
                eprintln!("{report:?}");
            }
            eprintln!("trailcedar: {origin}: {n} error(s) in {files} file(s)");
            Ok(1)
        }
        Ok(pack) => {
            let warnings = warnings(&pack);
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "trailcedar: {origin}: {} policies in {files} file(s) valid in strict mode, {} warning(s)",
                pack.detections.len(),
                warnings.len()
            );
            Ok(u8::from(args.strict && !warnings.is_empty()))
        }
    }
}
