//! Decoding: bytes (gzip or plain) into the raw JSON text of each CloudTrail record.
//!
//! A buffer is a stream of top-level JSON values (one value, NDJSON, or values written one
//! after another). Each value is one of the shapes CloudTrail data arrives in:
//!
//! | shape | looks like |
//! |---|---|
//! | S3 delivery file | `{"Records": [event, ...]}` |
//! | `aws cloudtrail lookup-events` | `{"Events": [{"CloudTrailEvent": "<event as a JSON string>"}, ...]}` |
//! | EventBridge | `{"detail-type": "AWS API Call via CloudTrail", "detail": event}` |
//! | a single event | `{"eventVersion": ..., "eventName": ...}` |
//! | an array | `[value, ...]` of any of the above |
//! | digest file | `{"digestStartTime": ..., "logFiles": [...]}`: counted, never read as events |

use crate::event::Event;
use crate::source::Input;
use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

/// One record as found in its input: its position, and its JSON text or the event parsed from it.
#[derive(Debug)]
pub struct RawRecord<'a> {
    /// 0-based position of the record in its input.
    pub index: u64,
    pub data: RecordData<'a>,
}

/// A record's content.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once per record; a box would cost an allocation
pub enum RecordData<'a> {
    /// The JSON text, still to be parsed as an [`Event`].
    Json(&'a str),
    /// Already parsed, by the single-pass reader of delivery files.
    Event(Event<'a>),
}

impl<'a> RecordData<'a> {
    /// The event, parsing the text if need be.
    pub fn into_event(self) -> Result<Event<'a>, String> {
        match self {
            RecordData::Json(json) => {
                serde_json::from_str(json).map_err(|e| crate::event::field_error(json, &e))
            }
            RecordData::Event(e) => Ok(e),
        }
    }
}

/// What a buffer turned out to hold, besides its records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShapeCounts {
    /// Digest files recognised by their content.
    pub digests: u64,
}

/// Why an input could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a whole input into memory, gunzipping it if it starts with the gzip magic bytes.
///
/// `limit` bounds the decompressed size, so a compression bomb is an error, not an OOM.
pub fn read_input(input: &Input, limit: u64) -> Result<Vec<u8>, DecodeError> {
    match input {
        Input::File(path) => {
            let mut file = std::fs::File::open(path).map_err(|e| DecodeError(e.to_string()))?;
            let expected = gzip_size(&mut file)
                .unwrap_or_else(|| file.metadata().map(|m| m.len()).unwrap_or(0));
            read_all(
                io::BufReader::with_capacity(64 * 1024, file),
                limit,
                expected,
            )
        }
        Input::Stdin => read_all(io::stdin().lock(), limit, 0),
    }
}

/// The uncompressed size a gzip file records in its last four bytes (exact for a single member
/// under 4 GiB, as CloudTrail writes them), to size the buffer once. The file is left at its start.
fn gzip_size(file: &mut std::fs::File) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic).ok()?;
    let size = if magic == [0x1f, 0x8b] && file.seek(SeekFrom::End(-4)).is_ok() {
        let mut isize = [0u8; 4];
        file.read_exact(&mut isize)
            .ok()
            .map(|_| u64::from(u32::from_le_bytes(isize)))
    } else {
        None
    };
    file.seek(SeekFrom::Start(0)).ok()?;
    size
}

/// Reads `reader` to the end, gunzipping when it starts with the gzip magic bytes.
///
/// `expected` is the size the content is expected to have (0: unknown), to allocate once.
pub fn read_all(
    mut reader: impl io::BufRead,
    limit: u64,
    expected: u64,
) -> Result<Vec<u8>, DecodeError> {
    let head = reader.fill_buf().map_err(|e| DecodeError(e.to_string()))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let result = if gzip {
        read_bounded(MultiGzDecoder::new(reader), limit, expected)
    } else {
        read_bounded(reader, limit, expected)
    };
    match result {
        Ok(Some(out)) => Ok(out),
        Ok(None) => Err(DecodeError(format!(
            "{} exceeds the limit of {limit} bytes (--max-file-size)",
            if gzip { "decompressed size" } else { "size" }
        ))),
        Err(e) if gzip => Err(DecodeError(format!("gzip: {e}"))),
        Err(e) => Err(DecodeError(e.to_string())),
    }
}

