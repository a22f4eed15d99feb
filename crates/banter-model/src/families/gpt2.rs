//! GPT-2 exactly as Hugging Face's `GPT2LMHeadModel`: learned positions, pre-LayerNorm blocks, fused
//! `c_attn` (q|k|v), `gelu_new`, tied `lm_head`. Weights are kept in HF's Conv1D layout (`[in, out]`,
//! `y = x·W + b`), so they load and save under HF's names with no transposes. Attention goes through
//! `scaled_dot_product_attention`, with an optional KV cache for generation.

use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

use crate::causal::Pass;
use crate::config::Gpt2Config;
use crate::head::head_chunk_rows;
use crate::kvcache::KvCache;
use crate::lora::{LoraConfig, LoraPair};
use crate::quant::Int8Weight;

/// A `Conv1D` layer: weight `[in, out]`, bias `[out]`, and maybe a LoRA pair.
#[derive(Debug)]
pub struct Conv1D {
    /// Weight, `[in, out]`.
    pub w: Tensor,
    /// Bias, `[out]`.
    pub b: Tensor,
    /// LoRA adapter on this layer.
    pub lora: Option<LoraPair>,
    /// int8 copy of the weight for inference (`quantize_int8`).
    pub int8: Option<Int8Weight>,
}

impl Conv1D {
    fn new(p: nn::Path<'_>, n_in: i64, n_out: i64, std: f64) -> Self {
        Conv1D {
            w: p.var("weight", &[n_in, n_out], Init::Randn { mean: 0.0, stdev: std }),
            b: p.var("bias", &[n_out], Init::Const(0.0)),
            lora: None,
            int8: None,
        }
    }

    /// `x·W + b` (+ LoRA) as one `addmm`, as HF's Conv1D. In bf16 (`compute`), inputs are cast and the
    /// output stays bf16, as autocast does: the next matmul, GELU and attention then read half the bytes;
    /// residual additions promote back to fp32.
    pub fn forward(&self, x: &Tensor, compute: Kind, train: bool) -> Tensor {
        let size = x.size();
        let n_in = *size.last().unwrap_or(&1);
        let n_out = self.b.size()[0];
        let x2 = x.reshape([-1, n_in]);
        // `x` in `compute` when the bf16 branch below makes it, for LoRA's branch to reuse.
        let mut cast_x = None;
        let out = if let Some(q) = self.int8.as_ref().filter(|_| compute == Kind::Float && !train) {
            q.matmul_t(&x2) + &self.b
        } else if compute == Kind::Float && self.w.kind() == Kind::Float {
            match (!train).then(|| crate::decode::linear_rows(&self.w.tr(), Some(&self.b), &x2)).flatten() {
                Some(y) => y,
                None => self.b.addmm(&x2, &self.w),
            }
        } else if compute == Kind::Float {
            // bf16/fp16 weights under fp32 activations (decoding with half weights): the product in the
            // weights' kind, fp32 out, so the cache and the residual stream stay fp32.
            let k = self.w.kind();
            x2.to_kind(k).mm(&self.w).to_kind(Kind::Float) + &self.b
        } else {
            let xc = if x2.kind() == compute { x2.shallow_clone() } else { x2.to_kind(compute) };
            use crate::castcache::cast;
            let y = cast(&self.b, compute, false).addmm(&xc, &cast(&self.w, compute, false));
            cast_x = Some(xc);
            y
        };
        let mut shape = size[..size.len() - 1].to_vec();
        shape.push(n_out);
        match &self.lora {
            // In bf16 the branch's output is bf16 too (PEFT under autocast), so the sum stays bf16.
            Some(l) => l.add_to(out, &x2, cast_x.as_ref(), compute, train).view(shape.as_slice()),
            None => out.view(shape.as_slice()),
        }
    }
}

