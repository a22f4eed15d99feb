//! Hugging Face and PEFT files: `config.json` + `model.safetensors` (or a sharded index) in, the same out
//! (with `{"format":"pt"}` metadata, as `transformers` writes); `adapter_config.json` +
//! `adapter_model.safetensors` for LoRA. PyTorch pickle checkpoints are read without running their code (`pickle.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use crate::ModelError;
use crate::config::Gpt2Config;
use crate::gpt2::Gpt2;
use crate::lora::LoraConfig;

/// Reads every tensor of a safetensors file as fp32 on `device`.
pub fn read_safetensors(path: &Path, device: Device) -> Result<Vec<(String, Tensor)>, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Format(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::F64 => Kind::Double,
            Dtype::I64 => Kind::Int64,
            Dtype::U8 | Dtype::BOOL => {
                // attn.bias / masked_bias buffers in old checkpoints: not parameters.
                continue;
            }
            other => {
                return Err(ModelError::Format(format!(
                    "{}: tensor {name} has unsupported dtype {other:?}",
                    path.display()
                )));
            }
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(|e| ModelError::Format(format!("{}: tensor {name}: {e}", path.display())))?;
        let t = if kind == Kind::Int64 { t } else { t.to_kind(Kind::Float) };
        out.push((name, t.to_device(device)));
    }
    Ok(out)
}

/// Writes tensors (as fp32, contiguous, on the CPU) to a safetensors file with `{"format":"pt"}`, atomically.
pub fn write_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<(), ModelError> {
    // Streamed: the header first, then each tensor's bytes through one reused buffer, so writing a
    // checkpoint (optimizer state included) holds one tensor's copy at a time, not the whole file.
    let mut order: Vec<&(String, Tensor)> = tensors.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, t) in &order {
        let bytes = t.numel() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.size(), "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut head =
        serde_json::to_vec(&serde_json::Value::Object(header)).map_err(|e| ModelError::Format(e.to_string()))?;
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = banter_core::jsonl::Output::file(path).map_err(ModelError::from)?;
    let io_err = |e| ModelError::io(path, e);
    std::io::Write::write_all(&mut out, &(head.len() as u64).to_le_bytes()).map_err(io_err)?;
    std::io::Write::write_all(&mut out, &head).map_err(io_err)?;
    const CHUNK: usize = 1 << 18;
    let (mut vals, mut bytes) = (vec![0f32; CHUNK], Vec::with_capacity(CHUNK * 4));
    for (_, t) in order {
        let flat = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().reshape([-1]);
        let n = flat.numel();
        let mut at = 0;
        while at < n {
            let k = CHUNK.min(n - at);
            flat.narrow(0, at as i64, k as i64).copy_data(&mut vals[..k], k);
            bytes.clear();
            for v in &vals[..k] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            std::io::Write::write_all(&mut out, &bytes).map_err(io_err)?;
            at += k;
        }
    }
    out.commit().map_err(ModelError::from)
}

/// The weight files of a model directory: `model.safetensors`, or the shards of
/// `model.safetensors.index.json`; failing those, `pytorch_model.bin` or the shards of
/// `pytorch_model.bin.index.json` (read by [`crate::pickle`], which runs no code from them).
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    for (single, index) in
        [("model.safetensors", "model.safetensors.index.json"), ("pytorch_model.bin", "pytorch_model.bin.index.json")]
    {
        if let Some(files) = weight_set(dir, single, index)? {
            return Ok(files);
        }
    }
    for other in ["model.ckpt", "tf_model.h5", "flax_model.msgpack"] {
        if dir.join(other).exists() {
            return Err(ModelError::Format(format!(
                "{}: only {other} is there; banter reads safetensors and PyTorch checkpoints. Convert it once with \
                 transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)",
                dir.display()
            )));
        }
    }
    Err(ModelError::Format(format!("{}: no model.safetensors or pytorch_model.bin", dir.display())))
}

