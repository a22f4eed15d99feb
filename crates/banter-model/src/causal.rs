//! [`CausalLm`]: what every architecture file (`gpt2.rs`, `llama.rs`, `opt.rs`) provides, so that
//! [`crate::Lm`] holds any of them behind one interface: the weights and the adapter's, the vocabulary and
//! context, the matrices whose rows are tokens, the final hidden states and the output projection (which the
//! fused head in `head.rs` turns into a loss), logits, and `config.json`.

use tch::{Kind, Tensor, nn};

use crate::gpt2::Gpt2;
use crate::kvcache::KvCache;
use crate::llama::Llama;
use crate::lora::{LoraConfig, LoraTarget};
use crate::opt::Opt;

/// Settings of one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// Dropout on.
    pub train: bool,
    /// Matmul precision: `Kind::Float`, or `Kind::BFloat16` for bf16 compute with fp32 weights.
    pub compute: Kind,
}

impl Pass {
    /// Evaluation in fp32.
    pub fn eval() -> Self {
        Pass { train: false, compute: Kind::Float }
    }
}

/// A causal language model of one architecture; it decodes through the one KV cache ([`CachedLm`]).
pub trait CausalLm: crate::cached::CachedLm {
    /// `config.json`'s `model_type`.
    fn model_type(&self) -> &str;
    /// The base weights, under Hugging Face's names.
    fn vs(&self) -> &nn::VarStore;
    /// The LoRA weights (PEFT's names), when an adapter is attached.
    fn lora_vs(&self) -> Option<&nn::VarStore>;
    /// The LoRA settings, when an adapter is attached.
    fn lora_cfg(&self) -> Option<&LoraConfig>;
    /// Vocabulary size (rows of the token matrices).
    fn vocab_size(&self) -> i64;
    /// The longest context.
    fn n_positions(&self) -> i64;
    /// The matrices whose rows are tokens, by VarStore name: the input embeddings, and the output head when
    /// it is not tied to them.
    fn token_matrices(&self) -> Vec<(&'static str, Tensor)>;
    /// Final hidden states `[B, T, E]` of token ids `[B, T]` in `pass` (with autograd), no cache.
    fn hidden(&self, ids: &Tensor, pass: Pass) -> Tensor;
    /// The output projection's weight `[V, E]`: logits are `hidden · Wᵀ`.
    fn output_weight(&self) -> Tensor;
    /// A final soft cap `z = cap·tanh(u/cap)` on the logits (Gemma 2).
    fn logit_softcap(&self) -> Option<f64> {
        None
    }
    /// Logits `[B, T, V]` (fp32) of token ids `[B, T]`, no cache, no dropout.
    fn logits(&self, ids: &Tensor) -> Tensor;
    /// `config.json` as transformers reads it.
    fn config_json(&self) -> serde_json::Value;
    /// Every layer LoRA can adapt, with its module path as transformers names it.
    fn lora_layers_mut(&mut self) -> Vec<(String, &mut dyn LoraTarget)>;
    /// Sets (or, with `None`, drops) the adapter's weights and settings; attaching freezes the base weights.
    fn set_lora(&mut self, lora: Option<(nn::VarStore, LoraConfig)>);
}

/// The accessors every architecture has alike, over its `vs`, `lora_vs` and `lora_cfg` fields: the base and
/// adapter weights, and setting (or dropping) an adapter, which freezes the base weights.
macro_rules! weights_and_adapter {
    () => {
        fn vs(&self) -> &nn::VarStore {
            &self.vs
        }
        fn lora_vs(&self) -> Option<&nn::VarStore> {
            self.lora_vs.as_ref()
        }
        fn lora_cfg(&self) -> Option<&LoraConfig> {
            self.lora_cfg.as_ref()
        }
        fn set_lora(&mut self, lora: Option<(nn::VarStore, LoraConfig)>) {
            if lora.is_some() {
                self.vs.freeze();
            }
            (self.lora_vs, self.lora_cfg) = lora.map_or((None, None), |(vs, cfg)| (Some(vs), Some(cfg)));
        }
    };
}

impl CausalLm for Gpt2 {
    fn model_type(&self) -> &str {
        "gpt2"
    }
    weights_and_adapter!();
    fn vocab_size(&self) -> i64 {
        self.cfg.vocab_size
    }
    fn n_positions(&self) -> i64 {
        self.cfg.n_positions
    }
    fn token_matrices(&self) -> Vec<(&'static str, Tensor)> {
        vec![("transformer.wte.weight", self.wte.shallow_clone())]
    }
    fn hidden(&self, ids: &Tensor, pass: Pass) -> Tensor {
        Gpt2::hidden(self, ids, None, pass)
    }
    fn output_weight(&self) -> Tensor {
        self.wte.shallow_clone()
    }
    fn logits(&self, ids: &Tensor) -> Tensor {
        self.forward(ids, None, Pass::eval())
    }
    fn config_json(&self) -> serde_json::Value {
        self.cfg.to_hf_json()
    }
    fn lora_layers_mut(&mut self) -> Vec<(String, &mut dyn LoraTarget)> {
        self.conv_layers_mut().into_iter().map(|(p, l)| (p, l as &mut dyn LoraTarget)).collect()
    }
}

impl CausalLm for Llama {
    fn model_type(&self) -> &str {
        &self.cfg.model_type
    }
    weights_and_adapter!();
    fn vocab_size(&self) -> i64 {
        self.cfg.vocab_size
    }
    fn n_positions(&self) -> i64 {
        self.cfg.max_position_embeddings.unwrap_or(2048)
    }
    fn token_matrices(&self) -> Vec<(&'static str, Tensor)> {
        let mut v = vec![("model.embed_tokens.weight", self.embed.shallow_clone())];
        if let Some(h) = &self.head {
            v.push(("lm_head.weight", h.shallow_clone()));
        }
        v
    }
    fn hidden(&self, ids: &Tensor, pass: Pass) -> Tensor {
        self.hidden_pass(ids, &mut KvCache::default(), pass)
    }
    fn output_weight(&self) -> Tensor {
        Llama::output_weight(self).shallow_clone()
    }
    fn logit_softcap(&self) -> Option<f64> {
        self.cfg.final_logit_softcapping.filter(|_| self.cfg.is_gemma2())
    }
    fn logits(&self, ids: &Tensor) -> Tensor {
        self.forward(ids)
    }
    fn config_json(&self) -> serde_json::Value {
        crate::lm_config::llama_json(&self.cfg)
    }
    fn lora_layers_mut(&mut self) -> Vec<(String, &mut dyn LoraTarget)> {
        self.linears_mut().into_iter().map(|(p, l)| (p, l as &mut dyn LoraTarget)).collect()
    }
}

impl CausalLm for Opt {
    fn model_type(&self) -> &str {
        "opt"
    }
    weights_and_adapter!();
    fn vocab_size(&self) -> i64 {
        self.cfg.vocab_size
    }
    fn n_positions(&self) -> i64 {
        self.cfg.max_position_embeddings
    }
    fn token_matrices(&self) -> Vec<(&'static str, Tensor)> {
        vec![("model.decoder.embed_tokens.weight", self.embed.shallow_clone())]
    }
    fn hidden(&self, ids: &Tensor, pass: Pass) -> Tensor {
        self.hidden_pass(ids, &mut KvCache::default(), pass)
    }
    fn output_weight(&self) -> Tensor {
        self.embed.shallow_clone()
    }
    fn logits(&self, ids: &Tensor) -> Tensor {
        self.forward(ids)
    }
    fn config_json(&self) -> serde_json::Value {
        crate::lm_config::opt_json(&self.cfg)
    }
    fn lora_layers_mut(&mut self) -> Vec<(String, &mut dyn LoraTarget)> {
        self.linears_mut().into_iter().map(|(p, l)| (p, l as &mut dyn LoraTarget)).collect()
    }
}
