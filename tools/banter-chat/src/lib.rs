//! `banter-chat`: Generate with a trained model: one-shot, interactive chat, HTTP server, logging, continual learning.
//!
//! Not built yet: this crate is a placeholder until issue #8 lands. It answers `--help` and
//! `--version`, and any other use says plainly that it is not built (exit code 2). It never pretends to work.

use clap::Parser;

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

const EXAMPLES: &str = "Examples (once built, issue #8):\n  banter-chat --model model --prompt 'hi'\n  banter-chat --model model --log chats.jsonl --learn-every 20\n  banter-chat serve --model model --port 8000";

/// Generate with a trained model: one-shot, interactive chat, HTTP server, logging, continual learning.
///
/// NOT BUILT YET (issue #8): only --help and --version work.
#[derive(Debug, Parser)]
#[command(name = "banter-chat", after_help = EXAMPLES, version = version())]
pub struct Cli {
    /// Arguments of the subcommands to come; rejected until the tool is built.
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `banter-chat --version`: banter's version, the libtorch version and whether CUDA is available.
fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| format!("{} ({})", banter_core::VERSION, banter_model::runtime::RuntimeInfo::query()))
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::not_built("banter-chat", 8)
}
