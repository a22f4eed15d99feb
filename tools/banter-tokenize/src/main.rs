//! `banter-tokenize`: Train or load a tokenizer, render chat templates, pack samples into blocks with loss masks. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

// Tokenizing allocates many small vectors per sample; mimalloc roughly halves that cost over glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = banter_tokenize::Cli::parse();
    banter_core::cli::run_main("banter-tokenize", || banter_tokenize::run(cli))
}
