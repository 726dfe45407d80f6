//! Decoding: bytes (gzip or plain) into the records of CloudTrail data, read as a stream.
//!
//! An input is a stream of top-level JSON values (one value, NDJSON, or values written one
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
//!
//! Nothing is lost silently:
//! - every element of a top-level array and every top-level value is a record, or a container
//!   of records; one that is neither is handed over as [`RecordData::Invalid`] (a rejected
//!   record, counted), and reading goes on;
//! - an object with a `Records` or `Events` list is an envelope, and its records are read; if it
//!   also has event fields (`eventName`...), it is one more, rejected, record: neither reading
//!   hides the other;
//! - in line-delimited input (NDJSON), a line that is not JSON is a rejected record and reading
//!   resumes on the next line; elsewhere, invalid JSON ends the input with an error that says
//!   where, after the records before it were handed over;
//! - input that is not text (a NUL byte, invalid UTF-8) ends the input as soon as it is seen.
//!
//! The records of a delivery file, or the elements of a top-level array, are read as they come:
//! memory holds a block of the input (and the largest value in it), never the whole input.

use crate::event::Event;
use crate::source::Input;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read};

/// One record as found in its input: its position, and its JSON text or the event parsed from it.
#[derive(Debug)]
pub struct RawRecord<'a> {
    /// 0-based position of the record in its input.
    pub index: u64,
    pub data: RecordData<'a>,
    /// The record's JSON text as it stands in the input, where there is one (`--raw`).
    pub text: Option<&'a str>,
}

/// A record's content.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once per record; a box would cost an allocation
pub enum RecordData<'a> {
    /// The JSON text, still to be parsed as an [`Event`].
    Json(&'a str),
    /// Already parsed, by the single-pass reader of delivery files.
    Event(Event<'a>),
    /// A value in the place of a record that is no record: why (a rejected record).
    Invalid(String),
}

impl<'a> RecordData<'a> {
    /// The event, parsing the text if need be.
    pub fn into_event(self) -> Result<Event<'a>, String> {
        match self {
            RecordData::Json(json) => {
                serde_json::from_str(json).map_err(|e| crate::event::field_error(json, &e))
            }
            RecordData::Event(e) => Ok(e),
            RecordData::Invalid(reason) => Err(reason),
        }
    }
}

/// What an input turned out to hold, besides its records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShapeCounts {
    /// Digest files recognised by their content.
    pub digests: u64,
}

/// Why an input could not be decoded (in full: the records before the error were handed over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The size of the blocks an input is read in; the buffer grows past it only for a value that
/// does not fit.
pub const BLOCK: usize = 1 << 20;

/// The event fields that make an object an event: CloudTrail writes all four in every record.
const EVENT_FIELDS: [&str; 4] = ["eventVersion", "eventName", "eventSource", "eventTime"];

const NOT_CLOUDTRAIL: &str =
    "not a CloudTrail event, a Records file, lookup-events output or an EventBridge event";
const AMBIGUOUS: &str = "an object with both a list of records (Records, Events or an EventBridge detail) and event fields: its records were read; it is not also evaluated as an event";

// ---------------------------------------------------------------------------------------------
// Bytes: gzip recognised by content, without seeking (pipes and FIFOs cannot seek back).

/// The decompressed bytes of `reader`: gunzipped when its first two bytes are gzip's magic.
///
/// The first bytes are read and put back in front of the stream, so that a pipe, a FIFO or
/// standard input is read exactly like a file. Every member of a multi-member gzip is read;
/// zeros after the last member (block padding) are ignored, and other trailing bytes end the
/// stream with an error after the content before them. Whatever a damaged member decodes to
/// before the damage is handed over before the error.
pub fn sniffed<'r>(mut reader: impl Read + Send + 'r) -> io::Result<Box<dyn Read + Send + 'r>> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match reader.read(head.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let gzip = got == 2 && head == [0x1f, 0x8b];
    let whole = io::Cursor::new(head).take(got as u64).chain(reader);
    if gzip {
        Ok(Box::new(Gunzip {
            input: io::BufReader::with_capacity(64 * 1024, whole),
            member: Member::Header,
            inflate: flate2::Decompress::new(false),
            crc: flate2::Crc::new(),
            pending: None,
        }))
    } else {
        Ok(Box::new(whole))
    }
}

/// Every member of a gzip stream, one after another, as `gzip -d` reads them (RFC 1952).
///
/// Inflated here rather than by flate2's readers, which drop what a read had decoded when it
/// meets damage: this one hands over every byte decoded before an error, then the error.
struct Gunzip<R: BufRead> {
    input: R,
    member: Member,
    inflate: flate2::Decompress,
    crc: flate2::Crc,
    /// An error met after some output of the same read: returned by the next read.
    pending: Option<io::Error>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    /// A member's header comes next.
    Header,
    /// Inside a member's compressed data.
    Body,
    /// The stream ended.
    Done,
}

fn gzip_error(what: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {what}"))
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "gzip: the input ends inside a member (truncated)",
    )
}

impl<R: BufRead> Gunzip<R> {
    /// Reads a member's header (RFC 1952, 2.3.1), skipping its optional fields.
    fn header(&mut self) -> io::Result<()> {
        let mut fixed = [0u8; 10];
        self.input.read_exact(&mut fixed).map_err(|_| truncated())?;
        let [id1, id2, method, flags, ..] = fixed;
        if [id1, id2] != [0x1f, 0x8b] || method != 8 {
            return Err(gzip_error("invalid member header"));
        }
        if flags & 0x04 != 0 {
            let mut len = [0u8; 2];
            self.input.read_exact(&mut len).map_err(|_| truncated())?;
            self.skip(u64::from(u16::from_le_bytes(len)))?;
        }
        for flag in [0x08, 0x10] {
            // The file name and the comment: zero-terminated.
            if flags & flag != 0 {
                self.skip_to_zero()?;
            }
        }
        if flags & 0x02 != 0 {
            self.skip(2)?;
        }
        self.inflate.reset(false);
        self.crc.reset();
        Ok(())
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let skipped = io::copy(&mut (&mut self.input).take(n), &mut io::sink())?;
        if skipped < n {
            return Err(truncated());
        }
        Ok(())
    }

