//! The Llama family's and OPT's forward passes and losses against transformers: random tiny models of several shapes (grouped-query
//! attention, `head_dim` ≠ hidden / heads, tied and untied embeddings, biases, RoPE scaling linear and llama3,
//! Qwen2, Gemma) written by transformers, loaded by banter, same logits to 1e-4.

use std::process::Command;

use banter_model::cached::CachedLm;
use banter_model::llama::Llama;
use banter_model::opt::Opt;
use tch::{Device, Tensor};

const IDS: [i64; 12] = [5, 17, 42, 3, 99, 64, 7, 7, 31, 0, 120, 2];

fn python() -> Option<String> {
    match std::env::var("BANTER_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "BANTER_PYTHON is not set but parity is required");
            None
        }
    }
}

const SCRIPT: &str = r#"
import json, sys, torch
from transformers import AutoConfig, AutoModelForCausalLM
torch.manual_seed(0)
cfg = AutoConfig.for_model(**json.loads(sys.argv[2]))
m = AutoModelForCausalLM.from_config(cfg).eval()
with torch.no_grad():
    for p in m.parameters():
        p.normal_(0, 0.2)
m.save_pretrained(sys.argv[1])
ids = torch.tensor([json.loads(sys.argv[3])])
labels = ids.clone()
labels[0, :4] = -100
with torch.no_grad():
    out = m(ids, labels=labels)
    print(json.dumps({"logits": out.logits.flatten().tolist(), "loss": out.loss.item()}))
"#;

