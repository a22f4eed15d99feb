//! CLI tests of `banter-export` through the real binary: tiny models trained here by banter-train, checked
//! in onnxruntime, the `gguf` package and (where built) llama.cpp; the Hub client against a mock Hub.

mod cli;
mod gguf;
mod hf_shapes;
mod hub;
mod merge;
mod mockhub;
mod onnx;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};

pub fn bin() -> Command {
    Command::cargo_bin("banter-export").unwrap()
}

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(name)
}

pub fn python() -> Option<String> {
    match std::env::var("BANTER_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "BANTER_PYTHON is not set but parity is required");
            None
        }
    }
}

/// Every architecture banter supports, in a tiny shape that keeps what the family has that others lack.
pub fn families() -> Vec<(&'static str, Value)> {
    let base = json!({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                      "num_attention_heads": 4, "max_position_embeddings": 64});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    vec![
        ("gpt2", json!("tiny")),
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

/// A byte-level tokenizer and chat blocks from the persona samples (banter-tokenize).
fn prepare(dir: &Path) -> (PathBuf, PathBuf) {
    let (tok, blocks) = (dir.join("tok.json"), dir.join("blocks.jsonl"));
    if blocks.exists() {
        return (tok, blocks);
    }
    let tk = assert_cmd::cargo::cargo_bin("banter-tokenize");
    let persona = testdata("train/persona.jsonl");
    let st = std::process::Command::new(&tk)
        .args(["train-tokenizer", "--vocab-size", "400", "--min-frequency", "1", "--template", "chatml", "-q", "-o"])
        .arg(&tok)
        .arg(&persona)
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new(&tk)
        .args(["encode", "--template", "chatml", "--block-size", "32", "--keep-tail", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&blocks)
        .arg(&persona)
        .status()
        .unwrap();
    assert!(st.success());
    (tok, blocks)
}

/// A tiny model of `cfg`'s family trained 10 steps by banter-train (`extra`: more flags, e.g. LoRA).
pub fn trained(dir: &Path, name: &str, cfg: &Value, extra: &[&str]) -> PathBuf {
    let (tok, blocks) = prepare(dir);
    let out = dir.join(format!("model-{name}"));
    let config = match cfg.as_str() {
        Some(preset) => preset.to_string(),
        None => {
            let f = dir.join(format!("{name}.json"));
            std::fs::write(&f, cfg.to_string()).unwrap();
            f.display().to_string()
        }
    };
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"));
    c.args(["--max-steps", "10", "--batch-size", "4", "--lr", "1e-2", "--precision", "fp32", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out);
    if extra.is_empty() {
        c.args(["--init", "scratch", "--config", &config]);
    }
    let st = c.args(extra).arg(&blocks).status().unwrap();
    assert!(st.success(), "training {name}");
    out
}
