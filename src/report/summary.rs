//! The scan summary: every file found and every event read is accounted for.
//!
//! `events read = evaluated + outside the time window + Insights records + rejected`, and each
//! file is read, skipped (with the reason) or unreadable (with the reason).

use super::sanitize::terminal;
use crate::engine::Severity;
use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::time::Duration;

/// An input or record that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    /// The record index within the input, for a rejected event.
    pub record: Option<u64>,
    pub reason: String,
}

/// The most characters of a reason kept: a reason can quote the input (a value of the wrong
/// type, say), and one event must not make megabytes of messages.
pub const MAX_REASON: usize = 400;

impl Problem {
    /// A problem whose reason is cut at [`MAX_REASON`] characters.
    pub fn new(path: &str, record: Option<u64>, reason: String) -> Problem {
        let reason = if reason.len() > MAX_REASON {
            crate::text::truncate(&reason, MAX_REASON)
        } else {
            reason
        };
        Problem {
            path: path.to_string(),
            record,
            reason,
        }
    }
}

/// Counts of one scan.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub files_read: u64,
    pub files_skipped_digest: u64,
    pub files_skipped_insight: u64,
    pub files_skipped_out_of_range: u64,
    pub files_skipped_not_log: u64,
    /// Digest files recognised by their content (not their path).
    pub digest_values: u64,
    pub unreadable: Vec<Problem>,

    pub events_read: u64,
    pub events_evaluated: u64,
    pub events_out_of_range: u64,
    pub events_insight: u64,
    pub events_rejected: u64,
    pub rejected: Vec<Problem>,

    pub events_flagged: u64,
    pub findings: u64,
    /// Findings per detection id, with its severity.
    pub by_detection: BTreeMap<String, (Severity, u64)>,
    /// Findings silenced, per suppression id.
    pub suppressed: BTreeMap<String, u64>,
    pub rule_errors: u64,
    pub rule_error_examples: Vec<Problem>,
    /// Matches of detections not reported on their own (correlations' per-event parts and
    /// building blocks), per detection id: they feed correlations.
    pub matches: BTreeMap<String, u64>,
    pub correlation: Correlations,
    pub bytes_read: u64,
    pub elapsed: Duration,
}

/// What the correlations did with their matches, beyond the findings they made.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Correlations {
    /// The lateness bound, in milliseconds.
    pub lateness_ms: i64,
    /// Matches that came later than the bound, applied to a window still open.
    pub late_applied: u64,
    /// Matches that came later than the bound, for a window already closed: counted, not
    /// applied.
    pub too_late: u64,
    pub too_late_examples: Vec<Problem>,
    /// Matches processed before the bound because more than the most allowed were waiting.
    pub released_early: u64,
    /// Groups that had not fired, dropped to keep the open groups under `--max-groups`.
    pub evicted: u64,
    /// Findings reported before their window ended, to keep under `--max-groups`.
    pub closed_early: u64,
    /// Open groups taken from `--state` at the start, and saved to it at the end.
    pub resumed: u64,
    pub saved: u64,
    /// The most groups open at once, over every correlation.
    pub peak_groups: u64,
}

/// How many examples of each kind of problem are kept for the summary.
pub const EXAMPLES: usize = 20;

impl Summary {
    /// Adds another summary's counts (of another input) to this one.
    pub fn absorb(&mut self, other: Summary) {
        self.files_read += other.files_read;
        self.files_skipped_digest += other.files_skipped_digest;
        self.files_skipped_insight += other.files_skipped_insight;
        self.files_skipped_out_of_range += other.files_skipped_out_of_range;
        self.files_skipped_not_log += other.files_skipped_not_log;
        self.digest_values += other.digest_values;
        self.unreadable.extend(other.unreadable);
        self.events_read += other.events_read;
        self.events_evaluated += other.events_evaluated;
        self.events_out_of_range += other.events_out_of_range;
        self.events_insight += other.events_insight;
        self.events_rejected += other.events_rejected;
        for r in other.rejected {
            if self.rejected.len() < EXAMPLES {
                self.rejected.push(r);
            }
        }
        self.events_flagged += other.events_flagged;
        self.findings += other.findings;
        for (id, (sev, n)) in other.by_detection {
            self.by_detection.entry(id).or_insert((sev, 0)).1 += n;
        }
        for (id, n) in other.suppressed {
            *self.suppressed.entry(id).or_insert(0) += n;
        }
        self.rule_errors += other.rule_errors;
        for r in other.rule_error_examples {
            if self.rule_error_examples.len() < EXAMPLES {
                self.rule_error_examples.push(r);
            }
        }
        for (id, n) in other.matches {
            *self.matches.entry(id).or_insert(0) += n;
        }
        self.bytes_read += other.bytes_read;
    }

    /// Whether the accounting identity holds.
    pub fn balanced(&self) -> bool {
        self.events_read
            == self.events_evaluated
                + self.events_out_of_range
                + self.events_insight
                + self.events_rejected
    }

    /// Whether anything could not be read or evaluated.
    pub fn has_errors(&self) -> bool {
        !self.unreadable.is_empty() || self.events_rejected > 0 || self.rule_errors > 0
    }

