//! Exit codes: 0 pass, 1 below --min-score or no records, 2 usage, 3 malformed, 4 I/O.

use predicates::prelude::*;

use crate::{bin, data};

#[test]
fn good_data_exits_0_with_a_good_verdict() {
    bin()
        .arg(data("good.jsonl"))
        .assert()
        .code(0)
        .stderr(predicate::str::contains("score 100.0%  GOOD"))
        .stderr(predicate::str::contains("you can proceed with training"));
}

#[test]
fn low_scores_exit_1_and_min_score_moves_the_gate() {
    // bad.jsonl alone: only the first "duplicate" line (17) survives, as it has no earlier twin.
    let (code, r) = crate::json_report(bin().arg(data("bad.jsonl")));
    assert_eq!(code, 1);
    assert_eq!(r["verdict"], "CRITICAL");
    assert_eq!(r["passed"], false);
    assert_eq!(r["exit_code"], 1);
    let (code, _) = crate::json_report(bin().arg(data("bad.jsonl")).args(["--min-score", "0"]));
    assert_eq!(code, 0);
}

#[test]
fn exactly_the_min_score_passes() {
    // mtn.json: 2 of 3 valid = 0.667; gate at 2/3 exactly passes.
    let (code, r) = crate::json_report(bin().arg(data("mtn.json")).args(["--min-score", "0.6666"]));
    assert_eq!((code, r["counts"]["valid"].as_u64()), (0, Some(2)));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("half.jsonl");
    std::fs::write(
        &f,
        "{\"input\":\"a question here\",\"output\":\"A proper answer to it.\"}\n{\"input\":\"b\",\"output\":\"\"}\n",
    )
    .unwrap();
    let (code, r) = crate::json_report(bin().arg(&f));
    assert_eq!((code, r["score"].as_f64()), (0, Some(0.5)), "MTN: exactly 0.5 passes");
    assert_eq!(r["verdict"], "ACCEPTABLE");
}

#[test]
fn no_records_exits_1_with_a_clear_message_and_no_input_exits_4() {
    // Blank lines only: records are missing, the gate fails.
    bin().arg("-").write_stdin("\n\n").assert().code(1).stderr(predicate::str::contains("no records in the input"));
    // Nothing at all (an empty file, an empty or closed stdin): an upstream step wrote nothing.
    bin().arg(data("empty.jsonl")).assert().code(4).stderr(predicate::str::contains("no input"));
    bin().arg("-").write_stdin("").assert().code(4).stderr(predicate::str::contains("no input"));
}

#[test]
fn malformed_lines_exit_3_naming_file_and_line_unless_max_errors() {
    bin()
        .arg(data("malformed.jsonl"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("malformed.jsonl:3: invalid JSON at column"))
        .stderr(predicate::str::contains("malformed.jsonl:5: field \"messages\": expected an array, found an object"))
        .stderr(predicate::str::contains("--max-errors"));
    let (code, r) = crate::json_report(bin().arg(data("malformed.jsonl")).args(["--max-errors", "2"]));
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["counts"]["malformed"], 2);
    assert_eq!(r["counts"]["total"], 6);
    assert_eq!(r["checks"]["structure"]["rejected"], 2);
    let (code, _) = crate::json_report(bin().arg(data("malformed.jsonl")).args(["--max-errors", "1"]));
    assert_eq!(code, 3);
}

#[test]
fn malformed_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, "precious\n").unwrap();
    bin().arg(data("malformed.jsonl")).arg("-o").arg(&out).assert().code(3);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
}

#[test]
fn usage_and_io_errors() {
    bin()
        .arg(data("good.jsonl"))
        .args(["--disable", "nonsense"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("banter-validate: error: --disable: unknown check \"nonsense\""));
    bin().arg(data("good.jsonl")).args(["--min-score", "2"]).assert().code(2);
    bin()
        .arg("/nonexistent/data.jsonl")
        .assert()
        .code(4)
        .stderr(predicate::str::starts_with("banter-validate: error: /nonexistent/data.jsonl: No such file"));
    bin().arg(data("good.jsonl")).args(["-o", "/nonexistent-dir/x.jsonl"]).assert().code(4);
    bin().arg(data("good.jsonl")).args(["--json", "-o", "-"]).assert().code(2);
}
