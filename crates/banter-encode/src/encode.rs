//! Samples → token ids with loss labels, and ids → blocks (pack, pad, truncate).

use banter_core::records::{Block, IGNORE_INDEX, Sample};
use banter_core::{ChatTemplate, Rendered};

use crate::tok::Tok;

/// One sample, tokenized: ids and labels (`-100` where no loss), EOS appended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Labels, aligned with `ids` (the trainer shifts them, as Hugging Face does).
    pub labels: Vec<i64>,
}

impl Encoded {
    /// Tokens that carry loss.
    pub fn loss_tokens(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE_INDEX).count()
    }
}

/// Why a sample could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The chat template refused the sample (a role it does not know, a Jinja error, its work limit).
    #[error("{0}")]
    Template(String),
    /// The tokenizer failed on the rendered text.
    #[error("{0}")]
    Tokenizer(String),
}

impl EncodeError {
    /// The template ran out of its work budget: the template is at fault for any input, not this sample.
    pub fn is_template_limit(&self) -> bool {
        matches!(self, EncodeError::Template(m) if m.contains(banter_core::jinja::WORK_LIMIT))
    }
}

/// Tokenizes rendered text and marks the tokens that fall in a loss span (a token belongs where its last
/// byte is).
pub fn encode_rendered(tok: &Tok, r: &Rendered) -> Result<Encoded, EncodeError> {
    let (ids, offsets) = encode_long(tok, &r.text).map_err(EncodeError::Tokenizer)?;
    let mut labels = Vec::with_capacity(ids.len() + 1);
    let mut span = 0usize;
    for (id, &(start, end)) in ids.iter().zip(&offsets) {
        let last = end.max(start + 1) - 1;
        while span < r.loss_spans.len() && r.loss_spans[span].end <= last {
            span += 1;
        }
        let inside = r.loss_spans.get(span).is_some_and(|s| s.start <= last && last < s.end);
        labels.push(if inside { i64::from(*id) } else { IGNORE_INDEX });
    }
    let mut ids = ids;
    ids.push(tok.eos_id);
    labels.push(if r.eos_carries_loss() { i64::from(tok.eos_id) } else { IGNORE_INDEX });
    Ok(Encoded { ids, labels })
}

/// Byte spans of tokens in a text.
type Offsets = Vec<(usize, usize)>;

/// Texts longer than this are encoded in pieces when the tokenizer allows it exactly ([`splits_exactly`]).
const PIECE_BYTES: usize = 64 * 1024;

/// Ids and byte offsets of `text`. A long text is cut before a space that starts a word and the pieces
/// encoded one by one: the same ids as one call (the byte-level pre-tokenizer splits there anyway), in
/// memory proportional to a piece, not to the whole text (a 4 MB sample took 770 MB in one call).
fn encode_long(tok: &Tok, text: &str) -> Result<(Vec<u32>, Offsets), String> {
    if text.len() <= PIECE_BYTES || !splits_exactly(tok) {
        let enc = tok.inner.encode(text, false).map_err(|e| e.to_string())?;
        return Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()));
    }
    let (mut ids, mut offsets) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + PIECE_BYTES).min(text.len());
        if end < text.len() {
            // Back up to a ' ' followed by a non-space (a word's start); none in the piece: go forward.
            let b = text.as_bytes();
            let at = |i: usize| b[i] == b' ' && i + 1 < b.len() && !(b[i + 1] as char).is_ascii_whitespace();
            end = (start + 1..end)
                .rev()
                .find(|&i| at(i))
                .or_else(|| (end..text.len()).find(|&i| at(i)))
                .unwrap_or(text.len());
        }
        let enc = tok.inner.encode(&text[start..end], false).map_err(|e| e.to_string())?;
        ids.extend_from_slice(enc.get_ids());
        offsets.extend(enc.get_offsets().iter().map(|&(a, b)| (a + start, b + start)));
        start = end;
    }
    Ok((ids, offsets))
}

/// True when cutting a text before a space that starts a word cannot change its tokens: a GPT-2 style
/// byte-level pre-tokenizer (its regex splits there), no normalizer, and no added token containing a space.
fn splits_exactly(tok: &Tok) -> bool {
    use tokenizers::PreTokenizerWrapper;
    matches!(tok.inner.get_pre_tokenizer(), Some(PreTokenizerWrapper::ByteLevel(b)) if b.use_regex)
        && tok.inner.get_normalizer().is_none()
        && tok.inner.get_added_tokens_decoder().values().all(|t| !t.content.contains(' '))
}

