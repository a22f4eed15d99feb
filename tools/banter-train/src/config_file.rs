//! `--config-file`: a JSON or YAML file of flags, turned into command-line arguments that the real flags
//! then override. Keys are the long flag names (`_` or `-`); unknown keys are an error.
//!
//! A YAML file may also be laid out as the modular trainer's `config.yaml`: a `training` section (its
//! Hugging Face-style names — `learning_rate`, `num_epochs`, `warmup_steps`, … — are understood) and a
//! `model` section with the architecture for `--init scratch`: GPT-2 names, or `hidden_size`,
//! `num_hidden_layers`, `num_attention_heads`, `intermediate_size`, `max_position_embeddings` (a GPT-2),
//! or a Llama-style model as the modular trainer builds it — a `model_type`, or any Llama-only key
//! (`num_key_value_heads`, `rope_theta`, `rms_norm_eps`, …) — passed on as a Hugging Face config.

use std::path::Path;

use clap::CommandFactory;
use serde_json::{Map, Value};

use crate::Cli;

/// Keys that make a `model` section a Llama-family config (`model_type` llama unless it says otherwise).
const FAMILY_TRIGGERS: &[&str] = &[
    "model_type",
    "num_key_value_heads",
    "rope_theta",
    "rms_norm_eps",
    "rope_scaling",
    "head_dim",
    "tie_word_embeddings",
];

/// Keys a Llama-family or OPT `model` section may hold (transformers' names).
const FAMILY_KEYS: &[&str] = &[
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "tie_word_embeddings",
    "attention_bias",
    "mlp_bias",
    "max_position_embeddings",
    "sliding_window",
    "use_sliding_window",
    "layer_types",
    "query_pre_attn_scalar",
    "attn_logit_softcapping",
    "final_logit_softcapping",
    "hidden_act",
    "hidden_activation",
    "attention_dropout",
    "initializer_range",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "ffn_dim",
    "do_layer_norm_before",
    "word_embed_proj_dim",
    "activation_function",
    "enable_bias",
    "dropout",
];

/// Training names other trainers use → banter-train's flags.
const TRAINING_ALIASES: &[(&str, &str)] = &[
    ("learning_rate", "lr"),
    ("min_learning_rate", "min-lr"),
    ("num_epochs", "epochs"),
    ("num_train_epochs", "epochs"),
    ("warmup_steps", "warmup"),
    ("gradient_accumulation_steps", "grad-accum"),
    ("per_device_train_batch_size", "batch-size"),
    ("max_grad_norm", "clip"),
    ("grad_clip", "clip"),
    ("adam_beta1", "beta1"),
    ("adam_beta2", "beta2"),
    ("eval_steps", "eval-every"),
    ("save_steps", "save-every"),
    ("block_size", "block-size"),
    ("max_seq_length", "block-size"),
];

/// Architecture names (Hugging Face's generic ones) → GPT-2 config keys.
const MODEL_ALIASES: &[(&str, &str)] = &[
    ("hidden_size", "n_embd"),
    ("num_hidden_layers", "n_layer"),
    ("num_attention_heads", "n_head"),
    ("intermediate_size", "n_inner"),
    ("max_position_embeddings", "n_positions"),
    ("layer_norm_epsilon", "layer_norm_epsilon"),
    ("vocab_size", "vocab_size"),
    ("n_embd", "n_embd"),
    ("n_layer", "n_layer"),
    ("n_head", "n_head"),
    ("n_inner", "n_inner"),
    ("n_positions", "n_positions"),
    ("activation_function", "activation_function"),
];

/// The file's flags as command-line arguments.
pub fn args(path: &Path) -> Result<Vec<String>, String> {
    let at = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config-file {at}: {e}"))?;
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let v: Value = if yaml {
        serde_norway::from_str(&text).map_err(|e| format!("--config-file {at}: invalid YAML: {e}"))?
    } else {
        serde_json::from_str(&text).map_err(|e| format!("--config-file {at}: invalid JSON: {e}"))?
    };
    let obj = v.as_object().ok_or_else(|| format!("--config-file {at}: expected a mapping of flags"))?;
    let sectioned = obj.get("training").is_some_and(Value::is_object) || obj.get("model").is_some_and(Value::is_object);
    let flat = if sectioned { sections(obj).map_err(|m| format!("--config-file {at}: {m}"))? } else { obj.clone() };
    flags(&flat).map_err(|m| format!("--config-file {at}: {m}"))
}

