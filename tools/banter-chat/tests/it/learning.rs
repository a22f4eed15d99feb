//! Continual learning through the binaries: a persona adapter is continued, background learning survives
//! Ctrl-C on a reply and kill -9, and the server serves what was published.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{data, model};

fn chat() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("banter-chat"))
}

/// stderr lines of a child, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a stderr line containing `what`; returns every line seen so far.
fn wait_for(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, what: &str, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !seen.iter().any(|l| l.contains(what)) {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no {what:?} on stderr within {secs} s; seen: {seen:#?}"),
        }
    }
}

/// The LoRA B matrices of an adapter, flattened (safetensors read by hand: header, then f32 data).
fn lora_b(dir: &Path) -> Vec<f32> {
    let bytes = std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut names: Vec<&String> = header.as_object().unwrap().keys().filter(|k| k.contains("lora_B")).collect();
    names.sort();
    let mut out = Vec::new();
    for k in names {
        let t = &header[k.as_str()];
        assert_eq!(t["dtype"], "F32");
        let (a, b) = (t["data_offsets"][0].as_u64().unwrap() as usize, t["data_offsets"][1].as_u64().unwrap() as usize);
        out.extend(bytes[8 + n + a..8 + n + b].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())));
    }
    out
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()
}

/// A persona adapter trained hard on the persona samples.
fn persona(dir: &Path) -> PathBuf {
    let out = dir.join("persona");
    let ok = Command::new(assert_cmd::cargo::cargo_bin("banter-train"))
        .arg(data("persona.jsonl"))
        .arg("--model")
        .arg(model())
        .args(["--lora", "--max-steps", "20", "--lr", "2e-2", "--warmup", "2", "--block-size", "32", "-q", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(ok.success());
    out
}

const GOOD: &str =
    "where are you?\nat home, come over later please\nwhat are you doing?\njust chilling with some green tea\n";

#[test]
fn a_persona_adapter_is_continued_by_background_learning() {
    let dir = tempfile::tempdir().unwrap();
    let persona = persona(dir.path());
    let log = dir.path().join("chats.jsonl");
    let out = chat()
        .arg("--model")
        .arg(model())
        .arg("--adapter")
        .arg(&persona)
        .arg("--log")
        .arg(&log)
        .args(["--learn-every", "2", "--feedback", "--learn-epochs", "1", "--learn-lr", "1e-4", "--device", "cpu"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(GOOD.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let learned = PathBuf::from(format!("{}.adapter", log.display()));
    let (p, l) = (lora_b(&persona), lora_b(&learned));
    assert_eq!(p.len(), l.len());
    let diff: Vec<f32> = p.iter().zip(&l).map(|(a, b)| a - b).collect();
    assert!(norm(&p) > 0.1, "the persona adapter learned something: |B| {}", norm(&p));
    // Continued: the learned adapter is the persona moved a little, not a fresh one (|B| near 0).
    assert!(norm(&diff) < 0.25 * norm(&p), "|B_learned - B_persona| {} vs |B_persona| {}", norm(&diff), norm(&p));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}.state.json", log.display())).unwrap()).unwrap();
    assert_eq!(state["lines_consumed"], 2);
    // A new session starts from the learned adapter, and continues it again.
    assert!(learned.join("adapter_config.json").exists());
}

#[test]
fn ctrl_c_on_a_reply_leaves_background_learning_running() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chats.jsonl");
    let mut child = chat()
        .arg("--model")
        .arg(model())
        .arg("--log")
        .arg(&log)
        .args(["--learn-every", "1", "--feedback", "--learn-epochs", "30", "--max-new-tokens", "64"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"where are you?\nat home, come over later please\n").unwrap();
    stdin.flush().unwrap();
    wait_for(&rx, &mut seen, "learning from 1 new exchange", 60);
    // Ctrl-C, as a user stopping a reply does.
    unsafe_sigint(child.id());
    stdin.write_all(b"how was work?\ny\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    let all = seen.join("\n");
    assert!(status.success(), "{all}");
    assert!(!all.contains("learning failed"), "{all}");
    assert!(PathBuf::from(format!("{}.adapter", log.display())).join("adapter_config.json").exists(), "{all}");
}

/// SIGINT through the `kill` command (the tests need no libc binding).
fn unsafe_sigint(pid: u32) {
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
}

#[test]
fn kill_9_during_background_learning_loses_nothing_and_the_next_start_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chats.jsonl");
    let start = |input: &str, epochs: &str| {
        let mut c = chat()
            .arg("--model")
            .arg(model())
            .arg("--log")
            .arg(&log)
            .args(["--learn-every", "2", "--feedback", "--learn-epochs", epochs])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        (c, stdin)
    };
    let (mut child, stdin) = start(GOOD, "200");
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, "learning from 2 new exchange", 60);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), 2, "both exchanges are logged");
    let adapter = PathBuf::from(format!("{}.adapter", log.display()));
    assert!(!adapter.exists(), "nothing was published by the killed round");
    // The next start learns what the killed round did not.
    let (mut child, stdin) = start("", "1");
    drop(stdin);
    let rx = lines_of(&mut child);
    let status = child.wait().unwrap();
    let all: Vec<String> = rx.iter().collect();
    assert!(status.success(), "{all:#?}");
    assert!(all.iter().any(|l| l.contains("2 logged exchange(s) were not learned yet")), "{all:#?}");
    assert!(adapter.join("adapter_config.json").exists(), "{all:#?}");
    assert!(!PathBuf::from(format!("{}.next", adapter.display())).exists(), "no half-trained adapter left");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}.state.json", log.display())).unwrap()).unwrap();
    assert_eq!(state["lines_consumed"], 2);
}

