//! Row kernels shared by the CPU decoders (fp32 `decode.rs`, int8 `quant.rs`, bf16 `bf16.rs`): products of
//! a few activation rows by weight rows, split over rayon so each weight row is read once.

use rayon::prelude::*;

pub(crate) mod micro;

/// Activation rows up to which [`crate::decode`]'s row kernels are used instead of libtorch's GEMM.
pub const MAX_ROWS: usize = 32;

/// libtorch on one thread while alive (the thread count restored when dropped), where `on`: the linear
/// layers of a pass run on banter's kernels (rayon's threads), and libtorch's idle OpenMP workers would spin
/// against them between its small ops (a 16-token GPT-2 124M prefill: 49 ms with them spinning, 23 without).
#[derive(Debug)]
pub struct OneTorchThread(Option<i32>);

impl OneTorchThread {
    /// One libtorch thread until dropped, if `on` and libtorch has more.
    pub fn new(on: bool) -> Self {
        let threads = tch::get_num_threads();
        if on && threads > 1 {
            tch::set_num_threads(1);
            OneTorchThread(Some(threads))
        } else {
            OneTorchThread(None)
        }
    }
}

impl Drop for OneTorchThread {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            tch::set_num_threads(t);
        }
    }
}

/// Multiply-adds below which a product runs on the calling thread (a rayon hand-off costs more).
pub(crate) const SERIAL_MACS: usize = 1 << 17;

/// The same bound for a caller that is one of rayon's threads (a decode step runs on one: see
/// `decode::Decoder::step`): a split there hands work to threads that are awake between the step's products,
/// not to a sleeping pool from outside, so products down to 16 K multiply-adds gain from it. Tiny GPT-2 (4 ×
/// 128, vocab 8000), fp32 decode on a 2-core AMX Xeon, median of 7 runs: 3,184 → 4,183 tokens/s.
pub(crate) const POOL_SERIAL_MACS: usize = 1 << 14;

/// Multiply-adds below which a product stays on the calling thread, given where it is called from.
pub(crate) fn serial_macs() -> usize {
    if rayon::current_thread_index().is_some() { POOL_SERIAL_MACS } else { SERIAL_MACS }
}

/// Runs `f` on one of rayon's threads and waits for it (right here when this already is one): the row
/// kernels' splits inside `f` then hand work to pool threads that are awake between products, instead of each
/// product being injected from outside with this thread put to sleep and woken at its end (a Hub family's
/// decode step makes ~200 products; GPT-2's Rust decoder runs its step here too). `f` runs without autograd
/// (libtorch keeps grad mode per thread).
pub(crate) fn on_pool<R>(f: impl FnOnce() -> R) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    /// A value moved to the pool thread and back.
    struct Moved<T>(T);
    impl<T> Moved<T> {
        fn into_inner(self) -> T {
            self.0
        }
    }
    #[allow(unsafe_code)]
    // SAFETY: `rayon::scope` blocks this thread until the closure has run on the pool thread, so `f`, what it
    // borrows and its result are used by one thread at a time; libtorch tensors may be used from any thread,
    // and the per-thread state the step needs (grad mode) is set again there.
    unsafe impl<T> Send for Moved<T> {}
    let job = Moved(f);
    rayon::scope(move |_| {
        let f = job.into_inner();
        let _g = tch::no_grad_guard();
        Moved(f())
    })
    .into_inner()
}

/// Computes `out` (`[rows, n]`) as `[n, rows]` through `job(first_row, chunk)` — so that a task owns whole
/// weight rows and reads each once — split over threads by [`split_rows`], then transposed (one row needs no
/// transpose).
pub(crate) fn by_weight_rows(out: &mut [f32], n: usize, rows: usize, k: usize, job: impl Fn(usize, &mut [f32]) + Sync) {
    if rows <= 1 {
        split_rows(&mut out[..n], n, k, 1, job);
        return;
    }
    let mut tmp = vec![0f32; n * rows];
    split_rows(&mut tmp, n, k * rows, rows, job);
    for m in 0..rows {
        for j in 0..n {
            out[m * n + j] = tmp[j * rows + m];
        }
    }
}

