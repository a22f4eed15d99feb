//! What the Hub families (`llama.rs`, `opt.rs`) share: the per-block KV cache, the causal mask of tokens
//! that follow cached ones, the next-token loss, and generation over any of them.

use tch::{Device, Kind, Tensor};

/// Keys and values of the tokens seen so far, per block (`[B, kv_heads, T, head_dim]`).
///
/// The first pass (the prompt, or a training sequence) is kept as it came; from the second on, each block's
/// keys and values live in a buffer with room to spare (doubling), written in place: a generated token
/// costs one `[B, kv_heads, 1, head_dim]` copy per block, not a copy of the whole cache.
#[derive(Debug, Default)]
pub struct LlamaCache {
    kv: Vec<(Tensor, Tensor)>,
    len: i64,
    /// Left padding of each row of a batch (none for one sequence).
    pads: Vec<i64>,
}

/// Per-row positions `[B, T]` and the attention mask `[B, 1, T, S]` of `t` new tokens after `start` cached
/// ones, for a batch whose rows are left-padded by `pads`: a row's positions count from its first real token,
/// and its tokens see neither its padding nor later tokens. A padding position sees itself only (so no row of
/// the softmax is empty). `None` when no row is padded.
pub(crate) fn padded_batch(pads: &[i64], start: i64, t: i64, device: Device) -> Option<(Tensor, Tensor)> {
    if pads.iter().all(|&p| p == 0) {
        return None;
    }
    let total = start + t;
    let pads = Tensor::from_slice(pads).to_device(device);
    let rows = Tensor::arange_start(start, total, (Kind::Int64, device));
    let pos = (rows.unsqueeze(0) - pads.unsqueeze(1)).clamp_min(0);
    let cols = Tensor::arange(total, (Kind::Int64, device));
    let causal = cols.unsqueeze(0).le_tensor(&rows.unsqueeze(1)).unsqueeze(0);
    let real = cols.unsqueeze(0).ge_tensor(&pads.unsqueeze(1)).unsqueeze(1);
    let own = cols.unsqueeze(0).eq_tensor(&rows.unsqueeze(1)).unsqueeze(0);
    let mask = causal.logical_and(&real).logical_or(&own).unsqueeze(1);
    Some((pos, mask))
}

/// Writes `new` after the first `len` positions (dim 2) of `buf`, growing it (doubling) when full; returns the
/// buffer and a view of the `len + t` positions written.
fn write_at(buf: &mut Tensor, len: i64, new: &Tensor) -> Tensor {
    let t = new.size()[2];
    let cap = buf.size()[2];
    if len + t > cap {
        let mut shape = buf.size();
        shape[2] = (2 * (len + t)).max(64);
        let grown = Tensor::empty(shape.as_slice(), (buf.kind(), buf.device()));
        grown.narrow(2, 0, len).copy_(&buf.narrow(2, 0, len));
        *buf = grown;
    }
    buf.narrow(2, len, t).copy_(new);
    buf.narrow(2, 0, len + t)
}

impl LlamaCache {
    /// An empty cache for a batch whose rows are left-padded by `pads` tokens.
    pub fn with_left_padding(pads: Vec<i64>) -> Self {
        LlamaCache { pads, ..LlamaCache::default() }
    }

    /// Each row's left padding.
    pub fn pads(&self) -> &[i64] {
        &self.pads
    }

    /// Tokens cached.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counts `t` more tokens (after every block appended them).
    pub(crate) fn advance(&mut self, t: i64) {
        self.len += t;
    }

    /// Appends block `i`'s new keys and values; returns all of them.
    pub(crate) fn append(&mut self, i: usize, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let len = self.len;
        if let Some((pk, pv)) = self.kv.get_mut(i) {
            (write_at(pk, len, &k), write_at(pv, len, &v))
        } else {
            self.kv.push((k.shallow_clone(), v.shallow_clone()));
            (k, v)
        }
    }
}

