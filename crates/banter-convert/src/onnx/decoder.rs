//! What every exported decoder shares: optimum's inputs and outputs, the causal and padding mask over the
//! cached and new tokens, and attention over `past_key_values` (grouped-query heads by broadcasting, so no
//! repeated copy of keys and values).

use super::graph::{Graph, attr_i};
use super::proto::{DimValue, Dimension, TensorShapeProto, TypeProto, TypeTensor, ValueInfoProto, dtype};

/// Symbolic dimension names, as optimum writes them.
const B: &str = "batch_size";
const T: &str = "sequence_length";
const P: &str = "past_sequence_length";
const S: &str = "past_sequence_length + sequence_length";

fn dim(d: &str) -> Dimension {
    match d.parse::<i64>() {
        Ok(n) => Dimension { value: Some(DimValue::DimValue(n)) },
        Err(_) => Dimension { value: Some(DimValue::DimParam(d.into())) },
    }
}

/// A graph input or output.
pub fn value(name: &str, elem: i32, dims: &[&str]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeTensor {
                elem_type: elem,
                shape: Some(TensorShapeProto { dim: dims.iter().map(|d| dim(d)).collect() }),
            }),
        }),
    }
}

/// The shape of a decoder.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Blocks.
    pub layers: i64,
    /// Query heads.
    pub heads: i64,
    /// Key/value heads.
    pub kv_heads: i64,
    /// Head width.
    pub head_dim: i64,
    /// Vocabulary (logits' last dim).
    pub vocab: i64,
    /// `position_ids` is an input (all but OPT, which counts positions from the attention mask).
    pub positions: bool,
}

impl Shape {
    /// The shape of a loaded model.
    pub fn of(lm: &banter_model::Lm) -> Shape {
        use banter_model::lm::Arch;
        match lm.arch() {
            Arch::Gpt2(c) => {
                let hd = c.n_embd / c.n_head;
                Shape {
                    layers: c.n_layer,
                    heads: c.n_head,
                    kv_heads: c.n_head,
                    head_dim: hd,
                    vocab: c.vocab_size,
                    positions: true,
                }
            }
            Arch::Llama(c) => {
                let (heads, kv_heads, head_dim) = (c.num_attention_heads, c.kv_heads(), c.head_dim());
                Shape { layers: c.num_hidden_layers, heads, kv_heads, head_dim, vocab: c.vocab_size, positions: true }
            }
            Arch::Opt(c) => {
                let hd = c.hidden_size / c.num_attention_heads;
                let h = c.num_attention_heads;
                Shape {
                    layers: c.num_hidden_layers,
                    heads: h,
                    kv_heads: h,
                    head_dim: hd,
                    vocab: c.vocab_size,
                    positions: false,
                }
            }
        }
    }
}

/// optimum's inputs and outputs for `text-generation-with-past`.
pub fn io(s: &Shape) -> (Vec<ValueInfoProto>, Vec<ValueInfoProto>) {
    let hd = s.head_dim.to_string();
    let kv = s.kv_heads.to_string();
    let mut inputs = vec![value("input_ids", dtype::INT64, &[B, T]), value("attention_mask", dtype::INT64, &[B, S])];
    if s.positions {
        inputs.push(value("position_ids", dtype::INT64, &[B, T]));
    }
    let vocab = s.vocab.to_string();
    let mut outputs = vec![value("logits", dtype::FLOAT, &[B, T, &vocab])];
    for i in 0..s.layers {
        for kind in ["key", "value"] {
            inputs.push(value(&format!("past_key_values.{i}.{kind}"), dtype::FLOAT, &[B, &kv, P, &hd]));
            outputs.push(value(&format!("present.{i}.{kind}"), dtype::FLOAT, &[B, &kv, S, &hd]));
        }
    }
    (inputs, outputs)
}

/// Which keys each new token may see.
#[derive(Debug)]
pub struct Masks {
    /// `[B, 1, 1, T, S]` bool: causal (key position ≤ the token's) and not padding.
    pub full: String,
    /// `[T, S]` int64: the token's position minus the key's (for sliding windows).
    pub diff: String,
}

