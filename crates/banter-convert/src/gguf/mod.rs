//! GGUF export for llama.cpp, Ollama and LM Studio: the weights under llama.cpp's names ([`arch`]), its
//! metadata keys, the tokenizer ([`vocab`]) and the chat template, in a GGUF v3 file ([`writer`]).
//!
//! Types as llama.cpp's converter picks them: vectors (norms, biases) and learned positions stay f32;
//! matrices are f32, f16, bf16, Q8_0 or Q4_0 as asked (Q4_0 keeps the token embeddings and output matrix at
//! Q8_0; both fall back to f16 for a matrix whose rows are not a
//! multiple of 32 long).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

pub mod arch;
mod gpt2;
mod llama;
pub mod verify;
pub mod vocab;
pub mod writer;

use crate::{ConvertError, Source};
pub use writer::GgmlType;
use writer::{TensorData, Value};

/// What `banter-export gguf` writes.
#[derive(Debug, Clone)]
pub struct GgufSettings {
    /// The matrices' type.
    pub kind: GgmlType,
    /// `general.name` (default: the model directory's name).
    pub name: Option<String>,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct GgufReport {
    /// llama.cpp's architecture.
    pub architecture: String,
    /// Tensors written.
    pub tensors: usize,
    /// Of them, in each type.
    pub by_type: std::collections::BTreeMap<String, usize>,
    /// Metadata keys written.
    pub metadata_keys: usize,
    /// The file's size.
    pub bytes: u64,
    /// A chat template was written (`tokenizer.chat_template`).
    pub chat_template: bool,
    /// What llama.cpp will compute differently from banter, if anything.
    pub warnings: Vec<String>,
}

/// The chat template banter-chat would use for the model, as Jinja.
fn chat_template(dir: &Path) -> Result<Option<String>, ConvertError> {
    Ok(banter_core::ChatTemplate::from_model_dirs(&[dir])?.map(|t| t.to_jinja()))
}

/// Writes `src` as GGUF to `out` (any `Write`; the caller makes it atomic).
pub fn export(src: &Source, s: &GgufSettings, out: &mut impl Write) -> Result<GgufReport, ConvertError> {
    let arch = arch::arch_of(src.model_type())?;
    let cfg = &src.config;
    let vars = src.tensors();
    let rows = vars
        .get("model.embed_tokens.weight")
        .or_else(|| vars.get("transformer.wte.weight"))
        .map(|t| t.size()[0] as usize)
        .ok_or_else(|| ConvertError::Format("no token embeddings".into()))?;
    let name = s.name.clone().unwrap_or_else(|| {
        src.dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| "banter".into())
    });
    let file_type = match s.kind {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q8_0 => 7,
        GgmlType::Q4_0 => 2,
        GgmlType::Bf16 => 32,
    };
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::Str(arch.into())),
        ("general.name".into(), Value::Str(name)),
        ("general.file_type".into(), Value::U32(file_type)),
    ];
    if matches!(s.kind, GgmlType::Q8_0 | GgmlType::Q4_0) {
        meta.push(("general.quantization_version".into(), Value::U32(2)));
    }
    meta.extend(arch::metadata(arch, src.lm.arch())?);
    meta.extend(vocab::metadata(&src.files_dir, rows, cfg)?);
    let template = chat_template(&src.files_dir)?;
    let mut warnings = Vec::new();
    if let Some(w) = defuse_phi3_name(&mut meta) {
        warnings.push(w);
    }
    if src.model_type() == "mistral"
        && let Some(w) = cfg["sliding_window"].as_i64()
        && w < cfg["max_position_embeddings"].as_i64().unwrap_or(i64::MAX)
    {
        warnings.push(format!(
            "llama.cpp runs Mistral as `llama`, without its {w}-token sliding window: past {w} tokens of context \
             its outputs differ from banter's and transformers'"
        ));
    }
    if let Some(t) = &template {
        meta.push(("tokenizer.chat_template".into(), Value::Str(t.clone())));
    }
    let mut tensors = Vec::new();
    let mut by_type = std::collections::BTreeMap::new();
    for m in arch::tensors(arch, src.lm.family(), src.lm.arch(), &vars)? {
        let shape: Vec<u64> = m.tensor.size().iter().map(|&d| d as u64).collect();
        let data: Vec<f32> =
            Vec::try_from(m.tensor.reshape([-1])).map_err(|e| ConvertError::Format(format!("{}: {e}", m.name)))?;
        let matrix = shape.len() >= 2 && m.name != "position_embd.weight";
        let kind = match s.kind {
            GgmlType::Q8_0 if matrix && shape.last().is_some_and(|c| c % 32 == 0) => GgmlType::Q8_0,
            // The token embeddings (also the output matrix when tied) and `output.weight` keep 8 bits.
            GgmlType::Q4_0 if matrix && shape.last().is_some_and(|c| c % 32 == 0) => {
                if m.name.starts_with("token_embd") || m.name.starts_with("output.") {
                    GgmlType::Q8_0
                } else {
                    GgmlType::Q4_0
                }
            }
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::F16 if matrix => GgmlType::F16,
            GgmlType::Bf16 if matrix => GgmlType::Bf16,
            _ => GgmlType::F32,
        };
        let bytes = match kind {
            GgmlType::F32 => writer::f32_bytes(&data),
            GgmlType::F16 => writer::f16_bytes(&data),
            GgmlType::Q8_0 => writer::q8_0_bytes(&data),
            GgmlType::Bf16 => writer::bf16_bytes(&data),
            GgmlType::Q4_0 => writer::q4_0_bytes(&data),
        };
        *by_type.entry(format!("{kind:?}").to_lowercase()).or_insert(0) += 1;
        tensors.push(TensorData { name: m.name, shape, kind, bytes });
    }
    // Llama 3's RoPE scaling: llama.cpp reads it as one divisor per frequency (`rope_freqs.weight`), as its
    // converter writes it.
    if let banter_model::lm::Arch::Llama(cfg) = src.lm.arch()
        && cfg.rope_scaling.as_ref().is_some_and(|r| r.rope_type == "llama3")
    {
        let d = cfg.head_dim();
        let factors: Vec<f32> = cfg
            .inv_freq()
            .iter()
            .enumerate()
            .map(|(i, f)| ((1.0 / cfg.rope_theta.powf(2.0 * i as f64 / d as f64)) / f) as f32)
            .collect();
        *by_type.entry("f32".into()).or_insert(0) += 1;
        let shape = vec![factors.len() as u64];
        tensors.push(TensorData {
            name: "rope_freqs.weight".into(),
            shape,
            kind: GgmlType::F32,
            bytes: writer::f32_bytes(&factors),
        });
    }
    let bytes = writer::write(out, &meta, &tensors).map_err(|e| ConvertError::io(Path::new("<gguf output>"), e))?;
    Ok(GgufReport {
        architecture: arch.into(),
        tensors: tensors.len(),
        by_type,
        metadata_keys: meta.len(),
        bytes,
        chat_template: template.is_some(),
        warnings,
    })
}

