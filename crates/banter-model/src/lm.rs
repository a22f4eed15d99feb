//! One causal LM of any supported family, chosen by `config.json`'s `model_type`: what training, chatting and
//! saving need from a model, whatever its architecture (GPT-2, the Llama family, OPT).

use std::path::Path;

use tch::{Device, Kind, Tensor, nn};

use crate::Pass;
use crate::causal::CausalLm;
use crate::families::{Family, Stack};
use crate::generate::Stepper;
use crate::gpt2::Gpt2;
use crate::llama::{Llama, LlamaConfig};
use crate::lora::LoraConfig;
use crate::opt::{Opt, OptConfig};
use crate::{ModelError, io};

/// A causal LM of one of the supported families.
#[derive(Debug)]
pub enum Lm {
    /// GPT-2 (and DistilGPT2).
    Gpt2(Gpt2),
    /// Llama, SmolLM, Mistral, Qwen2, Qwen3, Phi-3, Gemma, Gemma 2.
    Llama(Llama),
    /// OPT.
    Opt(Opt),
}

/// `model_type` of a `config.json` value (GPT-2 when absent, as banter's early configs were).
pub fn model_type_of(v: &serde_json::Value) -> &str {
    v["model_type"].as_str().unwrap_or("gpt2")
}

fn unsupported(what: &str, t: &str) -> ModelError {
    let all = crate::families::model_types().join(", ");
    ModelError::Config(format!("{what}: model_type {t:?} is not supported (supported: {all})"))
}

impl Lm {
    /// Loads with the matrices held in `kind` (bf16/fp16 for inference): the Llama family and OPT read them
    /// straight into `kind`, one tensor at a time, so a bf16 checkpoint never exists in fp32; GPT-2 is read
    /// in fp32 and converted.
    pub(crate) fn load_as(dir: &Path, device: Device, kind: Kind) -> Result<Lm, ModelError> {
        Self::load_from(dir, read_config(dir)?, device, kind)
    }

    /// [`Lm::load_as`] with `config.json` already read (`v`): the file is parsed once per load, here.
    pub(crate) fn load_from(dir: &Path, v: serde_json::Value, device: Device, kind: Kind) -> Result<Lm, ModelError> {
        let what = dir.join("config.json").display().to_string();
        let t = model_type_of(&v).to_string();
        Ok(match crate::families::family(&t).map(|f| f.stack) {
            Some(Stack::Gpt2) => {
                let mut m = Lm::Gpt2(io::load_model_from(dir, crate::Gpt2Config::from_value(v, &what)?, device)?);
                if kind != Kind::Float {
                    m.to_half_weights(kind);
                }
                m
            }
            Some(Stack::Llama) => Lm::Llama(Llama::load_from(dir, LlamaConfig::from_value(v, &what)?, device, kind)?),
            Some(Stack::Opt) => Lm::Opt(Opt::load_from(dir, OptConfig::from_value(v, &what)?, device, kind)?),
            None => return Err(unsupported(&what, &t)),
        })
    }

    /// A randomly initialised Llama-family or OPT model from a config value (`what` names it in errors);
    /// the vocabulary is at least `vocab`, and `eos` becomes its BOS/EOS/padding id. (GPT-2 configs go
    /// through [`crate::Gpt2Config`], which has presets and dropout settings.)
    pub(crate) fn scratch(
        mut v: serde_json::Value,
        vocab: i64,
        eos: i64,
        device: Device,
        what: &str,
    ) -> Result<Lm, ModelError> {
        if let Some(m) = v.as_object_mut() {
            let given = m.get("vocab_size").and_then(|x| x.as_i64()).unwrap_or(0);
            m.insert("vocab_size".into(), given.max(vocab).into());
            for k in ["bos_token_id", "eos_token_id", "pad_token_id"] {
                m.insert(k.into(), eos.into());
            }
        }
        let t = model_type_of(&v).to_string();
        Ok(match crate::families::family(&t).map(|f| f.stack) {
            Some(Stack::Llama) => Lm::Llama(Llama::new(LlamaConfig::from_value(v, what)?, device)),
            Some(Stack::Opt) => Lm::Opt(Opt::new(OptConfig::from_value(v, what)?, device)),
            _ => return Err(unsupported(what, &t)),
        })
    }

