//! Chatting with models of other families from the Hub (Llama, Qwen2, Qwen3, Phi-3, Gemma, Gemma 2, Mistral, OPT): greedy
//! replies equal transformers' `generate` on the same chat-template prompt, and with a PEFT-made adapter
//! equal PEFT's; batched answering equals one at a time; bf16 and int8 weights run.

use std::process::Command;

use crate::{bin, data, python};

#[test]
fn greedy_replies_of_every_family_with_and_without_a_peft_adapter_equal_transformers() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("tok.json");
    let ok = Command::new(assert_cmd::cargo::cargo_bin("banter-tokenize"))
        .args(["train-tokenizer", "--vocab-size", "300", "--min-frequency", "1", "-q", "-o"])
        .arg(&tok)
        .arg(data("persona.jsonl"))
        .status()
        .unwrap();
    assert!(ok.success());
    let template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    let base = serde_json::json!({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 128});
    let families = [
        serde_json::json!({"model_type": "llama", "num_key_value_heads": 2}),
        serde_json::json!({"model_type": "qwen2", "num_key_value_heads": 2, "tie_word_embeddings": true}),
        serde_json::json!({"model_type": "gemma", "head_dim": 8, "num_key_value_heads": 1}),
        serde_json::json!({"model_type": "gemma2", "head_dim": 8, "num_key_value_heads": 2, "sliding_window": 4,
            "query_pre_attn_scalar": 8}),
        serde_json::json!({"model_type": "mistral", "num_key_value_heads": 2, "sliding_window": 4}),
        serde_json::json!({"model_type": "qwen3", "head_dim": 16, "num_key_value_heads": 2}),
        serde_json::json!({"model_type": "phi3", "num_key_value_heads": 2, "sliding_window": 6,
            "partial_rotary_factor": 0.5, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}),
        serde_json::json!({"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 128}),
    ];
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/hub_family.py");
    for extra in families {
        let name = extra["model_type"].as_str().unwrap().to_string();
        let mut cfg = if name == "opt" { serde_json::json!({}) } else { base.clone() };
        cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let model = dir.path().join(&name);
        let out = Command::new(&py)
            .arg(&script)
            .arg(&model)
            .arg(&tok)
            .arg(template)
            .arg(cfg.to_string())
            .env("TRANSFORMERS_VERBOSITY", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let want: serde_json::Value =
            serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
        let adapter = dir.path().join(format!("{name}-adapter"));
        for (extra, key, tokens) in [
            (vec![], "reply", "tokens"),
            (vec!["--adapter".to_string(), adapter.display().to_string()], "adapter_reply", "adapter_tokens"),
        ] {
            let o = bin()
                .arg("--model")
                .arg(&model)
                .args(&extra)
                // Compared with transformers in fp32 (`auto` may choose bf16 where the CPU has it).
                .args(["--precision", "fp32"])
                .args(["--prompt", "where are you?", "--temperature", "0", "--max-new-tokens", "8", "-v"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{name} {key}: {}", String::from_utf8_lossy(&o.stderr));
            // A random model's bytes need not end on a character boundary: banter holds an incomplete
            // character back, transformers prints U+FFFD for it.
            let clean = |t: &str| t.trim().trim_end_matches('\u{FFFD}').trim().to_string();
            let got = clean(&String::from_utf8_lossy(&o.stdout));
            assert_eq!(got, clean(want[key].as_str().unwrap()), "{name} {key}");
            let err = String::from_utf8_lossy(&o.stderr);
            let n =
                err.split(" tokens in ").next().and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse::<u64>().ok());
            assert_eq!(n, want[tokens].as_u64(), "{name} {key}: token counts ({err})");
        }
        if name != "gemma2" {
            // (A random Gemma 2's soft-capped logits saturate: its replies repeat one token either way.)
            assert_ne!(want["reply"], want["adapter_reply"], "{name}: the adapter changes the reply");
        }
        // Batched answering of a file (left-padded prompts, one decode): greedy replies equal one at a time;
        // a sampled batched run reproduces itself. (Sampled replies are not compared across batch sizes: a
        // batch runs other matrix kernels, so a sample near a probability boundary may differ; see oneshot.)
        let input = dir.path().join("prompts.jsonl");
        let prompts = ["where are you?", "ok", "are you coming to the party tonight or not?", "hi"];
        let body: String =
            prompts.iter().enumerate().map(|(i, p)| format!("{{\"id\":{i},\"text\":\"{p}\"}}\n")).collect();
        std::fs::write(&input, body).unwrap();
        let answer = |batch: &str, temp: &str, run: u32| {
            let out = dir.path().join(format!("{name}-r{batch}-{temp}-{run}.jsonl"));
            crate::answer_file(&model, &input, batch, temp, "8", &out)
        };
        let (one, four) = (answer("1", "0", 0), answer("4", "0", 0));
        assert_eq!(one.lines().count(), prompts.len());
        assert_eq!(one, four, "{name}: greedy");
        assert_eq!(answer("4", "0.8", 0), answer("4", "0.8", 1), "{name}: a sampled batch reproduces itself");
        // A LoRA adapter banter trains with a speakers template on this model chats, one-shot and batched:
        // the tokenizer takes only the markers the adapter has rows for, as training did.
        let speakers = dir.path().join(format!("{name}-asimbot"));
        let ok = Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
            .arg("--model")
            .arg(&model)
            .args(["--lora", "--template", "asimbot", "--max-steps", "2", "--batch-size", "4", "--block-size", "32"])
            .args(["--force", "-q", "-o"])
            .arg(&speakers)
            .arg(data("persona.jsonl"))
            .status()
            .unwrap();
        assert!(ok.success(), "{name}: training an asimbot adapter");
        for args in [&["--prompt", "where are you?"][..], &["--input", input.to_str().unwrap(), "--batch", "4"][..]] {
            let o = bin()
                .arg("--model")
                .arg(&model)
                .arg("--adapter")
                .arg(&speakers)
                .args(args)
                .args(["--max-new-tokens", "4", "-q"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{name} asimbot adapter {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        // bf16, int8 and q4 weights run (their greedy replies may drift from fp32's on a random model).
        for flags in [["--precision", "bf16"], ["--quantize", "int8"], ["--quantize", "q4"]] {
            let o = bin()
                .arg("--model")
                .arg(&model)
                .args(flags)
                .args(["--prompt", "where are you?", "--temperature", "0", "--max-new-tokens", "8", "-v"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{name} {flags:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
}
