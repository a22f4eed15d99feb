//! `banter-whatsapp`: Parse WhatsApp chat exports of every locale and OS into messages and persona training samples. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

// Many small allocations per record; mimalloc is markedly faster than glibc's malloc for them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = banter_whatsapp::Cli::parse();
    banter_core::cli::run_main("banter-whatsapp", || banter_whatsapp::run(cli))
}