/// One file, or the shards an index names; `None` when neither is there.
fn weight_set(dir: &Path, single: &str, index: &str) -> Result<Option<Vec<PathBuf>>, ModelError> {
    let single = dir.join(single);
    if single.exists() {
        return Ok(Some(vec![single]));
    }
    let index = dir.join(index);
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Format(format!("{}: {e}", index.display())))?;
        let mut files: Vec<String> = v["weight_map"]
            .as_object()
            .map(|m| m.values().filter_map(|f| f.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        files.sort();
        files.dedup();
        if files.is_empty() {
            return Err(ModelError::Format(format!("{}: empty weight_map", index.display())));
        }
        if let Some(f) = files.iter().find(|f| f.contains('/') || f.contains("..")) {
            return Err(ModelError::Format(format!("{}: shard {f:?} is outside the model directory", index.display())));
        }
        return Ok(Some(files.into_iter().map(|f| dir.join(f)).collect()));
    }
    Ok(None)
}

/// Every tensor of a weight file (safetensors, or a PyTorch checkpoint by its `.bin` name) as fp32.
pub fn read_weights(path: &Path, device: Device) -> Result<Vec<(String, Tensor)>, ModelError> {
    if path.extension().is_some_and(|e| e == "bin") {
        let t = crate::torch_zip::read_torch_zip(path)?;
        Ok(t.into_iter().map(|(n, t)| (n, t.to_device(device))).collect())
    } else {
        read_safetensors(path, device)
    }
}

/// Every tensor of a weight file with its matrices (2 dims or more) in `kind` and the rest (norms, biases)
/// in fp32, integer buffers skipped. Safetensors files are read one tensor at a time, so the peak is the
/// converted tensors plus one tensor's bytes — never the whole file twice.
pub fn read_weights_as(path: &Path, device: Device, kind: Kind) -> Result<Vec<(String, Tensor)>, ModelError> {
    let want = |t: Tensor| {
        let k = if t.dim() >= 2 { kind } else { Kind::Float };
        t.to_kind(k).to_device(device)
    };
    if path.extension().is_some_and(|e| e == "bin") {
        let t = crate::torch_zip::read_torch_zip(path)?;
        return Ok(t.into_iter().map(|(n, t)| (n, want(t))).collect());
    }
    use std::io::{Read, Seek, SeekFrom};
    let bad = |m: String| ModelError::Format(format!("{}: {m}", path.display()));
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let file_len = f.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| ModelError::io(path, e))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(bad(format!("header of {n} bytes: not a safetensors file")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| ModelError::io(path, e))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    let mut entries: Vec<(u64, u64, String, Kind, Vec<i64>)> = Vec::new();
    for (name, v) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let dtype = v["dtype"].as_str().unwrap_or_default();
        let kind = match dtype {
            "F32" => Kind::Float,
            "F16" => Kind::Half,
            "BF16" => Kind::BFloat16,
            "F64" => Kind::Double,
            "I64" | "U8" | "BOOL" => continue, // buffers (masks, position ids), not parameters
            other => return Err(bad(format!("tensor {name} has unsupported dtype {other}"))),
        };
        let shape: Vec<i64> =
            v["shape"].as_array().map(|a| a.iter().filter_map(|d| d.as_i64()).collect()).unwrap_or_default();
        let off = v["data_offsets"].as_array().ok_or_else(|| bad(format!("tensor {name}: no data_offsets")))?;
        let (a, b) = (off.first().and_then(|x| x.as_u64()), off.get(1).and_then(|x| x.as_u64()));
        let (Some(a), Some(b)) = (a, b) else { return Err(bad(format!("tensor {name}: bad data_offsets"))) };
        let elt = match kind {
            Kind::Float => 4,
            Kind::Double => 8,
            _ => 2,
        };
        // Dimensions must be non-negative and their product must not overflow (a wrapped product could
        // match a zero-length span and send a huge shape to libtorch).
        let numel = shape.iter().try_fold(1u64, |acc, &d| u64::try_from(d).ok().and_then(|d| acc.checked_mul(d)));
        if b < a || numel.and_then(|n| n.checked_mul(elt)) != Some(b - a) {
            return Err(bad(format!("tensor {name}: data_offsets do not match shape {shape:?}")));
        }
        if 8 + n + b > file_len {
            return Err(bad(format!("tensor {name}: data_offsets run past the end of the file")));
        }
        entries.push((a, b, name.clone(), kind, shape));
    }
    entries.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(entries.len());
    for (a, b, name, k, shape) in entries {
        f.seek(SeekFrom::Start(8 + n + a)).map_err(|e| ModelError::io(path, e))?;
        // Read straight into the tensor's storage: no second buffer of the tensor's size.
        let t = Tensor::f_empty(shape.as_slice(), (k, Device::Cpu)).map_err(|e| bad(format!("tensor {name}: {e}")))?;
        let nbytes = (b - a) as usize;
        if nbytes > 0 {
            #[allow(unsafe_code)]
            // SAFETY: `t` was just allocated, contiguous on CPU, with `nbytes` bytes (its element count times
            // its element size, checked against the offsets above); nothing else refers to it yet.
            let dst = unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, nbytes) };
            f.read_exact(dst).map_err(|e| ModelError::io(path, e))?;
        }
        out.push((name, want(t)));
    }
    Ok(out)
}

