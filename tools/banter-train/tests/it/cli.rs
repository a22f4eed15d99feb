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
    // Resuming in the same directory does not list steps 9..16 twice.
    tiny(&[&args[..], &["--resume", a.join("checkpoint-8").to_str().unwrap()]].concat(), &tok, &blocks, &a).success();
    let steps: Vec<i64> = losses(&a).iter().map(|x| x.0).collect();
    assert_eq!(steps, (1..=16).collect::<Vec<_>>());
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
    // Labels outside the vocabulary (other than -100), every bad line reported with its line number.
    let labels = dir.path().join("labels.jsonl");
    std::fs::write(
        &labels,
        "{\"input_ids\":[5,9,2,3],\"labels\":[5,9000,2,3]}\n{\"input_ids\":[5,9,2,3],\"labels\":[5,9,2,3]}\n\
         {\"input_ids\":[5,9,2,3],\"labels\":[-7,9,2,3]}\n{\"input_ids\":[5,9],\"labels\":[5]}\n",
    )
    .unwrap();
    tiny(&["--max-steps", "1"], &tok, &labels, &dir.path().join("l"))
        .code(3)
        .stderr(predicate::str::contains("labels.jsonl:1: field \"labels\": label 9000 is outside the vocabulary"))
        .stderr(predicate::str::contains("labels.jsonl:3: field \"labels\": label -7"))
        .stderr(predicate::str::contains("labels.jsonl:4: field \"labels\": has 1 entries but input_ids has 2"))
        .stderr(predicate::str::contains("3 bad record(s)"));
    // Nothing to learn.
    let ignored = dir.path().join("ignored.jsonl");
    std::fs::write(&ignored, "{\"input_ids\":[5,9,2,3],\"labels\":[-100,-100,-100,-100]}\n").unwrap();
    tiny(&["--max-steps", "1"], &tok, &ignored, &dir.path().join("i"))
        .code(3)
        .stderr(predicate::str::contains("nothing to learn"));
    // Too long for the model, with its line; too short to learn from, counted.
    let long = dir.path().join("long.jsonl");
    let ids: Vec<u32> = (0..5000).map(|i| i % 50).collect();
    std::fs::write(&long, format!("{}\n", serde_json::json!({"input_ids": ids, "labels": ids}))).unwrap();
    tiny(&["--max-steps", "1"], &tok, &long, &dir.path().join("g"))
        .code(3)
        .stderr(predicate::str::contains("long.jsonl:1: field \"input_ids\": 5000 tokens, longer than the model's"));
    let short = dir.path().join("short.jsonl");
    std::fs::write(&short, "{\"input_ids\":[],\"labels\":[]}\n{\"input_ids\":[5,9,2,3],\"labels\":[5,9,2,3]}\n")
        .unwrap();
    tiny(&["--max-steps", "1"], &tok, &short, &dir.path().join("s"))
        .success()
        .stderr(predicate::str::contains("1 block(s) with fewer than 2 tokens"))
        .stderr(predicate::str::contains("short.jsonl:1"));
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
        .stderr(predicate::str::contains("not a torch.save zip archive"));
}

/// `--precision auto` decides by the CPU's flags: without native bf16 it stays in fp32 without probing and
/// says why; with them (flags forced through BANTER_CPU_FLAGS) it times both and reports the probe.
#[test]
fn precision_auto_follows_the_cpu_flags_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let cache = dir.path().join("cache");
    let report = |flags: &str, out: &str| -> serde_json::Value {
        let o = bin()
            .env("BANTER_CPU_FLAGS", flags)
            .env("BANTER_CACHE_DIR", &cache)
            .args(["--config", "tiny", "--batch-size", "4", "--threads", "1", "--max-steps", "2", "--json", "-q"])
            .arg("--tokenizer")
            .arg(&tok)
            .arg("-o")
            .arg(dir.path().join(out))
            .arg(&blocks)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let avx2 = report("fpu sse2 avx fma avx2", "a");
    assert_eq!(avx2["precision"], "fp32");
    assert!(avx2["precision_reason"].as_str().unwrap().contains("no avx512_bf16/amx_bf16"), "{avx2}");
    let amx = report("avx2 avx512f avx512_bf16 amx_bf16", "b");
    let why = amx["precision_reason"].as_str().unwrap();
    assert!(why.contains("probe: bf16") && why.contains("avx512_bf16, amx_bf16"), "{why}");
    assert!(amx["precision"] == "bf16" || amx["precision"] == "fp32");
    // The probe's answer is remembered for this CPU and shape: the same command decides the same way again
    // (whatever the load), and says where the choice comes from.
    for again in ["b2", "b3"] {
        let r = report("avx2 avx512f avx512_bf16 amx_bf16", again);
        assert_eq!(r["precision"], amx["precision"]);
        assert!(r["precision_reason"].as_str().unwrap().contains("calibrated earlier"), "{r}");
    }
    assert!(cache.join("precision.json").exists());
    // fp16 is a CUDA mode: refused on CPU with a usage error.
    bin()
        .args(["--config", "tiny", "--device", "cpu", "--precision", "fp16", "--max-steps", "1", "-q"])
        .arg("--tokenizer")
        .arg(&tok)
        .arg("-o")
        .arg(dir.path().join("c"))
        .arg(&blocks)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("fp16 needs a CUDA device"));
}