/// Starts `serve` with stderr kept readable; returns the child, its base URL and the stderr lines.
fn serve(extra: &[&std::ffi::OsStr]) -> (Child, String, mpsc::Receiver<String>, Vec<String>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut child = chat()
        .arg("serve")
        .arg("--model")
        .arg(model())
        .args(["--port", "0", "--max-tokens-limit", "64", "--reload-every", "0.2"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, "http://", 120);
    let line = seen.iter().find(|l| l.contains("http://")).unwrap();
    let i = line.find("http://").unwrap();
    let base = line[i..].split('/').take(3).collect::<Vec<_>>().join("/");
    (child, base, rx, seen)
}

#[test]
fn the_server_swaps_in_a_published_adapter_and_every_request_gets_a_whole_answer() {
    let dir = tempfile::tempdir().unwrap();
    let first = persona(dir.path());
    let served = dir.path().join("served");
    std::fs::rename(&first, &served).unwrap();
    let (mut child, base, rx, mut seen) = serve(&[std::ffi::OsStr::new("--adapter"), served.as_os_str()]);
    // Requests all the while a new adapter is trained and published.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (b, s) = (base.clone(), stop.clone());
    let asker = std::thread::spawn(move || {
        let c = reqwest::blocking::Client::new();
        let mut answers = 0;
        while !s.load(std::sync::atomic::Ordering::SeqCst) {
            let r = c
                .post(format!("{b}/v1/chat/completions"))
                .json(&serde_json::json!({"messages": [{"role": "user", "content": "where are you?"}], "max_tokens": 8, "temperature": 0}))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: serde_json::Value = r.json().unwrap();
            assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
            answers += 1;
        }
        answers
    });
    let next = persona(&dir.path().join("round2").tap_mkdir());
    // Publish as `watch` does: the old one aside, the new one renamed into place.
    std::fs::rename(&served, dir.path().join("served.prev")).unwrap();
    std::fs::rename(&next, &served).unwrap();
    wait_for(&rx, &mut seen, "serving the newly published adapter", 60);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers = asker.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answers > 0);
}

#[test]
fn serve_learn_every_learns_its_backlog_and_serves_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("served.jsonl");
    let lines: Vec<String> =
        std::fs::read_to_string(data("persona.jsonl")).unwrap().lines().take(4).map(str::to_string).collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let (mut child, _base, rx, mut seen) = serve(&[
        std::ffi::OsStr::new("--log"),
        log.as_os_str(),
        std::ffi::OsStr::new("--learn-every"),
        std::ffi::OsStr::new("4"),
        std::ffi::OsStr::new("--learn-epochs"),
        std::ffi::OsStr::new("1"),
    ]);
    wait_for(&rx, &mut seen, "serving the newly published adapter", 120);
    let _ = child.kill();
    let _ = child.wait();
    assert!(PathBuf::from(format!("{}.adapter", log.display())).join("adapter_config.json").exists());
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
