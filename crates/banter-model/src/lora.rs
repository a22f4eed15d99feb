//! LoRA as PEFT does it, one implementation for every layer kind ([`LoraTarget`]: GPT-2's Conv1D with
//! `fan_in_fan_out: true`, the Hub families' Linear with `false`): per targeted layer
//! `A [r, in]` ~ U(−1/√in, 1/√in) (kaiming-uniform with a = √5) and `B [out, r]` = 0, output
//! `x·W + b + dropout(x)·Aᵀ·Bᵀ · alpha/r`. The LoRA weights live in their own VarStore under PEFT's names
//! (`base_model.model.transformer.h.0.attn.c_attn.lora_A.weight`), so saving it writes an
//! `adapter_model.safetensors` that `PeftModel.from_pretrained` loads.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

/// LoRA settings (defaults: Asimbot's r 8, alpha 16, dropout 0.05 on c_attn and c_proj).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank.
    pub r: i64,
    /// Scale numerator: the update is multiplied by alpha / r.
    pub alpha: f64,
    /// Dropout on the LoRA branch's input.
    pub dropout: f64,
    /// Module name suffixes to adapt (PEFT matching: `c_proj` adapts attn.c_proj and mlp.c_proj).
    pub targets: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig { r: 8, alpha: 16.0, dropout: 0.05, targets: vec!["c_attn".into(), "c_proj".into()] }
    }
}

impl LoraConfig {
    /// alpha / r.
    pub fn scaling(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// PEFT's `adapter_config.json` for GPT-2's Conv1D layers (`fan_in_fan_out: true`).
    pub fn to_peft_json(&self, base: &str, modules_to_save: Option<Vec<String>>) -> serde_json::Value {
        self.to_peft_json_for(base, modules_to_save, true)
    }

    /// PEFT's `adapter_config.json`; `fan_in_fan_out` is true for Conv1D (GPT-2), false for Linear layers.
    pub fn to_peft_json_for(
        &self,
        base: &str,
        modules_to_save: Option<Vec<String>>,
        fan_in_fan_out: bool,
    ) -> serde_json::Value {
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.targets,
            "bias": "none",
            "fan_in_fan_out": fan_in_fan_out,
            "base_model_name_or_path": base,
            "inference_mode": true,
            "init_lora_weights": true,
            "use_rslora": false,
            "use_dora": false,
            "modules_to_save": modules_to_save,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
            "revision": null,
            "library_name": "banter",
        })
    }

    /// Reads PEFT's `adapter_config.json`.
    pub fn from_peft_json(v: &serde_json::Value) -> Result<Self, String> {
        if v["peft_type"].as_str() != Some("LORA") {
            return Err(format!("peft_type {} is not LORA", v["peft_type"]));
        }
        if v["use_dora"].as_bool() == Some(true) || v["use_rslora"].as_bool() == Some(true) {
            return Err("DoRA and rsLoRA adapters are not supported".into());
        }
        let targets = match &v["target_modules"] {
            serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => return Err("target_modules is missing".into()),
        };
        Ok(LoraConfig {
            r: v["r"].as_i64().ok_or("r is missing")?,
            alpha: v["lora_alpha"].as_f64().ok_or("lora_alpha is missing")?,
            dropout: v["lora_dropout"].as_f64().unwrap_or(0.0),
            targets,
        })
    }

    /// True when a module path (`transformer.h.0.attn.c_proj`) is targeted.
    pub fn targets_module(&self, path: &str) -> bool {
        self.targets.iter().any(|t| path == t || path.ends_with(&format!(".{t}")))
    }
}

/// The A/B pair on one layer.
#[derive(Debug)]
pub struct LoraPair {
    /// `[r, in]`.
    pub a: Tensor,
    /// `[out, r]`.
    pub b: Tensor,
    /// alpha / r.
    pub scaling: f64,
    /// Dropout on the branch input.
    pub dropout: f64,
}

impl LoraPair {
    /// A fresh pair under `p` (`p/lora_A/weight`, `p/lora_B/weight`) as PEFT initialises it:
    /// `A` kaiming-uniform (a = √5, i.e. U(−1/√in, 1/√in)), `B` zero.
    pub fn fresh(p: &nn::Path<'_>, n_in: i64, n_out: i64, cfg: &LoraConfig) -> Self {
        let bound = 1.0 / (n_in as f64).sqrt();
        let a = p.sub("lora_A").var("weight", &[cfg.r, n_in], Init::Uniform { lo: -bound, up: bound });
        let b = p.sub("lora_B").var("weight", &[n_out, cfg.r], Init::Const(0.0));
        LoraPair { a, b, scaling: cfg.scaling(), dropout: cfg.dropout }
    }

    /// `out + dropout(x)·Aᵀ·Bᵀ·scaling` for a base layer's fresh 2-D output `out` `[rows, out]`, in `compute`
    /// (fp32, or bf16 as PEFT's branch runs under autocast). `xc` is `x` `[rows, in]` already cast to
    /// `compute` by the base layer: the branch reuses it unless dropout applies (dropout acts on `x` before
    /// the cast, as in PEFT). The scaling goes on the `[rows, r]` product and the second product is added by GEMM
    /// itself (`addmm_`, β = 1), so the branch makes no pass over `[rows, out]` of its own, forward or
    /// backward (the scaled sum and the addition were three). `out` must not be saved by any backward
    /// function (the result of a GEMM or a bias add is not); when its kind differs from `compute` the
    /// branch's second product is made in `out`'s kind.
    pub fn add_to(&self, out: Tensor, x: &Tensor, xc: Option<&Tensor>, compute: Kind, train: bool) -> Tensor {
        let k = out.kind();
        let down = self.down(x, xc, compute, train);
        let mut out = out;
        let _ = out.addmm_(&down.to_kind(k), &self.b.to_kind(k).tr());
        out
    }

