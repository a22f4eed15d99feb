//! ZeRO stage 1 (`--zero1`): the AdamW state is sharded across ranks. The trained parameters, laid end to
//! end in name order (P values), are cut into `world` equal runs; rank r owns run r. Per step:
//! 1. the gradients are reduce-scattered in buckets: rank r receives the sum over ranks of its own run;
//! 2. the global gradient norm is summed from each rank's share (clipping as one process clips);
//! 3. each rank updates its run with AdamW (its m and v: 2P/world values instead of 2P);
//! 4. the updated runs are all-gathered in buckets into every rank's parameters.
//!
//! A rank's run is a set of views ("segments") into the model's own parameters and gradients, one per
//! parameter it overlaps: AdamW updates them in place with its fused CPU pass, so the model holds no second
//! copy; only m and v are per rank. Checkpoints hold the full state (gathered to rank 0) in the
//! single-process layout, so a ZeRO-1 run resumes with or without `--zero1`, on any world size.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use banter_dist::ProcessGroup;
use banter_model::optim::AdamW;

/// A rank's piece of one parameter: flat `[start, start + len)` of parameter `param`, at `at` in the run.
#[derive(Debug)]
struct Segment {
    param: usize,
    start: i64,
    len: i64,
    at: i64,
}

/// The sharded optimizer's layout on this rank.
#[derive(Debug)]
pub(crate) struct Zero1 {
    /// The model's trained parameters `(name, tensor)`, in name order.
    params: Vec<(String, Tensor)>,
    /// Each parameter's flat offset in the whole.
    offsets: Vec<i64>,
    /// Values in all.
    total: i64,
    /// Values per rank's run (the last run is padded).
    chunk: i64,
    rank: usize,
    world: usize,
    segments: Vec<Segment>,
}

/// Values per collective bucket: 8 M (32 MB of fp32) across all ranks.
const BUCKET_VALUES: i64 = 8 << 20;

/// A parameter's (or gradient's) values as one flat view, written through.
fn flat(t: &Tensor) -> Tensor {
    t.detach().view([-1])
}

impl Zero1 {
    /// The layout for `params` (name, tensor, decay) on `group`, and the AdamW over this rank's segments.
    pub fn new(
        params: Vec<(String, Tensor, bool)>,
        group: &ProcessGroup,
        (beta1, beta2, weight_decay): (f64, f64, f64),
    ) -> crate::Result<(Zero1, AdamW)> {
        let (rank, world) = (group.rank(), group.world());
        let mut offsets = Vec::with_capacity(params.len());
        let mut total = 0i64;
        for (name, t, _) in &params {
            if !t.is_contiguous() || t.kind() != Kind::Float {
                return Err(banter_core::Error::usage(format!(
                    "--zero1: parameter {name} is not a contiguous fp32 tensor"
                ))
                .into());
            }
            if !t.grad().defined() {
                // A zero gradient to update in place (tch cannot set `.grad`).
                (t * 0.0).sum(Kind::Float).backward();
            }
            offsets.push(total);
            total += t.numel() as i64;
        }
        let chunk = (total + world as i64 - 1) / world as i64;
        let (lo, hi) = (rank as i64 * chunk, ((rank as i64 + 1) * chunk).min(total));
        let mut segments = Vec::new();
        let mut slots = Vec::new();
        for (i, (name, t, decay)) in params.iter().enumerate() {
            let (p0, p1) = (offsets[i], offsets[i] + t.numel() as i64);
            let (a, b) = (p0.max(lo), p1.min(hi));
            if a >= b {
                continue;
            }
            let view = flat(t).narrow(0, a - p0, b - a);
            let grad = flat(&t.grad()).narrow(0, a - p0, b - a);
            slots.push((segment_name(name, a - p0), view, grad, *decay));
            segments.push(Segment { param: i, start: a - p0, len: b - a, at: a - lo });
        }
        let params = params.into_iter().map(|(n, t, _)| (n, t)).collect();
        let z = Zero1 { params, offsets, total, chunk, rank, world, segments };
        Ok((z, AdamW::with_grads(slots, beta1, beta2, 1e-8, weight_decay)))
    }

    /// Values of optimizer state this rank holds (m and v), and the whole's.
    pub fn state_values(&self) -> (i64, i64) {
        (2 * self.segments.iter().map(|s| s.len).sum::<i64>(), 2 * self.total)
    }

