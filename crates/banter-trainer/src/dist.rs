//! Data parallelism inside the loop, on libtorch's c10d through banter-dist. Each rank takes its slice of
//! every global micro-batch (`batch_size × world` units, in the single-process order), weighs its loss by its
//! share of the global batch's scored tokens (or pairs), and the gradients are summed across ranks before
//! clipping: the update is the one a single process makes with the whole global batch. Evaluation and DPO's
//! reference scoring are split across ranks and summed; rank 0 alone writes metrics, checkpoints and the
//! output, and every decision (precision, early stopping, cancelling) is the same on every rank.

use tch::{Device, Tensor};

use banter_core::Error;
use banter_dist::{Backend, GradSync, Launch, ProcessGroup, Reduce};
use banter_model::precision::Precision;

use crate::state::{Loop, Means};

/// This process's group, and how its gradients are synchronised.
pub(crate) struct Dist {
    pub group: ProcessGroup,
    pub sync: Option<GradSync>,
    /// ZeRO-1's layout (`--zero1`), instead of `sync`.
    pub zero: Option<crate::zero::Zero1>,
}

impl std::fmt::Debug for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dist(rank {} of {})", self.group.rank(), self.group.world())
    }
}

impl Dist {
    /// Joins the launch's group (Gloo on the CPU, NCCL on CUDA).
    pub fn join(launch: &Launch, device: Device) -> crate::Result<Dist> {
        let group = ProcessGroup::join(launch, Backend::for_device(device))?;
        Ok(Dist { group, sync: None, zero: None })
    }
}

/// The device of a rank: CUDA's `LOCAL_RANK`-th GPU when the run is on CUDA.
pub(crate) fn rank_device(device: Device, launch: Option<&Launch>) -> Device {
    match (device, launch) {
        (Device::Cuda(_), Some(l)) => Device::Cuda(l.local_rank),
        (d, _) => d,
    }
}

/// Checks the global batch against the world size and sets each rank's batch.
pub(crate) fn resolve_batch(s: &mut crate::TrainSettings) -> crate::Result<()> {
    let world = s.world();
    if let Some(g) = s.global_batch {
        if g == 0 || g % world != 0 {
            return Err(Error::usage_hint(
                format!("--global-batch-size {g} is not a multiple of the world size {world}"),
                format!("give a multiple of {world}, or --batch-size per rank"),
            )
            .into());
        }
        s.opt.batch_size = g / world;
    }
    if s.zero1 && s.dist.is_none() {
        return Err(Error::usage_hint(
            "--zero1 shards the optimizer across ranks: it needs a torchrun launch",
            "torchrun --no-python --nproc-per-node N banter-train … --zero1",
        )
        .into());
    }
    Ok(())
}

