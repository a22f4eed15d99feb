//! `banter-validate`: Quality-check training samples: score, filter, report, and gate pipelines by exit code.
//!
//! Not built yet: this crate is a placeholder until issue #3 lands. It answers `--help` and
//! `--version`, and any other use says plainly that it is not built (exit code 2). It never pretends to work.

use clap::Parser;

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

const EXAMPLES: &str = "Examples (once built, issue #3):\n  banter-validate data.jsonl && banter-train ...\n  banter-validate data.jsonl --filter -o clean.jsonl --rejects rejects.jsonl --min-score 0.7";

/// Quality-check training samples: score, filter, report, and gate pipelines by exit code.
///
/// NOT BUILT YET (issue #3): only --help and --version work.
#[derive(Debug, Parser)]
#[command(name = "banter-validate", after_help = EXAMPLES, version)]
pub struct Cli {
    /// Arguments of the subcommands to come; rejected until the tool is built.
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::not_built("banter-validate", 3)
}
