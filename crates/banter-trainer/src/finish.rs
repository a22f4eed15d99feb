//! The end of a run: the model or adapter, tokenizer files, loss plot, and the sample.

use tch::Tensor;

use banter_core::Error;
use banter_model::generate::{self, Sampling};
use banter_model::io;

use crate::output;
use crate::setup::Setup;
use crate::state::{Loop, Means, Outcome, TrainReport};

impl Loop<'_> {
    /// The model (or adapter), tokenizer files and loss plot.
    pub(crate) fn export(mut self, seconds: f64) -> crate::Result<Outcome> {
        // The bf16 working copies are done with: release them (and the masters they hold).
        banter_model::castcache::invalidate();
        let out = self.s.output.clone();
        if let Some(best) = self.best_weights.take() {
            output::restore_tensors(&mut self.setup.model, &best)?;
        }
        let Setup { model, tok, template, base_name, quality, .. } = &self.setup;
        let main = self.is_main();
        if !main {
            // Rank 0 writes the output.
        } else if self.is_lora() {
            let extra: Vec<(String, Tensor)> = if self.grew() {
                model.token_matrices().into_iter().map(|(n, w)| (n.to_string(), w)).collect()
            } else {
                vec![]
            };
            model.save_adapter(&out, base_name, &extra)?;
        } else {
            model.save(&out)?;
        }
        if main {
            output::write_tokenizer_files(&out, &tok.inner, template, model.n_positions(), tok.eos_id)?;
            std::fs::write(out.join("loss.svg"), output::loss_svg(&self.train_curve, &self.val_curve))
                .map_err(|e| Error::io(out.display(), e))?;
            if let Some(split) = &self.setup.holdout {
                crate::holdout::record(split, &out)?;
            }
        }
        let sample = self.s.sample_prompt.as_deref().filter(|_| main).map(|p| self.sample(p));
        let report = TrainReport {
            steps: self.step,
            final_loss: self.last_loss,
            best_val_loss: self.best_val.is_finite().then_some(self.best_val),
            initial_val_loss: self.val_curve.first().filter(|v| v.0 == 0).map(|v| v.1),
            last_val_loss: if self.s.opt.early_stopping > 0 && self.best_val.is_finite() {
                Some(self.best_val)
            } else {
                self.val_curve.last().filter(|v| v.0 > 0).map(|v| v.1)
            },
            seconds,
            lora: self.is_lora(),
            precision: self.precision.as_str(),
            precision_reason: self.precision_reason.clone(),
            data_quality: *quality,
            output: out.clone(),
            sample,
            added_tokens: self.setup.added_tokens.clone(),
            vocab_size: self.setup.model.vocab_size(),
            reward_accuracy: self.dpo_val.as_ref().map(Means::accuracy),
            reward_margin: self.dpo_val.as_ref().map(Means::margin),
            datasets: self
                .s
                .hub_data
                .iter()
                .map(|(name, _)| name.split([':', '@']).next().unwrap_or(name).to_string())
                .collect(),
        };
        // The report beside the weights: what the model card of an upload says about the training.
        if main {
            io::write_json(&out.join("train_report.json"), &serde_json::to_value(&report).unwrap_or_default())?;
        }
        Ok(Outcome::Trained(report))
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
