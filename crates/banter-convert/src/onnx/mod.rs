//! ONNX export in optimum's `text-generation-with-past` layout, so onnxruntime, optimum's
//! `ORTModelForCausalLM`, transformers.js and any runtime written for those exports run it.
//!
//! One graph serves the prompt and every generated token: `past_key_values.N.key/value` may have zero
//! length (`[B, kv_heads, 0, head_dim]`) on the first call. Files written: `model.onnx` (weights inside, or in
//! `model.onnx_data` beside it when they pass 1.8 GiB, under protobuf's 2 GiB limit), `config.json`, the
//! tokenizer and template files. No Python runs at export time.

use std::path::Path;

use banter_model::lm::Arch;
use prost::Message;
use serde::Serialize;

pub mod decoder;
pub mod gpt2;
pub mod graph;
pub mod llama;
pub mod opt;
pub mod proto;
pub mod verify;

use crate::{ConvertError, Source};
use proto::{GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto};

/// The opset the graphs use.
pub const OPSET: i64 = 17;
/// Initializers above this total go to `model.onnx_data`.
const EXTERNAL_ABOVE: usize = 1_800 << 20;

/// What `banter-export onnx` writes.
#[derive(Debug, Clone, Default)]
pub struct OnnxSettings {
    /// Linear weights as int8 per output channel, activations quantized on the fly (`MatMulInteger`).
    pub int8: bool,
    /// Weights in `model.onnx_data` whatever their size (`None`: only when needed).
    pub external_data: Option<bool>,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct OnnxReport {
    /// `config.json`'s `model_type`.
    pub model_type: String,
    /// The opset.
    pub opset: i64,
    /// Graph nodes.
    pub nodes: usize,
    /// Weights and constants.
    pub initializers: usize,
    /// Blocks (pairs of `past_key_values` inputs).
    pub layers: i64,
    /// `model.onnx` bytes.
    pub model_bytes: u64,
    /// `model.onnx_data` bytes (0 when the weights are inside).
    pub external_bytes: u64,
    /// Linear weights are int8.
    pub int8: bool,
    /// Files written beside the graph.
    pub files: Vec<String>,
}

/// Builds the model's graph.
pub fn build(src: &Source, s: &OnnxSettings) -> Result<(ModelProto, decoder::Shape), ConvertError> {
    let mut g = graph::Graph::new(s.int8);
    let w = src.tensors();
    let shape = match src.lm.arch() {
        Arch::Gpt2(c) => gpt2::build(&mut g, c, &w)?,
        Arch::Llama(c) => llama::build(&mut g, c, &w)?,
        Arch::Opt(c) => opt::build(&mut g, c, &w)?,
    };
    let (input, output) = decoder::io(&shape);
    let graph = GraphProto { node: g.nodes, name: "banter".into(), initializer: g.inits, input, output };
    let meta = |k: &str, v: &str| StringStringEntryProto { key: k.into(), value: v.into() };
    let model = ModelProto {
        ir_version: 8,
        producer_name: "banter-export".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("{} exported by banter (text-generation-with-past)", src.model_type()),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        metadata_props: vec![meta("model_type", src.model_type()), meta("task", "text-generation-with-past")],
    };
    Ok((model, shape))
}

/// Moves large initializers to `path` (streamed, each freed once written) and points at them; returns the
/// bytes written.
fn externalize(model: &mut ModelProto, path: &Path) -> Result<u64, ConvertError> {
    use std::io::Write;
    let location = path.file_name().unwrap_or_default().to_string_lossy().to_string();
    let f = std::fs::File::create(path).map_err(|e| ConvertError::io(path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut offset = 0usize;
    for t in model.graph.iter_mut().flat_map(|g| g.initializer.iter_mut()) {
        if t.raw_data.len() < 1024 {
            continue;
        }
        let pad = offset.next_multiple_of(64) - offset;
        w.write_all(&vec![0u8; pad]).map_err(|e| ConvertError::io(path, e))?;
        offset += pad;
        w.write_all(&t.raw_data).map_err(|e| ConvertError::io(path, e))?;
        let e = |k: &str, v: String| StringStringEntryProto { key: k.into(), value: v };
        t.external_data = vec![
            e("location", location.clone()),
            e("offset", offset.to_string()),
            e("length", t.raw_data.len().to_string()),
        ];
        offset += t.raw_data.len();
        t.data_location = 1;
        t.raw_data = Vec::new();
    }
    w.flush().map_err(|e| ConvertError::io(path, e))?;
    Ok(offset as u64)
}

/// Writes the export into `dir` (an empty directory the caller commits).
pub fn export(src: &Source, s: &OnnxSettings, dir: &Path) -> Result<OnnxReport, ConvertError> {
    let (mut model, shape) = build(src, s)?;
    let g = model.graph.as_ref().map(|g| (g.node.len(), g.initializer.len())).unwrap_or_default();
    let weights: usize = model.graph.iter().flat_map(|g| g.initializer.iter()).map(|t| t.raw_data.len()).sum();
    let mut external_bytes = 0;
    if s.external_data.unwrap_or(weights > EXTERNAL_ABOVE) {
        external_bytes = externalize(&mut model, &dir.join("model.onnx_data"))?;
    }
    let bytes = model.encode_to_vec();
    let p = dir.join("model.onnx");
    std::fs::write(&p, &bytes).map_err(|e| ConvertError::io(&p, e))?;
    let mut files = vec!["config.json".to_string()];
    let cfg = dir.join("config.json");
    let text = serde_json::to_string_pretty(&src.config).map_err(|e| ConvertError::Format(e.to_string()))?;
    std::fs::write(&cfg, text + "\n").map_err(|e| ConvertError::io(&cfg, e))?;
    for f in src.side_files() {
        let name = f.file_name().unwrap_or_default().to_string_lossy().to_string();
        let to = dir.join(&name);
        std::fs::copy(&f, &to).map_err(|e| ConvertError::io(&to, e))?;
        files.push(name);
    }
    Ok(OnnxReport {
        model_type: src.model_type().into(),
        opset: OPSET,
        nodes: g.0,
        initializers: g.1,
        layers: shape.layers,
        model_bytes: bytes.len() as u64,
        external_bytes,
        int8: s.int8,
        files,
    })
}
