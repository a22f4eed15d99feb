//! A 4 × 4 register block for the fp32 row kernel (`decode::gemm_rows`) when several activation rows meet
//! the same weight rows (a prompt's prefill): four weight rows and four activation rows, sixteen AVX-512
//! sums, so each loaded vector feeds four FMAs instead of one (the one-row kernel loads five vectors per four
//! FMAs and is bound by loads).

/// `s[r][m] = w_r · x_m` for the 4 weight rows of `w` and the 4 activation rows of `x` (rows of `k`; `x`'s
/// rows `stride` apart), on a CPU with AVX-512F (the caller checks [`crate::rows::isa`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
#[allow(clippy::needless_range_loop)]
pub(crate) unsafe fn dot4x4_avx512(w: &[f32], k: usize, x: &[f32], stride: usize, s: &mut [[f32; 4]; 4]) {
    use std::arch::x86_64::*;
    assert!(w.len() >= 4 * k && stride >= k && x.len() >= 3 * stride + k);
    let mut a = [[_mm512_setzero_ps(); 4]; 4];
    let mut i = 0;
    // SAFETY: every load is at `i + 16 ≤ k` within a row of `k` (the assert bounds the rows).
    unsafe {
        while i + 16 <= k {
            let xv = [0, 1, 2, 3].map(|m| _mm512_loadu_ps(x.as_ptr().add(m * stride + i)));
            for r in 0..4 {
                let wv = _mm512_loadu_ps(w.as_ptr().add(r * k + i));
                for m in 0..4 {
                    a[r][m] = _mm512_fmadd_ps(wv, xv[m], a[r][m]);
                }
            }
            i += 16;
        }
    }
    for r in 0..4 {
        for m in 0..4 {
            let tail: f32 = (i..k).map(|j| w[r * k + j] * x[m * stride + j]).sum();
            s[r][m] = _mm512_reduce_add_ps(a[r][m]) + tail;
        }
    }
}
