//! CLI tests of `banter-chat` through the real binary, on a tiny model trained here.

mod crash;
mod families;
mod journeys;
mod learning;
#[path = "../../../banter-export/tests/it/mockhub.rs"]
#[allow(dead_code)]
mod mockhub;
mod oneshot;
mod serve;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;

pub fn bin() -> Command {
    Command::cargo_bin("banter-chat").unwrap()
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/train").join(name)
}

/// A tiny chatml model trained for a few steps on the persona samples (built once per test run).
pub fn model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let tok = dir.join("tok.json");
        let tk = assert_cmd::cargo::cargo_bin("banter-tokenize");
        let ok = std::process::Command::new(&tk)
            .args(["train-tokenizer", "--vocab-size", "400", "--min-frequency", "1", "-q", "-o"])
            .arg(&tok)
            .arg(data("persona.jsonl"))
            .status()
            .unwrap();
        assert!(ok.success());
        let model = dir.join("model");
        let ok = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
            .args([
                "--config",
                "tiny",
                "--max-steps",
                "60",
                "--lr",
                "3e-3",
                "--warmup",
                "5",
                "--batch-size",
                "8",
                "--block-size",
                "32",
                "-q",
                "--tokenizer",
            ])
            .arg(&tok)
            .arg("-o")
            .arg(&model)
            .arg(data("persona.jsonl"))
            .status()
            .unwrap();
        assert!(ok.success());
        model
    })
}

pub fn python() -> Option<String> {
    match std::env::var("BANTER_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "BANTER_PYTHON is not set but parity is required");
            None
        }
    }
}

/// A copy of [`model`] whose chat template is `jinja` (a Hugging Face `chat_template`; the banter template
/// removed, so the Jinja one is used), in `dir`.
pub fn model_with_template(dir: &Path, jinja: &str) -> PathBuf {
    let m = dir.join("hostile-model");
    std::fs::create_dir_all(&m).unwrap();
    for e in std::fs::read_dir(model()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.file_name().unwrap() != "banter_template.json" {
            std::fs::copy(&p, m.join(p.file_name().unwrap())).unwrap();
        }
    }
    let cfg = m.join("tokenizer_config.json");
    let mut v: serde_json::Value =
        std::fs::read_to_string(&cfg).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(serde_json::json!({}));
    v["chat_template"] = serde_json::Value::String(jinja.to_string());
    std::fs::write(&cfg, v.to_string()).unwrap();
    m
}

/// A Mistral-style template: roles must alternate user/assistant, as the real one raises.
pub const ALTERNATING: &str = "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{{ '<|user|>' if m['role'] == 'user' else '<|assistant|>' }}\n{{ m['content'] }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/// `--input input --batch batch --temperature temp` on `model` into `out` (8 new tokens, seed 5): the file.
pub fn answer_file(model: &Path, input: &Path, batch: &str, temp: &str, tokens: &str, out: &Path) -> String {
    bin()
        .arg("--model")
        .arg(model)
        .arg("--input")
        .arg(input)
        .args(["--batch", batch, "--temperature", temp, "--max-new-tokens", tokens, "--seed", "5", "-q", "-o"])
        .arg(out)
        .assert()
        .success();
    std::fs::read_to_string(out).unwrap()
}
