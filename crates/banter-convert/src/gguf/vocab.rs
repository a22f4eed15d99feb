//! The tokenizer as llama.cpp reads it from GGUF (`tokenizer.ggml.*`):
//! - a byte-level BPE `tokenizer.json` (GPT-2, Llama 3, Qwen2, SmolLM, banter's own): model `gpt2`, its
//!   tokens and merges, and the pre-tokenizer's name (`gpt-2`, `llama-bpe`, `qwen2`, `smollm`) recognised
//!   from the regex it splits with;
//! - a SentencePiece `tokenizer.model` (Llama 2, Mistral, Gemma): model `llama`, pieces, scores and types.
//!
//! Token types are llama.cpp's: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. Rows the
//! model has beyond the tokenizer (a padded vocabulary) become `[PADn]`, unused, as its converter writes them.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value as Json;

use super::writer::Value;
use crate::ConvertError;

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn read_json(path: &Path) -> Result<Option<Json>, ConvertError> {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            serde_json::from_str(&t).map(Some).map_err(|e| ConvertError::Format(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConvertError::Io { path: path.to_path_buf(), source: e }),
    }
}

/// The regexes a pre-tokenizer splits with (Split patterns), and whether it is byte-level.
fn pre_parts(p: &Json, regexes: &mut Vec<String>, byte_level: &mut bool, digits: &mut bool) {
    match p["type"].as_str() {
        Some("Sequence") => {
            p["pretokenizers"].as_array().into_iter().flatten().for_each(|q| pre_parts(q, regexes, byte_level, digits))
        }
        Some("Split") => {
            if let Some(r) = p["pattern"]["Regex"].as_str().or(p["pattern"]["String"].as_str()) {
                regexes.push(r.to_string());
            }
        }
        Some("ByteLevel") => {
            *byte_level = true;
            if p["use_regex"].as_bool().unwrap_or(true) {
                regexes.push("gpt2".into());
            }
        }
        Some("Digits") => *digits = true,
        _ => {}
    }
}

/// llama.cpp's name for a byte-level BPE pre-tokenizer.
fn pre_name(tok: &Json) -> Result<&'static str, ConvertError> {
    let (mut regexes, mut byte_level, mut digits) = (Vec::new(), false, false);
    pre_parts(&tok["pre_tokenizer"], &mut regexes, &mut byte_level, &mut digits);
    if !byte_level {
        return Err(ConvertError::Unsupported(
            "tokenizer.json: a BPE tokenizer that is not byte-level (and no \
             tokenizer.model): llama.cpp would not tokenize it the same way"
                .into(),
        ));
    }
    Ok(match regexes.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["gpt2"] if digits => "smollm",
        ["gpt2"] => "gpt-2",
        [r, ..] if *r == LLAMA3_SPLIT => "llama-bpe",
        [r, ..] if *r == QWEN2_SPLIT => "qwen2",
        other => {
            return Err(ConvertError::Unsupported(format!(
                "tokenizer.json: pre-tokenizer {other:?} is not one llama.cpp knows (gpt-2, llama-bpe, qwen2, smollm)"
            )));
        }
    })
}

/// `tokenizer.ggml.*` for the model in `dir`, whose embedding has `rows` rows; `cfg` is its config.json.
pub fn metadata(dir: &Path, rows: usize, cfg: &Json) -> Result<Vec<(String, Value)>, ConvertError> {
    let tc = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Json::Null);
    let spm = dir.join("tokenizer.model");
    let mut m = Vec::new();
    let mut by_text: HashMap<String, usize> = HashMap::new();
    if spm.exists() {
        let pieces = banter_encode::spm::pieces(&spm).map_err(|e| ConvertError::Format(e.to_string()))?;
        let (mut toks, mut scores, mut types) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (p, s, t)) in pieces.into_iter().enumerate() {
            by_text.insert(p.clone(), i);
            toks.push(p);
            scores.push(s);
            types.push(t);
        }
        pad(&mut toks, &mut types, rows, Some(&mut scores));
        m.push(("tokenizer.ggml.model".into(), Value::Str("llama".into())));
        m.push(("tokenizer.ggml.tokens".into(), Value::Strs(toks)));
        m.push(("tokenizer.ggml.scores".into(), Value::F32s(scores)));
        m.push(("tokenizer.ggml.token_type".into(), Value::I32s(types)));
    } else {
        bpe_metadata(dir, rows, &mut by_text, &mut m)?;
    }
    // Special ids: config.json's, else the tokenizer's named special tokens.
    let named = |k: &str| -> Option<usize> {
        let t = &tc[k];
        let text = t.as_str().or(t["content"].as_str())?;
        by_text.get(text).copied()
    };
    // An id, or a list of them (Llama 3's several end tokens: the first, as llama.cpp's converter takes it).
    let num = |v: &Json| v.as_u64().or_else(|| v.as_array()?.first()?.as_u64()).map(|x| x as usize);
    let id = |cfg_key: &str, tok_key: &str| num(&cfg[cfg_key]).or_else(|| named(tok_key));
    for (key, cfg_key, tok_key) in [
        ("bos_token_id", "bos_token_id", "bos_token"),
        ("eos_token_id", "eos_token_id", "eos_token"),
        ("unknown_token_id", "unk_token_id", "unk_token"),
        ("padding_token_id", "pad_token_id", "pad_token"),
    ] {
        if let Some(i) = id(cfg_key, tok_key).filter(|&i| i < rows) {
            m.push((format!("tokenizer.ggml.{key}"), Value::U32(i as u32)));
        }
    }
    if let Some(b) = tc["add_bos_token"].as_bool() {
        m.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(b)));
    }
    if let Some(b) = tc["add_eos_token"].as_bool() {
        m.push(("tokenizer.ggml.add_eos_token".into(), Value::Bool(b)));
    }
    Ok(m)
}

