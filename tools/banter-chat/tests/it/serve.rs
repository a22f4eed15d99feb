//! The HTTP server, with real requests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::model;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(extra: &[&str]) -> Server {
    start_model(model(), extra)
}

/// The server on `model`, with small limits unless `extra` sets them.
pub(crate) fn start_model(model: &std::path::Path, extra: &[&str]) -> Server {
    start_at(model, None, extra)
}

/// [`start`] with `cwd` as the server's working folder.
pub(crate) fn start_in(cwd: &std::path::Path, extra: &[&str]) -> Server {
    start_at(model(), Some(cwd), extra)
}

fn start_at(model: &std::path::Path, cwd: Option<&std::path::Path>, extra: &[&str]) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bytes = if extra.contains(&"--max-request-bytes") { &[][..] } else { &["--max-request-bytes", "2000"][..] };
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("banter-chat"));
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    #[allow(clippy::zombie_processes)] // waited for in Server's Drop
    let mut child = cmd
        .arg("serve")
        .arg("--model")
        .arg(model)
        .args(["--port", "0", "--max-tokens-limit", "64"])
        .args(bytes)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            let _ = child.wait();
            panic!("server exited");
        }
        if let Some(i) = line.find("http://") {
            let base = line[i..].split('/').take(3).collect::<Vec<_>>().join("/");
            return Server { child, base };
        }
    }
}

#[test]
fn chat_completions_health_page_and_errors() {
    let s = start(&[]);
    let c = reqwest::blocking::Client::new();
    let h: serde_json::Value = c.get(format!("{}/health", s.base)).send().unwrap().json().unwrap();
    assert_eq!(h["status"], "ok");
    let models: serde_json::Value = c.get(format!("{}/v1/models", s.base)).send().unwrap().json().unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");
    let page = c.get(format!("{}/", s.base)).send().unwrap().text().unwrap();
    assert!(page.contains("<form") && page.contains("/chat"));
    // The seed's API, with sampling really applied: greedy is deterministic, and the prompt is not echoed.
    let body = serde_json::json!({"message": "where are you?", "temperature": 0.0, "max_length": 20, "top_p": 0.9, "top_k": 50});
    let a: serde_json::Value = c.post(format!("{}/chat", s.base)).json(&body).send().unwrap().json().unwrap();
    let b: serde_json::Value = c.post(format!("{}/chat", s.base)).json(&body).send().unwrap().json().unwrap();
    assert_eq!(a, b);
    assert!(!a["response"].as_str().unwrap().contains("where are you?"));
    // OpenAI-compatible, plain and streamed.
    let req = serde_json::json!({"messages": [{"role": "user", "content": "did you eat?"}], "temperature": 0, "max_tokens": 16});
    let r: serde_json::Value =
        c.post(format!("{}/v1/chat/completions", s.base)).json(&req).send().unwrap().json().unwrap();
    assert_eq!(r["object"], "chat.completion");
    let u = &r["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    let full = r["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    let mut streamed = req.clone();
    streamed["stream"] = serde_json::json!(true);
    let sse = c.post(format!("{}/v1/chat/completions", s.base)).json(&streamed).send().unwrap().text().unwrap();
    assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");
    let text: String = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|l| *l != "[DONE]")
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text.trim(), full);
    // Errors are JSON with the right status.
    let bad = c.post(format!("{}/chat", s.base)).body("{not json").send().unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<serde_json::Value>().unwrap()["error"]["message"].as_str().unwrap().contains("invalid JSON"));
    let big =
        c.post(format!("{}/chat", s.base)).json(&serde_json::json!({"message": "x".repeat(5000)})).send().unwrap();
    assert_eq!(big.status(), 413);
    let many = c
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000}))
        .send()
        .unwrap();
    assert_eq!(many.status(), 400);
    assert_eq!(c.get(format!("{}/nope", s.base)).send().unwrap().status(), 404);
    assert_eq!(c.get(format!("{}/chat", s.base)).send().unwrap().status(), 405);
    let missing = c.post(format!("{}/chat", s.base)).json(&serde_json::json!({"msg": "x"})).send().unwrap();
    assert_eq!(missing.status(), 400);
}

