//! Training data: blocks JSONL from banter-tokenize, or samples JSONL tokenized on the fly with
//! banter-tokenize's library (the model's tokenizer and template); batches padded with `-100` labels.

use std::path::Path;

use banter_core::exit::{Coded, Exit};
use banter_core::jsonl::{JsonlReader, ReadOptions, Source};
use banter_core::records::{Block, IGNORE_INDEX, Sample};
use banter_core::tokshards::TokSet;
use banter_core::{ChatTemplate, Error, FieldError};
use banter_encode::encode::{self, Fit, Mode, Packer, Side};
use banter_encode::tok::Tok;
use tch::{Device, Tensor};

/// What an input file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{"input_ids","labels"}` lines.
    Blocks,
    /// Samples of any shape.
    Samples,
    /// Preference records (`chosen`/`rejected`, or `responses` with `ranked_indices`): for `--dpo`.
    Preferences,
}

/// Training or validation blocks: in memory (JSONL), or read block by block from a binary token file
/// (`banter-tokenize encode --format bin`), so memory does not grow with the data.
#[derive(Debug)]
pub enum Blocks {
    /// Blocks in memory.
    Mem(Vec<Block>),
    /// A binary token file (or a manifest of shards), the model's vocabulary and context (checked per
    /// block).
    Bin(TokSet, i64, usize),
}

