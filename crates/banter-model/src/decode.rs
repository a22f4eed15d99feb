//! Decoding one token at a time on CPU in plain Rust.
//!
//! A generated token of GPT-2 124M reads 500 MB of weights and does almost nothing else: decoding is
//! memory-bound, and at one token libtorch spends as long dispatching its ~200 small ops (layer norms,
//! splits, views, SDPA, adds) as computing. [`Decoder::step`] runs the whole step over the model's
//! own tensor storage (no copy): each matrix is read once, row by row, by an AVX2+FMA kernel (checked at
//! run time, portable code otherwise) with the rows split over rayon's threads; the keys and values are
//! written in place into the [`KvCache`] that the libtorch prefill filled. The same kernel computes the
//! output projection of small batches (≤ [`MAX_ROWS`] rows, [`Gpt2::head_rows`]); the other products of
//! a prompt or a batch stay with libtorch's GEMM, which was faster there (16-token prefill of GPT-2 124M
//! on a 2-core AVX2 EPYC: 71–86 ms vs 122–145 ms; batch-8 decoding 85–94 vs 77–81 tokens/s).
//!
//! It applies to fp32, bf16 ([`crate::bf16`]) or quantized ([`crate::quant`]) weights laid out by
//! [`Gpt2::prepare_for_decode`] on CPU (activations, norms and the cache stay fp32),
//! with no unmerged LoRA branch and a `gelu_new` MLP; anything else takes the libtorch path, which gives
//! the same logits (tested).

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::KvCache;
use crate::gpt2::{Conv1D, Gpt2, Norm};
use crate::quant::Int8Weight;
pub use crate::rows::MAX_ROWS;
use crate::rows::{by_weight_rows, serial_macs};
use rowdot::dot_rows;

/// A matrix `[out, in]` (row `n` holds output `n`'s weights).
enum Mat<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
    I8(&'a Int8Weight),
}

/// The token embeddings, row by row, as stored (fp32, or bf16 when the weights were converted).
#[derive(Clone, Copy)]
enum Rows<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

impl Rows<'_> {
    fn len(&self) -> usize {
        match self {
            Rows::F32(r) => r.len(),
            Rows::Bf16(r) => r.len(),
        }
    }

    fn get(&self, i: usize) -> f32 {
        match self {
            Rows::F32(r) => r[i],
            Rows::Bf16(r) => f32::from_bits(u32::from(r[i]) << 16),
        }
    }
}

fn rows_mat(r: Rows<'_>) -> Mat<'_> {
    match r {
        Rows::F32(r) => Mat::F32(r),
        Rows::Bf16(r) => Mat::Bf16(r),
    }
}

/// The token embeddings of `t` as rows: fp32 or bf16, contiguous, on CPU.
fn embedding_rows(t: &Tensor) -> Option<Rows<'_>> {
    floats(t).map(Rows::F32).or_else(|| crate::bf16::halves(t).map(Rows::Bf16))
}

/// An fp32 CPU tensor's elements, borrowed. `None` unless it is contiguous fp32 on CPU.
pub(crate) fn floats(t: &Tensor) -> Option<&[f32]> {
    if t.device() != Device::Cpu || t.kind() != Kind::Float || !t.is_contiguous() {
        return None;
    }
    let n = t.numel();
    #[allow(unsafe_code)]
    // SAFETY: the tensor is a contiguous fp32 CPU tensor of `n` elements, and its storage lives as long as
    // the borrow of `t` (the model is borrowed immutably while decoding; nothing swaps its storage then).
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, n) })
}

/// True when autograd would not record a product of `w` and `x` (a result from the Rust kernel has no
/// history, so the kernel may serve only passes without gradients).
pub(crate) fn no_history(w: &Tensor, x: &Tensor) -> bool {
    if !w.requires_grad() && !x.requires_grad() {
        return true;
    }
    // libtorch's grad mode is not exposed by tch: an op on a tensor that requires grad tells.
    let probe = Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    !(&probe * 1.0).requires_grad()
}

