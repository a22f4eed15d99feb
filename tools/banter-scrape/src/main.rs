//! `banter-scrape`: Fetch web pages and random Wikipedia articles, extract clean text, turn docs into samples. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

// Many small allocations per record; mimalloc is markedly faster than glibc's malloc for them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = banter_scrape::Cli::parse();
    banter_core::cli::run_main("banter-scrape", || banter_scrape::run(cli))
}
