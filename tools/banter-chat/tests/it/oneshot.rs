//! One-shot, files of prompts, the REPL, logging, learning, and greedy parity with transformers.

use predicates::prelude::*;

use crate::{bin, data, model, python};

fn run(args: &[&str]) -> String {
    let out = bin().arg("--model").arg(model()).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn one_shot_prints_the_reply_only_and_is_seeded() {
    let a = run(&["--prompt", "where are you?", "--seed", "3", "-q"]);
    let b = run(&["--prompt", "where are you?", "--seed", "3", "-q"]);
    assert_eq!(a, b, "same seed, same reply");
    assert!(!a.contains("where are you?") && !a.contains("<|"), "no echoed prompt or markers: {a:?}");
    assert!(!a.trim().is_empty());
    let two = run(&["--prompt", "where are you?", "--num-return-sequences", "2", "-q"]);
    assert_eq!(two.lines().filter(|l| !l.is_empty()).count().min(2), 2.min(two.lines().count()));
}

/// Special tokens the model emits are left out of the text, as transformers' text-generation pipeline does.
#[test]
fn greedy_output_equals_transformers_generate() {
    let Some(py) = python() else { return };
    let ours = run(&[
        "--raw",
        "--precision",
        "fp32",
        "--prompt",
        "at home",
        "--temperature",
        "0",
        "--max-new-tokens",
        "20",
        "-q",
    ]);
    let script = "import sys, torch\n\
        from transformers import AutoModelForCausalLM, AutoTokenizer\n\
        m = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval(); t = AutoTokenizer.from_pretrained(sys.argv[1])\n\
        ids = t('at home', add_special_tokens=False, return_tensors='pt').input_ids\n\
        out = m.generate(ids, do_sample=False, max_new_tokens=20, eos_token_id=t.eos_token_id, pad_token_id=t.eos_token_id)\n\
        sys.stdout.write(t.decode(out[0, ids.shape[1]:], skip_special_tokens=True))";
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(model())
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ours.trim_end_matches('\n'), String::from_utf8(out.stdout).unwrap());
}

#[test]
fn a_file_of_prompts_is_answered_in_order_keeping_fields() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("p.jsonl");
    std::fs::write(&input, "{\"id\":1,\"input\":\"where are you?\",\"output\":\"\"}\n{\"id\":2,\"messages\":[{\"role\":\"user\",\"content\":\"did you eat?\"}]}\n").unwrap();
    let out = dir.path().join("r.jsonl");
    bin().arg("--model").arg(model()).arg("--input").arg(&input).arg("-o").arg(&out).arg("-q").assert().success();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[1]["messages"][1]["role"], "assistant");
    // Answering a file onto itself is refused; the prompts are kept.
    let before = std::fs::read(&input).unwrap();
    let o = bin().arg("--model").arg(model()).arg("--input").arg(&input).arg("-o").arg(&input).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("also an input"));
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn repl_commands_logging_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chats.jsonl");
    let saved = dir.path().join("saved.jsonl");
    bin()
        .arg("--model")
        .arg(model())
        .arg("--log")
        .arg(&log)
        .args(["--system", "You are Sara."])
        .write_stdin(format!(
            "where are you?\n/system You are Ali.\ndid you eat?\n/save {}\n/reset\n/help\n/exit\nnever read\n",
            saved.display()
        ))
        .assert()
        .success()
        .stderr(predicate::str::contains("persona set"))
        .stderr(predicate::str::contains("conversation forgotten"));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one line per exchange");
    assert_eq!(lines[0]["messages"][0]["content"], "You are Sara.");
    assert_eq!(lines[1]["messages"][0]["content"], "You are Ali.");
    assert_eq!(lines[1]["messages"][1]["content"], "did you eat?");
    assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
    let s: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&saved).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(s["messages"].as_array().unwrap().len(), 5, "system + 2 exchanges");
}

#[test]
fn feedback_corrections_are_logged_as_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fb.jsonl");
    bin()
        .arg("--model")
        .arg(model())
        .arg("--log")
        .arg(&log)
        .arg("--feedback")
        .write_stdin("where are you?\nat the office today\nhow was work?\ny\n")
        .assert()
        .success();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["messages"][1]["content"], "at the office today");
    assert_eq!(lines[0]["corrected"], true);
    assert_eq!(lines[1]["accepted"], true);
}

