//! banter-convert: models out of banter, for other runtimes.
//!
//! - [`onnx`]: a graph in optimum's `text-generation-with-past` layout (inputs `input_ids`,
//!   `attention_mask`, `position_ids`, `past_key_values.N.key/value`; outputs `logits`,
//!   `present.N.key/value`), written from Rust as ONNX protobuf, fp32 or with int8 linear weights.
//! - [`gguf`]: GGUF v3 with llama.cpp's architecture names, metadata keys, tensor names and tokenizer.
//!
//! Both start from a [`Source`]: a model directory of any family banter loads, with a LoRA adapter merged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use banter_model::Lm;
use tch::{Device, Tensor};

pub mod gguf;
pub mod onnx;
mod pycheck;
mod stage;

pub use stage::StagedDir;

/// Errors of an export; each keeps its cause and has an exit code ([`ConvertError::exit`]).
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Loading the model failed.
    #[error(transparent)]
    Model(#[from] banter_model::ModelError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// banter-core's output (atomic files) failed.
    #[error(transparent)]
    Core(#[from] banter_core::Error),
    /// A file of the model is not what it should be.
    #[error("{0}")]
    Format(String),
    /// The target format cannot hold this model.
    #[error("{0}")]
    Unsupported(String),
    /// The exported model does not compute what banter computes.
    #[error("{0}")]
    Mismatch(String),
    /// The check could not run (no Python with onnxruntime).
    #[error("{0}")]
    CannotVerify(String),
}

impl ConvertError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ConvertError::Io { path: path.to_path_buf(), source }
    }

    /// The exit code: a mismatch 1 (the gate), unsupported 2, bad files 3, I/O and a missing checker 4,
    /// the model's own errors as banter-model says.
    pub fn exit(&self) -> banter_core::Exit {
        use banter_core::Exit;
        match self {
            ConvertError::Model(e) => e.exit(),
            ConvertError::Io { .. } | ConvertError::CannotVerify(_) => Exit::Io,
            ConvertError::Core(e) => e.exit(),
            ConvertError::Format(_) => Exit::BadInput,
            ConvertError::Unsupported(_) => Exit::Usage,
            ConvertError::Mismatch(_) => Exit::GateFailed,
        }
    }
}

/// Teaches banter-core's exit-code classifier [`ConvertError`] (idempotent).
pub fn init() {
    banter_core::exit::register(|cause| cause.downcast_ref::<ConvertError>().map(ConvertError::exit));
}

/// Deterministic prompts (token ids of a few lengths within `vocab`) for the checks against other runtimes.
pub fn check_prompts(vocab: i64) -> Vec<Vec<i64>> {
    let mut r = banter_core::util::SplitMix64::new(17);
    [11usize, 6, 16].iter().map(|&n| (0..n).map(|_| r.below(vocab.max(1) as usize) as i64).collect()).collect()
}

/// A model to export: loaded in fp32 on the CPU, with its adapter (if any) merged into the weights.
#[derive(Debug)]
pub struct Source {
    /// The model directory.
    pub dir: PathBuf,
    /// Where the tokenizer, template and generation files are taken from: the adapter's directory when it
    /// ships a tokenizer (an adapter that grew the vocabulary does), else the model's.
    pub files_dir: PathBuf,
    /// The model.
    pub lm: Lm,
    /// Its `config.json` as banter writes it.
    pub config: serde_json::Value,
}

impl Source {
    /// Loads `dir` (any family banter supports) and merges `adapter`.
    pub fn load(dir: &Path, adapter: Option<&Path>) -> Result<Self, ConvertError> {
        let mut lm = banter_model::lm::load_model(dir, Device::Cpu, tch::Kind::Float)?;
        if let Some(a) = adapter {
            lm.load_adapter(a)?;
            lm.merge_lora();
        }
        let config = lm.config_json();
        let files_dir = match adapter {
            Some(a) if a.join("tokenizer.json").is_file() || a.join("tokenizer.model").is_file() => a.to_path_buf(),
            _ => dir.to_path_buf(),
        };
        Ok(Source { dir: dir.to_path_buf(), files_dir, lm, config })
    }

    /// `config.json`'s `model_type`.
    pub fn model_type(&self) -> &str {
        self.lm.model_type()
    }

    /// Every weight under its Hugging Face name, fp32, sorted by name.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.lm.vs().variables().into_iter().map(|(k, v)| (k, v.detach().to_kind(tch::Kind::Float))).collect()
    }

    /// Greedy decoding through banter's own decode path (the KV cache banter-chat uses): the prompt's
    /// next-token logits and `steps` tokens.
    pub fn greedy(&self, prompt: &[i64], steps: usize) -> (Vec<f32>, Vec<i64>) {
        let mut stepper = self.lm.stepper();
        let p: Vec<u32> = prompt.iter().map(|&t| t as u32).collect();
        let mut logits = stepper.prefill(&p);
        let first = logits.clone();
        let mut out = Vec::with_capacity(steps);
        for _ in 0..steps {
            let t = banter_model::generate::argmax(&logits);
            out.push(i64::from(t));
            stepper.step(t, &mut logits);
        }
        (first, out)
    }

    /// The tokenizer, template and generation files to copy beside an export.
    pub fn side_files(&self) -> Vec<PathBuf> {
        const NAMES: &[&str] = &[
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "tokenizer.model",
            "vocab.json",
            "merges.txt",
            "generation_config.json",
            "chat_template.jinja",
            "banter_template.json",
        ];
        NAMES.iter().map(|n| self.files_dir.join(n)).filter(|p| p.is_file()).collect()
    }
}
