//! `banter-tokenize`: train or load a tokenizer, render samples through a chat template, and pack them into
//! the token blocks banter-train reads, with loss masks.
//!
//! The library is what banter-train and banter-chat call in-process: [`tok`] (load/train), [`encode`]
//! (sample → ids and labels → blocks).

pub mod encode;
pub mod tok;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use clap::{Args, Parser, Subcommand};
use rayon::prelude::*;
use serde_json::json;

use banter_core::cli::{self, CommonArgs};
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, JsonlWriter, Line, Raw, ReadOptions, Source};
use banter_core::records::{Block, IGNORE_INDEX, Record, Sample};
use banter_core::{ChatTemplate, Error, Exit, progress};

use encode::{Encoded, Fit, Mode, Packer, Side};

const EXAMPLES: &str = "\
Examples:
  banter-tokenize train-tokenizer clean.jsonl --vocab-size 8000 -o tokenizer.json
  banter-tokenize train-tokenizer corpus.txt --vocab-size 4000 --template asimbot -o tokenizer.json
  banter-tokenize encode clean.jsonl --tokenizer tokenizer.json --block-size 128 -o blocks.jsonl
  banter-tokenize encode persona.jsonl --tokenizer gpt2-dir/ --template asimbot --mode pad --block-size 512 \\
      --val-split 0.2 -o train.jsonl --val-output val.jsonl
  banter-tokenize decode blocks.jsonl --tokenizer tokenizer.json --show-loss | head";

/// Train or load a tokenizer, render chat templates, pack samples into blocks with loss masks.
#[derive(Debug, Parser)]
#[command(name = "banter-tokenize", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a byte-level BPE tokenizer (GPT-2 style) on samples or text files.
    TrainTokenizer(TrainArgs),
    /// Samples → blocks of token ids with loss labels.
    Encode(EncodeArgs),
    /// Blocks → text, to check what the model will see and learn.
    Decode(DecodeArgs),
}

/// `train-tokenizer`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Samples JSONL (rendered through the template) or plain text files (.txt, one document per line).
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<String>,
    /// Vocabulary size, special tokens included.
    #[arg(long, value_name = "N", default_value_t = 8000)]
    pub vocab_size: usize,
    /// Merges need pairs seen at least this often.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_frequency: u64,
    /// Chat template whose markers become special tokens (chatml, asimbot, or a JSON file).
    #[arg(long, value_name = "TEMPLATE", default_value = "chatml")]
    pub template: String,
    /// Where to write tokenizer.json.
    #[arg(short = 'o', long, value_name = "PATH", required = true)]
    pub output: PathBuf,
}

/// `encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Samples JSONL (or a JSON array), or plain .txt files (each line a text sample); `-` reads stdin.
    #[arg(value_name = "SAMPLES")]
    pub inputs: Vec<String>,
    /// tokenizer.json, or a model directory (its stored template is used unless --template says otherwise).
    #[arg(long, value_name = "PATH", required = true)]
    pub tokenizer: PathBuf,
    /// chatml (default), asimbot, or a template JSON file.
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// Tokens per block.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub block_size: usize,
    /// pack: join samples and cut fixed blocks (Oodi); pad/truncate: one sample per block.
    #[arg(long, value_enum, default_value_t = Mode::Pack)]
    pub mode: Mode,
    /// pack: keep the last partial block, padded and masked.
    #[arg(long)]
    pub keep_tail: bool,
    /// pad/truncate: which end of a too-long sample to cut (left keeps the reply).
    #[arg(long, value_enum, default_value_t = Side::Left)]
    pub truncate_side: Side,
    /// Share of samples for validation.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub val_split: f64,
    /// Seed of the validation split.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Write training blocks here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Output format: jsonl (one block per line), or bin (token ids, loss bits and a block index in one
    /// file that banter-train streams with flat memory; docs/formats.md).
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Write validation blocks here (default: <output stem>.val.jsonl, or .val.bin).
    #[arg(long, value_name = "PATH")]
    pub val_output: Option<PathBuf>,
    /// Save the tokenizer with the template's special tokens added (when they were missing).
    #[arg(long, value_name = "PATH")]
    pub save_tokenizer: Option<PathBuf>,
    /// Count up to N malformed lines as skipped instead of failing with exit 3.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_errors: u64,
    /// Worker threads (default: all cores); the output is the same for any number.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// `encode --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSONL blocks.
    Jsonl,
    /// Binary token file.
    Bin,
}

