//! The fused heads' softmax cross-entropy over one chunk of logits, in one pass per row, in place.
//!
//! For rows of logits `z` (fp32 or bf16, `[rows, V]` contiguous on the CPU) and their targets, each row is
//! turned into its loss `max + ln Σ e^(z − max) − z[target]` and, in place, its gradient
//! `scale · (softmax(z) − one-hot)` (rows whose target is −100 get zeros and no loss). libtorch's version of
//! the same chain (`to(fp32)`, `gather`, `amax`, `sub_`, `exp_`, `sum`, `mul_`, `scatter_add_`, `to(bf16)`)
//! makes nine passes over a 25–51 MB chunk: 28 ms per GPT-2 124M step at batch 2 × 128 on a 2-core AMX
//! Xeon, about a tenth of a LoRA bf16 step. Here each row (200 KB in fp32) is read from memory once and
//! stays in L2 for its three sweeps (max, exponentials and sum, scale), on rayon's threads, with the
//! vectorised exponential of [`crate::act`]. A bf16 row is widened into a per-thread fp32 row and rounded
//! back as libtorch rounds (nearest even).

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// Target value of rows that are not scored.
const IGNORE: i64 = -100;

/// Replaces `logits` `[rows, V]` (fp32 or bf16, contiguous, CPU) by `scale · (softmax − one-hot)` per row
/// (zeros where the target is −100) and returns the summed loss of the scored rows; `None` (nothing
/// touched) when the tensor is not such a tensor or a target is out of range, so the caller uses libtorch.
pub fn softmax_xent_grad_(logits: &mut Tensor, targets: &[i64], scale: f32) -> Option<f64> {
    if logits.device() != Device::Cpu || logits.dim() != 2 || !logits.is_contiguous() {
        return None;
    }
    let (rows, v) = (logits.size()[0] as usize, logits.size()[1] as usize);
    if rows != targets.len() || v == 0 || targets.iter().any(|&t| t != IGNORE && (t < 0 || t as usize >= v)) {
        return None;
    }
    let n = rows * v;
    // Contiguous groups of rows per rayon task, each with one fp32 scratch row (bf16 only).
    let group = rows.div_ceil(4 * rayon::current_num_threads().max(1)).max(1);
    let loss: f64 = match logits.kind() {
        Kind::Float => {
            #[allow(unsafe_code)]
            // SAFETY: a contiguous fp32 CPU tensor of `n` elements, borrowed mutably for this call only.
            let z = unsafe { std::slice::from_raw_parts_mut(logits.data_ptr() as *mut f32, n) };
            z.par_chunks_mut(group * v)
                .zip(targets.par_chunks(group))
                .map(|(rows, t)| rows.chunks_mut(v).zip(t).map(|(row, &t)| row_f32(row, t, scale)).sum::<f64>())
                .sum()
        }
        Kind::BFloat16 => {
            #[allow(unsafe_code)]
            // SAFETY: as above, two-byte elements.
            let z = unsafe { std::slice::from_raw_parts_mut(logits.data_ptr() as *mut u16, n) };
            z.par_chunks_mut(group * v)
                .zip(targets.par_chunks(group))
                .map(|(rows, t)| {
                    let mut wide = vec![0f32; v];
                    rows.chunks_mut(v).zip(t).map(|(row, &t)| row_bf16(row, &mut wide, t, scale)).sum::<f64>()
                })
                .sum()
        }
        _ => return None,
    };
    Some(loss)
}

/// One fp32 row in place; returns its loss.
fn row_f32(row: &mut [f32], target: i64, scale: f32) -> f64 {
    if target == IGNORE {
        row.fill(0.0);
        return 0.0;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let i = crate::rows::isa();
        #[allow(unsafe_code)]
        // SAFETY: the level was detected from the CPU.
        unsafe {
            if i.avx512 {
                return x86::row512(row, target as usize, scale);
            }
            if i.avx2 {
                return x86::row256(row, target as usize, scale);
            }
        }
    }
    row_body(row, target as usize, scale)
}

