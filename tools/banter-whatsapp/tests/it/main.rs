//! CLI tests of `banter-whatsapp` through the real binary: golden exports in every format family,
//! round trips of generated exports, and regressions of other parsers' bugs.

mod formats;
mod golden;
mod hostile;
mod journeys;
mod roundtrip;
mod samples;

use std::path::PathBuf;

use assert_cmd::Command;

pub fn bin() -> Command {
    Command::cargo_bin("banter-whatsapp").unwrap()
}

pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/whatsapp")
}

/// Parses an export with the binary and returns the records.
pub fn parse(path: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = bin().arg("parse").arg(path).args(extra).arg("-q").output().unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
