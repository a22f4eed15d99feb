//! Which llama.cpp architecture a model is, and the dispatch to its file: [`super::gpt2`] (GPT-2) and
//! [`super::llama`] (every Llama-like family, configured by the family table and the typed config). OPT has
//! no llama.cpp architecture and is refused with that reason.

use tch::Tensor;

use banter_model::families::Family;
use banter_model::lm::Arch;

use super::writer::Value;
use crate::ConvertError;

/// A tensor under its llama.cpp name, with what was done to it.
#[derive(Debug)]
pub struct Mapped {
    /// llama.cpp's name.
    pub name: String,
    /// The tensor (fp32, contiguous).
    pub tensor: Tensor,
}

/// llama.cpp's architecture for a `model_type` (the family table's `gguf_arch`).
pub fn arch_of(model_type: &str) -> Result<&'static str, ConvertError> {
    banter_model::families::family(model_type).and_then(|f| f.gguf_arch).ok_or_else(|| {
        ConvertError::Unsupported(format!(
            "model_type {model_type:?}: llama.cpp has no architecture for it, so there is no GGUF it could run \
             (export it to ONNX instead)"
        ))
    })
}

fn no_opt() -> ConvertError {
    ConvertError::Unsupported("OPT: llama.cpp has no architecture for it".into())
}

/// The architecture's hyper-parameters under llama.cpp's keys, from the model's typed configuration.
pub fn metadata(arch: &str, model: Arch<'_>) -> Result<Vec<(String, Value)>, ConvertError> {
    let k = |s: &str| format!("{arch}.{s}");
    match model {
        Arch::Gpt2(c) => Ok(super::gpt2::metadata(&k, c)),
        Arch::Llama(c) => Ok(super::llama::metadata(arch, &k, c)),
        Arch::Opt(_) => Err(no_opt()),
    }
}

/// Every tensor of the model under llama.cpp's names (sorted as the model's blocks go).
pub fn tensors(
    arch: &str,
    family: &Family,
    model: Arch<'_>,
    vars: &std::collections::BTreeMap<String, Tensor>,
) -> Result<Vec<Mapped>, ConvertError> {
    let mut out = Vec::new();
    for (hf, t) in vars {
        let t = t.to_kind(tch::Kind::Float).contiguous();
        let mapped = match model {
            Arch::Gpt2(_) => super::gpt2::map(hf, t),
            Arch::Llama(c) => super::llama::map(arch, family, c, hf, t),
            Arch::Opt(_) => return Err(no_opt()),
        };
        let Some((name, t)) = mapped else {
            return Err(ConvertError::Format(format!("{hf}: no llama.cpp name for this tensor of a {arch} model")));
        };
        if matches!(model, Arch::Gpt2(_)) && name == "token_embd.weight" && !vars.contains_key("lm_head.weight") {
            out.push(Mapped { name: "output.weight".into(), tensor: t.shallow_clone() });
        }
        out.push(Mapped { name, tensor: t });
    }
    let block = |n: &str| n.strip_prefix("blk.").and_then(|r| r.split('.').next()?.parse::<u64>().ok());
    out.sort_by_key(|m| {
        (block(&m.name).map_or(if m.name.starts_with("output") { 2 } else { 0 }, |_| 1), block(&m.name), m.name.clone())
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_is_refused_with_the_reason() {
        let e = arch_of("opt").unwrap_err().to_string();
        assert!(e.contains("no architecture") && e.contains("ONNX"), "{e}");
        assert_eq!(arch_of("qwen3").unwrap(), "qwen3");
    }
}
