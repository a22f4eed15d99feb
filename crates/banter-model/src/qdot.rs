//! Integer dot products for quantized decoding (`--quantize int8`, `--quantize q4`).
//!
//! Each activation row is quantized to int8 in blocks of 32 ([`QAct`]: one fp32 scale per block, as
//! llama.cpp's Q8_0 does for its activations), so a weight row is read once as bytes and multiplied by
//! integer instructions:
//! - **AVX-512 VNNI** (`vpdpbusd`, 64 products per instruction, u8 × i8 summed into i32 lanes); the u8 side
//!   is the weight: int8 weights are stored offset by +128, q4 nibbles are 0..15 already, and the offsets are
//!   taken out once per block from the activation's block sums.
//! - **AVX2** (`vpmaddubsw`, llama.cpp's sign trick: |x| × sign(x)·w fits in i16 for |w| ≤ 127).
//! - Portable code otherwise.
//!
//! The level is read once from the CPU ([`crate::rows::isa`]; `BANTER_KERNELS=avx2|portable` forces a
//! lower one, for tests and benchmarks). All levels compute the same integer sums; only the order of the fp32 block sums differs.

/// Elements per activation block (and per q4 weight group).
pub const BLOCK: usize = 32;

/// The instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// AVX-512 F/BW/DQ + VNNI.
    Vnni512,
    /// AVX2 + FMA.
    Avx2,
    /// Plain Rust.
    Portable,
}

/// True when this CPU can run kernels of level `l`.
pub fn supported(l: Level) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match l {
            Level::Vnni512 => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512dq")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            Level::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            Level::Portable => true,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        l == Level::Portable
    }
}

/// The level for this CPU (and `BANTER_KERNELS`), from [`crate::rows::isa`].
pub fn level() -> Level {
    let i = crate::rows::isa();
    if i.vnni {
        Level::Vnni512
    } else if i.avx2 {
        Level::Avx2
    } else {
        Level::Portable
    }
}

/// Activation rows quantized to int8 in blocks of [`BLOCK`] (the last block of a row may be shorter).
#[derive(Debug, Default)]
pub struct QAct {
    /// Row length.
    pub k: usize,
    /// `rows × k` values.
    pub q: Vec<i8>,
    /// `rows × blocks` scales.
    pub scale: Vec<f32>,
    /// `rows × blocks × 8`: each block's scale repeated over 8 lanes (the VNNI kernels load 16 at once).
    pub lanes: Vec<f32>,
    /// `rows × blocks`: `Σ q` of each block.
    pub sum: Vec<i32>,
    /// `rows × (k / 64) × 16`: per pair of blocks, `−8 ·` the sum of each 4 values a VNNI lane adds up (the
    /// q4 nibbles' offset of 8, so the q4 kernel starts each pair's products from it).
    pub neg8: Vec<i32>,
    /// Per row: `Σ_b scale_b · sum_b` (the int8 weights' +128 offset times this is taken out once).
    pub total: Vec<f32>,
}

impl QAct {
    /// Blocks per row.
    pub fn blocks(&self) -> usize {
        self.k.div_ceil(BLOCK)
    }

    /// Quantizes `rows` rows of `k` (`x` is `[rows, k]`), reusing this buffer.
    pub fn quantize(&mut self, x: &[f32], k: usize) {
        let rows = x.len() / k.max(1);
        let nb = k.div_ceil(BLOCK);
        self.k = k;
        self.q.resize(rows * k, 0);
        self.scale.resize(rows * nb, 0.0);
        self.lanes.resize(rows * nb * 8, 0.0);
        self.sum.resize(rows * nb, 0);
        self.total.resize(rows, 0.0);
        let pairs = k / 64;
        self.neg8.resize(rows * pairs * 16, 0);
        for m in 0..rows {
            let mut total = 0f32;
            for b in 0..nb {
                let (lo, hi) = (m * k + b * BLOCK, (m * k + (b + 1) * BLOCK).min((m + 1) * k));
                let amax = x[lo..hi].iter().fold(0f32, |a, v| a.max(v.abs()));
                let s = amax / 127.0;
                let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
                let mut sum = 0i32;
                for (q, v) in self.q[lo..hi].iter_mut().zip(&x[lo..hi]) {
                    // Round half to even by the 1.5·2²³ trick (|v·inv| ≤ 127): no libm call per value.
                    let r = (((v * inv) + 12_582_912.0) - 12_582_912.0).clamp(-127.0, 127.0) as i8;
                    *q = r;
                    sum += i32::from(r);
                }
                let i = m * nb + b;
                self.scale[i] = s;
                self.sum[i] = sum;
                self.lanes[i * 8..(i + 1) * 8].fill(s);
                total += s * sum as f32;
            }
            self.total[m] = total;
            let q = &self.q[m * k..m * k + pairs * 64];
            for (lane, four) in self.neg8[m * pairs * 16..(m + 1) * pairs * 16].iter_mut().zip(q.chunks_exact(4)) {
                *lane = -8 * four.iter().map(|&v| i32::from(v)).sum::<i32>();
            }
        }
    }

