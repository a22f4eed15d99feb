//! banter-model: GPT-2 on LibTorch through `tch`.
//!
//! - [`config`]: `GPT2Config` (Hugging Face's `config.json`).
//! - [`gpt2`]: the model, in HF's layout and names, with a KV cache.
//! - [`lora`]: PEFT-compatible LoRA (attach, merge).
//! - [`io`]: safetensors in and out, HF model directories, PEFT adapters.
//! - [`optim`]: AdamW with savable state, and the learning-rate schedule.
//! - [`runtime`]: libtorch version, devices.
//!
//! This crate (with the binaries that use it: banter-train, banter-chat) is the only one that links
//! libtorch. See `docs/architecture.md`.

pub mod config;
pub mod decode;
pub mod generate;
pub mod gpt2;
pub mod head;
pub mod io;
pub mod kvcache;
pub mod lora;
pub mod optim;
pub mod precision;
pub mod quant;
pub mod runtime;

use std::path::Path;

pub use config::Gpt2Config;
pub use gpt2::{Gpt2, KvCache, Pass};
pub use lora::LoraConfig;

/// Errors of the model crate.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A weight file or adapter is not what GPT-2 needs.
    #[error("{0}")]
    Format(String),
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl ModelError {
    /// An I/O error on a path.
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        ModelError::Io(format!("{}: {e}", path.display()))
    }

    /// The exit code: I/O 4, bad files or configs 3 / 2, libtorch 5.
    pub fn exit(&self) -> banter_core::Exit {
        match self {
            ModelError::Io(_) => banter_core::Exit::Io,
            ModelError::Format(_) => banter_core::Exit::BadInput,
            ModelError::Config(_) => banter_core::Exit::Usage,
            ModelError::Torch(_) => banter_core::Exit::Model,
        }
    }
}
