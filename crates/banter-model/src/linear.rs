//! `nn.Linear` as the Hub families (`llama.rs`, `opt.rs`) use it: weight `[out, in]`, optional bias, and an
//! optional LoRA branch as PEFT attaches it to a Linear layer (`fan_in_fan_out: false`). In bf16 compute the
//! input and weight are cast and the output stays bf16, as autocast does.

use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use crate::lora::LoraPair;
use crate::quant::Int8Weight;
use crate::varsource::VarSource;

/// A linear layer with an optional LoRA branch.
#[derive(Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub w: Tensor,
    /// `[out]`, when the layer has one.
    pub b: Option<Tensor>,
    /// LoRA adapter on this layer.
    pub lora: Option<LoraPair>,
    /// int8 copy of the weight for inference ([`crate::lm::Lm::quantize_int8`]).
    pub int8: Option<Int8Weight>,
}

impl Linear {
    /// A layer under `p` (`p/weight`, `p/bias`) initialised as transformers initialises the families:
    /// weights N(0, `std`), biases 0.
    pub fn new(p: nn::Path<'_>, n_in: i64, n_out: i64, bias: bool, std: f64) -> Self {
        Self::build(p, n_in, n_out, bias, std, &VarSource::random())
    }

    /// As [`Linear::new`], the variables taken from `src` (a checkpoint's, or random).
    pub fn build(p: nn::Path<'_>, n_in: i64, n_out: i64, bias: bool, std: f64, src: &VarSource) -> Self {
        Linear {
            w: src.var(&p, "weight", &[n_out, n_in], Init::Randn { mean: 0.0, stdev: std }),
            b: bias.then(|| src.var(&p, "bias", &[n_out], Init::Const(0.0))),
            lora: None,
            int8: None,
        }
    }

    /// Output width.
    pub fn n_out(&self) -> i64 {
        self.int8.as_ref().map_or_else(|| self.w.size()[0], |q| q.n_out() as i64)
    }

    /// Input width.
    pub fn n_in(&self) -> i64 {
        self.int8.as_ref().map_or_else(|| self.w.size()[1], |q| q.n_in() as i64)
    }

    /// `x·Wᵀ + b` (+ LoRA) in `compute` (fp32 or bf16).
    pub fn forward(&self, x: &Tensor, compute: Kind, train: bool) -> Tensor {
        let size = x.size();
        if self.lora.is_some() && size.len() != 2 {
            // LoRA adds its branch into the base's 2-D output in place (`LoraPair::add_to`).
            let n_in = *size.last().unwrap_or(&1);
            let y = self.forward(&x.reshape([-1, n_in]), compute, train);
            let mut shape = size[..size.len().saturating_sub(1)].to_vec();
            shape.push(y.size()[1]);
            return y.view(shape.as_slice());
        }
        // `x` in `compute` when the bf16 branch below makes it, for LoRA's branch to reuse.
        let mut cast_x = None;
        let out = if let Some(q) = self.int8.as_ref().filter(|_| compute == Kind::Float && !train) {
            let y = q.matmul_t(x);
            match &self.b {
                Some(b) => y + b,
                None => y,
            }
        } else if compute == Kind::Float && x.kind() == Kind::Float {
            match (!train).then(|| crate::decode::linear_rows(&self.w, self.b.as_ref(), x)).flatten() {
                Some(y) => y,
                None => x.linear(&self.w, self.b.as_ref()),
            }
        } else if let Some(y) = (!train && self.w.kind() == Kind::BFloat16)
            .then(|| crate::bf16::linear_rows_bf16(&self.w, self.b.as_ref(), x))
            .flatten()
        {
            // bf16 weights while decoding: banter's kernel (half the bytes of fp32, no spinning GEMV).
            y.to_kind(compute)
        } else {
            let xc = if x.kind() == compute { x.shallow_clone() } else { x.to_kind(compute) };
            let b = self.b.as_ref().map(|b| crate::castcache::cast(b, compute, false));
            let y = xc.linear(&crate::castcache::cast(&self.w, compute, false), b.as_ref());
            cast_x = Some(xc);
            y
        };
        match &self.lora {
            Some(l) => l.add_to(out, x, cast_x.as_ref(), compute, train),
            None => out,
        }
    }
}

impl crate::lora::LoraTarget for Linear {
    fn in_out(&self) -> (i64, i64) {
        (self.n_in(), self.n_out())
    }
    fn lora_slot(&mut self) -> &mut Option<LoraPair> {
        &mut self.lora
    }
    fn add_to_weight(&mut self, delta: &Tensor) {
        let merged = &self.w + delta.to_kind(self.w.kind());
        self.w.set_data(&merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_is_x_wt_plus_b_and_merging_keeps_outputs() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut l = Linear::new(vs.root().sub("l"), 6, 4, true, 0.5);
        let x = Tensor::randn([3, 6], (Kind::Float, tch::Device::Cpu));
        let want = x.matmul(&l.w.tr()) + l.b.as_ref().unwrap();
        assert!(l.forward(&x, Kind::Float, false).allclose(&want, 1e-6, 1e-6, false));
        let cfg = crate::lora::LoraConfig { dropout: 0.0, targets: vec!["l".into()], ..Default::default() };
        let (lvs, n) = crate::lora::attach(vec![("l".into(), &mut l)], &cfg, tch::Device::Cpu);
        assert_eq!(n, 1);
        assert!(lvs.variables().contains_key("base_model.model.l.lora_A.weight"));
        {
            let _g = tch::no_grad_guard();
            let _ = l.lora.as_mut().unwrap().b.uniform_(-0.3, 0.3);
        }
        let adapted = l.forward(&x, Kind::Float, false);
        assert!(!adapted.allclose(&want, 1e-4, 1e-4, false));
        crate::lora::merge(vec![("l".into(), &mut l)]);
        assert!(l.forward(&x, Kind::Float, false).allclose(&adapted, 1e-5, 1e-5, false));
        let bf = l.forward(&x, Kind::BFloat16, false);
        assert_eq!(bf.kind(), Kind::BFloat16);
        assert!(bf.to_kind(Kind::Float).allclose(&adapted, 5e-2, 5e-2, false));
    }
}