/// A binary token file trains exactly as the same blocks in JSONL (same losses step for step), and its
/// validation file is read too.
#[test]
fn binary_token_files_train_like_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = prepare(dir.path(), "chatml");
    let tk = assert_cmd::cargo::cargo_bin("banter-tokenize");
    for fmt in ["jsonl", "bin"] {
        let st = std::process::Command::new(&tk)
            .args(["encode", "--block-size", "32", "--val-split", "0.2", "--format", fmt, "-q", "--tokenizer"])
            .arg(&tok)
            .arg("-o")
            .arg(dir.path().join(format!("b.{fmt}")))
            .arg(data("persona.jsonl"))
            .status()
            .unwrap();
        assert!(st.success());
        tiny(
            &[
                "--max-steps",
                "6",
                "--eval-every",
                "3",
                "--val-file",
                dir.path().join(format!("b.val.{fmt}")).to_str().unwrap(),
            ],
            &tok,
            &dir.path().join(format!("b.{fmt}")),
            &dir.path().join(format!("m-{fmt}")),
        )
        .success();
    }
    let (a, b) = (losses(&dir.path().join("m-jsonl")), losses(&dir.path().join("m-bin")));
    assert_eq!(a, b);
    let m = std::fs::read_to_string(dir.path().join("m-bin/metrics.jsonl")).unwrap();
    assert!(m.contains("val_loss"));
    // A .bin must be the only input, and --val-split does not apply to it.
    let bin_file = dir.path().join("b.bin");
    tiny(&["--max-steps", "1"], &tok, &bin_file, &dir.path().join("x")).success();
    bin()
        .args(["--config", "tiny", "--val-split", "0.1", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(dir.path().join("y"))
        .arg(&bin_file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--val-split does not apply"));
    // A corrupt file is bad input naming the file.
    let bad = dir.path().join("bad.bin");
    let mut bytes = std::fs::read(&bin_file).unwrap();
    bytes.truncate(bytes.len() - 8);
    std::fs::write(&bad, bytes).unwrap();
    tiny(&["--max-steps", "1"], &tok, &bad, &dir.path().join("z"))
        .code(3)
        .stderr(predicate::str::contains("bad.bin").and(predicate::str::contains("truncated")));
}

/// One file, one score: banter-train's gate counts duplicates exactly as banter-validate does.
#[test]
fn the_quality_gate_scores_a_file_as_banter_validate_does() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = prepare(dir.path(), "chatml");
    let persona = std::fs::read_to_string(data("persona.jsonl")).unwrap();
    let first: Vec<&str> = persona.lines().take(10).collect();
    // 10 distinct samples, then the first 6 again: 10 of 16 pass.
    let dup = dir.path().join("dup.jsonl");
    std::fs::write(&dup, [first.clone(), first[..6].to_vec()].concat().join("\n") + "\n").unwrap();
    let v = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-validate"))
        .arg(&dup)
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    let validate_score = report["score"].as_f64().unwrap();
    assert!((validate_score - 10.0 / 16.0).abs() < 1e-9, "{report}");
    let t = tiny(&["--max-steps", "1", "--json", "--block-size", "32"], &tok, &dup, &dir.path().join("m")).success();
    let train: serde_json::Value = serde_json::from_slice(&t.get_output().stdout).unwrap();
    assert_eq!(train["data_quality"].as_f64().unwrap(), validate_score, "{train}");
    // Below the gate in both: mostly duplicates.
    std::fs::write(&dup, [first[..2].to_vec(), vec![first[0]; 6]].concat().join("\n") + "\n").unwrap();
    tiny(&["--max-steps", "1"], &tok, &dup, &dir.path().join("m2"))
        .code(1)
        .stderr(predicate::str::contains("rejected: duplicate 6"));
}

#[test]
fn a_sample_prompt_is_continued_after_training_and_yaml_configs_work() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "model:\n  hidden_size: 32\n  num_hidden_layers: 1\n  num_attention_heads: 2\n  max_position_embeddings: 64\n\
         training:\n  batch_size: 4\n  learning_rate: 3.0e-3\n  max_steps: 5\n  warmup_steps: 1\n",
    )
    .unwrap();
    let out = dir.path().join("m");
    let a = bin()
        .arg("--config-file")
        .arg(&cfg)
        .args(["--sample-prompt", "where are", "--sample-tokens", "5", "--json", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(&blocks)
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(r["steps"], 5);
    assert!(r["sample"].is_string(), "{r}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!((config["n_embd"].as_i64(), config["n_layer"].as_i64()), (Some(32), Some(1)));
}

#[test]
fn another_runs_checkpoints_are_refused_the_same_run_resumes_and_overwrite_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("m");
    let a = ["--max-steps", "6", "--save-every", "3", "--lr", "1e-3"];
    tiny(&a, &tok, &blocks, &out).success();
    let ckpts = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("checkpoint-"))
            .collect();
        v.sort();
        v
    };
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(ckpts(&out), ["checkpoint-3", "checkpoint-6"]);
    // Another run (another learning rate) into the same folder: refused, nothing touched.
    let b = ["--max-steps", "4", "--save-every", "1", "--save-total-limit", "1", "--lr", "2e-3"];
    let o = tiny(&b, &tok, &blocks, &out).code(2);
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(err.contains("another run") && err.contains("--resume") && err.contains("--overwrite"), "{err}");
    assert_eq!(ckpts(&out), ["checkpoint-3", "checkpoint-6"]);
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap(), metrics);
    // --resume of another run's checkpoint is refused too.
    tiny(&[&b[..], &["--resume"]].concat(), &tok, &blocks, &out)
        .code(2)
        .stderr(predicate::str::contains("checkpoint of another run"));
    // The same run's checkpoint past this run's end.
    tiny(&["--max-steps", "4", "--save-every", "3", "--lr", "1e-3", "--resume"], &tok, &blocks, &out)
        .code(2)
        .stderr(predicate::str::contains("past this run's 4 steps"));
    // --overwrite replaces the old run: its checkpoints and metrics go, the new run's steps are listed once.
    tiny(&[&b[..], &["--overwrite"]].concat(), &tok, &blocks, &out).success();
    assert_eq!(ckpts(&out), ["checkpoint-4"]);
    let steps: Vec<i64> = losses(&out).iter().map(|x| x.0).collect();
    assert_eq!(steps, [1, 2, 3, 4]);
    // The same command again resumes its own run (here: already complete) instead of starting over.
    let before = losses(&out);
    let o = bin()
        .args(["--config", "tiny", "--batch-size", "4", "--threads", "1", "--precision", "fp32"])
        .args(b)
        .arg("--tokenizer")
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(&blocks)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(err.contains("resuming"), "{err}");
    assert_eq!(losses(&out), before);
    assert!(out.join("model.safetensors").exists());
}

