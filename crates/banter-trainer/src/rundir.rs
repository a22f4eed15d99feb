//! Whose run an output folder holds. Every checkpoint records a fingerprint of its run — the data's bytes,
//! the model, and the settings that shape the weights — so that:
//! - rerunning the same command into a folder holding its own checkpoints resumes it (said on stderr);
//! - a fresh run into a folder holding *another* run's checkpoints is refused (exit 2): `--resume` continues
//!   that run, `--overwrite` replaces it (as the HF Trainer's `overwrite_output_dir`);
//! - `--resume` refuses a checkpoint of another run, and one already past this run's last step.

use std::io::Read;
use std::path::{Path, PathBuf};

use banter_core::Error;
use xxhash_rust::xxh3::Xxh3;

use crate::TOOL;
use crate::output;
use crate::settings::{Console, TrainSettings};

/// The key in `trainer_state.json`.
pub const FINGERPRINT_KEY: &str = "run_fingerprint";

/// The fingerprint of the run `s` describes (hex). Steps, epochs, checkpointing, device and precision are
/// left out: a run may be resumed with more steps or on another device.
pub fn fingerprint(s: &TrainSettings) -> Result<String, Error> {
    let mut h = Xxh3::new();
    let mut put = |tag: &str, v: &str| {
        h.update(tag.as_bytes());
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    };
    put("v", "1");
    let o = &s.opt;
    let shape = format!(
        "{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{}|{}|{}|{:?}",
        s.init(),
        s.config,
        s.model.as_deref().map(banter_core::inputs::canonical),
        s.tokenizer.as_deref().map(banter_core::inputs::canonical),
        s.template,
        s.dropout,
        s.lora,
        s.block_size,
        s.mode,
        s.val_split,
        // The global batch: a 2-rank run is the same run as one process with twice the batch.
        o.batch_size * s.world(),
        o.grad_accum,
        o.lr,
        o.warmup,
        o.weight_decay,
        o.beta1,
        o.beta2,
        o.clip,
        o.seed,
        o.eval_blocks,
        s.dpo,
    );
    put("settings", &shape);
    if s.inputs.iter().any(|i| i.ends_with(".txt")) {
        put("text", &format!("{:?} {:?}", s.text_format, s.prefixes));
    }
    let mut files: Vec<&str> = s.inputs.iter().map(String::as_str).collect();
    files.extend(s.val_file.as_deref());
    files.extend(s.hub_data.iter().flat_map(|(_, f)| f.iter().filter_map(|p| p.to_str())));
    if !s.hub_data.is_empty() {
        put("columns", &format!("{:?}", s.columns));
    }
    let mut hasher = Xxh3::new();
    for f in files {
        hasher.update(f.len().to_le_bytes().as_slice());
        if f == "-" {
            hasher.update(b"stdin");
            continue;
        }
        let mut file = std::fs::File::open(f).map_err(|e| Error::io(f, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(|e| Error::io(f, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    let data = format!("{:016x}", hasher.digest());
    put("data", &data);
    Ok(format!("{:016x}", h.digest()))
}

/// The fingerprint a checkpoint recorded (`None` for one written before fingerprints).
fn recorded(ckpt: &Path) -> Option<String> {
    let text = std::fs::read_to_string(ckpt.join("trainer_state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v[FINGERPRINT_KEY].as_str().map(str::to_string)
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

/// Decides how the run starts in `s.output`: returns the `resume` to use (auto-resume fills it in).
/// With `overwrite`, another run's checkpoints and metrics are removed first.
pub fn prepare(s: &TrainSettings, fp: &str, console: Console) -> Result<Option<String>, Error> {
    let out = &s.output;
    let ckpts = output::checkpoints(out);
    let metrics = out.join("metrics.jsonl");
    if let Some(r) = &s.resume {
        let ckpt = if r.is_empty() { ckpts.last().map(|c| c.1.clone()) } else { Some(PathBuf::from(r)) };
        if let Some(c) = ckpt
            && let Some(theirs) = recorded(&c)
            && theirs != fp
        {
            return Err(Error::usage_hint(
                format!("--resume: {} is a checkpoint of another run (other data, model or settings)", c.display()),
                "resume with that run's command and data, or start afresh with --overwrite (no --resume)",
            ));
        }
        return Ok(s.resume.clone());
    }
    if s.overwrite {
        for (_, c) in &ckpts {
            std::fs::remove_dir_all(c).map_err(|e| Error::io(c.display(), e))?;
        }
        if metrics.exists() {
            std::fs::remove_file(&metrics).map_err(|e| Error::io(metrics.display(), e))?;
        }
        if !ckpts.is_empty() {
            console.say(format!("{TOOL}: --overwrite: removed {} checkpoint(s) of an earlier run", ckpts.len()));
        }
        return Ok(None);
    }
    let Some((_, newest)) = ckpts.last() else {
        // A run killed before its first checkpoint left only metrics: they are restarted, not appended to.
        if metrics.exists() {
            std::fs::remove_file(&metrics).map_err(|e| Error::io(metrics.display(), e))?;
        }
        return Ok(None);
    };
    if recorded(newest).as_deref() == Some(fp) {
        console.say(format!(
            "{TOOL}: {} holds this run's {}: resuming it (same data and settings; --overwrite starts afresh)",
            out.display(),
            name(newest)
        ));
        return Ok(Some(String::new()));
    }
    let listed: Vec<String> = ckpts.iter().map(|c| name(&c.1)).collect();
    Err(Error::usage_hint(
        format!(
            "{}: holds another run ({}{}): refusing to mix this run into it",
            out.display(),
            listed.join(", "),
            if metrics.exists() { ", metrics.jsonl" } else { "" }
        ),
        "continue that run with --resume, replace it with --overwrite, or choose another -o",
    ))
}

/// Refuses a checkpoint already past the run's last step.
pub fn check_step(ckpt_step: i64, total: i64, dir: &Path) -> Result<(), Error> {
    if ckpt_step > total {
        return Err(Error::usage_hint(
            format!("--resume: {} is at step {ckpt_step}, past this run's {total} steps", dir.display()),
            format!("give --max-steps {ckpt_step} or more to continue it, or start afresh with --overwrite"),
        ));
    }
    Ok(())
}