/// Reads to the end into a buffer sized once from `expected`; `None` past `limit` bytes.
///
/// The buffer is zero-allocated (pages the kernel zeroes on demand) and read into directly,
/// which avoids `read_to_end` initialising every chunk of a large buffer before each read.
fn read_bounded(mut reader: impl Read, limit: u64, expected: u64) -> io::Result<Option<Vec<u8>>> {
    let mut out = vec![0u8; expected.min(limit).max(8 * 1024) as usize + 1];
    let mut filled = 0usize;
    loop {
        if filled == out.len() {
            if filled as u64 > limit {
                return Ok(None);
            }
            let grown = (out.len() as u64)
                .saturating_mul(2)
                .min(limit.saturating_add(1))
                .max(filled as u64 + 1);
            out.resize(grown as usize, 0);
        }
        let Some(spare) = out.get_mut(filled..) else {
            return Ok(None);
        };
        match reader.read(spare) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if filled as u64 > limit {
        return Ok(None);
    }
    out.truncate(filled);
    Ok(Some(out))
}

/// The buffer as UTF-8 text, without a byte-order mark.
pub fn as_text(bytes: &[u8]) -> Result<&str, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        DecodeError(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "Records", default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow, rename = "Events", default)]
    events: Option<Vec<LookupEvent<'a>>>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
    #[serde(rename = "detail-type", default)]
    detail_type: Option<IgnoredAny>,
    #[serde(rename = "eventName", default)]
    event_name: Option<IgnoredAny>,
    #[serde(rename = "eventVersion", default)]
    event_version: Option<IgnoredAny>,
    #[serde(rename = "digestStartTime", default)]
    digest_start_time: Option<IgnoredAny>,
    #[serde(rename = "digestPublicKeyFingerprint", default)]
    digest_fingerprint: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct LookupEvent<'a> {
    #[serde(borrow, rename = "CloudTrailEvent")]
    cloudtrail_event: Option<Cow<'a, str>>,
}

/// Calls `f` with every record in `text`, in order, and counts what is not a record.
///
/// A record that `f` cannot parse is `f`'s to report; a value that is not valid JSON, or not
/// one of the known shapes, ends the input with an error naming where.
pub fn for_each_record(
    text: &str,
    first_index: u64,
    f: &mut dyn FnMut(RawRecord<'_>),
) -> Result<ShapeCounts, DecodeError> {
    let mut counts = ShapeCounts::default();
    let mut index = first_index;
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => visit(value, 0, &mut index, &mut counts, f)
                .map_err(|e| DecodeError(format!("{} (value at byte {offset})", e.0)))?,
            Some(Err(e)) => return Err(DecodeError(format!("invalid JSON: {e}"))),
        }
    }
    Ok(counts)
}

/// Whether a JSON object's first key is `Records`, as in every CloudTrail delivery file.
fn starts_with_records(json: &str) -> bool {
    json.strip_prefix('{')
        .map(str::trim_start)
        .is_some_and(|rest| rest.starts_with("\"Records\""))
}

/// Reads a delivery file in one pass, handing each record to `f` as soon as it is parsed.
struct DeliveryFile<'s> {
    index: &'s mut u64,
    f: &'s mut dyn FnMut(RawRecord<'_>),
}

impl<'de> serde::de::Visitor<'de> for DeliveryFile<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail delivery file")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let DeliveryFile { index, f } = self;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "Records" {
                map.next_value_seed(Records {
                    index: &mut *index,
                    f: &mut *f,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Records of a delivery file parsed before they are handed over, one after the other: the
/// parser's code and then the caller's (a scan's evaluation) each run over a batch while in the
/// instruction cache, rather than taking turns evicting each other on every record. Parsed
/// records borrow from the file's text, so a batch costs only its `Event`s.
const BATCH: usize = 32;

struct Records<'s> {
    index: &'s mut u64,
    f: &'s mut dyn FnMut(RawRecord<'_>),
}