impl crate::lora::LoraTarget for Conv1D {
    fn in_out(&self) -> (i64, i64) {
        (self.w.size()[0], self.w.size()[1])
    }
    fn lora_slot(&mut self) -> &mut Option<LoraPair> {
        &mut self.lora
    }
    fn add_to_weight(&mut self, delta: &Tensor) {
        let merged = &self.w + delta.tr().to_kind(self.w.kind());
        self.w.set_data(&merged);
    }
}

/// LayerNorm parameters.
#[derive(Debug)]
pub struct Norm {
    /// Scale.
    pub w: Tensor,
    /// Shift.
    pub b: Tensor,
}

impl Norm {
    fn new(p: nn::Path<'_>, n: i64) -> Self {
        Norm { w: p.var("weight", &[n], Init::Const(1.0)), b: p.var("bias", &[n], Init::Const(0.0)) }
    }
    pub(crate) fn forward(&self, x: &Tensor, eps: f64) -> Tensor {
        x.layer_norm([*x.size().last().unwrap_or(&1)], Some(&self.w), Some(&self.b), eps, true)
    }
}

/// One transformer block.
#[derive(Debug)]
pub struct Block {
    /// Pre-attention norm.
    pub ln_1: Norm,
    /// q|k|v projection.
    pub c_attn: Conv1D,
    /// Attention output projection.
    pub attn_proj: Conv1D,
    /// Pre-MLP norm.
    pub ln_2: Norm,
    /// MLP up-projection.
    pub c_fc: Conv1D,
    /// MLP down-projection.
    pub mlp_proj: Conv1D,
}

/// GPT-2 with its weights in a VarStore named as Hugging Face names them (`transformer.h.0.attn.c_attn.weight`).
#[derive(Debug)]
pub struct Gpt2 {
    /// Shape and hyper-parameters.
    pub cfg: Gpt2Config,
    /// The base weights.
    pub vs: nn::VarStore,
    /// LoRA weights (PEFT names), when an adapter is attached.
    pub lora_vs: Option<nn::VarStore>,
    /// The LoRA configuration, when attached.
    pub lora_cfg: Option<LoraConfig>,
    /// Token embeddings `[V, E]` (also the output projection).
    pub wte: Tensor,
    /// Position embeddings `[P, E]`.
    pub wpe: Tensor,
    /// Blocks.
    pub blocks: Vec<Block>,
    /// Final norm.
    pub ln_f: Norm,
    /// int8 copy of the output projection for inference (`quantize_int8`).
    pub head_int8: Option<Int8Weight>,
    /// The training loss's logits buffer, kept between steps ([`Gpt2::loss_backward`]).
    pub(crate) head_scratch: std::cell::RefCell<Option<Tensor>>,
}

impl Gpt2 {
    /// A randomly initialised model (GPT-2's init: N(0, 0.02), residual projections scaled by 1/√(2·layers)).
    pub fn new(cfg: Gpt2Config, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let t = root.sub("transformer");
        let (e, std) = (cfg.n_embd, cfg.initializer_range);
        let proj_std = std / (2.0 * cfg.n_layer as f64).sqrt();
        let wte = t.sub("wte").var("weight", &[cfg.vocab_size, e], Init::Randn { mean: 0.0, stdev: std });
        let wpe = t.sub("wpe").var("weight", &[cfg.n_positions, e], Init::Randn { mean: 0.0, stdev: std });
        let blocks = (0..cfg.n_layer)
            .map(|i| {
                let h = t.sub("h").sub(i.to_string());
                Block {
                    ln_1: Norm::new(h.sub("ln_1"), e),
                    c_attn: Conv1D::new(h.sub("attn").sub("c_attn"), e, 3 * e, std),
                    attn_proj: Conv1D::new(h.sub("attn").sub("c_proj"), e, e, proj_std),
                    ln_2: Norm::new(h.sub("ln_2"), e),
                    c_fc: Conv1D::new(h.sub("mlp").sub("c_fc"), e, cfg.inner(), std),
                    mlp_proj: Conv1D::new(h.sub("mlp").sub("c_proj"), cfg.inner(), e, proj_std),
                }
            })
            .collect();
        let ln_f = Norm::new(t.sub("ln_f"), e);
        Gpt2 {
            cfg,
            vs,
            lora_vs: None,
            lora_cfg: None,
            wte,
            wpe,
            blocks,
            ln_f,
            head_int8: None,
            head_scratch: std::cell::RefCell::new(None),
        }
    }

