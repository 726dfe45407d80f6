//! `trailcedar list`: the detections of a pack, with what each detects (ATT&CK technique and
//! tactic, CIS control, Stratus Red Team technique), the data it needs and how it works.
//!
//! A detection names its techniques in `@mitre("T1562.008, T1485")`; the tactic of each comes
//! from [`TECHNIQUES`], a small table of the techniques AWS detections use, each under the one
//! tactic a CloudTrail detection of it serves (ATT&CK lists some techniques under several:
//! T1078 is initial access, persistence, privilege escalation and defense evasion). A technique
//! the table lacks is listed under the tactic `unknown`. `@cis("4.5")` names the CIS AWS
//! Foundations Benchmark monitoring controls a detection implements, `@stratus(...)` the Stratus
//! Red Team techniques whose detonation it flags.
//! Whether a detection needs inventory comes from its analysis: it reads an inventory fact
//! (`principal.accessKeyStatus`, a tag, `context.source`...).

use super::load_pack;
use crate::engine::Severity;
use crate::engine::pack::{Detection, Pack};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// `trailcedar list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// A directory of .cedar policies (repeatable). Default: the pack built into trailcedar.
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

/// How the list is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// One line per detection.
    Table,
    /// A JSON array of detections.
    Json,
    /// The coverage tables of the README: ATT&CK tactics and techniques, CIS controls, Stratus
    /// Red Team techniques, and the detections.
    Markdown,
}

pub use crate::report::attack::{TACTICS, TECHNIQUES};

/// The monitoring controls of the CIS AWS Foundations Benchmark (section 4 of v1.5 to v3.0).
pub const CIS_CONTROLS: &[(&str, &str)] = &[
    ("4.1", "Unauthorized API calls"),
    ("4.2", "Management Console sign-in without MFA"),
    ("4.3", "Usage of the root account"),
    ("4.4", "IAM policy changes"),
    ("4.5", "CloudTrail configuration changes"),
    ("4.6", "Management Console authentication failures"),
    (
        "4.7",
        "Disabling or scheduled deletion of customer created CMKs",
    ),
    ("4.8", "S3 bucket policy changes"),
    ("4.9", "AWS Config configuration changes"),
    ("4.10", "Security group changes"),
    ("4.11", "Changes to Network Access Control Lists (NACL)"),
    ("4.12", "Changes to network gateways"),
    ("4.13", "Route table changes"),
    ("4.14", "VPC changes"),
    ("4.15", "AWS Organizations changes"),
];

/// An ATT&CK technique a detection names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Technique {
    pub id: String,
    /// Empty when [`TECHNIQUES`] does not know it.
    pub name: String,
    /// `unknown` when [`TECHNIQUES`] does not know it.
    pub tactic: String,
}

/// One detection as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: String,
    pub title: String,
    /// `None` for a permit of an allow-list pack.
    pub severity: Option<Severity>,
    pub techniques: Vec<Technique>,
    /// The tactics of the techniques, each once, in matrix order.
    pub tactics: Vec<String>,
    /// CIS AWS Foundations Benchmark controls (`4.5`).
    pub cis: Vec<String>,
    /// Stratus Red Team techniques (`aws.defense-evasion.cloudtrail-stop`).
    pub stratus: Vec<String>,
    /// It reads inventory facts; without `--inventory` those are absent.
    pub inventory: bool,
    /// `single-event`: decided on each event alone; over many events, `count`, `distinct`,
    /// `sequence` or `grouping` (a correlation), or `building block` (a step of one, never
    /// reported alone).
    pub kind: &'static str,
    pub file: String,
    pub line: usize,
}

