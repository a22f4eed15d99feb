//! `banter-export gguf --verify`: the file run by llama.cpp itself (llama-cpp-python) against banter on the
//! same prompt ids: greedy decoding token for token, and the prompt's next-token logits (reported; llama.cpp's
//! kernels and the file's type make them differ slightly, so only the tokens gate). Only f32 files are held to
//! equal tokens: f16 and Q8_0 round the weights, and on a model whose top logits are close that may change a
//! greedy choice, so for them the agreement is reported, not required.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let py =
        python.or_else(|| std::env::var_os("BANTER_PYTHON").map(PathBuf::from)).unwrap_or_else(|| "python3".into());
    let probe = Command::new(&py).args(["-c", "import llama_cpp"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(ConvertError::CannotVerify(format!(
            "cannot verify: {} cannot import llama_cpp (pip install llama-cpp-python, or `make test-llamacpp`); \
             nothing was written (without --verify the file is kept unchecked)",
            py.display()
        )));
    }
    let prompt = crate::check_prompts(src.lm.vocab_size()).swap_remove(0);
    let (ours_first, ours) = src.greedy(&prompt, steps);
    let work = tempfile::Builder::new()
        .prefix("banter-verify")
        .tempdir()
        .map_err(|e| ConvertError::io(Path::new("<tmp>"), e))?;
    let out = work.path().join("result.json");
    let ctx = (prompt.len() + steps + 8).min(src.lm.n_positions() as usize);
    let req = serde_json::json!({"model": gguf, "prompt": prompt, "steps": steps, "out": out, "n_ctx": ctx,
                                 "threads": tch::get_num_threads()});
    let req_path = work.path().join("request.json");
    std::fs::write(&req_path, req.to_string()).map_err(|e| ConvertError::io(&req_path, e))?;
    let script = work.path().join("verify.py");
    std::fs::write(&script, SCRIPT).map_err(|e| ConvertError::io(&script, e))?;
    let o = Command::new(&py).arg(&script).arg(&req_path).output().map_err(|e| ConvertError::io(&py, e))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        return Err(ConvertError::Mismatch(format!("llama.cpp could not run the GGUF: {last}")));
    }
    let res: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).map_err(|e| ConvertError::io(&out, e))?)
        .map_err(|e| ConvertError::Format(format!("{}: {e}", out.display())))?;
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
