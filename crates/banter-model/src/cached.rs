//! What the architectures share: the causal mask of tokens that follow cached ones and of left-padded
//! batches, the next-token loss, and generation over any of them through the one [`KvCache`].

use tch::{Device, Kind, Tensor};

use crate::kvcache::KvCache;

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

/// A model that decodes with a [`KvCache`].
pub trait CachedLm {
    /// Final hidden states `[B, T, E]` of `ids` `[B, T]`, which follow the tokens in `cache` (which grows by
    /// them), in `pass`.
    fn hidden_cached(&self, ids: &Tensor, cache: &mut KvCache, pass: crate::Pass) -> Tensor;
    /// The output projection of hidden states (fp32 logits), in `pass`.
    fn head_logits(&self, x: &Tensor, pass: crate::Pass) -> Tensor;
    /// Logits `[B, T, V]` of `ids` after the cached tokens, in `pass`.
    fn logits_cached(&self, ids: &Tensor, cache: &mut KvCache, pass: crate::Pass) -> Tensor {
        self.head_logits(&self.hidden_cached(ids, cache, pass), pass)
    }
    /// Logits `[B, V]` of the last of `ids` only (a prompt's prefill needs no others), computed in `compute`.
    fn last_logits(&self, ids: &Tensor, cache: &mut KvCache, compute: Kind) -> Tensor {
        let pass = crate::Pass { train: false, compute };
        let x = self.hidden_cached(ids, cache, pass);
        let t = x.size()[1];
        self.head_logits(&x.narrow(1, t - 1, 1), pass).squeeze_dim(1)
    }
    /// The longest context.
    fn context(&self) -> usize;
    /// Where the weights are.
    fn device(&self) -> Device;
}

/// Generates continuations of several prompts at once (`--input` files): the prompts are left-padded into
/// one batch over one [`KvCache`], so each decoding step reads the weights once for every row — on a memory-bound CPU nearly
/// `prompts.len()` times the tokens per second. Each row samples with its own generator seeded with
/// `seeds[i]` (or `s.seed` when `seeds` is empty), as [`crate::generate::generate`] would; rows stop independently (EOS, stop ids, stop strings, length), and the
/// batch ends when every row has. No streaming: the texts come back at the end, in order.
#[allow(clippy::too_many_arguments)]
pub fn generate_batch<M: CachedLm + ?Sized>(
    model: &M,
    prompts: &[Vec<u32>],
    s: &crate::generate::Sampling,
    seeds: &[u64],
    stop_ids: &[u32],
    stop_strings: &[String],
    decode: &dyn Fn(&[u32]) -> String,
    compute: Kind,
) -> Vec<crate::generate::Output> {
    let _g = tch::no_grad_guard();
    let mut cache: Option<KvCache> = None;
    let device = model.device();
    crate::generate::batch_loop(
        prompts,
        s,
        seeds,
        model.context(),
        stop_ids,
        stop_strings,
        decode,
        &mut |ids, b, pads| {
            let cache = cache.get_or_insert_with(|| KvCache::with_left_padding(pads.clone().unwrap_or_default()));
            let t = ids.len() / b;
            let ids = Tensor::from_slice(ids).view([b as i64, t as i64]).to_device(device);
            crate::generate::rows_last_logits(model.last_logits(&ids, cache, compute))
        },
    )
}

/// Generation over a [`CachedLm`]: the prompt once, then a token at a time through the cache.
#[derive(Debug)]
pub struct CachedStepper<'a, M: ?Sized> {
    model: &'a M,
    cache: KvCache,
    compute: Kind,
}

impl<'a, M: CachedLm + ?Sized> CachedStepper<'a, M> {
    /// A stepper with an empty cache, computing in fp32.
    pub fn new(model: &'a M) -> Self {
        Self::with_compute(model, Kind::Float)
    }

    /// A stepper computing in `compute` (fp32, or bf16/fp16 with weights held so).
    pub fn with_compute(model: &'a M, compute: Kind) -> Self {
        CachedStepper { model, cache: KvCache::default(), compute }
    }

    fn logits(&mut self, ids: &[u32]) -> Vec<f32> {
        let t = Tensor::from_slice(&ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>())
            .view([1, ids.len() as i64])
            .to_device(self.model.device());
        crate::generate::last_logits(self.model.last_logits(&t, &mut self.cache, self.compute))
    }
}

impl<M: CachedLm + ?Sized> crate::generate::Stepper for CachedStepper<'_, M> {
    fn context(&self) -> usize {
        self.model.context()
    }

    fn prefill(&mut self, prompt: &[u32]) -> Vec<f32> {
        // A short prompt's fp32 linear layers run on banter's row kernels (`decode::prefill_rows`).
        let rows = self.compute == Kind::Float
            && self.model.device() == Device::Cpu
            && prompt.len() <= crate::decode::prefill_rows();
        let _one = crate::rows::OneTorchThread::new(rows);
        self.logits(prompt)
    }

    fn step(&mut self, token: u32, logits: &mut Vec<f32>) {
        // One token: the linear layers run on banter's own kernels (rayon's threads, see
        // `decode::linear_rows`, `bf16::linear_rows_bf16`) and what stays with libtorch is tiny, so libtorch
        // runs it on one thread —
        // its idle OpenMP workers would otherwise spin against the kernel's threads (SmolLM2-135M shape,
        // 2-core EPYC: 17.7 → 23 tokens/s). A short prompt (`prefill`) does the same. The step itself runs on
        // one of rayon's threads, so the ~200 products hand work over inside the pool (SmolLM2-135M shape,
        // fp32, 2-core AMX Xeon: 25.7 → 29.1 tokens/s).
        let single = matches!(self.compute, Kind::Float | Kind::BFloat16) && self.model.device() == Device::Cpu;
        let _one = crate::rows::OneTorchThread::new(single);
        *logits = if single { crate::rows::on_pool(|| self.logits(&[token])) } else { self.logits(&[token]) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::generate::{Sampling, Stepper, generate_with};

    /// Greedy replies of a batch of prompts of different lengths equal the replies one at a time.
    fn batch_equals_single<M: CachedLm + ?Sized>(m: &M, what: &str) {
        let prompts: Vec<Vec<u32>> = vec![vec![5, 9, 3], vec![7; 9], vec![1, 2, 3, 4, 5, 6], vec![11]];
        let s = Sampling { temperature: 0.0, max_new_tokens: 8, ..Sampling::default() };
        let none = |_: &[u32]| String::new();
        let batch = generate_batch(m, &prompts, &s, &[], &[], &[], &none, Kind::Float);
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
        // GPT-2 through the same cache and batch loop (its one-at-a-time stepper here is the generic one).
        let m = crate::gpt2::test_model(7, crate::Gpt2Config::new(40, 64, 32, 2, 4));
        for v in m.vs.variables().values() {
            let _ = v.shallow_clone().normal_(0.0, 0.3);
        }
        batch_equals_single(&m, "gpt2");
    }
}
