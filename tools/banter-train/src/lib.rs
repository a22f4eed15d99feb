//! `banter-train`: GPT-2 training on LibTorch — from scratch, full fine-tune or LoRA — writing Hugging Face
//! model directories and PEFT adapters.

pub mod args;
pub mod data;
pub mod output;
pub mod precision;

pub use args::{Cli, DeviceChoice, Init, Precision, config_file_args, parse_args};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use tch::{Device, Tensor};

use banter_core::cli;
use banter_core::exit::Coded;
use banter_core::records::Block;
use banter_core::{ChatTemplate, Error, Exit, interrupt, progress};
use banter_model::gpt2::Pass;
use banter_model::optim::{AdamW, lr_at};
use banter_model::precision::LossScaler;
use banter_model::runtime::DeviceArg;
use banter_model::{Gpt2, Gpt2Config, LoraConfig, ModelError, io, lora};

/// The tool's name.
pub const TOOL: &str = "banter-train";

pub(crate) const EXAMPLES: &str = "\
Examples:
  banter-train blocks.jsonl --init scratch --config tiny --tokenizer tokenizer.json -o model
  banter-train clean.jsonl --model gpt2-dir --lora -o persona-adapter
  banter-train clean.jsonl --model persona-model --epochs 3 --val-split 0.1 --early-stopping 3 -o persona-model-2
  banter-train --config-file train.json            # every flag, as JSON keys (unknown keys are an error)
  banter-train blocks.jsonl ... -o model --resume   # continue from the newest checkpoint in model/

Exit codes: 0 trained; 1 data quality below the gate (--force overrides); 2 usage; 3 bad data; 4 I/O;
5 model or runtime (libtorch, CUDA, NaN loss); 130 interrupted (a checkpoint is saved first).";

/// `banter-train --version`: banter's version, the libtorch version and whether CUDA is available.
pub(crate) fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| format!("{} ({})", banter_core::VERSION, banter_model::runtime::RuntimeInfo::query()))
}

fn model_err(e: ModelError) -> anyhow::Error {
    let code = e.exit();
    Coded::new(code, e.to_string()).into()
}

/// Everything a run needs once set up.
struct Setup {
    model: Gpt2,
    tok: banter_tokenize::tok::Tok,
    template: ChatTemplate,
    train: data::Blocks,
    val: data::Blocks,
    base_name: String,
    old_vocab: i64,
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    let out = cli.output.clone().ok_or_else(|| Error::usage_hint("no output directory", "add -o DIR"))?;
    if cli.inputs.is_empty() {
        return Err(Error::usage_hint("no training data", "give blocks or samples JSONL files").into());
    }
    if let Some(t) = cli.threads {
        tch::set_num_threads(t.max(1));
    }
    let device = match cli.device {
        DeviceChoice::Auto => DeviceArg::Auto,
        DeviceChoice::Cpu => DeviceArg::Cpu,
        DeviceChoice::Cuda => DeviceArg::Cuda,
    }
    .resolve()
    .map_err(|e| Coded::new(Exit::Model, e.to_string()))?;
    let setup = setup(&cli, device)?;
    train(&cli, setup, &out, device)
}

