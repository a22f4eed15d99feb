//! Continual learning: LoRA rounds on new logged exchanges (filtered by the quality gate) plus seed data,
//! in-process with banter-trainer, published atomically — in the chat's or the server's background
//! (`--learn-every N`), or as a daemon over a growing log (`watch`). All three run the same [`Plan`].

mod background;
mod plan;
mod watch;

use std::path::{Path, PathBuf};

use clap::Args;

pub use background::{Learner, Loader};
pub use plan::{Hyper, Learned, Pending, Plan, Publish, recover, rotate, sibling};
pub use watch::{WatchArgs, watch};

use crate::ModelArgs;

/// The hyperparameters of a learning round. Oodi fine-tuned with batch 2, 1 epoch, 128-token blocks:
/// `--learn-batch-size 2 --learn-epochs 1` (banter trains a LoRA adapter, so its learning rate stays
/// LoRA's 2e-4 rather than Oodi's full fine-tune 5e-5).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Learning")]
pub struct HyperArgs {
    /// Epochs of each learning round.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub learn_epochs: u64,
    /// Blocks per step of each learning round.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub learn_batch_size: usize,
    /// Peak learning rate of each round (default: LoRA's 2e-4).
    #[arg(long, value_name = "LR")]
    pub learn_lr: Option<f64>,
    /// Block size of each round (default: banter-train's, min(128, n_positions)).
    #[arg(long, value_name = "N")]
    pub learn_block_size: Option<usize>,
    /// Warmup steps of each round.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub learn_warmup: i64,
    /// Which rounds replace the live adapter: only those no worse on held-out exchanges, or every one.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "if-not-worse")]
    pub publish: Publish,
    /// Held-out exchanges (samples JSONL) that judge each round (default: every fifth logged line, never
    /// trained on).
    #[arg(long, value_name = "FILE")]
    pub eval_file: Option<std::path::PathBuf>,
}

impl HyperArgs {
    /// The plan's hyperparameters.
    pub fn hyper(&self) -> Hyper {
        Hyper {
            epochs: self.learn_epochs,
            batch_size: self.learn_batch_size,
            lr: self.learn_lr,
            block_size: self.learn_block_size,
            warmup: self.learn_warmup,
            publish: self.publish,
            eval_file: self.eval_file.clone(),
        }
    }
}

/// The plan of `--learn-every` over `log`: the adapter goes to `LOG.adapter`, the state to
/// `LOG.state.json`.
pub fn plan_for_log(
    model: &ModelArgs,
    log: &Path,
    seed_data: Option<&Path>,
    hyper: &HyperArgs,
) -> anyhow::Result<Plan> {
    let base =
        model.model.clone().ok_or_else(|| banter_core::Error::usage("--learn-every needs --model (the base model)"))?;
    Ok(Plan {
        base,
        start: model.adapter.clone(),
        out: PathBuf::from(format!("{}.adapter", log.display())),
        log: log.to_path_buf(),
        state: PathBuf::from(format!("{}.state.json", log.display())),
        seed_data: seed_data.map(Path::to_path_buf),
        hyper: hyper.hyper(),
        device: model.device_arg(),
        template: model.template.clone(),
    })
}
