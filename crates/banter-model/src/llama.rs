//! The Llama family in Hugging Face's layout and names: Llama 2/3.x, SmolLM/SmolLM2, Mistral (with its
//! sliding window), Qwen2 (the same blocks with q/k/v biases), Gemma (the same blocks and names with
//! embeddings scaled by √hidden, RMSNorm as `1 + w`, and a tanh-GELU gate) and Gemma 2 (Gemma plus norms
//! after attention and around the MLP, soft-capped attention scores and logits, and sliding-window
//! layers). RoPE (`rope_theta`, `rope_scaling` types default, linear and llama3), RMSNorm, SwiGLU/GeGLU,
//! grouped-query attention, `head_dim`, tied or untied embeddings, `attention_bias` and `mlp_bias`.
//!
//! The forward pass (with a KV cache for generation, bf16 compute and LoRA on any Linear) and loss are
//! checked against transformers in `tests/families_parity.rs`; [`crate::lm::Lm`] trains it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::ModelError;
pub use crate::family::LlamaCache;
use crate::family::{CachedLm, cached_causal_mask, next_token_loss};
use crate::gpt2::Pass;
use crate::linear::Linear;
use crate::lora::LoraConfig;

/// `rope_scaling` of config.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RopeScaling {
    /// `default`, `linear` or `llama3` (`type` in older configs).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// The scaling factor.
    #[serde(default = "one")]
    pub factor: f64,
    /// llama3: wavelengths longer than `original_max_position_embeddings / low_freq_factor` are scaled.
    #[serde(default = "one")]
    pub low_freq_factor: f64,
    /// llama3: wavelengths shorter than `original_max_position_embeddings / high_freq_factor` are kept.
    #[serde(default = "four")]
    pub high_freq_factor: f64,
    /// llama3: the context the model was trained with.
    #[serde(default)]
    pub original_max_position_embeddings: Option<f64>,
}

fn one() -> f64 {
    1.0
}
fn four() -> f64 {
    4.0
}
fn theta() -> f64 {
    10_000.0
}
fn eps() -> f64 {
    1e-6
}