    /// The device the weights are on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Every Conv1D with its module path (`transformer.h.3.attn.c_proj`).
    pub fn conv_layers_mut(&mut self) -> Vec<(String, &mut Conv1D)> {
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter_mut().enumerate() {
            out.push((format!("transformer.h.{i}.attn.c_attn"), &mut b.c_attn));
            out.push((format!("transformer.h.{i}.attn.c_proj"), &mut b.attn_proj));
            out.push((format!("transformer.h.{i}.mlp.c_fc"), &mut b.c_fc));
            out.push((format!("transformer.h.{i}.mlp.c_proj"), &mut b.mlp_proj));
        }
        out
    }

    /// Logits `[B, T, V]` for token ids `[B, T]`, continuing after what `cache` holds (and extending it).
    // `x = x + y` stays out of place on purpose: `x += y` on a tch tensor is an in-place add, which would
    // overwrite activations autograd saved for the backward pass.
    #[allow(clippy::assign_op_pattern)]
    pub fn forward(&self, ids: &Tensor, cache: Option<&mut KvCache>, pass: Pass) -> Tensor {
        let x = self.hidden(ids, cache, pass);
        self.lm_head(&x, &self.head_weight(pass), pass)
    }

    /// Logits `[B, V]` of the last position only (a prompt's prefill needs no others).
    pub fn forward_last(&self, ids: &Tensor, cache: Option<&mut KvCache>, pass: Pass) -> Tensor {
        let x = self.hidden(ids, cache, pass);
        let t = x.size()[1];
        self.lm_head(&x.select(1, t - 1), &self.head_weight(pass), pass)
    }

    /// The output projection's weight in the pass's precision (cast once per pass).
    fn head_weight(&self, pass: Pass) -> Tensor {
        if pass.compute == Kind::Float {
            self.wte.shallow_clone()
        } else {
            crate::castcache::cast(&self.wte, pass.compute, false)
        }
    }

    /// The output projection (tied to the token embeddings).
    fn lm_head(&self, x: &Tensor, w: &Tensor, pass: Pass) -> Tensor {
        if pass.compute == Kind::Float && !pass.train {
            let size = x.size();
            if let Some(y) = self.head_rows(&x.reshape([-1, *size.last().unwrap_or(&1)])) {
                let mut shape = size[..size.len() - 1].to_vec();
                shape.push(self.cfg.vocab_size);
                return y.view(shape.as_slice());
            }
        }
        if let Some(q) = self.head_int8.as_ref().filter(|_| pass.compute == Kind::Float && !pass.train) {
            q.matmul_t(x)
        } else if pass.compute == Kind::Float && w.kind() == Kind::Float {
            x.matmul(&w.tr())
        } else if pass.compute == Kind::Float {
            x.to_kind(w.kind()).matmul(&w.tr()).to_kind(Kind::Float)
        } else {
            x.to_kind(pass.compute).matmul(&w.tr()).to_kind(Kind::Float)
        }
    }

    /// Final hidden states `[B, T, E]` (after `ln_f`).
    #[allow(clippy::assign_op_pattern)]
    pub fn hidden(&self, ids: &Tensor, cache: Option<&mut KvCache>, pass: Pass) -> Tensor {
        self.hidden_from(ids.embedding_wte(&self.wte), ids, cache, pass)
    }

