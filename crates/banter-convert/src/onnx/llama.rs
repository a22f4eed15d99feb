//! The Llama family's graph (Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma, Gemma 2), as `banter_model::llama`
//! computes it (Qwen3's per-head q/k norms, Phi-3's fused projections split in the graph, partial RoPE):
//! RoPE from `position_ids` (with the config's scaling), RMSNorm (Gemma's `1 + w` folded into the weight),
//! SwiGLU or tanh-GeGLU, grouped-query attention, Gemma's √hidden embedding scale, Gemma 2's extra norms,
//! soft caps and sliding-window layers, Mistral's window.

use std::collections::BTreeMap;

use banter_model::llama::LlamaConfig;
use tch::Tensor;

use super::decoder::{self, Attn, Shape};
use super::graph::{Graph, attr_i, get};
use crate::ConvertError;

/// Builds the graph; returns its shape.
pub fn build(g: &mut Graph, c: &LlamaConfig, w: &BTreeMap<String, Tensor>) -> Result<Shape, ConvertError> {
    let (e, hd, nq, nkv) = (c.hidden_size, c.head_dim(), c.num_attention_heads, c.kv_heads());
    let shape = Shape {
        layers: c.num_hidden_layers,
        heads: nq,
        kv_heads: nkv,
        head_dim: hd,
        vocab: c.vocab_size,
        positions: true,
    };
    let gemma = c.is_gemma();
    let norm_w = |g: &mut Graph, k: &str| -> Result<String, ConvertError> {
        let t = get(w, k)?;
        let t = if gemma { t + 1.0 } else { t.shallow_clone() };
        Ok(g.weight(k, &t))
    };
    let embed = g.weight("model.embed_tokens.weight", get(w, "model.embed_tokens.weight")?);
    let mut x = g.op("Gather", &[&embed, "input_ids"], vec![attr_i("axis", 0)]);
    if gemma {
        let s = g.scalar((e as f32).sqrt());
        x = g.op("Mul", &[&x, &s], vec![]);
    }
    let (cos, sin) = rope_tables(g, c);
    // Partial RoPE (Phi-3 family): the first `rd` dimensions of each head turn, the rest pass.
    let rd = c.rotary_dim();
    let rope = |g: &mut Graph, x: &str| -> String {
        if rd == hd {
            return g.rope(x, &cos, &sin, hd);
        }
        let sizes = g.ints(&[rd, hd - rd], false);
        let parts = g.op_n("Split", &[x, &sizes], 2, vec![attr_i("axis", -1)]);
        let r = g.rope(&parts[0], &cos, &sin, rd);
        g.op("Concat", &[&r, &parts[1]], vec![attr_i("axis", -1)])
    };
    let masks = decoder::masks(g);
    let scale = c.query_pre_attn_scalar.filter(|_| c.is_gemma2()).unwrap_or(hd as f64).powf(-0.5);
    let softcap = c.attn_logit_softcapping.filter(|_| c.is_gemma2());
    let eps = c.rms_norm_eps;
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let a = format!("{p}.self_attn");
        let ln1 = norm_w(g, &format!("{p}.input_layernorm.weight"))?;
        let h = g.rms_norm(&x, &ln1, eps);
        let lin = |g: &mut Graph, h: &str, m: &str| lin(g, w, h, m);
        let (q, k, v) = if c.fused_projections() {
            let qkv = lin(g, &h, &format!("{a}.qkv_proj"))?;
            let sizes = g.ints(&[nq * hd, nkv * hd, nkv * hd], false);
            let parts = g.op_n("Split", &[&qkv, &sizes], 3, vec![attr_i("axis", -1)]);
            (parts[0].clone(), parts[1].clone(), parts[2].clone())
        } else {
            (
                lin(g, &h, &format!("{a}.q_proj"))?,
                lin(g, &h, &format!("{a}.k_proj"))?,
                lin(g, &h, &format!("{a}.v_proj"))?,
            )
        };
        let q = g.reshape(&q, &[0, 0, nq, hd]);
        let k = g.reshape(&k, &[0, 0, nkv, hd]);
        let (q, k) = if c.has_qk_norm() {
            let qn = norm_w(g, &format!("{a}.q_norm.weight"))?;
            let kn = norm_w(g, &format!("{a}.k_norm.weight"))?;
            (g.rms_norm(&q, &qn, eps), g.rms_norm(&k, &kn, eps))
        } else {
            (q, k)
        };
        let q = rope(g, &q);
        let q = g.reshape(&q, &[0, 0, nq * hd]);
        let k = rope(g, &k);
        let v = g.reshape(&v, &[0, 0, nkv, hd]);
        let mask = match c.window(i as usize) {
            Some(win) => decoder::window(g, &masks, win),
            None => masks.full.clone(),
        };
        let y = decoder::attention(g, &shape, &q, &k, &v, Attn { layer: i, scale, softcap, mask: &mask });
        let y = lin(g, &y, &format!("{a}.o_proj"))?;
        let mlp = |g: &mut Graph, h: &str| mlp(g, c, w, &format!("{p}.mlp"), h);
        let ln2 = norm_w(g, &format!("{p}.post_attention_layernorm.weight"))?;
        if c.is_gemma2() {
            let y = g.rms_norm(&y, &ln2, eps);
            x = g.op("Add", &[&x, &y], vec![]);
            let pre = norm_w(g, &format!("{p}.pre_feedforward_layernorm.weight"))?;
            let h = g.rms_norm(&x, &pre, eps);
            let m = mlp(g, &h)?;
            let post = norm_w(g, &format!("{p}.post_feedforward_layernorm.weight"))?;
            let m = g.rms_norm(&m, &post, eps);
            x = g.op("Add", &[&x, &m], vec![]);
        } else {
            x = g.op("Add", &[&x, &y], vec![]);
            let h = g.rms_norm(&x, &ln2, eps);
            let m = mlp(g, &h)?;
            x = g.op("Add", &[&x, &m], vec![]);
        }
    }
    let nw = norm_w(g, "model.norm.weight")?;
    let x = g.rms_norm(&x, &nw, eps);
    logits(g, c, w, &embed, &x);
    Ok(shape)
}

