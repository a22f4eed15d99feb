//! Gopher's quality and repetition rules for web documents (`--profile web`), with the thresholds of the
//! paper (Rae et al. 2021, as implemented by datatrove), and word rules that also work for Persian
//! (FineWeb-2's Persian settings: mean word length 2–9, 81.2% words with a letter, Persian stop words).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::text::{self, Script};

const EN_STOP: &[&str] = &["the", "be", "to", "of", "and", "that", "have", "with"];
const FA_STOP: &[&str] = &["در", "و", "به", "از", "که", "است", "این", "را", "با", "یک"];

/// Gopher quality: the first rule that fails, if any.
pub fn gopher_quality(doc: &str) -> Option<String> {
    let counts = text::counts(doc);
    let script = counts.script();
    let words: Vec<&str> = doc.split_whitespace().collect();
    let n_words = text::word_count(doc);
    if n_words < 50 {
        return Some(format!("{n_words} words (minimum 50)"));
    }
    if n_words > 100_000 {
        return Some(format!("{n_words} words (maximum 100,000)"));
    }
    let (min_len, max_len, min_alpha, stops) = match script {
        Script::Arabic => (2.0, 9.0, 0.812, Some(FA_STOP)),
        Script::Unspaced => (0.0, f64::MAX, 0.8, None),
        Script::Latin => (3.0, 10.0, 0.8, Some(EN_STOP)),
        Script::Other => (3.0, 10.0, 0.8, None),
    };
    if script != Script::Unspaced {
        let mean = words.iter().map(|w| w.chars().count()).sum::<usize>() as f64 / words.len() as f64;
        if mean < min_len || mean > max_len {
            return Some(format!("mean word length {mean:.1} (allowed {min_len}–{max_len})"));
        }
    }
    let hashes = doc.matches('#').count() as f64 / n_words as f64;
    if hashes > 0.1 {
        return Some(format!("{hashes:.2} '#' per word (maximum 0.1)"));
    }
    let ellipses = (doc.matches("...").count() + doc.matches('…').count()) as f64 / n_words as f64;
    if ellipses > 0.1 {
        return Some(format!("{ellipses:.2} ellipses per word (maximum 0.1)"));
    }
    let lines: Vec<&str> = doc.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if !lines.is_empty() {
        let bullets = lines.iter().filter(|l| l.starts_with(['•', '-', '*', '·', '●', '▪', '–'])).count();
        if bullets as f64 / lines.len() as f64 > 0.9 {
            return Some(format!(
                "{:.0}% of lines are bullets (maximum 90%)",
                100.0 * bullets as f64 / lines.len() as f64
            ));
        }
        let trailing = lines.iter().filter(|l| l.ends_with("...") || l.ends_with('…')).count();
        if trailing as f64 / lines.len() as f64 > 0.3 {
            return Some(format!(
                "{:.0}% of lines end with an ellipsis (maximum 30%)",
                100.0 * trailing as f64 / lines.len() as f64
            ));
        }
    }
    let alpha = words.iter().filter(|w| w.chars().any(char::is_alphabetic)).count() as f64 / words.len() as f64;
    if alpha < min_alpha {
        return Some(format!("{:.0}% of words have a letter (minimum {:.0}%)", alpha * 100.0, min_alpha * 100.0));
    }
    if let Some(stops) = stops {
        let found: HashSet<&str> = words
            .iter()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
            .filter(|w| stops.iter().any(|s| s.eq_ignore_ascii_case(w)))
            .collect();
        if found.len() < 2 {
            return Some(format!("{} stop word{} (minimum 2)", found.len(), if found.len() == 1 { "" } else { "s" }));
        }
    }
    None
}

/// Gopher repetition: the first rule that fails, if any.
pub fn gopher_repetition(doc: &str) -> Option<String> {
    let total_chars = doc.chars().count().max(1) as f64;
    let paragraphs: Vec<&str> = doc.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).collect();
    let (dup, dup_chars) = duplicates(&paragraphs);
    if !paragraphs.is_empty() && dup as f64 / paragraphs.len() as f64 > 0.3 {
        return Some(format!(
            "{:.0}% duplicate paragraphs (maximum 30%)",
            100.0 * dup as f64 / paragraphs.len() as f64
        ));
    }
    if dup_chars as f64 / total_chars > 0.2 {
        return Some(format!(
            "{:.0}% of characters in duplicate paragraphs (maximum 20%)",
            100.0 * dup_chars as f64 / total_chars
        ));
    }
    let lines: Vec<&str> = doc.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let (dup, dup_chars) = duplicates(&lines);
    if !lines.is_empty() && dup as f64 / lines.len() as f64 > 0.3 {
        return Some(format!("{:.0}% duplicate lines (maximum 30%)", 100.0 * dup as f64 / lines.len() as f64));
    }
    if dup_chars as f64 / total_chars > 0.2 {
        return Some(format!(
            "{:.0}% of characters in duplicate lines (maximum 20%)",
            100.0 * dup_chars as f64 / total_chars
        ));
    }
    let words: Vec<String> = text::tokens(doc)
        .into_iter()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        .filter(|w| !w.is_empty())
        .collect();
    let word_chars: usize = words.iter().map(|w| w.chars().count()).sum();
    if word_chars == 0 {
        return None;
    }
    for (n, max) in [(2, 0.20), (3, 0.18), (4, 0.16)] {
        let share = top_ngram_share(&words, n, word_chars);
        if share > max {
            return Some(format!(
                "most frequent {n}-gram covers {:.0}% of the text (maximum {:.0}%)",
                share * 100.0,
                max * 100.0
            ));
        }
    }
    for (n, max) in [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)] {
        let share = dup_ngram_share(&words, n, word_chars);
        if share > max {
            return Some(format!(
                "duplicated {n}-grams cover {:.0}% of the text (maximum {:.0}%)",
                share * 100.0,
                max * 100.0
            ));
        }
    }
    None
}