#[test]
fn model_families_logits_and_losses_equal_transformers() {
    let Some(py) = python() else { return };
    let base = serde_json::json!({"vocab_size": 128, "hidden_size": 48, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64});
    let shapes = [
        ("llama, MHA, untied", serde_json::json!({"model_type": "llama"})),
        ("llama, GQA", serde_json::json!({"model_type": "llama", "num_key_value_heads": 2})),
        ("llama, tied", serde_json::json!({"model_type": "llama", "tie_word_embeddings": true})),
        ("llama, theta 5e5", serde_json::json!({"model_type": "llama", "rope_theta": 500000.0})),
        (
            "llama, head_dim 16 ≠ 48/4, biases",
            serde_json::json!({"model_type": "llama", "head_dim": 16, "attention_bias": true, "mlp_bias": true, "num_key_value_heads": 1}),
        ),
        (
            "llama, linear RoPE scaling",
            serde_json::json!({"model_type": "llama", "rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
        ),
        (
            "llama 3.1 RoPE scaling",
            serde_json::json!({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}),
        ),
        (
            "gemma (√hidden embeddings, 1 + w norms, tanh-GELU gate), head_dim 16, MQA",
            serde_json::json!({"model_type": "gemma", "head_dim": 16, "num_key_value_heads": 1}),
        ),
        (
            "gemma2 (soft-capping, sliding window 4 on alternate layers, four norms a block)",
            serde_json::json!({"model_type": "gemma2", "head_dim": 16, "num_key_value_heads": 2, "sliding_window": 4,
                "query_pre_attn_scalar": 16, "attn_logit_softcapping": 5.0, "final_logit_softcapping": 3.0}),
        ),
        (
            "mistral, sliding window 4, GQA",
            serde_json::json!({"model_type": "mistral", "sliding_window": 4, "num_key_value_heads": 2}),
        ),
        (
            "qwen2 (q/k/v bias), GQA, tied",
            serde_json::json!({"model_type": "qwen2", "num_key_value_heads": 2, "tie_word_embeddings": true}),
        ),
        (
            "qwen3 (per-head q/k RMSNorm, no biases), head_dim 16, GQA",
            serde_json::json!({"model_type": "qwen3", "head_dim": 16, "num_key_value_heads": 2}),
        ),
        (
            "phi3 (fused qkv_proj and gate_up_proj), GQA, sliding window 6",
            serde_json::json!({"model_type": "phi3", "num_key_value_heads": 2, "sliding_window": 6,
                "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}),
        ),
        (
            "phi3, partial RoPE 0.5 (Phi-4-mini's kind)",
            serde_json::json!({"model_type": "phi3", "partial_rotary_factor": 0.5,
                "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}),
        ),
    ];
    let opt_base = serde_json::json!({"vocab_size": 128, "hidden_size": 48, "ffn_dim": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 64});
    let opt_shapes = [
        ("opt, pre-LN (opt-125m's shape)", serde_json::json!({"model_type": "opt"})),
        (
            "opt, post-LN with project_in/out (opt-350m's shape)",
            serde_json::json!({"model_type": "opt", "do_layer_norm_before": false, "word_embed_proj_dim": 32}),
        ),
    ];
    let all = shapes
        .into_iter()
        .map(|(n, x)| (n, base.clone(), x))
        .chain(opt_shapes.into_iter().map(|(n, x)| (n, opt_base.clone(), x)));
    for (name, base, extra) in all {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = base.clone();
        cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let out = Command::new(&py)
            .args(["-c", SCRIPT])
            .arg(dir.path())
            .arg(cfg.to_string())
            .arg(serde_json::to_string(&IDS).unwrap())
            .env("TRANSFORMERS_VERBOSITY", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value =
            serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
        let want: Vec<f32> = v["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let _g = tch::no_grad_guard();
        let ids = Tensor::from_slice(&IDS).view([1, IDS.len() as i64]);
        let mut labels: Vec<i64> = IDS.to_vec();
        labels[..4].fill(-100);
        let labels = Tensor::from_slice(&labels).view([1, IDS.len() as i64]);
        let (logits, loss) = if cfg["model_type"] == "opt" {
            let m = Opt::load(dir.path(), Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut cache = banter_model::KvCache::default();
            let mut steps = vec![m.logits_cached(&ids.narrow(1, 0, 5), &mut cache, banter_model::Pass::eval())];
            for j in 5..IDS.len() as i64 {
                steps.push(m.logits_cached(&ids.narrow(1, j, 1), &mut cache, banter_model::Pass::eval()));
            }
            let d = (&Tensor::cat(&steps, 1) - m.forward(&ids)).abs().max().double_value(&[]);
            assert!(d < 1e-4, "{name}: cached decoding differs from the full pass by {d}");
            (m.forward(&ids), m.loss(&ids, &labels))
        } else {
            let m = Llama::load(dir.path(), Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
            // With a KV cache: a 5-token prompt, then one token at a time, gives the same logits.
            let mut cache = banter_model::KvCache::default();
            let mut steps = vec![m.logits_cached(&ids.narrow(1, 0, 5), &mut cache, banter_model::Pass::eval())];
            for j in 5..IDS.len() as i64 {
                steps.push(m.logits_cached(&ids.narrow(1, j, 1), &mut cache, banter_model::Pass::eval()));
            }
            let incremental = Tensor::cat(&steps, 1);
            let full = m.forward(&ids);
            let d = (&incremental - &full).abs().max().double_value(&[]);
            assert!(d < 1e-4, "{name}: cached decoding differs from the full pass by {d}");
            (full, m.loss(&ids, &labels))
        };
        let got: Vec<f32> = Vec::try_from(&logits.flatten(0, -1)).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        let max = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let scale = want.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
        eprintln!("{name}: max |Δlogit| {max} (max |logit| {scale})");
        assert!(max < 1e-4 * scale.max(1.0), "{name}: max |Δlogit| {max} (max |logit| {scale})");
        // The loss over labels with -100 (the first four positions masked), as transformers shifts them.
        let loss = loss.double_value(&[]);
        assert!((loss - v["loss"].as_f64().unwrap()).abs() < 1e-5, "{name}: loss {loss} vs {}", v["loss"]);
    }
}

#[test]
fn unsupported_llama_shapes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |v: serde_json::Value| std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
    let base = serde_json::json!({"vocab_size": 8, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2});
    let with = |extra: serde_json::Value| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    cfg(with(serde_json::json!({"model_type": "qwen2", "sliding_window": 4096, "use_sliding_window": true})));
    assert!(Llama::load(dir.path(), Device::Cpu).unwrap_err().to_string().contains("sliding-window"));
    cfg(with(serde_json::json!({"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})));
    assert!(Llama::load(dir.path(), Device::Cpu).unwrap_err().to_string().contains("yarn"));
    cfg(with(serde_json::json!({"model_type": "qwen3", "sliding_window": 4096, "use_sliding_window": true})));
    assert!(Llama::load(dir.path(), Device::Cpu).unwrap_err().to_string().contains("sliding-window"));
    cfg(with(serde_json::json!({"model_type": "phi3", "rope_scaling": {"rope_type": "longrope", "factor": 4.0}})));
    assert!(Llama::load(dir.path(), Device::Cpu).unwrap_err().to_string().contains("longrope"));
    cfg(with(serde_json::json!({"model_type": "llama", "num_key_value_heads": 3})));
    assert!(Llama::load(dir.path(), Device::Cpu).unwrap_err().to_string().contains("num_key_value_heads"));
}
