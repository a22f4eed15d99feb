//! Quantized weights for inference (`banter-chat --quantize int8|q4`).
//!
//! - **int8**: each output channel of a matrix scaled by its largest magnitude / 127 and rounded
//!   (symmetric, per channel); stored offset by +128 as bytes. A token reads a quarter of fp32's bytes.
//! - **q4**: groups of 32 inputs share one fp32 scale (symmetric, 16 levels −8..7, the scale chosen per
//!   group to minimise the squared error, then refitted by least squares); two weights per byte, 5 bits
//!   per weight with the scales. Matrices whose input width is not a multiple of 64 stay int8.
//!
//! The products are banter's own kernels ([`crate::qdot`]): activations are quantized to int8 in blocks
//! of 32 and the weight rows are read once as bytes by AVX-512 VNNI, AVX2 or portable integer code, rows
//! split over threads. libtorch's `_weight_int8pack_mm` took 29 ms for GPT-2's `[1, 768] × [768, 50257]`
//! head on a 2-core AVX2 EPYC (fp32: 7.9 ms), and its fbgemm dynamic-quantized linear is not reachable
//! through tch. Longer inputs (a prompt) dequantize the matrix and use libtorch's GEMM.

use std::cell::RefCell;

use tch::{Kind, Tensor};

use crate::qdot::{self, BLOCK, QAct};
use crate::rows::MAX_ROWS;

/// How a matrix is quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Per-channel int8.
    Int8,
    /// 4-bit groups of 32.
    Q4,
}

#[derive(Debug)]
enum Store {
    /// `[out, in]` bytes (value + 128), one scale per output channel.
    Int8 { u: Vec<u8>, scales: Vec<f32> },
    /// `[out, in/2]` nibble bytes (see [`qdot::dot_q4`] for the order), `[out, in/32]` scales.
    Q4 { nib: Vec<u8>, scales: Vec<f32> },
}

/// A weight `[out, in]`, quantized.
#[derive(Debug)]
pub struct Int8Weight {
    store: Store,
    n_out: usize,
    n_in: usize,
}

thread_local! {
    static ACT: RefCell<QAct> = RefCell::new(QAct::default());
}

impl Int8Weight {
    /// Quantizes `w` given as `[out, in]` to per-channel int8.
    pub fn from_out_in(w: &Tensor) -> Self {
        Self::quantize(w, Scheme::Int8)
    }

    /// Quantizes `w` given as `[out, in]` by `scheme` (q4 falls back to int8 when `in` is not a multiple
    /// of 64).
    pub fn quantize(w: &Tensor, scheme: Scheme) -> Self {
        let _g = tch::no_grad_guard();
        let w = w.to_kind(Kind::Float).to_device(tch::Device::Cpu).contiguous();
        let (n_out, n_in) = (w.size()[0] as usize, w.size()[1] as usize);
        if scheme == Scheme::Q4 && n_in % 64 == 0 {
            let wf: Vec<f32> = Vec::try_from(&w.view([-1])).unwrap_or_default();
            let (nib, scales) = quantize_q4(&wf, n_in);
            return Int8Weight { store: Store::Q4 { nib, scales }, n_out, n_in };
        }
        let absmax = w.abs().amax([1], true).clamp_min(1e-8);
        let scales = &absmax / 127.0;
        let q = ((&w / &scales).round().clamp(-127.0, 127.0) + 128.0).to_kind(Kind::Uint8).contiguous().view([-1]);
        let u: Vec<u8> = Vec::try_from(&q).unwrap_or_default();
        let scales: Vec<f32> = Vec::try_from(&scales.view([-1])).unwrap_or_default();
        Int8Weight { store: Store::Int8 { u, scales }, n_out, n_in }
    }

    /// The scheme this matrix ended up in.
    pub fn scheme(&self) -> Scheme {
        match self.store {
            Store::Int8 { .. } => Scheme::Int8,
            Store::Q4 { .. } => Scheme::Q4,
        }
    }

    /// The dequantized `[out, in]` fp32 matrix.
    pub fn dequantize(&self) -> Tensor {
        let (n, k) = (self.n_out as i64, self.n_in as i64);
        match &self.store {
            Store::Int8 { u, scales } => {
                let q = Tensor::from_slice(u).view([n, k]).to_kind(Kind::Float) - 128.0;
                q * Tensor::from_slice(scales).unsqueeze(1)
            }
            Store::Q4 { nib, scales } => {
                let kk = self.n_in;
                let mut out = vec![0f32; self.n_out * kk];
                for (r, row) in out.chunks_mut(kk).enumerate() {
                    let (nb, sc) = (&nib[r * kk / 2..(r + 1) * kk / 2], &scales[r * kk / BLOCK..(r + 1) * kk / BLOCK]);
                    for (i, v) in row.iter_mut().enumerate() {
                        *v = (f32::from(qdot::nibble(nb, i)) - 8.0) * sc[i / BLOCK];
                    }
                }
                Tensor::from_slice(&out).view([n, k])
            }
        }
    }