    fn skip_to_zero(&mut self) -> io::Result<()> {
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Err(truncated());
            }
            if let Some(at) = memchr::memchr(0, buf) {
                self.input.consume(at + 1);
                return Ok(());
            }
            let len = buf.len();
            self.input.consume(len);
        }
    }

    /// After a member's data: its trailer, checked, then what follows it.
    fn trailer(&mut self) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        self.input
            .read_exact(&mut trailer)
            .map_err(|_| truncated())?;
        let [c0, c1, c2, c3, s0, s1, s2, s3] = trailer;
        if u32::from_le_bytes([c0, c1, c2, c3]) != self.crc.sum()
            || u32::from_le_bytes([s0, s1, s2, s3]) != self.crc.amount()
        {
            return Err(gzip_error("a member's checksum does not match its content"));
        }
        let next = self.input.fill_buf()?;
        self.member = match next.first() {
            None => Member::Done,
            Some(0x1f) => Member::Header,
            Some(0) => {
                // Zeros to the end are block padding; anything else after them is garbage.
                loop {
                    let chunk = self.input.fill_buf()?;
                    if chunk.is_empty() {
                        break Member::Done;
                    }
                    if chunk.iter().any(|b| *b != 0) {
                        return Err(trailing_garbage());
                    }
                    let len = chunk.len();
                    self.input.consume(len);
                }
            }
            Some(_) => return Err(trailing_garbage()),
        };
        Ok(())
    }
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.pending.take() {
            self.member = Member::Done;
            return Err(e);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.member {
                Member::Done => return Ok(0),
                Member::Header => {
                    self.header()?;
                    self.member = Member::Body;
                }
                Member::Body => {
                    let input = self.input.fill_buf()?;
                    let eof = input.is_empty();
                    let (was_in, was_out) = (self.inflate.total_in(), self.inflate.total_out());
                    let status = self
                        .inflate
                        .decompress(input, buf, flate2::FlushDecompress::None);
                    let consumed = (self.inflate.total_in() - was_in) as usize;
                    let produced = (self.inflate.total_out() - was_out) as usize;
                    self.input.consume(consumed);
                    self.crc.update(buf.get(..produced).unwrap_or_default());
                    let outcome = match status {
                        Err(e) => Err(gzip_error(e)),
                        Ok(flate2::Status::StreamEnd) => self.trailer(),
                        Ok(_) if produced == 0 && (eof || consumed == 0) => Err(truncated()),
                        Ok(_) => Ok(()),
                    };
                    match outcome {
                        Ok(()) if produced == 0 => continue,
                        Ok(()) => return Ok(produced),
                        // What was decoded before the error first.
                        Err(e) if produced > 0 => {
                            self.pending = Some(e);
                            return Ok(produced);
                        }
                        Err(e) => {
                            self.member = Member::Done;
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}

fn trailing_garbage() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "gzip: the bytes after the last gzip member are not gzip data (ignored)",
    )
}

/// Opens an input: its decompressed bytes.
pub fn open(input: &Input) -> Result<Box<dyn Read + Send>, DecodeError> {
    let reader: Box<dyn Read + Send> = match input {
        Input::File(path) => Box::new(std::fs::File::open(path).map_err(io_error)?),
        Input::Stdin => Box::new(io::stdin()),
        Input::Object(object) => crate::source::s3::open(object).map_err(DecodeError)?,
    };
    sniffed(reader).map_err(io_error)
}

fn io_error(e: io::Error) -> DecodeError {
    DecodeError(e.to_string())
}

/// Reads a whole input into memory, gunzipping it if it starts with the gzip magic bytes.
///
/// `limit` bounds the decompressed size, so a compression bomb is an error, not an OOM.
pub fn read_input(input: &Input, limit: u64) -> Result<Vec<u8>, DecodeError> {
    read_all(io::BufReader::new(open(input)?), limit, 0)
}

/// Reads `reader` to the end, gunzipping when it starts with the gzip magic bytes.
///
/// `expected` is the size the content is expected to have (0: unknown), to allocate once. Input
/// that is not text (a NUL byte) is an error as soon as it is read, not at the limit.
pub fn read_all(
    reader: impl BufRead + Send,
    limit: u64,
    expected: u64,
) -> Result<Vec<u8>, DecodeError> {
    let reader = sniffed(reader).map_err(io_error)?;
    read_bounded(reader, limit, expected)
}

/// Reads to the end into one buffer; an error past `limit` bytes or at the first NUL byte.
fn read_bounded(mut reader: impl Read, limit: u64, expected: u64) -> Result<Vec<u8>, DecodeError> {
    let first = expected.min(limit).clamp(8 * 1024, BLOCK as u64) as usize;
    let mut out = vec![0u8; first];
    let mut filled = 0usize;
    loop {
        if filled == out.len() {
            if filled as u64 > limit {
                return Err(too_large(limit));
            }
            // Grown exactly, so that the buffer never exceeds the limit by more than a byte.
            let grown = (out.len() as u64)
                .saturating_mul(2)
                .min(limit.saturating_add(1))
                .max(filled as u64 + 1) as usize;
            out.reserve_exact(grown - out.len());
            out.resize(grown, 0);
        }
        let Some(spare) = out.get_mut(filled..) else {
            return Err(too_large(limit));
        };
        match reader.read(spare) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(at) = spare.get(..n).and_then(|b| memchr::memchr(0, b)) {
                    return Err(not_text(filled + at));
                }
                filled += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    if filled as u64 > limit {
        return Err(too_large(limit));
    }
    out.truncate(filled);
    Ok(out)
}

fn too_large(limit: u64) -> DecodeError {
    DecodeError(format!("larger than the limit of {limit} bytes"))
}

fn not_text(offset: usize) -> DecodeError {
    DecodeError(format!("not text: a NUL byte at offset {offset}"))
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

// ---------------------------------------------------------------------------------------------
// Records from a stream.

/// How much of an input may be read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest single JSON value (a record, or a whole object that is not a delivery file).
    pub value: u64,
    /// The most bytes read from the input after decompression (`None`: unbounded, for streams).
    pub total: Option<u64>,
}

/// What reading an input gave, besides its records.
#[derive(Debug, Default)]
pub struct Decoded {
    pub counts: ShapeCounts,
    /// Bytes read, after decompression.
    pub bytes: u64,
    /// Records handed over.
    pub records: u64,
    /// Why reading stopped before the end, if it did; every record before was handed over.
    pub error: Option<DecodeError>,
    /// Whether it stopped at one of the [`Limits`].
    pub limit_reached: bool,
}

/// Reads every record of `reader` and hands it to `f`, in order; `stop` is asked between
/// blocks whether to give up. Memory holds a block of the input, and the largest value in it.
pub fn read_records(
    reader: impl Read,
    limits: Limits,
    first_index: u64,
    stop: &dyn Fn() -> bool,
    f: &mut dyn FnMut(RawRecord<'_>),
) -> Decoded {
    read_blocks(reader, limits, BLOCK, first_index, stop, f)
}

/// [`read_records`] in blocks of `block` bytes (for tests and fuzzing: small blocks put a
/// block boundary everywhere).
pub fn read_blocks(
    mut reader: impl Read,
    limits: Limits,
    block: usize,
    first_index: u64,
    stop: &dyn Fn() -> bool,
    f: &mut dyn FnMut(RawRecord<'_>),
) -> Decoded {
    let mut parser = Parser::new(first_index);
    let mut buf: Vec<u8> = Vec::new();
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Decoded::default();
    let mut ended: Option<End> = None;
    let limit = limits.value.max(1);
    loop {
        // Parse what is there.
        let text = match std::str::from_utf8(buf.get(start..end).unwrap_or_default()) {
            Ok(t) => t,
            Err(e) if e.error_len().is_none() && ended.is_none() => {
                // A character cut at the end of the block: complete it first.
                buf.get(start..start + e.valid_up_to())
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .unwrap_or_default()
            }
            Err(e) => {
                let valid = buf
                    .get(start..start + e.valid_up_to())
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .unwrap_or_default();
                // What precedes the invalid byte is read; then the input ends.
                let at = parser.base + e.valid_up_to() as u64;
                let consumed = parser.parse(valid, End::Cut, f);
                out.error = Some(match consumed {
                    Err(err) => err,
                    Ok(_) => DecodeError(format!("not UTF-8 text (invalid byte at offset {at})")),
                });
                break;
            }
        };
        let end_state = match ended {
            Some(e) if text.len() == end - start => e,
            _ => End::More,
        };
        let consumed = match parser.parse(text, end_state, f) {
            Ok(n) => n,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        start += consumed;
        parser.base += consumed as u64;
        if end_state != End::More {
            if let Some(End::Cut) = ended {
                out.error = out.error.take().or(Some(DecodeError(
                    "the input ended unexpectedly".to_string(),
                )));
            }
            break;
        }
        if stop() {
            break;
        }
        // Read more: move the unparsed rest to the front, and grow only for a value that
        // fills the buffer by itself.
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if buf.is_empty() {
            buf = vec![0u8; block.clamp(1, limit as usize + 1)];
        } else if end == buf.len() {
            if buf.len() as u64 > limit {
                out.error = Some(DecodeError(format!(
                    "a JSON value exceeds the limit of {limit} bytes"
                )));
                out.limit_reached = true;
                break;
            }
            let grown = (buf.len() as u64).saturating_mul(2).min(limit + 1) as usize;
            buf.reserve_exact(grown - buf.len());
            buf.resize(grown, 0);
        }
        // Fill the buffer (a pipe gives little at a time: parse whole blocks, not crumbs).
        while end < buf.len() && ended.is_none() {
            let Some(spare) = buf.get_mut(end..) else {
                break;
            };
            match reader.read(spare) {
                Ok(0) => ended = Some(End::Eof),
                Ok(n) => {
                    let fresh = spare.get(..n).unwrap_or_default();
                    if let Some(at) = memchr::memchr(0, fresh) {
                        // Parse what came before it, then stop: this is not text.
                        end += at;
                        out.bytes += at as u64;
                        out.error = Some(not_text((out.bytes) as usize));
                        ended = Some(End::Cut);
                        break;
                    }
                    end += n;
                    out.bytes += n as u64;
                    if let Some(total) = limits.total
                        && out.bytes > total
                    {
                        out.error = Some(DecodeError(format!(
                            "exceeds the limit of {total} bytes after decompression"
                        )));
                        out.limit_reached = true;
                        ended = Some(End::Cut);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.error = Some(io_error(e));
                    ended = Some(End::Cut);
                }
            }
        }
    }
    out.counts = parser.counts;
    out.records = parser.index - first_index;
    out
}

/// Calls `f` with every record in `text`, in order, and counts what is not a record.
///
/// Invalid JSON that cannot be skipped (outside line-delimited input) ends the text with an
/// error that says where; the records before it were handed over.
pub fn for_each_record(
    text: &str,
    first_index: u64,
    f: &mut dyn FnMut(RawRecord<'_>),
) -> Result<ShapeCounts, DecodeError> {
    let mut parser = Parser::new(first_index);
    parser.parse(text, End::Eof, f)?;
    Ok(parser.counts)
}

// ---------------------------------------------------------------------------------------------
// The parser: where in the structure of the input the next byte is.

/// Whether more text can follow the text being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// More may come: an incomplete value waits for it.
    More,
    /// The input ended: an incomplete value is invalid JSON.
    Eof,
    /// The input was cut (a read error, a limit, a NUL byte): an incomplete value is what the
    /// cut left, reported with the cut.
    Cut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Between top-level values.
    Top,
    /// In `{"Records": [` (`records`) or a top-level `[`: an element or `]` comes next;
    /// `after_comma`: the last token was `,`, so `]` is an error.
    Elements { records: bool, after_comma: bool },
    /// After an element: `,` or `]`.
    AfterElement { records: bool },
    /// In a Records envelope after its list: `,` and more members, or `}`.
    EnvelopeRest { event_fields: bool },
}

/// Whether the input is line-delimited: then a line that is not JSON is one rejected record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    Unknown,
    Yes,
}

struct Parser {
    level: Level,
    /// The next record's index.
    index: u64,
    counts: ShapeCounts,
    lines: Lines,
    /// At Top, whether only white space has been seen since a line began.
    fresh_line: bool,
    /// The last top-level value began a line and held no newline: if a newline follows it,
    /// the input is line-delimited.
    one_line: bool,
    /// The offset in the input of the text being parsed.
    base: u64,
}

/// A value parsed at a position: what serde_json said.
enum Parsed<T> {
    /// The value, and where it ends.
    Value(T, usize),
    /// The text ends inside the value.
    Incomplete,
    /// Not JSON.
    Syntax(serde_json::Error),
    /// JSON, but not a `T`.
    Data(serde_json::Error),
}

fn parse_at<'t, T: Deserialize<'t>>(text: &'t str, at: usize) -> Parsed<T> {
    let rest = text.get(at..).unwrap_or_default();
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T>();
    match stream.next() {
        None => Parsed::Incomplete,
        Some(Ok(v)) => Parsed::Value(v, at + stream.byte_offset()),
        Some(Err(e)) => match e.classify() {
            serde_json::error::Category::Eof => Parsed::Incomplete,
            serde_json::error::Category::Data => Parsed::Data(e),
            // A number cut by the end of the text (`-`, `1.`, `2e`) is "invalid" to serde_json,
            // not "unexpected end": where the text ends, it may go on in the next block.
            _ if offset_of(rest, e.line(), e.column()) + 1 >= rest.len() => Parsed::Incomplete,
            _ => Parsed::Syntax(e),
        },
    }
}

/// [`parse_at`] for a value kept as text: a number or a literal that ends where the text ends
/// may go on in the next block, so it is incomplete until the input ends.
fn raw_at(text: &str, at: usize, end: End) -> Parsed<&RawValue> {
    match parse_at::<&RawValue>(text, at) {
        Parsed::Value(raw, e)
            if e == text.len() && end == End::More && !raw.get().ends_with(['}', ']', '"']) =>
        {
            Parsed::Incomplete
        }
        other => other,
    }
}

/// The first position at or after `at` that is not JSON white space; whether a newline was
/// passed.
fn skip_ws(text: &str, at: usize) -> (usize, bool) {
    let bytes = text.as_bytes();
    let mut i = at;
    let mut newline = false;
    while let Some(b) = bytes.get(i) {
        match b {
            b'\n' => newline = true,
            b' ' | b'\t' | b'\r' => {}
            _ => break,
        }
        i += 1;
    }
    (i, newline)
}

/// Whether `text` starts with `{ "Records" : [`: a delivery file, read record by record.
/// `None` when the text ends before it can tell.
fn records_prefix(text: &str) -> Option<Option<usize>> {
    let (i, _) = skip_ws(text, 1);
    let key = b"\"Records\"";
    let rest = text.as_bytes().get(i..).unwrap_or_default();
    if rest.len() < key.len() {
        return if key.starts_with(rest) {
            None
        } else {
            Some(None)
        };
    }
    if !rest.starts_with(key) {
        return Some(None);
    }
    let (i, _) = skip_ws(text, i + key.len());
    match text.as_bytes().get(i) {
        None => return None,
        Some(b':') => {}
        Some(_) => return Some(None),
    }
    let (i, _) = skip_ws(text, i + 1);
    match text.as_bytes().get(i) {
        None => None,
        Some(b'[') => Some(Some(i + 1)),
        Some(_) => Some(None),
    }
}

/// Records handed over in batches: the parser's code and then the caller's (a scan's
/// evaluation) each run over a batch while in the instruction cache, rather than taking turns
/// evicting each other on every record. Parsed records borrow from the text, so a batch costs
/// only its `Event`s.
const BATCH: usize = 32;

impl Parser {
    fn new(first_index: u64) -> Parser {
        Parser {
            level: Level::Top,
            index: first_index,
            counts: ShapeCounts::default(),
            lines: Lines::Unknown,
            fresh_line: true,
            one_line: false,
            base: 0,
        }
    }

    fn emit(&mut self, data: RecordData<'_>, f: &mut dyn FnMut(RawRecord<'_>)) {
        let text = match &data {
            RecordData::Json(json) => Some(*json),
            _ => None,
        };
        f(RawRecord {
            index: self.index,
            data,
            text,
        });
        self.index += 1;
    }

    /// An event parsed in place, with its text.
    fn emit_event<'t>(
        &mut self,
        event: Event<'t>,
        text: &'t str,
        f: &mut dyn FnMut(RawRecord<'_>),
    ) {
        f(RawRecord {
            index: self.index,
            data: RecordData::Event(event),
            text: Some(text),
        });
        self.index += 1;
    }

    fn flush<'t>(
        &mut self,
        batch: &mut Vec<(Event<'t>, &'t str)>,
        f: &mut dyn FnMut(RawRecord<'_>),
    ) {
        for (event, text) in batch.drain(..) {
            self.emit_event(event, text, f);
        }
    }

    /// Parses as much of `text` as it can; the number of bytes consumed (the rest is parsed
    /// again, with more text after it, on the next call).
    fn parse(
        &mut self,
        text: &str,
        end: End,
        f: &mut dyn FnMut(RawRecord<'_>),
    ) -> Result<usize, DecodeError> {
        let bytes = text.as_bytes();
        let mut pos = 0usize;
        let mut batch: Vec<(Event<'_>, &str)> = Vec::new();
        loop {
            match self.level {
                Level::Top => {
                    let (p, newline) = skip_ws(text, pos);
                    self.fresh_line |= newline;
                    if newline && self.one_line {
                        self.lines = Lines::Yes;
                    }
                    pos = p;
                    if self.base == 0 && pos == 0 && text.starts_with('\u{feff}') {
                        pos = '\u{feff}'.len_utf8();
                        continue;
                    }
                    let Some(&first) = bytes.get(p) else {
                        return Ok(pos);
                    };
                    self.one_line = false;
                    match first {
                        b'{' => match records_prefix(text.get(p..).unwrap_or_default()) {
                            Some(Some(n)) => {
                                self.level = Level::Elements {
                                    records: true,
                                    after_comma: false,
                                };
                                self.fresh_line = false;
                                pos = p + n;
                                continue;
                            }
                            None if end == End::More => return Ok(p),
                            _ => {}
                        },
                        b'[' => {
                            self.level = Level::Elements {
                                records: false,
                                after_comma: false,
                            };
                            self.fresh_line = false;
                            pos = p + 1;
                            continue;
                        }
                        _ => {}
                    }
                    match self.value(text, p, 0, end, f)? {
                        Step::Done(e) => {
                            let value = text.as_bytes().get(p..e).unwrap_or_default();
                            self.one_line = self.fresh_line
                                && self.lines == Lines::Unknown
                                && memchr::memchr(b'\n', value).is_none();
                            self.fresh_line = false;
                            pos = e;
                        }
                        Step::Skipped(e) => {
                            self.fresh_line = true;
                            pos = e;
                        }
                        Step::Wait => return Ok(p),
                        Step::Stop => return Ok(text.len()),
                    }
                }
                Level::Elements {
                    records,
                    after_comma,
                } => {
                    let (p, _) = skip_ws(text, pos);
                    pos = p;
                    let Some(&first) = bytes.get(p) else {
                        self.flush(&mut batch, f);
                        return self.exhausted(pos, end, "a list");
                    };
                    if first == b']' {
                        self.flush(&mut batch, f);
                        if after_comma {
                            return Err(self.unreadable(p, "a `]` after a `,`"));
                        }
                        pos = p + 1;
                        self.level = if records {
                            Level::EnvelopeRest {
                                event_fields: false,
                            }
                        } else {
                            Level::Top
                        };
                        continue;
                    }
                    if records {
                        match parse_at::<Event>(text, p) {
                            Parsed::Value(event, e) => {
                                batch.push((event, text.get(p..e).unwrap_or_default()));
                                if batch.len() == BATCH {
                                    self.flush(&mut batch, f);
                                }
                                pos = e;
                            }
                            Parsed::Data(_) => {
                                // The record is rejected, with the parser's reason, when its
                                // text is parsed again.
                                self.flush(&mut batch, f);
                                match raw_at(text, p, end) {
                                    Parsed::Value(raw, e) => {
                                        self.emit(RecordData::Json(raw.get()), f);
                                        pos = e;
                                    }
                                    Parsed::Incomplete if end == End::More => return Ok(p),
                                    Parsed::Incomplete if end == End::Cut => return Ok(text.len()),
                                    Parsed::Incomplete => {
                                        return Err(
                                            self.unreadable(p, "the input ends inside a record")
                                        );
                                    }
                                    Parsed::Syntax(e) | Parsed::Data(e) => {
                                        return Err(self.unreadable_json(text, p, &e));
                                    }
                                }
                            }
                            Parsed::Incomplete => {
                                self.flush(&mut batch, f);
                                return match end {
                                    End::More => Ok(p),
                                    End::Cut => Ok(text.len()),
                                    End::Eof => {
                                        Err(self.unreadable(p, "the input ends inside a record"))
                                    }
                                };
                            }
                            Parsed::Syntax(e) => {
                                self.flush(&mut batch, f);
                                return Err(self.unreadable_json(text, p, &e));
                            }
                        }
                    } else {
                        match self.value(text, p, 1, end, f)? {
                            Step::Done(e) | Step::Skipped(e) => pos = e,
                            Step::Wait => return Ok(p),
                            Step::Stop => return Ok(text.len()),
                        }
                    }
                    self.level = Level::AfterElement { records };
                }
                Level::AfterElement { records } => {
                    let (p, _) = skip_ws(text, pos);
                    pos = p;
                    match bytes.get(p) {
                        None => {
                            self.flush(&mut batch, f);
                            return self.exhausted(pos, end, "a list");
                        }
                        Some(b',') => {
                            pos = p + 1;
                            self.level = Level::Elements {
                                records,
                                after_comma: true,
                            };
                        }
                        Some(b']') => {
                            self.level = Level::Elements {
                                records,
                                after_comma: false,
                            };
                        }
                        Some(_) => {
                            self.flush(&mut batch, f);
                            return Err(self.unreadable(p, "expected `,` or `]` after a record"));
                        }
                    }
                }
                Level::EnvelopeRest { event_fields } => {
                    let (p, _) = skip_ws(text, pos);
                    pos = p;
                    match bytes.get(p) {
                        None => return self.exhausted(pos, end, "an object"),
                        Some(b'}') => {
                            if event_fields {
                                self.emit(RecordData::Invalid(AMBIGUOUS.to_string()), f);
                            }
                            self.level = Level::Top;
                            self.fresh_line = false;
                            pos = p + 1;
                        }
                        Some(b',') => match self.member(text, p + 1, end)? {
                            Some((key, raw, e)) => {
                                if EVENT_FIELDS.contains(&key.as_ref()) {
                                    self.level = Level::EnvelopeRest { event_fields: true };
                                }
                                self.container(&key, raw, f);
                                pos = e;
                            }
                            None if end == End::More => return Ok(p),
                            None if end == End::Cut => return Ok(text.len()),
                            None => {
                                return Err(self.unreadable(p, "the input ends inside an object"));
                            }
                        },
                        Some(_) => {
                            return Err(
                                self.unreadable(p, "expected `,` or `}` after the Records list")
                            );
                        }
                    }
                }
            }
        }
    }

    /// One member `"key": value` of an object at `at`; `None` when the text ends inside it.
    #[allow(clippy::type_complexity)]
    fn member<'t>(
        &self,
        text: &'t str,
        at: usize,
        end: End,
    ) -> Result<Option<(Cow<'t, str>, &'t RawValue, usize)>, DecodeError> {
        let (k, _) = skip_ws(text, at);
        let (key, e) = match parse_at::<Cow<str>>(text, k) {
            Parsed::Value(key, e) => (key, e),
            Parsed::Incomplete => return Ok(None),
            Parsed::Syntax(e) | Parsed::Data(e) => return Err(self.unreadable_json(text, k, &e)),
        };
        let (c, _) = skip_ws(text, e);
        match text.as_bytes().get(c) {
            None => return Ok(None),
            Some(b':') => {}
            Some(_) => return Err(self.unreadable(c, "expected `:` after a key")),
        }
        let (v, _) = skip_ws(text, c + 1);
        match raw_at(text, v, end) {
            Parsed::Value(raw, e) => Ok(Some((key, raw, e))),
            Parsed::Incomplete => Ok(None),
            Parsed::Syntax(e) | Parsed::Data(e) => Err(self.unreadable_json(text, v, &e)),
        }
    }

    /// A whole value at `at` (a top-level value, or an element of a top-level array): an event
    /// parsed in one pass, or the records of its shape.
    fn value(
        &mut self,
        text: &str,
        at: usize,
        depth: u8,
        end: End,
        f: &mut dyn FnMut(RawRecord<'_>),
    ) -> Result<Step, DecodeError> {
        let first = text.as_bytes().get(at).copied().unwrap_or(b' ');
        if first == b'{' {
            match parse_at::<Event>(text, at) {
                Parsed::Value(event, e) if !event.has_envelope_members() => {
                    self.emit_event(event, text.get(at..e).unwrap_or_default(), f);
                    return Ok(Step::Done(e));
                }
                Parsed::Value(..) | Parsed::Data(_) => {}
                Parsed::Incomplete => return self.incomplete(text, at, depth, end, f),
                Parsed::Syntax(e) => return self.syntax(text, at, depth, end, &e, f),
            }
        }
        match raw_at(text, at, end) {
            Parsed::Value(raw, e) => {
                self.shape(raw.get(), depth, f);
                Ok(Step::Done(e))
            }
            Parsed::Incomplete => self.incomplete(text, at, depth, end, f),
            Parsed::Syntax(e) | Parsed::Data(e) => self.syntax(text, at, depth, end, &e, f),
        }
    }

    fn incomplete(
        &mut self,
        text: &str,
        at: usize,
        depth: u8,
        end: End,
        f: &mut dyn FnMut(RawRecord<'_>),
    ) -> Result<Step, DecodeError> {
        match end {
            End::More => Ok(Step::Wait),
            End::Cut => Ok(Step::Stop),
            End::Eof => {
                let e = serde_json::from_str::<IgnoredAny>(text.get(at..).unwrap_or_default())
                    .err()
                    .map(|e| strip_position(&e))
                    .unwrap_or_else(|| "the input ends inside a value".to_string());
                self.syntax_message(text, at, depth, end, &e, f)
            }
        }
    }

    fn syntax(
        &mut self,
        text: &str,
        at: usize,
        depth: u8,
        end: End,
        e: &serde_json::Error,
        f: &mut dyn FnMut(RawRecord<'_>),
    ) -> Result<Step, DecodeError> {
        let message = strip_position(e);
        self.syntax_message(text, at, depth, end, &message, f)
    }

    /// Invalid JSON at `at`: in line-delimited input, the rest of the line is a rejected
    /// record and reading resumes on the next line; elsewhere the input cannot be read on.
    fn syntax_message(
        &mut self,
        text: &str,
        at: usize,
        depth: u8,
        end: End,
        message: &str,
        f: &mut dyn FnMut(RawRecord<'_>),
    ) -> Result<Step, DecodeError> {
        if depth == 0 {
            let lines = match self.lines {
                Lines::Yes => Some(true),
                Lines::Unknown if self.fresh_line => next_line_is_a_value(text, at, end),
                Lines::Unknown => Some(false),
            };
            match lines {
                None => return Ok(Step::Wait),
                Some(true) => {
                    let line_end = match memchr::memchr(
                        b'\n',
                        text.as_bytes().get(at..).unwrap_or_default(),
                    ) {
                        Some(i) => at + i + 1,
                        None if end == End::More => return Ok(Step::Wait),
                        None if end == End::Cut => return Ok(Step::Stop),
                        None => text.len(),
                    };
                    self.lines = Lines::Yes;
                    self.emit(RecordData::Invalid(format!("invalid JSON: {message}")), f);
                    return Ok(Step::Skipped(line_end));
                }
                Some(false) => {}
            }
        }
        Err(self.unreadable(at, &format!("invalid JSON: {message}")))
    }

    /// The records of a whole value that is not read as an event in one pass.
    fn shape(&mut self, json: &str, depth: u8, f: &mut dyn FnMut(RawRecord<'_>)) {
        match json.as_bytes().first() {
            Some(b'{') => {}
            _ => {
                let what = if depth == 0 {
                    "a JSON object or array"
                } else {
                    "a JSON object"
                };
                let reason = format!("expected {what}, found {}", describe(json));
                return self.emit(RecordData::Invalid(reason), f);
            }
        }
        let members = match serde_json::from_str::<Members>(json) {
            Ok(m) => m.0,
            Err(e) => return self.emit(RecordData::Invalid(e.to_string()), f),
        };
        let (mut event_fields, mut digest, mut detail_type) = (false, false, false);
        let mut detail = None;
        let mut containers = 0;
        for (key, value) in &members {
            let present = value.get() != "null";
            match key.as_ref() {
                "Records" | "Events" if value.get().starts_with('[') => containers += 1,
                "detail" if present => detail = Some(*value),
                "detail-type" if present => detail_type = true,
                "digestStartTime" | "digestPublicKeyFingerprint" => digest = true,
                k if EVENT_FIELDS.contains(&k) => event_fields = true,
                _ => {}
            }
        }
        let bridge = detail.filter(|_| detail_type);
        if containers > 0 || bridge.is_some() {
            for (key, value) in &members {
                self.container(key, value, f);
            }
            if let Some(detail) = bridge {
                self.emit(RecordData::Json(detail.get()), f);
            }
            if event_fields {
                self.emit(RecordData::Invalid(AMBIGUOUS.to_string()), f);
            }
        } else if event_fields {
            // An event the one-pass reader could not take: its text says why.
            self.emit(RecordData::Json(json), f);
        } else if digest {
            self.counts.digests += 1;
        } else {
            self.emit(RecordData::Invalid(NOT_CLOUDTRAIL.to_string()), f);
        }
    }

    /// The records of one member of an object, when it is a list of them (`Records`, `Events`).
    fn container(&mut self, key: &str, value: &RawValue, f: &mut dyn FnMut(RawRecord<'_>)) {
        if !value.get().starts_with('[') {
            return;
        }
        let lookup = match key {
            "Records" => false,
            "Events" => true,
            _ => return,
        };
        let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(value.get()) else {
            return;
        };
        for item in items {
            if !lookup {
                self.emit(RecordData::Json(item.get()), f);
                continue;
            }
            match serde_json::from_str::<LookupEvent>(item.get()) {
                Ok(LookupEvent {
                    cloudtrail_event: Some(inner),
                }) => self.emit(RecordData::Json(&inner), f),
                Ok(_) => self.emit(
                    RecordData::Invalid(
                        "a lookup-events entry without a CloudTrailEvent string".to_string(),
                    ),
                    f,
                ),
                Err(e) => self.emit(
                    RecordData::Invalid(format!("a lookup-events entry: {e}")),
                    f,
                ),
            }
        }
    }

    /// The text ran out inside `what`: wait for more, or say the input ended there.
    fn exhausted(&self, pos: usize, end: End, what: &str) -> Result<usize, DecodeError> {
        match end {
            End::More | End::Cut => Ok(pos),
            End::Eof => Err(self.unreadable(pos, &format!("the input ends inside {what}"))),
        }
    }

    fn unreadable_json(&self, text: &str, at: usize, e: &serde_json::Error) -> DecodeError {
        let local = offset_of(text.get(at..).unwrap_or_default(), e.line(), e.column());
        self.unreadable(at + local, &format!("invalid JSON: {}", strip_position(e)))
    }

    fn unreadable(&self, at: usize, what: &str) -> DecodeError {
        DecodeError(format!("{what} at byte {}", self.base + at as u64))
    }
}

/// What a whole value gave.
enum Step {
    /// Read to this position.
    Done(usize),
    /// A bad line, skipped to this position.
    Skipped(usize),
    /// More text is needed to tell.
    Wait,
    /// The input was cut inside it.
    Stop,
}

/// Whether the line after the one holding `at` is a JSON object or array by itself: then the
/// input is line-delimited. `None` when the text ends before it can tell.
fn next_line_is_a_value(text: &str, at: usize, end: End) -> Option<bool> {
    let bytes = text.as_bytes();
    let Some(nl) = memchr::memchr(b'\n', bytes.get(at..).unwrap_or_default()) else {
        return if end == End::More { None } else { Some(false) };
    };
    let (start, _) = skip_ws(text, at + nl + 1);
    let line_end = match memchr::memchr(b'\n', bytes.get(start..).unwrap_or_default()) {
        Some(i) => start + i,
        None if end == End::More => return None,
        None => text.len(),
    };
    let line = text.get(start..line_end).unwrap_or_default();
    if !line.starts_with(['{', '[']) {
        return Some(false);
    }
    let mut values = serde_json::Deserializer::from_str(line).into_iter::<IgnoredAny>();
    let mut any = false;
    for v in values.by_ref() {
        if v.is_err() {
            return Some(false);
        }
        any = true;
    }
    Some(any)
}

/// serde_json's message without its ` at line L column C`, which is relative to the value.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// The byte offset of a 1-based line and column in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1).min(l.len());
        }
        offset += l.len();
    }
    offset
}

/// An object's members in order, duplicates kept.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The first key that one object of `json` repeats (compared as JSON reads them, escapes
/// decoded), if any. `json` is valid JSON, as serde_json captured it.
pub fn repeated_key(json: &str) -> Option<String> {
    repeated_key_as(json, |key| key)
}

/// [`repeated_key`], with keys compared as `spelled` spells them: names read without regard to
/// case are the same key in any case.
pub fn repeated_key_as<'j>(
    json: &'j str,
    spelled: impl Fn(Cow<'j, str>) -> Cow<'j, str>,
) -> Option<String> {
    let bytes = json.as_bytes();
    // For each open object, its keys so far; `None` for an array. Closed objects' vectors are
    // kept for the next ones: an inventory has hundreds of thousands of small objects.
    let mut open: Vec<Option<Vec<Cow<'_, str>>>> = Vec::new();
    let mut spare: Vec<Vec<Cow<'_, str>>> = Vec::new();
    // Whether the next string in the innermost object is a key.
    let mut key_next = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'{' => {
                open.push(Some(spare.pop().unwrap_or_default()));
                key_next = true;
            }
            b'[' => {
                open.push(None);
                key_next = false;
            }
            b'}' | b']' => {
                if let Some(Some(mut keys)) = open.pop() {
                    keys.sort_unstable();
                    if let Some(pair) = keys.windows(2).find(|w| w.first() == w.get(1)) {
                        return pair.first().map(|k| k.to_string());
                    }
                    keys.clear();
                    spare.push(keys);
                }
                key_next = false;
            }
            b',' => key_next = matches!(open.last(), Some(Some(_))),
            b':' => key_next = false,
            b'"' => {
                let start = i;
                let mut escaped = false;
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' => {
                            escaped = true;
                            i += 1;
                        }
                        b'"' => break,
                        _ => {}
                    }
                    i += 1;
                }
                if key_next && let Some(Some(keys)) = open.last_mut() {
                    let raw = json.get(start..=i).unwrap_or_default();
                    let key = if escaped {
                        Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
                    } else {
                        Cow::Borrowed(raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default())
                    };
                    keys.push(spelled(key));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Deserialize)]
struct LookupEvent<'a> {
    #[serde(borrow, rename = "CloudTrailEvent")]
    cloudtrail_event: Option<Cow<'a, str>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Each record as `index kind text`, and what the input ended with.
    type Seen = (Vec<String>, ShapeCounts, Option<String>);

    fn describe_record(r: RawRecord<'_>) -> String {
        let (kind, text) = match r.data {
            RecordData::Json(json) => ("json", json.to_string()),
            RecordData::Event(e) => ("event", e.event_name.to_string()),
            RecordData::Invalid(reason) => ("invalid", reason),
        };
        format!("{} {kind} {text}", r.index)
    }

    fn whole(text: &str) -> Seen {
        let mut out = Vec::new();
        let r = for_each_record(text, 0, &mut |r| out.push(describe_record(r)));
        let (counts, err) = match r {
            Ok(c) => (c, None),
            Err(e) => (ShapeCounts::default(), Some(e.0)),
        };
        (out, counts, err)
    }

    /// A reader that gives at most `n` bytes at a time, like a pipe.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            let (head, tail) = self.0.split_at(n);
            buf[..n].copy_from_slice(head);
            self.0 = tail;
            Ok(n)
        }
    }

    fn streamed(bytes: &[u8], block: usize, trickle: usize) -> (Vec<String>, Decoded) {
        let mut out = Vec::new();
        let limits = Limits {
            value: 1 << 20,
            total: None,
        };
        let d = read_blocks(
            Trickle(bytes, trickle),
            limits,
            block,
            0,
            &|| false,
            &mut |r| out.push(describe_record(r)),
        );
        (out, d)
    }

    const EV: &str = r#"{"eventVersion":"1.08","eventTime":"2024-05-14T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#;

    fn ev(name: &str) -> String {
        EV.replace("GetObject", name)
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_every_shape() {
        let s3 = format!(r#"{{"Records":[{},{}]}}"#, ev("A"), ev("B"));
        assert_eq!(whole(&s3).0, vec!["0 event A", "1 event B"], "single pass");
        let array = format!("[{},{}]", ev("A"), ev("B"));
        assert_eq!(whole(&array).0, vec!["0 event A", "1 event B"]);
        let ndjson = format!("{}\n{}\n", ev("A"), ev("B"));
        assert_eq!(whole(&ndjson).0, vec!["0 event A", "1 event B"]);
        let lookup = format!(
            r#"{{"Events":[{{"EventId":"x","CloudTrailEvent":{}}}]}}"#,
            serde_json::to_string(EV).unwrap()
        );
        assert_eq!(whole(&lookup).0, vec![format!("0 json {EV}")]);
        let bridge = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{EV}}}"#
        );
        assert_eq!(whole(&bridge).0, vec![format!("0 json {EV}")]);
        let digest =
            r#"{"awsAccountId":"1","digestStartTime":"2022-06-28T00:00:00Z","logFiles":[]}"#;
        let (recs, counts, err) = whole(digest);
        assert!(recs.is_empty() && err.is_none());
        assert_eq!(counts.digests, 1);
        let nested = format!(r#"[{{"Records":[{}]}},{}]"#, ev("A"), ev("B"));
        assert_eq!(
            whole(&nested).0,
            vec![format!("0 json {}", ev("A")), "1 event B".to_string()]
        );
    }

    #[test]
    fn a_value_that_is_no_record_is_rejected_and_the_rest_read() {
        // A bare number in an array, an unknown object, a nested array: one rejected record each.
        let text = format!(r#"[{},42,{{"hello":"world"}},[1],{}]"#, ev("A"), ev("B"));
        let (recs, _, err) = whole(&text);
        assert_eq!(err, None);
        assert_eq!(recs.len(), 5, "{recs:?}");
        assert!(
            recs[1].starts_with("1 invalid expected a JSON object, found a number"),
            "{recs:?}"
        );
        assert!(
            recs[2].starts_with("2 invalid not a CloudTrail event"),
            "{recs:?}"
        );
        assert!(recs[3].starts_with("3 invalid expected a JSON object, found a nested array"));
        assert_eq!(recs[4], "4 event B");
        let (recs, _, _) = whole("42");
        assert_eq!(
            recs,
            vec!["0 invalid expected a JSON object or array, found a number"]
        );
    }

    #[test]
    fn a_bad_line_of_ndjson_is_one_rejected_record() {
        let lines = [
            ev("A"),
            "{oops".to_string(),
            "42".to_string(),
            ev("B"),
            "{\"eventName\":".to_string(),
            ev("C"),
        ];
        let text = lines.join("\n") + "\n";
        let (recs, _, err) = whole(&text);
        assert_eq!(err, None, "{recs:?}");
        let kinds: Vec<&str> = recs.iter().map(|r| r.split(' ').nth(1).unwrap()).collect();
        assert_eq!(
            kinds,
            ["event", "invalid", "invalid", "event", "invalid", "event"],
            "{recs:?}"
        );
        assert!(recs[1].contains("invalid JSON"), "{recs:?}");
        // The first line bad: the second line shows that the input is line-delimited.
        let text = format!("{{oops\n{}\n{}", ev("A"), ev("B"));
        let (recs, _, err) = whole(&text);
        assert_eq!(err, None);
        assert_eq!(recs.len(), 3, "{recs:?}");
        // A truncated last line.
        let text = format!("{}\n{}", ev("A"), &ev("B")[..40]);
        let (recs, _, err) = whole(&text);
        assert_eq!((recs.len(), err), (2, None), "{recs:?}");
    }

    #[test]
    fn invalid_json_in_a_document_ends_it_where_it_is() {
        let text = format!(
            "{{\n  \"Records\": [\n    {},\n    {{\"eventName\": }}\n  ]\n}}\n",
            ev("A")
        );
        let (recs, _, err) = whole(&text);
        assert_eq!(
            recs,
            vec!["0 event A"],
            "the record before the error is read"
        );
        let err = err.unwrap();
        assert!(
            err.starts_with("invalid JSON: expected value at byte"),
            "{err}"
        );
        // Pretty-printed JSON is not mistaken for lines: one error, not one per line.
        let pretty = "{\n  \"a\": 1,\n  oops\n}\n{\n  \"b\": 2\n}\n";
        let (recs, _, err) = whole(pretty);
        assert!(recs.is_empty(), "{recs:?}");
        assert!(err.is_some());
        assert!(
            whole(&format!("[{},", ev("A")))
                .2
                .unwrap()
                .contains("ends inside a list")
        );
    }

    #[test]
    fn an_event_with_a_records_member_never_vanishes() {
        // Read as an event when the member is no list of records.
        let plain = ev("A").replace("{", r#"{"Records":"x","#);
        assert_eq!(whole(&plain).0, vec!["0 event A"]);
        // With a list: the list's records are read and the object is rejected as ambiguous,
        // whichever key comes first.
        for text in [
            format!(
                r#"{{"Records":[{}],"eventVersion":"1","eventName":"Hidden"}}"#,
                ev("B")
            ),
            format!(
                r#"{{"eventVersion":"1","eventName":"Hidden","Records":[{}]}}"#,
                ev("B")
            ),
            format!(
                r#"{{"eventName":"Hidden","Events":[{{"CloudTrailEvent":{}}}]}}"#,
                serde_json::to_string(&ev("B")).unwrap()
            ),
        ] {
            let (recs, _, err) = whole(&text);
            assert_eq!(err, None);
            assert_eq!(recs.len(), 2, "{text}: {recs:?}");
            assert!(recs.iter().any(|r| r.contains("B")), "{recs:?}");
            assert!(
                recs.iter()
                    .any(|r| r.contains("invalid an object with both")),
                "{recs:?}"
            );
        }
    }

    #[test]
    fn streaming_reads_what_the_whole_text_reads_at_every_boundary() {
        let texts = [
            format!(r#"{{"Records":[{},{},42,{}]}}"#, ev("A"), ev("B"), ev("C")),
            format!("[{}, {}]  {}", ev("A"), ev("B"), ev("C")),
            format!("{}\n{{bad\n{}\n12345\n", ev("A"), ev("B")),
            format!("{}\n{{bad\n{{worse\n{}\n", ev("A"), ev("B")),
            format!("\u{feff}{}", ev("A")),
            format!(r#"{{"Records":[{}],"x":12345,"eventName":"y"}}"#, ev("A")),
            format!(r#"[{{"Records":[{}]}},"日本語",{}]"#, ev("A"), ev("B")),
            // Numbers a block can cut where serde_json calls them invalid: `-`, `1.`, `2e`.
            "[12,{\"a\":-316446192,\"b\":1.5,\"c\":2e10},-7]\nnull\n-1.25e-3\n".to_string(),
        ];
        for text in &texts {
            let (expected, _, err) = whole(text);
            assert_eq!(err, None, "{text}");
            for block in [1, 2, 3, 7, 16, 64, 1000] {
                for trickle in [1, 5, 1 << 20] {
                    let (got, d) = streamed(text.as_bytes(), block, trickle);
                    assert_eq!(
                        got, expected,
                        "{text} in blocks of {block}, reads of {trickle}"
                    );
                    assert!(d.error.is_none(), "{:?}", d.error);
                    assert_eq!(d.bytes, text.len() as u64);
                }
            }
        }
    }

    #[test]
    fn gzip_is_recognised_without_seeking_and_every_member_read() {
        let a = format!("{}\n", ev("A"));
        let b = format!("{}\n", ev("B"));
        let mut two = gz(a.as_bytes());
        two.extend(gz(b.as_bytes()));
        let (recs, d) = streamed(&sniff_all(&two), 1 << 10, 1 << 20);
        assert_eq!((recs.len(), d.error), (2, None));
        // Zero padding after the last member is ignored, as gzip -d does.
        let mut padded = two.clone();
        padded.extend([0u8; 512]);
        let (recs, d) = streamed(&sniff_all(&padded), 1 << 10, 1 << 20);
        assert_eq!((recs.len(), d.error), (2, None));
        // Garbage after it: the content is read, and the garbage reported.
        let mut garbage = two.clone();
        garbage.extend(b"not gzip");
        let mut reader = sniffed(Trickle(&garbage, 3)).unwrap();
        let mut recs = 0;
        let d = read_records(
            &mut reader,
            Limits {
                value: 1 << 20,
                total: None,
            },
            0,
            &|| false,
            &mut |_| recs += 1,
        );
        assert_eq!(recs, 2);
        assert!(d.error.unwrap().0.contains("not gzip data"));
        // A truncated member: the records before the cut are read.
        let many: String = (0..200).map(|i| ev(&format!("E{i}")) + "\n").collect();
        let cut = gz(many.as_bytes());
        let cut = &cut[..cut.len() * 3 / 4];
        let mut recs = 0;
        let d = read_records(
            sniffed(Trickle(cut, 4096)).unwrap(),
            Limits {
                value: 1 << 20,
                total: None,
            },
            0,
            &|| false,
            &mut |_| recs += 1,
        );
        assert!(recs > 100, "{recs}");
        assert!(d.error.unwrap().0.starts_with("gzip"));
    }

    #[test]
    fn what_a_damaged_member_decodes_to_before_the_damage_is_read_whatever_the_reads() {
        let many: String = (0..400).map(|i| ev(&format!("E{i}")) + "\n").collect();
        let clean = gz(many.as_bytes());
        let read = |bytes: &[u8], block: usize, trickle: usize| {
            let mut recs = Vec::new();
            let reader = sniffed(Trickle(bytes, trickle)).unwrap();
            let limits = Limits {
                value: 1 << 20,
                total: None,
            };
            let d = read_blocks(reader, limits, block, 0, &|| false, &mut |r| {
                recs.push(describe_record(r))
            });
            (recs, d.error.map(|e| e.0).unwrap_or_default())
        };
        // Damage the deflate data until inflating fails there (rather than decoding garbage).
        let mut tried = 0;
        let damages = (clean.len() / 3..clean.len() - 20)
            .flat_map(|at| [0xff, 0x80, 0x0f, 0x01].map(|m| (at, m)));
        for (at, mask) in damages {
            if tried == 3 {
                break;
            }
            let mut damaged = clean.clone();
            damaged[at] ^= mask;
            let (whole, error) = read(&damaged, 16 << 20, 1 << 20);
            if !error.starts_with("gzip: ") || error.contains("checksum") {
                continue;
            }
            tried += 1;
            assert!(whole.len() > 50, "{}", whole.len());
            for (block, trickle) in [(100, 7), (4096, 1), (1 << 16, 4096)] {
                assert_eq!(
                    read(&damaged, block, trickle).0,
                    whole,
                    "{at}: {block} {trickle}"
                );
            }
        }
        assert!(tried > 0, "no damage made inflating fail");
    }

    /// The decompressed bytes of `bytes`, through a reader that cannot seek.
    fn sniff_all(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        sniffed(Trickle(bytes, 1))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn one_byte_inputs_are_read() {
        assert_eq!(sniff_all(b"x"), b"x");
        assert_eq!(sniff_all(b"\x1f"), b"\x1f");
        let (recs, d) = streamed(b"x", 16, 1);
        assert!(recs.is_empty());
        assert!(d.error.unwrap().0.contains("invalid JSON"));
    }

    #[test]
    fn input_that_is_not_text_ends_at_once() {
        struct Zeros(u64);
        impl Read for Zeros {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += buf.len() as u64;
                buf.fill(0);
                Ok(buf.len())
            }
        }
        let mut zeros = Zeros(0);
        let d = read_records(
            &mut zeros,
            Limits {
                value: 1 << 30,
                total: None,
            },
            0,
            &|| false,
            &mut |_| {},
        );
        assert!(d.error.unwrap().0.contains("NUL byte at offset 0"));
        assert!(zeros.0 <= BLOCK as u64, "read {} bytes", zeros.0);
        let text = format!("{}\n ", ev("A"));
        let mut bytes = text.into_bytes();
        bytes.pop();
        bytes.extend([0xff, b'\n']);
        let (recs, d) = streamed(&bytes, 1 << 10, 1 << 20);
        assert_eq!(recs.len(), 1, "the record before it is read");
        assert!(d.error.unwrap().0.contains("not UTF-8"));
        assert!(
            read_all(&b"{}\x00"[..], 1 << 20, 0)
                .unwrap_err()
                .0
                .contains("NUL")
        );
    }

    #[test]
    fn limits_bound_a_value_and_a_file() {
        let big = format!("{}\n", ev(&"x".repeat(10_000)));
        let mut recs = 0;
        let d = read_blocks(
            big.as_bytes(),
            Limits {
                value: 1000,
                total: None,
            },
            256,
            0,
            &|| false,
            &mut |_| recs += 1,
        );
        assert!(
            d.limit_reached
                && d.error
                    .unwrap()
                    .0
                    .contains("a JSON value exceeds the limit of 1000 bytes")
        );
        let many = format!("{}\n", ev("A")).repeat(100);
        let d = read_blocks(
            many.as_bytes(),
            Limits {
                value: 1 << 20,
                total: Some(1000),
            },
            256,
            0,
            &|| false,
            &mut |_| {},
        );
        assert!(
            d.limit_reached && d.records > 0 && d.records < 100,
            "{:?}",
            d.records
        );
        let gz = gz(&vec![b' '; 100_000]);
        assert_eq!(read_all(&gz[..], 1_000_000, 0).unwrap().len(), 100_000);
        assert!(
            read_all(&gz[..], 1000, 0)
                .unwrap_err()
                .0
                .contains("larger than the limit")
        );
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert!(as_text(b"{\"a\":\"\xff\"}").is_err());
        assert_eq!(as_text("\u{feff}{}".as_bytes()).unwrap(), "{}");
    }
}
