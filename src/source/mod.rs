//! Sources: the paths a user names become a list of inputs, before any of them is opened.
//!
//! Directories are walked in name order so that a scan is reproducible. Files that the path
//! alone says not to read are counted here and never opened: CloudTrail digest and Insights
//! deliveries, and S3-layout files whose delivery day lies outside `--since`/`--until`.
//! `s3://bucket/prefix/` names the objects under it ([`s3`]); `--shard K/N` keeps a part of
//! the inputs ([`shard`]).

pub mod profile;
pub mod s3;
pub mod shard;

use crate::time::Timestamp;
use std::path::{Component, Path, PathBuf};

/// Where events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file on disk, `.json` or gzip-compressed (recognised by its magic bytes).
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
    /// An object in S3 or an S3-compatible store, read as a stream like a file.
    Object(s3::S3Object),
}

impl Input {
    /// Whether it ends by itself, soon: a regular file or an object, not a stream (standard
    /// input, a pipe, a device) whose next record may be long in coming.
    pub fn is_bounded(&self) -> bool {
        match self {
            Input::File(path) => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
            Input::Stdin => false,
            Input::Object(_) => true,
        }
    }

    /// The name shown in findings and errors.
    pub fn display_name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
            Input::Object(o) => o.url(),
        }
    }
}

/// The time window of a scan: `since <= eventTime < until`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl TimeRange {
    /// Whether an event at `t` is inside the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// Whether a file delivered on the UTC day starting at `day` can hold events in the window.
    ///
    /// A delivery file holds events up to its delivery time, and events of the previous day
    /// that were delivered after midnight, so the day before is kept as a margin.
    pub fn may_hold(&self, day: Timestamp) -> bool {
        let earliest = day.plus_days(-1);
        let latest = day.plus_days(1);
        self.since.is_none_or(|s| latest > s) && self.until.is_none_or(|u| earliest < u)
    }

    /// Whether any bound is set.
    pub fn is_bounded(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

/// Why a file was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Under `CloudTrail-Digest/`: integrity digests, not events.
    Digest,
    /// Under `CloudTrail-Insight/`: Insights analyses, not API calls.
    Insight,
    /// An S3-layout file delivered on a day outside the time window.
    OutOfRange,
    /// In a walked directory, a file whose name is not a log file's, or not a regular file.
    NotLog,
}

/// A path that could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub path: String,
    pub reason: String,
}

/// The result of resolving the user's paths.
#[derive(Debug, Default)]
pub struct Inputs {
    pub inputs: Vec<Input>,
    pub skipped: Vec<(PathBuf, Skip)>,
    pub errors: Vec<InputError>,
}

impl Inputs {
    /// How many files were skipped for `reason`.
    pub fn skipped(&self, reason: Skip) -> usize {
        self.skipped.iter().filter(|(_, r)| *r == reason).count()
    }
}

/// Resolves paths (files, directories, `-`) into inputs, skipping by path what need not be read.
pub fn resolve(paths: &[PathBuf], range: &TimeRange) -> Inputs {
    resolve_with(paths, range, &s3::S3Options::default())
}

/// Resolves paths as [`resolve`] does, and `s3://bucket/prefix/` into the objects under it.
pub fn resolve_with(paths: &[PathBuf], range: &TimeRange, options: &s3::S3Options) -> Inputs {
    let mut out = Inputs::default();
    let mut clients = s3::Clients::default();
    for path in paths {
        if let Some(url) = path.to_str().filter(|p| p.starts_with("s3://")) {
            s3::resolve(url, range, options, &mut clients, &mut out);
            continue;
        }
        if path.as_os_str() == "-" {
            // Standard input is one stream: named twice, it is read once.
            if !out.inputs.contains(&Input::Stdin) {
                out.inputs.push(Input::Stdin);
            }
            continue;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk_dir(path, range, &mut out),
            Ok(_) => classify(path.clone(), range, &mut out),
            Err(e) => out.errors.push(InputError {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }
    out
}

fn walk_dir(root: &Path, range: &TimeRange, out: &mut Inputs) {
    let found = walk(root, is_log_name);
    for path in found.files {
        classify(path, range, out);
    }
    out.skipped
        .extend(found.skipped.into_iter().map(|p| (p, Skip::NotLog)));
    out.errors.extend(found.errors);
}

/// What a walk of a directory found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files whose name was accepted, in name order.
    pub files: Vec<PathBuf>,
    /// Files whose name was not accepted, and what is not a regular file (sockets, pipes,
    /// devices): never opened.
    pub skipped: Vec<PathBuf>,
    /// What could not be listed or followed: an unreadable directory, a broken link, a cycle.
    pub errors: Vec<InputError>,
}

/// Walks `root` in name order, following symbolic links (synced archives and inventories are
/// often made of them), the one way every directory is read: logs and inventory alike.
pub fn walk(root: &Path, accept: impl Fn(&Path) -> bool) -> Walk {
    let mut out = Walk::default();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() => {
                let path = entry.into_path();
                if accept(&path) {
                    out.files.push(path);
                } else {
                    out.skipped.push(path);
                }
            }
            Ok(entry) if entry.file_type().is_dir() => {}
            Ok(entry) => out.skipped.push(entry.into_path()),
            Err(e) => out.errors.push(InputError {
                path: e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| root.display().to_string()),
                reason: e
                    .io_error()
                    .map(|io| io.to_string())
                    .unwrap_or_else(|| e.to_string()),
            }),
        }
    }
    out
}

