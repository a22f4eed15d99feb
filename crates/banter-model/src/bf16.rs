//! bf16 weights while decoding: `x·Wᵀ (+ b)` for a few activation rows with `W` `[out, in]` held in bf16,
//! each weight widened to fp32 on the fly (a bf16 is the top half of an fp32), fp32 sums. A generated token
//! reads half the bytes of fp32, through the same row split over rayon's threads as the fp32 kernel
//! (`decode::gemm_rows`); libtorch's bf16 GEMV ran the SmolLM2-135M shape's step at 28.8 tokens/s on a
//! 2-core AVX-512 BF16 EPYC.

use tch::{Device, Kind, Tensor};

use crate::decode::{LINEAR_ROWS, floats, no_history};
use crate::rows::by_weight_rows;

/// A contiguous bf16 CPU tensor's elements as raw `u16`s, borrowed.
fn halves(t: &Tensor) -> Option<&[u16]> {
    if t.device() != Device::Cpu || t.kind() != Kind::BFloat16 || !t.is_contiguous() {
        return None;
    }
    let n = t.numel();
    #[allow(unsafe_code)]
    // SAFETY: a contiguous bf16 CPU tensor of `n` two-byte elements, alive as long as the borrow of `t`.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u16, n) })
}

/// `x·Wᵀ (+ b)` for `x [.., in]` (≤ [`LINEAR_ROWS`] rows, any float kind) and bf16 `w [out, in]`, as fp32;
/// `None` when it does not apply (libtorch then computes it).
pub(crate) fn linear_rows_bf16(w: &Tensor, b: Option<&Tensor>, x: &Tensor) -> Option<Tensor> {
    let size = x.size();
    let k = *size.last()?;
    let rows = (x.numel() as i64 / k.max(1)) as usize;
    if rows == 0 || rows > LINEAR_ROWS || w.dim() != 2 || w.size()[1] != k || !no_history(w, x) {
        return None;
    }
    let wf = halves(w)?;
    let xc = x.to_kind(Kind::Float).contiguous();
    let xf = floats(&xc)?;
    let bc = b.map(|b| b.to_kind(Kind::Float).contiguous());
    let bf = match &bc {
        Some(b) => Some(floats(b)?),
        None => None,
    };
    let (n, k) = (w.size()[0] as usize, k as usize);
    let mut out = vec![0f32; rows * n];
    by_weight_rows(&mut out, n, rows, k, |first, chunk| {
        for (j, o) in chunk.chunks_mut(rows).enumerate() {
            let nn = first + j;
            let wrow = &wf[nn * k..(nn + 1) * k];
            for (m, slot) in o.iter_mut().enumerate() {
                *slot = dot(wrow, &xf[m * k..(m + 1) * k]) + bf.map_or(0.0, |b| b[nn]);
            }
        }
    });
    let mut shape = size[..size.len() - 1].to_vec();
    shape.push(n as i64);
    Some(Tensor::from_slice(&out).view(shape.as_slice()))
}

/// `Σ w[i]·x[i]` with bf16 `w`.
fn dot(w: &[u16], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { dot_avx2(w, x) };
        }
    }
    dot_portable(w, x)
}

fn dot_portable(w: &[u16], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (wc, xc) = (w.chunks_exact(8), x.chunks_exact(8));
    let tail: f32 =
        wc.remainder().iter().zip(xc.remainder()).map(|(&a, b)| f32::from_bits(u32::from(a) << 16) * b).sum();
    for (a, b) in wc.zip(xc) {
        for i in 0..8 {
            acc[i] += f32::from_bits(u32::from(a[i]) << 16) * b[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn dot_avx2(w: &[u16], x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let k = w.len().min(x.len());
    let (mut a, mut c) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: every load reads 16 elements at `i + 16 ≤ k` of both slices.
    unsafe {
        while i + 16 <= k {
            let wa = _mm256_cvtepu16_epi32(_mm_loadu_si128(w.as_ptr().add(i) as *const __m128i));
            let wb = _mm256_cvtepu16_epi32(_mm_loadu_si128(w.as_ptr().add(i + 8) as *const __m128i));
            let fa = _mm256_castsi256_ps(_mm256_slli_epi32(wa, 16));
            let fb = _mm256_castsi256_ps(_mm256_slli_epi32(wb, 16));
            a = _mm256_fmadd_ps(fa, _mm256_loadu_ps(x.as_ptr().add(i)), a);
            c = _mm256_fmadd_ps(fb, _mm256_loadu_ps(x.as_ptr().add(i + 8)), c);
            i += 16;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(a, c));
        lanes.iter().sum::<f32>() + dot_portable(&w[i..k], &x[i..k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_libtorch_on_the_same_bf16_weights() {
        tch::manual_seed(4);
        for (rows, k, n) in [(1, 576, 1536), (3, 37, 11), (4, 896, 130), (1, 15, 3)] {
            let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
            let b = Tensor::randn([n], (Kind::Float, Device::Cpu));
            let x = Tensor::randn([rows, k], (Kind::Float, Device::Cpu));
            let got = linear_rows_bf16(&w, Some(&b), &x).unwrap();
            let want = x.matmul(&w.to_kind(Kind::Float).tr()) + &b;
            assert!(got.allclose(&want, 1e-4, 1e-3, false), "{rows}×{k}×{n}");
        }
        // The AVX2 path and the portable one agree (odd lengths exercise the tails).
        for k in [1usize, 15, 16, 17, 100, 577] {
            let w: Vec<u16> = (0..k).map(|i| (0x3f80 + (i as u16 * 7) % 300) ^ ((i as u16 & 1) << 15)).collect();
            let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
            assert!((dot(&w, &x) - dot_portable(&w, &x)).abs() <= 1e-3 * dot_portable(&w, &x).abs().max(1.0), "{k}");
        }
        let too_many = Tensor::randn([LINEAR_ROWS as i64 + 1, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([4, 8], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        assert!(linear_rows_bf16(&w, None, &too_many).is_none(), "a prompt goes to libtorch");
    }
}
