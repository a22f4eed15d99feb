//! The training loss with the output projection and cross-entropy fused by hand.
//!
//! Autograd's version keeps, for a 50k vocabulary, the fp32 logits *and* the log-softmax of every position
//! alive until the backward pass, then makes three more `[rows, V]` passes (NLL backward, log-softmax
//! backward, the projection's two GEMMs). Here the rows go through in chunks of ≤ 128 MB of logits: logits → log-sum-exp
//! and the target logit (the loss) → the gradient `softmax − one-hot` made in place in the logits buffer (on the
//! CPU in one pass per row by `xent.rs`, fp32 or bf16) →
//! the two GEMMs (`∂h = G·W`, `∂W += Gᵀ·h`). In fp32 the chunks share one buffer kept between steps; nothing
//! `[B·T, V]`-sized is ever alive. Autograd then runs from the hidden states with `∂h` as their gradient, and `∂W` is added to
//! the tied embedding's gradient. Exact: the same loss and gradients as autograd to float rounding (tested).

use tch::{Kind, Tensor};

use crate::Pass;
use crate::gpt2::Gpt2;

impl Gpt2 {
    /// Forward and backward of the mean next-token cross-entropy (`-100` labels ignored), with the loss
    /// multiplied by `loss_mul` before differentiation (1/accumulation steps, × an fp16 loss scale).
    /// Gradients accumulate into the parameters' `.grad` as `loss.backward()` would.
    /// Returns (mean loss, number of target tokens).
    pub fn loss_backward(&self, ids: &Tensor, labels: &Tensor, pass: Pass, loss_mul: f64) -> (f64, i64) {
        // The token embeddings are looked up outside autograd and their gradient scattered into the
        // embedding's `.grad` by hand below: autograd's embedding backward builds a dense `[V, E]` zero
        // tensor every step (154 MB for GPT-2) only to add it to `.grad`.
        let train_wte = self.wte.requires_grad();
        let flat = ids.reshape([-1]);
        let tok = self.wte.detach().index_select(0, &flat).view([ids.size()[0], ids.size()[1], -1]);
        let tok = if train_wte { tok.set_requires_grad(true) } else { tok };
        let x = self.hidden_from(tok.shallow_clone(), ids, None, pass);
        let (b, t, e) = (x.size()[0], x.size()[1], x.size()[2]);
        let rows = b * (t - 1);
        let h = x.narrow(1, 0, t - 1).reshape([rows, e]);
        let y = labels.narrow(1, 1, t - 1).reshape([rows]).to_device(h.device());
        let n = y.ne(-100).sum(Kind::Int64).int64_value(&[]);
        if n == 0 {
            return (0.0, 0);
        }
        let compute = pass.compute;
        // ∂W of the projection accumulates straight into the embedding's gradient (made once).
        let grad_w = train_wte.then(|| wte_grad(&self.wte));
        let (grad_h, loss) = {
            let _g = tch::no_grad_guard();
            let (hd, w) = (h.detach().to_kind(compute), crate::castcache::cast(&self.wte, compute, true));
            let device = h.device();
            let scale = loss_mul / n as f64;
            head_chunks(&hd, &w, &y, None, compute, scale, grad_w.as_ref(), &|len| {
                Some(self.logits_buffer(len, device))
            })
        };
        // Autograd from the hidden states: d/dh Σ h·∂h = ∂h.
        let surrogate = (&h * grad_h.to_kind(h.kind())).sum(Kind::Float);
        surrogate.backward();
        if let Some(gw) = grad_w {
            let _g = tch::no_grad_guard();
            let gt = tok.grad();
            if gt.defined() {
                let mut gw = gw;
                let _ = gw.f_index_add_(0, &flat, &gt.reshape([-1, e]).to_kind(gw.kind()));
            }
        }
        (loss / n as f64, n)
    }
}

impl Gpt2 {
    /// A `[rows, V]` fp32 view of the logits buffer kept between steps: a fresh 128 MB buffer per chunk
    /// would be mapped and zeroed by the kernel each time (8% of a LoRA step on GPT-2 124M).
    fn logits_buffer(&self, rows: i64, device: tch::Device) -> Tensor {
        let want = head_chunk_rows(self.cfg.vocab_size) * self.cfg.vocab_size;
        let mut slot = self.head_scratch.borrow_mut();
        let fits =
            slot.as_ref().is_some_and(|b| b.device() == device && b.numel() as i64 >= rows * self.cfg.vocab_size);
        if !fits {
            *slot = Some(Tensor::empty([want.max(rows * self.cfg.vocab_size)], (Kind::Float, device)));
        }
        let buf = slot.as_ref().map(|b| b.shallow_clone()).unwrap_or_else(|| Tensor::empty([0], (Kind::Float, device)));
        buf.narrow(0, 0, rows * self.cfg.vocab_size).view([rows, self.cfg.vocab_size])
    }
}

