//! Per architecture: llama.cpp's architecture name, its metadata keys, and each Hugging Face tensor under
//! llama.cpp's name with the changes its converter (`convert_hf_to_gguf.py`) makes:
//! - Llama and Mistral (llama.cpp's `llama`): q/k rows permuted from Hugging Face's rotate-half RoPE layout
//!   to llama.cpp's interleaved one;
//! - Gemma, Gemma 2: RMSNorm weights stored as `w + 1` (Hugging Face keeps `w`);
//! - Qwen2, Qwen3 and Phi-3 rotate halves as Hugging Face does (llama.cpp's NEOX RoPE): no permutation; Qwen3's
//!   per-head norms become `attn_q_norm`/`attn_k_norm`, Phi-3's fused `qkv_proj` and `gate_up_proj` stay fused
//!   as `attn_qkv` and `ffn_up` (gate half first, as llama.cpp's fused SwiGLU reads it);
//! - GPT-2: Conv1D weights transposed to `[out, in]`, and `output.weight` written beside `token_embd`.
//!
//! OPT has no llama.cpp architecture and is refused with that reason.

use tch::Tensor;

use banter_model::families::Family;
use banter_model::lm::Arch;

use super::writer::Value;
use crate::ConvertError;

/// A tensor under its llama.cpp name, with what was done to it.
#[derive(Debug)]
pub struct Mapped {
    /// llama.cpp's name.
    pub name: String,
    /// The tensor (fp32, contiguous).
    pub tensor: Tensor,
}

/// llama.cpp's architecture for a `model_type` (the family table's `gguf_arch`).
pub fn arch_of(model_type: &str) -> Result<&'static str, ConvertError> {
    banter_model::families::family(model_type).and_then(|f| f.gguf_arch).ok_or_else(|| {
        ConvertError::Unsupported(format!(
            "model_type {model_type:?}: llama.cpp has no architecture for it, so there is no GGUF it could run \
             (export it to ONNX instead)"
        ))
    })
}

/// The architecture's hyper-parameters under llama.cpp's keys, from the model's typed configuration (the
/// values banter computes with, defaults included).
pub fn metadata(arch: &str, model: Arch<'_>) -> Result<Vec<(String, Value)>, ConvertError> {
    let k = |s: &str| format!("{arch}.{s}");
    let u = |x: i64| Value::U32(x as u32);
    let f = |x: f64| Value::F32(x as f32);
    let c = match model {
        Arch::Gpt2(c) => {
            return Ok(vec![
                (k("context_length"), u(c.n_positions)),
                (k("embedding_length"), u(c.n_embd)),
                (k("feed_forward_length"), u(c.n_inner.unwrap_or(4 * c.n_embd))),
                (k("block_count"), u(c.n_layer)),
                (k("attention.head_count"), u(c.n_head)),
                (k("attention.layer_norm_epsilon"), f(c.layer_norm_epsilon)),
            ]);
        }
        Arch::Llama(c) => c,
        Arch::Opt(_) => return Err(ConvertError::Unsupported("OPT: llama.cpp has no architecture for it".into())),
    };
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
    Ok(m)
}

/// llama.cpp's `permute`: each head's rows from `[first halves…, second halves…]` to interleaved pairs.
fn permute(w: &Tensor, heads: i64) -> Tensor {
    let s = w.size();
    let rows = s[0];
    let mut shape = vec![heads, 2, rows / heads / 2];
    shape.extend_from_slice(&s[1..]);
    w.reshape(shape.as_slice()).transpose(1, 2).reshape(s.as_slice()).contiguous()
}

/// Every tensor of the model under llama.cpp's names (sorted as the model's blocks go).
pub fn tensors(
    arch: &str,
    family: &Family,
    model: Arch<'_>,
    vars: &std::collections::BTreeMap<String, Tensor>,
) -> Result<Vec<Mapped>, ConvertError> {
    let mut out = Vec::new();
    for (hf, t) in vars {
        let t = t.to_kind(tch::Kind::Float).contiguous();
        let mapped = if arch == "gpt2" { gpt2_name(hf) } else { llama_name(arch, hf) };
        let Some(name) = mapped else {
            return Err(ConvertError::Format(format!("{hf}: no llama.cpp name for this tensor of a {arch} model")));
        };
        let t = if arch == "gpt2" && name.ends_with(".weight") && t.dim() == 2 && name.starts_with("blk.") {
            t.tr().contiguous()
        } else if family.norm_plus_one && name.ends_with("norm.weight") {
            t + 1.0
        } else if let (true, Arch::Llama(c)) = (family.gguf_permute_qk, model)
            && (name.contains(".attn_q.") || name.contains(".attn_k."))
        {
            permute(&t, if name.contains(".attn_q.") { c.num_attention_heads } else { c.kv_heads() })
        } else {
            t
        };
        if arch == "gpt2" && name == "token_embd.weight" && !vars.contains_key("lm_head.weight") {
            out.push(Mapped { name: "output.weight".into(), tensor: t.shallow_clone() });
        }
        out.push(Mapped { name, tensor: t });
    }
    let block = |n: &str| n.strip_prefix("blk.").and_then(|r| r.split('.').next()?.parse::<u64>().ok());
    out.sort_by_key(|m| {
        (block(&m.name).map_or(if m.name.starts_with("output") { 2 } else { 0 }, |_| 1), block(&m.name), m.name.clone())
    });
    Ok(out)
}

fn gpt2_name(hf: &str) -> Option<String> {
    let n = hf.strip_prefix("transformer.").unwrap_or(hf);
    let top = match n {
        "wte.weight" => Some("token_embd.weight"),
        "wpe.weight" => Some("position_embd.weight"),
        "ln_f.weight" => Some("output_norm.weight"),
        "ln_f.bias" => Some("output_norm.bias"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(t.into());
    }
    let rest = n.strip_prefix("h.")?;
    let (i, rest) = rest.split_once('.')?;
    let (module, param) = rest.rsplit_once('.')?;
    let to = match module {
        "ln_1" => "attn_norm",
        "attn.c_attn" => "attn_qkv",
        "attn.c_proj" => "attn_output",
        "ln_2" => "ffn_norm",
        "mlp.c_fc" => "ffn_up",
        "mlp.c_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{i}.{to}.{param}"))
}

fn llama_name(arch: &str, hf: &str) -> Option<String> {
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
        assert_eq!(gpt2_name("transformer.h.3.attn.c_attn.bias").unwrap(), "blk.3.attn_qkv.bias");
        assert_eq!(gpt2_name("transformer.wpe.weight").unwrap(), "position_embd.weight");
        assert_eq!(llama_name("llama", "model.layers.0.mlp.gate_proj.weight").unwrap(), "blk.0.ffn_gate.weight");
        assert_eq!(
            llama_name("gemma2", "model.layers.1.post_attention_layernorm.weight").unwrap(),
            "blk.1.post_attention_norm.weight"
        );
        assert_eq!(
            llama_name("gemma", "model.layers.1.post_attention_layernorm.weight").unwrap(),
            "blk.1.ffn_norm.weight"
        );
        assert!(arch_of("opt").is_err());
    }

    #[test]
    fn permute_interleaves_each_heads_halves() {
        // One head of 4 rows: [a, b, c, d] (halves [a, b] and [c, d]) becomes [a, c, b, d].
        let w = Tensor::from_slice(&[0f32, 1., 2., 3.]).reshape([4, 1]);
        let p = permute(&w, 1);
        assert_eq!(Vec::<f32>::try_from(p.reshape([-1])).unwrap(), [0., 2., 1., 3.]);
    }
}
