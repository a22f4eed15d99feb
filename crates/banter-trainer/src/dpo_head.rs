//! Sequence log-probabilities through the output projection without a `[B, T, V]` tensor, forward and
//! backward, for every family.
//!
//! DPO's loss depends on each reply's *summed* log-probability, so its gradient with respect to row `r`'s
//! logits is `c_i · (one-hot − softmax)`, where `c_i = ∂L/∂(Σ log p)` of the sequence `i` the row belongs to
//! (zero on unlabelled rows). The rows go through the projection in chunks of ≤ 128 MB of logits twice:
//! once for the log-probs (then the loss and its `c` on `[2B]` numbers), once for the gradient, which is made
//! in place in the chunk's logits, then `∂h = G·W` and, when the projection learns, `∂W += Gᵀ·h`. Autograd
//! runs from the hidden states with `∂h` as their gradient. The same numbers as autograd through
//! `log_softmax` to float rounding (tested), at the memory of the supervised loss.
//!
//! Gemma 2's soft cap `z = cap·tanh(u/cap)` is applied to each chunk and its derivative `1 − (z/cap)²` folded
//! into the gradient.

use tch::{Kind, Tensor};

use banter_model::Lm;
use banter_model::Pass;
use banter_model::head::head_chunk_rows;

/// The rows of one batch as the projection sees them.
struct Rows {
    /// Hidden states `[rows, E]` (attached to the graph when training).
    h: Tensor,
    /// Targets `[rows]`, −100 where not scored.
    y: Tensor,
    /// Rows per sequence (T − 1).
    per_seq: i64,
    /// Sequences.
    n: i64,
}

impl Rows {
    fn new(hidden: &Tensor, labels: &Tensor) -> Rows {
        let (n, t, e) = (hidden.size()[0], hidden.size()[1], hidden.size()[2]);
        let rows = n * (t - 1);
        let h = hidden.narrow(1, 0, t - 1).reshape([rows, e]);
        let y = labels.narrow(1, 1, t - 1).reshape([rows]).to_device(h.device());
        Rows { h, y, per_seq: t - 1, n }
    }

    fn len(&self) -> i64 {
        self.n * self.per_seq
    }
}

/// One chunk's logits (fp32, soft-capped) of hidden rows `hc` by the projection `w` in `compute`.
fn chunk_logits(hc: &Tensor, w: &Tensor, compute: Kind, cap: Option<f64>) -> Tensor {
    let z = if compute == Kind::Float && hc.kind() == Kind::Float && w.kind() == Kind::Float {
        hc.matmul(&w.tr())
    } else {
        // The projection in `compute`, cast once per weight version (not once per chunk).
        hc.to_kind(compute).matmul(&banter_model::castcache::cast(w, compute, true).tr()).to_kind(Kind::Float)
    };
    match cap {
        Some(c) => (z / c).tanh() * c,
        None => z,
    }
}

/// Per-row log-probs of the targets `[rows]` (0 on unlabelled rows), no autograd.
fn row_logps(r: &Rows, w: &Tensor, compute: Kind, cap: Option<f64>, vocab: i64) -> Tensor {
    let _g = tch::no_grad_guard();
    let h = r.h.detach();
    let chunk = head_chunk_rows(vocab);
    let out = Tensor::zeros([r.len()], (Kind::Float, h.device()));
    let mut start = 0;
    while start < r.len() {
        let len = chunk.min(r.len() - start);
        let yc = r.y.narrow(0, start, len);
        let valid = yc.ne(-100).to_kind(Kind::Float);
        let logits = chunk_logits(&h.narrow(0, start, len), w, compute, cap);
        let picked = logits.gather(1, &yc.clamp_min(0).unsqueeze(1), false).squeeze_dim(1);
        let lse = logits.logsumexp([1i64].as_slice(), false);
        out.narrow(0, start, len).copy_(&((picked - lse) * valid));
        start += len;
    }
    out
}

