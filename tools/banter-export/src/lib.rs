//! `banter-export`: take a model trained with banter anywhere — ONNX for onnxruntime (optimum's layout),
//! GGUF for llama.cpp / Ollama / LM Studio, a standalone merged model, and the Hugging Face Hub. One file per
//! subcommand.

mod gguf_cmd;
mod hub_cmd;
mod merge_cmd;
mod onnx_cmd;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};

/// The tool's name.
pub const TOOL: &str = "banter-export";

const EXAMPLES: &str = "\
Examples:
  banter-export onnx model -o model-onnx --verify
  banter-export onnx model --adapter sara -o sara-onnx --int8
  banter-export gguf model -o model.gguf --type q8_0
  banter-export gguf model -o model-q4.gguf --type q4_0   # 4-bit, embeddings at Q8_0
  banter-export gguf HuggingFaceTB/SmolLM2-135M --adapter sara -o sara.gguf
  banter-export merge model --adapter sara -o sara-merged
  HF_TOKEN=hf_… banter-export hub model me/my-persona --private
  banter-export hub sara me/sara-lora --revision experiments";

/// Export a model: ONNX, GGUF, or an upload to the Hugging Face Hub.
#[derive(Debug, Parser)]
#[command(name = "banter-export", version = banter_core::VERSION, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// ONNX in optimum's text-generation-with-past layout (model.onnx, config, tokenizer).
    Onnx(onnx_cmd::OnnxArgs),
    /// GGUF v3 for llama.cpp, Ollama and LM Studio (LoRA adapters merged).
    Gguf(gguf_cmd::GgufArgs),
    /// Upload a model or adapter directory to the Hugging Face Hub.
    Hub(hub_cmd::HubArgs),
    /// Fold a LoRA adapter into its base: a standalone model folder transformers loads without PEFT.
    Merge(merge_cmd::MergeArgs),
}

/// The model to export.
#[derive(Debug, Clone, Args)]
pub struct ModelIn {
    /// Model directory (banter's or Hugging Face's), or a Hub name `user/name[@revision]`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// PEFT LoRA adapter to merge first (a directory or a Hub name).
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,
    /// libtorch threads.
    #[arg(long, value_name = "N")]
    pub threads: Option<i32>,
}

impl ModelIn {
    /// Resolves Hub names, refuses an output `out` that is, holds or lies inside the model or adapter, and
    /// loads the model with its adapter merged.
    pub fn load(&self, common: &CommonArgs, out: &Path) -> anyhow::Result<banter_convert::Source> {
        if let Some(t) = self.threads {
            tch::set_num_threads(t.max(1));
        }
        let mut hub = banter_hub::HubSettings::from_env();
        hub.progress = common.progress_enabled();
        let dir = banter_hub::resolve_model(&self.model, &hub)?;
        let adapter = self.adapter.as_deref().map(|a| banter_hub::resolve_model(a, &hub)).transpose()?;
        banter_core::inputs::check_output_path(out)?;
        Ok(banter_convert::Source::load(&dir, adapter.as_deref())?)
    }
}

/// `-o`, which must be given and is not stdout for a directory.
pub(crate) fn out_path(o: &Path) -> anyhow::Result<&Path> {
    if o.as_os_str() == "-" {
        return Err(
            banter_core::Error::usage("this export is a directory or a binary file: give -o PATH, not -").into()
        );
    }
    Ok(o)
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    match &cli.command {
        Command::Onnx(a) => onnx_cmd::run(a, &cli.common),
        Command::Gguf(a) => gguf_cmd::run(a, &cli.common),
        Command::Hub(a) => hub_cmd::run(a, &cli.common),
        Command::Merge(a) => merge_cmd::run(a, &cli.common),
    }
}
