//! AdamW (decoupled weight decay, bias-corrected), with its moments kept as named tensors so a checkpoint
//! can save and restore them exactly; and the warmup + cosine learning-rate schedule.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

/// One parameter and its optimizer state.
#[derive(Debug)]
struct Slot {
    name: String,
    param: Tensor,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// AdamW over a set of named parameters.
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
}

impl AdamW {
    /// An optimizer over `(name, tensor, decay)` parameters.
    pub fn new(params: Vec<(String, Tensor, bool)>, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param, decay)| {
                let m = param.zeros_like();
                let v = param.zeros_like();
                Slot { name, param, m, v, decay }
            })
            .collect();
        AdamW { slots, beta1, beta2, eps, weight_decay, step: 0 }
    }

    /// The L2 norm of all gradients; scales them down to `max` if above (returns the norm before).
    pub fn clip_grad_norm(&self, max: f64) -> f64 {
        let _g = tch::no_grad_guard();
        let grads: Vec<Tensor> = self.slots.iter().map(|s| s.param.grad()).filter(|g| g.defined()).collect();
        if grads.is_empty() {
            return 0.0;
        }
        let sq: Vec<Tensor> = grads.iter().map(|g| g.pow_tensor_scalar(2).sum(Kind::Float)).collect();
        let norm = Tensor::stack(&sq, 0).sum(Kind::Float).sqrt().double_value(&[]);
        if max > 0.0 && norm > max {
            let scale = max / (norm + 1e-6);
            for g in &grads {
                let mut g = g.shallow_clone();
                let _ = g.f_mul_scalar_(scale);
            }
        }
        norm
    }

    /// One update with learning rate `lr`; gradients are then zeroed.
    pub fn step(&mut self, lr: f64) {
        let _g = tch::no_grad_guard();
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        for s in &mut self.slots {
            let g = s.param.grad();
            if !g.defined() {
                continue;
            }
            if s.decay && self.weight_decay > 0.0 {
                let _ = s.param.f_mul_scalar_(1.0 - lr * self.weight_decay);
            }
            // In place where torch allows: one step makes two parameter-sized temporaries.
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
        }
        for s in &mut self.slots {
            let mut g = s.param.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
    }

    /// Zeroes the gradients.
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            let mut g = s.param.grad();
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

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((lr_at(0, 1.0, 0.1, 10, 100) - 0.1).abs() < 1e-9);
        assert!((lr_at(9, 1.0, 0.1, 10, 100) - 1.0).abs() < 1e-9);
        assert!((lr_at(100, 1.0, 0.1, 10, 100) - 0.1).abs() < 1e-9);
        assert!(lr_at(55, 1.0, 0.1, 10, 100) < 0.6);
    }
}
