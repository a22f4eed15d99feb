//! The tokenizer banter writes loads in Python `tokenizers` and `transformers` and encodes identically.
//! Runs with the project's venv (`BANTER_PYTHON`, set by `make test`); `BANTER_REQUIRE_PARITY=1` (also set by
//! `make test`) makes a missing venv a failure instead of a skip.

use std::process::Command;

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
