//! A model card (`README.md`) for an upload that has none, as the Hub expects it: YAML front matter
//! (`base_model`, `library_name`, `tags`, `license` and `datasets` when known, `pipeline_tag`), then how the
//! model was trained (from banter-train's `train_report.json` and `metrics.jsonl`) and how to load it with
//! banter, transformers / PEFT and llama.cpp.

use std::path::Path;

use serde_json::Value;

fn json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// A value safe on one YAML line (quoted when it holds anything but plain name characters).
fn yaml(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The `license:` of a local base model's own card, when it has one.
fn base_license(base: &str) -> Option<String> {
    let text = std::fs::read_to_string(Path::new(base).join("README.md")).ok()?;
    let front = text.strip_prefix("---\n")?.split("\n---").next()?;
    front.lines().find_map(|l| l.strip_prefix("license:").map(|v| v.trim().trim_matches('"').to_string()))
}

/// Training figures from `metrics.jsonl`: steps, tokens, the last loss and validation loss.
fn metrics(dir: &Path) -> (i64, i64, Option<f64>, Option<f64>) {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    let (mut steps, mut tokens, mut loss, mut val) = (0, 0, None, None);
    for v in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        steps = v["step"].as_i64().unwrap_or(steps);
        tokens += v["tokens"].as_i64().unwrap_or(0);
        loss = v["loss"].as_f64().or(loss);
        val = v["val_loss"].as_f64().or(val);
    }
    (steps, tokens, loss, val)
}

