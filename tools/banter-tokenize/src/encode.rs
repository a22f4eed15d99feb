//! `banter-tokenize encode`.

use std::path::PathBuf;
use std::sync::mpsc;

use clap::Args;
use rayon::prelude::*;
use serde_json::json;

use banter_core::cli::{self, CommonArgs};
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, Line, Raw, ReadOptions, Source};

use crate::blocks_out::{BlockWriter, train_writer};
use banter_core::records::{Block, IGNORE_INDEX, Record, Sample};
use banter_core::{Error, Exit, progress};
use banter_encode::encode::{self, Encoded, Fit, Mode, Packer, Side};
use banter_encode::{resolve_template, tok};

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
    #[arg(long, value_name = "N", default_value_t = banter_encode::DEFAULT_BLOCK_SIZE)]
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
    /// Only shard I of N (0-based): the samples starting in the I-th of N equal byte ranges of the inputs
    /// (JSON Lines or .txt files). N jobs' outputs, concatenated in shard order, are the one-job output in
    /// pad/truncate mode; in pack mode each shard packs its own samples.
    #[arg(long, value_name = "I/N", help_heading = "Scale out (Slurm arrays, GNU parallel)")]
    pub shard: Option<String>,
    /// With --format bin: write the training blocks as K shard files (<stem>-0000i-of-0000K.bin) and -o as
    /// their JSON manifest, which banter-train reads as one file, each rank opening the shards on demand.
    #[arg(long, value_name = "K", help_heading = "Scale out (Slurm arrays, GNU parallel)")]
    pub shards: Option<usize>,
}

/// `encode --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSONL blocks.
    Jsonl,
    /// Binary token file.
    Bin,
}

/// What a run reads from one input: JSON records, or a plain text file's lines (after `lines_before`).
enum Feed {
    Records(JsonlReader),
    Text(Box<dyn std::io::BufRead + Send>, u64),
}

fn is_text(source: &Source) -> bool {
    source.path().is_some_and(|p| p.extension().is_some_and(|e| e == "txt"))
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

/// What one run writes into and counts.
struct Run<'a> {
    a: &'a EncodeArgs,
    tok: tok::Tok,
    template: banter_core::ChatTemplate,
    train: Sink,
    val: Option<Sink>,
    stats: Stats,
    lens: Vec<u32>,
    errors: Vec<String>,
    /// A `--shard` job may hold no sample (a shard of a tiny input).
    empty_ok: bool,
}

/// Runs `encode`.
pub(crate) fn run(a: &EncodeArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
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
    let val_path = val_path(a)?;
    common.require_data_file(a.output.as_deref(), "blocks")?;
    let packer = || (a.mode == Mode::Pack).then(|| Packer::new(a.block_size));
    let vocab = tok.inner.get_vocab_size(true) as u64;
    let writer = |p: Option<&std::path::Path>| BlockWriter::create(a.format, p, vocab, a.block_size as u64);
    let sink = |w| Sink { writer: w, packer: packer(), blocks: 0, tokens: 0, masked: 0 };
    let shard = a.shard.as_deref().map(banter_core::shard::Shard::parse).transpose().map_err(Error::usage)?;
    let mut run = Run {
        a,
        train: sink(train_writer(a, vocab)?),
        val: match &val_path {
            Some(p) => Some(sink(writer(Some(p))?)),
            None => None,
        },
        tok,
        template,
        stats: Stats::default(),
        lens: Vec::new(),
        errors: Vec::new(),
        empty_ok: shard.is_some(),
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(a.threads.unwrap_or(0)).build()?;
    let bar = progress::bar(None, "encoding", common);
    let sources = Source::from_args(&a.inputs)?;
    match shard {
        None => {
            for (i, source) in sources.iter().enumerate() {
                let feed = if is_text(source) {
                    Feed::Text(source.open()?, 0)
                } else {
                    Feed::Records(JsonlReader::open(source, ReadOptions::default())?)
                };
                run.source((i, source), feed, &pool, &bar)?;
            }
        }
        Some(shard) => {
            for (i, part) in banter_core::shard::open(&sources, shard)? {
                let feed = if is_text(&part.source) {
                    Feed::Text(part.reader, part.lines_before)
                } else {
                    Feed::Records(JsonlReader::from_part(part, ReadOptions::default()))
                };
                run.source((i, &sources[i]), feed, &pool, &bar)?;
            }
        }
    }
    bar.finish_and_clear();
    let (template_name, stats) = run.finish()?;
    report(a, common, &template_name, &stats, val_path.is_some())?;
    Ok(Exit::Success)
}

/// Where validation blocks go: `--val-output`, else beside `-o`.
fn val_path(a: &EncodeArgs) -> Result<Option<PathBuf>, Error> {
    Ok(match (&a.val_output, &a.output) {
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
            ));
        }
    })
}

