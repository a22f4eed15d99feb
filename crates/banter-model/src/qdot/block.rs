//! Whole blocks of weight rows against every activation row, in one call (`quant.rs`'s `gemm_rows`): the
//! loops run inside the AVX-512 VNNI code, so nothing is dispatched per dot product, and each pair of q4
//! blocks is unpacked (each int8 pair loaded) once for up to four activation rows — the prompt's prefill
//! reads a weight row's bytes once per four tokens instead of once per token.
//!
//! `k` must be a multiple of 64 (the callers check [`applies`]); the sums are the ones [`super::dot_u8`] and
//! [`super::dot_q4`] compute, in the same order within a row.

use super::{Level, QAct};

/// True when the block kernels serve rows of `k` on this CPU (`level` from [`super::level`]).
pub fn applies(level: Level, k: usize) -> bool {
    level == Level::Vnni512 && k > 0 && k.is_multiple_of(64)
}

/// `out[j·rows + m] = scale[j] · Σ_i (u[j·k + i] − 128)·x_m[i]` for the `out.len() / rows` int8 weight rows
/// of `u` (offset +128) and the `rows` rows of `a`.
pub fn int8(u: &[u8], scales: &[f32], a: &QAct, rows: usize, out: &mut [f32]) {
    let k = a.k;
    let n = out.len() / rows.max(1);
    assert!(k.is_multiple_of(64) && u.len() >= n * k && scales.len() >= n && a.total.len() >= rows);
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: callers reach here only where `applies` saw VNNI; the lengths are asserted above.
    unsafe {
        x86::int8(u, scales, a, rows, out)
    }
}

/// `out[j·rows + m] = Σ_b d[j, b] · Σ_{i∈b} (nib − 8)·x_m[i]` for the `out.len() / rows` q4 weight rows
/// (`nib`: `k/2` bytes per row, `d`: `k/32` scales per row) and the `rows` rows of `a`.
pub fn q4(nib: &[u8], d: &[f32], a: &QAct, rows: usize, out: &mut [f32]) {
    let k = a.k;
    let n = out.len() / rows.max(1);
    assert!(k.is_multiple_of(64) && nib.len() >= n * k / 2 && d.len() >= n * k / 32 && a.neg8.len() >= rows * k / 4);
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: as in `int8`.
    unsafe {
        x86::q4(nib, d, a, rows, out)
    }
}

