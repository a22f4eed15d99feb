//! The seed projects' journeys through banter-train (issue 28): retraining in place.

use std::path::Path;

use predicates::prelude::*;

use crate::{bin, losses, prepare};

fn run(args: &[&str], extra: &[&Path]) -> assert_cmd::assert::Assert {
    bin()
        .args(["--batch-size", "4", "--threads", "1", "--precision", "fp32", "--lr", "1e-3"])
        .args(args)
        .args(extra)
        .assert()
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// MTN Sails retrains into its existing output: `--model M -o M` trains from M through a staging folder and
/// replaces M only when the run is complete; a LoRA adapter may not replace its own base.
#[test]
fn retraining_in_place_replaces_the_model_only_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let m = dir.path().join("m");
    run(&["--config", "tiny", "--max-steps", "3", "-q", "--tokenizer"], &[&tok, Path::new("-o"), &m, &blocks])
        .success();
    let before = bytes(&m.join("model.safetensors"));

    // An adapter written over its own base model: refused, M untouched.
    run(&["--lora", "--max-steps", "2", "-q", "--model"], &[&m, Path::new("-o"), &m, &blocks])
        .code(2)
        .stderr(predicate::str::contains("cannot replace the model it adapts"));
    assert_eq!(bytes(&m.join("model.safetensors")), before);

    // The whole model retrained in place.
    let o = run(&["--max-steps", "4", "--model"], &[&m, Path::new("-o"), &m, &blocks]).success();
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(err.contains("in place"), "{err}");
    let after = bytes(&m.join("model.safetensors"));
    assert_ne!(after, before, "the retrained weights replaced the old ones");
    assert_eq!(losses(&m).len(), 4, "this run's metrics");
    assert!(!dir.path().join(".m.retrain").exists(), "no staging folder left");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "banter_template.json"] {
        assert!(m.join(f).exists(), "{f}");
    }

    // A retrain that fails (unreadable data) leaves M as it was.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"ids\": [1, 2, 99999], \"labels\": [1, 2, 3]}\n").unwrap();
    run(&["--max-steps", "2", "-q", "--model"], &[&m, Path::new("-o"), &m, &bad]).failure();
    assert_eq!(bytes(&m.join("model.safetensors")), after);
    assert!(m.join("config.json").exists());
    assert!(!dir.path().join(".m.retrain").exists(), "nothing to resume: the staging folder went");

    // An adapter continued in place.
    let a = dir.path().join("a");
    run(&["--lora", "--max-steps", "2", "-q", "--model"], &[&m, Path::new("-o"), &a, &blocks]).success();
    let adapter = bytes(&a.join("adapter_model.safetensors"));
    run(&["--max-steps", "3", "-q", "--model"], &[&m, Path::new("--adapter"), &a, Path::new("-o"), &a, &blocks])
        .success();
    assert_ne!(bytes(&a.join("adapter_model.safetensors")), adapter);
    assert_eq!(bytes(&m.join("model.safetensors")), after, "the base is an input only");
}

/// `--precision auto` on `--resume` takes the precision the run being resumed chose (recorded in each
/// checkpoint), not a new decision: the resumed steps compute as the first ones did.
#[test]
fn resuming_keeps_the_runs_precision() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let a = dir.path().join("a");
    let go = |precision: &str, flags: &str, out: &Path, resume: Option<&Path>| -> serde_json::Value {
        let mut c = bin();
        c.env("BANTER_CPU_FLAGS", flags)
            .args(["--config", "tiny", "--batch-size", "4", "--threads", "1", "--max-steps", "4", "--save-every", "2"])
            .args(["--json", "-q", "--precision", precision, "--tokenizer"])
            .arg(&tok)
            .arg("-o")
            .arg(out);
        if let Some(r) = resume {
            c.arg("--resume").arg(r);
        }
        let o = c.arg(&blocks).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let first = go("bf16", "avx2 avx512_bf16", &a, None);
    assert_eq!(first["precision"], "bf16");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("checkpoint-2/trainer_state.json")).unwrap()).unwrap();
    assert_eq!(state["precision"], "bf16");
    // Resumed with auto on a CPU whose flags alone would say fp32.
    let b = dir.path().join("b");
    let resumed = go("auto", "avx2 fma", &b, Some(&a.join("checkpoint-2")));
    assert_eq!(resumed["precision"], "bf16", "{resumed}");
    assert!(resumed["precision_reason"].as_str().unwrap().contains("run being resumed"), "{resumed}");
    // An explicit --precision still wins.
    let c = dir.path().join("c");
    assert_eq!(go("fp32", "avx2 fma", &c, Some(&a.join("checkpoint-2")))["precision"], "fp32");
}

/// MTN Sails' and the modular trainer's transcripts (`User: …` / `Assistant: …`) are conversations, not
/// unrelated lines; a tokenizer trained on plain text alone gets no chat markers.
#[test]
fn transcripts_are_conversations_and_plain_text_gets_no_chat_markers() {
    let dir = tempfile::tempdir().unwrap();
    let tr = dir.path().join("chats.txt");
    let mut text = String::new();
    for i in 0..12 {
        text.push_str(&format!("User: question number {i}, what is tea?\nAssistant: tea is a drink, answer {i}\n\n"));
    }
    std::fs::write(&tr, text).unwrap();
    let tk = assert_cmd::cargo::cargo_bin("banter-tokenize");
    let tok = dir.path().join("tok.json");
    let st = std::process::Command::new(&tk)
        .args(["train-tokenizer", "--vocab-size", "400", "--min-frequency", "1", "-q", "-o"])
        .arg(&tok)
        .arg(&tr)
        .status()
        .unwrap();
    assert!(st.success());
    let vocab = std::fs::read_to_string(&tok).unwrap();
    assert!(vocab.contains("<|user|>"), "a transcript is rendered through the chat template");
    let o = bin()
        .args(["--config", "tiny", "--max-steps", "2", "--batch-size", "2", "--threads", "1", "--precision", "fp32"])
        .arg("--tokenizer")
        .arg(&tok)
        .arg("-o")
        .arg(dir.path().join("m"))
        .arg(&tr)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("read as a transcript: 12 conversation(s)"), "{err}");
    // Other prefixes, given.
    let qa = dir.path().join("qa.txt");
    std::fs::write(&qa, "Q: how do I brew green tea?\nA: steep it at 80 degrees for two minutes\n\nQ: and black tea?\nA: boiling water, four minutes, then milk if you like\n").unwrap();
    let o = bin()
        .args([
            "--config",
            "tiny",
            "--max-steps",
            "1",
            "--threads",
            "1",
            "--precision",
            "fp32",
            "--format",
            "transcript",
        ])
        .args(["--user-prefix", "Q:", "--assistant-prefix", "A:", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(dir.path().join("m2"))
        .arg(&qa)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("2 conversation(s)"), "{err}");
    // Plain text: lines, and a tokenizer without chat markers.
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, "the cat sat on the mat\nthe dog ran in the park\n").unwrap();
    let tok2 = dir.path().join("tok2.json");
    let st = std::process::Command::new(&tk)
        .args(["train-tokenizer", "--vocab-size", "300", "--min-frequency", "1", "-q", "-o"])
        .arg(&tok2)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(st.success());
    let vocab = std::fs::read_to_string(&tok2).unwrap();
    assert!(!vocab.contains("<|user|>") && !vocab.contains("<|end|>"), "plain text needs no chat markers");
}