impl Blocks {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        match self {
            Blocks::Mem(v) => v.len(),
            Blocks::Bin(f, ..) => f.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The blocks at `idx`, owned (a micro-batch's worth).
    pub fn fetch(&self, idx: impl Iterator<Item = usize>) -> Result<Vec<Block>, Error> {
        match self {
            Blocks::Mem(v) => Ok(idx.filter_map(|i| v.get(i).cloned()).collect()),
            Blocks::Bin(f, vocab, n_pos) => idx
                .map(|i| {
                    let b = f.block(i)?;
                    let bad =
                        |m: String| Error::data(f.header_name(), None, FieldError::record(format!("block {i}: {m}")));
                    if let Some(e) = check_block(&b, *vocab, *n_pos) {
                        return Err(bad(e.to_string()));
                    }
                    Ok(b)
                })
                .collect(),
        }
    }
}

/// Opens a binary token file, or a shard manifest, as blocks for a model of `vocab` tokens and `n_pos`
/// positions.
pub fn open_bin(path: &str, vocab: i64, n_pos: usize) -> Result<Blocks, Error> {
    Ok(Blocks::Bin(TokSet::open(Path::new(path))?, vocab, n_pos))
}

/// True when `path` is a binary token file or a shard manifest.
pub fn is_bin(path: &str) -> bool {
    path != "-"
        && (banter_core::tokbin::is_tokbin(Path::new(path)) || banter_core::tokshards::is_manifest(Path::new(path)))
}

/// Decides from the first readable record whether a file holds blocks or samples (a file whose lines are
/// all bad is read as samples, so that every bad line is then reported).
pub fn sniff(path: &str) -> Result<Kind, Error> {
    let reader = JsonlReader::open(&Source::parse(path), ReadOptions::default())?;
    let mut any = false;
    for item in reader {
        any = true;
        match item {
            Ok(line) if line.record.get("input_ids").is_some() => return Ok(Kind::Blocks),
            Ok(line)
                if ["chosen", "rejected", "ranked_indices"].iter().any(|k| line.record.get(k).is_some())
                    && line.record.get("messages").is_none() =>
            {
                return Ok(Kind::Preferences);
            }
            Ok(_) => return Ok(Kind::Samples),
            Err(e) if e.is_record_error() => continue,
            Err(e) => return Err(e),
        }
    }
    if any { Ok(Kind::Samples) } else { Err(Error::data(path, None, FieldError::record("no records"))) }
}

/// Bad records reported (each on its own line) before a data error stops the run.
const MAX_REPORTED: usize = 20;

/// What is wrong with a block for a model of `vocab` tokens and `n_pos` positions, if anything.
pub fn check_block(b: &Block, vocab: i64, n_pos: usize) -> Option<FieldError> {
    if let Some(&bad) = b.input_ids.iter().find(|&&id| i64::from(id) >= vocab) {
        return Some(FieldError::field("input_ids", format!("token id {bad} is outside the vocabulary of {vocab}")));
    }
    if b.input_ids.len() > n_pos {
        return Some(FieldError::field(
            "input_ids",
            format!("{} tokens, longer than the model's {n_pos} positions", b.input_ids.len()),
        ));
    }
    if b.labels.len() != b.input_ids.len() {
        return Some(FieldError::field(
            "labels",
            format!("{} labels for {} input_ids", b.labels.len(), b.input_ids.len()),
        ));
    }
    if let Some(&bad) = b.labels.iter().find(|&&l| l != IGNORE_INDEX && !(0..vocab).contains(&l)) {
        return Some(FieldError::field(
            "labels",
            format!("label {bad} is outside the vocabulary of {vocab} (-100 ignores a position)"),
        ));
    }
    None
}

/// Blocks read from JSONL, and those too short to learn from (fewer than 2 tokens) with the first one's line.
#[derive(Debug, Default)]
pub struct ReadBlocks {
    /// The blocks kept.
    pub blocks: Vec<Block>,
    /// Blocks skipped for having fewer than 2 tokens.
    pub short: usize,
    /// `file:line` of the first of them.
    pub first_short: Option<String>,
}

/// Reads blocks, checking each against the model (ids and labels in the vocabulary, length within its
/// positions). Every bad record is reported (up to 20), then the run stops with a data error.
pub fn read_blocks(path: &str, vocab: i64, n_pos: usize) -> crate::Result<ReadBlocks> {
    let reader = JsonlReader::open(&Source::parse(path), ReadOptions::default())?;
    let mut out = ReadBlocks::default();
    let mut errors: Vec<Error> = Vec::new();
    for item in reader.records::<Block>() {
        let l = match item {
            Ok(l) => l,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(e) = check_block(&l.record, vocab, n_pos) {
            errors.push(Error::data(path, Some(l.line), e));
            continue;
        }
        if l.record.input_ids.len() < 2 {
            out.short += 1;
            out.first_short.get_or_insert_with(|| format!("{path}:{}", l.line));
            continue;
        }
        out.blocks.push(l.record);
    }
    report(path, errors)?;
    Ok(out)
}

/// Prints every error (up to [`MAX_REPORTED`]) and fails with a data error when there is one.
pub fn report(path: &str, errors: Vec<Error>) -> crate::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    if errors.len() == 1 {
        let mut errors = errors;
        if let Some(e) = errors.pop() {
            return Err(e.into());
        }
        return Ok(());
    }
    for e in errors.iter().take(MAX_REPORTED) {
        banter_core::eline!("banter-train: error: {e}");
    }
    let more = errors.len().saturating_sub(MAX_REPORTED);
    Err(Coded::new(
        Exit::BadInput,
        format!(
            "{path}: {} bad record(s){}",
            errors.len(),
            if more > 0 { format!(" ({more} not shown)") } else { String::new() }
        ),
    )
    .into())
}

/// Reads a plain text file (`.txt`): a transcript of conversations (`User: …` / `Assistant: …`, as
/// `format` and the file say) or one text sample per non-blank line. Returns the samples and what was read,
/// in words.
pub fn read_text(
    path: &str,
    format: crate::settings::TextFormat,
    prefixes: &banter_core::transcript::Prefixes,
) -> Result<(Vec<Sample>, String), Error> {
    use crate::settings::TextFormat;
    banter_core::inputs::register(std::path::Path::new(path));
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let t = banter_core::transcript::parse(&text, prefixes);
    let transcript = match format {
        TextFormat::Transcript => true,
        TextFormat::Text => false,
        TextFormat::Auto => !t.samples.is_empty(),
    };
    if transcript {
        let n = t.samples.len();
        return Ok((
            t.samples,
            format!(
                "{path}: read as a transcript: {n} conversation(s){}{}",
                if t.stray_lines > 0 {
                    format!(", {} line(s) before the first prefix left out", t.stray_lines)
                } else {
                    String::new()
                },
                if t.without_reply > 0 {
                    format!(", {} without a reply left out", t.without_reply)
                } else {
                    String::new()
                },
            ),
        ));
    }
    let samples: Vec<Sample> = text.lines().filter(|l| !l.trim().is_empty()).map(Sample::text).collect();
    let n = samples.len();
    Ok((samples, format!("{path}: read as text: {n} line(s), one sample each")))
}

/// Reads samples.
pub fn read_samples(path: &str) -> Result<Vec<Sample>, Error> {
    let reader = JsonlReader::open(&Source::parse(path), ReadOptions::default())?;
    banter_core::jsonl::read_all::<Sample>(reader, "banter-train")
}

/// Samples → blocks (pack or pad), as banter-tokenize does.
pub fn tokenize(
    samples: &[Sample],
    tok: &Tok,
    template: &ChatTemplate,
    block: usize,
    mode: Mode,
) -> (Vec<Block>, usize) {
    let mut blocks = Vec::new();
    let mut dropped = 0;
    let mut packer = (mode == Mode::Pack).then(|| Packer::new(block));
    for s in samples {
        let Ok(e) = encode::encode_sample(tok, template, s) else {
            dropped += 1;
            continue;
        };
        if e.loss_tokens() == 0 {
            dropped += 1;
            continue;
        }
        match packer.as_mut() {
            Some(p) => blocks.extend(p.push(e)),
            None => match encode::fit(e, block, mode, Side::Left, tok.pad_id) {
                Fit::Block(b, _) => blocks.push(b),
                Fit::LostResponse => dropped += 1,
            },
        }
    }
    if let Some(p) = packer {
        // Keep the tail: small personal datasets cannot afford to lose it (Oodi's empty-dataset bug).
        if let (Some(b), _) = p.finish(true, tok.pad_id) {
            blocks.push(b);
        }
    }
    (blocks, dropped)
}

/// A batch as tensors: ids and labels `[B, T]`, padded to the longest block with `pad` and `-100`.
pub fn batch(blocks: &[&Block], pad: u32, device: Device) -> (Tensor, Tensor, i64) {
    let t = blocks.iter().map(|b| b.input_ids.len()).max().unwrap_or(1);
    let mut ids = Vec::with_capacity(blocks.len() * t);
    let mut labels = Vec::with_capacity(blocks.len() * t);
    for b in blocks {
        ids.extend(b.input_ids.iter().map(|&x| i64::from(x)));
        labels.extend_from_slice(&b.labels);
        for _ in b.input_ids.len()..t {
            ids.push(i64::from(pad));
            labels.push(IGNORE_INDEX);
        }
    }
    let n = blocks.len() as i64;
    let tokens = blocks.iter().map(|b| b.input_ids.len() as i64).sum();
    (
        Tensor::from_slice(&ids).view([n, t as i64]).to_device(device),
        Tensor::from_slice(&labels).view([n, t as i64]).to_device(device),
        tokens,
    )
}

/// The tokens a batch of blocks is scored on (labels past the first position that are not ignored): what
/// its mean loss divides by.
pub fn scored_tokens(blocks: &[Block]) -> usize {
    blocks.iter().map(|b| b.labels.iter().skip(1).filter(|&&l| l != IGNORE_INDEX).count()).sum()
}

/// Splits off every k-th block for validation, deterministically (`frac` of them).
pub fn split(blocks: Vec<Block>, frac: f64, seed: u64) -> (Vec<Block>, Vec<Block>) {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for (i, b) in blocks.into_iter().enumerate() {
        if encode::is_val(i as u64, seed, frac) {
            val.push(b);
        } else {
            train.push(b);
        }
    }
    if val.is_empty() && frac > 0.0 && train.len() > 1 {
        val.push(train.pop().expect("non-empty"));
    }
    (train, val)
}

/// The shuffled order of one epoch as a keyed permutation of `0..n` (a 4-round Feistel network on the
/// next power of four, cycle-walking back into range): block `i` of the epoch is [`Shuffle::get`]`(i)`,
/// computed on demand, so shuffling 100 M blocks takes no memory. Deterministic in (seed, epoch).
#[derive(Debug, Clone)]
pub struct Shuffle {
    n: u64,
    half: u32,
    keys: [u64; 4],
}

impl Shuffle {
    /// The order of epoch `epoch` of `n` blocks.
    pub fn new(n: usize, seed: u64, epoch: u64) -> Self {
        let bits = 64 - (n.max(2) as u64 - 1).leading_zeros();
        let half = bits.div_ceil(2).max(1);
        let mut rng = banter_core::util::SplitMix64::new(
            seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D,
        );
        let keys = [rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64()];
        Shuffle { n: n as u64, half, keys }
    }

