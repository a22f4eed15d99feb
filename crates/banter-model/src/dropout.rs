//! Dropout for training on the CPU with its mask drawn on every core.
//!
//! libtorch's CPU dropout draws its Bernoulli mask one value at a time from one Mersenne Twister
//! (`bernoulli_` runs a `cpu_serial_kernel` over `CPUGeneratorImpl::random64`): 7% of a GPT-2 124M LoRA bf16
//! step on a 2-core AMX Xeon, with the other core spinning meanwhile (11% of the step in all, measured by
//! turning dropout off). Here the mask comes from a counter-based generator instead: element `i` keeps its
//! value when a keyed 32-bit hash of `i` is at or above `p·2³²`, so any slice of the mask can be made on
//! any thread, in vectorised code. The key is drawn from libtorch's generator (one draw per call), so
//! `manual_seed` still fixes every mask, and activation checkpointing's recompute (which reseeds libtorch
//! per block) draws the same masks again. The result is `x · mask` with `mask` 0 or `1/(1−p)` in `x`'s
//! dtype, as libtorch computes it, so autograd's backward is `grad · mask` as before; only the random
//! stream differs from libtorch's. Other devices, dtypes and tiny tensors use libtorch's dropout.

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// Below this many elements libtorch's own dropout is as quick (no mask tensor, no thread hand-off).
const MIN_ELEMENTS: usize = 4096;
/// Mask elements per rayon task.
const TASK: usize = 1 << 15;

/// `x` with each element zeroed with probability `p` and the rest scaled by `1/(1−p)` when `train`; `x`
/// itself otherwise. Differentiable, as `Tensor::dropout`.
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        return x.shallow_clone();
    }
    let kind = x.kind();
    if p >= 1.0
        || x.device() != Device::Cpu
        || !matches!(kind, Kind::Float | Kind::BFloat16)
        || x.numel() < MIN_ELEMENTS
    {
        return x.dropout(p, train);
    }
    let key = Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]) as u64;
    x * mask(&x.size(), kind, p, key)
}

/// `scaled_dot_product_attention(q, k, v, mask, p, causal)` (default scale, `enable_gqa` when `gqa`). With
/// dropout on the CPU it is computed here, with [`dropout`]'s mask on the probabilities instead of
/// libtorch's serial one; otherwise libtorch's SDPA. `mask` is SDPA's: `true` where a query may attend
/// (bool), or added to the scores (float).
///
/// The two products run in the inputs' dtype: in bf16 on oneDNN's batched GEMM (AMX where the CPU has it)
/// with fp32 accumulation, the scores rounded once to bf16 (as transformers' eager attention under
/// autocast); the scale and the causal mask are the GEMM's α and added bias, so neither makes a pass of its
/// own. Softmax and dropout are fp32, the probabilities are cast to the inputs' dtype for the second
/// product. libtorch's math path instead casts q, k and v to fp32 and runs fp32 GEMMs: on GPT-2 124M LoRA
/// bf16 (2-core AMX Xeon) this path is 7% faster per step.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, p: f64, causal: bool, gqa: bool) -> Tensor {
    let kind = q.kind();
    if p <= 0.0 || p >= 1.0 || q.device() != Device::Cpu || !matches!(kind, Kind::Float | Kind::BFloat16) {
        return Tensor::scaled_dot_product_attention(q, k, v, mask, p, causal, None, gqa);
    }
    let (hq, hk) = (q.size()[1], k.size()[1]);
    let (k, v) = if gqa && hk != hq && hk > 0 {
        (k.repeat_interleave_self_int(hq / hk, 1, None), v.repeat_interleave_self_int(hq / hk, 1, None))
    } else {
        (k.shallow_clone(), v.shallow_clone())
    };
    let (b, t, total, d) = (q.size()[0], q.size()[2], k.size()[2], q.size()[3]);
    let (q3, k3) = (q.reshape([-1, t, d]), k.reshape([-1, total, d]).transpose(-2, -1));
    let scale = (d as f64).powf(-0.5);
    let scores = match mask {
        _ if causal => causal_bias(t, total, kind).baddbmm(&q3, &k3, 1.0, scale),
        None => q3.bmm(&k3) * scale,
        Some(m) => {
            let s = (q3.bmm(&k3) * scale).view([b, hq, t, total]);
            if m.kind() == Kind::Bool { s.masked_fill(&m.logical_not(), f64::NEG_INFINITY) } else { s + m }
        }
    };
    let probs = dropout(&scores.softmax(-1, Kind::Float), p, true).to_kind(kind);
    probs.view([b, hq, t, total]).matmul(&v)
}