/// Summed log-probs `[N]` and scored-token counts `[N]` of each sequence's labelled next tokens, without
/// autograd (the reference pass and evaluation). `ids`, `labels` `[N, T]`; labels −100 where not scored.
pub fn sequence_logps(model: &Lm, ids: &Tensor, labels: &Tensor, pass: Pass) -> (Tensor, Tensor) {
    let _g = tch::no_grad_guard();
    let hidden = model.hidden(ids, Pass { train: false, ..pass });
    let r = Rows::new(&hidden, labels);
    let lp = row_logps(&r, &model.output_weight(), pass.compute, model.logit_softcap(), model.vocab_size());
    sums(&lp, &r)
}

fn sums(lp: &Tensor, r: &Rows) -> (Tensor, Tensor) {
    let counts =
        r.y.ne(-100).to_kind(Kind::Float).view([r.n, r.per_seq]).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    (lp.view([r.n, r.per_seq]).sum_dim_intlist([1i64].as_slice(), false, Kind::Float), counts)
}

/// Forward and backward of a loss of the sequences' summed log-probs: `loss(sums [N], counts [N])` must
/// return a scalar differentiable in `sums` (already multiplied by any accumulation or loss scale).
/// Gradients accumulate into the parameters' `.grad`. Returns the sums and counts (detached).
pub fn logps_backward(
    model: &Lm,
    ids: &Tensor,
    labels: &Tensor,
    pass: Pass,
    loss: impl FnOnce(&Tensor, &Tensor) -> Tensor,
) -> (Tensor, Tensor) {
    logps_backward_with(model, ids, labels, pass, false, loss)
}

/// [`logps_backward`], with gradient checkpointing when `checkpointed` (the same sums and gradients).
pub fn logps_backward_with(
    model: &Lm,
    ids: &Tensor,
    labels: &Tensor,
    pass: Pass,
    checkpointed: bool,
    loss: impl FnOnce(&Tensor, &Tensor) -> Tensor,
) -> (Tensor, Tensor) {
    model.backward_from_hidden(ids, pass, checkpointed, |hidden| logps_backward_from(model, hidden, labels, pass, loss))
}

