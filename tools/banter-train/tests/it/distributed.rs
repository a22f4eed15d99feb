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
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The weights a run wrote (the model's or the adapter's), by name.
pub(crate) fn weights(dir: &Path) -> Vec<(String, Tensor)> {
    let f = ["adapter_model.safetensors", "model.safetensors"].iter().map(|f| dir.join(f)).find(|p| p.exists());
    let mut w = Tensor::read_safetensors(f.expect("weights")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// Per-step losses and final weights equal within 1e-5.
pub(crate) fn assert_same_run(what: &str, one: &Path, two: &Path) {
    assert_same_run_within(what, one, two, 0);
}

/// [`assert_same_run`], allowing up to `stray` elements per tensor to differ by up to 1e-4 (the rest
/// within 1e-6). DPO's first gradients are differences of two nearly equal log-probability gradients, so
/// some components are as small as AdamW's ε (1e-8) and carry only the summation order's noise; AdamW's
/// `m/(√v + ε)` then turns that noise into a different step for those few weights (seen: 1 of 65,536
/// elements at 6.6e-5 after 3 steps at lr 1e-3, every other one within 8e-6). Those weights then move the
/// later steps' losses a little (seen: 1.45e-5 at step 2), so with `stray` only the first step's loss,
/// taken before any update, is held to 1e-5 and the later ones to 1e-4. A real error moves many elements
/// and the first loss.
pub(crate) fn assert_same_run_within(what: &str, one: &Path, two: &Path, stray: i64) {
    let (a, b) = (losses(one), losses(two));
    assert!(!a.is_empty());
    assert_eq!(a.iter().map(|x| x.0).collect::<Vec<_>>(), b.iter().map(|x| x.0).collect::<Vec<_>>(), "{what}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let tol = if stray > 0 && i > 0 { 1e-4 } else { 1e-5 };
        assert!((x.1 - y.1).abs() < tol, "{what}: step {} loss {} vs {}", x.0, x.1, y.1);
    }
    let (wa, wb) = (weights(one), weights(two));
    assert_eq!(wa.len(), wb.len(), "{what}");
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb, "{what}");
        let diff = (ta - tb).abs();
        let d = diff.max().double_value(&[]);
        if stray > 0 {
            let off = diff.gt(1e-6).sum(tch::Kind::Int64).int64_value(&[]);
            assert!(d < 1e-4 && off <= stray, "{what}: {na} differs by {d}, {off} elements by over 1e-6");
        } else {
            assert!(d < 1e-5, "{what}: {na} differs by {d}");
        }
    }
}

/// Trains `args` once alone with `--batch-size 2×b` and once as 2 ranks with `--batch-size b`; compares
/// ([`assert_same_run_within`] with `stray`).
fn same_as_doubled_batch(t: &Path, dir: &Path, what: &str, args: &[String], b: usize, stray: i64) {
    let (one, two) = (dir.join(format!("{what}-1")), dir.join(format!("{what}-2")));
    let with = |out: &Path, batch: usize| {
        let mut a = args.to_vec();
        a.extend(strings(&["--batch-size", &batch.to_string(), "-o"]));
        a.push(out.display().to_string());
        a
    };
    ok(&single(&with(&one, 2 * b)), what);
    ok(&torchrun_cmd(t, 2, &[], &with(&two, b)).output().unwrap(), what);
    assert_same_run_within(what, &one, &two, stray);
    // Rank 0 alone wrote: one metrics line per step, the output once.
    assert!(two.join("train_report.json").exists());
}

