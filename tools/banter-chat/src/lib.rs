//! `banter-chat`: generation with a trained model — one-shot, a file of prompts, interactive chat with
//! logging and continual learning, an HTTP server (the seed's `/chat`, OpenAI's `/v1/chat/completions`, a web
//! page), and a retraining daemon (`watch`).

mod api;
pub mod engine;
pub mod learn;
mod reload;
pub mod repl;
pub mod server;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use banter_core::cli::{self, CommonArgs};
use banter_core::jsonl::{JsonlReader, JsonlWriter, ReadOptions, Source};
use banter_core::records::{Record, Role, Sample, SampleBody, Turn};
use banter_core::{Error, Exit, interrupt};
use banter_model::generate::Sampling;
use banter_model::precision::PrecisionArg;
use banter_model::runtime::DeviceArg;

use engine::Engine;

/// The tool's name.
pub const TOOL: &str = "banter-chat";

const EXAMPLES: &str = "\
Examples:
  banter-chat --model model --prompt 'where are you?'
  banter-chat --model gpt2-fa --adapter sara --system 'You are Sara.' --log chats.jsonl
  banter-chat --model model --learn-every 20 --seed-data seed.jsonl --log chats.jsonl
  banter-chat --model model --input prompts.jsonl -o replies.jsonl --temperature 0
  banter-chat --model model --raw --prompt 'Once upon a time'
  banter-chat --model model --quantize q4 --prompt 'hi'   # 4-bit weights on CPU (int8: a quarter of fp32)
  banter-chat serve --model model --port 8000
  banter-chat watch chats.jsonl --model gpt2-fa --adapter sara --threshold 50 --poll 30";

/// `--version`.
fn version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| format!("{} ({})", banter_core::VERSION, banter_model::runtime::RuntimeInfo::query()))
}

/// Generate with a trained model: one-shot, interactive chat, HTTP server, logging, continual learning.
#[derive(Debug, Parser)]
#[command(name = "banter-chat", version = version(), after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub chat: ChatArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP server: POST /chat, POST /v1/chat/completions (OpenAI, SSE streaming), GET /health, a page at /.
    Serve(server::ServeArgs),
    /// Retrain a LoRA adapter whenever a growing JSONL log has enough new exchanges (MTN's daemon).
    Watch(learn::WatchArgs),
}

/// Which model.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Model directory (banter's or Hugging Face's: gpt2, llama, mistral, qwen2, gemma, gemma2, opt), or a
    /// Hub name `user/name[@revision]` (from the Hugging Face cache, downloaded if missing).
    #[arg(long, value_name = "DIR", global = true)]
    pub model: Option<PathBuf>,
    /// PEFT LoRA adapter to apply (merged at load).
    #[arg(long, value_name = "DIR", global = true)]
    pub adapter: Option<PathBuf>,
    /// Chat template (default: the one stored with the model, else chatml).
    #[arg(long, value_name = "TEMPLATE", global = true)]
    pub template: Option<String>,
    /// cpu, cuda or auto.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto, global = true)]
    pub device: DeviceArg,
    /// Weights' precision: auto (bf16 only where the hardware computes it natively and a timed probe
    /// shows it faster; fp16 on CUDA before 8.0), fp32, bf16 or fp16 (CUDA).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto, global = true)]
    pub precision: PrecisionArg,
    /// Same as --precision bf16 (kept for scripts written before --precision).
    #[arg(long, global = true, hide = true)]
    pub bf16: bool,
    /// Quantized weights on CPU: int8 (per channel, a quarter of fp32's bytes per token) or q4 (groups of
    /// 32, about a sixth; the output head stays int8). Activations are quantized to int8 per block of 32.
    #[arg(long, value_enum, value_name = "KIND", global = true)]
    pub quantize: Option<Quantize>,
    /// libtorch threads.
    #[arg(long, value_name = "N", global = true)]
    pub threads: Option<i32>,
}

/// `--quantize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Quantize {
    /// int8 weights, one scale per output channel.
    Int8,
    /// 4-bit weights in groups of 32 (llama.cpp's Q4_0 class), one scale per group.
    Q4,
}

impl ModelArgs {
    /// `--model` and `--adapter` given as Hub names (`user/name[@revision]`) replaced by their snapshot in the
    /// Hugging Face cache (downloaded if missing); directories stay as they are.
    pub fn resolved(mut self, progress: bool) -> anyhow::Result<Self> {
        let mut hub = banter_hub::HubSettings::from_env();
        hub.progress = progress;
        if let Some(m) = &self.model {
            self.model = Some(banter_hub::resolve_model(m, &hub)?);
        }
        if let Some(a) = &self.adapter {
            // A local path that is not there yet (`loop/adapter` before a learner published it) stays a path:
            // `serve` serves the base model until it appears; the other commands say it is missing.
            if !a.exists() && looks_local(a) {
                banter_core::inputs::register_path(a);
            } else {
                self.adapter = Some(banter_hub::resolve_model(a, &hub)?);
            }
        }
        Ok(self)
    }

