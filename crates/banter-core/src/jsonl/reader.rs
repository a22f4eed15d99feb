//! The streaming JSONL reader.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, FieldError};
use crate::records::Record;

/// Where records come from: a file, or `-` for stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl Source {
    /// `-` is stdin, anything else a path.
    pub fn parse(arg: &str) -> Self {
        if arg == "-" { Source::Stdin } else { Source::Path(PathBuf::from(arg)) }
    }

    /// The sources for a tool's positional arguments: none means stdin, which must then not be a
    /// terminal (a user who typed only the command name gets a hint, not a hang).
    pub fn from_args(args: &[String]) -> Result<Vec<Source>, Error> {
        if args.is_empty() {
            if io::stdin().is_terminal() {
                return Err(Error::usage_hint(
                    "no input: give a file, or `-` to read standard input",
                    "pipe data in (`cat data.jsonl | banter-…`) or pass a path",
                ));
            }
            return Ok(vec![Source::Stdin]);
        }
        Ok(args.iter().map(|a| Source::parse(a)).collect())
    }

    /// The path for a file source.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Stdin => None,
            Source::Path(p) => Some(p),
        }
    }

    /// Opens the source for buffered reading. An empty file or an empty (or closed) stdin is an I/O error
    /// (exit 4, "no input"): an upstream step that wrote nothing must not look like a clean run.
    pub fn open(&self) -> Result<Box<dyn BufRead + Send>, Error> {
        let mut r = self.open_raw()?;
        match r.fill_buf() {
            Ok([]) => Err(Error::io(self.to_string(), no_input())),
            Ok(_) => Ok(r),
            Err(e) => Err(Error::io(self.to_string(), e)),
        }
    }

    fn open_raw(&self) -> Result<Box<dyn BufRead + Send>, Error> {
        Ok(match self {
            Source::Stdin => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
            Source::Path(p) => {
                let f = File::open(p).map_err(|e| Error::io(p.display(), e))?;
                if f.metadata().is_ok_and(|m| m.is_dir()) {
                    return Err(Error::io(p.display(), io::Error::other("is a directory, not a file")));
                }
                crate::inputs::register(p);
                Box::new(BufReader::with_capacity(1 << 16, f))
            }
        })
    }
}

/// Bad lines shown on stderr before [`read_all`] fails.
const MAX_REPORTED: usize = 20;

/// Reads every record of `reader`. Each bad line is reported on stderr (`tool: error: file:line: …`, the
/// first 20), and the read fails with one data error counting them (exit 3): a file with five bad lines
/// shows five, not the first only.
pub fn read_all<T: Record>(reader: JsonlReader, tool: &str) -> Result<Vec<T>, Error> {
    let name = reader.name().to_string();
    let mut out = Vec::new();
    let mut bad: Vec<Error> = Vec::new();
    for item in reader.records::<T>() {
        match item {
            Ok(l) => out.push(l.record),
            Err(e) if e.is_record_error() => bad.push(e),
            Err(e) => return Err(e),
        }
    }
    match bad.len() {
        0 => Ok(out),
        1 => Err(bad.remove(0)),
        n => {
            for e in bad.iter().take(MAX_REPORTED) {
                crate::eline!("{tool}: error: {e}");
            }
            let more = n.saturating_sub(MAX_REPORTED);
            let note = if more > 0 { format!(" ({more} not shown)") } else { String::new() };
            Err(Error::data(name, None, FieldError::record(format!("{n} bad records{note}"))))
        }
    }
}

/// The error of an input with no bytes at all.
pub fn no_input() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "no input: the file or stdin is empty")
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Stdin => f.write_str("-"),
            Source::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Reader settings.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Longest line accepted, in bytes; a longer one is skipped and reported (default 64 MiB).
    pub max_line_bytes: usize,
    /// Largest JSON-array file accepted, in bytes (arrays are read whole; default 4 GiB).
    pub max_array_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { max_line_bytes: 64 << 20, max_array_bytes: 4 << 30 }
    }
}

/// One record read, with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<T = Value> {
    /// 1-based line number in the source (for JSON arrays, the line where the element starts).
    pub line: u64,
    /// The record.
    pub record: T,
}

/// One record before JSON parsing: the line's text (JSONL), or the element already parsed (JSON arrays,
/// which must be parsed to be split). Lets a tool split input sequentially and parse in parallel.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// A JSONL line without its terminator (and without a leading BOM).
    Text(String),
    /// An element of a JSON-array file.
    Value(Value),
}

impl Raw {
    /// Parses the record (a no-op for array elements).
    pub fn parse(self) -> Result<Value, FieldError> {
        match self {
            Raw::Text(t) => crate::records::parse_json(t.trim()),
            Raw::Value(v) => Ok(v),
        }
    }
}

