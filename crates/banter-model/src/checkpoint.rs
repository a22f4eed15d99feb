//! Gradient checkpointing (`banter-train --gradient-checkpointing`): the forward pass keeps only each
//! block's input; the backward pass recomputes one block at a time, from the last to the first, and runs
//! autograd through it with the gradient of its output. Peak memory holds one block's activations instead
//! of every block's, for one more forward pass of the blocks.
//!
//! Dropout stays exact: every training pass (checkpointed or not) seeds libtorch's generator per block from
//! one number drawn at the start of the pass ([`BlockSeeds`]), so a recomputed block draws the masks its
//! first pass drew, and a checkpointed step computes the loss and gradients of the plain step (tested
//! within float rounding). The generator is left in the same state after either kind of step.

use tch::{Kind, Tensor};

use crate::Pass;

/// Per-block seeds of one training pass (no-ops outside training).
#[derive(Debug, Clone, Copy)]
pub struct BlockSeeds {
    base: Option<i64>,
    blocks: usize,
}

impl BlockSeeds {
    /// Draws the pass's base seed from libtorch's generator (training only).
    pub fn draw(train: bool, blocks: usize) -> Self {
        let base = train.then(|| Tensor::randint(1 << 40, [1], (Kind::Int64, tch::Device::Cpu)).int64_value(&[0]));
        BlockSeeds { base, blocks }
    }

    fn seed(&self, k: usize) {
        if let Some(b) = self.base {
            tch::manual_seed(b + k as i64);
        }
    }

    /// Before block `i`.
    pub fn block(&self, i: usize) {
        self.seed(i);
    }

    /// Before the embeddings' dropout.
    pub fn embed(&self) {
        self.seed(self.blocks + 1);
    }

    /// After the pass: the generator's state depends on the base seed only.
    pub fn done(&self) {
        self.seed(self.blocks);
    }
}

/// A model cut into embeddings, blocks and the final norm, for [`loss_backward`].
pub(crate) trait Segments {
    /// What every block needs besides its input (masks, rotary tables), computed once per pass.
    type Ctx;
    /// The residual stream entering block 0 (with autograd to the embeddings when they learn), dropout
    /// included (`seeds.embed()` before it).
    fn seg_embed(&self, ids: &Tensor, pass: Pass, seeds: &BlockSeeds) -> (Tensor, Self::Ctx);
    /// Number of blocks.
    fn seg_blocks(&self) -> usize;
    /// Block `i`.
    fn seg_block(&self, i: usize, x: &Tensor, ctx: &Self::Ctx, pass: Pass) -> Tensor;
    /// The final norm (and projections) after the last block: the hidden states the head reads.
    fn seg_finish(&self, x: &Tensor, pass: Pass) -> Tensor;
}

/// Forward and backward with recomputation: `head(hidden)` computes the loss from the final hidden states
/// and runs backward from them (the fused head); returns what it returns.
pub(crate) fn loss_backward<S: Segments, R>(m: &S, ids: &Tensor, pass: Pass, head: impl FnOnce(&Tensor) -> R) -> R {
    let blocks = m.seg_blocks();
    let seeds = BlockSeeds::draw(pass.train, blocks);
    // Forward: only each block's input is kept.
    let (ctx, mut inputs) = {
        let _g = tch::no_grad_guard();
        let (x0, ctx) = m.seg_embed(ids, pass, &seeds);
        let mut inputs = Vec::with_capacity(blocks + 1);
        inputs.push(x0);
        for i in 0..blocks {
            seeds.block(i);
            let y = m.seg_block(i, &inputs[i], &ctx, pass);
            inputs.push(y);
        }
        (ctx, inputs)
    };
    let last = inputs
        .pop()
        .map(|x| x.detach().set_requires_grad(true))
        .unwrap_or_else(|| Tensor::zeros([0], (Kind::Float, ids.device())));
    let h = m.seg_finish(&last, pass);
    let out = head(&h);
    drop(h);
    let mut grad = last.grad();
    drop(last);
    // Backward, one block at a time from the last.
    for i in (0..blocks).rev() {
        let x = inputs.pop().unwrap_or_else(|| Tensor::zeros([0], (Kind::Float, ids.device())));
        if !grad.defined() {
            break;
        }
        let x = x.detach().set_requires_grad(true);
        seeds.block(i);
        let y = m.seg_block(i, &x, &ctx, pass);
        (&y * &grad).sum(Kind::Float).backward();
        grad = x.grad();
    }
    // The embeddings, when they learn.
    if grad.defined() {
        let (x0, _) = m.seg_embed(ids, pass, &seeds);
        if x0.requires_grad() {
            (&x0 * &grad).sum(Kind::Float).backward();
        }
    }
    seeds.done();
    out
}