    /// Loads the engine (`--model` with `--adapter`).
    pub fn load(&self) -> anyhow::Result<Engine> {
        self.load_with(self.adapter.as_deref())
    }

    /// Loads `--model` with this adapter instead of `--adapter` (a learned one).
    pub fn load_with(&self, adapter: Option<&std::path::Path>) -> anyhow::Result<Engine> {
        if let Some(t) = self.threads {
            tch::set_num_threads(t.max(1));
        }
        let dir = self
            .model
            .as_ref()
            .ok_or_else(|| Error::usage_hint("no model", "give --model DIR (trained with banter-train)"))?;
        let device = self.device_arg().resolve()?;
        Engine::load(dir, adapter, device, self.weights(), self.template.as_deref())
    }

    /// `--device` as banter-model's request.
    pub fn device_arg(&self) -> DeviceArg {
        self.device
    }

    /// The weights' settings.
    pub fn weights(&self) -> engine::Weights {
        let precision = if self.bf16 { PrecisionArg::Bf16 } else { self.precision };
        let quantize = self.quantize.map(|q| match q {
            Quantize::Int8 => banter_model::quant::Scheme::Int8,
            Quantize::Q4 => banter_model::quant::Scheme::Q4,
        });
        engine::Weights { precision, quantize }
    }
}

/// True for a path meant as a local one: absolute, `./`, `../`, `~`, or whose first folder exists here
/// (`loop/adapter` when `loop/` does).
fn looks_local(p: &std::path::Path) -> bool {
    let s = p.to_string_lossy();
    p.is_absolute()
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('~')
        || p.components().count() > 1 && p.components().next().is_some_and(|c| std::path::Path::new(&c).is_dir())
}

/// Sampling flags (Hugging Face's semantics).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sampling")]
pub struct SamplingArgs {
    /// 0 = greedy.
    #[arg(long, value_name = "T", default_value_t = Sampling::TEMPERATURE, global = true)]
    pub temperature: f64,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, value_name = "K", default_value_t = Sampling::TOP_K, global = true)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this probability mass (1 = off).
    #[arg(long, value_name = "P", default_value_t = Sampling::TOP_P, global = true)]
    pub top_p: f64,
    /// Penalise tokens already in the context (1 = off; MTN used 1.2).
    #[arg(long, value_name = "R", default_value_t = Sampling::REPETITION_PENALTY, global = true)]
    pub repetition_penalty: f64,
    /// Longest reply in tokens.
    #[arg(long, value_name = "N", default_value_t = Sampling::MAX_NEW_TOKENS, global = true)]
    pub max_new_tokens: usize,
    /// Stop at this text too (repeatable; matched across token boundaries).
    #[arg(long, value_name = "TEXT", global = true)]
    pub stop: Vec<String>,
    /// Seed of the sampler: same seed, same reply [default: 42; `serve`: a fresh seed per request unless the
    /// request or this flag gives one].
    #[arg(long, value_name = "N", global = true)]
    pub seed: Option<u64>,
}

impl SamplingArgs {
    /// As sampler settings.
    pub fn sampling(&self) -> Result<Sampling, Error> {
        let s = Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            repetition_penalty: self.repetition_penalty,
            max_new_tokens: self.max_new_tokens,
            seed: self.seed.unwrap_or(Sampling::SEED),
        };
        s.validate().map_err(|(field, msg)| Error::usage(format!("--{} {msg}", field.replace('_', "-"))))?;
        Ok(s)
    }
}

/// One-shot and interactive chat flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Chat")]
pub struct ChatArgs {
    /// Answer this and exit (prints the reply only).
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Continue plain text without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// Answer every sample of a JSONL file (the last turn is answered; pairs' inputs are the prompts).
    #[arg(long, value_name = "FILE")]
    pub input: Option<String>,
    /// With --input: write the answered samples here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// With --input: answer this many samples at once (one batched decode: the weights are read once per
    /// step for all of them).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub batch: usize,
    /// Generate this many replies: one-shot prints each; with --input, each row becomes
    /// `{"prompt": [turns], "responses": [N replies]}`, ready to be ranked for preference tuning (add
    /// `ranked_indices`, best first).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub num_return_sequences: usize,
    /// A persona: the system turn of every conversation.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Append every exchange to this JSONL file (`{"messages":[…],"ts":…}`), flushed and synced each time.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Ask to accept or correct each reply; corrections are logged as the answer.
    #[arg(long)]
    pub feedback: bool,
    /// Fine-tune a LoRA adapter in the background every N logged exchanges, and swap it in (Oodi: 20).
    #[arg(long, value_name = "N")]
    pub learn_every: Option<usize>,
    /// Samples always trained on with the new exchanges (Oodi's seed file).
    #[arg(long, value_name = "FILE")]
    pub seed_data: Option<PathBuf>,
    #[command(flatten)]
    pub hyper: learn::HyperArgs,
}

