//! Checkpoints of a run: writing one (weights, optimizer state, DPO reference, the run's fingerprint) and
//! resuming from one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;
use tch::Tensor;

use banter_core::exit::Coded;
use banter_core::{Error, Exit};

use banter_model::io;

use crate::state::Loop;
use crate::{TOOL, output};

/// The checkpoint `--resume r` names: `r` itself, or (empty) the newest in `out`.
pub(crate) fn resume_dir(out: &std::path::Path, r: &str) -> Option<PathBuf> {
    if r.is_empty() { output::checkpoints(out).pop().map(|c| c.1) } else { Some(PathBuf::from(r)) }
}

impl Loop<'_> {
    /// Restores weights, optimizer state and the step from a checkpoint.
    pub(crate) fn resume(&mut self, r: &str) -> crate::Result<()> {
        let out = &self.s.output;
        let dir = resume_dir(out, r)
            .ok_or_else(|| Error::usage(format!("--resume: no checkpoint-* in {}", out.display())))?;
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
        let loaded = match self.dist.as_ref().and_then(|d| d.zero.as_ref()) {
            Some(z) => z.load_state(&mut self.opt, &state, self.step),
            None => self.opt.load_state(&state, self.step),
        };
        loaded.map_err(|e| Coded::new(Exit::BadInput, format!("{}: {e}", dir.display())))?;
        let reference = dir.join(output::DPO_REFERENCE);
        if self.s.dpo.is_some() && reference.exists() {
            self.restore_reference(io::read_safetensors(&reference, self.device)?, &dir)?;
        }
        self.console.say(format!("{TOOL}: resumed from {} at step {}", dir.display(), self.step));
        Ok(())
    }

    pub(crate) fn checkpoint(&self) -> crate::Result<PathBuf> {
        // Every rank takes part in gathering a sharded optimizer state; rank 0 writes.
        let optim = self.optimizer_state()?;
        if !self.is_main() {
            // Rank 0 writes the checkpoint every rank resumes from.
            return Ok(self.s.output.join(format!("checkpoint-{}", self.step)));
        }
        let bv = if self.best_val.is_finite() { json!(self.best_val) } else { json!(null) };
        let loss = if self.last_loss.is_finite() { json!(self.last_loss) } else { json!(null) };
        let state = json!({"step": self.step, "seed": self.s.opt.seed, "best_val_loss": bv, "loss": loss,
            crate::rundir::FINGERPRINT_KEY: self.fingerprint, "banter": banter_core::VERSION,
            "precision": self.precision.as_str(), "precision_reason": self.precision_reason});
        Ok(output::write_checkpoint(
            &self.s.output,
            self.step,
            &self.setup.model,
            &optim,
            self.dpo_ref.as_ref().map(|r| r.tensors()).as_deref(),
            &state,
            self.s.save_total_limit.max(1),
        )?)
    }
}
