//! Fuzzing on the stable toolchain: a seeded generator of hostile inputs, made by mutating the
//! repository's own fixtures and policies, run through the decoder, the event model and policy
//! loading, and held to the invariants of a scan:
//!
//! - nothing panics or crashes (a stack overflow would end the process);
//! - the summary balances: `read = evaluated + outside the window + Insights + rejected`, every
//!   unreadable input has a path and a reason, every finding is counted;
//! - reading a stream in small blocks hands over exactly the records that reading it whole does;
//! - an evaluator whose caches have seen other events decides an event as a fresh one does, and
//!   as Cedar's own authorizer does over the whole pack.
//!
//! `fuzz_briefly` runs each target for a few seconds in CI (`TRAILCEDAR_FUZZ_SECS`, default 2 per
//! target). A long run, in release:
//!
//! ```sh
//! TRAILCEDAR_FUZZ_SECS=1200 cargo test --release --test scan fuzz::fuzz_long -- --ignored --nocapture
//! ```
//!
//! (`TRAILCEDAR_FUZZ_SECS` seconds per target; `TRAILCEDAR_FUZZ_SEED` to choose the seed, printed
//! at the start.) A failing case is written under `target/fuzz-failures/` with the seed and case
//! number that make it again.

use crate::support::*;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use trailcedar::decode::{self, Limits, RawRecord, RecordData};
use trailcedar::engine::Engine;
use trailcedar::engine::pack::{self, PolicySource};
use trailcedar::model::EventView;
use trailcedar::model::aws_ranges::AwsRanges;
use trailcedar::report::summary::{EXAMPLES, Summary};
use trailcedar::scan::{self, ScanOptions};

/// What the cases reached, so that a run shows it exercised more than the error paths.
static REACHED: [std::sync::atomic::AtomicU64; 5] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 5];
const RECORDS: usize = 0;
const EVALUATED: usize = 1;
const FLAGGED: usize = 2;
const COMPARED: usize = 3;
const PACKS: usize = 4;

fn reached(what: usize, n: u64) {
    if let Some(c) = REACHED.get(what) {
        c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// xorshift64*: small, seeded, good enough to choose mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The seed inputs: every fixture log (as text), the sample archive (gzip bytes), the policies.
struct Corpus {
    logs: Vec<Vec<u8>>,
    events: Vec<serde_json::Value>,
    policies: Vec<String>,
}

fn files_under(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walk(Path::new(dir))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut logs: Vec<Vec<u8>> = files_under("fixtures/events", ".json")
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        logs.extend(
            files_under("fixtures/archive", ".json.gz")
                .iter()
                .take(3)
                .map(|p| std::fs::read(p).unwrap()),
        );
        let mut events = Vec::new();
        for log in &logs {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(log)
                && let Some(records) = v.get("Records").and_then(|r| r.as_array())
            {
                events.extend(records.iter().cloned());
            }
        }
        let policies = files_under("policies", ".cedar")
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        Corpus {
            logs,
            events,
            policies,
        }
    })
}

/// Strings that have broken parsers before.
const NASTY: &[&str] = &[
    "",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "\u{e0041}",
    "\\",
    "\"",
    "\\u0000",
    "\\ud800",
    "]",
    "}",
    "{",
    "[",
    ",",
    ":",
    "null",
    "1e999",
    "-0",
    "9999999999999999999999",
    "\n",
    "\r\n",
    "2024-05-14T02:10:05Z",
    "2024-05-14 02:10:05",
    "arn:aws:iam::123456789012:role/x",
    "arn:aws:s3:::b/k",
    "*",
    "AKIA",
    "AWS Internal",
    "::ffff:1.2.3.4",
    "Records",
    "Events",
    "detail-type",
    "eventName",
];

