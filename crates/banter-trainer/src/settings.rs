//! Everything a training run needs to know, as plain data: banter-train resolves it from its flags and
//! config file, banter-chat's learner builds it directly.

use std::path::PathBuf;

use banter_encode::encode::Mode;
use banter_model::precision::PrecisionArg;
use banter_model::runtime::DeviceArg;

/// How training starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Random weights of `config`'s shape.
    Scratch,
    /// The weights of `model`.
    Pretrained,
}

/// LoRA settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    /// Train an adapter instead of all weights (also implied by `adapter`).
    pub enabled: bool,
    /// Rank.
    pub r: i64,
    /// Alpha (the update is scaled by alpha / r).
    pub alpha: f64,
    /// Dropout.
    pub dropout: f64,
    /// Modules to adapt (PEFT suffix matching); empty: the family's default; `all-linear`: every linear
    /// layer but the output head.
    pub targets: Vec<String>,
    /// Continue from this adapter (PEFT directory) instead of fresh LoRA weights.
    pub adapter: Option<PathBuf>,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings { enabled: false, r: 8, alpha: 16.0, dropout: 0.05, targets: Vec::new(), adapter: None }
    }
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimisation {
    /// Passes over the data.
    pub epochs: u64,
    /// Stop after this many optimizer steps (overrides `epochs`).
    pub max_steps: Option<i64>,
    /// Blocks per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate (default by mode: [`TrainSettings::default_lr`]).
    pub lr: Option<f64>,
    /// Final learning rate of the cosine decay (default lr / 10).
    pub min_lr: Option<f64>,
    /// Linear warmup steps (capped at half the run).
    pub warmup: i64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// Gradient norm clipping (0 = off).
    pub clip: f64,
    /// Evaluate every N steps.
    pub eval_every: i64,
    /// Validation blocks per evaluation (0 = all).
    pub eval_blocks: usize,
    /// Stop after N evaluations without improvement (0 = off).
    pub early_stopping: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for Optimisation {
    fn default() -> Self {
        Optimisation {
            epochs: 1,
            max_steps: None,
            batch_size: 8,
            grad_accum: 1,
            lr: None,
            min_lr: None,
            warmup: 100,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            clip: 1.0,
            eval_every: 100,
            eval_blocks: 0,
            early_stopping: 0,
            seed: 42,
        }
    }
}

/// How a plain text input (`.txt`) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextFormat {
    /// A transcript when its lines carry both a user and an assistant prefix, else lines.
    #[default]
    Auto,
    /// Every non-blank line a text sample.
    Text,
    /// `User: …` / `Assistant: …` conversations (the role prefixes configurable).
    Transcript,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// Blocks JSONL, samples JSONL, or one binary token file.
    pub inputs: Vec<String>,
    /// The output directory.
    pub output: PathBuf,
    /// Scratch or pretrained (default: pretrained when `model` is given).
    pub init: Option<Init>,
    /// Shape for scratch: a preset name, a config.json, or inline JSON.
    pub config: String,
    /// The model directory to start from.
    pub model: Option<PathBuf>,
    /// tokenizer.json (default: the model's).
    pub tokenizer: Option<PathBuf>,
    /// Chat template (default: the model's, else chatml).
    pub template: Option<String>,
    /// Dropout for a scratch model.
    pub dropout: Option<f64>,
    /// LoRA.
    pub lora: LoraSettings,
    /// Block size for samples (default: min([`banter_encode::DEFAULT_BLOCK_SIZE`], n_positions)).
    pub block_size: Option<usize>,
    /// Packing for samples.
    pub mode: Mode,
    /// How `.txt` inputs are read: lines, transcripts, or decided from the file.
    pub text_format: TextFormat,
    /// Transcripts' role prefixes.
    pub prefixes: banter_core::transcript::Prefixes,
    /// Hub datasets, already fetched: (the name given, the split's data files).
    pub hub_data: Vec<(String, Vec<PathBuf>)>,
    /// Which columns of a Hub dataset hold what.
    pub columns: crate::hubdata::Columns,
    /// Validation data.
    pub val_file: Option<String>,
    /// Share of training blocks held out.
    pub val_split: f64,
    /// Also evaluate the validation data before the first step (the report's `initial_val_loss`: the
    /// starting model's, e.g. the adapter being continued).
    pub eval_at_start: bool,
    /// Train even below the quality gate.
    pub force: bool,
    /// Optimisation.
    pub opt: Optimisation,
    /// Checkpoint every N steps (0 = only at the end and when cancelled).
    pub save_every: i64,
    /// Checkpoints kept.
    pub save_total_limit: usize,
    /// Resume: `Some("")` from the newest checkpoint in `output`, `Some(dir)` from that one.
    pub resume: Option<String>,
    /// Start afresh even when `output` holds another run's checkpoints (they are removed).
    pub overwrite: bool,
    /// Device.
    pub device: DeviceArg,
    /// Precision.
    pub precision: PrecisionArg,
    /// After training, continue this text with the trained model (the report's `sample`).
    pub sample_prompt: Option<String>,
    /// Tokens generated for `sample_prompt`.
    pub sample_tokens: usize,
    /// Preference tuning: the inputs are preference records, trained with DPO.
    pub dpo: Option<crate::dpo::DpoSettings>,
    /// Data parallelism: this process's place in a torchrun launch (`None`: one process).
    pub dist: Option<banter_dist::Launch>,
    /// The batch across all ranks (`--global-batch-size`): each rank's `batch_size` is it divided by the
    /// world size, which must divide it.
    pub global_batch: Option<usize>,
    /// ZeRO stage 1: each rank keeps the AdamW state of its share of the parameters only.
    pub zero1: bool,
    /// Gradient checkpointing: keep each block's input only and recompute the blocks in the backward pass
    /// (less memory, one more forward pass of the blocks; the same loss and gradients).
    pub gradient_checkpointing: bool,
    /// `--holdout-split`: samples whose reply falls in the held-out part of a chat are left out, and the split is
    /// recorded with the output (`eval_split.json`) for `banter-eval persona`.
    pub holdout_split: Option<PathBuf>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            inputs: Vec::new(),
            output: PathBuf::new(),
            init: None,
            config: "tiny".into(),
            model: None,
            tokenizer: None,
            template: None,
            dropout: None,
            lora: LoraSettings::default(),
            block_size: None,
            mode: Mode::Pack,
            text_format: TextFormat::Auto,
            prefixes: banter_core::transcript::Prefixes::default(),
            hub_data: Vec::new(),
            columns: crate::hubdata::Columns::default(),
            val_file: None,
            val_split: 0.0,
            eval_at_start: false,
            force: false,
            opt: Optimisation::default(),
            save_every: 0,
            save_total_limit: 2,
            resume: None,
            overwrite: false,
            device: DeviceArg::Auto,
            precision: PrecisionArg::Auto,
            sample_prompt: None,
            sample_tokens: 50,
            dpo: None,
            dist: None,
            global_batch: None,
            zero1: false,
            gradient_checkpointing: false,
            holdout_split: None,
        }
    }
}