/// llama.cpp gives Phi-3's special tokens their strip attributes by the model's *name*: a `general.name`
/// containing `phi3` or `phi-3` makes it look up `<s>`, `</s>` and `<unk>`, and a vocabulary without them
/// (banter's byte-level BPE, any GPT-2-style tokenizer) then fails to load at all ("unordered_map::at"),
/// whatever the architecture. Such a name is written with `phi_3` instead; returns the note saying so.
fn defuse_phi3_name(meta: &mut [(String, Value)]) -> Option<String> {
    let has = |tok: &str| {
        meta.iter()
            .any(|(k, v)| k == "tokenizer.ggml.tokens" && matches!(v, Value::Strs(t) if t.iter().any(|x| x == tok)))
    };
    let missing: Vec<&str> = ["<s>", "</s>", "<unk>"].into_iter().filter(|t| !has(t)).collect();
    if missing.is_empty() {
        return None;
    }
    let (_, Value::Str(name)) = meta.iter_mut().find(|(k, _)| k == "general.name")? else { return None };
    let trigger = regex::Regex::new(r"(?i)(phi)-?3").expect("a valid pattern");
    if !trigger.is_match(name) {
        return None;
    }
    let fixed = trigger.replace_all(name, "${1}_3").into_owned();
    let note = format!(
        "general.name {name:?} written as {fixed:?}: llama.cpp treats a name with \"phi3\" as Phi-3's SentencePiece \
         vocabulary and fails to load one without {}",
        missing.join(", ")
    );
    *name = fixed;
    Some(note)
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn a_phi3_name_is_defused_only_when_the_vocabulary_lacks_phi3s_tokens() {
        let meta = |name: &str, toks: &[&str]| {
            vec![
                ("general.name".to_string(), Value::Str(name.into())),
                ("tokenizer.ggml.tokens".to_string(), Value::Strs(toks.iter().map(|t| t.to_string()).collect())),
            ]
        };
        let mut m = meta("My-Phi3-sara (PHI-3)", &["a", "<|endoftext|>"]);
        assert!(defuse_phi3_name(&mut m).is_some());
        assert!(matches!(&m[0].1, Value::Str(n) if n == "My-Phi_3-sara (PHI_3)"), "{:?}", m[0].1);
        let mut spm = meta("phi3-mini", &["<unk>", "<s>", "</s>", "a"]);
        assert!(defuse_phi3_name(&mut spm).is_none());
        let mut other = meta("sara", &["a"]);
        assert!(defuse_phi3_name(&mut other).is_none());
    }
}