/// A scored row: loss, and the gradient in place.
#[inline(always)]
fn row_body(row: &mut [f32], t: usize, scale: f32) -> f64 {
    let picked = row[t];
    let max = max_of(row);
    let sum = crate::act::exp_sub_body(row, max);
    let k = scale / sum;
    row.iter_mut().for_each(|v| *v *= k);
    row[t] -= scale;
    (max + sum.ln() - picked) as f64
}

/// One bf16 row in place, through `wide` (a row of fp32 scratch); returns its loss.
fn row_bf16(row: &mut [u16], wide: &mut [f32], target: i64, scale: f32) -> f64 {
    if target == IGNORE {
        row.fill(0);
        return 0.0;
    }
    wide.iter_mut().zip(row.iter()).for_each(|(o, &b)| *o = f32::from_bits((b as u32) << 16));
    let loss = row_f32(wide, target, scale);
    crate::bf16::to_bf16_into(wide, row);
    loss
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row512(row: &mut [f32], t: usize, scale: f32) -> f64 {
        super::row_body(row, t, scale)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row256(row: &mut [f32], t: usize, scale: f32) -> f64 {
        super::row_body(row, t, scale)
    }
}

/// Largest value (NaN-free input assumed; a NaN makes the loss NaN either way).
#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    chunks.remainder().iter().chain(acc.iter()).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libtorch's chain (`head.rs` runs it where this kernel does not apply), on a copy of `z`.
    fn reference(z: &Tensor, targets: &[i64], scale: f64) -> (Tensor, f64) {
        // A copy for fp32 input (`to_kind` would return `z` itself); bf16 input is widened into a new tensor.
        let logits = if z.kind() == Kind::Float { z.copy() } else { z.to_kind(Kind::Float) };
        let (g, loss) = crate::head::xent_torch(logits, &Tensor::from_slice(targets), None, scale, z.kind());
        (g, loss.double_value(&[]))
    }

    fn check(kind: Kind, v: i64) {
        tch::manual_seed(3);
        let targets = [4, IGNORE, 0, v - 1, 17, IGNORE, 2];
        let z = (Tensor::randn([targets.len() as i64, v], (Kind::Float, Device::Cpu)) * 6.0).to_kind(kind);
        let (want, want_loss) = reference(&z, &targets, 0.37);
        let mut got = z.copy();
        let loss = softmax_xent_grad_(&mut got, &targets, 0.37).expect("kernel applies");
        assert!((loss - want_loss).abs() < 1e-4 * want_loss.abs().max(1.0), "{loss} vs {want_loss}");
        let diff = (got.to_kind(Kind::Float) - want.to_kind(Kind::Float)).abs().max().double_value(&[]);
        // One bf16 rounding step of the largest gradient (≤ 0.37) at most; fp32 to a few ulp.
        let tol = if kind == Kind::BFloat16 { 0.37 / 128.0 } else { 1e-6 };
        assert!(diff <= tol, "{kind:?}: max difference {diff}");
        // Ignored rows are zero; each scored row sums to 0 (softmax sums to 1, minus the one-hot).
        assert_eq!(got.get(1).abs().sum(Kind::Float).double_value(&[]), 0.0);
        let row_sum = got.get(0).to_kind(Kind::Float).sum(Kind::Float).double_value(&[]);
        assert!(row_sum.abs() < if kind == Kind::BFloat16 { 0.05 } else { 1e-5 }, "{row_sum}");
    }

    #[test]
    fn matches_libtorchs_chain_in_fp32_and_bf16() {
        for v in [18, 32, 33, 1000, 50257] {
            check(Kind::Float, v);
            check(Kind::BFloat16, v);
        }
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        let mut z = Tensor::zeros([2, 5], (Kind::Float, Device::Cpu));
        assert!(softmax_xent_grad_(&mut z, &[0, 5], 1.0).is_none(), "target out of range");
        assert!(softmax_xent_grad_(&mut z, &[0], 1.0).is_none(), "wrong number of targets");
        let mut t = Tensor::zeros([5, 2], (Kind::Float, Device::Cpu)).tr();
        assert!(softmax_xent_grad_(&mut t, &[0, 1], 1.0).is_none(), "not contiguous");
        let mut d = Tensor::zeros([2, 5], (Kind::Double, Device::Cpu));
        assert!(softmax_xent_grad_(&mut d, &[0, 1], 1.0).is_none(), "fp64");
    }
}
