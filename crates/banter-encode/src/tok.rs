//! Loading and training tokenizers: GPT-2-style byte-level BPE (any text, no unknown tokens) with the
//! template's markers registered as special tokens.

use std::path::{Path, PathBuf};

use banter_core::{ChatTemplate, Error};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerImpl};

/// The end-of-text token (GPT-2's): EOS, BOS and padding.
pub const EOS: &str = "<|endoftext|>";

/// A tokenizer with the ids banter needs.
#[derive(Debug, Clone)]
pub struct Tok {
    /// The tokenizer.
    pub inner: Tokenizer,
    /// End of text.
    pub eos_id: u32,
    /// Padding (the EOS, as GPT-2 does).
    pub pad_id: u32,
    /// Special tokens added to a pretrained tokenizer for the template (the model must grow to fit them).
    pub added: Vec<String>,
}

/// A tokenizer file, or a model directory holding `tokenizer.json` (and maybe `banter_template.json`).
pub fn resolve(path: &Path) -> (PathBuf, Option<PathBuf>) {
    if path.is_dir() {
        let t = path.join("banter_template.json");
        (path.join("tokenizer.json"), t.exists().then_some(t))
    } else {
        (path.to_path_buf(), None)
    }
}

/// Loads a tokenizer and makes sure the template's markers are special tokens (adding them if needed).
pub fn load(path: &Path, template: &ChatTemplate) -> Result<Tok, Error> {
    load_upto(path, template, usize::MAX)
}

/// As [`load`], adding at most the first `max_added` of the template's missing special tokens (EOS, when
/// missing, is always added: it comes first). Tokens get their ids in order, so the ones kept have the same
/// ids as with [`load`].
pub fn load_upto(path: &Path, template: &ChatTemplate, max_added: usize) -> Result<Tok, Error> {
    let (file, _) = resolve(path);
    banter_core::inputs::register(&file);
    let inner = Tokenizer::from_file(&file).map_err(|e| {
        if file.exists() {
            Error::usage(format!("{}: not a tokenizer.json: {e}", file.display()))
        } else {
            Error::io(file.display(), std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
        }
    })?;
    with_template_upto(inner, template, max_added)
}

/// Registers the template's markers (and EOS) as special tokens.
pub fn with_template(inner: Tokenizer, template: &ChatTemplate) -> Result<Tok, Error> {
    with_template_upto(inner, template, usize::MAX)
}

fn with_template_upto(mut inner: Tokenizer, template: &ChatTemplate, max_added: usize) -> Result<Tok, Error> {
    let mut added = Vec::new();
    let mut wanted = template.special_tokens();
    // A model's own template names its EOS (`<|im_end|>`, `</s>`); banter's templates use GPT-2's.
    let eos = template.eos_token().filter(|t| inner.token_to_id(t).is_some()).unwrap_or(EOS).to_string();
    if inner.token_to_id(&eos).is_none() {
        wanted.insert(0, eos.clone());
    }
    let missing: Vec<AddedToken> = wanted
        .iter()
        .filter(|t| inner.token_to_id(t).is_none())
        .enumerate()
        .take_while(|(i, t)| *i < max_added || **t == eos)
        .map(|(_, t)| {
            added.push(t.clone());
            AddedToken::from(t.clone(), true)
        })
        .collect();
    if !missing.is_empty() {
        inner.add_special_tokens(missing).map_err(|e| Error::usage(format!("adding special tokens: {e}")))?;
    }
    let eos_id = inner.token_to_id(&eos).ok_or_else(|| Error::usage("the tokenizer has no end-of-text token"))?;
    Ok(Tok { inner, eos_id, pad_id: eos_id, added })
}

/// Trains a byte-level BPE tokenizer on texts (GPT-2's pre-tokenizer, decoder and post-processor), with
/// EOS and the template's markers as special tokens.
pub fn train<I, S>(texts: I, vocab_size: usize, min_frequency: u64, template: &ChatTemplate) -> Result<Tok, Error>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let mut specials = vec![AddedToken::from(EOS, true)];
    specials.extend(template.special_tokens().into_iter().map(|t| AddedToken::from(t, true)));
    let alphabet = ByteLevel::alphabet().into_iter().collect();
    if vocab_size < 256 + specials.len() {
        return Err(Error::usage(format!(
            "--vocab-size must be at least {} (256 bytes + {} special tokens)",
            256 + specials.len(),
            specials.len()
        )));
    }
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(alphabet)
        .build();
    let byte_level = ByteLevel::new(false, false, true);
    let mut t: TokenizerImpl<BPE, tokenizers::NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel> =
        TokenizerImpl::new(BPE::default());
    t.with_pre_tokenizer(Some(byte_level));
    t.with_decoder(Some(byte_level));
    t.with_post_processor(Some(byte_level));
    t.train(&mut trainer, texts).map_err(|e| Error::usage(format!("training the tokenizer failed: {e}")))?;
    let json = serde_json::to_string(&t).map_err(|e| Error::usage(format!("serialising the tokenizer: {e}")))?;
    let inner: Tokenizer = json.parse().map_err(|e| Error::usage(format!("reloading the tokenizer: {e}")))?;
    with_template(inner, template)
}

/// Saves a tokenizer as pretty JSON, atomically.
pub fn save(tok: &Tokenizer, path: &Path) -> Result<(), Error> {
    let json = tok.to_string(true).map_err(|e| Error::usage(format!("serialising the tokenizer: {e}")))?;
    let mut out = banter_core::jsonl::Output::file(path)?;
    std::io::Write::write_all(&mut out, json.as_bytes()).map_err(|e| Error::io(path.display(), e))?;
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trains_byte_level_bpe_with_specials() {
        let texts = vec!["hello world, hello tea".to_string(), "سلام دنیا 👋".to_string()];
        let tok = train(texts.into_iter(), 400, 1, &ChatTemplate::chatml()).unwrap();
        assert_eq!(tok.inner.token_to_id(EOS), Some(0));
        assert!(tok.inner.token_to_id("<|assistant|>").is_some());
        assert!(tok.added.is_empty());
        // Anything round-trips: byte level has no unknown tokens.
        for s in ["hello", "unseen Ωmega ∑ 漢字 🍵", "<|user|>\nhi<|end|>"] {
            let enc = tok.inner.encode(s, false).unwrap();
            assert_eq!(tok.inner.decode(enc.get_ids(), false).unwrap(), s);
        }
        let enc = tok.inner.encode("<|user|>hi", false).unwrap();
        assert_eq!(enc.get_ids()[0], tok.inner.token_to_id("<|user|>").unwrap());
    }
}
