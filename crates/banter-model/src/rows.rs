//! Row kernels shared by the CPU decoders (fp32 `decode.rs`, int8 `quant.rs`, bf16 `bf16.rs`): products of
//! a few activation rows by weight rows, split over rayon so each weight row is read once.

use rayon::prelude::*;

/// Activation rows up to which [`crate::decode`]'s row kernels are used instead of libtorch's GEMM.
pub const MAX_ROWS: usize = 32;

/// Multiply-adds below which a product runs on the calling thread (a rayon hand-off costs more).
pub(crate) const SERIAL_MACS: usize = 1 << 17;

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
    if n * macs_per_row < SERIAL_MACS {
        job(0, dst);
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    // About 8 tasks per thread (so a slow core does not hold the others up), in multiples of 4 rows.
    let per = (n / (8 * threads)).clamp(4, 1024).next_multiple_of(4);
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
