//! The end of a run (the model or adapter, tokenizer files, loss plot, the sample) and the pieces a run
//! starts with (the optimizer over the trainable parameters, the metrics file).

use std::fs::File;
use std::path::Path;

use tch::Tensor;

use banter_core::Error;
use banter_model::generate::{self, Sampling};
use banter_model::optim::AdamW;

use crate::output;
use crate::run::{Loop, Outcome, TrainReport};
use crate::run_dpo::Means;
use crate::settings::TrainSettings;
use crate::setup::Setup;

impl Loop<'_> {
    /// The model (or adapter), tokenizer files and loss plot.
    pub(crate) fn export(mut self, seconds: f64) -> anyhow::Result<Outcome> {
        let out = self.s.output.clone();
        if let Some(best) = self.best_weights.take() {
            output::restore_tensors(&mut self.setup.model, &best)?;
        }
        let Setup { model, tok, template, base_name, quality, .. } = &self.setup;
        if self.is_lora() {
            let extra: Vec<(String, Tensor)> = if self.grew() {
                model.token_matrices().into_iter().map(|(n, w)| (n.to_string(), w)).collect()
            } else {
                vec![]
            };
            model.save_adapter(&out, base_name, &extra)?;
        } else {
            model.save(&out)?;
        }
        output::write_tokenizer_files(&out, &tok.inner, template, model.n_positions(), tok.eos_id)?;
        std::fs::write(out.join("loss.svg"), output::loss_svg(&self.train_curve, &self.val_curve))
            .map_err(|e| Error::io(out.display(), e))?;
        let sample = self.s.sample_prompt.as_deref().map(|p| self.sample(p));
        Ok(Outcome::Trained(TrainReport {
            steps: self.step,
            final_loss: self.last_loss,
            best_val_loss: self.best_val.is_finite().then_some(self.best_val),
            seconds,
            lora: self.is_lora(),
            precision: self.precision.as_str(),
            precision_reason: self.precision_reason.clone(),
            data_quality: *quality,
            output: out,
            sample,
            added_tokens: self.setup.added_tokens.clone(),
            vocab_size: self.setup.model.vocab_size(),
            reward_accuracy: self.dpo_val.as_ref().map(Means::accuracy),
            reward_margin: self.dpo_val.as_ref().map(Means::margin),
        }))
    }

    /// The trained model's continuation of `prompt` (sampled, seeded by `--seed`).
    fn sample(&self, prompt: &str) -> String {
        let Setup { model, tok, .. } = &self.setup;
        let mut ids = tok.inner.encode(prompt, false).map(|e| e.get_ids().to_vec()).unwrap_or_default();
        if ids.is_empty() {
            ids.push(tok.eos_id);
        }
        let s = Sampling { max_new_tokens: self.s.sample_tokens, seed: self.s.opt.seed, ..Sampling::default() };
        let decode = |i: &[u32]| tok.inner.decode(i, false).unwrap_or_default();
        generate::generate_with(&mut *model.stepper(), &ids, &s, &[tok.eos_id], &[], &decode, &mut |_| true).text
    }
}

/// Parameters (LoRA weights and new embedding rows, or everything) and their AdamW.
pub(crate) fn optimizer(s: &TrainSettings, setup: &Setup) -> AdamW {
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
    AdamW::new(params, s.opt.beta1, s.opt.beta2, 1e-8, s.opt.weight_decay)
}

/// metrics.jsonl for appending; a resumed run first drops lines past its step.
pub(crate) fn open_metrics(path: &Path, step: i64) -> anyhow::Result<File> {
    if step > 0 {
        output::truncate_metrics(path, step)?;
    }
    Ok(std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path.display(), e))?)
}