/// Renders and tokenizes a sample.
pub fn encode_sample(tok: &Tok, template: &ChatTemplate, sample: &Sample) -> Result<Encoded, EncodeError> {
    encode_rendered(tok, &template.try_render(sample).map_err(EncodeError::Template)?)
}

/// How samples become blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Samples joined (each ends with EOS) and cut into fixed blocks (Oodi).
    Pack,
    /// One sample per block, padded to the block size (response-only training).
    Pad,
    /// One sample per block, cut to the block size, not padded.
    Truncate,
}

/// Which end of a too-long sample is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Drop the oldest tokens (the reply, at the end, survives).
    Left,
    /// Drop the newest tokens.
    Right,
}

/// What happened to one sample in `pad`/`truncate` mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// A block, and whether it was cut.
    Block(Block, bool),
    /// The cut removed every loss token: dropped.
    LostResponse,
}

/// One sample in one block (pad/truncate modes).
pub fn fit(e: Encoded, block: usize, mode: Mode, side: Side, pad_id: u32) -> Fit {
    let Encoded { mut ids, mut labels } = e;
    let cut = ids.len() > block;
    if cut {
        match side {
            Side::Left => {
                let drop = ids.len() - block;
                ids.drain(..drop);
                labels.drain(..drop);
            }
            Side::Right => {
                ids.truncate(block);
                labels.truncate(block);
            }
        }
        if labels.iter().all(|&l| l == IGNORE_INDEX) {
            return Fit::LostResponse;
        }
    }
    if mode == Mode::Pad {
        while ids.len() < block {
            ids.push(pad_id);
            labels.push(IGNORE_INDEX);
        }
    }
    Fit::Block(Block { input_ids: ids, labels, fields: Default::default() }, cut)
}

/// Packs a stream of encoded samples into fixed blocks.
#[derive(Debug)]
pub struct Packer {
    block: usize,
    ids: Vec<u32>,
    labels: Vec<i64>,
}

impl Packer {
    /// A packer for blocks of `block` tokens.
    pub fn new(block: usize) -> Self {
        Packer { block, ids: Vec::new(), labels: Vec::new() }
    }

    /// Adds a sample; returns the blocks it completed.
    pub fn push(&mut self, e: Encoded) -> Vec<Block> {
        self.ids.extend(e.ids);
        self.labels.extend(e.labels);
        // Whole blocks are copied out from the front in one pass, then the remainder moved down once:
        // draining block by block would shift the rest each time (quadratic in a long sample's length).
        let whole = self.ids.len() / self.block * self.block;
        let out = self.ids[..whole]
            .chunks(self.block)
            .zip(self.labels[..whole].chunks(self.block))
            .map(|(ids, labels)| Block { input_ids: ids.to_vec(), labels: labels.to_vec(), fields: Default::default() })
            .collect();
        self.ids.drain(..whole);
        self.labels.drain(..whole);
        out
    }

    /// The partial last block: padded and masked with `keep_tail`, else dropped (returns its token count).
    pub fn finish(self, keep_tail: bool, pad_id: u32) -> (Option<Block>, usize) {
        if self.ids.is_empty() {
            return (None, 0);
        }
        let n = self.ids.len();
        if !keep_tail {
            return (None, n);
        }
        let mut ids = self.ids;
        let mut labels = self.labels;
        while ids.len() < self.block {
            ids.push(pad_id);
            labels.push(IGNORE_INDEX);
        }
        (Some(Block { input_ids: ids, labels, fields: Default::default() }), 0)
    }
}

