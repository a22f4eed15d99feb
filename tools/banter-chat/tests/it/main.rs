//! CLI tests of `banter-chat` through the real binary.

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("banter-chat").unwrap()
}

#[test]
fn help_says_it_is_not_built_yet() {
    bin().arg("--help").assert().success().stdout(predicate::str::contains("NOT BUILT YET"));
}

#[test]
fn version_names_libtorch_and_cuda() {
    let out = bin().arg("--version").env_clear().current_dir(std::env::temp_dir()).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("libtorch 2."), "{text}");
    assert!(text.contains("CUDA"), "{text}");
}

#[test]
fn any_real_use_fails_clearly_with_exit_2() {
    bin()
        .args(["something", "-"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("banter-chat: error: banter-chat is not built yet (tracked in issue #8)"));
}

#[test]
fn completions_are_generated() {
    bin().args(["--generate", "complete-bash"]).assert().success().stdout(predicate::str::contains("banter-chat"));
}
