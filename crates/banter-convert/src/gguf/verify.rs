//! `banter-export gguf --verify`: the file run by llama.cpp itself (llama-cpp-python) against banter on the
//! same prompt ids: greedy decoding token for token, and the prompt's next-token logits (reported; llama.cpp's
//! kernels and the file's type make them differ slightly, so only the tokens gate). Only f32 files are held to
//! equal tokens: f16 and Q8_0 round the weights, and on a model whose top logits are close that may change a
//! greedy choice, so for them the agreement is reported, not required.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{ConvertError, Source};

const SCRIPT: &str = include_str!("verify.py");

/// What the check found.
#[derive(Debug, Clone, Serialize)]
pub struct GgufVerifyReport {
    /// Greedy tokens compared.
    pub greedy_steps: usize,
    /// Of them, equal to banter's (up to the first difference).
    pub greedy_agree: usize,
    /// Largest |banter − llama.cpp| over the prompt's next-token logits.
    pub first_logits_max_abs_diff: f64,
    /// llama-cpp-python's version.
    pub llama_cpp: String,
}

/// Checks `gguf` against `src` with `steps` greedy tokens (all equal when `exact`).
pub fn verify(
    src: &Source,
    gguf: &Path,
    steps: usize,
    exact: bool,
    python: Option<PathBuf>,
) -> Result<GgufVerifyReport, ConvertError> {
    let py = match python {
        Some(p) => p,
        None => crate::pycheck::python_with("llama_cpp", "pip install llama-cpp-python, or `make test-llamacpp`")?,
    };
    let prompt = crate::check_prompts(src.lm.vocab_size()).swap_remove(0);
    let (ours_first, ours) = src.greedy(&prompt, steps);
    let work = crate::pycheck::work_dir()?;
    let out = work.path().join("result.json");
    let ctx = (prompt.len() + steps + 8).min(src.lm.n_positions() as usize);
    let req = serde_json::json!({"model": gguf, "prompt": prompt, "steps": steps, "out": out, "n_ctx": ctx,
                                 "threads": tch::get_num_threads()});
    crate::pycheck::run(&py, SCRIPT, &req, work.path(), "llama.cpp")?;
    let res = crate::pycheck::read_json(&out)?;
    let theirs: Vec<i64> = res["greedy"].as_array().into_iter().flatten().filter_map(|t| t.as_i64()).collect();
    let first: Vec<f64> = res["first_logits"].as_array().into_iter().flatten().filter_map(|t| t.as_f64()).collect();
    let diff = ours_first.iter().zip(&first).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
    let agree = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
    let report = GgufVerifyReport {
        greedy_steps: steps,
        greedy_agree: agree,
        first_logits_max_abs_diff: diff,
        llama_cpp: res["llama_cpp"].as_str().unwrap_or("?").into(),
    };
    if exact && agree < steps {
        return Err(ConvertError::Mismatch(format!(
            "llama.cpp's greedy tokens agree with banter's for {agree} of {steps} (banter {ours:?}, llama.cpp {theirs:?}; \
             next-token logits differ by up to {diff:.2e})"
        )));
    }
    Ok(report)
}