/// Loads a GPT-2 from a Hugging Face directory (`transformer.` prefix or not; mask buffers ignored).
pub fn load_model(dir: &Path, device: Device) -> Result<Gpt2, ModelError> {
    load_model_from(dir, Gpt2Config::load(&dir.join("config.json"))?, device)
}

/// [`load_model`] with the configuration already read.
pub fn load_model_from(dir: &Path, cfg: Gpt2Config, device: Device) -> Result<Gpt2, ModelError> {
    let mut model = Gpt2::new(cfg, device);
    let mut loaded: HashMap<String, Tensor> = HashMap::new();
    for f in weight_files(dir)? {
        for (name, t) in read_weights(&f, device)? {
            if name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") || name == "lm_head.weight" {
                continue;
            }
            let name = if name.starts_with("transformer.") { name } else { format!("transformer.{name}") };
            loaded.insert(name, t);
        }
    }
    assign(&model.vs, &loaded, dir)?;
    // set_data keeps the model's handles pointing at the loaded values.
    model.wte = model.vs.variables()["transformer.wte.weight"].shallow_clone();
    Ok(model)
}

pub(crate) fn assign(vs: &tch::nn::VarStore, loaded: &HashMap<String, Tensor>, dir: &Path) -> Result<(), ModelError> {
    let _g = tch::no_grad_guard();
    let vars = vs.variables();
    let mut missing = Vec::new();
    for (name, var) in vars.iter() {
        match loaded.get(name) {
            Some(t) if t.size() == var.size() => {
                let mut v = var.shallow_clone();
                v.copy_(t);
            }
            Some(t) => {
                return Err(ModelError::Format(format!(
                    "{}: {name} has shape {:?}, config.json says {:?}",
                    dir.display(),
                    t.size(),
                    var.size()
                )));
            }
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(missing_weights(dir, missing));
    }
    let extra: Vec<String> = loaded.keys().filter(|k| !vars.contains_key(*k)).cloned().collect();
    if !extra.is_empty() {
        return Err(unexpected_weights(dir, extra));
    }
    Ok(())
}

/// The error for weights a checkpoint lacks, naming a few.
pub(crate) fn missing_weights(dir: &Path, mut names: Vec<String>) -> ModelError {
    names.sort();
    ModelError::Format(format!(
        "{}: {} weight(s) missing, e.g. {}",
        dir.display(),
        names.len(),
        names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
    ))
}

/// The error for weights a checkpoint has that the model does not, naming a few.
pub(crate) fn unexpected_weights(dir: &Path, mut names: Vec<String>) -> ModelError {
    names.sort();
    ModelError::Format(format!(
        "{}: unexpected weight(s) for this model type, e.g. {}",
        dir.display(),
        names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
    ))
}

/// Saves the base model (`config.json` + `model.safetensors`) in Hugging Face's layout.
pub fn save_model(model: &Gpt2, dir: &Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let vars: BTreeMap<String, Tensor> = model.vs.variables().into_iter().collect();
    let tensors: Vec<(String, Tensor)> = vars.into_iter().collect();
    write_safetensors(&tensors, &dir.join("model.safetensors"))?;
    write_json(&dir.join("config.json"), &model.cfg.to_hf_json())
}

/// Writes pretty JSON atomically.
pub fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), ModelError> {
    let mut out = banter_core::jsonl::Output::file(path).map_err(ModelError::from)?;
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    std::io::Write::write_all(&mut out, text.as_bytes()).map_err(|e| ModelError::io(path, e))?;
    out.commit().map_err(ModelError::from)
}

