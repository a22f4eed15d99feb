//! banter-engine: the model, its tokenizer and template, ready to answer: loading (base + optional PEFT adapter),
//! prompts that fit the context window, and generation.

use std::path::{Path, PathBuf};

use banter_core::records::{Role, Turn};
use banter_core::{ChatTemplate, Error};
use banter_encode::tok::Tok;
use banter_model::Lm;
use banter_model::generate::{Output, Sampling};
use banter_model::precision::{self, PrecisionArg};
use tch::{Device, Kind};

/// A loaded model ready to chat.
#[derive(Debug)]
pub struct Engine {
    /// The model (adapter merged in): GPT-2 (with banter's Rust decoder and batched decoding), the Llama
    /// family or OPT.
    pub model: Lm,
    /// Tokenizer.
    pub tok: Tok,
    /// Chat template stored with the model.
    pub template: ChatTemplate,
    /// Token ids that end a reply (EOS and the template's end-of-turn / speaker tokens).
    pub stop_ids: Vec<u32>,
    /// The template's stop strings, worked out once at load.
    pub stop_strings: Vec<String>,
    /// Matmul precision.
    pub compute: Kind,
    /// Where the model came from (for /health and logs).
    pub name: String,
    /// The adapter applied, if any (for /health).
    pub adapter: Option<std::path::PathBuf>,
    /// The weights' precision and why (`fp32: the CPU has no avx512_bf16/amx_bf16 …`).
    pub precision: String,
}

/// How the weights are held for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// `--precision`.
    pub precision: PrecisionArg,
    /// `--quantize int8|q4`: quantized matrices, fp32 activations between them (CPU).
    pub quantize: Option<banter_model::quant::Scheme>,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { precision: PrecisionArg::Auto, quantize: None }
    }
}

/// The compute kind for inference and the reason ([`precision::choose_inference`]); `--quantize int8` asks
/// for fp32 activations.
fn choose(w: Weights, device: Device, head: (i64, i64)) -> anyhow::Result<(Kind, String)> {
    precision::choose_inference(w.precision, w.quantize.is_some(), device, head)
        .map_err(|e| anyhow::Error::from(banter_core::exit::Coded::new(banter_core::Exit::Usage, e.to_string())))
}

/// Where to find the tokenizer and template: the adapter directory first (it may have added tokens), then
/// the model directory.
fn first_with(dirs: &[&Path], file: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
}

impl Engine {
    /// Loads `model` (+ `adapter`) on `device`, its weights held as `weights` says.
    pub fn load(
        model_dir: &Path,
        adapter: Option<&Path>,
        device: Device,
        weights: Weights,
        template: Option<&str>,
    ) -> anyhow::Result<Engine> {
        // config.json first, and once: a missing model directory is an I/O error (exit 4), not a missing
        // tokenizer; the family, the decode shape and the model are then all read from this one parse.
        let config = banter_model::lm::read_config(model_dir)?;
        let family = banter_model::lm::model_type_of(&config).to_string();
        if banter_model::families::family(&family).is_none() {
            return Err(Error::usage(format!(
                "{}: model_type \"{family}\" is not supported ({})",
                model_dir.display(),
                banter_model::families::model_types().join(", ")
            ))
            .into());
        }
        let dirs: Vec<&Path> = adapter.into_iter().chain(std::iter::once(model_dir)).collect();
        let template = pick_template(&dirs, template)?;
        let tok_file = first_with(&dirs, "tokenizer.json")
            .or_else(|| first_with(&dirs, "tokenizer.model"))
            .ok_or_else(|| Error::usage(format!("{}: no tokenizer.json (or tokenizer.model)", model_dir.display())))?;
        let tok = banter_encode::tok::load(&tok_file, &template)?;
        let vocab = tok.inner.get_vocab_size(true) as i64;
        let (model, compute, precision) = load_model(model_dir, config, adapter, device, weights, vocab)?;
        // A Hub family keeps its embeddings: of the template's markers, only those the model has rows for
        // join the tokenizer — as in training, where markers no sample used were left out (a speakers template
        // has 26 speaker markers; an adapter trained on one chat used a few).
        let tok = if vocab > model.vocab_size() && !model.grows_to_tokenizer() {
            let base = banter_encode::tok::load_upto(&tok_file, &template, 0)?;
            let room = (model.vocab_size() - base.inner.get_vocab_size(true) as i64).max(0) as usize;
            banter_encode::tok::load_upto(&tok_file, &template, room)?
        } else {
            tok
        };
        let vocab = tok.inner.get_vocab_size(true) as i64;
        if vocab > model.vocab_size() {
            return Err(Error::usage(format!(
                "{}: the tokenizer has {vocab} tokens, the model {}: use the model's own chat template (drop --template)",
                model_dir.display(),
                model.vocab_size()
            ))
            .into());
        }
        let mut stop_ids = vec![tok.eos_id];
        let stop_strings = template.stop_strings();
        stop_ids.extend(stop_strings.iter().filter_map(|s| tok.inner.token_to_id(s)));
        // generation_config.json's eos_token_id (an id or a list: Llama 3 stops at <|eot_id|> too).
        stop_ids.extend(generation_eos(model_dir));
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let name = model_dir.display().to_string();
        let adapter = adapter.map(Path::to_path_buf);
        Ok(Engine { model, tok, template, stop_ids, stop_strings, compute, name, adapter, precision })
    }

