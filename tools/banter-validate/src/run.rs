//! The run: read, judge in parallel, count and write in input order, report.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use serde_json::{Value, json};

use banter_core::cli;
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, Line, Output, Raw, ReadOptions, Source};

use banter_core::{Error, Exit, progress};
use banter_quality::report::{self, Example, Report, Verdicts};
use banter_quality::{CheckId, Finding, Judge, Settings, Severity};

use crate::Cli;
use crate::evaluate::{Evaluated, evaluate_one};

/// `<stem>_filtered.<ext>` beside the input (MTN's name).
pub fn filtered_name(input: &Path) -> PathBuf {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match input.extension() {
        Some(ext) => format!("{stem}_filtered.{}", ext.to_string_lossy()),
        None => format!("{stem}_filtered"),
    };
    input.with_file_name(name)
}

/// Writes kept records in the input's format: JSONL lines, or a JSON array for array input.
struct KeptWriter {
    out: Output,
    array: Option<bool>,
    count: u64,
}

impl KeptWriter {
    fn new(out: Output) -> Self {
        KeptWriter { out, array: None, count: 0 }
    }

    fn write(&mut self, text: &str, array_input: bool) -> Result<(), Error> {
        use std::io::Write;
        let array = *self.array.get_or_insert(array_input);
        let name = self.out.name();
        let r = if array {
            let sep = if self.count == 0 { "[\n  " } else { ",\n  " };
            self.out.write_all(sep.as_bytes()).and_then(|_| self.out.write_all(text.as_bytes()))
        } else {
            self.out.write_all(text.as_bytes()).and_then(|_| self.out.write_all(b"\n"))
        };
        r.map_err(|e| Error::io(name, e))?;
        self.count += 1;
        Ok(())
    }

    fn commit(mut self, array_input: bool) -> Result<u64, Error> {
        use std::io::Write;
        let name = self.out.name();
        if self.array.unwrap_or(array_input) {
            let end: &[u8] = if self.count == 0 { b"[]\n" } else { b"\n]\n" };
            self.out.write_all(end).map_err(|e| Error::io(&name, e))?;
        }
        self.out.commit()?;
        Ok(self.count)
    }
}

const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 8 << 20;

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    let settings = cli.settings()?;
    let sources = Source::from_args(&cli.inputs)?;
    let filter = cli.filter || cli.output.is_some();
    let to_stdout = filter
        && match &cli.output {
            Some(p) => p.as_os_str() == "-",
            None => sources.iter().any(|s| matches!(s, Source::Stdin)),
        };
    if cli.common.json && to_stdout {
        return Err(Error::usage_hint(
            "--json prints the report on stdout, which the kept records would also go to",
            "write the kept records to a file with -o FILE",
        )
        .into());
    }
    let shard = cli.shard.as_deref().map(banter_core::shard::Shard::parse).transpose().map_err(Error::usage)?;
    if shard.is_some() && filter && cli.output.is_none() {
        return Err(Error::usage_hint(
            "--shard --filter would write every shard to the same <stem>_filtered file",
            "give each shard its own -o FILE (e.g. -o kept.$I.jsonl)",
        )
        .into());
    }
    let inputs: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    let judge = load_indexes(&cli.dedup_index, &inputs)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cli.threads.unwrap_or(0))
        .build()
        .context("starting worker threads")?;
    let started = Instant::now();
    let mut st = State {
        rep: Report {
            inputs: sources.iter().map(|s| s.to_string()).collect(),
            threads: pool.current_num_threads(),
            ..Default::default()
        },
        judge,
        rejects: match &cli.rejects {
            Some(p) => Some(banter_core::jsonl::JsonlWriter::create(Some(p))?),
            None => None,
        },
        shared_out: match (&cli.output, filter) {
            (Some(p), true) => Some(KeptWriter::new(Output::create(Some(p))?)),
            _ => None,
        },
        own_outputs: Vec::new(),
        any_array: false,
    };
    let opts = ReadOptions { max_line_bytes: cli.max_line_bytes, ..Default::default() };
    match shard {
        None => {
            for (file_idx, source) in sources.iter().enumerate() {
                let size = source.path().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
                let reader = JsonlReader::open(source, opts)?;
                st.one_source(&cli, &settings, &pool, (file_idx, source), (reader, size), filter)?;
            }
        }
        Some(shard) => {
            for (file_idx, part) in banter_core::shard::open(&sources, shard)? {
                let reader = JsonlReader::from_part(part, opts);
                st.one_source(&cli, &settings, &pool, (file_idx, &sources[file_idx]), (reader, None), filter)?;
            }
        }
    }
    if let Some(p) = &cli.save_dedup_index {
        banter_quality::dedup_index::save(p, &inputs, st.judge.index())?;
        st.rep.outputs.push(("duplicate index".into(), p.display().to_string()));
    }
    st.rep.seconds = started.elapsed().as_secs_f64();
    let malformed_fatal = st.rep.malformed > cli.max_errors;
    if !malformed_fatal {
        st.commit(&cli)?;
    }
    finish(&cli, &settings, &st.rep, malformed_fatal)
}

