//! `banter-chat`: Generate with a trained model: one-shot, interactive chat, HTTP server, logging, continual learning. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = banter_chat::Cli::parse();
    banter_core::cli::run_main("banter-chat", || banter_chat::run(cli))
}