    /// The family's row in [`crate::families::FAMILIES`].
    pub fn family(&self) -> &'static Family {
        crate::families::family(self.model_type()).expect("a loaded model's family is in the table")
    }

    /// `config.json`'s `model_type`.
    pub fn model_type(&self) -> &str {
        self.net().model_type()
    }

    /// The architecture behind the one interface every family implements.
    pub fn net(&self) -> &dyn CausalLm {
        match self {
            Lm::Gpt2(m) => m,
            Lm::Llama(m) => m,
            Lm::Opt(m) => m,
        }
    }

    /// [`Lm::net`], mutable.
    pub fn net_mut(&mut self) -> &mut dyn CausalLm {
        match self {
            Lm::Gpt2(m) => m,
            Lm::Llama(m) => m,
            Lm::Opt(m) => m,
        }
    }

    /// The base weights.
    pub fn vs(&self) -> &nn::VarStore {
        self.net().vs()
    }

    /// The LoRA weights, when an adapter is attached.
    pub fn lora_vs(&self) -> Option<&nn::VarStore> {
        self.net().lora_vs()
    }

    /// The LoRA settings, when an adapter is attached.
    pub fn lora_cfg(&self) -> Option<&LoraConfig> {
        self.net().lora_cfg()
    }

    /// Where the weights are.
    pub fn device(&self) -> Device {
        self.vs().device()
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> i64 {
        self.net().vocab_size()
    }

    /// The longest context.
    pub fn n_positions(&self) -> i64 {
        self.net().n_positions()
    }

    /// Parameters of the base model.
    pub fn num_params(&self) -> i64 {
        self.vs().variables().values().map(|t| t.numel() as i64).sum()
    }

    /// The matrices whose rows are tokens, by VarStore name: the input embeddings, and the output head
    /// when it is not tied to them. They grow with the vocabulary.
    pub fn token_matrices(&self) -> Vec<(&'static str, Tensor)> {
        self.net().token_matrices()
    }

    /// Grows the vocabulary to `n` tokens: new rows N(0, 0.02) in every token matrix.
    pub fn resize_vocab(&mut self, n: i64) {
        let old = self.vocab_size();
        if n <= old {
            return;
        }
        if let Lm::Gpt2(m) = self {
            m.resize_vocab(n);
            return;
        }
        {
            let _g = tch::no_grad_guard();
            for (_, mut t) in self.token_matrices() {
                let extra = Tensor::randn([n - old, t.size()[1]], (Kind::Float, t.device())) * 0.02;
                let grown = Tensor::cat(&[&t, &extra.to_kind(t.kind())], 0);
                t.set_data(&grown);
            }
        }
        match self {
            Lm::Llama(m) => m.cfg.vocab_size = n,
            Lm::Opt(m) => m.cfg.vocab_size = n,
            Lm::Gpt2(_) => {}
        }
    }

    /// Logits `[B, T, V]` (fp32) of token ids `[B, T]`, no cache, no dropout.
    pub fn logits(&self, ids: &Tensor) -> Tensor {
        tch::no_grad(|| self.net().logits(ids))
    }

    /// Final hidden states `[B, T, E]` of token ids `[B, T]` in `pass` (with autograd): what the output
    /// projection ([`Lm::output_weight`], then [`Lm::logit_softcap`]) turns into logits.
    pub fn hidden(&self, ids: &Tensor, pass: Pass) -> Tensor {
        self.net().hidden(ids, pass)
    }

    /// The output projection's weight `[V, E]`: logits are `hidden · Wᵀ`.
    pub fn output_weight(&self) -> Tensor {
        self.net().output_weight()
    }

    /// Gemma 2's final soft cap: logits are `cap · tanh(z / cap)`.
    pub fn logit_softcap(&self) -> Option<f64> {
        self.net().logit_softcap()
    }

    /// Mean next-token loss over labels other than -100, and the number of such labels.
    pub fn loss(&self, ids: &Tensor, labels: &Tensor, pass: Pass) -> (Tensor, i64) {
        match self {
            Lm::Gpt2(m) => m.loss(ids, labels, pass),
            Lm::Llama(m) => (m.loss_pass(ids, labels, pass), targets(labels)),
            Lm::Opt(m) => (m.loss_pass(ids, labels, pass), targets(labels)),
        }
    }

    /// Forward and backward of the loss multiplied by `loss_mul`, through the fused, chunked head
    /// ([`crate::head`]); gradients accumulate in `.grad`.
    /// Returns (mean loss, target tokens).
    pub fn loss_backward(&self, ids: &Tensor, labels: &Tensor, pass: Pass, loss_mul: f64) -> (f64, i64) {
        if let Lm::Gpt2(m) = self {
            return m.loss_backward(ids, labels, pass, loss_mul);
        }
        // Every other family through the same fused head: no `[B, T, V]` logits.
        let hidden = self.hidden(ids, pass);
        crate::head::fused_loss_backward(
            &hidden,
            &self.output_weight(),
            self.logit_softcap(),
            labels,
            pass.compute,
            loss_mul,
        )
    }

    /// A generation stepper over this model (fp32 compute).
    pub fn stepper(&self) -> Box<dyn Stepper + '_> {
        self.stepper_in(Kind::Float)
    }

    /// `config.json` as transformers reads it for this model.
    pub fn config_json(&self) -> serde_json::Value {
        self.net().config_json()
    }

    /// Writes `config.json` and `model.safetensors` in Hugging Face's layout.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        if let Lm::Gpt2(m) = self {
            return io::save_model(m, dir);
        }
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let vars: std::collections::BTreeMap<String, Tensor> = self.vs().variables().into_iter().collect();
        io::write_safetensors(&vars.into_iter().collect::<Vec<_>>(), &dir.join("model.safetensors"))?;
        io::write_json(&dir.join("config.json"), &self.config_json())
    }
}

