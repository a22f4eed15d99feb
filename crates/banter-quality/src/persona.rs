//! Persona training samples from messages (built here for `banter-whatsapp samples`, and for `banter-eval persona`'s held-out contexts): one sample per reply of the persona, with the context that led
//! to it (a window of the last turns, or the turns most similar to the message answered, by BM25), turns
//! of one speaker merged, conversations split at long silences, speakers anonymised.

use std::collections::HashMap;

use banter_core::records::{Message, MessageKind, Role, Sample, Turn};
use serde_json::json;

/// How context is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ContextMode {
    /// The last `--window` turns.
    Window,
    /// From the last `--top-k` turns, the `--select-k` most similar to the message answered (BM25), in time order.
    Retrieve,
}

/// Settings of sample building.
#[derive(Debug, Clone)]
pub struct Options {
    /// The persona, exactly as the export spells the author.
    pub persona: String,
    /// Context selection.
    pub mode: ContextMode,
    /// Window size.
    pub window: usize,
    /// Retrieval candidates.
    pub top_k: usize,
    /// Retrieval picks.
    pub select_k: usize,
    /// Merge one speaker's consecutive messages within this many seconds.
    pub merge_within: i64,
    /// A new conversation after this many seconds of silence.
    pub gap: i64,
    /// Keep media placeholders as text.
    pub keep_media: bool,
    /// Keep "this message was deleted".
    pub keep_deleted: bool,
    /// Keep system lines (as unnamed user turns).
    pub keep_system: bool,
}

impl Options {
    /// `banter-whatsapp samples`'s defaults for `persona`: a window of 6 turns (retrieval: the 6 most similar
    /// of the last 12), one speaker's messages merged within 5 minutes, a new conversation after 6 hours of
    /// silence, media, deleted and system lines skipped.
    pub fn defaults(persona: impl Into<String>) -> Options {
        Options {
            persona: persona.into(),
            mode: ContextMode::Window,
            window: 6,
            top_k: 12,
            select_k: 6,
            merge_within: 300,
            gap: 6 * 3600,
            keep_media: false,
            keep_deleted: false,
            keep_system: false,
        }
    }
}

/// Counts for the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SampleReport {
    /// Messages read.
    pub messages: u64,
    /// Messages skipped by kind.
    pub skipped: HashMap<&'static str, u64>,
    /// Conversations (split at `--gap`).
    pub conversations: u64,
    /// Turns after merging.
    pub turns: u64,
    /// The persona's turns.
    pub persona_turns: u64,
    /// Persona turns with no context before them in their conversation (no sample).
    pub no_context: u64,
    /// Samples built.
    pub samples: u64,
}

#[derive(Debug, Clone)]
struct T {
    author: String,
    text: String,
    ts: String,
    secs: i64,
    conv: u64,
}

