//! `banter-tokenize decode`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use banter_core::jsonl::{JsonlReader, ReadOptions, Source};
use banter_core::records::{Block, IGNORE_INDEX};
use banter_core::{Error, Exit};
use banter_encode::tok;

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

/// Runs `decode`.
pub(crate) fn run(a: &DecodeArgs) -> anyhow::Result<Exit> {
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
