//! --filter, -o, --rejects, --json, stdin.

use crate::{bin, data};

#[test]
fn filter_keeps_records_byte_for_byte_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kept.jsonl");
    bin().arg(data("good.jsonl")).arg(data("bad.jsonl")).arg("-o").arg(&out).arg("-q").assert().code(1);
    let kept = std::fs::read_to_string(&out).unwrap();
    let good = std::fs::read_to_string(data("good.jsonl")).unwrap();
    assert_eq!(kept, good, "every good line, unchanged and in order, and nothing else");
    assert!(kept.contains(r#"{"id": "keep-me", "source": "whatsapp", "meta": {"chat": "family"}, "input""#));
}

#[test]
fn filter_without_o_writes_mtns_name_in_the_input_format() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("convs.json");
    std::fs::copy(data("mtn.json"), &input).unwrap();
    bin().arg(&input).arg("--filter").arg("-q").assert().code(0);
    let out = dir.path().join("convs_filtered.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let arr = v.as_array().expect("a JSON array, like the input");
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["input"], "Why?");
}

#[test]
fn rejects_carry_reasons_and_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("r.jsonl");
    bin()
        .arg(data("malformed.jsonl"))
        .args(["--max-errors", "5", "--rejects"])
        .arg(&rejects)
        .arg("-q")
        .assert()
        .code(0);
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&rejects).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 3);
    assert_eq!(lines[0]["reasons"][0]["check"], "structure");
    assert_eq!(lines[0]["raw"], r#"{"input": "broken", "output":"#);
    assert_eq!(lines[1]["line"], 5);
}

#[test]
fn stdin_in_stdout_out() {
    let input = std::fs::read_to_string(data("good.jsonl")).unwrap();
    let out = bin().arg("-").arg("--filter").arg("-q").write_stdin(input.clone()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), input);
    // With no argument and piped stdin, stdin is read too.
    bin().write_stdin(input).arg("-q").assert().code(0);
}

#[test]
fn crlf_and_bom_are_read_and_kept_lines_are_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.jsonl");
    bin().arg(data("crlf_bom.jsonl")).arg("-o").arg(&out).arg("-q").assert().code(0);
    let kept = std::fs::read_to_string(&out).unwrap();
    assert_eq!(kept.lines().count(), 3);
    assert!(!kept.contains('\r') && !kept.starts_with('\u{feff}'));
}

#[test]
fn json_report_schema() {
    let (code, r) = crate::json_report(bin().arg(data("bad.jsonl")).args(["--examples", "3"]));
    assert_eq!(code, 1);
    for key in [
        "tool",
        "version",
        "exit_code",
        "inputs",
        "counts",
        "score",
        "verdict",
        "min_score",
        "passed",
        "checks",
        "examples",
        "recommendations",
        "throughput",
    ] {
        assert!(r.get(key).is_some(), "missing {key}: {r}");
    }
    assert_eq!(r["tool"], "banter-validate");
    assert_eq!(r["counts"]["total"], 18);
    assert_eq!(r["examples"].as_array().unwrap().len(), 3);
    let c = &r["counts"];
    assert_eq!(c["valid"].as_u64().unwrap() + c["invalid"].as_u64().unwrap(), 18);
}

#[test]
fn same_output_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.jsonl");
    let good = std::fs::read_to_string(data("good.jsonl")).unwrap();
    let bad = std::fs::read_to_string(data("bad.jsonl")).unwrap();
    let mut text = String::new();
    for i in 0..800 {
        for l in good.lines().chain(bad.lines()) {
            // Vary records so that not everything is a duplicate.
            text.push_str(&l.replacen('{', &format!("{{\"n\":{i},"), 1));
            text.push('\n');
        }
    }
    std::fs::write(&big, text).unwrap();
    let mut outs = Vec::new();
    for t in ["1", "2"] {
        let o = dir.path().join(format!("o{t}.jsonl"));
        let r = dir.path().join(format!("r{t}.jsonl"));
        bin()
            .arg(&big)
            .args(["--threads", t, "-q", "--min-score", "0", "-o"])
            .arg(&o)
            .arg("--rejects")
            .arg(&r)
            .assert()
            .code(0);
        outs.push((std::fs::read(&o).unwrap(), std::fs::read(&r).unwrap()));
    }
    assert!(outs[0] == outs[1], "outputs differ between 1 and 2 threads");
}
