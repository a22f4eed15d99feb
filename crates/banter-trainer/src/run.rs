//! The training loop: steps with gradient accumulation (SFT or DPO micro-batches), the optimizer update,
//! evaluation and early stopping, checkpoints on schedule and on cancel, then the output (`finish`).

use std::io::Write;
use std::time::Instant;

use serde_json::json;

use banter_core::exit::Coded;
use banter_core::{CancelToken, Error, Exit, progress};
use banter_model::optim::lr_at;

use crate::settings::{Console, TrainSettings};
use crate::setup::setup;
use crate::state::{Loop, Outcome, open_metrics};
use crate::{TOOL, data, output};

/// Trains as `s` says. Work stops at the next step once `cancel` is cancelled, after a checkpoint.
pub fn train(s: &TrainSettings, console: Console, cancel: &CancelToken) -> crate::Result<Outcome> {
    // However the run ends (done, error, Ctrl-C), this thread's bf16 working copies, and the masters they
    // hold, go with it: a long-lived thread (banter-chat's learner) keeps nothing between rounds.
    let _copies = banter_model::castcache::Scope::new();
    if s.inputs.is_empty() && s.hub_data.is_empty() {
        return Err(Error::usage_hint(
            "no training data",
            "give blocks or samples JSONL files, or --dataset USER/NAME",
        )
        .into());
    }
    if s.output.as_os_str().is_empty() {
        return Err(Error::usage_hint("no output directory", "add -o DIR").into());
    }
    if let Some(d) = &s.dpo {
        d.check().map_err(Error::usage)?;
    }
    // A model or adapter folder is an input: the output may not be it, hold it or lie inside it.
    for d in s.model.iter().chain(s.lora.adapter.iter()) {
        banter_core::inputs::register_path(d);
    }
    // `-o` naming the model or adapter itself: retrain in place through a staging folder.
    let in_place = crate::inplace::target(s)?;
    let mut s = s.clone();
    crate::dist::resolve_batch(&mut s)?;
    if in_place.is_some() && s.dist.is_some() {
        return Err(Error::usage_hint(
            "retraining in place is not done by a distributed run",
            "write to a new -o folder, then move it over the old one",
        )
        .into());
    }
    if let Some(dest) = &in_place {
        s.output = crate::inplace::staging(dest);
        console.say(format!(
            "{TOOL}: retraining {} in place: the run writes to {} and replaces it when it completes",
            dest.display(),
            s.output.display()
        ));
    }
    banter_core::inputs::check_output_path(&s.output)?;
    let result = start(&mut s, console, cancel);
    match (result, in_place) {
        (Ok(Outcome::Trained(mut report)), Some(dest)) => {
            crate::inplace::publish(&s.output, &dest)?;
            report.output = dest;
            Ok(Outcome::Trained(report))
        }
        (Err(e), Some(_)) => {
            // A staging folder without a checkpoint has nothing to resume from.
            crate::inplace::discard_if_empty(&s.output);
            Err(e)
        }
        (result, _) => result,
    }
}

fn start(s: &mut TrainSettings, console: Console, cancel: &CancelToken) -> crate::Result<Outcome> {
    let fingerprint = crate::rundir::fingerprint(s)?;
    let device = crate::dist::rank_device(s.device.resolve()?, s.dist.as_ref());
    let dist = s.dist.as_ref().map(|l| crate::dist::Dist::join(l, device)).transpose()?;
    let rank = dist.as_ref().map_or(0, |d| d.group.rank());
    // Only rank 0 speaks and touches the output folder; the others follow its decision.
    let console = if rank == 0 { console } else { Console::silent() };
    if rank == 0 {
        s.resume = crate::rundir::prepare(s, &fingerprint, console)?;
    }
    if let Some(d) = &dist {
        d.group.barrier()?;
        if rank != 0 {
            s.resume = crate::rundir::prepare(s, &fingerprint, console)?;
        }
    }
    let s = &*s;
    let setup = setup(s, device, console)?;
    let mut l = Loop::new(s, setup, device, console, fingerprint, dist)?;
    l.ensure_reference()?;
    l.start_dist()?;
    l.run(cancel)
}

