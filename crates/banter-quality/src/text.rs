//! Text measures the checks share: words in any script, letters, emoji, digits of any script, the
//! dominant script, and stripping chat-template markers.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// True for characters of scripts written without spaces between words (Han, kana, Thai, Lao, Khmer,
/// Myanmar, Tibetan): each counts as a word.
pub fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x31F0..=0x31FF    // Katakana extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified
        | 0xF900..=0xFAFF    // CJK compatibility
        | 0x20000..=0x2FA1F  // CJK extensions B-F
        | 0x0E00..=0x0EFF    // Thai, Lao
        | 0x1780..=0x17FF    // Khmer
        | 0x1000..=0x109F    // Myanmar
        | 0x0F00..=0x0FFF) // Tibetan
}

/// True for emoji and the characters that build emoji sequences (ZWJ, variation selector, skin tones).
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF    // mahjong … symbols & pictographs extended-A (incl. skin tones, flags)
        | 0x2600..=0x27BF    // misc symbols, dingbats
        | 0x2B00..=0x2BFF    // arrows, stars
        | 0x2300..=0x23FF    // misc technical (⌚, ⏰)
        | 0xFE0F | 0x200D | 0x20E3
        | 0xE0020..=0xE007F) // tag characters (subdivision flags)
}

/// The ASCII value of a decimal digit in Latin, Persian (۰-۹) or Arabic-Indic (٠-٩) script.
pub fn digit_value(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '\u{06F0}'..='\u{06F9}' => Some((c as u32 - 0x06F0) as u8),
        '\u{0660}'..='\u{0669}' => Some((c as u32 - 0x0660) as u8),
        _ => None,
    }
}

/// True for Arabic-script letters (Persian, Arabic, Urdu, …).
pub fn is_arabic_script(c: char) -> bool {
    matches!(c as u32, 0x0600..=0x06FF | 0x0750..=0x077F | 0x08A0..=0x08FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF)
}

/// False for characters of scripts without case (Arabic, Hebrew, CJK, Thai, Hangul, emoji, …), so that
/// lower-casing can skip the Unicode case tables for them.
#[inline]
pub fn may_have_case(c: char) -> bool {
    !matches!(c as u32,
        0x0590..=0x08FF | 0x0E00..=0x0EFF | 0x1100..=0x11FF | 0x2E80..=0x9FFF | 0xAC00..=0xD7AF
        | 0xFB1D..=0xFEFF | 0x1F000..=0x1FAFF | 0x20000..=0x2FA1F)
}

/// `char::is_alphabetic`, with a fast path for the Arabic block (Persian text is most of what is not ASCII).
#[inline]
pub fn is_letter(c: char) -> bool {
    match c as u32 {
        0x0621..=0x064A | 0x066E..=0x066F | 0x0671..=0x06D3 | 0x06D5 | 0x06EE..=0x06EF | 0x06FA..=0x06FC => true,
        0x064B..=0x0657 | 0x0670 => true, // harakat: Other_Alphabetic
        0x0600..=0x0620 | 0x0658..=0x066D | 0x06D4 | 0x06D6..=0x06ED | 0x06F0..=0x06F9 | 0x06FD..=0x06FF => {
            c.is_alphabetic()
        }
        _ => c.is_alphabetic(),
    }
}

/// Character class counts of a text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Characters that are not whitespace.
    pub non_space: usize,
    /// Letters of any script (marks that belong to letters included).
    pub letters: usize,
    /// Letters of scripts written without spaces.
    pub unspaced: usize,
    /// ASCII / Latin letters.
    pub latin: usize,
    /// Arabic-script letters.
    pub arabic: usize,
    /// Emoji characters.
    pub emoji: usize,
    /// Digits of any script.
    pub digits: usize,
}

/// Counts character classes in one pass.
pub fn counts(text: &str) -> Counts {
    let mut c = Counts::default();
    for ch in text.chars() {
        if ch.is_whitespace() {
            continue;
        }
        c.non_space += 1;
        if ch.is_ascii() {
            if ch.is_ascii_alphabetic() {
                c.letters += 1;
                c.latin += 1;
            } else if ch.is_ascii_digit() {
                c.digits += 1;
            }
            continue;
        }
        if is_letter(ch) {
            c.letters += 1;
            if is_unspaced(ch) {
                c.unspaced += 1;
            } else if is_arabic_script(ch) {
                c.arabic += 1;
            } else if (ch as u32) < 0x0250 {
                c.latin += 1;
            }
        } else if is_emoji(ch) {
            c.emoji += 1;
        } else if digit_value(ch).is_some() || ch.is_numeric() {
            c.digits += 1;
        }
    }
    c
}

/// The script family that decides which language rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Mostly Latin letters: English rules.
    Latin,
    /// Mostly Arabic-script letters: Persian rules.
    Arabic,
    /// Mostly Han/kana/Thai/…: no spaces between words.
    Unspaced,
    /// Anything else, or no letters.
    Other,
}

impl Counts {
    /// The script of most letters (over half), if any.
    pub fn script(&self) -> Script {
        let half = self.letters / 2;
        if self.letters == 0 {
            Script::Other
        } else if self.latin > half {
            Script::Latin
        } else if self.arabic > half {
            Script::Arabic
        } else if self.unspaced > half {
            Script::Unspaced
        } else {
            Script::Other
        }
    }
}

/// Words: whitespace-separated tokens, except that each character of a script written without spaces
/// counts as one word ("我爱你" is three).
pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .map(|w| {
            let unspaced = w.chars().filter(|&c| is_unspaced(c)).count();
            if unspaced == 0 {
                1
            } else {
                let rest_has_letters = w.chars().any(|c| c.is_alphanumeric() && !is_unspaced(c));
                unspaced + usize::from(rest_has_letters)
            }
        })
        .sum()
}