    /// [`Gpt2::hidden`] from token embeddings already looked up (`tok = wte[ids]`, `[B, T, E]`).
    #[allow(clippy::assign_op_pattern)]
    pub fn hidden_from(&self, tok: Tensor, ids: &Tensor, cache: Option<&mut KvCache>, pass: Pass) -> Tensor {
        let (b, t) = (ids.size()[0], ids.size()[1]);
        let cfg = &self.cfg;
        let past = cache.as_ref().map_or(0, |c| c.len());
        let pads = cache.as_ref().map(|c| c.pads().to_vec()).unwrap_or_default();
        let dev = ids.device();
        let pos = Tensor::arange_start(past, past + t, (Kind::Int64, dev));
        let (mut x, mask) = if pads.is_empty() {
            // With cached keys and several new tokens, new token i sees cached tokens and new tokens ≤ i.
            let mask = (past > 0 && t > 1).then(|| Tensor::ones([t, past + t], (Kind::Bool, dev)).tril(past));
            (tok + pos.embedding_wte(&self.wpe).unsqueeze(0), mask)
        } else {
            // Left-padded rows: positions start at each row's first real token; keys before it are
            // hidden (a padded query sees itself only, so no row of the mask is empty).
            let pad = Tensor::from_slice(&pads).to_device(dev).view([b, 1]);
            let row_pos = (pos.view([1, t]) - &pad).clamp_min(0);
            let keys = Tensor::arange(past + t, (Kind::Int64, dev)).view([1, 1, 1, past + t]);
            let query = pos.view([1, 1, t, 1]);
            let visible = keys.ge_tensor(&pad.view([b, 1, 1, 1])).logical_and(&keys.le_tensor(&query));
            let mask = visible.logical_or(&keys.eq_tensor(&query));
            (tok + row_pos.embedding_wte(&self.wpe), Some(mask))
        };
        let seeds = crate::checkpoint::BlockSeeds::draw(pass.train, self.blocks.len());
        seeds.embed();
        x = crate::dropout::dropout(&x, cfg.embd_pdrop, pass.train);
        let mut cache = cache;
        for li in 0..self.blocks.len() {
            seeds.block(li);
            x = self.block(li, x, mask.as_ref(), past, cache.as_deref_mut(), pass);
        }
        seeds.done();
        if let Some(c) = cache {
            c.advance(t);
        }
        self.ln_f.forward(&x, cfg.layer_norm_epsilon)
    }

    /// Block `li` on the residual stream `x` `[B, T, E]` (fp32): attention over the cached keys (`past` of
    /// them, extended when `cache` is given) and the MLP.
    #[allow(clippy::assign_op_pattern)]
    pub(crate) fn block(
        &self,
        li: usize,
        x: Tensor,
        mask: Option<&Tensor>,
        past: i64,
        cache: Option<&mut KvCache>,
        pass: Pass,
    ) -> Tensor {
        let cfg = &self.cfg;
        let blk = &self.blocks[li];
        let (b, t) = (x.size()[0], x.size()[1]);
        let (nh, e) = (cfg.n_head, cfg.n_embd);
        let hd = e / nh;
        let h = blk.ln_1.forward(&x, cfg.layer_norm_epsilon);
        let qkv = blk.c_attn.forward(&h, pass.compute, pass.train);
        let parts = qkv.split(e, 2);
        let shape = |z: &Tensor| z.view([b, t, nh, hd]).transpose(1, 2);
        let (q, mut k, mut v) = (shape(&parts[0]), shape(&parts[1]), shape(&parts[2]));
        if let Some(c) = cache {
            (k, v) = c.append(li, &k, &v);
        }
        let dropout = if pass.train { cfg.attn_pdrop } else { 0.0 };
        let causal = past == 0 && t > 1 && mask.is_none();
        let (q, k, v) = if pass.compute == Kind::Float {
            (q, k, v)
        } else {
            (q.to_kind(pass.compute), k.to_kind(pass.compute), v.to_kind(pass.compute))
        };
        let y = crate::dropout::attention(&q, &k, &v, mask, dropout, causal, false);
        let y = y.transpose(1, 2).contiguous().view([b, t, e]);
        let y =
            crate::dropout::dropout(&blk.attn_proj.forward(&y, pass.compute, pass.train), cfg.resid_pdrop, pass.train);
        let x = x + y.to_kind(Kind::Float);
        let h = blk.ln_2.forward(&x, cfg.layer_norm_epsilon);
        let approx = if cfg.activation_function == "gelu" { "none" } else { "tanh" };
        let m = blk.c_fc.forward(&h, pass.compute, pass.train).gelu(approx);
        let m =
            crate::dropout::dropout(&blk.mlp_proj.forward(&m, pass.compute, pass.train), cfg.resid_pdrop, pass.train);
        x + m.to_kind(Kind::Float)
    }

