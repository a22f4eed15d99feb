//! int8 weights for inference (`banter-chat --quantize int8`): each output channel of a matrix is scaled by
//! its largest magnitude / 127 and rounded (symmetric, per channel); activations stay fp32. A generated token
//! reads a quarter of the bytes of fp32.
//!
//! The product is banter's own kernel: libtorch's `_weight_int8pack_mm` took 29 ms for GPT-2's
//! `[1, 768] × [768, 50257]` head on a 2-core AVX2 EPYC (fp32: 7.9 ms), and its fbgemm dynamic-quantized
//! linear (2.0 ms) is not reachable through tch. Here each weight row is read once per token and dotted
//! with the (few) activation rows in fp32, 8 lanes at a time (AVX2 + FMA when the CPU has them, checked at
//! run time), rows split over threads. Longer inputs (a prompt) dequantize the matrix and use libtorch's GEMM.

use tch::{Kind, Tensor};

use crate::rows::{MAX_ROWS, dot_portable};

/// A weight `[out, in]` as int8 with one fp32 scale per output channel.
#[derive(Debug)]
pub struct Int8Weight {
    q: Vec<i8>,
    scales: Vec<f32>,
    n_out: usize,
    n_in: usize,
}

impl Int8Weight {
    /// Quantizes `w` given as `[out, in]`.
    pub fn from_out_in(w: &Tensor) -> Self {
        let _g = tch::no_grad_guard();
        let w = w.to_kind(Kind::Float).to_device(tch::Device::Cpu);
        let (n_out, n_in) = (w.size()[0] as usize, w.size()[1] as usize);
        let absmax = w.abs().amax([1], true).clamp_min(1e-8);
        let scales = &absmax / 127.0;
        let q = (&w / &scales).round().clamp(-127.0, 127.0).to_kind(Kind::Int8).contiguous().view([-1]);
        let q: Vec<i8> = Vec::try_from(&q).unwrap_or_default();
        let scales: Vec<f32> = Vec::try_from(&scales.view([-1])).unwrap_or_default();
        Int8Weight { q, scales, n_out, n_in }
    }

    /// The dequantized `[out, in]` fp32 matrix.
    fn dequantize(&self) -> Tensor {
        let q = Tensor::from_slice(&self.q).view([self.n_out as i64, self.n_in as i64]).to_kind(Kind::Float);
        q * Tensor::from_slice(&self.scales).unsqueeze(1)
    }

    /// `x·Wᵀ` for `x [.., in]` (fp32): `[.., out]`.
    pub fn matmul_t(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let mut shape = size[..size.len() - 1].to_vec();
        shape.push(self.n_out as i64);
        let x2 = x.reshape([-1, self.n_in as i64]).to_kind(Kind::Float);
        let rows = x2.size()[0] as usize;
        if rows > MAX_ROWS || x2.device() != tch::Device::Cpu {
            return x2.matmul(&self.dequantize().to_device(x2.device()).tr()).view(shape.as_slice());
        }
        let xs: Vec<f32> = Vec::try_from(&x2.contiguous().view([-1])).unwrap_or_default();
        let mut out = vec![0f32; rows * self.n_out];
        self.gemm_rows(&xs, rows, &mut out, None);
        Tensor::from_slice(&out).view(shape.as_slice())
    }

    /// `out[m, n] = Σ_k x[m, k]·W[n, k]·scale[n] (+ b[n])` for `rows` activation rows (`x` is `[rows, in]`,
    /// `out` is `[rows, out]`): each weight row is read once per call.
    pub fn gemm_rows(&self, x: &[f32], rows: usize, out: &mut [f32], b: Option<&[f32]>) {
        let (k, n) = (self.n_in, self.n_out);
        crate::rows::by_weight_rows(out, n, rows, k, |first, chunk| {
            for (j, o) in chunk.chunks_mut(rows.max(1)).enumerate() {
                let nn = first + j;
                let wrow = &self.q[nn * k..(nn + 1) * k];
                for (m, slot) in o.iter_mut().enumerate() {
                    *slot = dot(wrow, &x[m * k..(m + 1) * k]) * self.scales[nn] + b.map_or(0.0, |b| b[nn]);
                }
            }
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
        (self.q.len() + 4 * self.scales.len()) as i64
    }
}

/// `Σ w[i]·x[i]` with int8 `w`.
fn dot(w: &[i8], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 and FMA (checked just above); the function reads only through slices.
            return unsafe { dot_avx2(w, x) };
        }
    }
    dot_portable(w, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(w: &[i8], x: &[f32]) -> f32 {
    dot_portable(w, x)
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
        // The kernel (few rows) and the dequantized GEMM (many rows) agree.
        let many = Tensor::randn([40, 64], (Kind::Float, tch::Device::Cpu));
        let a = q.matmul_t(&many);
        let b = Tensor::cat(&[q.matmul_t(&many.narrow(0, 0, 5)), q.matmul_t(&many.narrow(0, 5, 35))], 0);
        assert!(a.allclose(&b, 1e-4, 1e-4, false));
        // 3-D input keeps its leading shape; a row length that is not a multiple of 8 works.
        assert_eq!(q.matmul_t(&x.view([1, 3, 64])).size(), vec![1, 3, 48]);
        let odd = Int8Weight::from_out_in(&Tensor::randn([5, 13], (Kind::Float, tch::Device::Cpu)));
        assert_eq!(odd.matmul_t(&Tensor::ones([2, 13], (Kind::Float, tch::Device::Cpu))).size(), vec![2, 5]);
    }
}