fn logps_backward_from(
    model: &Lm,
    hidden: &Tensor,
    labels: &Tensor,
    pass: Pass,
    loss: impl FnOnce(&Tensor, &Tensor) -> Tensor,
) -> (Tensor, Tensor) {
    let r = Rows::new(hidden, labels);
    let w = model.output_weight();
    let (cap, vocab, compute) = (model.logit_softcap(), model.vocab_size(), pass.compute);
    let lp = row_logps(&r, &w, compute, cap, vocab);
    let (s, counts) = sums(&lp, &r);
    // ∂L/∂(Σ log p) per sequence, from autograd over the [N] numbers alone.
    let leaf = s.detach().set_requires_grad(true);
    loss(&leaf, &counts).backward();
    let coef = leaf.grad();
    if !coef.defined() {
        return (s, counts);
    }
    let grad_w = w.requires_grad().then(|| banter_model::head::wte_grad(&w));
    let grad_h = {
        let _g = tch::no_grad_guard();
        let row_coef = coef.detach().unsqueeze(1).expand([r.n, r.per_seq], false).reshape([r.len()])
            * r.y.ne(-100).to_kind(Kind::Float);
        let h = r.h.detach();
        let wc = banter_model::castcache::cast(&w, compute, true);
        let grad_h = Tensor::zeros([r.len(), h.size()[1]], (Kind::Float, h.device()));
        let chunk = head_chunk_rows(vocab);
        let mut start = 0;
        while start < r.len() {
            let len = chunk.min(r.len() - start);
            let hc = h.narrow(0, start, len);
            let yc = r.y.narrow(0, start, len);
            let c = row_coef.narrow(0, start, len).unsqueeze(1);
            let mut z = chunk_logits(&hc, &w, compute, cap);
            let squash = cap.map(|k| 1.0 - (&z / k).square());
            // c·(one-hot − softmax), in place in the logits (c is 0 on unscored rows).
            let max = z.amax([1i64].as_slice(), true);
            let _ = z.f_sub_(&max);
            let _ = z.f_exp_();
            let total = z.sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
            let _ = z.f_mul_(&(-&c / total));
            let _ = z.f_scatter_add_(1, &yc.clamp_min(0).unsqueeze(1), &c);
            if let Some(sq) = squash {
                let _ = z.f_mul_(&sq);
            }
            let gc = z.to_kind(compute);
            drop(z);
            grad_h.narrow(0, start, len).copy_(&gc.matmul(&wc).to_kind(Kind::Float));
            if let Some(gw) = &grad_w {
                let mut gw = gw.shallow_clone();
                let _ = gw.f_add_(&gc.tr().matmul(&hc.to_kind(compute)).to_kind(gw.kind()));
            }
            start += len;
        }
        grad_h
    };
    let surrogate = (&r.h * grad_h.to_kind(r.h.kind())).sum(Kind::Float);
    surrogate.backward();
    (s, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Autograd through full logits: the reference the fused passes must equal.
    fn autograd_logps(model: &Lm, ids: &Tensor, labels: &Tensor, pass: Pass) -> (Tensor, Tensor) {
        let hidden = model.hidden(ids, pass);
        let mut z = hidden.matmul(&model.output_weight().tr());
        if let Some(c) = model.logit_softcap() {
            z = (z / c).tanh() * c;
        }
        crate::dpo::sequence_logps(&z, labels)
    }

    fn grads(model: &Lm) -> Vec<Tensor> {
        model.vs().trainable_variables().iter().map(|t| t.grad().copy()).collect()
    }

    fn zero(model: &Lm) {
        for t in model.vs().trainable_variables() {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    #[test]
    fn fused_log_probs_and_gradients_equal_autograd() {
        let configs = [
            serde_json::json!({"model_type": "gpt2", "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 32,
                "vocab_size": 40, "attn_pdrop": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0}),
            serde_json::json!({"model_type": "opt", "hidden_size": 16, "ffn_dim": 32, "num_hidden_layers": 2,
                "num_attention_heads": 2, "max_position_embeddings": 32, "word_embed_proj_dim": 8, "dropout": 0.0}),
            serde_json::json!({"model_type": "llama", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32, "tie_word_embeddings": false}),
            serde_json::json!({"model_type": "gemma2", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "max_position_embeddings": 32,
                "final_logit_softcapping": 3.0, "attn_logit_softcapping": 50.0, "query_pre_attn_scalar": 8}),
        ];
        for cfg in configs {
            tch::manual_seed(3);
            let model = if cfg["model_type"] == "gpt2" {
                banter_model::Gpt2::new(banter_model::Gpt2Config::from_value(cfg.clone(), "test").unwrap(), Device::Cpu)
                    .into()
            } else {
                banter_model::lm::scratch_model(cfg.clone(), 40, 0, Device::Cpu, "test").unwrap()
            };
            let pass = Pass { train: true, compute: Kind::Float };
            let ids = Tensor::randint(40, [4, 7], (Kind::Int64, Device::Cpu));
            let labels = ids.copy();
            let _ = labels.narrow(1, 0, 3).fill_(-100);
            let _ = labels.narrow(0, 3, 1).narrow(1, 5, 2).fill_(-100);
            let weights = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25]);
            let f = |s: &Tensor, n: &Tensor| {
                (s * &weights).sum(Kind::Float) + (s / n.clamp_min(1.0)).square().sum(Kind::Float)
            };
            zero(&model);
            let (s1, n1) = autograd_logps(&model, &ids, &labels, pass);
            f(&s1, &n1).backward();
            let g1 = grads(&model);
            zero(&model);
            let (s2, n2) = logps_backward(&model, &ids, &labels, pass, f);
            let g2 = grads(&model);
            let (s3, _) = sequence_logps(&model, &ids, &labels, pass);
            // fp32 rounding, relative to the values' size (Gemma's √hidden-scaled embeddings have large gradients).
            let close = |a: &Tensor, b: &Tensor| {
                (a - b).abs().max().double_value(&[]) < 1e-5 * (1.0 + a.abs().max().double_value(&[]))
            };
            assert!(close(&s1.detach(), &s2) && close(&s2, &s3) && close(&n1, &n2), "{cfg}");
            assert_eq!(g1.len(), g2.len());
            for (a, b) in g1.iter().zip(&g2) {
                assert!(close(a, b), "{cfg}: {:?}", (a - b).abs().max());
            }
        }
    }
}
