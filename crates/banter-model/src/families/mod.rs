//! What each family *is*, in one table: parsed once from `config.json`'s `model_type`, read by the loader,
//! the trainer (dropout key, LoRA targets), config writing (the transformers class), and the exporters
//! (llama.cpp's architecture and what its converter does to the tensors).
//!
//! Adding a Llama-like family is a row here and its differences in `llama.rs` / `llama_config.rs` (see
//! docs/architecture.md, "Adding a family").

use serde_json::{Value, json};

pub mod gpt2;
pub mod llama;
pub(crate) mod llama_config;
pub mod opt;

/// The implementation a family runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// `gpt2.rs`: Conv1D layers, learned positions, its own Rust decoder.
    Gpt2,
    /// `llama.rs`: RoPE, RMSNorm, gated MLPs, grouped-query attention, configured per family.
    Llama,
    /// `opt.rs`: learned positions with an offset, LayerNorm, ReLU.
    Opt,
}

/// One family.
#[derive(Debug)]
pub struct Family {
    /// `config.json`'s `model_type`.
    pub model_type: &'static str,
    /// The transformers class written in `architectures`.
    pub hf_class: &'static str,
    /// The implementation.
    pub stack: Stack,
    /// llama.cpp's architecture (`None`: llama.cpp has none, GGUF export is refused).
    pub gguf_arch: Option<&'static str>,
    /// llama.cpp's `llama` architecture interleaves RoPE pairs: q/k rows are permuted on the way out.
    pub gguf_permute_qk: bool,
    /// RMSNorm weights are stored as `w` and computed as `1 + w` (Gemma): GGUF stores `1 + w`.
    pub norm_plus_one: bool,
    /// The config key `--dropout` sets on a model from scratch.
    pub dropout_key: &'static str,
    /// LoRA's default target modules (PEFT's table; Phi-3 has none there, its fused `qkv_proj` is adapted).
    pub lora_targets: &'static [&'static str],
    /// transformers' class defaults for keys a hand-written config may leave out, as JSON.
    pub defaults: &'static [(&'static str, &'static str)],
}

const QV: &[&str] = &["q_proj", "v_proj"];

/// Every family banter loads, trains, serves and exports.
pub const FAMILIES: &[Family] = &[
    Family {
        model_type: "gpt2",
        hf_class: "GPT2LMHeadModel",
        stack: Stack::Gpt2,
        gguf_arch: Some("gpt2"),
        gguf_permute_qk: false,
        norm_plus_one: false,
        dropout_key: "resid_pdrop",
        lora_targets: &["c_attn", "c_proj"],
        defaults: &[],
    },
    llama_like("llama", "LlamaForCausalLM", "llama", true, &[]),
    llama_like("mistral", "MistralForCausalLM", "llama", true, &[("sliding_window", "4096")]),
    llama_like("qwen2", "Qwen2ForCausalLM", "qwen2", false, &[]),
    llama_like("qwen3", "Qwen3ForCausalLM", "qwen3", false, &[("head_dim", "128")]),
    Family {
        lora_targets: &["qkv_proj"],
        ..llama_like("phi3", "Phi3ForCausalLM", "phi3", false, &[("rms_norm_eps", "1e-5")])
    },
    Family {
        norm_plus_one: true,
        ..llama_like("gemma", "GemmaForCausalLM", "gemma", false, &[("tie_word_embeddings", "true")])
    },
    Family {
        norm_plus_one: true,
        ..llama_like(
            "gemma2",
            "Gemma2ForCausalLM",
            "gemma2",
            false,
            &[
                ("tie_word_embeddings", "true"),
                ("query_pre_attn_scalar", "256"),
                ("attn_logit_softcapping", "50.0"),
                ("final_logit_softcapping", "30.0"),
                ("sliding_window", "4096"),
            ],
        )
    },
    Family {
        model_type: "opt",
        hf_class: "OPTForCausalLM",
        stack: Stack::Opt,
        gguf_arch: None,
        gguf_permute_qk: false,
        norm_plus_one: false,
        dropout_key: "dropout",
        lora_targets: QV,
        defaults: &[],
    },
];

const fn llama_like(
    model_type: &'static str,
    hf_class: &'static str,
    gguf_arch: &'static str,
    gguf_permute_qk: bool,
    defaults: &'static [(&'static str, &'static str)],
) -> Family {
    Family {
        model_type,
        hf_class,
        stack: Stack::Llama,
        gguf_arch: Some(gguf_arch),
        gguf_permute_qk,
        norm_plus_one: false,
        dropout_key: "attention_dropout",
        lora_targets: QV,
        defaults,
    }
}

/// The family of a `model_type`.
pub fn family(model_type: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.model_type == model_type)
}

/// The `model_type`s banter supports, for messages.
pub fn model_types() -> Vec<&'static str> {
    FAMILIES.iter().map(|f| f.model_type).collect()
}

impl Family {
    /// Fills the class defaults into a config object (keys it already has are kept).
    pub fn fill_defaults(&self, config: &mut serde_json::Map<String, Value>) {
        for (k, v) in self.defaults {
            config.entry(*k).or_insert_with(|| serde_json::from_str(v).unwrap_or_else(|_| json!(v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_unique_and_its_defaults_parse() {
        let mut seen = std::collections::HashSet::new();
        for f in FAMILIES {
            assert!(seen.insert(f.model_type), "{} twice", f.model_type);
            for (k, v) in f.defaults {
                assert!(serde_json::from_str::<Value>(v).is_ok(), "{}: {k} = {v}", f.model_type);
            }
        }
        assert_eq!(family("phi3").unwrap().lora_targets, ["qkv_proj"]);
        assert!(family("opt").unwrap().gguf_arch.is_none());
        assert!(family("bert").is_none());
    }
}