/// Where blocks go.
#[derive(Debug)]
enum BlockWriter {
    Jsonl(JsonlWriter),
    Bin(banter_core::tokbin::TokBinWriter),
}

impl BlockWriter {
    fn create(format: Format, path: Option<&std::path::Path>, vocab: u64, block: u64) -> Result<Self, Error> {
        Ok(match format {
            Format::Jsonl => BlockWriter::Jsonl(JsonlWriter::create(path)?),
            Format::Bin => BlockWriter::Bin(banter_core::tokbin::TokBinWriter::new(path, vocab, block)?),
        })
    }

    fn write(&mut self, b: &Block) -> Result<(), Error> {
        match self {
            BlockWriter::Jsonl(w) => w.write(b),
            BlockWriter::Bin(w) => w.write(b),
        }
    }

    fn commit(self) -> Result<u64, Error> {
        match self {
            BlockWriter::Jsonl(w) => w.commit(),
            BlockWriter::Bin(w) => w.commit(),
        }
    }
}

/// `decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Blocks JSONL.
    #[arg(value_name = "BLOCKS")]
    pub input: String,
    /// tokenizer.json or a model directory.
    #[arg(long, value_name = "PATH", required = true)]
    pub tokenizer: PathBuf,
    /// Wrap the tokens that carry loss in ⟦ ⟧.
    #[arg(long)]
    pub show_loss: bool,
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    match &cli.command {
        Command::TrainTokenizer(a) => run_train(a, &cli.common),
        Command::Encode(a) => run_encode(a, &cli.common),
        Command::Decode(a) => run_decode(a),
    }
}

/// The template an encode run uses: `--template`, else the model directory's, else chatml.
pub fn resolve_template(arg: Option<&str>, tokenizer: &Path) -> Result<ChatTemplate, Error> {
    match arg {
        Some(a) => ChatTemplate::from_arg(a),
        None => match tok::resolve(tokenizer).1 {
            Some(stored) => ChatTemplate::load(&stored),
            None => Ok(ChatTemplate::chatml()),
        },
    }
}

