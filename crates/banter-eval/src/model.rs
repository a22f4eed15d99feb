//! A model under evaluation: loaded as `banter-chat` loads it (base + adapter merged, the template stored
//! with it), scored on samples with the training's loss masks, and asked for replies.

use std::path::{Path, PathBuf};

use banter_core::records::{Sample, Turn};
use banter_engine::{Engine, Weights};
use banter_model::Pass;
use banter_model::generate::Sampling;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// One model to evaluate: a base, or a base with an adapter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The model folder.
    pub model: PathBuf,
    /// The PEFT adapter on it, if any.
    pub adapter: Option<PathBuf>,
}

impl Candidate {
    /// `model` or `model + adapter`, for reports.
    pub fn name(&self) -> String {
        match &self.adapter {
            Some(a) => format!("{} + {}", self.model.display(), a.display()),
            None => self.model.display().to_string(),
        }
    }

    /// `--better-than DIR`: an adapter folder (it has `adapter_config.json`) goes on `base`; any other
    /// folder is a model of its own.
    pub fn from_dir(dir: &Path, base: &Path) -> Candidate {
        if dir.join("adapter_config.json").exists() {
            Candidate { model: base.to_path_buf(), adapter: Some(dir.to_path_buf()) }
        } else {
            Candidate { model: dir.to_path_buf(), adapter: None }
        }
    }
}

/// How models are loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadSettings {
    /// Precision / quantisation of the weights (as `banter-chat`'s flags).
    pub weights: Weights,
    /// `--template`, overriding the model's own.
    pub template: Option<String>,
}

/// A loaded candidate.
#[derive(Debug)]
pub struct Loaded {
    engine: Engine,
}

/// The summed loss and token count of a sample (tokens that carry loss, as in training).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Nll {
    /// Σ −log p over the scored tokens.
    pub sum: f64,
    /// Scored tokens.
    pub tokens: usize,
}

impl Nll {
    /// Mean loss per token (NaN with no tokens).
    pub fn mean(&self) -> f64 {
        if self.tokens == 0 { f64::NAN } else { self.sum / self.tokens as f64 }
    }
}

impl Loaded {
    /// Loads `c` on the CPU.
    pub fn load(c: &Candidate, s: &LoadSettings) -> anyhow::Result<Loaded> {
        let engine = Engine::load(&c.model, c.adapter.as_deref(), Device::Cpu, s.weights, s.template.as_deref())?;
        Ok(Loaded { engine })
    }

    /// The loss of `sample` on the tokens training would score (the template's loss spans), the text cut to
    /// the model's context from the left (the reply is at the end). An error names what the template or
    /// tokenizer refused.
    pub fn loss(&self, sample: &Sample) -> Result<Nll, String> {
        let e = banter_encode::encode::encode_sample(&self.engine.tok, &self.engine.template, sample)
            .map_err(|e| e.to_string())?;
        let ctx = self.engine.model.n_positions() as usize;
        let from = e.ids.len().saturating_sub(ctx);
        let ids: Vec<i64> = e.ids[from..].iter().map(|&i| i as i64).collect();
        let labels: Vec<i64> = e.labels[from..].to_vec();
        if ids.len() < 2 || labels[1..].iter().all(|&l| l == banter_core::records::IGNORE_INDEX) {
            return Ok(Nll::default());
        }
        let _g = tch::no_grad_guard();
        let ids = Tensor::from_slice(&ids).view([1, -1]);
        let labels = Tensor::from_slice(&labels).view([1, -1]);
        let pass = Pass { train: false, compute: self.engine.compute };
        let (loss, n) = self.engine.model.loss(&ids, &labels, pass);
        let mean = loss.to_kind(Kind::Double).double_value(&[]);
        Ok(Nll { sum: mean * n as f64, tokens: n as usize })
    }

    /// A reply to `turns` (the last one another speaker's), sampled as `s` says.
    pub fn reply(&self, turns: &[Turn], s: &Sampling) -> Result<String, String> {
        let (out, _) = self.engine.reply(turns, s, &[], &mut |_| true).map_err(|e| e.to_string())?;
        Ok(out.text)
    }

    /// Replies to several conversations in one batch (each weight read once per step for all of them);
    /// conversation `i` is sampled with `seeds[i]`, as [`Loaded::reply`] would sample it alone.
    pub fn reply_batch(&self, convs: &[Vec<Turn>], s: &Sampling, seeds: &[u64]) -> Vec<Result<String, String>> {
        self.engine
            .reply_batch(convs, s, seeds, &[])
            .into_iter()
            .map(|r| r.map(|o| o.text).map_err(|e| e.to_string()))
            .collect()
    }

    /// Plain text continuation (no template), for question answering on a model trained on documents.
    pub fn complete(&self, prompt: &str, s: &Sampling) -> String {
        self.engine.complete(prompt, s, &["\n".to_string()], &mut |_| true).text.trim().to_string()
    }

    /// The weights' precision and why.
    pub fn precision(&self) -> &str {
        &self.engine.precision
    }
}
