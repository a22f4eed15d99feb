//! CLI tests of `banter-scrape` through the real binary.

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("banter-scrape").unwrap()
}

#[test]
fn help_says_it_is_not_built_yet() {
    bin().arg("--help").assert().success().stdout(predicate::str::contains("NOT BUILT YET"));
}

#[test]
fn version_is_banters() {
    bin().arg("--version").assert().success().stdout(predicate::str::contains(banter_core::VERSION));
}

#[test]
fn any_real_use_fails_clearly_with_exit_2() {
    bin().args(["something", "-"]).write_stdin("").assert().code(2).stderr(predicate::str::starts_with(
        "banter-scrape: error: banter-scrape is not built yet (tracked in issue #5)",
    ));
}

#[test]
fn completions_are_generated() {
    bin().args(["--generate", "complete-bash"]).assert().success().stdout(predicate::str::contains("banter-scrape"));
}