    /// `x·Wᵀ` for `x [.., in]` (fp32): `[.., out]`.
    pub fn matmul_t(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let mut shape = size[..size.len() - 1].to_vec();
        shape.push(self.n_out as i64);
        let x2 = x.reshape([-1, self.n_in as i64]).to_kind(Kind::Float);
        let rows = x2.size()[0] as usize;
        // Longer prompts on the prefill kernel where it applies (up to `PREFILL_MAX_ROWS`): the fallback
        // widens the whole matrix to fp32 on every call (a 64-token q4 prefill of GPT-2 124M took 230 ms).
        let limit = if qdot::prefill::applies(rows, self.n_in) { qdot::prefill::MAX_ROWS } else { MAX_ROWS };
        if rows > limit || x2.device() != tch::Device::Cpu {
            return x2.matmul(&self.dequantize().to_device(x2.device()).tr()).view(shape.as_slice());
        }
        let xs: Vec<f32> = Vec::try_from(&x2.contiguous().view([-1])).unwrap_or_default();
        let mut out = vec![0f32; rows * self.n_out];
        self.gemm_rows(&xs, rows, &mut out, None);
        Tensor::from_slice(&out).view(shape.as_slice())
    }

    /// `out[m, n] = Σ_k x[m, k]·W[n, k] (+ b[n])` for `rows` activation rows (`x` is `[rows, in]`,
    /// `out` is `[rows, out]`): each weight row is read once per call.
    pub fn gemm_rows(&self, x: &[f32], rows: usize, out: &mut [f32], b: Option<&[f32]>) {
        let (k, n) = (self.n_in, self.n_out);
        if qdot::prefill::applies(rows, k) {
            // A prompt's prefill: bf16 products of the widened weights (`qdot/prefill.rs`).
            let xb = crate::bf16::to_bf16_all(&x[..rows * k]);
            let w = match &self.store {
                Store::Int8 { u, scales } => qdot::prefill::Rows::Int8 { u, scales },
                Store::Q4 { nib, scales } => qdot::prefill::Rows::Q4 { nib, d: scales },
            };
            crate::rows::by_weight_rows(out, n, rows, k, |first, chunk| {
                qdot::prefill::gemm(w, k, &xb, rows, first, chunk);
                if let Some(b) = b {
                    for (j, o) in chunk.chunks_mut(rows).enumerate() {
                        o.iter_mut().for_each(|v| *v += b[first + j]);
                    }
                }
            });
            return;
        }
        ACT.with(|cell| {
            let mut act = cell.borrow_mut();
            act.quantize(&x[..rows * k], k);
            let act = &*act;
            let level = qdot::level();
            if qdot::block::applies(level, k) {
                crate::rows::by_weight_rows(out, n, rows, k, |first, chunk| {
                    let count = chunk.len() / rows.max(1);
                    match &self.store {
                        Store::Int8 { u, scales } => {
                            qdot::block::int8(&u[first * k..], &scales[first..first + count], act, rows, chunk)
                        }
                        Store::Q4 { nib, scales } => {
                            qdot::block::q4(&nib[first * k / 2..], &scales[first * k / BLOCK..], act, rows, chunk)
                        }
                    }
                    if let Some(b) = b {
                        for (j, o) in chunk.chunks_mut(rows.max(1)).enumerate() {
                            o.iter_mut().for_each(|v| *v += b[first + j]);
                        }
                    }
                });
                return;
            }
            crate::rows::by_weight_rows(out, n, rows, k, |first, chunk| {
                for (j, o) in chunk.chunks_mut(rows.max(1)).enumerate() {
                    let nn = first + j;
                    for (m, slot) in o.iter_mut().enumerate() {
                        let v = match &self.store {
                            Store::Int8 { u, scales } => {
                                qdot::dot_u8_with(level, &u[nn * k..(nn + 1) * k], act, m) * scales[nn]
                            }
                            Store::Q4 { nib, scales } => qdot::dot_q4_with(
                                level,
                                &nib[nn * k / 2..(nn + 1) * k / 2],
                                &scales[nn * k / BLOCK..(nn + 1) * k / BLOCK],
                                act,
                                m,
                            ),
                        };
                        *slot = v + b.map_or(0.0, |b| b[nn]);
                    }
                }
            });
        });
    }

