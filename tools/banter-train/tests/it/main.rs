//! CLI tests of `banter-train` through the real binary, on tiny models built here.

mod bf16_lora;
mod checkpointing;
mod cli;
mod crash;
mod datasets;
mod distributed;
mod dpo;
mod families;
mod hf;
mod journeys;
#[path = "../../../banter-export/tests/it/mockhub.rs"]
#[allow(dead_code)]
mod mockhub;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub fn bin() -> Command {
    let mut c = Command::cargo_bin("banter-train").unwrap();
    // Precision calibrations stay with the tests, not in the user's cache.
    c.env("BANTER_CACHE_DIR", std::env::temp_dir().join(format!("banter-train-tests-{}", std::process::id())));
    c
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/train").join(name)
}

/// A byte-level tokenizer and chat-template blocks for the persona samples, made with banter-tokenize.
pub fn prepare(dir: &Path, template: &str) -> (PathBuf, PathBuf) {
    let tok = dir.join("tok.json");
    let blocks = dir.join("blocks.jsonl");
    let tk = assert_cmd::cargo::cargo_bin("banter-tokenize");
    let st = std::process::Command::new(&tk)
        .args(["train-tokenizer", "--vocab-size", "400", "--min-frequency", "1", "--template", template, "-q", "-o"])
        .arg(&tok)
        .arg(data("persona.jsonl"))
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new(&tk)
        .args(["encode", "--template", template, "--block-size", "32", "--keep-tail", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&blocks)
        .arg(data("persona.jsonl"))
        .status()
        .unwrap();
    assert!(st.success());
    (tok, blocks)
}

/// Losses per step from metrics.jsonl.
pub fn losses(dir: &Path) -> Vec<(i64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["step"].as_i64().unwrap(), v["loss"].as_f64().unwrap())
        })
        .collect()
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