/// True for a 2-D CPU tensor of `kind` stored column-major (its transpose contiguous).
fn column_major(t: &Tensor, kind: Kind) -> bool {
    let (size, stride) = (t.size(), t.stride());
    size.len() == 2
        && t.device() == Device::Cpu
        && t.kind() == kind
        && !((size[0] > 1 && stride[0] != 1) || (size[1] > 1 && stride[1] != size[0]))
}

/// A 2-D bf16 CPU tensor stored column-major, as its transpose's elements.
fn halves_transposed(t: &Tensor) -> Option<&[u16]> {
    if !column_major(t, Kind::BFloat16) {
        return None;
    }
    #[allow(unsafe_code)]
    // SAFETY: as in `floats_transposed`, with two-byte elements.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u16, t.numel()) })
}

/// A 2-D fp32 CPU tensor stored column-major (its transpose contiguous), as its transpose's elements.
fn floats_transposed(t: &Tensor) -> Option<&[f32]> {
    if !column_major(t, Kind::Float) {
        return None;
    }
    #[allow(unsafe_code)]
    // SAFETY: as in `floats`: `[a, b]` with strides `[1, a]` is `a·b` consecutive floats.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) })
}

/// A Conv1D weight as `[out, in]` rows: its int8 copy, or its fp32 storage when [`Gpt2::prepare_for_decode`]
/// stored it column-major (`w.tr()` contiguous).
fn conv_mat(c: &Conv1D) -> Option<(Mat<'_>, &[f32])> {
    if c.lora.is_some() {
        return None;
    }
    let b = floats(&c.b)?;
    if let Some(q) = &c.int8 {
        return Some((Mat::I8(q), b));
    }
    if let Some(h) = halves_transposed(&c.w) {
        return Some((Mat::Bf16(h), b));
    }
    Some((Mat::F32(floats_transposed(&c.w)?), b))
}

struct Layer<'a> {
    ln1: (&'a [f32], &'a [f32]),
    attn: (Mat<'a>, &'a [f32]),
    proj: (Mat<'a>, &'a [f32]),
    ln2: (&'a [f32], &'a [f32]),
    fc: (Mat<'a>, &'a [f32]),
    proj2: (Mat<'a>, &'a [f32]),
}

/// The model's weights, borrowed for a decoding step.
struct Plan<'a> {
    layers: Vec<Layer<'a>>,
    wte: Rows<'a>,
    wpe: &'a [f32],
    lnf: (&'a [f32], &'a [f32]),
    head: Mat<'a>,
}

fn norm(n: &Norm) -> Option<(&[f32], &[f32])> {
    Some((floats(&n.w)?, floats(&n.b)?))
}

