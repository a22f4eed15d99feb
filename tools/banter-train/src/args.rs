//! The command line: flags, and `--config-file` merged under them.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser};

use banter_core::cli::CommonArgs;
use banter_encode::encode::Mode;
use banter_model::precision::PrecisionArg;
use banter_model::runtime::DeviceArg;

use crate::{EXAMPLES, version};

/// How training starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Init {
    /// Random weights of `--config`'s shape.
    Scratch,
    /// The weights of `--model`.
    Pretrained,
}

/// Train GPT-2, Llama-family (Llama, SmolLM, Mistral, Qwen2, Gemma) and OPT models on LibTorch: from scratch,
/// full fine-tune, LoRA; Hugging Face output.
#[derive(Debug, Parser)]
#[command(name = "banter-train", version = version(), after_help = EXAMPLES)]
pub struct Cli {
    /// Blocks JSONL (from banter-tokenize) or samples JSONL (tokenized here with the model's tokenizer); with
    /// --dpo, preference records.
    #[arg(value_name = "DATA")]
    pub inputs: Vec<String>,
    /// The output directory (model in Hugging Face layout, or the LoRA adapter).
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Read flags from a JSON or YAML file (`{"lr": 3e-4, "lora": true, …}`, or YAML with `model` and
    /// `training` sections); command-line flags win.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Start from random weights (scratch) or from --model (pretrained; implied by --model).
    #[arg(long, value_enum, help_heading = "Model")]
    pub init: Option<Init>,
    /// Shape for --init scratch: tiny, small, gpt2, or a config.json.
    #[arg(long, value_name = "NAME|FILE", default_value = "tiny", help_heading = "Model")]
    pub config: String,
    /// A Hugging Face model directory to fine-tune, any supported model_type (config.json + model.safetensors
    /// or pytorch_model.bin [+ tokenizer.json]), or a Hub name `user/name[@revision]` (from the Hugging Face
    /// cache, downloaded if missing; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE=1 are honoured)
    #[arg(long, value_name = "DIR", help_heading = "Model")]
    pub model: Option<PathBuf>,
    /// tokenizer.json (default: the model directory's).
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    pub tokenizer: Option<PathBuf>,
    /// Chat template for samples: chatml, asimbot or a JSON file (default: the model's, else chatml).
    #[arg(long, value_name = "TEMPLATE", help_heading = "Model")]
    pub template: Option<String>,
    /// Dropout for a model trained from scratch (embeddings, attention, residuals).
    #[arg(long, value_name = "P", help_heading = "Model")]
    pub dropout: Option<f64>,

    /// Train a LoRA adapter instead of all weights.
    #[arg(long, help_heading = "LoRA")]
    pub lora: bool,
    /// LoRA rank.
    #[arg(long, value_name = "R", default_value_t = 8, help_heading = "LoRA")]
    pub lora_r: i64,
    /// LoRA alpha (the update is scaled by alpha / r).
    #[arg(long, value_name = "A", default_value_t = 16.0, help_heading = "LoRA")]
    pub lora_alpha: f64,
    /// LoRA dropout.
    #[arg(long, value_name = "P", default_value_t = 0.05, help_heading = "LoRA")]
    pub lora_dropout: f64,
    /// Modules to adapt (PEFT suffix matching), or `all-linear` [default: c_attn,c_proj for GPT-2; q_proj,v_proj
    /// for Llama, Mistral, Qwen2, Gemma and OPT, as PEFT chooses]
    #[arg(long, value_name = "NAMES", value_delimiter = ',', help_heading = "LoRA")]
    pub lora_targets: Vec<String>,
    /// Continue from this adapter (PEFT directory) instead of fresh LoRA weights.
    #[arg(long, value_name = "DIR", help_heading = "LoRA")]
    pub adapter: Option<PathBuf>,

    /// Preference tuning (DPO): the inputs are preference records — TRL's {prompt, chosen, rejected}, Asimbot's
    /// {prompt, responses, ranked_indices}, or banter-chat's corrected feedback lines — and the model learns to
    /// prefer the better reply over the worse, against itself as training starts (the reference).
    #[arg(long, help_heading = "Preference tuning (DPO)")]
    pub dpo: bool,
    /// β: how far from the reference the model may move (smaller: further).
    #[arg(long, value_name = "B", default_value_t = 0.1, help_heading = "Preference tuning (DPO)")]
    pub beta: f64,
    /// The DPO loss: sigmoid (the DPO paper's), ipo, or hinge.
    #[arg(long = "loss", value_enum, default_value_t = DpoLossChoice::Sigmoid, help_heading = "Preference tuning (DPO)")]
    pub dpo_loss: DpoLossChoice,
    /// Share of preferences assumed wrong (conservative DPO; sigmoid loss only).
    #[arg(long, value_name = "E", default_value_t = 0.0, help_heading = "Preference tuning (DPO)")]
    pub label_smoothing: f64,

    /// Block size when tokenizing samples (default: min(128, n_positions), as banter-tokenize's 128).
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub block_size: Option<usize>,
    /// Packing when tokenizing samples: pack (Oodi) or pad (one sample per block).
    #[arg(long, value_enum, default_value_t = Mode::Pack, help_heading = "Data")]
    pub mode: Mode,
    /// How .txt inputs are read: transcripts of `User: …` / `Assistant: …` conversations, one text sample
    /// per line, or auto (a transcript when the file has both prefixes).
    #[arg(long, value_enum, default_value_t = TextFormatArg::Auto, help_heading = "Data")]
    pub format: TextFormatArg,
    /// A Hugging Face dataset to train on, `user/name[:split][@revision]` (split default train; JSON Lines,
    /// JSON or Parquet files, through the Hub cache; repeatable).
    #[arg(long, value_name = "USER/NAME[:SPLIT]", help_heading = "Data")]
    pub dataset: Vec<String>,
    /// A dataset's prompt column (default: prompt, instruction, question or query).
    #[arg(long, value_name = "NAME", help_heading = "Data")]
    pub prompt_column: Option<String>,
    /// A dataset's response column (default: response, output, answer or completion).
    #[arg(long, value_name = "NAME", help_heading = "Data")]
    pub response_column: Option<String>,
    /// A dataset's conversation column (default: messages, conversations or conversation).
    #[arg(long, value_name = "NAME", help_heading = "Data")]
    pub messages_column: Option<String>,
    /// A dataset's text column (default: text or content).
    #[arg(long, value_name = "NAME", help_heading = "Data")]
    pub text_column: Option<String>,
    /// A transcript's user prefix (repeatable; default `User:`, `Human:`).
    #[arg(long, value_name = "TEXT", help_heading = "Data")]
    pub user_prefix: Vec<String>,
    /// A transcript's assistant prefix (repeatable; default `Assistant:`, `AI:`, `Bot:`).
    #[arg(long, value_name = "TEXT", help_heading = "Data")]
    pub assistant_prefix: Vec<String>,
    /// Validation data (blocks or samples).
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub val_file: Option<String>,
    /// Share of the training blocks held out for validation.
    #[arg(long, value_name = "F", default_value_t = 0.0, help_heading = "Data")]
    pub val_split: f64,
    /// Train even when the samples fail the quality gate (score < 0.5).
    #[arg(long, help_heading = "Data")]
    pub force: bool,

    /// Passes over the data.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Optimisation")]
    pub epochs: u64,
    /// Stop after this many optimizer steps (overrides --epochs).
    #[arg(long, value_name = "N", help_heading = "Optimisation")]
    pub max_steps: Option<i64>,
    /// Blocks per micro-batch.
    #[arg(long, value_name = "N", default_value_t = 8, help_heading = "Optimisation")]
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Optimisation")]
    pub grad_accum: usize,
    /// Blocks per micro-batch across all ranks of a torchrun launch: each rank takes N / WORLD_SIZE
    /// (instead of --batch-size per rank).
    #[arg(long, value_name = "N", help_heading = "Distributed (torchrun)")]
    pub global_batch_size: Option<usize>,
    /// ZeRO stage 1: each rank keeps the optimizer state of 1/WORLD_SIZE of the parameters
    /// (gradients reduce-scattered, weights all-gathered).
    #[arg(long, help_heading = "Distributed (torchrun)")]
    pub zero1: bool,
    /// Recompute each block's activations in the backward pass instead of keeping them: less memory
    /// (−36 to −38% peak RSS on GPT-2 124M, batch 8 × 256, in two runs) for one more forward pass of the blocks; the same loss.
    #[arg(long, help_heading = "Optimisation")]
    pub gradient_checkpointing: bool,
    /// Leave out the samples whose reply falls in this split's held-out part (`banter-eval split`), and record
    /// the split with the output, where `banter-eval persona` finds it. Samples need `meta.ts`
    /// (`banter-whatsapp samples` writes it).
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub holdout_split: Option<PathBuf>,
    /// Peak learning rate (default: 1e-3 scratch, 5e-5 full fine-tune, 2e-4 LoRA; with --dpo 5e-6 full, 5e-5 LoRA).
    #[arg(long, value_name = "LR", help_heading = "Optimisation")]
    pub lr: Option<f64>,
    /// Final learning rate of the cosine decay (default: lr / 10).
    #[arg(long, value_name = "LR", help_heading = "Optimisation")]
    pub min_lr: Option<f64>,
    /// Linear warmup steps.
    #[arg(long, value_name = "N", default_value_t = 100, help_heading = "Optimisation")]
    pub warmup: i64,
    /// AdamW weight decay (matrices only; not biases, norms or LoRA-frozen embeddings).
    #[arg(long, value_name = "W", default_value_t = 0.1, help_heading = "Optimisation")]
    pub weight_decay: f64,
    /// AdamW β₁.
    #[arg(long, value_name = "B", default_value_t = 0.9, help_heading = "Optimisation")]
    pub beta1: f64,
    /// AdamW β₂.
    #[arg(long, value_name = "B", default_value_t = 0.95, help_heading = "Optimisation")]
    pub beta2: f64,
    /// Gradient norm clipping (0 = off).
    #[arg(long, value_name = "N", default_value_t = 1.0, help_heading = "Optimisation")]
    pub clip: f64,
    /// Evaluate on the validation data every N steps.
    #[arg(long, value_name = "N", default_value_t = 100, help_heading = "Optimisation")]
    pub eval_every: i64,
    /// Validation blocks evaluated each time (0 = all).
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Optimisation")]
    pub eval_blocks: usize,
    /// Stop after N evaluations without a better validation loss (0 = off); the best weights are kept.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Optimisation")]
    pub early_stopping: usize,
    /// Seed: same seed, same device → same losses.
    #[arg(long, value_name = "N", default_value_t = 42, help_heading = "Optimisation")]
    pub seed: u64,

    /// Write a checkpoint every N steps (0 = only at the end and on Ctrl-C).
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Checkpoints")]
    pub save_every: i64,
    /// Keep at most N checkpoints.
    #[arg(long, value_name = "N", default_value_t = 2, help_heading = "Checkpoints")]
    pub save_total_limit: usize,
    /// Continue from the newest checkpoint in the output directory (or from this checkpoint directory).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "", help_heading = "Checkpoints")]
    pub resume: Option<String>,
    /// Start afresh in an output directory that holds another run's checkpoints (they are removed).
    #[arg(long, conflicts_with = "resume", help_heading = "Checkpoints")]
    pub overwrite: bool,

    /// After training, continue this text with the trained model and print it (the report's "sample").
    #[arg(long, value_name = "TEXT", help_heading = "Checkpoints")]
    pub sample_prompt: Option<String>,
    /// Tokens generated for --sample-prompt.
    #[arg(long, value_name = "N", default_value_t = 50, help_heading = "Checkpoints")]
    pub sample_tokens: usize,

    /// cpu, cuda or auto.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto, help_heading = "Runtime")]
    pub device: DeviceArg,
    /// auto, fp32, bf16 or fp16 (auto prints what it chose and why).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto, help_heading = "Runtime")]
    pub precision: PrecisionArg,
    /// libtorch intra-op threads (default: all cores).
    #[arg(long, value_name = "N", help_heading = "Runtime")]
    pub threads: Option<i32>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--loss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DpoLossChoice {
    /// −log σ(β·Δ), with label smoothing ε: conservative DPO.
    Sigmoid,
    /// (Δ per token − 1/(2β))², IPO.
    Ipo,
    /// max(0, 1 − β·Δ), SLiC's hinge.
    Hinge,
}

/// Parses the command line, merging `--config-file` (its keys are the long flag names, `_` or `-`).
pub fn parse_args() -> Result<Cli, clap::Error> {
    let argv: Vec<String> = std::env::args().collect();
    let pos = argv.iter().position(|a| a == "--config-file" || a.starts_with("--config-file="));
    let Some(pos) = pos else { return Cli::try_parse_from(argv) };
    let path = match argv[pos].strip_prefix("--config-file=") {
        Some(p) => p.to_string(),
        None => argv.get(pos + 1).cloned().unwrap_or_default(),
    };
    let file_args = crate::config_file::args(Path::new(&path))
        .map_err(|m| Cli::command().error(clap::error::ErrorKind::InvalidValue, m))?;
    let mut merged = vec![argv[0].clone()];
    merged.extend(file_args);
    merged.extend(argv.into_iter().skip(1));
    let matches = Cli::command().args_override_self(true).try_get_matches_from(merged)?;
    Cli::from_arg_matches(&matches)
}

impl Cli {
    /// The trainer's settings, resolved once from the flags.
    pub fn settings(&self) -> banter_trainer::TrainSettings {
        use banter_trainer::{LoraSettings, Optimisation, TrainSettings};
        TrainSettings {
            inputs: self.inputs.clone(),
            output: self.output.clone().unwrap_or_default(),
            init: self.init.map(|i| match i {
                Init::Scratch => banter_trainer::Init::Scratch,
                Init::Pretrained => banter_trainer::Init::Pretrained,
            }),
            config: self.config.clone(),
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            template: self.template.clone(),
            dropout: self.dropout,
            lora: LoraSettings {
                enabled: self.lora,
                r: self.lora_r,
                alpha: self.lora_alpha,
                dropout: self.lora_dropout,
                targets: self.lora_targets.clone(),
                adapter: self.adapter.clone(),
            },
            block_size: self.block_size,
            mode: self.mode,
            text_format: match self.format {
                TextFormatArg::Auto => banter_trainer::TextFormat::Auto,
                TextFormatArg::Text => banter_trainer::TextFormat::Text,
                TextFormatArg::Transcript => banter_trainer::TextFormat::Transcript,
            },
            columns: banter_trainer::hubdata::Columns {
                messages: self.messages_column.clone(),
                prompt: self.prompt_column.clone(),
                response: self.response_column.clone(),
                text: self.text_column.clone(),
            },
            prefixes: {
                let mut p = banter_core::transcript::Prefixes::default();
                if !self.user_prefix.is_empty() {
                    p.user = self.user_prefix.clone();
                }
                if !self.assistant_prefix.is_empty() {
                    p.assistant = self.assistant_prefix.clone();
                }
                p
            },
            val_file: self.val_file.clone(),
            val_split: self.val_split,
            eval_at_start: false,
            hub_data: Vec::new(),
            force: self.force,
            opt: Optimisation {
                epochs: self.epochs,
                max_steps: self.max_steps,
                batch_size: self.batch_size,
                grad_accum: self.grad_accum,
                lr: self.lr,
                min_lr: self.min_lr,
                warmup: self.warmup,
                weight_decay: self.weight_decay,
                beta1: self.beta1,
                beta2: self.beta2,
                clip: self.clip,
                eval_every: self.eval_every,
                eval_blocks: self.eval_blocks,
                early_stopping: self.early_stopping,
                seed: self.seed,
            },
            save_every: self.save_every,
            save_total_limit: self.save_total_limit,
            resume: self.resume.clone(),
            overwrite: self.overwrite,
            device: self.device,
            precision: self.precision,
            sample_prompt: self.sample_prompt.clone(),
            sample_tokens: self.sample_tokens,
            dpo: self.dpo.then_some(banter_trainer::dpo::DpoSettings {
                beta: self.beta,
                loss: match self.dpo_loss {
                    DpoLossChoice::Sigmoid => banter_trainer::dpo::DpoLoss::Sigmoid,
                    DpoLossChoice::Ipo => banter_trainer::dpo::DpoLoss::Ipo,
                    DpoLossChoice::Hinge => banter_trainer::dpo::DpoLoss::Hinge,
                },
                label_smoothing: self.label_smoothing,
            }),
            dist: None,
            global_batch: self.global_batch_size,
            zero1: self.zero1,
            gradient_checkpointing: self.gradient_checkpointing,
            holdout_split: self.holdout_split.clone(),
        }
    }
}

/// `--format`: how `.txt` inputs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormatArg {
    /// A transcript when the file has both a user and an assistant prefix, else lines.
    Auto,
    /// One text sample per non-blank line.
    Text,
    /// `User: …` / `Assistant: …` conversations.
    Transcript,
}