#[test]
fn learn_every_trains_an_adapter_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("learn.jsonl");
    bin()
        .arg("--model")
        .arg(model())
        .arg("--log")
        .arg(&log)
        .args(["--learn-every", "2", "--feedback", "--seed-data"])
        .arg(data("persona.jsonl"))
        .write_stdin(
            "where are you?\nat home, come over later please\nwhat are you doing?\njust chilling with some green tea\n",
        )
        .assert()
        .success()
        .stderr(predicate::str::contains("learning from 2 new exchange(s)"));
    let adapter = dir.path().join("learn.jsonl.adapter");
    assert!(adapter.join("adapter_config.json").exists(), "adapter written");
    // The chat can use it.
    bin().arg("--model").arg(model()).arg("--adapter").arg(&adapter).args(["--prompt", "hi", "-q"]).assert().success();
}

#[test]
fn watch_trains_when_the_log_grows_and_keeps_the_previous_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("grow.jsonl");
    let lines: Vec<String> =
        std::fs::read_to_string(data("persona.jsonl")).unwrap().lines().take(6).map(str::to_string).collect();
    std::fs::write(&log, lines[..2].join("\n") + "\n").unwrap();
    let out = dir.path().join("adapter");
    let watch = |_: ()| {
        bin()
            .arg("watch")
            .arg(&log)
            .arg("--model")
            .arg(model())
            // Every round published: this test is about rounds and rollback (the held-out gate has its own).
            .args(["--threshold", "3", "--once", "--publish", "always", "-o"])
            .arg(&out)
            .assert()
            .success()
    };
    watch(());
    assert!(!out.exists(), "under the threshold: nothing trained");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    watch(());
    assert!(out.join("adapter_model.safetensors").exists());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("grow.jsonl.state.json")).unwrap()).unwrap();
    assert_eq!(state["lines_consumed"], 6);
    let mut more = lines.clone();
    more.extend(lines.iter().cloned());
    std::fs::write(&log, more.join("\n") + "\n").unwrap();
    watch(());
    assert!(dir.path().join("adapter.prev").join("adapter_model.safetensors").exists(), "rollback copy kept");
}

#[test]
fn usage_errors() {
    bin().args(["--prompt", "hi"]).assert().code(2).stderr(predicate::str::contains("no model"));
    bin().arg("--model").arg(model()).args(["--prompt", "hi", "--top-p", "0"]).assert().code(2);
    bin().args(["--model", "/nonexistent", "--prompt", "hi"]).assert().code(4);
}