impl<'de> serde::de::DeserializeSeed<'de> for Records<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut batch: Vec<Event<'de>> = Vec::with_capacity(BATCH);
        let mut flush = |batch: &mut Vec<Event<'de>>| {
            for event in batch.drain(..) {
                (self.f)(RawRecord {
                    index: *self.index,
                    data: RecordData::Event(event),
                });
                *self.index += 1;
            }
        };
        let end = loop {
            match seq.next_element::<Event<'de>>() {
                Ok(Some(event)) => batch.push(event),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
            if batch.len() == BATCH {
                flush(&mut batch);
            }
        };
        // The records parsed before a bad one are handed over too (the caller reads the rest
        // again from the bad one on).
        flush(&mut batch);
        end
    }
}

fn visit<'t>(
    value: &'t RawValue,
    depth: u8,
    index: &mut u64,
    counts: &mut ShapeCounts,
    f: &mut dyn FnMut(RawRecord<'_>),
) -> Result<(), DecodeError> {
    let json = value.get();
    // The common case, a delivery file, is parsed in one pass. If a record does not parse, the
    // rest of the file is read again record by record, so that only the bad ones are rejected.
    let mut skip = 0u64;
    if starts_with_records(json) {
        let start = *index;
        let mut de = serde_json::Deserializer::from_str(json);
        let fast = serde::Deserializer::deserialize_map(
            &mut de,
            DeliveryFile {
                index: &mut *index,
                f: &mut *f,
            },
        );
        if fast.is_ok() {
            return Ok(());
        }
        skip = *index - start;
    }
    let mut emit = |json: &str, index: &mut u64| {
        f(RawRecord {
            index: *index,
            data: RecordData::Json(json),
        });
        *index += 1;
    };
    match json.as_bytes().first() {
        Some(b'[') if depth == 0 => {
            let items: Vec<&RawValue> = serde_json::from_str(json)
                .map_err(|e| DecodeError(format!("invalid JSON array: {e}")))?;
            for item in items {
                visit(item, depth + 1, index, counts, f)?;
            }
            Ok(())
        }
        Some(b'{') => {
            let envelope: Envelope = serde_json::from_str(json)
                .map_err(|e| DecodeError(format!("unrecognised JSON object: {e}")))?;
            if let Some(records) = envelope.records {
                for record in records.into_iter().skip(skip as usize) {
                    emit(record.get(), index);
                }
            } else if let Some(events) = envelope.events {
                for event in events {
                    match event.cloudtrail_event {
                        Some(inner) => emit(&inner, index),
                        // Counted as a record so that the reader reports it as rejected.
                        None => emit("null", index),
                    }
                }
            } else if let (Some(detail), Some(_)) = (envelope.detail, envelope.detail_type) {
                emit(detail.get(), index);
            } else if envelope.event_name.is_some() || envelope.event_version.is_some() {
                emit(json, index);
            } else if envelope.digest_start_time.is_some() || envelope.digest_fingerprint.is_some()
            {
                counts.digests += 1;
            } else {
                return Err(DecodeError(
                    "unrecognised JSON object: not a CloudTrail event, a Records file, lookup-events output or an EventBridge event"
                        .to_string(),
                ));
            }
            Ok(())
        }
        _ => Err(DecodeError(format!(
            "expected a JSON object{}, found {}",
            if depth == 0 { " or array" } else { "" },
            describe(json)
        ))),
    }
}