/// Lower-cased word tokens for repetition and overlap measures (unspaced scripts split per character).
pub fn tokens(text: &str) -> Vec<Cow<'_, str>> {
    let mut out = Vec::new();
    for w in text.split_whitespace() {
        if w.chars().any(is_unspaced) {
            let mut start = 0;
            for (i, c) in w.char_indices() {
                if is_unspaced(c) {
                    if start < i {
                        out.push(lower(&w[start..i]));
                    }
                    out.push(Cow::Borrowed(&w[i..i + c.len_utf8()]));
                    start = i + c.len_utf8();
                }
            }
            if start < w.len() {
                out.push(lower(&w[start..]));
            }
        } else {
            out.push(lower(w));
        }
    }
    out
}

/// [`tokens`] as 64-bit hashes of the lower-cased tokens, without allocating the tokens.
pub fn token_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    let mut buf = [0u8; 64];
    let mut hash_word = |w: &str, out: &mut Vec<u64>| {
        if w.is_ascii() && w.len() <= buf.len() {
            let b = &mut buf[..w.len()];
            b.copy_from_slice(w.as_bytes());
            b.make_ascii_lowercase();
            out.push(xxhash_rust::xxh3::xxh3_64(b));
        } else {
            out.push(xxhash_rust::xxh3::xxh3_64(lower(w).as_bytes()));
        }
    };
    for w in text.split_whitespace() {
        if w.is_ascii() || !w.chars().any(is_unspaced) {
            hash_word(w, &mut out);
            continue;
        }
        let mut start = 0;
        for (i, c) in w.char_indices() {
            if is_unspaced(c) {
                if start < i {
                    hash_word(&w[start..i], &mut out);
                }
                out.push(xxhash_rust::xxh3::xxh3_64(&w.as_bytes()[i..i + c.len_utf8()]));
                start = i + c.len_utf8();
            }
        }
        if start < w.len() {
            hash_word(&w[start..], &mut out);
        }
    }
    out
}

fn lower(w: &str) -> Cow<'_, str> {
    let needs = if w.is_ascii() {
        w.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        w.chars().any(|c| may_have_case(c) && c.is_uppercase())
    };
    if needs { Cow::Owned(w.to_lowercase()) } else { Cow::Borrowed(w) }
}

static MARKERS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<\|[A-Za-z_]+\|>|<USR_[A-Z]{1,2}>|<SYS>|<SEP>").expect("valid marker regex"));

/// Removes chat-template markers (`<|user|>`, `<USR_A>`, `<SYS>`, …) from a text sample.
pub fn strip_markers(text: &str) -> Cow<'_, str> {
    if !text.contains('<') {
        return Cow::Borrowed(text);
    }
    MARKERS.replace_all(text, " ")
}

/// Shortens a text for a report line: first `max` characters, newlines shown as `⏎`.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c == '\n' { '⏎' } else { c }).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_in_any_script() {
        assert_eq!(word_count("hello there world"), 3);
        assert_eq!(word_count("سلام، حالت چطوره؟"), 3);
        assert_eq!(word_count("我爱你"), 3);
        assert_eq!(word_count("東京 tower"), 3);
        assert_eq!(word_count("  "), 0);
        assert_eq!(word_count("می‌روم خانه"), 2); // ZWNJ inside a word
    }

    #[test]
    fn counts_and_scripts() {
        let c = counts("Hello 👋 world 42");
        assert_eq!((c.letters, c.emoji, c.digits, c.non_space), (10, 1, 2, 13));
        assert_eq!(c.script(), Script::Latin);
        assert_eq!(counts("سلام دوست من ۱۲").script(), Script::Arabic);
        assert_eq!(counts("سلام ۱۲").digits, 2);
        assert_eq!(counts("こんにちは世界").script(), Script::Unspaced);
        assert_eq!(counts("😂😂😂").script(), Script::Other);
        assert_eq!(counts("café").latin, 4);
        for c in '\u{0600}'..='\u{06FF}' {
            assert_eq!(is_letter(c), c.is_alphabetic(), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn tokens_lowercase_and_split_unspaced() {
        let t: Vec<String> = tokens("Hello HELLO 我爱你 x").into_iter().map(|c| c.into_owned()).collect();
        assert_eq!(t, ["hello", "hello", "我", "爱", "你", "x"]);
    }

    #[test]
    fn token_hashes_match_tokens() {
        for t in ["Hello HELLO 我爱你 x", "سلام دوست من", "東京tower ÉCOLE école", ""] {
            let want: Vec<u64> = tokens(t).iter().map(|w| xxhash_rust::xxh3::xxh3_64(w.as_bytes())).collect();
            assert_eq!(token_hashes(t), want, "{t}");
        }
    }

    #[test]
    fn digits_of_every_script() {
        assert_eq!(digit_value('7'), Some(7));
        assert_eq!(digit_value('۷'), Some(7));
        assert_eq!(digit_value('٧'), Some(7));
        assert_eq!(digit_value('a'), None);
    }

    #[test]
    fn markers_are_stripped() {
        assert_eq!(strip_markers("<USR_A> hi <SYS> yo").trim(), "hi   yo");
        assert_eq!(strip_markers("<|user|>\nhi<|end|>").trim(), "hi");
        assert_eq!(strip_markers("a < b"), "a < b");
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        assert_eq!(excerpt("ab\ncd", 10), "ab⏎cd");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
