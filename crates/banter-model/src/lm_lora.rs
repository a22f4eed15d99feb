//! LoRA on any family, as PEFT does it: default target modules per family (PEFT's table), `all-linear`,
//! attach, merge, and adapters in PEFT's layout (`adapter_config.json`, `adapter_model.safetensors` with
//! `base_model.model.<module>.lora_A.weight` keys). GPT-2's Conv1D layers keep `fan_in_fan_out: true`.

use std::collections::HashMap;
use std::path::Path;

use tch::Tensor;

use crate::lm::Lm;
use crate::lora::LoraConfig;
use crate::{ModelError, io};

impl Lm {
    /// The modules LoRA adapts when `--lora-targets` is not given: the family's row (GPT-2 `c_attn`, `c_proj`,
    /// Asimbot's choice; Phi-3 `qkv_proj`; the others `q_proj`, `v_proj`, PEFT's defaults for them).
    pub fn default_lora_targets(&self) -> Vec<String> {
        let t = self.family().lora_targets;
        t.iter().map(|s| s.to_string()).collect()
    }

    /// PEFT's `all-linear`: every linear layer but the output head, as module-name suffixes.
    pub fn all_linear_targets(&mut self) -> Vec<String> {
        let paths: Vec<String> = self.net_mut().lora_layers_mut().into_iter().map(|(p, _)| p).collect();
        let mut names: Vec<String> =
            paths.into_iter().map(|p| p.rsplit('.').next().unwrap_or_default().to_string()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// `--lora-targets` as given: empty means the family's default, `all-linear` every linear layer.
    pub fn resolve_lora_targets(&mut self, given: &[String]) -> Vec<String> {
        match given {
            [] => self.default_lora_targets(),
            [one] if one == "all-linear" => self.all_linear_targets(),
            _ => given.to_vec(),
        }
    }

    /// Attaches fresh LoRA layers (PEFT's init) to the targeted modules and freezes the base weights;
    /// returns how many layers were adapted.
    pub fn attach_lora(&mut self, cfg: &LoraConfig) -> usize {
        let device = self.device();
        let net = self.net_mut();
        let (vs, n) = crate::lora::attach(net.lora_layers_mut(), cfg, device);
        net.set_lora(Some((vs, cfg.clone())));
        n
    }

    /// Folds the attached LoRA into the base weights and drops it.
    pub fn merge_lora(&mut self) {
        let net = self.net_mut();
        crate::lora::merge(net.lora_layers_mut());
        net.set_lora(None);
    }

    /// Saves the attached LoRA as a PEFT adapter; `extra` tensors (grown token matrices, by VarStore name)
    /// are written under `base_model.model.<name>` and listed in `modules_to_save`.
    pub fn save_adapter(&self, dir: &Path, base: &str, extra: &[(String, Tensor)]) -> Result<(), ModelError> {
        if let Lm::Gpt2(m) = self {
            let extra: Vec<(String, Tensor)> =
                extra.iter().map(|(n, t)| (format!("base_model.model.{n}"), t.shallow_clone())).collect();
            return io::save_adapter(m, dir, base, &extra);
        }
        let (Some(vs), Some(cfg)) = (self.lora_vs(), self.lora_cfg()) else {
            return Err(ModelError::Config("no LoRA adapter to save".into()));
        };
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        tensors.extend(extra.iter().map(|(n, t)| (format!("base_model.model.{n}"), t.shallow_clone())));
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        io::write_safetensors(&tensors, &dir.join("adapter_model.safetensors"))?;
        let modules: Option<Vec<String>> = (!extra.is_empty()).then(|| {
            extra
                .iter()
                .map(|(n, _)| n.trim_end_matches(".weight").rsplit('.').next().unwrap_or_default().into())
                .collect()
        });
        io::write_json(&dir.join("adapter_config.json"), &cfg.to_peft_json_for(base, modules, false))
    }

    /// Loads a PEFT LoRA adapter (keys with or without PEFT's `.default`), growing the vocabulary when the
    /// adapter carries token matrices. Missing and unexpected tensors are named.
    pub fn load_adapter(&mut self, dir: &Path) -> Result<LoraConfig, ModelError> {
        if let Lm::Gpt2(m) = self {
            return io::load_adapter(m, dir);
        }
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Format(format!("{}: {e}", cfg_path.display())))?;
        let mut cfg =
            LoraConfig::from_peft_json(&v).map_err(|e| ModelError::Format(format!("{}: {e}", cfg_path.display())))?;
        if cfg.targets == ["all-linear"] {
            cfg.targets = self.all_linear_targets();
        }
        let file = dir.join("adapter_model.safetensors");
        if !file.exists() && dir.join("adapter_model.bin").exists() {
            return Err(ModelError::Format(format!(
                "{}: adapter_model.bin is pickle; save the adapter with safe_serialization",
                dir.display()
            )));
        }
        let mut by_name: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in io::read_safetensors(&file, self.device())? {
            let name = name
                .replace(".lora_A.default.weight", ".lora_A.weight")
                .replace(".lora_B.default.weight", ".lora_B.weight");
            by_name.insert(name, t);
        }
        // Token matrices saved with the adapter (a vocabulary grown for the template's special tokens).
        for (var, t) in self.token_matrices() {
            if let Some(w) = by_name.remove(&format!("base_model.model.{var}")) {
                self.resize_vocab(w.size()[0]);
                let _g = tch::no_grad_guard();
                let mut t = t;
                t.set_data(&w.to_kind(t.kind()));
            }
        }
        if self.attach_lora(&cfg) == 0 {
            return Err(ModelError::Format(format!(
                "{}: target_modules {:?} match no layer",
                cfg_path.display(),
                cfg.targets
            )));
        }
        io::copy_adapter(&self.lora_vs().expect("attached").variables(), &by_name, &file)?;
        Ok(cfg)
    }
}
