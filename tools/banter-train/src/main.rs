//! `banter-train`: Train GPT-2-family models on LibTorch: from scratch, full fine-tune, LoRA; Hugging Face output. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = banter_train::Cli::parse();
    banter_core::cli::run_main("banter-train", || banter_train::run(cli))
}
