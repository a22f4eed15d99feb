//! `watch`: MTN Sails' retrain daemon — a learning round whenever a growing log has enough new lines.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use banter_core::exit::Coded;
use banter_core::{CancelToken, Error, Exit, interrupt};

use super::{HyperArgs, Plan, recover};
use crate::{ModelArgs, TOOL};

/// `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The growing JSONL log (`banter-chat --log`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Train when this many new lines have arrived.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub threshold: usize,
    /// Seconds between looks at the file.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub poll: f64,
    /// Where the adapter lives (the previous one is kept as DIR.prev for rollback).
    #[arg(short = 'o', long, value_name = "DIR", required = true)]
    pub output: PathBuf,
    /// State file (lines consumed; default FILE.state.json).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Samples always trained on with the new lines.
    #[arg(long, value_name = "FILE")]
    pub seed_data: Option<PathBuf>,
    /// Look once, train if there is enough, and exit (for cron and tests).
    #[arg(long)]
    pub once: bool,
    /// Stop after this many failed trainings in a row (MTN: 5).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_failures: usize,
    #[command(flatten)]
    pub hyper: HyperArgs,
}

/// The daemon: Ctrl-C stops it between rounds, or cancels a round (nothing is published, the lines stay
/// unlearned) — the next start resumes from the state file.
pub fn watch(a: &WatchArgs, model: &ModelArgs, common: &banter_core::cli::CommonArgs) -> anyhow::Result<Exit> {
    let base = model.model.clone().ok_or_else(|| Error::usage("watch needs --model (the base model)"))?;
    let plan = Plan {
        base,
        start: model.adapter.clone(),
        out: a.output.clone(),
        log: a.file.clone(),
        state: a.state.clone().unwrap_or_else(|| PathBuf::from(format!("{}.state.json", a.file.display()))),
        seed_data: a.seed_data.clone(),
        hyper: a.hyper.hyper(),
        device: model.device_arg(),
        template: model.template.clone(),
    };
    recover(&plan.out);
    interrupt::set_cooperative(true);
    let cancel = CancelToken::interrupt();
    let mut failures = 0;
    loop {
        let backlog = plan.backlog();
        if backlog >= a.threshold.max(1) {
            common.say(format!("{TOOL} watch: {backlog} new line(s); training…"));
            match plan.learn(&cancel) {
                Ok(l) => {
                    failures = 0;
                    common.say(format!("{TOOL} watch: {}", l.describe(&a.output, "is now in use")));
                }
                Err(_) if cancel.is_cancelled() => return Ok(Exit::Interrupted),
                Err(e) => {
                    failures += 1;
                    banter_core::eline!(
                        "{TOOL} watch: training failed ({failures}/{}), the previous adapter stays: {e:#}",
                        a.max_failures
                    );
                    if failures >= a.max_failures {
                        return Err(Coded::new(Exit::Model, format!("{failures} failed trainings in a row")).into());
                    }
                }
            }
        }
        if a.once {
            return Ok(Exit::Success);
        }
        let until = Instant::now() + Duration::from_secs_f64(a.poll.max(0.1));
        while Instant::now() < until && !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(100));
        }
        if cancel.is_cancelled() {
            return Ok(Exit::Interrupted);
        }
    }
}
