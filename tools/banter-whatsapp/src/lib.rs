//! `banter-whatsapp`: Parse WhatsApp chat exports of every locale and OS into messages and persona training samples.
//!
//! Not built yet: this crate is a placeholder until issue #4 lands. It answers `--help` and
//! `--version`, and any other use says plainly that it is not built (exit code 2). It never pretends to work.

use clap::Parser;

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

const EXAMPLES: &str = "Examples (once built, issue #4):\n  banter-whatsapp parse 'WhatsApp Chat with Family.zip' -o messages.jsonl\n  banter-whatsapp samples messages.jsonl --persona 'Sara' -o persona.jsonl";

/// Parse WhatsApp chat exports of every locale and OS into messages and persona training samples.
///
/// NOT BUILT YET (issue #4): only --help and --version work.
#[derive(Debug, Parser)]
#[command(name = "banter-whatsapp", after_help = EXAMPLES, version)]
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
    cli::not_built("banter-whatsapp", 4)
}
