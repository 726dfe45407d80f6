//! Findings in time order across files, in bounded memory: `scan --sort time`.
//!
//! Findings arrive in input order (file by file). Up to [`RUN`] of them are held; when that
//! many have arrived they are sorted and written to a spill file (JSON lines, in a temporary
//! directory that is removed when the sorter is dropped). At the end the spilled runs and the
//! last one in memory are merged, reading one finding of each run at a time; when there are
//! more than [`FAN_IN`] runs, groups of them are first merged into longer runs, so that no
//! more than [`FAN_IN`] files are open at once. Memory is therefore bounded by one run plus one
//! finding per open run, whatever the number of findings.

use super::{Finding, FindingWriter};
use crate::time::Timestamp;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

/// Findings held in memory before a run is spilled.
pub const RUN: usize = 20_000;

/// The most runs merged at once.
pub const FAN_IN: usize = 64;

/// The order of findings in time: their event's time, then where they were read (file,
/// record) so that equal times keep a stable, input-like order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeKey {
    /// Milliseconds; an unparseable time (never produced by the model) sorts first.
    time: i64,
    file: String,
    record: u64,
}

impl TimeKey {
    pub fn of(f: &Finding) -> TimeKey {
        TimeKey {
            time: Timestamp::parse(&f.event.event_time).map_or(i64::MIN, |t| t.0),
            file: f.location.file.clone(),
            record: f.location.record,
        }
    }
}

/// Sorts findings by time, spilling to disk beyond [`RUN`] of them.
pub struct TimeSorter {
    run: usize,
    held: Vec<(TimeKey, u64, Finding)>,
    /// Arrival number: findings of one event keep their order.
    seq: u64,
    spills: Vec<PathBuf>,
    /// Spill files made so far, to name the next.
    files: usize,
    dir: Option<tempfile::TempDir>,
}

impl Default for TimeSorter {
    fn default() -> Self {
        TimeSorter::with_run(RUN)
    }
}

impl TimeSorter {
    /// A sorter that spills every `run` findings (at least one).
    pub fn with_run(run: usize) -> TimeSorter {
        TimeSorter {
            run: run.max(1),
            held: Vec::new(),
            seq: 0,
            spills: Vec::new(),
            files: 0,
            dir: None,
        }
    }

    /// How many runs were spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.spills.len()
    }

    /// Takes one finding.
    pub fn push(&mut self, finding: Finding) -> io::Result<()> {
        self.held.push((TimeKey::of(&finding), self.seq, finding));
        self.seq += 1;
        if self.held.len() >= self.run {
            self.spill()?;
        }
        Ok(())
    }

    fn new_file(&mut self) -> io::Result<(PathBuf, BufWriter<File>)> {
        if self.dir.is_none() {
            self.dir = Some(
                tempfile::Builder::new()
                    .prefix("trailcedar-sort-")
                    .tempdir()?,
            );
        }
        let dir = self.dir.as_ref().map(|d| d.path().to_path_buf());
        self.files += 1;
        let path = dir
            .unwrap_or_default()
            .join(format!("run-{}.jsonl", self.files));
        let file = File::create(&path)?;
        Ok((path, BufWriter::new(file)))
    }

    fn spill(&mut self) -> io::Result<()> {
        let mut held = std::mem::take(&mut self.held);
        held.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let (path, mut out) = self.new_file()?;
        for (_, seq, finding) in &held {
            write_line(&mut out, *seq, finding)?;
        }
        out.flush()?;
        self.spills.push(path);
        Ok(())
    }

    /// Writes every finding to `writer` in time order.
    pub fn finish(mut self, writer: &mut dyn FindingWriter) -> io::Result<()> {
        if self.spills.is_empty() {
            let mut held = std::mem::take(&mut self.held);
            held.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            for (_, _, f) in &held {
                writer.write(f)?;
            }
            return Ok(());
        }
        if !self.held.is_empty() {
            self.spill()?;
        }
        // Merge groups until one merge can read every run at once.
        while self.spills.len() > FAN_IN {
            let group: Vec<PathBuf> = self.spills.drain(..FAN_IN).collect();
            let (path, mut out) = self.new_file()?;
            merge(&group, &mut |seq, f| write_line(&mut out, seq, f))?;
            out.flush()?;
            for p in &group {
                let _ = std::fs::remove_file(p);
            }
            self.spills.push(path);
        }
        let spills = std::mem::take(&mut self.spills);
        merge(&spills, &mut |_, f| writer.write(f))
    }
}

/// A spilled finding: its arrival number and the finding.
#[derive(serde::Serialize, serde::Deserialize)]
struct Spilled {
    seq: u64,
    finding: Finding,
}

fn write_line(out: &mut impl Write, seq: u64, finding: &Finding) -> io::Result<()> {
    let line = serde_json::to_string(&SpilledRef { seq, finding }).map_err(io::Error::other)?;
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")
}

#[derive(serde::Serialize)]
struct SpilledRef<'a> {
    seq: u64,
    finding: &'a Finding,
}

