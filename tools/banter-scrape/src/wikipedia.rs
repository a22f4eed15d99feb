//! `wikipedia --random N`: random articles through the MediaWiki API, within the limits it documents.
//!
//! TextExtracts returns one full-article extract per request (`exlimit` applies only to intro-only
//! extracts, up to 20), so the default is two steps: `list=random` names up to 500 random articles per
//! request, then each article's plain-text extract is one request (`pageids=ID`). `--intro-only` asks for
//! the lead sections instead, 20 per request. Articles under `--min-chars` are skipped and replaced by
//! more random ones until N are written, or the API stops giving new ones.

use std::collections::HashSet;

use clap::Args;
use serde_json::Value;
use url::Url;

use banter_core::cli::CommonArgs;
use banter_core::records::Doc;
use banter_core::{Error, Exit, interrupt, progress};

use crate::fetch::{self, Fetcher};
use crate::{Collector, NetArgs};

/// The API's documented maxima: `rnlimit` (non-bot users) and `exlimit` for intro-only extracts.
const RANDOM_MAX: usize = 500;
const INTRO_MAX: usize = 20;

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
    /// Only each article's lead section (20 articles per request instead of one).
    #[arg(long)]
    pub intro_only: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// One run's state.
struct Wiki<'a> {
    a: &'a WikiArgs,
    base: Url,
    fetcher: Fetcher,
    col: Collector,
    seen: HashSet<u64>,
    skipped_short: u64,
}

/// Runs `wikipedia`.
pub(crate) fn run(a: &WikiArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if a.random == 0 {
        return Err(Error::usage("--random must be at least 1").into());
    }
    let endpoint = a.endpoint.clone().unwrap_or_else(|| format!("https://{}.wikipedia.org/w/api.php", a.lang));
    let base = Url::parse(&endpoint).map_err(|e| Error::usage(format!("--endpoint: not a URL: {e}")))?;
    let mut w = Wiki {
        a,
        base,
        fetcher: Fetcher::new(a.net.settings()?)?,
        col: Collector::new(&a.net, common)?,
        seen: HashSet::new(),
        skipped_short: 0,
    };
    let bar = progress::bar(Some(a.random as u64), "wikipedia", common);
    // Each round asks for what is missing plus a margin for stubs; a round that brings nothing new (or
    // only failures) counts against the budget, so a dead or empty API ends the run.
    let mut barren = 0;
    while w.done() < a.random && barren < 5 && !interrupt::interrupted() {
        let before = (w.done(), w.skipped_short);
        let ids = w.random_ids()?;
        for chunk in ids.chunks(if a.intro_only { INTRO_MAX } else { 1 }) {
            if w.done() >= a.random || interrupt::interrupted() {
                break;
            }
            w.extracts(chunk)?;
            bar.set_position(w.done() as u64);
        }
        barren = if (w.done(), w.skipped_short) == before { barren + 1 } else { 0 };
    }
    bar.finish_and_clear();
    if w.skipped_short > 0 {
        common.say(format!("banter-scrape: skipped {} article(s) under {} characters", w.skipped_short, a.min_chars));
    }
    if w.done() < a.random && !interrupt::interrupted() {
        banter_core::eline!(
            "banter-scrape: warning: {} of {} articles: the API gave no more new articles of at least {} characters",
            w.done(),
            a.random,
            a.min_chars
        );
    }
    w.col.finish("wikipedia", common)
}

impl Wiki<'_> {
    fn done(&self) -> usize {
        self.col.fetched as usize
    }

    fn query(&self, pairs: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("action", "query").append_pair("format", "json").append_pair("formatversion", "2");
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Page ids of random articles not seen yet (`list=random`).
    fn random_ids(&mut self) -> anyhow::Result<Vec<u64>> {
        let missing = self.a.random - self.done();
        let want = (missing + missing / 2 + 5).min(RANDOM_MAX).to_string();
        let url = self.query(&[("list", "random"), ("rnnamespace", "0"), ("rnlimit", &want)]);
        let v = match self.fetcher.get_json(&url) {
            Ok(v) => v,
            Err(f) => {
                self.col.failures.push(f);
                return Ok(Vec::new());
            }
        };
        api_error(&v, &url)?;
        let ids = v["query"]["random"].as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(ids.iter().filter_map(|r| r["id"].as_u64()).filter(|id| self.seen.insert(*id)).collect())
    }

    /// Fetches the extracts of `ids` (one page, or up to 20 intros) and writes the long enough ones.
    fn extracts(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join("|");
        let limit = ids.len().to_string();
        let mut pairs = vec![
            ("prop", "extracts|info"),
            ("inprop", "url"),
            ("explaintext", "1"),
            ("pageids", list.as_str()),
            ("exlimit", limit.as_str()),
        ];
        if self.a.intro_only {
            pairs.push(("exintro", "1"));
        }
        let url = self.query(&pairs);
        let v = match self.fetcher.get_json(&url) {
            Ok(v) => v,
            Err(f) => {
                self.col.failures.push(f);
                return Ok(());
            }
        };
        api_error(&v, &url)?;
        for p in v["query"]["pages"].as_array().map(Vec::as_slice).unwrap_or_default() {
            // A page the API sent without its extract (over exlimit, or missing) is not a stub: skip quietly.
            let Some(extract) = p["extract"].as_str() else { continue };
            self.page(p, extract.trim())?;
        }
        Ok(())
    }

    fn page(&mut self, p: &Value, text: &str) -> anyhow::Result<()> {
        let a = self.a;
        if self.done() >= a.random {
            return Ok(());
        }
        if text.chars().count() < a.min_chars {
            self.skipped_short += 1;
            return Ok(());
        }
        let text = if a.max_chars > 0 { text.chars().take(a.max_chars).collect() } else { text.to_string() };
        let title = p["title"].as_str().unwrap_or("").to_string();
        let url = p["fullurl"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("https://{}.wikipedia.org/wiki/{}", a.lang, title.replace(' ', "_")));
        let doc = Doc {
            url: Some(url),
            title: Some(title),
            text,
            lang: Some(a.lang.clone()),
            fetched_at: Some(fetch::now_rfc3339()),
            status: Some(200),
            fields: Default::default(),
        };
        self.col.writer.write(&doc)?;
        self.col.fetched += 1;
        Ok(())
    }
}

/// An API-level error (`{"error": {"code", "info"}}`, HTTP 200) ends the run with its message.
fn api_error(v: &Value, url: &Url) -> anyhow::Result<()> {
    match v.get("error") {
        Some(e) => Err(banter_core::exit::Coded::new(
            Exit::Io,
            format!(
                "{url}: the MediaWiki API refused the request: {} ({})",
                e["info"].as_str().unwrap_or("no details"),
                e["code"].as_str().unwrap_or("?")
            ),
        )
        .into()),
        None => Ok(()),
    }
}