#[test]
fn api_key_and_concurrent_requests() {
    let s = start(&["--api-key", "sekret"]);
    let c = reqwest::blocking::Client::new();
    let body = serde_json::json!({"message": "hi", "max_length": 8});
    assert_eq!(c.post(format!("{}/chat", s.base)).json(&body).send().unwrap().status(), 401);
    assert_eq!(c.get(format!("{}/health", s.base)).send().unwrap().status(), 200);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let base = s.base.clone();
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let r = c
                    .post(format!("{base}/chat"))
                    .bearer_auth("sekret")
                    .json(&serde_json::json!({"message": format!("hi {i}"), "max_length": 8}))
                    .send()
                    .unwrap();
                r.status().as_u16()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
}

/// The chat page in headless Chromium (Debian's `chromium`), driven by playwright-core: type a message,
/// see the reply. Skipped when Chromium or the node module is missing, unless `BANTER_REQUIRE_BROWSER=1`
/// (CI installs both and sets it).
#[test]
fn the_page_in_headless_chromium_shows_the_reply() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = std::path::Path::new(&chromium).exists() && dir.join("node_modules/playwright-core").exists();
    if !ready {
        assert!(
            std::env::var("BANTER_REQUIRE_BROWSER").is_err(),
            "headless Chromium test required but {chromium} or playwright-core is missing"
        );
        eprintln!(
            "skipping: no {chromium} or tests/browser/node_modules (make test installs the module; apt install chromium)"
        );
        return;
    }
    let s = start(&[]);
    let out = Command::new("node")
        .arg("page.mjs")
        .arg(format!("{}/", s.base))
        .current_dir(&dir)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
    assert_eq!(v["user"], "where are you?");
    assert!(!v["reply"].as_str().unwrap().is_empty());
}

/// Requests that arrive together are answered in one batch (`--max-batch`) with the same replies as one
/// at a time (greedy).
#[test]
fn concurrent_requests_are_batched_with_the_same_replies() {
    let ask = |base: &str, i: usize| {
        let c = reqwest::blocking::Client::new();
        let r = c
            .post(format!("{base}/chat"))
            .json(&serde_json::json!({"message": format!("are you there {i}?"), "max_length": 12, "temperature": 0}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json::<serde_json::Value>().unwrap()["response"].as_str().unwrap_or_default().to_string()
    };
    let one = start(&["--max-batch", "1"]);
    let want: Vec<String> = (0..6).map(|i| ask(&one.base, i)).collect();
    drop(one);
    let batched = start(&["--max-batch", "6"]);
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let base = batched.base.clone();
            std::thread::spawn(move || (i, ask(&base, i)))
        })
        .collect();
    for h in handles {
        let (i, got) = h.join().unwrap();
        assert_eq!(got, want[i], "request {i}");
    }
}

