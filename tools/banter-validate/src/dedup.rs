//! Duplicate detection: exact duplicates after normalisation, and near-duplicates with MinHash LSH over
//! character 5-grams (112 hashes as 14 bands × 8 rows, ≈ 0.72 Jaccard, as datatrove/FineWeb).

use rustc_hash::FxHashMap as HashMap;

use banter_core::records::{Role, Sample, SampleBody};
use unicode_normalization::UnicodeNormalization;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// Normalises text for duplicate detection: NFKC, lower case, digits of every script → `0`, Arabic yeh
/// and kaf → Persian forms, ZWNJ and Arabic diacritics dropped, punctuation → space, whitespace folded.
pub fn normalize(t: &str, out: &mut String) {
    let mut pending_space = false;
    let already_nfkc =
        t.is_ascii() || unicode_normalization::is_nfkc_quick(t.chars()) == unicode_normalization::IsNormalized::Yes;
    if already_nfkc {
        for c in t.chars() {
            push_normalized(c, out, &mut pending_space);
        }
    } else {
        for c in t.nfkc() {
            push_normalized(c, out, &mut pending_space);
        }
    }
}

#[inline]
fn push_normalized(c: char, out: &mut String, pending_space: &mut bool) {
    let mut emit = |c: char, out: &mut String| {
        if pending_space_check(c) {
            *pending_space = !out.is_empty();
            return;
        }
        if *pending_space {
            out.push(' ');
            *pending_space = false;
        }
        out.push(c);
    };
    if c.is_ascii() {
        let b = c as u8;
        let mapped = if b.is_ascii_digit() { '0' } else { b.to_ascii_lowercase() as char };
        emit(mapped, out);
        return;
    }
    let c = match c {
        'ي' | 'ى' => 'ی',
        'ك' => 'ک',
        '\u{200C}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => return,
        c if crate::text::digit_value(c).is_some() => '0',
        c => c,
    };
    if !crate::text::may_have_case(c) {
        emit(c, out);
    } else {
        for l in c.to_lowercase() {
            emit(l, out);
        }
    }
}

#[inline]
fn pending_space_check(c: char) -> bool {
    c.is_whitespace() || is_punct(c)
}

fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation()
    } else {
        matches!(c as u32, 0x2000..=0x206F | 0x3000..=0x303F | 0xFF01..=0xFF0F | 0x00A1..=0x00BF)
            || matches!(c, '،' | '؛' | '؟' | '«' | '»' | '۔' | '٪' | '٫' | '٬')
    }
}

/// The normalised content of a sample: every role and text, in order.
pub fn sample_key_text(sample: &Sample) -> String {
    let mut s = String::new();
    match &sample.body {
        SampleBody::Text(t) => normalize(t, &mut s),
        SampleBody::Pair { input, output, .. } => {
            s.push_str("u\u{1F}");
            normalize(input, &mut s);
            s.push_str("\u{1F}a\u{1F}");
            normalize(output, &mut s);
        }
        SampleBody::Chat(turns) => {
            for t in turns {
                s.push(match t.role {
                    Role::System => 's',
                    Role::User => 'u',
                    Role::Assistant => 'a',
                });
                s.push('\u{1F}');
                normalize(&t.content, &mut s);
                s.push('\u{1F}');
            }
        }
    }
    s
}

/// The 128-bit hash exact duplicates are found by.
pub fn exact_key(norm: &str) -> u128 {
    xxh3_128(norm.as_bytes())
}

const BANDS: usize = 14;
const ROWS: usize = 8;

/// The 14 LSH band keys of a normalised text's MinHash signature.
pub fn band_keys(norm: &str) -> [u64; BANDS] {
    let chars: Vec<(usize, char)> = norm.char_indices().collect();
    let mut sig = [u64::MAX; BANDS * ROWS];
    let mut add = |shingle: &str| {
        let h = xxh3_64(shingle.as_bytes());
        for (k, s) in sig.iter_mut().enumerate() {
            // Multiply-shift family: an odd multiplier and an offset per permutation.
            let a = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(2 * k as u64 + 1) | 1;
            let b = 0xD1B5_4A32_D192_ED03u64.wrapping_mul(k as u64 + 7);
            let v = h.wrapping_mul(a).wrapping_add(b);
            if v < *s {
                *s = v;
            }
        }
    };
    if chars.len() <= 5 {
        add(norm);
    } else {
        for w in 0..=chars.len() - 5 {
            let start = chars[w].0;
            let end = chars.get(w + 5).map_or(norm.len(), |c| c.0);
            add(&norm[start..end]);
        }
    }
    let mut keys = [0u64; BANDS];
    for (b, key) in keys.iter_mut().enumerate() {
        let mut bytes = [0u8; ROWS * 8];
        for r in 0..ROWS {
            bytes[r * 8..r * 8 + 8].copy_from_slice(&sig[b * ROWS + r].to_le_bytes());
        }
        *key = xxh3_64(&bytes) ^ (b as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
    }
    keys
}

/// Where a record was first seen: input index and line.
pub type Origin = (usize, u64);

/// The index of what was seen so far, in input order.
#[derive(Debug, Default)]
pub struct Index {
    exact: HashMap<u128, Origin>,
    bands: HashMap<u64, Origin>,
}

impl Index {
    /// Records an exact key; returns where it was first seen if it was.
    pub fn exact(&mut self, key: u128, here: Origin) -> Option<Origin> {
        match self.exact.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(here);
                None
            }
        }
    }

    /// Records band keys; returns a record sharing a band if there is one.
    pub fn near(&mut self, keys: &[u64; BANDS], here: Origin) -> Option<Origin> {
        if let Some(o) = keys.iter().find_map(|k| self.bands.get(k)) {
            return Some(*o);
        }
        for k in keys {
            self.bands.insert(*k, here);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(t: &str) -> String {
        let mut s = String::new();
        normalize(t, &mut s);
        s
    }

    #[test]
    fn normalisation_unifies_what_users_see_as_the_same() {
        assert_eq!(norm("  Hello,   WORLD!! "), "hello world");
        assert_eq!(norm("call me at ۰۹۱۲"), norm("Call me at 0912"));
        assert_eq!(norm("٣ سيب"), norm("۳ سیب")); // Arabic digits and yeh
        assert_eq!(norm("كتاب"), norm("کتاب"));
        assert_eq!(norm("می‌روم"), norm("میروم"));
        assert_eq!(norm("ｈｅｌｌｏ"), "hello"); // NFKC
        assert_eq!(norm("«سلام»، خوبی؟"), "سلام خوبی");
        assert_ne!(norm("hello there"), norm("hello where"));
    }

    #[test]
    fn exact_index_reports_the_first_occurrence() {
        let mut idx = Index::default();
        let k = exact_key("a");
        assert_eq!(idx.exact(k, (0, 1)), None);
        assert_eq!(idx.exact(k, (0, 5)), Some((0, 1)));
        assert_eq!(idx.exact(exact_key("b"), (0, 6)), None);
    }

    #[test]
    fn near_duplicates_collide_and_different_texts_do_not() {
        let a = norm("The quick brown fox jumps over the lazy dog near the river bank today in the morning sun");
        let b = norm("The quick brown fox jumps over the lazy dog near the river bank today in the mornin sun");
        let c = norm("Completely different sentence about green tea and its many varieties across East Asia");
        let mut idx = Index::default();
        assert_eq!(idx.near(&band_keys(&a), (0, 1)), None);
        assert_eq!(idx.near(&band_keys(&b), (0, 2)), Some((0, 1)));
        assert_eq!(idx.near(&band_keys(&c), (0, 3)), None);
    }
}
