//! MTN Sails' response checks, fixed for every script: repetitive, too-short, gibberish, incomplete, echo;
//! and the encoding check.

use rustc_hash::FxHashSet as HashSet;

use super::{CheckId, Finding, Settings};
use crate::text::{self, Script};

/// Runs the response checks (in MTN's order) on a non-empty response.
pub fn check_response(prompt: Option<&str>, resp: &str, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let counts = text::counts(resp);
    let tokens = text::token_hashes(resp);
    if s.on(CheckId::Repetitive) {
        let score = repetition_score_of(resp, &tokens);
        if score > s.max_repetition {
            out.push(Finding::new(
                CheckId::Repetitive,
                format!("repetition score {score:.2} (maximum {:.2})", s.max_repetition),
            ));
        }
    }
    if s.on(CheckId::TooShort) {
        // Same count as text::word_count: unspaced-script characters are one token each.
        let words = tokens.len();
        if words < s.min_words {
            let unit = if counts.script() == Script::Unspaced { "characters" } else { "words" };
            out.push(Finding::new(
                CheckId::TooShort,
                format!("{words} {unit} (minimum {})", s.min_words).replace("1 words", "1 word"),
            ));
        }
    }
    if s.on(CheckId::Gibberish)
        && let Some(d) = gibberish(resp, &counts, s.min_letter_ratio, s.max_char_run)
    {
        out.push(Finding::new(CheckId::Gibberish, d));
    }
    if s.on(CheckId::Incomplete)
        && let Some(d) = incomplete(resp, counts.script(), &s.incomplete_langs)
    {
        out.push(Finding::new(CheckId::Incomplete, d));
    }
    if s.on(CheckId::Echo)
        && let Some(p) = prompt
        && let Some(d) = echo_of(p, resp, &tokens, s.max_echo_overlap)
    {
        out.push(Finding::new(CheckId::Echo, d));
    }
    out
}

/// MTN's repetition score (0 for texts under 10 characters or 3 words): the share of word bigrams and
/// trigrams that occur again later in the text; or, for texts of 3+ lines, the share of repeated lines,
/// whichever is higher.
pub fn repetition_score(t: &str) -> f64 {
    repetition_score_of(t, &text::token_hashes(t))
}

fn repetition_score_of(t: &str, h: &[u64]) -> f64 {
    if h.len() < 3 || t.trim().chars().nth(9).is_none() {
        return 0.0;
    }
    let mut hits = 0usize;
    let mut sequences = 0usize;
    let mut grams: Vec<u64> = Vec::with_capacity(h.len());
    for n in [2usize, 3] {
        if h.len() < n {
            continue;
        }
        grams.clear();
        grams.extend(h.windows(n).map(|w| {
            w.iter().fold(0xcbf2_9ce4_8422_2325u64, |a, &x| (a ^ x).wrapping_mul(0x100_0000_01b3).rotate_left(17))
        }));
        sequences += grams.len();
        grams.sort_unstable();
        let distinct = 1 + grams.windows(2).filter(|w| w[0] != w[1]).count();
        // Every occurrence but the last of an n-gram recurs later in the text.
        hits += grams.len() - distinct;
    }
    let ngram = if sequences == 0 { 0.0 } else { (hits as f64 / sequences as f64).min(1.0) };
    let line_share = if t.as_bytes().iter().filter(|&&b| b == b'\n').count() >= 2 {
        let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.len() >= 3 {
            let distinct: HashSet<&str> = lines.iter().copied().collect();
            (lines.len() - distinct.len()) as f64 / lines.len() as f64
        } else {
            0.0
        }
    } else {
        0.0
    };
    ngram.max(line_share)
}

/// Sorted, deduplicated token hashes.
fn token_set(words: &[u64]) -> Vec<u64> {
    let mut h = words.to_vec();
    h.sort_unstable();
    h.dedup();
    h
}

/// Gibberish: few letters (emoji-only replies are style, not gibberish), a bare URL, or one character
/// repeated more than `max_run` times in a row.
pub fn gibberish(t: &str, c: &text::Counts, min_ratio: f64, max_run: usize) -> Option<String> {
    let trimmed = t.trim();
    if is_url_only(trimmed) {
        return Some("only a URL".into());
    }
    let mut run = 0usize;
    let mut prev = None;
    for ch in trimmed.chars() {
        if Some(ch) == prev {
            run += 1;
        } else {
            run = 1;
            prev = Some(ch);
        }
        if run > max_run && !ch.is_whitespace() {
            return Some(format!("\"{ch}\" repeated more than {max_run} times in a row"));
        }
    }
    if c.non_space > 0 {
        let emoji_share = c.emoji as f64 / c.non_space as f64;
        let ratio = c.letters as f64 / c.non_space as f64;
        if ratio < min_ratio && emoji_share < 0.5 {
            return Some(format!(
                "letters are {:.0}% of the characters (minimum {:.0}%)",
                ratio * 100.0,
                min_ratio * 100.0
            ));
        }
    }
    None
}