/// [`super::dot_q4`] of weight row `nib`/`d` and activation row `m` of `a`, with AVX-512 VNNI.
///
/// # Safety
/// The CPU has AVX-512 F/BW/DQ and VNNI; `k` is a multiple of 64; `nib` holds `k/2` bytes and `d` `k/32` scales.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(super) unsafe fn q4_one(nib: &[u8], d: &[f32], a: &QAct, m: usize) -> f32 {
    assert!(a.k.is_multiple_of(64) && nib.len() >= a.k / 2 && d.len() >= a.k / 32 && a.neg8.len() >= (m + 1) * a.k / 4);
    // SAFETY: as the caller promises, and the lengths are asserted above.
    unsafe { x86::q4_rows::<1>(nib, d, a, m)[0] }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::QAct;

    /// Activation rows per pass over a weight row.
    const GROUP: usize = 4;

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    pub(super) unsafe fn int8(u: &[u8], scales: &[f32], a: &QAct, rows: usize, out: &mut [f32]) {
        let k = a.k;
        for (j, o) in out.chunks_mut(rows).enumerate() {
            let w = &u[j * k..(j + 1) * k];
            let mut m0 = 0;
            while m0 < rows {
                let g = (rows - m0).min(GROUP);
                // SAFETY: the weight row is `k` bytes; rows `m0..m0 + g` of `a` exist (asserted by the caller).
                let sums = unsafe {
                    match g {
                        4 => int8_rows::<4>(w, a, m0),
                        3 => pad(int8_rows::<3>(w, a, m0)),
                        2 => pad(int8_rows::<2>(w, a, m0)),
                        _ => pad(int8_rows::<1>(w, a, m0)),
                    }
                };
                for i in 0..g {
                    o[m0 + i] = (sums[i] - 128.0 * a.total[m0 + i]) * scales[j];
                }
                m0 += g;
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    pub(super) unsafe fn q4(nib: &[u8], d: &[f32], a: &QAct, rows: usize, out: &mut [f32]) {
        let k = a.k;
        for (j, o) in out.chunks_mut(rows).enumerate() {
            let (w, dj) = (&nib[j * k / 2..(j + 1) * k / 2], &d[j * k / 32..(j + 1) * k / 32]);
            let mut m0 = 0;
            while m0 < rows {
                let g = (rows - m0).min(GROUP);
                // SAFETY: as in `int8`.
                let sums = unsafe {
                    match g {
                        4 => q4_rows::<4>(w, dj, a, m0),
                        3 => pad(q4_rows::<3>(w, dj, a, m0)),
                        2 => pad(q4_rows::<2>(w, dj, a, m0)),
                        _ => pad(q4_rows::<1>(w, dj, a, m0)),
                    }
                };
                o[m0..m0 + g].copy_from_slice(&sums[..g]);
                m0 += g;
            }
        }
    }

    fn pad<const M: usize>(v: [f32; M]) -> [f32; GROUP] {
        let mut out = [0f32; GROUP];
        out[..M].copy_from_slice(&v);
        out
    }

    /// `Σ_i u[i]·x_m[i]` per block, scaled by the activation's block scale, for rows `m0..m0 + M` of `a`
    /// (the +128 offset is taken out by the caller).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    unsafe fn int8_rows<const M: usize>(w: &[u8], a: &QAct, m0: usize) -> [f32; M] {
        let (k, nb) = (a.k, a.blocks());
        let mut acc = [_mm512_setzero_ps(); M];
        // SAFETY: pair `p < k/64` reads bytes `64p..64p+64` of the weight row and of each activation row,
        // and lanes `16p..16p+16` of each row's `8·nb` lanes.
        unsafe {
            for p in 0..k / 64 {
                let wv = _mm512_loadu_si512(w.as_ptr().add(64 * p) as *const _);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let m = m0 + i;
                    let x = _mm512_loadu_si512(a.q.as_ptr().add(m * k + 64 * p) as *const _);
                    let s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, x);
                    let l = _mm512_loadu_ps(a.lanes.as_ptr().add(m * nb * 8 + 16 * p));
                    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), l, *acc);
                }
            }
        }
        let mut out = [0f32; M];
        for (o, v) in out.iter_mut().zip(acc) {
            *o = _mm512_reduce_add_ps(v);
        }
        out
    }

    /// `Σ_b d_b · s_b · Σ_{i∈b} (nib_i − 8)·q_m[i]` for rows `m0..m0 + M` of `a`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    pub(super) unsafe fn q4_rows<const M: usize>(nib: &[u8], d: &[f32], a: &QAct, m0: usize) -> [f32; M] {
        let (k, nb) = (a.k, a.blocks());
        let mask = _mm512_set1_epi8(15);
        // The pair's 32 bytes in both halves, the upper half shifted by 4: low nibbles, then high ones.
        let shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
        // Lanes 0-7 take a pair's first scale, lanes 8-15 its second.
        let pick = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        let mut acc = [_mm512_setzero_ps(); M];
        // SAFETY: pair `p < k/64` reads nibble bytes `32p..32p+32`, scales `2p, 2p+1`, and of each activation
        // row values `64p..64p+64`, lanes and offsets `16p..16p+16`.
        unsafe {
            for p in 0..k / 64 {
                let v = _mm512_broadcast_i64x4(_mm256_loadu_si256(nib.as_ptr().add(32 * p) as *const __m256i));
                let wv = _mm512_and_si512(_mm512_srlv_epi64(v, shift), mask);
                let two = _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(d.as_ptr().add(2 * p) as *const f64)));
                let dd = _mm512_permutexvar_ps(pick, two);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let m = m0 + i;
                    let x = _mm512_loadu_si512(a.q.as_ptr().add(m * k + 64 * p) as *const _);
                    let off = _mm512_loadu_si512(a.neg8.as_ptr().add(m * k / 4 + 16 * p) as *const _);
                    let s = _mm512_dpbusd_epi32(off, wv, x);
                    let l = _mm512_loadu_ps(a.lanes.as_ptr().add(m * nb * 8 + 16 * p));
                    *acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), l), dd, *acc);
                }
            }
        }
        let mut out = [0f32; M];
        for (o, v) in out.iter_mut().zip(acc) {
            *o = _mm512_reduce_add_ps(v);
        }
        out
    }
}
