//! `banter-scrape`: fetch web pages and random Wikipedia articles politely, extract their main text, and
//! turn docs into training samples.

pub mod address;
pub mod extract;
pub mod fetch;
pub mod samples;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use regex::Regex;
use serde_json::json;
use url::Url;

use banter_core::cli::{self, CommonArgs};
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, JsonlWriter, ReadOptions, Source};
use banter_core::records::Doc;
use banter_core::{Error, Exit, interrupt, progress};

use fetch::{Failure, Fetcher};

const EXAMPLES: &str = "\
Examples:
  banter-scrape fetch https://example.org/a https://example.org/b -o docs.jsonl
  banter-scrape crawl https://example.org/docs --max-pages 50 --max-depth 2 --include '/docs/' -o docs.jsonl
  banter-scrape wikipedia --random 100 --lang fa -o wiki.jsonl
  banter-scrape to-samples docs.jsonl --mode pairs --seed 42 | banter-validate - -o pairs.jsonl
  banter-scrape to-samples docs.jsonl --chunk-chars 1500 --system 'You are Oodi, a Persian assistant.'

Exit codes: 0 at least one page fetched; 2 usage; 3 bad docs input; 4 nothing could be fetched; 130 interrupted
(what was fetched is kept).";

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
}

impl NetArgs {
    fn settings(&self) -> Result<fetch::Settings, Error> {
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

/// `fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Pages to fetch.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// Also fetch the URLs in this file (one per line, `#` comments); `-` is stdin.
    #[arg(long, value_name = "FILE")]
    pub urls_file: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
}

/// `crawl`.
#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// Where to start.
    #[arg(value_name = "URL")]
    pub start: String,
    /// Stop after this many pages.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_pages: usize,
    /// Follow links at most this deep (the start page is depth 0).
    #[arg(long, value_name = "D", default_value_t = 3)]
    pub max_depth: usize,
    /// Only follow URLs matching this regex (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Never follow URLs matching this regex (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Follow links to other hosts too (same host only by default).
    #[arg(long)]
    pub any_domain: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// `wikipedia`.
#[derive(Debug, Args)]
pub struct WikiArgs {
    /// How many articles.
    #[arg(long, value_name = "N")]
    pub random: usize,
    /// Wikipedia language edition.
    #[arg(long, value_name = "LANG", default_value = "en")]
    pub lang: String,
    /// MediaWiki API endpoint (default https://LANG.wikipedia.org/w/api.php).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Skip articles shorter than this many characters.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub min_chars: usize,
    /// Keep at most this many characters of each article (0 = all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_chars: usize,
    #[command(flatten)]
    pub net: NetArgs,
}

/// What `to-samples` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `{"text"}` chunks.
    Text,
    /// `{"input","output"}` pairs from prompt templates (MTN Sails).
    Pairs,
}

/// `to-samples`.
#[derive(Debug, Args)]
pub struct SamplesArgs {
    /// Docs JSONL (from fetch/crawl/wikipedia); `-` reads stdin.
    #[arg(value_name = "DOCS")]
    pub input: String,
    /// Chunks of text, or prompt/answer pairs.
    #[arg(long, value_enum, default_value_t = Mode::Text)]
    pub mode: Mode,
    /// text: chunk size in characters.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub chunk_chars: usize,
    /// text: characters each chunk repeats from the previous one.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub overlap: usize,
    /// Skip docs whose cleaned text is shorter than this.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub min_chars: usize,
    /// pairs: prompt templates, one per line, with {title} {topic} {url} {content_type} {category} {lang}.
    #[arg(long, value_name = "FILE")]
    pub templates: Option<PathBuf>,
    /// pairs: always use the first template.
    #[arg(long)]
    pub no_randomize: bool,
    /// pairs: keep at most this many characters of the answer (0 = the whole page, as MTN).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_output_chars: usize,
    /// Template choice is deterministic for a seed.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Add a system turn (a persona) to every sample.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Write samples here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    match &cli.command {
        Command::Fetch(a) => run_fetch(a, &cli.common),
        Command::Crawl(a) => run_crawl(a, &cli.common),
        Command::Wikipedia(a) => run_wikipedia(a, &cli.common),
        Command::ToSamples(a) => run_samples(a, &cli.common),
    }
}