fn is_url_only(t: &str) -> bool {
    let words: Vec<&str> = t.split_whitespace().collect();
    !words.is_empty()
        && words.iter().all(|w| {
            let l = w.to_ascii_lowercase();
            l.starts_with("http://") || l.starts_with("https://") || l.starts_with("www.")
        })
}

/// English words a complete sentence does not end with.
const EN_ENDINGS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "nor", "because", "although", "though", "unless", "whereas", "whether",
    "than", "my", "your", "his", "their", "our", "its", "whose", "very", "such", "of", "into", "onto", "upon",
    "between", "among", "if", "with", "the", "some", "every", "each", "both", "either", "neither", "while",
];

/// Persian words a complete sentence does not end with (conjunctions and prepositions; Persian sentences
/// end with a verb).
const FA_ENDINGS: &[&str] =
    &["و", "که", "از", "به", "در", "با", "برای", "تا", "اگر", "یا", "ولی", "اما", "چون", "این", "آن", "های", "را"];

/// Characters that end a sentence (any script), closing quotes and brackets, emoji.
fn is_terminal(c: char) -> bool {
    matches!(
        c,
        '.' | '!'
            | '?'
            | '…'
            | '؟'
            | '۔'
            | '。'
            | '！'
            | '？'
            | '"'
            | '\''
            | ')'
            | ']'
            | '}'
            | '»'
            | '”'
            | '’'
            | ':'
            | ';'
    ) || text::is_emoji(c)
}

/// Cut mid-sentence: ends with a word no sentence ends with, and no terminal punctuation.
pub fn incomplete(t: &str, script: Script, langs: &[String]) -> Option<String> {
    let lang = match script {
        Script::Latin => "en",
        Script::Arabic => "fa",
        _ => return None,
    };
    if !langs.iter().any(|l| l == lang) {
        return None;
    }
    let trimmed = t.trim_end();
    let last_char = trimmed.chars().last()?;
    if is_terminal(last_char) {
        return None;
    }
    let last_word = trimmed.split_whitespace().last()?;
    let word = last_word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\u{200C}');
    let list = if lang == "en" { EN_ENDINGS } else { FA_ENDINGS };
    let w = word.to_lowercase();
    if list.contains(&w.as_str()) {
        return Some(format!("ends with \"{word}\" and no punctuation: cut mid-sentence?"));
    }
    None
}

/// MTN's echo rules: the output starts with the first half of the input's first 8 words (at least two
/// words), contains the whole input (over 10 characters), or repeats over `max_overlap` of the input's
/// distinct words (input over 3 distinct words).
pub fn echo(input: &str, output: &str, max_overlap: f64) -> Option<String> {
    echo_of(input, output, &text::token_hashes(output), max_overlap)
}