impl Loop<'_> {
    fn run(mut self, cancel: &CancelToken) -> crate::Result<Outcome> {
        let out = self.s.output.clone();
        let metrics_path = out.join("metrics.jsonl");
        let mut metrics = None;
        if self.is_main() {
            std::fs::create_dir_all(&out).map_err(|e| Error::io(out.display(), e))?;
            output::remove_stale_temps(&out);
            metrics = Some(open_metrics(&metrics_path, self.step)?);
        }
        self.announce();
        let bar = progress::bar_if(self.console.progress, Some(self.total as u64), "training");
        bar.set_position(self.step as u64);
        if self.s.eval_at_start && self.step == 0 && self.s.dpo.is_none() && !self.setup.val.is_empty() {
            let vl = self.eval_loss()?;
            self.val_curve.push((0, vl));
        }
        let started = Instant::now();
        let mut speed = Speed::default();
        let micro = self.s.opt.batch_size.max(1);
        let mut order = Order { epoch: u64::MAX, shuffle: data::Shuffle::new(0, 0, 0) };
        let mut cancelled = false;
        while self.step < self.total {
            // Alone, a cancel stops before the next step; distributed, at the end of the step every rank
            // is told of (below), so that all stop at the same step.
            if cancelled || (self.dist.is_none() && cancel.is_cancelled()) {
                cancelled = true;
                break;
            }
            let (loss_sum, tokens) = self.accumulate(&mut order, micro)?;
            let (loss_sum, tokens, stop) = self.reduce_step(loss_sum, tokens, cancel.is_cancelled())?;
            cancelled = stop;
            let (grad_norm, cur_lr) = self.update()?;
            self.step += 1;
            self.last_loss = loss_sum;
            let tps = speed.add(tokens);
            self.train_curve.push((self.step, loss_sum));
            bar.set_position(self.step as u64);
            bar.set_message(format!("loss {loss_sum:.4} lr {cur_lr:.2e} {tps:.0} tok/s"));
            let mut rec = json!({"step": self.step, "loss": loss_sum, "lr": cur_lr, "grad_norm": grad_norm, "tokens": tokens, "tokens_per_s": tps.round(), "elapsed_s": started.elapsed().as_secs_f64()});
            if self.s.dpo.is_some() {
                std::mem::take(&mut self.dpo_step).put(&mut rec, "");
            }
            self.maybe_evaluate(&mut rec, loss_sum, cur_lr, tps)?;
            if let Some(m) = &mut metrics {
                writeln!(m, "{rec}").map_err(|e| Error::io(metrics_path.display(), e))?;
            }
            let s = self.s;
            if s.save_every > 0 && self.step % s.save_every == 0 && self.step < self.total {
                self.checkpoint()?;
            }
            if s.opt.early_stopping > 0 && self.bad_evals >= s.opt.early_stopping {
                self.console.say(format!(
                    "{TOOL}: early stopping at step {}: no better validation loss in {} evaluations",
                    self.step, self.bad_evals
                ));
                break;
            }
        }
        bar.finish_and_clear();
        let ckpt = self.checkpoint()?;
        if cancelled {
            return Ok(Outcome::Cancelled { step: self.step, checkpoint: ckpt });
        }
        self.export(started.elapsed().as_secs_f64())
    }

    fn announce(&self) {
        let m = &self.setup.model;
        let (per, unit) = if self.s.dpo.is_some() { (2, "preference pairs") } else { (1, "blocks") };
        self.console.say(format!(
            "{TOOL}: {:.1}M parameters{}, {} training {unit}, {} validation, {} steps of {}×{} {unit}{}, lr {:e}, {} on {:?}",
            m.num_params() as f64 / 1e6,
            if self.is_lora() { " (LoRA)" } else { "" },
            self.setup.train.len() / per,
            self.setup.val.len() / per,
            self.total,
            self.s.opt.batch_size.max(1),
            self.s.opt.grad_accum.max(1),
            if self.world() > 1 { format!(" on each of {} ranks", self.world()) } else { String::new() },
            self.lr,
            self.precision.as_str(),
            self.device
        ));
    }

    /// Forward and backward over the micro-batches of one step; returns the mean loss and the tokens.
    fn accumulate(&mut self, order: &mut Order, micro: usize) -> crate::Result<(f64, i64)> {
        let accum = self.s.opt.grad_accum.max(1);
        let dpo = self.s.dpo.is_some();
        let units = self.setup.train.len() / if dpo { 2 } else { 1 };
        // Distributed, a micro-batch is `micro` units on each rank: `micro × world` in all.
        let global = micro * self.world();
        let per_epoch_micro = units.div_ceil(global);
        let (mut loss_sum, mut tokens) = (0.0f64, 0i64);
        for a in 0..accum {
            let global_micro = (self.step as usize) * accum + a;
            let epoch = (global_micro / per_epoch_micro) as u64;
            let pos = global_micro % per_epoch_micro;
            if order.epoch != epoch {
                *order = Order { epoch, shuffle: data::Shuffle::new(units, self.s.opt.seed, epoch) };
            }
            let all: Vec<usize> =
                (pos * global..((pos + 1) * global).min(units)).map(|j| order.shuffle.get(j)).collect();
            let picked = self.my_slice(&all, micro);
            // Dropout is seeded per micro-batch, so a resumed run draws the same masks.
            tch::manual_seed((self.s.opt.seed as i64).wrapping_mul(1_000_003).wrapping_add(global_micro as i64));
            // This rank's share of the global micro-batch's loss: its scored tokens (DPO: pairs) over all.
            let share = if self.dist.is_none() {
                1.0
            } else if dpo {
                picked.len() as f64 / all.len().max(1) as f64
            } else {
                // One read of the global micro-batch: each block's scored tokens; this rank's are its run.
                let counts: Vec<usize> = self
                    .setup
                    .train
                    .fetch(all.iter().copied())?
                    .iter()
                    .map(|b| data::scored_tokens(std::slice::from_ref(b)))
                    .collect();
                let start = (self.rank() * micro).min(counts.len());
                let mine: usize = counts[start..(start + micro).min(counts.len())].iter().sum();
                if mine == 0 { 0.0 } else { mine as f64 / counts.iter().sum::<usize>() as f64 }
            };
            if picked.is_empty() {
                continue;
            }
            let loss_mul = self.scaler.as_ref().map_or(1.0, |s| s.scale) / accum as f64 * share;
            let (l, n) = if dpo { self.dpo_micro(&picked, loss_mul)? } else { self.sft_micro(&picked, loss_mul)? };
            if !l.is_finite() {
                // Distributed, only this rank may have seen it: no checkpoint (a collective the others are
                // not in); the last scheduled one stays, and torchrun stops the other ranks.
                let saved =
                    if self.dist.is_none() && self.checkpoint().is_ok() { " (a checkpoint was saved)" } else { "" };
                return Err(Coded::new(
                    Exit::Model,
                    format!("the loss became {l} at step {}; lower --lr{saved}", self.step),
                )
                .into());
            }
            loss_sum += l * share / accum as f64;
            tokens += n;
        }
        Ok((loss_sum, tokens))
    }

    /// Clips, schedules and applies the update; returns the gradient norm and the learning rate.
    fn update(&mut self) -> crate::Result<(f64, f64)> {
        if self.is_lora() && self.grew() {
            // Only the new special-token rows of the embeddings learn.
            let _g = tch::no_grad_guard();
            for (_, w) in self.setup.model.token_matrices() {
                let g = w.grad();
                if g.defined() {
                    let _ = g.narrow(0, 0, self.setup.old_vocab).f_zero_();
                }
            }
        }
        self.sync_grads()?;
        let unscale = 1.0 / self.scaler.as_ref().map_or(1.0, |s| s.scale);
        let grad_norm = self.clip(unscale)?;
        let cur_lr = lr_at(self.step, self.lr, self.min_lr, self.s.opt.warmup.min(self.total / 2), self.total);
        if self.scaler.as_mut().is_none_or(|s| s.update(grad_norm)) {
            self.opt.step(cur_lr);
            self.gather_weights()?;
        } else {
            // fp16 overflow: skip this update (the scale was halved), as torch's GradScaler does.
            self.opt.zero_grad();
        }
        Ok((grad_norm, cur_lr))
    }

    /// Evaluates when due, records the result, and tracks the best weights for early stopping.
    fn maybe_evaluate(&mut self, rec: &mut serde_json::Value, loss: f64, cur_lr: f64, tps: f64) -> crate::Result<()> {
        let (s, step, total) = (self.s, self.step, self.total);
        let due = step % s.opt.eval_every.max(1) == 0 || step == total;
        if self.setup.val.is_empty() || !due {
            if !self.console.progress && !self.console.quiet && (step % s.opt.eval_every.max(1) == 0 || step == 1) {
                self.console.say(format!("{TOOL}: step {step}/{total} loss {loss:.4} lr {cur_lr:.2e} {tps:.0} tok/s"));
            }
            return Ok(());
        }
        let vl = if s.dpo.is_some() {
            let m = self.dpo_eval()?;
            rec["val_loss"] = json!(m.loss());
            m.put(rec, "val_");
            if !self.console.progress {
                self.console.say(format!(
                    "{TOOL}: step {step}/{total} loss {loss:.4} val {:.4} reward accuracy {:.2} margin {:.4}",
                    m.loss(),
                    m.accuracy(),
                    m.margin()
                ));
            }
            let l = m.loss();
            self.dpo_val = Some(m);
            l
        } else {
            let vl = self.eval_loss()?;
            rec["val_loss"] = json!(vl);
            rec["val_ppl"] = json!(vl.exp());
            if !self.console.progress {
                self.console
                    .say(format!("{TOOL}: step {step}/{total} loss {loss:.4} val {vl:.4} (ppl {:.2})", vl.exp()));
            }
            vl
        };
        self.val_curve.push((step, vl));
        if vl < self.best_val {
            self.best_val = vl;
            self.bad_evals = 0;
            if s.opt.early_stopping > 0 {
                self.best_weights = Some(
                    output::trainable_tensors(&self.setup.model).into_iter().map(|(n, t)| (n, t.copy())).collect(),
                );
            }
        } else {
            self.bad_evals += 1;
        }
        Ok(())
    }
}

/// The shuffle of the current epoch, computed once per epoch.
struct Order {
    epoch: u64,
    shuffle: data::Shuffle,
}

/// Tokens per second over a window of about 10 s.
struct Speed {
    tokens: i64,
    start: Instant,
}

impl Default for Speed {
    fn default() -> Self {
        Speed { tokens: 0, start: Instant::now() }
    }
}

impl Speed {
    fn add(&mut self, tokens: i64) -> f64 {
        self.tokens += tokens;
        let secs = self.start.elapsed().as_secs_f64();
        let tps = self.tokens as f64 / secs.max(1e-9);
        if secs > 10.0 {
            *self = Speed::default();
        }
        tps
    }
}
