//! `trailcedar snapshot`: a pack's findings over a corpus as stable text, compared with a
//! committed snapshot, so that a pull request that changes a rule shows which findings appeared
//! or vanished.

use super::load_pack;
use crate::engine::Engine;
use crate::model::aws_ranges::AwsRanges;
use crate::report::sanitize::terminal;
use crate::report::snapshot::{diff, render, render_suppressed};
use crate::scan::{self, ScanOptions};
use crate::source::{self, TimeRange};
use std::path::PathBuf;

/// `trailcedar snapshot`.
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// The corpus: files or directories of CloudTrail logs.
    #[arg(long, value_name = "DIR", required = true)]
    pub corpus: Vec<PathBuf>,

    /// The snapshot file.
    #[arg(long, value_name = "FILE")]
    pub snapshot: PathBuf,

    /// Compare with the snapshot and fail on any difference (the default).
    #[arg(long, conflicts_with = "update")]
    pub check: bool,

    /// Rewrite the snapshot with the current findings.
    #[arg(long)]
    pub update: bool,

    /// Directories of .cedar policies (repeatable). Default: the pack built into trailcedar.
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    #[command(flatten)]
    pub inventory: super::InventoryArgs,
}

const HEADER: &str = "# trailcedar snapshot: the findings of the pack over the corpus, sorted.\n# Regenerate with `trailcedar snapshot --update`; review the diff like code.\n";

/// Renders the findings and checks or updates the snapshot; exit code 0 when it matches (or was
/// written), 1 when it differs, 2 on errors.
pub fn run(args: &SnapshotArgs) -> Result<u8, String> {
    let pack = load_pack(&args.policies)?;
    let inventory = args.inventory.load(false)?;
    let engine = Engine::new(pack, AwsRanges::embedded())?.with_inventory(inventory);
    let inputs = source::resolve(&args.corpus, &TimeRange::default());
    let mut findings = Vec::new();
    // A snapshot's corpus is fixtures in no time order, not a trail: correlations take its
    // matches in exact time order, as `test` does, holding up to half a million of them (past
    // that the oldest is taken early, and the summary says so).
    let opts = ScanOptions {
        correlate: crate::correlate::Options {
            max_pending: 500_000,
            ..crate::correlate::Options::exact()
        },
        ..ScanOptions::default()
    };
    let summary = scan::run(&engine, &inputs, &opts, &(), &mut |f| {
        findings.push(f);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    if summary.has_errors() {
        eprint!("{}", summary.render());
        return Err(
            "the corpus was not read and evaluated in full; no snapshot compared".to_string(),
        );
    }
    // Locations relative to the corpus, so the snapshot reads the same on every machine.
    let root = match args.corpus.as_slice() {
        [one] if one.is_dir() => Some(one.as_path()),
        _ => None,
    };
    let current = format!(
        "{HEADER}{}{}",
        render(&findings, root),
        render_suppressed(&summary.suppressed)
    );
    let path = &args.snapshot;
    let name = terminal(&path.display().to_string()).into_owned();
    if args.update {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, &current).map_err(|e| format!("{}: {e}", path.display()))?;
        let (added, removed) = counts(&old, &current);
        eprintln!(
            "trailcedar: wrote {name}: {} finding(s), +{added} -{removed} line(s)",
            findings.len()
        );
        return Ok(0);
    }
    let old = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e} (create it with --update)", path.display()))?;
    match diff(
        &old,
        &current,
        &format!("{name} (snapshot)"),
        "current findings",
    ) {
        None => {
            eprintln!(
                "trailcedar: {name}: {} finding(s), unchanged",
                findings.len()
            );
            Ok(0)
        }
        Some(d) => {
            print!("{d}");
            let (added, removed) = counts(&old, &current);
            eprintln!(
                "trailcedar: {name} differs: +{added} -{removed} line(s); if the change is intended, accept it with --update"
            );
            Ok(1)
        }
    }
}

/// Lines added and removed between two texts.
fn counts(old: &str, new: &str) -> (usize, usize) {
    let d = similar::TextDiff::from_lines(old, new);
    let mut added = 0;
    let mut removed = 0;
    for c in d.iter_all_changes() {
        match c.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}