/// The card for the folder `dir` uploaded as `repo`.
pub fn model_card(dir: &Path, repo: &str) -> String {
    let adapter = json(&dir.join("adapter_config.json"));
    let config = json(&dir.join("config.json"));
    let report = json(&dir.join("train_report.json"));
    let base = adapter.as_ref().and_then(|a| a["base_model_name_or_path"].as_str().map(str::to_string));
    let model_type = config.as_ref().and_then(|c| c["model_type"].as_str().map(str::to_string));
    let lora = adapter.is_some();
    let mut front = vec!["---".to_string()];
    // base_model must be a Hub name; a local path says nothing to the Hub.
    if let Some(b) = base.as_deref().filter(|b| crate::RepoId::parse(b).is_some() && !Path::new(b).exists()) {
        front.push(format!("base_model: {}", yaml(b)));
    }
    front.push(format!("library_name: {}", if lora { "peft" } else { "transformers" }));
    let mut tags = vec!["banter".to_string(), "text-generation".into()];
    if lora {
        tags.push("lora".into());
    }
    tags.extend(model_type.iter().cloned());
    front.push("tags:".into());
    front.extend(tags.iter().map(|t| format!("- {}", yaml(t))));
    if let Some(l) = base.as_deref().and_then(base_license) {
        front.push(format!("license: {}", yaml(&l)));
    }
    let datasets: Vec<String> = report
        .as_ref()
        .and_then(|r| r["datasets"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    if !datasets.is_empty() {
        front.push("datasets:".into());
        front.extend(datasets.iter().map(|d| format!("- {}", yaml(d))));
    }
    front.push("pipeline_tag: text-generation".into());
    front.push("---".into());

    let what = match (&base, lora) {
        (Some(b), true) => format!("A LoRA adapter for `{b}`"),
        (None, true) => "A LoRA adapter".to_string(),
        _ => format!("A {} model", model_type.as_deref().unwrap_or("causal language")),
    };
    let mut body = vec![
        format!("# {repo}"),
        String::new(),
        format!("{what}, trained with banter on the author's own text."),
        String::new(),
        "## Training".into(),
        String::new(),
    ];
    let (steps, tokens, loss, val) = metrics(dir);
    let r = report.unwrap_or(Value::Null);
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.4}"));
    if steps > 0 || r.is_object() {
        body.push(format!("- steps: {}", r["steps"].as_i64().unwrap_or(steps)));
        body.push(format!("- tokens trained on: {tokens}"));
        if let Some(p) = r["precision"].as_str() {
            body.push(format!("- precision: {p}"));
        }
        body.push(format!("- final training loss: {}", fmt(r["final_loss"].as_f64().or(loss))));
        body.push(format!(
            "- validation loss: {}",
            fmt(r["last_val_loss"].as_f64().or(r["best_val_loss"].as_f64()).or(val))
        ));
        if let Some(q) = r["data_quality"].as_f64() {
            body.push(format!("- data quality score (banter-validate): {q:.2}"));
        }
    } else {
        body.push("- no training record was uploaded with it".into());
    }
    body.push(String::new());
    body.push("## Use".into());
    body.push(String::new());
    let base_arg = base.as_deref().unwrap_or("BASE_MODEL");
    if lora {
        body.push(format!("banter: `banter-chat --model {base_arg} --adapter {repo}`"));
        body.push(String::new());
        body.push("transformers + PEFT:".into());
        body.push(String::new());
        body.push(format!("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\nfrom peft import PeftModel\n\ntok = AutoTokenizer.from_pretrained(\"{repo}\")\nbase = AutoModelForCausalLM.from_pretrained(\"{base_arg}\")\nbase.resize_token_embeddings(len(tok))  # when the adapter added tokens\nmodel = PeftModel.from_pretrained(base, \"{repo}\")\n```"));
        body.push(String::new());
        body.push(format!(
            "llama.cpp: `banter-export gguf {base_arg} --adapter {repo} -o model.gguf`, then `llama-cli -m model.gguf`."
        ));
    } else {
        body.push(format!("banter: `banter-chat --model {repo}`"));
        body.push(String::new());
        body.push("transformers:".into());
        body.push(String::new());
        body.push(format!("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\ntok = AutoTokenizer.from_pretrained(\"{repo}\")\nmodel = AutoModelForCausalLM.from_pretrained(\"{repo}\")\n```"));
        body.push(String::new());
        body.push(format!("llama.cpp: `banter-export gguf {repo} -o model.gguf`, then `llama-cli -m model.gguf`."));
    }
    body.push(String::new());
    format!("{}\n\n{}", front.join("\n"), body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adapter_card_names_its_base_and_the_training() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("adapter_config.json"),
            r#"{"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M"}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
        std::fs::write(
            d.path().join("metrics.jsonl"),
            "{\"step\":1,\"loss\":3.5,\"tokens\":100}\n{\"step\":2,\"loss\":3.1,\"tokens\":120,\"val_loss\":3.3}\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("train_report.json"),
            r#"{"steps": 2, "precision": "bf16", "final_loss": 3.1, "datasets": ["OpenAssistant/oasst1"]}"#,
        )
        .unwrap();
        let c = model_card(d.path(), "me/sara");
        assert!(c.starts_with("---\nbase_model: HuggingFaceTB/SmolLM2-135M\nlibrary_name: peft\n"), "{c}");
        assert!(
            c.contains("- lora") && c.contains("- llama") && c.contains("pipeline_tag: text-generation\n---"),
            "{c}"
        );
        assert!(c.contains("datasets:\n- OpenAssistant/oasst1\n"), "{c}");
        assert!(
            c.contains("- steps: 2") && c.contains("- tokens trained on: 220") && c.contains("- precision: bf16"),
            "{c}"
        );
        assert!(c.contains("- validation loss: 3.3000") && c.contains("PeftModel.from_pretrained"), "{c}");
    }

    #[test]
    fn a_local_base_path_is_not_a_base_model_and_odd_values_are_quoted() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("adapter_config.json"),
            format!(r#"{{"base_model_name_or_path": "{}"}}"#, d.path().display()),
        )
        .unwrap();
        let c = model_card(d.path(), "me/x");
        assert!(!c.contains("base_model:"), "{c}");
        assert_eq!(yaml("a: b"), "\"a: b\"");
        assert!(c.contains("no training record"), "{c}");
    }
}
