//! GGUF export of every family llama.cpp has: read back with the `gguf` package and checked against the
//! model as llama.cpp's converter would write it (names from gguf-py's own map, shapes, types, values,
//! metadata keys), in f32, f16, bf16, q8_0 and q4_0 (the quantized ones byte for byte as gguf-py writes them). OPT (no llama.cpp architecture) is refused with exit 2. Where
//! llama-cpp-python is installed (`make test-llamacpp`), llama.cpp's greedy tokens equal banter's.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::{bin, families, python, trained};

fn arch(name: &str) -> &'static str {
    match name {
        "gpt2" => "gpt2",
        "llama" | "mistral" => "llama",
        "qwen2" => "qwen2",
        "qwen3" => "qwen3",
        "phi3" => "phi3",
        "gemma" => "gemma",
        _ => "gemma2",
    }
}

#[test]
fn every_llama_cpp_family_exports_to_gguf_as_its_converter_writes_it() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    for (name, cfg) in families() {
        let model = trained(dir.path(), name, &cfg, &[]);
        if name.starts_with("opt") {
            let o = bin().arg("gguf").arg(&model).arg("-o").arg(dir.path().join("opt.gguf")).output().unwrap();
            assert_eq!(o.status.code(), Some(2), "OPT has no llama.cpp architecture");
            assert!(String::from_utf8_lossy(&o.stderr).contains("llama.cpp has no architecture"));
            assert!(!dir.path().join("opt.gguf").exists());
            continue;
        }
        for ty in ["f32", "f16", "bf16", "q8_0", "q4_0"] {
            let out = dir.path().join(format!("{name}-{ty}.gguf"));
            let o = bin().arg("gguf").arg(&model).arg("-o").arg(&out).args(["--type", ty, "--json"]).output().unwrap();
            assert!(o.status.success(), "{name} {ty}: {}", String::from_utf8_lossy(&o.stderr));
            let r: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(r["export"]["architecture"], arch(name));
            assert_eq!(r["export"]["chat_template"], true);
            jobs.push(json!({"gguf": out, "model": model, "arch": arch(name), "type": ty}));
        }
    }
    let o = Command::new(&py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/gguf_check.py"))
        .arg(Value::from(jobs.clone()).to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "gguf check: {}", String::from_utf8_lossy(&o.stderr));
    let checked: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(checked.len(), jobs.len());
}

/// llama.cpp itself (llama-cpp-python, built from source by `make test-llamacpp`): greedy tokens equal to
/// banter's for 20 tokens in f32 (bf16, q8_0 and q4_0 run; their rounding may change a close greedy choice), for every family whose computation llama.cpp has (Mistral's
/// sliding window it has not: the export warns). Skipped where llama_cpp is not installed, unless
/// BANTER_REQUIRE_LLAMACPP is set.
#[test]
fn llama_cpp_decodes_the_exports_as_banter_does() {
    let Some(py) = python() else { return };
    let has = Command::new(&py).args(["-c", "import llama_cpp"]).output().is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var("BANTER_REQUIRE_LLAMACPP").is_err(),
            "BANTER_REQUIRE_LLAMACPP is set but llama_cpp is missing"
        );
        eprintln!("llama_cpp is not installed: skipped (make test-llamacpp runs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, cfg) in families() {
        if name.starts_with("opt") {
            continue;
        }
        let model = trained(dir.path(), name, &cfg, &[]);
        for ty in ["f32", "bf16", "q8_0", "q4_0"] {
            let out = dir.path().join(format!("{name}-{ty}.gguf"));
            let o = bin()
                .arg("gguf")
                .arg(&model)
                .arg("-o")
                .arg(&out)
                .args(["--type", ty, "--verify", "--json"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            if name == "mistral" {
                assert!(err.contains("sliding window"), "{err}");
                continue;
            }
            assert!(o.status.success(), "{name} {ty}: {err}");
            let r: Value = serde_json::from_slice(&o.stdout).unwrap();
            if ty == "f32" {
                assert_eq!(r["verify"]["greedy_agree"], 20, "{name} {ty}");
            }
        }
    }
}
