//! `banter-train --dpo`: TRL parity of the first batch's loss and gradients, learning on the training pairs,
//! LoRA and full fine-tune, resume, and bad preference data.

use std::path::{Path, PathBuf};

use banter_trainer::dpo::{DpoLoss, DpoSettings};
use predicates::prelude::PredicateBooleanExt;
use tch::Tensor;

use crate::{bin, data, python};

/// A byte-level tokenizer with ChatML's tokens, and a random tiny Llama (GQA, untied head) saved by
/// transformers with that tokenizer, in `dir/base`.
fn base(dir: &Path, py: &str) -> PathBuf {
    let (tok, _) = crate::prepare(dir, "chatml");
    let vocab = tokenizers::Tokenizer::from_file(&tok).unwrap().get_vocab_size(true);
    let out = dir.join("base");
    let cfg = serde_json::json!({"model_type": "llama", "vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
        "tie_word_embeddings": false, "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0});
    let jobs = serde_json::json!([[out, cfg]]).to_string();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_base.py");
    let st = std::process::Command::new(py).arg(script).arg(jobs).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    std::fs::copy(&tok, out.join("tokenizer.json")).unwrap();
    out
}

fn settings(base: &Path, loss: DpoLoss) -> banter_trainer::TrainSettings {
    let mut s = banter_trainer::TrainSettings {
        inputs: vec![data("preferences.jsonl").display().to_string()],
        model: Some(base.to_path_buf()),
        template: Some("chatml".into()),
        force: true,
        device: banter_model::runtime::DeviceArg::Cpu,
        precision: banter_model::precision::PrecisionArg::Fp32,
        dpo: Some(DpoSettings { beta: 0.1, loss, label_smoothing: 0.0 }),
        ..Default::default()
    };
    s.opt.batch_size = 4;
    s.lora.dropout = 0.0;
    s
}

fn rows(t: &Tensor) -> Vec<Vec<i64>> {
    let (n, w) = (t.size()[0], t.size()[1]);
    let flat: Vec<i64> = Vec::try_from(&t.reshape([-1])).unwrap();
    (0..n as usize).map(|i| flat[i * w as usize..(i + 1) * w as usize].to_vec()).collect()
}

/// A batch after one DPO step, banter's against TRL's `DPOTrainer.compute_loss` on the same ids: loss and
/// every gradient within 1e-4. banter resumes from the step's checkpoint (its weights, and the reference
/// log-probs it scored from the base before the step); TRL gets the stepped model (`trl_model`, or the base
/// and the stepped `adapter`) and scores the reference itself: `ref_model`, or its copy of the adapter with B
/// zeroed (the base).
fn check_parity(
    dir: &Path,
    py: &str,
    s: &banter_trainer::TrainSettings,
    (trl_model, ref_model, adapter): (&Path, Option<&Path>, Option<&Path>),
) {
    let fb = banter_trainer::first_batch(s).unwrap();
    let d = s.dpo.unwrap();
    let (loss_type, at_start) = match d.loss {
        DpoLoss::Sigmoid => ("sigmoid", std::f64::consts::LN_2),
        DpoLoss::Ipo => ("ipo", (1.0 / (2.0 * d.beta)).powi(2)),
        DpoLoss::Hinge => ("hinge", 1.0),
    };
    // The loss mask covers the reply: every row has a prompt and scored tokens.
    let labels = rows(&fb.labels);
    assert!(labels.iter().all(|r| r[0] == -100 && r.iter().any(|&l| l != -100)));
    let req = serde_json::json!({
        "model": trl_model, "ref_model": ref_model, "tokenizer": s.model.as_ref().unwrap().join("tokenizer.json"),
        "adapter": adapter, "ref_is_base": true, "input_ids": rows(&fb.input_ids), "labels": labels, "lengths": fb.lengths,
        "beta": d.beta, "loss_type": loss_type, "label_smoothing": d.label_smoothing,
    });
    let tag = format!("{loss_type}{}", if adapter.is_some() { "-lora" } else { "" });
    let req_path = dir.join(format!("req-{tag}.json"));
    std::fs::write(&req_path, req.to_string()).unwrap();
    let out = dir.join(format!("trl-{tag}.safetensors"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/dpo_check.py");
    let st = std::process::Command::new(py).arg(script).arg(&req_path).arg(&out).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let trl: Vec<(String, Tensor)> = Tensor::read_safetensors(&out).unwrap();
    let get = |n: &str| trl.iter().find(|(k, _)| k == n || k.strip_suffix(".weight") == Some(n)).map(|(_, t)| t);
    let trl_loss = get("loss").unwrap().double_value(&[0]);
    assert!((fb.loss - trl_loss).abs() < 1e-4, "{tag}: loss {} vs TRL {trl_loss}", fb.loss);
    // The step moved the model away from the reference: the loss is not its value at the start.
    assert!((fb.loss - at_start).abs() > 1e-3, "{tag}: loss {} is the starting value", fb.loss);
    let names: Vec<&String> = fb.grads.iter().map(|g| &g.0).collect();
    assert_eq!(fb.grads.len(), trl.len() - 1, "trainable parameters: banter {names:?}");
    let (mut largest, mut worst) = (0.0f64, 0.0f64);
    for (n, g) in &fb.grads {
        let t = get(n).unwrap_or_else(|| panic!("{tag}: TRL has no gradient for {n}"));
        assert_eq!(g.size(), t.size(), "{n}");
        let diff = (g - t).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{tag}: {n} differs by {diff}");
        worst = worst.max(diff);
        largest = largest.max(t.abs().max().double_value(&[]));
    }
    eprintln!(
        "{tag}: loss {} (TRL {trl_loss}), {} gradients, largest {largest:.3e}, largest difference {worst:.3e}",
        fb.loss,
        fb.grads.len()
    );
    // The gradients are not all zero (a test that could not fail otherwise).
    assert!(largest > 1e-3, "{tag}: largest gradient {largest}");
}

/// One DPO step from `base` into `out` (its checkpoint-1 holds the weights and the reference).
fn step_once(base: &Path, out: &Path, extra: &[&str]) {
    bin()
        .arg(data("preferences.jsonl"))
        .args(["--dpo", "--warmup", "0", "--max-steps", "1", "--batch-size", "4", "--precision", "fp32"])
        .args(["--template", "chatml", "--force", "-q", "--model"])
        .arg(base)
        .args(extra)
        .arg("-o")
        .arg(out)
        .assert()
        .success();
}

#[test]
fn loss_and_gradients_after_a_step_equal_trls_for_sigmoid_ipo_and_hinge() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path(), &py);
    for (loss, name) in [(DpoLoss::Sigmoid, "sigmoid"), (DpoLoss::Ipo, "ipo"), (DpoLoss::Hinge, "hinge")] {
        // Full fine-tune: TRL's reference is the base model.
        let full = dir.path().join(format!("full-{name}"));
        step_once(&base, &full, &["--loss", name, "--lr", "1e-2"]);
        let mut s = settings(&base, loss);
        s.resume = Some(full.join("checkpoint-1").display().to_string());
        check_parity(dir.path(), &py, &s, (&full, Some(&base), None));
        // LoRA: banter's reference is the base, scored before the fresh adapter learned anything; TRL's is a
        // copy of the adapter it is given (the stepped one), made the base by zeroing its B.
        if loss == DpoLoss::Hinge {
            continue;
        }
        let lora = dir.path().join(format!("lora-{name}"));
        step_once(&base, &lora, &["--loss", name, "--lr", "0.1", "--lora", "--lora-r", "4", "--lora-dropout", "0"]);
        let mut s = settings(&base, loss);
        s.lora.enabled = true;
        s.lora.r = 4;
        s.resume = Some(lora.join("checkpoint-1").display().to_string());
        check_parity(dir.path(), &py, &s, (&base, None, Some(&lora)));
    }
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A short run on the training pairs: reward accuracy above 0.9 and a growing margin, measured on the same
/// pairs (`--val-file` is the training file).
fn learns(base_args: &[&str], extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = crate::prepare(dir.path(), "chatml");
    let out = dir.path().join("out");
    let prefs = data("preferences.jsonl");
    bin()
        .arg(&prefs)
        .args(["--dpo", "--tokenizer"])
        .arg(&tok)
        .args(base_args)
        .args(extra)
        .args(["--template", "chatml", "--force", "--max-steps", "40", "--eval-every", "10", "--warmup", "0"])
        .args(["--batch-size", "4", "--val-file"])
        .arg(&prefs)
        .args(["--precision", "fp32", "--json", "-q", "-o"])
        .arg(&out)
        .assert()
        .success();
    let m = metrics(&out);
    let evals: Vec<&serde_json::Value> = m.iter().filter(|r| r.get("val_reward_accuracy").is_some()).collect();
    assert_eq!(evals.len(), 4);
    let first = evals[0]["val_reward_margin"].as_f64().unwrap();
    let last = evals[3]["val_reward_margin"].as_f64().unwrap();
    assert!(last > first && last > 0.0, "margin {first} → {last}");
    assert!(evals[3]["val_reward_accuracy"].as_f64().unwrap() > 0.9, "{:?}", evals[3]);
    assert!(m.iter().all(|r| r["reward_accuracy"].is_number() && r["logps_chosen"].is_number()));
}

#[test]
fn a_short_run_prefers_the_chosen_replies_full_and_lora() {
    // A model from scratch (tiny GPT-2) trained in full, and a LoRA adapter on it.
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = crate::prepare(dir.path(), "chatml");
    let sft = dir.path().join("sft");
    bin()
        .arg(&blocks)
        .args([
            "--init",
            "scratch",
            "--config",
            "tiny",
            "--max-steps",
            "20",
            "--precision",
            "fp32",
            "-q",
            "--tokenizer",
        ])
        .arg(&tok)
        .arg("-o")
        .arg(&sft)
        .assert()
        .success();
    let m = sft.display().to_string();
    learns(&["--model", &m, "--lr", "1e-3"], &[]);
    // Conservative DPO (label smoothing) on a LoRA adapter.
    learns(&["--model", &m, "--lr", "1e-2", "--lora", "--lora-dropout", "0"], &["--label-smoothing", "0.1"]);
}

#[test]
fn a_resumed_dpo_run_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = crate::prepare(dir.path(), "chatml");
    let sft = dir.path().join("sft");
    bin()
        .arg(&blocks)
        .args(["--init", "scratch", "--config", "tiny", "--max-steps", "5", "--precision", "fp32", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&sft)
        .assert()
        .success();
    let run = |out: &Path, extra: &[&str]| {
        bin()
            .arg(data("preferences.jsonl"))
            .args(["--dpo", "--lr", "1e-3", "--template", "chatml", "--force", "--max-steps", "6", "--save-every", "3"])
            .args(["--batch-size", "2", "--precision", "fp32", "-q", "--model"])
            .arg(&sft)
            .args(extra)
            .arg("-o")
            .arg(out)
            .assert()
            .success();
    };
    let a = dir.path().join("a");
    run(&a, &[]);
    assert!(a.join("checkpoint-3").join("dpo_reference.safetensors").exists());
    let straight = metrics(&a);
    // Resuming from step 3 in a copy: the reference comes from the checkpoint, not from the trained model.
    let b = dir.path().join("b");
    std::fs::create_dir_all(b.join("checkpoint-3")).unwrap();
    for f in std::fs::read_dir(a.join("checkpoint-3")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), b.join("checkpoint-3").join(f.file_name())).unwrap();
    }
    run(&b, &["--resume"]);
    let resumed = metrics(&b);
    let last = |m: &[serde_json::Value]| m.last().unwrap()["loss"].as_f64().unwrap();
    assert!((last(&straight) - last(&resumed)).abs() < 1e-5, "{} vs {}", last(&straight), last(&resumed));
}

#[test]
fn bad_preference_records_are_named_by_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = crate::prepare(dir.path(), "chatml");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"hi\", \"chosen\": \"hello there\", \"rejected\": \"go away\"}\n{\"prompt\": \"hi\", \"responses\": [\"a\", \"b\"], \"ranked_indices\": [0, 0]}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    bin()
        .arg(&bad)
        .args(["--dpo", "--init", "scratch", "--config", "tiny", "--template", "chatml", "--force", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("bad.jsonl:2").and(predicates::str::contains("ranked_indices[1]")));
    // Plain samples are not preference records.
    bin()
        .arg(data("persona.jsonl"))
        .args(["--dpo", "--init", "scratch", "--config", "tiny", "--template", "chatml", "--force", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(3);
    // Preference records without --dpo: one line saying what to add, not an error per record.
    bin()
        .arg(data("preferences.jsonl"))
        .args(["--init", "scratch", "--config", "tiny", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("preference records").and(predicates::str::contains("--dpo")));
    bin()
        .arg(data("preferences.jsonl"))
        .args(["--dpo", "--beta", "0", "--init", "scratch", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--beta"));
}

#[test]
fn a_feedback_chat_log_trains_on_its_corrections_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = crate::prepare(dir.path(), "chatml");
    let log = dir.path().join("chat-log.jsonl");
    let turn = |r: &str, c: &str| serde_json::json!({"role": r, "content": c});
    let lines = [
        serde_json::json!({"messages": [turn("user", "where are you?"), turn("assistant", "at home, you?")], "accepted": true, "ts": "2026-11-20T10:00:00Z"}),
        serde_json::json!({"messages": [turn("user", "dinner?"), turn("assistant", "pasta at 8, come over")], "accepted": false, "corrected": true, "model_reply": "no", "ts": "2026-11-20T10:01:00Z"}),
        serde_json::json!({"messages": [turn("user", "movie?"), turn("assistant", "no idea")], "accepted": false, "ts": "2026-11-20T10:02:00Z"}),
        serde_json::json!({"messages": [turn("user", "call mum?"), turn("assistant", "yes, sunday after lunch")], "accepted": false, "corrected": true, "model_reply": "who?", "ts": "2026-11-20T10:03:00Z"}),
    ];
    std::fs::write(&log, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("out");
    let o = bin()
        .arg(&log)
        .args(["--dpo", "--init", "scratch", "--config", "tiny", "--template", "chatml", "--force", "--max-steps", "2"])
        .args(["--precision", "fp32", "--json", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 chat-log exchange(s) without a correction"), "{err}");
    assert!(err.contains("2 training preference pairs"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["report"]["steps"].as_i64().or(r["steps"].as_i64()), Some(2), "{r}");
}