    /// Row `m`: values, scales, lanes, sums.
    #[inline]
    fn row(&self, m: usize) -> (&[i8], &[f32], &[f32], &[i32]) {
        let nb = self.blocks();
        (
            &self.q[m * self.k..(m + 1) * self.k],
            &self.scale[m * nb..(m + 1) * nb],
            &self.lanes[m * nb * 8..(m + 1) * nb * 8],
            &self.sum[m * nb..(m + 1) * nb],
        )
    }
}

/// `Σ_i (u[i] − 128)·x[i]` for an int8 weight row stored offset by +128 (`u`, `k` bytes) and activation
/// row `m` of `a`, in the activation's units (the caller multiplies by the weight row's scale).
#[inline]
pub fn dot_u8(u: &[u8], a: &QAct, m: usize) -> f32 {
    dot_u8_with(level(), u, a, m)
}

/// [`dot_u8`] at a given level (one the CPU has: [`supported`]).
#[inline]
pub fn dot_u8_with(l: Level, u: &[u8], a: &QAct, m: usize) -> f32 {
    let (q, s, lanes, _) = a.row(m);
    match l {
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: the level was detected from the CPU; the kernels read only within the slices.
        Level::Vnni512 => unsafe { x86::dot_u8_vnni(u, q, s, lanes) - 128.0 * a.total[m] },
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: as above.
        Level::Avx2 => unsafe { x86::dot_u8_avx2(u, q, s) },
        _ => dot_u8_portable(u, q, s, 0),
    }
}

/// Blocks `from..` of an int8 (offset +128) row, portable.
#[allow(clippy::needless_range_loop)]
pub(crate) fn dot_u8_portable(u: &[u8], q: &[i8], s: &[f32], from: usize) -> f32 {
    let mut acc = 0f32;
    for b in from..s.len() {
        let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(q.len()));
        let d: i32 = u[lo..hi].iter().zip(&q[lo..hi]).map(|(&w, &x)| (i32::from(w) - 128) * i32::from(x)).sum();
        acc += s[b] * d as f32;
    }
    acc
}

/// `Σ_b d_b · Σ_{i∈b} (nib_i − 8)·x_i` for a q4 row (`nib`: `k/2` bytes, in pairs of blocks: byte `j` of
/// pair `p` holds element `64p + j` in its low nibble and `64p + 32 + j` in its high one; `d`: one scale
/// per block) and activation row `m` of `a` (`k` a multiple of 64).
#[inline]
pub fn dot_q4(nib: &[u8], d: &[f32], a: &QAct, m: usize) -> f32 {
    dot_q4_with(level(), nib, d, a, m)
}

/// [`dot_q4`] at a given level (one the CPU has: [`supported`]).
#[inline]
pub fn dot_q4_with(l: Level, nib: &[u8], d: &[f32], a: &QAct, m: usize) -> f32 {
    let (q, s, _, sums) = a.row(m);
    match l {
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: the level was detected from the CPU; `q4_one` asserts the lengths it reads.
        Level::Vnni512 => unsafe { block::q4_one(nib, d, a, m) },
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: as above.
        Level::Avx2 => unsafe { x86::dot_q4_avx2(nib, d, q, s, sums) },
        _ => dot_q4_portable(nib, d, q, s),
    }
}

/// The element `i` of a q4 row (0..15).
#[inline(always)]
pub fn nibble(nib: &[u8], i: usize) -> u8 {
    let (p, j) = (i / 64, i % 64);
    let byte = nib[p * 32 + (j % 32)];
    if j < 32 { byte & 15 } else { byte >> 4 }
}

