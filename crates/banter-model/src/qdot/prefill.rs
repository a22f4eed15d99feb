//! A prompt's prefill over quantized weights on CPUs with AVX-512 BF16: each group of four weight rows is
//! widened once into a bf16 buffer that stays in L1 — int8 values exactly (the per-channel scale is applied
//! to the sums), q4 values times their group's scale — and multiplied with every prompt token, rounded to
//! bf16 once, by `vdpbf16ps` in 4 × 4 register blocks: 32 multiply-adds per instruction, where the VNNI
//! kernel ([`super::block`]) spends four vector operations per product on the per-block scales. Decoding
//! (one row) keeps the VNNI kernel; this serves [`MIN_ROWS`] rows and more.

use super::BLOCK;

/// Activation rows from which the prefill kernel serves a product.
pub const MIN_ROWS: usize = 8;

/// Activation rows up to which `quant.rs` sends a product here rather than to libtorch on the widened matrix
/// (its output buffer holds `rows ×` the matrix's outputs).
pub const MAX_ROWS: usize = 256;

/// Quantized weight rows, as `quant.rs` stores them.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// `[n, k]` bytes (value + 128) and one scale per row.
    Int8 { u: &'a [u8], scales: &'a [f32] },
    /// `[n, k/2]` nibble bytes (see [`super::dot_q4`]) and `[n, k/32]` scales.
    Q4 { nib: &'a [u8], d: &'a [f32] },
}

/// True when the kernel serves `rows` activation rows of `k` on this CPU.
pub fn applies(rows: usize, k: usize) -> bool {
    rows >= MIN_ROWS && k > 0 && k.is_multiple_of(64) && crate::rows::isa().bf16
}

/// `chunk[j·rows + m] = Σ_i W[first + j, i] · xb_m[i]` for the `chunk.len() / rows` weight rows from
/// `first`, with `xb` the `rows` activation rows (of `k`) rounded to bf16.
pub fn gemm(w: Rows<'_>, k: usize, xb: &[u16], rows: usize, first: usize, chunk: &mut [f32]) {
    let count = chunk.len() / rows.max(1);
    assert!(k.is_multiple_of(64) && xb.len() >= rows * k);
    let mut buf = vec![0u16; 4 * k];
    let mut r = 0;
    while r < count {
        let take = (count - r).min(4);
        let mut scale = [1f32; 4];
        for (j, row) in buf.chunks_mut(k).enumerate() {
            if j >= take {
                row.fill(0);
                continue;
            }
            let n = first + r + j;
            match w {
                Rows::Int8 { u, scales } => {
                    widen_int8(&u[n * k..(n + 1) * k], row);
                    scale[j] = scales[n];
                }
                Rows::Q4 { nib, d } => {
                    widen_q4(&nib[n * k / 2..(n + 1) * k / 2], &d[n * k / BLOCK..(n + 1) * k / BLOCK], row)
                }
            }
        }
        let mut m0 = 0;
        while m0 < rows {
            let g = (rows - m0).min(4);
            let s = sums(&buf, k, &xb[m0 * k..], g);
            for j in 0..take {
                for i in 0..g {
                    chunk[(r + j) * rows + m0 + i] = s[j][i] * scale[j];
                }
            }
            m0 += g;
        }
        r += take;
    }
}

/// An int8 row (offset +128) as exact bf16 values `u − 128`.
fn widen_int8(u: &[u8], row: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: callers reach here only where `applies` saw AVX-512 BF16.
    unsafe {
        return x86::widen_int8(u, row);
    }
    #[allow(unreachable_code)]
    for (o, &b) in row.iter_mut().zip(u) {
        // |u − 128| ≤ 128: exact in bf16.
        *o = ((f32::from(b) - 128.0).to_bits() >> 16) as u16;
    }
}

/// A q4 row as bf16 values `(nib − 8)·d`, rounded to nearest even.
fn widen_q4(nib: &[u8], d: &[f32], row: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: callers reach here only where `applies` saw AVX-512 BF16.
    unsafe {
        return x86::widen_q4(nib, d, row);
    }
    #[allow(unreachable_code)]
    for (i, o) in row.iter_mut().enumerate() {
        *o = crate::bf16::to_bf16((f32::from(super::nibble(nib, i)) - 8.0) * d[i / BLOCK]);
    }
}

