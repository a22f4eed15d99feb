//! Docs → training samples: `{"text"}` chunks with overlap, or `{"input","output"}` pairs from prompt
//! templates in the manner of MTN Sails' `process_scraped_content` (topic, content type, category),
//! deterministic for a seed; a persona system turn on request (Oodi's persona header).

use banter_core::records::{Doc, Role, Sample, Turn};

/// MTN Sails' prompt templates (the first is used with `--no-randomize`).
pub const TEMPLATES: &[&str] = &[
    "Tell me about {topic}.",
    "What is {topic}?",
    "Can you explain {topic}?",
    "Give me an overview of {topic}.",
    "What should I know about {topic}?",
    "Describe {topic}.",
    "Summarize what you know about {topic}.",
    "I'd like to learn about {topic}.",
    "What can you tell me about {topic}?",
    "Explain {topic} in simple terms.",
    "Write a {content_type} about {topic}.",
    "What are the key points of {topic}?",
    "Share some information on {topic}, a {category} topic.",
    "Help me understand {topic}.",
    "Tell me more about {title}.",
];

/// Placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["title", "topic", "url", "content_type", "category", "lang"];

/// Lines scraped pages carry that are not content (MTN's clean-up list, extended).
fn is_junk_line(l: &str) -> bool {
    let lower = l.to_lowercase();
    [
        "cookie",
        "newsletter",
        "subscribe",
        "all rights reserved",
        "privacy policy",
        "terms of service",
        "sign up",
        "log in",
        "accept all",
        "skip to content",
    ]
    .iter()
    .any(|k| lower.contains(k))
        && l.chars().count() < 200
}

/// The text without junk lines.
pub fn clean(text: &str) -> String {
    text.lines().filter(|l| !is_junk_line(l)).collect::<Vec<_>>().join("\n").trim().to_string()
}

/// The topic: the title (before " - Site" / " | Site"), else the first short line, else the URL's last path part.
pub fn topic(doc: &Doc) -> String {
    if let Some(t) = doc.title.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let cut = t.split(" | ").next().unwrap_or(t);
        let cut = cut.split(" - ").next().unwrap_or(cut);
        let cut = cut.split(" — ").next().unwrap_or(cut);
        return cut.trim().to_string();
    }
    if let Some(l) = doc.text.lines().map(str::trim).find(|l| !l.is_empty() && l.chars().count() < 100) {
        return l.to_string();
    }
    doc.url
        .as_deref()
        .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
        .map(|s| s.replace(['-', '_'], " "))
        .unwrap_or_else(|| "this page".into())
}

/// MTN's content type, by length.
pub fn content_type(text: &str) -> &'static str {
    match text.split_whitespace().count() {
        0..150 => "short note",
        150..600 => "article",
        _ => "detailed guide",
    }
}

/// MTN's category, by keywords.
pub fn category(text: &str) -> &'static str {
    let lower = text.to_lowercase();
    let table: &[(&str, &[&str])] = &[
        ("technology", &["software", "computer", "programming", "code", "api", "internet", "data", "algorithm"]),
        ("science", &["research", "physics", "chemistry", "biology", "scientist", "experiment", "species"]),
        ("health", &["health", "medical", "disease", "doctor", "patient", "treatment"]),
        ("business", &["market", "company", "business", "finance", "economy", "price"]),
        ("history", &["history", "century", "war", "ancient", "empire", "dynasty"]),
        ("food", &["recipe", "cook", "food", "tea", "coffee", "dish"]),
    ];
    table
        .iter()
        .map(|(name, words)| (name, words.iter().map(|w| lower.matches(w).count()).sum::<usize>()))
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map_or("general", |(name, _)| name)
}

/// Fills a template's placeholders; unknown ones are an error.
pub fn fill(template: &str, doc: &Doc, text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            return Err(format!("unclosed `{{` in template \"{template}\""));
        };
        let key = &after[..j];
        let v = match key {
            "title" => doc.title.clone().unwrap_or_else(|| topic(doc)),
            "topic" => topic(doc),
            "url" => doc.url.clone().unwrap_or_default(),
            "content_type" => content_type(text).to_string(),
            "category" => category(text).to_string(),
            "lang" => doc.lang.clone().unwrap_or_default(),
            other => {
                return Err(format!(
                    "unknown placeholder {{{other}}} in template \"{template}\" (known: {})",
                    PLACEHOLDERS.join(", ")
                ));
            }
        };
        out.push_str(&v);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The generator templates are picked with (stable across versions, so `--seed` keeps its meaning).
