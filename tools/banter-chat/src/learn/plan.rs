//! The one learning engine behind `watch`, the REPL's `--learn-every` and `serve --learn-every`: read the
//! log lines not yet learned, keep what the quality gate keeps, continue the current LoRA adapter on them
//! (plus seed data) with banter-trainer, publish the new adapter atomically, then record the lines as
//! learned. A crash at any point loses nothing: the state file moves only after the publish, so the lines
//! are learned again on the next start.

use std::path::{Path, PathBuf};

use banter_core::records::{Record, Sample};
use banter_core::{CancelToken, Exit};
use banter_model::runtime::DeviceArg;
use banter_quality::{Profile, Settings};
use banter_trainer::{Console, LoraSettings, Optimisation, Outcome, TrainSettings};

/// Training hyperparameters of a learning round.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    /// Passes over the new exchanges (+ seed data).
    pub epochs: u64,
    /// Blocks per step.
    pub batch_size: usize,
    /// Peak learning rate (None: banter-train's LoRA default, 2e-4).
    pub lr: Option<f64>,
    /// Block size (None: banter-train's default).
    pub block_size: Option<usize>,
    /// Warmup steps.
    pub warmup: i64,
    /// When a round's adapter is published.
    pub publish: Publish,
    /// Held-out exchanges to judge a round by (None: every fifth line of the log, never trained on).
    pub eval_file: Option<PathBuf>,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            epochs: 2,
            batch_size: 4,
            lr: None,
            block_size: None,
            warmup: 2,
            publish: Publish::IfNotWorse,
            eval_file: None,
        }
    }
}

/// `--publish`: which learned adapters replace the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Publish {
    /// Only when its loss on the held-out exchanges is no worse than the live adapter's.
    IfNotWorse,
    /// Every round's (the behaviour before held-out checks).
    Always,
}

/// Every `HOLD_OUT`-th line of the log (the 5th, 10th, …) is held out: never trained on, it judges rounds.
const HOLD_OUT: usize = 5;

/// What to learn from and where the result goes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The base model (`--model`).
    pub base: PathBuf,
    /// The adapter to start from until a learned one exists (`--adapter`: a persona).
    pub start: Option<PathBuf>,
    /// Where the learned adapter is published (the previous one is kept as `DIR.prev`).
    pub out: PathBuf,
    /// The growing JSONL log.
    pub log: PathBuf,
    /// Lines learned so far (`{"lines_consumed": N}`).
    pub state: PathBuf,
    /// Samples trained on with every round.
    pub seed_data: Option<PathBuf>,
    /// Hyperparameters.
    pub hyper: Hyper,
    /// The device (the chat's `--device`).
    pub device: DeviceArg,
    /// The chat template (`--template`).
    pub template: Option<String>,
}

/// Log lines not learned yet.
#[derive(Debug, Default)]
pub struct Pending {
    /// Exchanges to learn from.
    pub samples: Vec<Sample>,
    /// Complete lines in the log (learned once this round is published).
    pub upto: usize,
    /// Lines that are not a sample.
    pub unreadable: usize,
    /// Replies the user rejected with `--feedback` (logged, never learned).
    pub rejected: usize,
    /// Held-out exchanges of the whole log (every fifth line), learned or not: they judge a round.
    pub held_out: Vec<Sample>,
}

/// A finished round.
#[derive(Debug)]
pub struct Learned {
    /// New lines read.
    pub fresh: usize,
    /// Exchanges the quality gate kept (and trained on).
    pub kept: usize,
    /// The held-out loss of the live adapter and of the new one, when there were held-out exchanges.
    pub held_out: Option<(f64, f64)>,
    /// Whether the new adapter replaced the live one.
    pub published: bool,
}

