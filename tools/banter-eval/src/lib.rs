//! `banter-eval`: held-out loss, persona fidelity and question answering for banter models, with a text
//! summary on stderr, `--json` on stdout, `--html` report pages, and gates that exit 1 when a model misses.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};
use banter_eval_lib::LoadSettings;
use banter_model::generate::Sampling;
use banter_model::precision::PrecisionArg;

mod loss;
mod persona;
mod qa;
mod split;

pub(crate) const TOOL: &str = "banter-eval";

const EXAMPLES: &str = "Examples:
  banter-eval split messages.jsonl --holdout 0.1 -o split.json
  banter-train persona.jsonl --model base --lora --holdout-split split.json -o sara-lora
  banter-eval persona base --adapter sara-lora --messages messages.jsonl --persona Sara --html report.html
  banter-eval persona base --adapter sara-lora --messages messages.jsonl --persona Sara \\
      --min-attribution 0.5 --better-than last-week-lora      # exit 1 when missed
  banter-eval loss base heldout.jsonl --adapter sara-lora --adapter last-week-lora --json
  banter-eval qa wiki-model questions.jsonl --min-f1 0.3";

/// Does it talk like them? Held-out loss, persona fidelity (attribution, style, stylometry, diversity) and QA.
#[derive(Debug, Parser)]
#[command(name = "banter-eval", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Hold out the last part of a chat by time: writes the split file banter-train and persona use.
    Split(split::SplitArgs),
    /// Loss and perplexity on samples (reply tokens only, training's masks), several models side by side.
    Loss(loss::LossArgs),
    /// Generate the persona's replies to held-out contexts and compare them with the real ones.
    Persona(persona::PersonaArgs),
    /// Exact match and token F1 of generated answers to question/answer pairs.
    Qa(qa::QaArgs),
}

/// How models are loaded (shared by the model subcommands).
#[derive(Debug, Clone, Args)]
pub(crate) struct ModelArgs {
    /// Weight precision: auto picks bf16 where the CPU computes it natively.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto)]
    precision: PrecisionArg,
    /// A chat template instead of the model's own (a name such as chatml, or a template JSON file).
    #[arg(long)]
    template: Option<String>,
    /// Threads for the model (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

impl ModelArgs {
    fn settings(&self) -> LoadSettings {
        if self.threads > 0 {
            tch_threads(self.threads);
        }
        LoadSettings {
            weights: banter_engine::Weights { precision: self.precision, quantize: None },
            template: self.template.clone(),
        }
    }
}

fn tch_threads(n: usize) {
    tch::set_num_threads(n as i32);
}

/// How replies are sampled.
#[derive(Debug, Clone, Args)]
pub(crate) struct SampleArgs {
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    /// Top-p (1: off).
    #[arg(long, default_value_t = 0.9)]
    top_p: f64,
    /// New tokens per reply at most.
    #[arg(long, default_value_t = 48)]
    max_new_tokens: usize,
    /// Seed (reply i is sampled with seed + i: the same command gives the same replies).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl SampleArgs {
    fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
            max_new_tokens: self.max_new_tokens,
            seed: self.seed,
            ..Sampling::default()
        }
    }
}

/// `a < b` (or `a <= b` when `or_equal`); false when either is NaN, so a NaN figure fails its gate.
pub(crate) fn holds(a: f64, b: f64, or_equal: bool) -> bool {
    match a.partial_cmp(&b) {
        Some(std::cmp::Ordering::Less) => true,
        Some(std::cmp::Ordering::Equal) => or_equal,
        _ => false,
    }
}

/// Refuses (exit 2), before any work, an output that is an input, holds one or lies inside one.
pub(crate) fn check_output(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(p) = path.filter(|p| p.as_os_str() != "-") {
        banter_core::inputs::check_output_path(p)?;
    }
    Ok(())
}

/// Writes an HTML page (or any text) atomically.
pub(crate) fn write_page(path: &Path, html: &str) -> anyhow::Result<()> {
    use std::io::Write;
    banter_core::inputs::check_output_path(path)?;
    let mut out = banter_core::jsonl::Output::file(path)?;
    out.write_all(html.as_bytes()).map_err(|e| banter_core::Error::io(path.display(), e))?;
    out.commit()?;
    Ok(())
}

/// A progress line on stderr (not with `--quiet`).
pub(crate) fn progress(common: &CommonArgs) -> impl FnMut(&str) + '_ {
    move |m: &str| {
        if common.verbose > 0 {
            common.say(format!("{TOOL}: {m}"));
        }
    }
}

/// The directories given, checked to exist (a missing model is an I/O error naming it).
pub(crate) fn existing(dir: &Path, what: &str) -> anyhow::Result<PathBuf> {
    if !dir.is_dir() {
        anyhow::bail!(banter_core::Error::usage(format!("{}: {what} folder not found", dir.display())));
    }
    // No output (--html, -o) may be, hold or lie inside a model or adapter this run reads.
    banter_core::inputs::register_path(dir);
    Ok(dir.to_path_buf())
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    match &cli.cmd {
        Cmd::Split(a) => split::run(a, &cli.common),
        Cmd::Loss(a) => loss::run(a, &cli.common),
        Cmd::Persona(a) => persona::run(a, &cli.common),
        Cmd::Qa(a) => qa::run(a, &cli.common),
    }
}