/// `--quantize int8` and `q4` answer, and `--precision` refuses what the device cannot do.
#[test]
fn int8_weights_answer_and_precision_is_checked() {
    let greedy = ["--prompt", "where are you?", "--temperature", "0", "--max-new-tokens", "12", "-q"];
    // How close int8 stays to fp32 is tested on the model (banter-model's quant tests); here the flag works
    // end to end and answers deterministically.
    let int8 = run(&[&greedy[..], &["--quantize", "int8"]].concat());
    assert!(!int8.trim().is_empty());
    assert_eq!(int8, run(&[&greedy[..], &["--quantize", "int8"]].concat()));
    let q4 = run(&[&greedy[..], &["--quantize", "q4"]].concat());
    assert!(!q4.trim().is_empty());
    assert_eq!(q4, run(&[&greedy[..], &["--quantize", "q4"]].concat()));
    bin()
        .arg("--model")
        .arg(model())
        .args(["--precision", "fp16", "--device", "cpu", "--prompt", "hi", "-q"])
        .assert()
        .code(2);
    bin()
        .arg("--model")
        .arg(model())
        .args(["--quantize", "int8", "--precision", "bf16", "--prompt", "hi", "-q"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--quantize computes in fp32"));
}

/// Batched answering of a file (left-padded prompts of different lengths, one decode for all) gives the
/// same replies as answering one by one, greedy and sampled (each row has its own seeded generator).
#[test]
fn batched_input_answers_like_one_at_a_time() {
    // What batching guarantees: every prompt answered in order; greedy replies equal to one at a time; and a
    // batched sampled run reproducing itself exactly. Sampled replies are not compared across batch sizes:
    // a batch runs other matrix kernels (AMX/AVX-512 blockings differ by row count), so logits may differ
    // in the last bits and a sample near a probability boundary may pick another token.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("p.jsonl");
    let prompts = ["where are you?", "did you eat?", "ok", "are you coming to the party tonight or not?", "hi", "lol"];
    let body: String = prompts.iter().enumerate().map(|(i, p)| format!("{{\"id\":{i},\"text\":\"{p}\"}}\n")).collect();
    std::fs::write(&input, body).unwrap();
    let answer = |batch: &str, temp: &str, run: u32| {
        let out = dir.path().join(format!("r{batch}-{temp}-{run}.jsonl"));
        crate::answer_file(model(), &input, batch, temp, "16", &out)
    };
    let (one, four) = (answer("1", "0", 0), answer("4", "0", 0));
    assert_eq!(one.lines().count(), prompts.len());
    assert_eq!(one, four, "greedy");
    let sampled = answer("4", "0.8", 0);
    assert_eq!(sampled, answer("4", "0.8", 1), "a batched sampled run reproduces itself");
    for (i, line) in sampled.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["id"], i, "in input order");
        assert_eq!(v["messages"][0]["content"], prompts[i]);
    }
}

#[test]
fn bare_exit_words_end_the_repl_and_misused_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chats.jsonl");
    bin()
        .arg("--model")
        .arg(model())
        .arg("--log")
        .arg(&log)
        .write_stdin("hi there\nexit\nnever read\n")
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    bin().arg("--model").arg(model()).arg("--log").arg(&log).write_stdin("q\n").assert().success();
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    // --learn-every learns from the log: without one it is refused, not silently idle.
    bin()
        .arg("--model")
        .arg(model())
        .args(["--learn-every", "2"])
        .write_stdin("hi\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--learn-every"));
    // Answers and a JSON report cannot share stdout.
    let input = dir.path().join("p.jsonl");
    std::fs::write(&input, "{\"text\":\"hi\"}\n").unwrap();
    bin().arg("--model").arg(model()).arg("--input").arg(&input).arg("--json").assert().code(2);
}

/// generation_config.json's `eos_token_id` list stops generation (here: every id, so nothing is said).
#[test]
fn generation_config_eos_ids_stop_generation() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir(&m).unwrap();
    for f in std::fs::read_dir(model()).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, m.join(f.file_name().unwrap())).unwrap();
        }
    }
    let say = |dir: &std::path::Path| {
        let o = bin()
            .arg("--model")
            .arg(dir)
            .args(["--prompt", "where are you?", "--temperature", "0", "-q"])
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert!(!say(&m).is_empty(), "the model says something");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(m.join("config.json")).unwrap()).unwrap();
    let all: Vec<u64> = (0..cfg["vocab_size"].as_u64().unwrap()).collect();
    std::fs::write(m.join("generation_config.json"), serde_json::json!({"eos_token_id": all}).to_string()).unwrap();
    assert_eq!(say(&m), "");
}

