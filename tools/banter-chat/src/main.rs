//! `banter-chat`: generation, chat, server and continual learning. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    banter_model::init();
    banter_hub::init();
    let cli = banter_chat::Cli::parse();
    banter_core::cli::run_main("banter-chat", || banter_chat::run(cli))
}