/// Saves the attached LoRA as a PEFT adapter; `extra` (e.g. grown embeddings under `modules_to_save`) are
/// written with it.
pub fn save_adapter(model: &Gpt2, dir: &Path, base: &str, extra: &[(String, Tensor)]) -> Result<(), ModelError> {
    let (Some(vs), Some(cfg)) = (&model.lora_vs, &model.lora_cfg) else {
        return Err(ModelError::Config("no LoRA adapter to save".into()));
    };
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    tensors.extend(extra.iter().map(|(n, t)| (n.clone(), t.shallow_clone())));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    write_safetensors(&tensors, &dir.join("adapter_model.safetensors"))?;
    let modules: Option<Vec<String>> = (!extra.is_empty()).then(|| vec!["wte".to_string()]);
    write_json(&dir.join("adapter_config.json"), &cfg.to_peft_json(base, modules))
}

/// Copies an adapter file's tensors (`by_name`, PEFT names without `.default`) into the attached LoRA
/// variables; a missing, misshapen or unexpected tensor is an error naming it.
pub(crate) fn copy_adapter(
    vars: &HashMap<String, Tensor>,
    by_name: &HashMap<String, Tensor>,
    file: &Path,
) -> Result<(), ModelError> {
    let _g = tch::no_grad_guard();
    for (name, var) in vars.iter() {
        let t =
            by_name.get(name).ok_or_else(|| ModelError::Format(format!("{}: {name} is missing", file.display())))?;
        if t.size() != var.size() {
            return Err(ModelError::Format(format!(
                "{}: {name} has shape {:?}, expected {:?}",
                file.display(),
                t.size(),
                var.size()
            )));
        }
        var.shallow_clone().copy_(t);
    }
    let unknown: Vec<&String> = by_name.keys().filter(|k| !vars.contains_key(*k)).collect();
    if !unknown.is_empty() {
        return Err(ModelError::Format(format!(
            "{}: unexpected tensors, e.g. {:?}",
            file.display(),
            unknown.iter().take(2).collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// Loads a PEFT LoRA adapter onto a model (attaching fresh layers, then copying the weights). Keys are
/// matched with or without PEFT's `.default` adapter name.
pub fn load_adapter(model: &mut Gpt2, dir: &Path) -> Result<LoraConfig, ModelError> {
    let cfg_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::Format(format!("{}: {e}", cfg_path.display())))?;
    let cfg = LoraConfig::from_peft_json(&v).map_err(|e| ModelError::Format(format!("{}: {e}", cfg_path.display())))?;
    let file = dir.join("adapter_model.safetensors");
    if !file.exists() && dir.join("adapter_model.bin").exists() {
        return Err(ModelError::Format(format!(
            "{}: adapter_model.bin is pickle; save the adapter with safe_serialization",
            dir.display()
        )));
    }
    let device = model.device();
    let tensors = read_safetensors(&file, device)?;
    let mut by_name: HashMap<String, Tensor> = HashMap::new();
    let mut wte_rows: Option<Tensor> = None;
    for (name, t) in tensors {
        let name = name
            .replace(".lora_A.default.weight", ".lora_A.weight")
            .replace(".lora_B.default.weight", ".lora_B.weight");
        if name.contains("transformer.wte") {
            wte_rows = Some(t);
            continue;
        }
        by_name.insert(name, t);
    }
    if let Some(w) = wte_rows {
        model.resize_vocab(w.size()[0]);
        let _g = tch::no_grad_guard();
        model.wte.set_data(&w);
    }
    model.attach_lora(&LoraConfig { dropout: cfg.dropout, ..cfg.clone() });
    let vs = model.lora_vs.as_ref().expect("attached");
    copy_adapter(&vs.variables(), &by_name, &file)?;
    Ok(cfg)
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    /// A safetensors file of bf16 tensors written by hand: a `[2, 3]` matrix and a `[3]` vector.
    fn bf16_file(dir: &Path) -> (PathBuf, Tensor, Tensor) {
        let w = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.25, 8.0, -0.125]).view([2, 3]).to_kind(Kind::BFloat16);
        let b = Tensor::from_slice(&[0.25f32, 1.5, -4.0]).to_kind(Kind::BFloat16);
        let bytes = |t: &Tensor| -> Vec<u8> {
            let v: Vec<i16> = Vec::try_from(&t.view_dtype(Kind::Int16).reshape([-1])).unwrap();
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        };
        let header = serde_json::json!({
            "__metadata__": {"format": "pt"},
            "b": {"dtype": "BF16", "shape": [3], "data_offsets": [12, 18]},
            "w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
        })
        .to_string();
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header.as_bytes());
        file.extend(bytes(&w));
        file.extend(bytes(&b));
        let p = dir.join("m.safetensors");
        std::fs::write(&p, file).unwrap();
        (p, w, b)
    }

    #[test]
    fn matrices_stay_in_the_asked_dtype_and_vectors_become_fp32() {
        let d = tempfile::tempdir().unwrap();
        let (p, w, b) = bf16_file(d.path());
        let got: HashMap<String, Tensor> =
            read_weights_as(&p, Device::Cpu, Kind::BFloat16).unwrap().into_iter().collect();
        assert_eq!(got["w"].kind(), Kind::BFloat16);
        assert!(got["w"].equal(&w));
        assert_eq!(got["b"].kind(), Kind::Float);
        assert!(got["b"].equal(&b.to_kind(Kind::Float)));
        let fp32: HashMap<String, Tensor> =
            read_weights_as(&p, Device::Cpu, Kind::Float).unwrap().into_iter().collect();
        assert_eq!(fp32["w"].kind(), Kind::Float);
        assert!(fp32["w"].equal(&w.to_kind(Kind::Float)));
    }

    #[test]
    fn a_truncated_or_lying_file_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let (p, _, _) = bf16_file(d.path());
        let full = std::fs::read(&p).unwrap();
        std::fs::write(&p, &full[..full.len() - 4]).unwrap();
        assert!(read_weights_as(&p, Device::Cpu, Kind::Float).is_err());
        std::fs::write(&p, [0xff; 8]).unwrap();
        assert!(read_weights_as(&p, Device::Cpu, Kind::Float).is_err());
        // Shapes whose product overflows (wrapping to the zero-length span) or that are negative.
        for shape in ["[4294967296, 4294967296]", "[-2, -2]", "[-1, 0]"] {
            let header = format!(r#"{{"w": {{"dtype": "F32", "shape": {shape}, "data_offsets": [0, 0]}}}}"#);
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend_from_slice(header.as_bytes());
            std::fs::write(&p, bytes).unwrap();
            let e = read_weights_as(&p, Device::Cpu, Kind::Float).unwrap_err().to_string();
            assert!(e.contains("do not match shape"), "{shape}: {e}");
        }
    }
}
