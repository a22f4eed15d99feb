//! CLI tests of `banter-validate` through the real binary, on `testdata/validate/`.

mod checks;
mod formats;
mod gate;
mod outputs;
mod shards;

use std::path::PathBuf;

use assert_cmd::Command;

pub fn bin() -> Command {
    Command::cargo_bin("banter-validate").unwrap()
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/validate").join(name)
}

pub fn json_report(cmd: &mut Command) -> (i32, serde_json::Value) {
    let out = cmd.arg("--json").output().unwrap();
    let code = out.status.code().unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (code, v)
}
