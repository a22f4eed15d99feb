//! Text generation with Hugging Face's semantics: repetition penalty on the raw logits (each id in the
//! context once: positive logits divided, negative multiplied), then temperature → top-k → top-p (the token
//! that crosses p is kept) → softmax → sample; temperature 0 is greedy (argmax, no warpers). Stops at EOS,
//! an end-of-turn token, or a stop string matched across token boundaries. A KV cache makes each new token
//! one forward step. Sampling draws from banter's own seeded generator, so `--seed` gives the same text on
//! any device.

use tch::{Device, Kind, Tensor};

use crate::gpt2::Gpt2;
use crate::{KvCache, Pass};

/// Sampling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 = greedy.
    pub temperature: f64,
    /// 0 = off.
    pub top_k: usize,
    /// 1 = off.
    pub top_p: f64,
    /// 1 = off.
    pub repetition_penalty: f64,
    /// Tokens to generate at most.
    pub max_new_tokens: usize,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: Self::TEMPERATURE,
            top_k: Self::TOP_K,
            top_p: Self::TOP_P,
            repetition_penalty: Self::REPETITION_PENALTY,
            max_new_tokens: Self::MAX_NEW_TOKENS,
            seed: Self::SEED,
        }
    }
}

impl Sampling {
    /// The defaults (Oodi's and the self-learning chatbot's): every tool and the server take them from here.
    pub const TEMPERATURE: f64 = 0.8;
    /// Default top-k.
    pub const TOP_K: usize = 50;
    /// Default top-p.
    pub const TOP_P: f64 = 0.95;
    /// Default repetition penalty (off).
    pub const REPETITION_PENALTY: f64 = 1.0;
    /// Default reply length.
    pub const MAX_NEW_TOKENS: usize = 150;
    /// Default seed.
    pub const SEED: u64 = 42;
    /// Temperatures above this are refused (the distribution is uniform long before).
    pub const MAX_TEMPERATURE: f64 = 100.0;
    /// Repetition penalties above this are refused.
    pub const MAX_REPETITION_PENALTY: f64 = 100.0;

    /// Checks every setting; the error names the setting (`temperature`, `top_p`, …) and its range.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..=Self::MAX_TEMPERATURE).contains(&self.temperature) {
            return Err(("temperature", format!("must be a number in [0, {}]", Self::MAX_TEMPERATURE)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(("top_p", "must be in (0, 1]".into()));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty <= Self::MAX_REPETITION_PENALTY) {
            return Err(("repetition_penalty", format!("must be in (0, {}]", Self::MAX_REPETITION_PENALTY)));
        }
        if self.max_new_tokens == 0 {
            return Err(("max_new_tokens", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// EOS or an end-of-turn token.
    Stop,
    /// A stop string.
    StopString,
    /// `max_new_tokens` reached (or the context is full).
    Length,
    /// The callback asked to stop (Ctrl-C, a closed connection).
    Cancelled,
}

impl Finish {
    /// OpenAI's `finish_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop | Finish::StopString => "stop",
            Finish::Length => "length",
            Finish::Cancelled => "cancelled",
        }
    }
}

/// The result of one generation.
#[derive(Debug, Clone)]
pub struct Output {
    /// Generated token ids (stop tokens excluded).
    pub ids: Vec<u32>,
    /// Tokens of the prompt the model saw (after cutting it to fit the context).
    pub prompt_tokens: usize,
    /// Generated text, cut before any stop string.
    pub text: String,
    /// Why it ended.
    pub finish: Finish,
    /// Seconds until the first token.
    pub ttft: f64,
    /// Seconds in total.
    pub seconds: f64,
}

/// The sampler's generator (SplitMix64, seeded).
pub type Rng = banter_core::util::SplitMix64;

/// Picks the next token from raw logits (HF order of processors).
pub fn pick(logits: &mut [f32], context: &[u32], s: &Sampling, rng: &mut Rng) -> u32 {
    Picker::default().pick(logits, context, s, rng)
}

/// [`pick`] with its scratch buffers kept between tokens: after the first token, choosing one allocates
/// nothing.
#[derive(Debug, Default)]
pub struct Picker {
    seen: Vec<u32>,
    idx: Vec<u32>,
    probs: Vec<f64>,
    best: Vec<f32>,
}

impl Picker {
    /// Picks the next token from raw logits (HF order of processors).
    pub fn pick(&mut self, logits: &mut [f32], context: &[u32], s: &Sampling, rng: &mut Rng) -> u32 {
        if s.repetition_penalty != 1.0 {
            self.seen.clear();
            self.seen.extend_from_slice(context);
            self.seen.sort_unstable();
            self.seen.dedup();
            let p = s.repetition_penalty as f32;
            for &id in &self.seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 { *l / p } else { *l * p };
                }
            }
        }
        if s.temperature <= 0.0 {
            return argmax(logits);
        }
        let t = s.temperature as f32;
        for l in logits.iter_mut() {
            *l /= t;
        }
        let logits: &[f32] = logits;
        let order = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
        let idx = &mut self.idx;
        idx.clear();
        if s.top_k > 0 && s.top_k < logits.len() {
            // Only the k best need sorting: find the k-th largest logit in one pass (a sorted list of the
            // k best so far, which few logits enter), then keep every id at or above it — ties with the
            // k-th logit are kept, as HF's `logits < kth` filter does.
            let best = &mut self.best;
            best.clear();
            best.extend_from_slice(&logits[..s.top_k]);
            best.sort_unstable_by(f32::total_cmp);
            for &l in &logits[s.top_k..] {
                if l > best[0] {
                    let at = best.partition_point(|b| *b < l);
                    best.insert(at, l);
                    best.remove(0);
                }
            }
            let kth = best[0];
            idx.extend((0..logits.len() as u32).filter(|&i| logits[i as usize] >= kth));
        } else {
            idx.extend(0..logits.len() as u32);
        }
        idx.sort_unstable_by(order);
        let max = logits[idx[0] as usize];
        let probs = &mut self.probs;
        probs.clear();
        probs.extend(idx.iter().map(|&i| f64::from(logits[i as usize] - max).exp()));
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= z);
        if s.top_p < 1.0 {
            let mut cum = 0.0;
            let mut n = 0;
            for p in probs.iter() {
                cum += p;
                n += 1;
                if cum >= s.top_p {
                    break;
                }
            }
            probs.truncate(n.max(1));
            let z: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= z);
        }
        let u = rng.uniform();
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if u < acc {
                return idx[i];
            }
        }
        idx[probs.len() - 1]
    }
}

