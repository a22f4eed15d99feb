//! The Llama family in Hugging Face's layout and names: Llama 2/3.x, SmolLM/SmolLM2, Mistral (with its
//! sliding window), Qwen2 (the same blocks with q/k/v biases), Qwen3 (RMSNorm over each query and key head,
//! no biases), Phi-3 (fused `qkv_proj` and `gate_up_proj`, partial RoPE, a sliding window), Gemma (the same blocks and names with
//! embeddings scaled by √hidden, RMSNorm as `1 + w`, and a tanh-GELU gate) and Gemma 2 (Gemma plus norms
//! after attention and around the MLP, soft-capped attention scores and logits, and sliding-window
//! layers). RoPE (`rope_theta`, `rope_scaling` types default, linear and llama3), RMSNorm, SwiGLU/GeGLU,
//! grouped-query attention, `head_dim`, tied or untied embeddings, `attention_bias` and `mlp_bias`.
//!
//! The forward pass (with a KV cache for generation, bf16 compute and LoRA on any Linear) and loss are
//! checked against transformers in `tests/families_parity.rs`; [`crate::lm::Lm`] trains it.

use std::path::Path;

use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::ModelError;
use crate::Pass;
use crate::cached::{CachedLm, cached_causal_mask, next_token_loss, padded_batch};
use crate::kvcache::KvCache;
use crate::linear::Linear;
pub use crate::llama_config::{LlamaConfig, RopeScaling};
use crate::lora::LoraConfig;
use crate::varsource::VarSource;
use tch::nn::Init;

/// The attention's input projections: separate, or Phi-3's one `qkv_proj`.
enum Qkv {
    Split(Linear, Linear, Linear),
    Fused(Linear),
}

/// The MLP's gate and up projections: separate, or Phi-3's one `gate_up_proj`.
enum GateUp {
    Split(Linear, Linear),
    Fused(Linear),
}

struct Block {
    qkv: Qkv,
    o: Linear,
    gate_up: GateUp,
    down: Linear,
    /// Qwen3's per-head norms of the queries and keys.
    qk_norms: Option<(Tensor, Tensor)>,
    ln1: Tensor,
    ln2: Tensor,
    /// Gemma 2's norms around the MLP.
    ff_norms: Option<(Tensor, Tensor)>,
}

impl Block {
    /// Queries `[B, T, heads, hd]` and keys `[B, T, kv_heads, hd]` (after Qwen3's per-head norms) and values
    /// `[B, T, kv_heads·hd]` of the normed input `h`, split from Phi-3's fused projection where it has one.
    fn project(&self, c: &LlamaConfig, h: &Tensor, [b, t]: [i64; 2], pass: Pass) -> (Tensor, Tensor, Tensor) {
        let (ck, train) = (pass.compute, pass.train);
        let (hd, nq, nkv) = (c.head_dim(), c.num_attention_heads, c.kv_heads());
        let (q, k, v) = match &self.qkv {
            Qkv::Split(q, k, v) => (q.forward(h, ck, train), k.forward(h, ck, train), v.forward(h, ck, train)),
            Qkv::Fused(qkv) => {
                let all = qkv.forward(h, ck, train);
                (
                    all.narrow(-1, 0, nq * hd),
                    all.narrow(-1, nq * hd, nkv * hd),
                    all.narrow(-1, (nq + nkv) * hd, nkv * hd),
                )
            }
        };
        let (q, k) = (q.view([b, t, nq, hd]), k.view([b, t, nkv, hd]));
        match &self.qk_norms {
            Some((qn, kn)) => (rms_norm(&q, qn, c.rms_norm_eps, false), rms_norm(&k, kn, c.rms_norm_eps, false), v),
            None => (q, k, v),
        }
    }

    /// The gated MLP (SwiGLU, or Gemma's tanh-GeGLU) of the normed input `h`.
    fn mlp(&self, c: &LlamaConfig, h: &Tensor, pass: Pass) -> Tensor {
        let (ck, train) = (pass.compute, pass.train);
        let (gate, up) = match &self.gate_up {
            GateUp::Split(gate, up) => (gate.forward(h, ck, train), up.forward(h, ck, train)),
            GateUp::Fused(gu) => {
                let both = gu.forward(h, ck, train);
                let n = c.intermediate_size;
                (both.narrow(-1, 0, n), both.narrow(-1, n, n))
            }
        };
        let gate = if c.hidden_act.as_deref() == Some("gelu_pytorch_tanh") { gate.gelu("tanh") } else { gate.silu() };
        self.down.forward(&(gate * up), ck, train)
    }
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
    (window, pad_mask): (Option<i64>, Option<&Tensor>),
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
    if let Some(m) = pad_mask {
        allowed = allowed.logical_and(m);
    }
    let s = s.masked_fill(&allowed.logical_not(), f64::NEG_INFINITY);
    crate::dropout::dropout(&s.softmax(-1, Kind::Float), dropout, dropout > 0.0).to_kind(v.kind()).matmul(v)
}

