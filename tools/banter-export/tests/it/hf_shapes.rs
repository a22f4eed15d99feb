//! Models banter did not make: random models saved by transformers in shapes banter's training does not
//! produce (Llama 3 RoPE scaling with an untied head and attention biases, Qwen2 untied, Gemma with only a
//! SentencePiece `tokenizer.model`), exported to ONNX (checked in onnxruntime) and GGUF (read back with
//! gguf-py, and run in llama.cpp where it is installed).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::{bin, python, testdata};

#[test]
fn hub_shaped_models_export_to_onnx_and_gguf() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok.json");
    let st = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-tokenize"))
        .args(["train-tokenizer", "--vocab-size", "400", "--min-frequency", "1", "-q", "-o"])
        .arg(&tok)
        .arg(testdata("train/persona.jsonl"))
        .status()
        .unwrap();
    assert!(st.success());
    let py_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let o = Command::new(&py)
        .arg(py_dir.join("make_hf.py"))
        .arg(dir.path())
        .arg(&tok)
        .arg(testdata("train/persona.jsonl"))
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .unwrap();
    assert!(o.status.success(), "make_hf: {}", String::from_utf8_lossy(&o.stderr));
    let made: Value =
        serde_json::from_slice(o.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
    let llama_cpp = Command::new(&py).args(["-c", "import llama_cpp"]).output().is_ok_and(|o| o.status.success());
    let mut jobs = Vec::new();
    for (name, arch) in [("llama3-scaled", "llama"), ("qwen2-untied", "qwen2"), ("gemma-spm", "gemma")] {
        let model = PathBuf::from(made[name].as_str().unwrap());
        let onnx = dir.path().join(format!("{name}-onnx"));
        let o = bin().arg("onnx").arg(&model).arg("-o").arg(&onnx).args(["--verify", "--json"]).output().unwrap();
        assert!(o.status.success(), "{name} onnx: {}", String::from_utf8_lossy(&o.stderr));
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["verify"]["greedy_agree"], 20, "{name}");
        let gguf = dir.path().join(format!("{name}.gguf"));
        let mut c = bin();
        c.arg("gguf").arg(&model).arg("-o").arg(&gguf).args(["--type", "f32", "--json"]);
        if llama_cpp {
            c.arg("--verify");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{name} gguf: {}", String::from_utf8_lossy(&o.stderr));
        let spm = (name == "gemma-spm").then(|| made["spm"].clone());
        jobs.push(json!({"gguf": gguf, "model": model, "arch": arch, "type": "f32", "template": false, "spm": spm}));
    }
    let o = Command::new(&py).arg(py_dir.join("gguf_check.py")).arg(Value::from(jobs).to_string()).output().unwrap();
    assert!(o.status.success(), "gguf check: {}", String::from_utf8_lossy(&o.stderr));
}