impl Loop<'_> {
    /// Processes training together.
    pub(crate) fn world(&self) -> usize {
        self.dist.as_ref().map_or(1, |d| d.group.world())
    }

    /// This process's rank (0 alone).
    pub(crate) fn rank(&self) -> usize {
        self.dist.as_ref().map_or(0, |d| d.group.rank())
    }

    /// Rank 0 (or a single process): the one that writes.
    pub(crate) fn is_main(&self) -> bool {
        self.rank() == 0
    }

    /// This rank's part of a global micro-batch: the `rank`-th run of `micro` units.
    pub(crate) fn my_slice(&self, global: &[usize], micro: usize) -> Vec<usize> {
        let start = (self.rank() * micro).min(global.len());
        global[start..(start + micro).min(global.len())].to_vec()
    }

    /// Sums numbers across ranks (identity alone).
    pub(crate) fn sum_across(&self, values: &[f64]) -> crate::Result<Vec<f64>> {
        match &self.dist {
            Some(d) => Ok(d.group.sum_f64(values)?),
            None => Ok(values.to_vec()),
        }
    }

    /// The precision rank 0 chose, on every rank.
    pub(crate) fn agree_precision(dist: Option<&Dist>, mine: Option<Precision>) -> crate::Result<Option<Precision>> {
        let Some(d) = dist else { return Ok(mine) };
        let code = |p: Precision| match p {
            Precision::Fp32 => 1.0,
            Precision::Bf16 => 2.0,
            Precision::Fp16 => 3.0,
        };
        let v = d.group.reduce_f64(&[mine.map_or(0.0, code)], Reduce::Max)?[0];
        Ok(Some(match v as i64 {
            2 => Precision::Bf16,
            3 => Precision::Fp16,
            _ => Precision::Fp32,
        }))
    }

    /// Makes every rank start from rank 0's trainable weights, and sets up the gradient buckets.
    pub(crate) fn start_dist(&mut self) -> crate::Result<()> {
        let Some(d) = &mut self.dist else { return Ok(()) };
        let params: Vec<Tensor> = crate::state::trainable(self.s, &self.setup).into_iter().map(|(_, t, _)| t).collect();
        GradSync::broadcast_params(&params, &d.group, 0)?;
        match &mut d.zero {
            Some(z) => z.refresh(),
            None => d.sync = Some(GradSync::new(params)),
        }
        Ok(())
    }

    /// Sums the gradients across ranks (ZeRO-1: each rank gets the sum of its own share).
    pub(crate) fn sync_grads(&mut self) -> crate::Result<()> {
        let Some(d) = &self.dist else { return Ok(()) };
        if let Some(sync) = &d.sync {
            sync.all_reduce(&d.group)?;
        }
        if let Some(z) = &d.zero {
            z.reduce_grads(&d.group)?;
        }
        Ok(())
    }

    /// Sets the update's clipping and returns the gradient norm: over every rank's share with ZeRO-1,
    /// else over the (already summed) gradients here.
    pub(crate) fn clip(&mut self, unscale: f64) -> crate::Result<f64> {
        let max = self.s.opt.clip;
        if let Some(d) = &self.dist
            && let Some(z) = &d.zero
        {
            let sq = d.group.sum_f64(&[z.local_sq_norm()])?[0];
            let norm = sq.sqrt() * unscale;
            self.opt.clip_to_norm(norm, max, unscale);
            return Ok(norm);
        }
        Ok(self.opt.clip_grad_norm_scaled(max, unscale))
    }

    /// ZeRO-1: every rank's updated share into every rank's parameters.
    pub(crate) fn gather_weights(&self) -> crate::Result<()> {
        if let Some(d) = &self.dist
            && let Some(z) = &d.zero
        {
            z.gather_weights(&d.group)?;
        }
        Ok(())
    }

    /// The optimizer state for a checkpoint (ZeRO-1: gathered from every rank, a collective).
    pub(crate) fn optimizer_state(&self) -> crate::Result<Vec<(String, Tensor)>> {
        if let Some(d) = &self.dist
            && let Some(z) = &d.zero
        {
            return Ok(z.full_state(&self.opt, &d.group)?);
        }
        Ok(self.opt.state())
    }

    /// The step's figures summed across ranks: the loss (each rank's share already weighted), tokens, and
    /// whether any rank was asked to stop. DPO's running means are summed too.
    pub(crate) fn reduce_step(&mut self, loss: f64, tokens: i64, stop: bool) -> crate::Result<(f64, i64, bool)> {
        if self.dist.is_none() {
            return Ok((loss, tokens, stop));
        }
        let mut v = vec![loss, tokens as f64, if stop { 1.0 } else { 0.0 }];
        v.extend(self.dpo_step.to_array());
        let r = self.sum_across(&v)?;
        self.dpo_step = Means::from_array(&r[3..]);
        Ok((r[0], r[1].round() as i64, r[2] > 0.0))
    }

    /// Reference log-probs summed across ranks (each scored its own share, zeros elsewhere).
    pub(crate) fn sum_tensor(&self, t: Tensor) -> crate::Result<Tensor> {
        let Some(d) = &self.dist else { return Ok(t) };
        let device = if d.group.backend() == Backend::Nccl { self.device } else { Device::Cpu };
        let t = t.to_device(device).contiguous();
        d.group.all_reduce(&[&t], Reduce::Sum)?;
        Ok(t.to_device(Device::Cpu))
    }
}
