//! Transcripts: plain text conversations with role prefixes, as MTN Sails and the modular trainer keep them
//! (`User: …` / `Assistant: …`), read as chat samples.
//!
//! A line that starts with a role prefix starts a turn; the lines after it, up to the next prefix, continue
//! it (a turn may span paragraphs). A blank line followed by a user turn starts a new conversation. Text
//! before the first prefix, and conversations without a reply to learn, are counted and left out.

use crate::records::{Role, Sample, Turn};

/// The role prefixes (each matched at the start of a line, case-insensitively).
#[derive(Debug, Clone, PartialEq)]
pub struct Prefixes {
    /// The user's (default `User:`, `Human:`).
    pub user: Vec<String>,
    /// The assistant's (default `Assistant:`, `AI:`, `Bot:`).
    pub assistant: Vec<String>,
    /// The system's (default `System:`).
    pub system: Vec<String>,
}

impl Default for Prefixes {
    fn default() -> Self {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        Prefixes {
            user: v(&["User:", "Human:"]),
            assistant: v(&["Assistant:", "AI:", "Bot:"]),
            system: v(&["System:"]),
        }
    }
}

impl Prefixes {
    /// The role a line starts, and the rest of the line.
    fn role_of<'a>(&self, line: &'a str) -> Option<(Role, &'a str)> {
        for (role, list) in [(Role::User, &self.user), (Role::Assistant, &self.assistant), (Role::System, &self.system)]
        {
            for p in list {
                if line.len() >= p.len() && line.is_char_boundary(p.len()) && line[..p.len()].eq_ignore_ascii_case(p) {
                    return Some((role, line[p.len()..].trim_start()));
                }
            }
        }
        None
    }
}

/// What reading a transcript found.
#[derive(Debug, Default)]
pub struct Transcript {
    /// One chat sample per conversation.
    pub samples: Vec<Sample>,
    /// Non-blank lines before the first prefix.
    pub stray_lines: usize,
    /// Conversations without an assistant turn (nothing to learn).
    pub without_reply: usize,
}

/// Reads `text` as conversations.
pub fn parse(text: &str, p: &Prefixes) -> Transcript {
    let mut out = Transcript::default();
    let mut turns: Vec<Turn> = Vec::new();
    let mut blank = false;
    let flush = |turns: &mut Vec<Turn>, out: &mut Transcript| {
        for t in turns.iter_mut() {
            t.content = t.content.trim().to_string();
        }
        if turns.is_empty() {
            return;
        }
        if turns.iter().any(|t| t.role == Role::Assistant) {
            out.samples.push(Sample::chat(std::mem::take(turns)));
        } else {
            out.without_reply += 1;
            turns.clear();
        }
    };
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            blank = true;
            continue;
        }
        match p.role_of(line.trim_start()) {
            Some((role, rest)) => {
                // A new conversation: after a blank line, a user (or system) turn following a reply.
                let replied = turns.last().is_some_and(|t| t.role == Role::Assistant);
                if blank && replied && role != Role::Assistant {
                    flush(&mut turns, &mut out);
                }
                turns.push(Turn::new(role, rest));
            }
            None => match turns.last_mut() {
                Some(t) => {
                    t.content.push_str(if blank { "\n\n" } else { "\n" });
                    t.content.push_str(line);
                }
                None => out.stray_lines += 1,
            },
        }
        blank = false;
    }
    flush(&mut turns, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(s: &Sample) -> Vec<(Role, String)> {
        match &s.body {
            crate::records::SampleBody::Chat(t) => t.iter().map(|t| (t.role, t.content.clone())).collect(),
            _ => panic!("not a chat"),
        }
    }

    #[test]
    fn conversations_turns_and_multi_line_replies() {
        let text = "User: hi\nAssistant: hello\nthere\n\nUser: and you?\nAssistant: fine\n\n\
                    User: first\nAssistant: para one\n\npara two\nUser: more\nAssistant: ok\n";
        let t = parse(text, &Prefixes::default());
        assert_eq!(t.samples.len(), 3);
        assert_eq!(roles(&t.samples[0]), [(Role::User, "hi".into()), (Role::Assistant, "hello\nthere".into())]);
        assert_eq!(roles(&t.samples[2])[1], (Role::Assistant, "para one\n\npara two".into()));
        assert_eq!(roles(&t.samples[2]).len(), 4);
    }

    #[test]
    fn stray_text_unanswered_conversations_and_custom_prefixes() {
        let text = "a title line\nQ: one\nA: two\n\nQ: no answer\n";
        let p = Prefixes { user: vec!["Q:".into()], assistant: vec!["A:".into()], system: vec![] };
        let t = parse(text, &p);
        assert_eq!((t.samples.len(), t.stray_lines, t.without_reply), (1, 1, 1));
        assert!(parse("user: x\nassistant: y", &Prefixes::default()).samples.len() == 1, "case-insensitive");
        assert!(parse("Usership: x", &Prefixes::default()).samples.is_empty());
    }
}