/// A random JSON value, small unless told.
fn random_value(rng: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::{Value, json};
    match rng.below(if depth > 4 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(rng.next() as i64 >> rng.below(60)),
        3 => json!(*rng.pick(NASTY)),
        4 => json!("x".repeat(rng.below(64))),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| (rng.pick(NASTY).to_string(), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// Mutates a JSON value in place: a member replaced, removed or added, at any depth.
fn mutate_value(rng: &mut Rng, v: &mut serde_json::Value, depth: usize) {
    use serde_json::Value;
    match v {
        Value::Object(map) if !map.is_empty() && rng.below(3) > 0 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, random_value(rng, depth));
                }
                2 => {
                    map.insert(rng.pick(NASTY).to_string(), random_value(rng, depth));
                }
                _ => {
                    if let Some(child) = map.get_mut(&key) {
                        mutate_value(rng, child, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && rng.below(3) > 0 => {
            let i = rng.below(items.len());
            match rng.below(4) {
                0 => {
                    items.remove(i);
                }
                1 => items.push(random_value(rng, depth)),
                _ => mutate_value(rng, &mut items[i], depth + 1),
            }
        }
        _ => *v = random_value(rng, depth),
    }
}

/// Mutates text or bytes: flips, cuts, splices, repeats, inserts nasty strings.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        let at = rng.below(len + 1);
        match rng.below(9) {
            0 if len > 0 => bytes[at.min(len - 1)] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            2 => {
                let end = (at + rng.below(64)).min(len);
                bytes.drain(at..end);
            }
            3 => {
                let nasty = rng.pick(NASTY).as_bytes().to_vec();
                bytes.splice(at..at, nasty);
            }
            4 => {
                // A slice of the input repeated: long values, deep nesting of what is there.
                let end = (at + 1 + rng.below(32)).min(len);
                let piece = bytes.get(at..end).unwrap_or_default().to_vec();
                for _ in 0..rng.below(64) {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
            5 => {
                let n = rng.below(300);
                let open = if rng.chance(2) { b'[' } else { b'{' };
                bytes.splice(at..at, std::iter::repeat_n(open, n));
            }
            6 => bytes.splice(at..at, [b'\n']).for_each(drop),
            7 => {
                let other = rng.pick(&corpus().logs).clone();
                let from = rng.below(other.len() + 1);
                bytes.splice(
                    at..at,
                    other.get(from..).unwrap_or_default().iter().copied(),
                );
            }
            _ => bytes.extend(std::iter::repeat_n(b' ', rng.below(16))),
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A hostile input for the decoder: fixture logs, events in every shape, mutated.
fn decoder_case(rng: &mut Rng) -> Vec<u8> {
    let c = corpus();
    let events = |rng: &mut Rng| -> Vec<String> {
        (0..1 + rng.below(5))
            .map(|_| {
                let mut e = rng.pick(&c.events).clone();
                if rng.chance(2) {
                    mutate_value(rng, &mut e, 0);
                }
                e.to_string()
            })
            .collect()
    };
    let mut bytes = match rng.below(8) {
        0 => rng.pick(&c.logs).clone(),
        1 => format!(r#"{{"Records":[{}]}}"#, events(rng).join(",")).into_bytes(),
        2 => (events(rng).join("\n") + "\n").into_bytes(),
        3 => format!("[{}]", events(rng).join(",")).into_bytes(),
        4 => {
            let lookups: Vec<String> = events(rng)
                .iter()
                .map(|e| {
                    format!(
                        r#"{{"CloudTrailEvent":{}}}"#,
                        serde_json::to_string(e).unwrap()
                    )
                })
                .collect();
            format!(r#"{{"Events":[{}]}}"#, lookups.join(",")).into_bytes()
        }
        5 => events(rng)
            .iter()
            .map(|e| format!(r#"{{"detail-type":"AWS API Call via CloudTrail","detail":{e}}}"#))
            .collect::<Vec<_>>()
            .join("")
            .into_bytes(),
        6 => {
            // Pretty-printed, as jq writes it.
            let v: Vec<serde_json::Value> = events(rng)
                .iter()
                .map(|e| serde_json::from_str(e).unwrap())
                .collect();
            serde_json::to_string_pretty(&serde_json::json!({ "Records": v }))
                .unwrap()
                .into_bytes()
        }
        _ => random_value(rng, 0).to_string().into_bytes(),
    };
    if rng.below(3) > 0 {
        mutate_bytes(rng, &mut bytes);
    }
    if rng.chance(4) {
        let mut gz = gzip(&bytes);
        match rng.below(4) {
            0 => gz.truncate(rng.below(gz.len() + 1)),
            1 => gz.extend(std::iter::repeat_n(0u8, rng.below(600))),
            2 => gz.extend(gzip(&bytes)),
            _ => {}
        }
        bytes = gz;
    }
    bytes
}

/// A hostile event: a fixture event mutated in its structure, with payloads the model reads.
fn event_case(rng: &mut Rng) -> Vec<u8> {
    let c = corpus();
    let mut lines = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let mut e = rng.pick(&c.events).clone();
        for _ in 0..rng.below(4) {
            mutate_value(rng, &mut e, 0);
        }
        if let Some(map) = e.as_object_mut() {
            let field = *rng.pick(&[
                "requestParameters",
                "responseElements",
                "additionalEventData",
                "resources",
                "userIdentity",
                "tlsDetails",
            ]);
            if rng.chance(3) {
                map.insert(field.to_string(), random_value(rng, 0));
            }
        }
        let mut text = e.to_string();
        if rng.chance(6) {
            // A key repeated, which serde_json's values cannot hold.
            if let Some(i) = text.find("\"requestParameters\":{") {
                let at = i + "\"requestParameters\":{".len();
                text.insert_str(at, r#""x-amz-acl":"public-read","#);
                text = text.replacen(
                    r#""x-amz-acl":"public-read","#,
                    r#""x-amz-acl":"public-read","x-amz-acl":"private","#,
                    1,
                );
            }
        }
        lines.push(text);
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// A hostile policy: a shipped policy mutated by tokens, nested, chained, or cut.
fn policy_case(rng: &mut Rng) -> String {
    let c = corpus();
    let mut text = rng.pick(&c.policies).clone();
    let tokens = [
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "&&",
        "||",
        "!",
        "-",
        "==",
        "!=",
        "<",
        ">=",
        "in",
        "has",
        "like",
        "is",
        "if",
        "then",
        "else",
        ".",
        ",",
        ";",
        "\"",
        "principal",
        "action",
        "resource",
        "context",
        "true",
        "false",
        "1",
        "\"*\"",
        "getTag",
        "hasTag",
        "//",
        "\n",
        "@id(\"x\")",
        "forbid",
        "permit",
        "when",
        "unless",
        "Action::\"s3:PutObject\"",
        "context.requestParameters.getTag(\"x\")",
        "datetime(\"2024-01-01\")",
        "ip(\"1.2.3.4\")",
    ];
    for _ in 0..1 + rng.below(4) {
        let len = text.len();
        let mut at = rng.below(len + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        match rng.below(6) {
            0 => {
                let token = *rng.pick(&tokens);
                text.insert_str(at, token)
            }
            1 => {
                let mut end = (at + rng.below(20)).min(len);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            }
            2 => {
                // Nesting at or past the limits.
                let n = *rng.pick(&[10, 62, 63, 64, 65, 200, 600]);
                if let Some(i) = text.find("when {") {
                    let at = i + "when {".len();
                    let close = text[at..].find('}').map(|j| at + j);
                    if let Some(close) = close {
                        text.insert_str(close, &")".repeat(n));
                        text.insert_str(at, &"(".repeat(n));
                    }
                }
            }
            3 => {
                // A chain of terms at or past the limits.
                let n = *rng.pick(&[10, 300, 333, 334, 1000, 3000]);
                if let Some(i) = text.find("when {") {
                    let at = i + "when {".len();
                    text.insert_str(at, &"true && ".repeat(n));
                }
            }
            4 => text.truncate(at),
            _ => {
                let other = rng.pick(&c.policies);
                text.push('\n');
                text.push_str(other);
            }
        }
    }
    text
}

/// A pack that reads everything the model has: every tag, a computed key, the resource, the
/// principal, the inventory's slots, in conditions that can err.
fn wide_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        engine_of(
            r#"@id("computed-tag") @title("Reads a computed tag key") @severity("low")
forbid (principal, action, resource) when {
  principal has userName && context.requestParameters.hasTag(principal.userName)
};
@id("any-acl") @title("Reads a literal key") @severity("medium")
forbid (principal, action, resource) when {
  context.requestParameters.hasTag("x-amz-acl") &&
  context.requestParameters.getTag("x-amz-acl") like "*public*"
};
@id("resource-arn") @title("Reads the resource") @severity("low")
forbid (principal, action, resource) when {
  resource has arn && resource.arn like "arn:aws:s3:::*"
};
@id("source") @title("Reads the source") @severity("info")
forbid (principal, action, resource) when {
  context has sourceIP && context.sourceIP.isInRange(ip("198.51.100.0/24")) && !context.sourceInAws
};
@id("times") @title("Reads times") @severity("info")
forbid (principal, action, resource) when {
  context.eventTime > datetime("2024-05-14T02:00:00Z") &&
  principal has sessionCreationDate && principal.sessionCreationDate < context.eventTime
};"#,
        )
    })
}

/// Checks a summary's accounting; `findings` is what the scan handed on.
fn check_summary(s: &Summary, findings: usize, what: &str) {
    assert!(s.balanced(), "{what}: unbalanced\n{}", s.render());
    // What an input's scan hands on: its findings, and its matches for the correlations.
    let matches: u64 = s.matches.values().sum();
    assert_eq!(
        (s.findings + matches) as usize,
        findings,
        "{what}: findings counted"
    );
    assert!(s.events_flagged <= s.events_evaluated, "{what}");
    assert!(s.rejected.len() as u64 <= s.events_rejected, "{what}");
    assert!(s.rejected.len() <= EXAMPLES, "{what}");
    assert!(
        (s.events_rejected == 0) == s.rejected.is_empty(),
        "{what}: a rejection without its example, or one"
    );
    for p in s.unreadable.iter().chain(&s.rejected) {
        assert!(!p.path.is_empty() && !p.reason.is_empty(), "{what}: {p:?}");
    }
}

/// Each record as text, for comparing two readings of the same input.
fn describe(r: RawRecord<'_>) -> String {
    match r.data {
        RecordData::Json(j) => format!("{} json {j}", r.index),
        RecordData::Event(e) => format!("{} event {:?} {:?}", r.index, e.event_name, e.event_id),
        RecordData::Invalid(why) => format!("{} invalid {why}", r.index),
    }
}

/// The decoder: reading in small blocks through a reader that gives a few bytes at a time
/// hands over what reading in one go does; a scan of it balances.
fn check_decoder(rng: &mut Rng, bytes: &[u8]) {
    struct Trickle<'a>(&'a [u8], usize);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let limits = Limits {
        value: 1 << 20,
        total: Some(8 << 20),
    };
    let read = |block: usize, trickle: usize| {
        let mut seen = Vec::new();
        let reader = decode::sniffed(Trickle(bytes, trickle)).unwrap();
        let d = decode::read_blocks(reader, limits, block, 0, &|| false, &mut |r| {
            seen.push(describe(r))
        });
        assert_eq!(d.records as usize, seen.len());
        (seen, d.error.map(|e| e.0))
    };
    let (whole, whole_error) = read(16 << 20, 1 << 20);
    reached(RECORDS, whole.len() as u64);
    let block = 1 + rng.below(200);
    let (parts, parts_error) = read(block, 1 + rng.below(50));
    assert_eq!(
        parts, whole,
        "in blocks of {block}: the same records as in one go"
    );
    // Where reading stopped may be worded with another offset only for a cut input.
    assert_eq!(
        parts_error.is_some(),
        whole_error.is_some(),
        "{parts_error:?} / {whole_error:?}"
    );
    let mut findings = 0;
    let s = scan::scan_reader(
        shipped(),
        "case",
        decode::sniffed(bytes).unwrap(),
        limits,
        &ScanOptions::default(),
        &|| false,
        &mut |_| findings += 1,
    );
    check_summary(&s, findings, "shipped pack");
}

/// The event model: a scan balances with a pack that reads everything; an evaluator warmed by
/// the other events decides each event as a fresh one and Cedar's own authorizer do.
fn check_events(bytes: &[u8]) {
    let engines = [shipped(), wide_engine()];
    let text = String::from_utf8_lossy(bytes);
    for engine in engines {
        let report = scan::scan_text(engine, "case", &text, 0, &ScanOptions::default());
        check_summary(&report.summary, report.findings.len(), "events");
        reached(EVALUATED, report.summary.events_evaluated);
        reached(FLAGGED, report.summary.events_flagged);
        let mut warm = engine.evaluator();
        let _ = decode::for_each_record(&text, 0, &mut |r| {
            let Ok(view) = r.data.into_event().and_then(EventView::new) else {
                return;
            };
            let (Ok(a), Ok(b)) = (warm.evaluate(&view), engine.evaluator().evaluate(&view)) else {
                return;
            };
            let ids = |v: &trailcedar::engine::Verdict| {
                let mut ids: Vec<&str> = v
                    .hits
                    .iter()
                    .map(|h| engine.pack.detections[h.detection].id.as_str())
                    .collect();
                ids.sort();
                ids.dedup();
                ids
            };
            assert_eq!(ids(&a), ids(&b), "a warm evaluator decides as a fresh one");
            assert_eq!(a.errors.len(), b.errors.len());
            if !b.errors.is_empty() {
                return;
            }
            let Ok(principal) = engine.principal(&view) else {
                return;
            };
            let Ok(responses) = engine.cedar_responses(&view, &principal) else {
                return;
            };
            if responses
                .iter()
                .flat_map(|(_, rs)| rs)
                .any(|r| r.diagnostics().errors().next().is_some())
            {
                return;
            }
            let mut cedar: Vec<String> = responses
                .iter()
                .flat_map(|(_, rs)| rs)
                .flat_map(|r| r.diagnostics().reason().map(|p| p.to_string()))
                .filter(|id| id != trailcedar::engine::BASELINE)
                .collect();
            cedar.sort();
            cedar.dedup();
            reached(COMPARED, 1);
            assert_eq!(
                ids(&b),
                cedar.iter().map(String::as_str).collect::<Vec<_>>(),
                "the engine decides as Cedar's authorizer does"
            );
        });
    }
}

/// Policy loading: a pack loads or says why, and a pack that loads evaluates.
fn check_policy(text: &str) {
    let source = PolicySource {
        name: "case.cedar".into(),
        text: text.into(),
    };
    let Ok(pack) = pack::load(vec![source], "case") else {
        return;
    };
    let Ok(engine) = Engine::new(pack, AwsRanges::embedded()) else {
        return;
    };
    reached(PACKS, 1);
    let sample = &corpus().logs[0];
    let report = scan::scan_text(
        &engine,
        "case",
        &String::from_utf8_lossy(sample),
        0,
        &ScanOptions::default(),
    );
    check_summary(&report.summary, report.findings.len(), "policy case");
}

/// The targets, by name: each makes a case from the generator and checks it.
type Target = (&'static str, fn(&mut Rng));

const TARGETS: [Target; 3] = [
    ("decoder", |rng| {
        let case = decoder_case(rng);
        run_case("decoder", &case, || check_decoder(rng, &case));
    }),
    ("events", |rng| {
        let case = event_case(rng);
        run_case("events", &case, || check_events(&case));
    }),
    ("policies", |rng| {
        let case = policy_case(rng);
        run_case("policies", case.as_bytes(), || check_policy(&case));
    }),
];

/// Runs one check; on a panic, writes the case under `target/fuzz-failures/` and fails.
fn run_case(target: &str, case: &[u8], check: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(check)) {
        let dir = Path::new("target/fuzz-failures");
        let _ = std::fs::create_dir_all(dir);
        let path = dir.join(format!("{target}-{}.bin", std::process::id()));
        let _ = std::fs::write(&path, case);
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{target}: {message}\ncase written to {}", path.display());
    }
}

fn seconds(default: u64) -> Duration {
    Duration::from_secs(
        std::env::var("TRAILCEDAR_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

/// Runs every target for `per_target`; the cases run, per target.
fn fuzz(per_target: Duration) -> Vec<(&'static str, u64)> {
    let seed = std::env::var("TRAILCEDAR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("fuzz: seed {seed} (TRAILCEDAR_FUZZ_SEED={seed} makes the same cases)");
    let mut counts = Vec::new();
    for (t, (name, target)) in TARGETS.iter().enumerate() {
        let mut rng = Rng(seed.wrapping_add((t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let start = Instant::now();
        let mut n = 0u64;
        let mut report = Instant::now();
        while start.elapsed() < per_target {
            target(&mut rng);
            n += 1;
            if report.elapsed() > Duration::from_secs(60) {
                eprintln!("fuzz: {name}: {n} cases, {:?}", start.elapsed());
                report = Instant::now();
            }
        }
        eprintln!(
            "fuzz: {name}: {n} cases in {:?}, no failure",
            start.elapsed()
        );
        counts.push((*name, n));
    }
    let r = |i: usize| REACHED[i].load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "fuzz: reached {} records decoded, {} events evaluated, {} flagged, {} decisions compared with Cedar's authorizer, {} packs loaded",
        r(RECORDS),
        r(EVALUATED),
        r(FLAGGED),
        r(COMPARED),
        r(PACKS)
    );
    counts
}

#[test]
fn fuzz_briefly() {
    for (name, n) in fuzz(seconds(2)) {
        assert!(n > 0, "{name} ran no case");
    }
}

#[test]
#[ignore = "a long run: TRAILCEDAR_FUZZ_SECS=1200 cargo test --release --test scan fuzz::fuzz_long -- --ignored --nocapture"]
fn fuzz_long() {
    fuzz(seconds(600));
}