/// What the run accumulates over its inputs.
struct State {
    rep: Report,
    judge: Judge,
    rejects: Option<banter_core::jsonl::JsonlWriter>,
    shared_out: Option<KeptWriter>,
    /// Per-input outputs (`--filter` without `-o`): writer, array input, destination name.
    own_outputs: Vec<(KeptWriter, bool, String)>,
    any_array: bool,
}

type Batch = (Vec<Result<Line<Raw>, Error>>, u64, bool);
type Judged = (Result<Vec<Evaluated>, String>, u64, bool);

impl State {
    /// Reads, evaluates and handles one input.
    fn one_source(
        &mut self,
        cli: &Cli,
        settings: &Settings,
        pool: &rayon::ThreadPool,
        (file_idx, source): (usize, &Source),
        (reader, size): (JsonlReader, Option<u64>),
        filter: bool,
    ) -> anyhow::Result<()> {
        let name = source.to_string();
        let mut own_out = if filter && self.shared_out.is_none() {
            let out = match source {
                Source::Stdin => Output::stdout(),
                Source::Path(p) => Output::create(Some(&filtered_name(p)))?,
            };
            Some(KeptWriter::new(out))
        } else {
            None
        };
        let bar = progress::bar(size, &format!("validating {name}"), &cli.common);
        let (tx, rx) = mpsc::sync_channel::<Batch>(4);
        let is_array = std::thread::scope(|scope| -> anyhow::Result<bool> {
            let producer = scope.spawn(move || read_batches(reader, tx));
            // Evaluation runs on the pool in its own thread, so that counting and writing (here, in
            // input order) overlap with evaluating the next batch.
            let (etx, erx) = mpsc::sync_channel::<Judged>(2);
            let (name_ref, redact) = (&name, cli.redact_pii);
            let evaluator = scope.spawn(move || {
                for (batch, bytes, arr) in rx {
                    if let Some(e) = batch.iter().find_map(|i| i.as_ref().err().filter(|e| !e.is_record_error())) {
                        let _ = etx.send((Err(e.to_string()), bytes, arr));
                        return;
                    }
                    let results: Vec<Evaluated> = pool.install(|| {
                        batch.into_par_iter().map(|item| evaluate_one(item, name_ref, settings, redact)).collect()
                    });
                    if etx.send((Ok(results), bytes, arr)).is_err() {
                        return;
                    }
                }
            });
            let mut array = false;
            for (results, bytes, arr) in erx {
                banter_core::interrupt::check()?;
                array |= arr;
                let results = results.map_err(|e| Coded::new(Exit::Io, e))?;
                self.rep.bytes += bytes;
                bar.inc(bytes);
                for ev in results {
                    let kept = self.shared_out.as_mut().or(own_out.as_mut());
                    let ctx = Ctx { file_idx, name: &name, array_input: arr, settings, cli };
                    handle(ev, &ctx, &mut self.rep, &mut self.judge, self.rejects.as_mut(), kept)?;
                }
            }
            evaluator.join().map_err(|_| anyhow::anyhow!("evaluation thread panicked"))?;
            let was_array = producer.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
            Ok(array || was_array)
        })?;
        bar.finish_and_clear();
        self.any_array |= is_array;
        if is_array && source.path().is_some() {
            self.rep.bytes += size.unwrap_or(0);
        }
        if let Some(w) = own_out.take() {
            let dest = match source {
                Source::Stdin => "<stdout>".to_string(),
                Source::Path(p) => filtered_name(p).display().to_string(),
            };
            self.own_outputs.push((w, is_array, dest));
        }
        Ok(())
    }

