//! DPO inside the training loop: the reference log-probs, a step's micro-batches of pairs, evaluation.
//!
//! The reference is the model as training starts (with a fresh LoRA adapter, whose B is zero: the base
//! model, adapter off), scored once over every pair before the first step, in eval mode. No second copy of
//! the model is held; the log-probs (two numbers a pair) go into each checkpoint, so a resumed run compares
//! with the same reference.

use tch::{Device, Kind, Tensor};

use banter_core::exit::{Coded, Exit};
use banter_core::records::Block;
use banter_model::Lm;
use banter_model::Pass;

use crate::data::{self, Blocks};
use crate::dpo::{DpoOut, DpoSettings, dpo_loss};
use crate::dpo_head;
use crate::state::{Loop, Means, Reference};

/// Summed log-probs `[n]` of interleaved pair blocks, in batches of `pairs` pairs, without autograd. Only
/// every `parts`-th batch from `part` is scored (a rank's share); the others are left zero.
pub(crate) fn score(
    model: &Lm,
    blocks: &Blocks,
    pairs: usize,
    pad: u32,
    pass: Pass,
    (part, parts): (usize, usize),
) -> crate::Result<Tensor> {
    let mut out = Vec::with_capacity(blocks.len());
    let step = (2 * pairs.max(1)).max(2);
    for (i, start) in (0..blocks.len()).step_by(step).enumerate() {
        if i % parts.max(1) != part {
            out.push(Tensor::zeros([(step.min(blocks.len() - start)) as i64], (Kind::Float, Device::Cpu)));
            continue;
        }
        let owned = blocks.fetch(start..(start + step).min(blocks.len()))?;
        let refs: Vec<&Block> = owned.iter().collect();
        let (ids, labels, _) = data::batch(&refs, pad, model.device());
        let (s, _) = dpo_head::sequence_logps(model, &ids, &labels, pass);
        out.push(s.to_device(Device::Cpu));
    }
    Ok(if out.is_empty() { Tensor::zeros([0], (Kind::Float, Device::Cpu)) } else { Tensor::cat(&out, 0) })
}

/// One micro-batch of pairs as a `[2m, T]` batch (chosen rows, then rejected rows) and the pairs' reference
/// log-probs `(chosen [m], rejected [m])`.
fn pair_batch(
    blocks: &[Block],
    reference: &Tensor,
    pair_idx: &[usize],
    pad: u32,
    device: Device,
) -> (Tensor, Tensor, i64, (Tensor, Tensor)) {
    let rows: Vec<&Block> = blocks.iter().step_by(2).chain(blocks.iter().skip(1).step_by(2)).collect();
    let (ids, labels, tokens) = data::batch(&rows, pad, device);
    let at = |off: i64| {
        let idx: Vec<i64> = pair_idx.iter().map(|&k| 2 * k as i64 + off).collect();
        reference.index_select(0, &Tensor::from_slice(&idx)).to_device(device)
    };
    (ids, labels, tokens, (at(0), at(1)))
}