pub(crate) fn dot_q4_portable(nib: &[u8], d: &[f32], q: &[i8], s: &[f32]) -> f32 {
    let mut acc = 0f32;
    for b in 0..d.len() {
        let sum: i32 = (b * BLOCK..(b + 1) * BLOCK).map(|i| (i32::from(nibble(nib, i)) - 8) * i32::from(q[i])).sum();
        acc += d[b] * s[b] * sum as f32;
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BLOCK, dot_q4_portable, dot_u8_portable};

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni")]
    pub(super) unsafe fn dot_u8_vnni(u: &[u8], q: &[i8], s: &[f32], lanes: &[f32]) -> f32 {
        let k = q.len().min(u.len());
        let pairs = k / 64;
        // SAFETY: pair `p` reads bytes `64p..64p+64 ≤ k` of `u` and `q` and lanes `16p..16p+16`
        // (`lanes` holds 8 per block, 2 blocks per pair).
        unsafe {
            let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut p = 0;
            while p + 2 <= pairs {
                let s0 = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(),
                    _mm512_loadu_si512(u.as_ptr().add(64 * p) as *const _),
                    _mm512_loadu_si512(q.as_ptr().add(64 * p) as *const _),
                );
                let s1 = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(),
                    _mm512_loadu_si512(u.as_ptr().add(64 * p + 64) as *const _),
                    _mm512_loadu_si512(q.as_ptr().add(64 * p + 64) as *const _),
                );
                a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_loadu_ps(lanes.as_ptr().add(16 * p)), a0);
                a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_loadu_ps(lanes.as_ptr().add(16 * p + 16)), a1);
                p += 2;
            }
            if p < pairs {
                let s0 = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(),
                    _mm512_loadu_si512(u.as_ptr().add(64 * p) as *const _),
                    _mm512_loadu_si512(q.as_ptr().add(64 * p) as *const _),
                );
                a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_loadu_ps(lanes.as_ptr().add(16 * p)), a0);
            }
            // The rest (a block or less) without the offset: add it back, since the caller takes it out.
            let from = 2 * pairs;
            let tail = dot_u8_portable(u, q, s, from);
            let offset: f32 = (from..s.len())
                .map(|b| {
                    let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(k));
                    s[b] * q[lo..hi].iter().map(|&x| i32::from(x)).sum::<i32>() as f32
                })
                .sum();
            _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + tail + 128.0 * offset
        }
    }

    /// A block's 32 products `w·x` summed into 8 i32 lanes, as fp32 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn block_avx2(w: __m256i, x: __m256i) -> __m256 {
        // |x| × (w with x's sign): |products| ≤ 2 · 127 · 127 fits vpmaddubsw's i16.
        let ax = _mm256_sign_epi8(x, x);
        let sw = _mm256_sign_epi8(w, x);
        let p16 = _mm256_maddubs_epi16(ax, sw);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let mut lanes = [0f32; 8];
        // SAFETY: 8 floats into an 8-float array.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        lanes.iter().sum()
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)]
    pub(super) unsafe fn dot_u8_avx2(u: &[u8], q: &[i8], s: &[f32]) -> f32 {
        let k = q.len().min(u.len());
        let full = (k / BLOCK).min(s.len());
        let flip = _mm256_set1_epi8(-128);
        let mut acc = _mm256_setzero_ps();
        // SAFETY: block `b < full` reads 32 bytes at `32b + 32 ≤ k`.
        unsafe {
            for b in 0..full {
                let w = _mm256_xor_si256(_mm256_loadu_si256(u.as_ptr().add(BLOCK * b) as *const __m256i), flip);
                let x = _mm256_loadu_si256(q.as_ptr().add(BLOCK * b) as *const __m256i);
                acc = _mm256_fmadd_ps(block_avx2(w, x), _mm256_set1_ps(s[b]), acc);
            }
            hsum(acc) + dot_u8_portable(u, q, s, full)
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_q4_avx2(nib: &[u8], d: &[f32], q: &[i8], s: &[f32], sums: &[i32]) -> f32 {
        let pairs = (q.len() / 64).min(nib.len() / 32).min(d.len() / 2);
        if pairs * 2 != d.len() {
            return dot_q4_portable(nib, d, q, s);
        }
        let mask = _mm256_set1_epi8(15);
        let mut acc = _mm256_setzero_ps();
        let mut comp = 0f32;
        // SAFETY: pair `p` reads nibble bytes `32p..32p+32` and values `64p..64p+64`, within the slices.
        unsafe {
            for p in 0..pairs {
                let v = _mm256_loadu_si256(nib.as_ptr().add(32 * p) as *const __m256i);
                let lo = _mm256_and_si256(v, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
                let x0 = _mm256_loadu_si256(q.as_ptr().add(64 * p) as *const __m256i);
                let x1 = _mm256_loadu_si256(q.as_ptr().add(64 * p + 32) as *const __m256i);
                // Nibbles are 0..15 (unsigned): u8 × i8 straight into vpmaddubsw (|sum| ≤ 2 · 15 · 127).
                let ones = _mm256_set1_epi16(1);
                let p0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), ones));
                let p1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), ones));
                let (c0, c1) = (d[2 * p] * s[2 * p], d[2 * p + 1] * s[2 * p + 1]);
                acc = _mm256_fmadd_ps(p0, _mm256_set1_ps(c0), acc);
                acc = _mm256_fmadd_ps(p1, _mm256_set1_ps(c1), acc);
                comp += c0 * sums[2 * p] as f32 + c1 * sums[2 * p + 1] as f32;
            }
            hsum(acc) - 8.0 * comp
        }
    }
}

pub mod block;
pub mod prefill;

#[cfg(test)]
mod tests;