/// Forward and backward of the mean next-token cross-entropy for any family, fused as [`Gpt2::loss_backward`]
/// does it: `hidden` `[B, T, E]` (attached to the graph), the output projection `w` `[V, E]` and, for Gemma 2,
/// the final soft cap `z = cap·tanh(u/cap)` (its derivative `1 − (z/cap)²` folded into the gradient). The
/// logits exist one chunk of ≤ 128 MB at a time; `∂W` accumulates into `w.grad` when `w` learns (a full
/// fine-tune, or embeddings grown for new tokens), and autograd runs from the hidden states. The loss is
/// multiplied by `loss_mul` before differentiation. Returns (mean loss, number of target tokens).
pub fn fused_loss_backward(
    hidden: &Tensor,
    w: &Tensor,
    cap: Option<f64>,
    labels: &Tensor,
    compute: Kind,
    loss_mul: f64,
) -> (f64, i64) {
    let (b, t, e) = (hidden.size()[0], hidden.size()[1], hidden.size()[2]);
    let rows = b * (t - 1);
    let h = hidden.narrow(1, 0, t - 1).reshape([rows, e]);
    let y = labels.narrow(1, 1, t - 1).reshape([rows]).to_device(h.device());
    let n = y.ne(-100).sum(Kind::Int64).int64_value(&[]);
    if n == 0 {
        return (0.0, 0);
    }
    let grad_w = w.requires_grad().then(|| wte_grad(w));
    let (grad_h, loss) = {
        let _g = tch::no_grad_guard();
        let (hd, wd) = (h.detach().to_kind(compute), crate::castcache::cast(w, compute, true));
        head_chunks(&hd, &wd, &y, cap, compute, loss_mul / n as f64, grad_w.as_ref(), &|_| None)
    };
    // Autograd from the hidden states: d/dh Σ h·∂h = ∂h.
    (&h * grad_h.to_kind(h.kind())).sum(Kind::Float).backward();
    (loss / n as f64, n)
}

/// The chunk loop both fused heads share. For rows `hd` `[rows, E]` and targets `y` (−100: not scored), the
/// projection `wd` `[V, E]` (both already in `compute`), an optional final soft cap, and the loss scale:
/// per chunk of ≤ 128 MB of fp32 logits, the summed loss, then `softmax − one-hot` (times the cap's
/// derivative) made in place in the logits, `∂h = G·W` into the returned `[rows, E]` fp32 tensor and, when
/// the projection learns, `∂W += Gᵀ·h` into `grad_w`. `logits_buffer(len)` may lend a kept `[len, V]` fp32
/// buffer (used in fp32 only). Returns (∂h, summed loss over scored rows).
#[allow(clippy::too_many_arguments)]
fn head_chunks(
    hd: &Tensor,
    wd: &Tensor,
    y: &Tensor,
    cap: Option<f64>,
    compute: Kind,
    scale: f64,
    grad_w: Option<&Tensor>,
    logits_buffer: &dyn Fn(i64) -> Option<Tensor>,
) -> (Tensor, f64) {
    let (rows, e) = (hd.size()[0], hd.size()[1]);
    let fp32 = compute == Kind::Float;
    let grad_h = Tensor::zeros([rows, e], (Kind::Float, hd.device()));
    let chunk = head_chunk_rows(wd.size()[0]);
    let mut loss = Tensor::zeros([], (Kind::Double, hd.device()));
    let mut kernel_loss = 0f64;
    // The targets on the host, for the one-pass kernel (`xent.rs`; CPU, no soft cap).
    let targets = (cap.is_none() && hd.device() == tch::Device::Cpu).then(|| Vec::<i64>::try_from(y).ok()).flatten();
    let mut start = 0;
    while start < rows {
        let len = chunk.min(rows - start);
        let hc = hd.narrow(0, start, len);
        let yc = y.narrow(0, start, len);
        let mut logits = match logits_buffer(len).filter(|_| fp32) {
            Some(buf) => {
                let _ = hc.mm_out(&buf, &wd.tr());
                buf
            }
            None => hc.matmul(&wd.tr()),
        };
        let fused = targets.as_ref().and_then(|t| {
            crate::xent::softmax_xent_grad_(&mut logits, &t[start as usize..(start + len) as usize], scale as f32)
        });
        let gc = match fused {
            Some(l) => {
                kernel_loss += l;
                logits
            }
            None => {
                let (gc, l) = xent_torch(logits.to_kind(Kind::Float), &yc, cap, scale, compute);
                loss += l;
                gc
            }
        };
        let mut gh = grad_h.narrow(0, start, len);
        if fp32 {
            let _ = gc.mm_out(&gh, wd);
        } else {
            gh.copy_(&gc.matmul(wd));
        }
        if let Some(gw) = grad_w {
            let mut gw = gw.shallow_clone();
            if fp32 {
                let _ = gw.f_addmm_(&gc.tr(), &hc);
            } else {
                let _ = gw.f_add_(&gc.tr().matmul(&hc).to_kind(gw.kind()));
            }
        }
        start += len;
    }
    (grad_h, loss.double_value(&[]) + kernel_loss)
}

