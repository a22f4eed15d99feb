//! Polite HTTP: robots.txt (RFC 9309, via `texting_robots`) and crawl-delay, a delay per host, one request
//! at a time, a User-Agent naming banter, timeouts, a body cap, at most 5 redirects, only http(s) and
//! text/html, backoff on 429/503 honouring Retry-After, and private/loopback addresses refused unless
//! allowed.

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use texting_robots::Robot;
use url::Url;

/// The User-Agent banter sends.
pub fn user_agent() -> String {
    format!("banter-scrape/{} (+https://github.com/banter-ml/banter)", banter_core::VERSION)
}

/// Settings of the fetcher.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Minimum time between two requests to one host.
    pub delay: Duration,
    /// Request timeout.
    pub timeout: Duration,
    /// Largest body read, in bytes.
    pub max_bytes: u64,
    /// Retries on 429/503 (and connection errors).
    pub retries: u32,
    /// Longest wait honoured from Retry-After or crawl-delay.
    pub max_wait: Duration,
    /// Allow private, loopback and link-local addresses.
    pub allow_private: bool,
    /// Obey robots.txt.
    pub robots: bool,
}

/// A fetched page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The final URL after redirects.
    pub url: Url,
    /// HTTP status.
    pub status: u16,
    /// Decoded HTML.
    pub html: String,
}

/// Why a URL could not be fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// The URL asked for.
    pub url: String,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// What went wrong.
    pub reason: String,
    /// robots.txt disallows the page: obeyed, never a failure of the run.
    pub robots: bool,
}

enum RobotsRule {
    AllowAll,
    DisallowAll,
    Rules(Box<Robot>),
}

/// The reason of a page robots.txt disallows (obeyed; not a failure: [`Failure::robots`]).
const ROBOTS_DISALLOWED: &str = "disallowed by robots.txt";

/// The fetcher: one client, per-host robots rules and last-request times.
pub struct Fetcher {
    client: reqwest::blocking::Client,
    settings: Settings,
    robots: HashMap<String, RobotsRule>,
    last: HashMap<String, Instant>,
    agent: String,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("settings", &self.settings).finish()
    }
}

pub use crate::address::is_private;

/// [`crate::address::check_url`], with the flag that lifts the policy named in the refusal.
fn check_target(url: &url::Url, allow_private: bool) -> Result<(), String> {
    crate::address::check_url(url, allow_private).map_err(|e| format!("{e} (use --allow-private to fetch it)"))
}

