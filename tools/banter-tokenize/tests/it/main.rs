//! CLI tests of `banter-tokenize` through the real binary, and parity with Python `tokenizers` /
//! `transformers` from the project's venv.

mod cli;
mod hostile;
mod parity;
mod shards;

use std::path::PathBuf;

use assert_cmd::Command;

pub fn bin() -> Command {
    Command::cargo_bin("banter-tokenize").unwrap()
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/tokenize").join(name)
}

/// Trains a tokenizer on the test corpus and samples with a template; returns its path.
pub fn trained(dir: &std::path::Path, template: &str) -> PathBuf {
    let out = dir.join(format!("tok-{template}.json"));
    bin()
        .args(["train-tokenizer", "--vocab-size", "600", "--min-frequency", "1", "--template", template, "-q", "-o"])
        .arg(&out)
        .arg(data("corpus.txt"))
        .arg(data("samples.jsonl"))
        .assert()
        .success();
    out
}

pub fn blocks(path: &std::path::Path) -> Vec<(Vec<u32>, Vec<i64>)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let ids = v["input_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            let labels = v["labels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
            (ids, labels)
        })
        .collect()
}