    /// Commits every output (only when the input was readable).
    fn commit(&mut self, cli: &Cli) -> anyhow::Result<()> {
        if let Some(w) = self.shared_out.take() {
            let dest = cli.output.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            w.commit(self.any_array)?;
            self.rep.outputs.push(("kept records".into(), if dest == "-" { "<stdout>".into() } else { dest }));
        }
        for (w, arr, dest) in std::mem::take(&mut self.own_outputs) {
            w.commit(arr)?;
            self.rep.outputs.push(("kept records".into(), dest));
        }
        if let Some(r) = self.rejects.take() {
            r.commit()?;
            self.rep.outputs.push((
                "rejected records".into(),
                cli.rejects.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            ));
        }
        Ok(())
    }
}

/// The merged duplicate indexes `paths` (made over the same `inputs`), as the run's starting judge.
fn load_indexes(paths: &[PathBuf], inputs: &[String]) -> anyhow::Result<Judge> {
    let mut merged = banter_quality::dedup::Index::default();
    for p in paths {
        let (theirs, index) = banter_quality::dedup_index::load(p)?;
        if theirs != inputs {
            return Err(Error::usage_hint(
                format!("--dedup-index {}: made over {theirs:?}, this run reads {inputs:?}", p.display()),
                "give every shard job the same inputs, in the same order",
            )
            .into());
        }
        merged.merge(index);
    }
    Ok(Judge::with_index(merged))
}

/// The reader thread: batches of lines, by count and bytes; stops at a fatal read error.
fn read_batches(mut reader: JsonlReader, tx: mpsc::SyncSender<Batch>) -> bool {
    loop {
        let mut batch = Vec::with_capacity(BATCH_RECORDS);
        let mut bytes = 0u64;
        let mut fatal = false;
        while batch.len() < BATCH_RECORDS && bytes < BATCH_BYTES as u64 {
            match reader.next_raw() {
                None => break,
                Some(item) => {
                    bytes += match &item {
                        Ok(Line { record: Raw::Text(t), .. }) => t.len() as u64 + 1,
                        _ => 0,
                    };
                    if matches!(&item, Err(e) if !e.is_record_error()) {
                        fatal = true;
                        batch.push(item);
                        break;
                    }
                    batch.push(item);
                }
            }
        }
        let done = batch.is_empty();
        if done || tx.send((batch, bytes, reader.is_array())).is_err() || fatal {
            return reader.is_array();
        }
    }
}