/// Which keys the `t` new tokens after `start` cached ones may see: every cached one and the new ones up to
/// themselves. `None` without a cache (SDPA's causal flag does it).
pub(crate) fn cached_causal_mask(start: i64, t: i64, device: Device) -> Option<Tensor> {
    (start > 0).then(|| {
        let rows = Tensor::arange_start(start, start + t, (Kind::Int64, device)).unsqueeze(1);
        Tensor::arange(start + t, (Kind::Int64, device)).unsqueeze(0).le_tensor(&rows)
    })
}

/// Mean cross-entropy of next-token prediction over labels other than -100 (as transformers shifts them).
pub(crate) fn next_token_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let (t, v) = (logits.size()[1], logits.size()[2]);
    let l = logits.narrow(1, 0, t - 1).reshape([-1, v]);
    l.cross_entropy_loss::<Tensor>(&labels.narrow(1, 1, t - 1).reshape([-1]), None, tch::Reduction::Mean, -100, 0.0)
}

/// A model that decodes with a [`LlamaCache`].
pub trait CachedLm {
    /// Logits for `ids`, which follow the tokens in `cache` (which grows by them), computed in `compute`.
    fn forward_cached(&self, ids: &Tensor, cache: &mut LlamaCache, compute: Kind) -> Tensor;
    /// The longest context.
    fn context(&self) -> usize;
    /// Where the weights are.
    fn device(&self) -> Device;
}

/// Sampling for a batch of prompts over a [`CachedLm`] in `compute` (left-padded, one cache; see
/// [`crate::generate::batch_loop`]).
#[allow(clippy::too_many_arguments)]
pub fn generate_batch<M: CachedLm>(
    model: &M,
    prompts: &[Vec<u32>],
    s: &crate::generate::Sampling,
    stop_ids: &[u32],
    stop_strings: &[String],
    decode: &dyn Fn(&[u32]) -> String,
    compute: Kind,
) -> Vec<crate::generate::Output> {
    let _g = tch::no_grad_guard();
    let mut cache: Option<LlamaCache> = None;
    let device = model.device();
    crate::generate::batch_loop(prompts, s, model.context(), stop_ids, stop_strings, decode, &mut |ids, b, pads| {
        let cache = cache.get_or_insert_with(|| LlamaCache::with_left_padding(pads.clone().unwrap_or_default()));
        let t = ids.len() / b;
        let ids = Tensor::from_slice(ids).view([b as i64, t as i64]).to_device(device);
        let last = model.forward_cached(&ids, cache, compute).select(1, -1).to_kind(Kind::Float).to_device(Device::Cpu);
        (0..b as i64).map(|i| Vec::<f32>::try_from(&last.get(i)).unwrap_or_default()).collect()
    })
}

/// Generation over a [`CachedLm`]: the prompt once, then a token at a time through the cache.
#[derive(Debug)]
pub struct CachedStepper<'a, M> {
    model: &'a M,
    cache: LlamaCache,
    compute: Kind,
}

impl<'a, M: CachedLm> CachedStepper<'a, M> {
    /// A stepper with an empty cache, computing in fp32.
    pub fn new(model: &'a M) -> Self {
        Self::with_compute(model, Kind::Float)
    }

    /// A stepper computing in `compute` (fp32, or bf16/fp16 with weights held so).
    pub fn with_compute(model: &'a M, compute: Kind) -> Self {
        CachedStepper { model, cache: LlamaCache::default(), compute }
    }

    fn logits(&mut self, ids: &[u32]) -> Vec<f32> {
        let t = Tensor::from_slice(&ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>())
            .view([1, ids.len() as i64])
            .to_device(self.model.device());
        crate::generate::last_logits(self.model.forward_cached(&t, &mut self.cache, self.compute).select(1, -1))
    }
}

