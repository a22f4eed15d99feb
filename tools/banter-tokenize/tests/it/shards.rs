//! `encode --shard I/N` as N jobs, and `--format bin --shards K`.

use std::path::Path;

use crate::{bin, data, trained};

fn encode(tok: &Path, inputs: &[&Path], extra: &[&str], out: &Path) {
    let o = bin()
        .args(["encode", "--template", "chatml", "--block-size", "48", "-q", "--tokenizer"])
        .arg(tok)
        .args(inputs)
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn shard_jobs_concatenate_to_the_one_job_blocks_and_validation_split() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let (samples, corpus) = (data("samples.jsonl"), data("corpus.txt"));
    let inputs = [samples.as_path(), corpus.as_path()];
    let one = dir.path().join("one.jsonl");
    let base = ["--mode", "pad", "--val-split", "0.25"];
    encode(&tok, &inputs, &base, &one);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let (want, want_val) = (read(&one), read(&dir.path().join("one.val.jsonl")));
    assert!(!want.is_empty() && !want_val.is_empty());
    for n in [2, 3, 5] {
        let (mut got, mut got_val) = (String::new(), String::new());
        for i in 0..n {
            let out = dir.path().join(format!("s{n}-{i}.jsonl"));
            let spec = format!("{i}/{n}");
            encode(&tok, &inputs, &[&base[..], &["--shard", &spec]].concat(), &out);
            got.push_str(&read(&out));
            got_val.push_str(&read(&dir.path().join(format!("s{n}-{i}.val.jsonl"))));
        }
        assert_eq!(got, want, "{n} shards");
        assert_eq!(got_val, want_val, "{n} shards: validation");
    }
}

#[test]
fn bin_shards_with_a_manifest_hold_the_one_file_blocks_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let samples = data("samples.jsonl");
    let jsonl = dir.path().join("all.jsonl");
    encode(&tok, &[&samples], &["--keep-tail"], &jsonl);
    let manifest = dir.path().join("tokens.json");
    encode(&tok, &[&samples], &["--keep-tail", "--format", "bin", "--shards", "3"], &manifest);
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["format"], "banter-token-shards");
    assert_eq!(m["shards"].as_array().unwrap().len(), 3);
    assert!(dir.path().join("tokens-00002-of-00003.bin").exists());
    let want = crate::blocks(&jsonl);
    assert_eq!(m["blocks"].as_u64().unwrap() as usize, want.len());
    // The set reads as one file (as banter-train reads it): block i is the one-file block i.
    let set = banter_core::tokshards::TokSet::open(&manifest).unwrap();
    for (i, (ids, labels)) in want.iter().enumerate() {
        let b = set.block(i).unwrap();
        assert_eq!((&b.input_ids, &b.labels), (ids, labels), "block {i}");
    }
    // Shards need a binary output file.
    let o = bin()
        .args(["encode", "--template", "chatml", "-q", "--shards", "2", "--tokenizer"])
        .arg(&tok)
        .arg(&samples)
        .arg("-o")
        .arg(dir.path().join("x.jsonl"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
