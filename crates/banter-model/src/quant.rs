//! int8 weights for inference (`banter-chat --quantize int8`): each output channel of a matrix is scaled by
//! its largest magnitude / 127 and rounded (symmetric, per channel); activations stay fp32. The product goes
//! through libtorch's `_weight_int8pack_mm` (int8 weights dequantized in registers, fp32 accumulation), so a
//! generated token reads a quarter of the bytes of fp32. Greedy output drifts from fp32's only where two
//! candidates are within the rounding error (tested on a model; see docs/chat.md).

use tch::{Kind, Tensor};

use crate::gpt2::Gpt2;

/// A weight `[out, in]` as int8 with one fp32 scale per output channel.
#[derive(Debug)]
pub struct Int8Weight {
    /// `[out, in]`, int8.
    pub q: Tensor,
    /// `[out]`, fp32.
    pub scales: Tensor,
}

impl Int8Weight {
    /// Quantizes `w` given as `[out, in]`.
    pub fn from_out_in(w: &Tensor) -> Self {
        let _g = tch::no_grad_guard();
        let w = w.to_kind(Kind::Float);
        let absmax = w.abs().amax([1], true).clamp_min(1e-8);
        let scales = &absmax / 127.0;
        let q = (&w / &scales).round().clamp(-127.0, 127.0).to_kind(Kind::Int8).contiguous();
        Int8Weight { q, scales: scales.squeeze_dim(1).contiguous() }
    }

    /// `x·Wᵀ` for `x [.., in]` (fp32): `[.., out]`.
    pub fn matmul_t(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let n_in = *size.last().unwrap_or(&1);
        let x2 = x.reshape([-1, n_in]).to_kind(Kind::Float).contiguous();
        let y = x2.internal_weight_int8pack_mm(&self.q, &self.scales);
        let mut shape = size[..size.len() - 1].to_vec();
        shape.push(self.q.size()[0]);
        y.view(shape.as_slice())
    }

    /// Bytes held.
    pub fn bytes(&self) -> i64 {
        self.q.numel() as i64 + 4 * self.scales.numel() as i64
    }
}

impl Gpt2 {
    /// Adds int8 copies of every Conv1D weight and of the output projection, used by inference passes in
    /// fp32 from then on (the fp32 Conv1D weights are released; the embedding table stays fp32 for lookups).
    /// LoRA branches must be merged first. Returns the bytes of the int8 weights.
    pub fn quantize_int8(&mut self) -> i64 {
        let _g = tch::no_grad_guard();
        let mut bytes = 0;
        let head = Int8Weight::from_out_in(&self.wte);
        bytes += head.bytes();
        self.head_int8 = Some(head);
        for (_, l) in self.conv_layers_mut() {
            // Conv1D keeps `[in, out]`: the int8 copy is `[out, in]`.
            let q = Int8Weight::from_out_in(&l.w.tr());
            bytes += q.bytes();
            l.int8 = Some(q);
            // Nothing reads the fp32 matrix any more: keep a 1-element placeholder of the right kind.
            let empty = Tensor::zeros([1, 1], (Kind::Float, l.w.device()));
            l.w.set_data(&empty);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_matmul_is_close_to_fp32() {
        tch::manual_seed(4);
        let w = Tensor::randn([48, 64], (Kind::Float, tch::Device::Cpu));
        let x = Tensor::randn([3, 64], (Kind::Float, tch::Device::Cpu));
        let q = Int8Weight::from_out_in(&w);
        let want = x.matmul(&w.tr());
        let got = q.matmul_t(&x);
        let rel = ((&want - &got).abs().max() / want.abs().max()).double_value(&[]);
        assert!(rel < 0.02, "{rel}");
        assert_eq!(q.q.kind(), Kind::Int8);
        assert_eq!(q.bytes(), 48 * 64 + 48 * 4);
    }
}
