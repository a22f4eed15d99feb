//! encode / decode / train-tokenizer through the binary.

use banter_core::ChatTemplate;
use banter_core::records::{Record, Sample};

use crate::{bin, blocks, data, trained};

fn decode(tok: &std::path::Path, ids: &[u32]) -> String {
    let t = tokenizers::Tokenizer::from_file(tok).unwrap();
    t.decode(ids, false).unwrap()
}

#[test]
fn pad_mode_blocks_decode_to_the_rendered_text_with_loss_on_the_replies() {
    let dir = tempfile::tempdir().unwrap();
    for template in ["chatml", "asimbot"] {
        let tok = trained(dir.path(), template);
        let out = dir.path().join(format!("b-{template}.jsonl"));
        bin()
            .args(["encode", "--mode", "pad", "--block-size", "256", "--template", template, "-q", "--tokenizer"])
            .arg(&tok)
            .arg("-o")
            .arg(&out)
            .arg(data("samples.jsonl"))
            .assert()
            .success();
        let t = ChatTemplate::preset(template).unwrap();
        let samples: Vec<Sample> = std::fs::read_to_string(data("samples.jsonl"))
            .unwrap()
            .lines()
            .map(|l| Sample::from_value(serde_json::from_str(l).unwrap()).unwrap())
            .collect();
        let kept: Vec<&Sample> = samples.iter().filter(|s| t.render(s).has_loss()).collect();
        let b = blocks(&out);
        assert_eq!(b.len(), kept.len(), "{template}");
        for ((ids, labels), s) in b.iter().zip(kept) {
            let r = t.render(s);
            let n = labels.len() - labels.iter().rev().take_while(|&&l| l == -100).count();
            let real: Vec<u32> = ids.iter().copied().take_while(|_| true).collect();
            let text = decode(&tok, &real);
            assert!(text.starts_with(&r.text), "{template}: {text:?} vs {:?}", r.text);
            let loss_ids: Vec<u32> = labels[..n].iter().filter(|&&l| l >= 0).map(|&l| l as u32).collect();
            let mut want = r.loss_text();
            if r.eos_carries_loss() {
                want.push_str("<|endoftext|>");
            }
            assert_eq!(decode(&tok, &loss_ids), want, "{template}");
            assert_eq!(ids.len(), 256);
        }
    }
}

#[test]
fn pack_mode_is_oodis_blocks_and_keep_tail() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let out = dir.path().join("p.jsonl");
    let run = |extra: &[&str]| {
        let o = bin()
            .args(["encode", "--block-size", "16", "--json", "--tokenizer"])
            .arg(&tok)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .arg(data("samples.jsonl"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let r = run(&[]);
    let b = blocks(&out);
    assert!(b.iter().all(|(ids, l)| ids.len() == 16 && l.len() == 16));
    let total = r["counts"]["tokens"].as_u64().unwrap();
    assert_eq!(b.len() as u64 * 16 + r["counts"]["tail_tokens_dropped"].as_u64().unwrap(), total);
    let r2 = run(&["--keep-tail"]);
    assert_eq!(r2["counts"]["blocks"].as_u64().unwrap(), r["counts"]["blocks"].as_u64().unwrap() + 1);
    assert_eq!(r2["counts"]["tail_tokens_dropped"], 0);
    let p = &r["counts"]["tokens_per_sample"];
    assert!(p[0].as_u64().unwrap() <= p[3].as_u64().unwrap());
}

#[test]
fn truncation_drops_samples_whose_reply_is_cut_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let out = dir.path().join("t.jsonl");
    let o = bin()
        .args([
            "encode",
            "--mode",
            "truncate",
            "--block-size",
            "6",
            "--truncate-side",
            "right",
            "--json",
            "--tokenizer",
        ])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(data("samples.jsonl"))
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["counts"]["dropped_truncated"].as_u64().unwrap() > 0, "{r}");
    assert!(blocks(&out).iter().all(|(ids, l)| ids.len() <= 6 && l.iter().any(|&x| x >= 0)));
}

#[test]
fn validation_split_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let mut big = String::new();
    let base = std::fs::read_to_string(data("samples.jsonl")).unwrap();
    for _ in 0..50 {
        big.push_str(&base);
    }
    let input = dir.path().join("big.jsonl");
    std::fs::write(&input, big).unwrap();
    let mut runs = Vec::new();
    for i in 0..2 {
        let o = dir.path().join(format!("tr{i}.jsonl"));
        bin()
            .args(["encode", "--val-split", "0.2", "--seed", "7", "-q", "--tokenizer"])
            .arg(&tok)
            .arg("-o")
            .arg(&o)
            .arg(&input)
            .assert()
            .success();
        let v = dir.path().join(format!("tr{i}.val.jsonl"));
        runs.push((std::fs::read(&o).unwrap(), std::fs::read(&v).unwrap()));
    }
    assert_eq!(runs[0], runs[1]);
    assert!(!runs[0].1.is_empty());
}