enum Mode {
    /// Not yet known: the first non-blank line decides.
    Start,
    /// One JSON value per line.
    Lines,
    /// A JSON array, read whole; `pos` is the byte offset of the next element, `line` its line.
    Array { text: String, pos: usize, line: u64, first: bool },
    /// Finished (EOF, or an unrecoverable error was reported).
    Done,
}

/// A streaming reader of JSON records, one per line (or the elements of one JSON array).
///
/// Yields `Ok(Line)` per record and `Err` per bad record; after a record error ([`Error::is_record_error`])
/// reading goes on with the next line; after an I/O error the iterator ends.
pub struct JsonlReader {
    name: String,
    inner: Box<dyn BufRead + Send>,
    opts: ReadOptions,
    line: u64,
    mode: Mode,
    buf: Vec<u8>,
    was_array: bool,
}

impl fmt::Debug for JsonlReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlReader").field("name", &self.name).field("line", &self.line).finish()
    }
}

enum RawLine {
    Eof,
    Ok,
    TooLong,
}

impl JsonlReader {
    /// Opens a source.
    pub fn open(source: &Source, opts: ReadOptions) -> Result<Self, Error> {
        Ok(Self::new(source.to_string(), source.open()?, opts))
    }

    /// Reads from any buffered reader; `name` is used in error messages.
    pub fn new(name: impl Into<String>, inner: Box<dyn BufRead + Send>, opts: ReadOptions) -> Self {
        JsonlReader { name: name.into(), inner, opts, line: 0, mode: Mode::Start, buf: Vec::new(), was_array: false }
    }

    /// A reader over one input's part of a `--shard` ([`crate::shard::open`]): line numbers continue from
    /// the lines before the part, so errors name the file's real line.
    pub fn from_part(part: crate::shard::Part, opts: ReadOptions) -> Self {
        let mut r = Self::new(part.source.to_string(), part.reader, opts);
        r.line = part.lines_before;
        if part.lines_before > 0 {
            // Past the file's start: JSON Lines (arrays were refused when the shard was opened).
            r.mode = Mode::Lines;
        }
        r
    }

    /// The name errors use for this source.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Typed records: each value goes through [`Record::from_value`], and errors name the field.
    pub fn records<T: Record>(self) -> impl Iterator<Item = Result<Line<T>, Error>> {
        let name = self.name.clone();
        self.map(move |item| {
            let Line { line, record } = item?;
            T::from_value(record).map(|record| Line { line, record }).map_err(|err| Error::data(&name, Some(line), err))
        })
    }

    /// Reads one raw line (without its terminator) into `self.buf`, never holding more than the limit.
    fn read_raw_line(&mut self) -> io::Result<RawLine> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > self.opts.max_line_bytes.saturating_add(2) {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.inner.consume(take);
            if done {
                break;
            }
        }
        if !any {
            return Ok(RawLine::Eof);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        if too_long || self.buf.len() > self.opts.max_line_bytes {
            return Ok(RawLine::TooLong);
        }
        Ok(RawLine::Ok)
    }

    /// True once the reader found that the source is a JSON array (after the first record).
    pub fn is_array(&self) -> bool {
        matches!(self.mode, Mode::Array { .. }) || self.was_array
    }

    /// The next record without parsing it (JSONL lines are only split and checked for UTF-8).
    pub fn next_raw(&mut self) -> Option<Result<Line<Raw>, Error>> {
        match self.mode {
            Mode::Done => None,
            Mode::Array { .. } => {
                self.next_array_element().map(|r| r.map(|l| Line { line: l.line, record: Raw::Value(l.record) }))
            }
            Mode::Start | Mode::Lines => self.next_line_raw(),
        }
    }

    fn next_line_raw(&mut self) -> Option<Result<Line<Raw>, Error>> {
        loop {
            match self.read_raw_line() {
                Err(e) => {
                    self.mode = Mode::Done;
                    return Some(Err(Error::io(&self.name, e)));
                }
                Ok(RawLine::Eof) => {
                    self.mode = Mode::Done;
                    return None;
                }
                Ok(RawLine::TooLong) => {
                    self.mode = Mode::Lines;
                    let limit = self.opts.max_line_bytes;
                    return Some(Err(Error::LineTooLong { path: self.name.clone(), line: self.line, limit }));
                }
                Ok(RawLine::Ok) => {}
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => {
                    self.mode = Mode::Lines;
                    let offset = e.valid_up_to();
                    return Some(Err(Error::InvalidUtf8 { path: self.name.clone(), line: self.line, offset }));
                }
            };
            let trimmed = text.trim();
            if trimmed.is_empty() {
                continue;
            }
            if matches!(self.mode, Mode::Start) {
                if trimmed.starts_with('[') {
                    self.was_array = true;
                    return self.start_array().map(|r| r.map(|l| Line { line: l.line, record: Raw::Value(l.record) }));
                }
                self.mode = Mode::Lines;
            }
            let text = if trimmed.len() == text.len() { text.to_string() } else { trimmed.to_string() };
            return Some(Ok(Line { line: self.line, record: Raw::Text(text) }));
        }
    }