/// What every mode (one-shot, `--input`, the REPL, `serve`, `watch`) runs with, resolved once from the
/// flags: the model and adapter (Hub names replaced by their snapshots), the default sampling (validated),
/// and the extra stop strings.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// `--model`, `--adapter`, device, precision, template.
    pub model: ModelArgs,
    /// The sampling every reply starts from (a request's fields override it in the server).
    pub sampling: Sampling,
    /// `--stop` strings.
    pub stops: Vec<String>,
    /// `--seed` was given: the server seeds requests that give none with it instead of fresh randomness.
    pub seed_given: bool,
}

impl ChatSettings {
    /// Resolves the command line's model and sampling flags (Hub names are fetched through the cache).
    pub fn resolve(cli: &Cli) -> anyhow::Result<ChatSettings> {
        Ok(ChatSettings {
            model: cli.model.clone().resolved(cli.common.progress_enabled())?,
            sampling: cli.sampling.sampling()?,
            stops: cli.sampling.stop.clone(),
            seed_given: cli.sampling.seed.is_some(),
        })
    }
}

/// Runs the tool.
pub fn run(mut cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    let settings = ChatSettings::resolve(&cli)?;
    cli.model = settings.model.clone();
    match &cli.command {
        Some(Command::Serve(a)) => return server::run(a, &settings, &cli.common),
        Some(Command::Watch(a)) => return learn::watch(a, &settings.model, &cli.common),
        None => {}
    }
    let sampling = settings.sampling;
    if cli.chat.learn_every.is_some() && cli.chat.log.is_none() {
        return Err(Error::usage_hint(
            "--learn-every learns from the logged exchanges, and there is no --log",
            "add --log chats.jsonl",
        )
        .into());
    }
    if cli.chat.input.is_some() && cli.chat.num_return_sequences > 1 && cli.sampling.temperature <= 0.0 {
        return Err(Error::usage_hint(
            "--num-return-sequences with --temperature 0 would give the same reply each time",
            "sample with --temperature 0.7 (or higher) to get replies to rank",
        )
        .into());
    }
    if cli.chat.input.is_some() && cli.common.json && cli.chat.output.as_deref().is_none_or(|p| p.as_os_str() == "-") {
        return Err(
            Error::usage("--input with --json needs -o FILE: the answers and the report would share stdout").into()
        );
    }
    let learner = match (cli.chat.learn_every, &cli.chat.log) {
        (Some(n), Some(log)) => {
            let plan = learn::plan_for_log(&cli.model, log, cli.chat.seed_data.as_deref(), &cli.chat.hyper)?;
            let model = cli.model.clone();
            let loader: learn::Loader = Box::new(move |p: &learn::Plan| model.load_with(p.current()));
            Some(learn::Learner::new(plan, n, Some(loader), cli.common.quiet))
        }
        _ => None,
    };
    // With --learn-every, the newest learned adapter (if a previous run left one) is the model.
    let engine = match &learner {
        Some(l) => cli.model.load_with(l.plan().current())?,
        None => cli.model.load()?,
    };
    if cli.chat.prompt.is_none() {
        cli.common.say(format!("{TOOL}: precision {}", engine.precision));
    }
    if let Some(input) = &cli.chat.input {
        return answer_file(&engine, input, &cli, &sampling);
    }
    if let Some(prompt) = &cli.chat.prompt {
        return one_shot(&engine, prompt, &cli, &sampling);
    }
    repl::run(engine, &cli, sampling, learner)
}

/// The system turn (if any) plus a user turn.
pub fn turns_for(system: Option<&str>, user: &str) -> Vec<Turn> {
    let mut t = Vec::new();
    if let Some(s) = system {
        t.push(Turn::new(Role::System, s));
    }
    t.push(Turn::new(Role::User, user));
    t
}