/// `[t, total]` in `kind`: 0 where query `i` may see key `j` (`j ≤ i`), −∞ elsewhere; made once per shape,
/// dtype and thread.
fn causal_bias(t: i64, total: i64, kind: Kind) -> Tensor {
    thread_local! {
        static BIAS: std::cell::RefCell<Option<Tensor>> = const { std::cell::RefCell::new(None) };
    }
    BIAS.with(|b| {
        let mut b = b.borrow_mut();
        match b.as_ref() {
            Some(m) if m.size() == [t, total] && m.kind() == kind => m.shallow_clone(),
            _ => {
                let allowed = Tensor::ones([t, total], (Kind::Bool, Device::Cpu)).tril(0);
                let bias = Tensor::zeros([t, total], (kind, Device::Cpu))
                    .masked_fill(&allowed.logical_not(), f64::NEG_INFINITY);
                *b = Some(bias.shallow_clone());
                bias
            }
        }
    })
}

/// A fresh mask of `size`: 0 where [`dropped`] says so, `1/(1−p)` (rounded to `kind`) elsewhere.
pub(crate) fn mask(size: &[i64], kind: Kind, p: f64, key: u64) -> Tensor {
    let m = Tensor::empty(size, (kind, Device::Cpu));
    let n = m.numel();
    let cut = threshold(p);
    let keep = (1.0 / (1.0 - p)) as f32;
    match kind {
        Kind::BFloat16 => {
            #[allow(unsafe_code)]
            // SAFETY: a fresh contiguous bf16 CPU tensor of `n` elements, written before anyone reads it.
            let out = unsafe { std::slice::from_raw_parts_mut(m.data_ptr() as *mut u16, n) };
            let keep = crate::bf16::to_bf16(keep);
            out.par_chunks_mut(TASK).enumerate().for_each(|(c, o)| fill(o, (c * TASK) as u64, key, cut, keep, 0));
        }
        _ => {
            #[allow(unsafe_code)]
            // SAFETY: as above, a fresh fp32 tensor.
            let out = unsafe { std::slice::from_raw_parts_mut(m.data_ptr() as *mut f32, n) };
            out.par_chunks_mut(TASK).enumerate().for_each(|(c, o)| fill(o, (c * TASK) as u64, key, cut, keep, 0.0));
        }
    }
    m
}

