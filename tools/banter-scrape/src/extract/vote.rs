//! Main text by agreement of four extractors.
//!
//! The candidates are `rs-trafilatura` (a trafilatura port with page-type profiles), `trafilatura` (the
//! go-trafilatura port), `dom_smoothie` and `readability` (readability ports). On an article page the text
//! of the first is checked sentence by sentence against the other three: a sentence is kept when at least
//! two of them hold 30% or more of its word trigrams (a sentence under three words: when it appears in two
//! of them). When that still leaves more than 1.5× the longer of the second and third candidates' texts,
//! the first candidate took in boilerplate the others left out, and the vote is done again with
//! `trafilatura` as the base. Forum, listing, product, documentation and service pages keep rs-trafilatura's
//! own profile for their type. docs/benchmarks.md has the scores of each candidate and of the vote on the
//! public article-extraction-benchmark.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// One extractor's text for a page; empty when it found none, failed or panicked.
#[derive(Debug, Default, Clone)]
pub(super) struct Candidates {
    pub rs_trafilatura: String,
    pub page_type: Option<String>,
    pub trafilatura: String,
    pub dom_smoothie: String,
    pub readability: String,
}

/// Runs `f`, turning a panic inside a third-party extractor into "no text" (hostile pages must not take
/// the run down).
fn guarded(f: impl FnOnce() -> Option<String>) -> String {
    catch_unwind(AssertUnwindSafe(f)).ok().flatten().unwrap_or_default()
}

impl Candidates {
    /// Runs the four extractors on `html` (`url` helps the readability ports resolve relative links).
    pub(super) fn of(html: &str, url: Option<&str>) -> Candidates {
        let mut page_type = None;
        let rs = guarded(|| {
            let r = rs_trafilatura::extract(html).ok()?;
            page_type = r.metadata.page_type.clone();
            Some(r.content_text)
        });
        let tr = guarded(|| trafilatura::extract(html, &trafilatura::Options::default()).ok().map(|r| r.content_text));
        let ds = guarded(|| {
            let mut r = dom_smoothie::Readability::new(html, url, None).ok()?;
            r.parse().ok().map(|a| a.text_content.to_string())
        });
        let rd = guarded(|| {
            let base = url.and_then(|u| url::Url::parse(u).ok());
            let base = base.or_else(|| url::Url::parse("http://localhost/").ok())?;
            readability::extractor::extract(&mut html.as_bytes(), &base).ok().map(|p| p.text)
        });
        Candidates { rs_trafilatura: rs, page_type, trafilatura: tr, dom_smoothie: ds, readability: rd }
    }

    /// The voted text (empty when every candidate is empty) and which rule produced it.
    pub(super) fn decide(&self) -> (String, &'static str) {
        let article = self.page_type.as_deref().is_none_or(|t| t == "article");
        if !article && !self.rs_trafilatura.trim().is_empty() {
            // Far longer than every other extractor's text: rs-trafilatura may have repeated nested blocks.
            let longest = chars(&self.trafilatura).max(chars(&self.dom_smoothie)).max(chars(&self.readability));
            if chars(&self.rs_trafilatura) as f64 > 1.5 * longest as f64 {
                return (without_repeats(&self.rs_trafilatura), "rs-trafilatura (page type profile, repeats removed)");
            }
            return (self.rs_trafilatura.clone(), "rs-trafilatura (page type profile)");
        }
        let v = vote(&self.rs_trafilatura, &[&self.trafilatura, &self.dom_smoothie, &self.readability]);
        let longest_other = chars(&self.trafilatura).max(chars(&self.dom_smoothie));
        let (text, how) = if chars(&v) as f64 > 1.5 * longest_other as f64 && !self.trafilatura.trim().is_empty() {
            let v = vote(&self.trafilatura, &[&self.rs_trafilatura, &self.dom_smoothie, &self.readability]);
            (v, "vote on trafilatura")
        } else {
            (v, "vote on rs-trafilatura")
        };
        if !text.trim().is_empty() {
            return (text, how);
        }
        let chain = [
            (&self.rs_trafilatura, "rs-trafilatura"),
            (&self.trafilatura, "trafilatura"),
            (&self.dom_smoothie, "dom_smoothie"),
            (&self.readability, "readability"),
        ];
        chain
            .into_iter()
            .find(|(t, _)| !t.trim().is_empty())
            .map_or((String::new(), "none"), |(t, how)| (t.clone(), how))
    }
}

