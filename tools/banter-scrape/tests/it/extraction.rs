//! Main-text extraction on the fixture pages, scored as the article-extraction-benchmark scores (word
//! 4-gram shingles) against hand-written text, and one regression test per failure cause found there.

use std::collections::{HashMap, HashSet};

use banter_scrape::extract;

const FIXTURES: &[&str] = &[
    "articles/green-tea.html",
    "articles/python-gil.html",
    "articles/news.html",
    "forum/thread.html",
    "fa/persian.html",
];

/// The word 4-gram shingles of a text with their counts (the article-extraction-benchmark's `evaluate.py`:
/// tokens are `\w+` runs, case kept).
fn shingles(s: &str) -> HashMap<Vec<&str>, usize> {
    let tokens: Vec<&str> = s.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|t| !t.is_empty()).collect();
    let mut out = HashMap::new();
    for i in 0..tokens.len().saturating_sub(3).max(1) {
        let sh: Vec<&str> = tokens[i..(i + 4).min(tokens.len())].to_vec();
        if !sh.is_empty() {
            *out.entry(sh).or_insert(0) += 1;
        }
    }
    out
}

/// Shingle precision and recall of `got` against `want`, as the benchmark scores a page.
pub fn pr(got: &str, want: &str) -> (f64, f64) {
    let (g, w) = (shingles(got), shingles(want));
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for k in g.keys().chain(w.keys()).collect::<HashSet<_>>() {
        let (pc, tc) = (g.get(k).copied().unwrap_or(0), w.get(k).copied().unwrap_or(0));
        tp += pc.min(tc);
        fp += pc.saturating_sub(tc);
        fn_ += tc.saturating_sub(pc);
    }
    (tp as f64 / (tp + fp).max(1) as f64, tp as f64 / (tp + fn_).max(1) as f64)
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

fn expected(f: &str) -> String {
    std::fs::read_to_string(crate::site().join(f.replace(".html", ".expected.txt"))).unwrap()
}

#[test]
fn every_fixture_page_is_extracted_with_f1_above_090() {
    for f in FIXTURES {
        let bytes = std::fs::read(crate::site().join(f)).unwrap();
        let (html, _) = extract::decode(&bytes, None);
        let ex = extract::extract(&html, None);
        let (p, r) = pr(&ex.text, &expected(f));
        eprintln!("{f}: precision {p:.3} recall {r:.3} F1 {:.3} ({})", f1(p, r), ex.method);
        assert!(f1(p, r) >= 0.9, "{f}: F1 {:.3}\n--- got:\n{}\n--- want:\n{}", f1(p, r), ex.text, expected(f));
    }
}

/// The vote is never worse than its best third-party candidate on the fixtures (summed F1). banter's own
/// rules score 1.0 here because they were written on these pages; on the public benchmark they reach 0.858
/// against the vote's 0.970 (docs/benchmarks.md), so they are only the last fallback.
#[test]
fn the_vote_is_at_least_as_good_as_each_candidate() {
    let mut sums: HashMap<&str, f64> = HashMap::new();
    for f in FIXTURES {
        let bytes = std::fs::read(crate::site().join(f)).unwrap();
        let (html, _) = extract::decode(&bytes, None);
        let (p, r) = pr(&extract::extract(&html, None).text, &expected(f));
        *sums.entry("vote").or_default() += f1(p, r);
        for (name, text) in extract::candidates(&html, None) {
            let (p, r) = pr(&text, &expected(f));
            eprintln!("{f}: {name} F1 {:.3}", f1(p, r));
            *sums.entry(name).or_default() += f1(p, r);
        }
    }
    let vote = sums["vote"];
    for (name, s) in sums.iter().filter(|(n, _)| **n != "banter heuristic") {
        assert!(vote >= *s - 1e-9, "vote {vote:.3} < {name} {s:.3}");
    }
}

#[test]
fn windows_1256_is_decoded() {
    let bytes = std::fs::read(crate::site().join("fa/persian.html")).unwrap();
    let (html, enc) = extract::decode(&bytes, None);
    assert_eq!(enc, "windows-1256");
    let ex = extract::extract(&html, None);
    assert_eq!(ex.lang.as_deref(), Some("fa"));
    assert!(ex.title.unwrap().starts_with("چاي ايراني"));
}
