//! `--holdout-split FILE`: leave out every sample whose reply falls in the held-out part of a chat
//! (`banter-eval split`), and record the split with the output so `banter-eval persona` evaluates on exactly
//! the messages training never saw.

use std::path::Path;

use banter_core::Error;
use banter_core::records::Sample;
use banter_quality::split::{RECORDED, Split};

use crate::TOOL;
use crate::settings::Console;

/// The samples outside the split's held-out part. Every sample must say when its reply was written
/// (`meta.ts`, as `banter-whatsapp samples` writes it): one that does not cannot be checked, and is refused.
pub fn exclude(split: &Split, samples: Vec<Sample>, console: &Console) -> crate::Result<Vec<Sample>> {
    let meta = |x: &Sample, k: &str| x.fields.get("meta").and_then(|m| m[k].as_str()).map(str::to_string);
    let unchecked = samples.iter().filter(|x| meta(x, "ts").is_none()).count();
    if unchecked > 0 {
        return Err(Error::usage_hint(
            format!(
                "--holdout-split: {unchecked} sample(s) carry no meta.ts, so whether they are held out cannot be told"
            ),
            "make the samples with banter-whatsapp samples (it records each reply's time)",
        )
        .into());
    }
    if !split.chat.is_empty() && !samples.iter().any(|x| meta(x, "chat").as_deref() == Some(split.chat.as_str())) {
        return Err(Error::usage(format!(
            "--holdout-split: the split is of the chat \"{}\", and no sample comes from it",
            split.chat
        ))
        .into());
    }
    let before = samples.len();
    let kept: Vec<Sample> = samples
        .into_iter()
        .filter(|x| !split.holds_out(&meta(x, "chat").unwrap_or_default(), &meta(x, "ts").unwrap_or_default()))
        .collect();
    console.say(format!(
        "{TOOL}: --holdout-split: {} of {before} sample(s) fall at or after {} and were left out",
        before - kept.len(),
        split.cutoff
    ));
    Ok(kept)
}

/// The refusal for inputs that carry no reply times (blocks, token files, preference pairs): a split could
/// not be applied to them, and silently training on held-out replies is what the flag exists to prevent.
pub fn only_samples(what: &str) -> Error {
    Error::usage_hint(
        format!("--holdout-split needs samples that say when each reply was written; {what} cannot"),
        "train on the samples JSONL banter-whatsapp samples wrote",
    )
}

/// Reads `--holdout-split` (a bad file is a usage error naming it).
pub fn read(path: &Path) -> crate::Result<Split> {
    Ok(Split::read(path).map_err(|e| Error::usage(e.to_string()))?)
}

/// Records the split applied with the output (`eval_split.json`).
pub fn record(split: &Split, out: &Path) -> crate::Result<()> {
    std::fs::write(out.join(RECORDED), split.to_json()).map_err(|e| Error::io(out.display(), e))?;
    Ok(())
}
