//! Duplicate detection: exact duplicates after normalisation, and near-duplicates with MinHash LSH over
//! character 5-grams (112 hashes as 14 bands × 8 rows, ≈ 0.72 Jaccard, as datatrove/FineWeb).

use rustc_hash::FxHashMap as HashMap;

use banter_core::records::{Role, Sample, SampleBody};
use unicode_normalization::UnicodeNormalization;
use xxhash_rust::xxh3::{Xxh3, xxh3_64, xxh3_128};

/// Where normalised text goes: a string (for MinHash shingles) or straight into a hash (exact keys).
pub trait Sink {
    /// Appends bytes of valid UTF-8.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for String {
    fn put(&mut self, bytes: &[u8]) {
        // Only ever called with whole UTF-8 sequences.
        self.push_str(std::str::from_utf8(bytes).unwrap_or_default());
    }
}

/// Hashes what it is given, buffering small writes.
#[allow(missing_debug_implementations)]
pub struct HashSink {
    h: Xxh3,
    buf: [u8; 512],
    len: usize,
}

impl Default for HashSink {
    fn default() -> Self {
        HashSink { h: Xxh3::new(), buf: [0; 512], len: 0 }
    }
}

impl HashSink {
    /// The 128-bit digest.
    pub fn finish(mut self) -> u128 {
        self.h.update(&self.buf[..self.len]);
        self.h.digest128()
    }
}

impl Sink for HashSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.h.update(&self.buf[..self.len]);
            self.len = 0;
            if bytes.len() > self.buf.len() {
                self.h.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// Normalises text for duplicate detection: NFKC, lower case, digits of every script → their ASCII digit
/// (`۱۲` is `12`; numbers are kept: "Article 12" and "Article 57" are different pages), Arabic yeh and kaf →
/// Persian forms, ZWNJ and Arabic diacritics dropped, punctuation → space, whitespace folded (no space at
/// the start or the end).
pub fn normalize<S: Sink>(t: &str, out: &mut S) {
    let mut st = State { pending_space: false, started: false };
    if t.is_ascii() {
        // The common case, byte by byte.
        for &b in t.as_bytes() {
            if b.is_ascii_whitespace() || b.is_ascii_punctuation() {
                st.pending_space = st.started;
                continue;
            }
            if st.pending_space {
                out.put(b" ");
                st.pending_space = false;
            }
            st.started = true;
            out.put(&[b.to_ascii_lowercase()]);
        }
        return;
    }
    if t.chars().all(nfkc_stable)
        || unicode_normalization::is_nfkc_quick(t.chars()) == unicode_normalization::IsNormalized::Yes
    {
        for c in t.chars() {
            push_normalized(c, out, &mut st);
        }
    } else {
        for c in t.nfkc() {
            push_normalized(c, out, &mut st);
        }
    }
}

/// Characters NFKC leaves alone whatever surrounds them (for what this normaliser keeps): ASCII, the
/// Arabic block without its compatibility letters (U+0675–U+0678), ZWNJ/ZWJ, and emoji. Checking these
/// first spares Persian text the slower Unicode quick-check tables.
#[inline]
fn nfkc_stable(c: char) -> bool {
    matches!(c as u32, 0x00..=0x7F | 0x0600..=0x0674 | 0x0679..=0x06FF | 0x200C | 0x200D | 0x1F300..=0x1FAFF)
}

struct State {
    pending_space: bool,
    started: bool,
}

#[inline]
fn emit<S: Sink>(c: char, out: &mut S, st: &mut State) {
    if c.is_whitespace() || is_punct(c) {
        st.pending_space = st.started;
        return;
    }
    if st.pending_space {
        out.put(b" ");
        st.pending_space = false;
    }
    st.started = true;
    let mut b = [0u8; 4];
    out.put(c.encode_utf8(&mut b).as_bytes());
}

#[inline]
fn push_normalized<S: Sink>(c: char, out: &mut S, st: &mut State) {
    if c.is_ascii() {
        let b = c as u8;
        emit(b.to_ascii_lowercase() as char, out, st);
        return;
    }
    let c = match c {
        'ي' | 'ى' => 'ی',
        'ك' => 'ک',
        '\u{200C}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => return,
        c => crate::text::digit_value(c).map_or(c, |v| (b'0' + v) as char),
    };
    if !crate::text::may_have_case(c) {
        emit(c, out, st);
    } else {
        for l in c.to_lowercase() {
            emit(l, out, st);
        }
    }
}

fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation()
    } else {
        matches!(c as u32, 0x2000..=0x206F | 0x3000..=0x303F | 0xFF01..=0xFF0F | 0x00A1..=0x00BF)
            || matches!(c, '،' | '؛' | '؟' | '«' | '»' | '۔' | '٪' | '٫' | '٬')
    }
}