fn describe(json: &str) -> &'static str {
    match json.as_bytes().first() {
        Some(b'[') => "a nested array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Splits a stream into chunks of complete top-level JSON values, so that standard input is
/// processed as it arrives and memory stays bounded by `limit` per value.
pub struct ValueChunks<R> {
    reader: R,
    pending: Vec<u8>,
    chunk_size: usize,
    limit: u64,
    done: bool,
}

impl<R: Read> ValueChunks<R> {
    pub fn new(reader: R, chunk_size: usize, limit: u64) -> Self {
        ValueChunks {
            reader,
            pending: Vec::new(),
            chunk_size,
            limit,
            done: false,
        }
    }

    /// The next chunk: complete values only. `Ok(None)` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<String>, DecodeError> {
        // Re-scanning a long incomplete value is quadratic; wait for the buffer to double.
        let mut next_try = self.chunk_size;
        loop {
            if self.done {
                if self.pending.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                return utf8_chunk(std::mem::take(&mut self.pending)).map(Some);
            }
            let mut buf = vec![0u8; self.chunk_size];
            let n = self
                .reader
                .read(&mut buf)
                .map_err(|e| DecodeError(e.to_string()))?;
            if n == 0 {
                self.done = true;
                continue;
            }
            self.pending
                .extend_from_slice(buf.get(..n).unwrap_or_default());
            if self.pending.len() < next_try {
                continue;
            }
            let complete = complete_prefix(&self.pending);
            if complete > 0 {
                let rest = self.pending.split_off(complete);
                return utf8_chunk(std::mem::replace(&mut self.pending, rest)).map(Some);
            }
            if self.pending.len() as u64 > self.limit {
                return Err(DecodeError(format!(
                    "a JSON value on standard input exceeds the limit of {} bytes (--max-file-size)",
                    self.limit
                )));
            }
            next_try = self.pending.len().saturating_mul(2);
        }
    }
}

