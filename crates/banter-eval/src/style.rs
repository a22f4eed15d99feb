//! Stylometry of one reply: length, emoji, punctuation, casing, script, language, questions, laughter — the
//! features persona-imitation studies compare between a person's real replies and a model's.

use serde::Serialize;

/// The features of one reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Features {
    /// Words (as banter-validate counts them: each character of a script written without spaces is one).
    pub words: f64,
    /// Characters (Unicode scalar values).
    pub chars: f64,
    /// Emoji per character.
    pub emoji_rate: f64,
    /// Punctuation marks per character.
    pub punct_rate: f64,
    /// Share of letters that are upper case (of the letters that have case).
    pub upper_rate: f64,
    /// The script most of the letters are in.
    pub script: &'static str,
    /// The language, when the reply is long enough to tell (else `"?"`).
    pub language: &'static str,
    /// Asks a question (`?`, `؟`, `？`).
    pub question: bool,
    /// Laughs (`haha`, `lol`, `😂`, `خخخ`, `ههه`, `jaja`, `kkk`, …).
    pub laughter: bool,
}

/// The script of a letter, by Unicode block.
pub fn script_of(c: char) -> Option<&'static str> {
    if !c.is_alphabetic() {
        return None;
    }
    Some(match c as u32 {
        0x0000..=0x024F | 0x1E00..=0x1EFF => "latin",
        0x0370..=0x03FF => "greek",
        0x0400..=0x052F => "cyrillic",
        0x0590..=0x05FF => "hebrew",
        0x0600..=0x06FF | 0x0750..=0x077F | 0x08A0..=0x08FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => "arabic",
        0x0900..=0x0DFF => "indic",
        0x0E00..=0x0E7F => "thai",
        0x3040..=0x30FF => "kana",
        0x4E00..=0x9FFF | 0x3400..=0x4DBF => "han",
        0xAC00..=0xD7AF | 0x1100..=0x11FF => "hangul",
        _ => "other",
    })
}

const LAUGHS: &[&str] = &[
    "haha", "hehe", "hihi", "lol", "lmao", "rofl", "jaja", "jeje", "kkk", "xd", "خخخ", "ههه", "😂", "🤣", "😆", "😹",
    "ㅋㅋ", "www", "555",
];

/// The features of `text`.
pub fn features(text: &str) -> Features {
    let chars = text.chars().count();
    let n = chars.max(1) as f64;
    let (mut emoji, mut punct, mut upper, mut cased) = (0usize, 0usize, 0usize, 0usize);
    let mut scripts: Vec<(&'static str, usize)> = Vec::new();
    for c in text.chars() {
        if banter_quality::text::is_emoji(c) {
            emoji += 1;
        } else if c.is_ascii_punctuation() || matches!(c, '،' | '؟' | '؛' | '…' | '«' | '»' | '！' | '？' | '。' | '、')
        {
            punct += 1;
        }
        if c.is_uppercase() {
            upper += 1;
            cased += 1;
        } else if c.is_lowercase() {
            cased += 1;
        }
        if let Some(s) = script_of(c) {
            match scripts.iter_mut().find(|(k, _)| *k == s) {
                Some(e) => e.1 += 1,
                None => scripts.push((s, 1)),
            }
        }
    }
    let script = scripts.iter().max_by_key(|(_, n)| *n).map_or("none", |(s, _)| *s);
    let lower = text.to_lowercase();
    let language = match whatlang::detect(text) {
        Some(info) if text.split_whitespace().count() >= 4 && info.is_reliable() => info.lang().code(),
        _ => "?",
    };
    Features {
        words: banter_quality::text::word_count(text) as f64,
        chars: chars as f64,
        emoji_rate: emoji as f64 / n,
        punct_rate: punct as f64 / n,
        upper_rate: if cased == 0 { 0.0 } else { upper as f64 / cased as f64 },
        script,
        language,
        question: text.contains(['?', '؟', '？']),
        laughter: LAUGHS.iter().any(|l| lower.contains(l)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_replies_in_several_scripts() {
        let f = features("Haha OK, see you at 5? 😂");
        assert_eq!(f.words, 7.0);
        assert!(f.question && f.laughter);
        assert!(f.emoji_rate > 0.0 && f.punct_rate > 0.0);
        assert_eq!(f.script, "latin");
        assert!((f.upper_rate - 3.0 / 14.0).abs() < 1e-9, "{}", f.upper_rate);
        let p = features("سلام، کجایی؟ خخخ");
        assert_eq!(p.script, "arabic");
        assert!(p.question && p.laughter);
        let e = features("");
        assert_eq!((e.words, e.chars, e.script, e.language), (0.0, 0.0, "none", "?"));
        assert_eq!(features("The weather is lovely today and we are going to the beach").language, "eng");
    }
}