/// The comma-separated values of an annotation.
fn listed(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn tactic_rank(tactic: &str) -> usize {
    TACTICS
        .iter()
        .position(|(id, _)| *id == tactic)
        .unwrap_or(TACTICS.len())
}

fn tactic_name(tactic: &str) -> &str {
    TACTICS
        .iter()
        .find(|(id, _)| *id == tactic)
        .map(|(_, name)| *name)
        .unwrap_or(tactic)
}

/// A technique with its name and tactic from [`TECHNIQUES`].
pub fn technique(id: &str) -> Technique {
    match TECHNIQUES.iter().find(|(t, _, _)| *t == id) {
        Some((_, name, tactic)) => Technique {
            id: id.to_string(),
            name: (*name).to_string(),
            tactic: (*tactic).to_string(),
        },
        None => Technique {
            id: id.to_string(),
            name: String::new(),
            tactic: "unknown".to_string(),
        },
    }
}

/// The entry of one detection.
pub fn entry(d: &Detection) -> Entry {
    let techniques: Vec<Technique> = listed(d.mitre.as_deref())
        .iter()
        .map(|t| technique(t))
        .collect();
    let mut tactics: Vec<String> = techniques.iter().map(|t| t.tactic.clone()).collect();
    tactics.sort_by_key(|t| tactic_rank(t));
    tactics.dedup();
    Entry {
        id: d.id.clone(),
        title: d.title.clone(),
        severity: d.severity,
        techniques,
        tactics,
        cis: listed(d.policy.annotation("cis")),
        stratus: listed(d.policy.annotation("stratus")),
        inventory: d.analysis.reads.iter().any(|r| r.inventory.is_some()),
        kind: kind(d),
        file: d.file.clone(),
        line: d.line,
    }
}

fn kind(d: &Detection) -> &'static str {
    use crate::engine::correlation::Kind;
    match (&d.correlation, d.building_block) {
        (Some(c), _) => match c.kind {
            Kind::Count => "count",
            Kind::Distinct => "distinct",
            Kind::Sequence => "sequence",
            Kind::Group => "grouping",
        },
        (None, true) => "building block",
        (None, false) => "single-event",
    }
}

/// Every detection of the pack, by tactic (in matrix order), then severity (most severe first),
/// then id.
pub fn entries(pack: &Pack) -> Vec<Entry> {
    let mut out: Vec<Entry> = pack.detections.iter().map(entry).collect();
    out.sort_by(|a, b| {
        let rank = |e: &Entry| e.tactics.first().map_or(usize::MAX, |t| tactic_rank(t));
        rank(a)
            .cmp(&rank(b))
            .then(b.severity.cmp(&a.severity))
            .then(a.id.cmp(&b.id))
    });
    out
}

fn severity(e: &Entry) -> &'static str {
    e.severity.map_or("-", Severity::as_str)
}

fn data(e: &Entry) -> &'static str {
    if e.inventory {
        "events + inventory"
    } else {
        "events"
    }
}

/// One line per detection, in columns.
pub fn table(entries: &[Entry]) -> String {
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            [
                severity(e).to_string(),
                e.id.clone(),
                e.techniques
                    .iter()
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                e.tactics.join(","),
                data(e).to_string(),
                e.kind.to_string(),
                e.title.clone(),
            ]
        })
        .collect();
    let header = [
        "SEVERITY",
        "DETECTION",
        "ATT&CK",
        "TACTIC",
        "DATA",
        "KIND",
        "TITLE",
    ]
    .map(str::to_string);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} detection(s): {} single-event, {} over many events, {} reading inventory facts",
        entries.len(),
        entries.iter().filter(|e| e.kind == "single-event").count(),
        entries.iter().filter(|e| e.kind != "single-event").count(),
        entries.iter().filter(|e| e.inventory).count()
    );
    out
}

