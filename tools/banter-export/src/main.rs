//! `banter-export`: ONNX, GGUF and the Hugging Face Hub. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    banter_model::init();
    banter_convert::init();
    banter_hub::init();
    let cli = banter_export::Cli::parse();
    banter_core::cli::run_main(banter_export::TOOL, || banter_export::run(cli))
}
