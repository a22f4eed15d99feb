//! `banter-scrape`: fetch web pages and random Wikipedia articles politely, extract their main text, and
//! turn docs into training samples.

pub use banter_net::address;
pub mod extract;
mod extract_cmd;
pub mod fetch;
mod pages;
pub mod samples;
mod to_samples;
mod wikipedia;

pub use extract_cmd::ExtractArgs;
pub use pages::{CrawlArgs, FetchArgs};
pub use to_samples::{Mode, SamplesArgs};
pub use wikipedia::WikiArgs;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use banter_core::cli::{self, CommonArgs};
use banter_core::jsonl::JsonlWriter;
use banter_core::records::Doc;
use banter_core::{Error, Exit, interrupt};

use fetch::Failure;

const EXAMPLES: &str = "\
Examples:
  banter-scrape fetch https://example.org/a https://example.org/b -o docs.jsonl
  banter-scrape crawl https://example.org/docs --max-pages 50 --max-depth 2 --include '/docs/' -o docs.jsonl
  banter-scrape wikipedia --random 100 --lang fa -o wiki.jsonl
  banter-scrape extract saved-pages/ -o docs.jsonl      # a folder of saved .html (and .txt) files
  banter-scrape to-samples docs.jsonl --mode pairs --seed 42 | banter-validate - -o pairs.jsonl
  banter-scrape to-samples docs.jsonl --chunk-chars 1500 --system 'You are Oodi, a Persian assistant.'

Exit codes: 0 every page gave text; 1 some pages failed or gave no text (the rest is written; --allow-partial
makes this 0); 2 usage; 3 bad docs input; 4 no page gave text; 130 interrupted (what was fetched is kept).";

/// Fetch web pages and random Wikipedia articles, extract clean text, turn docs into samples.
#[derive(Debug, Parser)]
#[command(name = "banter-scrape", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch pages: one doc per page.
    Fetch(FetchArgs),
    /// Crawl a site breadth-first from a start URL.
    Crawl(CrawlArgs),
    /// Extract the main text of saved HTML pages (files, folders, or `-`); `.txt` files are read as docs.
    Extract(ExtractArgs),
    /// Random Wikipedia articles through the MediaWiki API.
    Wikipedia(WikiArgs),
    /// Docs JSONL → samples JSONL (text chunks or prompt/answer pairs).
    ToSamples(SamplesArgs),
}

/// Politeness and limits shared by the fetching subcommands.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Politeness and limits")]
pub struct NetArgs {
    /// Seconds between two requests to one host (robots.txt crawl-delay raises it).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub delay: f64,
    /// Request timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// Largest page read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 20 << 20)]
    pub max_bytes: u64,
    /// Retries on 429/503 (waiting as Retry-After says).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// Longest wait honoured from Retry-After or crawl-delay, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub max_wait: f64,
    /// Allow private, loopback and link-local addresses (refused by default).
    #[arg(long)]
    pub allow_private: bool,
    /// Do not read robots.txt (only for sites you own).
    #[arg(long)]
    pub ignore_robots: bool,
    /// Write docs here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Exit 0 when some pages fail or give no text (exit 1 by default; the rest is written either way).
    #[arg(long)]
    pub allow_partial: bool,
}

impl NetArgs {
    pub(crate) fn settings(&self) -> Result<fetch::Settings, Error> {
        for (name, v) in [("--delay", self.delay), ("--timeout", self.timeout), ("--max-wait", self.max_wait)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::usage(format!("{name} must be a number of seconds ≥ 0, got {v}")));
            }
        }
        Ok(fetch::Settings {
            delay: Duration::from_secs_f64(self.delay),
            timeout: Duration::from_secs_f64(self.timeout.max(0.1)),
            max_bytes: self.max_bytes,
            retries: self.retries,
            max_wait: Duration::from_secs_f64(self.max_wait),
            allow_private: self.allow_private,
            robots: !self.ignore_robots,
        })
    }
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    match &cli.command {
        Command::Fetch(a) => pages::fetch(a, &cli.common),
        Command::Crawl(a) => pages::crawl(a, &cli.common),
        Command::Extract(a) => extract_cmd::run(a, &cli.common),
        Command::Wikipedia(a) => wikipedia::run(a, &cli.common),
        Command::ToSamples(a) => to_samples::run(a, &cli.common),
    }
}

/// Collects docs and failures, writes docs as they come, and reports.
pub(crate) struct Collector {
    writer: JsonlWriter,
    fetched: u64,
    /// Pages the user asked for (a URL given, a crawl's start) that failed: exit 1 unless --allow-partial.
    failures: Vec<Failure>,
    /// Pages a crawl found by following links that failed (404s, no text): reported and counted only.
    broken: Vec<Failure>,
    /// Pages robots.txt disallows: obeyed, reported and counted, never a failure.
    robots: Vec<Failure>,
    started: Instant,
    allow_partial: bool,
    /// A `--shard` with no URL in it: an empty output is its whole, correct result.
    pub(crate) empty_shard: bool,
}

/// The reason recorded for a page in which no extractor found text.
pub(crate) const NO_TEXT: &str = "no main text found";

impl Collector {
    pub(crate) fn new(net: &NetArgs, common: &CommonArgs) -> anyhow::Result<Self> {
        Self::to(net.output.as_deref(), net.allow_partial, common)
    }