/// `s[j][i] = buf_j · x_i` for the 4 rows of `buf` and the first `g` (≤ 4) rows of `x`.
fn sums(buf: &[u16], k: usize, x: &[u16], g: usize) -> [[f32; 4]; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(unsafe_code)]
        // SAFETY: `applies` saw AVX-512 BF16; `buf` holds 4 rows of `k`, `x` at least `g` rows, `k % 32 == 0`.
        unsafe {
            return match g {
                4 => x86::block::<4>(buf, k, x),
                3 => x86::block::<3>(buf, k, x),
                2 => x86::block::<2>(buf, k, x),
                _ => x86::block::<1>(buf, k, x),
            };
        }
    }
    #[allow(unreachable_code)]
    {
        let f = |h: u16| f32::from_bits(u32::from(h) << 16);
        let mut s = [[0f32; 4]; 4];
        for (j, sj) in s.iter_mut().enumerate() {
            for (i, v) in sj.iter_mut().take(g).enumerate() {
                *v = (0..k).map(|t| f(buf[j * k + t]) * f(x[i * k + t])).sum();
            }
        }
        s
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    /// 16 floats to 16 bf16 (nearest even) at `o`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn store16(v: __m512, o: *mut u16) {
        // SAFETY: the caller passes room for 16 `u16`.
        unsafe {
            _mm256_storeu_si256(o as *mut __m256i, std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v)))
        }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn widen_int8(u: &[u8], row: &mut [u16]) {
        let n = u.len().min(row.len()) / 16 * 16;
        let off = _mm512_set1_ps(128.0);
        // SAFETY: each step reads 16 bytes and writes 16 elements at `i + 16 ≤ n`.
        unsafe {
            for i in (0..n).step_by(16) {
                let b = _mm512_cvtepu8_epi32(_mm_loadu_si128(u.as_ptr().add(i) as *const __m128i));
                store16(_mm512_sub_ps(_mm512_cvtepi32_ps(b), off), row.as_mut_ptr().add(i));
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn widen_q4(nib: &[u8], d: &[f32], row: &mut [u16]) {
        // Pair `p` of blocks: bytes `32p..32p+32`, low nibbles are elements `64p..64p+32`, high ones the next 32.
        let pairs = (nib.len() / 32).min(d.len() / 2).min(row.len() / 64);
        let (mask, eight) = (_mm512_set1_epi32(15), _mm512_set1_ps(8.0));
        // SAFETY: pair `p` reads bytes `32p..32p+32`, scales `2p, 2p+1`, writes elements `64p..64p+64`.
        unsafe {
            for p in 0..pairs {
                for half in 0..2 {
                    let b =
                        _mm512_cvtepu8_epi32(_mm_loadu_si128(nib.as_ptr().add(32 * p + 16 * half) as *const __m128i));
                    let lo = _mm512_and_si512(b, mask);
                    let hi = _mm512_and_si512(_mm512_srli_epi32(b, 4), mask);
                    let (d0, d1) = (_mm512_set1_ps(d[2 * p]), _mm512_set1_ps(d[2 * p + 1]));
                    let vl = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(lo), eight), d0);
                    let vh = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(hi), eight), d1);
                    store16(vl, row.as_mut_ptr().add(64 * p + 16 * half));
                    store16(vh, row.as_mut_ptr().add(64 * p + 32 + 16 * half));
                }
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn block<const M: usize>(buf: &[u16], k: usize, x: &[u16]) -> [[f32; 4]; 4] {
        assert!(buf.len() >= 4 * k && x.len() >= M * k && k.is_multiple_of(32));
        let mut a = [[_mm512_setzero_ps(); M]; 4];
        // SAFETY: every load reads 32 bf16 at `i + 32 ≤ k` within a row of `k` (asserted above).
        unsafe {
            for i in (0..k).step_by(32) {
                let mut xv = [_mm512_setzero_ps(); M];
                for (m, v) in xv.iter_mut().enumerate() {
                    *v = _mm512_castsi512_ps(_mm512_loadu_si512(x.as_ptr().add(m * k + i) as *const _));
                }
                for (r, ar) in a.iter_mut().enumerate() {
                    let w: __m512bh = std::mem::transmute(_mm512_loadu_si512(buf.as_ptr().add(r * k + i) as *const _));
                    for (acc, xm) in ar.iter_mut().zip(&xv) {
                        let xb: __m512bh = std::mem::transmute(*xm);
                        *acc = _mm512_dpbf16_ps(*acc, w, xb);
                    }
                }
            }
        }
        let mut s = [[0f32; 4]; 4];
        for (sr, ar) in s.iter_mut().zip(&a) {
            for (v, acc) in sr.iter_mut().zip(ar) {
                *v = _mm512_reduce_add_ps(*acc);
            }
        }
        s
    }
}