/// Threads of a process (Linux).
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn half_sent_requests_time_out_and_connections_are_capped() {
    use std::io::{Read, Write};
    let s = start(&["--read-timeout", "1", "--max-connections", "300"]);
    let addr = s.base.trim_start_matches("http://").to_string();
    // 400 clients send half a request head and stall: 300 are held (for a second at most), the rest closed.
    let mut socks: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .map(|mut c| {
            let _ = c.write_all(b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Le");
            c
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t = threads(s.child.id());
    assert!(t < 100, "{t} threads for 400 stalled connections");
    // Every stalled connection is closed by the server within the read timeout (plus slack).
    for c in &mut socks {
        c.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || head.starts_with("HTTP/1.1 408") || head.starts_with("HTTP/1.1 400"), "{head}");
    }
    // A body that never comes is answered 408.
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(
        b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"mess",
    )
    .unwrap();
    let mut resp = String::new();
    let _ = c.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    // And the server still answers.
    let h = reqwest::blocking::get(format!("{}/health", s.base)).unwrap();
    assert_eq!(h.status(), 200);
}

#[test]
fn requests_are_validated_and_exchanges_logged_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("served.jsonl");
    let s = start(&["--log", log.to_str().unwrap()]);
    let c = reqwest::blocking::Client::new();
    let post = |body: serde_json::Value| c.post(format!("{}/chat", s.base)).json(&body).send().unwrap();
    assert_eq!(post(serde_json::json!({"message": "hi", "max_length": 0})).status(), 400);
    assert_eq!(post(serde_json::json!({"message": "hi", "temperature": 1e308})).status(), 400);
    assert_eq!(post(serde_json::json!({"message": "hi", "repetition_penalty": -1})).status(), 400);
    let form = c
        .post(format!("{}/chat", s.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("message=hi")
        .send()
        .unwrap();
    assert_eq!(form.status(), 415);
    assert!(!log.exists(), "refused requests are not logged");
    for i in 0..3 {
        let r = post(serde_json::json!({"message": format!("where are you? {i}"), "max_length": 8}));
        assert_eq!(r.status(), 200);
        let reply = r.json::<serde_json::Value>().unwrap()["response"].as_str().unwrap().to_string();
        // The answer has arrived: its exchange is already in the log.
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), i + 1);
        assert_eq!(lines[i]["messages"][0]["content"], format!("where are you? {i}"));
        assert_eq!(lines[i]["messages"][1]["content"].as_str().unwrap(), reply);
    }
}

#[test]
fn an_empty_api_key_is_refused_at_start() {
    crate::bin()
        .args(["serve", "--model"])
        .arg(model())
        .args(["--port", "0", "--api-key", ""])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--api-key is empty"));
    let serve = |extra: &[&str]| {
        crate::bin().args(["serve", "--model"]).arg(model()).args(["--port", "0"]).args(extra).assert()
    };
    serve(&["--reload-every=-1"]).code(2).stderr(predicates::str::contains("--reload-every must be"));
    serve(&["--learn-every", "2"]).code(2).stderr(predicates::str::contains("there is no --log"));
}

/// The server is killed (SIGKILL) the instant each answer arrives: every answered exchange is in the log.
#[test]
fn an_answered_exchange_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("served.jsonl");
    for round in 0..3 {
        let mut s = start(&["--log", log.to_str().unwrap()]);
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/chat", s.base))
            .json(&serde_json::json!({"message": format!("round {round}"), "max_length": 6, "seed": round}))
            .send()
            .unwrap();
        let reply = r.json::<serde_json::Value>().unwrap()["response"].as_str().unwrap().to_string();
        s.child.kill().unwrap();
        let _ = s.child.wait();
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), round + 1, "round {round}: an answered exchange is missing");
        assert_eq!(lines[round]["messages"][1]["content"].as_str().unwrap(), reply);
    }
}