/// Seconds since 2000-01-01 of `YYYY-MM-DDTHH:MM:SS` (None when unparseable).
pub fn seconds(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let days = banter_core::util::days_from_civil(y, m, d) - banter_core::util::days_from_civil(2000, 1, 1);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Builds the samples.
pub fn build(messages: &[Message], o: &Options) -> (Vec<Sample>, SampleReport) {
    let mut rep = SampleReport { messages: messages.len() as u64, ..Default::default() };
    // Turns: filter kinds, merge one speaker's runs, number conversations.
    let mut turns: Vec<T> = Vec::new();
    let mut conv = 0u64;
    let mut last_secs: Option<i64> = None;
    for m in messages {
        let keep = match m.kind {
            MessageKind::Text => true,
            MessageKind::Media => o.keep_media,
            MessageKind::Deleted => o.keep_deleted,
            MessageKind::System => o.keep_system,
        };
        if !keep || m.text.trim().is_empty() {
            *rep.skipped.entry(if keep { "empty" } else { m.kind.as_str() }).or_default() += 1;
            continue;
        }
        let secs = seconds(&m.ts).unwrap_or(last_secs.unwrap_or(0));
        if last_secs.is_some_and(|l| secs - l > o.gap) {
            conv += 1;
        }
        let author = m.author.clone().unwrap_or_default();
        match turns.last_mut() {
            Some(t)
                if t.conv == conv && t.author == author && secs - t.secs <= o.merge_within && m.author.is_some() =>
            {
                t.text.push('\n');
                t.text.push_str(&m.text);
                t.secs = secs;
                t.ts = m.ts.clone();
            }
            _ => turns.push(T { author, text: m.text.clone(), ts: m.ts.clone(), secs, conv }),
        }
        last_secs = Some(secs);
    }
    rep.turns = turns.len() as u64;
    rep.conversations = if turns.is_empty() { 0 } else { conv + 1 };
    let bm25 = (o.mode == ContextMode::Retrieve).then(|| Bm25::new(turns.iter().map(|t| t.text.as_str())));

    let mut out = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        if t.author != o.persona {
            continue;
        }
        rep.persona_turns += 1;
        let start = turns[..i].iter().rposition(|p| p.conv != t.conv).map_or(0, |p| p + 1);
        let history: Vec<usize> = (start..i).collect();
        if history.is_empty() || history.iter().all(|&h| turns[h].author == o.persona) {
            rep.no_context += 1;
            continue;
        }
        let picked: Vec<usize> = match (&bm25, o.mode) {
            (Some(bm), ContextMode::Retrieve) => {
                let cands: Vec<usize> = history.iter().rev().take(o.top_k).rev().copied().collect();
                let query =
                    *cands.iter().rev().find(|&&c| turns[c].author != o.persona).unwrap_or(cands.last().unwrap_or(&i));
                let mut scored: Vec<(f64, usize)> = cands.iter().map(|&c| (bm.score(query, c), c)).collect();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
                let mut keep: Vec<usize> = vec![query];
                keep.extend(scored.iter().map(|s| s.1).filter(|&c| c != query).take(o.select_k.saturating_sub(1)));
                keep.sort_unstable();
                keep
            }
            _ => history.iter().rev().take(o.window).rev().copied().collect(),
        };
        // Anonymise: "A", "B", … in order of appearance within the sample; drop exact repeats.
        let mut names: Vec<&str> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut msgs: Vec<Turn> = Vec::new();
        for &c in &picked {
            let ct = &turns[c];
            if seen.contains(&ct.text.as_str()) {
                continue;
            }
            seen.push(&ct.text);
            if ct.author == o.persona {
                msgs.push(Turn::new(Role::Assistant, ct.text.clone()));
            } else {
                let idx = names.iter().position(|n| *n == ct.author).unwrap_or_else(|| {
                    names.push(&ct.author);
                    names.len() - 1
                });
                msgs.push(Turn::new(Role::User, ct.text.clone()).named(letter(idx)));
            }
        }
        if !msgs.iter().any(|m| m.role == Role::User) {
            rep.no_context += 1;
            continue;
        }
        msgs.push(Turn::new(Role::Assistant, t.text.clone()));
        let mut s = Sample::chat(msgs);
        s.fields.insert("source", json!("whatsapp"));
        s.fields
            .insert("meta", json!({"chat": messages.first().map(|m| m.chat.clone()).unwrap_or_default(), "ts": t.ts}));
        out.push(s);
    }
    rep.samples = out.len() as u64;
    (out, rep)
}

