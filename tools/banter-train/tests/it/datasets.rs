//! `--dataset user/name[:split]`: a Hub dataset's split (JSON Lines, Parquet) through the cache, with
//! column mapping and OpenAssistant trees, against the mock Hub on 127.0.0.1.

use std::path::Path;

use crate::mockhub::MockHub;
use crate::{bin, prepare, python};

fn train(hub: &MockHub, cache: &Path, tok: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    bin()
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HUB_CACHE", cache)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .args([
            "--config",
            "tiny",
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--threads",
            "1",
            "--precision",
            "fp32",
            "--force",
        ])
        .arg("--tokenizer")
        .arg(tok)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn hub_datasets_train_through_the_cache_with_columns_and_trees() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = prepare(dir.path(), "chatml");
    let hub = MockHub::start();
    let cache = dir.path().join("cache");
    let rows = |n: usize, q: &str, a: &str| -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"{q}\": \"question {i} about tea?\", \"{a}\": \"answer {i}: green tea is nice\"}}\n"))
            .collect::<String>()
            .into_bytes()
    };
    hub.put_dataset(
        "me/chats",
        &[
            ("README.md", b"# chats".to_vec()),
            ("data/train-00000-of-00001.jsonl", rows(12, "prompt", "response")),
            ("data/test-00000-of-00001.jsonl", rows(3, "prompt", "response")),
        ],
    );
    let o = train(&hub, &cache, &tok, &dir.path().join("a"), &["--dataset", "me/chats"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("me/chats: 12 sample(s) from prompt → response"), "{err}");
    let test = cache.join("datasets--me--chats");
    assert!(test.join("refs/main").exists(), "the standard cache layout");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a/train_report.json")).unwrap()).unwrap();
    assert_eq!(report["datasets"], serde_json::json!(["me/chats"]), "named for the model card");
    // The test split, offline from the cache once fetched; other column names, given.
    let o = train(&hub, &cache, &tok, &dir.path().join("b"), &["--dataset", "me/chats:test"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("HF_HUB_CACHE", &cache)
        .env("HF_HUB_OFFLINE", "1")
        .args([
            "--config",
            "tiny",
            "--max-steps",
            "1",
            "--threads",
            "1",
            "--precision",
            "fp32",
            "--force",
            "--dataset",
            "me/chats:test",
        ])
        .arg("--tokenizer")
        .arg(&tok)
        .arg("-o")
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "offline: {}", String::from_utf8_lossy(&o.stderr));
    hub.put_dataset("me/qa", &[("train.jsonl", rows(8, "q", "a"))]);
    let o = train(&hub, &cache, &tok, &dir.path().join("d"), &["--dataset", "me/qa"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--prompt-column"));
    let o = train(
        &hub,
        &cache,
        &tok,
        &dir.path().join("d"),
        &["--dataset", "me/qa", "--prompt-column", "q", "--response-column", "a"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A damaged data file is bad data (exit 3), named with its line.
    hub.put_dataset(
        "me/broken",
        &[("train.jsonl", b"{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \n".to_vec())],
    );
    let o = train(&hub, &cache, &tok, &dir.path().join("f"), &["--dataset", "me/broken"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("train.jsonl:2") && err.contains("not JSON"), "{err}");
    hub.put_dataset("me/badpq", &[("train.parquet", b"PAR1 this is not parquet".to_vec())]);
    let o = train(&hub, &cache, &tok, &dir.path().join("g"), &["--dataset", "me/badpq"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("not a readable Parquet file"), "{err}");
    // OpenAssistant-style trees, in Parquet (written by pyarrow when the venv has it).
    let Some(py) = python() else { return };
    let pq = dir.path().join("oasst.parquet");
    let st = std::process::Command::new(py)
        .arg("-c")
        .arg(
            "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
             ids, parents, roles, texts = [], [], [], []\n\
             for t in range(6):\n\
             \x20   r = f't{t}'; ids += [r, r+'a', r+'b']; parents += [None, r, r]\n\
             \x20   roles += ['prompter', 'assistant', 'assistant']\n\
             \x20   texts += [f'how do I brew tea number {t}?', f'steep it for {t+2} minutes at 80 degrees', f'use boiling water, {t+3} minutes']\n\
             pq.write_table(pa.table({'message_id': ids, 'parent_id': parents, 'role': roles, 'text': texts}), sys.argv[1])",
        )
        .arg(&pq)
        .status()
        .unwrap();
    assert!(st.success());
    hub.put_dataset("OpenAssistant/oasst-mini", &[("data/train-00000-of-00001.parquet", std::fs::read(&pq).unwrap())]);
    let o = train(&hub, &cache, &tok, &dir.path().join("e"), &["--dataset", "OpenAssistant/oasst-mini:train"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("18 message(s) in trees, 12 conversation(s)"), "{err}");
}
