//! CLI tests of `banter-chat` through the real binary, on a tiny model trained here.

mod crash;
mod families;
mod learning;
mod oneshot;
mod serve;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;

pub fn bin() -> Command {
    Command::cargo_bin("banter-chat").unwrap()
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/train").join(name)
}

/// A tiny chatml model trained for a few steps on the persona samples (built once per test run).
pub fn model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let tok = dir.join("tok.json");
        let tk = assert_cmd::cargo::cargo_bin("banter-tokenize");
        let ok = std::process::Command::new(&tk)
            .args(["train-tokenizer", "--vocab-size", "400", "--min-frequency", "1", "-q", "-o"])
            .arg(&tok)
            .arg(data("persona.jsonl"))
            .status()
            .unwrap();
        assert!(ok.success());
        let model = dir.join("model");
        let ok = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
            .args([
                "--config",
                "tiny",
                "--max-steps",
                "60",
                "--lr",
                "3e-3",
                "--warmup",
                "5",
                "--batch-size",
                "8",
                "--block-size",
                "32",
                "-q",
                "--tokenizer",
            ])
            .arg(&tok)
            .arg("-o")
            .arg(&model)
            .arg(data("persona.jsonl"))
            .status()
            .unwrap();
        assert!(ok.success());
        model
    })
}

pub fn python() -> Option<String> {
    match std::env::var("BANTER_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "BANTER_PYTHON is not set but parity is required");
            None
        }
    }
}
