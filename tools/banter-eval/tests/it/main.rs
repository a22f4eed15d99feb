//! banter-eval through the binary, on tiny models trained here: a three-speaker chat, a base model, and LoRA
//! adapters on Sara's and on Omid's replies, each trained with the chat's last 20% held out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use assert_cmd::prelude::*;

mod gates;
mod matrix;
mod persona;
mod report;
mod tools;

pub fn bin() -> Command {
    Command::cargo_bin("banter-eval").unwrap()
}

pub fn other(name: &str) -> Command {
    Command::new(assert_cmd::cargo::cargo_bin(name))
}

pub fn run_ok(c: &mut Command) -> std::process::Output {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// One LoRA step of banter-train on `samples` over the fixture's base, with the fixture's split held out,
/// into `out` (the refusals' tests: they exit before training).
pub fn train_with_split(f: &Fixture, samples: &Path, out: &Path) -> std::process::Output {
    other("banter-train")
        .arg(samples)
        .arg("--model")
        .arg(&f.base)
        .args(["--lora", "--max-steps", "1", "--holdout-split"])
        .arg(&f.split)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

/// The chat, its split, samples and models, made once per test process.
#[derive(Debug)]
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub messages: PathBuf,
    pub split: PathBuf,
    pub base: PathBuf,
    pub sara: PathBuf,
    pub omid: PathBuf,
    /// banter-train's stderr for Sara's adapter (its --holdout-split line).
    pub sara_log: String,
}

pub fn export() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/eval/WhatsApp Chat with Three Friends.txt")
}

fn train(args: &[&str], dir: &Path) -> String {
    let mut c = other("banter-train");
    c.args(args).args(["--threads", "1", "--precision", "fp32", "--force", "--seed", "1"]).current_dir(dir);
    String::from_utf8_lossy(&run_ok(&mut c).stderr).into_owned()
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let p = |n: &str| root.join(n);
        run_ok(other("banter-whatsapp").arg("parse").arg(export()).args(["-q", "-o"]).arg(p("messages.jsonl")));
        run_ok(bin().arg("split").arg(p("messages.jsonl")).args(["--holdout", "0.2", "-q", "-o"]).arg(p("split.json")));
        for who in ["Sara", "Omid"] {
            run_ok(
                other("banter-whatsapp")
                    .arg("samples")
                    .arg(p("messages.jsonl"))
                    .args(["--persona", who, "--window", "4", "-q", "-o"])
                    .arg(p(&format!("{who}.jsonl"))),
            );
        }
        // Everyone's lines of the training part: the base model's text.
        let split: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p("split.json")).unwrap()).unwrap();
        let cut = split["cutoff"].as_str().unwrap().to_string();
        let lines: Vec<String> = std::fs::read_to_string(p("messages.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|m| m["author"].is_string() && m["kind"] == "text" && m["ts"].as_str().unwrap() < cut.as_str())
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect();
        std::fs::write(p("everyone.txt"), lines.join("\n") + "\n").unwrap();
        run_ok(
            other("banter-tokenize")
                .arg("train-tokenizer")
                .arg(p("everyone.txt"))
                .arg(p("Sara.jsonl"))
                .args(["--vocab-size", "800", "-q", "-o"])
                .arg(p("tok.json")),
        );
        train(
            &[
                "everyone.txt",
                "--tokenizer",
                "tok.json",
                "--init",
                "scratch",
                "--config",
                "tiny",
                "--template",
                "chatml",
                "--max-steps",
                "120",
                "--batch-size",
                "16",
                "--lr",
                "3e-3",
                "--warmup",
                "10",
                "--block-size",
                "64",
                "-q",
                "-o",
                "base",
            ],
            &root,
        );
        let mut logs = Vec::new();
        for who in ["Sara", "Omid"] {
            let data = format!("{who}.jsonl");
            let out = format!("{}-lora", who.to_lowercase());
            logs.push(train(
                &[
                    &data,
                    "--model",
                    "base",
                    "--lora",
                    "--holdout-split",
                    "split.json",
                    "--max-steps",
                    "120",
                    "--batch-size",
                    "16",
                    "--lr",
                    "5e-3",
                    "--warmup",
                    "10",
                    "--block-size",
                    "64",
                    "--mode",
                    "pad",
                    "-o",
                    &out,
                ],
                &root,
            ));
        }
        Fixture {
            messages: p("messages.jsonl"),
            split: p("split.json"),
            base: p("base"),
            sara: p("sara-lora"),
            omid: p("omid-lora"),
            sara_log: logs.remove(0),
            root,
            _dir: dir,
        }
    })
}

/// Runs `banter-eval persona` with `--json`; returns the exit code and the report's `persona` object.
pub fn persona(args: &[&str], extra: &[&Path]) -> (i32, serde_json::Value) {
    let f = fixture();
    let mut c = bin();
    c.arg("persona").arg(&f.base).arg("--messages").arg(&f.messages).args([
        "--samples",
        "16",
        "--threads",
        "1",
        "--json",
    ]);
    c.args(args).args(extra);
    let o = c.output().unwrap();
    let code = o.status.code().unwrap();
    assert!(code <= 1, "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (code, v)
}
