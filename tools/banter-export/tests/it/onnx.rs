//! ONNX export of every family: onnxruntime's logits within 1e-4 of banter's, the KV-cache inputs, a
//! left-padded batch, greedy decoding equal for 20 tokens (`--verify`), the graph valid for the `onnx`
//! checker with optimum's input and output names; int8 runs; a LoRA adapter is merged.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::{bin, families, python, trained};

fn export(model: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> Value {
    let o = bin().arg("onnx").arg(model).arg("-o").arg(out).args(["--verify", "--json"]).args(extra).output().unwrap();
    assert!(o.status.success(), "{}: {}", model.display(), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn every_family_exports_to_onnx_and_runs_in_onnxruntime_as_banter_does() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut graphs: Vec<(String, PathBuf)> = Vec::new();
    for (name, cfg) in families() {
        let model = trained(dir.path(), name, &cfg, &[]);
        let out = dir.path().join(format!("onnx-{name}"));
        let r = export(&model, &out, &[]);
        let v = &r["verify"];
        assert!(v["max_abs_diff"].as_f64().unwrap() <= 1e-4, "{name}: {v}");
        assert!(v["cached_max_abs_diff"].as_f64().unwrap() <= 1e-4, "{name}: {v}");
        assert!(v["batch_max_abs_diff"].as_f64().unwrap() <= 1e-4, "{name}: {v}");
        assert_eq!(v["greedy_agree"], 20, "{name}: {v}");
        for f in ["model.onnx", "config.json", "tokenizer.json"] {
            assert!(out.join(f).exists(), "{name}: {f}");
        }
        graphs.push((name.to_string(), out.join("model.onnx")));
    }
    let o = Command::new(&py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/onnx_check.py"))
        .args(graphs.iter().map(|(_, p)| p))
        .output()
        .unwrap();
    assert!(o.status.success(), "onnx checker: {}", String::from_utf8_lossy(&o.stderr));
    let checked: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    for ((name, _), c) in graphs.iter().zip(&checked) {
        let inputs: Vec<&str> = c["inputs"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
        let outputs: Vec<&str> = c["outputs"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
        assert_eq!(inputs[..2], ["input_ids", "attention_mask"], "{name}");
        // optimum exports OPT without position_ids (it counts positions from the mask).
        assert_eq!(inputs.contains(&"position_ids"), !name.starts_with("opt"), "{name}");
        assert!(inputs.contains(&"past_key_values.1.value") && outputs.contains(&"present.1.key"), "{name}");
        assert_eq!(outputs[0], "logits", "{name}");
    }
}

#[test]
fn int8_graphs_run_and_lora_adapters_are_merged() {
    let Some(_) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let fams = families();
    let llama = &fams.iter().find(|(n, _)| *n == "llama").unwrap().1;
    let base = trained(dir.path(), "llama", llama, &[]);
    // int8: ~4× smaller weights, logits within the documented bound (15% of the largest), and it decodes.
    let out8 = dir.path().join("onnx-int8");
    let r = export(&base, &out8, &["--int8"]);
    assert_eq!(r["export"]["int8"], true);
    let fp = dir.path().join("onnx-fp32");
    export(&base, &fp, &[]);
    // Weights beside the graph (what a model over 1.8 GiB gets): onnxruntime reads them from there.
    let ext = dir.path().join("onnx-external");
    export(&base, &ext, &["--external-data"]);
    assert!(
        std::fs::metadata(ext.join("model.onnx_data")).unwrap().len()
            > std::fs::metadata(ext.join("model.onnx")).unwrap().len()
    );
    let size = |p: &std::path::Path| std::fs::metadata(p.join("model.onnx")).unwrap().len();
    assert!(size(&out8) < size(&fp), "int8 {} vs fp32 {}", size(&out8), size(&fp));
    // A LoRA adapter trained on the base, merged into the export (the check runs banter with it merged).
    let adapter = dir.path().join("adapter");
    let st = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
        .args([
            "--max-steps",
            "5",
            "--batch-size",
            "4",
            "--lr",
            "1e-2",
            "--precision",
            "fp32",
            "-q",
            "--lora",
            "--lora-r",
            "4",
        ])
        .arg("--model")
        .arg(&base)
        .arg("-o")
        .arg(&adapter)
        .arg(dir.path().join("blocks.jsonl"))
        .status()
        .unwrap();
    assert!(st.success());
    let merged = dir.path().join("onnx-merged");
    let r = export(&base, &merged, &["--adapter", adapter.to_str().unwrap()]);
    assert_eq!(r["verify"]["greedy_agree"], 20);
    assert_ne!(std::fs::read(merged.join("model.onnx")).unwrap(), std::fs::read(fp.join("model.onnx")).unwrap());
}

/// `--verify` needs no environment variable: with `BANTER_PYTHON` unset and no Python with onnxruntime on the
/// `PATH`, the virtual environment that provides libtorch is found and used.
#[test]
fn verify_finds_the_projects_python_without_banter_python() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (name, cfg) = families().into_iter().next().unwrap();
    let model = trained(dir.path(), name, &cfg, &[]);
    let o = bin()
        .env_remove("BANTER_PYTHON")
        .env_remove("VIRTUAL_ENV")
        .env("PATH", "/usr/bin:/bin")
        .arg("onnx")
        .arg(&model)
        .arg("-o")
        .arg(dir.path().join("out"))
        .args(["--verify", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["verify"]["greedy_agree"], 20);
}
