//! What a run writes: the model directory in Hugging Face's layout (or a PEFT adapter), tokenizer files
//! with the chat template, checkpoints (written atomically, rotated), metrics and a loss curve.

use std::path::{Path, PathBuf};

use banter_core::ChatTemplate;
use banter_model::{Lm, ModelError, io};
use serde_json::json;
use tch::Tensor;

use crate::TOOL;

/// Tokenizer files beside the weights: `tokenizer.json`, `tokenizer_config.json` (with the Jinja chat
/// template), `special_tokens_map.json`, `banter_template.json`, `generation_config.json`.
pub fn write_tokenizer_files(
    dir: &Path,
    tok: &tokenizers::Tokenizer,
    template: &ChatTemplate,
    n_positions: i64,
    eos_id: u32,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    banter_encode::tok::save(tok, &dir.join("tokenizer.json")).map_err(ModelError::from)?;
    // The special tokens named are the tokenizer's own: its EOS (`<|endoftext|>` for banter's BPE, `</s>` for a
    // unigram tokenizer), and `<unk>` where it has one. A name the vocabulary lacks would make
    // transformers' AutoTokenizer add it as a new id past the embeddings.
    let eos_name = tok.id_to_token(eos_id).unwrap_or_else(|| banter_encode::tok::EOS.to_string());
    let eos = eos_name.as_str();
    let unk = if tok.token_to_id("<unk>").is_some() { "<unk>" } else { eos };
    // Only the template's markers the tokenizer holds: a run adds those its data uses (a speakers template's
    // `<USR_C>`… stay out when the chat has two speakers), and a name listed without an id would be added by
    // AutoTokenizer past the embeddings.
    let specials: Vec<String> =
        template.special_tokens().into_iter().filter(|t| t != eos && tok.token_to_id(t).is_some()).collect();
    io::write_json(
        &dir.join("tokenizer_config.json"),
        &json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": n_positions,
            "bos_token": eos, "eos_token": eos, "unk_token": unk, "pad_token": eos,
            "additional_special_tokens": specials,
            "clean_up_tokenization_spaces": false,
            "chat_template": template.to_jinja(),
        }),
    )?;
    io::write_json(
        &dir.join("special_tokens_map.json"),
        &json!({"bos_token": eos, "eos_token": eos, "unk_token": unk, "pad_token": eos, "additional_special_tokens": specials}),
    )?;
    io::write_json(&dir.join("banter_template.json"), &serde_json::to_value(template).unwrap_or_default())?;
    let stops: Vec<u32> = template.stop_strings().iter().filter_map(|s| tok.token_to_id(s)).collect();
    let mut eos_ids = vec![eos_id];
    eos_ids.extend(stops);
    io::write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": eos_id, "eos_token_id": eos_ids, "pad_token_id": eos_id, "do_sample": true,
                "temperature": 0.8, "top_k": 50, "top_p": 0.95, "max_new_tokens": 150,
                "transformers_version": "4.0.0", "_from": TOOL}),
    )
}

/// Trainable tensors of a model by name (LoRA weights and the token matrices, or the base weights), for
/// checkpoints.
pub fn trainable_tensors(model: &Lm) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = match model.lora_vs() {
        Some(vs) => {
            let mut t: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            t.extend(model.token_matrices().into_iter().map(|(n, w)| (n.to_string(), w)));
            t
        }
        None => model.vs().variables().into_iter().collect(),
    };
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Restores tensors saved by [`trainable_tensors`] (token matrices may have grown since).
pub fn restore_tensors(model: &mut Lm, saved: &[(String, Tensor)]) -> Result<(), ModelError> {
    let _g = tch::no_grad_guard();
    let mut vars = match model.lora_vs() {
        Some(vs) => vs.variables(),
        None => model.vs().variables(),
    };
    let tokens = model.token_matrices();
    vars.extend(tokens.iter().map(|(n, w)| (n.to_string(), w.shallow_clone())));
    for (name, t) in saved {
        let var =
            vars.get(name).ok_or_else(|| ModelError::Format(format!("checkpoint has {name}, the model does not")))?;
        if var.size() != t.size() {
            if tokens.iter().any(|(n, _)| n == name) && var.size()[1..] == t.size()[1..] {
                var.shallow_clone().set_data(&t.to_device(model.device()));
                continue;
            }
            return Err(ModelError::Format(format!("checkpoint {name}: shape {:?} ≠ {:?}", t.size(), var.size())));
        }
        var.shallow_clone().copy_(t);
    }
    Ok(())
}