fn letter(i: usize) -> String {
    let mut s = String::new();
    let mut n = i;
    loop {
        s.insert(0, (b'A' + (n % 26) as u8) as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s
}

/// BM25 over the chat's turns (k1 1.5, b 0.75), tokens as banter-validate counts words.
struct Bm25 {
    docs: Vec<HashMap<u64, u32>>,
    lens: Vec<f64>,
    idf: HashMap<u64, f64>,
    avg: f64,
}

impl Bm25 {
    fn new<'a>(texts: impl Iterator<Item = &'a str>) -> Self {
        let mut docs = Vec::new();
        let mut lens = Vec::new();
        let mut df: HashMap<u64, u32> = HashMap::new();
        for t in texts {
            let mut tf: HashMap<u64, u32> = HashMap::new();
            // Words without their punctuation ("match?" is "match").
            let clean: String = t.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
            let toks = crate::text::token_hashes(&clean);
            for h in &toks {
                *tf.entry(*h).or_default() += 1;
            }
            for h in tf.keys() {
                *df.entry(*h).or_default() += 1;
            }
            lens.push(toks.len() as f64);
            docs.push(tf);
        }
        let n = docs.len() as f64;
        let idf = df.into_iter().map(|(h, d)| (h, ((n - d as f64 + 0.5) / (d as f64 + 0.5) + 1.0).ln())).collect();
        let avg = if lens.is_empty() { 1.0 } else { lens.iter().sum::<f64>() / n }.max(1.0);
        Bm25 { docs, lens, idf, avg }
    }

    fn score(&self, query: usize, doc: usize) -> f64 {
        let (k1, b) = (1.5, 0.75);
        let d = &self.docs[doc];
        let len = self.lens[doc];
        self.docs[query]
            .keys()
            .map(|h| {
                let f = f64::from(*d.get(h).unwrap_or(&0));
                let idf = self.idf.get(h).copied().unwrap_or(0.0);
                idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * len / self.avg))
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ts: &str, author: &str, text: &str) -> Message {
        Message {
            chat: "c".into(),
            ts: ts.into(),
            author: Some(author.into()),
            text: text.into(),
            ..Default::default()
        }
    }

    fn opts() -> Options {
        Options::defaults("Sara")
    }

    #[test]
    fn seconds_since_2000() {
        assert_eq!(seconds("2000-01-01T00:00:00"), Some(0));
        assert_eq!(seconds("2000-01-02T00:00:01"), Some(86_401));
        assert_eq!(seconds("2023-03-01T00:00:00").unwrap() - seconds("2023-02-28T00:00:00").unwrap(), 86_400);
    }

    #[test]
    fn one_sample_per_persona_reply_with_merged_anonymous_context() {
        let m = vec![
            msg("2023-02-09T21:00:00", "Ali", "hi"),
            msg("2023-02-09T21:01:00", "Ali", "you there?"),
            msg("2023-02-09T21:02:00", "Reza", "she's busy"),
            msg("2023-02-09T21:03:00", "Sara", "I'm here!"),
            msg("2023-02-09T21:03:30", "Sara", "what's up"),
            // A day later: a new conversation; context does not cross the gap.
            msg("2023-02-10T21:00:00", "Sara", "good morning"),
            msg("2023-02-10T21:01:00", "Ali", "morning"),
            msg("2023-02-10T21:02:00", "Sara", "coffee?"),
        ];
        let (s, r) = build(&m, &opts());
        assert_eq!(r.conversations, 2);
        assert_eq!(r.persona_turns, 3);
        assert_eq!(r.no_context, 1);
        assert_eq!(s.len(), 2);
        let t = s[0].turns();
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].name.as_deref(), t[0].content.as_str()), (Some("A"), "hi\nyou there?"));
        assert_eq!(t[1].name.as_deref(), Some("B"));
        assert_eq!(t[2].content, "I'm here!\nwhat's up");
        let t = s[1].turns();
        assert_eq!(t.iter().map(|t| t.content.as_str()).collect::<Vec<_>>(), ["good morning", "morning", "coffee?"]);
        assert_eq!(t[0].role, Role::Assistant);
    }

    #[test]
    fn retrieval_keeps_the_most_similar_turns_in_time_order() {
        let mut m = Vec::new();
        let topics =
            ["football match tonight", "tea or coffee", "the new phone", "homework due", "rain again", "pizza place"];
        for (i, t) in topics.iter().enumerate() {
            m.push(msg(&format!("2023-02-09T21:{:02}:00", i * 2), if i % 2 == 0 { "Ali" } else { "Reza" }, t));
        }
        m.push(msg("2023-02-09T21:20:00", "Ali", "did you see the football match?"));
        m.push(msg("2023-02-09T21:21:00", "Sara", "yes what a match"));
        let o = Options { mode: ContextMode::Retrieve, select_k: 2, ..opts() };
        let (s, _) = build(&m, &o);
        let t = s[0].turns();
        let texts: Vec<&str> = t.iter().map(|t| t.content.as_str()).collect();
        assert_eq!(texts, ["football match tonight", "did you see the football match?", "yes what a match"]);
    }

    #[test]
    fn letters_go_past_z() {
        assert_eq!(letter(0), "A");
        assert_eq!(letter(25), "Z");
        assert_eq!(letter(26), "AA");
    }
}