pub use banter_core::util::SplitMix64 as SplitMix;

/// Cuts text into chunks of at most `size` characters, ending at a paragraph, sentence or word boundary,
/// each starting `overlap` characters (at a word boundary) before the previous one ended.
pub fn chunks(text: &str, size: usize, overlap: usize) -> Vec<String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let byte = |i: usize| if i >= n { text.len() } else { chars[i].0 };
    let mut out = Vec::new();
    let mut start = 0usize;
    while start < n {
        let hard_end = (start + size).min(n);
        let mut end = hard_end;
        if hard_end < n {
            // Prefer a paragraph break, then a sentence end, then a space, in the last 40% of the chunk.
            let floor = start + size * 3 / 5;
            let find = |pred: &dyn Fn(usize) -> bool| (floor..hard_end).rev().find(|&i| pred(i));
            end = find(&|i| chars[i].1 == '\n' && i > 0 && chars[i - 1].1 == '\n')
                .or_else(|| {
                    find(&|i| matches!(chars[i - 1].1, '.' | '!' | '?' | '؟' | '。') && chars[i].1.is_whitespace())
                })
                .or_else(|| find(&|i| chars[i].1.is_whitespace()))
                .unwrap_or(hard_end);
        }
        let piece = text[byte(start)..byte(end)].trim();
        if !piece.is_empty() {
            out.push(piece.to_string());
        }
        if end >= n {
            break;
        }
        let mut next = end.saturating_sub(overlap).max(start + 1);
        // Start the overlap at a word boundary.
        while next < end && !chars[next - 1].1.is_whitespace() {
            next += 1;
        }
        start = next;
    }
    out
}

/// A sample with an optional system turn.
pub fn with_system(system: Option<&str>, user: Option<String>, assistant: String) -> Sample {
    match (system, user) {
        (None, None) => Sample::text(assistant),
        (None, Some(u)) => Sample::pair(u, assistant),
        (Some(s), u) => {
            let mut turns = vec![Turn::new(Role::System, s)];
            if let Some(u) = u {
                turns.push(Turn::new(Role::User, u));
            }
            turns.push(Turn::new(Role::Assistant, assistant));
            Sample::chat(turns)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: Option<&str>, text: &str) -> Doc {
        Doc {
            title: title.map(str::to_string),
            text: text.into(),
            url: Some("https://x.org/green-tea".into()),
            ..Default::default()
        }
    }

    #[test]
    fn topics_and_templates() {
        assert_eq!(topic(&doc(Some("Green tea - Wikipedia"), "x")), "Green tea");
        assert_eq!(topic(&doc(None, "Short heading\nlong text")), "Short heading");
        let d = doc(Some("Green tea | Tea Blog"), "Green tea is a tea. It is made from leaves.");
        assert_eq!(fill("Tell me about {topic}.", &d, &d.text).unwrap(), "Tell me about Green tea.");
        assert_eq!(fill("A {content_type} on {category}", &d, &d.text).unwrap(), "A short note on food");
        assert!(fill("{nope}", &d, "").unwrap_err().contains("unknown placeholder {nope}"));
    }

    #[test]
    fn chunks_overlap_at_boundaries() {
        let text = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen.";
        let c = chunks(text, 40, 10);
        assert!(c.len() >= 2);
        assert!(c.iter().all(|x| x.chars().count() <= 40), "{c:?}");
        assert_eq!(c[0], "One two three four five.");
        // Each chunk repeats about `overlap` characters of the previous one, from a word start.
        assert_eq!(c[1], "four five. Six seven eight nine ten.");
        assert_eq!(c.last().unwrap(), "thirteen fourteen.");
        assert_eq!(chunks("short", 100, 10), vec!["short"]);
        let fa = "سلام دنیا. ".repeat(30);
        assert!(chunks(&fa, 50, 10).iter().all(|x| x.chars().count() <= 50));
    }

    #[test]
    fn junk_lines_and_determinism() {
        assert_eq!(clean("Real text\nWe use cookies to improve\nMore text"), "Real text\nMore text");
        let a: Vec<usize> = {
            let mut r = SplitMix::new(42);
            (0..5).map(|_| r.below(15)).collect()
        };
        let b: Vec<usize> = {
            let mut r = SplitMix::new(42);
            (0..5).map(|_| r.below(15)).collect()
        };
        assert_eq!(a, b);
    }
}
