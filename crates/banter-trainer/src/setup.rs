//! Before the first step: tokenizer and template, the model (scratch or pretrained), the data (with the
//! quality gate for samples), and LoRA.

use std::path::Path;

use tch::Device;

use banter_core::exit::Coded;
use banter_core::records::{Block, IGNORE_INDEX};
use banter_core::{ChatTemplate, Error, Exit};
use banter_encode::tok::Tok;
use banter_model::lm::model_type_of;
use banter_model::{Gpt2, Gpt2Config, Lm, LoraConfig};

use crate::settings::{Console, Init, TrainSettings};
use crate::{TOOL, data};

/// Everything a run needs once set up.
pub(crate) struct Setup {
    pub model: Lm,
    pub tok: Tok,
    pub template: ChatTemplate,
    pub train: data::Blocks,
    pub val: data::Blocks,
    pub base_name: String,
    pub old_vocab: i64,
    /// Special tokens added to the vocabulary (new embedding rows) because the data uses them.
    pub added_tokens: Vec<String>,
    /// The quality gate's score of the sample inputs (None for blocks only).
    pub quality: Option<f64>,
    /// `--holdout-split`, read once: the split applied to the samples is the one recorded with the output.
    pub holdout: Option<banter_quality::split::Split>,
}

/// Loads everything; the errors name the flag or file at fault.
pub(crate) fn setup(s: &TrainSettings, device: Device, console: Console) -> crate::Result<Setup> {
    tch::manual_seed(s.opt.seed as i64);
    // A continued adapter brings its own tokenizer (its added tokens keep their ids) and template: the run
    // goes on as the adapter was trained, not with the base model's template.
    let adapter_tok = s.lora.adapter.as_ref().filter(|a| data::has_tokenizer(a)).cloned();
    let tok_path = s.tokenizer.clone().or(adapter_tok).or_else(|| s.model.clone()).ok_or_else(|| {
        Error::usage_hint(
            "no tokenizer",
            "give --tokenizer tokenizer.json (train one with banter-tokenize train-tokenizer)",
        )
    })?;
    if !data::has_tokenizer(&tok_path) {
        return Err(Error::usage(format!("{}: no tokenizer.json there (use --tokenizer)", tok_path.display())).into());
    }
    let template = banter_encode::resolve_template(s.template.as_deref(), &tok_path)?;
    let tok = banter_encode::tok::load(&tok_path, &template)?;
    let (mut model, base_name) = load_model(s, &tok, device)?;
    let old_vocab = model.vocab_size();
    let full_vocab = old_vocab.max(tok.inner.get_vocab_size(true) as i64);
    let holdout = s.holdout_split.as_deref().map(crate::holdout::read).transpose()?;
    let (train, val, quality) =
        load_data(s, model.n_positions() as usize, full_vocab, &tok, &template, holdout.as_ref(), console)?;
    // The template's special tokens join the vocabulary only when the data uses them (a Hub model's own
    // template, or plain-text samples, need none).
    let tok = drop_unused_tokens(tok, &tok_path, &template, &train, &val)?;
    let vocab = tok.inner.get_vocab_size(true) as i64;
    let mut added_tokens = Vec::new();
    if vocab > old_vocab {
        model.resize_vocab(vocab);
        if s.init() == Init::Pretrained {
            added_tokens = tok.added.clone();
            console.say(format!(
                "{TOOL}: the embeddings grew from {old_vocab} to {vocab} tokens for the template's special tokens ({})",
                added_tokens.join(" ")
            ));
        }
    }
    if s.is_lora() {
        attach_lora(s, &mut model)?;
    }
    Ok(Setup { model, tok, template, train, val, base_name, old_vocab, added_tokens, quality, holdout })
}