/// libtorch's softmax cross-entropy over fp32 `logits` `[len, V]` (in place) for targets `yc` (−100: not
/// scored), with Gemma 2's optional soft cap: the gradient `scale · (softmax − one-hot)` (times the cap's
/// derivative) in `compute`, and the summed loss as a 0-dim fp64 tensor (no host sync).
pub fn xent_torch(mut logits: Tensor, yc: &Tensor, cap: Option<f64>, scale: f64, compute: Kind) -> (Tensor, Tensor) {
    let valid = yc.ne(-100).to_kind(Kind::Float).unsqueeze(1);
    let target = yc.clamp_min(0).unsqueeze(1);
    // Gemma 2: the capped logits, and the cap's derivative for the gradient.
    let dcap = cap.map(|c| {
        logits = (&logits / c).tanh() * c;
        1.0 - (&logits / c).square()
    });
    let picked = logits.gather(1, &target, false);
    let max = logits.amax([1], true);
    let _ = logits.f_sub_(&max);
    let _ = logits.f_exp_();
    let sum = logits.sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
    let loss = ((max + sum.log() - picked) * &valid).sum(Kind::Double);
    // softmax − one-hot, scaled, in place; masked rows get zero.
    let row_scale = valid * scale;
    let _ = logits.f_mul_(&(&row_scale / sum));
    let _ = logits.f_scatter_add_(1, &target, &(-row_scale));
    if let Some(d) = dcap {
        let _ = logits.f_mul_(&d);
    }
    (logits.to_kind(compute), loss)
}

/// The `.grad` of `w`, created (zeros) if it does not exist yet; later steps reuse it (the optimizer zeroes
/// it in place). Hand-made gradients (the fused heads) accumulate into it.
pub fn wte_grad(w: &Tensor) -> Tensor {
    let g = w.grad();
    if g.defined() {
        return g;
    }
    // d/dW (0 · ΣW) = 0: autograd allocates the gradient tensor.
    (w.sum(Kind::Float) * 0.0).backward();
    w.grad()
}

