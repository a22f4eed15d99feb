//! Preference records → pairs of blocks for DPO: each (better, worse) pair of a record's replies becomes
//! two blocks, the prompt and the reply rendered through the model's chat template, the loss on the reply's
//! tokens only (the last assistant turn, with its end-of-turn marker and EOS). Blocks are stored chosen,
//! rejected, chosen, rejected…: pair `k` is blocks `2k` and `2k + 1`.

use banter_core::records::{Block, IGNORE_INDEX, Preference, Record, Role, Sample, Turn};
use banter_core::{ChatTemplate, Error, FieldError};
use banter_encode::encode::{self, Encoded};
use banter_encode::tok::Tok;

use banter_core::exit::{Coded, Exit};
use banter_core::jsonl::{JsonlReader, ReadOptions, Source};

use crate::TOOL;
use crate::data::Blocks;
use crate::settings::{Console, TrainSettings};

/// Pairs read from preference files.
#[derive(Debug, Default)]
pub struct Pairs {
    /// Chosen and rejected blocks, interleaved.
    pub blocks: Vec<Block>,
    /// The preferred exchange of each record (prompt + best reply), for the quality gate.
    pub chosen: Vec<Sample>,
    /// Pairs whose replies were equal (nothing to learn), skipped.
    pub equal: usize,
    /// Pairs with a reply longer than the block, skipped; and where the first was.
    pub too_long: usize,
    /// `file:line` of the first pair skipped for length.
    pub first_too_long: Option<String>,
    /// Pairs whose prompt lost its oldest tokens to fit the block.
    pub cut: usize,
    /// Chat-log lines without a correction (no pair), skipped.
    pub log_lines: usize,
}