/// `text` without the second and later copies of any sentence of six or more words. rs-trafilatura may emit
/// the text of nested `<div>`s once per level (`<div><div>text</div></div>` gave it four times), which makes
/// its text far longer than the other extractors'. (Applied only then: on the article-extraction-benchmark,
/// removing repeats from every page lowered rs-trafilatura's recall from 0.990 to 0.986.)
fn without_repeats(text: &str) -> String {
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let kept: Vec<&str> = sentences(line)
            .into_iter()
            .filter(|u| {
                let w = words(u);
                w.len() < 6 || seen.insert(w.join(" "))
            })
            .collect();
        if !kept.is_empty() {
            lines.push(kept.join(" "));
        }
    }
    lines.join("\n")
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Lower-cased words: runs of letters, digits and `_`.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Splits a line after sentence-ending punctuation followed by white space.
fn sentences(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_end = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() && prev_end {
            out.push(&line[start..i]);
            start = i;
        }
        prev_end = matches!(c, '.' | '!' | '?' | '…' | '。' | '؟' | '।');
    }
    out.push(&line[start..]);
    out.into_iter().map(str::trim).filter(|s| !s.is_empty()).collect()
}

type Trigram = (String, String, String);

fn trigrams(w: &[String]) -> Vec<Trigram> {
    w.windows(3).map(|t| (t[0].clone(), t[1].clone(), t[2].clone())).collect()
}

/// `base`'s sentences that at least two of `others` agree with (see the module docs); `base` unchanged
/// when none is kept.
pub(super) fn vote(base: &str, others: &[&str]) -> String {
    let refs: Vec<(HashSet<Trigram>, String)> = others
        .iter()
        .map(|o| {
            let w = words(o);
            (trigrams(&w).into_iter().collect(), w.join(" "))
        })
        .collect();
    let mut lines = Vec::new();
    for line in base.split('\n') {
        let mut kept = Vec::new();
        for unit in sentences(line) {
            let w = words(unit);
            if w.is_empty() {
                continue;
            }
            let tri = trigrams(&w);
            let agree = if tri.is_empty() {
                let n = w.join(" ");
                refs.iter().filter(|(_, text)| text.contains(&n)).count()
            } else {
                refs.iter()
                    .filter(|(set, _)| tri.iter().filter(|t| set.contains(*t)).count() as f64 >= 0.3 * tri.len() as f64)
                    .count()
            };
            if agree >= 2 {
                kept.push(unit);
            }
        }
        if !kept.is_empty() {
            lines.push(kept.join(" "));
        }
    }
    if lines.is_empty() { base.to_string() } else { lines.join("\n") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_after_end_punctuation_only() {
        assert_eq!(sentences("One. Two!  Three? v1.2 stays"), vec!["One.", "Two!", "Three?", "v1.2 stays"]);
        assert_eq!(sentences("سلام؟ خوبی"), vec!["سلام؟", "خوبی"]);
    }

    #[test]
    fn long_sentences_are_kept_once() {
        let s = "Tea grows on the hills of Assam. Tea grows on the hills of Assam.\nYes. Yes.\nTea grows on the hills of Assam.";
        assert_eq!(without_repeats(s), "Tea grows on the hills of Assam.\nYes. Yes.");
    }

    #[test]
    fn a_sentence_is_kept_when_two_others_agree() {
        let base = "The tea harvest began early this year. Subscribe to our newsletter for more stories.\nShare";
        let a = "The tea harvest began early this year in the hills.";
        let b = "the TEA harvest began early, this year";
        let c = "Subscribe to our newsletter for more stories. Share";
        assert_eq!(vote(base, &[a, b, c]), "The tea harvest began early this year.");
        // Nothing agreed: the base is kept whole rather than emptied.
        assert_eq!(vote(base, &["x", "y", "z"]), base);
    }

    #[test]
    fn a_base_that_took_in_boilerplate_hands_over_to_trafilatura() {
        let body = "Green tea is made from unoxidised leaves. It came from China.";
        let junk = (0..40).map(|i| format!("Related story number {i} here.")).collect::<Vec<_>>().join(" ");
        let c = Candidates {
            rs_trafilatura: format!("{body} {junk}"),
            page_type: Some("article".into()),
            trafilatura: body.into(),
            // One shared trigram in three is enough to agree: with the readability port, which took the
            // junk too, the first vote keeps it.
            dom_smoothie: format!("{body} Related story number 0 here."),
            readability: format!("{body} {junk}"),
        };
        let (text, how) = c.decide();
        assert_eq!((text.as_str(), how), (body, "vote on trafilatura"));
    }

    #[test]
    fn other_page_types_keep_their_profile_and_empty_candidates_fall_through() {
        let c = Candidates {
            rs_trafilatura: "post one\npost two".into(),
            page_type: Some("forum".into()),
            ..Default::default()
        };
        assert_eq!(c.decide().0, "post one\npost two");
        let c = Candidates { dom_smoothie: "only this one".into(), ..Default::default() };
        assert_eq!(c.decide(), ("only this one".to_string(), "dom_smoothie"));
        assert_eq!(Candidates::default().decide().1, "none");
    }
}
