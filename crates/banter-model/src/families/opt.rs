//! Meta's OPT (facebook/opt-125m … 1.3b, the self-learning chatbot's base) in Hugging Face's layout and
//! names: learned positions with OPT's offset of 2, ReLU MLPs, LayerNorm before (`do_layer_norm_before`,
//! most sizes) or after (opt-350m) each sub-block, and `project_in`/`project_out` when
//! `word_embed_proj_dim` differs from the width (opt-350m). Forward pass (bf16 compute, dropout, LoRA on any
//! Linear) and loss, checked against transformers in `tests/families_parity.rs`; [`crate::lm::Lm`] trains it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

use crate::ModelError;
use crate::Pass;
use crate::cached::{CachedLm, cached_causal_mask, next_token_loss, padded_batch};
use crate::kvcache::KvCache;
use crate::linear::Linear;
use crate::lora::LoraConfig;
use crate::varsource::VarSource;

/// LayerNorm (ε 1e-5) with its weight and bias.
struct Ln {
    w: Tensor,
    b: Tensor,
}

impl Ln {
    fn new(p: nn::Path<'_>, n: i64, src: &VarSource) -> Self {
        Ln { w: src.var(&p, "weight", &[n], Init::Const(1.0)), b: src.var(&p, "bias", &[n], Init::Const(0.0)) }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.w.size()[0]], Some(&self.w), Some(&self.b), 1e-5, true)
    }
}

fn yes() -> bool {
    true
}
fn relu() -> String {
    "relu".into()
}
fn tenth() -> f64 {
    0.1
}

/// OPT's `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptConfig {
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Width.
    pub hidden_size: i64,
    /// MLP width.
    pub ffn_dim: i64,
    /// Blocks.
    pub num_hidden_layers: i64,
    /// Heads.
    pub num_attention_heads: i64,
    /// Longest context (the position table has 2 more rows).
    pub max_position_embeddings: i64,
    /// Pre-LN (true) or post-LN (opt-350m).
    #[serde(default = "yes")]
    pub do_layer_norm_before: bool,
    /// Embedding width (default: the model width).
    #[serde(default)]
    pub word_embed_proj_dim: Option<i64>,
    /// `relu` (OPT) or `gelu`.
    #[serde(default = "relu")]
    pub activation_function: String,
    /// Linear layers have biases.
    #[serde(default = "yes")]
    pub enable_bias: bool,
    /// opt-350m-style checkpoints without the final LayerNorm.
    #[serde(default, rename = "_remove_final_layer_norm")]
    pub remove_final_layer_norm: bool,
    /// Dropout on the attention and MLP outputs while training.
    #[serde(default = "tenth")]
    pub dropout: f64,
    /// Dropout on the attention probabilities while training.
    #[serde(default)]
    pub attention_dropout: f64,
    /// Every other key of config.json (token ids, dtype, …), written back as it came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl OptConfig {
    /// Reads and checks a config given as JSON (`what` names it in errors).
    pub fn from_value(v: serde_json::Value, what: &str) -> Result<Self, ModelError> {
        if v["model_type"] != "opt" {
            return Err(ModelError::Config(format!("{what}: model_type {} is not opt", v["model_type"])));
        }
        let cfg: OptConfig = serde_json::from_value(v).map_err(|e| ModelError::Config(format!("{what}: {e}")))?;
        if !matches!(cfg.activation_function.as_str(), "relu" | "gelu") {
            return Err(ModelError::Config(format!(
                "{what}: activation {:?} is not supported",
                cfg.activation_function
            )));
        }
        if cfg.num_attention_heads <= 0 || cfg.hidden_size % cfg.num_attention_heads != 0 {
            return Err(ModelError::Config(format!("{what}: hidden_size must be a multiple of num_attention_heads")));
        }
        Ok(cfg)
    }
}

struct Block {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    attn_ln: Ln,
    fc1: Linear,
    fc2: Linear,
    final_ln: Ln,
}

