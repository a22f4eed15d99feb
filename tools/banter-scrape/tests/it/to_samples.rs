//! to-samples: chunks, MTN pairs, persona header.

use crate::bin;

fn docs_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("docs.jsonl");
    let long = "Green tea is a type of tea made from Camellia sinensis leaves. ".repeat(40);
    std::fs::write(
        &p,
        format!(
            "{}\n{}\n",
            serde_json::json!({"url": "https://x.org/green-tea", "title": "Green tea - Tea Notes", "text": long, "lang": "en"}),
            serde_json::json!({"url": "https://x.org/stub", "title": "Stub", "text": "Too short."}),
        ),
    )
    .unwrap();
    p
}

fn run(args: &[&str], input: &std::path::Path) -> Vec<serde_json::Value> {
    let out = bin().arg("to-samples").arg(input).args(args).arg("-q").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn text_chunks_with_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(&["--chunk-chars", "500", "--overlap", "100"], &docs_file(dir.path()));
    assert!(s.len() >= 5);
    assert!(s.iter().all(|x| x["text"].as_str().unwrap().chars().count() <= 500));
    assert_eq!(s[0]["source"], "https://x.org/green-tea");
}

#[test]
fn mtn_pairs_are_deterministic_and_templated() {
    let dir = tempfile::tempdir().unwrap();
    let f = docs_file(dir.path());
    let a = run(&["--mode", "pairs", "--seed", "7"], &f);
    let b = run(&["--mode", "pairs", "--seed", "7"], &f);
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
    assert!(a[0]["input"].as_str().unwrap().contains("Green tea"));
    let fixed = run(&["--mode", "pairs", "--no-randomize"], &f);
    assert_eq!(fixed[0]["input"], "Tell me about Green tea.");
    let t = dir.path().join("t.txt");
    std::fs::write(&t, "Write one {content_type} on {topic} ({category}) from {url}\n").unwrap();
    let custom = run(&["--mode", "pairs", "--templates", t.to_str().unwrap()], &f);
    assert_eq!(custom[0]["input"], "Write one article on Green tea (food) from https://x.org/green-tea");
    std::fs::write(&t, "What about {colour}?\n").unwrap();
    bin().arg("to-samples").arg(&f).args(["--mode", "pairs", "--templates"]).arg(&t).assert().code(2);
}

#[test]
fn persona_system_turn() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(&["--mode", "pairs", "--system", "You are Oodi."], &docs_file(dir.path()));
    assert_eq!(s[0]["messages"][0], serde_json::json!({"role": "system", "content": "You are Oodi."}));
    assert_eq!(s[0]["messages"][2]["role"], "assistant");
}

#[test]
fn bad_docs_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    std::fs::write(&p, "{\"url\":\"u\",\"text\":\"ok\"}\n{\"url\":\"u\"}\n").unwrap();
    bin()
        .arg("to-samples")
        .arg(&p)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("bad.jsonl:2: field \"text\": missing"));
}

#[test]
fn an_output_that_is_the_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let f = docs_file(dir.path());
    let before = std::fs::read(&f).unwrap();
    let out = bin().arg("to-samples").arg(&f).arg("-o").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("also an input"));
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temp files left");
}
