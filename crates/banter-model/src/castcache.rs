//! bf16 working copies of the weights for training: a pass in bf16 reads each fp32 matrix through
//! [`cast`], which casts it once and hands the same bf16 tensor to every pass until the weight changes — all
//! micro-batches of an optimizer step, and the recomputed blocks of `--gradient-checkpointing`, share one
//! cast instead of casting per pass.
//!
//! Gradients still reach the fp32 master weights: a cast made with autograd on keeps its `ToCopyBackward`
//! node, which holds no saved tensors and so may be traversed by every backward pass of the step; each one
//! adds its fp32 gradient into the master's `.grad` (tested against a cast per pass: the same numbers).
//!
//! A copy is used only while its master is the tensor it was cast from (address, shape and strides, whether
//! it trains), at the same version (libtorch's
//! counter, bumped by every in-place op: resume, best-weights restore, ZeRO-1's all-gather) and in the same
//! optimizer generation ([`invalidate`], called by `AdamW::step`, whose fused pass writes the weights without
//! the counter). Copies are per thread (each training thread has its own), and the cache holds its masters
//! alive, so a freed tensor's address can never be mistaken for a cached one. `BANTER_CAST_CACHE=0` turns it off.

use std::cell::RefCell;
use std::collections::HashMap;

use tch::{Kind, Tensor};

struct Entry {
    /// Held so that its memory cannot be freed and reused by another tensor while the entry exists.
    _master: Tensor,
    size: Vec<i64>,
    stride: Vec<i64>,
    version: i64,
    copy: Tensor,
}

/// (address, target kind, detached, the master trains).
type Key = (usize, Kind, bool, bool);

thread_local! {
    static CACHE: RefCell<HashMap<Key, Entry>> = RefCell::new(HashMap::new());
}

fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("BANTER_CAST_CACHE").map(|v| v != "0").unwrap_or(true))
}

/// `w` in `kind` (detached from autograd when `detached`), cast once per weight version.
pub fn cast(w: &Tensor, kind: Kind, detached: bool) -> Tensor {
    let plain = || if detached { w.detach().to_kind(kind) } else { w.to_kind(kind) };
    if w.kind() == kind {
        return if detached { w.detach() } else { w.shallow_clone() };
    }
    if !enabled() || !w.is_leaf() {
        return plain();
    }
    let key = (w.data_ptr() as usize, kind, detached, w.requires_grad());
    let version = w.internal_version();
    let (size, stride) = (w.size(), w.stride());
    let hit = CACHE.with(|c| {
        c.borrow()
            .get(&key)
            .filter(|e| e.version == version && e.size == size && e.stride == stride)
            .map(|e| e.copy.shallow_clone())
    });
    if let Some(t) = hit {
        return t;
    }
    let copy = plain();
    // A cast made under no_grad of a weight that trains has no path back to it: never reuse that in a pass
    // that trains.
    if !detached && w.requires_grad() && !copy.requires_grad() {
        return copy;
    }
    CACHE.with(|c| {
        let entry = Entry { _master: w.shallow_clone(), size, stride, version, copy: copy.shallow_clone() };
        c.borrow_mut().insert(key, entry);
    });
    copy
}

/// Forgets every copy of this thread (the weights changed, or training is over).
pub fn invalidate() {
    CACHE.with(|c| c.borrow_mut().clear());
}

/// Forgets this thread's copies when created and when dropped: one training run's lifetime.
#[derive(Debug)]
pub struct Scope(());

impl Scope {
    /// Starts a scope (forgetting any copies left from before).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Scope {
        invalidate();
        Scope(())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cast_serves_every_backward_until_the_weight_changes() {
        invalidate();
        let w = Tensor::randn([4, 3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let x = Tensor::randn([2, 4], (Kind::BFloat16, tch::Device::Cpu));
        let a = cast(&w, Kind::BFloat16, false);
        let b = cast(&w, Kind::BFloat16, false);
        assert_eq!(a.data_ptr(), b.data_ptr(), "the second pass reuses the copy");
        x.matmul(&a).to_kind(Kind::Float).sum(Kind::Float).backward();
        let g1 = w.grad().copy();
        x.matmul(&b).to_kind(Kind::Float).sum(Kind::Float).backward();
        assert!(w.grad().allclose(&(&g1 * 2.0), 0.0, 0.0, false), "both backward passes reach the master");
        {
            let _g = tch::no_grad_guard();
            let _ = w.shallow_clone().f_add_scalar_(1.0);
        }
        let c = cast(&w, Kind::BFloat16, false);
        assert_ne!(c.data_ptr(), a.data_ptr(), "an in-place change makes a new copy");
        assert!(c.allclose(&w.to_kind(Kind::BFloat16), 0.0, 0.0, false));
        invalidate();
        assert_ne!(cast(&w, Kind::BFloat16, false).data_ptr(), c.data_ptr(), "invalidate forgets");
        // Under no_grad a trained weight's cast is not kept for later training passes.
        let nog = {
            let _g = tch::no_grad_guard();
            invalidate();
            cast(&w, Kind::BFloat16, false)
        };
        let later = cast(&w, Kind::BFloat16, false);
        assert!(later.data_ptr() != nog.data_ptr() && later.requires_grad());
        // Detached casts are their own entries.
        let d = cast(&w, Kind::BFloat16, true);
        assert!(!d.requires_grad() && cast(&w, Kind::BFloat16, true).data_ptr() == d.data_ptr());
        invalidate();
    }

    #[test]
    fn a_scope_forgets_on_both_ends() {
        let w = Tensor::randn([2, 2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let before = cast(&w, Kind::BFloat16, false);
        let scope = Scope::new();
        let inside = cast(&w, Kind::BFloat16, false);
        assert_ne!(inside.data_ptr(), before.data_ptr(), "made anew inside the scope");
        drop(scope);
        assert_eq!(CACHE.with(|c| c.borrow().len()), 0, "nothing kept after it");
    }
}
