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
/save FILE (write the conversation as a sample) · /push USER/NAME (upload the model or adapter in use to the \
Hugging Face Hub) · /help · a line starting with // is sent as a message starting with /";

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
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    if !cli.common.quiet {
        let adapter = engine.adapter.as_ref().map(|a| format!(" with the adapter {}", a.display())).unwrap_or_default();
        let pending = learner
            .as_ref()
            .map(|l| format!("; {} logged exchange(s) not learned yet", l.plan().backlog()))
            .unwrap_or_default();
        banter_core::eline!("{TOOL}: chatting with {}{adapter}{pending} — {HELP}", engine.name.clone());
    }
    let mut s =
        Session { engine, cli, sampling, learner, system: cli.chat.system.clone(), history: Vec::new(), turn_no: 0 };
    loop {
        if let Some(l) = &s.learner
            && let Some(done) = l.poll_swap(&mut s.engine)
        {
            match done {
                Ok(msg) if !l.quiet() => banter_core::eline!("{msg}"),
                Ok(_) => {}
                Err(e) => banter_core::eline!("{e}"),
            }
        }
        if !cli.common.quiet {
            banter_core::etext!("you> ");
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
        match s.command(input) {
            Flow::Quit => break,
            Flow::Handled => continue,
            // `//text` is the message `/text`.
            Flow::Message => {
                s.turn(input.strip_prefix('/').filter(|m| m.starts_with('/')).unwrap_or(input), &mut lines)?
            }
        }
    }
    if let Some(l) = s.learner {
        l.finish();
    }
    Ok(Exit::Success)
}

/// What a line of input was.
enum Flow {
    Quit,
    Handled,
    Message,
}

/// A conversation in progress.
struct Session<'a> {
    engine: Engine,
    cli: &'a Cli,
    sampling: Sampling,
    learner: Option<learn::Learner>,
    system: Option<String>,
    history: Vec<Turn>,
    turn_no: u64,
}