    /// Clears the model's gradients (a precision probe may have left some) before the first step.
    pub fn refresh(&mut self) {
        self.zero_grads_outside(0, 0);
    }

    /// Zeroes the model's gradients outside flat `[lo, hi)`.
    fn zero_grads_outside(&self, lo: i64, hi: i64) {
        let _g = tch::no_grad_guard();
        for (i, (_, p)) in self.params.iter().enumerate() {
            let (p0, n) = (self.offsets[i], p.numel() as i64);
            let g = flat(&p.grad());
            let (a, b) = ((lo - p0).clamp(0, n), (hi - p0).clamp(0, n));
            if a > 0 {
                let _ = g.narrow(0, 0, a).f_zero_();
            }
            if b < n {
                let _ = g.narrow(0, b.max(a), n - b.max(a)).f_zero_();
            }
        }
    }

    /// Visits the pieces of flat `[a, b)`: `(param, offset in it, offset from a, len)`.
    fn pieces(&self, a: i64, b: i64, mut f: impl FnMut(usize, i64, i64, i64)) {
        let mut i = self.offsets.partition_point(|&o| o <= a).saturating_sub(1);
        while i < self.params.len() && self.offsets[i] < b {
            let (p0, p1) = (self.offsets[i], self.offsets[i] + self.params[i].1.numel() as i64);
            let (x, y) = (p0.max(a), p1.min(b));
            if x < y {
                f(i, x - p0, x - a, y - x);
            }
            i += 1;
        }
    }

    fn device(&self) -> Device {
        self.params.first().map_or(Device::Cpu, |p| p.1.device())
    }

    /// The collective buckets over a run: `(k, len)`, values `k..k + len` of every rank's run at a time
    /// ([`BUCKET_VALUES`] across all ranks).
    fn buckets(&self) -> impl Iterator<Item = (i64, i64)> + use<> {
        let per = (BUCKET_VALUES / self.world as i64).max(1);
        let chunk = self.chunk;
        (0..chunk).step_by(per as usize).map(move |k| (k, per.min(chunk - k)))
    }

    /// Flat `[a, b)` of rank `r`'s run, values `k..k + len` of it (cut at the end of the whole).
    fn run_range(&self, r: usize, k: i64, len: i64) -> (i64, i64) {
        let a = r as i64 * self.chunk + k;
        (a, (a + len).min(self.total))
    }

    /// Reduce-scatters the model's gradients: this rank's run of them becomes the sum over ranks; the rest
    /// is zeroed for the next step.
    pub fn reduce_grads(&self, group: &ProcessGroup) -> Result<(), banter_dist::DistError> {
        let _g = tch::no_grad_guard();
        let lo = self.rank as i64 * self.chunk;
        for (k, len) in self.buckets() {
            let input = Tensor::zeros([len * self.world as i64], (Kind::Float, self.device()));
            for r in 0..self.world {
                let (a, b) = self.run_range(r, k, len);
                let dst = input.narrow(0, r as i64 * len, len);
                self.pieces(a, b, |i, off, at, n| {
                    dst.narrow(0, at, n).copy_(&flat(&self.params[i].1.grad()).narrow(0, off, n));
                });
            }
            let out = Tensor::zeros([len], (Kind::Float, self.device()));
            group.reduce_scatter(&out, &input)?;
            let (a, b) = self.run_range(self.rank, k, len);
            self.pieces(a, b, |i, off, at, n| {
                flat(&self.params[i].1.grad()).narrow(0, off, n).copy_(&out.narrow(0, at, n));
            });
        }
        self.zero_grads_outside(lo, (lo + self.chunk).min(self.total));
        Ok(())
    }

