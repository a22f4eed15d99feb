//! Element-wise math of the CPU decoders (`decode.rs`): GELU and the softmax's exponentials over whole
//! slices, vectorised. libm's `tanhf`/`expf` are scalar calls (≈ 5 ns each, 5–6% of a q4 decode step of
//! GPT-2 124M); these are branch-free polynomials that the compiler turns into AVX-512 or AVX2 code, chosen
//! once from the CPU ([`crate::rows::isa`]), within a few ulp of libm.

/// `e^y` (0 below −87, `y` clamped to 80 above): Cephes' `expf` polynomial on `y − n·ln 2`, `|r| ≤ ln 2 / 2`,
/// scaled by `2ⁿ` through the exponent bits. Relative error ≲ 2·10⁻⁷.
#[inline(always)]
fn exp_poly(y: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest by the 1.5·2²³ trick (no libm call, so the loop vectorises).
    const MAGIC: f32 = 12_582_912.0;
    let y0 = y;
    let y = y.clamp(-80.0, 80.0);
    let shifted = y * LOG2E + MAGIC;
    let n = shifted - MAGIC;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ from the integer in `shifted`'s low mantissa bits (`MAGIC`'s bits are 0x4B40_0000 + n): an `as i32`
    // cast here would be a saturating scalar conversion per value, and the loop would not vectorise.
    let v = e * f32::from_bits(shifted.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    // A select, not a branch: the loop stays vectorised.
    if y0 < -87.0 { 0.0 } else { v }
}

/// `gelu_new` (GPT-2's tanh GELU): `0.5·x·(1 + tanh(u))`, `u = √(2/π)·(x + 0.044715·x³)`, computed as
/// `x / (1 + e^(−2u))` (the same function); 0 where `u < −20` (the true value is under 10⁻¹⁶ there).
#[inline(always)]
fn gelu_one(x: f32) -> f32 {
    const C: f32 = 0.797_884_6;
    let u = C * (x + 0.044_715 * x * x * x);
    let g = x / (1.0 + exp_poly(-2.0 * u));
    if u < -20.0 { 0.0 } else { g }
}

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = gelu_one(*v));
}

/// `e^(s − max)` in place over `s`, returning the sum (the softmax's numerators).
#[inline(always)]
pub(crate) fn exp_sub_body(s: &mut [f32], max: f32) -> f32 {
    // Sixteen partial sums (one AVX-512 register), so the sum vectorises without reassociating in the
    // compiler's stead.
    let mut acc = [0f32; 16];
    let mut chunks = s.chunks_exact_mut(16);
    for c in &mut chunks {
        for i in 0..16 {
            c[i] = exp_poly(c[i] - max);
            acc[i] += c[i];
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for v in chunks.into_remainder() {
        *v = exp_poly(*v - max);
        sum += *v;
    }
    sum
}

/// GELU (`gelu_new`) of each value, in place.
pub(crate) fn gelu_tanh(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        let i = crate::rows::isa();
        #[allow(unsafe_code)]
        // SAFETY: the level was detected from the CPU.
        unsafe {
            if i.avx512 {
                return x86::gelu512(x);
            }
            if i.avx2 {
                return x86::gelu256(x);
            }
        }
    }
    gelu_body(x)
}

/// `s[i] = e^(s[i] − max)`, and their sum.
pub(crate) fn exp_sub(s: &mut [f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        let i = crate::rows::isa();
        #[allow(unsafe_code)]
        // SAFETY: the level was detected from the CPU.
        unsafe {
            if i.avx512 {
                return x86::exp_sub512(s, max);
            }
            if i.avx2 {
                return x86::exp_sub256(s, max);
            }
        }
    }
    exp_sub_body(s, max)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gelu512(x: &mut [f32]) {
        super::gelu_body(x)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gelu256(x: &mut [f32]) {
        super::gelu_body(x)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp_sub512(s: &mut [f32], max: f32) -> f32 {
        super::exp_sub_body(s, max)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_sub256(s: &mut [f32], max: f32) -> f32 {
        super::exp_sub_body(s, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 * 2.5e-4).collect();
        v.extend((-200..=200).map(|i| i as f32 * 0.5));
        v.extend([0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 1e4, -1e4, f32::MAX, f32::MIN]);
        v
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        let mut worst = 0f64;
        for y in (-80_000..=80_000).map(|i| i as f32 * 1e-3) {
            let want = f64::from(y).exp();
            let got = f64::from(exp_poly(y));
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp_poly(0.0), 1.0);
    }

    #[test]
    fn gelu_matches_the_tanh_formula_at_every_level() {
        let xs = grid();
        let want: Vec<f64> = xs
            .iter()
            .map(|&x| {
                let x = f64::from(x);
                0.5 * x * (1.0 + (0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x)).tanh())
            })
            .collect();
        let mut plain = xs.clone();
        gelu_body(&mut plain);
        let mut fast = xs.clone();
        gelu_tanh(&mut fast);
        // libm's f32 formula (what the decoder used before), for scale: `1 + tanh(u)` cancels for x < 0.
        let libm = |x: f32| 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh());
        let (mut worst, mut worst_libm) = (0f64, 0f64);
        for ((&x, w), (p, f)) in xs.iter().zip(&want).zip(plain.iter().zip(&fast)) {
            // Relative to the value, with a floor of 10⁻³ (pre-activations are O(1); GELU's tail is tiny).
            let scale = w.abs().max(1e-3);
            assert_eq!(p.to_bits(), f.to_bits(), "gelu({x}): the SIMD code computes the same as the plain loop");
            worst = worst.max((f64::from(*p) - w).abs() / scale);
            worst_libm = worst_libm.max((f64::from(libm(x)) - w).abs() / scale);
        }
        assert!(worst < 2e-6, "worst error {worst}");
        assert!(worst <= worst_libm, "worst error {worst}, libm's formula {worst_libm}");
        let mut nan = [f32::NAN];
        gelu_tanh(&mut nan);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn softmax_numerators_and_their_sum() {
        for len in [0usize, 1, 7, 8, 9, 100, 1027] {
            let s0: Vec<f32> = (0..len).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.9).collect();
            let max = s0.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut s = s0.clone();
            let sum = exp_sub(&mut s, max);
            let mut want_sum = 0f64;
            for (a, b) in s.iter().zip(&s0) {
                let w = f64::from(b - max).exp();
                want_sum += w;
                assert!((f64::from(*a) - w).abs() <= 4e-7 * w + 1e-30, "{a} vs {w}");
            }
            assert!((f64::from(sum) - want_sum).abs() <= 1e-6 * want_sum.max(1.0), "{len}: {sum} vs {want_sum}");
        }
    }
}