    /// Mean cross-entropy of next-token prediction: logits at t predict labels at t+1; `-100` is ignored.
    /// Returns (loss, number of target tokens).
    ///
    /// The logits are computed in chunks of rows ([`head_chunk_rows`]): a `[B·T, V]` matrix for a 50k
    /// vocabulary and a large batch is hundreds of MB.
    pub fn loss(&self, ids: &Tensor, labels: &Tensor, pass: Pass) -> (Tensor, i64) {
        let x = self.hidden(ids, None, pass);
        let (b, t, e) = (x.size()[0], x.size()[1], x.size()[2]);
        let rows = b * (t - 1);
        let h = x.narrow(1, 0, t - 1).reshape([rows, e]);
        let y = labels.narrow(1, 1, t - 1).reshape([rows]);
        let n = y.ne(-100).sum(Kind::Int64).int64_value(&[]);
        let chunk = head_chunk_rows(self.cfg.vocab_size);
        let mut total: Option<Tensor> = None;
        let mut start = 0;
        let w = self.head_weight(pass);
        let h = if pass.compute == Kind::Float { h } else { h.to_kind(pass.compute) };
        while start < rows {
            let len = chunk.min(rows - start);
            let logits = self.lm_head(&h.narrow(0, start, len), &w, pass);
            let part =
                logits.cross_entropy_loss::<Tensor>(&y.narrow(0, start, len), None, tch::Reduction::Sum, -100, 0.0);
            total = Some(match total {
                Some(t) => t + part,
                None => part,
            });
            start += len;
        }
        let total = total.unwrap_or_else(|| Tensor::zeros([], (Kind::Float, x.device())));
        (total / (n.max(1) as f64), n)
    }

    /// Grows the vocabulary to `n` tokens (new special tokens): new rows initialised like GPT-2's
    /// (N(0, 0.02)); the output projection is tied, so it grows too.
    pub fn resize_vocab(&mut self, n: i64) {
        let old = self.cfg.vocab_size;
        if n <= old {
            return;
        }
        let _g = tch::no_grad_guard();
        let extra =
            Tensor::randn([n - old, self.cfg.n_embd], (Kind::Float, self.device())) * self.cfg.initializer_range;
        let grown = Tensor::cat(&[&self.wte, &extra], 0);
        // `set_data` swaps the storage under the same tensor, so the VarStore entry, the optimizer's view
        // and `self.wte` all see the grown matrix.
        self.wte.set_data(&grown);
        self.cfg.vocab_size = n;
    }

    /// Converts the matrices (token embeddings and Conv1D weights) to bf16 for inference: half the bytes to
    /// read per generated token. Norms, biases and positions stay fp32.
    pub fn to_bf16_weights(&mut self) {
        self.to_half_weights(Kind::BFloat16);
    }

    /// Converts the matrices to `kind` (bf16 or fp16) for inference; passes then compute in `kind`.
    pub fn to_half_weights(&mut self, kind: Kind) {
        self.cast_matrices(kind, true);
    }

    /// Casts the Conv1D matrices to `kind`, and the token embeddings too when `tokens`.
    pub(crate) fn cast_matrices(&mut self, kind: Kind, tokens: bool) {
        let _g = tch::no_grad_guard();
        if tokens {
            let bf = self.wte.to_kind(kind);
            self.wte.set_data(&bf);
        }
        for (_, l) in self.conv_layers_mut() {
            let w = l.w.to_kind(kind);
            l.w.set_data(&w);
        }
    }