/// A Llama-family `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// `llama`, `mistral`, `qwen2` or `gemma`.
    pub model_type: String,
    /// The MLP's gate activation: `silu` (Llama), `gelu_pytorch_tanh` (Gemma).
    #[serde(default, alias = "hidden_activation")]
    pub hidden_act: Option<String>,
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Model width.
    pub hidden_size: i64,
    /// SwiGLU width.
    pub intermediate_size: i64,
    /// Blocks.
    pub num_hidden_layers: i64,
    /// Query heads.
    pub num_attention_heads: i64,
    /// Key/value heads (grouped-query attention; default: as many as query heads).
    #[serde(default)]
    pub num_key_value_heads: Option<i64>,
    /// Head width (default hidden / heads).
    #[serde(default)]
    pub head_dim: Option<i64>,
    /// RMSNorm epsilon.
    #[serde(default = "eps")]
    pub rms_norm_eps: f64,
    /// RoPE base.
    #[serde(default = "theta")]
    pub rope_theta: f64,
    /// RoPE scaling (configs before transformers 5).
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers 5's `rope_parameters`: `rope_theta` and the scaling in one object.
    #[serde(default, skip_serializing)]
    pub rope_parameters: Option<serde_json::Value>,
    /// The LM head shares the embeddings.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v/o (Llama's flag); Qwen2 always has q/k/v biases.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Longest context.
    #[serde(default)]
    pub max_position_embeddings: Option<i64>,
    /// A sliding window (Mistral): refused when set, it is not implemented.
    #[serde(default)]
    pub sliding_window: Option<i64>,
    /// Qwen2's switch for its window.
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Gemma 2: `sliding_attention` or `full_attention` per layer (default: alternating, sliding first).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Gemma 2: attention scores are scaled by `query_pre_attn_scalar^-0.5`.
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2: attention scores are soft-capped at this value (`tanh(s / c) · c`).
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma 2: the logits are soft-capped at this value.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// Dropout on the attention probabilities while training (transformers' `attention_dropout`).
    #[serde(default)]
    pub attention_dropout: f64,
    /// Every other key of config.json (token ids, dtype, …), written back as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl LlamaConfig {
    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let v = serde_json::from_str(&text).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        Self::from_value(v, &path.display().to_string())
    }

    /// Reads and checks a config given as JSON (`what` names it in errors: a path or `--config`).
    pub fn from_value(mut v: serde_json::Value, what: &str) -> Result<Self, ModelError> {
        // transformers' class defaults for keys a hand-written config may leave out.
        let mt = v["model_type"].as_str().unwrap_or_default().to_string();
        if let Some(m) = v.as_object_mut() {
            let defaults: &[(&str, serde_json::Value)] = match mt.as_str() {
                "gemma" => &[("tie_word_embeddings", serde_json::Value::Bool(true))],
                "gemma2" => &[
                    ("tie_word_embeddings", serde_json::Value::Bool(true)),
                    ("query_pre_attn_scalar", serde_json::json!(256)),
                    ("attn_logit_softcapping", serde_json::json!(50.0)),
                    ("final_logit_softcapping", serde_json::json!(30.0)),
                    ("sliding_window", serde_json::json!(4096)),
                ],
                "mistral" => &[("sliding_window", serde_json::json!(4096))],
                _ => &[],
            };
            for (k, d) in defaults {
                m.entry(*k).or_insert_with(|| d.clone());
            }
        }
        let path = std::path::PathBuf::from(what);
        let path = path.as_path();
        let mut c: LlamaConfig =
            serde_json::from_value(v).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        let bad = |m: String| Err(ModelError::Config(format!("{}: {m}", path.display())));
        if let Some(p) = c.rope_parameters.take() {
            if let Some(t) = p.get("rope_theta").and_then(|t| t.as_f64()) {
                c.rope_theta = t;
            }
            if p.get("rope_type").and_then(|t| t.as_str()).is_some_and(|t| t != "default") {
                c.rope_scaling = Some(
                    serde_json::from_value(p)
                        .map_err(|e| ModelError::Config(format!("{}: rope_parameters: {e}", path.display())))?,
                );
            }
        }
        if c.is_gemma() && c.hidden_act.as_deref().is_none_or(|a| a == "gelu") {
            // Gemma's configs say "gelu" but the model computes the tanh approximation.
            c.hidden_act = Some("gelu_pytorch_tanh".into());
        }
        if !matches!(c.hidden_act.as_deref().unwrap_or("silu"), "silu" | "gelu_pytorch_tanh") {
            return bad(format!("hidden_act {:?} is not supported (silu, gelu_pytorch_tanh)", c.hidden_act));
        }
        if !matches!(c.model_type.as_str(), "llama" | "mistral" | "qwen2" | "gemma" | "gemma2") {
            return bad(format!("model_type {:?} is not a Llama-family model", c.model_type));
        }
        if c.model_type == "qwen2" && c.use_sliding_window && c.sliding_window.is_some() {
            return bad("Qwen2's sliding-window layers are not supported".into());
        }
        if c.num_attention_heads <= 0 || c.num_attention_heads % c.kv_heads() != 0 {
            return bad("num_attention_heads must be a positive multiple of num_key_value_heads".into());
        }
        if let Some(s) = &c.rope_scaling {
            if !matches!(s.rope_type.as_str(), "default" | "linear" | "llama3") {
                return bad(format!("rope_scaling type {:?} is not supported (default, linear, llama3)", s.rope_type));
            }
        }
        Ok(c)
    }

    pub(crate) fn is_gemma(&self) -> bool {
        self.model_type.starts_with("gemma")
    }

    pub(crate) fn is_gemma2(&self) -> bool {
        self.model_type == "gemma2"
    }

    /// The attention window of layer `i`, when it slides: every Mistral layer; Gemma 2's sliding ones.
    fn window(&self, i: usize) -> Option<i64> {
        if self.model_type == "mistral" {
            return self.sliding_window;
        }
        if !self.is_gemma2() {
            return None;
        }
        let sliding = match &self.layer_types {
            Some(t) => t.get(i).is_some_and(|x| x == "sliding_attention"),
            None => i % 2 == 0,
        };
        sliding.then_some(self.sliding_window.unwrap_or(4096))
    }

    pub(crate) fn kv_heads(&self) -> i64 {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads).max(1)
    }

    pub(crate) fn head_dim(&self) -> i64 {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// RoPE inverse frequencies, scaled as `rope_scaling` says.
    fn inv_freq(&self) -> Vec<f64> {
        let d = self.head_dim();
        let base: Vec<f64> = (0..d / 2).map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d as f64)).collect();
        let Some(s) = &self.rope_scaling else { return base };
        match s.rope_type.as_str() {
            "linear" => base.iter().map(|f| f / s.factor).collect(),
            "llama3" => {
                let old = s.original_max_position_embeddings.unwrap_or(8192.0);
                let (low, high) = (old / s.low_freq_factor, old / s.high_freq_factor);
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high {
                            f
                        } else if wavelen > low {
                            f / s.factor
                        } else {
                            let smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                            (1.0 - smooth) * f / s.factor + smooth * f
                        }
                    })
                    .collect()
            }
            _ => base,
        }
    }
}

