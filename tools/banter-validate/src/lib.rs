//! `banter-validate`: quality-check training samples, score them, filter them, report, and gate
//! pipelines by exit code.
//!
//! Input is read sequentially (a reader thread splits lines), evaluated in parallel batches (rayon), and
//! then counted, deduplicated and written in input order, so output order equals input order whatever the
//! thread count, and memory stays flat apart from the duplicate index.

mod cli;
mod evaluate;
mod run;

pub use cli::Cli;
pub use run::{filtered_name, run};
