//! Training every family banter supports (Llama with grouped-query attention, Qwen2, Qwen3, Phi-3, Gemma,
//! Gemma 2, Mistral, OPT pre-LN and OPT-350m's post-LN with projections) three ways — from scratch, full
//! fine-tune and LoRA — and checking the output in transformers and PEFT: no missing or unexpected key,
//! and the loss transformers computes over the validation blocks equals the one banter reported.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{bin, losses, prepare, python};

fn py_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}

fn run_py(py: &str, script: &str, args: &[&str]) -> Value {
    let out = Command::new(py)
        .arg(py_script(script))
        .args(args)
        .env("TRANSFORMERS_VERBOSITY", "error")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap()
}

/// Shapes in the small, each exercising what its family has that the others lack.
fn families() -> Vec<(&'static str, Value)> {
    let base = json!({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                      "num_attention_heads": 4, "max_position_embeddings": 64});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    vec![
        ("llama", with(json!({"model_type": "llama", "num_key_value_heads": 2}))),
        ("qwen2", with(json!({"model_type": "qwen2", "num_key_value_heads": 2, "tie_word_embeddings": true}))),
        ("gemma", with(json!({"model_type": "gemma", "num_key_value_heads": 1, "head_dim": 16}))),
        (
            "gemma2",
            with(json!({"model_type": "gemma2", "num_key_value_heads": 2, "head_dim": 8, "sliding_window": 8,
                        "query_pre_attn_scalar": 8})),
        ),
        ("mistral", with(json!({"model_type": "mistral", "num_key_value_heads": 2, "sliding_window": 8}))),
        ("qwen3", with(json!({"model_type": "qwen3", "num_key_value_heads": 2, "head_dim": 16}))),
        (
            "phi3",
            with(json!({"model_type": "phi3", "num_key_value_heads": 2, "sliding_window": 8,
                        "partial_rotary_factor": 0.5, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2})),
        ),
        (
            "opt",
            json!({"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "max_position_embeddings": 64}),
        ),
        (
            "opt-350m-shape",
            json!({"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "max_position_embeddings": 64, "do_layer_norm_before": false,
                   "word_embed_proj_dim": 16}),
        ),
    ]
}

/// Runs banter-train with `args` for 20 steps (evaluated at the last) and returns its JSON report.
fn train(tok: &Path, blocks: &Path, out: &Path, args: &[&str]) -> Value {
    let o = bin()
        .args(["--max-steps", "20", "--batch-size", "4", "--lr", "1e-2", "--eval-every", "20", "--json", "-q"])
        // The losses are compared with transformers in fp32; `auto` may pick bf16 on a CPU that has it.
        .args(["--precision", "fp32"])
        .arg("--tokenizer")
        .arg(tok)
        .arg("--val-file")
        .arg(blocks)
        .arg("-o")
        .arg(out)
        .args(args)
        .arg(blocks)
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// One transformers check: a model dir, the blocks, and optionally a PEFT adapter (and the vocabulary
/// to resize the base to first).
fn job(model: &Path, blocks: &Path, adapter: Option<&Path>, vocab: Option<i64>) -> Value {
    json!({"model": model, "blocks": blocks, "adapter": adapter, "vocab": vocab})
}

/// Runs the checks in one Python process; every model loads with no key left unmatched.
fn check(py: &str, jobs: &[Value]) -> Vec<Value> {
    let v = run_py(py, "family_check.py", &[&Value::from(jobs.to_vec()).to_string()]);
    let v = v.as_array().unwrap().clone();
    for (j, r) in jobs.iter().zip(&v) {
        assert_eq!(r["missing"], json!([]), "{}: keys transformers did not match", j["model"]);
    }
    v
}

fn make_bases(py: &str, bases: &[(PathBuf, Value)]) {
    let jobs: Vec<Value> = bases.iter().map(|(d, c)| json!([d, c])).collect();
    run_py(py, "make_base.py", &[&Value::from(jobs).to_string()]);
}

fn assert_same_loss(what: &str, banter: &Value, hf: &Value) {
    let (b, h) = (banter["best_val_loss"].as_f64().unwrap(), hf["loss"].as_f64().unwrap());
    assert!((b - h).abs() <= 1e-4 * h.abs().max(1.0), "{what}: banter {b}, transformers {h}");
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn every_family_trains_from_scratch_and_loads_in_transformers_with_the_same_loss() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let (mut jobs, mut reports) = (Vec::new(), Vec::new());
    for (name, cfg) in families() {
        let cfg_file = dir.path().join(format!("{name}.json"));
        std::fs::write(&cfg_file, cfg.to_string()).unwrap();
        let out = dir.path().join(format!("scratch-{name}"));
        let r = train(&tok, &blocks, &out, &["--init", "scratch", "--config", cfg_file.to_str().unwrap()]);
        let curve = losses(&out);
        assert!(curve.last().unwrap().1 < curve[0].1 - 0.5, "{name}: the loss falls: {curve:?}");
        jobs.push(job(&out, &blocks, None, None));
        reports.push((name, cfg["model_type"].clone(), r));
    }
    for ((name, model_type, r), hf) in reports.iter().zip(check(&py, &jobs)) {
        assert_eq!(&hf["model_type"], model_type, "{name}");
        assert_same_loss(name, r, &hf);
    }
}

#[test]
fn every_family_fine_tunes_with_lora_into_an_adapter_peft_loads_and_in_full() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let bases: Vec<(PathBuf, Value)> = families()
        .into_iter()
        .map(|(name, mut cfg)| {
            cfg["vocab_size"] = json!(400);
            (dir.path().join(format!("base-{name}")), cfg)
        })
        .collect();
    make_bases(&py, &bases);
    let (mut jobs, mut reports) = (Vec::new(), Vec::new());
    let fams = families();
    for ((name, _), (base, _)) in fams.iter().zip(&bases) {
        // LoRA with PEFT's default targets for the family.
        let adapter = dir.path().join(format!("lora-{name}"));
        let r = train(&tok, &blocks, &adapter, &["--lora", "--lora-dropout", "0", "--model", base.to_str().unwrap()]);
        let conf = read_json(&adapter.join("adapter_config.json"));
        let want = if *name == "phi3" { json!(["qkv_proj"]) } else { json!(["q_proj", "v_proj"]) };
        assert_eq!(conf["target_modules"], want, "{name}");
        assert_eq!(conf["fan_in_fan_out"], json!(false), "{name}");
        // Full fine-tune.
        let full = dir.path().join(format!("full-{name}"));
        let f = train(&tok, &blocks, &full, &["--model", base.to_str().unwrap()]);
        jobs.extend([
            job(base, &blocks, None, None),
            job(base, &blocks, Some(&adapter), None),
            job(&full, &blocks, None, None),
        ]);
        reports.push((name, r, f));
    }
    let hf = check(&py, &jobs);
    for ((name, r, f), hf) in reports.iter().zip(hf.chunks(3)) {
        let before = hf[0]["loss"].as_f64().unwrap();
        assert_same_loss(&format!("{name} LoRA"), r, &hf[1]);
        assert!(
            hf[1]["loss"].as_f64().unwrap() < before - 1e-3,
            "{name}: the adapter lowers the loss ({before} → {})",
            hf[1]
        );
        assert_same_loss(&format!("{name} full"), f, &hf[2]);
    }
}

#[test]
fn all_linear_lora_adapts_every_linear_layer_and_checkpoints_resume() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let fams = families();
    let cases = [
        ("llama", vec!["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]),
        ("opt-350m-shape", vec!["fc1", "fc2", "k_proj", "out_proj", "project_in", "project_out", "q_proj", "v_proj"]),
    ];
    let bases: Vec<(PathBuf, Value)> = cases
        .iter()
        .map(|(name, _)| {
            let mut cfg = fams.iter().find(|f| f.0 == *name).unwrap().1.clone();
            cfg["vocab_size"] = json!(400);
            (dir.path().join(format!("base-{name}")), cfg)
        })
        .collect();
    make_bases(&py, &bases);
    let (mut jobs, mut reports) = (Vec::new(), Vec::new());
    for ((name, want), (base, _)) in cases.iter().zip(&bases) {
        let adapter = dir.path().join(format!("all-{name}"));
        let args = ["--lora", "--lora-targets", "all-linear", "--lora-dropout", "0", "--model", base.to_str().unwrap()];
        let r = train(&tok, &blocks, &adapter, &[&args[..], &["--save-every", "10"]].concat());
        assert_eq!(read_json(&adapter.join("adapter_config.json"))["target_modules"], json!(want), "{name}");
        jobs.push(job(base, &blocks, Some(&adapter), None));
        reports.push((name, r));
        // Resuming at step 10 draws the same batches and lands on the same losses.
        let resumed = dir.path().join(format!("resumed-{name}"));
        let ck = adapter.join("checkpoint-10");
        train(&tok, &blocks, &resumed, &[&args[..], &["--resume", ck.to_str().unwrap()]].concat());
        let (a, b) = (losses(&adapter), losses(&resumed));
        assert_eq!(b.len(), 10, "{name}: {b:?}");
        for ((sa, la), (sb, lb)) in a[10..].iter().zip(&b) {
            assert_eq!(sa, sb);
            assert!((la - lb).abs() < 1e-4, "{name} step {sa}: {la} vs {lb}");
        }
    }
    for ((name, r), hf) in reports.iter().zip(check(&py, &jobs)) {
        assert_same_loss(&format!("{name} all-linear"), r, &hf);
    }
}

#[test]
fn lora_on_a_family_grows_the_vocabulary_into_modules_to_save() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let mut cfg = families()[0].1.clone();
    cfg["vocab_size"] = json!(380); // fewer rows than the tokenizer has tokens
    let base = dir.path().join("base");
    make_bases(&py, &[(base.clone(), cfg)]);
    let adapter = dir.path().join("lora");
    let r = train(&tok, &blocks, &adapter, &["--lora", "--lora-dropout", "0", "--model", base.to_str().unwrap()]);
    let conf = read_json(&adapter.join("adapter_config.json"));
    assert_eq!(conf["modules_to_save"], json!(["embed_tokens", "lm_head"]));
    let hf = check(&py, &[job(&base, &blocks, Some(&adapter), Some(400))]);
    assert_same_loss("grown vocabulary", &r, &hf[0]);
}

#[test]
fn a_modular_trainer_yaml_builds_a_llama_with_attention_dropout() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("out");
    let yaml = dir.path().join("config.yaml");
    std::fs::write(
        &yaml,
        format!(
            "model:\n  hidden_size: 32\n  intermediate_size: 64\n  num_hidden_layers: 2\n  num_attention_heads: 4\n  \
             num_key_value_heads: 2\n  rope_theta: 10000\n  rms_norm_eps: 1.0e-6\n  tie_word_embeddings: true\n  \
             max_position_embeddings: 64\n  dropout: 0.1\n\
             training:\n  batch_size: 4\n  learning_rate: 1.0e-2\n  max_steps: 5\n\
             tokenizer: {}\noutput: {}\ndata: [{}]\nquiet: true\n",
            tok.display(),
            out.display(),
            blocks.display()
        ),
    )
    .unwrap();
    bin().arg("--config-file").arg(&yaml).assert().success();
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg["model_type"], "llama");
    assert_eq!(cfg["architectures"], json!(["LlamaForCausalLM"]));
    assert_eq!((cfg["num_key_value_heads"].as_i64(), cfg["tie_word_embeddings"].as_bool()), (Some(2), Some(true)));
    assert_eq!(cfg["attention_dropout"].as_f64(), Some(0.1));
    assert_eq!(losses(&out).len(), 5);
}

