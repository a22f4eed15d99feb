//! Holding any family's weights for inference: bf16/fp16 matrices, int8 or q4 matrices (banter's own
//! kernels, [`crate::quant`]), and generation steppers in the chosen precision.

use tch::{Kind, Tensor};

use crate::generate::Stepper;
use crate::gpt2::Gpt2;
use crate::linear::Linear;
use crate::lm::Lm;
use crate::quant::{Int8Weight, Scheme};

fn cast(t: &mut Tensor, kind: Kind) {
    let c = t.to_kind(kind);
    t.set_data(&c);
}

fn quantize(l: &mut Linear, scheme: Scheme) -> i64 {
    let q = Int8Weight::quantize(&l.w, scheme);
    let bytes = q.bytes();
    l.int8 = Some(q);
    // Nothing reads the fp32 matrix any more: keep a 1-element placeholder.
    let empty = Tensor::zeros([1, 1], (Kind::Float, l.w.device()));
    l.w.set_data(&empty);
    bytes
}

impl Lm {
    /// Converts the matrices (linear layers, token embeddings, output head) to `kind` (bf16 or fp16) for
    /// inference; norms, biases and positions stay fp32, and passes then compute in `kind`. LoRA must be
    /// merged first.
    pub fn to_half_weights(&mut self, kind: Kind) {
        self.cast_matrices(kind, true);
    }

    /// The frozen base of a LoRA run held in `kind` (bf16): its matrices are never trained, so each pass
    /// reads them in the compute precision instead of casting them from fp32 — less memory and exactly the
    /// numbers a cast per pass gave. The linear layers and an untied output head are held in `kind`; the
    /// token embeddings stay fp32, since their rows are looked up in fp32 (and trained when the vocabulary
    /// grew), as does a head tied to them. With `tokens_trained` an untied head (trained too) stays fp32.
    /// Norms, biases, positions and the LoRA branches stay fp32.
    pub fn hold_frozen_base_in(&mut self, kind: Kind, tokens_trained: bool) {
        let _g = tch::no_grad_guard();
        match self {
            Lm::Gpt2(m) => m.cast_matrices(kind, false),
            Lm::Llama(m) => {
                m.linears_mut().into_iter().for_each(|(_, l)| cast(&mut l.w, kind));
                if let Some(h) = m.head.as_mut().filter(|_| !tokens_trained) {
                    cast(h, kind);
                }
            }
            Lm::Opt(m) => m.linears_mut().into_iter().for_each(|(_, l)| cast(&mut l.w, kind)),
        }
    }

    /// Casts every linear/Conv1D matrix to `kind`, and the token embeddings and output head too when
    /// `tokens`.
    fn cast_matrices(&mut self, kind: Kind, tokens: bool) {
        let _g = tch::no_grad_guard();
        match self {
            Lm::Gpt2(m) => m.cast_matrices(kind, tokens),
            Lm::Llama(m) => {
                m.linears_mut().into_iter().for_each(|(_, l)| cast(&mut l.w, kind));
                if tokens {
                    cast(&mut m.embed, kind);
                    if let Some(h) = m.head.as_mut() {
                        cast(h, kind);
                    }
                }
            }
            Lm::Opt(m) => {
                m.linears_mut().into_iter().for_each(|(_, l)| cast(&mut l.w, kind));
                if tokens {
                    cast(&mut m.embed, kind);
                }
            }
        }
    }

    /// int8 copies of every linear layer and of the output head, used by fp32 inference passes from then
    /// on (the fp32 matrices are released; the embedding table stays for lookups). LoRA must be merged
    /// first. Returns the bytes of the int8 weights.
    pub fn quantize_int8(&mut self) -> i64 {
        self.quantize(Scheme::Int8)
    }

