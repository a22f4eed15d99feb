//! bf16 training through the binary: LoRA (the frozen base held in bf16 once, issue 30): for GPT-2 and Llama, plain
//! and `--gradient-checkpointing` runs agree, DPO trains, the adapter is written in fp32, the base model's
//! files are an input only, and the losses track an fp32 run's to bf16's precision.

use std::path::Path;

use crate::distributed::{LLAMA, assert_same_run, strings, weights};
use crate::{bin, data, losses, prepare};

fn train(args: &[String], out: &Path, extra: &[&str]) {
    let o = bin().args(args).args(extra).arg("-o").arg(out).output().unwrap();
    assert!(o.status.success(), "{args:?} {extra:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn bf16_lora_trains_every_family_plain_checkpointed_and_dpo_with_an_fp32_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let (tok, blocks) = (tok.display().to_string(), blocks.display().to_string());
    let q = strings(&["-q", "--seed", "3", "--warmup", "1", "--threads", "1"]);
    for (family, config) in [("gpt2", "tiny"), ("llama", LLAMA)] {
        let base = dir.path().join(format!("{family}-base"));
        let mut full = strings(&[&blocks, "--init", "scratch", "--config", config, "--tokenizer", &tok]);
        full.extend(strings(&["--max-steps", "3", "--batch-size", "4", "--precision", "fp32"]));
        full.extend(q.clone());
        train(&full, &base, &[]);
        let before = std::fs::read(base.join("model.safetensors")).unwrap();
        let b = base.display().to_string();

        let mut lora = strings(&[&blocks, "--model", &b, "--lora", "--lora-dropout", "0.1", "--max-steps", "4"]);
        lora.extend(strings(&["--lr", "1e-2", "--batch-size", "4", "--grad-accum", "2"]));
        lora.extend(q.clone());
        let (plain, ckpt, fp32) = (
            dir.path().join(format!("{family}-bf16")),
            dir.path().join(format!("{family}-bf16-ckpt")),
            dir.path().join(format!("{family}-fp32")),
        );
        train(&lora, &plain, &["--precision", "bf16", "--json"]);
        train(&lora, &ckpt, &["--precision", "bf16", "--gradient-checkpointing"]);
        train(&lora, &fp32, &["--precision", "fp32"]);
        assert_same_run(&format!("{family} bf16 LoRA with --gradient-checkpointing"), &plain, &ckpt);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(plain.join("train_report.json")).unwrap()).unwrap();
        assert_eq!(report["precision"], "bf16", "{family}: {report}");
        for (n, t) in weights(&plain) {
            assert_eq!(t.kind(), tch::Kind::Float, "{family}: the adapter's {n} is saved in fp32");
        }
        // bf16 matmuls round to ~3 significant digits: the first step's loss agrees to about that.
        let (l16, l32) = (losses(&plain), losses(&fp32));
        let rel = (l16[0].1 - l32[0].1).abs() / l32[0].1;
        assert!(rel < 2e-2, "{family}: first loss bf16 {} vs fp32 {}", l16[0].1, l32[0].1);
        assert!(l16.iter().all(|l| l.1.is_finite()));
        assert_eq!(std::fs::read(base.join("model.safetensors")).unwrap(), before, "{family}: the base is an input");

        let prefs = data("preferences.jsonl").display().to_string();
        let mut dpo = strings(&[&prefs, "--dpo", "--model", &b, "--template", "chatml", "--force", "--lora"]);
        dpo.extend(strings(&["--max-steps", "2", "--lr", "1e-3", "--batch-size", "2", "--precision", "bf16"]));
        dpo.extend(q.clone());
        let d = dir.path().join(format!("{family}-dpo"));
        train(&dpo, &d, &[]);
        assert!(losses(&d).iter().all(|l| l.1.is_finite()), "{family} DPO");
        assert_eq!(std::fs::read(base.join("model.safetensors")).unwrap(), before, "{family}: the base is an input");
    }
}

/// Full training in bf16 reads each matrix through one working copy per optimizer step
/// (`banter_model::castcache`): the same per-step losses and final weights as casting on every pass
/// (`BANTER_CAST_CACHE=0`), with accumulation, evaluation, dropout, checkpointing and DPO. (A cache that
/// served stale copies after the optimizer step would train on old weights from step 2 on.)
#[test]
fn bf16_working_copies_train_exactly_as_a_cast_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let (tok, blocks) = (tok.display().to_string(), blocks.display().to_string());
    let q =
        strings(&["-q", "--seed", "5", "--warmup", "1", "--threads", "1", "--precision", "bf16", "--dropout", "0.1"]);
    let run = |args: &[String], out: &Path, cache: bool, extra: &[&str]| {
        let o = bin()
            .env("BANTER_CAST_CACHE", if cache { "1" } else { "0" })
            .args(args)
            .args(extra)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    for (family, config) in [("gpt2", "tiny"), ("llama", LLAMA)] {
        let mut full = strings(&[&blocks, "--init", "scratch", "--config", config, "--tokenizer", &tok]);
        full.extend(strings(&["--max-steps", "4", "--batch-size", "3", "--grad-accum", "2", "--val-split", "0.2"]));
        full.extend(strings(&["--eval-every", "2"]));
        full.extend(q.clone());
        let out = |n: &str| dir.path().join(format!("{family}-{n}"));
        let (a, b, c, d) = (out("cast"), out("copies"), out("cast-ckpt"), out("copies-ckpt"));
        run(&full, &a, false, &[]);
        run(&full, &b, true, &[]);
        assert_same_run(&format!("{family} bf16 working copies"), &a, &b);
        // Checkpointed (in bf16 its recompute rounds a little differently from the plain pass: compared with
        // itself, with and without the copies).
        run(&full, &c, false, &["--gradient-checkpointing"]);
        run(&full, &d, true, &["--gradient-checkpointing"]);
        assert_same_run(&format!("{family} bf16 working copies, checkpointed"), &c, &d);
        let prefs = data("preferences.jsonl").display().to_string();
        let base = a.display().to_string();
        let mut dpo = strings(&[&prefs, "--dpo", "--model", &base, "--template", "chatml", "--force"]);
        dpo.extend(strings(&["--max-steps", "2", "--lr", "1e-3", "--batch-size", "2"]));
        dpo.extend(q.clone());
        let (d1, d2) = (dir.path().join(format!("{family}-dpo-cast")), dir.path().join(format!("{family}-dpo-copies")));
        run(&dpo, &d1, false, &[]);
        run(&dpo, &d2, true, &[]);
        assert_same_run(&format!("{family} bf16 DPO with working copies"), &d1, &d2);
    }
}