fn run_train(a: &TrainArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let template = ChatTemplate::from_arg(&a.template)?;
    // Texts: rendered samples, or lines of text files.
    let mut texts: Vec<String> = Vec::new();
    for input in &a.inputs {
        if input.ends_with(".txt") {
            banter_core::inputs::register(std::path::Path::new(input));
            let t = std::fs::read_to_string(input).map_err(|e| Error::io(input, e))?;
            texts.extend(t.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
            continue;
        }
        let reader = JsonlReader::open(&Source::parse(input), ReadOptions::default())?;
        for sample in banter_core::jsonl::read_all::<Sample>(reader, "banter-tokenize")? {
            texts.push(template.render(&sample).text);
        }
    }
    if texts.is_empty() {
        return Err(Coded::new(Exit::BadInput, "no text to train the tokenizer on").into());
    }
    let n = texts.len();
    let tok = tok::train(texts.into_iter(), a.vocab_size, a.min_frequency, &template)?;
    tok::save(&tok.inner, &a.output)?;
    let vocab = tok.inner.get_vocab_size(true);
    if common.json {
        cli::print_report(&cli::report(
            "banter-tokenize",
            Exit::Success,
            json!({"command": "train-tokenizer", "texts": n, "vocab_size": vocab, "template": template.name, "output": a.output}),
        ))?;
    } else {
        common.say(format!(
            "banter-tokenize: trained a {vocab}-token byte-level BPE on {n} texts (template {}) → {}",
            template.name,
            a.output.display()
        ));
    }
    Ok(Exit::Success)
}

/// Counts for the encode report.
#[derive(Debug, Default, serde::Serialize)]
pub struct Stats {
    /// Samples read.
    pub samples: u64,
    /// Samples in training / validation.
    pub train_samples: u64,
    /// Samples in validation.
    pub val_samples: u64,
    /// Tokens of all samples (EOS included).
    pub tokens: u64,
    /// Blocks written (training).
    pub blocks: u64,
    /// Blocks written (validation).
    pub val_blocks: u64,
    /// Share of block tokens with no loss (prompts, other speakers, padding).
    pub masked_share: f64,
    /// Samples cut to fit a block.
    pub truncated: u64,
    /// Samples dropped because no token carries loss (e.g. Asimbot rows without `<SYS>`).
    pub dropped_no_loss: u64,
    /// Samples dropped because the cut removed their reply.
    pub dropped_truncated: u64,
    /// Malformed lines skipped under --max-errors.
    pub malformed: u64,
    /// pack: tokens of the last partial block, dropped (use --keep-tail to keep them).
    pub tail_tokens_dropped: u64,
    /// Tokens per sample: p50, p90, p99, max.
    pub tokens_per_sample: [u32; 4],
}

struct Sink {
    writer: BlockWriter,
    packer: Option<Packer>,
    blocks: u64,
    tokens: u64,
    masked: u64,
}

impl Sink {
    fn write(&mut self, b: &Block) -> Result<(), Error> {
        self.tokens += b.input_ids.len() as u64;
        self.masked += b.labels.iter().filter(|&&l| l == IGNORE_INDEX).count() as u64;
        self.blocks += 1;
        self.writer.write(b)
    }
}

fn run_encode(a: &EncodeArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if a.block_size < 2 {
        return Err(Error::usage("--block-size must be at least 2").into());
    }
    if !(0.0..1.0).contains(&a.val_split) {
        return Err(Error::usage("--val-split must be in [0, 1)").into());
    }
    let template = resolve_template(a.template.as_deref(), &a.tokenizer)?;
    let tok = tok::load(&a.tokenizer, &template)?;
    if !tok.added.is_empty() {
        match &a.save_tokenizer {
            Some(p) => tok::save(&tok.inner, p)?,
            None => common.say(format!(
                "banter-tokenize: note: added {} special token(s) the tokenizer lacked ({}); save it with --save-tokenizer",
                tok.added.len(),
                tok.added.join(" ")
            )),
        }
    }
    let val_path = match (&a.val_output, &a.output) {
        _ if a.val_split == 0.0 => None,
        (Some(p), _) => Some(p.clone()),
        (None, Some(o)) if o.as_os_str() != "-" => {
            let stem = o.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let ext = if a.format == Format::Bin { "bin" } else { "jsonl" };
            Some(o.with_file_name(format!("{stem}.val.{ext}")))
        }
        _ => {
            return Err(Error::usage_hint(
                "--val-split needs a file for the validation blocks",
                "add --val-output FILE or -o FILE",
            )
            .into());
        }
    };
    common.require_data_file(a.output.as_deref(), "blocks")?;
    let packer = || (a.mode == Mode::Pack).then(|| Packer::new(a.block_size));
    let vocab = tok.inner.get_vocab_size(true) as u64;
    let writer = |p: Option<&std::path::Path>| BlockWriter::create(a.format, p, vocab, a.block_size as u64);
    let mut train = Sink { writer: writer(a.output.as_deref())?, packer: packer(), blocks: 0, tokens: 0, masked: 0 };
    let mut val = match &val_path {
        Some(p) => Some(Sink { writer: writer(Some(p))?, packer: packer(), blocks: 0, tokens: 0, masked: 0 }),
        None => None,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(a.threads.unwrap_or(0)).build()?;
    let sources = Source::from_args(&a.inputs)?;
    let mut stats = Stats::default();
    let mut lens: Vec<u32> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let bar = progress::bar(None, "encoding", common);
    let mut index = 0u64;
    for source in &sources {
        let name = source.to_string();
        let plain = source.path().is_some_and(|p| p.extension().is_some_and(|e| e == "txt"));
        let mut reader = JsonlReader::open(source, ReadOptions::default())?;
        let mut text_lines = if plain { Some(std::io::BufRead::lines(source.open()?).enumerate()) } else { None };
        let (tx, rx) = mpsc::sync_channel::<Vec<Result<Line<Raw>, Error>>>(4);
        std::thread::scope(|scope| -> anyhow::Result<()> {
            scope.spawn(move || {
                // Plain text files: every non-empty line is a {"text"} sample.
                if let Some(lines) = text_lines.as_mut() {
                    let mut batch = Vec::with_capacity(2048);
                    for (i, l) in lines {
                        match l {
                            Ok(l) if l.trim().is_empty() => continue,
                            Ok(l) => {
                                batch.push(Ok(Line { line: i as u64 + 1, record: Raw::Value(json!({"text": l})) }))
                            }
                            Err(e) => batch.push(Err(Error::io("text input", e))),
                        }
                        if batch.len() == 2048
                            && tx.send(std::mem::replace(&mut batch, Vec::with_capacity(2048))).is_err()
                        {
                            return;
                        }
                    }
                    let _ = tx.send(batch);
                    return;
                }
                loop {
                    let mut batch = Vec::with_capacity(2048);
                    while batch.len() < 2048 {
                        match reader.next_raw() {
                            Some(item) => {
                                let fatal = matches!(&item, Err(e) if !e.is_record_error());
                                batch.push(item);
                                if fatal {
                                    break;
                                }
                            }
                            None => break,
                        }
                    }
                    if batch.is_empty() || tx.send(batch).is_err() {
                        return;
                    }
                }
            });
            for batch in rx {
                banter_core::interrupt::check()?;
                let results: Vec<Result<(u64, Encoded), Error>> = pool.install(|| {
                    batch
                        .into_par_iter()
                        .map(|item| {
                            let Line { line, record } = item?;
                            let body = match record {
                                Raw::Text(t) => Sample::body_from_str(&t),
                                Raw::Value(v) => Sample::from_value(v).map(|s| s.body),
                            }
                            .map_err(|e| Error::data(&name, Some(line), e))?;
                            let sample = Sample { body, fields: Default::default() };
                            encode::encode_sample(&tok, &template, &sample)
                                .map(|e| (line, e))
                                .map_err(|e| Error::data(&name, Some(line), banter_core::FieldError::record(e)))
                        })
                        .collect()
                });
                for r in results {
                    let e = match r {
                        Ok((_, e)) => e,
                        Err(err) if err.is_record_error() => {
                            stats.malformed += 1;
                            if errors.len() < 20 {
                                errors.push(err.to_string());
                            }
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    };
                    stats.samples += 1;
                    bar.inc(1);
                    stats.tokens += e.ids.len() as u64;
                    lens.push(e.ids.len() as u32);
                    let is_val = encode::is_val(index, a.seed, a.val_split);
                    index += 1;
                    if e.loss_tokens() == 0 {
                        stats.dropped_no_loss += 1;
                        continue;
                    }
                    let sink = match (is_val, val.as_mut()) {
                        (true, Some(v)) => {
                            stats.val_samples += 1;
                            v
                        }
                        _ => {
                            stats.train_samples += 1;
                            &mut train
                        }
                    };
                    match sink.packer.as_mut() {
                        Some(p) => {
                            for b in p.push(e) {
                                sink.write(&b)?;
                            }
                        }
                        None => match encode::fit(e, a.block_size, a.mode, a.truncate_side, tok.pad_id) {
                            Fit::Block(b, cut) => {
                                stats.truncated += u64::from(cut);
                                sink.write(&b)?;
                            }
                            Fit::LostResponse => {
                                stats.truncated += 1;
                                stats.dropped_truncated += 1;
                            }
                        },
                    }
                }
            }
            Ok(())
        })?;
    }
    bar.finish_and_clear();
    if stats.malformed > a.max_errors {
        for e in &errors {
            eprintln!("banter-tokenize: error: {e}");
        }
        return Err(Coded::new(
            Exit::BadInput,
            format!("{} malformed line(s) (--max-errors {}); nothing was written", stats.malformed, a.max_errors),
        )
        .into());
    }
    // Skipped under --max-errors: each one named, so none is dropped silently.
    for e in &errors {
        eprintln!("banter-tokenize: warning: skipped (--max-errors) {e}");
    }
    if stats.malformed > errors.len() as u64 {
        eprintln!("banter-tokenize: warning: {} more malformed line(s) skipped", stats.malformed - errors.len() as u64);
    }
    for sink in std::iter::once(&mut train).chain(val.as_mut()) {
        if let Some(p) = sink.packer.take() {
            let (tail, dropped) = p.finish(a.keep_tail, tok.pad_id);
            stats.tail_tokens_dropped += dropped as u64;
            if let Some(b) = tail {
                sink.write(&b)?;
            }
        }
    }
    stats.blocks = train.blocks;
    stats.val_blocks = val.as_ref().map_or(0, |v| v.blocks);
    let (tokens, masked) =
        (train.tokens + val.as_ref().map_or(0, |v| v.tokens), train.masked + val.as_ref().map_or(0, |v| v.masked));
    stats.masked_share = if tokens == 0 { 0.0 } else { (masked as f64 / tokens as f64 * 10_000.0).round() / 10_000.0 };
    lens.sort_unstable();
    let pct = |p: f64| lens.get(((lens.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
    stats.tokens_per_sample = [pct(0.5), pct(0.9), pct(0.99), lens.last().copied().unwrap_or(0)];
    train.writer.commit()?;
    if let Some(v) = val {
        v.writer.commit()?;
    }
    if stats.samples == 0 {
        return Err(Coded::new(Exit::BadInput, "no samples in the input").into());
    }
    if common.json {
        cli::print_report(&cli::report(
            "banter-tokenize",
            Exit::Success,
            json!({"command": "encode", "template": template.name, "mode": a.mode, "block_size": a.block_size, "counts": stats}),
        ))?;
    } else {
        let [p50, p90, p99, max] = stats.tokens_per_sample;
        common.say(format!(
            "banter-tokenize: {} samples, {} tokens → {} blocks of {}{} ({}); {:.1}% of block tokens masked; \
             tokens/sample p50 {p50} p90 {p90} p99 {p99} max {max}",
            stats.samples,
            stats.tokens,
            stats.blocks,
            a.block_size,
            if val_path.is_some() { format!(" + {} validation blocks", stats.val_blocks) } else { String::new() },
            format!("{:?}", a.mode).to_lowercase(),
            stats.masked_share * 100.0
        ));
        if stats.truncated + stats.dropped_no_loss + stats.tail_tokens_dropped + stats.malformed > 0 {
            common.say(format!(
                "banter-tokenize: {} truncated, {} dropped (reply cut away), {} dropped (nothing to learn), \
                 {} tail tokens dropped (--keep-tail keeps them), {} malformed",
                stats.truncated,
                stats.dropped_truncated,
                stats.dropped_no_loss,
                stats.tail_tokens_dropped,
                stats.malformed
            ));
        }
    }
    Ok(Exit::Success)
}

fn run_decode(a: &DecodeArgs) -> anyhow::Result<Exit> {
    let (file, _) = tok::resolve(&a.tokenizer);
    let t = tokenizers::Tokenizer::from_file(&file).map_err(|e| Error::usage(format!("{}: {e}", file.display())))?;
    let reader = JsonlReader::open(&Source::parse(&a.input), ReadOptions::default())?;
    let mut out = banter_core::jsonl::Output::stdout();
    for item in reader.records::<Block>() {
        let b = item?.record;
        let mut text = String::new();
        let mut i = 0;
        while i < b.input_ids.len() {
            let loss = b.labels[i] != IGNORE_INDEX;
            let j =
                (i..b.input_ids.len()).find(|&j| (b.labels[j] != IGNORE_INDEX) != loss).unwrap_or(b.input_ids.len());
            let piece = t.decode(&b.input_ids[i..j], false).map_err(|e| Error::usage(e.to_string()))?;
            if loss && a.show_loss {
                text.push('⟦');
                text.push_str(&piece);
                text.push('⟧');
            } else {
                text.push_str(&piece);
            }
            i = j;
        }
        std::io::Write::write_all(&mut out, format!("{}\n", serde_json::to_string(&json!({"text": text}))?).as_bytes())
            .map_err(|e| Error::io("<stdout>", e))?;
    }
    out.commit()?;
    Ok(Exit::Success)
}