/// An OPT causal LM.
pub struct Opt {
    /// The configuration.
    pub cfg: OptConfig,
    /// Every weight, under Hugging Face's names.
    pub vs: nn::VarStore,
    /// LoRA weights (PEFT names), when an adapter is attached.
    pub lora_vs: Option<nn::VarStore>,
    /// The LoRA configuration, when attached.
    pub lora_cfg: Option<LoraConfig>,
    pub(crate) embed: Tensor,
    /// int8 copy of the output projection (the tied embeddings) for inference.
    pub(crate) head_int8: Option<crate::quant::Int8Weight>,
    positions: Tensor,
    project_in: Option<Linear>,
    project_out: Option<Linear>,
    blocks: Vec<Block>,
    final_ln: Option<Ln>,
}

impl std::fmt::Debug for Opt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opt").field("cfg", &self.cfg).finish()
    }
}

impl Opt {
    /// Random weights of `cfg`'s shape.
    pub fn new(cfg: OptConfig, device: Device) -> Self {
        Self::build(cfg, device, &VarSource::random())
    }

    /// The model with its variables from `src` (random, or a checkpoint's tensors).
    fn build(cfg: OptConfig, device: Device, src: &VarSource) -> Self {
        let vs = nn::VarStore::new(device);
        let d = &vs.root() / "model" / "decoder";
        let (e, we) = (cfg.hidden_size, cfg.word_embed_proj_dim.unwrap_or(cfg.hidden_size));
        let bias = cfg.enable_bias;
        let lin = |p: nn::Path<'_>, i, o, b| Linear::build(p, i, o, b, 0.02, src);
        let ln = |p: nn::Path<'_>| Ln::new(p, e, src);
        let normal = Init::Randn { mean: 0.0, stdev: 0.02 };
        let embed = src.var(&(&d / "embed_tokens"), "weight", &[cfg.vocab_size, we], normal);
        let positions = src.var(&(&d / "embed_positions"), "weight", &[cfg.max_position_embeddings + 2, e], normal);
        let (project_in, project_out) = if we != e {
            (Some(lin(&d / "project_in", we, e, false)), Some(lin(&d / "project_out", e, we, false)))
        } else {
            (None, None)
        };
        let blocks = (0..cfg.num_hidden_layers)
            .map(|i| {
                let b = &d / "layers" / i;
                let a = &b / "self_attn";
                Block {
                    q: lin(&a / "q_proj", e, e, bias),
                    k: lin(&a / "k_proj", e, e, bias),
                    v: lin(&a / "v_proj", e, e, bias),
                    out: lin(&a / "out_proj", e, e, bias),
                    attn_ln: ln(&b / "self_attn_layer_norm"),
                    fc1: lin(&b / "fc1", e, cfg.ffn_dim, bias),
                    fc2: lin(&b / "fc2", cfg.ffn_dim, e, bias),
                    final_ln: ln(&b / "final_layer_norm"),
                }
            })
            .collect();
        let final_ln = (cfg.do_layer_norm_before && !cfg.remove_final_layer_norm).then(|| ln(&d / "final_layer_norm"));
        Opt {
            cfg,
            vs,
            lora_vs: None,
            lora_cfg: None,
            embed,
            head_int8: None,
            positions,
            project_in,
            project_out,
            blocks,
            final_ln,
        }
    }

