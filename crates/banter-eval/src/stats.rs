//! Distances between distributions (two-sample Kolmogorov–Smirnov, Jensen–Shannon) and diversity figures
//! (distinct-n, repeats, lines copied from the training data).

use std::collections::{BTreeMap, HashSet};

/// The two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs (0 = same, 1 =
/// apart). 0 when either sample is empty.
pub fn ks(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Shares of each category.
pub fn shares<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, f64> {
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    let mut n = 0.0;
    for s in items {
        *m.entry(s.to_string()).or_default() += 1.0;
        n += 1.0;
    }
    m.values_mut().for_each(|v| *v /= n);
    m
}

/// The Jensen–Shannon divergence (base 2: 0 = same, 1 = disjoint) between two category distributions.
pub fn js(p: &BTreeMap<String, f64>, q: &BTreeMap<String, f64>) -> f64 {
    if p.is_empty() || q.is_empty() {
        return 0.0;
    }
    let keys: HashSet<&String> = p.keys().chain(q.keys()).collect();
    let kl = |x: f64, m: f64| if x > 0.0 { x * (x / m).log2() } else { 0.0 };
    let mut d = 0.0;
    for k in keys {
        let (a, b) = (p.get(k).copied().unwrap_or(0.0), q.get(k).copied().unwrap_or(0.0));
        let m = (a + b) / 2.0;
        d += 0.5 * kl(a, m) + 0.5 * kl(b, m);
    }
    d.clamp(0.0, 1.0)
}

/// Lower-cased word tokens (banter-quality's, as the duplicate checks use them).
pub fn words(s: &str) -> Vec<String> {
    banter_quality::text::tokens(s).into_iter().map(|t| t.into_owned()).collect()
}

/// distinct-n: distinct word n-grams over all n-grams of the replies (1 = no n-gram repeats).
pub fn distinct(replies: &[String], n: usize) -> f64 {
    let mut seen = HashSet::new();
    let mut total = 0usize;
    for r in replies {
        let w = words(r);
        for g in w.windows(n) {
            total += 1;
            seen.insert(g.join(" "));
        }
    }
    if total == 0 { 0.0 } else { seen.len() as f64 / total as f64 }
}

/// A reply normalised for "the same line": lower case, words joined by single spaces.
pub fn norm(s: &str) -> String {
    words(s).join(" ")
}

/// Share of replies that equal another reply of the same set (verbatim repeats).
pub fn repeated_share(replies: &[String]) -> f64 {
    if replies.is_empty() {
        return 0.0;
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in replies {
        *counts.entry(norm(r)).or_default() += 1;
    }
    replies.iter().filter(|r| counts[&norm(r)] > 1).count() as f64 / replies.len() as f64
}

/// Replies found verbatim among `training` lines: (share of all replies, the copied replies of at least
/// `min_words` words — memorised lines worth reading, since a personal model can leak them).
pub fn copied(replies: &[String], training: &HashSet<String>, min_words: usize) -> (f64, Vec<String>) {
    if replies.is_empty() {
        return (0.0, Vec::new());
    }
    let hits: Vec<&String> = replies.iter().filter(|r| !norm(r).is_empty() && training.contains(&norm(r))).collect();
    let mut long: Vec<String> = hits.iter().filter(|r| words(r).len() >= min_words).map(|r| r.to_string()).collect();
    long.sort();
    long.dedup();
    (hits.len() as f64 / replies.len() as f64, long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_is_zero_for_equal_samples_and_one_for_disjoint_ones() {
        assert_eq!(ks(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), 0.0);
        assert_eq!(ks(&[1.0, 2.0], &[5.0, 6.0]), 1.0);
        let d = ks(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]);
        assert!((d - 0.5).abs() < 1e-12, "{d}");
        assert_eq!(ks(&[], &[1.0]), 0.0);
    }

    #[test]
    fn js_is_zero_for_equal_and_one_for_disjoint_distributions() {
        let a = shares(["x", "y", "x"]);
        assert!(js(&a, &a) < 1e-12);
        assert!((js(&shares(["x"]), &shares(["y"])) - 1.0).abs() < 1e-12);
        let mid = js(&shares(["x", "y"]), &shares(["x"]));
        assert!(mid > 0.0 && mid < 1.0);
    }

    #[test]
    fn diversity_and_copies() {
        let r: Vec<String> = ["a b c", "a b c", "d e"].iter().map(|s| s.to_string()).collect();
        assert!((repeated_share(&r) - 2.0 / 3.0).abs() < 1e-12);
        assert!((distinct(&r, 1) - 5.0 / 8.0).abs() < 1e-12);
        assert!((distinct(&r, 2) - 3.0 / 5.0).abs() < 1e-12);
        let train: HashSet<String> = ["A  B c", "see you at the station at nine"].iter().map(|s| norm(s)).collect();
        let made: Vec<String> =
            ["a b c", "See you at the station at nine", "new line"].iter().map(|s| s.to_string()).collect();
        let (share, long) = copied(&made, &train, 5);
        assert!((share - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(long, vec!["See you at the station at nine".to_string()]);
    }
}