/// The report and the exit code.
fn finish(cli: &Cli, settings: &Settings, rep: &Report, malformed_fatal: bool) -> anyhow::Result<Exit> {
    let verdicts = Verdicts { good: cli.good, acceptable: cli.acceptable };
    let code = if malformed_fatal {
        Exit::BadInput
    } else if rep.total == 0 || rep.score() < cli.min_score {
        Exit::GateFailed
    } else {
        Exit::Success
    };
    if cli.common.json {
        let r = cli::report("banter-validate", code, rep.json(settings, &verdicts, cli.min_score, cli.max_errors));
        cli::print_report(&r)?;
    } else if !cli.common.quiet {
        banter_core::etext!("{}", rep.human(settings, &verdicts, cli.min_score, cli.max_errors));
    }
    if malformed_fatal {
        for e in &rep.malformed_errors {
            banter_core::eline!("banter-validate: error: {e}");
        }
        let more = rep.malformed.saturating_sub(rep.malformed_errors.len() as u64);
        if more > 0 {
            banter_core::eline!(
                "banter-validate: error: … and {more} more malformed line{}",
                if more == 1 { "" } else { "s" }
            );
        }
        let hint = if cli.max_errors == 0 {
            "fix the lines above, or pass --max-errors N to count up to N of them as rejected samples".to_string()
        } else {
            format!("{} malformed lines exceed --max-errors {}", rep.malformed, cli.max_errors)
        };
        banter_core::eline!("\nhint: {hint}");
        banter_core::eline!(
            "banter-validate: nothing was written (outputs are only written when the input is readable)"
        );
    } else if rep.total == 0 && !cli.common.quiet {
        banter_core::eline!("banter-validate: no records in the input: nothing to train on (exit 1)");
    }
    Ok(code)
}

/// Where a record comes from and how it is judged.
struct Ctx<'a> {
    file_idx: usize,
    name: &'a str,
    array_input: bool,
    settings: &'a Settings,
    cli: &'a Cli,
}

fn handle(
    ev: Evaluated,
    ctx: &Ctx<'_>,
    rep: &mut Report,
    judge: &mut Judge,
    rejects: Option<&mut banter_core::jsonl::JsonlWriter>,
    kept: Option<&mut KeptWriter>,
) -> anyhow::Result<()> {
    let Ctx { file_idx, name, array_input, settings, cli } = *ctx;
    rep.total += 1;
    match ev {
        Evaluated::Malformed { line, error, raw } => {
            rep.malformed += 1;
            rep.invalid += 1;
            if rep.malformed_errors.len() < report::MAX_ERRORS_SHOWN {
                rep.malformed_errors.push(error.clone());
            }
            let detail = error.strip_prefix(&format!("{name}:{line}: ")).unwrap_or(&error).to_string();
            let f = Finding::new(CheckId::Structure, detail);
            rep.count(&f, Severity::Reject);
            rep.offer_example(
                Example { file: name.into(), line, reasons: vec![f.clone()], excerpt: String::new() },
                1,
                cli.examples,
            );
            if let Some(w) = rejects {
                w.write(&json!({"file": name, "line": line, "reasons": [f], "raw": raw}))?;
            }
        }
        Evaluated::Sample { line, raw, mut assessed, redacted, excerpt } => {
            let inputs = &rep.inputs;
            judge.add_duplicates(&mut assessed, (file_idx, line), |(f, l)| {
                if f == file_idx { format!("line {l}") } else { format!("{}:{l}", inputs[f]) }
            });
            let findings = assessed.findings;
            let mut rejected = 0;
            let mut warned = 0;
            for f in &findings {
                let sev = settings.severity(f.check);
                rep.count(f, sev);
                match sev {
                    Severity::Reject => rejected += 1,
                    Severity::Warn => warned += 1,
                    Severity::Off => {}
                }
            }
            if rejected > 0 {
                rep.invalid += 1;
                let shown: Vec<Finding> = findings.clone();
                rep.offer_example(Example { file: name.into(), line, reasons: shown, excerpt }, rejected, cli.examples);
                if let Some(w) = rejects {
                    let record: Value = match &raw {
                        Raw::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
                        Raw::Value(v) => v.clone(),
                    };
                    w.write(&json!({"file": name, "line": line, "reasons": findings, "record": record}))?;
                }
            } else {
                rep.valid += 1;
                if warned > 0 {
                    rep.warned += 1;
                }
                if let Some(w) = kept {
                    match (&redacted, &raw) {
                        (Some(r), _) => {
                            rep.redacted += 1;
                            w.write(r, array_input)?;
                        }
                        (None, Raw::Text(t)) => w.write(t, array_input)?,
                        (None, Raw::Value(v)) => w.write(&v.to_string(), array_input)?,
                    }
                }
            }
        }
    }
    Ok(())
}