#[test]
fn same_output_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "asimbot");
    let mut big = String::new();
    let base = std::fs::read_to_string(data("samples.jsonl")).unwrap();
    for i in 0..300 {
        for l in base.lines() {
            big.push_str(&l.replacen('{', &format!("{{\"n\":{i},"), 1));
            big.push('\n');
        }
    }
    let input = dir.path().join("big.jsonl");
    std::fs::write(&input, big).unwrap();
    let outs: Vec<Vec<u8>> = ["1", "2"]
        .iter()
        .map(|t| {
            let o = dir.path().join(format!("o{t}.jsonl"));
            bin()
                .args(["encode", "--template", "asimbot", "--threads", t, "-q", "--tokenizer"])
                .arg(&tok)
                .arg("-o")
                .arg(&o)
                .arg(&input)
                .assert()
                .success();
            std::fs::read(&o).unwrap()
        })
        .collect();
    assert!(outs[0] == outs[1]);
}

#[test]
fn pretrained_tokenizer_gets_missing_specials_and_a_model_dir_its_template() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    // A "model dir" whose stored template is asimbot: the chatml-trained tokenizer lacks its markers.
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::copy(&tok, model.join("tokenizer.json")).unwrap();
    std::fs::write(model.join("banter_template.json"), ChatTemplate::asimbot().to_json()).unwrap();
    let saved = dir.path().join("extended.json");
    let out = dir.path().join("o.jsonl");
    bin()
        .args(["encode", "--tokenizer"])
        .arg(&model)
        .arg("--save-tokenizer")
        .arg(&saved)
        .arg("-o")
        .arg(&out)
        .arg(data("samples.jsonl"))
        .assert()
        .success();
    let t = tokenizers::Tokenizer::from_file(&saved).unwrap();
    assert!(t.token_to_id("<SYS>").is_some() && t.token_to_id("<USR_A>").is_some());
}

#[test]
fn decode_shows_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let out = dir.path().join("o.jsonl");
    bin()
        .args(["encode", "--mode", "pad", "--block-size", "64", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(data("samples.jsonl"))
        .assert()
        .success();
    let o = bin().args(["decode", "--show-loss", "--tokenizer"]).arg(&tok).arg(&out).output().unwrap();
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8(o.stdout).unwrap().lines().nth(1).unwrap()).unwrap();
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("<|user|>\nWhat is machine learning?<|end|>\n<|assistant|>\n⟦A field of AI"),
        "{first}"
    );
}

#[test]
fn bad_input_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let tok = trained(dir.path(), "chatml");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\":\"ok here\"}\n{\"messages\":3}\n").unwrap();
    bin()
        .args(["encode", "--tokenizer"])
        .arg(&tok)
        .arg(&bad)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("bad.jsonl:2: field \"messages\": expected an array"));
    bin().args(["encode", "--tokenizer", "/nonexistent/tok.json"]).arg(&bad).assert().code(4);
}

/// A model directory that ships a Hugging Face chat template (tokenizer_config.json) is encoded with it:
/// the rendering is the template's, and only the assistant replies (with their end-of-turn marker) learn.
#[test]
fn a_model_dirs_own_chat_template_is_used_with_loss_on_the_replies() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hf-model");
    std::fs::create_dir(&model).unwrap();
    std::fs::copy(trained(dir.path(), "chatml"), model.join("tokenizer.json")).unwrap();
    let templates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("../templates/hf-shapes.json")).unwrap()).unwrap();
    std::fs::write(
        model.join("tokenizer_config.json"),
        serde_json::json!({"chat_template": templates["chatml-default-system"], "eos_token": "<|endoftext|>"})
            .to_string(),
    )
    .unwrap();
    let samples = dir.path().join("s.jsonl");
    std::fs::write(
        &samples,
        r#"{"messages":[{"role":"user","content":"where are you?"},{"role":"assistant","content":"at home"}]}"#
            .to_string()
            + "\n",
    )
    .unwrap();
    let blocks = dir.path().join("b.jsonl");
    bin()
        .args(["encode", "--mode", "pad", "--block-size", "96", "-q", "--tokenizer"])
        .arg(&model)
        .arg("-o")
        .arg(&blocks)
        .arg(&samples)
        .assert()
        .success();
    let out = bin().args(["decode", "--show-loss", "--tokenizer"]).arg(&model).arg(&blocks).assert().success();
    let text: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let text = text["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nwhere are you?<|im_end|>\n<|im_start|>assistant\n⟦at home<|im_end|>\n"
        ),
        "{text:?}"
    );
}