    /// All-gathers every rank's updated run into every rank's parameters.
    pub fn gather_weights(&self, group: &ProcessGroup) -> Result<(), banter_dist::DistError> {
        let _g = tch::no_grad_guard();
        for (k, len) in self.buckets() {
            let mine = Tensor::zeros([len], (Kind::Float, self.device()));
            let (a, b) = self.run_range(self.rank, k, len);
            self.pieces(a, b, |i, off, at, n| {
                mine.narrow(0, at, n).copy_(&flat(&self.params[i].1).narrow(0, off, n));
            });
            let all = Tensor::zeros([len * self.world as i64], (Kind::Float, self.device()));
            group.all_gather(&all, &mine)?;
            for r in (0..self.world).filter(|&r| r != self.rank) {
                let (a, b) = self.run_range(r, k, len);
                let src = all.narrow(0, r as i64 * len, len);
                self.pieces(a, b, |i, off, at, n| {
                    flat(&self.params[i].1).narrow(0, off, n).copy_(&src.narrow(0, at, n));
                });
            }
        }
        Ok(())
    }

    /// The squared norm of this rank's share of the (reduced) gradients.
    pub fn local_sq_norm(&self) -> f64 {
        let _g = tch::no_grad_guard();
        let mut sq = 0.0;
        for s in &self.segments {
            let g = flat(&self.params[s.param].1.grad()).narrow(0, s.start, s.len);
            // The norm, then squared: no temporary the size of the segment.
            sq += g.norm().to_kind(Kind::Double).square().double_value(&[]);
        }
        sq
    }

    /// The whole optimizer state in the single-process layout (`m.NAME`, `v.NAME`), gathered to rank 0 in
    /// buckets (the other ranks return nothing: rank 0 writes it).
    pub fn full_state(
        &self,
        opt: &AdamW,
        group: &ProcessGroup,
    ) -> Result<Vec<(String, Tensor)>, banter_dist::DistError> {
        let _g = tch::no_grad_guard();
        let mine: BTreeMap<String, Tensor> = opt.state().into_iter().collect();
        let main = self.rank == 0;
        let mut out = Vec::new();
        for which in ["m", "v"] {
            let full: Vec<Tensor> = if main {
                self.params.iter().map(|(_, p)| Tensor::zeros([p.numel() as i64], (Kind::Float, Device::Cpu))).collect()
            } else {
                Vec::new()
            };
            for (k, len) in self.buckets() {
                let run = Tensor::zeros([len], (Kind::Float, self.device()));
                for s in &self.segments {
                    let (x, y) = (s.at.max(k), (s.at + s.len).min(k + len));
                    if x < y {
                        let t = &mine[&format!("{which}.{}", segment_name(&self.params[s.param].0, s.start))];
                        run.narrow(0, x - k, y - x).copy_(&t.narrow(0, x - s.at, y - x));
                    }
                }
                let all = Tensor::zeros([len * self.world as i64], (Kind::Float, self.device()));
                group.all_gather(&all, &run)?;
                if main {
                    let all = all.to_device(Device::Cpu);
                    for r in 0..self.world {
                        let (a, b) = self.run_range(r, k, len);
                        let src = all.narrow(0, r as i64 * len, len);
                        self.pieces(a, b, |i, off, at, n| {
                            full[i].narrow(0, off, n).copy_(&src.narrow(0, at, n));
                        });
                    }
                }
            }
            for (i, t) in full.into_iter().enumerate() {
                out.push((format!("{which}.{}", self.params[i].0), t.view(self.params[i].1.size().as_slice())));
            }
        }
        Ok(out)
    }
    /// Loads this rank's share of a full (single-process layout) optimizer state.
    pub fn load_state(&self, opt: &mut AdamW, full: &BTreeMap<String, Tensor>, step: i64) -> Result<(), String> {
        let mut mine = BTreeMap::new();
        for s in &self.segments {
            let name = &self.params[s.param].0;
            for which in ["m", "v"] {
                let key = format!("{which}.{name}");
                let t = full.get(&key).ok_or_else(|| format!("optimizer state {key} is missing"))?;
                if t.numel() as i64 != self.params[s.param].1.numel() as i64 {
                    return Err(format!(
                        "optimizer state {key} has {} values, the parameter {}",
                        t.numel(),
                        self.params[s.param].1.numel()
                    ));
                }
                let part = t.reshape([-1]).narrow(0, s.start, s.len).to_kind(Kind::Float);
                mine.insert(format!("{which}.{}", segment_name(name, s.start)), part);
            }
        }
        opt.load_state(&mine, step)
    }

    /// This rank, for messages.
    pub fn rank(&self) -> usize {
        self.rank
    }
}

fn segment_name(param: &str, start: i64) -> String {
    format!("{param}@{start}")
}