    /// `dropout(x)·Aᵀ·scaling` in `compute`: the branch's `[rows, r]` first product.
    fn down(&self, x: &Tensor, xc: Option<&Tensor>, compute: Kind, train: bool) -> Tensor {
        let dropped = train && self.dropout > 0.0;
        let x = crate::dropout::dropout(x, self.dropout, train);
        let xin = match xc {
            Some(c) if !dropped && c.kind() == compute => c.shallow_clone(),
            _ => x.to_kind(compute),
        };
        xin.matmul(&self.a.to_kind(compute).tr()) * self.scaling
    }
}

/// A layer LoRA can adapt: a weight of `n_in` inputs and `n_out` outputs (stored `[out, in]` by a Linear,
/// `[in, out]` by a Conv1D) and a slot for its pair.
pub trait LoraTarget {
    /// Inputs and outputs of the layer.
    fn in_out(&self) -> (i64, i64);
    /// The layer's LoRA pair.
    fn lora_slot(&mut self) -> &mut Option<LoraPair>;
    /// Adds `delta` (`[out, in]`) to the weight, in the layer's own layout.
    fn add_to_weight(&mut self, delta: &Tensor);
}

/// Attaches fresh pairs (PEFT's init) to the targeted layers of `layers` (module paths as transformers names
/// them: `model.layers.0.self_attn.q_proj`, `transformer.h.0.attn.c_attn`) in a new VarStore under PEFT's
/// names (`base_model.model.<path>.lora_A.weight`). Returns the store and how many layers were adapted.
pub fn attach(
    layers: Vec<(String, &mut dyn LoraTarget)>,
    cfg: &LoraConfig,
    device: tch::Device,
) -> (nn::VarStore, usize) {
    let vs = nn::VarStore::new(device);
    let root = vs.root().sub("base_model").sub("model");
    let mut n = 0;
    for (path, layer) in layers {
        if !cfg.targets_module(&path) {
            continue;
        }
        let p = path.split('.').fold(root.clone(), |p, part| p.sub(part));
        let (n_in, n_out) = layer.in_out();
        *layer.lora_slot() = Some(LoraPair::fresh(&p, n_in, n_out, cfg));
        n += 1;
    }
    (vs, n)
}

/// Folds each layer's pair into its weight (`W += B·A·scaling`, in the layer's layout) and drops it.
pub fn merge(layers: Vec<(String, &mut dyn LoraTarget)>) {
    let _g = tch::no_grad_guard();
    for (_, layer) in layers {
        if let Some(l) = layer.lora_slot().take() {
            layer.add_to_weight(&(l.b.matmul(&l.a) * l.scaling));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pass;
    use crate::config::Gpt2Config;
    use crate::gpt2::Gpt2;

    #[test]
    fn fresh_lora_changes_nothing_and_merging_keeps_outputs() {
        tch::manual_seed(3);
        let mut c = Gpt2Config::new(40, 16, 16, 2, 2);
        c.attn_pdrop = 0.0;
        c.resid_pdrop = 0.0;
        c.embd_pdrop = 0.0;
        let mut m = Gpt2::new(c, tch::Device::Cpu);
        let ids = Tensor::from_slice(&[1i64, 2, 3, 4]).view([1, 4]);
        let before = m.forward(&ids, None, Pass::eval());
        let cfg = LoraConfig { dropout: 0.0, ..Default::default() };
        assert_eq!(m.attach_lora(&cfg), 6); // 2 layers × (c_attn, attn.c_proj, mlp.c_proj)
        let after = m.forward(&ids, None, Pass::eval());
        assert!(before.allclose(&after, 1e-6, 1e-6, false), "B = 0: no change");
        // Train-like change of B, then merge: same logits without the branch.
        {
            let _g = tch::no_grad_guard();
            for (_, l) in m.conv_layers_mut() {
                if let Some(p) = &mut l.lora {
                    let _ = p.b.uniform_(-0.1, 0.1);
                }
            }
        }
        let adapted = m.forward(&ids, None, Pass::eval());
        assert!(!adapted.allclose(&before, 1e-4, 1e-4, false));
        m.merge_lora();
        let merged = m.forward(&ids, None, Pass::eval());
        assert!(adapted.allclose(&merged, 1e-4, 1e-5, false));
        let names: Vec<String> = m.vs.variables().keys().cloned().collect();
        assert!(names.iter().all(|n| !n.contains("lora")));
    }

    #[test]
    fn peft_names_and_matching() {
        let cfg = LoraConfig::default();
        assert!(cfg.targets_module("transformer.h.0.attn.c_attn"));
        assert!(cfg.targets_module("transformer.h.0.mlp.c_proj"));
        assert!(!cfg.targets_module("transformer.h.0.mlp.c_fc"));
        let j = cfg.to_peft_json("gpt2", None);
        assert_eq!(LoraConfig::from_peft_json(&j).unwrap(), cfg);
        tch::manual_seed(1);
        let mut m = Gpt2::new(Gpt2Config::new(40, 16, 16, 1, 2), tch::Device::Cpu);
        m.attach_lora(&cfg);
        let names: Vec<String> = m.lora_vs.as_ref().unwrap().variables().keys().cloned().collect();
        assert!(names.contains(&"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight".to_string()), "{names:?}");
        let a = &m.lora_vs.as_ref().unwrap().variables()["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"];
        assert_eq!(a.size(), vec![8, 16]);
        assert!(a.abs().max().double_value(&[]) <= 0.25 + 1e-6);
    }
}
