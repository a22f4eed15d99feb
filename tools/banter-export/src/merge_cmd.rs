//! `banter-export merge`: a base model and a LoRA adapter folded into one standalone Hugging Face model
//! folder (safetensors, config, tokenizer, template) that transformers loads without PEFT.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use banter_convert::StagedDir;
use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

use crate::{ModelIn, TOOL, out_path};

/// `banter-export merge MODEL --adapter DIR -o OUT`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    #[command(flatten)]
    pub model: ModelIn,
    /// The merged model's folder (written whole, or not at all).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

pub fn run(a: &MergeArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let out = out_path(&a.output)?;
    if a.model.adapter.is_none() {
        return Err(banter_core::Error::usage_hint(
            "merge needs an adapter to fold into the model",
            "give --adapter DIR (a PEFT LoRA adapter); a model alone is already standalone",
        )
        .into());
    }
    let t0 = Instant::now();
    let src = a.model.load(common, out)?;
    let stage = StagedDir::new(out)?;
    src.lm.save(stage.path())?;
    let mut copied = Vec::new();
    for f in src.side_files() {
        if let Some(name) = f.file_name() {
            std::fs::copy(&f, stage.path().join(name)).map_err(|e| banter_core::Error::io(f.display(), e))?;
            copied.push(name.to_string_lossy().into_owned());
        }
    }
    banter_core::interrupt::check()?;
    stage.commit()?;
    let secs = t0.elapsed().as_secs_f64();
    if common.json {
        cli::print_report(&cli::report(
            TOOL,
            Exit::Success,
            json!({"command": "merge", "output": out, "model_type": src.model_type(),
                   "vocab_size": src.lm.vocab_size(), "files": copied, "seconds": secs}),
        ))?;
    } else {
        common.say(format!(
            "{TOOL}: {} + {} → {} ({}, {} tokens) in {secs:.1}s",
            a.model.model.display(),
            a.model.adapter.as_deref().unwrap_or(std::path::Path::new("")).display(),
            out.display(),
            src.model_type(),
            src.lm.vocab_size()
        ));
    }
    Ok(Exit::Success)
}
