//! Loading and training tokenizers: GPT-2-style byte-level BPE (any text, no unknown tokens) with the
//! template's markers registered as special tokens.

use std::path::{Path, PathBuf};

use banter_core::{ChatTemplate, Error};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::unigram::UnigramTrainerBuilder;
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

/// A tokenizer file, or a model directory holding `tokenizer.json` — or, where a model ships only that,
/// SentencePiece's `tokenizer.model` — and maybe `banter_template.json`.
pub fn resolve(path: &Path) -> (PathBuf, Option<PathBuf>) {
    if path.is_dir() {
        let t = path.join("banter_template.json");
        let (json, spm) = (path.join("tokenizer.json"), path.join("tokenizer.model"));
        let file = if !json.exists() && spm.exists() { spm } else { json };
        (file, t.exists().then_some(t))
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
    if file.extension().is_some_and(|e| e == "model") {
        return with_template_upto(crate::spm::load(&file)?, template, max_added);
    }
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
    // A model's own template names its EOS (`<|im_end|>`, `</s>`); banter's templates use GPT-2's, or the
    // tokenizer's own `</s>`/`<eos>` (SentencePiece models, OPT) rather than adding one.
    let eos = template
        .eos_token()
        .into_iter()
        .chain([EOS, "</s>", "<eos>"])
        .find(|t| inner.token_to_id(t).is_some())
        .unwrap_or(EOS)
        .to_string();
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
    let specials = special_list([EOS.to_string()].into_iter().chain(template.special_tokens()));
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

/// The kind of tokenizer `train-tokenizer` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TokenizerType {
    /// GPT-2's byte-level BPE: any text, no unknown tokens.
    #[default]
    Bpe,
    /// SentencePiece-style unigram (NFKC, `▁` for spaces) with fixed ids `<pad>` 0, `<s>` 1, `</s>` 2
    /// (EOS), `<unk>` 3, as the modular trainer's tokenizer has them.
    Unigram,
}

/// The fixed special tokens of a unigram tokenizer, in id order.
pub const UNIGRAM_SPECIALS: [&str; 4] = ["<pad>", "<s>", "</s>", "<unk>"];

/// Trains a SentencePiece-style unigram tokenizer on texts: ids 0–3 are [`UNIGRAM_SPECIALS`], then the
/// template's markers; characters never seen become `<unk>`.
pub fn train_unigram<I, S>(texts: I, vocab_size: usize, template: &ChatTemplate) -> Result<Tok, Error>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let specials = special_list(UNIGRAM_SPECIALS.iter().map(|t| t.to_string()).chain(template.special_tokens()));
    if vocab_size < specials.len() + 32 {
        return Err(Error::usage(format!("--vocab-size must be at least {}", specials.len() + 32)));
    }
    let meta =
        serde_json::json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": true});
    let skeleton = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "NFKC"}, "pre_tokenizer": meta, "post_processor": null, "decoder": meta,
        "model": {"type": "Unigram", "unk_id": null, "vocab": [], "byte_fallback": false},
    });
    let mut t: Tokenizer =
        skeleton.to_string().parse().map_err(|e| Error::usage(format!("building the tokenizer: {e}")))?;
    let trainer = UnigramTrainerBuilder::default()
        .vocab_size(vocab_size as u32)
        .special_tokens(specials)
        .unk_token(Some("<unk>".into()))
        .show_progress(false)
        .build()
        .map_err(|e| Error::usage(format!("the unigram trainer: {e}")))?;
    let mut trainer = TrainerWrapper::UnigramTrainer(trainer);
    t.train(&mut trainer, texts).map_err(|e| Error::usage(format!("training the tokenizer failed: {e}")))?;
    with_template(t, template)
}

/// Special tokens for a trainer, each once, in first-seen order: a template whose end marker is the
/// tokenizer's own `</s>` must not give `</s>` a second id after the vocabulary's.
fn special_list(tokens: impl Iterator<Item = String>) -> Vec<AddedToken> {
    let mut seen = std::collections::HashSet::new();
    tokens.filter(|t| seen.insert(t.clone())).map(|t| AddedToken::from(t, true)).collect()
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
    fn trains_unigram_with_fixed_special_ids_and_eos() {
        let texts: Vec<String> =
            (0..50).map(|i| format!("hello world number {i}, hello green tea and good morning")).collect();
        let tok = train_unigram(texts.into_iter(), 200, &ChatTemplate::chatml()).unwrap();
        for (i, t) in UNIGRAM_SPECIALS.iter().enumerate() {
            assert_eq!(tok.inner.token_to_id(t), Some(i as u32), "{t}");
        }
        assert_eq!(tok.eos_id, 2, "</s> is the EOS: no <|endoftext|> is added");
        assert!(tok.inner.token_to_id(EOS).is_none() && tok.added.is_empty());
        assert_eq!(tok.inner.token_to_id("<|user|>"), Some(5));
        let enc = tok.inner.encode("<|user|>\nhello tea 🍵<|end|>", false).unwrap();
        assert_eq!(enc.get_ids()[0], 5);
        assert!(enc.get_ids().contains(&3), "an unseen character is <unk>");
        assert_eq!(
            tok.inner.decode(tok.inner.encode("hello tea", false).unwrap().get_ids(), false).unwrap(),
            "hello tea"
        );
    }

    #[test]
    fn a_template_ending_turns_with_the_unigram_eos_gives_it_one_id() {
        let mut t = ChatTemplate::chatml();
        if let banter_core::template::Style::Roles { end, .. } = &mut t.style {
            *end = "</s>".into();
        }
        let texts: Vec<String> = (0..50).map(|i| format!("hello world {i}, green tea")).collect();
        let tok = train_unigram(texts.into_iter(), 200, &t).unwrap();
        let json: serde_json::Value = serde_json::from_str(&tok.inner.to_string(false).unwrap()).unwrap();
        let ids: Vec<u64> = json["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["content"] == "</s>")
            .map(|a| a["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [2], "</s> keeps its vocabulary id, once");
        assert_eq!((tok.inner.token_to_id("</s>"), tok.eos_id), (Some(2), 2));
    }

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
