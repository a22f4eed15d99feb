//! OPT's graph, as `banter_model::opt` and transformers compute it: positions counted from the attention
//! mask (`cumsum(mask) · mask - 1`, offset 2, so no `position_ids` input, as optimum exports OPT), LayerNorm
//! before or after each sub-block, ReLU (or GELU) MLP, `project_in`/`project_out`, tied head.

use std::collections::BTreeMap;

use banter_model::opt::OptConfig;
use tch::Tensor;

use super::decoder::{self, Attn, Shape};
use super::graph::{Graph, attr_i, get};
use crate::ConvertError;

/// Builds the graph; returns its shape.
pub fn build(g: &mut Graph, c: &OptConfig, w: &BTreeMap<String, Tensor>) -> Result<Shape, ConvertError> {
    let (e, nh) = (c.hidden_size, c.num_attention_heads);
    let hd = e / nh;
    let shape = Shape {
        layers: c.num_hidden_layers,
        heads: nh,
        kv_heads: nh,
        head_dim: hd,
        vocab: c.vocab_size,
        positions: false,
    };
    let d = "model.decoder";
    let embed = g.weight(&format!("{d}.embed_tokens.weight"), get(w, &format!("{d}.embed_tokens.weight"))?);
    let mut x = g.op("Gather", &[&embed, "input_ids"], vec![attr_i("axis", 0)]);
    let lin = |g: &mut Graph, x: &str, m: &str| -> Result<String, ConvertError> {
        Ok(g.hf_linear(x, get(w, &format!("{m}.weight"))?, w.get(&format!("{m}.bias")), m))
    };
    if w.contains_key(&format!("{d}.project_in.weight")) {
        x = lin(g, &x, &format!("{d}.project_in"))?;
    }
    // Positions: cumsum(mask)·mask - 1 over all S tokens, the last T of them, + 2.
    let one_i = g.ints(&[1], true);
    let cs = g.op("CumSum", &["attention_mask", &one_i], vec![]);
    let cs = g.op("Mul", &[&cs, "attention_mask"], vec![]);
    let one = g.ints(&[1], true);
    let pos = g.op("Sub", &[&cs, &one], vec![]);
    let sid = g.op("Shape", &["input_ids"], vec![]);
    let t = g.op("Gather", &[&sid, &one_i], vec![attr_i("axis", 0)]);
    let zero = g.ints(&[0], true);
    let neg_t = g.op("Sub", &[&zero, &t], vec![]);
    let start = g.unsqueeze(&neg_t, &[0]);
    let big = g.ints(&[i64::MAX], false);
    let axis = g.ints(&[1], false);
    let pos = g.op("Slice", &[&pos, &start, &big, &axis], vec![]);
    let two = g.ints(&[2], true);
    let pos = g.op("Add", &[&pos, &two], vec![]);
    let pw = g.weight(&format!("{d}.embed_positions.weight"), get(w, &format!("{d}.embed_positions.weight"))?);
    let pe = g.op("Gather", &[&pw, &pos], vec![attr_i("axis", 0)]);
    x = g.op("Add", &[&x, &pe], vec![]);
    let masks = decoder::masks(g);
    let ln = |g: &mut Graph, x: &str, p: &str| -> Result<String, ConvertError> {
        let wn = g.weight(&format!("{p}.weight"), get(w, &format!("{p}.weight"))?);
        let bn = g.weight(&format!("{p}.bias"), get(w, &format!("{p}.bias"))?);
        Ok(g.layer_norm(x, &wn, &bn, 1e-5))
    };
    let pre = c.do_layer_norm_before;
    for i in 0..c.num_hidden_layers {
        let p = format!("{d}.layers.{i}");
        let h = if pre { ln(g, &x, &format!("{p}.self_attn_layer_norm"))? } else { x.clone() };
        let q = lin(g, &h, &format!("{p}.self_attn.q_proj"))?;
        let k = lin(g, &h, &format!("{p}.self_attn.k_proj"))?;
        let v = lin(g, &h, &format!("{p}.self_attn.v_proj"))?;
        let k = g.reshape(&k, &[0, 0, nh, hd]);
        let v = g.reshape(&v, &[0, 0, nh, hd]);
        let scale = (hd as f64).powf(-0.5);
        let y = decoder::attention(g, &shape, &q, &k, &v, Attn { layer: i, scale, softcap: None, mask: &masks.full });
        let y = lin(g, &y, &format!("{p}.self_attn.out_proj"))?;
        x = g.op("Add", &[&x, &y], vec![]);
        if !pre {
            x = ln(g, &x, &format!("{p}.self_attn_layer_norm"))?;
        }
        let h = if pre { ln(g, &x, &format!("{p}.final_layer_norm"))? } else { x.clone() };
        let m = lin(g, &h, &format!("{p}.fc1"))?;
        let m = if c.activation_function == "relu" { g.op("Relu", &[&m], vec![]) } else { g.gelu_erf(&m) };
        let m = lin(g, &m, &format!("{p}.fc2"))?;
        x = g.op("Add", &[&x, &m], vec![]);
        if !pre {
            x = ln(g, &x, &format!("{p}.final_layer_norm"))?;
        }
    }
    if w.contains_key(&format!("{d}.final_layer_norm.weight")) {
        x = ln(g, &x, &format!("{d}.final_layer_norm"))?;
    }
    if w.contains_key(&format!("{d}.project_out.weight")) {
        x = lin(g, &x, &format!("{d}.project_out"))?;
    }
    let et = g.transpose(&embed, &[1, 0]);
    g.op_to("MatMul", &[&x, &et], vec![], Some("logits"));
    Ok(shape)
}
