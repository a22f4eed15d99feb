//! `banter-encode`: tokenizers (load, train, save), samples rendered through a chat template into token
//! ids with loss masks, and packing into fixed-size blocks — shared by banter-tokenize, banter-train and
//! banter-chat.

pub mod encode;
pub mod spm;
pub mod tok;

use std::path::Path;

use banter_core::{ChatTemplate, Error};

/// The default block size of every tool (tokens per training block), capped by the model's positions.
pub const DEFAULT_BLOCK_SIZE: usize = 128;

/// The template a run uses: the explicit argument, else the one stored beside the tokenizer (a model
/// directory's `banter_template.json`, else the Hugging Face chat template it ships), else chatml.
pub fn resolve_template(arg: Option<&str>, tokenizer: &Path) -> Result<ChatTemplate, Error> {
    if let Some(a) = arg {
        return ChatTemplate::from_arg(a);
    }
    if let Some(stored) = tok::resolve(tokenizer).1 {
        return ChatTemplate::load(&stored);
    }
    if tokenizer.is_dir()
        && let Some(t) = ChatTemplate::from_hf_dir(tokenizer)?
    {
        return Ok(t);
    }
    Ok(ChatTemplate::chatml())
}
