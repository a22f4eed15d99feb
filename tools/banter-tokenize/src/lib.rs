//! `banter-tokenize`: train or load a tokenizer, render samples through a chat template, and pack them into
//! the token blocks banter-train reads, with loss masks. The work is banter-encode's; this crate is the
//! command line, one file per subcommand.

mod blocks_out;
mod decode;
mod encode;
mod train_tokenizer;

use clap::{Parser, Subcommand};

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

pub use decode::DecodeArgs;
pub use encode::{EncodeArgs, Format};
pub use train_tokenizer::TrainArgs;

const EXAMPLES: &str = "\
Examples:
  banter-tokenize train-tokenizer clean.jsonl --vocab-size 8000 -o tokenizer.json
  banter-tokenize train-tokenizer corpus.txt --vocab-size 4000 --template asimbot -o tokenizer.json
  banter-tokenize encode clean.jsonl --tokenizer tokenizer.json --block-size 128 -o blocks.jsonl
  banter-tokenize encode persona.jsonl --tokenizer gpt2-dir/ --template asimbot --mode pad --block-size 512 \\
      --val-split 0.2 -o train.jsonl --val-output val.jsonl
  banter-tokenize decode blocks.jsonl --tokenizer tokenizer.json --show-loss | head";

/// Train or load a tokenizer, render chat templates, pack samples into blocks with loss masks.
#[derive(Debug, Parser)]
#[command(name = "banter-tokenize", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a byte-level BPE tokenizer (GPT-2 style) on samples or text files.
    TrainTokenizer(TrainArgs),
    /// Samples → blocks of token ids with loss labels.
    Encode(EncodeArgs),
    /// Blocks → text, to check what the model will see and learn.
    Decode(DecodeArgs),
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    match &cli.command {
        Command::TrainTokenizer(a) => train_tokenizer::run(a, &cli.common),
        Command::Encode(a) => encode::run(a, &cli.common),
        Command::Decode(a) => decode::run(a),
    }
}
