//! Gradient all-reduce in buckets, as DistributedDataParallel does: the gradients are copied into flat
//! buffers of about [`GradSync::BUCKET_BYTES`] each (per dtype and device), [`GradSync::IN_FLIGHT`] buckets
//! at a time are reduced together (Gloo works through them on its own threads), then copied back. The
//! buffers live for one round only: the extra memory is a few buckets, not a copy of every gradient.

use tch::{Kind, Tensor};

use crate::{DistError, ProcessGroup, Reduce};

/// Bucketed all-reduce of a fixed list of parameters' gradients.
#[derive(Debug)]
pub struct GradSync {
    params: Vec<Tensor>,
    /// Parameter indices per bucket.
    buckets: Vec<Vec<usize>>,
}

impl GradSync {
    /// About 25 MB per bucket, DDP's default.
    pub const BUCKET_BYTES: i64 = 25 << 20;
    /// Buckets reduced together.
    pub const IN_FLIGHT: usize = 16;
    /// A gradient at least this large is reduced in place, as its own bucket.
    pub const DIRECT_BYTES: i64 = 1 << 20;

    /// Buckets over `params` (the same list in the same order on every rank). Each parameter's gradient
    /// is made defined (zero) now, so that a rank with no data in a step still takes part.
    pub fn new(params: Vec<Tensor>) -> GradSync {
        for p in &params {
            if !p.grad().defined() && p.requires_grad() {
                // A zero gradient of the parameter's shape, through autograd (tch cannot set `.grad`).
                (p * 0.0).sum(Kind::Float).backward();
            }
        }
        let mut buckets: Vec<Vec<usize>> = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        let mut cur_bytes = 0i64;
        let key = |p: &Tensor| (p.kind(), p.device());
        for (i, p) in params.iter().enumerate() {
            let bytes = p.numel() as i64 * p.kind().elt_size_in_bytes() as i64;
            if bytes >= Self::DIRECT_BYTES {
                // Large enough to go alone, reduced in place: no copy in or out.
                buckets.push(vec![i]);
                continue;
            }
            let fits = cur.last().is_none_or(|&j| key(&params[j]) == key(p)) && cur_bytes + bytes <= Self::BUCKET_BYTES;
            if !cur.is_empty() && !fits {
                buckets.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur.push(i);
            cur_bytes += bytes;
        }
        if !cur.is_empty() {
            buckets.push(cur);
        }
        GradSync { params, buckets }
    }

    /// The number of buckets.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Sums every gradient across ranks, in place.
    pub fn all_reduce(&self, group: &ProcessGroup) -> Result<(), DistError> {
        let _g = tch::no_grad_guard();
        for round in self.buckets.chunks(Self::IN_FLIGHT) {
            let flats: Vec<Tensor> = round
                .iter()
                .map(|b| match b.as_slice() {
                    [i] if self.params[*i].grad().is_contiguous() => self.params[*i].grad(),
                    _ => {
                        let views: Vec<Tensor> = b.iter().map(|&i| self.params[i].grad().reshape([-1])).collect();
                        Tensor::cat(&views, 0)
                    }
                })
                .collect();
            let refs: Vec<&Tensor> = flats.iter().collect();
            group.all_reduce(&refs, Reduce::Sum)?;
            for (b, flat) in round.iter().zip(&flats) {
                if let [i] = b.as_slice()
                    && flat.data_ptr() == self.params[*i].grad().data_ptr()
                {
                    continue;
                }
                let mut off = 0i64;
                for &i in b {
                    let mut g = self.params[i].grad();
                    let n = g.numel() as i64;
                    g.copy_(&flat.narrow(0, off, n).view_as(&g));
                    off += n;
                }
            }
        }
        Ok(())
    }

    /// Makes every parameter equal to `root`'s (before the first step).
    pub fn broadcast_params(params: &[Tensor], group: &ProcessGroup, root: usize) -> Result<(), DistError> {
        let _g = tch::no_grad_guard();
        let contiguous: Vec<Tensor> = params.iter().map(|p| p.contiguous()).collect();
        let refs: Vec<&Tensor> = contiguous.iter().collect();
        for chunk in refs.chunks(64) {
            group.broadcast(chunk, root)?;
        }
        for (p, c) in params.iter().zip(&contiguous) {
            if p.data_ptr() != c.data_ptr() {
                let mut p = p.shallow_clone();
                p.copy_(c);
            }
        }
        Ok(())
    }
}
