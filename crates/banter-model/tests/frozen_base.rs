//! A LoRA run's frozen base held in bf16 (`Lm::hold_frozen_base_in`) gives the bf16 pass exactly what a cast
//! per pass gave: the same loss and the same adapter gradients, in every family; with trained token rows the
//! token matrices stay fp32 and still learn.

use banter_model::{Gpt2, Gpt2Config, Lm, LoraConfig, Pass};
use tch::{Device, Kind, Tensor};

fn models() -> Vec<(&'static str, Lm)> {
    let llama = serde_json::json!({"vocab_size": 40, "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64});
    let mut out: Vec<(&'static str, Lm)> = Vec::new();
    tch::manual_seed(4);
    let mut g = Gpt2Config::new(40, 32, 16, 2, 2);
    g.attn_pdrop = 0.0;
    g.resid_pdrop = 0.0;
    g.embd_pdrop = 0.0;
    out.push(("gpt2", Gpt2::new(g, Device::Cpu).into()));
    for (name, extra) in [
        ("llama", serde_json::json!({"model_type": "llama", "tie_word_embeddings": false})),
        ("qwen2", serde_json::json!({"model_type": "qwen2", "tie_word_embeddings": true})),
        (
            "gemma2",
            serde_json::json!({"model_type": "gemma2", "head_dim": 8, "sliding_window": 4,
            "query_pre_attn_scalar": 8, "final_logit_softcapping": 30.0}),
        ),
    ] {
        let mut cfg = llama.clone();
        cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        out.push((name, banter_model::lm::scratch_model(cfg, 40, 0, Device::Cpu, "test").unwrap()));
    }
    let opt = serde_json::json!({"model_type": "opt", "vocab_size": 40, "hidden_size": 32, "ffn_dim": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64, "dropout": 0.0,
        "attention_dropout": 0.0, "word_embed_proj_dim": 16});
    out.push(("opt", banter_model::lm::scratch_model(opt, 40, 0, Device::Cpu, "test").unwrap()));
    for (_, m) in &mut out {
        {
            let _g = tch::no_grad_guard();
            for v in m.vs().variables().values() {
                let _ = v.shallow_clone().normal_(0.0, 0.3);
            }
        }
        let targets = m.family().lora_targets.iter().map(|t| t.to_string()).collect();
        assert!(m.attach_lora(&LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, targets }) > 0);
        let _g = tch::no_grad_guard();
        for v in m.lora_vs().unwrap().variables().values() {
            let _ = v.shallow_clone().normal_(0.0, 0.2);
        }
    }
    out
}

/// The loss and every trained tensor's gradient (then zeroed), by name.
fn step(m: &Lm, trained: &[(String, Tensor)], ids: &Tensor) -> (f64, Vec<(String, Tensor)>) {
    let labels = ids.copy();
    let _ = labels.narrow(1, 0, 2).fill_(-100);
    let pass = Pass { train: true, compute: Kind::BFloat16 };
    let (loss, _) = m.loss_backward(ids, &labels, pass, 1.0);
    let grads = trained
        .iter()
        .map(|(n, t)| {
            let g = t.grad();
            assert!(g.defined(), "{n} has no gradient");
            let c = g.copy();
            let _ = g.shallow_clone().zero_();
            (n.clone(), c)
        })
        .collect();
    (loss, grads)
}

/// The kinds of the base's matrices, the token matrices (looked up, or trained) and learned positions
/// apart.
fn matrices_kind(m: &Lm, head_too: bool) -> Vec<(String, Kind)> {
    m.vs()
        .variables()
        .into_iter()
        .filter(|(n, t)| {
            t.dim() == 2
                && !["wte", "wpe", "embed_tokens", "embed_positions"].iter().any(|s| n.contains(s))
                && (head_too || !n.contains("lm_head"))
        })
        .map(|(n, t)| (n, t.kind()))
        .collect()
}

#[test]
fn a_bf16_frozen_base_gives_the_same_loss_and_adapter_gradients_as_a_cast_per_pass() {
    for (name, mut m) in models() {
        let trained: Vec<(String, Tensor)> = m.lora_vs().unwrap().variables().into_iter().collect();
        let ids = Tensor::randint(40, [3, 10], (Kind::Int64, Device::Cpu));
        let (l32, g32) = step(&m, &trained, &ids);
        m.hold_frozen_base_in(Kind::BFloat16, false);
        for (n, k) in matrices_kind(&m, true) {
            assert_eq!(k, Kind::BFloat16, "{name}: {n} stays {k:?}");
        }
        for (n, t) in m.token_matrices().into_iter().filter(|(n, _)| !n.contains("lm_head")) {
            assert_eq!(t.kind(), Kind::Float, "{name}: {n} is looked up in fp32");
        }
        for (n, t) in &trained {
            assert_eq!(t.kind(), Kind::Float, "{name}: the adapter's {n} must stay fp32");
        }
        let (l16, g16) = step(&m, &trained, &ids);
        assert!((l32 - l16).abs() <= 1e-6 * l32.abs(), "{name}: loss {l32} vs {l16}");
        for ((n, a), (_, b)) in g32.iter().zip(&g16) {
            let d = (a - b).abs().max().double_value(&[]);
            let s = a.abs().max().double_value(&[]);
            assert!(s > 0.0, "{name}: {n}'s gradient is zero");
            assert!(d <= 1e-6 * s, "{name}: {n} differs by {d} (scale {s})");
        }
    }
}

#[test]
fn trained_token_rows_keep_their_matrices_in_fp32_and_learn() {
    for (name, mut m) in models() {
        m.hold_frozen_base_in(Kind::BFloat16, true);
        let tokens = m.token_matrices();
        assert!(!tokens.is_empty());
        let trained: Vec<(String, Tensor)> = tokens
            .into_iter()
            .map(|(n, t)| {
                assert_eq!(t.kind(), Kind::Float, "{name}: {n} must stay fp32");
                (n.to_string(), t.set_requires_grad(true))
            })
            .collect();
        let ids = Tensor::randint(40, [2, 8], (Kind::Int64, Device::Cpu));
        let (loss, grads) = step(&m, &trained, &ids);
        assert!(loss.is_finite(), "{name}");
        for (n, g) in grads {
            assert_eq!(g.kind(), Kind::Float, "{name}: {n}");
            assert!(g.abs().max().double_value(&[]) > 0.0, "{name}: {n} learns nothing");
        }
        let other: Vec<Kind> = matrices_kind(&m, false).into_iter().map(|(_, k)| k).collect();
        assert!(!other.is_empty() && other.iter().all(|k| *k == Kind::BFloat16), "{name}: {other:?}");
    }
}
