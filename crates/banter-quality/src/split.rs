//! The held-out part of a chat (for `banter-eval` and `banter-train --holdout-split`): the last messages by time, never trained on. The split is a small JSON file
//! (`banter-eval split`); `banter-train --holdout-split FILE` leaves out every sample whose reply falls in
//! it and records the file with the adapter (`eval_split.json`), where `banter-eval persona` finds it.

use std::path::Path;

use banter_core::records::{Message, MessageKind};
use serde::{Deserialize, Serialize};

/// The file name a split is recorded under in a trained model's or adapter's folder.
pub const RECORDED: &str = "eval_split.json";

/// Where a chat is cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Always `"banter-eval-split"`.
    pub format: String,
    /// Messages at or after this local time (`YYYY-MM-DDTHH:MM:SS`) are held out.
    pub cutoff: String,
    /// The chat the split is of (samples of other chats are not affected); empty for every chat.
    pub chat: String,
    /// The share of text messages asked to be held out.
    pub holdout: f64,
    /// Text messages in the chat.
    pub messages: usize,
    /// Of them, held out.
    pub held_out: usize,
}

/// Why a split could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Bad settings or data.
    #[error("{0}")]
    Invalid(String),
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a split.
    #[error("{path}: not a banter-eval split: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
}

impl Split {
    /// Holds out the last `holdout` (0 < h < 1) of `messages`' text messages by time.
    pub fn of(messages: &[Message], holdout: f64) -> Result<Split, SplitError> {
        if !(holdout > 0.0 && holdout < 1.0) {
            return Err(SplitError::Invalid(format!("--holdout must be between 0 and 1 (got {holdout})")));
        }
        let mut ts: Vec<&str> = messages
            .iter()
            .filter(|m| m.kind == MessageKind::Text && m.author.is_some())
            .map(|m| m.ts.as_str())
            .collect();
        if ts.len() < 2 {
            return Err(SplitError::Invalid(format!("{} text message(s): too few to hold any out", ts.len())));
        }
        ts.sort_unstable();
        let at = ((ts.len() as f64) * (1.0 - holdout)).round().clamp(1.0, (ts.len() - 1) as f64) as usize;
        let cutoff = ts[at].to_string();
        let held_out = ts.iter().filter(|t| **t >= cutoff.as_str()).count();
        let chats: std::collections::BTreeSet<&str> = messages.iter().map(|m| m.chat.as_str()).collect();
        let chat =
            if chats.len() == 1 { chats.into_iter().next().unwrap_or_default().to_string() } else { String::new() };
        Ok(Split { format: "banter-eval-split".into(), cutoff, chat, holdout, messages: ts.len(), held_out })
    }

    /// True when a message or a sample's reply at `ts` in `chat` is held out.
    pub fn holds_out(&self, chat: &str, ts: &str) -> bool {
        (self.chat.is_empty() || chat.is_empty() || self.chat == chat) && ts >= self.cutoff.as_str()
    }

    /// Reads a split file.
    pub fn read(path: &Path) -> Result<Split, SplitError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SplitError::Io { path: p.clone(), source })?;
        let s: Split = serde_json::from_str(&text).map_err(|source| SplitError::Parse { path: p.clone(), source })?;
        if s.format != "banter-eval-split" {
            return Err(SplitError::Invalid(format!("{p}: format is \"{}\", not banter-eval-split", s.format)));
        }
        Ok(s)
    }

    /// The split recorded in a trained model's or adapter's folder, if any.
    pub fn recorded(dir: &Path) -> Result<Option<Split>, SplitError> {
        let p = dir.join(RECORDED);
        if p.exists() { Split::read(&p).map(Some) } else { Ok(None) }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ts: &str, kind: MessageKind) -> Message {
        Message {
            chat: "Fam".into(),
            ts: ts.into(),
            author: Some("A".into()),
            text: "x".into(),
            kind,
            ..Default::default()
        }
    }

    #[test]
    fn the_last_messages_by_time_are_held_out() {
        let mut m: Vec<Message> =
            (0..10).map(|i| msg(&format!("2024-01-{:02}T10:00:00", 10 - i), MessageKind::Text)).collect();
        m.push(msg("2024-02-01T00:00:00", MessageKind::System));
        let s = Split::of(&m, 0.2).unwrap();
        assert_eq!((s.cutoff.as_str(), s.messages, s.held_out, s.chat.as_str()), ("2024-01-09T10:00:00", 10, 2, "Fam"));
        assert!(s.holds_out("Fam", "2024-01-09T10:00:00") && !s.holds_out("Fam", "2024-01-08T23:59:59"));
        assert!(!s.holds_out("Work", "2025-01-01T00:00:00"), "other chats are not affected");
        assert!(Split::of(&m, 1.0).is_err() && Split::of(&m[..1], 0.5).is_err());
    }
}