    fn round(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half) - 1;
        let (mut l, mut r) = (x >> self.half, x & mask);
        for k in self.keys {
            let mut z = (r ^ k).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (l, r) = (r, l ^ ((z ^ (z >> 31)) & mask));
        }
        (l << self.half) | r
    }

    /// The block at position `i` (< n) of the epoch.
    pub fn get(&self, i: usize) -> usize {
        let mut x = i as u64;
        loop {
            x = self.round(x);
            if x < self.n {
                return x as usize;
            }
        }
    }
}

/// True when the path looks like a tokenizer file or model directory holding one.
pub fn has_tokenizer(p: &Path) -> bool {
    p.is_file() || p.join("tokenizer.json").exists() || p.join("tokenizer.model").exists()
}

/// Training blocks, validation blocks and the quality gate's score of the samples (None for blocks).
pub(crate) type Data = (Blocks, Blocks, Option<f64>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation_that_changes_with_the_epoch() {
        for n in [1usize, 2, 3, 7, 64, 1000, 4097] {
            let s = Shuffle::new(n, 42, 0);
            let mut seen: Vec<usize> = (0..n).map(|i| s.get(i)).collect();
            let first = seen.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
            if n >= 64 {
                let other: Vec<usize> = (0..n).map(|i| Shuffle::new(n, 42, 1).get(i)).collect();
                assert_ne!(first, other, "epochs differ");
                assert_ne!(first, (0..n).collect::<Vec<_>>(), "shuffled");
            }
        }
    }

    #[test]
    fn batches_pad_with_ignored_labels() {
        let a = Block { input_ids: vec![1, 2, 3], labels: vec![1, 2, 3], fields: Default::default() };
        let b = Block { input_ids: vec![4, 5], labels: vec![-100, 5], fields: Default::default() };
        let (ids, labels, n) = batch(&[&a, &b], 0, Device::Cpu);
        assert_eq!(ids.size(), vec![2, 3]);
        assert_eq!(Vec::<i64>::try_from(&labels.flatten(0, -1)).unwrap(), vec![1, 2, 3, -100, 5, -100]);
        assert_eq!(n, 5);
    }

    #[test]
    fn epoch_orders_are_fixed_by_seed() {
        let order = |seed, epoch| (0..10).map(|i| Shuffle::new(10, seed, epoch).get(i)).collect::<Vec<_>>();
        assert_eq!(order(1, 0), order(1, 0));
        assert_ne!(order(1, 0), order(1, 1));
        assert_ne!(order(1, 0), order(2, 0));
    }
}
