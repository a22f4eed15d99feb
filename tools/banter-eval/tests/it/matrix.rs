//! The combinations users run: each family (GPT-2, Llama with GQA, OPT) × each preset template (chatml,
//! Asimbot's speaker tokens) as a base plus a LoRA adapter trained on Sara's replies with the split held out,
//! then `persona` and `loss` on it. Every cell must load, score and reply.

use crate::{bin, fixture, other, run_ok};

const LLAMA: &str = r#"{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128, "tie_word_embeddings": false}"#;
const OPT: &str = r#"{"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "max_position_embeddings": 128, "word_embed_proj_dim": 32}"#;

#[test]
fn every_family_and_template_evaluates_with_an_adapter() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held.jsonl");
    let split: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f.split).unwrap()).unwrap();
    let cut = split["cutoff"].as_str().unwrap();
    let text: String = std::fs::read_to_string(f.root.join("Sara.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["meta"]["ts"].as_str().unwrap() >= cut)
        .take(8)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&held, text).unwrap();
    for (family, config) in [("gpt2", "tiny"), ("llama", LLAMA), ("opt", OPT)] {
        for template in ["chatml", "asimbot"] {
            let cell = format!("{family}-{template}");
            let base = dir.path().join(format!("{cell}-base"));
            let lora = dir.path().join(format!("{cell}-lora"));
            let common =
                ["--threads", "1", "--precision", "fp32", "--force", "-q", "--batch-size", "8", "--block-size", "64"];
            run_ok(
                other("banter-train")
                    .arg(f.root.join("Sara.jsonl"))
                    .args(["--init", "scratch", "--config", config])
                    .arg("--tokenizer")
                    .arg(f.root.join("tok.json"))
                    .args(["--template", template, "--max-steps", "4"])
                    .args(common)
                    .arg("-o")
                    .arg(&base),
            );
            run_ok(
                other("banter-train")
                    .arg(f.root.join("Sara.jsonl"))
                    .arg("--model")
                    .arg(&base)
                    .args(["--lora", "--max-steps", "4", "--mode", "pad", "--holdout-split"])
                    .arg(&f.split)
                    .args(common)
                    .arg("-o")
                    .arg(&lora),
            );
            let o = run_ok(
                bin().arg("persona").arg(&base).arg("--adapter").arg(&lora).arg("--messages").arg(&f.messages).args([
                    "--persona",
                    "Sara",
                    "--samples",
                    "3",
                    "--max-new-tokens",
                    "8",
                    "--threads",
                    "1",
                    "--json",
                ]),
            );
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let models = v["persona"]["models"].as_array().unwrap();
            assert_eq!(models.len(), 2, "{cell}");
            for m in models {
                assert!(m["heldout_loss"].as_f64().is_some_and(f64::is_finite), "{cell}: {m}");
            }
            assert!(v["persona"]["split_source"].as_str().unwrap().starts_with("recorded"), "{cell}");
            let o = run_ok(bin().arg("loss").arg(&base).arg(&held).arg("--adapter").arg(&lora).args([
                "--json",
                "--threads",
                "1",
            ]));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            for m in v["models"].as_array().unwrap() {
                assert!(
                    m["loss"].as_f64().is_some_and(f64::is_finite) && m["tokens"].as_u64().unwrap() > 0,
                    "{cell}: {m}"
                );
            }
        }
    }
}
