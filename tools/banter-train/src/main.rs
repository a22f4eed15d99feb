//! `banter-train`: GPT-2 training on LibTorch. The logic lives in the library (`src/lib.rs`).

use std::process::ExitCode;

fn main() -> ExitCode {
    banter_model::init();
    banter_hub::init();
    let cli = match banter_train::parse_args() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    banter_core::cli::run_main("banter-train", || banter_train::run(cli))
}