impl Gpt2 {
    fn plan(&self) -> Option<Plan<'_>> {
        if !matches!(self.cfg.activation_function.as_str(), "gelu_new" | "gelu_pytorch_tanh") {
            return None;
        }
        let layers = self
            .blocks
            .iter()
            .map(|b| {
                Some(Layer {
                    ln1: norm(&b.ln_1)?,
                    attn: conv_mat(&b.c_attn)?,
                    proj: conv_mat(&b.attn_proj)?,
                    ln2: norm(&b.ln_2)?,
                    fc: conv_mat(&b.c_fc)?,
                    proj2: conv_mat(&b.mlp_proj)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let wte = embedding_rows(&self.wte)?;
        let head = match &self.head_int8 {
            Some(q) => Mat::I8(q),
            None => rows_mat(wte),
        };
        Some(Plan { layers, wte, wpe: floats(&self.wpe)?, lnf: norm(&self.ln_f)?, head })
    }

    /// True when [`Gpt2::decoder`] gives a decoder for this model (see the module docs).
    pub fn fast_decode(&self) -> bool {
        self.plan().is_some()
    }

    /// A Rust decoder over this model's weights, or `None` when the Rust path does not apply (the caller
    /// then uses [`Gpt2::forward`]).
    pub fn decoder(&self) -> Option<Decoder<'_>> {
        let plan = self.plan()?;
        let (e, inner) = (self.cfg.n_embd as usize, self.cfg.inner() as usize);
        Some(Decoder {
            e,
            nh: self.cfg.n_head as usize,
            eps: self.cfg.layer_norm_epsilon as f32,
            plan,
            kv: Vec::new(),
            x: vec![0.0; e],
            h: vec![0.0; e],
            qkv: vec![0.0; 3 * e],
            y: vec![0.0; e],
            o: vec![0.0; e],
            m: vec![0.0; inner],
            scores: Vec::new(),
        })
    }
}

/// Decodes one token at a time over a model's weights (borrowed), with its scratch buffers.
#[allow(missing_debug_implementations)]
pub struct Decoder<'a> {
    e: usize,
    nh: usize,
    eps: f32,
    plan: Plan<'a>,
    kv: Vec<(usize, usize, usize)>,
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    y: Vec<f32>,
    o: Vec<f32>,
    m: Vec<f32>,
    scores: Vec<f32>,
}

impl Decoder<'_> {
    /// Logits of the token after `id`, which follows what `cache` holds (a batch of one, no padding, filled
    /// by a prefill through [`Gpt2::forward`]), written into `logits` (`vocab_size` long); extends the
    /// cache. Returns false (and does nothing) when the cache or the id does not fit.
    pub fn step(&mut self, id: u32, cache: &mut KvCache, logits: &mut [f32]) -> bool {
        let pos = cache.len() as usize;
        let Some(kv) = cache.raw_layers(self.plan.layers.len(), pos + 1) else { return false };
        let (id, vocab) = (id as usize, self.plan.wte.len() / self.e);
        if id >= vocab || logits.len() != vocab || (pos + 1) * self.e > self.plan.wpe.len() {
            return false;
        }
        self.kv.clear();
        self.kv.extend_from_slice(kv);
        // The whole step runs on one of rayon's threads: its ~50 parallel products then share work within the
        // pool instead of each handing a job over from (and waking) this thread.
        crate::rows::on_pool(|| self.run(id, pos, logits));
        cache.advance(1);
        true
    }

    fn run(&mut self, id: usize, pos: usize, logits: &mut [f32]) {
        let Decoder { e, nh, eps, plan: p, kv, x, h, qkv, y, o, m, scores } = self;
        let (e, nh, eps) = (*e, *nh, *eps);
        let hd = e / nh;
        for (i, v) in x.iter_mut().enumerate() {
            *v = p.wte.get(id * e + i) + p.wpe[pos * e + i];
        }
        for (l, &(kp, vp, cap)) in p.layers.iter().zip(kv.iter()) {
            let (kp, vp) = (kp as *mut f32, vp as *mut f32);
            layer_norm(x, l.ln1, eps, h);
            gemm_mat(&l.attn.0, h, 1, qkv, Some(l.attn.1));
            // SAFETY (both blocks): `raw_layers` checked that each buffer is a contiguous fp32 CPU tensor
            // `[1, nh, cap, hd]` with `cap > pos`; the cache is borrowed mutably, so nothing else uses it.
            for hh in 0..nh {
                let at = (hh * cap + pos) * hd;
                #[allow(unsafe_code)]
                unsafe {
                    std::ptr::copy_nonoverlapping(qkv[e + hh * hd..].as_ptr(), kp.add(at), hd);
                    std::ptr::copy_nonoverlapping(qkv[2 * e + hh * hd..].as_ptr(), vp.add(at), hd);
                }
            }
            #[allow(unsafe_code)]
            let (keys, values) = unsafe {
                (
                    std::slice::from_raw_parts(kp as *const f32, nh * cap * hd),
                    std::slice::from_raw_parts(vp as *const f32, nh * cap * hd),
                )
            };
            attend(&qkv[..e], keys, values, (nh, hd, cap), pos + 1, scores, y);
            gemm_mat(&l.proj.0, y, 1, o, Some(l.proj.1));
            x.iter_mut().zip(o.iter()).for_each(|(a, b)| *a += b);
            layer_norm(x, l.ln2, eps, h);
            gemm_mat(&l.fc.0, h, 1, m, Some(l.fc.1));
            crate::act::gelu_tanh(m);
            gemm_mat(&l.proj2.0, m, 1, o, Some(l.proj2.1));
            x.iter_mut().zip(o.iter()).for_each(|(a, b)| *a += b);
        }
        layer_norm(x, p.lnf, eps, h);
        gemm_mat(&p.head, h, 1, logits, None);
    }
}