/// Writes the normalised content of a sample: every role and text, in order.
pub fn write_sample_key<S: Sink>(sample: &Sample, s: &mut S) {
    match &sample.body {
        SampleBody::Text(t) => normalize(t, s),
        SampleBody::Pair { input, output, .. } => {
            s.put(b"u\x1f");
            normalize(input, s);
            s.put(b"\x1fa\x1f");
            normalize(output, s);
        }
        SampleBody::Chat(turns) => {
            for t in turns {
                s.put(match t.role {
                    Role::System => b"s\x1f",
                    Role::User => b"u\x1f",
                    Role::Assistant => b"a\x1f",
                });
                normalize(&t.content, s);
                s.put(b"\x1f");
            }
        }
    }
}

/// The normalised content of a sample, as text (for MinHash).
pub fn sample_key_text(sample: &Sample) -> String {
    let mut s = String::new();
    write_sample_key(sample, &mut s);
    s
}

/// The 128-bit key exact duplicates are found by: the hash of [`write_sample_key`]'s output.
pub fn sample_exact_key(sample: &Sample) -> u128 {
    let mut h = HashSink::default();
    write_sample_key(sample, &mut h);
    h.finish()
}

/// The 128-bit hash exact duplicates are found by.
pub fn exact_key(norm: &str) -> u128 {
    xxh3_128(norm.as_bytes())
}

pub const BANDS: usize = 14;
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

/// The index of what was seen, by key: the earliest origin of each. Alone, a run fills it in input order;
/// a `--shard` job may start from the merged indexes of every shard ([`crate::dedup_index`]), where a key's
/// origin can be the record itself or one after it, which are not duplicates of it.
#[derive(Debug, Default)]
pub struct Index {
    pub(crate) exact: HashMap<u128, Origin>,
    pub(crate) bands: HashMap<u64, Origin>,
}

impl Index {
    /// Records an exact key; returns where it was first seen if that was before `here`.
    pub fn exact(&mut self, key: u128, here: Origin) -> Option<Origin> {
        match self.exact.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if *e.get() < here {
                    return Some(*e.get());
                }
                e.insert(here);
                None
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(here);
                None
            }
        }
    }

    /// Records band keys; returns an earlier record sharing a band if there is one. Every record's bands
    /// are recorded, near-duplicates' too (as datatrove's clusters link them): whether a record is a
    /// near-duplicate then depends only on the records before it, not on which of them were kept — so
    /// shards with merged indexes decide as one run does.
    pub fn near(&mut self, keys: &[u64; BANDS], here: Origin) -> Option<Origin> {
        let earlier = keys.iter().filter_map(|k| self.bands.get(k)).filter(|o| **o < here).min().copied();
        for k in keys {
            let e = self.bands.entry(*k).or_insert(here);
            *e = (*e).min(here);
        }
        earlier
    }

    /// Adds `other`'s keys, keeping the earliest origin of each.
    pub fn merge(&mut self, other: Index) {
        for (k, o) in other.exact {
            let e = self.exact.entry(k).or_insert(o);
            *e = (*e).min(o);
        }
        for (k, o) in other.bands {
            let e = self.bands.entry(k).or_insert(o);
            *e = (*e).min(o);
        }
    }

    /// Keys held (exact, bands).
    pub fn len(&self) -> (usize, usize) {
        (self.exact.len(), self.bands.len())
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.bands.is_empty()
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
        // Numbers are kept: templated pages that differ in them are different pages.
        assert_ne!(norm("Article 12, topic 483"), norm("Article 57, topic 911"));
        assert_eq!(norm("Article ۱۲"), "article 12");
        assert_eq!(norm("٣ سيب"), norm("۳ سیب")); // Arabic digits and yeh
        assert_eq!(norm("كتاب"), norm("کتاب"));
        assert_eq!(norm("می‌روم"), norm("میروم"));
        assert_eq!(norm("ｈｅｌｌｏ"), "hello"); // NFKC
        assert_eq!(norm("«سلام»، خوبی؟"), "سلام خوبی");
        assert_ne!(norm("hello there"), norm("hello where"));
    }

    #[test]
    fn the_nfkc_shortcut_is_exact() {
        for cp in (0x0600..=0x06FF).chain(0x1F300..=0x1FAFF).chain(0..0x80) {
            let Some(c) = char::from_u32(cp) else { continue };
            if nfkc_stable(c) {
                let s = c.to_string();
                assert_eq!(s.nfkc().collect::<String>(), s, "U+{cp:04X}");
            }
        }
    }

    #[test]
    fn hashed_and_text_keys_agree() {
        let s = Sample::pair("Hello, World ۱۲", "ok");
        assert_eq!(sample_exact_key(&s), exact_key(&sample_key_text(&s)));
        let long = Sample::text("x ".repeat(2000));
        assert_eq!(sample_exact_key(&long), exact_key(&sample_key_text(&long)));
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