impl TrainSettings {
    /// Scratch unless a model is given.
    pub fn init(&self) -> Init {
        self.init.unwrap_or(if self.model.is_some() { Init::Pretrained } else { Init::Scratch })
    }

    /// Processes training together (1 without torchrun).
    pub fn world(&self) -> usize {
        self.dist.as_ref().map_or(1, |l| l.world)
    }

    /// True when an adapter is trained.
    pub fn is_lora(&self) -> bool {
        self.lora.enabled || self.lora.adapter.is_some()
    }

    /// The learning rate when none is given: 2e-4 LoRA, 5e-5 full fine-tune, 1e-3 scratch; DPO 5e-6 full
    /// and 5e-5 LoRA (TRL's 1e-6 default is for billion-parameter models; the small ones banter trains move
    /// little at it).
    pub fn default_lr(&self) -> f64 {
        if self.dpo.is_some() {
            if self.is_lora() { 5e-5 } else { 5e-6 }
        } else if self.is_lora() {
            2e-4
        } else if self.model.is_some() {
            5e-5
        } else {
            1e-3
        }
    }
}

/// How a run talks to the person at the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console {
    /// Print nothing but errors.
    pub quiet: bool,
    /// Show a progress bar (a terminal, and not --quiet/--no-progress).
    pub progress: bool,
}

impl Console {
    /// Silent (background work).
    pub fn silent() -> Self {
        Console { quiet: true, progress: false }
    }

    /// A line on stderr unless quiet.
    pub fn say(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            banter_core::eline!("{}", msg.as_ref());
        }
    }
}
