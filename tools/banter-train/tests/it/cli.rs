//! Training runs through the binary.

use predicates::prelude::*;

use crate::{bin, data, losses, prepare};

fn tiny(
    args: &[&str],
    tok: &std::path::Path,
    input: &std::path::Path,
    out: &std::path::Path,
) -> assert_cmd::assert::Assert {
    bin()
        .args(["--config", "tiny", "--batch-size", "4", "--threads", "1", "--precision", "fp32", "-q"])
        .args(args)
        .arg("--tokenizer")
        .arg(tok)
        .arg("-o")
        .arg(out)
        .arg(input)
        .assert()
}

#[test]
fn scratch_training_lowers_the_loss_and_writes_a_model_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("model");
    tiny(
        &["--max-steps", "40", "--lr", "3e-3", "--warmup", "5", "--val-split", "0.1", "--eval-every", "10"],
        &tok,
        &blocks,
        &out,
    )
    .success();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "banter_template.json",
        "metrics.jsonl",
        "loss.svg",
        "checkpoint-40",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let l = losses(&out);
    assert_eq!(l.len(), 40);
    assert!(l[39].1 < l[0].1 * 0.8, "{} → {}", l[0].1, l[39].1);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"val_loss\"") && metrics.contains("\"val_ppl\""));
}

#[test]
fn same_seed_same_losses_and_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let args = ["--max-steps", "16", "--dropout", "0.1", "--save-every", "8", "--save-total-limit", "3"];
    tiny(&args, &tok, &blocks, &a).success();
    tiny(&args, &tok, &blocks, &b).success();
    assert_eq!(losses(&a), losses(&b), "same seed, same device → same losses");
    // Resume from step 8 in a fresh directory: steps 9..16 must match the uninterrupted run.
    let c = dir.path().join("c");
    std::fs::create_dir(&c).unwrap();
    tiny(&[&args[..], &["--resume", a.join("checkpoint-8").to_str().unwrap()]].concat(), &tok, &blocks, &c).success();
    let full = losses(&a);
    let resumed = losses(&c);
    assert_eq!(resumed.len(), 8);
    for (x, y) in resumed.iter().zip(&full[8..]) {
        assert_eq!(x.0, y.0);
        assert!((x.1 - y.1).abs() < 1e-6, "step {}: {} vs {}", x.0, x.1, y.1);
    }
    let mut ckpts: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint-"))
        .collect();
    ckpts.sort();
    assert_eq!(ckpts, vec!["checkpoint-16", "checkpoint-8"]);
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("m");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
        .args([
            "--config",
            "tiny",
            "--batch-size",
            "4",
            "--threads",
            "1",
            "--max-steps",
            "1000000",
            "-q",
            "--tokenizer",
        ])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(&blocks)
        .spawn()
        .unwrap();
    // Wait until training runs (metrics appear), then interrupt.
    for _ in 0..200 {
        if out.join("metrics.jsonl").exists() && std::fs::metadata(out.join("metrics.jsonl")).unwrap().len() > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let ckpt: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
        .collect();
    assert_eq!(ckpt.len(), 1);
    assert!(ckpt[0].path().join("optimizer.safetensors").exists());
}

#[test]
fn samples_are_tokenized_on_the_fly_and_the_quality_gate_refuses_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = prepare(dir.path(), "chatml");
    let out = dir.path().join("m");
    tiny(&["--max-steps", "3", "--block-size", "32"], &tok, &data("persona.jsonl"), &out).success();
    assert!(out.join("model.safetensors").exists());
    let out2 = dir.path().join("m2");
    tiny(&["--max-steps", "3"], &tok, &data("bad.jsonl"), &out2)
        .code(1)
        .stderr(predicate::str::contains("below the 50% gate"))
        .stderr(predicate::str::contains("too-short"));
    tiny(&["--max-steps", "3", "--force"], &tok, &data("bad.jsonl"), &out2).success();
}

#[test]
fn config_file_sets_flags_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("m");
    let cfg = dir.path().join("train.json");
    std::fs::write(
        &cfg,
        serde_json::json!({"max_steps": 4, "batch_size": 2, "lr": 1e-3, "tokenizer": tok, "output": out, "data": [blocks], "threads": 1, "quiet": true}).to_string(),
    )
    .unwrap();
    bin().arg("--config-file").arg(&cfg).assert().success();
    assert_eq!(losses(&out).len(), 4);
    std::fs::write(&cfg, r#"{"learning_rate": 1e-3}"#).unwrap();
    bin()
        .arg("--config-file")
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown key \"learning_rate\""));
}

#[test]
fn bad_inputs_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = prepare(dir.path(), "chatml");
    let bad = dir.path().join("b.jsonl");
    std::fs::write(&bad, "{\"input_ids\":[1,2,99999],\"labels\":[1,2,3]}\n").unwrap();
    tiny(&["--max-steps", "1"], &tok, &bad, &dir.path().join("x"))
        .code(3)
        .stderr(predicate::str::contains("b.jsonl:1: field \"input_ids\": token id 99999 is outside the vocabulary"));
    bin()
        .args(["--max-steps", "1", "-o"])
        .arg(dir.path().join("y"))
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no tokenizer"));
    bin().args(["--model", "/nonexistent/model", "-o"]).arg(dir.path().join("z")).arg(&bad).assert().code(2);
    let pickle = dir.path().join("pk");
    std::fs::create_dir(&pickle).unwrap();
    std::fs::write(
        pickle.join("config.json"),
        r#"{"model_type":"gpt2","vocab_size":10,"n_positions":8,"n_embd":8,"n_layer":1,"n_head":2}"#,
    )
    .unwrap();
    std::fs::write(pickle.join("pytorch_model.bin"), b"pickle").unwrap();
    bin()
        .args(["--tokenizer"])
        .arg(&tok)
        .args(["--model"])
        .arg(&pickle)
        .arg("-o")
        .arg(dir.path().join("w"))
        .arg(&bad)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("reads safetensors only"));
}
