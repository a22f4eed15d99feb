//! GPT-2's graph, as `banter_model::gpt2` computes it: learned positions from `position_ids`, pre-LayerNorm
//! blocks, the fused `c_attn` split in three, `gelu_new` (or exact `gelu`), tied output head.

use std::collections::BTreeMap;

use banter_model::Gpt2Config;
use tch::Tensor;

use super::decoder::{self, Attn, Shape};
use super::graph::{Graph, attr_i, get};
use crate::ConvertError;

/// Builds the graph; returns its shape.
pub fn build(g: &mut Graph, c: &Gpt2Config, w: &BTreeMap<String, Tensor>) -> Result<Shape, ConvertError> {
    let (e, nh) = (c.n_embd, c.n_head);
    let hd = e / nh;
    let shape =
        Shape { layers: c.n_layer, heads: nh, kv_heads: nh, head_dim: hd, vocab: c.vocab_size, positions: true };
    let wte = g.weight("transformer.wte.weight", get(w, "transformer.wte.weight")?);
    let wpe = g.weight("transformer.wpe.weight", get(w, "transformer.wpe.weight")?);
    let tok = g.op("Gather", &[&wte, "input_ids"], vec![attr_i("axis", 0)]);
    let pos = g.op("Gather", &[&wpe, "position_ids"], vec![attr_i("axis", 0)]);
    let mut x = g.op("Add", &[&tok, &pos], vec![]);
    let masks = decoder::masks(g);
    let eps = c.layer_norm_epsilon;
    let ln = |g: &mut Graph, x: &str, p: &str| -> Result<String, ConvertError> {
        let wn = g.weight(&format!("{p}.weight"), get(w, &format!("{p}.weight"))?);
        let bn = g.weight(&format!("{p}.bias"), get(w, &format!("{p}.bias"))?);
        Ok(g.layer_norm(x, &wn, &bn, eps))
    };
    let conv = |g: &mut Graph, x: &str, p: &str| -> Result<String, ConvertError> {
        Ok(g.linear(x, get(w, &format!("{p}.weight"))?, Some(get(w, &format!("{p}.bias"))?), p))
    };
    for i in 0..c.n_layer {
        let p = format!("transformer.h.{i}");
        let h = ln(g, &x, &format!("{p}.ln_1"))?;
        let qkv = conv(g, &h, &format!("{p}.attn.c_attn"))?;
        let split = g.ints(&[e, e, e], false);
        let parts = g.op_n("Split", &[&qkv, &split], 3, vec![attr_i("axis", -1)]);
        let k = g.reshape(&parts[1], &[0, 0, nh, hd]);
        let v = g.reshape(&parts[2], &[0, 0, nh, hd]);
        let scale = (hd as f64).powf(-0.5);
        let y = decoder::attention(
            g,
            &shape,
            &parts[0],
            &k,
            &v,
            Attn { layer: i, scale, softcap: None, mask: &masks.full },
        );
        let y = conv(g, &y, &format!("{p}.attn.c_proj"))?;
        x = g.op("Add", &[&x, &y], vec![]);
        let h = ln(g, &x, &format!("{p}.ln_2"))?;
        let m = conv(g, &h, &format!("{p}.mlp.c_fc"))?;
        let m = if c.activation_function == "gelu" { g.gelu_erf(&m) } else { g.gelu_tanh(&m) };
        let m = conv(g, &m, &format!("{p}.mlp.c_proj"))?;
        x = g.op("Add", &[&x, &m], vec![]);
    }
    let x = ln(g, &x, "transformer.ln_f")?;
    match w.get("lm_head.weight") {
        Some(h) if !c.tie_word_embeddings => {
            let hn = g.weight("lm_head.weight", &h.tr().contiguous());
            g.op_to("MatMul", &[&x, &hn], vec![], Some("logits"));
        }
        _ => {
            let et = g.transpose(&wte, &[1, 0]);
            g.op_to("MatMul", &[&x, &et], vec![], Some("logits"));
        }
    }
    Ok(shape)
}
