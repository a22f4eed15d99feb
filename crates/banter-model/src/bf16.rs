//! bf16 weights while decoding: `x·Wᵀ (+ b)` for a few activation rows with `W` `[out, in]` held in bf16,
//! each weight widened to fp32 on the fly (a bf16 is the top half of an fp32), fp32 activations and sums.
//! A generated token reads half the bytes of fp32, through the same row split over rayon's threads as the
//! fp32 kernel (`decode::gemm_rows`), sixteen weight rows at a time with AVX-512 BF16 (four with
//! AVX-512F, AVX2 or portable code otherwise), the next rows prefetched; libtorch's bf16 GEMV ran the
//! SmolLM2-135M shape's step at 28.8 tokens/s on a 2-core AVX-512 BF16 EPYC. GPT-2's Rust decoder
//! ([`crate::decode`]) and the Hub families' linear layers use it.

use tch::{Device, Kind, Tensor};

use crate::decode::{LINEAR_ROWS, floats, no_history};
use crate::rows::by_weight_rows;

/// A contiguous bf16 CPU tensor's elements as raw `u16`s, borrowed.
pub(crate) fn halves(t: &Tensor) -> Option<&[u16]> {
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
    let n = w.size()[0] as usize;
    let mut out = vec![0f32; rows * n];
    gemm_rows_bf16(wf, xf, rows, &mut out, bf);
    let mut shape = size[..size.len() - 1].to_vec();
    shape.push(n as i64);
    Some(Tensor::from_slice(&out).view(shape.as_slice()))
}

/// `out[m, n] = Σ_k x[m, k]·w[n, k] (+ b[n])` for `rows` fp32 activation rows and bf16 weight rows `w`
/// (`[n, k]`): each weight row is read once, four at a time, widened to fp32 in registers.
pub(crate) fn gemm_rows_bf16(w: &[u16], x: &[f32], rows: usize, out: &mut [f32], b: Option<&[f32]>) {
    let k = x.len() / rows.max(1);
    let n = w.len() / k.max(1);
    // For `vdpbf16ps` the activations are rounded to bf16 once here, not per group of weight rows.
    // The other paths (row groups under 4, tails) then read the same rounded values.
    let xb: Vec<u16> = if kernel() == Kernel::DotBf16 { to_bf16_all(x) } else { Vec::new() };
    let rounded: Vec<f32> = xb.iter().map(|&h| f32::from_bits(u32::from(h) << 16)).collect();
    let x = if xb.is_empty() { x } else { &rounded[..] };
    // `vdpbf16ps` takes sixteen weight rows at a time: sixteen independent read streams, the next group's
    // lines prefetched while this one is summed (a bf16 row of GPT-2 is only 24 cache lines, too short for
    // the hardware prefetcher to ramp up on its own: 21 → 28 GB/s on a 2-core AMX Xeon, docs/benchmarks.md).
    let group = if kernel() == Kernel::DotBf16 { 16 } else { 4 };
    by_weight_rows(out, n, rows, k, |first, chunk| {
        let count = chunk.len() / rows.max(1);
        let mut r = 0;
        while r < count {
            let take = if count - r >= group { group } else { (count - r).min(4) };
            let nn = first + r;
            for m in 0..rows {
                let mut s = [0f32; 16];
                let xm = if xb.is_empty() { &[][..] } else { &xb[m * k..(m + 1) * k] };
                // The next group is prefetched once, with the first activation row.
                let ahead = m == 0;
                dot_rows(&w[nn * k..(nn + take) * k], k, &x[m * k..(m + 1) * k], xm, &mut s[..take], ahead);
                for (j, v) in s[..take].iter().enumerate() {
                    chunk[(r + j) * rows + m] = v + b.map_or(0.0, |b| b[nn + j]);
                }
            }
            r += take;
        }
    });
}

/// How the bf16 products are computed on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// `vdpbf16ps` (AVX-512 BF16): activations rounded to bf16 once per product, 32 pairs per instruction.
    DotBf16,
    /// AVX-512F: weights widened to fp32 in registers, fp32 activations.
    Widen512,
    /// AVX2 or portable code (`dot`).
    Other,
}

