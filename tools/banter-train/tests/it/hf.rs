//! The output loads in Hugging Face: a trained model dir in transformers (weights, tokenizer, chat
//! template), a trained LoRA adapter in PEFT.

use std::process::Command;

use crate::{bin, data, prepare, python};

fn run_py(py: &str, script: &str, args: &[&std::path::Path]) -> serde_json::Value {
    let out =
        Command::new(py).arg("-c").arg(script).args(args).env("TRANSFORMERS_VERBOSITY", "error").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap()
}

#[test]
fn trained_model_dir_loads_in_transformers_with_its_tokenizer_and_chat_template() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let out = dir.path().join("model");
    bin()
        .args(["--config", "tiny", "--max-steps", "5", "--batch-size", "4", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(&blocks)
        .assert()
        .success();
    let v = run_py(
        &py,
        "import json, sys, torch\n\
         from transformers import AutoModelForCausalLM, AutoTokenizer\n\
         m = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()\n\
         t = AutoTokenizer.from_pretrained(sys.argv[1])\n\
         msgs = [{'role': 'user', 'content': 'where are you?'}, {'role': 'assistant', 'content': 'at home'}]\n\
         text = t.apply_chat_template(msgs, tokenize=False)\n\
         prompt = t.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)\n\
         ids = t(text, add_special_tokens=False)['input_ids']\n\
         print(json.dumps({'text': text, 'prompt': prompt, 'n': len(ids), 'eos': t.eos_token, 'vocab': m.config.vocab_size}))",
        &[&out],
    );
    assert_eq!(v["text"], "<|user|>\nwhere are you?<|end|>\n<|assistant|>\nat home<|end|>\n");
    assert_eq!(v["prompt"], "<|user|>\nwhere are you?<|end|>\n<|assistant|>\n");
    assert_eq!(v["eos"], "<|endoftext|>");
}

#[test]
fn lora_on_a_pretrained_model_writes_a_peft_adapter() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "asimbot");
    let base = dir.path().join("base");
    bin()
        .args([
            "--config",
            "tiny",
            "--template",
            "asimbot",
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "-q",
            "--tokenizer",
        ])
        .arg(&tok)
        .arg("-o")
        .arg(&base)
        .arg(&blocks)
        .assert()
        .success();
    let adapter = dir.path().join("adapter");
    bin()
        .args([
            "--lora",
            "--lora-dropout",
            "0",
            "--max-steps",
            "20",
            "--lr",
            "1e-2",
            "--warmup",
            "2",
            "--batch-size",
            "4",
            "-q",
            "--model",
        ])
        .arg(&base)
        .arg("-o")
        .arg(&adapter)
        .arg(data("persona.jsonl"))
        .assert()
        .success();
    assert!(adapter.join("adapter_config.json").exists() && adapter.join("adapter_model.safetensors").exists());
    let v = run_py(
        &py,
        "import json, sys, torch\n\
         from transformers import AutoModelForCausalLM\n\
         from peft import PeftModel\n\
         base = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()\n\
         ids = torch.tensor([[5, 6, 7, 8, 9]])\n\
         a = base(ids).logits\n\
         m = PeftModel.from_pretrained(base, sys.argv[2]).eval()\n\
         b = m(ids).logits\n\
         print(json.dumps({'diff': float((a - b).abs().max())}))",
        &[&base, &adapter],
    );
    assert!(v["diff"].as_f64().unwrap() > 1e-4, "the trained adapter changes the model in PEFT: {v}");
}

