//! The model, its tokenizer and template, ready to answer: loading (base + optional PEFT adapter),
//! prompts that fit the context window, and generation.

use std::path::{Path, PathBuf};

use banter_core::records::{Role, Turn};
use banter_core::{ChatTemplate, Error};
use banter_model::generate::{self, Output, Sampling};
use banter_model::{Gpt2, io, lora};
use banter_tokenize::tok::Tok;
use tch::{Device, Kind};

/// A loaded model ready to chat.
#[derive(Debug)]
pub struct Engine {
    /// The model (adapter merged in).
    pub model: Gpt2,
    /// Tokenizer.
    pub tok: Tok,
    /// Chat template stored with the model.
    pub template: ChatTemplate,
    /// Token ids that end a reply (EOS and the template's end-of-turn / speaker tokens).
    pub stop_ids: Vec<u32>,
    /// Matmul precision.
    pub compute: Kind,
    /// Where the model came from (for /health and logs).
    pub name: String,
}

/// Where to find the tokenizer and template: the adapter directory first (it may have added tokens), then
/// the model directory.
fn first_with(dirs: &[&Path], file: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
}

impl Engine {
    /// Loads `model` (+ `adapter`) on `device`; bf16 weights when `bf16`.
    pub fn load(
        model_dir: &Path,
        adapter: Option<&Path>,
        device: Device,
        bf16: bool,
        template: Option<&str>,
    ) -> anyhow::Result<Engine> {
        let mut model =
            io::load_model(model_dir, device).map_err(|e| banter_core::exit::Coded::new(e.exit(), e.to_string()))?;
        let dirs: Vec<&Path> = adapter.into_iter().chain(std::iter::once(model_dir)).collect();
        let template = match template {
            Some(t) => ChatTemplate::from_arg(t)?,
            None => match first_with(&dirs, "banter_template.json") {
                Some(p) => ChatTemplate::load(&p)?,
                None => ChatTemplate::chatml(),
            },
        };
        let tok_file = first_with(&dirs, "tokenizer.json")
            .ok_or_else(|| Error::usage(format!("{}: no tokenizer.json", model_dir.display())))?;
        let tok = banter_tokenize::tok::load(&tok_file, &template)?;
        let vocab = tok.inner.get_vocab_size(true) as i64;
        if vocab > model.cfg.vocab_size {
            model.resize_vocab(vocab);
        }
        if let Some(a) = adapter {
            io::load_adapter(&mut model, a).map_err(|e| banter_core::exit::Coded::new(e.exit(), e.to_string()))?;
            lora::merge(&mut model);
        }
        let compute = if bf16 {
            model.to_bf16_weights();
            Kind::BFloat16
        } else {
            Kind::Float
        };
        let mut stop_ids = vec![tok.eos_id];
        stop_ids.extend(template.stop_strings().iter().filter_map(|s| tok.inner.token_to_id(s)));
        let name = model_dir.display().to_string();
        Ok(Engine { model, tok, template, stop_ids, compute, name })
    }

    /// Token ids of a text (no special-token post-processing).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tok.inner.encode(text, false).map(|e| e.get_ids().to_vec()).unwrap_or_default()
    }

    /// Text of token ids.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.tok.inner.decode(ids, false).unwrap_or_default()
    }

    /// The prompt for a conversation, dropping the oldest turns (never a leading system turn) until it
    /// leaves room for `max_new` tokens. Returns the ids and how many turns were dropped.
    pub fn prompt(&self, turns: &[Turn], max_new: usize) -> (Vec<u32>, usize) {
        let ctx = self.model.cfg.n_positions as usize;
        let system = usize::from(turns.first().is_some_and(|t| t.role == Role::System));
        let mut dropped = 0;
        loop {
            let mut kept: Vec<Turn> = turns[..system].to_vec();
            kept.extend_from_slice(&turns[system + dropped..]);
            let ids = self.encode(&self.template.render_prompt(&kept).text);
            if ids.len() + max_new <= ctx || system + dropped >= turns.len().saturating_sub(1) {
                return (ids, dropped);
            }
            dropped += 1;
        }
    }

    /// Generates a reply to `turns` (streamed to `on_text`).
    pub fn reply(
        &self,
        turns: &[Turn],
        s: &Sampling,
        extra_stops: &[String],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> (Output, usize) {
        let (ids, dropped) = self.prompt(turns, s.max_new_tokens);
        let mut stops: Vec<String> = self.template.stop_strings();
        stops.extend(extra_stops.iter().cloned());
        let out = generate::generate(
            &self.model,
            &ids,
            s,
            &self.stop_ids,
            &stops,
            &|i| self.decode(i),
            self.compute,
            on_text,
        );
        let out = Output { text: out.text.trim().to_string(), ..out };
        (out, dropped)
    }

    /// Continues plain text (no template).
    pub fn complete(
        &self,
        text: &str,
        s: &Sampling,
        extra_stops: &[String],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Output {
        let ids = self.encode(text);
        generate::generate(
            &self.model,
            &ids,
            s,
            &[self.tok.eos_id],
            extra_stops,
            &|i| self.decode(i),
            self.compute,
            on_text,
        )
    }
}