impl<M: CachedLm> crate::generate::Stepper for CachedStepper<'_, M> {
    fn context(&self) -> usize {
        self.model.context()
    }

    fn prefill(&mut self, prompt: &[u32]) -> Vec<f32> {
        self.logits(prompt)
    }

    fn step(&mut self, token: u32, logits: &mut Vec<f32>) {
        // One token: the linear layers run on banter's own kernels (rayon's threads, see
        // `decode::linear_rows`, `bf16::linear_rows_bf16`) and what stays with libtorch is tiny, so libtorch
        // runs it on one thread —
        // its idle OpenMP workers would otherwise spin against the kernel's threads (SmolLM2-135M shape,
        // 2-core EPYC: 17.7 → 23 tokens/s). The prompt (`prefill`) keeps every thread for its GEMMs.
        let threads = tch::get_num_threads();
        let single =
            threads > 1 && matches!(self.compute, Kind::Float | Kind::BFloat16) && self.model.device() == Device::Cpu;
        if single {
            tch::set_num_threads(1);
        }
        *logits = self.logits(&[token]);
        if single {
            tch::set_num_threads(threads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::generate::{Sampling, Stepper, generate_with};

    /// Greedy replies of a batch of prompts of different lengths equal the replies one at a time.
    fn batch_equals_single<M: CachedLm>(m: &M, what: &str) {
        let prompts: Vec<Vec<u32>> = vec![vec![5, 9, 3], vec![7; 9], vec![1, 2, 3, 4, 5, 6], vec![11]];
        let s = Sampling { temperature: 0.0, max_new_tokens: 8, ..Sampling::default() };
        let none = |_: &[u32]| String::new();
        let batch = generate_batch(m, &prompts, &s, &[], &[], &none, Kind::Float);
        for (p, b) in prompts.iter().zip(&batch) {
            let mut st = CachedStepper::new(m);
            let one = generate_with(&mut st as &mut dyn Stepper, p, &s, &[], &[], &none, &mut |_| true);
            assert_eq!(b.ids, one.ids, "{what}: prompt {p:?}");
        }
    }

    #[test]
    fn batched_decoding_of_the_families_equals_one_at_a_time() {
        tch::manual_seed(7);
        let base = serde_json::json!({"vocab_size": 40, "hidden_size": 32, "intermediate_size": 48,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64});
        for extra in [
            serde_json::json!({"model_type": "llama"}),
            serde_json::json!({"model_type": "gemma2", "head_dim": 8, "sliding_window": 4, "query_pre_attn_scalar": 8}),
        ] {
            let mut cfg = base.clone();
            cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let m = crate::llama::Llama::new(crate::llama::LlamaConfig::from_value(cfg, "test").unwrap(), Device::Cpu);
            let _g = tch::no_grad_guard();
            for v in m.vs.variables().values() {
                let _ = v.shallow_clone().normal_(0.0, 0.3);
            }
            batch_equals_single(&m, extra["model_type"].as_str().unwrap());
        }
        let cfg = serde_json::json!({"model_type": "opt", "vocab_size": 40, "hidden_size": 32, "ffn_dim": 48,
            "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64});
        let m = crate::opt::Opt::new(crate::opt::OptConfig::from_value(cfg, "test").unwrap(), Device::Cpu);
        let _g = tch::no_grad_guard();
        for v in m.vs.variables().values() {
            let _ = v.shallow_clone().normal_(0.0, 0.3);
        }
        batch_equals_single(&m, "opt");
    }

    #[test]
    fn the_cache_grows_in_place_and_keeps_every_token() {
        let mut cache = LlamaCache::default();
        let mut want_k: Vec<Tensor> = Vec::new();
        for step in 0..150 {
            let t = if step == 0 { 5 } else { 1 + step % 3 };
            let k = Tensor::randn([1, 2, t, 4], (Kind::Float, Device::Cpu));
            let v = &k * 2.0;
            want_k.push(k.shallow_clone());
            let (gk, gv) = cache.append(0, k, v);
            cache.advance(t);
            let all = Tensor::cat(&want_k, 2);
            assert_eq!(gk.size()[2], cache.len());
            assert!(gk.equal(&all) && gv.equal(&(&all * 2.0)), "step {step}");
        }
    }
}