/// A DPO checkpoint's reference log-probs (`train`, `val`: `[2N]`, chosen then rejected per pair).
pub const DPO_REFERENCE: &str = "dpo_reference.safetensors";

/// Writes `checkpoint-<step>/` atomically (a temp dir renamed into place) and keeps at most `limit`.
pub fn write_checkpoint(
    out: &Path,
    step: i64,
    model: &Lm,
    optim: &[(String, Tensor)],
    dpo_reference: Option<&[(String, Tensor)]>,
    state: &serde_json::Value,
    limit: usize,
) -> Result<PathBuf, ModelError> {
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    let final_dir = out.join(format!("checkpoint-{step}"));
    let tmp = out.join(format!(".checkpoint-{step}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    io::write_safetensors(&trainable_tensors(model), &tmp.join("model.safetensors"))?;
    io::write_safetensors(optim, &tmp.join("optimizer.safetensors"))?;
    if let Some(r) = dpo_reference {
        io::write_safetensors(r, &tmp.join(DPO_REFERENCE))?;
    }
    io::write_json(&tmp.join("trainer_state.json"), state)?;
    io::write_json(&tmp.join("config.json"), &model.config_json())?;
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(|e| ModelError::io(&final_dir, e))?;
    // Rotation: the newest `limit` checkpoints stay.
    let mut all = checkpoints(out);
    while limit > 0 && all.len() > limit {
        let (_, old) = all.remove(0);
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(final_dir)
}

/// `checkpoint-<step>` directories, oldest first.
pub fn checkpoints(out: &Path) -> Vec<(i64, PathBuf)> {
    let mut v: Vec<(i64, PathBuf)> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("checkpoint-").and_then(|s| s.parse().ok()).map(|s| (s, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// An SVG line chart of training (and validation) loss.
pub fn loss_svg(train: &[(i64, f64)], val: &[(i64, f64)]) -> String {
    let (w, h, pad) = (720.0, 360.0, 48.0);
    let all = train.iter().chain(val);
    let max_step = all.clone().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 1.0, hi + 1.0) };
    let x = |s: i64| pad + (w - 2.0 * pad) * s as f64 / max_step;
    let y = |l: f64| h - pad - (h - 2.0 * pad) * (l - lo) / (hi - lo);
    let line = |pts: &[(i64, f64)], color: &str| {
        let p: Vec<String> = pts.iter().map(|(s, l)| format!("{:.1},{:.1}", x(*s), y(*l))).collect();
        format!("<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>", p.join(" "))
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"{pad}\" y=\"20\">loss (train: blue, validation: orange)</text>\
         <text x=\"4\" y=\"{ty}\">{hi:.2}</text><text x=\"4\" y=\"{b}\">{lo:.2}</text>\
         <text x=\"{r}\" y=\"{bx}\" text-anchor=\"end\">step {ms}</text>{}{}</svg>\n",
        line(train, "#1f77b4"),
        line(val, "#ff7f0e"),
        b = h - pad,
        r = w - pad,
        ty = pad + 4.0,
        bx = h - pad + 16.0,
        ms = max_step as i64,
    )
}

/// After a resume at `step`: keeps only the metrics of steps up to it (written atomically), so the steps
/// trained again are not listed twice.
pub fn truncate_metrics(path: &Path, step: i64) -> Result<(), banter_core::Error> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            // A line cut short by a crash does not parse: it goes too.
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_i64())
                .is_some_and(|s| s <= step)
        })
        .collect();
    if kept.len() == text.lines().count() {
        return Ok(());
    }
    let mut out = banter_core::jsonl::Output::file(path)?;
    for l in kept {
        std::io::Write::write_all(&mut out, format!("{l}\n").as_bytes())
            .map_err(|e| banter_core::Error::io(path.display(), e))?;
    }
    out.commit()
}

/// Removes what a killed run left in `out`: unfinished checkpoint directories (`.checkpoint-N.tmp`) and
/// temp files of atomic writes (`.NAME.RANDOM.tmp`). Nothing else is touched.
pub fn remove_stale_temps(out: &Path) {
    for e in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let p = e.path();
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
    }
}