impl Gpt2 {
    /// Logits `[rows, vocab]` of final hidden states `x` (`[rows, E]`, fp32 CPU, `rows ≤ MAX_ROWS`) through
    /// the Rust kernel, or `None` when it does not apply.
    pub fn head_rows(&self, x: &Tensor) -> Option<Tensor> {
        let head = match &self.head_int8 {
            Some(q) => Mat::I8(q),
            None => rows_mat(embedding_rows(&self.wte).filter(|_| no_history(&self.wte, x))?),
        };
        let x = x.contiguous();
        let xs = floats(&x)?;
        let e = self.cfg.n_embd as usize;
        let rows = xs.len() / e;
        if rows == 0 || rows > MAX_ROWS {
            return None;
        }
        let vocab = self.cfg.vocab_size as usize;
        let mut out = vec![0f32; rows * vocab];
        gemm_mat(&head, xs, rows, &mut out, None);
        Some(Tensor::from_slice(&out).view([rows as i64, vocab as i64]))
    }
}

/// `out[m] = x[m]·Wᵀ (+ b)` for a weight of either kind.
fn gemm_mat(w: &Mat<'_>, x: &[f32], rows: usize, out: &mut [f32], b: Option<&[f32]>) {
    match w {
        Mat::F32(w) => gemm_rows(w, x, rows, out, b),
        Mat::Bf16(w) => crate::bf16::gemm_rows_bf16(w, x, rows, out, b),
        Mat::I8(q) => q.gemm_rows(x, rows, out, b),
    }
}

/// Rows of activations up to which [`linear_rows`] serves a product (a generated token is one row).
pub const LINEAR_ROWS: usize = 4;

/// Prompt tokens up to which a prefill's fp32 products run on [`linear_rows`] with AVX-512.
pub const PREFILL_ROWS: usize = 128;

/// Prompt tokens up to which a prefill's fp32 products run on [`linear_rows`] on this CPU: with AVX-512
/// [`PREFILL_ROWS`] — the 4 × 4 block kernel (`rows/micro.rs`) runs at the FMA units' peak there, while
/// MKL's GEMM first copies (packs) every weight matrix, which for a short prompt costs more than the product.
/// GPT-2 124M on a 2-core AVX-512 EPYC, ms per prefill, MKL on 2 threads against the row kernels: 16 tokens
/// 40 → 22, 32: 52 → 33, 64: 75 → 54, 128: 128 → 119, 192: 179 → 184 (MKL ahead from there). Else
/// [`LINEAR_ROWS`]. The prefill runs libtorch on one thread meanwhile ([`crate::rows::OneTorchThread`]).
/// `BANTER_ROW_PREFILL=0` keeps MKL's GEMM for every prompt (to compare).
pub fn prefill_rows() -> usize {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var_os("BANTER_ROW_PREFILL").is_some_and(|v| v == "0"));
    if crate::rows::isa().avx512 && !off { PREFILL_ROWS } else { LINEAR_ROWS }
}

/// `x·Wᵀ (+ b)` through [`gemm_rows`] for a few activation rows (`x [.., in]`, `w [out, in]`, fp32 on CPU,
/// contiguous, no gradient to record): the Hub families' linear layers and head while decoding, where
/// libtorch's GEMV leaves one core spinning. `None` when it does not apply (libtorch then computes it).
pub(crate) fn linear_rows(w: &Tensor, b: Option<&Tensor>, x: &Tensor) -> Option<Tensor> {
    let size = x.size();
    let k = *size.last()?;
    let rows = (x.numel() as i64 / k.max(1)) as usize;
    // More rows only while libtorch runs on one thread (a prefill under `OneTorchThread`, or `--threads 1`):
    // with its OpenMP workers spinning between ops, the row kernels would share the cores with them.
    let limit = if rows > LINEAR_ROWS && tch::get_num_threads() == 1 { prefill_rows() } else { LINEAR_ROWS };
    if rows == 0 || rows > limit || w.dim() != 2 || w.size()[1] != k || !no_history(w, x) {
        return None;
    }
    let xc = x.contiguous();
    let (wf, xf) = (floats(w)?, floats(&xc)?);
    let bf = match b {
        Some(b) => Some(floats(b)?),
        None => None,
    };
    let n = w.size()[0] as usize;
    let mut out = vec![0f32; rows * n];
    gemm_rows(wf, xf, rows, &mut out, bf);
    let mut shape = size[..size.len() - 1].to_vec();
    shape.push(n as i64);
    Some(Tensor::from_slice(&out).view(shape.as_slice()))
}