fn utf8_chunk(bytes: Vec<u8>) -> Result<String, DecodeError> {
    String::from_utf8(bytes).map_err(|e| {
        DecodeError(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The length of the longest prefix of `bytes` that holds only complete top-level values.
fn complete_prefix(bytes: &[u8]) -> usize {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        // A multi-byte character cut at the end of the buffer: look before it.
        Err(e) => match bytes
            .get(..e.valid_up_to())
            .and_then(|b| std::str::from_utf8(b).ok())
        {
            Some(t) => t,
            None => return 0,
        },
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
    let mut end = 0;
    loop {
        match stream.next() {
            Some(Ok(_)) => end = stream.byte_offset(),
            // Incomplete tail, or a syntax error that the decoder will report with context.
            Some(Err(e)) if e.is_eof() => return end,
            Some(Err(_)) => return text.len(),
            None => return text.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Result<(Vec<String>, ShapeCounts), DecodeError> {
        let mut out = Vec::new();
        let counts = for_each_record(text, 0, &mut |r| {
            out.push(match r.data {
                RecordData::Json(json) => json.to_string(),
                RecordData::Event(e) => e.event_name.to_string(),
            })
        })?;
        Ok((out, counts))
    }

    const EV: &str = r#"{"eventVersion":"1.08","eventName":"ListBuckets"}"#;
    const FULL: &str = r#"{"eventTime":"2024-05-14T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#;

    #[test]
    fn reads_every_shape() {
        let s3 = format!(r#"{{"Records":[{EV},{EV}]}}"#);
        assert_eq!(records(&s3).unwrap().0.len(), 2);
        let parsed = format!(r#"{{"Records":[{FULL},{FULL}]}}"#);
        assert_eq!(
            records(&parsed).unwrap().0,
            vec!["GetObject", "GetObject"],
            "single pass"
        );
        let array = format!("[{EV},{EV},{EV}]");
        assert_eq!(records(&array).unwrap().0.len(), 3);
        let ndjson = format!("{EV}\n{EV}\n");
        assert_eq!(records(&ndjson).unwrap().0.len(), 2);
        let lookup = format!(
            r#"{{"Events":[{{"EventId":"x","CloudTrailEvent":{}}}]}}"#,
            serde_json::to_string(EV).unwrap()
        );
        assert_eq!(records(&lookup).unwrap().0, vec![EV.to_string()]);
        let bridge = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{EV}}}"#
        );
        assert_eq!(records(&bridge).unwrap().0, vec![EV.to_string()]);
        let digest =
            r#"{"awsAccountId":"1","digestStartTime":"2022-06-28T00:00:00Z","logFiles":[]}"#;
        let (recs, counts) = records(digest).unwrap();
        assert!(recs.is_empty());
        assert_eq!(counts.digests, 1);
    }

    #[test]
    fn unknown_shapes_and_bad_json_are_errors() {
        assert!(records(r#"{"hello":"world"}"#).is_err());
        assert!(records(r#"{"Records":[{"eventName":"x"}"#).is_err());
        assert!(records("42").is_err());
        assert!(records("[[1]]").is_err());
        let err = records(&format!("{EV}\n{{oops")).unwrap_err();
        assert!(err.0.contains("invalid JSON"), "{err}");
    }

    #[test]
    fn a_bad_record_falls_back_without_repeating_the_good_ones() {
        let bad = r#"{"eventTime":5,"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#;
        let text = format!(r#"{{"Records":[{FULL},{bad},{FULL}]}}"#);
        let mut seen = Vec::new();
        for_each_record(&text, 0, &mut |r| {
            let parsed = matches!(r.data, RecordData::Event(_));
            seen.push((r.index, parsed, r.data.into_event().is_ok()));
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![(0, true, true), (1, false, false), (2, false, true)],
            "the first record from the fast pass, the rest one by one"
        );
    }

    #[test]
    fn records_parsed_in_batches_are_all_handed_over_in_order() {
        let bad = r#"{"eventTime":5,"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#;
        // A bad record past the first batch, and a file ending inside a batch.
        let n = 2 * BATCH + 5;
        let at = BATCH + 3;
        let items: Vec<&str> = (0..n).map(|i| if i == at { bad } else { FULL }).collect();
        let text = format!(r#"{{"Records":[{}]}}"#, items.join(","));
        let mut seen = Vec::new();
        for_each_record(&text, 7, &mut |r| {
            seen.push((r.index, matches!(r.data, RecordData::Event(_))))
        })
        .unwrap();
        let expected: Vec<(u64, bool)> = (0..n).map(|i| (7 + i as u64, i < at)).collect();
        assert_eq!(seen, expected);
        let good = format!(r#"{{"Records":[{}]}}"#, vec![FULL; n].join(","));
        let mut count = 0;
        for_each_record(&good, 0, &mut |r| {
            assert!(matches!(r.data, RecordData::Event(_)));
            count += 1;
        })
        .unwrap();
        assert_eq!(count, n);
    }

    #[test]
    fn indexes_continue_across_values() {
        let mut idx = Vec::new();
        for_each_record(&format!("{EV}{EV}[{EV}]"), 10, &mut |r| idx.push(r.index)).unwrap();
        assert_eq!(idx, vec![10, 11, 12]);
    }

    #[test]
    fn gzip_is_detected_by_content_and_bounded() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&vec![b' '; 100_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(read_all(&gz[..], 1_000_000, 0).unwrap().len(), 100_000);
        let err = read_all(&gz[..], 1000, 0).unwrap_err();
        assert!(err.0.contains("exceeds the limit"), "{err}");
        let err = read_all(&gz[..gz.len() / 2], 1_000_000, 0).unwrap_err();
        assert!(err.0.starts_with("gzip"), "{err}");
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert!(as_text(b"{\"a\":\"\xff\"}").is_err());
        assert_eq!(as_text("\u{feff}{}".as_bytes()).unwrap(), "{}");
    }

    #[test]
    fn chunks_hold_whole_values() {
        let input = format!("{EV}\n{EV}\n{EV}\n");
        let mut chunks = ValueChunks::new(input.as_bytes(), 7, 1 << 20);
        let mut all = String::new();
        let mut n = 0;
        while let Some(chunk) = chunks.next_chunk().unwrap() {
            let (recs, _) = records(&chunk).unwrap();
            n += recs.len();
            all.push_str(&chunk);
        }
        assert_eq!(n, 3);
        assert_eq!(all, input);
        let mut small = ValueChunks::new(input.as_bytes(), 7, 10);
        assert!(
            small.next_chunk().is_err(),
            "a value larger than the limit is an error"
        );
    }
}