pub(crate) const LLAMA: &str = r#"{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
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
        same_as_doubled_batch(&t, dir.path(), &format!("{family}-full"), &full, 3, 0);
        let base = dir.path().join(format!("{family}-full-1")).display().to_string();
        // LoRA on that model.
        let mut lora = strings(&[&blocks, "--model", &base, "--lora", "--lora-dropout", "0", "--max-steps", "4"]);
        lora.extend(strings(&["--lr", "1e-2"]));
        lora.extend(common.clone());
        same_as_doubled_batch(&t, dir.path(), &format!("{family}-lora"), &lora, 2, 0);
        // DPO, full (GPT-2) and LoRA (Llama): each rank scores the reference of its own pairs.
        let prefs = data("preferences.jsonl").display().to_string();
        let mut dpo = strings(&[&prefs, "--dpo", "--model", &base, "--template", "chatml", "--force"]);
        dpo.extend(strings(&["--max-steps", "3", "--val-file", &prefs, "--eval-every", "3", "--lr", "1e-3"]));
        if family == "llama" {
            dpo.extend(strings(&["--lora", "--lora-dropout", "0"]));
        }
        dpo.extend(common.clone());
        same_as_doubled_batch(&t, dir.path(), &format!("{family}-dpo"), &dpo, 2, 64);
        // ZeRO-1: the optimizer sharded across the ranks changes nothing in the result.
        let mut zero = if family == "gpt2" { full.clone() } else { lora.clone() };
        zero.push("--zero1".into());
        let (one, two) = (dir.path().join(format!("{family}-zero-1")), dir.path().join(format!("{family}-zero-2")));
        let batch = if family == "gpt2" { 3 } else { 2 };
        let with = |out: &Path, b: usize| {
            let mut a: Vec<String> = zero.iter().filter(|x| *x != "--zero1").cloned().collect();
            if out == two.as_path() {
                a.push("--zero1".into());
            }
            a.extend(strings(&["--batch-size", &b.to_string(), "--save-every", "2", "-o", &out.display().to_string()]));
            a
        };
        ok(&single(&with(&one, 2 * batch)), "zero1 reference");
        let o = torchrun_cmd(&t, 2, &[], &with(&two, batch)).output().unwrap();
        ok(&o, "zero1");
        assert_same_run(&format!("{family} zero1"), &one, &two);
        // Its checkpoints hold the whole optimizer state, as one process writes it.
        let names = |d: &Path| {
            let mut v: Vec<String> = Tensor::read_safetensors(d.join("checkpoint-4/optimizer.safetensors"))
                .unwrap()
                .into_iter()
                .map(|x| x.0)
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&one), names(&two), "{family}: the same optimizer state layout");
    }
}

/// The worker processes torchrun `parent` started, by rank (read from each one's environment).
fn workers(parent: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let ppid: u32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        if ppid != parent {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if let Some(rank) = env.split(|&b| b == 0).find_map(|kv| kv.strip_prefix(b"RANK=")) {
            out.push((pid, String::from_utf8_lossy(rank).into_owned()));
        }
    }
    out
}

fn wait_for(p: &Path) -> bool {
    for _ in 0..3000 {
        if p.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}

fn slow_run(blocks: &Path, tok: &Path, out: &Path) -> Vec<String> {
    let mut a = strings(&["--init", "scratch", "--config", "tiny", "--max-steps", "200", "--save-every", "10"]);
    a.extend(strings(&["--precision", "fp32", "--dropout", "0.1", "--seed", "3", "-q", "--batch-size", "4"]));
    a.extend([blocks.display().to_string(), "--tokenizer".into(), tok.display().to_string(), "-o".into()]);
    a.push(out.display().to_string());
    a
}

#[test]
fn a_rank_killed_with_kill_9_is_restarted_and_the_run_ends_as_an_uninterrupted_one() {
    let Some(t) = torchrun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let whole = dir.path().join("whole");
    ok(&torchrun_cmd(&t, 2, &[], &slow_run(&blocks, &tok, &whole)).output().unwrap(), "uninterrupted");
    let killed = dir.path().join("killed");
    let mut c = torchrun_cmd(&t, 2, &["--max-restarts", "1"], &slow_run(&blocks, &tok, &killed));
    let child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    assert!(wait_for(&killed.join("checkpoint-40")), "the run never reached step 40");
    let w = workers(child.id());
    let (pid, _) = w.iter().find(|(_, r)| r == "1").expect("rank 1 is running");
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    ok(&o, "restarted run");
    let err = String::from_utf8_lossy(&o.stderr);
    // torchrun saw the killed rank fail, and the run still succeeded: the group was restarted.
    assert!(err.contains("exitcode: -9"), "{err}");
    let got = losses(&killed);
    assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>(), "each step once");
    let want = losses(&whole);
    let (g, w) = (got.last().unwrap().1, want.last().unwrap().1);
    assert!((g - w).abs() < 1e-5, "final loss {g} vs {w}");
    for (a, b) in got.iter().zip(&want) {
        assert!((a.1 - b.1).abs() < 1e-5, "step {}: {} vs {}", a.0, a.1, b.1);
    }
    assert_same_run("restarted", &whole, &killed);
}