/// A Hugging Face Linear `m` (weight, and bias when the checkpoint has one) applied to `h`.
fn lin(g: &mut Graph, w: &BTreeMap<String, Tensor>, h: &str, m: &str) -> Result<String, ConvertError> {
    Ok(g.hf_linear(h, get(w, &format!("{m}.weight"))?, w.get(&format!("{m}.bias")), m))
}

/// RoPE's cos and sin tables for the graph's `position_ids`: `[B, T, 1, rotary_dim]`.
fn rope_tables(g: &mut Graph, c: &LlamaConfig) -> (String, String) {
    let inv: Vec<f32> = c.inv_freq().iter().map(|&f| f as f32).collect();
    let inv = g.init_f32("rope.inv_freq", &[inv.len() as i64], &inv);
    let pos = g.op("Cast", &["position_ids"], vec![attr_i("to", 1)]);
    let pos = g.unsqueeze(&pos, &[-1]);
    let freqs = g.op("Mul", &[&pos, &inv], vec![]);
    let emb = g.op("Concat", &[&freqs, &freqs], vec![attr_i("axis", -1)]);
    let emb = g.unsqueeze(&emb, &[2]);
    (g.op("Cos", &[&emb], vec![]), g.op("Sin", &[&emb], vec![]))
}

/// The gated MLP under `m` (`model.layers.N.mlp`): SwiGLU or tanh-GeGLU, Phi-3's fused `gate_up_proj` split.
fn mlp(g: &mut Graph, c: &LlamaConfig, w: &BTreeMap<String, Tensor>, m: &str, h: &str) -> Result<String, ConvertError> {
    let (gate, up) = if c.fused_projections() {
        let both = lin(g, w, h, &format!("{m}.gate_up_proj"))?;
        let n = c.intermediate_size;
        let sizes = g.ints(&[n, n], false);
        let parts = g.op_n("Split", &[&both, &sizes], 2, vec![attr_i("axis", -1)]);
        (parts[0].clone(), parts[1].clone())
    } else {
        (lin(g, w, h, &format!("{m}.gate_proj"))?, lin(g, w, h, &format!("{m}.up_proj"))?)
    };
    let tanh_gate = c.hidden_act.as_deref() == Some("gelu_pytorch_tanh");
    let gate = if tanh_gate { g.gelu_tanh(&gate) } else { g.silu(&gate) };
    let prod = g.op("Mul", &[&gate, &up], vec![]);
    lin(g, w, &prod, &format!("{m}.down_proj"))
}

/// The output `logits`: the final hidden states `x` by the untied head or the embeddings, soft-capped for
/// Gemma 2.
fn logits(g: &mut Graph, c: &LlamaConfig, w: &BTreeMap<String, Tensor>, embed: &str, x: &str) {
    let final_cap = c.final_logit_softcapping.filter(|_| c.is_gemma2());
    let out = if final_cap.is_some() { None } else { Some("logits") };
    let logits = match w.get("lm_head.weight") {
        Some(h) if !c.tie_word_embeddings => {
            let hn = g.weight("lm_head.weight", &h.tr().contiguous());
            g.op_to("MatMul", &[x, &hn], vec![], out)
        }
        _ => {
            let et = g.transpose(embed, &[1, 0]);
            g.op_to("MatMul", &[x, &et], vec![], out)
        }
    };
    if let Some(cap) = final_cap {
        g.softcap_to(&logits, cap, Some("logits"));
    }
}
