//! Checkpointed steps against plain ones (no dropout here: libtorch's generator is shared by tests running
//! in parallel; the CLI tests check dropout through the binary, one process per run).

use tch::{Device, Kind, Tensor};

use crate::{Lm, Pass};

fn grads(m: &Lm) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = m
        .net()
        .vs()
        .variables()
        .into_iter()
        .chain(m.net().lora_vs().map(|l| l.variables()).unwrap_or_default())
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, t)| (n, t.grad().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn zero(m: &Lm) {
    for (_, t) in
        m.net().vs().variables().into_iter().chain(m.net().lora_vs().map(|l| l.variables()).unwrap_or_default())
    {
        let mut g = t.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

/// Same loss, token count and gradients (every learning tensor) with and without checkpointing.
fn same_step(m: &Lm, what: &str) {
    let v = m.vocab_size();
    let ids = Tensor::randint(v, [2, 9], (Kind::Int64, Device::Cpu));
    let labels = ids.copy();
    let _ = labels.narrow(1, 0, 3).fill_(-100);
    let pass = Pass { train: true, compute: Kind::Float };
    zero(m);
    let (l1, n1) = m.loss_backward(&ids, &labels, pass, 0.5);
    let g1 = grads(m);
    zero(m);
    let (l2, n2) = m.loss_backward_checkpointed(&ids, &labels, pass, 0.5);
    let g2 = grads(m);
    assert_eq!(n1, n2, "{what}");
    assert!((l1 - l2).abs() < 1e-6, "{what}: loss {l1} vs {l2}");
    assert!(!g1.is_empty());
    for ((n, a), (_, b)) in g1.iter().zip(&g2) {
        assert!(a.defined() && b.defined(), "{what}: {n} has no gradient");
        let d = (a - b).abs().max().double_value(&[]);
        let s = a.abs().max().double_value(&[]);
        assert!(s > 0.0, "{what}: {n} gradient is zero");
        assert!(d <= 1e-5 * s.max(1.0), "{what}: {n} differs by {d} (scale {s})");
    }
}

fn hub(cfg: serde_json::Value) -> Lm {
    tch::manual_seed(3);
    let t = cfg["model_type"].as_str().unwrap().to_string();
    let m = if t == "opt" {
        Lm::Opt(crate::opt::Opt::new(crate::opt::OptConfig::from_value(cfg, "test").unwrap(), Device::Cpu))
    } else {
        Lm::Llama(crate::llama::Llama::new(crate::llama::LlamaConfig::from_value(cfg, "test").unwrap(), Device::Cpu))
    };
    let _g = tch::no_grad_guard();
    for v in m.net().vs().variables().values() {
        let _ = v.shallow_clone().normal_(0.0, 0.3);
    }
    m
}

#[test]
fn checkpointed_steps_equal_plain_steps_in_every_family_full_and_lora() {
    let llama = serde_json::json!({"vocab_size": 40, "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64});
    let mut models = vec![("gpt2", Lm::Gpt2(crate::gpt2::test_model(2, crate::Gpt2Config::new(50, 32, 16, 3, 2))))];
    for extra in [
        serde_json::json!({"model_type": "llama"}),
        serde_json::json!({"model_type": "gemma2", "head_dim": 8, "sliding_window": 4, "query_pre_attn_scalar": 8,
            "final_logit_softcapping": 30.0}),
    ] {
        let mut cfg = llama.clone();
        cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        models.push((if extra["model_type"] == "llama" { "llama" } else { "gemma2" }, hub(cfg)));
    }
    models.push((
        "opt",
        hub(serde_json::json!({"model_type": "opt", "vocab_size": 40, "hidden_size": 32, "ffn_dim": 48,
            "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64,
            "dropout": 0.0, "attention_dropout": 0.0})),
    ));
    for (name, mut m) in models {
        same_step(&m, name);
        let targets = m.family().lora_targets.iter().map(|t| t.to_string()).collect();
        assert!(m.attach_lora(&crate::LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, targets }) > 0);
        {
            let _g = tch::no_grad_guard();
            for v in m.net().lora_vs().unwrap().variables().values() {
                let _ = v.shallow_clone().normal_(0.0, 0.2);
            }
        }
        same_step(&m, &format!("{name} + LoRA"));
    }
}
