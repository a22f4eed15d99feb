//! kill -9 at the worst moments: nothing shown is missing from the log.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::model;

/// The REPL is killed the instant each reply's line is complete on stdout: every reply seen is logged.
#[test]
fn a_reply_seen_in_full_is_already_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chats.jsonl");
    for round in 0..5 {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("banter-chat"))
            .arg("--model")
            .arg(model())
            .arg("--log")
            .arg(&log)
            .args(["--max-new-tokens", "12", "--seed", &round.to_string(), "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "where are you? {round}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let logged: Vec<serde_json::Value> =
            std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(logged.len(), round + 1, "round {round}: the reply {line:?} was shown but not logged");
        let last = &logged[round]["messages"];
        assert_eq!(last[0]["content"], format!("where are you? {round}"));
        assert_eq!(last[1]["content"].as_str().unwrap(), line.trim(), "the log holds what was shown");
    }
}
