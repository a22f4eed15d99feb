//! The training loop: optimizer, resume, steps with gradient accumulation, evaluation and early stopping,
//! checkpoints, and the final Hugging Face / PEFT output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;
use tch::{Device, Tensor};

use banter_core::exit::Coded;
use banter_core::records::Block;
use banter_core::{CancelToken, Error, Exit, progress};
use banter_model::gpt2::Pass;
use banter_model::optim::{AdamW, lr_at};
use banter_model::precision::{LossScaler, Precision};
use banter_model::{ModelError, io};

use crate::run_dpo::{Means, Reference};
use crate::run_end::{open_metrics, optimizer};
use crate::settings::{Console, TrainSettings};
use crate::setup::{Setup, setup};
use crate::{TOOL, data, output, precision};

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Optimizer steps taken (resumed ones included).
    pub steps: i64,
    /// The last step's training loss.
    pub final_loss: f64,
    /// The best validation loss, when there was validation data.
    pub best_val_loss: Option<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// True for an adapter.
    pub lora: bool,
    /// The precision used.
    pub precision: &'static str,
    /// Why that precision.
    pub precision_reason: String,
    /// The quality gate's score of the sample inputs.
    pub data_quality: Option<f64>,
    /// The output directory.
    pub output: PathBuf,
    /// The continuation of `sample_prompt`, when one was asked for.
    pub sample: Option<String>,
    /// Special tokens added to the vocabulary (the data uses them): a PEFT user resizes the base to
    /// `vocab_size` before loading the adapter.
    pub added_tokens: Vec<String>,
    /// The trained model's vocabulary size.
    pub vocab_size: i64,
    /// DPO: the last evaluation's reward accuracy (share of pairs whose chosen reply gained more).
    pub reward_accuracy: Option<f64>,
    /// DPO: the last evaluation's mean reward margin.
    pub reward_margin: Option<f64>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Trained; the model or adapter is in the output directory.
    Trained(TrainReport),
    /// Cancelled: a checkpoint was saved at `step` in `checkpoint` (continue with `resume`).
    Cancelled {
        /// The step reached.
        step: i64,
        /// The checkpoint directory.
        checkpoint: PathBuf,
    },
}

/// Trains as `s` says. Work stops at the next step once `cancel` is cancelled, after a checkpoint.
pub fn train(s: &TrainSettings, console: Console, cancel: &CancelToken) -> anyhow::Result<Outcome> {
    if s.inputs.is_empty() {
        return Err(Error::usage_hint("no training data", "give blocks or samples JSONL files").into());
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
    banter_core::inputs::check_output_path(&s.output)?;
    let fingerprint = crate::rundir::fingerprint(s)?;
    let mut s = s.clone();
    s.resume = crate::rundir::prepare(&s, &fingerprint, console)?;
    let s = &s;
    let device = s.device.resolve()?;
    let setup = setup(s, device, console)?;
    let mut l = Loop::new(s, setup, device, console, fingerprint)?;
    l.ensure_reference()?;
    l.run(cancel)
}

/// The state of a run between steps.
pub(crate) struct Loop<'a> {
    pub(crate) s: &'a TrainSettings,
    pub(crate) console: Console,
    pub(crate) device: Device,
    pub(crate) setup: Setup,
    pub(crate) opt: AdamW,
    pub(crate) lr: f64,
    pub(crate) min_lr: f64,
    pub(crate) total: i64,
    pub(crate) pass: Pass,
    pub(crate) cuda_autocast: bool,
    pub(crate) scaler: Option<LossScaler>,
    pub(crate) precision: Precision,
    pub(crate) precision_reason: String,
    pub(crate) step: i64,
    pub(crate) best_val: f64,
    pub(crate) bad_evals: usize,
    pub(crate) train_curve: Vec<(i64, f64)>,
    pub(crate) val_curve: Vec<(i64, f64)>,
    pub(crate) best_weights: Option<Vec<(String, Tensor)>>,
    pub(crate) last_loss: f64,
    /// DPO: the reference log-probs, and the current step's figures.
    pub(crate) dpo_ref: Option<Reference>,
    pub(crate) dpo_step: Means,
    /// DPO: the last evaluation's figures.
    pub(crate) dpo_val: Option<Means>,
    /// The run's fingerprint, recorded in each checkpoint ([`crate::rundir`]).
    pub(crate) fingerprint: String,
}

