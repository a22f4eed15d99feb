//! Where a model's variables come from: fresh random values (a new model), or tensors read from a checkpoint,
//! taken as they are — no random initialisation first and no copy, so loading a bf16 checkpoint in bf16 holds
//! about the file's size. Missing, unexpected and misshapen weights are collected and named at the end.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use tch::Tensor;
use tch::nn::{self, Init};

use crate::ModelError;

/// The variables' source while a model is built.
#[derive(Debug, Default)]
pub struct VarSource {
    loaded: Option<RefCell<HashMap<String, Tensor>>>,
    missing: RefCell<Vec<String>>,
    misshapen: RefCell<Vec<String>>,
}

impl VarSource {
    /// Random values (each variable's `Init`).
    pub fn random() -> Self {
        VarSource::default()
    }

    /// The tensors of a checkpoint, by full variable name.
    pub fn loaded(tensors: HashMap<String, Tensor>) -> Self {
        VarSource { loaded: Some(RefCell::new(tensors)), ..VarSource::default() }
    }

    /// The variable `name` under `p`, of shape `dims`: taken from the checkpoint, or made with `init`.
    pub fn var(&self, p: &nn::Path<'_>, name: &str, dims: &[i64], init: Init) -> Tensor {
        let Some(m) = &self.loaded else { return p.var(name, dims, init) };
        let full = p.path(name);
        let t = m.borrow_mut().remove(&full);
        match t {
            Some(t) if t.size() == dims => p.add(name, t.to_device(p.device()), true),
            other => {
                match other {
                    Some(t) => self
                        .misshapen
                        .borrow_mut()
                        .push(format!("{full} has shape {:?}, config.json says {dims:?}", t.size())),
                    None => self.missing.borrow_mut().push(full),
                }
                // A placeholder: the model is refused in `finish`.
                p.add(name, Tensor::zeros([0], (tch::Kind::Float, p.device())), false)
            }
        }
    }

    /// Refuses a checkpoint with missing, unexpected or misshapen weights, naming a few.
    pub fn finish(self, dir: &Path) -> Result<(), ModelError> {
        if let Some(m) = self.misshapen.borrow().first() {
            return Err(ModelError::Format(format!("{}: {m}", dir.display())));
        }
        let missing = self.missing.take();
        if !missing.is_empty() {
            return Err(crate::io::missing_weights(dir, missing));
        }
        let extra: Vec<String> = self.loaded.map(|m| m.into_inner().into_keys().collect()).unwrap_or_default();
        if !extra.is_empty() {
            return Err(crate::io::unexpected_weights(dir, extra));
        }
        Ok(())
    }
}