    fn run(
        &self,
        ids: &[u32],
        s: &Sampling,
        stop_ids: &[u32],
        stops: &[String],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Output {
        let decode = |i: &[u32]| self.decode(i);
        self.model.generate(ids, s, stop_ids, stops, &decode, self.compute, on_text)
    }

    /// The tokenizer's beginning-of-text token (`<s>`, `<bos>`, `<|begin_of_text|>`, GPT-2's
    /// `<|endoftext|>`), else EOS.
    fn bos_id(&self) -> u32 {
        ["<s>", "<bos>", "<|begin_of_text|>", "<|endoftext|>"]
            .iter()
            .find_map(|t| self.tok.inner.token_to_id(t))
            .unwrap_or(self.tok.eos_id)
    }

    /// Token ids of a text (no special-token post-processing).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tok.inner.encode(text, false).map(|e| e.get_ids().to_vec()).unwrap_or_default()
    }

    /// Text of token ids, special tokens left out (as transformers' `skip_special_tokens`): a template marker
    /// or a control token the model emits mid-reply is not text the user should see. Stops are matched by id.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.tok.inner.decode(ids, true).unwrap_or_default()
    }

    /// A chat template that failed on a conversation: the user's error (exit 2, 400 in the server), with the
    /// template's own message and the model folder it came from.
    pub fn template_error(&self, msg: &str) -> Error {
        Error::Template(format!("{}: {msg}", self.name))
    }

    /// The prompt for a conversation, dropping the oldest turns (never a leading system turn) until it
    /// leaves room for `max_new` tokens. Returns the ids and how many turns were dropped. The number of
    /// turns to drop is found by bisection: O(log n) renders of the conversation, not one per turn.
    pub fn prompt(&self, turns: &[Turn], max_new: usize) -> Result<(Vec<u32>, usize), Error> {
        let ctx = self.model.n_positions() as usize;
        let system = usize::from(turns.first().is_some_and(|t| t.role == Role::System));
        let render = |dropped: usize| -> Result<Vec<u32>, Error> {
            let mut kept: Vec<Turn> = turns[..system].to_vec();
            kept.extend_from_slice(&turns[system + dropped..]);
            let text = self.template.try_render_prompt(&kept).map_err(|m| self.template_error(&m))?.text;
            Ok(self.encode(&text))
        };
        let fits = |ids: &[u32]| ids.len() + max_new <= ctx;
        // At most all turns but the last (and the system turn) go.
        let max_drop = turns.len().saturating_sub(1).saturating_sub(system);
        let full = render(0)?;
        // Where the kept part may start: never on an assistant turn (templates such as Mistral's require the
        // conversation to open with the user), unless no other start is left.
        let mut starts: Vec<usize> = (1..=max_drop).filter(|&d| turns[system + d].role != Role::Assistant).collect();
        if starts.is_empty() && max_drop > 0 {
            starts.push(max_drop);
        }
        let (ids, dropped) = if fits(&full) || starts.is_empty() {
            (full, 0)
        } else {
            // The fewest dropped turns that fit; all droppable ones when none does.
            let (mut lo, mut hi) = (0, starts.len() - 1);
            let mut found: Option<(usize, Vec<u32>)> = None;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let ids = render(starts[mid])?;
                if fits(&ids) {
                    hi = mid;
                    found = Some((mid, ids));
                } else {
                    lo = mid + 1;
                }
            }
            match found {
                Some((i, ids)) if i == lo => (ids, starts[lo]),
                _ => (render(starts[lo])?, starts[lo]),
            }
        };
        if ids.is_empty() {
            return Err(self.template_error("the chat template rendered an empty prompt"));
        }
        Ok((ids, dropped))
    }

    /// Generates a reply to `turns` (streamed to `on_text`).
    pub fn reply(
        &self,
        turns: &[Turn],
        s: &Sampling,
        extra_stops: &[String],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(Output, usize), Error> {
        let (ids, dropped) = self.prompt(turns, s.max_new_tokens)?;
        let mut stops: Vec<String> = self.stop_strings.clone();
        stops.extend(extra_stops.iter().cloned());
        let out = self.run(&ids, s, &self.stop_ids, &stops, on_text);
        let out = Output { text: out.text.trim().to_string(), ..out };
        Ok((out, dropped))
    }

    /// Replies to several conversations in one batch (see [`banter_model::cached::generate_batch`]), in order; a
    /// conversation the template refuses gets its error, the others their replies. Conversation `i` is
    /// sampled with `seeds[i]` (every one with `s.seed` when `seeds` is empty).
    pub fn reply_batch(
        &self,
        convs: &[Vec<Turn>],
        s: &Sampling,
        seeds: &[u64],
        extra_stops: &[String],
    ) -> Vec<Result<Output, Error>> {
        let rendered: Vec<Result<Vec<u32>, Error>> =
            convs.iter().map(|t| self.prompt(t, s.max_new_tokens).map(|p| p.0)).collect();
        let prompts: Vec<Vec<u32>> = rendered.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let seeds: Vec<u64> = rendered
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| seeds.get(i).copied().unwrap_or(s.seed))
            .collect();
        let mut stops: Vec<String> = self.stop_strings.clone();
        stops.extend(extra_stops.iter().cloned());
        let decode = |i: &[u32]| self.decode(i);
        let outs = match &self.model {
            _ if prompts.is_empty() => Vec::new(),
            m => m.generate_batch(&prompts, s, &seeds, &self.stop_ids, &stops, &decode, self.compute),
        };
        let mut outs = outs.into_iter().map(|o| Output { text: o.text.trim().to_string(), ..o });
        rendered
            .into_iter()
            .map(|r| r.and_then(|_| outs.next().ok_or_else(|| Error::Template("a batched reply is missing".into()))))
            .collect()
    }

    /// Continues plain text (no template).
    pub fn complete(
        &self,
        text: &str,
        s: &Sampling,
        extra_stops: &[String],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Output {
        let mut ids = self.encode(text);
        if ids.is_empty() {
            // Nothing to continue: start from the beginning-of-text token, as transformers' generate() does.
            ids.push(self.bos_id());
        }
        self.run(&ids, s, &[self.tok.eos_id], extra_stops, on_text)
    }
}

