//! The report: counts, score, verdict, per-check counts, worst examples, recommendations; printed for
//! humans on stderr or as JSON (`--json`, schema in docs/validate.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::checks::{CheckId, Finding, Settings, Severity};

/// Score thresholds for the verdict.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verdicts {
    /// GOOD at or above this.
    pub good: f64,
    /// ACCEPTABLE at or above this, CRITICAL below.
    pub acceptable: f64,
}

/// One rejected (or warned) record shown as an example.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// Input name.
    pub file: String,
    /// Line.
    pub line: u64,
    /// What failed.
    pub reasons: Vec<Finding>,
    /// The start of the checked text.
    pub excerpt: String,
}

/// Per-check counts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CheckCount {
    /// Records rejected by this check.
    pub rejected: u64,
    /// Records warned about by this check.
    pub warned: u64,
}

/// Everything the report says.
#[derive(Debug, Default)]
pub struct Report {
    /// Input names.
    pub inputs: Vec<String>,
    /// Records seen (malformed ones included).
    pub total: u64,
    /// Records kept.
    pub valid: u64,
    /// Records rejected (malformed ones counted under `--max-errors` included).
    pub invalid: u64,
    /// Lines that could not be read as a sample.
    pub malformed: u64,
    /// Records with warnings only.
    pub warned: u64,
    /// Records whose PII was redacted in the output.
    pub redacted: u64,
    /// Counts per check.
    pub checks: BTreeMap<CheckId, CheckCount>,
    /// The worst records, most findings first.
    pub examples: Vec<Example>,
    /// The first malformed lines' errors.
    pub malformed_errors: Vec<String>,
    /// Bytes read.
    pub bytes: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// Worker threads.
    pub threads: usize,
    /// Outputs written.
    pub outputs: Vec<(String, String)>,
}

/// How many malformed-line errors are kept for printing.
pub const MAX_ERRORS_SHOWN: usize = 20;

