//! The error type of banter's libraries. Every variant carries the context a user needs to fix the
//! problem (`path`, `line`, `field`) and maps onto one exit code ([`Error::exit`]).

use std::fmt;
use std::io;

use crate::exit_code::Exit;

/// Result alias for banter's libraries.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem with one field of one record, before the file and line are known.
///
/// Record parsers return it; the JSONL reader turns it into [`Error::Data`] with the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// The field, as a JSON path (`messages[2].role`), or `None` for the record as a whole.
    pub field: Option<String>,
    /// What is wrong, lower case, no trailing period.
    pub msg: String,
}

impl FieldError {
    /// An error about one field.
    pub fn field(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Self { field: Some(field.into()), msg: msg.into() }
    }

    /// An error about the record as a whole.
    pub fn record(msg: impl Into<String>) -> Self {
        Self { field: None, msg: msg.into() }
    }

    /// Prefixes the field path with `parent` (`messages[2]` + `role` → `messages[2].role`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = Some(match self.field {
            Some(f) if f.starts_with('[') => format!("{parent}{f}"),
            Some(f) => format!("{parent}.{f}"),
            None => parent.to_string(),
        });
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field \"{field}\": {}", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

/// Errors of banter's libraries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file (or stdin/stdout) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, `-` for stdin, `<stdout>` for stdout.
        path: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// A record is malformed: bad JSON, wrong schema, a bad field.
    #[error("{}", located(path, *line, &err.to_string()))]
    Data {
        /// The file, `-` for stdin.
        path: String,
        /// 1-based line of the record, when known.
        line: Option<u64>,
        /// What is wrong, and with which field.
        err: FieldError,
    },
    /// A line holds bytes that are not UTF-8.
    #[error("{}", located(path, Some(*line), &format!("invalid UTF-8 at byte {offset} of the line")))]
    InvalidUtf8 {
        /// The file, `-` for stdin.
        path: String,
        /// 1-based line.
        line: u64,
        /// Byte offset of the first invalid byte within the line.
        offset: usize,
    },
    /// A line is longer than the reader's limit; it was skipped without being held in memory.
    #[error("{}", located(path, Some(*line), &format!("line is longer than the limit of {limit} bytes (raise it with --max-line-bytes)")))]
    LineTooLong {
        /// The file, `-` for stdin.
        path: String,
        /// 1-based line.
        line: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// The command line or a config file asks for something impossible.
    #[error("{msg}")]
    Usage {
        /// What is wrong.
        msg: String,
        /// How to fix it, printed after a blank line as `hint: …`.
        hint: Option<String>,
    },
    /// A chat template cannot render a sample or is itself invalid.
    #[error("{0}")]
    Template(String),
    /// The user pressed Ctrl-C (or the process got SIGTERM).
    #[error("interrupted")]
    Interrupted,
}

fn located(path: &str, line: Option<u64>, msg: &str) -> String {
    match line {
        Some(line) => format!("{path}:{line}: {msg}"),
        None => format!("{path}: {msg}"),
    }
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl fmt::Display, source: io::Error) -> Self {
        Error::Io { path: path.to_string(), source }
    }

    /// A usage error with no hint.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage { msg: msg.into(), hint: None }
    }

    /// A usage error with a hint.
    pub fn usage_hint(msg: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage { msg: msg.into(), hint: Some(hint.into()) }
    }

    /// A data error at `path:line`.
    pub fn data(path: impl fmt::Display, line: Option<u64>, err: FieldError) -> Self {
        Error::Data { path: path.to_string(), line, err }
    }

    /// The exit code this error maps to.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe => Exit::Success,
            Error::Io { .. } => Exit::Io,
            Error::Data { .. } | Error::InvalidUtf8 { .. } | Error::LineTooLong { .. } => Exit::BadInput,
            Error::Usage { .. } | Error::Template(_) => Exit::Usage,
            Error::Interrupted => Exit::Interrupted,
        }
    }

    /// The hint to print after the error, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// True for errors about one record, after which a reader can go on with the next line.
    pub fn is_record_error(&self) -> bool {
        matches!(self, Error::Data { .. } | Error::InvalidUtf8 { .. } | Error::LineTooLong { .. })
    }

    /// The 1-based line an error is about, if it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            Error::Data { line, .. } => *line,
            Error::InvalidUtf8 { line, .. } | Error::LineTooLong { line, .. } => Some(*line),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_error_names_file_line_and_field() {
        let e = Error::data("data.jsonl", Some(17), FieldError::field("messages", "expected an array"));
        assert_eq!(e.to_string(), "data.jsonl:17: field \"messages\": expected an array");
        assert_eq!(e.exit(), Exit::BadInput);
        assert!(e.is_record_error());
    }

    #[test]
    fn field_paths_nest() {
        let e = FieldError::field("role", "unknown role \"bot\"").within("messages[2]");
        assert_eq!(e.field.as_deref(), Some("messages[2].role"));
        let e = FieldError::field("[0]", "x").within("messages");
        assert_eq!(e.field.as_deref(), Some("messages[0]"));
    }

    #[test]
    fn broken_pipe_is_success() {
        let e = Error::io("<stdout>", io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(e.exit(), Exit::Success);
        let e = Error::io("x.jsonl", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(e.exit(), Exit::Io);
    }
}
