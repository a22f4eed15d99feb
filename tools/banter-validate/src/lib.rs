//! `banter-validate`: quality-check training samples, score them, filter them, report, and gate
//! pipelines by exit code.
//!
//! Input is read sequentially (a reader thread splits lines), evaluated in parallel batches (rayon), and
//! then counted, deduplicated and written in input order, so output order equals input order whatever the
//! thread count, and memory stays flat apart from the duplicate index.

pub mod checks;
pub mod dedup;
pub mod report;
pub mod text;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use rayon::prelude::*;
use serde_json::{Value, json};

use banter_core::cli::{self, CommonArgs};
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, Line, Output, Raw, ReadOptions, Source};
use banter_core::records::{Record, Sample, SampleBody};
use banter_core::{Error, Exit, progress};

use checks::{CheckId, Finding, Profile, Settings, Severity};
use report::{Example, Report, Verdicts};

const EXAMPLES: &str = "\
Examples:
  banter-validate data.jsonl && banter-train data.jsonl ...
  banter-validate data.json --filter                # writes data_filtered.json (MTN's name and format)
  banter-validate data.jsonl -o clean.jsonl --rejects rejects.jsonl --min-score 0.7
  cat logs/*.jsonl | banter-validate - --redact-pii -o clean.jsonl --json > report.json
  banter-validate pages.jsonl --profile web --near-dup -o good-pages.jsonl

Checks (ids for --disable/--warn/--reject): structure, empty, too-short, repetitive, gibberish, echo,
incomplete, duplicate, near-duplicate (off unless --near-dup), encoding, pii (warns), gopher-quality and
gopher-repetition (--profile web).

Exit codes: 0 score >= --min-score; 1 below it, or no records; 2 usage; 3 malformed input beyond
--max-errors; 4 I/O; 130 interrupted.";

/// Quality-check training samples: score, filter, report, and gate pipelines by exit code.
///
/// Reads samples JSONL (or a JSON array, MTN Sails' format) in any of the formats of docs/formats.md,
/// runs the checks on every sample, prints a report with a score (valid / total) and a verdict, and exits
/// 1 when the score is below --min-score. With --filter or -o it writes the kept records unchanged.
#[derive(Debug, Parser)]
#[command(name = "banter-validate", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Sample files (JSONL or a JSON array); `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<String>,

    /// Default checks: chat (MTN's checks) or web (Gopher rules for scraped pages).
    #[arg(long, value_enum, default_value_t = Profile::Chat, help_heading = "Checks")]
    pub profile: Profile,
    /// Turn checks off (comma-separated ids).
    #[arg(long, value_name = "IDS", value_delimiter = ',', help_heading = "Checks")]
    pub disable: Vec<String>,
    /// Report these checks but keep the samples (comma-separated ids).
    #[arg(long, value_name = "IDS", value_delimiter = ',', help_heading = "Checks")]
    pub warn: Vec<String>,
    /// Reject samples failing these checks (comma-separated ids; e.g. pii).
    #[arg(long, value_name = "IDS", value_delimiter = ',', help_heading = "Checks")]
    pub reject: Vec<String>,
    /// too-short: minimum words (characters for scripts written without spaces).
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Checks")]
    pub min_words: usize,
    /// repetitive: highest repetition score kept.
    #[arg(long, value_name = "F", default_value_t = 0.3, help_heading = "Checks")]
    pub max_repetition: f64,
    /// gibberish: lowest share of letters (any script) among non-space characters.
    #[arg(long, value_name = "F", default_value_t = 0.3, help_heading = "Checks")]
    pub min_letter_ratio: f64,
    /// gibberish: longest run of one repeated character kept.
    #[arg(long, value_name = "N", default_value_t = 20, help_heading = "Checks")]
    pub max_char_run: usize,
    /// echo: highest share of the input's distinct words the output may repeat.
    #[arg(long, value_name = "F", default_value_t = 0.6, help_heading = "Checks")]
    pub max_echo_overlap: f64,
    /// incomplete: languages whose rules run (en, fa); `none` turns the check off.
    #[arg(long, value_name = "LANGS", value_delimiter = ',', default_value = "en,fa", help_heading = "Checks")]
    pub incomplete_langs: Vec<String>,
    /// Also reject near-duplicates (MinHash over character 5-grams, ≈0.72 Jaccard).
    #[arg(long, help_heading = "Checks")]
    pub near_dup: bool,

    /// Exit 1 when the score (valid / total) is below this.
    #[arg(long, value_name = "F", default_value_t = 0.5, help_heading = "Gate")]
    pub min_score: f64,
    /// Verdict GOOD at or above this score.
    #[arg(long, value_name = "F", default_value_t = 0.7, help_heading = "Gate")]
    pub good: f64,
    /// Verdict ACCEPTABLE at or above this score (CRITICAL below).
    #[arg(long, value_name = "F", default_value_t = 0.5, help_heading = "Gate")]
    pub acceptable: f64,
    /// Count up to N malformed lines as rejected samples instead of failing with exit 3.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Gate")]
    pub max_errors: u64,

    /// Write the kept records to <stem>_filtered.<ext> beside each input (or to -o).
    #[arg(long, help_heading = "Output")]
    pub filter: bool,
    /// Write the kept records here (implies --filter; `-` is stdout).
    #[arg(short = 'o', long, value_name = "PATH", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Write each rejected record with its reasons here (JSONL).
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub rejects: Option<PathBuf>,
    /// Replace emails, phones, IPs and card numbers with [EMAIL], [PHONE], … in the kept output.
    #[arg(long, help_heading = "Output")]
    pub redact_pii: bool,
    /// How many of the worst records the report shows.
    #[arg(long, value_name = "N", default_value_t = 5, help_heading = "Output")]
    pub examples: usize,

    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", help_heading = "Performance")]
    pub threads: Option<usize>,
    /// Longest line accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, help_heading = "Performance")]
    pub max_line_bytes: usize,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn parse_ids(ids: &[String], flag: &str) -> Result<Vec<CheckId>, Error> {
    ids.iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            CheckId::parse(s.trim()).ok_or_else(|| {
                Error::usage_hint(
                    format!("{flag}: unknown check \"{s}\""),
                    format!("checks are {}", checks::ALL.map(CheckId::as_str).join(", ")),
                )
            })
        })
        .collect()
}

impl Cli {
    /// The check settings the flags ask for.
    pub fn settings(&self) -> Result<Settings, Error> {
        let mut s = Settings::new(self.profile);
        s.min_words = self.min_words;
        s.max_repetition = self.max_repetition;
        s.min_letter_ratio = self.min_letter_ratio;
        s.max_char_run = self.max_char_run.max(1);
        s.max_echo_overlap = self.max_echo_overlap;
        s.incomplete_langs = self.incomplete_langs.iter().map(|l| l.trim().to_lowercase()).collect();
        for l in &s.incomplete_langs {
            if !matches!(l.as_str(), "en" | "fa" | "none" | "") {
                return Err(Error::usage_hint(
                    format!("--incomplete-langs: no rules for \"{l}\""),
                    "rules exist for en and fa; other languages are not checked",
                ));
            }
        }
        if self.near_dup {
            s.set(CheckId::NearDuplicate, Severity::Reject);
        }
        for c in parse_ids(&self.reject, "--reject")? {
            s.set(c, Severity::Reject);
        }
        for c in parse_ids(&self.warn, "--warn")? {
            s.set(c, Severity::Warn);
        }
        for c in parse_ids(&self.disable, "--disable")? {
            s.set(c, Severity::Off);
        }
        for (name, v) in [
            ("--min-score", self.min_score),
            ("--good", self.good),
            ("--acceptable", self.acceptable),
            ("--max-repetition", self.max_repetition),
            ("--min-letter-ratio", self.min_letter_ratio),
            ("--max-echo-overlap", self.max_echo_overlap),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::usage(format!("{name} must be between 0 and 1, got {v}")));
            }
        }
        Ok(s)
    }
}

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

/// The result of evaluating one record (in a worker).
enum Evaluated {
    /// Not a usable sample: a reader error or a parse/schema error.
    Malformed { line: u64, error: String, raw: Option<String> },
    /// A sample with its findings.
    Sample {
        line: u64,
        raw: Raw,
        findings: Vec<Finding>,
        exact: Option<u128>,
        bands: Option<[u64; 14]>,
        /// The record with PII redacted, when it changed.
        redacted: Option<String>,
        excerpt: String,
    },
}

fn evaluate_one(item: Result<Line<Raw>, Error>, name: &str, s: &Settings, redact: bool) -> Evaluated {
    let Line { line, record: raw } = match item {
        Ok(l) => l,
        Err(e) => {
            return Evaluated::Malformed { line: e.line().unwrap_or(0), error: e.to_string(), raw: None };
        }
    };
    let parsed = match &raw {
        Raw::Text(t) => Sample::body_from_str(t).map(|body| Sample { body, fields: Default::default() }),
        Raw::Value(v) => Sample::from_value(v.clone()),
    };
    let sample = match parsed {
        Ok(s) => s,
        Err(err) => {
            let raw_text = match raw {
                Raw::Text(t) => Some(t),
                Raw::Value(v) => Some(v.to_string()),
            };
            return Evaluated::Malformed { line, error: Error::data(name, Some(line), err).to_string(), raw: raw_text };
        }
    };
    let findings = checks::evaluate(&sample, s);
    let structural = findings.iter().any(|f| f.check == CheckId::Structure);
    let need_norm = !structural && (s.on(CheckId::Duplicate) || s.on(CheckId::NearDuplicate));
    let (exact, bands) = if need_norm {
        (
            s.on(CheckId::Duplicate).then(|| dedup::sample_exact_key(&sample)),
            s.on(CheckId::NearDuplicate).then(|| dedup::band_keys(&dedup::sample_key_text(&sample))),
        )
    } else {
        (None, None)
    };
    let redacted = if redact && findings.iter().any(|f| f.check == CheckId::Pii) {
        // Re-read the whole record (unknown fields included) to write it back redacted.
        raw.clone().parse().and_then(Sample::from_value).ok().and_then(|full| redact_sample(&full))
    } else {
        None
    };
    let excerpt = checks::responses(&sample).last().map(|r| text::excerpt(r.text.trim(), 80)).unwrap_or_default();
    Evaluated::Sample { line, raw, findings, exact, bands, redacted, excerpt }
}

/// The sample with PII replaced in every text, serialized; `None` when nothing changed.
fn redact_sample(sample: &Sample) -> Option<String> {
    let mut changed = false;
    let mut fix = |t: &mut String| {
        let found = checks::pii::find(t);
        if !found.is_empty() {
            *t = checks::pii::redact(t, &found);
            changed = true;
        }
    };
    let mut s = sample.clone();
    match &mut s.body {
        SampleBody::Text(t) => fix(t),
        SampleBody::Pair { input, output, .. } => {
            fix(input);
            fix(output);
        }
        SampleBody::Chat(turns) => turns.iter_mut().for_each(|t| fix(&mut t.content)),
    }
    changed.then(|| s.to_value().to_string())
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
    let verdicts = Verdicts { good: cli.good, acceptable: cli.acceptable };
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
    let threads = cli.threads.unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("starting worker threads")?;
    let threads = pool.current_num_threads();
    let started = Instant::now();
    let mut rep = Report { inputs: sources.iter().map(|s| s.to_string()).collect(), threads, ..Default::default() };
    let mut index = dedup::Index::default();
    let mut rejects = match &cli.rejects {
        Some(p) => Some(banter_core::jsonl::JsonlWriter::create(Some(p))?),
        None => None,
    };
    let mut shared_out = match (&cli.output, filter) {
        (Some(p), true) => Some(KeptWriter::new(Output::create(Some(p))?)),
        _ => None,
    };
    let mut committed_outputs: Vec<(KeptWriter, bool, String)> = Vec::new();
    let opts = ReadOptions { max_line_bytes: cli.max_line_bytes, ..Default::default() };
    let mut any_array = false;

    for (file_idx, source) in sources.iter().enumerate() {
        let name = source.to_string();
        let size = source.path().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
        let mut own_out = if filter && shared_out.is_none() {
            let out = match source {
                Source::Stdin => Output::stdout(),
                Source::Path(p) => Output::create(Some(&filtered_name(p)))?,
            };
            Some(KeptWriter::new(out))
        } else {
            None
        };
        let bar = progress::bar(size, &format!("validating {name}"), &cli.common);
        let reader = JsonlReader::open(source, opts)?;
        let (tx, rx) = mpsc::sync_channel::<(Vec<Result<Line<Raw>, Error>>, u64, bool)>(4);
        let is_array = std::thread::scope(|scope| -> anyhow::Result<bool> {
            let producer = scope.spawn(move || {
                let mut reader = reader;
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
            });
            // Evaluation runs on the pool in its own thread, so that counting and writing (here, in
            // input order) overlap with evaluating the next batch.
            let (etx, erx) = mpsc::sync_channel::<(Result<Vec<Evaluated>, String>, u64, bool)>(2);
            let (name_ref, settings_ref, pool_ref, redact) = (&name, &settings, &pool, cli.redact_pii);
            let evaluator = scope.spawn(move || {
                for (batch, bytes, arr) in rx {
                    if let Some(e) = batch.iter().find_map(|i| i.as_ref().err().filter(|e| !e.is_record_error())) {
                        let _ = etx.send((Err(e.to_string()), bytes, arr));
                        return;
                    }
                    let results: Vec<Evaluated> = pool_ref.install(|| {
                        batch.into_par_iter().map(|item| evaluate_one(item, name_ref, settings_ref, redact)).collect()
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
                rep.bytes += bytes;
                bar.inc(bytes);
                for ev in results {
                    handle(
                        ev,
                        file_idx,
                        &name,
                        arr,
                        &settings,
                        &cli,
                        &mut rep,
                        &mut index,
                        rejects.as_mut(),
                        shared_out.as_mut().or(own_out.as_mut()),
                    )?;
                }
            }
            evaluator.join().map_err(|_| anyhow::anyhow!("evaluation thread panicked"))?;
            let was_array = producer.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
            Ok(array || was_array)
        })?;
        bar.finish_and_clear();
        any_array |= is_array;
        if is_array && source.path().is_some() {
            rep.bytes += size.unwrap_or(0);
        }
        if let Some(w) = own_out.take() {
            let dest = match source {
                Source::Stdin => "<stdout>".to_string(),
                Source::Path(p) => filtered_name(p).display().to_string(),
            };
            committed_outputs.push((w, is_array, dest));
        }
    }
    rep.seconds = started.elapsed().as_secs_f64();

    let malformed_fatal = rep.malformed > cli.max_errors;
    if !malformed_fatal {
        if let Some(w) = shared_out.take() {
            let dest = cli.output.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            w.commit(any_array)?;
            rep.outputs.push(("kept records".into(), if dest == "-" { "<stdout>".into() } else { dest }));
        }
        for (w, arr, dest) in committed_outputs {
            w.commit(arr)?;
            rep.outputs.push(("kept records".into(), dest));
        }
        if let Some(r) = rejects.take() {
            r.commit()?;
            rep.outputs.push((
                "rejected records".into(),
                cli.rejects.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            ));
        }
    }

    let code = if malformed_fatal {
        Exit::BadInput
    } else if rep.total == 0 || rep.score() < cli.min_score {
        Exit::GateFailed
    } else {
        Exit::Success
    };
    if cli.common.json {
        let r = cli::report("banter-validate", code, rep.json(&settings, &verdicts, cli.min_score, cli.max_errors));
        cli::print_report(&r)?;
    } else if !cli.common.quiet {
        eprint!("{}", rep.human(&settings, &verdicts, cli.min_score, cli.max_errors));
    }
    if malformed_fatal {
        for e in &rep.malformed_errors {
            eprintln!("banter-validate: error: {e}");
        }
        let more = rep.malformed.saturating_sub(rep.malformed_errors.len() as u64);
        if more > 0 {
            eprintln!("banter-validate: error: … and {more} more malformed line{}", if more == 1 { "" } else { "s" });
        }
        let hint = if cli.max_errors == 0 {
            "fix the lines above, or pass --max-errors N to count up to N of them as rejected samples".to_string()
        } else {
            format!("{} malformed lines exceed --max-errors {}", rep.malformed, cli.max_errors)
        };
        eprintln!("\nhint: {hint}");
        eprintln!("banter-validate: nothing was written (outputs are only written when the input is readable)");
    } else if rep.total == 0 && !cli.common.quiet {
        eprintln!("banter-validate: no records in the input: nothing to train on (exit 1)");
    }
    Ok(code)
}

#[allow(clippy::too_many_arguments)]
fn handle(
    ev: Evaluated,
    file_idx: usize,
    name: &str,
    array_input: bool,
    settings: &Settings,
    cli: &Cli,
    rep: &mut Report,
    index: &mut dedup::Index,
    rejects: Option<&mut banter_core::jsonl::JsonlWriter>,
    kept: Option<&mut KeptWriter>,
) -> anyhow::Result<()> {
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
        Evaluated::Sample { line, raw, mut findings, exact, bands, redacted, excerpt } => {
            let origin = (file_idx, line);
            if let Some(k) = exact {
                if let Some((f, l)) = index.exact(k, origin) {
                    let at = if f == file_idx { format!("line {l}") } else { format!("{}:{l}", rep.inputs[f]) };
                    findings.push(Finding::new(CheckId::Duplicate, format!("same as {at}")));
                }
            }
            if let Some(b) = bands {
                if !findings.iter().any(|f| f.check == CheckId::Duplicate) {
                    if let Some((f, l)) = index.near(&b, origin) {
                        let at = if f == file_idx { format!("line {l}") } else { format!("{}:{l}", rep.inputs[f]) };
                        findings.push(Finding::new(CheckId::NearDuplicate, format!("nearly the same as {at}")));
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtered_names_follow_mtn() {
        assert_eq!(filtered_name(Path::new("d/data.json")), PathBuf::from("d/data_filtered.json"));
        assert_eq!(filtered_name(Path::new("x.jsonl")), PathBuf::from("x_filtered.jsonl"));
        assert_eq!(filtered_name(Path::new("noext")), PathBuf::from("noext_filtered"));
    }

    #[test]
    fn flags_build_settings() {
        let cli =
            Cli::parse_from(["banter-validate", "x", "--disable", "echo,too-short", "--reject", "pii", "--near-dup"]);
        let s = cli.settings().unwrap();
        assert!(!s.on(CheckId::Echo) && !s.on(CheckId::TooShort));
        assert_eq!(s.severity(CheckId::Pii), Severity::Reject);
        assert_eq!(s.severity(CheckId::NearDuplicate), Severity::Reject);
        let cli = Cli::parse_from(["banter-validate", "x", "--disable", "nope"]);
        assert!(cli.settings().unwrap_err().to_string().contains("unknown check \"nope\""));
        let cli = Cli::parse_from(["banter-validate", "x", "--min-score", "1.5"]);
        assert!(cli.settings().is_err());
    }
}