impl Pairs {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.blocks.len() / 2
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// The prompt and one reply, tokenized, with loss on the reply's tokens only.
pub fn encode_reply(
    tok: &Tok,
    template: &ChatTemplate,
    prompt: &[Turn],
    reply: &str,
) -> Result<Encoded, encode::EncodeError> {
    let mut turns = prompt.to_vec();
    turns.push(Turn::new(Role::Assistant, reply));
    let mut r = template.try_render(&Sample::chat(turns)).map_err(encode::EncodeError::Template)?;
    // Earlier assistant turns of the prompt are context, not what is compared.
    r.loss_spans = r.loss_spans.pop().into_iter().collect();
    encode::encode_rendered(tok, &r)
}

/// Fits an encoded reply into `block` tokens by dropping the prompt's oldest tokens; None when the reply
/// alone is longer. Returns the block and whether the prompt was cut.
fn fit(e: Encoded, block: usize) -> Option<(Block, bool)> {
    let Encoded { ids, labels } = e;
    let cut = ids.len().saturating_sub(block);
    let first_loss = labels.iter().position(|&l| l != IGNORE_INDEX).unwrap_or(ids.len());
    // The token before the reply's first scored one predicts it: it must stay.
    if cut > 0 && cut + 1 > first_loss {
        return None;
    }
    Some((
        Block { input_ids: ids[cut..].to_vec(), labels: labels[cut..].to_vec(), fields: Default::default() },
        cut > 0,
    ))
}

/// Reads every record of `path` (every bad one reported, then a data error), appending its pairs.
pub fn read_pairs(path: &str, tok: &Tok, template: &ChatTemplate, block: usize, out: &mut Pairs) -> crate::Result<()> {
    let reader = JsonlReader::open(&Source::parse(path), ReadOptions::default())?;
    let mut errors: Vec<Error> = Vec::new();
    let mut any = false;
    for item in reader {
        any = true;
        let l = match item {
            Ok(l) => l,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // A chat log's exchanges without a correction (accepted, or rejected with no better answer) are not
        // pairs: counted, not errors, so a whole `--feedback` log can be given.
        if l.record.get("messages").is_some() && l.record.get("model_reply").is_none() {
            out.log_lines += 1;
            continue;
        }
        let p = match Preference::from_value(l.record) {
            Ok(p) => p,
            Err(e) => {
                errors.push(Error::data(path, Some(l.line), e));
                continue;
            }
        };
        let bad = |field: &str, m: String| Error::data(path, Some(l.line), FieldError::field(field, m));
        let mut encoded = Vec::with_capacity(p.replies.len());
        for (i, r) in p.replies.iter().enumerate() {
            match encode_reply(tok, template, &p.prompt, r) {
                Ok(e) => encoded.push(e),
                Err(m) => errors.push(bad(&format!("replies[{i}]"), m.to_string())),
            }
        }
        if encoded.len() != p.replies.len() {
            continue;
        }
        let mut best = p.prompt.clone();
        best.push(Turn::new(Role::Assistant, p.replies[0].clone()));
        out.chosen.push(Sample::chat(best));
        for (i, j) in p.pairs() {
            if encoded[i].ids == encoded[j].ids {
                out.equal += 1;
                continue;
            }
            match (fit(encoded[i].clone(), block), fit(encoded[j].clone(), block)) {
                (Some((c, cut_c)), Some((r, cut_r))) => {
                    out.cut += usize::from(cut_c || cut_r);
                    out.blocks.push(c);
                    out.blocks.push(r);
                }
                _ => {
                    out.too_long += 1;
                    out.first_too_long.get_or_insert_with(|| format!("{path}:{}", l.line));
                }
            }
        }
    }
    if !any {
        errors.push(Error::data(path, None, FieldError::record("no records")));
    }
    crate::data::report(path, errors)
}

/// The training and validation pairs of a `--dpo` run (as [`crate::data::Blocks`] of interleaved pairs), and
/// the quality gate's score of the preferred exchanges.
pub(crate) fn load(
    s: &TrainSettings,
    block: usize,
    tok: &Tok,
    template: &ChatTemplate,
    console: Console,
) -> crate::Result<crate::data::Data> {
    let read = |paths: &[String]| -> crate::Result<Pairs> {
        let mut p = Pairs::default();
        for path in paths {
            if crate::data::is_bin(path) {
                return Err(Error::usage(format!(
                    "{path}: --dpo reads preference records (JSONL), not a binary token file"
                ))
                .into());
            }
            read_pairs(path, tok, template, block, &mut p)?;
        }
        if p.log_lines > 0 {
            console.say(format!(
                "{TOOL}: {} chat-log exchange(s) without a correction are not preference pairs and were skipped",
                p.log_lines
            ));
        }
        if p.equal > 0 {
            console
                .say(format!("{TOOL}: {} pair(s) with equal replies have nothing to learn and were skipped", p.equal));
        }
        if p.too_long > 0 {
            banter_core::eline!(
                "{TOOL}: warning: {} pair(s) with a reply longer than the {block}-token block were skipped (first: {}); raise --block-size",
                p.too_long,
                p.first_too_long.clone().unwrap_or_default()
            );
        }
        if p.cut > 0 {
            console.say(format!("{TOOL}: {} pair(s) lost the start of their prompt to fit {block} tokens", p.cut));
        }
        Ok(p)
    };
    let pairs = read(&s.inputs)?;
    let quality = Some(crate::quality::quality_gate(s.force, &pairs.chosen, console)?);
    let (train, val) = match &s.val_file {
        Some(v) => (pairs.blocks, read(std::slice::from_ref(v))?.blocks),
        None if s.val_split > 0.0 => split(pairs.blocks, s.val_split, s.opt.seed),
        None => (pairs.blocks, Vec::new()),
    };
    if train.is_empty() {
        return Err(Coded::new(
            Exit::BadInput,
            "no preference pairs to train on: the data is empty or every pair was skipped",
        )
        .into());
    }
    Ok((Blocks::Mem(train), Blocks::Mem(val), quality))
}

/// Splits pairs (not blocks) for validation, deterministically, as [`crate::data::split`] splits blocks.
pub fn split(blocks: Vec<Block>, frac: f64, seed: u64) -> (Vec<Block>, Vec<Block>) {
    let (mut train, mut val) = (Vec::new(), Vec::new());
    let mut it = blocks.into_iter();
    let mut k = 0u64;
    while let (Some(c), Some(r)) = (it.next(), it.next()) {
        let to = if encode::is_val(k, seed, frac) { &mut val } else { &mut train };
        to.push(c);
        to.push(r);
        k += 1;
    }
    if val.is_empty() && frac > 0.0 && train.len() > 2 {
        let r = train.pop();
        let c = train.pop();
        val.extend(c.into_iter().chain(r));
    }
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ids: &[u32], first_loss: usize) -> Encoded {
        let labels = ids.iter().enumerate().map(|(i, &x)| if i >= first_loss { i64::from(x) } else { -100 }).collect();
        Encoded { ids: ids.to_vec(), labels }
    }

    #[test]
    fn long_pairs_lose_the_prompt_start_never_the_reply() {
        let (b, cut) = fit(block(&[1, 2, 3, 4, 5, 6], 4), 4).unwrap();
        assert!(cut);
        assert_eq!(b.input_ids, vec![3, 4, 5, 6]);
        assert_eq!(b.labels, vec![-100, -100, 5, 6]);
        // A reply from token 1 on cannot lose 2 tokens: the reply alone is longer than the block.
        assert!(fit(block(&[1, 2, 3, 4, 5, 6], 1), 4).is_none());
        let (b, cut) = fit(block(&[1, 2, 3], 1), 4).unwrap();
        assert!(!cut && b.input_ids.len() == 3);
    }

    #[test]
    fn splits_keep_pairs_together() {
        let blocks: Vec<Block> = (0..40u32)
            .map(|i| Block { input_ids: vec![i, i], labels: vec![-100, i64::from(i)], fields: Default::default() })
            .collect();
        let (t, v) = split(blocks, 0.2, 1);
        assert_eq!(t.len() + v.len(), 40);
        assert!(!v.is_empty() && v.len() % 2 == 0);
        for p in t.chunks(2).chain(v.chunks(2)) {
            assert_eq!(p[0].input_ids[0] + 1, p[1].input_ids[0]);
            assert_eq!(p[0].input_ids[0] % 2, 0);
        }
    }
}
