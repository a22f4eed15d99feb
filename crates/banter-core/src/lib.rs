//! banter-core: what every banter tool shares.
//!
//! - [`records`]: the JSONL record types (doc, message, sample, block) with unknown fields preserved.
//! - [`jsonl`]: a streaming reader over paths or stdin that names `file:line` and the field in every error,
//!   and a writer that writes files atomically.
//! - [`template`]: chat templates that render a sample to text and mark the spans that carry loss.
//! - [`exit`] and [`error`]: the exit codes of `docs/exit-codes.md` and the error type that maps onto them.
//! - [`cli`], [`progress`] and [`interrupt`]: shared flags, the `main` wrapper, progress bars and Ctrl-C.
//!
//! This crate has no libtorch dependency: data preparation never needs the torch wheel.

pub mod cancel;
pub mod cli;
pub mod dirswap;
pub mod error;
pub mod exit;
mod exit_code;
pub mod inflate;
pub mod inputs;
pub mod interrupt;
pub mod jinja;
pub mod jsonl;
pub mod progress;
pub mod records;
pub mod shard;
pub mod template;
pub mod tokbin;
pub mod tokshards;
pub mod transcript;
pub mod util;

pub use cancel::CancelToken;
pub use error::{Error, FieldError, Result};
pub use exit::Exit;
pub use records::{Block, Doc, Message, MessageKind, Record, Role, Sample, Turn};
pub use template::{ChatTemplate, Rendered};

/// banter's version, shared by every tool.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `crate::eline!` that never panics: a closed or broken stderr (`banter-train … 2>&1 | head -1`) must not stop
/// a run or lose its output, so the line is dropped instead.
#[macro_export]
macro_rules! eline {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// `eprint!` (no newline, flushed) that never panics, as [`eline!`].
#[macro_export]
macro_rules! etext {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut e = std::io::stderr();
        let _ = write!(e, $($t)*);
        let _ = e.flush();
    }};
}
