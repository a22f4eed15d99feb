//! Continual learning: train a LoRA adapter on new exchanges (filtered with banter-validate's checks) plus
//! seed data, in-process with banter-train's library, then swap it in — in the chat's background
//! (`--learn-every N`), or as a daemon over a growing log (`watch`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banter_core::records::{Record, Sample, Turn};
use banter_core::{Error, Exit};
use clap::Args;

use crate::engine::Engine;
use crate::{Cli, ModelArgs, TOOL};

/// Keeps the samples banter-validate's default checks accept.
pub fn filter(samples: Vec<Sample>) -> Vec<Sample> {
    use banter_validate::checks::{self, Profile, Settings, Severity};
    let s = Settings::new(Profile::Chat);
    samples
        .into_iter()
        .filter(|x| checks::evaluate(x, &s).iter().all(|f| s.severity(f.check) != Severity::Reject))
        .collect()
}

/// Trains a LoRA adapter (continuing `current` if given) on `samples` plus `seed_data`, into `out`.
pub fn train_adapter(
    base: &Path,
    current: Option<&Path>,
    samples: &[Sample],
    seed_data: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("banter-learn").tempdir()?;
    let data = tmp.path().join("new.jsonl");
    let mut w = banter_core::jsonl::JsonlWriter::create(Some(&data))?;
    for s in samples {
        w.write(&s.to_value())?;
    }
    w.commit()?;
    let mut args: Vec<String> = vec!["banter-train".into(), data.display().to_string()];
    if let Some(s) = seed_data {
        args.push(s.display().to_string());
    }
    args.extend([
        "--model".into(),
        base.display().to_string(),
        "--lora".into(),
        "--force".into(),
        "-q".into(),
        "--no-progress".into(),
    ]);
    args.extend(["--epochs".into(), "2".into(), "--batch-size".into(), "4".into(), "--warmup".into(), "2".into()]);
    if let Some(c) = current {
        args.extend(["--adapter".into(), c.display().to_string()]);
    }
    args.extend(["-o".into(), out.display().to_string()]);
    let cli = banter_train::Cli::try_parse_from(args).map_err(|e| anyhow::anyhow!("{e}"))?;
    match banter_train::run(cli)? {
        Exit::Success => Ok(()),
        other => Err(anyhow::anyhow!("training ended with exit code {}", other.code())),
    }
}

/// Moves `next` into place as `dir`, keeping the previous adapter as `dir.prev` for rollback.
pub fn rotate(dir: &Path, next: &Path) -> std::io::Result<()> {
    let prev = PathBuf::from(format!("{}.prev", dir.display()));
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&prev);
        std::fs::rename(dir, &prev)?;
    }
    std::fs::rename(next, dir)
}

use clap::Parser;

/// Background learning for the interactive chat.
#[derive(Debug)]
pub struct Learner {
    every: usize,
    base: PathBuf,
    dir: PathBuf,
    seed_data: Option<PathBuf>,
    pending: Mutex<Vec<Sample>>,
    busy: Arc<Mutex<bool>>,
    done: Mutex<Option<mpsc::Receiver<Result<Engine, String>>>>,
    args: ModelArgs,
}

impl Learner {
    /// A learner for the chat's model.
    pub fn new(every: usize, cli: &Cli) -> Self {
        let base = cli.model.model.clone().unwrap_or_default();
        let dir = cli
            .chat
            .log
            .as_ref()
            .map(|l| PathBuf::from(format!("{}.adapter", l.display())))
            .unwrap_or_else(|| PathBuf::from("banter-learned-adapter"));
        Learner {
            every: every.max(1),
            base,
            dir,
            seed_data: cli.chat.seed_data.clone(),
            pending: Mutex::new(Vec::new()),
            busy: Arc::new(Mutex::new(false)),
            done: Mutex::new(None),
            args: cli.model.clone(),
        }
    }

    /// Records an exchange; every `every` exchanges starts training in the background.
    pub fn exchange(&self, turns: Vec<Turn>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.push(Sample::chat(turns));
        if p.len() < self.every || *self.busy.lock().unwrap_or_else(|e| e.into_inner()) {
            return;
        }
        let batch: Vec<Sample> = std::mem::take(&mut *p);
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = true;
        let (tx, rx) = mpsc::channel();
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
        let (base, dir, seed, busy, args) =
            (self.base.clone(), self.dir.clone(), self.seed_data.clone(), self.busy.clone(), self.args.clone());
        eprintln!("({TOOL}: learning from {} new exchange(s) in the background…)", batch.len());
        std::thread::spawn(move || {
            let result = (|| -> anyhow::Result<Engine> {
                let kept = filter(batch);
                if kept.is_empty() {
                    anyhow::bail!("no new exchange passed the quality checks");
                }
                let next = PathBuf::from(format!("{}.next", dir.display()));
                let _ = std::fs::remove_dir_all(&next);
                let current = dir.exists().then_some(dir.as_path());
                train_adapter(&base, current, &kept, seed.as_deref(), &next)?;
                let engine =
                    Engine::load(&base, Some(&next), tch::Device::Cpu, args.weights(), args.template.as_deref())?;
                rotate(&dir, &next)?;
                Ok(engine)
            })();
            let _ = tx.send(result.map_err(|e| format!("{e:#}")));
            *busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
        });
    }