fn one_shot(engine: &Engine, prompt: &str, cli: &Cli, s: &Sampling) -> anyhow::Result<Exit> {
    interrupt::set_cooperative(true);
    let mut stdout = std::io::stdout();
    for i in 0..cli.chat.num_return_sequences.max(1) {
        let s = Sampling { seed: s.seed.wrapping_add(i as u64), ..s.clone() };
        let mut on_text = |t: &str| {
            let _ = stdout.write_all(t.as_bytes());
            let _ = stdout.flush();
            !interrupt::interrupted()
        };
        let out = if cli.chat.raw {
            engine.complete(prompt, &s, &cli.sampling.stop, &mut on_text)
        } else {
            let turns = turns_for(cli.chat.system.as_deref(), prompt);
            let (out, _) = engine.reply(&turns, &s, &cli.sampling.stop, &mut on_text)?;
            if let Some(log) = &cli.chat.log {
                let mut t = turns.clone();
                t.push(Turn::new(Role::Assistant, out.text.clone()));
                repl::append_log(log, &t, None)?;
            }
            out
        };
        writeln!(stdout)?;
        if cli.common.verbose > 0 {
            banter_core::eline!(
                "{TOOL}: {} tokens in {:.2} s ({:.1} tok/s, first after {:.3} s), finish: {}",
                out.ids.len(),
                out.seconds,
                out.ids.len() as f64 / out.seconds.max(1e-9),
                out.ttft,
                out.finish.as_str()
            );
        }
        if interrupt::interrupted() {
            return Ok(Exit::Interrupted);
        }
    }
    Ok(Exit::Success)
}

fn answer_file(engine: &Engine, input: &str, cli: &Cli, s: &Sampling) -> anyhow::Result<Exit> {
    let reader = JsonlReader::open(&Source::parse(input), ReadOptions::default())?;
    let mut w = JsonlWriter::create(cli.chat.output.as_deref())?;
    let mut n = 0u64;
    let batch = cli.chat.batch.max(1);
    let mut pending: Vec<(Vec<Turn>, Sample)> = Vec::with_capacity(batch);
    let mut flush = |pending: &mut Vec<(Vec<Turn>, Sample)>, w: &mut JsonlWriter| -> anyhow::Result<()> {
        let convs: Vec<Vec<Turn>> = pending.iter().map(|(t, _)| t.clone()).collect();
        let k = cli.chat.num_return_sequences;
        if k > 1 {
            // k replies per prompt, each round with its own seed: rows to rank.
            let mut replies: Vec<Vec<String>> = vec![Vec::with_capacity(k); convs.len()];
            for i in 0..k {
                let si = Sampling { seed: s.seed.wrapping_add(i as u64), ..s.clone() };
                let outs = if convs.len() == 1 {
                    vec![engine.reply(&convs[0], &si, &cli.sampling.stop, &mut |_| true).map(|r| r.0)]
                } else {
                    engine.reply_batch(&convs, &si, &[], &cli.sampling.stop)
                };
                for (r, out) in replies.iter_mut().zip(outs) {
                    r.push(out?.text);
                }
            }
            for ((turns, sample), responses) in pending.drain(..).zip(replies) {
                let prompt: Vec<serde_json::Value> =
                    turns.iter().map(|t| json!({"role": t.role.as_str(), "content": t.content})).collect();
                let mut row = serde_json::Map::new();
                for (key, v) in sample.fields.iter() {
                    row.insert(key.clone(), v.clone());
                }
                row.insert("prompt".into(), prompt.into());
                row.insert("responses".into(), responses.into());
                w.write(&serde_json::Value::Object(row))?;
                n += 1;
            }
            return Ok(());
        }
        let outs = if convs.len() == 1 {
            vec![engine.reply(&convs[0], s, &cli.sampling.stop, &mut |_| true).map(|r| r.0)]
        } else {
            engine.reply_batch(&convs, s, &[], &cli.sampling.stop)
        };
        for ((mut turns, sample), out) in pending.drain(..).zip(outs) {
            turns.push(Turn::new(Role::Assistant, out?.text));
            let mut reply = Sample::chat(turns);
            reply.fields = sample.fields.clone();
            w.write(&reply.to_value())?;
            n += 1;
        }
        Ok(())
    };
    // Every bad line is reported before the first reply is generated.
    for sample in banter_core::jsonl::read_all::<Sample>(reader, TOOL)? {
        interrupt::check()?;
        let mut turns = match &sample.body {
            SampleBody::Text(t) => vec![Turn::new(Role::User, t.clone())],
            SampleBody::Pair { input, .. } => vec![Turn::new(Role::User, input.clone())],
            SampleBody::Chat(t) => {
                t.iter().take(t.iter().rposition(|x| x.role != Role::Assistant).map_or(0, |i| i + 1)).cloned().collect()
            }
        };
        if let (Some(sys), false) = (&cli.chat.system, turns.first().is_some_and(|t| t.role == Role::System)) {
            turns.insert(0, Turn::new(Role::System, sys.clone()));
        }
        pending.push((turns, sample));
        if pending.len() >= batch {
            flush(&mut pending, &mut w)?;
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut w)?;
    }
    w.commit()?;
    cli.common.say(format!("{TOOL}: answered {n} sample(s)"));
    if cli.common.json {
        cli::print_report(&cli::report(TOOL, Exit::Success, json!({"answered": n})))?;
    }
    Ok(Exit::Success)
}