/// A GPT-2 that ships only `pytorch_model.bin` (HooshvareLab/gpt2-fa, Oodi's base, is one) loads without
/// running pickle code: torch.save writes the pickle (as transformers 4 did), banter reads it and fine-tunes with lr 0, and the
/// weights banter writes give transformers' own logits back.
#[test]
fn a_pickle_only_gpt2_loads_and_round_trips_to_the_same_logits() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let src = dir.path().join("pickled");
    let v = run_py(
        &py,
        "import json, sys, shutil, torch\n\
         from tokenizers import Tokenizer\n\
         from transformers import GPT2Config, GPT2LMHeadModel\n\
         torch.manual_seed(0)\n\
         n = Tokenizer.from_file(sys.argv[2]).get_vocab_size(with_added_tokens=True)\n\
         m = GPT2LMHeadModel(GPT2Config(vocab_size=n, n_positions=64, n_embd=32, n_layer=2, n_head=4)).eval()\n\
         m.config.save_pretrained(sys.argv[1])\n\
         torch.save(m.state_dict(), sys.argv[1] + '/pytorch_model.bin')\n\
         shutil.copy(sys.argv[2], sys.argv[1] + '/tokenizer.json')\n\
         ids = torch.tensor([[1, 5, 9, 2, 7]])\n\
         print(json.dumps({'logits': m(ids).logits[0].tolist()}))",
        &[&src, &tok],
    );
    assert!(src.join("pytorch_model.bin").exists() && !src.join("model.safetensors").exists());
    let out = dir.path().join("from-pickle");
    bin()
        .args(["--model"])
        .arg(&src)
        .args([
            "--max-steps",
            "1",
            "--lr",
            "0",
            "--weight-decay",
            "0",
            "--block-size",
            "32",
            "--precision",
            "fp32",
            "-q",
            "-o",
        ])
        .arg(&out)
        .arg(&blocks)
        .assert()
        .success();
    let w = run_py(
        &py,
        "import json, sys, torch\n\
         from transformers import AutoModelForCausalLM\n\
         m = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()\n\
         print(json.dumps({'logits': m(torch.tensor([[1, 5, 9, 2, 7]])).logits[0].tolist()}))",
        &[&out],
    );
    let flat = |v: &serde_json::Value| -> Vec<f64> {
        v["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect()
    };
    let (a, b) = (flat(&v), flat(&w));
    assert_eq!(a.len(), b.len());
    let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(max < 1e-4, "max |Δlogit| {max}");
}

/// A checkpoint whose pickle calls `os.system` is refused by name (exit 3) and nothing runs.
#[test]
fn a_pickle_that_would_run_code_is_refused_and_runs_nothing() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "chatml");
    let evil = dir.path().join("evil");
    let marker = dir.path().join("PWNED");
    run_py(
        &py,
        "import json, sys, zipfile, shutil\n\
         from transformers import GPT2Config\n\
         GPT2Config(vocab_size=500, n_positions=64, n_embd=32, n_layer=1, n_head=4).save_pretrained(sys.argv[1])\n\
         payload = (\"cos\\nsystem\\n(S'touch \" + sys.argv[3] + \"'\\ntR.\").encode()\n\
         with zipfile.ZipFile(sys.argv[1] + '/pytorch_model.bin', 'w') as z: z.writestr('archive/data.pkl', payload)\n\
         shutil.copy(sys.argv[2], sys.argv[1] + '/tokenizer.json')\n\
         print(json.dumps({}))",
        &[&evil, &tok, &marker],
    );
    bin()
        .args(["--model"])
        .arg(&evil)
        .args(["--max-steps", "1", "-q", "-o"])
        .arg(dir.path().join("out"))
        .arg(&blocks)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("os.system"));
    assert!(!marker.exists(), "the payload ran");
}

