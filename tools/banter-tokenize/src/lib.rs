//! `banter-tokenize`: Train or load a tokenizer, render chat templates, pack samples into blocks with loss masks.
//!
//! Not built yet: this crate is a placeholder until issue #6 lands. It answers `--help` and
//! `--version`, and any other use says plainly that it is not built (exit code 2). It never pretends to work.

use clap::Parser;

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

const EXAMPLES: &str = "Examples (once built, issue #6):\n  banter-tokenize train-tokenizer clean.jsonl --vocab-size 8000 -o tokenizer.json\n  banter-tokenize encode clean.jsonl --tokenizer tokenizer.json --block-size 128 -o blocks.jsonl";

/// Train or load a tokenizer, render chat templates, pack samples into blocks with loss masks.
///
/// NOT BUILT YET (issue #6): only --help and --version work.
#[derive(Debug, Parser)]
#[command(name = "banter-tokenize", after_help = EXAMPLES, version)]
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
    cli::not_built("banter-tokenize", 6)
}
