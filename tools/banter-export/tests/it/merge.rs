//! `banter-export merge`: base + adapter folded into a standalone folder that transformers loads without
//! PEFT, with the same logits and greedy tokens as the base with the adapter in PEFT.

use std::path::PathBuf;

use predicates::prelude::*;

use crate::{bin, families, python, trained};

#[test]
fn a_merged_model_loads_without_peft_and_answers_as_base_plus_adapter() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["llama", "gpt2"] {
        let cfg = families().into_iter().find(|(n, _)| *n == name).unwrap().1;
        let base = trained(dir.path(), name, &cfg, &[]);
        let adapter = dir.path().join(format!("adapter-{name}"));
        let st = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
            .args(["--max-steps", "5", "--batch-size", "4", "--lr", "1e-2", "--precision", "fp32", "-q", "--lora"])
            .arg("--model")
            .arg(&base)
            .arg("-o")
            .arg(&adapter)
            .arg(dir.path().join("blocks.jsonl"))
            .status()
            .unwrap();
        assert!(st.success());
        let out = dir.path().join(format!("merged-{name}"));
        let o = bin()
            .arg("merge")
            .arg(&base)
            .arg("--adapter")
            .arg(&adapter)
            .arg("-o")
            .arg(&out)
            .arg("--json")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            assert!(out.join(f).exists(), "{name}: {f}");
        }
        assert!(!out.join("adapter_config.json").exists());
        let Some(py) = python() else { continue };
        let o = std::process::Command::new(&py)
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/merge_check.py"))
            .args([&base, &adapter, &out])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(o.stdout.trim_ascii()).unwrap();
        assert!(r["max_abs_diff"].as_f64().unwrap() < 1e-4, "{name}: {r}");
        assert_eq!(r["greedy_equal"], true, "{name}: {r}");
        assert_eq!(r["peft_free"], true);
    }
    // Without an adapter there is nothing to merge; the output may not be the input.
    let base = dir.path().join("model-llama");
    bin()
        .arg("merge")
        .arg(&base)
        .arg("-o")
        .arg(dir.path().join("x"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--adapter"));
    bin()
        .arg("merge")
        .arg(&base)
        .arg("--adapter")
        .arg(dir.path().join("adapter-llama"))
        .arg("-o")
        .arg(&base)
        .assert()
        .code(2);
    assert!(base.join("model.safetensors").exists(), "the input is untouched");
}