    /// Loads a Hugging Face OPT directory (safetensors or a PyTorch checkpoint).
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        Self::load_as(dir, device, Kind::Float)
    }

    /// Loads with the matrices in `kind` (no fp32 copy of a bf16 checkpoint) and norms and biases in fp32.
    pub fn load_as(dir: &Path, device: Device, kind: Kind) -> Result<Self, ModelError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        Self::load_from(dir, OptConfig::from_value(v, &path.display().to_string())?, device, kind)
    }

    /// [`Opt::load_as`] with the configuration already read (config.json is parsed once per load).
    pub fn load_from(dir: &Path, cfg: OptConfig, device: Device, kind: Kind) -> Result<Self, ModelError> {
        let mut loaded = std::collections::HashMap::new();
        for f in crate::io::weight_files(dir)? {
            for (name, t) in crate::io::read_weights_as(&f, device, kind)? {
                // lm_head is tied to the embeddings; old checkpoints name the decoder without `model.`.
                if name == "lm_head.weight" {
                    continue;
                }
                let name = if name.starts_with("model.") { name } else { format!("model.{name}") };
                loaded.insert(name, t);
            }
        }
        let src = VarSource::loaded(loaded);
        let model = Opt::build(cfg, device, &src);
        src.finish(dir)?;
        Ok(model)
    }

    /// Logits `[B, T, V]` (fp32, no cache, no padding).
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        self.logits_cached(ids, &mut KvCache::default(), Pass::eval())
    }

    /// Final hidden states `[B, T, word_embed_proj_dim]` (after the last norm and `project_out`).
    pub fn hidden_pass(&self, ids: &Tensor, cache: &mut KvCache, pass: Pass) -> Tensor {
        let t = ids.size()[1];
        let seeds = crate::checkpoint::BlockSeeds::draw(pass.train, self.blocks.len());
        let (mut x, mask) = self.embed_pass(ids, cache.len(), cache.pads(), pass, &seeds);
        for i in 0..self.blocks.len() {
            seeds.block(i);
            x = self.block(i, &x, mask.as_ref(), Some(&mut *cache), pass);
        }
        seeds.done();
        cache.advance(t);
        self.finish_pass(&x, pass)
    }

    /// The residual stream entering block 0 (tokens, `project_in`, positions) and the attention mask, for
    /// `ids` after `start` cached tokens (`pads`: the cache's left padding per row).
    pub(crate) fn embed_pass(
        &self,
        ids: &Tensor,
        start: i64,
        pads: &[i64],
        pass: Pass,
        seeds: &crate::checkpoint::BlockSeeds,
    ) -> (Tensor, Option<Tensor>) {
        let t = ids.size()[1];
        let mut x = Tensor::embedding(&self.embed, ids, -1, false, false).to_kind(Kind::Float);
        if let Some(p) = &self.project_in {
            x = p.forward(&x, pass.compute, pass.train).to_kind(Kind::Float);
        }
        // OPT's learned positions start at row 2.
        // A left-padded batch counts each row's positions from its first real token and masks its padding.
        let (pos, mask) = match padded_batch(pads, start, t, ids.device()) {
            Some((pos, mask)) => (pos + 2, Some(mask)),
            None => (
                Tensor::arange_start(start + 2, start + t + 2, (Kind::Int64, ids.device())).unsqueeze(0),
                cached_causal_mask(start, t, ids.device()),
            ),
        };
        seeds.embed();
        (&x + Tensor::embedding(&self.positions, &pos, -1, false, false), mask)
    }

    /// Number of blocks.
    pub(crate) fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Block `i` on the residual stream `x` `[B, T, E]`, its keys and values appended to `cache`.
    pub(crate) fn block(
        &self,
        i: usize,
        x: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
        pass: Pass,
    ) -> Tensor {
        let (ck, train) = (pass.compute, pass.train);
        let c = &self.cfg;
        let blk = &self.blocks[i];
        let drop = |x: Tensor| crate::dropout::dropout(&x, c.dropout, train);
        let attn_p = if train { c.attention_dropout } else { 0.0 };
        let (b, t) = (x.size()[0], x.size()[1]);
        let (nh, e) = (c.num_attention_heads, c.hidden_size);
        let hd = e / nh;
        let act = |h: Tensor| if c.activation_function == "relu" { h.relu() } else { h.gelu("none") };
        let pre = c.do_layer_norm_before;
        let h = if pre { blk.attn_ln.forward(x) } else { x.shallow_clone() };
        let split = |l: &Linear| l.forward(&h, ck, train).view([b, t, nh, hd]).transpose(1, 2);
        let (k, v) = match cache {
            Some(cache) => cache.append(i, &split(&blk.k), &split(&blk.v)),
            None => (split(&blk.k), split(&blk.v)),
        };
        let y = match mask {
            None => crate::dropout::attention(&split(&blk.q), &k, &v, None, attn_p, true, false),
            Some(m) => crate::dropout::attention(&split(&blk.q), &k, &v, Some(m), attn_p, false, false),
        };
        let mut x = x + drop(blk.out.forward(&y.transpose(1, 2).contiguous().view([b, t, e]), ck, train));
        if !pre {
            x = blk.attn_ln.forward(&x);
        }
        let h = if pre { blk.final_ln.forward(&x) } else { x.shallow_clone() };
        x = &x + drop(blk.fc2.forward(&act(blk.fc1.forward(&h, ck, train)), ck, train));
        if !pre {
            x = blk.final_ln.forward(&x);
        }
        x
    }

    /// The final norm and `project_out`.
    pub(crate) fn finish_pass(&self, x: &Tensor, pass: Pass) -> Tensor {
        let mut x = x.shallow_clone();
        if let Some(ln) = &self.final_ln {
            x = ln.forward(&x);
        }
        if let Some(p) = &self.project_out {
            x = p.forward(&x, pass.compute, pass.train);
        }
        x
    }

    /// Logits (fp32) of final hidden states: the tied embeddings.
    pub fn head_pass(&self, x: &Tensor, pass: Pass) -> Tensor {
        let (ck, train) = (pass.compute, pass.train);
        if let Some(q) = self.head_int8.as_ref().filter(|_| ck == Kind::Float && !train) {
            q.matmul_t(x)
        } else if ck == Kind::Float && x.kind() == Kind::Float && self.embed.kind() == Kind::Float {
            let w = &self.embed;
            (!train).then(|| crate::decode::linear_rows(w, None, x)).flatten().unwrap_or_else(|| x.matmul(&w.tr()))
        } else if let Some(y) = (!train && self.embed.kind() == Kind::BFloat16)
            .then(|| crate::bf16::linear_rows_bf16(&self.embed, None, x))
            .flatten()
        {
            y
        } else {
            x.to_kind(ck).matmul(&self.embed.to_kind(ck).tr()).to_kind(Kind::Float)
        }
    }

    /// Mean next-token cross-entropy over labels other than -100.
    pub fn loss(&self, ids: &Tensor, labels: &Tensor) -> Tensor {
        next_token_loss(&self.forward(ids), labels)
    }

    /// The loss in `pass` (dropout, compute precision).
    pub fn loss_pass(&self, ids: &Tensor, labels: &Tensor, pass: Pass) -> Tensor {
        next_token_loss(&self.logits_cached(ids, &mut KvCache::default(), pass), labels)
    }

    /// Every Linear layer by its module path (`model.decoder.layers.0.self_attn.q_proj`), for LoRA.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut v = Vec::new();
        if let Some(p) = self.project_in.as_mut() {
            v.push(("model.decoder.project_in".to_string(), p));
        }
        if let Some(p) = self.project_out.as_mut() {
            v.push(("model.decoder.project_out".to_string(), p));
        }
        for (i, b) in self.blocks.iter_mut().enumerate() {
            let l = format!("model.decoder.layers.{i}");
            v.push((format!("{l}.self_attn.q_proj"), &mut b.q));
            v.push((format!("{l}.self_attn.k_proj"), &mut b.k));
            v.push((format!("{l}.self_attn.v_proj"), &mut b.v));
            v.push((format!("{l}.self_attn.out_proj"), &mut b.out));
            v.push((format!("{l}.fc1"), &mut b.fc1));
            v.push((format!("{l}.fc2"), &mut b.fc2));
        }
        v
    }
}

impl CachedLm for Opt {
    fn hidden_cached(&self, ids: &Tensor, cache: &mut KvCache, pass: Pass) -> Tensor {
        self.hidden_pass(ids, cache, pass)
    }

    fn head_logits(&self, x: &Tensor, pass: Pass) -> Tensor {
        self.head_pass(x, pass)
    }

    fn context(&self) -> usize {
        self.cfg.max_position_embeddings as usize
    }

    fn device(&self) -> Device {
        self.vs.device()
    }
}