/// Runs `job(first_row, chunk)` over `dst` (`n` rows of `width` floats) in parallel chunks of whole rows,
/// or on this thread when the product is small.
pub(crate) fn split_rows(
    dst: &mut [f32],
    n: usize,
    macs_per_row: usize,
    width: usize,
    job: impl Fn(usize, &mut [f32]) + Sync,
) {
    if n * macs_per_row < serial_macs() {
        job(0, dst);
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    // About 8 tasks per thread (so a slow core does not hold the others up), each of at least
    // `POOL_SERIAL_MACS`, in multiples of 4 rows.
    let per = (n / (8 * threads)).max(POOL_SERIAL_MACS / macs_per_row.max(1)).clamp(4, 1024).next_multiple_of(4);
    dst.par_chunks_mut(per * width).enumerate().for_each(|(ci, chunk)| job(ci * per, chunk));
}

/// `Σ w[i]·x[i]` with fp32 or int8 weights: eight independent sums, so the compiler can vectorise without
/// reassociating floats.
#[inline(always)]
pub(crate) fn dot_portable<T: Copy + Into<f32>>(w: &[T], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (wc, xc) = (w.chunks_exact(8), x.chunks_exact(8));
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (a, b) in wc.zip(xc) {
        for i in 0..8 {
            acc[i] += a[i].into() * b[i];
        }
    }
    acc.iter().sum::<f32>() + wr.iter().zip(xr).map(|(a, b)| (*a).into() * b).sum::<f32>()
}

/// What the CPU offers the decoding kernels (`decode.rs`, `bf16.rs`, `qdot.rs`, the helpers below), read
/// once. `BANTER_KERNELS` lowers it, for tests and benchmarks: `portable` (no SIMD), `avx2` (no AVX-512),
/// `avx512` (AVX-512 without `vdpbf16ps`, so bf16 products keep fp32 activations).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Isa {
    /// AVX2 and FMA.
    pub avx2: bool,
    /// AVX-512 F.
    pub avx512: bool,
    /// AVX-512 F, BW, DQ and VNNI (the integer kernels).
    pub vnni: bool,
    /// AVX-512 BF16 (`vdpbf16ps`).
    pub bf16: bool,
}

/// [`Isa`] of this CPU and `BANTER_KERNELS`.
pub(crate) fn isa() -> Isa {
    static I: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *I.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let forced = std::env::var("BANTER_KERNELS").unwrap_or_default();
            if forced == "portable" {
                return Isa::default();
            }
            let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            let avx512 = forced != "avx2" && std::is_x86_feature_detected!("avx512f");
            let vnni = avx512
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vnni");
            let bf16 = avx512 && forced != "avx512" && std::is_x86_feature_detected!("avx512bf16");
            return Isa { avx2, avx512, vnni, bf16 };
        }
        #[allow(unreachable_code)]
        Isa::default()
    })
}

/// The SIMD level of the fp32 helpers below.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Simd {
    Avx512,
    Avx2,
    Portable,
}

fn simd() -> Simd {
    let i = isa();
    if i.avx512 {
        Simd::Avx512
    } else if i.avx2 {
        Simd::Avx2
    } else {
        Simd::Portable
    }
}

/// `scores[j] = scale · keys[j]·q` for the `scores.len()` rows of `keys` (rows of `q.len()` floats): the
/// attention's query·key products, one head.
pub(crate) fn scores_f32(keys: &[f32], q: &[f32], scale: f32, scores: &mut [f32]) {
    let hd = q.len();
    assert!(keys.len() >= scores.len() * hd);
    #[cfg(target_arch = "x86_64")]
    if simd() != Simd::Portable {
        #[allow(unsafe_code)]
        // SAFETY: the level was detected from the CPU; the lengths are asserted above.
        unsafe {
            if simd() == Simd::Avx512 {
                x86::scores512(keys, q, scale, scores)
            } else {
                x86::scores256(keys, q, scale, scores)
            }
        };
        return;
    }
    for (j, s) in scores.iter_mut().enumerate() {
        *s = dot_portable(&keys[j * hd..(j + 1) * hd], q) * scale;
    }
}