/// Hashes below this are dropped: `p·2³²`.
fn threshold(p: f64) -> u32 {
    (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32
}

/// Chris Wellons' `lowbias32`: a bijection on 32 bits with low bias, three multiplies and shifts.
#[inline(always)]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The keyed hash of element `i`: two rounds of [`mix`] with the key's halves (distinct `i < 2³²` give
/// distinct hashes for one key).
#[inline(always)]
fn hash(i: u64, key: u64) -> u32 {
    mix(mix(i as u32 ^ key as u32) ^ (key >> 32) as u32 ^ ((i >> 32) as u32).wrapping_mul(0x9e37_79b9))
}

/// Whether element `i` of the mask for `key` is dropped at threshold `cut` ([`threshold`]).
#[cfg(test)]
fn dropped(i: u64, key: u64, cut: u32) -> bool {
    hash(i, key) < cut
}

/// Mask values for elements `start..start + out.len()`.
fn fill<T: Copy + Send>(out: &mut [T], start: u64, key: u64, cut: u32, keep: T, zero: T) {
    #[cfg(target_arch = "x86_64")]
    {
        let i = crate::rows::isa();
        #[allow(unsafe_code)]
        // SAFETY: the level was detected from the CPU.
        unsafe {
            if i.avx512 {
                return x86::fill512(out, start, key, cut, keep, zero);
            }
            if i.avx2 {
                return x86::fill256(out, start, key, cut, keep, zero);
            }
        }
    }
    fill_body(out, start, key, cut, keep, zero)
}

#[inline(always)]
fn fill_body<T: Copy>(out: &mut [T], start: u64, key: u64, cut: u32, keep: T, zero: T) {
    // Within one task the high half of `i` is constant unless the task straddles 2³²: hash per element
    // with the full index anyway (the compiler hoists what it can).
    for (j, o) in out.iter_mut().enumerate() {
        *o = if hash(start + j as u64, key) < cut { zero } else { keep };
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fill512<T: Copy>(out: &mut [T], start: u64, key: u64, cut: u32, keep: T, zero: T) {
        super::fill_body(out, start, key, cut, keep, zero)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fill256<T: Copy>(out: &mut [T], start: u64, key: u64, cut: u32, keep: T, zero: T) {
        super::fill_body(out, start, key, cut, keep, zero)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_minus_p_and_scales_the_rest() {
        for (p, kind) in [(0.1, Kind::Float), (0.5, Kind::BFloat16), (0.02, Kind::Float)] {
            tch::manual_seed(11);
            let x = Tensor::ones([1000, 1000], (kind, Device::Cpu));
            let y = dropout(&x, p, true).to_kind(Kind::Float);
            let kept = y.ne(0.0).sum(Kind::Float).double_value(&[]) / 1e6;
            // 1e6 Bernoulli draws: the kept share is within 5 standard deviations of 1 − p.
            let sd = (p * (1.0 - p) / 1e6).sqrt();
            assert!((kept - (1.0 - p)).abs() < 5.0 * sd, "p {p}: kept {kept}");
            let want = Tensor::from(1.0 / (1.0 - p)).to_kind(kind).to_kind(Kind::Float).double_value(&[]);
            let max = y.max().double_value(&[]);
            let min_kept = (&y + y.eq(0.0).to_kind(Kind::Float) * 1e9).min().double_value(&[]);
            assert_eq!((max, min_kept), (want, want), "p {p}: every kept value is 1/(1−p)");
        }
    }

    #[test]
    fn libtorchs_seed_fixes_the_mask_and_each_call_draws_a_new_one() {
        let x = Tensor::randn([64, 300], (Kind::Float, Device::Cpu));
        tch::manual_seed(3);
        let (a, b) = (dropout(&x, 0.3, true), dropout(&x, 0.3, true));
        tch::manual_seed(3);
        let a2 = dropout(&x, 0.3, true);
        assert!(a.equal(&a2), "same seed, same mask");
        assert!(!a.equal(&b), "a second call draws another mask");
        assert!(dropout(&x, 0.3, false).equal(&x) && dropout(&x, 0.0, true).equal(&x));
    }

    #[test]
    fn the_gradient_is_the_mask() {
        tch::manual_seed(5);
        let x = Tensor::randn([50, 200], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = dropout(&x, 0.25, true);
        y.sum(Kind::Float).backward();
        let g = x.grad();
        let m = &y / &x;
        assert!(g.allclose(&m, 1e-6, 1e-6, false));
        assert_eq!(g.eq(0.0).sum(Kind::Int64).int64_value(&[]), y.eq(0.0).sum(Kind::Int64).int64_value(&[]));
    }

    #[test]
    fn attention_is_sdpas_without_dropout_and_drops_probabilities_with_it() {
        tch::manual_seed(2);
        let q = Tensor::randn([2, 4, 9, 8], (Kind::Float, Device::Cpu));
        let (k, v) = (
            Tensor::randn([2, 4, 9, 8], (Kind::Float, Device::Cpu)),
            Tensor::randn([2, 4, 9, 8], (Kind::Float, Device::Cpu)),
        );
        let pad = Tensor::ones([9, 9], (Kind::Bool, Device::Cpu)).tril(0);
        for (mask, causal) in [(None, true), (Some(&pad), false), (None, false)] {
            let want = Tensor::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, causal, None, false);
            // A vanishing p keeps every probability (scaled by ~1): the math path equals SDPA's.
            let got = attention(&q, &k, &v, mask, 1e-12, causal, false);
            assert!(got.allclose(&want, 1e-5, 1e-5, false), "mask {} causal {causal}", mask.is_some());
        }
        // bf16 inputs (bf16 products and scores, fp32 softmax): SDPA over the same values in fp32, to bf16's
        // precision, for every kind of mask.
        let bf = |x: &Tensor| x.to_kind(Kind::BFloat16);
        let (qb, kb, vb) = (bf(&q), bf(&k), bf(&v));
        let f = |x: &Tensor| x.to_kind(Kind::Float);
        let add = Tensor::zeros([9, 9], (Kind::Float, Device::Cpu)).masked_fill(&pad.logical_not(), -1e9);
        for (mask, causal) in [(None, true), (Some(&pad), false), (Some(&add), false), (None, false)] {
            let want = Tensor::scaled_dot_product_attention(&f(&qb), &f(&kb), &f(&vb), mask, 0.0, causal, None, false);
            let got = attention(&qb, &kb, &vb, mask, 1e-12, causal, false);
            assert_eq!(got.kind(), Kind::BFloat16);
            let err = (f(&got) - &want).abs().max().double_value(&[]);
            assert!(err < 0.02, "bf16, mask {:?} causal {causal}: {err}", mask.map(|m| m.kind()));
            assert!(!got.allclose(&qb, 1e-3, 1e-3, false));
        }
        // Grouped keys: 2 key heads serve 4 query heads.
        let (k2, v2) = (k.narrow(1, 0, 2), v.narrow(1, 0, 2));
        let want = Tensor::scaled_dot_product_attention(&q, &k2, &v2, None::<&Tensor>, 0.0, true, None, true);
        assert!(attention(&q, &k2, &v2, None, 1e-12, true, true).allclose(&want, 1e-5, 1e-5, false));
        // With p = 0.5 about half of each row's probability mass is gone (rescaled ×2).
        tch::manual_seed(4);
        let ones = Tensor::ones([1, 1, 64, 8], (Kind::Float, Device::Cpu));
        let big = Tensor::randn([1, 1, 64, 8], (Kind::Float, Device::Cpu));
        let y = attention(&big, &big, &ones, None, 0.5, false, false);
        let mean = y.mean(Kind::Float).double_value(&[]);
        assert!((mean - 1.0).abs() < 0.15, "{mean}");
        assert!(!y.allclose(&ones, 1e-3, 1e-3, false), "dropout changed some rows");
    }

    #[test]
    fn neighbouring_elements_and_keys_are_independent() {
        let cut = threshold(0.5);
        let (mut same_next, mut same_key) = (0, 0);
        let n = 200_000u64;
        for i in 0..n {
            same_next += (dropped(i, 7, cut) == dropped(i + 1, 7, cut)) as u64;
            same_key += (dropped(i, 7, cut) == dropped(i, 8, cut)) as u64;
        }
        // Independent fair bits agree half the time; 5 standard deviations of 200k draws is ±0.56%.
        for agree in [same_next, same_key] {
            let share = agree as f64 / n as f64;
            assert!((share - 0.5).abs() < 0.0056, "{share}");
        }
        // The SIMD fill gives the scalar hash's mask.
        let mut out = vec![0f32; 1000];
        fill(&mut out, 123_456, 99, cut, 2.0, 0.0);
        for (j, &v) in out.iter().enumerate() {
            assert_eq!(v == 0.0, dropped(123_456 + j as u64, 99, cut));
        }
    }
}