/// A byte-level BPE `tokenizer.json` as llama.cpp's `gpt2` tokenizer model: tokens with their types, the
/// pre-tokenizer's name, merges; `by_text` learns each token's id.
fn bpe_metadata(
    dir: &Path,
    rows: usize,
    by_text: &mut HashMap<String, usize>,
    m: &mut Vec<(String, Value)>,
) -> Result<(), ConvertError> {
    let path = dir.join("tokenizer.json");
    let tok = read_json(&path)?.ok_or_else(|| {
        ConvertError::Format(format!("{}: no tokenizer.json or tokenizer.model to write into the GGUF", dir.display()))
    })?;
    if tok["model"]["type"].as_str() != Some("BPE") {
        return Err(ConvertError::Unsupported(format!(
            "{}: a {} tokenizer; GGUF export takes BPE or SentencePiece",
            path.display(),
            tok["model"]["type"]
        )));
    }
    let pre = pre_name(&tok)?;
    let vocab = tok["model"]["vocab"]
        .as_object()
        .ok_or_else(|| ConvertError::Format(format!("{}: no model.vocab", path.display())))?;
    let mut toks: Vec<Option<String>> = Vec::new();
    let mut types = Vec::new();
    let mut set = |id: usize, text: &str, ty: i32, toks: &mut Vec<Option<String>>| {
        if toks.len() <= id {
            toks.resize(id + 1, None);
            types.resize(id + 1, 5);
        }
        toks[id] = Some(text.to_string());
        types[id] = ty;
    };
    for (text, id) in vocab {
        let id = id.as_u64().ok_or_else(|| ConvertError::Format(format!("{}: vocab id of {text:?}", path.display())))?
            as usize;
        set(id, text, 1, &mut toks);
    }
    for a in tok["added_tokens"].as_array().into_iter().flatten() {
        if let (Some(id), Some(text)) = (a["id"].as_u64(), a["content"].as_str()) {
            set(id as usize, text, if a["special"].as_bool().unwrap_or(false) { 3 } else { 4 }, &mut toks);
        }
    }
    let mut toks: Vec<String> =
        toks.into_iter().enumerate().map(|(i, t)| t.unwrap_or_else(|| format!("[PAD{i}]"))).collect();
    for (i, t) in toks.iter().enumerate() {
        by_text.insert(t.clone(), i);
    }
    pad(&mut toks, &mut types, rows, None);
    let merges: Vec<String> = tok["model"]["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| match x {
            Json::String(s) => Some(s.clone()),
            Json::Array(p) => Some(format!("{} {}", p.first()?.as_str()?, p.get(1)?.as_str()?)),
            _ => None,
        })
        .collect();
    m.push(("tokenizer.ggml.model".into(), Value::Str("gpt2".into())));
    m.push(("tokenizer.ggml.pre".into(), Value::Str(pre.into())));
    m.push(("tokenizer.ggml.tokens".into(), Value::Strs(toks)));
    m.push(("tokenizer.ggml.token_type".into(), Value::I32s(types)));
    m.push(("tokenizer.ggml.merges".into(), Value::Strs(merges)));
    Ok(())
}

/// Pads to the embedding's rows with `[PADn]` (unused), as llama.cpp's converter does.
fn pad(toks: &mut Vec<String>, types: &mut Vec<i32>, rows: usize, scores: Option<&mut Vec<f32>>) {
    let n = toks.len();
    for i in n..rows {
        toks.push(format!("[PAD{i}]"));
        types.push(5);
    }
    if let Some(s) = scores {
        s.resize(rows.max(n), -1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizers_are_recognised_by_their_regex() {
        let gpt2 = serde_json::json!({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}});
        assert_eq!(pre_name(&gpt2).unwrap(), "gpt-2");
        let llama3 = serde_json::json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}}, {"type": "ByteLevel", "use_regex": false}]}});
        assert_eq!(pre_name(&llama3).unwrap(), "llama-bpe");
        let smol = serde_json::json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, {"type": "ByteLevel"}]}});
        assert_eq!(pre_name(&smol).unwrap(), "smollm");
        let odd = serde_json::json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\w+"}}, {"type": "ByteLevel", "use_regex": false}]}});
        assert!(pre_name(&odd).is_err());
    }
}