/// Elements that repeat an earlier one, and their characters.
fn duplicates(items: &[&str]) -> (usize, usize) {
    let mut seen = HashSet::default();
    let mut dup = 0;
    let mut chars = 0;
    for it in items {
        if !seen.insert(*it) {
            dup += 1;
            chars += it.chars().count();
        }
    }
    (dup, chars)
}

fn chars_of(ws: &[String]) -> usize {
    ws.iter().map(|w| w.chars().count()).sum()
}

/// Characters of the most frequent n-gram times its count, over all word characters.
fn top_ngram_share(words: &[String], n: usize, total: usize) -> f64 {
    if words.len() < n {
        return 0.0;
    }
    let mut counts: HashMap<&[String], usize> = HashMap::default();
    for w in words.windows(n) {
        *counts.entry(w).or_default() += 1;
    }
    counts.iter().filter(|(_, c)| **c > 1).map(|(g, &c)| chars_of(g) * c).max().map_or(0.0, |c| c as f64 / total as f64)
}

/// Characters covered by n-grams seen before (non-overlapping, as datatrove), over all word characters.
fn dup_ngram_share(words: &[String], n: usize, total: usize) -> f64 {
    if words.len() < n {
        return 0.0;
    }
    let mut seen: HashSet<&[String]> = HashSet::default();
    let mut covered = vec![false; words.len()];
    let mut i = 0;
    while i + n <= words.len() {
        let g = &words[i..i + n];
        if seen.contains(g) {
            for c in covered.iter_mut().skip(i).take(n) {
                *c = true;
            }
            i += n;
        } else {
            seen.insert(g);
            i += 1;
        }
    }
    let dup: usize = words.iter().zip(&covered).filter(|(_, c)| **c).map(|(w, _)| w.chars().count()).sum();
    dup as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN: &str = "Green tea is made from the leaves of Camellia sinensis that have not undergone the same \
        withering and oxidation process used to make oolong and black tea. Green tea originated in China, and \
        since then its production and manufacture has spread to other countries in East Asia. Several varieties \
        of green tea exist, which differ substantially based on the variety of C. sinensis used, growing \
        conditions, horticultural methods, production processing, and time of harvest.";

    const FA: &str = "چای سبز نوعی چای است که از برگ‌های گیاه کاملیا سیننسیس تهیه می‌شود و برخلاف چای سیاه \
        فرایند اکسایش را طی نمی‌کند. این نوشیدنی نخستین بار در چین تولید شد و سپس به کشورهای دیگر آسیای شرقی \
        راه یافت. انواع گوناگونی از چای سبز وجود دارد که بر اساس نوع گیاه، شرایط رشد، روش‌های کشت، فرایند \
        تولید و زمان برداشت با یکدیگر تفاوت دارند و هر کدام طعم و رنگ ویژه‌ای دارند که در بازار به فروش می‌رسد.";

    #[test]
    fn real_articles_pass_in_english_and_persian() {
        assert_eq!(gopher_quality(EN), None);
        assert_eq!(gopher_repetition(EN), None);
        assert_eq!(gopher_quality(FA), None);
        assert_eq!(gopher_repetition(FA), None);
    }

    #[test]
    fn quality_rules_fail() {
        assert!(gopher_quality("Too short.").unwrap().contains("minimum 50"));
        let bullets = (0..60).map(|i| format!("- item{i} x")).collect::<Vec<_>>().join("\n");
        assert!(gopher_quality(&bullets).is_some());
        let no_stop = "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".repeat(6);
        assert!(gopher_quality(&no_stop).unwrap().contains("stop word"));
        let hashes = "#tag #more #words and the of ".repeat(20);
        assert!(gopher_quality(&hashes).unwrap().contains("'#'"));
    }

    #[test]
    fn repetition_rules_fail() {
        let lines = "Subscribe to our newsletter\n".repeat(10) + EN;
        assert!(gopher_repetition(&lines).unwrap().contains("duplicate"));
        let spam = "buy cheap pills now ".repeat(40);
        assert!(gopher_repetition(&spam).is_some());
    }
}