fn classify(path: PathBuf, range: &TimeRange, out: &mut Inputs) {
    classify_input(&path.clone(), Input::File(path), range, out);
}

/// Keeps `input`, or counts it skipped by what its path (a file's, an object's key) says.
fn classify_input(path: &Path, input: Input, range: &TimeRange, out: &mut Inputs) {
    let skip = skip_by_name(path).or_else(|| {
        (range.is_bounded() && s3_delivery_day(path).is_some_and(|day| !range.may_hold(day)))
            .then_some(Skip::OutOfRange)
    });
    match skip {
        Some(skip) => {
            let name = match input {
                Input::File(p) => p,
                other => PathBuf::from(other.display_name()),
            };
            out.skipped.push((name, skip));
        }
        None => out.inputs.push(input),
    }
}

/// Names a walk reads: `.json`, `.jsonl`, `.ndjson`, each optionally `.gz`.
fn is_log_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with('.') {
        return false;
    }
    let name = name.strip_suffix(".gz").unwrap_or(name);
    [".json", ".jsonl", ".ndjson"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

fn skip_by_name(path: &Path) -> Option<Skip> {
    path.components().find_map(|c| match c {
        Component::Normal(name) if name == "CloudTrail-Digest" => Some(Skip::Digest),
        Component::Normal(name) if name == "CloudTrail-Insight" => Some(Skip::Insight),
        _ => None,
    })
}

/// The delivery day of a file in the S3 layout `AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/`.
pub fn s3_delivery_day(path: &Path) -> Option<Timestamp> {
    let parts = normal_parts(path);
    let at = parts.iter().rposition(|p| *p == "CloudTrail")?;
    let tail = parts.get(at + 2..at + 5)?;
    let [y, m, d] = tail else { return None };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    Timestamp::from_date(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The delivery time in the name of a file of the S3 layout:
/// `<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz`.
pub fn s3_delivery_time(path: &Path) -> Option<Timestamp> {
    let name = path.file_name()?.to_str()?;
    let (_, rest) = name.split_once("_CloudTrail_")?;
    let stamp = rest.split('_').nth(1)?;
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    if date.len() != 8
        || time.len() != 4
        || !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let number = |s: &str| s.parse::<u32>().ok();
    let day = Timestamp::from_date(
        i64::from(number(date.get(..4)?)?),
        number(date.get(4..6)?)?,
        number(date.get(6..8)?)?,
    )?;
    let (h, m) = (number(time.get(..2)?)?, number(time.get(2..)?)?);
    (h < 24 && m < 60).then(|| Timestamp(day.0 + i64::from(h * 60 + m) * 60_000))
}

/// Orders inputs so that the files of a multi-region archive interleave by delivery time (in
/// their names), as a trail delivered them: the regions' directories are walked one after the
/// other, and correlations want events in about the order they happened. Inputs without a
/// delivery time keep their order, before the others; equal times keep their order.
pub fn delivery_order(inputs: &mut [&Input]) {
    inputs.sort_by_key(|i| match i {
        Input::File(p) => s3_delivery_time(p),
        Input::Object(o) => s3_delivery_time(Path::new(&o.key)),
        Input::Stdin => None,
    });
}

/// The account and region of a file in the S3 layout: `AWSLogs/<account>/CloudTrail/<region>/`
/// or an organization trail's `AWSLogs/o-org/<account>/CloudTrail/<region>/`.
pub fn s3_account_region(path: &Path) -> Option<(&str, &str)> {
    let parts = normal_parts(path);
    let logs = parts.iter().rposition(|p| *p == "AWSLogs")?;
    let mut rest = parts.get(logs + 1..)?.iter();
    let mut account = *rest.next()?;
    if account.starts_with("o-") {
        account = rest.next()?;
    }
    let (Some(&"CloudTrail"), Some(region)) = (rest.next(), rest.next()) else {
        return None;
    };
    Some((account, region))
}

fn normal_parts(path: &Path) -> Vec<&str> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_s3_layout() {
        let p = Path::new(
            "x/AWSLogs/123456789012/CloudTrail/ap-northeast-1/2022/06/28/123456789012_CloudTrail_ap-northeast-1_20220628T0025Z_abc.json.gz",
        );
        assert_eq!(s3_delivery_day(p), Timestamp::from_date(2022, 6, 28));
        let org =
            Path::new("AWSLogs/o-abc123/123456789012/CloudTrail/us-east-1/2024/01/02/f.json.gz");
        assert_eq!(s3_delivery_day(org), Timestamp::from_date(2024, 1, 2));
        assert_eq!(s3_delivery_day(Path::new("logs/2022/06/28/f.json")), None);
        assert_eq!(
            s3_account_region(p),
            Some(("123456789012", "ap-northeast-1"))
        );
        assert_eq!(s3_account_region(org), Some(("123456789012", "us-east-1")));
        assert_eq!(
            s3_account_region(Path::new("AWSLogs/123/CloudTrail-Digest/r/f.json")),
            None
        );
        assert_eq!(
            s3_delivery_day(Path::new("AWSLogs/1/CloudTrail/r/2022/13/01/f.json")),
            None
        );
    }

    #[test]
    fn delivery_times_order_the_regions_files() {
        let f = |region: &str, stamp: &str| {
            PathBuf::from(format!(
                "AWSLogs/1/CloudTrail/{region}/2024/05/14/1_CloudTrail_{region}_{stamp}_X.json.gz"
            ))
        };
        assert_eq!(
            s3_delivery_time(&f("us-east-1", "20240514T0905Z")),
            Timestamp::parse("2024-05-14T09:05:00Z").ok()
        );
        assert_eq!(s3_delivery_time(Path::new("a/events.json")), None);
        assert_eq!(s3_delivery_time(&f("r", "20240514T2575Z")), None);
        let (a, b, c, other) = (
            Input::File(f("ap-northeast-1", "20240514T1205Z")),
            Input::File(f("ap-northeast-1", "20240514T0305Z")),
            Input::File(f("eu-west-1", "20240514T0605Z")),
            Input::File(PathBuf::from("extra.json")),
        );
        let mut walked = vec![&b, &a, &c, &other];
        delivery_order(&mut walked);
        assert_eq!(walked, vec![&other, &b, &c, &a]);
    }

    #[test]
    fn window_keeps_a_day_of_margin() {
        let range = TimeRange {
            since: Timestamp::parse("2022-06-28T00:00:00Z").ok(),
            until: Timestamp::parse("2022-06-29T00:00:00Z").ok(),
        };
        let day = |d| Timestamp::from_date(2022, 6, d).unwrap();
        assert!(!range.may_hold(day(26)));
        assert!(
            !range.may_hold(day(27)),
            "delivered on the 27th: events up to the 27th only"
        );
        assert!(range.may_hold(day(28)));
        assert!(
            range.may_hold(day(29)),
            "events of the 28th delivered after midnight"
        );
        assert!(!range.may_hold(day(30)));
    }

    #[cfg(unix)]
    #[test]
    fn walks_follow_links_and_count_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("a.json"), "{}").unwrap();
        std::fs::write(real.join("notes.txt"), "").unwrap();
        let linked = dir.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(real.join("a.json"), linked.join("b.json")).unwrap();
        std::os::unix::fs::symlink(&linked, linked.join("loop")).unwrap();
        let got = resolve(std::slice::from_ref(&linked), &TimeRange::default());
        assert_eq!(got.inputs, vec![Input::File(linked.join("b.json"))]);
        assert_eq!(
            got.errors.len(),
            1,
            "the cycle is reported: {:?}",
            got.errors
        );
        let all = resolve(&[dir.path().to_path_buf()], &TimeRange::default());
        assert_eq!(all.skipped(Skip::NotLog), 1);
    }

    #[test]
    fn standard_input_named_twice_is_one_input() {
        let dash = PathBuf::from("-");
        let got = resolve(&[dash.clone(), dash], &TimeRange::default());
        assert_eq!(got.inputs, vec![Input::Stdin]);
    }

    #[test]
    fn log_names() {
        for ok in ["a.json", "a.json.gz", "b.jsonl", "c.ndjson.gz"] {
            assert!(is_log_name(Path::new(ok)), "{ok}");
        }
        for no in [".json", ".hidden.json", "a.txt", "a.gz", "README.md"] {
            assert!(!is_log_name(Path::new(no)), "{no}");
        }
    }
}
