//! banter-model: causal LMs on LibTorch through `tch` — GPT-2, the Llama family and OPT.
//!
//! - [`lm`]: [`Lm`], any supported family as the trainer and the chat see it, through one trait
//!   ([`CausalLm`], in [`causal`] with [`Pass`]).
//! - [`families`]: what each family is (one table row: transformers class, llama.cpp architecture, dropout
//!   key, LoRA targets, defaults) and one file per architecture: [`gpt2`] (Conv1D), [`llama`] (every
//!   Llama-like family through a typed config), [`opt`]; [`config`]: GPT-2's `config.json`.
//! - The layer all of them share: [`kvcache`] (the one KV cache), [`cached`] (masks, the next-token loss,
//!   batched and one-at-a-time generation over the cache), [`head`] (the fused, chunked loss head),
//!   [`linear`] (Linear with LoRA), [`lora`] (PEFT-compatible LoRA over Linear and Conv1D: attach, merge),
//!   [`generate`] (sampling), [`precision`] (precision and device choice).
//! - [`io`]: safetensors in and out, HF model directories, PEFT adapters.
//! - [`optim`]: AdamW with savable state, and the learning-rate schedule.
//! - [`runtime`]: libtorch version, devices.
//!
//! This crate (with the binaries that use it: banter-train, banter-chat) is the only one that links
//! libtorch. See `docs/architecture.md`.

mod act;
pub mod bf16;
pub mod cached;
pub mod calibration;
pub mod castcache;
pub mod causal;
pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod dropout;
pub mod families;
pub mod generate;
pub mod head;
pub mod io;
pub mod kvcache;
pub mod linear;
pub mod lm;
mod lm_config;
mod lm_infer;
mod lm_lora;
pub mod lora;
pub mod optim;
pub mod pickle;
pub mod precision;
pub mod qdot;
pub mod quant;
mod rows;
pub mod runtime;
pub mod torch_zip;
pub mod varsource;
pub mod xent;

use std::path::Path;

pub use causal::CausalLm;
pub use causal::Pass;
pub use config::Gpt2Config;
use families::llama_config;
pub use families::{gpt2, llama, opt};
pub use gpt2::Gpt2;
pub use kvcache::KvCache;
pub use lm::Lm;
pub use lora::LoraConfig;

/// Errors of the model crate. Causes are kept as sources; [`init`] teaches banter-core's exit-code
/// classifier this type, so a `ModelError` anywhere in an error chain gets its exit code.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A weight file or adapter is not what GPT-2 needs.
    #[error("{0}")]
    Format(String),
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// banter-core's I/O (atomic outputs) failed.
    #[error(transparent)]
    Core(#[from] banter_core::Error),
}

impl ModelError {
    /// An I/O error on a path.
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        ModelError::Io { path: path.to_path_buf(), source: e }
    }

    /// The exit code: I/O 4, bad files or configs 3 / 2, libtorch 5.
    pub fn exit(&self) -> banter_core::Exit {
        match self {
            ModelError::Io { .. } => banter_core::Exit::Io,
            ModelError::Format(_) => banter_core::Exit::BadInput,
            ModelError::Config(_) => banter_core::Exit::Usage,
            ModelError::Torch(_) => banter_core::Exit::Model,
            ModelError::Core(e) => e.exit(),
        }
    }
}

/// Process set-up for the binaries that link libtorch: glibc keeps freed memory (see
/// [`runtime::keep_freed_memory`]) and banter-core's exit-code classifier learns [`ModelError`].
pub fn init() {
    runtime::keep_freed_memory();
    banter_core::exit::register(|cause| cause.downcast_ref::<ModelError>().map(ModelError::exit));
    banter_core::exit::register(|cause| {
        cause.downcast_ref::<runtime::RuntimeError>().map(|_| banter_core::Exit::Model)
    });
}

#[cfg(test)]
mod exit_tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn model_errors_keep_their_source_and_get_their_exit_code_through_any_chain() {
        init();
        let io = ModelError::io(Path::new("w/model.safetensors"), std::io::Error::other("disk on fire"));
        assert!(std::error::Error::source(&io).is_some(), "the io::Error is kept as the source");
        let chained = Err::<(), _>(io).context("loading the model").unwrap_err();
        // An io::Error deeper in the chain would say 4 as well; a format error says 3, a config error 2.
        assert_eq!(banter_core::exit::classify(&chained), banter_core::Exit::Io);
        let fmt = anyhow::Error::from(ModelError::Format("bad header".into())).context("outer");
        assert_eq!(banter_core::exit::classify(&fmt), banter_core::Exit::BadInput);
        let cfg = anyhow::Error::from(ModelError::Config("n_head".into()));
        assert_eq!(banter_core::exit::classify(&cfg), banter_core::Exit::Usage);
        let rt = anyhow::Error::from(runtime::RuntimeError::NoCuda);
        assert_eq!(banter_core::exit::classify(&rt), banter_core::Exit::Model);
    }
}
