//! Outputs that must not be clobbered, and inputs that must not blow up.

use std::fs;

use crate::{bin, data, trained};

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let samples = dir.path().join("samples.jsonl");
    fs::copy(data("samples.jsonl"), &samples).unwrap();
    let before = fs::read(&samples).unwrap();
    // encode onto its own input
    let out = bin().args(["encode", "--tokenizer"]).arg(&tok).arg(&samples).arg("-o").arg(&samples).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("also an input"));
    // train-tokenizer onto its corpus
    let corpus = dir.path().join("corpus.txt");
    fs::copy(data("corpus.txt"), &corpus).unwrap();
    let corpus_before = fs::read(&corpus).unwrap();
    bin()
        .args(["train-tokenizer", "--vocab-size", "300", "--min-frequency", "1", "-q", "-o"])
        .arg(&corpus)
        .arg(&corpus)
        .assert()
        .code(2);
    // ... and onto the tokenizer it reads
    let tok_before = fs::read(&tok).unwrap();
    bin().args(["encode", "--tokenizer"]).arg(&tok).arg(&samples).arg("-o").arg(&tok).assert().code(2);
    assert_eq!(fs::read(&samples).unwrap(), before);
    assert_eq!(fs::read(&corpus).unwrap(), corpus_before);
    assert_eq!(fs::read(&tok).unwrap(), tok_before);
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}

#[cfg(unix)]
#[test]
fn device_files_and_symlinks_as_output_stay_what_they_are() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    bin()
        .args(["encode", "--tokenizer"])
        .arg(&tok)
        .arg(data("samples.jsonl"))
        .args(["-o", "/dev/null"])
        .assert()
        .success();
    assert!(fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    let real = dir.path().join("blocks.jsonl");
    fs::write(&real, "old\n").unwrap();
    let link = dir.path().join("latest.jsonl");
    std::os::unix::fs::symlink("blocks.jsonl", &link).unwrap();
    bin().args(["encode", "--tokenizer"]).arg(&tok).arg(data("samples.jsonl")).arg("-o").arg(&link).assert().success();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(fs::read_to_string(&real).unwrap().contains("input_ids"), "the link's target was not written");
}

#[test]
fn lines_skipped_under_max_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let bad = dir.path().join("bad.jsonl");
    fs::write(&bad, "{\"text\":\"ok here\"}\n{\"messages\":3}\n{\"text\":\"fine\"}\n{\"text\":5}\n").unwrap();
    let out =
        bin().args(["encode", "--tokenizer"]).arg(&tok).arg(&bad).args(["--max-errors", "2", "-q"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:2:") && err.contains("bad.jsonl:4:"), "{err}");
}

#[test]
fn a_template_that_never_ends_stops_at_its_work_limit_with_one_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let m = dir.path().join("model");
    fs::create_dir_all(&m).unwrap();
    fs::copy(&tok, m.join("tokenizer.json")).unwrap();
    // Fine for the probe; loops (10^10 steps) for one record's content.
    let t = "{% for m in messages %}{% if m['content'] == 'boom' %}{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}{% endif %}<|user|>{{ m['content'] }}<|end|>{% endfor %}";
    fs::write(m.join("tokenizer_config.json"), serde_json::json!({"chat_template": t}).to_string()).unwrap();
    let data = dir.path().join("chats.jsonl");
    let chat = |u: &str| serde_json::json!({"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": "ok"}]});
    fs::write(&data, format!("{}\n{}\n{}\n", chat("hi"), chat("boom"), chat("boom"))).unwrap();
    let out = bin().args(["encode", "--tokenizer"]).arg(&m).arg(&data).args(["-o", "/dev/null"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("work limit") && err.contains("chats.jsonl:2"), "{err}");
}