struct Block {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
    ln1: Tensor,
    ln2: Tensor,
    /// Gemma 2's norms around the MLP.
    ff_norms: Option<(Tensor, Tensor)>,
}

/// A Llama-family causal LM.
pub struct Llama {
    /// The configuration.
    pub cfg: LlamaConfig,
    /// Every weight, under Hugging Face's names.
    pub vs: nn::VarStore,
    /// LoRA weights (PEFT names), when an adapter is attached.
    pub lora_vs: Option<nn::VarStore>,
    /// The LoRA configuration, when attached.
    pub lora_cfg: Option<LoraConfig>,
    pub(crate) embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    pub(crate) head: Option<Tensor>,
    /// int8 copy of the output projection for inference.
    pub(crate) head_int8: Option<crate::quant::Int8Weight>,
    /// RoPE's inverse frequencies (scaled as the config says), computed once.
    inv_freq: Tensor,
}

impl std::fmt::Debug for Llama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama").field("cfg", &self.cfg).finish()
    }
}

/// RMSNorm; Gemma stores `w - 1` (`plus_one`).
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, plus_one: bool) -> Tensor {
    let var = x.pow_tensor_scalar(2).mean_dim([-1i64].as_slice(), true, Kind::Float);
    let n = x * (var + eps).rsqrt();
    if plus_one { n * (w + 1.0) } else { n * w }
}

/// Attention written out (Gemma 2's, and any sliding layer's): scores scaled by `query_pre_attn_scalar^-0.5`
/// (default `head_dim^-0.5`), soft-capped when Gemma 2 says so, causal, and within `window` tokens on sliding
/// layers; `start` tokens come from the cache.
fn explicit_attention(
    c: &LlamaConfig,
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    start: i64,
    window: Option<i64>,
    dropout: f64,
) -> Tensor {
    let (t, total) = (q.size()[2], k.size()[2]);
    let scale = c.query_pre_attn_scalar.unwrap_or(c.head_dim() as f64).powf(-0.5);
    let mut s = q.matmul(&k.transpose(-2, -1)) * scale;
    if let Some(cap) = c.attn_logit_softcapping.filter(|_| c.is_gemma2()) {
        s = (s / cap).tanh() * cap;
    }
    let device = q.device();
    let rows = Tensor::arange_start(start, start + t, (Kind::Int64, device)).unsqueeze(1);
    let cols = Tensor::arange(total, (Kind::Int64, device)).unsqueeze(0);
    let mut allowed = cols.le_tensor(&rows);
    if let Some(w) = window {
        allowed = allowed.logical_and(&(&rows - &cols).lt(w));
    }
    let s = s.masked_fill(&allowed.logical_not(), f64::NEG_INFINITY);
    s.softmax(-1, Kind::Float).dropout(dropout, dropout > 0.0).to_kind(v.kind()).matmul(v)
}

/// `cat(-x2, x1)` over the last dimension's halves.
fn rotate_half(x: &Tensor) -> Tensor {
    let h = x.size()[x.dim() - 1] / 2;
    Tensor::cat(&[-x.narrow(-1, h, h), x.narrow(-1, 0, h)], -1)
}

