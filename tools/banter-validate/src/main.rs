//! `banter-validate`: Quality-check training samples: score, filter, report, and gate pipelines by exit code. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

// Many small allocations per record; mimalloc is markedly faster than glibc's malloc for them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = banter_validate::Cli::parse();
    banter_core::cli::run_main("banter-validate", || banter_validate::run(cli))
}
