//! Data-parallel training through torchrun (Gloo, 2 CPU ranks × 1 thread): the same losses and weights as
//! one process with the doubled batch (GPT-2 and Llama; full, LoRA, DPO), a rank killed with kill -9 under
//! `--max-restarts 1`, Ctrl-C/SIGTERM, ZeRO-1, and the one-line errors of a broken launch.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tch::Tensor;

use crate::{data, losses, prepare};

/// The venv's torchrun (what `make test` installs); the tests are skipped without it unless parity is
/// required.
fn torchrun() -> Option<PathBuf> {
    let t = crate::python().map(|p| PathBuf::from(p).with_file_name("torchrun"))?;
    if t.exists() {
        return Some(t);
    }
    assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "{} is missing", t.display());
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("banter-train")
}

fn cache(c: &mut Command) {
    c.env("BANTER_CACHE_DIR", std::env::temp_dir().join(format!("banter-train-tests-{}", std::process::id())))
        .env("OMP_NUM_THREADS", "1");
}

/// `banter-train ARGS` as `ranks` processes under torchrun (`extra`: torchrun's own flags).
fn torchrun_cmd(t: &Path, ranks: usize, extra: &[&str], args: &[String]) -> Command {
    let mut c = Command::new(t);
    c.args(["--no-python", "--nproc-per-node", &ranks.to_string(), "--master-port", &free_port().to_string()])
        .args(extra)
        .arg(bin_path())
        .args(args)
        .args(["--threads", "1"]);
    cache(&mut c);
    c
}

fn single(args: &[String]) -> Output {
    let mut c = Command::new(bin_path());
    c.args(args).args(["--threads", "1"]);
    cache(&mut c);
    c.output().unwrap()
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}\n{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The weights a run wrote (the model's or the adapter's), by name.
fn weights(dir: &Path) -> Vec<(String, Tensor)> {
    let f = ["adapter_model.safetensors", "model.safetensors"].iter().map(|f| dir.join(f)).find(|p| p.exists());
    let mut w = Tensor::read_safetensors(f.expect("weights")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// Per-step losses and final weights equal within 1e-5.
fn assert_same_run(what: &str, one: &Path, two: &Path) {
    let (a, b) = (losses(one), losses(two));
    assert!(!a.is_empty());
    assert_eq!(a.iter().map(|x| x.0).collect::<Vec<_>>(), b.iter().map(|x| x.0).collect::<Vec<_>>(), "{what}");
    for (x, y) in a.iter().zip(&b) {
        assert!((x.1 - y.1).abs() < 1e-5, "{what}: step {} loss {} vs {}", x.0, x.1, y.1);
    }
    let (wa, wb) = (weights(one), weights(two));
    assert_eq!(wa.len(), wb.len(), "{what}");
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb, "{what}");
        let d = (ta - tb).abs().max().double_value(&[]);
        assert!(d < 1e-5, "{what}: {na} differs by {d}");
    }
}

/// Trains `args` once alone with `--batch-size 2×b` and once as 2 ranks with `--batch-size b`; compares.
fn same_as_doubled_batch(t: &Path, dir: &Path, what: &str, args: &[String], b: usize) {
    let (one, two) = (dir.join(format!("{what}-1")), dir.join(format!("{what}-2")));
    let with = |out: &Path, batch: usize| {
        let mut a = args.to_vec();
        a.extend(strings(&["--batch-size", &batch.to_string(), "-o"]));
        a.push(out.display().to_string());
        a
    };
    ok(&single(&with(&one, 2 * b)), what);
    ok(&torchrun_cmd(t, 2, &[], &with(&two, b)).output().unwrap(), what);
    assert_same_run(what, &one, &two);
    // Rank 0 alone wrote: one metrics line per step, the output once.
    assert!(two.join("train_report.json").exists());
}

const LLAMA: &str = r#"{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": false}"#;

#[test]
fn two_ranks_equal_one_process_with_the_doubled_batch_gpt2_and_llama_full_lora_dpo() {
    let Some(t) = torchrun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let (tok, blocks) = (tok.display().to_string(), blocks.display().to_string());
    let common = strings(&["--precision", "fp32", "--dropout", "0", "--seed", "7", "-q", "--warmup", "1"]);
    for (family, config) in [("gpt2", "tiny"), ("llama", LLAMA)] {
        // Full training from scratch, with accumulation and evaluation (split across ranks).
        let mut full = strings(&[&blocks, "--init", "scratch", "--config", config, "--tokenizer", &tok]);
        full.extend(strings(&["--max-steps", "5", "--grad-accum", "2", "--val-split", "0.2", "--eval-every", "2"]));
        full.extend(common.clone());
        same_as_doubled_batch(&t, dir.path(), &format!("{family}-full"), &full, 3);
        let base = dir.path().join(format!("{family}-full-1")).display().to_string();
        // LoRA on that model.
        let mut lora = strings(&[&blocks, "--model", &base, "--lora", "--lora-dropout", "0", "--max-steps", "4"]);
        lora.extend(strings(&["--lr", "1e-2"]));
        lora.extend(common.clone());
        same_as_doubled_batch(&t, dir.path(), &format!("{family}-lora"), &lora, 2);
        // DPO, full (GPT-2) and LoRA (Llama): each rank scores the reference of its own pairs.
        let prefs = data("preferences.jsonl").display().to_string();
        let mut dpo = strings(&[&prefs, "--dpo", "--model", &base, "--template", "chatml", "--force"]);
        dpo.extend(strings(&["--max-steps", "3", "--val-file", &prefs, "--eval-every", "3", "--lr", "1e-3"]));
        if family == "llama" {
            dpo.extend(strings(&["--lora", "--lora-dropout", "0"]));
        }
        dpo.extend(common.clone());
        same_as_doubled_batch(&t, dir.path(), &format!("{family}-dpo"), &dpo, 2);
    }
}