    /// A collector writing to `output` (stdout when `None`).
    pub(crate) fn to(
        output: Option<&std::path::Path>,
        allow_partial: bool,
        common: &CommonArgs,
    ) -> anyhow::Result<Self> {
        common.require_data_file(output, "docs")?;
        interrupt::set_cooperative(true);
        Ok(Collector {
            writer: JsonlWriter::create(output)?,
            fetched: 0,
            failures: Vec::new(),
            broken: Vec::new(),
            robots: Vec::new(),
            started: Instant::now(),
            allow_partial,
            empty_shard: false,
        })
    }

    /// Writes a doc read from a file (`extract`).
    pub(crate) fn doc(&mut self, doc: &Doc) -> anyhow::Result<()> {
        self.writer.write(doc)?;
        self.fetched += 1;
        Ok(())
    }

    /// Records a page that was not taken: robots.txt's refusals apart, a failure when the user asked for the
    /// page (`explicit`), a broken link when a crawl found it.
    pub(crate) fn failed(&mut self, f: Failure, explicit: bool) {
        if f.robots {
            self.robots.push(f);
        } else if explicit {
            self.failures.push(f);
        } else {
            self.broken.push(f);
        }
    }

    fn page(&mut self, page: &fetch::Page, ex: extract::Extracted, explicit: bool) -> anyhow::Result<bool> {
        if ex.text.trim().is_empty() {
            let f =
                Failure { url: page.url.to_string(), status: Some(page.status), reason: NO_TEXT.into(), robots: false };
            self.failed(f, explicit);
            return Ok(false);
        }
        let doc = Doc {
            url: Some(page.url.to_string()),
            title: ex.title,
            text: ex.text,
            lang: ex.lang,
            fetched_at: Some(fetch::now_rfc3339()),
            status: Some(u64::from(page.status)),
            fields: Default::default(),
        };
        self.writer.write(&doc)?;
        self.fetched += 1;
        Ok(true)
    }

    pub(crate) fn finish(self, tool_cmd: &str, common: &CommonArgs) -> anyhow::Result<Exit> {
        let interrupted = interrupt::interrupted();
        if self.fetched > 0 || self.empty_shard {
            self.writer.commit()?;
        } else {
            // Nothing fetched: the output is not touched (an old file there stays as it was).
            drop(self.writer);
        }
        let code = if interrupted {
            Exit::Interrupted
        } else if self.fetched == 0 && !self.empty_shard {
            Exit::Io
        } else if !self.failures.is_empty() && !self.allow_partial {
            Exit::GateFailed
        } else {
            Exit::Success
        };
        let secs = self.started.elapsed().as_secs_f64();
        // Failures counted by reason: HTTP statuses as `HTTP 404`, everything else by its message.
        let mut by_reason = std::collections::BTreeMap::<String, u64>::new();
        for f in &self.failures {
            let key = match f.status {
                Some(s) if f.reason != NO_TEXT && s >= 400 => format!("HTTP {s}"),
                _ => f.reason.clone(),
            };
            *by_reason.entry(key).or_default() += 1;
        }
        if common.json {
            let list = |v: &[Failure]| -> Vec<serde_json::Value> {
                v.iter().map(|f| json!({"url": f.url, "status": f.status, "reason": f.reason})).collect()
            };
            cli::print_report(&cli::report(
                "banter-scrape",
                code,
                json!({"command": tool_cmd,
                       "counts": {"fetched": self.fetched, "failed": self.failures.len(),
                                  "broken_links": self.broken.len(), "skipped_by_robots": self.robots.len()},
                       "failed_by_reason": by_reason, "failures": list(&self.failures),
                       "broken_links": list(&self.broken), "skipped_by_robots": list(&self.robots),
                       "seconds": (secs * 1000.0).round() / 1000.0}),
            ))?;
        } else {
            for (what, v) in
                [("failed", &self.failures), ("broken link", &self.broken), ("skipped (robots.txt)", &self.robots)]
            {
                for f in v {
                    common.say(format!(
                        "banter-scrape: {what}: {}{}: {}",
                        f.url,
                        f.status.map(|s| format!(" ({s})")).unwrap_or_default(),
                        f.reason
                    ));
                }
            }
            if !self.broken.is_empty() || !self.robots.is_empty() {
                common.say(format!(
                    "banter-scrape: {} broken link(s) and {} page(s) robots.txt disallows were left out (not failures)",
                    self.broken.len(),
                    self.robots.len()
                ));
            }
            common.say(format!(
                "banter-scrape: {} page(s) {}, {} failed, in {:.1} s{}",
                self.fetched,
                if tool_cmd == "extract" { "extracted" } else { "fetched" },
                self.failures.len(),
                secs,
                if interrupted { " (interrupted: what was fetched is kept)" } else { "" }
            ));
        }
        if code == Exit::Io {
            let what = if tool_cmd == "extract" { "no page gave text" } else { "no page could be fetched" };
            banter_core::eline!("banter-scrape: error: {what}");
        } else if code == Exit::GateFailed {
            let reasons: Vec<String> = by_reason.iter().map(|(r, n)| format!("{n} × {r}")).collect();
            banter_core::eline!(
                "banter-scrape: error: {} of {} page(s) failed ({}); the rest is written (--allow-partial: exit 0)",
                self.failures.len(),
                self.failures.len() as u64 + self.fetched,
                reasons.join(", ")
            );
        }
        Ok(code)
    }
}