    /// The highest severity among the findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.by_detection.values().map(|(s, _)| *s).max()
    }

    /// The summary as printed on standard error.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.events_read as f64 / secs
        } else {
            0.0
        };
        writeln!(
            out,
            "trailcedar: {} event(s) in {} file(s), {:.2} s ({:.0} events/s)",
            self.events_read, self.files_read, secs, rate
        )?;
        let skipped = [
            (self.files_skipped_digest + self.digest_values, "digest"),
            (self.files_skipped_insight, "Insights"),
            (self.files_skipped_out_of_range, "outside --since/--until"),
            (self.files_skipped_not_log, "not a log file name"),
        ];
        let skipped: Vec<String> = skipped
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, why)| format!("{n} {why}"))
            .collect();
        if !skipped.is_empty() {
            writeln!(out, "  files skipped: {}", skipped.join(", "))?;
        }
        writeln!(
            out,
            "  events: {} read = {} evaluated + {} outside --since/--until + {} Insights records + {} rejected",
            self.events_read,
            self.events_evaluated,
            self.events_out_of_range,
            self.events_insight,
            self.events_rejected
        )?;
        writeln!(
            out,
            "  flagged: {} event(s), {} finding(s)",
            self.events_flagged, self.findings
        )?;
        let mut by: Vec<(&String, &(Severity, u64))> = self.by_detection.iter().collect();
        by.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        for (id, (sev, n)) in by {
            writeln!(out, "    {:<8} {:<44} {n}", sev.as_str(), terminal(id))?;
        }
        if !self.suppressed.is_empty() {
            let total: u64 = self.suppressed.values().sum();
            writeln!(
                out,
                "  suppressed: {total} finding(s) by {} suppression(s)",
                self.suppressed.len()
            )?;
            for (id, n) in &self.suppressed {
                writeln!(out, "    {:<53} {n}", terminal(id))?;
            }
        }
        if !self.matches.is_empty() {
            let total: u64 = self.matches.values().sum();
            writeln!(
                out,
                "  matched for correlations: {total} event(s), not reported on their own"
            )?;
            for (id, n) in &self.matches {
                writeln!(out, "    {:<8} {:<44} {n}", "match", terminal(id))?;
            }
        }
        self.correlation.write_to(out)?;
        if !self.unreadable.is_empty() {
            writeln!(
                out,
                "  unreadable: {} input(s), in whole or from where it says",
                self.unreadable.len()
            )?;
            for p in &self.unreadable {
                writeln!(out, "    {}: {}", terminal(&p.path), terminal(&p.reason))?;
            }
        }
        if self.events_rejected > 0 {
            writeln!(out, "  rejected: {} event(s)", self.events_rejected)?;
            write_located(out, &self.rejected)?;
            if self.events_rejected as usize > self.rejected.len() {
                writeln!(
                    out,
                    "    ... and {} more",
                    self.events_rejected as usize - self.rejected.len()
                )?;
            }
        }
        if self.rule_errors > 0 {
            writeln!(
                out,
                "  rule errors: {} (a rule that errs on an event did not decide it)",
                self.rule_errors
            )?;
            write_located(out, &self.rule_error_examples)?;
            if self.rule_errors as usize > self.rule_error_examples.len() {
                writeln!(
                    out,
                    "    ... and {} more",
                    self.rule_errors as usize - self.rule_error_examples.len()
                )?;
            }
        }
        Ok(())
    }
}

impl Correlations {
    fn write_to(&self, out: &mut String) -> fmt::Result {
        let lateness = crate::time::human_duration(self.lateness_ms);
        if self.late_applied > 0 || self.too_late > 0 {
            writeln!(
                out,
                "  late matches: {} after the {lateness} lateness bound, {} applied to windows still open, {} too late for theirs (counted, not applied; raise --lateness, or read the inputs in time order)",
                self.late_applied + self.too_late,
                self.late_applied,
                self.too_late
            )?;
            write_located(out, &self.too_late_examples)?;
        }
        if self.released_early > 0 {
            writeln!(
                out,
                "  correlations: {} match(es) taken before the lateness bound, more were waiting than are held",
                self.released_early
            )?;
        }
        if self.evicted > 0 || self.closed_early > 0 {
            writeln!(
                out,
                "  correlations: over --max-groups, {} group(s) that had not fired dropped and {} finding(s) reported before their window ended",
                self.evicted, self.closed_early
            )?;
        }
        if self.resumed > 0 || self.saved > 0 {
            writeln!(
                out,
                "  state: {} open window(s) resumed, {} saved",
                self.resumed, self.saved
            )?;
        }
        Ok(())
    }
}

/// Problems that name their record, one line each: `    path#record: reason`.
fn write_located(out: &mut String, problems: &[Problem]) -> fmt::Result {
    for p in problems {
        writeln!(
            out,
            "    {}#{}: {}",
            terminal(&p.path),
            p.record.unwrap_or(0),
            terminal(&p.reason)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_adds_and_caps_examples() {
        let mut a = Summary::default();
        for i in 0..30 {
            let mut s = Summary {
                events_read: 2,
                events_evaluated: 1,
                events_rejected: 1,
                ..Summary::default()
            };
            s.rejected.push(Problem {
                path: format!("f{i}"),
                record: Some(0),
                reason: "bad".into(),
            });
            s.by_detection.insert("x".into(), (Severity::High, 1));
            a.absorb(s);
        }
        assert_eq!(a.events_read, 60);
        assert!(a.balanced());
        assert_eq!(a.rejected.len(), EXAMPLES);
        assert_eq!(a.by_detection["x"], (Severity::High, 30));
        assert!(a.render().contains("... and 10 more"));
        assert!(a.has_errors());
    }

    #[test]
    fn render_escapes_file_names() {
        let s = Summary {
            unreadable: vec![Problem {
                path: "evil\u{1b}]0;pwned\u{7}.json".into(),
                record: None,
                reason: "x".into(),
            }],
            ..Summary::default()
        };
        assert!(!s.render().contains('\u{1b}'));
    }
}
