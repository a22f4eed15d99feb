//! Streaming JSONL input and atomic output.
//!
//! - [`Source`]: a path or `-` for stdin.
//! - [`JsonlReader`]: yields `(line, value)` one record at a time in constant memory; handles blank lines,
//!   CRLF, a UTF-8 BOM, and JSON-array files (`[{…},{…}]`, MTN Sails' format); reports invalid UTF-8 and
//!   over-long lines as errors naming `file:line`, then goes on with the next line.
//! - [`Output`] and [`JsonlWriter`]: stdout, or a file written to a temp file in the same directory and
//!   renamed over the target on [`Output::commit`], so the previous file survives any failure or Ctrl-C.

mod reader;
mod writer;

pub use crate::records::parse_json;
pub use reader::{JsonlReader, Line, Raw, ReadOptions, Source, no_input, read_all};
pub use writer::{JsonlWriter, Output};
