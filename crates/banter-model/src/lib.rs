//! banter-model: GPT-2 on LibTorch through `tch`.
//!
//! This crate is the only one (with the binaries that use it: banter-train, banter-chat) that links
//! libtorch. See `docs/architecture.md`.

pub mod runtime;
