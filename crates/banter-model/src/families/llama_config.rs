//! A Llama-family `config.json` (Llama, SmolLM, Mistral, Qwen2, Qwen3, Phi-3, Gemma, Gemma 2): reading, checking, the
//! defaults transformers gives keys a config leaves out, and the values the model computes with.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// `rope_scaling` of config.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RopeScaling {
    /// `default`, `linear` or `llama3` (`type` in older configs).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// The scaling factor.
    #[serde(default = "one")]
    pub factor: f64,
    /// llama3: wavelengths longer than `original_max_position_embeddings / low_freq_factor` are scaled.
    #[serde(default = "one")]
    pub low_freq_factor: f64,
    /// llama3: wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are kept.
    #[serde(default = "four")]
    pub high_freq_factor: f64,
    /// llama3: the context the model was trained with.
    #[serde(default)]
    pub original_max_position_embeddings: Option<f64>,
}

fn one() -> f64 {
    1.0
}
fn four() -> f64 {
    4.0
}
fn theta() -> f64 {
    10_000.0
}
fn eps() -> f64 {
    1e-6
}

/// A Llama-family `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// A family of the Llama stack ([`crate::families`]).
    pub model_type: String,
    /// The MLP's gate activation: `silu` (Llama), `gelu_pytorch_tanh` (Gemma).
    #[serde(default, alias = "hidden_activation")]
    pub hidden_act: Option<String>,
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Model width.
    pub hidden_size: i64,
    /// SwiGLU width.
    pub intermediate_size: i64,
    /// Blocks.
    pub num_hidden_layers: i64,
    /// Query heads.
    pub num_attention_heads: i64,
    /// Key/value heads (grouped-query attention; default: as many as query heads).
    #[serde(default)]
    pub num_key_value_heads: Option<i64>,
    /// Head width (default hidden / heads).
    #[serde(default)]
    pub head_dim: Option<i64>,
    /// RMSNorm epsilon.
    #[serde(default = "eps")]
    pub rms_norm_eps: f64,
    /// RoPE base.
    #[serde(default = "theta")]
    pub rope_theta: f64,
    /// RoPE scaling (configs before transformers 5).
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers 5's `rope_parameters`: `rope_theta` and the scaling in one object.
    #[serde(default, skip_serializing)]
    pub rope_parameters: Option<serde_json::Value>,
    /// The share of each head's dimensions RoPE rotates (Phi-3 family; default all).
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// The LM head shares the embeddings.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v/o (Llama's flag); Qwen2 always has q/k/v biases.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Longest context.
    #[serde(default)]
    pub max_position_embeddings: Option<i64>,
    /// A sliding window (Mistral): refused when set, it is not implemented.
    #[serde(default)]
    pub sliding_window: Option<i64>,
    /// Qwen2's switch for its window.
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Gemma 2: `sliding_attention` or `full_attention` per layer (default: alternating, sliding first).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Gemma 2: attention scores are scaled by `query_pre_attn_scalar^-0.5`.
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2: attention scores are soft-capped at this value (`tanh(s / c) · c`).
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma 2: the logits are soft-capped at this value.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// Dropout on the attention probabilities while training (transformers' `attention_dropout`).
    #[serde(default)]
    pub attention_dropout: f64,
    /// Every other key of config.json (token ids, dtype, …), written back as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl LlamaConfig {
    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let v = serde_json::from_str(&text).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        Self::from_value(v, &path.display().to_string())
    }

    /// Reads and checks a config given as JSON (`what` names it in errors: a path or `--config`).
    pub fn from_value(mut v: serde_json::Value, what: &str) -> Result<Self, ModelError> {
        // transformers' class defaults for keys a hand-written config may leave out.
        let mt = v["model_type"].as_str().unwrap_or_default().to_string();
        if let Some(m) = v.as_object_mut() {
            if let Some(f) = crate::families::family(&mt) {
                f.fill_defaults(m);
            }
            // Gemma's key is `hidden_activation`; a config with both (banter wrote both before) keeps it.
            if let Some(a) = m.remove("hidden_activation").filter(|a| !a.is_null()) {
                m.insert("hidden_act".into(), a);
            }
        }
        let path = std::path::PathBuf::from(what);
        let path = path.as_path();
        let mut c: LlamaConfig =
            serde_json::from_value(v).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        let bad = |m: String| Err(ModelError::Config(format!("{}: {m}", path.display())));
        if let Some(p) = c.rope_parameters.take() {
            if let Some(t) = p.get("rope_theta").and_then(|t| t.as_f64()) {
                c.rope_theta = t;
            }
            if let Some(f) = p.get("partial_rotary_factor").and_then(|t| t.as_f64()) {
                c.partial_rotary_factor = Some(f);
            }
            if p.get("rope_type").and_then(|t| t.as_str()).is_some_and(|t| t != "default") {
                c.rope_scaling = Some(
                    serde_json::from_value(p)
                        .map_err(|e| ModelError::Config(format!("{}: rope_parameters: {e}", path.display())))?,
                );
            }
        }
        if c.is_gemma() && c.hidden_act.as_deref().is_none_or(|a| a == "gelu") {
            // Gemma's configs say "gelu" but the model computes the tanh approximation.
            c.hidden_act = Some("gelu_pytorch_tanh".into());
        }
        if !matches!(c.hidden_act.as_deref().unwrap_or("silu"), "silu" | "gelu_pytorch_tanh") {
            return bad(format!("hidden_act {:?} is not supported (silu, gelu_pytorch_tanh)", c.hidden_act));
        }
        if crate::families::family(&c.model_type).is_none_or(|f| f.stack != crate::families::Stack::Llama) {
            return bad(format!("model_type {:?} is not a Llama-family model", c.model_type));
        }
        if matches!(c.model_type.as_str(), "qwen2" | "qwen3") && c.use_sliding_window && c.sliding_window.is_some() {
            return bad(format!("{}'s sliding-window layers are not supported", c.model_type));
        }
        if c.partial_rotary_factor.is_some_and(|f| !(f > 0.0 && f <= 1.0) || c.rotary_dim() % 2 != 0) {
            return bad(format!("partial_rotary_factor {:?} must give an even rotary width", c.partial_rotary_factor));
        }
        if c.num_attention_heads <= 0 || c.num_attention_heads % c.kv_heads() != 0 {
            return bad("num_attention_heads must be a positive multiple of num_key_value_heads".into());
        }
        if let Some(s) = &c.rope_scaling
            && !matches!(s.rope_type.as_str(), "default" | "linear" | "llama3")
        {
            return bad(format!("rope_scaling type {:?} is not supported (default, linear, llama3)", s.rope_type));
        }
        Ok(c)
    }

    /// Gemma or Gemma 2.
    pub fn is_gemma(&self) -> bool {
        self.model_type.starts_with("gemma")
    }

    /// Gemma 2.
    pub fn is_gemma2(&self) -> bool {
        self.model_type == "gemma2"
    }

    /// Qwen3: RMSNorm over each head of the queries and keys, before RoPE.
    pub fn has_qk_norm(&self) -> bool {
        self.model_type == "qwen3"
    }

    /// Phi-3: one `qkv_proj` and one `gate_up_proj` instead of q/k/v and gate/up.
    pub fn fused_projections(&self) -> bool {
        self.model_type == "phi3"
    }

    /// Biases on q/k/v: Llama's `attention_bias`, always on Qwen2.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.model_type == "qwen2"
    }

    /// The dimensions of each head RoPE rotates (all, unless `partial_rotary_factor` says fewer).
    pub fn rotary_dim(&self) -> i64 {
        match self.partial_rotary_factor {
            Some(f) => (self.head_dim() as f64 * f) as i64,
            None => self.head_dim(),
        }
    }

    /// The attention window of layer `i`, when it slides: every Mistral and Phi-3 layer; Gemma 2's sliding ones.
    pub fn window(&self, i: usize) -> Option<i64> {
        if matches!(self.model_type.as_str(), "mistral" | "phi3") {
            return self.sliding_window;
        }
        if !self.is_gemma2() {
            return None;
        }
        let sliding = match &self.layer_types {
            Some(t) => t.get(i).is_some_and(|x| x == "sliding_attention"),
            None => i.is_multiple_of(2),
        };
        sliding.then_some(self.sliding_window.unwrap_or(4096))
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> i64 {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads).max(1)
    }

    /// Head width.
    pub fn head_dim(&self) -> i64 {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// RoPE inverse frequencies, scaled as `rope_scaling` says.
    pub fn inv_freq(&self) -> Vec<f64> {
        let d = self.rotary_dim();
        let base: Vec<f64> = (0..d / 2).map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d as f64)).collect();
        let Some(s) = &self.rope_scaling else { return base };
        match s.rope_type.as_str() {
            "linear" => base.iter().map(|f| f / s.factor).collect(),
            "llama3" => {
                let old = s.original_max_position_embeddings.unwrap_or(8192.0);
                let (low, high) = (old / s.low_freq_factor, old / s.high_freq_factor);
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high {
                            f
                        } else if wavelen > low {
                            f / s.factor
                        } else {
                            let smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                            (1.0 - smooth) * f / s.factor + smooth * f
                        }
                    })
                    .collect()
            }
            _ => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gemma_config_with_both_activation_keys_loads() {
        // banter writes `hidden_act` and Gemma's `hidden_activation`; reading its own output back must work.
        let v = serde_json::json!({"model_type": "gemma", "vocab_size": 8, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "hidden_act": "gelu_pytorch_tanh",
            "hidden_activation": "gelu_pytorch_tanh"});
        let c = LlamaConfig::from_value(v, "config.json").unwrap();
        assert_eq!(c.hidden_act.as_deref(), Some("gelu_pytorch_tanh"));
    }
}
