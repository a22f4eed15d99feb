//! The seed projects' journeys through banter-chat (issue 28): the server's randomness.

use crate::serve::start;

fn ask(base: &str, body: &serde_json::Value) -> String {
    let c = reqwest::blocking::Client::new();
    let r = c.post(format!("{base}/v1/chat/completions")).json(body).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().unwrap();
    v["choices"][0]["message"]["content"].as_str().unwrap().to_string()
}

/// Sampled requests without a `seed` draw fresh randomness (OpenAI's semantics); `seed` makes a reply
/// reproducible; `serve --seed N` seeds every request that gives none.
#[test]
fn unseeded_requests_draw_fresh_randomness_and_seeded_ones_repeat() {
    let body = serde_json::json!({"messages": [{"role": "user", "content": "tell me something"}],
        "temperature": 1.5, "top_k": 0, "top_p": 1.0, "max_tokens": 24});
    let s = start(&[]);
    let replies: Vec<String> = (0..4).map(|_| ask(&s.base, &body)).collect();
    assert!(replies.iter().any(|r| r != &replies[0]), "four unseeded replies were identical: {replies:?}");
    let mut seeded = body.clone();
    seeded["seed"] = 7.into();
    assert_eq!(ask(&s.base, &seeded), ask(&s.base, &seeded));
    seeded["seed"] = "seven".into();
    let r =
        reqwest::blocking::Client::new().post(format!("{}/v1/chat/completions", s.base)).json(&seeded).send().unwrap();
    assert_eq!(r.status().as_u16(), 400, "a seed that is not an integer is refused");
    drop(s);
    let fixed = start(&["--seed", "5"]);
    assert_eq!(ask(&fixed.base, &body), ask(&fixed.base, &body));
}

fn health(base: &str) -> serde_json::Value {
    reqwest::blocking::get(format!("{base}/health")).unwrap().json().unwrap()
}

/// The self-learning seed starts the server and the learner independently: `serve --adapter loop/adapter`
/// before the learner has published serves the base model, and picks the adapter up when it appears.
#[test]
fn the_server_serves_the_base_until_the_adapter_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let trained = dir.path().join("trained");
    let ok = std::process::Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
        .args(["--lora", "--max-steps", "3", "--batch-size", "4", "--threads", "1", "--precision", "fp32", "-q"])
        .arg("--model")
        .arg(crate::model())
        .arg("-o")
        .arg(&trained)
        .arg(crate::data("persona.jsonl"))
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::create_dir(dir.path().join("loop")).unwrap();
    let s = crate::serve::start_in(dir.path(), &["--adapter", "loop/adapter", "--reload-every", "0.2"]);
    let h = health(&s.base);
    assert!(h["adapter"].is_null(), "{h}");
    let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": 8});
    ask(&s.base, &body);
    // The learner publishes: the folder appears whole (a rename), and the next requests use it.
    std::fs::rename(&trained, dir.path().join("loop").join("adapter")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // The swap happens between requests: keep asking until one was answered by the adapter.
    while health(&s.base)["adapter"].is_null() {
        assert!(std::time::Instant::now() < deadline, "the published adapter was not picked up");
        std::thread::sleep(std::time::Duration::from_millis(200));
        ask(&s.base, &body);
    }
    assert_eq!(health(&s.base)["adapter"], "loop/adapter");
}

