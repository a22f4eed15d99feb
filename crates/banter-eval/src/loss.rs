//! `banter-eval loss`: per-sample and overall loss / perplexity of several models on the same samples, on
//! the tokens training scores.

use banter_core::records::Sample;
use serde::Serialize;

use crate::model::{Candidate, LoadSettings, Loaded, Nll};

/// One sample to score, and where it came from.
#[derive(Debug, Clone)]
pub struct Scored {
    /// `file:line`.
    pub at: String,
    /// The sample.
    pub sample: Sample,
}

/// One model's losses.
#[derive(Debug, Clone, Serialize)]
pub struct LossResult {
    /// `model` or `model + adapter`.
    pub name: String,
    /// The candidate.
    pub candidate: Candidate,
    /// Mean loss per scored token over all samples.
    pub loss: f64,
    /// exp(loss).
    pub perplexity: f64,
    /// Scored tokens.
    pub tokens: usize,
    /// Per sample: mean loss (null for a sample with no scored token).
    pub per_sample: Vec<Option<f64>>,
    /// The weights' precision.
    pub precision: String,
}

/// Scores every candidate on `samples`.
pub fn evaluate(
    candidates: &[Candidate],
    samples: &[Scored],
    load: &LoadSettings,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<LossResult>> {
    let mut out = Vec::new();
    for c in candidates {
        progress(&format!("{}: loading", c.name()));
        let m = Loaded::load(c, load)?;
        let mut total = Nll::default();
        let mut per = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            let l = m.loss(&s.sample).map_err(|e| banter_core::Error::usage(format!("{}: {e}", s.at)))?;
            total.sum += l.sum;
            total.tokens += l.tokens;
            per.push((l.tokens > 0).then(|| l.mean()));
            if i % 16 == 15 {
                progress(&format!("{}: {}/{} samples", c.name(), i + 1, samples.len()));
            }
        }
        if total.tokens == 0 {
            anyhow::bail!(banter_core::Error::usage(format!(
                "{}: no sample has a token to score (are the replies empty, or is the template's loss \"none\"?)",
                c.name()
            )));
        }
        out.push(LossResult {
            name: c.name(),
            candidate: c.clone(),
            loss: total.mean(),
            perplexity: total.mean().exp(),
            tokens: total.tokens,
            per_sample: per,
            precision: m.precision().to_string(),
        });
    }
    Ok(out)
}