/// Collects docs and failures, writes docs as they come, and reports.
struct Collector {
    writer: JsonlWriter,
    fetched: u64,
    failures: Vec<Failure>,
    started: Instant,
}

impl Collector {
    fn new(net: &NetArgs, common: &CommonArgs) -> anyhow::Result<Self> {
        common.require_data_file(net.output.as_deref(), "docs")?;
        interrupt::set_cooperative(true);
        Ok(Collector {
            writer: JsonlWriter::create(net.output.as_deref())?,
            fetched: 0,
            failures: Vec::new(),
            started: Instant::now(),
        })
    }

    fn page(&mut self, page: &fetch::Page, ex: extract::Extracted) -> anyhow::Result<bool> {
        if ex.text.trim().is_empty() {
            self.failures.push(Failure {
                url: page.url.to_string(),
                status: Some(page.status),
                reason: "no main text found".into(),
            });
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

    fn finish(self, tool_cmd: &str, common: &CommonArgs) -> anyhow::Result<Exit> {
        let interrupted = interrupt::interrupted();
        if self.fetched > 0 {
            self.writer.commit()?;
        } else {
            // Nothing fetched: the output is not touched (an old file there stays as it was).
            drop(self.writer);
        }
        let code = if interrupted {
            Exit::Interrupted
        } else if self.fetched == 0 {
            Exit::Io
        } else {
            Exit::Success
        };
        let secs = self.started.elapsed().as_secs_f64();
        if common.json {
            let failures: Vec<_> =
                self.failures.iter().map(|f| json!({"url": f.url, "status": f.status, "reason": f.reason})).collect();
            cli::print_report(&cli::report(
                "banter-scrape",
                code,
                json!({"command": tool_cmd, "counts": {"fetched": self.fetched, "failed": self.failures.len()},
                       "failures": failures, "seconds": (secs * 1000.0).round() / 1000.0}),
            ))?;
        } else {
            for f in &self.failures {
                common.say(format!(
                    "banter-scrape: failed: {}{}: {}",
                    f.url,
                    f.status.map(|s| format!(" ({s})")).unwrap_or_default(),
                    f.reason
                ));
            }
            common.say(format!(
                "banter-scrape: {} page(s) fetched, {} failed, in {:.1} s{}",
                self.fetched,
                self.failures.len(),
                secs,
                if interrupted { " (interrupted: what was fetched is kept)" } else { "" }
            ));
        }
        if code == Exit::Io {
            eprintln!("banter-scrape: error: no page could be fetched");
        }
        Ok(code)
    }
}

fn run_fetch(a: &FetchArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let mut urls = a.urls.clone();
    if let Some(f) = &a.urls_file {
        let text = if f == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| Error::io("-", e))?
        } else {
            banter_core::inputs::register(std::path::Path::new(f));
            std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?
        };
        urls.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string));
    }
    if urls.is_empty() {
        return Err(Error::usage_hint("no URL to fetch", "give URLs as arguments or --urls-file FILE").into());
    }
    let mut fetcher = Fetcher::new(a.net.settings()?)?;
    let mut col = Collector::new(&a.net, common)?;
    let bar = progress::bar(Some(urls.len() as u64), "fetching", common);
    for u in &urls {
        if interrupt::interrupted() {
            break;
        }
        match fetcher.fetch(u) {
            Ok(page) => {
                let ex = extract::extract(&page.html);
                col.page(&page, ex)?;
            }
            Err(f) => col.failures.push(f),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    col.finish("fetch", common)
}

fn normalize(u: &Url) -> String {
    let mut u = u.clone();
    u.set_fragment(None);
    u.to_string()
}

fn run_crawl(a: &CrawlArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let compile = |v: &[String], flag: &str| -> Result<Vec<Regex>, Error> {
        v.iter().map(|r| Regex::new(r).map_err(|e| Error::usage(format!("{flag}: invalid regex: {e}")))).collect()
    };
    let include = compile(&a.include, "--include")?;
    let exclude = compile(&a.exclude, "--exclude")?;
    let start = Url::parse(&a.start).map_err(|e| Error::usage(format!("not a URL: {}: {e}", a.start)))?;
    let host = start.host_str().unwrap_or("").to_string();
    let mut fetcher = Fetcher::new(a.net.settings()?)?;
    let mut col = Collector::new(&a.net, common)?;
    let mut queue: VecDeque<(Url, usize)> = VecDeque::from([(start.clone(), 0)]);
    let mut seen: HashSet<String> = HashSet::from([normalize(&start)]);
    let bar = progress::bar(Some(a.max_pages as u64), "crawling", common);
    let mut attempts = 0usize;
    while let Some((url, depth)) = queue.pop_front() {
        if interrupt::interrupted() || col.fetched as usize >= a.max_pages || attempts >= a.max_pages * 3 {
            break;
        }
        attempts += 1;
        match fetcher.fetch(url.as_str()) {
            Ok(page) => {
                let ex = extract::extract(&page.html);
                let links = ex.links.clone();
                if col.page(&page, ex)? {
                    bar.inc(1);
                }
                if depth < a.max_depth {
                    for href in links {
                        let Ok(mut next) = page.url.join(&href) else { continue };
                        next.set_fragment(None);
                        if !matches!(next.scheme(), "http" | "https") {
                            continue;
                        }
                        if !a.any_domain && next.host_str() != Some(host.as_str()) {
                            continue;
                        }
                        let s = next.to_string();
                        if !include.is_empty() && !include.iter().any(|r| r.is_match(&s)) {
                            continue;
                        }
                        if exclude.iter().any(|r| r.is_match(&s)) {
                            continue;
                        }
                        if seen.insert(s) {
                            queue.push_back((next, depth + 1));
                        }
                    }
                }
            }
            Err(f) => col.failures.push(f),
        }
    }
    bar.finish_and_clear();
    col.finish("crawl", common)
}

fn run_wikipedia(a: &WikiArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let endpoint = a.endpoint.clone().unwrap_or_else(|| format!("https://{}.wikipedia.org/w/api.php", a.lang));
    let base = Url::parse(&endpoint).map_err(|e| Error::usage(format!("--endpoint: not a URL: {e}")))?;
    let mut fetcher = Fetcher::new(a.net.settings()?)?;
    let mut col = Collector::new(&a.net, common)?;
    let bar = progress::bar(Some(a.random as u64), "wikipedia", common);
    let mut skipped_short = 0u64;
    let mut seen = HashSet::new();
    let mut rounds = 0;
    while (col.fetched as usize) < a.random && rounds < a.random / 5 + 10 && !interrupt::interrupted() {
        rounds += 1;
        let want = (a.random - col.fetched as usize).clamp(1, 20);
        let mut url = base.clone();
        url.query_pairs_mut()
            .append_pair("action", "query")
            .append_pair("format", "json")
            .append_pair("formatversion", "2")
            .append_pair("generator", "random")
            .append_pair("grnnamespace", "0")
            .append_pair("grnlimit", &want.to_string())
            .append_pair("prop", "extracts|info")
            .append_pair("inprop", "url")
            .append_pair("explaintext", "1")
            .append_pair("exlimit", "max");
        let v = match fetcher.get_json(&url) {
            Ok(v) => v,
            Err(f) => {
                col.failures.push(f);
                continue;
            }
        };
        let pages = v["query"]["pages"].as_array().cloned().unwrap_or_default();
        for p in pages {
            let title = p["title"].as_str().unwrap_or("").to_string();
            let mut text = p["extract"].as_str().unwrap_or("").trim().to_string();
            if !seen.insert(title.clone()) {
                continue;
            }
            if text.chars().count() < a.min_chars {
                skipped_short += 1;
                continue;
            }
            if a.max_chars > 0 {
                text = text.chars().take(a.max_chars).collect();
            }
            let page_url = p["fullurl"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("https://{}.wikipedia.org/wiki/{}", a.lang, title.replace(' ', "_")));
            let doc = Doc {
                url: Some(page_url),
                title: Some(title),
                text,
                lang: Some(a.lang.clone()),
                fetched_at: Some(fetch::now_rfc3339()),
                status: Some(200),
                fields: Default::default(),
            };
            if (col.fetched as usize) < a.random {
                col.writer.write(&doc)?;
                col.fetched += 1;
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    if skipped_short > 0 {
        common.say(format!("banter-scrape: skipped {skipped_short} article(s) under {} characters", a.min_chars));
    }
    col.finish("wikipedia", common)
}

fn run_samples(a: &SamplesArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if a.chunk_chars < 50 {
        return Err(Error::usage("--chunk-chars must be at least 50").into());
    }
    if a.overlap >= a.chunk_chars / 2 {
        return Err(Error::usage("--overlap must be under half of --chunk-chars").into());
    }
    let templates: Vec<String> = match &a.templates {
        None => samples::TEMPLATES.iter().map(|s| s.to_string()).collect(),
        Some(p) => std::fs::read_to_string({
            banter_core::inputs::register(p);
            p
        })
        .map_err(|e| Error::io(p.display(), e))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect(),
    };
    if templates.is_empty() {
        return Err(Error::usage("--templates: the file holds no template").into());
    }
    let probe = Doc { text: "x".into(), ..Default::default() };
    for t in &templates {
        samples::fill(t, &probe, "x").map_err(Error::usage)?;
    }
    common.require_data_file(a.output.as_deref(), "samples")?;
    let mut rng = samples::SplitMix::new(a.seed);
    let reader = JsonlReader::open(&Source::parse(&a.input), ReadOptions::default())?;
    let mut w = JsonlWriter::create(a.output.as_deref())?;
    let (mut docs, mut skipped, mut written) = (0u64, 0u64, 0u64);
    // Every bad line is reported before anything is written.
    for doc in banter_core::jsonl::read_all::<Doc>(reader, "banter-scrape")? {
        docs += 1;
        let text = samples::clean(&doc.text);
        if text.chars().count() < a.min_chars {
            skipped += 1;
            continue;
        }
        let mut out = Vec::new();
        match a.mode {
            Mode::Text => {
                for c in samples::chunks(&text, a.chunk_chars, a.overlap) {
                    out.push(samples::with_system(a.system.as_deref(), None, c));
                }
            }
            Mode::Pairs => {
                let t = if a.no_randomize { &templates[0] } else { &templates[rng.below(templates.len())] };
                let prompt = samples::fill(t, &doc, &text).map_err(Error::usage)?;
                let answer =
                    if a.max_output_chars > 0 { text.chars().take(a.max_output_chars).collect() } else { text.clone() };
                out.push(samples::with_system(a.system.as_deref(), Some(prompt), answer));
            }
        }
        for mut s in out {
            if let Some(u) = &doc.url {
                s.fields.insert("source", json!(u));
            }
            w.write(&s)?;
            written += 1;
        }
    }
    w.commit()?;
    if common.json {
        cli::print_report(&cli::report(
            "banter-scrape",
            Exit::Success,
            json!({"command": "to-samples", "counts": {"docs": docs, "skipped_short": skipped, "samples": written}}),
        ))?;
    } else {
        common.say(format!(
            "banter-scrape: {written} sample(s) from {docs} doc(s) ({skipped} under --min-chars skipped)"
        ));
    }
    if docs == 0 {
        return Err(Coded::new(Exit::BadInput, format!("{}: no docs in the input", a.input)).into());
    }
    Ok(Exit::Success)
}