/// The template's special tokens join the vocabulary only when the data uses them: LoRA on plain text
/// under a template the tokenizer lacks gives an adapter PEFT loads onto the unresized base; chat samples
/// add the markers, and the run says how to resize the base.
#[test]
fn template_tokens_are_added_only_when_the_samples_use_them() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (tok, blocks) = prepare(dir.path(), "asimbot");
    let base = dir.path().join("base");
    bin()
        .args(["--config", "tiny", "--max-steps", "2", "--batch-size", "4", "-q", "--tokenizer"])
        .arg(&tok)
        .arg("-o")
        .arg(&base)
        .arg(&blocks)
        .assert()
        .success();
    let plain = dir.path().join("plain.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| {
            serde_json::json!({"text": format!("note {i}: the tea is warm and the day is long, friend number {i}")})
                .to_string()
        })
        .collect();
    std::fs::write(&plain, lines.join("\n") + "\n").unwrap();
    let lora = |data: &std::path::Path, out: &std::path::Path| {
        bin()
            .args(["--lora", "--template", "chatml", "--max-steps", "3", "--batch-size", "4", "--force", "--model"])
            .arg(&base)
            .arg("-o")
            .arg(out)
            .arg(data)
            .output()
            .unwrap()
    };
    let a_plain = dir.path().join("a-plain");
    let o = lora(&plain, &a_plain);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("added"), "{}", String::from_utf8_lossy(&o.stderr));
    let conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a_plain.join("adapter_config.json")).unwrap()).unwrap();
    assert!(conf["modules_to_save"].is_null(), "{conf}");
    let v = run_py(
        &py,
        "import json, sys\n\
         from transformers import AutoModelForCausalLM\n\
         from peft import PeftModel\n\
         m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sys.argv[1]), sys.argv[2])\n\
         print(json.dumps({'vocab': m.get_input_embeddings().weight.shape[0]}))",
        &[&base, &a_plain],
    );
    assert!(v["vocab"].as_i64().is_some(), "PEFT loads the adapter onto the unresized base: {v}");
    let a_chat = dir.path().join("a-chat");
    let o = lora(&data("persona.jsonl"), &a_chat);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("added 4 token(s)") && err.contains("resize_token_embeddings"), "{err}");
    let conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a_chat.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(conf["modules_to_save"], serde_json::json!(["wte"]));
}

#[test]
fn a_unigram_scratch_model_names_only_tokens_it_has_and_pads_in_transformers() {
    let dir = tempfile::tempdir().unwrap();
    // A template ending turns with the unigram tokenizer's own </s>.
    let template = dir.path().join("t.json");
    std::fs::write(
        &template,
        r#"{"name": "eos-end", "style": "roles", "system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>", "end": "</s>"}"#,
    )
    .unwrap();
    let tok = dir.path().join("tok.json");
    let st = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-tokenize"))
        .args([
            "train-tokenizer",
            "--type",
            "unigram",
            "--vocab-size",
            "300",
            "--min-frequency",
            "1",
            "-q",
            "--template",
        ])
        .arg(&template)
        .arg("-o")
        .arg(&tok)
        .arg(data("persona.jsonl"))
        .status()
        .unwrap();
    assert!(st.success());
    let out = dir.path().join("model");
    bin()
        .args(["--config", "tiny", "--max-steps", "2", "--batch-size", "4", "--block-size", "32", "-q", "--template"])
        .arg(&template)
        .arg("--tokenizer")
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .arg(data("persona.jsonl"))
        .assert()
        .success();
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let tj = read("tokenizer.json");
    let added: Vec<(u64, String)> = tj["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_u64().unwrap(), a["content"].as_str().unwrap().to_string()))
        .collect();
    let slash_s: Vec<u64> = added.iter().filter(|a| a.1 == "</s>").map(|a| a.0).collect();
    assert_eq!(slash_s, [2], "</s> once, at its vocabulary id: {added:?}");
    // Every special token named is one the tokenizer holds; config's ids are theirs.
    let map = read("special_tokens_map.json");
    for k in ["bos_token", "eos_token", "unk_token", "pad_token"] {
        let name = map[k].as_str().unwrap();
        assert!(added.iter().any(|a| a.1 == name), "{k} {name} is not in the tokenizer: {added:?}");
    }
    assert_eq!(read("config.json")["eos_token_id"], 2);
    let Some(py) = python() else { return };
    let v = run_py(
        &py,
        "import json, sys, torch\n\
         from transformers import AutoModelForCausalLM, AutoTokenizer\n\
         m = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()\n\
         t = AutoTokenizer.from_pretrained(sys.argv[1])\n\
         b = t(['hello there my friend', 'hi'], return_tensors='pt', padding=True)\n\
         with torch.no_grad(): logits = m(**b).logits\n\
         print(json.dumps({'len': len(t), 'vocab': m.config.vocab_size, 'pad': t.pad_token_id, 'eos': t.eos_token_id, 'shape': list(logits.shape)}))",
        &[&out],
    );
    assert_eq!(v["len"], v["vocab"], "AutoTokenizer added tokens: {v}");
    assert_eq!((v["pad"].as_u64(), v["eos"].as_u64()), (Some(2), Some(2)), "{v}");
    assert_eq!(v["shape"][0], 2);
}