    /// Output channels.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// Input width.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Bytes held.
    pub fn bytes(&self) -> i64 {
        match &self.store {
            Store::Int8 { u, scales } => (u.len() + 4 * scales.len()) as i64,
            Store::Q4 { nib, scales } => (nib.len() + 4 * scales.len()) as i64,
        }
    }
}

/// q4 rows of `k` (a multiple of 64) from fp32 `w`: nibble bytes and one scale per group of 32.
fn quantize_q4(w: &[f32], k: usize) -> (Vec<u8>, Vec<f32>) {
    use rayon::prelude::*;
    let rows = w.len() / k;
    let mut nib = vec![0u8; rows * k / 2];
    let mut scales = vec![0f32; rows * k / BLOCK];
    nib.par_chunks_mut(k / 2).zip(scales.par_chunks_mut(k / BLOCK)).enumerate().for_each(|(r, (nb, sc))| {
        let row = &w[r * k..(r + 1) * k];
        let mut levels = [0u8; BLOCK];
        for (g, s) in sc.iter_mut().enumerate() {
            *s = quantize_group(&row[g * BLOCK..(g + 1) * BLOCK], &mut levels);
            for (j, &l) in levels.iter().enumerate() {
                let i = g * BLOCK + j;
                let (p, jj) = (i / 64, i % 64);
                let byte = &mut nb[p * 32 + (jj % 32)];
                *byte |= if jj < 32 { l } else { l << 4 };
            }
        }
    });
    (nib, scales)
}