/// `out = Σ_j p[j]·values[j]` for the `p.len()` rows of `values` (rows of `out.len()` floats): the
/// attention's weighted sum, one head.
pub(crate) fn weighted_sum(values: &[f32], p: &[f32], out: &mut [f32]) {
    let hd = out.len();
    assert!(values.len() >= p.len() * hd);
    out.fill(0.0);
    #[cfg(target_arch = "x86_64")]
    if simd() != Simd::Portable {
        #[allow(unsafe_code)]
        // SAFETY: as in `scores_f32`.
        unsafe {
            if simd() == Simd::Avx512 { x86::wsum512(values, p, out) } else { x86::wsum256(values, p, out) }
        };
        return;
    }
    for (j, &pj) in p.iter().enumerate() {
        out.iter_mut().zip(&values[j * hd..(j + 1) * hd]).for_each(|(o, v)| *o += pj * v);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scores512(keys: &[f32], q: &[f32], scale: f32, scores: &mut [f32]) {
        let hd = q.len();
        let full = hd / 16 * 16;
        for (j, s) in scores.iter_mut().enumerate() {
            let k = &keys[j * hd..(j + 1) * hd];
            let mut acc = _mm512_setzero_ps();
            // SAFETY: every load is at `i + 16 ≤ hd` of `k` and `q`.
            unsafe {
                for i in (0..full).step_by(16) {
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(k.as_ptr().add(i)), _mm512_loadu_ps(q.as_ptr().add(i)), acc);
                }
            }
            *s = (_mm512_reduce_add_ps(acc) + (full..hd).map(|i| k[i] * q[i]).sum::<f32>()) * scale;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scores256(keys: &[f32], q: &[f32], scale: f32, scores: &mut [f32]) {
        let hd = q.len();
        let full = hd / 8 * 8;
        for (j, s) in scores.iter_mut().enumerate() {
            let k = &keys[j * hd..(j + 1) * hd];
            let mut acc = _mm256_setzero_ps();
            let mut lanes = [0f32; 8];
            // SAFETY: every load is at `i + 8 ≤ hd` of `k` and `q`; the store fills an 8-float array.
            unsafe {
                for i in (0..full).step_by(8) {
                    acc = _mm256_fmadd_ps(_mm256_loadu_ps(k.as_ptr().add(i)), _mm256_loadu_ps(q.as_ptr().add(i)), acc);
                }
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
            }
            *s = (lanes.iter().sum::<f32>() + (full..hd).map(|i| k[i] * q[i]).sum::<f32>()) * scale;
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn wsum512(values: &[f32], p: &[f32], out: &mut [f32]) {
        let hd = out.len();
        let full = hd / 16 * 16;
        for (j, &pj) in p.iter().enumerate() {
            let v = &values[j * hd..(j + 1) * hd];
            let a = _mm512_set1_ps(pj);
            // SAFETY: every load and store is at `i + 16 ≤ hd` of `v` and `out`.
            unsafe {
                for i in (0..full).step_by(16) {
                    let o = out.as_mut_ptr().add(i);
                    _mm512_storeu_ps(o, _mm512_fmadd_ps(a, _mm512_loadu_ps(v.as_ptr().add(i)), _mm512_loadu_ps(o)));
                }
            }
            (full..hd).for_each(|i| out[i] += pj * v[i]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn wsum256(values: &[f32], p: &[f32], out: &mut [f32]) {
        let hd = out.len();
        let full = hd / 8 * 8;
        for (j, &pj) in p.iter().enumerate() {
            let v = &values[j * hd..(j + 1) * hd];
            let a = _mm256_set1_ps(pj);
            // SAFETY: every load and store is at `i + 8 ≤ hd` of `v` and `out`.
            unsafe {
                for i in (0..full).step_by(8) {
                    let o = out.as_mut_ptr().add(i);
                    _mm256_storeu_ps(o, _mm256_fmadd_ps(a, _mm256_loadu_ps(v.as_ptr().add(i)), _mm256_loadu_ps(o)));
                }
            }
            (full..hd).for_each(|i| out[i] += pj * v[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_helpers_equal_plain_loops() {
        for (hd, len) in [(64usize, 5usize), (7, 3), (16, 1), (24, 9), (100, 2)] {
            let keys: Vec<f32> = (0..hd * len).map(|i| (i as f32 * 0.7).sin()).collect();
            let q: Vec<f32> = (0..hd).map(|i| (i as f32 * 0.3).cos()).collect();
            let mut got = vec![0f32; len];
            scores_f32(&keys, &q, 0.5, &mut got);
            for j in 0..len {
                let want: f32 = (0..hd).map(|i| keys[j * hd + i] * q[i]).sum::<f32>() * 0.5;
                assert!((got[j] - want).abs() <= 1e-5 * want.abs().max(1.0), "{hd}×{len}");
            }
            let p: Vec<f32> = (0..len).map(|j| 1.0 / (j as f32 + 1.0)).collect();
            let mut out = vec![9f32; hd];
            weighted_sum(&keys, &p, &mut out);
            for i in 0..hd {
                let want: f32 = (0..len).map(|j| p[j] * keys[j * hd + i]).sum();
                assert!((out[i] - want).abs() <= 1e-5 * want.abs().max(1.0), "{hd}×{len}");
            }
        }
    }
}
