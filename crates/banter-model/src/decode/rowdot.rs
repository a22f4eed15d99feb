//! The fp32 row kernels of [`super::gemm_rows`]: four weight rows dotted with one activation row, AVX-512 or
//! AVX2+FMA chosen at run time (portable code otherwise).

use crate::rows::dot_portable;

/// Dots of `w`'s rows (`s.len()` ≤ 4 rows of `k`) with `x`.
pub(super) fn dot_rows(w: &[f32], k: usize, x: &[f32], s: &mut [f32], ahead: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if s.len() == 4 && crate::rows::isa().avx512 {
            #[allow(unsafe_code)]
            // SAFETY: AVX-512F is present (`isa` checked it); `w` holds 4 rows of `k`, `x` holds `k`.
            unsafe {
                dot4_avx512(w, k, x, s, ahead)
            };
            return;
        }
        if s.len() == 4 && crate::rows::isa().avx2 {
            #[allow(unsafe_code)]
            // SAFETY: AVX2 and FMA are present (checked just above); `w` holds 4 rows of `k`, `x` holds `k`.
            unsafe {
                dot4_avx2(w, k, x, s)
            };
            return;
        }
    }
    for (r, v) in s.iter_mut().enumerate() {
        *v = dot_portable(&w[r * k..(r + 1) * k], x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
#[allow(clippy::needless_range_loop)]
unsafe fn dot4_avx512(w: &[f32], k: usize, x: &[f32], s: &mut [f32], ahead: bool) {
    use std::arch::x86_64::*;
    assert!(w.len() >= 4 * k && x.len() >= k && s.len() >= 4);
    let mut a = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load is at `i + 16 ≤ k` within a row of `k` floats (the assert bounds the rows); a
    // prefetch (of the next four rows, possibly past `w`) is a hint that never faults.
    unsafe {
        while i + 16 <= k {
            let xv = _mm512_loadu_ps(x.as_ptr().add(i));
            for r in 0..4 {
                let at = w.as_ptr().wrapping_add(r * k + i);
                if ahead {
                    _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(4 * k) as *const i8);
                }
                a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(at), xv, a[r]);
            }
            i += 16;
        }
        for r in 0..4 {
            let tail: f32 = (i..k).map(|j| w[r * k + j] * x[j]).sum();
            s[r] = _mm512_reduce_add_ps(a[r]) + tail;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn dot4_avx2(w: &[f32], k: usize, x: &[f32], s: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(w.len() >= 4 * k && x.len() >= k && s.len() >= 4);
    let mut a = [_mm256_setzero_ps(); 4];
    let mut c = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load is at `i + 16 ≤ k` within a row of `k` floats (the assert bounds the rows).
    unsafe {
        while i + 16 <= k {
            let xa = _mm256_loadu_ps(x.as_ptr().add(i));
            let xb = _mm256_loadu_ps(x.as_ptr().add(i + 8));
            for r in 0..4 {
                let p = w.as_ptr().add(r * k + i);
                a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(p), xa, a[r]);
                c[r] = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(8)), xb, c[r]);
            }
            i += 16;
        }
        for r in 0..4 {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(a[r], c[r]));
            let tail: f32 = (i..k).map(|j| w[r * k + j] * x[j]).sum();
            s[r] = lanes.iter().sum::<f32>() + tail;
        }
    }
}