/// `--model user/name` found in the standard Hugging Face cache (laid out as huggingface_hub writes it),
/// with `HF_HUB_OFFLINE=1`: no network, the same reply as from the directory.
#[test]
fn a_hub_name_loads_from_the_hugging_face_cache_offline() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--me--tiny-chat");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for e in std::fs::read_dir(crate::model()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let blob = repo.join("blobs").join(p.file_name().unwrap());
            std::fs::copy(&p, &blob).unwrap();
            std::os::unix::fs::symlink(
                format!("../../blobs/{}", p.file_name().unwrap().to_string_lossy()),
                snap.join(p.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    let args = ["--prompt", "hi", "--temperature", "0", "--max-new-tokens", "8", "-q"];
    let local = bin().arg("--model").arg(crate::model()).args(args).output().unwrap();
    let hub = bin()
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args(["--model", "me/tiny-chat"])
        .args(args)
        .output()
        .unwrap();
    assert!(hub.status.success(), "{}", String::from_utf8_lossy(&hub.stderr));
    assert_eq!(hub.stdout, local.stdout);
    // Not in the cache: a clear error, exit 4.
    let o = bin()
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .args(["--model", "me/other", "--prompt", "hi"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HF_HUB_OFFLINE"));
}

/// `--input` with `--num-return-sequences 3`: a row per prompt with three sampled replies, which read as a
/// preference record once ranked; with --temperature 0 it is refused (the replies would all be equal).
#[test]
fn several_replies_per_prompt_make_rows_to_rank() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("p.jsonl");
    std::fs::write(&input, "{\"id\":1,\"input\":\"where are you?\",\"output\":\"\"}\n{\"id\":2,\"messages\":[{\"role\":\"user\",\"content\":\"did you eat?\"}]}\n").unwrap();
    let out = dir.path().join("r.jsonl");
    bin()
        .arg("--model")
        .arg(model())
        .args(["--num-return-sequences", "3", "--temperature", "1.0", "--max-new-tokens", "12", "--batch", "2", "-q"])
        .arg("--input")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["id"], i as u64 + 1);
        assert_eq!(r["responses"].as_array().unwrap().len(), 3);
        assert_eq!(r["prompt"].as_array().unwrap().last().unwrap()["role"], "user");
        let mut ranked = r.clone();
        ranked["ranked_indices"] = serde_json::json!([2, 0, 1]);
        let p = <banter_core::records::Preference as banter_core::records::Record>::from_value(ranked).unwrap();
        assert_eq!(p.pairs().len(), 3);
    }
    let o = bin()
        .arg("--model")
        .arg(model())
        .args(["--num-return-sequences", "3", "--temperature", "0"])
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn template_errors_are_usage_errors_never_panics_or_empty_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("p.jsonl");
    std::fs::write(&input, "{\"text\": \"hi\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]}\n")
        .unwrap();
    let run = |m: &std::path::Path, args: &[&str]| {
        let o = bin().arg("--model").arg(m).args(["--max-new-tokens", "4", "-q"]).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    // A template that raises for some conversations: the second prompt has two user turns in a row.
    let m = crate::model_with_template(&dir.path().join("alt"), crate::ALTERNATING);
    for batch in ["1", "4"] {
        let out = dir.path().join(format!("o{batch}.jsonl"));
        let (code, err, _) =
            run(&m, &["--input", input.to_str().unwrap(), "--batch", batch, "-o", out.to_str().unwrap()]);
        assert_eq!(code, Some(2), "--batch {batch}: {err}");
        assert!(err.contains("roles must alternate") && err.contains("hostile-model"), "{err}");
        assert!(!out.exists(), "--batch {batch}: an output was written");
    }
    // Templates that never end or grow text by doubling stop at their work limit: exit 2, one line.
    for (name, t) in [
        ("loop", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"),
        (
            "doubling",
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        ),
        ("multiply", "{{ 'x' * 1000000000 }}{% for m in messages %}{{ m['content'] }}{% endfor %}"),
        (
            "list-doubling",
            "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
        ),
    ] {
        let m = crate::model_with_template(&dir.path().join(name), t);
        let (code, err, _) = run(&m, &["--prompt", "hello"]);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
    }
    // An empty chat_template is no template: the default one is used (before: a panic).
    let m = crate::model_with_template(&dir.path().join("empty"), "");
    let (code, err, _) = run(&m, &["--prompt", "hello"]);
    assert_eq!(code, Some(0), "{err}");
    // An empty raw prompt starts from the beginning-of-text token (before: a libtorch panic).
    let (code, err, _) = run(crate::model(), &["--raw", "--prompt", ""]);
    assert_eq!(code, Some(0), "{err}");
    // A template that renders nothing is refused, not run on an empty prompt.
    let m = crate::model_with_template(&dir.path().join("blank"), "{% if false %}x{% endif %}");
    let (code, err, _) = run(&m, &["--prompt", "hello"]);
    assert_eq!(code, Some(2), "{err}");
}