/// The index of the largest logit (the first of equals): greedy decoding's choice.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The end of `prompt` that leaves room for the reply in a context of `ctx` tokens (cut from the left).
fn fit_prompt<'a>(prompt: &'a [u32], s: &Sampling, ctx: usize) -> &'a [u32] {
    let room = s.max_new_tokens.min(ctx.saturating_sub(1));
    if prompt.len() + room > ctx { &prompt[prompt.len() + room - ctx..] } else { prompt }
}

/// A model that generation can drive one token at a time.
pub trait Stepper {
    /// The longest context, in tokens.
    fn context(&self) -> usize;
    /// Reads the prompt; returns the logits of the token after it.
    fn prefill(&mut self, prompt: &[u32]) -> Vec<f32>;
    /// Feeds the chosen token; `logits` becomes the next token's.
    fn step(&mut self, token: u32, logits: &mut Vec<f32>);
}

/// GPT-2 with its KV cache, stepping through the Rust decoder where it applies (fp32 or int8 on CPU).
struct Gpt2Stepper<'a> {
    model: &'a Gpt2,
    cache: KvCache,
    decoder: Option<crate::decode::Decoder<'a>>,
    pass: Pass,
}

impl Stepper for Gpt2Stepper<'_> {
    fn context(&self) -> usize {
        self.model.cfg.n_positions as usize
    }

    fn prefill(&mut self, prompt: &[u32]) -> Vec<f32> {
        let ids = Tensor::from_slice(&prompt.iter().map(|&i| i64::from(i)).collect::<Vec<_>>())
            .view([1, prompt.len() as i64])
            .to_device(self.model.device());
        // A short prompt's fp32 products run on banter's row kernels (see `decode::prefill_rows`). Not for
        // models under 256 wide: switching libtorch's thread count costs more than their prefill saves (4 ×
        // 128: time to first token 0.8 → 1.5 ms, and the decode after it ~15% slower; 4 × 256 and wider gain).
        let fp32_rows = self.decoder.is_some()
            && self.model.cfg.n_embd >= 256
            && self.pass.compute == Kind::Float
            && self.model.wte.kind() == Kind::Float
            && prompt.len() <= crate::decode::prefill_rows();
        let _one = crate::rows::OneTorchThread::new(fp32_rows);
        last_logits(self.model.forward_last(&ids, Some(&mut self.cache), self.pass))
    }

    fn step(&mut self, token: u32, logits: &mut Vec<f32>) {
        if !self.decoder.as_mut().is_some_and(|d| d.step(token, &mut self.cache, logits)) {
            let ids = Tensor::from_slice(&[i64::from(token)]).view([1, 1]).to_device(self.model.device());
            *logits = last_logits(self.model.forward_last(&ids, Some(&mut self.cache), self.pass));
        }
    }
}

