//! `--gradient-checkpointing` through the binary: the same run as without it (per-step losses and final
//! weights within 1e-5; DPO as across ranks, see `assert_same_run_within`), with dropout on, for GPT-2,
//! Llama (GQA) and OPT, full training with accumulation, LoRA and DPO.

use std::path::Path;

use crate::distributed::{LLAMA, assert_same_run_within, strings};
use crate::{bin, data, prepare};

const OPT: &str = r#"{"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "max_position_embeddings": 128, "word_embed_proj_dim": 32}"#;

fn train(args: &[String], out: &Path, checkpointed: bool) {
    let mut c = bin();
    c.args(args).arg("-o").arg(out);
    if checkpointed {
        c.arg("--gradient-checkpointing");
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{args:?} (checkpointed: {checkpointed}): {}", String::from_utf8_lossy(&o.stderr));
}

/// `stray`: see [`assert_same_run_within`]; DPO needs it here as it does across ranks.
fn same(dir: &Path, what: &str, args: &[String], stray: i64) {
    let (a, b) = (dir.join(format!("{what}-plain")), dir.join(format!("{what}-ckpt")));
    train(args, &a, false);
    train(args, &b, true);
    assert_same_run_within(&format!("{what} with --gradient-checkpointing"), &a, &b, stray);
}

#[test]
fn checkpointed_runs_equal_plain_runs_with_dropout_in_every_family_full_lora_and_dpo() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let (tok, blocks) = (tok.display().to_string(), blocks.display().to_string());
    // Dropout 0.1 everywhere: the recomputed blocks must draw the masks their first pass drew.
    let common = strings(&["--precision", "fp32", "--dropout", "0.1", "--seed", "7", "-q", "--warmup", "1"]);
    for (family, config) in [("gpt2", "tiny"), ("llama", LLAMA), ("opt", OPT)] {
        let mut full = strings(&[&blocks, "--init", "scratch", "--config", config, "--tokenizer", &tok]);
        full.extend(strings(&["--max-steps", "4", "--batch-size", "3", "--grad-accum", "2", "--val-split", "0.2"]));
        full.extend(strings(&["--eval-every", "2"]));
        full.extend(common.clone());
        same(dir.path(), &format!("{family}-full"), &full, 0);
        if family == "opt" {
            continue;
        }
        let base = dir.path().join(format!("{family}-full-plain")).display().to_string();
        let mut lora = strings(&[&blocks, "--model", &base, "--lora", "--lora-dropout", "0.1", "--max-steps", "3"]);
        lora.extend(strings(&["--lr", "1e-2", "--batch-size", "4"]));
        lora.extend(common.clone());
        same(dir.path(), &format!("{family}-lora"), &lora, 0);
        let prefs = data("preferences.jsonl").display().to_string();
        let mut dpo = strings(&[&prefs, "--dpo", "--model", &base, "--template", "chatml", "--force"]);
        dpo.extend(strings(&["--max-steps", "2", "--lr", "1e-3", "--batch-size", "2"]));
        dpo.extend(common.clone());
        same(dir.path(), &format!("{family}-dpo"), &dpo, 64);
    }
}