const BATCH: usize = 2048;

/// The reader thread: batches of lines (plain text files: every non-empty line is a `{"text"}` sample).
fn produce(feed: Feed, tx: mpsc::SyncSender<Vec<Result<Line<Raw>, Error>>>) {
    let mut reader = match feed {
        Feed::Records(r) => r,
        Feed::Text(r, before) => {
            let mut batch = Vec::with_capacity(BATCH);
            for (i, l) in std::io::BufRead::lines(r).enumerate() {
                match l {
                    Ok(l) if l.trim().is_empty() => continue,
                    Ok(l) => {
                        let line = before + i as u64 + 1;
                        batch.push(Ok(Line { line, record: Raw::Value(json!({"text": l})) }))
                    }
                    Err(e) => batch.push(Err(Error::io("text input", e))),
                }
                if batch.len() == BATCH && tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
                    return;
                }
            }
            let _ = tx.send(batch);
            return;
        }
    };
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
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
}

impl Run<'_> {
    /// Encodes one input (the `file`-th): read on a thread, encode in parallel, place in input order.
    fn source(
        &mut self,
        (file, source): (usize, &Source),
        feed: Feed,
        pool: &rayon::ThreadPool,
        bar: &indicatif::ProgressBar,
    ) -> anyhow::Result<()> {
        let name = source.to_string();
        let (tx, rx) = mpsc::sync_channel::<Vec<Result<Line<Raw>, Error>>>(4);
        std::thread::scope(|scope| -> anyhow::Result<()> {
            scope.spawn(move || produce(feed, tx));
            for batch in rx {
                banter_core::interrupt::check()?;
                let (tok, template) = (&self.tok, &self.template);
                let results: Vec<Result<(u64, Encoded), Error>> = pool
                    .install(|| batch.into_par_iter().map(|item| encode_line(item, &name, tok, template)).collect());
                for r in results {
                    match r {
                        Ok((line, e)) => {
                            bar.inc(1);
                            self.place(e, (file, line))?;
                        }
                        Err(err) if err.is_record_error() => {
                            self.stats.malformed += 1;
                            if self.errors.len() < 20 {
                                self.errors.push(err.to_string());
                            }
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            }
            Ok(())
        })
    }

    /// Counts one encoded sample (from input `file`, `line`) and writes its blocks.
    fn place(&mut self, e: Encoded, (file, line): (usize, u64)) -> Result<(), Error> {
        let (a, stats) = (self.a, &mut self.stats);
        stats.samples += 1;
        stats.tokens += e.ids.len() as u64;
        self.lens.push(e.ids.len() as u32);
        // The split is by where the sample is (input, line), not by how many came before: a `--shard` job
        // splits its samples as the one-job run does.
        let is_val = encode::is_val(((file as u64) << 40) ^ line, a.seed, a.val_split);
        if e.loss_tokens() == 0 {
            stats.dropped_no_loss += 1;
            return Ok(());
        }
        let sink = match (is_val, self.val.as_mut()) {
            (true, Some(v)) => {
                stats.val_samples += 1;
                v
            }
            _ => {
                stats.train_samples += 1;
                &mut self.train
            }
        };
        match sink.packer.as_mut() {
            Some(p) => {
                for b in p.push(e) {
                    sink.write(&b)?;
                }
            }
            None => match encode::fit(e, a.block_size, a.mode, a.truncate_side, self.tok.pad_id) {
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
        Ok(())
    }

    /// Reports skipped lines, flushes the packers, fills the statistics and commits the outputs.
    fn finish(self) -> anyhow::Result<(String, Stats)> {
        let Run { a, tok, template, mut train, mut val, mut stats, mut lens, errors, empty_ok } = self;
        if stats.malformed > a.max_errors {
            for e in &errors {
                banter_core::eline!("banter-tokenize: error: {e}");
            }
            return Err(Coded::new(
                Exit::BadInput,
                format!("{} malformed line(s) (--max-errors {}); nothing was written", stats.malformed, a.max_errors),
            )
            .into());
        }
        // Skipped under --max-errors: each one named, so none is dropped silently.
        for e in &errors {
            banter_core::eline!("banter-tokenize: warning: skipped (--max-errors) {e}");
        }
        if stats.malformed > errors.len() as u64 {
            banter_core::eline!(
                "banter-tokenize: warning: {} more malformed line(s) skipped",
                stats.malformed - errors.len() as u64
            );
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
        let tokens = train.tokens + val.as_ref().map_or(0, |v| v.tokens);
        let masked = train.masked + val.as_ref().map_or(0, |v| v.masked);
        stats.masked_share =
            if tokens == 0 { 0.0 } else { (masked as f64 / tokens as f64 * 10_000.0).round() / 10_000.0 };
        lens.sort_unstable();
        let pct = |p: f64| lens.get(((lens.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
        stats.tokens_per_sample = [pct(0.5), pct(0.9), pct(0.99), lens.last().copied().unwrap_or(0)];
        train.writer.commit()?;
        if let Some(v) = val {
            v.writer.commit()?;
        }
        if stats.samples == 0 && !empty_ok {
            return Err(Coded::new(Exit::BadInput, "no samples in the input").into());
        }
        Ok((template.name, stats))
    }
}

/// One line → its encoding, or a record error naming file and line.
fn encode_line(
    item: Result<Line<Raw>, Error>,
    name: &str,
    tok: &tok::Tok,
    template: &banter_core::ChatTemplate,
) -> Result<(u64, Encoded), Error> {
    let Line { line, record } = item?;
    let body = match record {
        Raw::Text(t) => Sample::body_from_str(&t),
        Raw::Value(v) => Sample::from_value(v).map(|s| s.body),
    }
    .map_err(|e| Error::data(name, Some(line), e))?;
    let sample = Sample { body, fields: Default::default() };
    encode::encode_sample(tok, template, &sample).map(|e| (line, e)).map_err(|e| {
        if e.is_template_limit() {
            // Not this record's fault: the template is broken for any input. One error, exit 2.
            Error::Template(format!("{name}:{line}: {e}"))
        } else {
            Error::data(name, Some(line), banter_core::FieldError::record(e.to_string()))
        }
    })
}

/// The summary: `--json`, or two lines on stderr.
fn report(a: &EncodeArgs, common: &CommonArgs, template: &str, stats: &Stats, has_val: bool) -> anyhow::Result<()> {
    if common.json {
        cli::print_report(&cli::report(
            "banter-tokenize",
            Exit::Success,
            json!({"command": "encode", "template": template, "mode": a.mode, "block_size": a.block_size, "counts": stats}),
        ))?;
        return Ok(());
    }
    let [p50, p90, p99, max] = stats.tokens_per_sample;
    common.say(format!(
        "banter-tokenize: {} samples, {} tokens → {} blocks of {}{} ({}); {:.1}% of block tokens masked; \
         tokens/sample p50 {p50} p90 {p90} p99 {p99} max {max}",
        stats.samples,
        stats.tokens,
        stats.blocks,
        a.block_size,
        if has_val { format!(" + {} validation blocks", stats.val_blocks) } else { String::new() },
        format!("{:?}", a.mode).to_lowercase(),
        stats.masked_share * 100.0
    ));
    if stats.truncated + stats.dropped_no_loss + stats.tail_tokens_dropped + stats.malformed > 0 {
        common.say(format!(
            "banter-tokenize: {} truncated, {} dropped (reply cut away), {} dropped (nothing to learn), \
             {} tail tokens dropped (--keep-tail keeps them), {} malformed",
            stats.truncated, stats.dropped_truncated, stats.dropped_no_loss, stats.tail_tokens_dropped, stats.malformed
        ));
    }
    Ok(())
}
