//! `fetch` and `crawl`.

use std::collections::{HashSet, VecDeque};

use clap::Args;
use regex::Regex;
use url::Url;

use banter_core::cli::CommonArgs;
use banter_core::{Error, Exit, interrupt, progress};

use crate::extract;
use crate::fetch::Fetcher;
use crate::{Collector, NetArgs};

/// `fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Pages to fetch.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// Also fetch the URLs in this file (one per line, `#` comments); `-` is stdin.
    #[arg(long, value_name = "FILE")]
    pub urls_file: Option<String>,
    /// Only shard I of N (0-based) of the URL list: its I-th contiguous run of URLs. N jobs' outputs,
    /// concatenated in shard order, are the one-job output.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
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

/// Runs `fetch`.
pub(crate) fn fetch(a: &FetchArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
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
    if let Some(spec) = &a.shard {
        let shard = banter_core::shard::Shard::parse(spec).map_err(Error::usage)?;
        let (lo, hi) = shard.range(urls.len() as u64);
        urls = urls[lo as usize..hi as usize].to_vec();
    }
    let mut fetcher = Fetcher::new(a.net.settings()?)?;
    let mut col = Collector::new(&a.net, common)?;
    col.empty_shard = a.shard.is_some() && urls.is_empty();
    let bar = progress::bar(Some(urls.len() as u64), "fetching", common);
    for u in &urls {
        if interrupt::interrupted() {
            break;
        }
        match fetcher.fetch(u) {
            Ok(page) => {
                let ex = extract::extract(&page.html, Some(page.url.as_str()));
                col.page(&page, ex, true)?;
            }
            Err(f) => col.failed(f, true),
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

/// Runs `crawl`.
pub(crate) fn crawl(a: &CrawlArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
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
                let ex = extract::extract(&page.html, Some(page.url.as_str()));
                let links = ex.links.clone();
                if col.page(&page, ex, depth == 0)? {
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
            // The start page is the one the user asked for; the others were found by following links.
            Err(f) => col.failed(f, depth == 0),
        }
    }
    bar.finish_and_clear();
    col.finish("crawl", common)
}
