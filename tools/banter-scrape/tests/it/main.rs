//! CLI tests of `banter-scrape` through the real binary, against a fixture site served on 127.0.0.1.

mod extract_cmd;
mod extraction;
mod fetching;
mod mediawiki;
mod server;
mod to_samples;

use std::path::PathBuf;

use assert_cmd::Command;

pub fn bin() -> Command {
    Command::cargo_bin("banter-scrape").unwrap()
}

pub fn site() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/scrape/site")
}

pub fn docs(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
