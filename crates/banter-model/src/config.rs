//! GPT-2 configuration: the fields of Hugging Face's `GPT2Config`, read from and written to `config.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A GPT-2 model's shape and hyper-parameters (Hugging Face field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Context length.
    pub n_positions: i64,
    /// Embedding width.
    pub n_embd: i64,
    /// Layers.
    pub n_layer: i64,
    /// Attention heads.
    pub n_head: i64,
    /// MLP width (default 4 × n_embd).
    #[serde(default)]
    pub n_inner: Option<i64>,
    /// `gelu_new` (tanh approximation) as GPT-2.
    #[serde(default = "default_act")]
    pub activation_function: String,
    /// Dropout after the residual projections.
    #[serde(default = "default_pdrop")]
    pub resid_pdrop: f64,
    /// Dropout on the embeddings.
    #[serde(default = "default_pdrop")]
    pub embd_pdrop: f64,
    /// Dropout on the attention weights.
    #[serde(default = "default_pdrop")]
    pub attn_pdrop: f64,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Std of the normal init.
    #[serde(default = "default_init")]
    pub initializer_range: f64,
    /// BOS id.
    #[serde(default)]
    pub bos_token_id: Option<i64>,
    /// EOS id.
    #[serde(default)]
    pub eos_token_id: Option<i64>,
    /// Scale attention by 1/√head_dim (always true for GPT-2).
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    /// Tied input/output embeddings (always true for GPT-2).
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

fn default_act() -> String {
    "gelu_new".into()
}
fn default_pdrop() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-5
}
fn default_init() -> f64 {
    0.02
}
fn default_true() -> bool {
    true
}

impl Gpt2Config {
    /// A config of a given shape with GPT-2's defaults for the rest.
    pub fn new(vocab_size: i64, n_positions: i64, n_embd: i64, n_layer: i64, n_head: i64) -> Self {
        Gpt2Config {
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            n_inner: None,
            activation_function: default_act(),
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            bos_token_id: None,
            eos_token_id: None,
            scale_attn_weights: true,
            tie_word_embeddings: true,
        }
    }

    /// Presets for `--init scratch --config`: `tiny` (nanoGPT's CPU baby GPT: 4 × 128, 4 heads, 256
    /// positions), `small` (6 × 384, 6 heads, 512 positions), `gpt2` (the 124M shape).
    pub fn preset(name: &str, vocab_size: i64) -> Option<Self> {
        let (p, e, l, h) = match name {
            "tiny" => (256, 128, 4, 4),
            "small" => (512, 384, 6, 6),
            "gpt2" => (1024, 768, 12, 12),
            _ => return None,
        };
        Some(Self::new(vocab_size, p, e, l, h))
    }

    /// MLP width.
    pub fn inner(&self) -> i64 {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Checks the shape.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.n_embd <= 0 || self.n_layer <= 0 || self.n_head <= 0 || self.vocab_size <= 0 || self.n_positions <= 0 {
            return bad("n_embd, n_layer, n_head, vocab_size and n_positions must be positive".into());
        }
        if self.n_embd % self.n_head != 0 {
            return bad(format!("n_embd ({}) must be a multiple of n_head ({})", self.n_embd, self.n_head));
        }
        if !matches!(self.activation_function.as_str(), "gelu_new" | "gelu_pytorch_tanh" | "gelu") {
            return bad(format!(
                "activation_function \"{}\" is not supported (gelu_new, gelu)",
                self.activation_function
            ));
        }
        Ok(())
    }

    /// Reads a Hugging Face `config.json` (other model types are refused).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        Self::from_value(v, &path.display().to_string())
    }

    /// A config from JSON (`source` names it in errors; other model types are refused).
    pub fn from_value(v: serde_json::Value, source: &str) -> Result<Self, ModelError> {
        if let Some(t) = v.get("model_type").and_then(|t| t.as_str())
            && t != "gpt2"
        {
            return Err(ModelError::Config(format!("{source}: model_type \"{t}\": banter trains GPT-2 models")));
        }
        let c: Gpt2Config = serde_json::from_value(v).map_err(|e| ModelError::Config(format!("{source}: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// The `config.json` Hugging Face's `AutoModelForCausalLM` loads.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("model_type".into(), "gpt2".into());
            m.insert("architectures".into(), serde_json::json!(["GPT2LMHeadModel"]));
            m.insert("n_ctx".into(), self.n_positions.into());
            m.insert("summary_type".into(), "cls_index".into());
            m.insert("use_cache".into(), true.into());
            m.insert("torch_dtype".into(), "float32".into());
        }
        v
    }
}