#[test]
fn every_family_learns_preferences_with_dpo_and_loads_in_transformers() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let prefs = crate::data("preferences.jsonl");
    let mut jobs = Vec::new();
    for (name, cfg) in families() {
        let cfg_file = dir.path().join(format!("{name}.json"));
        std::fs::write(&cfg_file, cfg.to_string()).unwrap();
        let out = dir.path().join(format!("dpo-{name}"));
        let o = bin()
            .arg(&prefs)
            .args(["--dpo", "--init", "scratch", "--config", cfg_file.to_str().unwrap(), "--template", "chatml"])
            .args(["--force", "--max-steps", "30", "--warmup", "0", "--batch-size", "4", "--lr", "3e-3"])
            .args(["--eval-every", "15", "--precision", "fp32", "--json", "-q", "--tokenizer"])
            .arg(&tok)
            .arg("--val-file")
            .arg(&prefs)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let evals: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r.get("val_loss").is_some())
            .collect();
        let (first, last) = (&evals[0], &evals[evals.len() - 1]);
        assert!(last["val_loss"].as_f64() < first["val_loss"].as_f64(), "{name}: {first} → {last}");
        assert!(last["val_reward_accuracy"].as_f64().unwrap() >= 0.8, "{name}: {last}");
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(r["reward_accuracy"].is_number(), "{name}: {r}");
        jobs.push(job(&out, &blocks, None, None));
    }
    check(&py, &jobs);
}
