//! AdamW (decoupled weight decay, bias-corrected), with its moments kept as named tensors so a checkpoint
//! can save and restore them exactly; and the warmup + cosine learning-rate schedule.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

/// One parameter and its optimizer state.
#[derive(Debug)]
struct Slot {
    name: String,
    param: Tensor,
    /// Where the gradient is, when it is not `param.grad()` (ZeRO-1: a view of the model's gradient).
    grad: Option<Tensor>,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

impl Slot {
    fn grad(&self) -> Tensor {
        match &self.grad {
            Some(g) => g.shallow_clone(),
            None => self.param.grad(),
        }
    }
}

/// AdamW over a set of named parameters.
///
/// On CPU, fp32 contiguous parameters are updated by one fused pass ([`fused`]): it reads the parameter,
/// gradient and both moments once, writes them once and zeroes the gradient in the same pass, where the
/// tensor-op formulation makes ~10 passes and parameter-sized temporaries (libtorch's `_fused_adamw_` does
/// the same, but tch does not bind it). The clipping factor and an fp16 loss scale are folded into that pass
/// too. Elsewhere (CUDA, other dtypes) the update is made of in-place tensor ops; both give the same numbers
/// to float rounding.
#[derive(Debug)]
pub struct AdamW {
    slots: Vec<Slot>,
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay (applied to parameters with `decay`).
    pub weight_decay: f64,
    /// Steps taken.
    pub step: i64,
    /// Factor the gradients are multiplied by in the next step (clipping × loss-scale inverse).
    grad_mul: f64,
    /// Use the fused CPU pass where it applies (on by default; off to compare).
    pub fused: bool,
}

impl AdamW {
    /// An optimizer over `(name, tensor, decay)` parameters.
    pub fn new(params: Vec<(String, Tensor, bool)>, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param, decay)| {
                let m = param.zeros_like();
                let v = param.zeros_like();
                Slot { name, param, grad: None, m, v, decay }
            })
            .collect();
        AdamW { slots, beta1, beta2, eps, weight_decay, step: 0, grad_mul: 1.0, fused: true }
    }

    /// An optimizer over `(name, parameter, gradient, decay)`: each parameter (a view into a model's tensor,
    /// updated in place) with its gradient given rather than read from `.grad` (ZeRO-1's shares).
    pub fn with_grads(
        params: Vec<(String, Tensor, Tensor, bool)>,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    ) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param, grad, decay)| {
                let (m, v) = (param.zeros_like(), param.zeros_like());
                Slot { name, param, grad: Some(grad), m, v, decay }
            })
            .collect();
        AdamW { slots, beta1, beta2, eps, weight_decay, step: 0, grad_mul: 1.0, fused: true }
    }

    /// The L2 norm of all gradients times `unscale` (1, or 1/loss-scale for fp16).
    pub fn grad_norm(&self, unscale: f64) -> f64 {
        let _g = tch::no_grad_guard();
        let norms: Vec<Tensor> = self.slots.iter().map(Slot::grad).filter(|g| g.defined()).map(|g| g.norm()).collect();
        if norms.is_empty() {
            return 0.0;
        }
        let norm = Tensor::stack(&norms, 0).to_kind(Kind::Double).square().sum(Kind::Double).sqrt().double_value(&[]);
        norm * unscale
    }

    /// The L2 norm of all gradients (times `unscale`); when above `max` (> 0), the next [`AdamW::step`]
    /// scales them down to `max`. Returns the norm before clipping.
    pub fn clip_grad_norm_scaled(&mut self, max: f64, unscale: f64) -> f64 {
        let norm = self.grad_norm(unscale);
        self.clip_to_norm(norm, max, unscale);
        norm
    }

    /// Sets the next step's clipping from a norm computed elsewhere (`norm` already unscaled): ZeRO-1,
    /// where each rank holds a share of the gradients and the norm is summed across ranks.
    pub fn clip_to_norm(&mut self, norm: f64, max: f64, unscale: f64) {
        let clip = if max > 0.0 && norm > max { max / (norm + 1e-6) } else { 1.0 };
        self.grad_mul = unscale * clip;
    }

    /// [`AdamW::clip_grad_norm_scaled`] without a loss scale.
    pub fn clip_grad_norm(&mut self, max: f64) -> f64 {
        self.clip_grad_norm_scaled(max, 1.0)
    }

    /// One update with learning rate `lr`; gradients are then zeroed.
    pub fn step(&mut self, lr: f64) {
        let _g = tch::no_grad_guard();
        // The weights change (the fused pass writes them without libtorch's version counter): the bf16
        // working copies are made again from the updated masters.
        crate::castcache::invalidate();
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        let gm = std::mem::replace(&mut self.grad_mul, 1.0);
        for s in &mut self.slots {
            let mut g = s.grad();
            if !g.defined() {
                continue;
            }
            let decay = if s.decay { 1.0 - lr * self.weight_decay } else { 1.0 };
            let c = fused::Coefs {
                grad_mul: gm as f32,
                beta1: self.beta1 as f32,
                beta2: self.beta2 as f32,
                inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
                eps: self.eps as f32,
                step_size: (lr / bc1) as f32,
                decay: decay as f32,
            };
            if self.fused && fused::adamw(&s.param, &g, &s.m, &s.v, &c) {
                continue;
            }
            if gm != 1.0 {
                let _ = g.f_mul_scalar_(gm);
            }
            if decay != 1.0 {
                let _ = s.param.f_mul_scalar_(decay);
            }
            // p ← p − lr/bc1 · m / (√v/√bc2 + ε) = p − (lr·√bc2/bc1) · m / (√v + ε·√bc2).
            let _ = s.m.f_lerp_(&g, 1.0 - self.beta1);
            let g2 = g.square();
            let _ = s.v.f_lerp_(&g2, 1.0 - self.beta2);
            drop(g2);
            let mut d = s.v.sqrt();
            let _ = d.f_add_scalar_(self.eps * bc2.sqrt());
            let _ = s.m.f_div_out(&d, &d);
            let _ = d.f_mul_scalar_(lr * bc2.sqrt() / bc1);
            let _ = s.param.f_sub_(&d);
            let _ = g.f_zero_();
        }
    }

    /// Zeroes the gradients (and forgets a pending clip factor).
    pub fn zero_grad(&mut self) {
        self.grad_mul = 1.0;
        for s in &mut self.slots {
            let mut g = s.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
    }

    /// The moments, named `m.<param>` and `v.<param>`, for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for s in &self.slots {
            out.push((format!("m.{}", s.name), s.m.shallow_clone()));
            out.push((format!("v.{}", s.name), s.v.shallow_clone()));
        }
        out
    }

    /// Restores moments saved by [`AdamW::state`].
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>, step: i64) -> Result<(), String> {
        let _g = tch::no_grad_guard();
        for s in &mut self.slots {
            for (prefix, t) in [("m", &mut s.m), ("v", &mut s.v)] {
                let key = format!("{prefix}.{}", s.name);
                let saved = state.get(&key).ok_or_else(|| format!("optimizer state {key} is missing"))?;
                if saved.size() != t.size() {
                    return Err(format!("optimizer state {key} has shape {:?}, expected {:?}", saved.size(), t.size()));
                }
                t.copy_(&saved.to_device(t.device()));
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Linear warmup to `lr`, then cosine decay to `min_lr` at `total` steps.
pub fn lr_at(step: i64, lr: f64, min_lr: f64, warmup: i64, total: i64) -> f64 {
    if warmup > 0 && step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    if total <= warmup {
        return lr;
    }
    let progress = ((step - warmup) as f64 / (total - warmup) as f64).clamp(0.0, 1.0);
    min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// The fused CPU update: one pass over parameter, gradient and moments.
#[allow(unsafe_code)]
mod fused {
    use rayon::prelude::*;
    use tch::{Device, Kind, Tensor};

    /// Per-step constants.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Coefs {
        pub grad_mul: f32,
        pub beta1: f32,
        pub beta2: f32,
        pub inv_sqrt_bc2: f32,
        pub eps: f32,
        pub step_size: f32,
        pub decay: f32,
    }

    /// Matching chunks of parameter, gradient, first and second moment.
    type Quad<'a> = (((&'a mut [f32], &'a mut [f32]), &'a mut [f32]), &'a mut [f32]);

    /// Elements per parallel task (256 KiB of each tensor).
    const CHUNK: usize = 1 << 16;

    /// Updates `p`, `m`, `v` and zeroes `g`; false (nothing touched) when the tensors are not all distinct,
    /// contiguous fp32 CPU tensors of one size.
    pub(super) fn adamw(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, c: &Coefs) -> bool {
        let n = p.numel();
        let ok = [p, g, m, v]
            .iter()
            .all(|t| t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() && t.numel() == n);
        let ptrs = [p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr()];
        let distinct = (0..4).all(|i| (i + 1..4).all(|j| ptrs[i] != ptrs[j]));
        if !ok || !distinct || n == 0 || ptrs.iter().any(|q| q.is_null()) {
            return false;
        }
        // SAFETY: the four tensors are contiguous fp32 CPU tensors of `n` elements at distinct addresses
        // (in separate allocations: a parameter, its gradient and two `zeros_like` moments — or, for ZeRO-1,
        // views of equal length into a parameter and into its gradient — so they cannot overlap), their storage outlives this call (we hold references), and nothing else touches
        // them while the optimizer runs (the caller holds `&mut AdamW`, autograd is idle between steps).
        let (ps, gs, ms, vs) = unsafe {
            (
                std::slice::from_raw_parts_mut(ptrs[0].cast::<f32>(), n),
                std::slice::from_raw_parts_mut(ptrs[1].cast::<f32>(), n),
                std::slice::from_raw_parts_mut(ptrs[2].cast::<f32>(), n),
                std::slice::from_raw_parts_mut(ptrs[3].cast::<f32>(), n),
            )
        };
        let c = *c;
        let run = |(((p, g), m), v): Quad<'_>| {
            for i in 0..p.len() {
                let gi = g[i] * c.grad_mul;
                let mi = m[i] + (1.0 - c.beta1) * (gi - m[i]);
                let vi = c.beta2 * v[i] + (1.0 - c.beta2) * gi * gi;
                let denom = vi.sqrt() * c.inv_sqrt_bc2 + c.eps;
                p[i] = p[i] * c.decay - c.step_size * mi / denom;
                m[i] = mi;
                v[i] = vi;
                g[i] = 0.0;
            }
        };
        if n < 4 * CHUNK {
            run((((ps, gs), ms), vs));
        } else {
            ps.par_chunks_mut(CHUNK)
                .zip(gs.par_chunks_mut(CHUNK))
                .zip(ms.par_chunks_mut(CHUNK))
                .zip(vs.par_chunks_mut(CHUNK))
                .for_each(run);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adamw_matches_the_closed_form_first_step() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("p".into(), p.shallow_clone(), true)], 0.9, 0.999, 1e-8, 0.1);
        let loss = (&p * &p).sum(Kind::Float);
        loss.backward();
        opt.step(0.01);
        // First step: p ← p(1 − lr·wd) − lr·sign(g).
        let want = [1.0 * (1.0 - 0.001) - 0.01, -2.0 * (1.0 - 0.001) + 0.01];
        let got: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        assert_eq!(opt.state().len(), 2);
    }

    /// The fused pass and the tensor-op path give the same parameters and moments over several steps, with
    /// clipping, decay on one tensor and none on the other, and a large tensor that goes parallel.
    #[test]
    fn fused_and_tensor_op_updates_agree() {
        // The starting values are drawn once and copied into both runs: the global torch RNG is shared
        // with tests running in parallel, so re-seeding it per run would not give both runs the same draw.
        let a0 = Tensor::randn([300_000], (Kind::Float, tch::Device::Cpu)) * 0.1;
        let b0 = Tensor::randn([7, 3], (Kind::Float, tch::Device::Cpu));
        let run = |fused: bool| {
            let a = a0.copy().set_requires_grad(true);
            let b = b0.copy().set_requires_grad(true);
            let mut opt = AdamW::new(
                vec![("a".into(), a.shallow_clone(), true), ("b".into(), b.shallow_clone(), false)],
                0.9,
                0.95,
                1e-8,
                0.1,
            );
            opt.fused = fused;
            for step in 0..4 {
                let loss = (&a * &a).sum(Kind::Float) * (step + 1) + (&b * &b * &b).sum(Kind::Float);
                loss.backward();
                opt.clip_grad_norm(1.0);
                opt.step(1e-2);
                assert_eq!(a.grad().abs().max().double_value(&[]), 0.0, "gradients are zeroed");
            }
            let st = opt.state();
            (a.detach().copy(), b.detach().copy(), st[0].1.copy(), st[1].1.copy())
        };
        let (x, y) = (run(true), run(false));
        for (p, q) in [(&x.0, &y.0), (&x.1, &y.1), (&x.2, &y.2), (&x.3, &y.3)] {
            let d = (p - q).abs().max().double_value(&[]) / q.abs().max().double_value(&[]).max(1e-6);
            assert!(d < 1e-5, "fused and unfused differ by {d} (relative)");
        }
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((lr_at(0, 1.0, 0.1, 10, 100) - 0.1).abs() < 1e-9);
        assert!((lr_at(9, 1.0, 0.1, 10, 100) - 1.0).abs() < 1e-9);
        assert!((lr_at(100, 1.0, 0.1, 10, 100) - 0.1).abs() < 1e-9);
        assert!(lr_at(55, 1.0, 0.1, 10, 100) < 0.6);
    }
}