/// Slash commands are commands: an unknown one prints the list and reaches neither the model nor the log;
/// `//text` sends `/text`; `/push user/repo` uploads the model in use to the Hub (a mock on 127.0.0.1).
#[test]
fn repl_slash_commands_are_commands_and_push_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chats.jsonl");
    let hub = crate::mockhub::MockHub::start();
    let o = crate::bin()
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_TOKEN", "hf_write")
        .env("HF_HUB_CACHE", dir.path().join("cache"))
        .env_remove("HF_HUB_OFFLINE")
        .arg("--model")
        .arg(crate::model())
        .arg("--log")
        .arg(&log)
        .write_stdin("hello\n/frobnicate now\n//slash message\n/push\n/push me/oodi\n/exit\n")
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown command /frobnicate") && err.contains("/push USER/NAME"), "{err}");
    assert!(err.contains("usage: /push"), "{err}");
    assert!(err.contains("pushed") && err.contains("me/oodi"), "{err}");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let said: Vec<&str> = lines.iter().map(|l| l["messages"][0]["content"].as_str().unwrap()).collect();
    assert_eq!(said, ["hello", "/slash message"], "commands are not messages");
    let st = hub.state.lock().unwrap();
    let files = &st.repos["me/oodi"].files;
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(files.contains_key(f), "{f} not uploaded: {:?}", files.keys().collect::<Vec<_>>());
    }
}

/// `-q` silences the learning notices; a new chat names the adapter it loaded and the logged exchanges not
/// learned yet; a round still running at exit is waited for and reported.
#[test]
fn learning_notices_follow_quiet_and_a_new_chat_says_where_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chats.jsonl");
    let chat = |quiet: bool, input: &str| {
        let mut c = crate::bin();
        c.arg("--model").arg(crate::model()).arg("--log").arg(&log);
        c.args(["--learn-every", "2", "--learn-epochs", "1", "--max-new-tokens", "8"]);
        if quiet {
            c.arg("-q");
        }
        let o = c.write_stdin(input.to_string()).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // Quiet: two exchanges start a round at the second, which is still running when input ends.
    let err = chat(true, "where are you?\ndid you eat?\n");
    assert!(!err.contains("learning from") && !err.contains("learned from") && !err.contains("waiting"), "{err}");
    let learned = std::path::PathBuf::from(format!("{}.adapter", log.display()));
    assert!(learned.join("adapter_config.json").exists(), "the round finished before exit");
    // Not quiet: the banner names the learned adapter and what is left to learn; the round at exit is reported.
    let err = chat(false, "how was work?\nsee you\n");
    assert!(err.contains("with the adapter") && err.contains("0 logged exchange(s) not learned yet"), "{err}");
    assert!(err.contains("learning from 2 new exchange"), "{err}");
    assert!(err.contains("learned from") || err.contains("in use"), "{err}");
}

/// A learned adapter is published only when its loss on held-out exchanges is no worse than the live one's
/// (both said); `--publish always` publishes every round.
#[test]
fn a_round_that_hurts_the_held_out_loss_is_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    // New exchanges far from how the persona talks, learned hard: the persona's own samples get worse.
    let junk: String = (0..12)
        .map(|i| {
            format!(
                "{{\"messages\":[{{\"role\":\"user\",\"content\":\"qq{i} zx zx zx\"}},{{\"role\":\"assistant\",\"content\":\"vvvv wwww {i} xxxx yyyy zzzz vvvv wwww\"}}]}}\n"
            )
        })
        .collect();
    std::fs::write(&log, junk).unwrap();
    let watch = |out: &str, publish: &str| {
        let o = crate::bin()
            .args(["watch", "--once", "--threshold", "1", "--learn-epochs", "8", "--learn-lr", "1e-2"])
            .args(["--publish", publish, "--eval-file"])
            .arg(crate::data("persona.jsonl"))
            .arg("--model")
            .arg(crate::model())
            .arg("-o")
            .arg(dir.path().join(out))
            .arg("--state")
            .arg(dir.path().join(format!("{out}.state.json")))
            .arg(&log)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = watch("gated", "if-not-worse");
    assert!(err.contains("held-out loss") && err.contains("did not publish"), "{err}");
    assert!(!dir.path().join("gated").join("adapter_config.json").exists());
    let err = watch("always", "always");
    assert!(err.contains("held-out loss") && err.contains("now in use"), "{err}");
    assert!(dir.path().join("always").join("adapter_config.json").exists());
}