#[test]
fn stop_strings_apply_to_served_replies() {
    let s = start(&["--stop", "a", "--stop", "e", "--stop", "o", "--temperature", "0"]);
    let c = reqwest::blocking::Client::new();
    for q in ["where are you?", "did you eat?", "hello"] {
        let r: serde_json::Value = c
            .post(format!("{}/chat", s.base))
            .json(&serde_json::json!({"message": q, "max_length": 30}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let text = r["response"].as_str().unwrap();
        assert!(!text.contains(['a', 'e', 'o']), "{q:?} → {text:?}");
    }
}

/// The official `openai` Python client (from the dev venv) against the server.
#[test]
fn the_openai_client_lists_models_and_completes_streamed_and_not() {
    let Some(py) = crate::python() else { return };
    let s = start(&[]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_client.py");
    let out = Command::new(py).arg(script).arg(&s.base).output().unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && o.trim() == "ok", "stdout: {o}\nstderr: {e}");
}

#[test]
fn completions_continue_plain_text_and_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("served.jsonl");
    let s = start(&["--log", log.to_str().unwrap()]);
    let c = reqwest::blocking::Client::new();
    let r: serde_json::Value = c
        .post(format!("{}/v1/completions", s.base))
        .json(&serde_json::json!({"prompt": "where are", "max_tokens": 6, "temperature": 0}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["object"], "text_completion");
    let text = r["choices"][0]["text"].as_str().unwrap();
    let logged: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(logged["text"].as_str().unwrap(), format!("where are{text}"));
    for bad in [serde_json::json!({}), serde_json::json!({"prompt": ["a", "b"]}), serde_json::json!({"prompt": 3})] {
        let r = c.post(format!("{}/v1/completions", s.base)).json(&bad).send().unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

#[test]
fn a_request_the_template_refuses_is_a_400_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let m = crate::model_with_template(dir.path(), crate::ALTERNATING);
    let s = start_model(&m, &["--max-request-bytes", "1000000"]);
    let c = reqwest::blocking::Client::new();
    let chat = |body: serde_json::Value| c.post(format!("{}/v1/chat/completions", s.base)).json(&body).send().unwrap();
    let turn = |role: &str, text: &str| serde_json::json!({"role": role, "content": text});
    for round in 0..3 {
        // Two user turns in a row: the template raises; the request is refused with its message.
        let bad = chat(serde_json::json!({"messages": [turn("user", "hi"), turn("user", "again")], "max_tokens": 4}));
        assert_eq!(bad.status(), 400, "round {round}");
        let v: serde_json::Value = bad.json().unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("roles must alternate"), "{v}");
        // Streamed, the same: a plain 400 before any event.
        let bad = chat(serde_json::json!({"messages": [turn("assistant", "x")], "stream": true, "max_tokens": 4}));
        assert_eq!(bad.status(), 400);
        // And a good request right after is answered.
        let ok = chat(serde_json::json!({"messages": [turn("user", "where are you?")], "max_tokens": 4}));
        assert_eq!(ok.status(), 200, "round {round}");
    }
    // A long alternating conversation is cut to fit the context at a user turn, as the template requires.
    let long: Vec<serde_json::Value> =
        (0..301).map(|i| turn(if i % 2 == 0 { "user" } else { "assistant" }, "word")).collect();
    let r = chat(serde_json::json!({"messages": long, "max_tokens": 4}));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    // A batch of concurrent requests, one of them refused: the others are answered.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (base, body) = (
                s.base.clone(),
                if i == 2 {
                    serde_json::json!({"messages": [turn("user", "a"), turn("user", "b")], "max_tokens": 4})
                } else {
                    serde_json::json!({"messages": [turn("user", "hello")], "max_tokens": 4})
                },
            );
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(format!("{base}/v1/chat/completions"))
                    .json(&body)
                    .send()
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(codes, [200, 200, 400, 200]);
    assert_eq!(c.get(format!("{}/health", s.base)).send().unwrap().status(), 200);
}

#[test]
fn many_turns_are_fitted_fast_and_too_many_are_refused_and_n_is_capped() {
    let s = start(&["--max-request-bytes", "1000000"]);
    let c = reqwest::blocking::Client::new();
    let chat = |body: serde_json::Value| c.post(format!("{}/v1/chat/completions", s.base)).json(&body).send().unwrap();
    let turns = |n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "word"}))
            .collect()
    };
    // 1,023 one-word turns: the oldest are dropped to fit the context; answered.
    let r = chat(serde_json::json!({"messages": turns(1023), "max_tokens": 4}));
    assert_eq!(r.status(), 200);
    // Over the cap: refused, naming it.
    let r = chat(serde_json::json!({"messages": turns(5001), "max_tokens": 4}));
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("1024"));
    // n choices, up to the cap; more is a 400, never one silent choice.
    let r = chat(serde_json::json!({"messages": turns(1), "max_tokens": 4, "n": 3, "temperature": 0.9}));
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["choices"].as_array().unwrap().len(), 3);
    assert_eq!(v["choices"][2]["index"], 2);
    for n in [serde_json::json!(1000), serde_json::json!(0), serde_json::json!("3")] {
        assert_eq!(chat(serde_json::json!({"messages": turns(1), "n": n})).status(), 400, "n = {n}");
    }
    assert_eq!(chat(serde_json::json!({"messages": turns(1), "n": 2, "stream": true})).status(), 400);
    let r = c
        .post(format!("{}/v1/completions", s.base))
        .json(&serde_json::json!({"prompt": "hi", "max_tokens": 3, "n": 2}))
        .send()
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().unwrap()["choices"].as_array().unwrap().len(), 2);
}

#[cfg(target_os = "linux")]
#[test]
fn an_exchange_that_cannot_be_logged_is_a_503_not_an_unlogged_answer() {
    // /dev/full: every write fails with "no space left on device", as a full disk.
    let s = start(&["--log", "/dev/full"]);
    let c = reqwest::blocking::Client::new();
    for _ in 0..2 {
        let r = c
            .post(format!("{}/chat", s.base))
            .json(&serde_json::json!({"message": "hi", "max_length": 4}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.text().unwrap().contains("could not be logged"));
    }
    // Streamed: the stream ends with an error event and no [DONE].
    let r = c
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": true}))
        .send()
        .unwrap();
    let body = r.text().unwrap();
    assert!(body.contains("\"error\"") && !body.contains("[DONE]"), "{body}");
}