impl Session<'_> {
    /// The persona turn, then `rest`.
    fn with_system(&self, rest: impl IntoIterator<Item = Turn>) -> Vec<Turn> {
        let mut t: Vec<Turn> = self.system.iter().map(|s| Turn::new(Role::System, s.clone())).collect();
        t.extend(rest);
        t
    }

    /// Runs a `/command` (or a bare exit word, as MTN's REPL ends on).
    fn command(&mut self, input: &str) -> Flow {
        if matches!(input.to_ascii_lowercase().as_str(), "exit" | "quit" | "q") {
            return Flow::Quit;
        }
        match input.split_whitespace().next().unwrap_or("") {
            "/exit" | "/quit" => Flow::Quit,
            "/reset" => {
                self.history.clear();
                banter_core::eline!("(conversation forgotten)");
                Flow::Handled
            }
            "/help" => {
                banter_core::eline!("{HELP}");
                Flow::Handled
            }
            "/system" => {
                let text = input["/system".len()..].trim();
                self.system = (!text.is_empty()).then(|| text.to_string());
                banter_core::eline!("(persona {})", if self.system.is_some() { "set" } else { "cleared" });
                Flow::Handled
            }
            "/save" => {
                let file = input["/save".len()..].trim();
                if file.is_empty() {
                    banter_core::eline!("usage: /save FILE");
                } else {
                    match append_log(Path::new(file), &self.with_system(self.history.clone()), None) {
                        Ok(()) => banter_core::eline!("(saved to {file})"),
                        Err(e) => banter_core::eline!("{TOOL}: error: {e:#}"),
                    }
                }
                Flow::Handled
            }
            "/push" => {
                self.push(input["/push".len()..].trim());
                Flow::Handled
            }
            c if c.starts_with("//") => Flow::Message,
            c if c.starts_with('/') => {
                banter_core::eline!("unknown command {c} (nothing was sent to the model) — {HELP}");
                Flow::Handled
            }
            _ => Flow::Message,
        }
    }

    /// `/push USER/NAME`: uploads the adapter in use (the newest learned one, or `--adapter`), else the model,
    /// with a model card, to the Hub (`HF_TOKEN`).
    fn push(&self, repo: &str) {
        if banter_hub::RepoId::parse(repo).is_none_or(|r| r.revision != "main") {
            banter_core::eline!("usage: /push USER/NAME (a Hugging Face repository, created if missing)");
            return;
        }
        let dir = self.engine.adapter.clone().unwrap_or_else(|| std::path::PathBuf::from(&self.engine.name));
        let mut hub = banter_hub::HubSettings::from_env();
        hub.progress = self.cli.common.progress_enabled();
        let up = banter_hub::upload::Upload {
            repo: repo.to_string(),
            revision: None,
            private: false,
            message: "Upload with banter-chat /push".into(),
        };
        let done = banter_hub::upload::folder_files(&dir, true)
            .and_then(|files| banter_hub::upload::upload_folder(&dir, files, &up, &hub));
        match done {
            Ok(d) => banter_core::eline!(
                "(pushed {} to {}: {} files{})",
                dir.display(),
                d.repo,
                d.files,
                d.commit_url.map(|u| format!(", {u}")).unwrap_or_default()
            ),
            Err(e) => banter_core::eline!("{TOOL}: error: /push {repo}: {e}"),
        }
    }

    /// One exchange: the reply (streamed), feedback, the log, and the learner's count.
    fn turn(&mut self, input: &str, lines: &mut impl Iterator<Item = std::io::Result<String>>) -> anyhow::Result<()> {
        let cli = self.cli;
        self.history.push(Turn::new(Role::User, input));
        let turns = self.with_system(self.history.clone());
        if !cli.common.quiet {
            banter_core::etext!("bot> ");
            let _ = std::io::stderr().flush();
        }
        let s = Sampling { seed: self.sampling.seed.wrapping_add(self.turn_no), ..self.sampling.clone() };
        self.turn_no += 1;
        // With --log (and no feedback to wait for), the end of the reply is held back until the exchange
        // is logged and synced: a reply that appeared in full is never missing from the log, whatever
        // happens next (kill -9, power loss).
        let hold_tail = cli.chat.log.is_some() && !cli.chat.feedback;
        let mut out = std::io::stdout();
        let mut held = String::new();
        let replied = self.engine.reply(&turns, &s, &cli.sampling.stop, &mut |t| {
            if hold_tail {
                let shown = std::mem::replace(&mut held, t.to_string());
                let _ = out.write_all(shown.as_bytes());
            } else {
                let _ = out.write_all(t.as_bytes());
            }
            let _ = out.flush();
            !interrupt::interrupted()
        });
        let (reply, dropped) = match replied {
            Ok(r) => r,
            Err(e) => {
                // The template refused this conversation: say why and take the message back; the REPL goes on.
                self.history.pop();
                banter_core::eline!("\n{TOOL}: error: {e}");
                return Ok(());
            }
        };
        if let (true, Some(log)) = (hold_tail, &cli.chat.log) {
            let t = self.with_system([Turn::new(Role::User, input), Turn::new(Role::Assistant, reply.text.clone())]);
            append_log(log, &t, None)?;
            out.write_all(held.as_bytes())?;
        }
        writeln!(out)?;
        if interrupt::interrupted() {
            interrupt::clear();
            banter_core::eline!("(reply stopped)");
        }
        if dropped > 0 {
            // Keep the history as the model saw it.
            self.history.drain(..dropped.min(self.history.len().saturating_sub(1)));
            banter_core::eline!("(the {dropped} oldest turn(s) no longer fit the context window and were dropped)");
        }
        let (answer, extra) =
            if cli.chat.feedback { feedback(lines, &reply.text)? } else { (reply.text.clone(), None) };
        self.history.push(Turn::new(Role::Assistant, answer.clone()));
        if let Some(log) = &cli.chat.log {
            let rejected = extra.as_ref().is_some_and(|e| e["accepted"] == false && e.get("corrected").is_none());
            if !hold_tail {
                // With --feedback the exchange is complete (and logged) once the user has judged it.
                let t = self.with_system([Turn::new(Role::User, input), Turn::new(Role::Assistant, answer)]);
                append_log(log, &t, extra)?;
            }
            if let (Some(l), false) = (&self.learner, rejected) {
                l.exchange();
            }
        }
        Ok(())
    }
}

/// Asks whether the reply is accepted; a typed answer replaces it. Returns the answer and the log's fields.
fn feedback(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    reply: &str,
) -> anyhow::Result<(String, Option<serde_json::Value>)> {
    banter_core::etext!("accept? [Enter/y = yes, n = no, or type the better answer] ");
    let _ = std::io::stderr().flush();
    let fb = lines.next().transpose()?.unwrap_or_default();
    Ok(match fb.trim() {
        "" | "y" | "Y" | "yes" => (reply.to_string(), Some(json!({"accepted": true}))),
        "n" | "N" | "no" => (reply.to_string(), Some(json!({"accepted": false}))),
        correction => {
            (correction.to_string(), Some(json!({"accepted": false, "corrected": true, "model_reply": reply})))
        }
    })
}