/// The ids of `generation_config.json`'s `eos_token_id` (one or a list); none when absent.
fn generation_eos(model_dir: &Path) -> Vec<u32> {
    let v: serde_json::Value = std::fs::read_to_string(model_dir.join("generation_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    match &v["eos_token_id"] {
        serde_json::Value::Number(n) => n.as_u64().map(|i| vec![i as u32]).unwrap_or_default(),
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_u64()).map(|i| i as u32).collect(),
        _ => Vec::new(),
    }
}

/// `--template`, else the model's `banter_template.json`, else the Hugging Face chat template it ships,
/// else chatml.
fn pick_template(dirs: &[&Path], template: Option<&str>) -> anyhow::Result<ChatTemplate> {
    Ok(match template {
        Some(t) => ChatTemplate::from_arg(t)?,
        None => ChatTemplate::from_model_dirs(dirs)?.unwrap_or_else(ChatTemplate::chatml),
    })
}

/// The model with its adapter merged, weights held as `weights` says. GPT-2's vocabulary grows for the
/// template's special tokens (banter's own models); a Hub family keeps its own.
fn load_model(
    dir: &Path,
    config: serde_json::Value,
    adapter: Option<&Path>,
    device: Device,
    weights: Weights,
    vocab: i64,
) -> anyhow::Result<(Lm, Kind, String)> {
    // The precision first: bf16/fp16 weights are then read straight into their dtype (no fp32 copy).
    let (compute, precision) = choose(weights, device, banter_model::lm::head_shape_of(&config))?;
    let hold = if adapter.is_some() || weights.quantize.is_some() { Kind::Float } else { compute };
    let mut model = banter_model::lm::load_model_from(dir, config, device, hold)?;
    if model.grows_to_tokenizer() && vocab > model.vocab_size() {
        model.resize_vocab(vocab);
    }
    if let Some(a) = adapter {
        model.load_adapter(a)?;
        model.merge_lora();
    }
    if let Some(scheme) = weights.quantize {
        model.quantize(scheme);
        if model.int8_decodes_in_rust() {
            // GPT-2's int8 products run entirely on banter's (rayon) threads; libtorch's OpenMP threads
            // spin between ops and would compete with them for the cores (55 vs 45 tokens/s on 2 cores).
            tch::set_num_threads(1);
        }
    } else if compute != Kind::Float {
        model.to_half_weights(compute);
    }
    model.prepare_for_decode();
    Ok((model, compute, precision))
}
