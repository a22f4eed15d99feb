//! Interactive chat: history kept inside the context window, commands, Ctrl-C stops the reply (not the
//! program), durable logging, feedback, and continual learning in the background.

use std::io::{BufRead, Write};
use std::path::Path;

use banter_core::records::{Role, Turn};
use banter_core::{Exit, interrupt};
use banter_model::generate::Sampling;
use serde_json::json;

use crate::engine::Engine;
use crate::{Cli, TOOL, learn};

const HELP: &str = "commands: /exit or /quit · /reset (forget the conversation) · /system TEXT (set the persona) · \
/save FILE (write the conversation as a sample) · /help";

/// Appends one exchange to the log as a chat sample with a timestamp, flushed and synced: a crash or
/// kill -9 loses nothing already shown.
pub fn append_log(path: &Path, turns: &[Turn], extra: Option<serde_json::Value>) -> anyhow::Result<()> {
    let msgs: Vec<serde_json::Value> =
        turns.iter().map(|t| json!({"role": t.role.as_str(), "content": t.content})).collect();
    let mut rec = json!({"messages": msgs, "ts": banter_core::util::now_rfc3339()});
    if let (Some(serde_json::Value::Object(e)), serde_json::Value::Object(r)) = (extra, &mut rec) {
        r.extend(e);
    }
    append_record(path, rec)
}

/// Appends one JSON record as a line, synced before returning.
pub fn append_record(path: &Path, rec: serde_json::Value) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| banter_core::Error::io(path.display(), e))?;
    let line = format!("{rec}\n");
    f.write_all(line.as_bytes()).map_err(|e| banter_core::Error::io(path.display(), e))?;
    f.sync_data().map_err(|e| banter_core::Error::io(path.display(), e))?;
    Ok(())
}

/// The interactive loop (also works with piped input).
pub fn run(engine: Engine, cli: &Cli, sampling: Sampling, learner: Option<learn::Learner>) -> anyhow::Result<Exit> {
    interrupt::set_cooperative(true);
    let mut engine = engine;
    let mut system = cli.chat.system.clone();
    let mut history: Vec<Turn> = Vec::new();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    if !cli.common.quiet {
        eprintln!("{TOOL}: chatting with {} — {HELP}", engine.name.clone());
    }
    let mut turn_no = 0u64;
    loop {
        if let Some(l) = &learner {
            if let Some(msg) = l.poll_swap(&mut engine) {
                eprintln!("{msg}");
            }
        }
        if !cli.common.quiet {
            eprint!("you> ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        if interrupt::interrupted() {
            interrupt::clear();
        }
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        // MTN's REPL ends on a bare exit word too.
        if matches!(input.to_ascii_lowercase().as_str(), "exit" | "quit" | "q") {
            break;
        }
        match input.split_whitespace().next().unwrap_or("") {
            "/exit" | "/quit" => break,
            "/reset" => {
                history.clear();
                eprintln!("(conversation forgotten)");
                continue;
            }
            "/help" => {
                eprintln!("{HELP}");
                continue;
            }
            "/system" => {
                let text = input["/system".len()..].trim();
                system = (!text.is_empty()).then(|| text.to_string());
                eprintln!("(persona {})", if system.is_some() { "set" } else { "cleared" });
                continue;
            }
            "/save" => {
                let file = input["/save".len()..].trim();
                if file.is_empty() {
                    eprintln!("usage: /save FILE");
                } else {
                    let mut t: Vec<Turn> = system.iter().map(|s| Turn::new(Role::System, s.clone())).collect();
                    t.extend(history.iter().cloned());
                    match append_log(Path::new(file), &t, None) {
                        Ok(()) => eprintln!("(saved to {file})"),
                        Err(e) => eprintln!("{TOOL}: error: {e:#}"),
                    }
                }
                continue;
            }
            _ => {}
        }
        history.push(Turn::new(Role::User, input));
        let mut turns: Vec<Turn> = system.iter().map(|s| Turn::new(Role::System, s.clone())).collect();
        turns.extend(history.iter().cloned());
        if !cli.common.quiet {
            eprint!("bot> ");
            let _ = std::io::stderr().flush();
        }
        let s = Sampling { seed: sampling.seed.wrapping_add(turn_no), ..sampling.clone() };
        turn_no += 1;
        // With --log (and no feedback to wait for), the end of the reply is held back until the exchange
        // is logged and synced: a reply that appeared in full is never missing from the log, whatever
        // happens next (kill -9, power loss).
        let hold_tail = cli.chat.log.is_some() && !cli.chat.feedback;
        let mut held = String::new();
        let (reply, dropped) = {
            engine.reply(&turns, &s, &cli.sampling.stop, &mut |t| {
                if hold_tail {
                    let shown = std::mem::replace(&mut held, t.to_string());
                    let _ = out.write_all(shown.as_bytes());
                } else {
                    let _ = out.write_all(t.as_bytes());
                }
                let _ = out.flush();
                !interrupt::interrupted()
            })
        };
        if hold_tail {
            if let Some(log) = &cli.chat.log {
                let mut t: Vec<Turn> = system.iter().map(|s| Turn::new(Role::System, s.clone())).collect();
                t.push(Turn::new(Role::User, input));
                t.push(Turn::new(Role::Assistant, reply.text.clone()));
                append_log(log, &t, None)?;
            }
            out.write_all(held.as_bytes())?;
        }
        writeln!(out)?;
        if interrupt::interrupted() {
            interrupt::clear();
            eprintln!("(reply stopped)");
        }
        if dropped > 0 {
            // Keep the history as the model saw it.
            history.drain(..dropped.min(history.len().saturating_sub(1)));
            eprintln!("(the {dropped} oldest turn(s) no longer fit the context window and were dropped)");
        }
        let mut answer = reply.text.clone();
        let mut extra = None;
        if cli.chat.feedback {
            eprint!("accept? [Enter/y = yes, n = no, or type the better answer] ");
            let _ = std::io::stderr().flush();
            let fb = lines.next().transpose()?.unwrap_or_default();
            let fb = fb.trim();
            extra = Some(match fb {
                "" | "y" | "Y" | "yes" => json!({"accepted": true}),
                "n" | "N" | "no" => json!({"accepted": false}),
                correction => {
                    answer = correction.to_string();
                    json!({"accepted": false, "corrected": true, "model_reply": reply.text})
                }
            });
        }
        history.push(Turn::new(Role::Assistant, answer.clone()));
        if let Some(log) = &cli.chat.log {
            let rejected = extra.as_ref().is_some_and(|e| e["accepted"] == false && e.get("corrected").is_none());
            let mut t: Vec<Turn> = system.iter().map(|s| Turn::new(Role::System, s.clone())).collect();
            t.push(Turn::new(Role::User, input));
            t.push(Turn::new(Role::Assistant, answer.clone()));
            if !hold_tail {
                // With --feedback the exchange is complete (and logged) once the user has judged it.
                append_log(log, &t, extra.clone())?;
            }
            if let (Some(l), false) = (&learner, rejected) {
                l.exchange();
            }
        }
    }
    if let Some(l) = learner {
        l.finish();
    }
    Ok(Exit::Success)
}
