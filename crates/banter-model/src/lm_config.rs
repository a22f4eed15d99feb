//! `config.json` of the Hub families as transformers reads it: every key the config came with, and the
//! values banter computes with written out where a missing key would make transformers assume another.

use serde_json::{Value, json};

use crate::llama::LlamaConfig;
use crate::opt::OptConfig;

fn arch(model_type: &str) -> &'static str {
    crate::families::family(model_type).map_or("LlamaForCausalLM", |f| f.hf_class)
}

/// Drops `null`s except `keep` (where null means "off" to transformers, e.g. Gemma 2's soft-capping).
fn strip_nulls(v: &mut Value, keep: &[&str]) {
    if let Value::Object(m) = v {
        m.retain(|k, x| !x.is_null() || keep.contains(&k.as_str()));
    }
}

/// A Llama-family config.
pub fn llama_json(c: &LlamaConfig) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    let m = v.as_object_mut().expect("a struct serialises to an object");
    m.insert("architectures".into(), json!([arch(&c.model_type)]));
    m.insert("head_dim".into(), c.head_dim().into());
    m.insert("num_key_value_heads".into(), c.kv_heads().into());
    m.insert("max_position_embeddings".into(), c.max_position_embeddings.unwrap_or(2048).into());
    let act = c.hidden_act.clone().unwrap_or_else(|| "silu".into());
    m.insert("hidden_act".into(), act.clone().into());
    if c.is_gemma() {
        m.insert("hidden_activation".into(), act.into());
    }
    if c.is_gemma2() {
        // transformers 5 types it as an int.
        let q = c.query_pre_attn_scalar.unwrap_or(c.head_dim() as f64);
        let q = if q.fract() == 0.0 { json!(q as i64) } else { json!(q) };
        m.insert("query_pre_attn_scalar".into(), q);
        m.insert("sliding_window".into(), c.sliding_window.unwrap_or(4096).into());
    }
    m.entry("torch_dtype").or_insert("float32".into());
    let keep: &[&str] = if c.is_gemma2() { &["attn_logit_softcapping", "final_logit_softcapping"] } else { &[] };
    strip_nulls(&mut v, keep);
    v
}

/// An OPT config.
pub fn opt_json(c: &OptConfig) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    let m = v.as_object_mut().expect("a struct serialises to an object");
    m.insert("model_type".into(), "opt".into());
    m.insert("architectures".into(), json!([arch("opt")]));
    m.insert("word_embed_proj_dim".into(), c.word_embed_proj_dim.unwrap_or(c.hidden_size).into());
    m.entry("torch_dtype").or_insert("float32".into());
    strip_nulls(&mut v, &[]);
    v
}
