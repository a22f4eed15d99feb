//! The command line and the check settings it resolves to.

use std::path::PathBuf;

use clap::Parser;

use banter_core::Error;
use banter_core::cli::CommonArgs;
use banter_quality::{CheckId, Profile, Settings, Severity, checks};

pub(crate) const EXAMPLES: &str = "\
Examples:
  banter-validate data.jsonl && banter-train data.jsonl ...
  banter-validate data.json --filter                # writes data_filtered.json (MTN's name and format)
  banter-validate data.jsonl -o clean.jsonl --rejects rejects.jsonl --min-score 0.7
  cat logs/*.jsonl | banter-validate - --redact-pii -o clean.jsonl --json > report.json
  banter-validate pages.jsonl --profile web --near-dup -o good-pages.jsonl

Checks (ids for --disable/--warn/--reject): structure, empty, too-short, repetitive, gibberish, echo,
incomplete, duplicate, near-duplicate (off unless --near-dup), encoding, pii (warns), gopher-quality and
gopher-repetition (--profile web).

Exit codes: 0 score >= --min-score; 1 below it, or no records; 2 usage; 3 malformed input beyond
--max-errors; 4 I/O; 130 interrupted.";

/// Quality-check training samples: score, filter, report, and gate pipelines by exit code.
///
/// Reads samples JSONL (or a JSON array, MTN Sails' format) in any of the formats of docs/formats.md,
/// runs the checks on every sample, prints a report with a score (valid / total) and a verdict, and exits
/// 1 when the score is below --min-score. With --filter or -o it writes the kept records unchanged.
#[derive(Debug, Parser)]
#[command(name = "banter-validate", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Sample files (JSONL or a JSON array); `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<String>,

    /// Default checks: chat (MTN's checks) or web (Gopher rules for scraped pages).
    #[arg(long, value_enum, default_value_t = Profile::Chat, help_heading = "Checks")]
    pub profile: Profile,
    /// Turn checks off (comma-separated ids).
    #[arg(long, value_name = "IDS", value_delimiter = ',', help_heading = "Checks")]
    pub disable: Vec<String>,
    /// Report these checks but keep the samples (comma-separated ids).
    #[arg(long, value_name = "IDS", value_delimiter = ',', help_heading = "Checks")]
    pub warn: Vec<String>,
    /// Reject samples failing these checks (comma-separated ids; e.g. pii).
    #[arg(long, value_name = "IDS", value_delimiter = ',', help_heading = "Checks")]
    pub reject: Vec<String>,
    /// too-short: minimum words (characters for scripts written without spaces).
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Checks")]
    pub min_words: usize,
    /// repetitive: highest repetition score kept.
    #[arg(long, value_name = "F", default_value_t = 0.3, help_heading = "Checks")]
    pub max_repetition: f64,
    /// gibberish: lowest share of letters (any script) among non-space characters.
    #[arg(long, value_name = "F", default_value_t = 0.3, help_heading = "Checks")]
    pub min_letter_ratio: f64,
    /// gibberish: longest run of one repeated character kept.
    #[arg(long, value_name = "N", default_value_t = 20, help_heading = "Checks")]
    pub max_char_run: usize,
    /// echo: highest share of the input's distinct words the output may repeat.
    #[arg(long, value_name = "F", default_value_t = 0.6, help_heading = "Checks")]
    pub max_echo_overlap: f64,
    /// incomplete: languages whose rules run (en, fa); `none` turns the check off.
    #[arg(long, value_name = "LANGS", value_delimiter = ',', default_value = "en,fa", help_heading = "Checks")]
    pub incomplete_langs: Vec<String>,
    /// Also reject near-duplicates (MinHash over character 5-grams, ≈0.72 Jaccard).
    #[arg(long, help_heading = "Checks")]
    pub near_dup: bool,

    /// Exit 1 when the score (valid / total) is below this.
    #[arg(long, value_name = "F", default_value_t = 0.5, help_heading = "Gate")]
    pub min_score: f64,
    /// Verdict GOOD at or above this score.
    #[arg(long, value_name = "F", default_value_t = 0.7, help_heading = "Gate")]
    pub good: f64,
    /// Verdict ACCEPTABLE at or above this score (CRITICAL below).
    #[arg(long, value_name = "F", default_value_t = 0.5, help_heading = "Gate")]
    pub acceptable: f64,
    /// Count up to N malformed lines as rejected samples instead of failing with exit 3.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Gate")]
    pub max_errors: u64,

    /// Write the kept records to <stem>_filtered.<ext> beside each input (or to -o).
    #[arg(long, help_heading = "Output")]
    pub filter: bool,
    /// Write the kept records here (implies --filter; `-` is stdout).
    #[arg(short = 'o', long, value_name = "PATH", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Write each rejected record with its reasons here (JSONL).
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub rejects: Option<PathBuf>,
    /// Replace emails, phones, IPs and card numbers with [EMAIL], [PHONE], … in the kept output.
    #[arg(long, help_heading = "Output")]
    pub redact_pii: bool,
    /// How many of the worst records the report shows.
    #[arg(long, value_name = "N", default_value_t = 5, help_heading = "Output")]
    pub examples: usize,

    /// Only shard I of N (0-based): the records starting in the I-th of N equal byte ranges of the
    /// inputs. The -o outputs of N jobs, concatenated in shard order, are the one-job output.
    #[arg(long, value_name = "I/N", help_heading = "Scale out (Slurm arrays, GNU parallel)")]
    pub shard: Option<String>,
    /// Start from a duplicate index saved by --save-dedup-index (repeatable; merged): a record is a
    /// duplicate when an earlier record of the inputs, in any shard, has its key.
    #[arg(long, value_name = "FILE", help_heading = "Scale out (Slurm arrays, GNU parallel)")]
    pub dedup_index: Vec<PathBuf>,
    /// Save this run's duplicate index (with the loaded ones) for other shards' --dedup-index.
    #[arg(long, value_name = "FILE", help_heading = "Scale out (Slurm arrays, GNU parallel)")]
    pub save_dedup_index: Option<PathBuf>,

    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", help_heading = "Performance")]
    pub threads: Option<usize>,
    /// Longest line accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, help_heading = "Performance")]
    pub max_line_bytes: usize,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn parse_ids(ids: &[String], flag: &str) -> Result<Vec<CheckId>, Error> {
    ids.iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            CheckId::parse(s.trim()).ok_or_else(|| {
                Error::usage_hint(
                    format!("{flag}: unknown check \"{s}\""),
                    format!("checks are {}", checks::ALL.map(CheckId::as_str).join(", ")),
                )
            })
        })
        .collect()
}

impl Cli {
    /// The check settings the flags ask for.
    pub fn settings(&self) -> Result<Settings, Error> {
        let mut s = Settings::new(self.profile);
        s.min_words = self.min_words;
        s.max_repetition = self.max_repetition;
        s.min_letter_ratio = self.min_letter_ratio;
        s.max_char_run = self.max_char_run.max(1);
        s.max_echo_overlap = self.max_echo_overlap;
        s.incomplete_langs = self.incomplete_langs.iter().map(|l| l.trim().to_lowercase()).collect();
        for l in &s.incomplete_langs {
            if !matches!(l.as_str(), "en" | "fa" | "none" | "") {
                return Err(Error::usage_hint(
                    format!("--incomplete-langs: no rules for \"{l}\""),
                    "rules exist for en and fa; other languages are not checked",
                ));
            }
        }
        if self.near_dup {
            s.set(CheckId::NearDuplicate, Severity::Reject);
        }
        for c in parse_ids(&self.reject, "--reject")? {
            s.set(c, Severity::Reject);
        }
        for c in parse_ids(&self.warn, "--warn")? {
            s.set(c, Severity::Warn);
        }
        for c in parse_ids(&self.disable, "--disable")? {
            s.set(c, Severity::Off);
        }
        for (name, v) in [
            ("--min-score", self.min_score),
            ("--good", self.good),
            ("--acceptable", self.acceptable),
            ("--max-repetition", self.max_repetition),
            ("--min-letter-ratio", self.min_letter_ratio),
            ("--max-echo-overlap", self.max_echo_overlap),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::usage(format!("{name} must be between 0 and 1, got {v}")));
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtered_names_follow_mtn() {
        assert_eq!(crate::filtered_name(std::path::Path::new("d/data.json")), PathBuf::from("d/data_filtered.json"));
        assert_eq!(crate::filtered_name(std::path::Path::new("x.jsonl")), PathBuf::from("x_filtered.jsonl"));
        assert_eq!(crate::filtered_name(std::path::Path::new("noext")), PathBuf::from("noext_filtered"));
    }

    #[test]
    fn flags_build_settings() {
        let cli =
            Cli::parse_from(["banter-validate", "x", "--disable", "echo,too-short", "--reject", "pii", "--near-dup"]);
        let s = cli.settings().unwrap();
        assert!(!s.on(CheckId::Echo) && !s.on(CheckId::TooShort));
        assert_eq!(s.severity(CheckId::Pii), Severity::Reject);
        assert_eq!(s.severity(CheckId::NearDuplicate), Severity::Reject);
        let cli = Cli::parse_from(["banter-validate", "x", "--disable", "nope"]);
        assert!(cli.settings().unwrap_err().to_string().contains("unknown check \"nope\""));
        let cli = Cli::parse_from(["banter-validate", "x", "--min-score", "1.5"]);
        assert!(cli.settings().is_err());
    }
}