/// `training` and `model` sections → one flat mapping of flags (other top-level keys are flags too).
fn sections(obj: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut flat = Map::new();
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("training", Value::Object(t)) => {
                for (tk, tv) in t {
                    let name = TRAINING_ALIASES.iter().find(|(a, _)| a == tk).map_or(tk.as_str(), |(_, f)| f);
                    flat.insert(name.to_string(), tv.clone());
                }
            }
            ("model", Value::Object(m)) if m.keys().any(|k| FAMILY_TRIGGERS.contains(&k.as_str())) => {
                let mut cfg = Map::new();
                for (mk, mv) in m {
                    if !FAMILY_KEYS.contains(&mk.as_str()) {
                        return Err(format!(
                            "model.{mk} is not a setting banter knows (known: {})",
                            FAMILY_KEYS.join(", ")
                        ));
                    }
                    if mk == "dropout" {
                        flat.insert("dropout".into(), mv.clone());
                    } else {
                        cfg.insert(mk.clone(), mv.clone());
                    }
                }
                cfg.entry("model_type").or_insert(Value::String("llama".into()));
                flat.insert("config".into(), Value::String(Value::Object(cfg).to_string()));
                flat.entry("init").or_insert(Value::String("scratch".into()));
            }
            ("model", Value::Object(m)) => {
                let mut cfg = Map::new();
                for (mk, mv) in m {
                    if mk == "dropout" {
                        flat.insert("dropout".into(), mv.clone());
                        continue;
                    }
                    let Some((_, key)) = MODEL_ALIASES.iter().find(|(a, _)| a == mk) else {
                        return Err(format!(
                            "model.{mk} is not a GPT-2 setting banter can build (known: {})",
                            MODEL_ALIASES.iter().map(|(a, _)| *a).collect::<Vec<_>>().join(", ")
                        ));
                    };
                    cfg.insert(key.to_string(), mv.clone());
                }
                flat.insert("config".into(), Value::String(Value::Object(cfg).to_string()));
                flat.entry("init").or_insert(Value::String("scratch".into()));
            }
            _ => {
                flat.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(flat)
}

/// A flat mapping → `--flag=value` arguments; unknown keys are an error.
fn flags(obj: &Map<String, Value>) -> Result<Vec<String>, String> {
    let cmd = Cli::command();
    let known: Vec<String> = cmd.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect();
    let mut out = Vec::new();
    for (k, val) in obj {
        let flag = k.replace('_', "-");
        if flag == "inputs" || flag == "data" {
            match val {
                Value::Array(a) => out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_string))),
                Value::String(s) => out.push(s.clone()),
                _ => return Err(format!("\"{k}\" must be a path or a list of paths")),
            }
            continue;
        }
        if !known.contains(&flag) || flag == "config-file" {
            return Err(format!("unknown key \"{k}\""));
        }
        match val {
            Value::Bool(true) => out.push(format!("--{flag}")),
            Value::Bool(false) | Value::Null => {}
            Value::Array(a) => {
                let parts: Vec<String> =
                    a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect();
                out.push(format!("--{flag}={}", parts.join(",")));
            }
            Value::String(s) => out.push(format!("--{flag}={s}")),
            other => out.push(format!("--{flag}={other}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn yaml_sections_become_flags_and_a_scratch_config() {
        let (_d, p) = write(
            "config.yaml",
            "model:\n  vocab_size: 8000\n  hidden_size: 128\n  num_hidden_layers: 4\n  num_attention_heads: 4\n  dropout: 0.1\n\
             training:\n  batch_size: 4\n  learning_rate: 2.0e-4\n  num_epochs: 3\n  warmup_steps: 10\n  gradient_accumulation_steps: 8\n",
        );
        let a = args(&p).unwrap();
        for want in [
            "--batch-size=4",
            "--lr=0.0002",
            "--epochs=3",
            "--warmup=10",
            "--grad-accum=8",
            "--dropout=0.1",
            "--init=scratch",
        ] {
            assert!(a.contains(&want.to_string()), "{want} in {a:?}");
        }
        let cfg = a.iter().find_map(|x| x.strip_prefix("--config=")).unwrap();
        let v: Value = serde_json::from_str(cfg).unwrap();
        assert_eq!(
            (v["n_embd"].as_i64(), v["n_layer"].as_i64(), v["vocab_size"].as_i64()),
            (Some(128), Some(4), Some(8000))
        );
    }

    #[test]
    fn a_llama_style_model_section_becomes_a_llama_config() {
        // The modular trainer's model: GQA, RoPE θ, RMSNorm ε, tied embeddings, dropout.
        let (_d, p) = write(
            "config.yaml",
            "model:\n  vocab_size: 8000\n  hidden_size: 128\n  intermediate_size: 256\n  num_hidden_layers: 4\n  \
             num_attention_heads: 4\n  num_key_value_heads: 2\n  rope_theta: 10000\n  rms_norm_eps: 1.0e-6\n  \
             tie_word_embeddings: true\n  dropout: 0.1\n",
        );
        let a = args(&p).unwrap();
        assert!(a.contains(&"--dropout=0.1".to_string()) && a.contains(&"--init=scratch".to_string()), "{a:?}");
        let cfg = a.iter().find_map(|x| x.strip_prefix("--config=")).unwrap();
        let v: Value = serde_json::from_str(cfg).unwrap();
        assert_eq!(v["model_type"], "llama");
        assert_eq!((v["num_key_value_heads"].as_i64(), v["intermediate_size"].as_i64()), (Some(2), Some(256)));
        assert_eq!(v["tie_word_embeddings"], true);
        assert!(v.get("dropout").is_none());
    }

    #[test]
    fn flat_yaml_works_like_json_and_unknown_keys_are_named() {
        let (_d, p) = write("t.yml", "lr: 0.001\nlora: true\n");
        assert_eq!(args(&p).unwrap(), vec!["--lr=0.001", "--lora"]);
        let (_d, p) = write("t.yml", "training:\n  nope: 1\n");
        assert!(args(&p).unwrap_err().contains("unknown key \"nope\""));
        let (_d, p) = write("t.yml", "model:\n  num_key_value_heads: 2\n  nope: 1\n");
        assert!(args(&p).unwrap_err().contains("model.nope is not a setting"));
        let (_d, p) = write("t.yaml", "lr: [unclosed\n");
        assert!(args(&p).unwrap_err().contains("invalid YAML"));
    }
}
