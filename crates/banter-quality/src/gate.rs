//! Judging samples in order — the checks, then duplicates against what came before — and the quality
//! gate built on it.
//!
//! [`assess`] is the order-free part (run it in parallel); [`Judge`] adds the duplicate findings in input
//! order. banter-validate streams through both; [`gate`] runs both over samples in memory. The score is
//! the same either way: kept samples / all samples.

use std::collections::BTreeMap;

use rayon::prelude::*;

use banter_core::records::Sample;

use crate::checks::{self, CheckId, Finding, Settings, Severity};
use crate::dedup::{self, BANDS, Index, Origin};

/// The score below which training refuses data unless forced (MTN Sails' gate).
pub const GATE_MIN_SCORE: f64 = 0.5;

/// One sample's findings and duplicate keys, before the duplicate checks.
#[derive(Debug, Clone)]
pub struct Assessed {
    /// What the per-sample checks found.
    pub findings: Vec<Finding>,
    /// The exact-duplicate key, when that check is on.
    pub exact: Option<u128>,
    /// The near-duplicate band keys, when that check is on.
    pub bands: Option<[u64; BANDS]>,
}

/// Runs the per-sample checks and computes the duplicate keys the settings ask for.
pub fn assess(sample: &Sample, s: &Settings) -> Assessed {
    let findings = checks::evaluate(sample, s);
    let structural = findings.iter().any(|f| f.check == CheckId::Structure);
    let (exact, bands) = if structural {
        (None, None)
    } else {
        (
            s.on(CheckId::Duplicate).then(|| dedup::sample_exact_key(sample)),
            s.on(CheckId::NearDuplicate).then(|| dedup::band_keys(&dedup::sample_key_text(sample))),
        )
    };
    Assessed { findings, exact, bands }
}

/// Adds duplicate findings in input order.
#[derive(Debug, Default)]
pub struct Judge {
    index: Index,
}

impl Judge {
    /// A judge that starts from a saved index (the merged indexes of a `--shard` run's shards).
    pub fn with_index(index: Index) -> Self {
        Judge { index }
    }

    /// What it has seen.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Adds the `duplicate`/`near-duplicate` finding to `a` when an earlier sample matches; `at` names
    /// the earlier sample in the message.
    pub fn add_duplicates(&mut self, a: &mut Assessed, here: Origin, at: impl Fn(Origin) -> String) {
        if let Some(k) = a.exact
            && let Some(o) = self.index.exact(k, here)
        {
            a.findings.push(Finding::new(CheckId::Duplicate, format!("same as {}", at(o))));
        }
        if let Some(b) = &a.bands
            && !a.findings.iter().any(|f| f.check == CheckId::Duplicate)
            && let Some(o) = self.index.near(b, here)
        {
            a.findings.push(Finding::new(CheckId::NearDuplicate, format!("nearly the same as {}", at(o))));
        }
    }
}

/// The gate's verdict on samples in memory.
#[derive(Debug, Clone, Default)]
pub struct GateScore {
    /// Samples judged.
    pub total: u64,
    /// Samples kept (no rejecting finding).
    pub valid: u64,
    /// Rejections per check id.
    pub rejected_by: BTreeMap<&'static str, u64>,
    /// Per sample: kept or not.
    pub kept: Vec<bool>,
}

impl GateScore {
    /// valid / total (0 when there are no samples), as banter-validate's score.
    pub fn score(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.valid as f64 / self.total as f64 }
    }

    /// True when the score reaches `min`.
    pub fn passes(&self, min: f64) -> bool {
        self.total > 0 && self.score() >= min
    }

    /// "12 of 20 samples pass banter-validate's checks; rejected: duplicate 3, too-short 5".
    pub fn summary(&self) -> String {
        let by: Vec<String> = self.rejected_by.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let mut s = format!("{} of {} samples pass banter-validate's checks", self.valid, self.total);
        if !by.is_empty() {
            s.push_str(&format!("; rejected: {}", by.join(", ")));
        }
        s
    }

    /// The kept samples, in order.
    pub fn keep<T>(&self, items: Vec<T>) -> Vec<T> {
        items.into_iter().zip(&self.kept).filter_map(|(x, &k)| k.then_some(x)).collect()
    }
}

/// Judges samples as banter-validate with `settings` does (checks in parallel, duplicates in order).
pub fn gate(samples: &[Sample], settings: &Settings) -> GateScore {
    let assessed: Vec<Assessed> = samples.par_iter().map(|s| assess(s, settings)).collect();
    let mut judge = Judge::default();
    let mut out =
        GateScore { total: samples.len() as u64, kept: Vec::with_capacity(samples.len()), ..Default::default() };
    for (i, mut a) in assessed.into_iter().enumerate() {
        judge.add_duplicates(&mut a, (0, i as u64 + 1), |(_, l)| format!("sample {l}"));
        let mut rejected = false;
        for f in &a.findings {
            if settings.severity(f.check) == Severity::Reject {
                rejected = true;
                *out.rejected_by.entry(f.check.as_str()).or_default() += 1;
            }
        }
        out.kept.push(!rejected);
        if !rejected {
            out.valid += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Profile;
    use banter_core::records::Turn;

    fn chat(u: &str, a: &str) -> Sample {
        Sample::chat(vec![
            Turn::new(banter_core::records::Role::User, u),
            Turn::new(banter_core::records::Role::Assistant, a),
        ])
    }

    #[test]
    fn duplicates_count_against_the_score() {
        let good = chat("How was the trip to the coast?", "Lovely, the weather held and we walked for hours.");
        let other = chat("Did you finish the book?", "Yes, last night; the ending surprised me completely.");
        let samples = vec![good.clone(), other, good.clone(), good];
        let g = gate(&samples, &Settings::new(Profile::Chat));
        assert_eq!((g.total, g.valid), (4, 2));
        assert_eq!(g.rejected_by.get("duplicate"), Some(&2));
        assert_eq!(g.kept, vec![true, true, false, false]);
        assert!((g.score() - 0.5).abs() < 1e-12);
        assert!(g.passes(GATE_MIN_SCORE));
        assert!(g.summary().contains("duplicate 2"), "{}", g.summary());
    }

    #[test]
    fn no_samples_never_pass() {
        let g = gate(&[], &Settings::new(Profile::Chat));
        assert_eq!(g.score(), 0.0);
        assert!(!g.passes(0.0));
    }
}
