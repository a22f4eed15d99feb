//! The tokenizer banter writes loads in Python `tokenizers` and `transformers` and encodes identically.
//! Runs with the project's venv (`BANTER_PYTHON`, set by `make test`); `BANTER_REQUIRE_PARITY=1` (also set by
//! `make test`) makes a missing venv a failure instead of a skip.

use std::process::Command;

use banter_core::Record;

use crate::{data, trained};

fn python() -> Option<String> {
    match std::env::var("BANTER_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "BANTER_PYTHON is not set but parity is required");
            eprintln!("skipping parity: BANTER_PYTHON is not set (make test sets it)");
            None
        }
    }
}

#[test]
fn python_tokenizers_and_transformers_encode_identically() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for template in ["chatml", "asimbot"] {
        let tok = trained(dir.path(), template);
        let texts: Vec<String> =
            std::fs::read_to_string(data("corpus.txt")).unwrap().lines().take(10).map(str::to_string).collect();
        let ours = banter_encode::tok::load(&tok, &banter_core::ChatTemplate::preset(template).unwrap()).unwrap();
        let want: Vec<Vec<u32>> =
            texts.iter().map(|t| ours.inner.encode(t.as_str(), false).unwrap().get_ids().to_vec()).collect();
        let script = r#"
import json, sys
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast
path, texts = sys.argv[1], json.load(sys.stdin)
t = Tokenizer.from_file(path)
f = PreTrainedTokenizerFast(tokenizer_file=path)
a = [t.encode(x, add_special_tokens=False).ids for x in texts]
b = [f(x, add_special_tokens=False)["input_ids"] for x in texts]
print(json.dumps({"tokenizers": a, "transformers": b, "decoded": [t.decode(i, skip_special_tokens=False) for i in a]}))
"#;
        let mut child = Command::new(&py)
            .args(["-c", script])
            .arg(&tok)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        serde_json::to_writer(child.stdin.take().unwrap(), &texts).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python failed");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got: Vec<Vec<u32>> = serde_json::from_value(v["tokenizers"].clone()).unwrap();
        let got_tf: Vec<Vec<u32>> = serde_json::from_value(v["transformers"].clone()).unwrap();
        assert_eq!(got, want, "{template}: Python tokenizers");
        assert_eq!(got_tf, want, "{template}: transformers");
        let decoded: Vec<String> = serde_json::from_value(v["decoded"].clone()).unwrap();
        assert_eq!(decoded, texts);
    }
}

/// Hugging Face chat templates of the shapes models ship (ChatML with a default system turn, header +
/// end-of-turn tokens, `trim_blocks` blocks with `eos_token`, alternating turns with `raise_exception`,
/// `[INST]` with Python's `.strip()`, `namespace`): banter renders each exactly as transformers'
/// `apply_chat_template`, with and without the generation prompt, and its loss spans hold every reply.
#[test]
fn hf_chat_templates_render_as_transformers_renders_them() {
    let Some(py) = python() else { return };
    let templates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("../templates/hf-shapes.json")).unwrap()).unwrap();
    let convs = serde_json::json!([
        [{"role": "user", "content": "  where are you? "}, {"role": "assistant", "content": "at home, come over"},
         {"role": "user", "content": "ok, when?"}, {"role": "assistant", "content": "after 8 🍕"}],
        [{"role": "system", "content": "You are Sara."}, {"role": "user", "content": "hi"},
         {"role": "assistant", "content": "hey!"}],
    ]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/hf_templates.py");
    let out = Command::new(&py)
        .arg(&script)
        .args([&templates.to_string(), &convs.to_string()])
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    for (name, src) in templates.as_object().unwrap() {
        let t = banter_core::ChatTemplate {
            name: name.clone(),
            style: banter_core::template::Style::Jinja {
                source: src.as_str().unwrap().to_string(),
                bos_token: "<s>".into(),
                eos_token: "</s>".into(),
                loss: Default::default(),
            },
        };
        for (i, c) in convs.as_array().unwrap().iter().enumerate() {
            let sample = banter_core::Sample::from_value(serde_json::json!({"messages": c})).unwrap();
            for g in [false, true] {
                let want = &expected[format!("{name}/{i}/{g}")];
                let got = if g {
                    t.try_render_prompt(&sample.turns()).map(|r| r.text)
                } else {
                    t.try_render(&sample).map(|r| r.text)
                };
                match (want, got) {
                    (serde_json::Value::String(w), Ok(got)) => {
                        assert_eq!(&got, w, "{name}, conversation {i}, generation prompt {g}")
                    }
                    (serde_json::Value::Object(e), Err(got)) => {
                        assert!(got.contains(e["error"].as_str().unwrap()), "{name}/{i}: {got} vs {e:?}")
                    }
                    (w, got) => panic!("{name}/{i}/{g}: transformers {w}, banter {got:?}"),
                }
                compared += 1;
            }
            if let Ok(r) = t.try_render(&sample) {
                let learned = r.loss_text();
                for turn in sample.turns().iter().filter(|t| t.role == banter_core::Role::Assistant) {
                    assert!(
                        learned.contains(turn.content.trim()),
                        "{name}/{i}: {:?} not in the loss spans {learned:?}",
                        turn.content
                    );
                }
                assert!(!learned.contains("where are you"), "{name}/{i}: a user turn carries loss: {learned:?}");
            }
        }
    }
    assert_eq!(compared, 24);
}