/// A [`Stepper`] over a GPT-2 in `compute` precision (the Rust decoder where it applies).
pub fn gpt2_stepper(model: &Gpt2, compute: Kind) -> Box<dyn Stepper + '_> {
    let (decoder, compute) = rust_decoder(model, compute);
    Box::new(Gpt2Stepper {
        model,
        cache: KvCache::default().reserve(model.cfg.n_positions),
        decoder,
        pass: Pass { train: false, compute },
    })
}

/// The Rust decoder where it applies, and the kind the libtorch passes (the prefill) then compute in:
/// fp32 weights in fp32; bf16 weights on CPU also in fp32 activations (the products read the bf16 weights,
/// the cache stays fp32), so no pass casts the weights per token.
fn rust_decoder(model: &Gpt2, compute: Kind) -> (Option<crate::decode::Decoder<'_>>, Kind) {
    let bf16_weights = compute == Kind::BFloat16 && model.wte.kind() == Kind::BFloat16;
    if compute != Kind::Float && !bf16_weights {
        return (None, compute);
    }
    match model.decoder() {
        Some(d) => (Some(d), Kind::Float),
        None => (None, compute),
    }
}

/// Generates a continuation of `prompt` with a GPT-2 (see [`generate_with`]).
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &Gpt2,
    prompt: &[u32],
    s: &Sampling,
    stop_ids: &[u32],
    stop_strings: &[String],
    decode: &dyn Fn(&[u32]) -> String,
    compute: Kind,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Output {
    let _g = tch::no_grad_guard();
    // Tokens after the prompt go through the Rust decoder where it applies (fp32, bf16 or quantized on CPU).
    let (decoder, compute) = rust_decoder(model, compute);
    let mut st = Gpt2Stepper {
        model,
        cache: KvCache::default().reserve(model.cfg.n_positions),
        decoder,
        pass: Pass { train: false, compute },
    };
    generate_with(&mut st, prompt, s, stop_ids, stop_strings, decode, on_text)
}

