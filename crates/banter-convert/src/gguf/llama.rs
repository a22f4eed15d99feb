//! The Llama-like families in GGUF, over banter's typed [`LlamaConfig`]:
//! - Llama and Mistral (llama.cpp's `llama`): q/k rows permuted from Hugging Face's rotate-half RoPE layout
//!   to llama.cpp's interleaved one (the family table's `gguf_permute_qk`);
//! - Gemma, Gemma 2: RMSNorm weights stored as `w + 1` (Hugging Face keeps `w`; the table's `norm_plus_one`);
//! - Qwen2, Qwen3 and Phi-3 rotate halves as Hugging Face does (llama.cpp's NEOX RoPE): no permutation; Qwen3's
//!   per-head norms become `attn_q_norm`/`attn_k_norm`, Phi-3's fused `qkv_proj` and `gate_up_proj` stay fused
//!   as `attn_qkv` and `ffn_up` (gate half first, as llama.cpp's fused SwiGLU reads it).

use tch::Tensor;

use banter_model::families::Family;
use banter_model::llama::LlamaConfig;

use super::writer::Value;

/// The hyper-parameters under llama.cpp's keys for `arch` (`k` adds the prefix): the values banter computes
/// with, defaults included.
pub(super) fn metadata(arch: &str, k: &dyn Fn(&str) -> String, c: &LlamaConfig) -> Vec<(String, Value)> {
    let u = |x: i64| Value::U32(x as u32);
    let f = |x: f64| Value::F32(x as f32);
    let (e, heads, hd) = (c.hidden_size, c.num_attention_heads, c.head_dim());
    let mut m = vec![
        (k("context_length"), u(c.max_position_embeddings.unwrap_or(2048))),
        (k("embedding_length"), u(e)),
        (k("block_count"), u(c.num_hidden_layers)),
        (k("feed_forward_length"), u(c.intermediate_size)),
        (k("attention.head_count"), u(heads)),
        (k("attention.head_count_kv"), u(c.kv_heads())),
        (k("attention.layer_norm_rms_epsilon"), f(c.rms_norm_eps)),
        (k("rope.freq_base"), f(c.rope_theta)),
    ];
    if arch == "llama" {
        m.push((k("vocab_size"), u(c.vocab_size)));
        m.push((k("rope.dimension_count"), u(hd)));
    }
    if arch == "phi3" {
        m.push((k("rope.dimension_count"), u(c.rotary_dim())));
        if let Some(w) = c.sliding_window {
            m.push((k("attention.sliding_window"), u(w)));
        }
    }
    if arch == "llama" || arch == "qwen3" || arch.starts_with("gemma") || hd != e / heads {
        m.push((k("attention.key_length"), u(hd)));
        m.push((k("attention.value_length"), u(hd)));
    }
    if let Some(s) = c.rope_scaling.as_ref().filter(|s| s.rope_type == "linear") {
        m.push((k("rope.scaling.type"), Value::Str("linear".into())));
        m.push((k("rope.scaling.factor"), f(s.factor)));
    }
    if c.is_gemma2() {
        m.push((k("attn_logit_softcapping"), f(c.attn_logit_softcapping.unwrap_or(50.0))));
        m.push((k("final_logit_softcapping"), f(c.final_logit_softcapping.unwrap_or(30.0))));
        m.push((k("attention.sliding_window"), u(c.sliding_window.unwrap_or(4096))));
    }
    m
}

/// A Hugging Face tensor under its llama.cpp name, as llama.cpp's converter changes it.
pub(super) fn map(arch: &str, family: &Family, c: &LlamaConfig, hf: &str, t: Tensor) -> Option<(String, Tensor)> {
    let name = name(arch, hf)?;
    let t = if family.norm_plus_one && name.ends_with("norm.weight") {
        t + 1.0
    } else if family.gguf_permute_qk && (name.contains(".attn_q.") || name.contains(".attn_k.")) {
        permute(&t, if name.contains(".attn_q.") { c.num_attention_heads } else { c.kv_heads() })
    } else {
        t
    };
    Some((name, t))
}

/// llama.cpp's `permute`: each head's rows from `[first halves…, second halves…]` to interleaved pairs.
fn permute(w: &Tensor, heads: i64) -> Tensor {
    let s = w.size();
    let rows = s[0];
    let mut shape = vec![heads, 2, rows / heads / 2];
    shape.extend_from_slice(&s[1..]);
    w.reshape(shape.as_slice()).transpose(1, 2).reshape(s.as_slice()).contiguous()
}

fn name(arch: &str, hf: &str) -> Option<String> {
    let top = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(t.into());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (i, rest) = rest.split_once('.')?;
    let (module, param) = rest.rsplit_once('.')?;
    let to = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if arch == "gemma2" => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.qkv_proj" => "attn_qkv",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_up_proj" => "ffn_up",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{i}.{to}.{param}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_llama_cpp() {
        assert_eq!(name("llama", "model.layers.0.mlp.gate_proj.weight").unwrap(), "blk.0.ffn_gate.weight");
        assert_eq!(
            name("gemma2", "model.layers.1.post_attention_layernorm.weight").unwrap(),
            "blk.1.post_attention_norm.weight"
        );
        assert_eq!(name("gemma", "model.layers.1.post_attention_layernorm.weight").unwrap(), "blk.1.ffn_norm.weight");
        assert_eq!(name("phi3", "model.layers.2.self_attn.qkv_proj.weight").unwrap(), "blk.2.attn_qkv.weight");
        assert!(name("llama", "model.layers.0.self_attn.rotary_emb.inv_freq").is_none());
    }

    #[test]
    fn permute_interleaves_each_heads_halves() {
        // One head of 4 rows: [a, b, c, d] (halves [a, b] and [c, d]) becomes [a, c, b, d].
        let w = Tensor::from_slice(&[0f32, 1., 2., 3.]).reshape([4, 1]);
        let p = permute(&w, 1);
        assert_eq!(Vec::<f32>::try_from(p.reshape([-1])).unwrap(), [0., 2., 1., 3.]);
    }
}