fn echo_of(input: &str, output: &str, out_tokens: &[u64], max_overlap: f64) -> Option<String> {
    let in_words = text::token_hashes(input);
    let half = in_words.len().min(8) / 2;
    if half >= 2 && out_tokens.len() >= half && out_tokens[..half] == in_words[..half] {
        let prefix: Vec<String> = text::tokens(input).into_iter().take(half).map(|w| w.into_owned()).collect();
        return Some(format!("starts with the input's first words \"{}\"", prefix.join(" ")));
    }
    let in_trim = input.trim();
    if in_trim.chars().count() > 10 && output.len() >= in_trim.len() && contains_ignoring_case(output, in_trim) {
        return Some("contains the whole input".into());
    }
    let distinct_in = token_set(&in_words);
    if distinct_in.len() > 3 {
        let distinct_out = token_set(out_tokens);
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < distinct_in.len() && j < distinct_out.len() {
            match distinct_in[i].cmp(&distinct_out[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        let overlap = shared as f64 / distinct_in.len() as f64;
        if overlap > max_overlap {
            return Some(format!(
                "repeats {:.0}% of the input's words (maximum {:.0}%)",
                overlap * 100.0,
                max_overlap * 100.0
            ));
        }
    }
    None
}

/// Case-insensitive substring test that lower-cases only when the texts have case at all.
fn contains_ignoring_case(hay: &str, needle: &str) -> bool {
    let has_case = |t: &str| t.chars().any(|c| text::may_have_case(c) && c.is_alphabetic());
    if !has_case(needle) {
        return hay.contains(needle);
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// Encoding damage: U+FFFD replacement characters, UTF-8 read as Latin-1/Windows-1252 (mojibake such as
/// "Ã©" or "Ø³"), or control characters other than tab and newline.
pub fn encoding(t: &str) -> Option<String> {
    if t.is_ascii() {
        return t
            .bytes()
            .find(|&b| b < 0x20 && !matches!(b, b'\n' | b'\t' | b'\r') || b == 0x7F)
            .map(|b| format!("control character U+{b:04X}"));
    }
    let mut fffd = 0;
    let mut control = None;
    let mut moji = 0;
    let mut prev = '\0';
    for c in t.chars() {
        if c == '\u{FFFD}' {
            fffd += 1;
        } else if (c as u32) < 0x80 {
            if control.is_none() && c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
                control = Some(c);
            }
        } else if (0x80..=0xBF).contains(&(c as u32)) && matches!(prev, 'Ã' | 'Â' | 'Ø' | 'Ù' | 'Ú' | 'Û' | 'â' | 'ð')
            || matches!(prev, 'Ã' | 'Ø' | 'Ù') && matches!(c, '©' | '¨' | '§' | '³' | '±' | 'ª' | '„' | '…' | '‡' | '†')
        {
            moji += 1;
        }
        prev = c;
    }
    if fffd > 0 {
        return Some(format!("{fffd} replacement character{} (U+FFFD)", if fffd == 1 { "" } else { "s" }));
    }
    if let Some(c) = control {
        return Some(format!("control character U+{:04X}", c as u32));
    }
    if moji >= 2 {
        return Some(format!("looks like mojibake (UTF-8 read as Latin-1): {moji} suspicious pairs"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Profile;

    fn ids(prompt: Option<&str>, resp: &str) -> Vec<&'static str> {
        check_response(prompt, resp, &Settings::new(Profile::Chat)).iter().map(|f| f.check.as_str()).collect()
    }

    #[test]
    fn clean_responses_pass_in_every_script() {
        for r in [
            "Machine learning is a subset of AI that learns from data.",
            "یادگیری ماشین شاخه‌ای از هوش مصنوعی است که از داده یاد می‌گیرد.",
            "هههههه خیلی خوب بود امشب",
            "hahaha that was so good",
            "机器学习是人工智能的一个分支。",
            "sure, see you at 5",
            "fn main() { println!(\"hello\"); }",
            "lol 😂😂 ok see you there",
        ] {
            assert!(ids(Some("question?"), r).is_empty(), "{r}: {:?}", ids(Some("question?"), r));
        }
    }

    #[test]
    fn repetitive_matches_mtn_and_lines() {
        assert!(repetition_score("the cat sat the cat sat the cat sat the cat sat") > 0.3);
        assert!(repetition_score("I like green tea in the morning with honey.") < 0.01);
        assert_eq!(repetition_score("ok ok ok"), 0.0); // under 10 characters
        assert!(repetition_score("hello there\nhello there\nhello there\nbye now") >= 0.5);
        assert_eq!(ids(None, "buy now buy now buy now buy now"), ["repetitive"]);
        assert_eq!(ids(None, "خیلی خوبه خیلی خوبه خیلی خوبه خیلی خوبه"), ["repetitive"]);
    }

    #[test]
    fn too_short_counts_words_or_characters() {
        assert_eq!(ids(None, "ok thanks"), ["too-short"]);
        assert_eq!(ids(None, "باشه ممنون"), ["too-short"]);
        assert!(ids(None, "我爱你").is_empty());
        assert_eq!(ids(None, "好的"), ["too-short"]);
        let f = check_response(None, "ok", &Settings::new(Profile::Chat));
        assert_eq!(f[0].detail, "1 word (minimum 3)");
    }

    #[test]
    fn gibberish_rules() {
        assert_eq!(ids(None, "https://example.org/page"), ["too-short", "gibberish"]);
        assert_eq!(ids(None, "$$$ %%% ### @@@ !!! 12 34 56"), ["gibberish"]);
        assert_eq!(ids(None, &format!("no {} way", "o".repeat(25))), ["gibberish"]);
        assert!(ids(None, &format!("that is so funny {}", "ه".repeat(12))).is_empty());
        assert!(ids(None, "😂😂😂 😂😂 😂").iter().all(|c| *c != "gibberish"));
    }

    #[test]
    fn incomplete_per_language() {
        assert_eq!(ids(None, "I went to the store and bought the"), ["incomplete"]);
        assert!(ids(None, "I went to the store and bought the milk").is_empty());
        assert!(ids(None, "I went to the store and bought the.").is_empty());
        assert_eq!(ids(None, "من امروز رفتم بازار و"), ["incomplete"]);
        assert!(ids(None, "ما رفتیم خونه با تو").is_empty()); // MTN's short-word rule misfired on «تو»
        let langs = vec!["fa".to_string()];
        assert!(incomplete("bought the", Script::Latin, &langs).is_none());
    }

    #[test]
    fn echo_rules() {
        let q = "What is the capital city of France";
        assert_eq!(ids(Some(q), "What is the capital? It is Paris."), ["echo"]);
        assert_eq!(ids(Some("tell me a joke"), "Sure: tell me a joke, you said."), ["echo"]);
        assert_eq!(ids(Some(q), "capital city of France is what Paris is"), ["echo"]);
        assert!(ids(Some(q), "Paris, of course.").is_empty());
        // MTN flagged any answer sharing the question's first word; banter needs two.
        assert!(ids(Some("What is ML?"), "What a question! It is a field of AI.").is_empty());
    }

    #[test]
    fn encoding_damage() {
        assert!(encoding("caf\u{FFFD} au lait").unwrap().contains("U+FFFD"));
        assert!(encoding("cafÃ© au lait, dÃ©jÃ  vu").unwrap().contains("mojibake"));
        assert!(encoding("a\u{0007}b").unwrap().contains("U+0007"));
        assert!(encoding("café déjà vu, naïve — «ok»\n\tfine").is_none());
        assert!(encoding("سلام می‌روم 👨‍👩‍👧").is_none());
    }
}