/// Rows of logits computed at once by the losses: up to 32 M logits (128 MB in fp32). Smaller chunks
/// stream the `[V, E]` projection through the caches once per chunk, three times per step: on a 2-core AVX2
/// EPYC, 83-row chunks ran the 124M head at 61 GFLOP/s, 254 rows at 92, 512 at 106.
pub fn head_chunk_rows(vocab: i64) -> i64 {
    ((32 << 20) / vocab.max(1)).clamp(16, 1 << 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Gpt2Config;
    use crate::lora::LoraConfig;

    fn model() -> Gpt2 {
        crate::gpt2::test_model(2, Gpt2Config::new(97, 32, 24, 2, 2))
    }

    fn grads(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(n, t)| {
                let g = t.grad();
                (n, if g.defined() { g.copy() } else { t.zeros_like() })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn zero(vs: &tch::nn::VarStore) {
        for t in vs.trainable_variables() {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
    }

    fn check(m: &Gpt2, vs: &tch::nn::VarStore, pass: Pass, tol: f64) {
        let ids = Tensor::from_slice(&[1i64, 5, 9, 3, 7, 2, 4, 4, 60, 61, 62, 96]).view([2, 6]);
        let labels = Tensor::from_slice(&[1i64, -100, 9, 3, 7, 2, 4, 4, -100, 61, 62, 96]).view([2, 6]);
        zero(vs);
        let (want, n) = m.loss(&ids, &labels, pass);
        (&want * 0.5).backward();
        let g_auto = grads(vs);
        zero(vs);
        let (got, n2) = m.loss_backward(&ids, &labels, pass, 0.5);
        let g_fused = grads(vs);
        assert_eq!(n, n2);
        let want = want.double_value(&[]);
        assert!((want - got).abs() < tol * want.abs().max(1.0), "loss {want} vs {got}");
        assert_eq!(g_auto.len(), g_fused.len());
        for ((na, a), (_, b)) in g_auto.iter().zip(&g_fused) {
            let scale = a.abs().max().double_value(&[]).max(1e-3);
            let d = (a - b).abs().max().double_value(&[]) / scale;
            assert!(d < tol, "{na}: relative gradient difference {d}");
        }
    }

    /// The generic head on Llama-family models (tied, untied, Gemma 2's soft cap) and OPT: the loss and every
    /// gradient equal autograd through the full logits.
    #[test]
    fn fused_head_of_every_family_matches_autograd() {
        let base = serde_json::json!({"vocab_size": 61, "hidden_size": 16, "intermediate_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 32});
        let shapes = [
            serde_json::json!({"model_type": "llama"}),
            serde_json::json!({"model_type": "qwen2", "tie_word_embeddings": true}),
            serde_json::json!({"model_type": "gemma2", "head_dim": 8, "sliding_window": 4,
                "query_pre_attn_scalar": 8, "final_logit_softcapping": 2.0}),
            serde_json::json!({"model_type": "phi3", "partial_rotary_factor": 0.5}),
            serde_json::json!({"model_type": "opt", "ffn_dim": 32}),
        ];
        let ids = Tensor::from_slice(&[1i64, 5, 9, 3, 7, 2, 4, 4, 60, 33, 12, 40]).view([2, 6]);
        let labels = Tensor::from_slice(&[1i64, -100, 9, 3, 7, 2, 4, 4, -100, 33, 12, 40]).view([2, 6]);
        for extra in shapes {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let m = crate::Lm::scratch(v, 61, 0, tch::Device::Cpu, "test").unwrap();
            {
                let _g = tch::no_grad_guard();
                for (_, mut t) in m.vs().variables() {
                    let _ = t.uniform_(-0.5, 0.5);
                }
            }
            zero(m.vs());
            let (want, n) = m.loss(&ids, &labels, Pass::eval());
            (&want * 0.5).backward();
            let g_auto = grads(m.vs());
            zero(m.vs());
            let (got, n2) = m.loss_backward(&ids, &labels, Pass::eval(), 0.5);
            let g_fused = grads(m.vs());
            assert_eq!(n, n2);
            let want = want.double_value(&[]);
            assert!((want - got).abs() < 1e-5 * want.abs().max(1.0), "{}: loss {want} vs {got}", m.model_type());
            for ((na, a), (_, b)) in g_auto.iter().zip(&g_fused) {
                let scale = a.abs().max().double_value(&[]).max(1e-3);
                let d = (a - b).abs().max().double_value(&[]) / scale;
                assert!(d < 1e-4, "{} {na}: relative gradient difference {d}", m.model_type());
            }
        }
    }

    #[test]
    fn fused_head_matches_autograd_full_model() {
        let m = model();
        check(&m, &m.vs, Pass::eval(), 1e-4);
    }

    #[test]
    fn fused_head_matches_autograd_in_bf16() {
        let m = model();
        check(&m, &m.vs, Pass { train: false, compute: Kind::BFloat16 }, 3e-2);
    }

    #[test]
    fn fused_head_matches_autograd_with_lora() {
        let mut m = model();
        m.attach_lora(&LoraConfig { dropout: 0.0, ..Default::default() });
        {
            let _g = tch::no_grad_guard();
            for (_, l) in m.conv_layers_mut() {
                if let Some(p) = &mut l.lora {
                    let _ = p.b.uniform_(-0.1, 0.1);
                }
            }
        }
        let vs = m.lora_vs.take().unwrap();
        check(&m, &vs, Pass::eval(), 1e-4);
        assert!(!m.wte.requires_grad(), "frozen embeddings get no gradient");
        m.lora_vs = Some(vs);
    }
}
