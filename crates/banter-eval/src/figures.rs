//! The figures of one set of replies against the persona's real held-out replies: attribution, style
//! similarity, stylometric distributions with their distances, and diversity.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::ngram::Attributor;
use crate::stats;
use crate::style::{self, Features};

/// One stylometric feature, real against generated.
#[derive(Debug, Clone, Serialize)]
pub struct Dist {
    /// Mean over the real replies (for shares: the share of the most common value among them).
    pub real: f64,
    /// Mean over the generated replies.
    pub generated: f64,
    /// KS statistic (numbers) or Jensen–Shannon divergence (categories): 0 same, 1 apart.
    pub distance: f64,
    /// `"ks"` or `"js"`.
    pub test: &'static str,
}

/// Diversity of a set of replies.
#[derive(Debug, Clone, Serialize)]
pub struct Diversity {
    /// Distinct word unigrams / all unigrams.
    pub distinct_1: f64,
    /// Distinct word bigrams / all bigrams.
    pub distinct_2: f64,
    /// Replies that equal another reply of the set.
    pub repeated_share: f64,
    /// Replies found verbatim among the persona's training messages.
    pub copied_share: f64,
    /// Copied replies of 5 words or more: memorised lines (a privacy risk in a personal model).
    pub memorised: Vec<String>,
}

/// Everything measured on one set of replies.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Share of the replies the classifier attributes to the persona.
    pub attribution: f64,
    /// Share attributed to each participant.
    pub attributed_to: BTreeMap<String, f64>,
    /// Cosine similarity of the replies' char n-gram profile to each participant's profile.
    pub style_similarity: BTreeMap<String, f64>,
    /// 1 − similarity to the persona.
    pub style_distance: f64,
    /// Stylometric distributions against the real replies.
    pub distributions: BTreeMap<&'static str, Dist>,
    /// Diversity.
    pub diversity: Diversity,
}

/// The numeric features, by name.
const NUMERIC: [&str; 5] = ["words", "chars", "emoji_rate", "punct_rate", "upper_rate"];

fn numeric(f: &Features) -> [f64; 5] {
    [f.words, f.chars, f.emoji_rate, f.punct_rate, f.upper_rate]
}

/// The categorical features, by name.
const CATEGORICAL: [&str; 4] = ["script", "language", "question", "laughter"];

fn categorical(f: &Features) -> [&'static str; 4] {
    let yes = |b: bool| if b { "yes" } else { "no" };
    [f.script, f.language, yes(f.question), yes(f.laughter)]
}

/// The figures of `replies` against `real`, the persona at `persona` in the attributor's profiles.
pub fn measure(
    replies: &[String],
    real: &[String],
    attributor: &Attributor,
    persona: usize,
    training: &HashSet<String>,
) -> Figures {
    let names: Vec<&String> = attributor.profiles.iter().map(|(a, _)| a).collect();
    let mut counts = vec![0usize; names.len()];
    for r in replies {
        if let Some(i) = attributor.attribute(r) {
            counts[i] += 1;
        }
    }
    let n = replies.len().max(1) as f64;
    let attributed_to = names.iter().zip(&counts).map(|(a, c)| (a.to_string(), *c as f64 / n)).collect();
    let profile = attributor.tfidf.profile(replies.iter().map(String::as_str));
    let style_similarity: BTreeMap<String, f64> =
        attributor.profiles.iter().map(|(a, p)| (a.clone(), crate::ngram::cosine(&profile, p))).collect();
    let style_distance = 1.0 - style_similarity.get(names[persona]).copied().unwrap_or(0.0);

    let fr: Vec<Features> = real.iter().map(|r| style::features(r)).collect();
    let fg: Vec<Features> = replies.iter().map(|r| style::features(r)).collect();
    let mut distributions = BTreeMap::new();
    for (k, name) in NUMERIC.into_iter().enumerate() {
        let a: Vec<f64> = fr.iter().map(|f| numeric(f)[k]).collect();
        let b: Vec<f64> = fg.iter().map(|f| numeric(f)[k]).collect();
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        distributions
            .insert(name, Dist { real: mean(&a), generated: mean(&b), distance: stats::ks(&a, &b), test: "ks" });
    }
    for (k, name) in CATEGORICAL.into_iter().enumerate() {
        let a = stats::shares(fr.iter().map(|f| categorical(f)[k]));
        let b = stats::shares(fg.iter().map(|f| categorical(f)[k]));
        // For yes/no features the share of "yes"; for the others the share of the real replies' commonest value.
        let key = if matches!(name, "question" | "laughter") {
            "yes".to_string()
        } else {
            a.iter().max_by(|x, y| x.1.total_cmp(y.1)).map(|(k, _)| k.clone()).unwrap_or_default()
        };
        let share = |m: &BTreeMap<String, f64>| m.get(&key).copied().unwrap_or(0.0);
        distributions
            .insert(name, Dist { real: share(&a), generated: share(&b), distance: stats::js(&a, &b), test: "js" });
    }
    let (copied_share, memorised) = stats::copied(replies, training, 5);
    Figures {
        attribution: counts[persona] as f64 / n,
        attributed_to,
        style_similarity,
        style_distance,
        distributions,
        diversity: Diversity {
            distinct_1: stats::distinct(replies, 1),
            distinct_2: stats::distinct(replies, 2),
            repeated_share: stats::repeated_share(replies),
            copied_share,
            memorised,
        },
    }
}