/// A model directory's `config.json`.
pub fn read_config(dir: &Path) -> Result<serde_json::Value, ModelError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))
}

/// The output head's shape `(width, vocabulary)` from a `config.json`: the decode step's largest product.
pub fn head_shape_of(v: &serde_json::Value) -> (i64, i64) {
    let g = |k: &str| v[k].as_i64();
    let width = match model_type_of(v) {
        "gpt2" => g("n_embd").unwrap_or(768),
        "opt" => g("word_embed_proj_dim").or(g("hidden_size")).unwrap_or(768),
        _ => g("hidden_size").unwrap_or(768),
    };
    (width, g("vocab_size").unwrap_or(50257))
}

/// Labels that carry loss after the shift (positions 1..).
fn targets(labels: &Tensor) -> i64 {
    let t = labels.size()[1];
    labels.narrow(1, 1, t - 1).ne(-100).sum(Kind::Int64).int64_value(&[])
}

/// A model's family with its typed configuration: what exporters and tools branch on, without reaching
/// into [`Lm`]'s variants.
#[derive(Debug, Clone, Copy)]
pub enum Arch<'a> {
    /// GPT-2 and DistilGPT2.
    Gpt2(&'a crate::Gpt2Config),
    /// The Llama-like families (Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma, Gemma 2).
    Llama(&'a LlamaConfig),
    /// OPT.
    Opt(&'a OptConfig),
}

impl Lm {
    /// The family and its typed configuration.
    pub fn arch(&self) -> Arch<'_> {
        match self {
            Lm::Gpt2(m) => Arch::Gpt2(&m.cfg),
            Lm::Llama(m) => Arch::Llama(&m.cfg),
            Lm::Opt(m) => Arch::Opt(&m.cfg),
        }
    }

    /// Whether the model takes a tokenizer's extra tokens as new embedding rows when loaded for chat: a GPT-2
    /// banter trained from scratch does (its template markers); a Hub family keeps its embeddings and the
    /// tokenizer keeps only the markers the model has rows for.
    pub fn grows_to_tokenizer(&self) -> bool {
        matches!(self, Lm::Gpt2(_))
    }

    /// Whether int8 decoding runs entirely on banter's own threads (GPT-2's Rust decoder), so libtorch's
    /// OpenMP threads should be kept from spinning against them.
    pub fn int8_decodes_in_rust(&self) -> bool {
        matches!(self, Lm::Gpt2(_))
    }
}

/// Loads a Hugging Face model directory of any supported family with its matrices in `kind`.
pub fn load_model(dir: &Path, device: Device, kind: Kind) -> Result<Lm, ModelError> {
    Lm::load_as(dir, device, kind)
}

/// [`load_model`] with `config.json` already read (`config`).
pub fn load_model_from(dir: &Path, config: serde_json::Value, device: Device, kind: Kind) -> Result<Lm, ModelError> {
    Lm::load_from(dir, config, device, kind)
}

/// A randomly initialised Llama-family or OPT model from a config value (`what` names it in errors); the
/// vocabulary is at least `vocab`, and `eos` becomes its BOS/EOS/padding id. GPT-2 configs go through
/// [`crate::Gpt2Config`], which has presets and dropout settings.
pub fn scratch_model(v: serde_json::Value, vocab: i64, eos: i64, device: Device, what: &str) -> Result<Lm, ModelError> {
    Lm::scratch(v, vocab, eos, device, what)
}

impl From<Gpt2> for Lm {
    fn from(m: Gpt2) -> Lm {
        Lm::Gpt2(m)
    }
}
