//! `banter-eval`: does it talk like them? The logic lives in the library (`src/lib.rs`) and `banter-eval-lib`.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = banter_eval::Cli::parse();
    banter_core::cli::run_main("banter-eval", || banter_eval::run(cli))
}