fn setup(cli: &Cli, device: Device) -> anyhow::Result<Setup> {
    let init = cli.init.unwrap_or(if cli.model.is_some() { Init::Pretrained } else { Init::Scratch });
    tch::manual_seed(cli.seed as i64);
    // Tokenizer and template.
    let tok_path = cli.tokenizer.clone().or_else(|| cli.model.clone()).ok_or_else(|| {
        Error::usage_hint(
            "no tokenizer",
            "give --tokenizer tokenizer.json (train one with banter-tokenize train-tokenizer)",
        )
    })?;
    if !data::has_tokenizer(&tok_path) {
        return Err(Error::usage(format!("{}: no tokenizer.json there (use --tokenizer)", tok_path.display())).into());
    }
    let template = banter_tokenize::resolve_template(cli.template.as_deref(), &tok_path)?;
    let tok = banter_tokenize::tok::load(&tok_path, &template)?;
    let vocab = tok.inner.get_vocab_size(true) as i64;
    // Model.
    let (mut model, base_name) = match init {
        Init::Scratch => {
            let mut cfg = match Gpt2Config::preset(&cli.config, vocab) {
                Some(c) => c,
                None => {
                    let mut c = Gpt2Config::load(Path::new(&cli.config)).map_err(model_err)?;
                    c.vocab_size = vocab.max(c.vocab_size);
                    c
                }
            };
            if let Some(p) = cli.dropout {
                cfg.attn_pdrop = p;
                cfg.resid_pdrop = p;
                cfg.embd_pdrop = p;
            }
            cfg.eos_token_id = Some(i64::from(tok.eos_id));
            cfg.bos_token_id = Some(i64::from(tok.eos_id));
            cfg.validate().map_err(model_err)?;
            (Gpt2::new(cfg, device), String::new())
        }
        Init::Pretrained => {
            let dir = cli.model.clone().ok_or_else(|| Error::usage("--init pretrained needs --model DIR"))?;
            let m = io::load_model(&dir, device).map_err(model_err)?;
            (m, std::fs::canonicalize(&dir).unwrap_or(dir).display().to_string())
        }
    };
    let old_vocab = model.cfg.vocab_size;
    if vocab > old_vocab {
        model.resize_vocab(vocab);
        cli.common.say(format!(
            "{TOOL}: the embeddings grew from {old_vocab} to {vocab} tokens for the template's special tokens"
        ));
    }
    // Data.
    let n_pos = model.cfg.n_positions as usize;
    let block = cli.block_size.unwrap_or(128.min(n_pos));
    if block > n_pos {
        return Err(Error::usage(format!("--block-size {block} is longer than the model's {n_pos} positions")).into());
    }
    let vocab_now = model.cfg.vocab_size;
    let bins: Vec<&String> = cli.inputs.iter().filter(|i| data::is_bin(i)).collect();
    let mut train = if !bins.is_empty() {
        if cli.inputs.len() > 1 {
            return Err(Error::usage("a binary token file (.bin) must be the only training input").into());
        }
        if cli.val_split > 0.0 {
            return Err(Error::usage_hint(
                "--val-split does not apply to a binary token file",
                "give --val-file (banter-tokenize encode --format bin --val-split writes one)",
            )
            .into());
        }
        data::open_bin(bins[0], vocab_now, n_pos)?
    } else {
        let mut train = Vec::new();
        let mut gate_samples = Vec::new();
        for input in &cli.inputs {
            match data::sniff(input)? {
                data::Kind::Blocks => {
                    let r = data::read_blocks(input, vocab_now, n_pos)?;
                    if r.short > 0 {
                        eprintln!(
                            "{TOOL}: warning: {} block(s) with fewer than 2 tokens have nothing to learn and were skipped (first: {})",
                            r.short,
                            r.first_short.unwrap_or_default()
                        );
                    }
                    train.extend(r.blocks);
                }
                data::Kind::Samples => gate_samples.extend(data::read_samples(input)?),
            }
        }
        if !gate_samples.is_empty() {
            quality_gate(cli, &gate_samples)?;
            let (blocks, dropped) = data::tokenize(&gate_samples, &tok, &template, block, cli.mode);
            if dropped > 0 {
                cli.common.say(format!(
                    "{TOOL}: {dropped} sample(s) had nothing to learn (no reply tokens) and were skipped"
                ));
            }
            train.extend(blocks);
        }
        if let Some(b) = train.iter().find(|b| b.input_ids.len() > n_pos) {
            return Err(Error::usage(format!(
                "a block of {} tokens is longer than the model's {n_pos} positions (--block-size is at most {n_pos})",
                b.input_ids.len()
            ))
            .into());
        }
        if !train.is_empty() && train.iter().all(|b| b.labels.iter().all(|&l| l == banter_core::records::IGNORE_INDEX))
        {
            return Err(Coded::new(
                Exit::BadInput,
                "nothing to learn: every label of the training data is -100 (no position carries loss)",
            )
            .into());
        }
        data::Blocks::Mem(train)
    };
    let val = match (&cli.val_file, &mut train) {
        (Some(v), _) if data::is_bin(v) => data::open_bin(v, vocab_now, n_pos)?,
        (Some(v), _) => data::Blocks::Mem(read_val(cli, v, vocab_now, n_pos, &tok, &template, block)?),
        (None, data::Blocks::Mem(t)) if cli.val_split > 0.0 => {
            let (kept, held) = data::split(std::mem::take(t), cli.val_split, cli.seed);
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
    // LoRA.
    if cli.lora || cli.adapter.is_some() {
        let cfg = LoraConfig {
            r: cli.lora_r,
            alpha: cli.lora_alpha,
            dropout: cli.lora_dropout,
            targets: cli.lora_targets.clone(),
        };
        match &cli.adapter {
            Some(dir) => {
                io::load_adapter(&mut model, dir).map_err(model_err)?;
            }
            None => {
                let n = lora::attach(&mut model, &cfg);
                if n == 0 {
                    return Err(Error::usage(format!(
                        "--lora-targets {:?} match no layer (GPT-2 has c_attn, c_proj, c_fc)",
                        cfg.targets
                    ))
                    .into());
                }
            }
        }
    }
    Ok(Setup { model, tok, template, train, val, base_name, old_vocab })
}

/// Validation blocks from a JSONL file of blocks or samples.
#[allow(clippy::too_many_arguments)]
fn read_val(
    cli: &Cli,
    v: &str,
    vocab: i64,
    n_pos: usize,
    tok: &banter_tokenize::tok::Tok,
    template: &ChatTemplate,
    block: usize,
) -> anyhow::Result<Vec<Block>> {
    Ok(match data::sniff(v)? {
        data::Kind::Blocks => data::read_blocks(v, vocab, n_pos)?.blocks,
        data::Kind::Samples => data::tokenize(&data::read_samples(v)?, tok, template, block, cli.mode).0,
    })
}

/// MTN's gate: samples are checked with banter-validate's default checks; below 0.5 training is refused
/// unless `--force`.
fn quality_gate(cli: &Cli, samples: &[banter_core::Sample]) -> anyhow::Result<()> {
    use banter_validate::checks::{self, Profile, Settings, Severity};
    let settings = Settings::new(Profile::Chat);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut valid = 0u64;
    for s in samples {
        let findings = checks::evaluate(s, &settings);
        let rejected: Vec<_> = findings.iter().filter(|f| settings.severity(f.check) == Severity::Reject).collect();
        if rejected.is_empty() {
            valid += 1;
        }
        for f in rejected {
            *counts.entry(f.check.as_str()).or_default() += 1;
        }
    }
    let score = valid as f64 / samples.len().max(1) as f64;
    if score < 0.5 {
        let by: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let msg = format!(
            "data quality {:.1}% ({valid} of {} samples pass banter-validate's checks; rejected: {}) is below the 50% gate",
            score * 100.0,
            samples.len(),
            by.join(", ")
        );
        if !cli.force {
            return Err(
                Coded::new(Exit::GateFailed, format!("{msg}; run banter-validate --filter, or pass --force")).into()
            );
        }
        cli.common.say(format!("{TOOL}: warning: {msg} (--force)"));
    } else {
        cli.common.say(format!("{TOOL}: data quality {:.1}% of {} samples", score * 100.0, samples.len()));
    }
    Ok(())
}

fn eval_loss(model: &Gpt2, val: &data::Blocks, cli: &Cli, pad: u32, device: Device, pass: Pass) -> anyhow::Result<f64> {
    let _g = tch::no_grad_guard();
    let n = if cli.eval_blocks == 0 { val.len() } else { cli.eval_blocks.min(val.len()) };
    let (mut total, mut count) = (0.0f64, 0i64);
    let bs = cli.batch_size.max(1);
    for start in (0..n).step_by(bs) {
        let chunk = val.fetch(start..(start + bs).min(n))?;
        let refs: Vec<&Block> = chunk.iter().collect();
        let (ids, labels, _) = data::batch(&refs, pad, device);
        let (loss, k) = model.loss(&ids, &labels, Pass { train: false, ..pass });
        if k > 0 {
            total += loss.double_value(&[]) * k as f64;
            count += k;
        }
    }
    Ok(if count == 0 { f64::NAN } else { total / count as f64 })
}

fn train(cli: &Cli, s: Setup, out: &Path, device: Device) -> anyhow::Result<Exit> {
    let Setup { mut model, tok, template, train, val, base_name, old_vocab } = s;
    let is_lora = model.lora_vs.is_some();
    let grew = model.cfg.vocab_size > old_vocab;
    // Parameters: LoRA weights (+ the new embedding rows), or everything.
    let mut params: Vec<(String, Tensor, bool)> = Vec::new();
    match &model.lora_vs {
        Some(vs) => {
            for (n, t) in vs.variables() {
                params.push((n, t, false));
            }
            if grew {
                let wte = model.wte.shallow_clone();
                let wte = wte.set_requires_grad(true);
                params.push(("transformer.wte.weight".into(), wte, false));
            }
        }
        None => {
            for (n, t) in model.vs.variables() {
                let decay = t.dim() >= 2 && !n.contains("wpe");
                params.push((n, t, decay));
            }
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt = AdamW::new(params, cli.beta1, cli.beta2, 1e-8, cli.weight_decay);
    let lr = cli.lr.unwrap_or(if is_lora {
        2e-4
    } else if cli.model.is_some() {
        5e-5
    } else {
        1e-3
    });
    let min_lr = cli.min_lr.unwrap_or(lr / 10.0);
    let micro = cli.batch_size.max(1);
    let accum = cli.grad_accum.max(1);
    let steps_per_epoch = train.len().div_ceil(micro * accum) as i64;
    let total = cli.max_steps.unwrap_or(steps_per_epoch * cli.epochs.max(1) as i64).max(1);
    let pad = tok.pad_id;

    // Precision.
    let decision = precision::choose(cli.precision.arg(), device, &model, &mut opt, &train, micro, pad)?;
    let chosen = decision.precision;
    cli.common.say(format!("{TOOL}: precision {chosen}: {}", decision.reason));
    let (compute, cuda_autocast) = precision::pass_kind(chosen, device);
    let pass = Pass { train: true, compute };
    let mut scaler = (chosen == banter_model::precision::Precision::Fp16).then(LossScaler::default);

    // Resume.
    let mut step: i64 = 0;
    let mut best_val = f64::INFINITY;
    let mut bad_evals = 0usize;
    if let Some(r) = &cli.resume {
        let dir = if r.is_empty() {
            output::checkpoints(out)
                .pop()
                .map(|c| c.1)
                .ok_or_else(|| Error::usage(format!("--resume: no checkpoint-* in {}", out.display())))?
        } else {
            PathBuf::from(r)
        };
        let saved = io::read_safetensors(&dir.join("model.safetensors"), device).map_err(model_err)?;
        output::restore_tensors(&mut model, &saved).map_err(model_err)?;
        let st: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("trainer_state.json")).map_err(|e| Error::io(dir.display(), e))?,
        )?;
        step = st["step"].as_i64().unwrap_or(0);
        best_val = st["best_val_loss"].as_f64().unwrap_or(f64::INFINITY);
        let state: BTreeMap<String, Tensor> =
            io::read_safetensors(&dir.join("optimizer.safetensors"), device).map_err(model_err)?.into_iter().collect();
        opt.load_state(&state, step).map_err(|e| Coded::new(Exit::BadInput, format!("{}: {e}", dir.display())))?;
        cli.common.say(format!("{TOOL}: resumed from {} at step {step}", dir.display()));
    }

    interrupt::set_cooperative(true);
    std::fs::create_dir_all(out).map_err(|e| Error::io(out.display(), e))?;
    output::remove_stale_temps(out);
    let metrics_path = out.join("metrics.jsonl");
    if step > 0 {
        output::truncate_metrics(&metrics_path, step)?;
    }
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(|e| Error::io(metrics_path.display(), e))?;
    let params_m = model.num_params() as f64 / 1e6;
    cli.common.say(format!(
        "{TOOL}: {params_m:.1}M parameters{}, {} training blocks, {} validation, {total} steps of {micro}×{accum} blocks, lr {lr:e}, {} on {device:?}",
        if is_lora { " (LoRA)" } else { "" },
        train.len(),
        val.len(),
        chosen.as_str()
    ));
    let bar = progress::bar(Some(total as u64), "training", &cli.common);
    bar.set_position(step as u64);
    let started = Instant::now();
    let mut window_tokens = 0i64;
    let mut window_start = Instant::now();
    let mut train_curve = Vec::new();
    let mut val_curve = Vec::new();
    let mut best_weights: Option<Vec<(String, Tensor)>> = None;
    let mut last_loss = f64::NAN;
    let mut interrupted = false;
    let per_epoch_micro = train.len().div_ceil(micro);
    // The shuffle of the current epoch, computed once per epoch.
    let mut order: (u64, data::Shuffle) = (u64::MAX, data::Shuffle::new(0, 0, 0));
    while step < total {
        if interrupt::interrupted() {
            interrupted = true;
            break;
        }
        let mut loss_sum = 0.0f64;
        let mut tokens = 0i64;
        for a in 0..accum {
            let global_micro = (step as usize) * accum + a;
            let epoch = (global_micro / per_epoch_micro) as u64;
            let pos = global_micro % per_epoch_micro;
            if order.0 != epoch {
                order = (epoch, data::Shuffle::new(train.len(), cli.seed, epoch));
            }
            let owned = train.fetch((pos * micro..((pos + 1) * micro).min(train.len())).map(|j| order.1.get(j)))?;
            let idx: Vec<&Block> = owned.iter().collect();
            let (ids, labels, n) = data::batch(&idx, pad, device);
            // Dropout is seeded per micro-batch, so a resumed run draws the same masks.
            tch::manual_seed((cli.seed as i64).wrapping_mul(1_000_003).wrapping_add(global_micro as i64));
            let loss_mul = scaler.as_ref().map_or(1.0, |s| s.scale) / accum as f64;
            let (l, _) = if cuda_autocast {
                tch::autocast(true, || model.loss_backward(&ids, &labels, pass, loss_mul))
            } else {
                model.loss_backward(&ids, &labels, pass, loss_mul)
            };
            if !l.is_finite() {
                let _ = write_ckpt(cli, out, step, &model, &opt, best_val);
                return Err(Coded::new(
                    Exit::Model,
                    format!("the loss became {l} at step {step}; lower --lr (a checkpoint was saved)"),
                )
                .into());
            }
            loss_sum += l / accum as f64;
            tokens += n;
        }
        if is_lora && grew {
            // Only the new special-token rows of the embeddings learn.
            let _g = tch::no_grad_guard();
            let g = model.wte.grad();
            if g.defined() {
                let _ = g.narrow(0, 0, old_vocab).f_zero_();
            }
        }
        let unscale = 1.0 / scaler.as_ref().map_or(1.0, |s| s.scale);
        let grad_norm = opt.clip_grad_norm_scaled(cli.clip, unscale);
        let cur_lr = lr_at(step, lr, min_lr, cli.warmup.min(total / 2), total);
        if scaler.as_mut().is_none_or(|s| s.update(grad_norm)) {
            opt.step(cur_lr);
        } else {
            // fp16 overflow: skip this update (the scale was halved), as torch's GradScaler does.
            opt.zero_grad();
        }
        step += 1;
        last_loss = loss_sum;
        window_tokens += tokens;
        let tps = window_tokens as f64 / window_start.elapsed().as_secs_f64().max(1e-9);
        if window_start.elapsed().as_secs_f64() > 10.0 {
            window_tokens = 0;
            window_start = Instant::now();
        }
        train_curve.push((step, loss_sum));
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss_sum:.4} lr {cur_lr:.2e} {tps:.0} tok/s"));
        let mut rec = json!({"step": step, "loss": loss_sum, "lr": cur_lr, "grad_norm": grad_norm, "tokens_per_s": tps.round(), "elapsed_s": started.elapsed().as_secs_f64()});
        let eval_now = !val.is_empty() && (step % cli.eval_every.max(1) == 0 || step == total);
        if eval_now {
            let vl = eval_loss(&model, &val, cli, pad, device, pass)?;
            rec["val_loss"] = json!(vl);
            rec["val_ppl"] = json!(vl.exp());
            val_curve.push((step, vl));
            if !cli.common.progress_enabled() {
                cli.common
                    .say(format!("{TOOL}: step {step}/{total} loss {loss_sum:.4} val {vl:.4} (ppl {:.2})", vl.exp()));
            }
            if vl < best_val {
                best_val = vl;
                bad_evals = 0;
                if cli.early_stopping > 0 {
                    best_weights =
                        Some(output::trainable_tensors(&model).into_iter().map(|(n, t)| (n, t.copy())).collect());
                }
            } else {
                bad_evals += 1;
            }
        } else if !cli.common.progress_enabled()
            && !cli.common.quiet
            && (step % cli.eval_every.max(1) == 0 || step == 1)
        {
            cli.common.say(format!("{TOOL}: step {step}/{total} loss {loss_sum:.4} lr {cur_lr:.2e} {tps:.0} tok/s"));
        }
        writeln!(metrics, "{rec}").map_err(|e| Error::io(metrics_path.display(), e))?;
        if cli.save_every > 0 && step % cli.save_every == 0 && step < total {
            write_ckpt(cli, out, step, &model, &opt, best_val).map_err(model_err)?;
        }
        if cli.early_stopping > 0 && bad_evals >= cli.early_stopping {
            cli.common.say(format!(
                "{TOOL}: early stopping at step {step}: no better validation loss in {bad_evals} evaluations"
            ));
            break;
        }
    }
    bar.finish_and_clear();
    let ckpt = write_ckpt(cli, out, step, &model, &opt, best_val).map_err(model_err)?;
    if interrupted {
        cli.common.say(format!(
            "{TOOL}: interrupted at step {step}; checkpoint saved in {} (continue with --resume)",
            ckpt.display()
        ));
        return Ok(Exit::Interrupted);
    }
    if let Some(best) = best_weights {
        output::restore_tensors(&mut model, &best).map_err(model_err)?;
    }
    // Final output.
    if is_lora {
        let extra = if grew {
            vec![("base_model.model.transformer.wte.weight".to_string(), model.wte.shallow_clone())]
        } else {
            vec![]
        };
        io::save_adapter(&model, out, &base_name, &extra).map_err(model_err)?;
    } else {
        io::save_model(&model, out).map_err(model_err)?;
    }
    output::write_tokenizer_files(out, &tok.inner, &template, model.cfg.n_positions, tok.eos_id).map_err(model_err)?;
    std::fs::write(out.join("loss.svg"), output::loss_svg(&train_curve, &val_curve))
        .map_err(|e| Error::io(out.display(), e))?;
    let secs = started.elapsed().as_secs_f64();
    let report = json!({"steps": step, "final_loss": last_loss, "best_val_loss": if best_val.is_finite() { json!(best_val) } else { json!(null) },
                        "seconds": secs, "lora": is_lora, "precision": chosen.as_str(), "precision_reason": decision.reason, "output": out});
    if cli.common.json {
        cli::print_report(&cli::report(TOOL, Exit::Success, report))?;
    } else {
        cli.common.say(format!(
            "{TOOL}: trained {step} steps in {secs:.1} s, final loss {last_loss:.4}{} → {}",
            if best_val.is_finite() {
                format!(", best validation loss {best_val:.4} (ppl {:.2})", best_val.exp())
            } else {
                String::new()
            },
            out.display()
        ));
    }
    Ok(Exit::Success)
}

fn write_ckpt(
    cli: &Cli,
    out: &Path,
    step: i64,
    model: &Gpt2,
    opt: &AdamW,
    best_val: f64,
) -> Result<PathBuf, ModelError> {
    let state = json!({"step": step, "seed": cli.seed, "best_val_loss": if best_val.is_finite() { json!(best_val) } else { json!(null) }, "banter": banter_core::VERSION});
    output::write_checkpoint(out, step, model, &opt.state(), &state, cli.save_total_limit.max(1))
}
