//! `banter-trainer`: GPT-2 training on LibTorch — from scratch, full fine-tune or LoRA — writing Hugging
//! Face model directories and PEFT adapters, with checkpoints, resume and cancellation.
//!
//! One entry point, [`train`], over plain [`TrainSettings`]: banter-train builds them from its command
//! line, banter-chat's learner builds them in code and runs them in the background with its own
//! [`banter_core::CancelToken`].

mod checkpoint;
pub mod data;
mod dist;
pub mod dpo;
pub mod dpo_data;
pub mod dpo_head;
mod dpo_step;
mod error;
mod finish;
mod holdout;
pub mod hubdata;
mod inplace;
pub mod output;
pub mod precision;
mod quality;
mod run;
pub mod rundir;
pub mod settings;
mod setup;
mod sft;
mod state;
mod zero;

pub use dpo_step::{FirstBatch, first_batch};
pub use error::{Result, TrainError};
pub use quality::quality_gate;
pub use run::train;
pub use settings::{Console, Init, LoraSettings, Optimisation, TextFormat, TrainSettings};
pub use state::{Outcome, TrainReport};

/// The name the trainer signs its messages and files with.
pub const TOOL: &str = "banter-train";