/// One group of 32: levels 0..15 (value = (level − 8)·scale) and the scale. Tries scales that put the
/// largest magnitude at −8, −7.5 … 7 steps and keeps the least squared error, then refits the scale by
/// least squares for the chosen levels.
fn quantize_group(x: &[f32], levels: &mut [u8; BLOCK]) -> f32 {
    let (mut big, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            big = v;
        }
    }
    if amax == 0.0 {
        levels.fill(8);
        return 0.0;
    }
    let pick = |d: f32, levels: &mut [u8; BLOCK]| -> f32 {
        let inv = 1.0 / d;
        let mut err = 0f32;
        for (l, &v) in levels.iter_mut().zip(x) {
            let q = (v * inv).round().clamp(-8.0, 7.0);
            *l = (q + 8.0) as u8;
            err += (v - q * d) * (v - q * d);
        }
        err
    };
    let mut best = (f32::INFINITY, 0f32);
    for t in [-8.0f32, -7.5, -7.0, -6.5, -6.0, 7.0, 6.5] {
        let d = big / t;
        let e = pick(d, levels);
        if e < best.0 {
            best = (e, d);
        }
    }
    pick(best.1, levels);
    // Least-squares scale for these levels.
    let (mut xq, mut qq) = (0f32, 0f32);
    for (&l, &v) in levels.iter().zip(x) {
        let q = f32::from(l) - 8.0;
        xq += v * q;
        qq += q * q;
    }
    let refit = if qq > 0.0 { xq / qq } else { best.1 };
    let err = |d: f32| x.iter().zip(levels.iter()).map(|(&v, &l)| (v - (f32::from(l) - 8.0) * d).powi(2)).sum::<f32>();
    if err(refit) < err(best.1) { refit } else { best.1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Gpt2Config;
    use crate::gpt2::Gpt2;
    use crate::{KvCache, Pass};

    /// On a random GPT-2 (12 × 64 wide, vocab 500), int8 logits stay within 3% of fp32's range, and every
    /// greedy choice whose fp32 margin over the runner-up exceeds twice the observed error is the same.
    #[test]
    fn int8_model_keeps_greedy_choices_with_a_clear_margin() {
        tch::manual_seed(9);
        let cfg = Gpt2Config::new(500, 64, 64, 2, 4);
        let mut m = Gpt2::new(cfg, tch::Device::Cpu);
        let _g = tch::no_grad_guard();
        let ids = Tensor::randint(500, [1, 24], (Kind::Int64, tch::Device::Cpu));
        let want = m.forward(&ids, None, Pass::eval());
        m.quantize_int8();
        let mut cache = KvCache::default();
        let got = Tensor::cat(
            &[
                m.forward(&ids.narrow(1, 0, 20), Some(&mut cache), Pass::eval()),
                m.forward(&ids.narrow(1, 20, 4), Some(&mut cache), Pass::eval()),
            ],
            1,
        );
        let err = (&want - &got).abs().amax([2], false).squeeze_dim(0);
        let range = (want.max() - want.min()).double_value(&[]);
        assert!(err.max().double_value(&[]) < 0.03 * range, "error {} vs range {range}", err.max());
        let top = want.squeeze_dim(0).topk(2, -1, true, true).0;
        let margin = top.select(1, 0) - top.select(1, 1);
        let clear = margin.gt_tensor(&(err * 2.0));
        let same = want.argmax(-1, false).eq_tensor(&got.argmax(-1, false)).squeeze_dim(0);
        let violations = clear.logical_and(&same.logical_not()).sum(Kind::Int64).int64_value(&[]);
        assert_eq!(violations, 0);
    }

    #[test]
    fn int8_matmul_is_close_to_fp32() {
        tch::manual_seed(4);
        let w = Tensor::randn([48, 64], (Kind::Float, tch::Device::Cpu));
        let x = Tensor::randn([3, 64], (Kind::Float, tch::Device::Cpu));
        let q = Int8Weight::from_out_in(&w);
        let want = x.matmul(&w.tr());
        let got = q.matmul_t(&x);
        let rel = ((&want - &got).abs().max() / want.abs().max()).double_value(&[]);
        assert!(rel < 0.02, "{rel}");
        assert_eq!(q.bytes(), 48 * 64 + 48 * 4);
        // The kernel (few rows, int8 activations) and the dequantized GEMM (many rows, fp32 activations)
        // agree within the activations' rounding.
        let many = Tensor::randn([40, 64], (Kind::Float, tch::Device::Cpu));
        let a = q.matmul_t(&many);
        let b = Tensor::cat(&[q.matmul_t(&many.narrow(0, 0, 5)), q.matmul_t(&many.narrow(0, 5, 35))], 0);
        let rel = ((&a - &b).abs().max() / a.abs().max()).double_value(&[]);
        assert!(rel < 0.01, "{rel}");
        // 3-D input keeps its leading shape; a row length that is not a multiple of 8 works.
        assert_eq!(q.matmul_t(&x.view([1, 3, 64])).size(), vec![1, 3, 48]);
        let odd = Int8Weight::from_out_in(&Tensor::randn([5, 13], (Kind::Float, tch::Device::Cpu)));
        assert_eq!(odd.matmul_t(&Tensor::ones([2, 13], (Kind::Float, tch::Device::Cpu))).size(), vec![2, 5]);
    }

    /// q4: the kernel agrees with its own dequantized matrix, the error against fp32 is what 16 levels
    /// allow, the scale search beats plain absmax rounding, and widths that are not multiples of 64 stay int8.
    #[test]
    fn q4_matmul_matches_its_dequantized_matrix_and_stays_close_to_fp32() {
        tch::manual_seed(6);
        let w = Tensor::randn([96, 256], (Kind::Float, tch::Device::Cpu));
        let x = Tensor::randn([2, 256], (Kind::Float, tch::Device::Cpu));
        let q = Int8Weight::quantize(&w, Scheme::Q4);
        assert_eq!(q.scheme(), Scheme::Q4);
        assert_eq!(q.bytes(), 96 * 128 + 96 * 8 * 4);
        let deq = q.dequantize();
        let got = q.matmul_t(&x);
        let via_deq = x.matmul(&deq.tr());
        let rel = ((&got - &via_deq).abs().max() / via_deq.abs().max()).double_value(&[]);
        assert!(rel < 0.01, "kernel vs its dequantized matrix: {rel}");
        // Weight error: RMS of (w − deq) relative to RMS of w; 16 uniform levels over ±absmax of 32
        // Gaussian values give ≈ 0.1.
        let err =
            ((&w - &deq).square().mean(Kind::Float).sqrt() / w.square().mean(Kind::Float).sqrt()).double_value(&[]);
        assert!(err < 0.12, "q4 weight error {err}");
        // Plain Q4_0-style rounding (scale = largest signed value / −8) is no better than the search.
        let mut naive = 0f64;
        let wf: Vec<f32> = Vec::try_from(&w.view([-1])).unwrap();
        for g in wf.chunks(BLOCK) {
            let big = g.iter().copied().fold(0f32, |a, v| if v.abs() > a.abs() { v } else { a });
            let d = big / -8.0;
            naive += g.iter().map(|&v| f64::from(v - (v / d).round().clamp(-8.0, 7.0) * d).powi(2)).sum::<f64>();
        }
        let ours = (&w - &deq).square().sum(Kind::Double).double_value(&[]);
        assert!(ours <= naive, "search {ours} vs naive {naive}");
        let odd = Int8Weight::quantize(&Tensor::randn([4, 96], (Kind::Float, tch::Device::Cpu)), Scheme::Q4);
        assert_eq!(odd.scheme(), Scheme::Int8);
    }
}