/// The masks from `input_ids` and `attention_mask` (`T` new tokens after `S - T` cached ones).
pub fn masks(g: &mut Graph) -> Masks {
    let sid = g.op("Shape", &["input_ids"], vec![]);
    let one = g.ints(&[1], true);
    let t = g.op("Gather", &[&sid, &one], vec![attr_i("axis", 0)]);
    let sm = g.op("Shape", &["attention_mask"], vec![]);
    let s = g.op("Gather", &[&sm, &one], vec![attr_i("axis", 0)]);
    let p = g.op("Sub", &[&s, &t], vec![]);
    let zero = g.ints(&[0], true);
    let rows = g.op("Range", &[&p, &s, &one], vec![]);
    let cols = g.op("Range", &[&zero, &s, &one], vec![]);
    let rows = g.unsqueeze(&rows, &[1]);
    let cols = g.unsqueeze(&cols, &[0]);
    let diff = g.op("Sub", &[&rows, &cols], vec![]);
    let causal = g.op("GreaterOrEqual", &[&diff, &zero], vec![]);
    let pad = g.op("Cast", &["attention_mask"], vec![attr_i("to", 9)]);
    let pad = g.unsqueeze(&pad, &[1, 2, 3]);
    let full = g.op("And", &[&causal, &pad], vec![]);
    Masks { full, diff }
}

/// The mask of a sliding-window layer: also within `w` tokens back.
pub fn window(g: &mut Graph, m: &Masks, w: i64) -> String {
    let wc = g.ints(&[w], true);
    let near = g.op("Less", &[&m.diff, &wc], vec![]);
    g.op("And", &[&m.full, &near], vec![])
}

/// Options of one attention.
#[derive(Debug, Clone, Copy)]
pub struct Attn<'a> {
    /// The block.
    pub layer: i64,
    /// Scores are multiplied by this.
    pub scale: f64,
    /// Gemma 2's soft cap of the scores.
    pub softcap: Option<f64>,
    /// The mask (`[B, 1, 1, T, S]`).
    pub mask: &'a str,
}

/// Attention of `q` `[B, T, heads·hd]` over the cache and the new `k`, `v` (`[B, T, kv_heads, hd]`, RoPE
/// applied); writes `present.N.key/value` and returns `[B, T, heads·hd]`.
pub fn attention(g: &mut Graph, s: &Shape, q: &str, k: &str, v: &str, a: Attn<'_>) -> String {
    let (nkv, hd) = (s.kv_heads, s.head_dim);
    let rep = s.heads / nkv;
    // q: [B, T, nkv, rep, hd] -> [B, nkv, rep, T, hd]
    let q5 = g.reshape(q, &[0, 0, nkv, rep, hd]);
    let q5 = g.transpose(&q5, &[0, 2, 3, 1, 4]);
    let k = g.transpose(k, &[0, 2, 1, 3]);
    let v = g.transpose(v, &[0, 2, 1, 3]);
    let i = a.layer;
    let pk = g.op_to(
        "Concat",
        &[&format!("past_key_values.{i}.key"), &k],
        vec![attr_i("axis", 2)],
        Some(&format!("present.{i}.key")),
    );
    let pv = g.op_to(
        "Concat",
        &[&format!("past_key_values.{i}.value"), &v],
        vec![attr_i("axis", 2)],
        Some(&format!("present.{i}.value")),
    );
    let k5 = g.unsqueeze(&pk, &[2]);
    let kt = g.transpose(&k5, &[0, 1, 2, 4, 3]);
    let scores = g.op("MatMul", &[&q5, &kt], vec![]);
    let sc = g.scalar(a.scale as f32);
    let mut scores = g.op("Mul", &[&scores, &sc], vec![]);
    if let Some(cap) = a.softcap {
        scores = g.softcap(&scores, cap);
    }
    let low = g.scalar(f32::MIN);
    let scores = g.op("Where", &[a.mask, &scores, &low], vec![]);
    let probs = g.op("Softmax", &[&scores], vec![attr_i("axis", -1)]);
    let v5 = g.unsqueeze(&pv, &[2]);
    let y = g.op("MatMul", &[&probs, &v5], vec![]);
    let y = g.transpose(&y, &[0, 3, 1, 2, 4]);
    g.reshape(&y, &[0, 0, -1])
}
