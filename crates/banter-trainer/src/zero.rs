//! ZeRO stage 1 (`--zero1`): the AdamW state is sharded across ranks. The trained parameters, laid end to
//! end in name order (P values), are cut into `world` equal runs; rank r owns run r. Per step:
//! 1. the gradients are reduce-scattered in buckets: rank r receives the sum over ranks of its own run;
//! 2. the global gradient norm is summed from each rank's share (clipping as one process clips);
//! 3. each rank updates its run with AdamW (its m and v: 2P/world values instead of 2P);
//! 4. the updated runs are all-gathered in buckets into every rank's parameters.
//!
//! A rank's run is held as one fp32 leaf per parameter it overlaps ("segments"), each with its gradient, so
//! the fused CPU AdamW works on them unchanged. Checkpoints hold the full state (gathered to rank 0) in the
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
    leaf: Tensor,
}

/// The sharded optimizer's layout on this rank.
#[derive(Debug)]
pub(crate) struct Zero1 {
    /// The model's trained parameters `(name, tensor)`, in name order.
    params: Vec<(String, Tensor)>,
    /// Each parameter's flat offset in the whole.
    offsets: Vec<i64>,
    /// Values per rank's run (the last run is padded).
    chunk: i64,
    rank: usize,
    world: usize,
    segments: Vec<Segment>,
}

/// Values per collective bucket: 8 M (32 MB of fp32) across all ranks.
const BUCKET_VALUES: i64 = 8 << 20;

impl Zero1 {
    /// The layout for `params` (name, tensor, decay) on `group`, and the AdamW over this rank's segments.
    pub fn new(
        params: Vec<(String, Tensor, bool)>,
        group: &ProcessGroup,
        (beta1, beta2, weight_decay): (f64, f64, f64),
    ) -> (Zero1, AdamW) {
        let (rank, world) = (group.rank(), group.world());
        let mut offsets = Vec::with_capacity(params.len());
        let mut total = 0i64;
        for (_, t, _) in &params {
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
            let leaf = t.detach().to_kind(Kind::Float).reshape([-1]).narrow(0, a - p0, b - a).copy().set_requires_grad(true);
            // A defined (zero) gradient to receive the reduced share (tch cannot set `.grad`).
            (&leaf * 0.0).sum(Kind::Float).backward();
            slots.push((segment_name(name, a - p0), leaf.shallow_clone(), *decay));
            segments.push(Segment { param: i, start: a - p0, len: b - a, at: a - lo, leaf });
        }
        let params = params.into_iter().map(|(n, t, _)| (n, t)).collect();
        let z = Zero1 { params, offsets, chunk, rank, world, segments };
        (z, AdamW::new(slots, beta1, beta2, 1e-8, weight_decay))
    }

    /// Values of optimizer state this rank holds (m and v), and the whole's.
    pub fn state_values(&self) -> (i64, i64) {
        let mine: i64 = self.segments.iter().map(|s| s.len).sum();
        let total = self.offsets.last().copied().unwrap_or(0) + self.params.last().map_or(0, |p| p.1.numel() as i64);
        (2 * mine, 2 * total)
    }

    /// Copies the model's current values into this rank's segments (after a broadcast or a resume), and
    /// clears the model's gradients (a precision probe may have left some).
    pub fn refresh(&mut self) {
        let _g = tch::no_grad_guard();
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
        for s in &mut self.segments {
            let src = self.params[s.param].1.detach().reshape([-1]).narrow(0, s.start, s.len);
            s.leaf.copy_(&src.to_kind(Kind::Float));
        }
    }

    /// Copies flat `[a, b)` of the whole, read by `get(param)`, into `dst` (padding past the end left as is).
    fn gather_range(&self, a: i64, b: i64, dst: &Tensor, get: impl Fn(usize) -> Tensor) {
        let mut i = self.offsets.partition_point(|&o| o <= a).saturating_sub(1);
        while i < self.params.len() && self.offsets[i] < b {
            let (p0, p1) = (self.offsets[i], self.offsets[i] + self.params[i].1.numel() as i64);
            let (x, y) = (p0.max(a), p1.min(b));
            if x < y {
                let src = get(i).reshape([-1]).narrow(0, x - p0, y - x);
                dst.narrow(0, x - a, y - x).copy_(&src);
            }
            i += 1;
        }
    }