impl Fetcher {
    /// A fetcher with these settings.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let allow = settings.allow_private;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds the first URL and the redirects followed so far: 5 redirects are followed.
            if attempt.previous().len() > 5 {
                attempt.error("more than 5 redirects")
            } else if let Err(e) = check_target(attempt.url(), allow) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        let agent = user_agent();
        let mut builder = reqwest::blocking::Client::builder()
            .user_agent(agent.clone())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .redirect(policy)
            .pool_max_idle_per_host(1);
        if !settings.allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(crate::address::PublicOnly));
        }
        let client = builder.build()?;
        Ok(Fetcher { client, settings, robots: HashMap::new(), last: HashMap::new(), agent })
    }

    fn host_key(url: &Url) -> String {
        format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0))
    }

    /// Waits until the host may be asked again (interruptible by Ctrl-C).
    fn wait_turn(&mut self, url: &Url) {
        let key = Self::host_key(url);
        let mut delay = self.settings.delay;
        if let Some(RobotsRule::Rules(r)) = self.robots.get(&key)
            && let Some(d) = r.delay
        {
            delay = delay.max(Duration::from_secs_f32(d.max(0.0)).min(self.settings.max_wait));
        }
        if let Some(last) = self.last.get(&key) {
            let until = *last + delay;
            sleep_until(until);
        }
    }

    fn mark(&mut self, url: &Url) {
        self.last.insert(Self::host_key(url), Instant::now());
    }

    /// Whether robots.txt lets banter fetch the URL (fetching and caching robots.txt per host).
    pub fn allowed(&mut self, url: &Url) -> bool {
        if !self.settings.robots {
            return true;
        }
        let key = Self::host_key(url);
        if !self.robots.contains_key(&key) {
            let rule = self.fetch_robots(url);
            self.robots.insert(key.clone(), rule);
        }
        match self.robots.get(&key) {
            Some(RobotsRule::AllowAll) | None => true,
            Some(RobotsRule::DisallowAll) => false,
            Some(RobotsRule::Rules(r)) => r.allowed(url.as_str()),
        }
    }

    fn fetch_robots(&mut self, url: &Url) -> RobotsRule {
        let Ok(robots_url) = url.join("/robots.txt") else { return RobotsRule::AllowAll };
        self.wait_turn(&robots_url);
        let deadline = Instant::now() + self.settings.timeout;
        let resp = self.client.get(robots_url.clone()).send();
        self.mark(&robots_url);
        match resp {
            Ok(r) if r.status().is_success() => {
                let mut body = Vec::new();
                if read_by(r.take(512 * 1024), &mut body, deadline).is_err() {
                    // RFC 9309: robots.txt that cannot be read is "unreachable": disallow everything.
                    return RobotsRule::DisallowAll;
                }
                match Robot::new(&self.agent, &body) {
                    Ok(robot) => RobotsRule::Rules(Box::new(robot)),
                    Err(_) => RobotsRule::AllowAll,
                }
            }
            // RFC 9309: 4xx (unavailable) → allow everything; 5xx / unreachable → disallow everything.
            Ok(r) if r.status().is_client_error() => RobotsRule::AllowAll,
            Ok(_) | Err(_) => RobotsRule::DisallowAll,
        }
    }

    /// Fetches an HTML page politely.
    pub fn fetch(&mut self, raw: &str) -> Result<Page, Failure> {
        let fail =
            |status: Option<u16>, reason: String| Failure { url: raw.to_string(), status, reason, robots: false };
        let url = Url::parse(raw).map_err(|e| fail(None, format!("not a URL: {e}")))?;
        check_target(&url, self.settings.allow_private).map_err(|e| fail(None, e))?;
        if !self.allowed(&url) {
            return Err(Failure { robots: true, ..fail(None, ROBOTS_DISALLOWED.into()) });
        }
        let mut attempt = 0;
        loop {
            banter_core::interrupt::check().map_err(|_| fail(None, "interrupted".into()))?;
            self.wait_turn(&url);
            // One deadline for the whole request, body included: a server that trickles its body cannot
            // hold the scraper longer than --timeout (plus at most one read).
            let deadline = Instant::now() + self.settings.timeout;
            let resp = self.client.get(url.clone()).header("Accept", "text/html,application/xhtml+xml").send();
            self.mark(&url);
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    let reason = if e.is_timeout() {
                        format!("timed out after {} s", self.settings.timeout.as_secs_f32())
                    } else if e.is_redirect() {
                        format!("redirect refused: {}", source_text(&e))
                    } else {
                        source_text(&e)
                    };
                    return Err(fail(None, reason));
                }
            };
            let status = resp.status().as_u16();
            if (status == 429 || status == 503) && attempt < self.settings.retries {
                attempt += 1;
                let wait = retry_after(resp.headers()).unwrap_or(Duration::from_secs(1 << attempt.min(5)));
                sleep_until(Instant::now() + wait.min(self.settings.max_wait));
                continue;
            }
            if !resp.status().is_success() {
                return Err(fail(Some(status), format!("HTTP {status}")));
            }
            let ctype = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let mime = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if !(mime.is_empty() || mime == "text/html" || mime == "application/xhtml+xml") {
                return Err(fail(Some(status), format!("not HTML ({mime})")));
            }
            let charset = ctype
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("charset="))
                .next()
                .map(|c| c.trim_matches('"').to_string());
            if resp.content_length().is_some_and(|n| n > self.settings.max_bytes) {
                return Err(fail(Some(status), format!("body over the {} byte cap", self.settings.max_bytes)));
            }
            let final_url = resp.url().clone();
            let mut body = Vec::new();
            let cap = self.settings.max_bytes;
            let read = read_by(resp.take(cap + 1), &mut body, deadline);
            if let Err(e) = read {
                let reason = if e.to_string().contains("timed out") || e.kind() == std::io::ErrorKind::TimedOut {
                    format!("timed out after {} s", self.settings.timeout.as_secs_f32())
                } else {
                    format!("reading the body: {e}")
                };
                return Err(fail(Some(status), reason));
            }
            if body.len() as u64 > cap {
                return Err(fail(Some(status), format!("body over the {cap} byte cap")));
            }
            let (html, _) = crate::extract::decode(&body, charset.as_deref());
            return Ok(Page { url: final_url, status, html });
        }
    }

    /// GETs JSON (for the MediaWiki API), with the same politeness.
    pub fn get_json(&mut self, url: &Url) -> Result<serde_json::Value, Failure> {
        let fail = |reason: String| Failure { url: url.to_string(), status: None, reason, robots: false };
        check_target(url, self.settings.allow_private).map_err(fail)?;
        self.wait_turn(url);
        let resp = self.client.get(url.clone()).send().map_err(|e| fail(source_text(&e)))?;
        self.mark(url);
        let status = resp.status();
        if !status.is_success() {
            return Err(Failure {
                url: url.to_string(),
                status: Some(status.as_u16()),
                reason: format!("HTTP {status}"),
                robots: false,
            });
        }
        let mut body = Vec::new();
        let deadline = Instant::now() + self.settings.timeout;
        read_by(resp.take(self.settings.max_bytes), &mut body, deadline).map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| fail(format!("invalid JSON from the API: {e}")))
    }
}

/// Reads `r` to the end into `body`, failing with `TimedOut` once `deadline` has passed.
fn read_by(mut r: impl Read, body: &mut Vec<u8>, deadline: Instant) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if Instant::now() > deadline {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"));
        }
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// Sleeps until `t` in short steps, returning early on Ctrl-C.
fn sleep_until(t: Instant) {
    while Instant::now() < t {
        if banter_core::interrupt::interrupted() {
            return;
        }
        std::thread::sleep((t - Instant::now()).min(Duration::from_millis(50)));
    }
}

/// RFC 3339 UTC time of now.
pub fn now_rfc3339() -> String {
    banter_core::util::now_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