/// Generates a continuation of `prompt` with any [`Stepper`].
///
/// `decode` turns ids into text; `stop_ids` end generation (EOS, end-of-turn); `stop_strings` are cut off
/// the text wherever they appear, across token boundaries. `on_text` receives text as it becomes final (a
/// possible stop-string prefix and incomplete UTF-8 are held back) and returns false to cancel.
pub fn generate_with(
    model: &mut dyn Stepper,
    prompt: &[u32],
    s: &Sampling,
    stop_ids: &[u32],
    stop_strings: &[String],
    decode: &dyn Fn(&[u32]) -> String,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Output {
    let _g = tch::no_grad_guard();
    let started = std::time::Instant::now();
    let ctx = model.context();
    // Keep room for the reply: cut the prompt from the left if needed.
    let prompt = fit_prompt(prompt, s, ctx);
    let mut rng = Rng::new(s.seed);
    let mut picker = Picker::default();
    let mut logits = model.prefill(prompt);
    let mut context: Vec<u32> = prompt.to_vec();
    let mut out: Vec<u32> = Vec::new();
    let mut emitted = 0usize;
    let mut ttft = 0.0;
    let hold = stop_strings.iter().map(|x| x.len()).max().unwrap_or(1).saturating_sub(1);
    let mut finish = Finish::Length;
    let mut text = String::new();
    while out.len() < s.max_new_tokens && context.len() < ctx {
        let next = picker.pick(&mut logits, &context, s, &mut rng);
        if out.is_empty() {
            ttft = started.elapsed().as_secs_f64();
        }
        if stop_ids.contains(&next) {
            finish = Finish::Stop;
            break;
        }
        out.push(next);
        context.push(next);
        text = decode(&out);
        if let Some(cut) = stop_strings.iter().filter_map(|st| text.find(st.as_str())).min() {
            text.truncate(cut);
            finish = Finish::StopString;
            break;
        }
        // Emit what can no longer turn into a stop string or complete a character.
        let mut safe = text.len().saturating_sub(hold);
        if text.ends_with('\u{FFFD}') {
            safe = safe.min(text.len() - '\u{FFFD}'.len_utf8());
        }
        while !text.is_char_boundary(safe) {
            safe -= 1;
        }
        if safe > emitted {
            if !on_text(&text[emitted..safe]) {
                finish = Finish::Cancelled;
                emitted = safe;
                break;
            }
            emitted = safe;
        }
        model.step(next, &mut logits);
    }
    let text = text.trim_end_matches('\u{FFFD}').to_string();
    if finish != Finish::Cancelled && text.len() > emitted {
        on_text(&text[emitted..]);
    }
    Output { ids: out, prompt_tokens: prompt.len(), text, finish, ttft, seconds: started.elapsed().as_secs_f64() }
}

/// One batched pass for [`batch_loop`]: `(ids, rows, Some(left pads) on the first call)` → each row's last
/// logits.
pub type BatchForward<'a> = dyn FnMut(&[i64], usize, Option<Vec<i64>>) -> Vec<Vec<f32>> + 'a;

/// Sampling for a batch of left-padded prompts, whatever the model: `forward(ids, b, pads)` runs `b` rows of
/// ids (the padded prompts first, with `Some(pads)`, then one token per row) and returns each row's last
/// logits. Each row stops on its own; finished rows keep feeding a token (ignored) until all are done. Row
/// `i` samples with its own generator seeded with `seeds[i]` (every row with `s.seed` when `seeds` is empty).
#[allow(clippy::too_many_arguments)]
pub fn batch_loop(
    prompts: &[Vec<u32>],
    s: &Sampling,
    seeds: &[u64],
    ctx: usize,
    stop_ids: &[u32],
    stop_strings: &[String],
    decode: &dyn Fn(&[u32]) -> String,
    forward: &mut BatchForward<'_>,
) -> Vec<Output> {
    let started = std::time::Instant::now();
    let prompts: Vec<&[u32]> = prompts.iter().map(|p| fit_prompt(p, s, ctx)).collect();
    let width = prompts.iter().map(|p| p.len()).max().unwrap_or(0).max(1);
    let b = prompts.len();
    if b == 0 {
        return Vec::new();
    }
    let mut flat = Vec::with_capacity(b * width);
    let mut pads = Vec::with_capacity(b);
    for p in &prompts {
        pads.push((width - p.len()) as i64);
        flat.extend(std::iter::repeat_n(0i64, width - p.len()));
        flat.extend(p.iter().map(|&i| i64::from(i)));
    }
    let mut logits = forward(&flat, b, Some(pads));
    let mut rngs: Vec<Rng> = (0..b).map(|i| Rng::new(seeds.get(i).copied().unwrap_or(s.seed))).collect();
    let mut picker = Picker::default();
    let mut contexts: Vec<Vec<u32>> = prompts.iter().map(|p| p.to_vec()).collect();
    let mut outs: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut finish: Vec<Option<Finish>> = vec![None; b];
    let mut texts: Vec<String> = vec![String::new(); b];
    let mut ttft = 0.0;
    let mut steps = 0usize;
    while finish.iter().any(Option::is_none) {
        let mut next = vec![0i64; b];
        for i in 0..b {
            if finish[i].is_some() {
                continue;
            }
            if outs[i].len() >= s.max_new_tokens || width + steps >= ctx {
                finish[i] = Some(Finish::Length);
                continue;
            }
            let tok = picker.pick(&mut logits[i], &contexts[i], s, &mut rngs[i]);
            if stop_ids.contains(&tok) {
                finish[i] = Some(Finish::Stop);
                continue;
            }
            outs[i].push(tok);
            contexts[i].push(tok);
            next[i] = i64::from(tok);
            if !stop_strings.is_empty() {
                let text = decode(&outs[i]);
                if let Some(cut) = stop_strings.iter().filter_map(|st| text.find(st.as_str())).min() {
                    texts[i] = text[..cut].to_string();
                    finish[i] = Some(Finish::StopString);
                }
            }
        }
        if steps == 0 {
            ttft = started.elapsed().as_secs_f64();
        }
        steps += 1;
        if finish.iter().all(Option::is_some) {
            break;
        }
        logits = forward(&next, b, None);
    }
    let seconds = started.elapsed().as_secs_f64();
    (0..b)
        .map(|i| {
            let f = finish[i].unwrap_or(Finish::Length);
            let text = if f == Finish::StopString { texts[i].clone() } else { decode(&outs[i]) };
            let text = text.trim_end_matches('\u{FFFD}').to_string();
            Output {
                ids: std::mem::take(&mut outs[i]),
                prompt_tokens: prompts[i].len(),
                text,
                finish: f,
                ttft,
                seconds,
            }
        })
        .collect()
}

/// Every row's logits (`[B, V]`), as fp32 vectors.
pub(crate) fn rows_last_logits(logits: Tensor) -> Vec<Vec<f32>> {
    let last = logits.to_kind(Kind::Float).to_device(Device::Cpu);
    (0..last.size()[0]).map(|i| Vec::<f32>::try_from(&last.get(i)).unwrap_or_default()).collect()
}

/// The first row's logits (`[1, V]`), as an fp32 vector.
pub(crate) fn last_logits(logits: Tensor) -> Vec<f32> {
    let last = logits.get(0).to_kind(Kind::Float).to_device(Device::Cpu);
    Vec::<f32>::try_from(&last).unwrap_or_default()
}

#[cfg(test)]
mod tests;