    /// As [`Lm::quantize_int8`] in `scheme`: with q4 the layers' matrices are 4-bit groups and the output
    /// head stays int8 (as llama.cpp keeps its output matrix at more bits).
    pub fn quantize(&mut self, scheme: Scheme) -> i64 {
        let _g = tch::no_grad_guard();
        match self {
            Lm::Gpt2(m) => m.quantize(scheme),
            Lm::Llama(m) => {
                let mut bytes: i64 = m.linears_mut().into_iter().map(|(_, l)| quantize(l, scheme)).sum();
                let head = Int8Weight::from_out_in(m.head.as_ref().unwrap_or(&m.embed));
                bytes += head.bytes();
                if let Some(h) = m.head.as_mut() {
                    h.set_data(&Tensor::zeros([1, 1], (Kind::Float, h.device())));
                }
                m.head_int8 = Some(head);
                bytes
            }
            Lm::Opt(m) => {
                let mut bytes: i64 = m.linears_mut().into_iter().map(|(_, l)| quantize(l, scheme)).sum();
                let head = Int8Weight::from_out_in(&m.embed);
                bytes += head.bytes();
                m.head_int8 = Some(head);
                bytes
            }
        }
    }

    /// Lays the weights out for generation and stops their gradients (see [`crate::Gpt2::prepare_for_decode`]).
    pub fn prepare_for_decode(&mut self) {
        match self {
            Lm::Gpt2(m) => m.prepare_for_decode(),
            Lm::Llama(m) => m.vs.freeze(),
            Lm::Opt(m) => m.vs.freeze(),
        }
    }

    /// A generation stepper computing in `compute` (fp32, or the kind the weights were converted to).
    pub fn stepper_in(&self, compute: Kind) -> Box<dyn Stepper + '_> {
        match self {
            // GPT-2 steps through banter's Rust decoder where it applies (fp32 or int8 on CPU).
            Lm::Gpt2(m) => crate::generate::gpt2_stepper(m, compute),
            m => Box::new(crate::cached::CachedStepper::with_compute(m.net(), compute)),
        }
    }
}

impl Lm {
    /// Samples a reply to `prompt` in `compute` (GPT-2 through its Rust decoder where it applies, the other
    /// families through their cached stepper); `on_text` gets each new piece and may stop the reply.
    #[allow(clippy::too_many_arguments)]
    pub fn generate(
        &self,
        prompt: &[u32],
        s: &crate::generate::Sampling,
        stop_ids: &[u32],
        stops: &[String],
        decode: &dyn Fn(&[u32]) -> String,
        compute: Kind,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> crate::generate::Output {
        let _g = tch::no_grad_guard();
        crate::generate::generate_with(&mut *self.stepper_in(compute), prompt, s, stop_ids, stops, decode, on_text)
    }

    /// Replies to several prompts in one left-padded batch, in order; row `i` sampled with `seeds[i]` (every
    /// row with `s.seed` when `seeds` is empty).
    #[allow(clippy::too_many_arguments)]
    pub fn generate_batch(
        &self,
        prompts: &[Vec<u32>],
        s: &crate::generate::Sampling,
        seeds: &[u64],
        stop_ids: &[u32],
        stops: &[String],
        decode: &dyn Fn(&[u32]) -> String,
        compute: Kind,
    ) -> Vec<crate::generate::Output> {
        crate::cached::generate_batch(self.net(), prompts, s, seeds, stop_ids, stops, decode, compute)
    }
}

impl Gpt2 {
    /// Adds int8 copies of every Conv1D weight and of the output projection, used by inference passes in
    /// fp32 from then on (the fp32 Conv1D weights are released; the embedding table stays fp32 for lookups).
    /// LoRA branches must be merged first. Returns the bytes of the int8 weights.
    pub fn quantize_int8(&mut self) -> i64 {
        self.quantize(Scheme::Int8)
    }

    /// As [`Gpt2::quantize_int8`] in `scheme` (q4: the Conv1D matrices in 4-bit groups, the head int8).
    pub fn quantize(&mut self, scheme: Scheme) -> i64 {
        let _g = tch::no_grad_guard();
        let mut bytes = 0;
        let head = Int8Weight::from_out_in(&self.wte);
        bytes += head.bytes();
        self.head_int8 = Some(head);
        for (_, l) in self.conv_layers_mut() {
            // Conv1D keeps `[in, out]`: the int8 copy is `[out, in]`.
            let q = Int8Weight::quantize(&l.w.tr(), scheme);
            bytes += q.bytes();
            l.int8 = Some(q);
            // Nothing reads the fp32 matrix any more: keep a 1-element placeholder of the right kind.
            let empty = Tensor::zeros([1, 1], (Kind::Float, l.w.device()));
            l.w.set_data(&empty);
        }
        bytes
    }
}