#[test]
fn a_closed_stderr_or_stdout_never_stops_training() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("m");
    // As `banter-train … 2>&1 | head -1` (and `--json | head -c 1`): the reading end is closed at once.
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
        .args(["--config", "tiny", "--batch-size", "4", "--threads", "1", "--precision", "fp32", "--max-steps", "3"])
        .args(["--json", "--sample-prompt", "hi", "--sample-tokens", "4"])
        .arg("--tokenizer")
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(&blocks)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(out.join("model.safetensors").exists() && out.join("config.json").exists());
}

#[test]
fn a_continued_adapter_keeps_its_own_template_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let base = dir.path().join("base");
    tiny(&["--max-steps", "2"], &tok, &blocks, &base).success();
    let train = |args: &[&str], out: &std::path::Path| {
        bin()
            .args(["--batch-size", "4", "--block-size", "32", "--threads", "1", "--precision", "fp32", "-q"])
            .args(["--max-steps", "2", "--force", "--model"])
            .arg(&base)
            .args(args)
            .arg("-o")
            .arg(out)
            .arg(data("persona.jsonl"))
            .assert()
            .success();
    };
    // An adapter trained with a speakers template on a chatml base: the base's vocabulary grows for it.
    let a = dir.path().join("a");
    train(&["--lora", "--template", "asimbot"], &a);
    // Continued without --template: it goes on with its own template (not the base's chatml).
    let a2 = dir.path().join("a2");
    train(&["--adapter", a.to_str().unwrap()], &a2);
    let name = |d: &std::path::Path| -> String {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("banter_template.json")).unwrap()).unwrap();
        v["name"].as_str().unwrap().to_string()
    };
    assert_eq!(name(&a), "asimbot");
    assert_eq!(name(&a2), "asimbot", "the continued adapter switched templates");
    let vocab = |d: &std::path::Path| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("tokenizer.json")).unwrap()).unwrap();
        v["added_tokens"].as_array().unwrap().len() as u64
    };
    assert_eq!(vocab(&a), vocab(&a2), "the continued adapter's tokenizer differs");
}
