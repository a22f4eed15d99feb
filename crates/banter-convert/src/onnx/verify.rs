//! `--verify`: the exported graph, run by onnxruntime (through a Python that has it), against banter's own
//! forward pass and greedy decoding on the same prompts:
//! - each prompt's logits at every position, within `tolerance` × max(1, the largest |logit|);
//! - the same tokens fed in two calls over the graph's KV cache, and two prompts in one left-padded batch,
//!   against the single full pass (the cache and mask inputs work);
//! - greedy decoding for `steps` tokens with the KV cache, token for token equal to banter's.
//!
//! int8 graphs are not held to fp32's bounds: their logits may differ by a few percent, so only a
//! relative bound of 0.15 gates and the greedy agreement is reported.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::{ConvertError, Source};

const SCRIPT: &str = include_str!("verify.py");

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    /// The Python with onnxruntime (default: `BANTER_PYTHON`, else `python3`, if it has onnxruntime).
    pub python: Option<PathBuf>,
    /// The bound on logits, relative to max(1, largest |logit|).
    pub tolerance: f64,
    /// Greedy tokens compared.
    pub steps: usize,
    /// The graph has int8 weights.
    pub int8: bool,
}

/// What the check found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Prompts compared.
    pub prompts: usize,
    /// Largest |banter − onnxruntime| over every logit of every prompt.
    pub max_abs_diff: f64,
    /// The bound it was held to.
    pub bound: f64,
    /// Largest |difference| between a split, cached run and the full pass.
    pub cached_max_abs_diff: f64,
    /// Largest |difference| between a left-padded batch and single runs.
    pub batch_max_abs_diff: f64,
    /// Greedy tokens compared.
    pub greedy_steps: usize,
    /// Of them, equal to banter's (in order, up to the first difference).
    pub greedy_agree: usize,
    /// onnxruntime's version.
    pub onnxruntime: String,
}

fn read_f32(p: &Path) -> Result<Vec<f32>, ConvertError> {
    let b = std::fs::read(p).map_err(|e| ConvertError::io(p, e))?;
    Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Checks the export in `dir` against `src`.
pub fn verify(src: &Source, dir: &Path, s: &VerifySettings) -> Result<VerifyReport, ConvertError> {
    let py = match &s.python {
        Some(p) => p.clone(),
        None => crate::pycheck::python_with("onnxruntime", "pip install onnxruntime numpy")?,
    };
    let (vocab, shape) = (src.lm.vocab_size(), super::decoder::Shape::of(&src.lm));
    let ps = crate::check_prompts(vocab.min(shape.vocab));
    let work = crate::pycheck::work_dir()?;
    let req = serde_json::json!({
        "model": dir.join("model.onnx"), "prompts": ps, "steps": s.steps, "out": work.path(),
        "layers": shape.layers, "kv_heads": shape.kv_heads, "head_dim": shape.head_dim,
        "threads": tch::get_num_threads(),
    });
    crate::pycheck::run(&py, SCRIPT, &req, work.path(), "onnxruntime")?;
    let res = crate::pycheck::read_json(&work.path().join("result.json"))?;
    let (mut diff, mut top) = (0f64, 0f64);
    for (i, p) in ps.iter().enumerate() {
        let ids = Tensor::from_slice(p).view([1, p.len() as i64]);
        let ours: Vec<f32> = Vec::try_from(src.lm.logits(&ids).to_kind(Kind::Float).reshape([-1]))
            .map_err(|e: tch::TchError| ConvertError::Format(e.to_string()))?;
        let theirs = read_f32(&work.path().join(format!("logits{i}.f32")))?;
        if theirs.len() != ours.len() {
            return Err(ConvertError::Mismatch(format!(
                "prompt {i}: onnxruntime gave {} logits, banter {}",
                theirs.len(),
                ours.len()
            )));
        }
        for (a, b) in ours.iter().zip(&theirs) {
            diff = diff.max(f64::from((a - b).abs()));
            top = top.max(f64::from(a.abs()));
        }
    }
    // banter's greedy tokens through its own decode path (the KV cache banter-chat uses).
    let ours = src.greedy(&ps[0], s.steps).1;
    let theirs: Vec<i64> = res["greedy"].as_array().into_iter().flatten().filter_map(|t| t.as_i64()).collect();
    let agree = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
    let tol = if s.int8 { s.tolerance.max(0.15) } else { s.tolerance };
    let bound = tol * top.max(1.0);
    let report = VerifyReport {
        prompts: ps.len(),
        max_abs_diff: diff,
        bound,
        cached_max_abs_diff: res["cached_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
        batch_max_abs_diff: res["batch_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
        greedy_steps: s.steps,
        greedy_agree: agree,
        onnxruntime: res["onnxruntime"].as_str().unwrap_or("?").into(),
    };
    let mut bad = Vec::new();
    if diff.is_nan() || diff > bound {
        bad.push(format!("logits differ by up to {diff:.3e} (bound {bound:.1e})"));
    }
    for (what, d) in
        [("a split, cached run", report.cached_max_abs_diff), ("a left-padded batch", report.batch_max_abs_diff)]
    {
        if d.is_nan() || d > bound {
            bad.push(format!("{what} differs from the full pass by {d:.3e} (bound {bound:.1e})"));
        }
    }
    if !s.int8 && agree < s.steps {
        bad.push(format!(
            "greedy decoding agrees for {agree} of {} tokens (banter {:?}, onnxruntime {:?})",
            s.steps, ours, theirs
        ));
    }
    if !bad.is_empty() {
        return Err(ConvertError::Mismatch(format!("the exported graph does not match banter: {}", bad.join("; "))));
    }
    Ok(report)
}