impl Learned {
    /// The round in words (for the chat's and `watch`'s notices); `state` says where a published adapter
    /// stands ("is now in use").
    pub fn describe(&self, out: &Path, state: &str) -> String {
        let loss = match self.held_out {
            Some((before, after)) => format!("held-out loss {before:.4} → {after:.4}; "),
            None => "no held-out exchanges yet; ".into(),
        };
        if self.published {
            format!(
                "learned from {} of {} new exchange(s); {loss}adapter {} {state}",
                self.kept,
                self.fresh,
                out.display()
            )
        } else {
            format!(
                "learned from {} of {} new exchange(s) but did not publish: {loss}the live adapter stays (--publish always publishes every round)",
                self.kept, self.fresh
            )
        }
    }
}

impl Plan {
    /// The adapter training continues from: the last learned one, else `start`.
    pub fn current(&self) -> Option<&Path> {
        if self.out.join("adapter_config.json").exists() { Some(&self.out) } else { self.start.as_deref() }
    }

    /// Lines learned so far.
    pub fn consumed(&self) -> usize {
        std::fs::read_to_string(&self.state)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["lines_consumed"].as_u64())
            .unwrap_or(0) as usize
    }

    /// Complete lines of the log after the learned ones.
    pub fn pending(&self) -> Pending {
        let text = std::fs::read(&self.log).unwrap_or_default();
        // A line still being written (no newline yet) waits for the next round.
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&text[..complete]);
        let lines: Vec<&str> = text.lines().collect();
        let mut p = Pending { upto: lines.len(), ..Default::default() };
        let consumed = self.consumed();
        let hold = self.hyper.eval_file.is_none();
        for (i, l) in lines.iter().enumerate() {
            let held = hold && i % HOLD_OUT == HOLD_OUT - 1;
            if i < consumed && !held {
                continue;
            }
            let v = serde_json::from_str::<serde_json::Value>(l).ok();
            let bad = v.as_ref().is_some_and(|v| v["accepted"] == false && v.get("corrected").is_none());
            let sample = v.filter(|_| !bad).and_then(|v| Sample::from_value(v).ok());
            match (held, i < consumed, sample) {
                (true, _, Some(s)) => p.held_out.push(s),
                (true, _, None) => {}
                (false, _, Some(s)) => p.samples.push(s),
                (false, _, None) if bad => p.rejected += 1,
                (false, _, None) => p.unreadable += 1,
            }
        }
        p
    }

    /// Number of complete log lines not learned yet.
    pub fn backlog(&self) -> usize {
        let text = std::fs::read(&self.log).unwrap_or_default();
        text.iter().filter(|&&b| b == b'\n').count().saturating_sub(self.consumed())
    }

    /// One round: learn the pending lines and publish. When nothing passes the gate the round fails, and
    /// the lines still count as learned (they would never pass).
    pub fn learn(&self, cancel: &CancelToken) -> anyhow::Result<Learned> {
        recover(&self.out);
        let p = self.pending();
        let fresh = p.samples.len() + p.unreadable + p.rejected;
        if fresh == 0 {
            self.record(p.upto)?;
            anyhow::bail!("the new exchange(s) are held out to judge later rounds: nothing to train on this round");
        }
        let settings = Settings::new(Profile::Chat);
        let gate = banter_quality::gate(&p.samples, &settings);
        let kept = gate.keep(p.samples);
        if kept.is_empty() {
            self.record(p.upto)?;
            anyhow::bail!("no new exchange passed the quality checks ({})", gate.summary());
        }
        let tmp = tempfile::Builder::new().prefix("banter-learn").tempdir()?;
        let data = tmp.path().join("new.jsonl");
        write_samples(&data, &kept)?;
        // The round is judged on held-out exchanges: `--eval-file`, or the log's every fifth line.
        let held_out = match &self.hyper.eval_file {
            Some(f) => Some(f.clone()),
            None => {
                let held = banter_quality::gate(&p.held_out, &settings).keep(p.held_out);
                let f = tmp.path().join("held-out.jsonl");
                (!held.is_empty()).then(|| write_samples(&f, &held).map(|_| f)).transpose()?
            }
        };
        let next = sibling(&self.out, "next");
        let _ = std::fs::remove_dir_all(&next);
        let settings = self.settings(&data, &next, held_out.as_deref());
        let report = match banter_trainer::train(&settings, Console::silent(), cancel)? {
            Outcome::Trained(r) => r,
            Outcome::Cancelled { .. } => {
                let _ = std::fs::remove_dir_all(&next);
                return Err(banter_core::exit::Coded::new(Exit::Interrupted, "learning was cancelled").into());
            }
        };
        let losses = report.initial_val_loss.zip(report.last_val_loss);
        let published = self.hyper.publish == Publish::Always || losses.is_none_or(|(before, after)| after <= before);
        if published {
            // Checkpoints are for resuming a run; the published adapter is the final weights only.
            for (_, c) in banter_trainer::output::checkpoints(&next) {
                let _ = std::fs::remove_dir_all(c);
            }
            rotate(&self.out, &next)?;
        } else {
            let _ = std::fs::remove_dir_all(&next);
        }
        // Either way the lines were learned from: a round that made the held-out loss worse is not retried.
        self.record(p.upto)?;
        Ok(Learned { fresh, kept: kept.len(), held_out: losses, published })
    }

    fn settings(&self, data: &Path, next: &Path, held_out: Option<&Path>) -> TrainSettings {
        let mut inputs = vec![data.display().to_string()];
        inputs.extend(self.seed_data.iter().map(|s| s.display().to_string()));
        TrainSettings {
            inputs,
            output: next.to_path_buf(),
            model: Some(self.base.clone()),
            template: self.template.clone(),
            lora: LoraSettings { enabled: true, adapter: self.current().map(Path::to_path_buf), ..Default::default() },
            block_size: self.hyper.block_size,
            // The new exchanges were filtered by the gate already; seed data is the user's own choice.
            force: true,
            opt: Optimisation {
                epochs: self.hyper.epochs,
                batch_size: self.hyper.batch_size,
                lr: self.hyper.lr,
                warmup: self.hyper.warmup,
                ..Default::default()
            },
            device: self.device,
            val_file: held_out.map(|f| f.display().to_string()),
            eval_at_start: held_out.is_some(),
            ..Default::default()
        }
    }

    fn record(&self, upto: usize) -> anyhow::Result<()> {
        let v = serde_json::json!({"lines_consumed": upto, "adapter": self.out, "updated": banter_core::util::now_rfc3339()});
        Ok(banter_model::io::write_json(&self.state, &v)?)
    }
}