impl Loop<'_> {
    /// The reference log-probs of the training (or validation) pairs; empty before they are scored.
    fn reference(&self, val: bool) -> Tensor {
        match &self.dpo_ref {
            Some(r) => {
                if val {
                    r.val.shallow_clone()
                } else {
                    r.train.shallow_clone()
                }
            }
            None => Tensor::zeros([0], (Kind::Float, Device::Cpu)),
        }
    }

    /// The DPO settings (a DPO run has them).
    fn dpo_settings(&self) -> DpoSettings {
        self.s.dpo.unwrap_or_default()
    }

    /// Scores every pair with the starting model (the reference), unless a resumed checkpoint brought them.
    pub(crate) fn ensure_reference(&mut self) -> crate::Result<()> {
        if self.s.dpo.is_none() || self.dpo_ref.is_some() {
            return Ok(());
        }
        let bs = self.s.opt.batch_size.max(1);
        let pass = Pass { train: false, ..self.pass };
        let (model, pad) = (&self.setup.model, self.setup.tok.pad_id);
        // Distributed, each rank scores its share of the pairs; the shares are summed.
        let share = (self.rank(), self.world());
        let train = score(model, &self.setup.train, bs, pad, pass, share)?;
        let val = score(model, &self.setup.val, bs, pad, pass, share)?;
        let (train, val) = (self.sum_tensor(train)?, self.sum_tensor(val)?);
        self.dpo_ref = Some(Reference { train, val });
        Ok(())
    }

    /// Takes a checkpoint's reference log-probs, which must be for this data.
    pub(crate) fn restore_reference(
        &mut self,
        saved: Vec<(String, Tensor)>,
        dir: &std::path::Path,
    ) -> crate::Result<()> {
        let get = |n: &str| saved.iter().find(|(k, _)| k == n).map(|(_, t)| t.to_device(Device::Cpu));
        let (Some(train), Some(val)) = (get("train"), get("val")) else {
            return Err(Coded::new(
                Exit::BadInput,
                format!("{}: dpo_reference.safetensors lacks train or val", dir.display()),
            )
            .into());
        };
        let (nt, nv) = (self.setup.train.len() as i64, self.setup.val.len() as i64);
        if train.size()[0] != nt || val.size()[0] != nv {
            return Err(Coded::new(
                Exit::BadInput,
                format!(
                    "{}: the checkpoint's reference covers {} training and {} validation replies, the data has {nt} and {nv}: resume with the same data",
                    dir.display(),
                    train.size()[0],
                    val.size()[0]
                ),
            )
            .into());
        }
        self.dpo_ref = Some(Reference { train, val });
        Ok(())
    }

    /// Forward and backward of one micro-batch of pairs; returns the mean loss and the tokens.
    pub(crate) fn dpo_micro(&mut self, pair_idx: &[usize], loss_mul: f64) -> crate::Result<(f64, i64)> {
        let blocks = self.setup.train.fetch(pair_idx.iter().flat_map(|&k| [2 * k, 2 * k + 1]))?;
        let reference = self.reference(false);
        let (ids, labels, tokens, (rc, rr)) =
            pair_batch(&blocks, &reference, pair_idx, self.setup.tok.pad_id, self.device);
        let (m, settings, pass) = (pair_idx.len() as i64, self.dpo_settings(), self.pass);
        let mut stats: Option<(DpoOut, Tensor, Tensor)> = None;
        let model = &self.setup.model;
        let checkpointed = self.s.gradient_checkpointing;
        let mut run = || {
            dpo_head::logps_backward_with(model, &ids, &labels, pass, checkpointed, |s, n| {
                let (pc, pr) = (s.narrow(0, 0, m), s.narrow(0, m, m));
                let out = dpo_loss((&pc, &pr), (&rc, &rr), (&n.narrow(0, 0, m), &n.narrow(0, m, m)), &settings);
                let scaled = &out.loss * loss_mul;
                stats = Some((out, pc.detach(), pr.detach()));
                scaled
            })
        };
        if self.cuda_autocast {
            let _ = tch::autocast(true, &mut run);
        } else {
            let _ = run();
        }
        let Some((out, pc, pr)) = stats else { return Ok((0.0, tokens)) };
        self.dpo_step.add(&out, &pc, &pr);
        Ok((out.loss.double_value(&[]), tokens))
    }

    /// DPO loss and figures over the validation pairs (all, or `eval_blocks` of them).
    pub(crate) fn dpo_eval(&self) -> crate::Result<Means> {
        let _g = tch::no_grad_guard();
        let val = &self.setup.val;
        let pairs = val.len() / 2;
        let n = if self.s.opt.eval_blocks == 0 { pairs } else { self.s.opt.eval_blocks.min(pairs) };
        let bs = self.s.opt.batch_size.max(1);
        let reference = self.reference(true);
        let mut means = Means::default();
        let pass = Pass { train: false, ..self.pass };
        let (rank, world) = (self.rank(), self.world());
        for (i, start) in (0..n).step_by(bs).enumerate() {
            if i % world != rank {
                continue;
            }
            let idx: Vec<usize> = (start..(start + bs).min(n)).collect();
            let blocks = val.fetch(idx.iter().flat_map(|&k| [2 * k, 2 * k + 1]))?;
            let (ids, labels, _, (rc, rr)) = pair_batch(&blocks, &reference, &idx, self.setup.tok.pad_id, self.device);
            let m = idx.len() as i64;
            let (s, cnt) = dpo_head::sequence_logps(&self.setup.model, &ids, &labels, pass);
            let (pc, pr) = (s.narrow(0, 0, m), s.narrow(0, m, m));
            let out =
                dpo_loss((&pc, &pr), (&rc, &rr), (&cnt.narrow(0, 0, m), &cnt.narrow(0, m, m)), &self.dpo_settings());
            means.add(&out, &pc, &pr);
        }
        Ok(Means::from_array(&self.sum_across(&means.to_array())?))
    }
}

/// The first micro-batch of a DPO run, as the loop computes it: what parity tests compare with TRL.
#[derive(Debug)]
pub struct FirstBatch {
    /// Token ids `[2m, T]` (chosen rows, then rejected rows), right-padded.
    pub input_ids: Tensor,
    /// Labels, −100 where not scored (prompt, padding).
    pub labels: Tensor,
    /// Each row's length before padding.
    pub lengths: Vec<i64>,
    /// The batch's DPO loss.
    pub loss: f64,
    /// The gradients of the trainable parameters, by name (the model's, or LoRA's `…lora_A`/`lora_B`).
    pub grads: Vec<(String, Tensor)>,
}

/// Sets up `s` (a `--dpo` run), scores the reference and runs forward and backward over the first
/// `batch_size` pairs in file order; no update is made and nothing is written.
pub fn first_batch(s: &crate::TrainSettings) -> crate::Result<FirstBatch> {
    let device = s.device.resolve()?;
    let setup = crate::setup::setup(s, device, crate::Console::silent())?;
    let mut l = Loop::new(s, setup, device, crate::Console::silent(), String::new(), None)?;
    l.ensure_reference()?;
    let m = s.opt.batch_size.max(1).min(l.setup.train.len() / 2);
    let idx: Vec<usize> = (0..m).collect();
    let blocks = l.setup.train.fetch(idx.iter().flat_map(|&k| [2 * k, 2 * k + 1]))?;
    let reference = l.reference(false);
    let (input_ids, labels, _, _) = pair_batch(&blocks, &reference, &idx, l.setup.tok.pad_id, device);
    let lengths =
        blocks.iter().step_by(2).chain(blocks.iter().skip(1).step_by(2)).map(|b| b.input_ids.len() as i64).collect();
    let (loss, _) = l.dpo_micro(&idx, 1.0)?;
    let grads = crate::output::trainable_tensors(&l.setup.model)
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, t)| {
            let g = t.grad();
            (n, if g.defined() { g.copy() } else { t.zeros_like() })
        })
        .collect();
    Ok(FirstBatch { input_ids, labels, lengths, loss, grads })
}