/// The next finding of a run, or `None` at its end.
fn next_of(run: &mut BufReader<File>, line: &mut String) -> io::Result<Option<Spilled>> {
    line.clear();
    if run.read_line(line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(line.trim_end())
        .map(Some)
        .map_err(|e| io::Error::other(format!("a sort spill file: {e}")))
}

/// One run's head in the merge: ordered by its finding's key, then arrival.
struct Head {
    key: TimeKey,
    seq: u64,
    run: usize,
    finding: Finding,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.key, self.seq, self.run).cmp(&(&other.key, other.seq, other.run))
    }
}

/// Merges sorted runs, handing each finding with its arrival number to `out` in order.
fn merge(runs: &[PathBuf], out: &mut dyn FnMut(u64, &Finding) -> io::Result<()>) -> io::Result<()> {
    let mut readers = Vec::with_capacity(runs.len());
    for path in runs {
        readers.push(BufReader::new(File::open(path)?));
    }
    let mut line = String::new();
    let mut heap = BinaryHeap::new();
    for (run, reader) in readers.iter_mut().enumerate() {
        if let Some(s) = next_of(reader, &mut line)? {
            heap.push(Reverse(Head {
                key: TimeKey::of(&s.finding),
                seq: s.seq,
                run,
                finding: s.finding,
            }));
        }
    }
    while let Some(Reverse(head)) = heap.pop() {
        out(head.seq, &head.finding)?;
        if let Some(reader) = readers.get_mut(head.run)
            && let Some(s) = next_of(reader, &mut line)?
        {
            heap.push(Reverse(Head {
                key: TimeKey::of(&s.finding),
                seq: s.seq,
                run: head.run,
                finding: s.finding,
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<Finding>);
    impl FindingWriter for Collect {
        fn write(&mut self, f: &Finding) -> io::Result<()> {
            self.0.push(f.clone());
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn finding(time: &str, file: &str, record: u64) -> Finding {
        let mut f = super::super::tests::sample();
        f.event.event_time = time.to_string();
        f.location.file = file.to_string();
        f.location.record = record;
        f
    }

    /// Findings of several files, each in its own time order, the files interleaved in time.
    fn inputs(n: u64) -> Vec<Finding> {
        let mut out = Vec::new();
        for file in 0..5u64 {
            for r in 0..n {
                let second = (r * 5 + (4 - file)) % 60;
                let minute = (r * 5 + (4 - file)) / 60;
                out.push(finding(
                    &format!("2024-05-14T{:02}:{minute:02}:{second:02}Z", file % 3),
                    &format!("f{file}.json"),
                    r,
                ));
            }
        }
        out
    }

    fn sorted_by(run: usize, findings: &[Finding]) -> (Vec<Finding>, usize) {
        let mut sorter = TimeSorter::with_run(run);
        for f in findings {
            sorter.push(f.clone()).unwrap();
        }
        let spilled = sorter.spilled_runs();
        let mut out = Collect(Vec::new());
        sorter.finish(&mut out).unwrap();
        (out.0, spilled)
    }

    #[test]
    fn spilling_and_merging_give_the_order_of_an_in_memory_sort() {
        let findings = inputs(200);
        let mut expected = findings.clone();
        expected.sort_by_key(TimeKey::of);
        let (in_memory, spilled) = sorted_by(usize::MAX, &findings);
        assert_eq!(spilled, 0);
        assert_eq!(in_memory, expected);
        // 1000 findings in runs of 7: 142 runs, more than FAN_IN, so merged in two levels.
        let (merged, spilled) = sorted_by(7, &findings);
        assert_eq!(spilled, 142);
        assert_eq!(merged.len(), expected.len());
        assert!(merged == expected, "the same order, findings intact");
    }

    #[test]
    fn times_sort_as_times_not_as_text() {
        let findings = vec![
            finding("2024-05-14T00:00:01.500Z", "a", 0),
            finding("2024-05-14T00:00:01Z", "a", 1),
            finding("2024-05-14T00:00:00.999Z", "b", 0),
        ];
        let (out, _) = sorted_by(2, &findings);
        let times: Vec<&str> = out.iter().map(|f| f.event.event_time.as_str()).collect();
        assert_eq!(
            times,
            [
                "2024-05-14T00:00:00.999Z",
                "2024-05-14T00:00:01Z",
                "2024-05-14T00:00:01.500Z"
            ]
        );
    }

    #[test]
    fn equal_keys_keep_their_arrival_order_and_spill_files_go() {
        // Two findings of one event (same file and record) keep the order they came in.
        let mut a = finding("2024-05-14T00:00:00Z", "a", 0);
        a.detection.id = "first".into();
        let mut b = a.clone();
        b.detection.id = "second".into();
        let findings = vec![finding("2024-05-14T00:00:05Z", "a", 1), a, b];
        let mut sorter = TimeSorter::with_run(1);
        for f in findings {
            sorter.push(f).unwrap();
        }
        let dir = sorter.dir.as_ref().map(|d| d.path().to_path_buf()).unwrap();
        assert!(dir.exists());
        let mut out = Collect(Vec::new());
        sorter.finish(&mut out).unwrap();
        let ids: Vec<&str> = out.0.iter().map(|f| f.detection.id.as_str()).collect();
        assert_eq!(&ids[..2], ["first", "second"]);
        assert!(!dir.exists(), "the spill directory is removed");
    }
}
