//! GPT-2 in GGUF (llama.cpp's `gpt2`): Conv1D weights transposed to `[out, in]`, and `output.weight` written
//! beside `token_embd` when the head is tied (the caller adds it).

use tch::Tensor;

use banter_model::config::Gpt2Config;

use super::writer::Value;

/// The hyper-parameters under llama.cpp's keys (`k` adds the architecture prefix).
pub(super) fn metadata(k: &dyn Fn(&str) -> String, c: &Gpt2Config) -> Vec<(String, Value)> {
    let u = |x: i64| Value::U32(x as u32);
    vec![
        (k("context_length"), u(c.n_positions)),
        (k("embedding_length"), u(c.n_embd)),
        (k("feed_forward_length"), u(c.n_inner.unwrap_or(4 * c.n_embd))),
        (k("block_count"), u(c.n_layer)),
        (k("attention.head_count"), u(c.n_head)),
        (k("attention.layer_norm_epsilon"), Value::F32(c.layer_norm_epsilon as f32)),
    ]
}

/// A Hugging Face tensor under its llama.cpp name, as llama.cpp stores it.
pub(super) fn map(hf: &str, t: Tensor) -> Option<(String, Tensor)> {
    let name = name(hf)?;
    let t = if name.ends_with(".weight") && t.dim() == 2 && name.starts_with("blk.") { t.tr().contiguous() } else { t };
    Some((name, t))
}

fn name(hf: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_llama_cpp() {
        assert_eq!(name("transformer.h.3.attn.c_attn.bias").unwrap(), "blk.3.attn_qkv.bias");
        assert_eq!(name("transformer.wpe.weight").unwrap(), "position_embd.weight");
        assert!(name("transformer.h.0.attn.masked_bias").is_none());
    }
}