fn load_model(s: &TrainSettings, tok: &Tok, device: Device) -> crate::Result<(Lm, String)> {
    // A new model starts with the tokenizer's own tokens; the template's added ones join (below) when the
    // data uses them.
    let vocab = (tok.inner.get_vocab_size(true) - tok.added.len()) as i64;
    Ok(match s.init() {
        Init::Scratch => {
            let mut cfg = match Gpt2Config::preset(&s.config, vocab) {
                Some(c) => c,
                None => {
                    // Inline JSON (a YAML config file's `model` section arrives this way), or a file.
                    let (mut v, what) = if s.config.trim_start().starts_with('{') {
                        let v: serde_json::Value = serde_json::from_str(&s.config)
                            .map_err(|e| Error::usage(format!("--config: invalid JSON: {e}")))?;
                        (v, "--config".to_string())
                    } else {
                        let p = Path::new(&s.config);
                        let text = std::fs::read_to_string(p).map_err(|e| Error::io(p.display(), e))?;
                        let v: serde_json::Value = serde_json::from_str(&text)
                            .map_err(|e| Coded::new(Exit::BadInput, format!("{}: invalid JSON: {e}", p.display())))?;
                        (v, p.display().to_string())
                    };
                    if model_type_of(&v) != "gpt2" {
                        return Ok((scratch_family(s, v, vocab, tok, device, &what)?, String::new()));
                    }
                    if let Some(m) = v.as_object_mut() {
                        m.entry("vocab_size").or_insert(vocab.into());
                    }
                    let mut c = Gpt2Config::from_value(v, &what)?;
                    c.vocab_size = vocab.max(c.vocab_size);
                    c
                }
            };
            if let Some(p) = s.dropout {
                cfg.attn_pdrop = p;
                cfg.resid_pdrop = p;
                cfg.embd_pdrop = p;
            }
            cfg.eos_token_id = Some(i64::from(tok.eos_id));
            cfg.bos_token_id = Some(i64::from(tok.eos_id));
            cfg.validate()?;
            (Gpt2::new(cfg, device).into(), String::new())
        }
        Init::Pretrained => {
            let dir = s.model.clone().ok_or_else(|| Error::usage("--init pretrained needs --model DIR"))?;
            let m = banter_model::lm::load_model(&dir, device, tch::Kind::Float)?;
            (m, std::fs::canonicalize(&dir).unwrap_or(dir).display().to_string())
        }
    })
}

/// A Llama-family or OPT model from scratch; `--dropout` sets OPT's `dropout` or the Llama family's
/// `attention_dropout` (the only dropout transformers gives it).
fn scratch_family(
    s: &TrainSettings,
    mut v: serde_json::Value,
    vocab: i64,
    tok: &Tok,
    device: Device,
    what: &str,
) -> crate::Result<Lm> {
    if let Some(p) = s.dropout {
        let key = banter_model::families::family(model_type_of(&v)).map_or("attention_dropout", |f| f.dropout_key);
        v[key] = p.into();
    }
    Ok(banter_model::lm::scratch_model(v, vocab, i64::from(tok.eos_id), device, what)?)
}

/// Reloads the tokenizer without the added special tokens no block uses (those after the last used one:
/// ids are given in order, so the kept ones keep theirs). Binary token files keep them all.
fn drop_unused_tokens(
    tok: Tok,
    tok_path: &Path,
    template: &ChatTemplate,
    train: &data::Blocks,
    val: &data::Blocks,
) -> crate::Result<Tok> {
    let ids: Vec<u32> = tok.added.iter().filter_map(|t| tok.inner.token_to_id(t)).collect();
    let (data::Blocks::Mem(t), data::Blocks::Mem(v)) = (train, val) else { return Ok(tok) };
    if ids.is_empty() {
        return Ok(tok);
    }
    let mut used = vec![false; ids.len()];
    for id in t.iter().chain(v).flat_map(|b| b.input_ids.iter()) {
        if let Some(i) = ids.iter().position(|x| x == id) {
            used[i] = true;
        }
    }
    let keep = used.iter().rposition(|&u| u).map_or(0, |i| i + 1);
    if keep == ids.len() {
        return Ok(tok);
    }
    Ok(banter_encode::tok::load_upto(tok_path, template, keep)?)
}

