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
        .args(["--config", "tiny", "--max-steps", "2", "--batch-size", "4", "-q", "--tokenizer"])
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
