//! banter's reader of SentencePiece `tokenizer.model` files against SentencePiece itself: models trained by
//! the `sentencepiece` package in the project venv (unigram and BPE, byte fallback, two normalizations,
//! with and without the dummy prefix, a user-defined symbol) encode a set of awkward texts to the same ids.

use std::path::Path;
use std::process::Command;

#[test]
fn sentencepiece_models_encode_as_sentencepiece_does() {
    let Ok(py) = std::env::var("BANTER_PYTHON") else {
        assert!(std::env::var("BANTER_REQUIRE_PARITY").is_err(), "BANTER_PYTHON is not set but parity is required");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = dir.path().join("corpus.txt");
    let mut text = String::new();
    for line in std::fs::read_to_string(root.join("testdata/train/persona.jsonl")).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for t in v["messages"].as_array().into_iter().flatten() {
            text.push_str(t["content"].as_str().unwrap_or_default());
            text.push('\n');
        }
    }
    text.push_str("naïve café fine tea\n多くの人が来ました\nsupercalifragilistic tea\n");
    std::fs::write(&corpus, text.repeat(3)).unwrap();
    let out = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spm_reference.py"))
        .arg(&corpus)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let texts: Vec<&str> = want["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let models = want["models"].as_object().unwrap();
    assert_eq!(models.len(), 4);
    for (name, ids) in models {
        let tok = banter_encode::spm::load(&dir.path().join(format!("{name}.model"))).unwrap();
        for (text, want_ids) in texts.iter().zip(ids.as_array().unwrap()) {
            let got: Vec<u64> = tok.encode(*text, false).unwrap().get_ids().iter().map(|&i| u64::from(i)).collect();
            let want_ids: Vec<u64> = want_ids.as_array().unwrap().iter().map(|i| i.as_u64().unwrap()).collect();
            assert_eq!(got, want_ids, "{name}: {text:?} {:?}", tok.encode(*text, false).unwrap().get_tokens());
        }
    }
    // A model directory that ships only tokenizer.model loads through the usual path, with its own `</s>`
    // as EOS and the template's markers added after its pieces.
    let model_dir = dir.path().join("model");
    std::fs::create_dir(&model_dir).unwrap();
    std::fs::copy(dir.path().join("bpe-bytes.model"), model_dir.join("tokenizer.model")).unwrap();
    let tok = banter_encode::tok::load(&model_dir, &banter_core::ChatTemplate::chatml()).unwrap();
    assert_eq!(tok.inner.id_to_token(tok.eos_id).as_deref(), Some("</s>"));
    assert_eq!(tok.added.len(), 4, "{:?}", tok.added);
    let ids = tok.inner.encode("<|user|>\nwhere are you?<|end|>", false).unwrap();
    assert_eq!(ids.get_ids()[0], tok.inner.token_to_id("<|user|>").unwrap());
}