    /// Swaps in a newly trained model if one is ready; returns a notice.
    pub fn poll_swap(&self, engine: &mut Engine) -> Option<String> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let rx = done.as_ref()?;
        let r = rx.try_recv().ok()?;
        *done = None;
        Some(match r {
            Ok(new) => {
                *engine = new;
                format!("({TOOL}: learned from the new exchanges; adapter {} is now in use)", self.dir.display())
            }
            Err(e) => format!("({TOOL}: learning failed, the previous model stays: {e})"),
        })
    }

    /// Waits for a training run in progress (so its files are complete) before the chat exits.
    pub fn finish(self) {
        while *self.busy.lock().unwrap_or_else(|e| e.into_inner()) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

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
}

/// The daemon.
pub fn watch(a: &WatchArgs, model: &ModelArgs, common: &banter_core::cli::CommonArgs) -> anyhow::Result<Exit> {
    let base = model.model.clone().ok_or_else(|| Error::usage("watch needs --model (the base model)"))?;
    let state_path = a.state.clone().unwrap_or_else(|| PathBuf::from(format!("{}.state.json", a.file.display())));
    let mut consumed: usize = std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["lines_consumed"].as_u64())
        .unwrap_or(0) as usize;
    banter_core::interrupt::set_cooperative(true);
    let mut failures = 0;
    loop {
        let lines: Vec<String> =
            std::fs::read_to_string(&a.file).unwrap_or_default().lines().map(str::to_string).collect();
        let fresh = lines.len().saturating_sub(consumed);
        if fresh >= a.threshold {
            let mut samples = Vec::new();
            let mut bad = 0;
            for l in &lines[consumed..] {
                match serde_json::from_str(l).ok().and_then(|v| Sample::from_value(v).ok()) {
                    Some(s) => samples.push(s),
                    None => bad += 1,
                }
            }
            let kept = filter(samples);
            common.say(format!(
                "{TOOL} watch: {fresh} new line(s), {} kept by the quality checks, {bad} unreadable; training…",
                kept.len()
            ));
            let next = PathBuf::from(format!("{}.next", a.output.display()));
            let _ = std::fs::remove_dir_all(&next);
            let current = a.output.exists().then_some(a.output.as_path()).or(model.adapter.as_deref());
            let result = if kept.is_empty() {
                Err(anyhow::anyhow!("no new sample passed the quality checks"))
            } else {
                train_adapter(&base, current, &kept, a.seed_data.as_deref(), &next)
                    .and_then(|()| Ok(rotate(&a.output, &next)?))
            };
            match result {
                Ok(()) => {
                    failures = 0;
                    consumed = lines.len();
                    banter_model::io::write_json(&state_path, &serde_json::json!({"lines_consumed": consumed, "adapter": a.output, "updated": banter_core::util::now_rfc3339()}))
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    common.say(format!(
                        "{TOOL} watch: adapter updated in {} (previous kept as {}.prev)",
                        a.output.display(),
                        a.output.display()
                    ));
                }
                Err(e) => {
                    failures += 1;
                    eprintln!(
                        "{TOOL} watch: training failed ({failures}/{}), the previous adapter stays: {e:#}",
                        a.max_failures
                    );
                    if failures >= a.max_failures {
                        return Err(banter_core::exit::Coded::new(
                            Exit::Model,
                            format!("{failures} failed trainings in a row"),
                        )
                        .into());
                    }
                }
            }
        }
        if a.once || banter_core::interrupt::interrupted() {
            break;
        }
        let until = std::time::Instant::now() + Duration::from_secs_f64(a.poll.max(0.1));
        while std::time::Instant::now() < until && !banter_core::interrupt::interrupted() {
            std::thread::sleep(Duration::from_millis(100));
        }
        if banter_core::interrupt::interrupted() {
            return Ok(Exit::Interrupted);
        }
    }
    Ok(Exit::Success)
}