#[test]
fn sigterm_to_torchrun_stops_every_rank_at_the_same_step_with_a_checkpoint_and_the_rerun_resumes() {
    let Some(t) = torchrun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("out");
    let args = slow_run(&blocks, &tok, &out);
    let child = torchrun_cmd(&t, 2, &[], &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(&out.join("checkpoint-20")), "the run never reached step 20");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let steps: Vec<i64> = losses(&out).iter().map(|x| x.0).collect();
    let last = *steps.last().unwrap();
    assert!(last < 200, "stopped early, at {last}");
    assert!(out.join(format!("checkpoint-{last}")).exists(), "a checkpoint at the step every rank stopped at");
    // The same command again resumes there and finishes; each step is listed once.
    ok(&torchrun_cmd(&t, 2, &[], &args).output().unwrap(), "rerun");
    assert_eq!(losses(&out).iter().map(|x| x.0).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
}

/// One rank started by hand with `env`; returns the exit code and stderr.
fn by_hand(env: &[(&str, String)], extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let mut c = Command::new(bin_path());
    c.args(["--init", "scratch", "--config", "tiny", "--max-steps", "2", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(dir.path().join("out"))
        .arg(&blocks)
        .args(extra);
    for v in ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE"] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    cache(&mut c);
    let o = c.output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn rank_env(rank: usize, addr: &str, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("RANK", rank.to_string()),
        ("LOCAL_RANK", rank.to_string()),
        ("WORLD_SIZE", "2".into()),
        ("MASTER_ADDR", addr.into()),
        ("MASTER_PORT", port.to_string()),
        ("BANTER_DIST_TIMEOUT", "2".into()),
    ]
}

/// The error line; stderr holds nothing else but a hint.
fn one_error_line(err: &str) -> String {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("hint:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("banter-train: error: "), "{err}");
    lines[0].to_string()
}

#[test]
fn a_broken_launch_is_a_one_line_error_with_its_exit_code() {
    // No store listening at MASTER_ADDR:MASTER_PORT (rank 1 is a client): exit 4.
    let port = free_port();
    let (code, err) = by_hand(&rank_env(1, "127.0.0.1", port), &[]);
    let line = one_error_line(&err);
    assert_eq!(code, 4, "{err}");
    assert!(line.contains("rank 1") && line.contains(&format!("127.0.0.1:{port}")), "{line}");
    // A store host that does not resolve: exit 4.
    let (code, err) = by_hand(&rank_env(1, "no-such-host.invalid", port), &[]);
    assert_eq!(code, 4, "{err}");
    assert!(one_error_line(&err).contains("no-such-host.invalid"), "{err}");
    // A global batch the world size does not divide: exit 2, before any store is needed.
    let (code, err) = by_hand(&rank_env(0, "127.0.0.1", port), &["--global-batch-size", "3"]);
    assert_eq!(code, 2, "{err}");
    assert!(one_error_line(&err).contains("--global-batch-size 3 is not a multiple of the world size 2"), "{err}");
    // Some torchrun variables but not all (a rank started by hand): exit 2, naming what is missing.
    let (code, err) = by_hand(&[("RANK", "0".into()), ("WORLD_SIZE", "2".into())], &[]);
    assert_eq!(code, 2, "{err}");
    let line = one_error_line(&err);
    assert!(line.contains("LOCAL_RANK") && line.contains("torchrun"), "{line}");
    // --zero1 without torchrun: exit 2.
    let (code, err) = by_hand(&[], &["--zero1"]);
    assert_eq!(code, 2, "{err}");
    assert!(one_error_line(&err).contains("--zero1"), "{err}");
}

#[test]
fn two_ranks_on_binary_token_shards_train_as_one_process_on_one_file() {
    let Some(t) = torchrun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = prepare(dir.path(), "chatml");
    let tk = assert_cmd::cargo::cargo_bin("banter-tokenize");
    let encode = |out: &Path, extra: &[&str]| {
        let st = Command::new(&tk)
            .args(["encode", "--template", "chatml", "--block-size", "32", "--keep-tail", "-q", "--format", "bin"])
            .args(extra)
            .arg("--tokenizer")
            .arg(&tok)
            .arg("-o")
            .arg(out)
            .arg(data("persona.jsonl"))
            .status()
            .unwrap();
        assert!(st.success());
    };
    let (one_file, manifest) = (dir.path().join("all.bin"), dir.path().join("shards.json"));
    encode(&one_file, &[]);
    encode(&manifest, &["--shards", "3"]);
    let run = |input: &Path, out: &str| {
        let mut a = strings(&["--init", "scratch", "--config", "tiny", "--max-steps", "4", "--precision", "fp32"]);
        a.extend(strings(&["--dropout", "0", "-q", "--tokenizer", &tok.display().to_string()]));
        a.extend([input.display().to_string(), "-o".into(), dir.path().join(out).display().to_string()]);
        a
    };
    let mut one = run(&one_file, "one");
    one.extend(strings(&["--batch-size", "4"]));
    ok(&single(&one), "one file");
    let mut two = run(&manifest, "two");
    two.extend(strings(&["--batch-size", "2"]));
    ok(&torchrun_cmd(&t, 2, &[], &two).output().unwrap(), "shards");
    assert_same_run("bin shards", &dir.path().join("one"), &dir.path().join("two"));
}