impl Report {
    /// valid / total (0 when there are no records).
    pub fn score(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.valid as f64 / self.total as f64 }
    }

    /// GOOD, ACCEPTABLE or CRITICAL.
    pub fn verdict(&self, v: &Verdicts) -> &'static str {
        let s = self.score();
        if s >= v.good {
            "GOOD"
        } else if s >= v.acceptable {
            "ACCEPTABLE"
        } else {
            "CRITICAL"
        }
    }

    /// Counts a finding.
    pub fn count(&mut self, f: &Finding, sev: Severity) {
        let c = self.checks.entry(f.check).or_default();
        match sev {
            Severity::Reject => c.rejected += 1,
            Severity::Warn => c.warned += 1,
            Severity::Off => {}
        }
    }

    /// Offers an example; keeps the `max` with most reject findings (earliest first on ties).
    pub fn offer_example(&mut self, ex: Example, weight: usize, max: usize) {
        if max == 0 {
            return;
        }
        if self.examples.len() == max {
            let worst_kept = self.examples.iter().map(|e| e.reasons.len()).min().unwrap_or(0);
            if weight <= worst_kept {
                return;
            }
            if let Some(pos) = self.examples.iter().rposition(|e| e.reasons.len() == worst_kept) {
                self.examples.remove(pos);
            }
        }
        let pos = self.examples.iter().position(|e| e.reasons.len() < weight).unwrap_or(self.examples.len());
        self.examples.insert(pos, ex);
    }

    /// Recommendations for what was found.
    pub fn recommendations(&self, settings: &Settings, v: &Verdicts) -> Vec<String> {
        let mut out = Vec::new();
        for (check, c) in &self.checks {
            let n = c.rejected + c.warned;
            if n == 0 {
                continue;
            }
            let one = n == 1;
            let s = if one { "" } else { "s" };
            let v = |single: &'static str, plural: &'static str| if one { single } else { plural };
            out.push(match check {
                CheckId::Structure => format!("{n} record{s} {} not usable samples: fix them, or let --max-errors count malformed lines as rejects", v("is", "are")),
                CheckId::Empty => format!("{n} sample{s} {} an empty output: fill them in or drop them (--filter)", v("has", "have")),
                CheckId::TooShort => format!("{n} sample{s} {} under {} words: very short replies teach the model to say little; filter them, or lower --min-words for chat data", v("is", "are"), settings.min_words),
                CheckId::Repetitive => format!("{n} sample{s} {} repetitive: the model would learn to loop", v("is", "are")),
                CheckId::Gibberish => format!("{n} sample{s} {} like gibberish (few letters, bare URLs, long runs of one character)", v("looks", "look")),
                CheckId::Echo => format!("{n} output{s} {} the input: the model would learn to parrot the prompt", v("repeats", "repeat")),
                CheckId::Incomplete => format!("{n} output{s} {} cut off mid-sentence: check the export or the scraper", v("looks", "look")),
                CheckId::Duplicate => format!("{n} exact duplicate{s}: --filter keeps the first of each"),
                CheckId::NearDuplicate => format!("{n} near-duplicate{s}: --filter keeps the first of each"),
                CheckId::Encoding => format!("{n} sample{s} {} broken characters: re-export or re-fetch as UTF-8", v("has", "have")),
                CheckId::Pii => format!("{n} sample{s} {} personal data (emails, phones, IPs, cards): --redact-pii replaces it in the kept output", v("contains", "contain")),
                CheckId::GopherQuality => format!("{n} page{s} {} the Gopher quality rules (boilerplate, lists, too short): --filter drops them", v("fails", "fail")),
                CheckId::GopherRepetition => format!("{n} page{s} {} repetitive (menus, spam): --filter drops them", v("is", "are")),
            });
        }
        out.push(match self.verdict(v) {
            "GOOD" => "Data quality is good: you can proceed with training.".into(),
            "ACCEPTABLE" => "Data quality is acceptable: consider --filter before training.".into(),
            _ => {
                "Data quality is critical: filter (--filter) or fix the data before training (garbage in, garbage out)."
                    .into()
            }
        });
        out
    }

    /// The human report.
    pub fn human(&self, settings: &Settings, v: &Verdicts, min_score: f64, max_errors: u64) -> String {
        let mut s = String::new();
        let pct = |n: u64| if self.total == 0 { 0.0 } else { 100.0 * n as f64 / self.total as f64 };
        let _ = writeln!(s, "== banter-validate: {}", self.inputs.join(", "));
        let _ = writeln!(s, "  records    {:>10}", self.total);
        let _ = writeln!(s, "  valid      {:>10}  ({:.1}%)", self.valid, pct(self.valid));
        let _ = writeln!(s, "  invalid    {:>10}  ({:.1}%)", self.invalid, pct(self.invalid));
        if self.malformed > 0 {
            let how = if self.malformed <= max_errors { "counted as invalid" } else { "over --max-errors" };
            let _ = writeln!(s, "  malformed  {:>10}  ({how}, --max-errors {max_errors})", self.malformed);
        }
        if self.warned > 0 {
            let _ = writeln!(s, "  warned     {:>10}  (kept)", self.warned);
        }
        if self.redacted > 0 {
            let _ = writeln!(s, "  redacted   {:>10}  (PII replaced in the kept output)", self.redacted);
        }
        if self.checks.values().any(|c| c.rejected + c.warned > 0) {
            let _ = writeln!(s, "\n  by check");
            for (check, c) in &self.checks {
                if c.rejected > 0 {
                    let _ = writeln!(s, "    {:<18} {:>8} rejected", check.as_str(), c.rejected);
                }
                if c.warned > 0 {
                    let _ = writeln!(s, "    {:<18} {:>8} warned", check.as_str(), c.warned);
                }
            }
        }
        if !self.examples.is_empty() {
            let _ = writeln!(s, "\n  examples");
            for e in &self.examples {
                let reasons: Vec<String> = e.reasons.iter().map(|f| format!("{}: {}", f.check, f.detail)).collect();
                let _ = writeln!(s, "    {}:{}  {}", e.file, e.line, reasons.join("; "));
                if !e.excerpt.is_empty() {
                    let _ = writeln!(s, "      \"{}\"", e.excerpt);
                }
            }
        }
        let score = self.score();
        let gate = if self.total == 0 {
            "no records: nothing to train on".to_string()
        } else if score >= min_score {
            format!("passes --min-score {min_score}")
        } else {
            format!("FAILS --min-score {min_score}")
        };
        let _ = writeln!(s, "\n  score {:.1}%  {}  ({gate})", score * 100.0, self.verdict(v));
        for r in self.recommendations(settings, v) {
            let _ = writeln!(s, "  - {r}");
        }
        for (what, path) in &self.outputs {
            let _ = writeln!(s, "  {what}: {path}");
        }
        if self.seconds > 0.0 && self.bytes >= 1_000_000 {
            let _ = writeln!(
                s,
                "  {:.1} MB in {:.2} s ({:.0} MB/s, {} thread{})",
                self.bytes as f64 / 1e6,
                self.seconds,
                self.bytes as f64 / 1e6 / self.seconds,
                self.threads,
                if self.threads == 1 { "" } else { "s" }
            );
        }
        s
    }

    /// The JSON report's fields (the common `tool`/`version`/`exit_code` are added by the caller).
    pub fn json(&self, settings: &Settings, v: &Verdicts, min_score: f64, max_errors: u64) -> Value {
        let mut checks = serde_json::Map::new();
        for c in crate::checks::ALL {
            let sev = settings.severity(c);
            if sev == Severity::Off {
                continue;
            }
            let n = self.checks.get(&c).copied().unwrap_or_default();
            checks.insert(c.as_str().into(), json!({"severity": sev, "rejected": n.rejected, "warned": n.warned}));
        }
        let outputs: serde_json::Map<String, Value> =
            self.outputs.iter().map(|(k, p)| (k.clone(), Value::String(p.clone()))).collect();
        json!({
            "inputs": self.inputs,
            "counts": {
                "total": self.total,
                "valid": self.valid,
                "invalid": self.invalid,
                "malformed": self.malformed,
                "warned": self.warned,
                "redacted": self.redacted,
            },
            "score": (self.score() * 10000.0).round() / 10000.0,
            "verdict": self.verdict(v),
            "min_score": min_score,
            "passed": self.total > 0 && self.score() >= min_score,
            "max_errors": max_errors,
            "profile": settings.profile,
            "checks": checks,
            "examples": self.examples,
            "malformed_errors": self.malformed_errors,
            "recommendations": self.recommendations(settings, v),
            "outputs": outputs,
            "throughput": {
                "bytes": self.bytes,
                "seconds": (self.seconds * 1000.0).round() / 1000.0,
                "mb_per_s": if self.seconds > 0.0 { (self.bytes as f64 / 1e6 / self.seconds * 10.0).round() / 10.0 } else { 0.0 },
                "records_per_s": if self.seconds > 0.0 { (self.total as f64 / self.seconds).round() } else { 0.0 },
                "threads": self.threads,
                "peak_rss_mb": peak_rss_mb(),
            },
        })
    }
}

/// Peak resident memory of this process in MB (Linux; 0 elsewhere).
pub fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(line: u64, n: usize) -> Example {
        Example {
            file: "f".into(),
            line,
            reasons: (0..n).map(|_| Finding::new(CheckId::Empty, "x")).collect(),
            excerpt: String::new(),
        }
    }

    #[test]
    fn examples_keep_the_worst_earliest_first() {
        let mut r = Report::default();
        for (line, n) in [(1, 1), (2, 2), (3, 1), (4, 3), (5, 2), (6, 1)] {
            r.offer_example(ex(line, n), n, 3);
        }
        let lines: Vec<u64> = r.examples.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 2, 5]);
    }

    #[test]
    fn verdicts_follow_mtn() {
        let v = Verdicts { good: 0.7, acceptable: 0.5 };
        let r = Report { total: 10, valid: 5, ..Default::default() };
        assert_eq!(r.verdict(&v), "ACCEPTABLE");
        let r = Report { total: 10, valid: 7, ..Default::default() };
        assert_eq!(r.verdict(&v), "GOOD");
        let r = Report { total: 10, valid: 4, ..Default::default() };
        assert_eq!(r.verdict(&v), "CRITICAL");
    }
}
