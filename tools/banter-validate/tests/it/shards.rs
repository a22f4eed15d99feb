//! `--shard I/N` as N independent jobs, and duplicate indexes merged across them: the shards' outputs,
//! concatenated, are the one-job output, duplicates that sit in two shards included.

use std::path::{Path, PathBuf};

use crate::bin;

/// 90 chat samples in two files; some repeat an earlier one exactly or nearly, across shard boundaries.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let topics = ["rivers", "bread", "trains", "chess", "tea", "rain", "music", "maps", "birds"];
    let mut a = String::new();
    for i in 0..60 {
        let t = topics[i % topics.len()];
        let reply = format!("I keep thinking about {t} number {i}, and how the story ends with a long walk home.");
        a.push_str(&serde_json::json!({"input": format!("tell me about {t} {i}"), "output": reply}).to_string());
        a.push('\n');
    }
    let mut b = String::new();
    for i in 0..30 {
        let rec = match i {
            // The same as file a's line 3 (exactly), and nearly the same as its line 12.
            5 => {
                serde_json::json!({"input": "tell me about chess 3", "output": "I keep thinking about chess number 3, and how the story ends with a long walk home."})
            }
            20 => {
                serde_json::json!({"input": "tell me about chess 12", "output": "I keep thinking about chess number 12, and how the story ends with a long walk home!!"})
            }
            _ => {
                serde_json::json!({"input": format!("what is new {i}"), "output": format!("Nothing much happened on day {i}, we cooked soup and read.")})
            }
        };
        b.push_str(&rec.to_string());
        b.push('\n');
        if i == 10 {
            b.push('\n'); // a blank line: line numbers still count it
        }
    }
    let (pa, pb) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    vec![pa, pb]
}

fn validate(files: &[PathBuf], extra: &[&str]) -> std::process::Output {
    bin().args(files).args(["--min-score", "0", "-q", "--profile", "chat"]).args(extra).output().unwrap()
}

#[test]
fn shards_with_merged_dedup_indexes_concatenate_to_the_one_job_output() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let p = |n: &str| dir.path().join(n).display().to_string();
    let one = validate(&files, &["--near-dup", "-o", &p("one.jsonl"), "--rejects", &p("one.rej")]);
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let rejects = std::fs::read_to_string(p("one.rej")).unwrap();
    assert!(rejects.contains("\"duplicate\"") && rejects.contains("near-duplicate"), "{rejects}");
    let want = std::fs::read_to_string(p("one.jsonl")).unwrap();
    for n in [2, 3, 7] {
        // Pass 1: each shard saves its index. Pass 2: each shard loads them all.
        let mut idx = Vec::new();
        for i in 0..n {
            let spec = format!("{i}/{n}");
            let out = p(&format!("idx.{n}.{i}"));
            let o = validate(&files, &["--near-dup", "--shard", &spec, "--save-dedup-index", &out]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            idx.push(out);
        }
        let mut got = String::new();
        let mut alone = String::new();
        for i in 0..n {
            let spec = format!("{i}/{n}");
            let out = p(&format!("kept.{n}.{i}"));
            let mut args = vec!["--near-dup", "--shard", &spec, "-o", &out];
            for f in &idx {
                args.extend(["--dedup-index", f.as_str()]);
            }
            let o = validate(&files, &args);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            got.push_str(&std::fs::read_to_string(&out).unwrap());
            // Without the indexes, a shard only knows its own records.
            let lone = p(&format!("lone.{n}.{i}"));
            assert!(validate(&files, &["--near-dup", "--shard", &spec, "-o", &lone]).status.success());
            alone.push_str(&std::fs::read_to_string(&lone).unwrap());
        }
        assert_eq!(got, want, "{n} shards");
        assert!(alone.len() > want.len(), "{n} shards: a duplicate across shards is only found through the indexes");
    }
}

#[test]
fn a_shard_error_names_the_real_line_and_bad_uses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.jsonl");
    let mut text: String =
        (0..40).map(|i| format!("{{\"input\": \"q {i}\", \"output\": \"a fine answer {i} here\"}}\n")).collect();
    text.push_str("{\"input\": broken\n");
    std::fs::write(&f, text).unwrap();
    let o = bin().arg(&f).args(["--shard", "3/4", "-o"]).arg(dir.path().join("k")).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("{}:41", f.display())));
    let o = bin().arg(&f).args(["--shard", "4/4"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = bin().arg(&f).args(["--shard", "0/2", "--filter"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let other = dir.path().join("other.idx");
    assert!(
        bin()
            .arg(&f)
            .args(["--shard", "0/2", "--max-errors", "9", "--save-dedup-index"])
            .arg(&other)
            .output()
            .unwrap()
            .status
            .code()
            != Some(2)
    );
    let o = bin().arg(data_other(dir.path())).arg("--dedup-index").arg(&other).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "an index over other inputs: {}", String::from_utf8_lossy(&o.stderr));
}

fn data_other(dir: &Path) -> PathBuf {
    let p = dir.join("other.jsonl");
    std::fs::write(&p, "{\"input\": \"hi there\", \"output\": \"hello to you too\"}\n").unwrap();
    p
}