    /// Lays the weights out for generation; no copy is kept, memory is unchanged.
    ///
    /// On CPU in fp32 or bf16, each Conv1D matrix is stored column-major (the same `[in, out]` tensor, its
    /// `[out, in]` transpose contiguous) so that [`crate::decode`]'s kernels read each output's weights as
    /// one contiguous row; the token embeddings are already rows. Elsewhere the token embeddings are stored
    /// column-major, so libtorch's output projection `x·Wᵀ` reads a contiguous `[E, V]` matrix — on a 2-core
    /// AVX2 EPYC its `[1, 768] × [768, 50257]` took 7.9 ms that way and 12–13 ms on the transposed view.
    ///
    /// The base weights stop requiring gradients (a model laid out for generation is not trained), so the
    /// Rust kernels see at once that a product needs no autograd history.
    pub fn prepare_for_decode(&mut self) {
        let _g = tch::no_grad_guard();
        self.vs.freeze();
        let kind = self.wte.kind();
        if self.device() == Device::Cpu && matches!(kind, Kind::Float | Kind::BFloat16) {
            let t = self.wte.contiguous();
            self.wte.set_data(&t);
            for (_, l) in self.conv_layers_mut() {
                if l.w.kind() == kind && l.int8.is_none() {
                    let t = l.w.tr().contiguous().tr();
                    l.w.set_data(&t);
                }
            }
        } else {
            let t = self.wte.tr().contiguous().tr();
            self.wte.set_data(&t);
        }
    }

    /// Number of parameters of the base model.
    pub fn num_params(&self) -> i64 {
        self.vs.variables().values().map(|t| t.numel() as i64).sum()
    }
}

/// `embedding` with the weight as the receiver's partner (ids.embedding(weight)).
trait EmbeddingExt {
    fn embedding_wte(&self, weight: &Tensor) -> Tensor;
}

impl EmbeddingExt for Tensor {
    fn embedding_wte(&self, weight: &Tensor) -> Tensor {
        Tensor::embedding(weight, self, -1, false, false)
    }
}

impl crate::cached::CachedLm for Gpt2 {
    fn hidden_cached(&self, ids: &Tensor, cache: &mut KvCache, pass: Pass) -> Tensor {
        self.hidden(ids, Some(cache), pass)
    }

    fn head_logits(&self, x: &Tensor, pass: Pass) -> Tensor {
        self.lm_head(x, &self.head_weight(pass), pass)
    }

    fn context(&self) -> usize {
        self.cfg.n_positions as usize
    }

    fn device(&self) -> Device {
        self.vs.device()
    }
}

impl Gpt2 {
    /// Attaches fresh LoRA layers (PEFT init) to every targeted Conv1D and freezes the base weights.
    /// Returns how many layers were adapted.
    pub fn attach_lora(&mut self, cfg: &LoraConfig) -> usize {
        use crate::CausalLm;
        let device = self.device();
        let (vs, n) = crate::lora::attach(self.lora_layers_mut(), cfg, device);
        self.set_lora(Some((vs, cfg.clone())));
        n
    }

    /// Merges the LoRA updates into the base weights and detaches them.
    pub fn merge_lora(&mut self) {
        use crate::CausalLm;
        crate::lora::merge(self.lora_layers_mut());
        self.set_lora(None);
    }
}

/// A seeded CPU model of `cfg`'s shape without dropout, for tests.
#[cfg(test)]
pub(crate) fn test_model(seed: i64, mut cfg: Gpt2Config) -> Gpt2 {
    tch::manual_seed(seed);
    cfg.resid_pdrop = 0.0;
    cfg.embd_pdrop = 0.0;
    cfg.attn_pdrop = 0.0;
    Gpt2::new(cfg, Device::Cpu)
}

#[cfg(test)]
mod tests;