/// Whether sample `index` goes to validation, deterministically for a seed (SplitMix64 of seed ⊕ index).
pub fn is_val(index: u64, seed: u64, frac: f64) -> bool {
    if frac <= 0.0 {
        return false;
    }
    let z = banter_core::util::mix64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (z as f64 / u64::MAX as f64) < frac
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_core::records::{Role, Turn};

    fn tok() -> Tok {
        let texts = ["hello there friend", "how are you today", "سلام دوست من 😂", "fine thanks and you"];
        crate::tok::train(texts.iter().map(|s| s.to_string()), 500, 1, &ChatTemplate::chatml()).unwrap()
    }

    fn masked_text(tok: &Tok, e: &Encoded) -> String {
        let ids: Vec<u32> = e.labels.iter().filter(|&&l| l >= 0).map(|&l| l as u32).collect();
        tok.inner.decode(&ids, false).unwrap()
    }

    #[test]
    fn long_texts_in_pieces_give_the_same_tokens_as_one_call() {
        let t = tok();
        let words = ["hello", "there", "friend,", "how", "are", "you", "today?", "سلام", "😂", "  ", "\n", "fine"];
        let mut text = String::new();
        let mut i = 0usize;
        while text.len() < 3 * PIECE_BYTES + 123 {
            text.push_str(words[i % words.len()]);
            text.push(if i.is_multiple_of(7) { '\n' } else { ' ' });
            i = i.wrapping_mul(31).wrapping_add(17) % 1009;
        }
        let whole = t.inner.encode(text.as_str(), false).unwrap();
        let (ids, offsets) = encode_long(&t, &text).unwrap();
        assert!(splits_exactly(&t));
        assert_eq!(ids, whole.get_ids());
        assert_eq!(offsets, whole.get_offsets());
    }

    #[test]
    fn chatml_loss_is_exactly_the_assistant_content_and_end() {
        let t = tok();
        let s = Sample::chat(vec![Turn::new(Role::User, "how are you"), Turn::new(Role::Assistant, "fine thanks 😂")]);
        let e = encode_sample(&t, &ChatTemplate::chatml(), &s).unwrap();
        assert_eq!(masked_text(&t, &e), "fine thanks 😂<|end|>");
        assert_eq!(*e.ids.last().unwrap(), t.eos_id);
        assert_eq!(*e.labels.last().unwrap(), IGNORE_INDEX);
        let all: Vec<u32> = e.ids[..e.ids.len() - 1].to_vec();
        assert_eq!(t.inner.decode(&all, false).unwrap(), ChatTemplate::chatml().render(&s).text);
    }

    #[test]
    fn asimbot_loss_starts_after_the_last_sys_and_includes_eos() {
        let tmpl = ChatTemplate::asimbot();
        let texts = ["<USR_A> hi <SYS> hello", "سلام"];
        let t = crate::tok::train(texts.iter().map(|s| s.to_string()), 400, 1, &tmpl).unwrap();
        let s = Sample::text("<USR_A> how are you <SYS> fine <USR_B> and you? <SYS> سلام دوست");
        let e = encode_sample(&t, &tmpl, &s).unwrap();
        assert_eq!(masked_text(&t, &e), " سلام دوست<|endoftext|>");
        let no_sys = encode_sample(&t, &tmpl, &Sample::text("<USR_A> nobody answers")).unwrap();
        assert_eq!(no_sys.loss_tokens(), 0);
    }

    #[test]
    fn packing_and_fitting() {
        let e = |n: usize| Encoded { ids: vec![7; n], labels: vec![7; n] };
        let mut p = Packer::new(4);
        assert!(p.push(e(3)).is_empty());
        let blocks = p.push(e(6));
        assert_eq!(blocks.len(), 2);
        let (tail, dropped) = p.finish(false, 0);
        assert_eq!((tail, dropped), (None, 1));
        let mut p = Packer::new(4);
        p.push(e(2));
        let (tail, _) = p.finish(true, 0);
        assert_eq!(tail.unwrap().labels, vec![7, 7, -100, -100]);
        let long = Encoded { ids: vec![1, 2, 3, 4, 5], labels: vec![-100, -100, -100, 4, 5] };
        match fit(long.clone(), 3, Mode::Pad, Side::Left, 0) {
            Fit::Block(b, cut) => assert_eq!((b.input_ids, cut), (vec![3, 4, 5], true)),
            f => panic!("{f:?}"),
        }
        assert_eq!(fit(long, 3, Mode::Truncate, Side::Right, 0), Fit::LostResponse);
        match fit(e(2), 4, Mode::Pad, Side::Left, 9) {
            Fit::Block(b, cut) => {
                assert_eq!((b.input_ids, b.labels, cut), (vec![7, 7, 9, 9], vec![7, 7, -100, -100], false))
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn validation_split_is_deterministic_and_near_the_fraction() {
        let n = (0..10_000).filter(|&i| is_val(i, 42, 0.1)).count();
        assert!((900..1100).contains(&n), "{n}");
        assert_eq!(is_val(5, 42, 0.1), is_val(5, 42, 0.1));
        assert!(!is_val(5, 42, 0.0));
    }
}