fn code_list(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The README's coverage section: ATT&CK tactics and techniques against detections, CIS
/// controls, Stratus Red Team techniques, and every detection.
pub fn markdown(entries: &[Entry]) -> String {
    let mut out = String::new();
    // Tactic → technique → detections.
    let mut by_technique: BTreeMap<(usize, String), (String, Vec<&str>)> = BTreeMap::new();
    for e in entries {
        for t in &e.techniques {
            by_technique
                .entry((tactic_rank(&t.tactic), t.id.clone()))
                .or_insert_with(|| (t.name.clone(), Vec::new()))
                .1
                .push(&e.id);
        }
    }
    out.push_str("| tactic | technique | detections |\n|---|---|---|\n");
    let mut last_tactic = usize::MAX;
    for ((rank, id), (name, ids)) in &by_technique {
        let tactic = match TACTICS.get(*rank) {
            Some(_) if *rank == last_tactic => String::new(),
            Some((_, name)) => (*name).to_string(),
            None => "unknown".to_string(),
        };
        last_tactic = *rank;
        let _ = writeln!(out, "| {tactic} | {id} {name} | {} |", code_list(ids));
    }

    out.push_str("\n| CIS AWS Foundations control | detections |\n|---|---|\n");
    for (control, name) in CIS_CONTROLS {
        let ids: Vec<&str> = entries
            .iter()
            .filter(|e| e.cis.iter().any(|c| c == control))
            .map(|e| e.id.as_str())
            .collect();
        let cell = if ids.is_empty() {
            "-".to_string()
        } else {
            code_list(&ids)
        };
        let _ = writeln!(out, "| {control} {name} | {cell} |");
    }

    let mut by_stratus: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in entries {
        for s in &e.stratus {
            by_stratus.entry(s).or_default().push(&e.id);
        }
    }
    out.push_str("\n| Stratus Red Team technique | detections |\n|---|---|\n");
    for (technique, ids) in &by_stratus {
        let _ = writeln!(out, "| `{technique}` | {} |", code_list(ids));
    }

    out.push_str(
        "\n| detection | severity | ATT&CK | tactic | data | kind |\n|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let techniques: Vec<&str> = e.techniques.iter().map(|t| t.id.as_str()).collect();
        let tactics: Vec<&str> = e.tactics.iter().map(|t| tactic_name(t)).collect();
        let _ = writeln!(
            out,
            "| `{}` {} | {} | {} | {} | {} | {} |",
            e.id,
            e.title.replace('|', "\\|"),
            severity(e),
            techniques.join(", "),
            tactics.join(", "),
            data(e),
            e.kind
        );
    }
    out
}

/// Lists the pack's detections; the exit code.
pub fn run(args: &ListArgs) -> Result<u8, String> {
    let pack = load_pack(&args.policies)?;
    let entries = entries(&pack);
    let text = match args.format {
        ListFormat::Table => table(&entries),
        ListFormat::Markdown => markdown(&entries),
        ListFormat::Json => {
            serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())? + "\n"
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pack::{PolicySource, load};

    const POLICY: &str = r#"
// A test detection.
@id("x-logs-stopped")
@title("Logs stopped")
@severity("high")
@mitre("T1562.008, T9999")
@cis("4.5")
@stratus("aws.defense-evasion.cloudtrail-stop")
forbid (principal, action == Action::"cloudtrail:StopLogging", resource);

@id("x-foreign")
@title("Foreign | principal")
@severity("medium")
@mitre("T1078.004")
forbid (principal, action, resource) when { principal has accountInOrganization && !principal.accountInOrganization };
"#;

    fn pack() -> Pack {
        load(
            vec![PolicySource {
                name: "t.cedar".to_string(),
                text: POLICY.into(),
            }],
            "test",
        )
        .unwrap()
    }

    #[test]
    fn entries_carry_techniques_tactics_and_data() {
        let entries = entries(&pack());
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["x-foreign", "x-logs-stopped"], "initial access first");
        let foreign = &entries[0];
        assert!(foreign.inventory, "reads an inventory fact");
        assert_eq!(foreign.tactics, ["initial-access"]);
        let stopped = &entries[1];
        assert!(!stopped.inventory);
        assert_eq!(stopped.cis, ["4.5"]);
        assert_eq!(stopped.stratus, ["aws.defense-evasion.cloudtrail-stop"]);
        assert_eq!(stopped.tactics, ["defense-evasion", "unknown"]);
        assert_eq!(stopped.techniques[1].name, "");
    }

    #[test]
    fn markdown_groups_techniques_by_tactic() {
        let md = markdown(&entries(&pack()));
        assert!(
            md.contains(
                "| Initial Access | T1078.004 Valid Accounts: Cloud Accounts | `x-foreign` |"
            ),
            "{md}"
        );
        assert!(md.contains("| Defense Evasion | T1562.008 Impair Defenses: Disable or Modify Cloud Logs | `x-logs-stopped` |"), "{md}");
        assert!(
            md.contains("| unknown | T9999  | `x-logs-stopped` |"),
            "{md}"
        );
        assert!(
            md.contains("| 4.5 CloudTrail configuration changes | `x-logs-stopped` |"),
            "{md}"
        );
        assert!(md.contains("| 4.1 Unauthorized API calls | - |"), "{md}");
        assert!(
            md.contains("| `aws.defense-evasion.cloudtrail-stop` | `x-logs-stopped` |"),
            "{md}"
        );
        assert!(md.contains("| `x-foreign` Foreign \\| principal | medium | T1078.004 | Initial Access | events + inventory | single-event |"), "{md}");
    }

    #[test]
    fn table_has_a_line_per_detection() {
        let t = table(&entries(&pack()));
        assert_eq!(t.lines().count(), 4, "{t}");
        assert!(t.starts_with("SEVERITY"), "{t}");
        assert!(t.contains("high      x-logs-stopped"), "{t}");
        assert!(
            t.ends_with(
                "2 detection(s): 2 single-event, 0 over many events, 1 reading inventory facts\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn techniques_are_known_once_with_a_tactic() {
        for (i, (id, _, tactic)) in TECHNIQUES.iter().enumerate() {
            assert!(TACTICS.iter().any(|(t, _)| t == tactic), "{id}: {tactic}");
            assert!(
                TECHNIQUES[..i].iter().all(|(other, _, _)| other != id),
                "{id} twice"
            );
        }
    }
}