/// From [`crate::rows::isa`] (`BANTER_KERNELS=avx512` keeps to widening: exact fp32 activations).
fn kernel() -> Kernel {
    let i = crate::rows::isa();
    if i.bf16 {
        Kernel::DotBf16
    } else if i.avx512 {
        Kernel::Widen512
    } else {
        Kernel::Other
    }
}

/// Every value of `x` rounded as [`to_bf16`] rounds, 16 at a time with AVX-512 BF16 (`vcvtneps2bf16`).
pub(crate) fn to_bf16_all(x: &[f32]) -> Vec<u16> {
    let mut out = vec![0u16; x.len()];
    to_bf16_into(x, &mut out);
    out
}

/// [`to_bf16_all`] into `out` (`x.len()` values).
pub(crate) fn to_bf16_into(x: &[f32], out: &mut [u16]) {
    let out = &mut out[..x.len()];
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if kernel() == Kernel::DotBf16 {
        #[allow(unsafe_code)]
        // SAFETY: AVX-512 BF16 is present (`kernel` checked it).
        unsafe {
            done = round16(x, out)
        };
    }
    for (o, &v) in out[done..].iter_mut().zip(&x[done..]) {
        *o = to_bf16(v);
    }
}

/// The first `x.len() / 16 · 16` values of `x` rounded to bf16 into `out`; returns how many.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(unsafe_code)]
unsafe fn round16(x: &[f32], out: &mut [u16]) -> usize {
    use std::arch::x86_64::*;
    let full = x.len().min(out.len()) / 16 * 16;
    // SAFETY: each step reads and writes 16 elements at `i + 16 ≤ full`.
    unsafe {
        for i in (0..full).step_by(16) {
            let h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x.as_ptr().add(i)));
            _mm256_storeu_si256(out.as_mut_ptr().add(i) as *mut __m256i, std::mem::transmute::<__m256bh, __m256i>(h));
        }
    }
    full
}

/// `v` rounded to bf16 (nearest even; NaN stays NaN).
pub(crate) fn to_bf16(v: f32) -> u16 {
    let n = v.to_bits();
    if v.is_nan() { ((n >> 16) | 64) as u16 } else { ((n + (0x7fff + ((n >> 16) & 1))) >> 16) as u16 }
}

