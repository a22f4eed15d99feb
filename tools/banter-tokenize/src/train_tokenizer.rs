//! `banter-tokenize train-tokenizer`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use banter_core::cli::{self, CommonArgs};
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, ReadOptions, Source};
use banter_core::records::Sample;
use banter_core::{ChatTemplate, Error, Exit};
use banter_encode::tok::{self, TokenizerType};

/// `train-tokenizer`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Samples JSONL (rendered through the template) or plain text files (.txt, one document per line).
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<String>,
    /// Vocabulary size, special tokens included.
    #[arg(long, value_name = "N", default_value_t = 8000)]
    pub vocab_size: usize,
    /// Merges need pairs seen at least this often (bpe).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_frequency: u64,
    /// bpe: GPT-2's byte-level BPE (EOS `<|endoftext|>`); unigram: SentencePiece-style, ids `<pad>` 0,
    /// `<s>` 1, `</s>` 2 (EOS), `<unk>` 3.
    #[arg(long = "type", value_enum, default_value_t = TokenizerType::Bpe)]
    pub kind: TokenizerType,
    /// Chat template whose markers become special tokens (chatml, asimbot, or a JSON file) [default: chatml
    /// for samples and transcripts; plain text alone gets no chat markers].
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// Where to write tokenizer.json.
    #[arg(short = 'o', long, value_name = "PATH", required = true)]
    pub output: PathBuf,
}

/// Runs `train-tokenizer`.
pub(crate) fn run(a: &TrainArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    // Samples (JSONL, or transcripts of `User: …` / `Assistant: …` in .txt files) are rendered through the
    // template; other .txt files are lines of plain text. Plain text alone needs no chat markers, so without
    // --template it gets none.
    let mut samples: Vec<Sample> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for input in &a.inputs {
        if input.ends_with(".txt") {
            banter_core::inputs::register(std::path::Path::new(input));
            let t = std::fs::read_to_string(input).map_err(|e| Error::io(input, e))?;
            let conv = banter_core::transcript::parse(&t, &banter_core::transcript::Prefixes::default());
            if conv.samples.is_empty() {
                lines.extend(t.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
            } else {
                samples.extend(conv.samples);
            }
            continue;
        }
        let reader = JsonlReader::open(&Source::parse(input), ReadOptions::default())?;
        samples.extend(banter_core::jsonl::read_all::<Sample>(reader, "banter-tokenize")?);
    }
    let template = match (&a.template, samples.is_empty()) {
        (Some(t), _) => ChatTemplate::from_arg(t)?,
        (None, true) => ChatTemplate::plain_text(),
        (None, false) => ChatTemplate::chatml(),
    };
    let mut texts: Vec<String> = samples.iter().map(|s| template.render(s).text).collect();
    texts.extend(lines);
    if texts.is_empty() {
        return Err(Coded::new(Exit::BadInput, "no text to train the tokenizer on").into());
    }
    let n = texts.len();
    let tok = match a.kind {
        TokenizerType::Bpe => tok::train(texts.into_iter(), a.vocab_size, a.min_frequency, &template)?,
        TokenizerType::Unigram => tok::train_unigram(texts.into_iter(), a.vocab_size, &template)?,
    };
    let kind = match a.kind {
        TokenizerType::Bpe => "byte-level BPE",
        TokenizerType::Unigram => "unigram",
    };
    tok::save(&tok.inner, &a.output)?;
    let vocab = tok.inner.get_vocab_size(true);
    if common.json {
        cli::print_report(&cli::report(
            "banter-tokenize",
            Exit::Success,
            json!({"command": "train-tokenizer", "type": kind, "texts": n, "vocab_size": vocab,
                   "template": template.name, "output": a.output}),
        ))?;
    } else {
        common.say(format!(
            "banter-tokenize: trained a {vocab}-token {kind} on {n} texts (template {}) → {}",
            template.name,
            a.output.display()
        ));
    }
    Ok(Exit::Success)
}
