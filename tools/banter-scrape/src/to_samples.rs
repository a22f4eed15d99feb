//! `to-samples`: docs → text chunks or prompt/answer pairs.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use banter_core::cli::{self, CommonArgs};
use banter_core::exit::Coded;
use banter_core::{Error, Exit};

use banter_core::jsonl::{JsonlReader, JsonlWriter, ReadOptions, Source};
use banter_core::records::Doc;

use crate::samples;

/// What `to-samples` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `{"text"}` chunks.
    Text,
    /// `{"input","output"}` pairs from prompt templates (MTN Sails).
    Pairs,
}

/// `to-samples`.
#[derive(Debug, Args)]
pub struct SamplesArgs {
    /// Docs JSONL (from fetch/crawl/wikipedia); `-` reads stdin.
    #[arg(value_name = "DOCS")]
    pub input: String,
    /// Chunks of text, or prompt/answer pairs.
    #[arg(long, value_enum, default_value_t = Mode::Text)]
    pub mode: Mode,
    /// text: chunk size in characters.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub chunk_chars: usize,
    /// text: characters each chunk repeats from the previous one.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub overlap: usize,
    /// Skip docs whose cleaned text is shorter than this.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub min_chars: usize,
    /// pairs: prompt templates, one per line, with {title} {topic} {url} {content_type} {category} {lang}.
    #[arg(long, value_name = "FILE")]
    pub templates: Option<PathBuf>,
    /// pairs: always use the first template.
    #[arg(long)]
    pub no_randomize: bool,
    /// pairs: keep at most this many characters of the answer (0 = the whole page, as MTN).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_output_chars: usize,
    /// Template choice is deterministic for a seed.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Add a system turn (a persona) to every sample.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Write samples here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Runs `to-samples`.
pub(crate) fn run(a: &SamplesArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if a.chunk_chars < 50 {
        return Err(Error::usage("--chunk-chars must be at least 50").into());
    }
    if a.overlap >= a.chunk_chars / 2 {
        return Err(Error::usage("--overlap must be under half of --chunk-chars").into());
    }
    let templates: Vec<String> = match &a.templates {
        None => samples::TEMPLATES.iter().map(|s| s.to_string()).collect(),
        Some(p) => std::fs::read_to_string({
            banter_core::inputs::register(p);
            p
        })
        .map_err(|e| Error::io(p.display(), e))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect(),
    };
    if templates.is_empty() {
        return Err(Error::usage("--templates: the file holds no template").into());
    }
    let probe = Doc { text: "x".into(), ..Default::default() };
    for t in &templates {
        samples::fill(t, &probe, "x").map_err(Error::usage)?;
    }
    common.require_data_file(a.output.as_deref(), "samples")?;
    let mut rng = samples::SplitMix::new(a.seed);
    let reader = JsonlReader::open(&Source::parse(&a.input), ReadOptions::default())?;
    let mut w = JsonlWriter::create(a.output.as_deref())?;
    let (mut docs, mut skipped, mut written) = (0u64, 0u64, 0u64);
    // Every bad line is reported before anything is written.
    for doc in banter_core::jsonl::read_all::<Doc>(reader, "banter-scrape")? {
        docs += 1;
        let text = samples::clean(&doc.text);
        if text.chars().count() < a.min_chars {
            skipped += 1;
            continue;
        }
        let mut out = Vec::new();
        match a.mode {
            Mode::Text => {
                for c in samples::chunks(&text, a.chunk_chars, a.overlap) {
                    out.push(samples::with_system(a.system.as_deref(), None, c));
                }
            }
            Mode::Pairs => {
                let t = if a.no_randomize { &templates[0] } else { &templates[rng.below(templates.len())] };
                let prompt = samples::fill(t, &doc, &text).map_err(Error::usage)?;
                let answer =
                    if a.max_output_chars > 0 { text.chars().take(a.max_output_chars).collect() } else { text.clone() };
                out.push(samples::with_system(a.system.as_deref(), Some(prompt), answer));
            }
        }
        for mut s in out {
            // The page's address, or the saved file it was read from (`extract`).
            if let Some(u) = doc.url.as_ref().map(|u| json!(u)).or_else(|| doc.fields.get("path").cloned()) {
                s.fields.insert("source", u);
            }
            w.write(&s)?;
            written += 1;
        }
    }
    w.commit()?;
    if common.json {
        cli::print_report(&cli::report(
            "banter-scrape",
            Exit::Success,
            json!({"command": "to-samples", "counts": {"docs": docs, "skipped_short": skipped, "samples": written}}),
        ))?;
    } else {
        common.say(format!(
            "banter-scrape: {written} sample(s) from {docs} doc(s) ({skipped} under --min-chars skipped)"
        ));
    }
    if docs == 0 {
        return Err(Coded::new(Exit::BadInput, format!("{}: no docs in the input", a.input)).into());
    }
    Ok(Exit::Success)
}