fn load_data(
    s: &TrainSettings,
    n_pos: usize,
    vocab: i64,
    tok: &Tok,
    template: &ChatTemplate,
    holdout: Option<&banter_quality::split::Split>,
    console: Console,
) -> crate::Result<data::Data> {
    let block = s.block_size.unwrap_or(banter_encode::DEFAULT_BLOCK_SIZE.min(n_pos));
    if block > n_pos {
        return Err(Error::usage(format!("--block-size {block} is longer than the model's {n_pos} positions")).into());
    }
    if s.holdout_split.is_some() && s.dpo.is_some() {
        return Err(crate::holdout::only_samples("preference pairs (--dpo)").into());
    }
    if s.dpo.is_some() {
        return crate::dpo_data::load(s, block, tok, template, console);
    }
    let mut quality = None;
    let mut train = if s.inputs.iter().any(|i| data::is_bin(i)) {
        if s.inputs.len() > 1 || !s.hub_data.is_empty() {
            return Err(Error::usage("a binary token file (.bin) must be the only training input").into());
        }
        if s.holdout_split.is_some() {
            return Err(crate::holdout::only_samples("a binary token file").into());
        }
        if s.val_split > 0.0 {
            return Err(Error::usage_hint(
                "--val-split does not apply to a binary token file",
                "give --val-file (banter-tokenize encode --format bin --val-split writes one)",
            )
            .into());
        }
        data::open_bin(&s.inputs[0], vocab, n_pos)?
    } else {
        let mut train = Vec::new();
        let mut samples = Vec::new();
        for (name, files) in &s.hub_data {
            let mut rows = Vec::new();
            for f in files {
                rows.extend(crate::hubdata::rows(f)?);
            }
            let (read, note) = crate::hubdata::samples(&rows, &s.columns, name)?;
            console.say(format!("{TOOL}: {note}"));
            samples.extend(read);
        }
        for input in &s.inputs {
            if input.ends_with(".txt") {
                let (read, note) = data::read_text(input, s.text_format, &s.prefixes)?;
                console.say(format!("{TOOL}: {note}"));
                samples.extend(read);
                continue;
            }
            match data::sniff(input)? {
                data::Kind::Blocks => {
                    if s.holdout_split.is_some() {
                        return Err(crate::holdout::only_samples(&format!("{input} (token blocks)")).into());
                    }
                    let r = data::read_blocks(input, vocab, n_pos)?;
                    if r.short > 0 {
                        banter_core::eline!(
                            "{TOOL}: warning: {} block(s) with fewer than 2 tokens have nothing to learn and were skipped (first: {})",
                            r.short,
                            r.first_short.unwrap_or_default()
                        );
                    }
                    train.extend(r.blocks);
                }
                data::Kind::Samples => samples.extend(data::read_samples(input)?),
                data::Kind::Preferences => {
                    return Err(Error::usage_hint(
                        format!("{input} holds preference records (chosen/rejected or ranked responses)"),
                        "train on preferences with --dpo",
                    )
                    .into());
                }
            }
        }
        if let Some(split) = holdout {
            samples = crate::holdout::exclude(split, samples, &console)?;
        }
        if !samples.is_empty() {
            quality = Some(crate::quality::quality_gate(s.force, &samples, console)?);
            let (blocks, dropped) = data::tokenize(&samples, tok, template, block, s.mode);
            if dropped > 0 {
                console.say(format!(
                    "{TOOL}: {dropped} sample(s) had nothing to learn (no reply tokens) and were skipped"
                ));
            }
            train.extend(blocks);
        }
        check_blocks(&train, n_pos)?;
        data::Blocks::Mem(train)
    };
    let val = match (&s.val_file, &mut train) {
        (Some(v), _) if data::is_bin(v) => data::open_bin(v, vocab, n_pos)?,
        (Some(v), _) => data::Blocks::Mem(read_val(s, v, vocab, n_pos, tok, template, block)?),
        (None, data::Blocks::Mem(t)) if s.val_split > 0.0 => {
            let (kept, held) = data::split(std::mem::take(t), s.val_split, s.opt.seed);
            *t = kept;
            data::Blocks::Mem(held)
        }
        (None, _) => data::Blocks::Mem(Vec::new()),
    };
    if train.is_empty() {
        return Err(
            Coded::new(Exit::BadInput, "no training blocks: the data is empty or every sample was skipped").into()
        );
    }
    Ok((train, val, quality))
}

fn check_blocks(train: &[Block], n_pos: usize) -> crate::Result<()> {
    if let Some(b) = train.iter().find(|b| b.input_ids.len() > n_pos) {
        return Err(Error::usage(format!(
            "a block of {} tokens is longer than the model's {n_pos} positions (--block-size is at most {n_pos})",
            b.input_ids.len()
        ))
        .into());
    }
    if !train.is_empty() && train.iter().all(|b| b.labels.iter().all(|&l| l == IGNORE_INDEX)) {
        return Err(Coded::new(
            Exit::BadInput,
            "nothing to learn: every label of the training data is -100 (no position carries loss)",
        )
        .into());
    }
    Ok(())
}

fn attach_lora(s: &TrainSettings, model: &mut Lm) -> crate::Result<()> {
    match &s.lora.adapter {
        Some(dir) => {
            model.load_adapter(dir)?;
        }
        None => {
            let cfg = LoraConfig {
                r: s.lora.r,
                alpha: s.lora.alpha,
                dropout: s.lora.dropout,
                targets: model.resolve_lora_targets(&s.lora.targets),
            };
            if model.attach_lora(&cfg) == 0 {
                let have = model.all_linear_targets().join(", ");
                return Err(Error::usage(format!(
                    "--lora-targets {:?} match no layer ({} has {have})",
                    cfg.targets,
                    model.model_type(),
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// Validation blocks from a JSONL file of blocks or samples.
fn read_val(
    s: &TrainSettings,
    v: &str,
    vocab: i64,
    n_pos: usize,
    tok: &Tok,
    template: &ChatTemplate,
    block: usize,
) -> crate::Result<Vec<Block>> {
    Ok(match data::sniff(v)? {
        data::Kind::Blocks => data::read_blocks(v, vocab, n_pos)?.blocks,
        data::Kind::Samples => data::tokenize(&data::read_samples(v)?, tok, template, block, s.mode).0,
        data::Kind::Preferences => {
            return Err(Error::usage_hint(
                format!("--val-file {v} holds preference records"),
                "train on preferences with --dpo",
            )
            .into());
        }
    })
}