/// `out[m, n] = Σ_k x[m, k]·w[n, k] (+ b[n])` for `rows` activation rows: each weight row is read once
/// (in blocks of four, kept in L1 while every activation row is dotted with them).
pub fn gemm_rows(w: &[f32], x: &[f32], rows: usize, out: &mut [f32], b: Option<&[f32]>) {
    let k = x.len() / rows.max(1);
    let n = w.len() / k.max(1);
    let job = |first: usize, chunk: &mut [f32]| {
        let count = chunk.len() / rows;
        let mut r = 0;
        while r < count {
            let take = (count - r).min(4);
            let nn = first + r;
            let mut m0 = 0;
            #[cfg(target_arch = "x86_64")]
            if take == 4 && crate::rows::isa().avx512 {
                // Four activation rows at a time against these four weight rows (a prompt's prefill).
                while m0 + 4 <= rows {
                    let mut s = [[0f32; 4]; 4];
                    #[allow(unsafe_code)]
                    // SAFETY: AVX-512F is present (`isa` checked it); `w` holds rows `nn..nn + 4` of `k`, `x`
                    // rows `m0..m0 + 4` of `k`.
                    unsafe {
                        crate::rows::micro::dot4x4_avx512(&w[nn * k..(nn + 4) * k], k, &x[m0 * k..], k, &mut s)
                    };
                    for (j, sj) in s.iter().enumerate() {
                        for (i, v) in sj.iter().enumerate() {
                            chunk[(r + j) * rows + m0 + i] = v + b.map_or(0.0, |b| b[nn + j]);
                        }
                    }
                    m0 += 4;
                }
            }
            for m in m0..rows {
                let mut s = [0f32; 4];
                // The next four rows are prefetched once, with the first activation row.
                dot_rows(&w[nn * k..(nn + take) * k], k, &x[m * k..(m + 1) * k], &mut s[..take], m == 0);
                for (j, v) in s[..take].iter().enumerate() {
                    chunk[(r + j) * rows + m] = v + b.map_or(0.0, |b| b[nn + j]);
                }
            }
            r += take;
        }
    };
    by_weight_rows(out, n, rows, k, job);
}

fn layer_norm(x: &[f32], (w, b): (&[f32], &[f32]), eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for i in 0..x.len() {
        out[i] = (x[i] - mean) * inv * w[i] + b[i];
    }
}

/// One query (`q`, `[nh·hd]`) over the first `len` cached keys and values of each head (`[nh, cap, hd]`).
/// `scratch` holds the scores (`nh·len`).
fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    (nh, hd, cap): (usize, usize, usize),
    len: usize,
    scratch: &mut Vec<f32>,
    y: &mut [f32],
) {
    let scale = 1.0 / (hd as f32).sqrt();
    scratch.resize(nh * len, 0.0);
    let head = |hh: usize, out: &mut [f32], scores: &mut [f32]| {
        let qh = &q[hh * hd..(hh + 1) * hd];
        let base = hh * cap * hd;
        crate::rows::scores_f32(&keys[base..base + scores.len() * hd], qh, scale, scores);
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum = crate::act::exp_sub(scores, max);
        let inv = 1.0 / sum;
        scores.iter_mut().for_each(|s| *s *= inv);
        crate::rows::weighted_sum(&values[base..base + scores.len() * hd], scores, out);
    };
    if nh * len * hd * 2 < serial_macs() {
        y.chunks_mut(hd).zip(scratch.chunks_mut(len)).enumerate().for_each(|(hh, (out, sc))| head(hh, out, sc));
    } else {
        y.par_chunks_mut(hd).zip(scratch.par_chunks_mut(len)).enumerate().for_each(|(hh, (out, sc))| head(hh, out, sc));
    }
}

mod rowdot;
#[cfg(test)]
mod tests;