impl Llama {
    /// Random weights of `cfg`'s shape on `device`.
    pub fn new(cfg: LlamaConfig, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let m = &root / "model";
        let (e, hd, nq, nkv) = (cfg.hidden_size, cfg.head_dim(), cfg.num_attention_heads, cfg.kv_heads());
        let qkv_bias = cfg.attention_bias || cfg.model_type == "qwen2";
        let lin = |p: nn::Path<'_>, i, o, bias| Linear::new(p, i, o, bias, 0.02);
        let embed = (&m / "embed_tokens").randn("weight", &[cfg.vocab_size, e], 0.0, 0.02);
        let blocks = (0..cfg.num_hidden_layers)
            .map(|i| {
                let b = &m / "layers" / i;
                let a = &b / "self_attn";
                let mlp = &b / "mlp";
                Block {
                    q: lin(&a / "q_proj", e, nq * hd, qkv_bias),
                    k: lin(&a / "k_proj", e, nkv * hd, qkv_bias),
                    v: lin(&a / "v_proj", e, nkv * hd, qkv_bias),
                    o: lin(&a / "o_proj", nq * hd, e, cfg.attention_bias),
                    gate: lin(&mlp / "gate_proj", e, cfg.intermediate_size, cfg.mlp_bias),
                    up: lin(&mlp / "up_proj", e, cfg.intermediate_size, cfg.mlp_bias),
                    down: lin(&mlp / "down_proj", cfg.intermediate_size, e, cfg.mlp_bias),
                    ln1: (&b / "input_layernorm").ones("weight", &[e]),
                    ln2: (&b / "post_attention_layernorm").ones("weight", &[e]),
                    ff_norms: cfg.is_gemma2().then(|| {
                        (
                            (&b / "pre_feedforward_layernorm").ones("weight", &[e]),
                            (&b / "post_feedforward_layernorm").ones("weight", &[e]),
                        )
                    }),
                }
            })
            .collect();
        let norm = (&m / "norm").ones("weight", &[e]);
        let head =
            (!cfg.tie_word_embeddings).then(|| (&root / "lm_head").randn("weight", &[cfg.vocab_size, e], 0.0, 0.02));
        let inv_freq = Tensor::from_slice(&cfg.inv_freq()).to_kind(Kind::Float).to_device(device);
        Llama { cfg, vs, lora_vs: None, lora_cfg: None, embed, blocks, norm, head, head_int8: None, inv_freq }
    }