    /// Reduce-scatters the model's gradients: each segment's gradient becomes the sum over ranks.
    pub fn reduce_grads(&self, group: &ProcessGroup) -> Result<(), banter_dist::DistError> {
        let _g = tch::no_grad_guard();
        let per = (BUCKET_VALUES / self.world as i64).max(1);
        let total = self.offsets.last().copied().unwrap_or(0) + self.params.last().map_or(0, |p| p.1.numel() as i64);
        let device = self.params.first().map_or(Device::Cpu, |p| p.1.device());
        let mut k = 0i64;
        while k < self.chunk {
            let len = per.min(self.chunk - k);
            let input = Tensor::zeros([len * self.world as i64], (Kind::Float, device));
            for r in 0..self.world {
                let a = r as i64 * self.chunk + k;
                let b = (a + len).min(total);
                if a < b {
                    self.gather_range(a, b, &input.narrow(0, r as i64 * len, len), |i| {
                        let g = self.params[i].1.grad();
                        if g.defined() { g.to_kind(Kind::Float) } else { self.params[i].1.zeros_like() }
                    });
                }
            }
            let out = Tensor::zeros([len], (Kind::Float, device));
            group.reduce_scatter(&out, &input)?;
            for s in &self.segments {
                let (x, y) = (s.at.max(k), (s.at + s.len).min(k + len));
                if x < y {
                    s.leaf.grad().narrow(0, x - s.at, y - x).copy_(&out.narrow(0, x - k, y - x));
                }
            }
            k += len;
        }
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
        Ok(())
    }

    /// All-gathers the updated segments into every rank's parameters.
    pub fn gather_weights(&self, group: &ProcessGroup) -> Result<(), banter_dist::DistError> {
        let _g = tch::no_grad_guard();
        let per = (BUCKET_VALUES / self.world as i64).max(1);
        let total = self.offsets.last().copied().unwrap_or(0) + self.params.last().map_or(0, |p| p.1.numel() as i64);
        let device = self.params.first().map_or(Device::Cpu, |p| p.1.device());
        let mut k = 0i64;
        while k < self.chunk {
            let len = per.min(self.chunk - k);
            let mine = Tensor::zeros([len], (Kind::Float, device));
            for s in &self.segments {
                let (x, y) = (s.at.max(k), (s.at + s.len).min(k + len));
                if x < y {
                    mine.narrow(0, x - k, y - x).copy_(&s.leaf.detach().narrow(0, x - s.at, y - x));
                }
            }
            let all = Tensor::zeros([len * self.world as i64], (Kind::Float, device));
            group.all_gather(&all, &mine)?;
            for r in 0..self.world {
                let a = r as i64 * self.chunk + k;
                let b = (a + len).min(total);
                self.scatter_range(a, b, &all.narrow(0, r as i64 * len, len));
            }
            k += len;
        }
        Ok(())
    }

    /// Writes `src` into flat `[a, b)` of the model's parameters.
    fn scatter_range(&self, a: i64, b: i64, src: &Tensor) {
        let mut i = self.offsets.partition_point(|&o| o <= a).saturating_sub(1);
        while i < self.params.len() && self.offsets[i] < b {
            let p = &self.params[i].1;
            let (p0, p1) = (self.offsets[i], self.offsets[i] + p.numel() as i64);
            let (x, y) = (p0.max(a), p1.min(b));
            if x < y {
                let flat = p.detach().reshape([-1]);
                flat.narrow(0, x - p0, y - x).copy_(&src.narrow(0, x - a, y - x).to_kind(p.kind()));
            }
            i += 1;
        }
    }

    /// The squared norm of this rank's share of the (reduced) gradients.
    pub fn local_sq_norm(&self) -> f64 {
        let _g = tch::no_grad_guard();
        self.segments.iter().map(|s| s.leaf.grad().square().sum(Kind::Double).double_value(&[])).sum()
    }

    /// The whole optimizer state in the single-process layout (`m.NAME`, `v.NAME`), gathered to every rank
    /// (rank 0 writes it).
    pub fn full_state(&self, opt: &AdamW, group: &ProcessGroup) -> Result<Vec<(String, Tensor)>, banter_dist::DistError> {
        let _g = tch::no_grad_guard();
        let mine: BTreeMap<String, Tensor> = opt.state().into_iter().collect();
        let device = self.params.first().map_or(Device::Cpu, |p| p.1.device());
        let mut out = Vec::new();
        for which in ["m", "v"] {
            let run = Tensor::zeros([self.chunk], (Kind::Float, device));
            for s in &self.segments {
                let name = format!("{which}.{}", segment_name(&self.params[s.param].0, s.start));
                if let Some(t) = mine.get(&name) {
                    run.narrow(0, s.at, s.len).copy_(t);
                }
            }
            let all = Tensor::zeros([self.chunk * self.world as i64], (Kind::Float, device));
            group.all_gather(&all, &run)?;
            for (i, (name, p)) in self.params.iter().enumerate() {
                let t = all.narrow(0, self.offsets[i], p.numel() as i64).view_as(p).copy();
                out.push((format!("{which}.{name}"), t));
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
                    return Err(format!("optimizer state {key} has {} values, the parameter {}", t.numel(), self.params[s.param].1.numel()));
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
