//! `banter-scrape`: Fetch web pages and random Wikipedia articles, extract clean text, turn docs into samples.
//!
//! Not built yet: this crate is a placeholder until issue #5 lands. It answers `--help` and
//! `--version`, and any other use says plainly that it is not built (exit code 2). It never pretends to work.

use clap::Parser;

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

const EXAMPLES: &str = "Examples (once built, issue #5):\n  banter-scrape fetch https://example.org/a https://example.org/b -o docs.jsonl\n  banter-scrape crawl https://example.org --max-pages 50 --max-depth 2 -o docs.jsonl\n  banter-scrape wikipedia --random 100 --lang fa -o wiki.jsonl\n  banter-scrape to-samples docs.jsonl --chunk-chars 2000 | banter-validate --profile web -";

/// Fetch web pages and random Wikipedia articles, extract clean text, turn docs into samples.
///
/// NOT BUILT YET (issue #5): only --help and --version work.
#[derive(Debug, Parser)]
#[command(name = "banter-scrape", after_help = EXAMPLES, version)]
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
    cli::not_built("banter-scrape", 5)
}