/// Dots of `w`'s rows (`s.len()` rows of `k`: 16 or at most 4) with `x` (`xb`: `x` in bf16, for
/// `vdpbf16ps`); `ahead`: prefetch the group of rows after these.
fn dot_rows(w: &[u16], k: usize, x: &[f32], xb: &[u16], s: &mut [f32], ahead: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if (s.len() == 16 || s.len() == 4) && kernel() == Kernel::DotBf16 && xb.len() == k {
            #[allow(unsafe_code)]
            // SAFETY: AVX-512 BF16 is present (`kernel` checked it); `w` holds `s.len()` rows of `k`, `xb` `k`.
            unsafe {
                if s.len() == 16 { dotn_dpbf16::<16>(w, k, xb, s, ahead) } else { dotn_dpbf16::<4>(w, k, xb, s, ahead) }
            };
            return;
        }
        if s.len() == 4 && kernel() == Kernel::Widen512 {
            #[allow(unsafe_code)]
            // SAFETY: AVX-512F is present (checked just above); `w` holds 4 rows of `k`, `x` holds `k`.
            unsafe {
                dot4_avx512(w, k, x, s)
            };
            return;
        }
    }
    let _ = ahead;
    for (r, v) in s.iter_mut().enumerate() {
        *v = dot(&w[r * k..(r + 1) * k], x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
#[allow(clippy::needless_range_loop)]
unsafe fn dot4_avx512(w: &[u16], k: usize, x: &[f32], s: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(w.len() >= 4 * k && x.len() >= k && s.len() >= 4);
    let mut a = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load is at `i + 16 ≤ k` within a row of `k` (the assert bounds the rows).
    unsafe {
        while i + 16 <= k {
            let xv = _mm512_loadu_ps(x.as_ptr().add(i));
            for r in 0..4 {
                let h = _mm256_loadu_si256(w.as_ptr().add(r * k + i) as *const __m256i);
                let f = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
                a[r] = _mm512_fmadd_ps(f, xv, a[r]);
            }
            i += 16;
        }
        for r in 0..4 {
            s[r] = _mm512_reduce_add_ps(a[r]) + dot_portable(&w[r * k + i..(r + 1) * k], &x[i..k]);
        }
    }
}

/// `s[r] = w_r · xb` for the `N` rows of `w` (rows of `k`) with `vdpbf16ps`; with `ahead`, the `N` rows
/// after them are prefetched into L1 as these are read (the address may lie past `w`: a prefetch is a
/// hint and never faults).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(unsafe_code)]
#[allow(clippy::needless_range_loop)]
unsafe fn dotn_dpbf16<const N: usize>(w: &[u16], k: usize, xb: &[u16], s: &mut [f32], ahead: bool) {
    use std::arch::x86_64::*;
    assert!(w.len() >= N * k && xb.len() >= k && s.len() >= N);
    let mut a = [_mm512_setzero_ps(); N];
    let mut i = 0;
    // SAFETY: every load is at `i + 32 ≤ k` within a row of `k` (the assert bounds the rows); prefetches
    // do not access memory.
    unsafe {
        while i + 32 <= k {
            let xv: __m512bh = std::mem::transmute(_mm512_loadu_si512(xb.as_ptr().add(i) as *const _));
            for r in 0..N {
                let at = w.as_ptr().wrapping_add(r * k + i);
                if ahead {
                    _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(N * k) as *const i8);
                }
                let h: __m512bh = std::mem::transmute(_mm512_loadu_si512(at as *const _));
                a[r] = _mm512_dpbf16_ps(a[r], h, xv);
            }
            i += 32;
        }
        for r in 0..N {
            let tail: f32 = (i..k)
                .map(|j| f32::from_bits(u32::from(w[r * k + j]) << 16) * f32::from_bits(u32::from(xb[j]) << 16))
                .sum();
            s[r] = _mm512_reduce_add_ps(a[r]) + tail;
        }
    }
}

/// `Σ w[i]·x[i]` with bf16 `w`.
fn dot(w: &[u16], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::rows::isa().avx2 {
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
        for (rows, k, n) in [(1, 576, 1536), (3, 37, 11), (4, 896, 130), (1, 15, 3), (2, 100, 53), (1, 768, 2311)] {
            let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
            let b = Tensor::randn([n], (Kind::Float, Device::Cpu));
            let x = Tensor::randn([rows, k], (Kind::Float, Device::Cpu));
            let got = linear_rows_bf16(&w, Some(&b), &x).unwrap();
            // With `vdpbf16ps` the activations are rounded to bf16 first, as libtorch's bf16 GEMM does.
            let xr = if kernel() == Kernel::DotBf16 { x.to_kind(Kind::BFloat16).to_kind(Kind::Float) } else { x };
            let want = xr.matmul(&w.to_kind(Kind::Float).tr()) + &b;
            let diff = (&got - &want).abs().max().double_value(&[]);
            assert!(got.allclose(&want, 1e-4, 1e-3, false), "{rows}×{k}×{n}: {diff}");
        }
        // bf16 rounding of activations: nearest even, as libtorch's.
        let v = Tensor::randn([1000], (Kind::Float, Device::Cpu));
        let theirs: Vec<f32> = Vec::try_from(&v.to_kind(Kind::BFloat16).to_kind(Kind::Float)).unwrap();
        let ours: Vec<f32> =
            Vec::<f32>::try_from(&v).unwrap().iter().map(|&f| f32::from_bits(u32::from(to_bf16(f)) << 16)).collect();
        assert_eq!(theirs, ours);
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
