//! `banter-trainer`: GPT-2 training on LibTorch — from scratch, full fine-tune or LoRA — writing Hugging
//! Face model directories and PEFT adapters, with checkpoints, resume and cancellation.
//!
//! One entry point, [`train`], over plain [`TrainSettings`]: banter-train builds them from its command
//! line, banter-chat's learner builds them in code and runs them in the background with its own
//! [`banter_core::CancelToken`].

pub mod data;
pub mod dpo;
pub mod dpo_data;
pub mod dpo_head;
pub mod output;
pub mod precision;
mod run;
mod run_dpo;
mod run_end;
pub mod rundir;
pub mod settings;
mod setup;

pub use run::{Outcome, TrainReport, train};
pub use run_dpo::{FirstBatch, first_batch};
pub use settings::{Console, Init, LoraSettings, Optimisation, TrainSettings};
pub use setup::quality_gate;

/// The name the trainer signs its messages and files with.
pub const TOOL: &str = "banter-train";
