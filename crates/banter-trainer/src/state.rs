//! The state of a run between steps ([`Loop`]), what a run reports, and what every part of a step reads:
//! the optimizer over the trainable parameters, the metrics file, DPO's reference log-probs and running means.
//! The parts of a step live beside it by concern: `run` (the loop), `sft`, `dpo_step`, `checkpoint`,
//! `finish`; each adds its methods to [`Loop`] and imports only this module, so the crate has no import cycle.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use banter_core::Error;
use banter_model::Pass;
use banter_model::optim::AdamW;
use banter_model::precision::{LossScaler, Precision};

use crate::dpo::DpoOut;
use crate::settings::{Console, TrainSettings};
use crate::setup::Setup;
use crate::{TOOL, output, precision};

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Optimizer steps taken (resumed ones included).
    pub steps: i64,
    /// The last step's training loss.
    pub final_loss: f64,
    /// The best validation loss, when there was validation data.
    pub best_val_loss: Option<f64>,
    /// The validation loss before the first step (`eval_at_start`).
    pub initial_val_loss: Option<f64>,
    /// The validation loss of the weights written (the last evaluation's, or the best one's when early
    /// stopping restored it).
    pub last_val_loss: Option<f64>,
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
    /// The Hub datasets trained on (`user/name`), for a model card's `datasets`.
    pub datasets: Vec<String>,
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
    /// The process group of a distributed run.
    pub(crate) dist: Option<crate::dist::Dist>,
}

impl<'a> Loop<'a> {
    pub(crate) fn new(
        s: &'a TrainSettings,
        setup: Setup,
        device: Device,
        console: Console,
        fingerprint: String,
        dist: Option<crate::dist::Dist>,
    ) -> crate::Result<Self> {
        let mut dist = dist;
        let mut opt = match dist.as_mut().filter(|_| s.zero1) {
            // ZeRO-1: this rank's AdamW covers its share of the parameters only.
            Some(d) => {
                let (z, opt) = crate::zero::Zero1::new(
                    trainable(s, &setup),
                    &d.group,
                    (s.opt.beta1, s.opt.beta2, s.opt.weight_decay),
                )?;
                let (mine, all) = z.state_values();
                console.say(format!(
                    "{TOOL}: ZeRO-1: rank {} holds {:.2}M of the {:.2}M optimizer values ({:.0} MB)",
                    z.rank(),
                    mine as f64 / 1e6,
                    all as f64 / 1e6,
                    mine as f64 * 4.0 / 1e6
                ));
                d.zero = Some(z);
                opt
            }
            None => optimizer(s, &setup),
        };
        let world = dist.as_ref().map_or(1, |d| d.group.world());
        let lr = s.opt.lr.unwrap_or_else(|| s.default_lr());
        let micro = s.opt.batch_size.max(1);
        let units = setup.train.len() / if s.dpo.is_some() { 2 } else { 1 };
        let steps_per_epoch = units.div_ceil(micro * world * s.opt.grad_accum.max(1)) as i64;
        let total = s.opt.max_steps.unwrap_or(steps_per_epoch * s.opt.epochs.max(1) as i64).max(1);
        let resumed = s.resume.as_deref().map(|r| crate::checkpoint::resume_dir(&s.output, r));
        let main = dist.as_ref().is_none_or(|d| d.group.rank() == 0);
        let mut d = match precision::resumed(s.precision, resumed.as_ref().and_then(|r| r.as_deref())) {
            Some(d) => d,
            // Rank 0 probes; the others take its choice.
            None if !main => banter_model::precision::Decision {
                precision: Precision::Fp32,
                reason: "rank 0's choice".into(),
                needs_probe: false,
            },
            None => {
                precision::choose(s.precision, device, &setup.model, &mut opt, &setup.train, micro, setup.tok.pad_id)?
            }
        };
        if let Some(p) = Loop::agree_precision(dist.as_ref(), main.then_some(d.precision))? {
            d.precision = p;
        }
        console.say(format!("{TOOL}: precision {}: {}", d.precision, d.reason));
        let (compute, cuda_autocast) = precision::pass_kind(d.precision, device);
        let mut setup = setup;
        if compute == Kind::BFloat16 && setup.model.lora_vs().is_some() {
            // LoRA never trains the base: hold its matrices in bf16 once rather than cast them every pass.
            let grew = setup.model.vocab_size() > setup.old_vocab;
            setup.model.hold_frozen_base_in(Kind::BFloat16, grew);
        }
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
            dist,
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
}

/// Reference log-probs of the training and validation pairs, `[2N]` each (chosen, rejected, …), on the CPU.
pub(crate) struct Reference {
    pub train: Tensor,
    pub val: Tensor,
}

impl Reference {
    /// As a checkpoint stores them.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        vec![("train".into(), self.train.shallow_clone()), ("val".into(), self.val.shallow_clone())]
    }
}

