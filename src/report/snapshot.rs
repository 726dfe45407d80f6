//! Findings as stable, sorted text: what a reviewer reads when a rule change shows up as a diff.

use super::Finding;
use super::sanitize::terminal;
use std::path::Path;

/// Renders findings sorted by detection, time and event: one block per finding with the values
/// its policy read. With `corpus`, each block ends with where the event is, relative to it.
pub fn render(findings: &[Finding], corpus: Option<&Path>) -> String {
    let mut blocks: Vec<String> = findings.iter().map(|f| block(f, corpus)).collect();
    blocks.sort();
    blocks.join("")
}

/// The findings suppressions silenced, by suppression, after the findings: a change to a
/// suppression shows in the diff too.
pub fn render_suppressed(suppressed: &std::collections::BTreeMap<String, u64>) -> String {
    suppressed
        .iter()
        .map(|(id, n)| format!("suppressed by {}: {n} finding(s)\n", terminal(id)))
        .collect()
}

fn block(f: &Finding, corpus: Option<&Path>) -> String {
    // Log content is attacker-controlled, and a snapshot is read in terminals and diffs.
    let t = |s: &str| terminal(s).into_owned();
    let e = &f.event;
    let mut s = format!(
        "{} [{}] {} {}\n  {} {} by {} ({})\n  on {}\n",
        t(&f.detection.id),
        f.detection.severity,
        t(&e.event_time),
        t(&e.event_id),
        t(&e.action),
        t(e.source_ip_address.as_deref().unwrap_or("-")),
        t(&e.principal),
        t(&e.principal_type),
        t(&e.resource)
    );
    if let Some(c) = &f.correlation {
        s.push_str(&format!("  {}\n", t(&c.rule)));
        for g in &c.group {
            s.push_str(&format!(
                "  group {} = {}\n",
                t(&g.field),
                t(g.value.as_deref().unwrap_or("-"))
            ));
        }
        s.push_str(&format!("  {}\n", t(&c.counted())));
        if let Some(values) = c.distinct_values(usize::MAX) {
            s.push_str(&format!("  values {}\n", t(&values)));
        }
        for x in &c.sample {
            // Where it is, relative to the corpus; without one, its record in its file.
            let at = match corpus {
                Some(root) => {
                    let file = Path::new(&x.location.file);
                    let shown = file.strip_prefix(root).unwrap_or(file);
                    format!("{}#{}", shown.display(), x.location.record)
                }
                None => format!("#{}", x.location.record),
            };
            s.push_str(&format!(
                "  event {} {} {} {} {}\n",
                t(&x.event_time),
                t(&x.event_id),
                t(&x.action),
                t(&x.detection),
                t(&at)
            ));
            if !x.values.is_empty() {
                s.push_str(&format!("    {}\n", t(&x.read())));
            }
        }
        if c.omitted > 0 {
            s.push_str(&format!("  and {} more event(s)\n", c.omitted));
        }
    } else {
        for v in &f.values {
            if let Some(value) = &v.value {
                s.push_str(&format!("  {} = {}\n", t(&v.field), t(value)));
            }
        }
        let absent: Vec<String> = f.absent_fields().into_iter().map(t).collect();
        if !absent.is_empty() {
            s.push_str(&format!("  absent: {}\n", absent.join(", ")));
        }
    }
    for n in &f.notes {
        s.push_str(&format!("  note: {}\n", t(n)));
    }
    if let Some(root) = corpus {
        let file = Path::new(&f.location.file);
        let shown = file.strip_prefix(root).unwrap_or(file);
        s.push_str(&format!(
            "  in {}#{}\n",
            t(&shown.display().to_string()),
            f.location.record
        ));
    }
    s
}

/// A unified diff of two renderings; `None` when they are equal.
pub fn diff(old: &str, new: &str, old_name: &str, new_name: &str) -> Option<String> {
    if old == new {
        return None;
    }
    Some(
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(old_name, new_name)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_what_changed() {
        assert_eq!(diff("a\nb\n", "a\nb\n", "x", "y"), None);
        let d = diff("a\nb\n", "a\nc\n", "snapshot", "current").unwrap();
        assert!(d.contains("--- snapshot\n+++ current\n"), "{d}");
        assert!(d.contains("-b\n+c\n"), "{d}");
    }
}