/// `cat(-x2, x1)` over the last dimension's halves.
fn rotate_half(x: &Tensor) -> Tensor {
    let h = x.size()[x.dim() - 1] / 2;
    Tensor::cat(&[-x.narrow(-1, h, h), x.narrow(-1, 0, h)], -1)
}

impl Llama {
    /// Random weights of `cfg`'s shape on `device`.
    pub fn new(cfg: LlamaConfig, device: Device) -> Self {
        Self::build(cfg, device, &VarSource::random())
    }

    /// The model with its variables from `src` (random, or a checkpoint's tensors).
    fn build(cfg: LlamaConfig, device: Device, src: &VarSource) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let m = &root / "model";
        let (e, hd, nq, nkv) = (cfg.hidden_size, cfg.head_dim(), cfg.num_attention_heads, cfg.kv_heads());
        let qkv_bias = cfg.qkv_bias();
        let lin = |p: nn::Path<'_>, i, o, bias| Linear::build(p, i, o, bias, 0.02, src);
        let normal = Init::Randn { mean: 0.0, stdev: 0.02 };
        let ones_of = |p: nn::Path<'_>, n: i64| src.var(&p, "weight", &[n], Init::Const(1.0));
        let ones = |p: nn::Path<'_>| ones_of(p, e);
        let inter = cfg.intermediate_size;
        let embed = src.var(&(&m / "embed_tokens"), "weight", &[cfg.vocab_size, e], normal);
        let blocks = (0..cfg.num_hidden_layers)
            .map(|i| {
                let b = &m / "layers" / i;
                let a = &b / "self_attn";
                let mlp = &b / "mlp";
                let fused = cfg.fused_projections();
                Block {
                    qkv: if fused {
                        Qkv::Fused(lin(&a / "qkv_proj", e, (nq + 2 * nkv) * hd, qkv_bias))
                    } else {
                        Qkv::Split(
                            lin(&a / "q_proj", e, nq * hd, qkv_bias),
                            lin(&a / "k_proj", e, nkv * hd, qkv_bias),
                            lin(&a / "v_proj", e, nkv * hd, qkv_bias),
                        )
                    },
                    o: lin(&a / "o_proj", nq * hd, e, cfg.attention_bias),
                    gate_up: if fused {
                        GateUp::Fused(lin(&mlp / "gate_up_proj", e, 2 * inter, cfg.mlp_bias))
                    } else {
                        GateUp::Split(
                            lin(&mlp / "gate_proj", e, inter, cfg.mlp_bias),
                            lin(&mlp / "up_proj", e, inter, cfg.mlp_bias),
                        )
                    },
                    down: lin(&mlp / "down_proj", inter, e, cfg.mlp_bias),
                    qk_norms: cfg.has_qk_norm().then(|| (ones_of(&a / "q_norm", hd), ones_of(&a / "k_norm", hd))),
                    ln1: ones(&b / "input_layernorm"),
                    ln2: ones(&b / "post_attention_layernorm"),
                    ff_norms: cfg
                        .is_gemma2()
                        .then(|| (ones(&b / "pre_feedforward_layernorm"), ones(&b / "post_feedforward_layernorm"))),
                }
            })
            .collect();
        let norm = ones(&m / "norm");
        let head =
            (!cfg.tie_word_embeddings).then(|| src.var(&(&root / "lm_head"), "weight", &[cfg.vocab_size, e], normal));
        let inv_freq = Tensor::from_slice(&cfg.inv_freq()).to_kind(Kind::Float).to_device(device);
        Llama { cfg, vs, lora_vs: None, lora_cfg: None, embed, blocks, norm, head, head_int8: None, inv_freq }
    }

    /// Loads a Hugging Face directory (config.json + safetensors or a PyTorch checkpoint); missing and
    /// unexpected weights are named.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        Self::load_as(dir, device, Kind::Float)
    }

    /// Loads with the matrices in `kind` (bf16 for inference holds about the checkpoint's bf16 size; no
    /// fp32 copy is made) and norms in fp32.
    pub fn load_as(dir: &Path, device: Device, kind: Kind) -> Result<Self, ModelError> {
        Self::load_from(dir, LlamaConfig::load(&dir.join("config.json"))?, device, kind)
    }

    /// [`Llama::load_as`] with the configuration already read (config.json is parsed once per load).
    pub fn load_from(dir: &Path, cfg: LlamaConfig, device: Device, kind: Kind) -> Result<Self, ModelError> {
        let mut loaded = std::collections::HashMap::new();
        for f in crate::io::weight_files(dir)? {
            for (name, t) in crate::io::read_weights_as(&f, device, kind)? {
                if name.ends_with("rotary_emb.inv_freq") || (cfg.tie_word_embeddings && name == "lm_head.weight") {
                    continue;
                }
                loaded.insert(name, t);
            }
        }
        let src = VarSource::loaded(loaded);
        let model = Llama::build(cfg, device, &src);
        src.finish(dir)?;
        Ok(model)
    }

    /// Logits `[B, T, V]` for token ids `[B, T]` (fp32, no cache).
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        self.logits_cached(ids, &mut KvCache::default(), Pass::eval())
    }

    /// The output projection's weight `[V, E]` (the tied embeddings or the separate head).
    pub fn output_weight(&self) -> &Tensor {
        self.head.as_ref().unwrap_or(&self.embed)
    }

    /// Final hidden states `[B, T, E]` (after the last norm) for `ids` after the cached tokens.
    pub fn hidden_pass(&self, ids: &Tensor, cache: &mut KvCache, pass: Pass) -> Tensor {
        let c = &self.cfg;
        let t = ids.size()[1];
        let ctx = self.pass_ctx(ids, cache.len(), cache.pads());
        let mut x = self.embed_pass(ids);
        let seeds = crate::checkpoint::BlockSeeds::draw(pass.train, self.blocks.len());
        for i in 0..self.blocks.len() {
            seeds.block(i);
            x = self.block(i, &x, &ctx, Some(&mut *cache), pass);
        }
        seeds.done();
        cache.advance(t);
        rms_norm(&x, &self.norm, c.rms_norm_eps, c.is_gemma())
    }

    /// The residual stream entering block 0: the token embeddings in fp32 (× √hidden for Gemma).
    pub(crate) fn embed_pass(&self, ids: &Tensor) -> Tensor {
        let c = &self.cfg;
        // The residual stream stays fp32 whatever the weights' dtype.
        let x = Tensor::embedding(&self.embed, ids, -1, false, false).to_kind(Kind::Float);
        // √hidden, rounded to the embeddings' dtype as Gemma does.
        if c.is_gemma() { &x * f64::from((c.hidden_size as f32).sqrt()) } else { x }
    }

    /// The rotary tables and masks of a pass over `ids` after `start` cached tokens (`pads`: the cache's
    /// left padding per row).
    pub(crate) fn pass_ctx(&self, ids: &Tensor, start: i64, pads: &[i64]) -> LlamaCtx {
        let t = ids.size()[1];
        let device = ids.device();
        // A left-padded batch: per-row positions and a mask without the padding.
        let batch = padded_batch(pads, start, t, device);
        let pos = match &batch {
            Some((p, _)) => p.to_kind(Kind::Float),
            None => Tensor::arange_start(start, start + t, (Kind::Float, device)).unsqueeze(0),
        };
        let freqs = pos.unsqueeze(-1) * self.inv_freq.view([1, 1, -1]);
        let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1);
        let pad_mask = batch.map(|(_, m)| m);
        // New token i sees every cached token and the new ones up to itself.
        let mask = pad_mask.as_ref().map(|m| m.shallow_clone()).or_else(|| cached_causal_mask(start, t, device));
        LlamaCtx { cos: emb.cos(), sin: emb.sin(), mask, pad_mask, start }
    }

    /// Number of blocks.
    pub(crate) fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Block `i` on the residual stream `x` `[B, T, E]` (fp32), its keys and values appended to `cache`.
    pub(crate) fn block(
        &self,
        i: usize,
        x: &Tensor,
        ctx: &LlamaCtx,
        cache: Option<&mut KvCache>,
        pass: Pass,
    ) -> Tensor {
        let (ck, train) = (pass.compute, pass.train);
        let c = &self.cfg;
        let blk = &self.blocks[i];
        let p_drop = if train { c.attention_dropout } else { 0.0 };
        let (b, t) = (x.size()[0], x.size()[1]);
        let (hd, nq, nkv) = (c.head_dim(), c.num_attention_heads, c.kv_heads());
        let rd = c.rotary_dim();
        let rope = |x: &Tensor| {
            if rd == hd {
                x * &ctx.cos + rotate_half(x) * &ctx.sin
            } else {
                // Partial RoPE: the first `rd` dimensions of each head turn, the rest pass.
                let r = x.narrow(-1, 0, rd);
                Tensor::cat(&[&r * &ctx.cos + rotate_half(&r) * &ctx.sin, x.narrow(-1, rd, hd - rd)], -1)
            }
        };
        let g = c.is_gemma();
        let h = rms_norm(x, &blk.ln1, c.rms_norm_eps, g);
        let (q, k, v) = blk.project(c, &h, [b, t], pass);
        let q = rope(&q.transpose(1, 2)).to_kind(ck);
        let k = rope(&k.transpose(1, 2)).to_kind(ck);
        let v = v.reshape([b, t, nkv, hd]).transpose(1, 2);
        let (k, v) = match cache {
            Some(cache) => cache.append(i, &k, &v),
            None => (k, v),
        };
        let rep = nq / nkv;
        let y = if c.is_gemma2() || c.window(i).is_some() {
            let (k, v) = if rep > 1 {
                (k.repeat_interleave_self_int(rep, 1, None), v.repeat_interleave_self_int(rep, 1, None))
            } else {
                (k, v)
            };
            explicit_attention(c, (&q, &k, &v), ctx.start, (c.window(i), ctx.pad_mask.as_ref()), p_drop)
        } else {
            // Grouped-query attention inside SDPA (`enable_gqa`): no repeated copy of the keys and values.
            let gqa = rep > 1;
            match &ctx.mask {
                None => crate::dropout::attention(&q, &k, &v, None, p_drop, true, gqa),
                Some(m) => crate::dropout::attention(&q, &k, &v, Some(m), p_drop, false, gqa),
            }
        };
        let y = blk.o.forward(&y.transpose(1, 2).contiguous().view([b, t, nq * hd]), ck, train);
        let mlp = |h: &Tensor| blk.mlp(c, h, pass);
        match &blk.ff_norms {
            // Gemma 2: a norm after attention, and norms before and after the MLP.
            Some((pre, post)) => {
                let x = x + rms_norm(&y, &blk.ln2, c.rms_norm_eps, g);
                let m = mlp(&rms_norm(&x, pre, c.rms_norm_eps, g));
                &x + rms_norm(&m, post, c.rms_norm_eps, g)
            }
            None => {
                let x = x + y; // not in place: autograd keeps x for the norm
                &x + mlp(&rms_norm(&x, &blk.ln2, c.rms_norm_eps, g))
            }
        }
    }

    /// The final norm.
    pub(crate) fn final_norm(&self, x: &Tensor) -> Tensor {
        rms_norm(x, &self.norm, self.cfg.rms_norm_eps, self.cfg.is_gemma())
    }

    /// Logits (fp32, soft-capped where the config says) of final hidden states.
    pub fn head_pass(&self, x: &Tensor, pass: Pass) -> Tensor {
        let (ck, train, c) = (pass.compute, pass.train, &self.cfg);
        let w = self.output_weight();
        let logits = if let Some(q) = self.head_int8.as_ref().filter(|_| ck == Kind::Float && !train) {
            q.matmul_t(x)
        } else if ck == Kind::Float && w.kind() == Kind::Float {
            (!train).then(|| crate::decode::linear_rows(w, None, x)).flatten().unwrap_or_else(|| x.matmul(&w.tr()))
        } else if let Some(y) =
            (!train && w.kind() == Kind::BFloat16).then(|| crate::bf16::linear_rows_bf16(w, None, x)).flatten()
        {
            y
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
        next_token_loss(&self.logits_cached(ids, &mut KvCache::default(), pass), labels)
    }

    /// Every Linear layer by its module path (`model.layers.0.self_attn.q_proj`), for LoRA.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut v = Vec::new();
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let a = format!("model.layers.{i}.self_attn");
            let m = format!("model.layers.{i}.mlp");
            match &mut b.qkv {
                Qkv::Split(q, k, vv) => {
                    v.push((format!("{a}.q_proj"), q));
                    v.push((format!("{a}.k_proj"), k));
                    v.push((format!("{a}.v_proj"), vv));
                }
                Qkv::Fused(qkv) => v.push((format!("{a}.qkv_proj"), qkv)),
            }
            v.push((format!("{a}.o_proj"), &mut b.o));
            match &mut b.gate_up {
                GateUp::Split(gate, up) => {
                    v.push((format!("{m}.gate_proj"), gate));
                    v.push((format!("{m}.up_proj"), up));
                }
                GateUp::Fused(gu) => v.push((format!("{m}.gate_up_proj"), gu)),
            }
            v.push((format!("{m}.down_proj"), &mut b.down));
        }
        v
    }
}

/// What every block of one pass shares: the rotary tables, the masks and the cache's length.
#[derive(Debug)]
pub(crate) struct LlamaCtx {
    cos: Tensor,
    sin: Tensor,
    mask: Option<Tensor>,
    pad_mask: Option<Tensor>,
    start: i64,
}

impl CachedLm for Llama {
    fn hidden_cached(&self, ids: &Tensor, cache: &mut KvCache, pass: Pass) -> Tensor {
        self.hidden_pass(ids, cache, pass)
    }

    fn head_logits(&self, x: &Tensor, pass: Pass) -> Tensor {
        self.head_pass(x, pass)
    }

    fn context(&self) -> usize {
        self.cfg.max_position_embeddings.unwrap_or(2048) as usize
    }

    fn device(&self) -> Device {
        self.vs.device()
    }
}