    /// The first line opens a JSON array: read the whole source and iterate its elements.
    fn start_array(&mut self) -> Option<Result<Line, Error>> {
        let first_line = self.line;
        let mut text = String::from_utf8(std::mem::take(&mut self.buf)).unwrap_or_default();
        text.push('\n');
        let mut rest = Vec::new();
        let limit = self.opts.max_array_bytes;
        if let Err(e) = (&mut self.inner).take(limit.saturating_add(1)).read_to_end(&mut rest) {
            self.mode = Mode::Done;
            return Some(Err(Error::io(&self.name, e)));
        }
        if rest.len() as u64 > limit {
            self.mode = Mode::Done;
            return Some(Err(Error::data(
                &self.name,
                Some(first_line),
                FieldError::record(format!("JSON array is larger than {limit} bytes; convert it to JSONL")),
            )));
        }
        match String::from_utf8(rest) {
            Ok(s) => text.push_str(&s),
            Err(e) => {
                let bytes = e.as_bytes();
                let bad = e.utf8_error().valid_up_to();
                let before = &bytes[..bad];
                let line = first_line + 1 + memchr::memchr_iter(b'\n', before).count() as u64;
                let offset = bad - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
                self.mode = Mode::Done;
                return Some(Err(Error::InvalidUtf8 { path: self.name.clone(), line, offset }));
            }
        }
        // Skip the opening bracket (and anything blank before it).
        let pos = text.find('[').map_or(0, |i| i + 1);
        self.mode = Mode::Array { text, pos, line: first_line, first: true };
        self.next_array_element()
    }

    fn next_array_element(&mut self) -> Option<Result<Line, Error>> {
        let Mode::Array { text, pos, line, first } = &mut self.mode else {
            return None;
        };
        let name = &self.name;
        let bytes = text.as_bytes();
        // Skip whitespace and at most one comma before the element.
        let mut seen_comma = false;
        loop {
            match bytes.get(*pos) {
                Some(b'\n') => {
                    *line += 1;
                    *pos += 1;
                }
                Some(b' ' | b'\t' | b'\r') => *pos += 1,
                Some(b',') if !seen_comma => {
                    seen_comma = true;
                    *pos += 1;
                }
                Some(b']') => {
                    let end_line = *line;
                    let trailing = !text[*pos + 1..].trim().is_empty();
                    self.mode = Mode::Done;
                    if trailing {
                        return Some(Err(Error::data(
                            name,
                            Some(end_line),
                            FieldError::record("unexpected data after the closing `]` of the JSON array"),
                        )));
                    }
                    return None;
                }
                None => {
                    let end_line = *line;
                    self.mode = Mode::Done;
                    return Some(Err(Error::data(
                        name,
                        Some(end_line),
                        FieldError::record("JSON array is not closed: expected `]` at the end of the file"),
                    )));
                }
                Some(_) if !*first && !seen_comma => {
                    let at = *line;
                    self.mode = Mode::Done;
                    return Some(Err(Error::data(
                        name,
                        Some(at),
                        FieldError::record("invalid JSON array: expected `,` or `]` between elements"),
                    )));
                }
                Some(_) => break,
            }
        }
        *first = false;
        let start_line = *line;
        let mut stream = serde_json::Deserializer::from_str(&text[*pos..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                let end = *pos + stream.byte_offset();
                *line += text[*pos..end].bytes().filter(|&b| b == b'\n').count() as u64;
                *pos = end;
                Some(Ok(Line { line: start_line, record: value }))
            }
            Some(Err(e)) => {
                let err_line = start_line + e.line().saturating_sub(1) as u64;
                self.mode = Mode::Done;
                Some(Err(Error::data(name, Some(err_line), FieldError::record(crate::records::json_error_message(&e)))))
            }
            None => {
                self.mode = Mode::Done;
                None
            }
        }
    }
}

impl Iterator for JsonlReader {
    type Item = Result<Line, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.next_raw()?;
        let name = &self.name;
        Some(raw.and_then(|Line { line, record }| {
            record.parse().map(|record| Line { line, record }).map_err(|e| Error::data(name, Some(line), e))
        }))
    }
}

#[cfg(test)]
mod tests;