impl<'a> Loop<'a> {
    pub(crate) fn new(
        s: &'a TrainSettings,
        setup: Setup,
        device: Device,
        console: Console,
        fingerprint: String,
    ) -> anyhow::Result<Self> {
        let mut opt = optimizer(s, &setup);
        let lr = s.opt.lr.unwrap_or_else(|| s.default_lr());
        let micro = s.opt.batch_size.max(1);
        let units = setup.train.len() / if s.dpo.is_some() { 2 } else { 1 };
        let steps_per_epoch = units.div_ceil(micro * s.opt.grad_accum.max(1)) as i64;
        let total = s.opt.max_steps.unwrap_or(steps_per_epoch * s.opt.epochs.max(1) as i64).max(1);
        let d = precision::choose(s.precision, device, &setup.model, &mut opt, &setup.train, micro, setup.tok.pad_id)?;
        console.say(format!("{TOOL}: precision {}: {}", d.precision, d.reason));
        let (compute, cuda_autocast) = precision::pass_kind(d.precision, device);
        let mut l = Loop {
            s,
            console,
            device,
            opt,
            lr,
            min_lr: s.opt.min_lr.unwrap_or(lr / 10.0),
            total,
            pass: Pass { train: true, compute },
            cuda_autocast,
            scaler: (d.precision == Precision::Fp16).then(LossScaler::default),
            precision: d.precision,
            precision_reason: d.reason,
            step: 0,
            best_val: f64::INFINITY,
            bad_evals: 0,
            train_curve: Vec::new(),
            val_curve: Vec::new(),
            best_weights: None,
            last_loss: f64::NAN,
            setup,
            dpo_ref: None,
            dpo_step: Means::default(),
            dpo_val: None,
            fingerprint,
        };
        if let Some(r) = &s.resume {
            l.resume(r)?;
        }
        Ok(l)
    }

    pub(crate) fn is_lora(&self) -> bool {
        self.setup.model.lora_vs().is_some()
    }

    pub(crate) fn grew(&self) -> bool {
        self.setup.model.vocab_size() > self.setup.old_vocab
    }

