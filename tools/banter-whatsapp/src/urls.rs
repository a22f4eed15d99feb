//! `--strip-urls` (Asimbot strips links from messages): web addresses removed from message text; a text
//! message that was only links is dropped.

use banter_core::records::{Message, MessageKind};

/// True for a word that is a web address (`https://…`, `http://…`, `www.…`), wrapped in brackets or not.
fn is_url(word: &str) -> bool {
    let w = word.trim_start_matches(['(', '<', '[', '"', '\'']).to_ascii_lowercase();
    w.starts_with("http://") || w.starts_with("https://") || (w.starts_with("www.") && w.len() > 4)
}

/// `text` without its web addresses, each line's remaining words joined by one space; empty lines dropped.
pub fn strip(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().filter(|w| !is_url(w)).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}

/// Strips addresses from every text message; returns how many messages held one and how many were only
/// addresses (those are removed).
pub fn strip_messages(messages: &mut Vec<Message>) -> (usize, usize) {
    let (mut changed, mut emptied) = (0, 0);
    messages.retain_mut(|m| {
        if m.kind != MessageKind::Text || !m.text.split_whitespace().any(is_url) {
            return true;
        }
        changed += 1;
        m.text = strip(&m.text);
        if m.text.is_empty() {
            emptied += 1;
            return false;
        }
        true
    });
    (changed, emptied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_go_and_the_words_stay() {
        assert_eq!(strip("look https://example.com/a?b=1 now"), "look now");
        assert_eq!(strip("(www.site.org) and http://x.y\nsecond line"), "and\nsecond line");
        assert_eq!(strip("https://only.link"), "");
        assert_eq!(strip("www. is not an address, nor is httpd"), "www. is not an address, nor is httpd");
    }
}