fn write_samples(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let mut w = banter_core::jsonl::JsonlWriter::create(Some(path))?;
    for s in samples {
        w.write(&s.to_value())?;
    }
    w.commit()?;
    Ok(())
}

/// `DIR.suffix` beside `dir`.
pub fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", dir.display()))
}

/// Moves `next` into place as `dir`, keeping the previous adapter as `dir.prev` for rollback.
pub fn rotate(dir: &Path, next: &Path) -> std::io::Result<()> {
    let prev = sibling(dir, "prev");
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&prev);
        // One atomic exchange where the system has it: there is never a moment without an adapter.
        match banter_core::dirswap::exchange(next, dir) {
            Ok(()) => return std::fs::rename(next, &prev),
            Err(e) if banter_core::dirswap::unsupported(&e) => std::fs::rename(dir, &prev)?,
            Err(e) => return Err(e),
        }
    }
    std::fs::rename(next, dir)
}

/// After a crash between [`rotate`]'s two renames: the previous adapter goes back into place, and a
/// half-trained `DIR.next` is removed.
pub fn recover(dir: &Path) {
    let prev = sibling(dir, "prev");
    if !dir.exists() && prev.join("adapter_config.json").exists() {
        let _ = std::fs::rename(&prev, dir);
    }
    let _ = std::fs::remove_dir_all(sibling(dir, "next"));
}