/// Running means of a step's or an evaluation's DPO figures, weighted by pairs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Means {
    pairs: f64,
    loss: f64,
    margin: f64,
    accuracy: f64,
    chosen: f64,
    rejected: f64,
}

impl Means {
    pub(crate) fn add(&mut self, out: &DpoOut, pc: &Tensor, pr: &Tensor) {
        let n = pc.size()[0] as f64;
        self.pairs += n;
        self.loss += out.loss.double_value(&[]) * n;
        self.margin += out.margin() * n;
        self.accuracy += out.accuracy() * n;
        self.chosen += pc.mean(Kind::Float).double_value(&[]) * n;
        self.rejected += pr.mean(Kind::Float).double_value(&[]) * n;
    }

    /// The mean DPO loss.
    pub fn loss(&self) -> f64 {
        self.loss / self.pairs.max(1.0)
    }

    /// The mean reward accuracy.
    pub fn accuracy(&self) -> f64 {
        self.accuracy / self.pairs.max(1.0)
    }

    /// The mean reward margin.
    pub fn margin(&self) -> f64 {
        self.margin / self.pairs.max(1.0)
    }

    /// The sums, for adding across ranks.
    pub(crate) fn to_array(&self) -> [f64; 6] {
        [self.pairs, self.loss, self.margin, self.accuracy, self.chosen, self.rejected]
    }

    /// Back from [`Means::to_array`].
    pub(crate) fn from_array(a: &[f64]) -> Means {
        Means { pairs: a[0], loss: a[1], margin: a[2], accuracy: a[3], chosen: a[4], rejected: a[5] }
    }

    /// Writes the figures into a metrics record, each name after `prefix` (`""` or `"val_"`).
    pub fn put(&self, rec: &mut serde_json::Value, prefix: &str) {
        let d = self.pairs.max(1.0);
        rec[format!("{prefix}reward_margin")] = json!(self.margin / d);
        rec[format!("{prefix}reward_accuracy")] = json!(self.accuracy / d);
        rec[format!("{prefix}logps_chosen")] = json!(self.chosen / d);
        rec[format!("{prefix}logps_rejected")] = json!(self.rejected / d);
    }
}

/// Parameters (LoRA weights and new embedding rows, or everything) and their AdamW.
pub(crate) fn optimizer(s: &TrainSettings, setup: &Setup) -> AdamW {
    AdamW::new(trainable(s, setup), s.opt.beta1, s.opt.beta2, 1e-8, s.opt.weight_decay)
}

/// The trained parameters `(name, tensor, decay)`, sorted by name (the same order on every rank).
pub(crate) fn trainable(_s: &TrainSettings, setup: &Setup) -> Vec<(String, Tensor, bool)> {
    let model = &setup.model;
    let mut params: Vec<(String, Tensor, bool)> = Vec::new();
    match model.lora_vs() {
        Some(vs) => {
            for (n, t) in vs.variables() {
                params.push((n, t, false));
            }
            if model.vocab_size() > setup.old_vocab {
                for (n, w) in model.token_matrices() {
                    params.push((n.into(), w.set_requires_grad(true), false));
                }
            }
        }
        None => {
            for (n, t) in model.vs().variables() {
                // No decay on biases, norms and position tables (GPT-2's wpe, OPT's embed_positions).
                let decay = t.dim() >= 2 && !n.contains("wpe") && !n.contains("embed_positions");
                params.push((n, t, decay));
            }
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

/// metrics.jsonl for appending; a resumed run first drops lines past its step.
pub(crate) fn open_metrics(path: &Path, step: i64) -> crate::Result<File> {
    if step > 0 {
        output::truncate_metrics(path, step)?;
    }
    Ok(std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path.display(), e))?)
}