    /// Restores weights, optimizer state and the step from a checkpoint.
    fn resume(&mut self, r: &str) -> anyhow::Result<()> {
        let out = &self.s.output;
        let dir = if r.is_empty() {
            output::checkpoints(out)
                .pop()
                .map(|c| c.1)
                .ok_or_else(|| Error::usage(format!("--resume: no checkpoint-* in {}", out.display())))?
        } else {
            PathBuf::from(r)
        };
        let saved = io::read_safetensors(&dir.join("model.safetensors"), self.device)?;
        output::restore_tensors(&mut self.setup.model, &saved)?;
        let st: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("trainer_state.json")).map_err(|e| Error::io(dir.display(), e))?,
        )?;
        self.step = st["step"].as_i64().unwrap_or(0);
        crate::rundir::check_step(self.step, self.total, &dir)?;
        self.best_val = st["best_val_loss"].as_f64().unwrap_or(f64::INFINITY);
        self.last_loss = st["loss"].as_f64().unwrap_or(f64::NAN);
        let state: BTreeMap<String, Tensor> =
            io::read_safetensors(&dir.join("optimizer.safetensors"), self.device)?.into_iter().collect();
        self.opt
            .load_state(&state, self.step)
            .map_err(|e| Coded::new(Exit::BadInput, format!("{}: {e}", dir.display())))?;
        let reference = dir.join(output::DPO_REFERENCE);
        if self.s.dpo.is_some() && reference.exists() {
            self.restore_reference(io::read_safetensors(&reference, self.device)?, &dir)?;
        }
        self.console.say(format!("{TOOL}: resumed from {} at step {}", dir.display(), self.step));
        Ok(())
    }

    fn run(mut self, cancel: &CancelToken) -> anyhow::Result<Outcome> {
        let out = self.s.output.clone();
        std::fs::create_dir_all(&out).map_err(|e| Error::io(out.display(), e))?;
        output::remove_stale_temps(&out);
        let metrics_path = out.join("metrics.jsonl");
        let mut metrics = open_metrics(&metrics_path, self.step)?;
        self.announce();
        let bar = progress::bar_if(self.console.progress, Some(self.total as u64), "training");
        bar.set_position(self.step as u64);
        let started = Instant::now();
        let mut speed = Speed::default();
        let micro = self.s.opt.batch_size.max(1);
        let mut order = Order { epoch: u64::MAX, shuffle: data::Shuffle::new(0, 0, 0) };
        let mut cancelled = false;
        while self.step < self.total {
            if cancel.is_cancelled() {
                cancelled = true;
                break;
            }
            let (loss_sum, tokens) = self.accumulate(&mut order, micro)?;
            let (grad_norm, cur_lr) = self.update();
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
            writeln!(metrics, "{rec}").map_err(|e| Error::io(metrics_path.display(), e))?;
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
            "{TOOL}: {:.1}M parameters{}, {} training {unit}, {} validation, {} steps of {}×{} {unit}, lr {:e}, {} on {:?}",
            m.num_params() as f64 / 1e6,
            if self.is_lora() { " (LoRA)" } else { "" },
            self.setup.train.len() / per,
            self.setup.val.len() / per,
            self.total,
            self.s.opt.batch_size.max(1),
            self.s.opt.grad_accum.max(1),
            self.lr,
            self.precision.as_str(),
            self.device
        ));
    }

    /// Forward and backward over the micro-batches of one step; returns the mean loss and the tokens.
    fn accumulate(&mut self, order: &mut Order, micro: usize) -> anyhow::Result<(f64, i64)> {
        let accum = self.s.opt.grad_accum.max(1);
        let train = &self.setup.train;
        let dpo = self.s.dpo.is_some();
        let units = train.len() / if dpo { 2 } else { 1 };
        let per_epoch_micro = units.div_ceil(micro);
        let (mut loss_sum, mut tokens) = (0.0f64, 0i64);
        for a in 0..accum {
            let global_micro = (self.step as usize) * accum + a;
            let epoch = (global_micro / per_epoch_micro) as u64;
            let pos = global_micro % per_epoch_micro;
            if order.epoch != epoch {
                *order = Order { epoch, shuffle: data::Shuffle::new(units, self.s.opt.seed, epoch) };
            }
            let picked: Vec<usize> =
                (pos * micro..((pos + 1) * micro).min(units)).map(|j| order.shuffle.get(j)).collect();
            // Dropout is seeded per micro-batch, so a resumed run draws the same masks.
            tch::manual_seed((self.s.opt.seed as i64).wrapping_mul(1_000_003).wrapping_add(global_micro as i64));
            let loss_mul = self.scaler.as_ref().map_or(1.0, |s| s.scale) / accum as f64;
            let (l, n) = if dpo { self.dpo_micro(&picked, loss_mul)? } else { self.sft_micro(&picked, loss_mul)? };
            if !l.is_finite() {
                let _ = self.checkpoint();
                return Err(Coded::new(
                    Exit::Model,
                    format!("the loss became {l} at step {}; lower --lr (a checkpoint was saved)", self.step),
                )
                .into());
            }
            loss_sum += l / accum as f64;
            tokens += n;
        }
        Ok((loss_sum, tokens))
    }

    /// Forward and backward of one micro-batch of blocks; returns the mean loss and the tokens.
    fn sft_micro(&self, picked: &[usize], loss_mul: f64) -> anyhow::Result<(f64, i64)> {
        {
            let owned = self.setup.train.fetch(picked.iter().copied())?;
            let idx: Vec<&Block> = owned.iter().collect();
            let (ids, labels, n) = data::batch(&idx, self.setup.tok.pad_id, self.device);
            let (model, pass) = (&self.setup.model, self.pass);
            let (l, _) = if self.cuda_autocast {
                tch::autocast(true, || model.loss_backward(&ids, &labels, pass, loss_mul))
            } else {
                model.loss_backward(&ids, &labels, pass, loss_mul)
            };
            Ok((l, n))
        }
    }

    /// Clips, schedules and applies the update; returns the gradient norm and the learning rate.
    fn update(&mut self) -> (f64, f64) {
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
        let unscale = 1.0 / self.scaler.as_ref().map_or(1.0, |s| s.scale);
        let grad_norm = self.opt.clip_grad_norm_scaled(self.s.opt.clip, unscale);
        let cur_lr = lr_at(self.step, self.lr, self.min_lr, self.s.opt.warmup.min(self.total / 2), self.total);
        if self.scaler.as_mut().is_none_or(|s| s.update(grad_norm)) {
            self.opt.step(cur_lr);
        } else {
            // fp16 overflow: skip this update (the scale was halved), as torch's GradScaler does.
            self.opt.zero_grad();
        }
        (grad_norm, cur_lr)
    }

    /// Evaluates when due, records the result, and tracks the best weights for early stopping.
    fn maybe_evaluate(&mut self, rec: &mut serde_json::Value, loss: f64, cur_lr: f64, tps: f64) -> anyhow::Result<()> {
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

    fn eval_loss(&self) -> anyhow::Result<f64> {
        let _g = tch::no_grad_guard();
        let val = &self.setup.val;
        let n = if self.s.opt.eval_blocks == 0 { val.len() } else { self.s.opt.eval_blocks.min(val.len()) };
        let (mut total, mut count) = (0.0f64, 0i64);
        let bs = self.s.opt.batch_size.max(1);
        for start in (0..n).step_by(bs) {
            let chunk = val.fetch(start..(start + bs).min(n))?;
            let refs: Vec<&Block> = chunk.iter().collect();
            let (ids, labels, _) = data::batch(&refs, self.setup.tok.pad_id, self.device);
            let (loss, k) = self.setup.model.loss(&ids, &labels, Pass { train: false, ..self.pass });
            if k > 0 {
                total += loss.double_value(&[]) * k as f64;
                count += k;
            }
        }
        Ok(if count == 0 { f64::NAN } else { total / count as f64 })
    }

    fn checkpoint(&self) -> Result<PathBuf, ModelError> {
        let bv = if self.best_val.is_finite() { json!(self.best_val) } else { json!(null) };
        let loss = if self.last_loss.is_finite() { json!(self.last_loss) } else { json!(null) };
        let state = json!({"step": self.step, "seed": self.s.opt.seed, "best_val_loss": bv, "loss": loss,
            crate::rundir::FINGERPRINT_KEY: self.fingerprint, "banter": banter_core::VERSION});
        output::write_checkpoint(
            &self.s.output,
            self.step,
            &self.setup.model,
            &self.opt.state(),
            self.dpo_ref.as_ref().map(|r| r.tensors()).as_deref(),
            &state,
            self.s.save_total_limit.max(1),
        )
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