impl Segments for crate::Gpt2 {
    type Ctx = ();
    fn seg_embed(&self, ids: &Tensor, pass: Pass, seeds: &BlockSeeds) -> (Tensor, ()) {
        let t = ids.size()[1];
        let pos = Tensor::arange(t, (Kind::Int64, ids.device()));
        let x = Tensor::embedding(&self.wte, ids, -1, false, false)
            + Tensor::embedding(&self.wpe, &pos, -1, false, false).unsqueeze(0);
        seeds.embed();
        (crate::dropout::dropout(&x, self.cfg.embd_pdrop, pass.train), ())
    }
    fn seg_blocks(&self) -> usize {
        self.blocks.len()
    }
    fn seg_block(&self, i: usize, x: &Tensor, _: &(), pass: Pass) -> Tensor {
        self.block(i, x.shallow_clone(), None, 0, None, pass)
    }
    fn seg_finish(&self, x: &Tensor, _: Pass) -> Tensor {
        self.ln_f.forward(x, self.cfg.layer_norm_epsilon)
    }
}

impl Segments for crate::llama::Llama {
    type Ctx = crate::llama::LlamaCtx;
    fn seg_embed(&self, ids: &Tensor, _: Pass, seeds: &BlockSeeds) -> (Tensor, Self::Ctx) {
        seeds.embed();
        (self.embed_pass(ids), self.pass_ctx(ids, 0, &[]))
    }
    fn seg_blocks(&self) -> usize {
        self.n_blocks()
    }
    fn seg_block(&self, i: usize, x: &Tensor, ctx: &Self::Ctx, pass: Pass) -> Tensor {
        self.block(i, x, ctx, None, pass)
    }
    fn seg_finish(&self, x: &Tensor, _: Pass) -> Tensor {
        self.final_norm(x)
    }
}

impl Segments for crate::opt::Opt {
    type Ctx = Option<Tensor>;
    fn seg_embed(&self, ids: &Tensor, pass: Pass, seeds: &BlockSeeds) -> (Tensor, Self::Ctx) {
        self.embed_pass(ids, 0, &[], pass, seeds)
    }
    fn seg_blocks(&self) -> usize {
        self.n_blocks()
    }
    fn seg_block(&self, i: usize, x: &Tensor, mask: &Self::Ctx, pass: Pass) -> Tensor {
        self.block(i, x, mask.as_ref(), None, pass)
    }
    fn seg_finish(&self, x: &Tensor, pass: Pass) -> Tensor {
        self.finish_pass(x, pass)
    }
}

impl crate::Lm {
    /// Runs `head` on the final hidden states of `ids` (`[B, T, E]`, attached to the graph); `head` must run
    /// the backward pass from them (as the fused heads do). With `checkpointed`, only each block's input is
    /// kept through the forward pass and the blocks are recomputed one at a time during the backward pass.
    pub fn backward_from_hidden<R>(
        &self,
        ids: &Tensor,
        pass: Pass,
        checkpointed: bool,
        head: impl FnOnce(&Tensor) -> R,
    ) -> R {
        if !checkpointed {
            return head(&self.hidden(ids, pass));
        }
        match self {
            crate::Lm::Gpt2(m) => loss_backward(m, ids, pass, head),
            crate::Lm::Llama(m) => loss_backward(m, ids, pass, head),
            crate::Lm::Opt(m) => loss_backward(m, ids, pass, head),
        }
    }

    /// [`crate::Lm::loss_backward`] with gradient checkpointing: the same loss and gradients (to float
    /// rounding), one block's activations alive at a time.
    pub fn loss_backward_checkpointed(&self, ids: &Tensor, labels: &Tensor, pass: Pass, loss_mul: f64) -> (f64, i64) {
        let (w, cap) = (self.output_weight(), self.logit_softcap());
        self.backward_from_hidden(ids, pass, true, |h| {
            crate::head::fused_loss_backward(h, &w, cap, labels, pass.compute, loss_mul)
        })
    }
}

#[cfg(test)]
mod tests;
