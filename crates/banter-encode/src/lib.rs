//! `banter-encode`: tokenizers (load, train, save), samples rendered through a chat template into token
//! ids with loss masks, and packing into fixed-size blocks — shared by banter-tokenize, banter-train and
//! banter-chat.

pub mod encode;
pub mod tok;

use std::path::Path;

use banter_core::{ChatTemplate, Error};

/// The default block size of every tool (tokens per training block), capped by the model's positions.
pub const DEFAULT_BLOCK_SIZE: usize = 128;

/// The template a run uses: the explicit argument, else the one stored beside the tokenizer (a model
/// directory's), else chatml.
pub fn resolve_template(arg: Option<&str>, tokenizer: &Path) -> Result<ChatTemplate, Error> {
    match arg {
        Some(a) => ChatTemplate::from_arg(a),
        None => match tok::resolve(tokenizer).1 {
            Some(stored) => ChatTemplate::load(&stored),
            None => Ok(ChatTemplate::chatml()),
        },
    }
}