    /// Loads a Hugging Face directory (config.json + safetensors or a PyTorch checkpoint); missing and
    /// unexpected weights are named.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let cfg = LlamaConfig::load(&dir.join("config.json"))?;
        let model = Llama::new(cfg, device);
        let mut loaded = std::collections::HashMap::new();
        for f in crate::io::weight_files(dir)? {
            for (name, t) in crate::io::read_weights(&f, device)? {
                if name.ends_with("rotary_emb.inv_freq") || (model.head.is_none() && name == "lm_head.weight") {
                    continue;
                }
                loaded.insert(name, t);
            }
        }
        crate::io::assign(&model.vs, &loaded, dir)?;
        Ok(model)
    }

    /// Logits `[B, T, V]` for token ids `[B, T]` (fp32, no cache).
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        self.forward_cached(ids, &mut LlamaCache::default())
    }

    /// Logits for `ids`, which follow the `cache.len()` tokens already in `cache`; their keys and values
    /// are appended to it. Generation feeds the prompt, then one token at a time.
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut LlamaCache) -> Tensor {
        self.forward_pass(ids, cache, Pass::eval())
    }

    /// Logits (fp32) for `ids` after the cached tokens, in `pass`'s compute precision.
    pub fn forward_pass(&self, ids: &Tensor, cache: &mut LlamaCache, pass: Pass) -> Tensor {
        let (ck, train) = (pass.compute, pass.train);
        let c = &self.cfg;
        let p_drop = if train { c.attention_dropout } else { 0.0 };
        let (b, t) = (ids.size()[0], ids.size()[1]);
        let (hd, nq, nkv) = (c.head_dim(), c.num_attention_heads, c.kv_heads());
        let device = ids.device();
        let start = cache.len();
        let inv = &self.inv_freq;
        let pos = Tensor::arange_start(start, start + t, (Kind::Float, device));
        let freqs = pos.unsqueeze(1) * inv.unsqueeze(0);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        let (cos, sin) = (emb.cos().view([1, 1, t, hd]), emb.sin().view([1, 1, t, hd]));
        let rope = |x: &Tensor| x * &cos + rotate_half(x) * &sin;
        // New token i sees every cached token and the new ones up to itself.
        let mask = cached_causal_mask(start, t, device);
        let g = c.is_gemma();
        // The residual stream stays fp32 whatever the weights' dtype.
        let mut x = Tensor::embedding(&self.embed, ids, -1, false, false).to_kind(Kind::Float);
        if g {
            // √hidden, rounded to the embeddings' dtype as Gemma does.
            x = &x * f64::from((c.hidden_size as f32).sqrt());
        }
        let tanh_gate = c.hidden_act.as_deref() == Some("gelu_pytorch_tanh");
        for (i, blk) in self.blocks.iter().enumerate() {
            let h = rms_norm(&x, &blk.ln1, c.rms_norm_eps, g);
            let q = rope(&blk.q.forward(&h, ck, train).view([b, t, nq, hd]).transpose(1, 2)).to_kind(ck);
            let k = rope(&blk.k.forward(&h, ck, train).view([b, t, nkv, hd]).transpose(1, 2)).to_kind(ck);
            let v = blk.v.forward(&h, ck, train).view([b, t, nkv, hd]).transpose(1, 2);
            let (k, v) = cache.append(i, k, v);
            let rep = nq / nkv;
            let (k, v) = if rep > 1 {
                (k.repeat_interleave_self_int(rep, 1, None), v.repeat_interleave_self_int(rep, 1, None))
            } else {
                (k, v)
            };
            let y = if c.is_gemma2() || c.window(i).is_some() {
                explicit_attention(c, (&q, &k, &v), start, c.window(i), p_drop)
            } else {
                match &mask {
                    None => {
                        Tensor::scaled_dot_product_attention(&q, &k, &v, None::<&Tensor>, p_drop, true, None, false)
                    }
                    Some(m) => Tensor::scaled_dot_product_attention(&q, &k, &v, Some(m), p_drop, false, None, false),
                }
            };
            let y = blk.o.forward(&y.transpose(1, 2).contiguous().view([b, t, nq * hd]), ck, train);
            let mlp = |h: &Tensor| {
                let gate = blk.gate.forward(h, ck, train);
                let gate = if tanh_gate { gate.gelu("tanh") } else { gate.silu() };
                blk.down.forward(&(gate * blk.up.forward(h, ck, train)), ck, train)
            };
            match &blk.ff_norms {
                // Gemma 2: a norm after attention, and norms before and after the MLP.
                Some((pre, post)) => {
                    x = &x + rms_norm(&y, &blk.ln2, c.rms_norm_eps, g);
                    let m = mlp(&rms_norm(&x, pre, c.rms_norm_eps, g));
                    x = &x + rms_norm(&m, post, c.rms_norm_eps, g);
                }
                None => {
                    x = &x + y; // not in place: autograd keeps x for the norm
                    x = &x + mlp(&rms_norm(&x, &blk.ln2, c.rms_norm_eps, g));
                }
            }
        }
        cache.advance(t);
        let x = rms_norm(&x, &self.norm, c.rms_norm_eps, g);
        let w = self.head.as_ref().unwrap_or(&self.embed);
        let logits = if let Some(q) = self.head_int8.as_ref().filter(|_| ck == Kind::Float && !train) {
            q.matmul_t(&x)
        } else if ck == Kind::Float && w.kind() == Kind::Float {
            x.matmul(&w.tr())
        } else {
            x.to_kind(ck).matmul(&w.to_kind(ck).tr()).to_kind(Kind::Float)
        };
        match c.final_logit_softcapping {
            Some(cap) if c.is_gemma2() => (logits / cap).tanh() * cap,
            _ => logits,
        }
    }

    /// Mean cross-entropy of next-token prediction over labels other than -100.
    pub fn loss(&self, ids: &Tensor, labels: &Tensor) -> Tensor {
        next_token_loss(&self.forward(ids), labels)
    }

    /// The loss in `pass` (dropout, compute precision).
    pub fn loss_pass(&self, ids: &Tensor, labels: &Tensor, pass: Pass) -> Tensor {
        next_token_loss(&self.forward_pass(ids, &mut LlamaCache::default(), pass), labels)
    }

    /// Every Linear layer by its module path (`model.layers.0.self_attn.q_proj`), for LoRA.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut v = Vec::new();
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let a = format!("model.layers.{i}.self_attn");
            let m = format!("model.layers.{i}.mlp");
            v.push((format!("{a}.q_proj"), &mut b.q));
            v.push((format!("{a}.k_proj"), &mut b.k));
            v.push((format!("{a}.v_proj"), &mut b.v));
            v.push((format!("{a}.o_proj"), &mut b.o));
            v.push((format!("{m}.gate_proj"), &mut b.gate));
            v.push((format!("{m}.up_proj"), &mut b.up));
            v.push((format!("{m}.down_proj"), &mut b.down));
        }
        v
    }
}

impl CachedLm for Llama {
    fn forward_cached(&self, ids: &Tensor, cache: &mut LlamaCache, compute: Kind) -> Tensor {
        self.forward_pass(ids, cache, Pass { train: false, compute })
    }

    fn context(&self) -> usize {
        self.cfg.max_position_embeddings.unwrap_or(2048) as usize
    }

    fn device(&self) -> Device {
        self.vs.device()
    }
}
