//! The HTTP client: authentication, and the Hub's error statuses in words.

use reqwest::blocking::{Client, RequestBuilder, Response};

use crate::{HubError, HubSettings};

/// How long a connection may stay silent: `HF_HUB_DOWNLOAD_TIMEOUT` seconds (huggingface_hub's name), default 30.
fn stall_timeout() -> std::time::Duration {
    let secs = std::env::var("HF_HUB_DOWNLOAD_TIMEOUT").ok().and_then(|v| v.trim().parse::<f64>().ok());
    std::time::Duration::from_secs_f64(secs.filter(|s| *s > 0.0).unwrap_or(30.0))
}

/// A client with rustls (ring), a user agent, `redirects` followed or not, and a timeout on each read
/// (a stalled connection fails instead of hanging; a long download that keeps moving is fine).
pub(crate) fn client(follow_redirects: bool) -> Result<Client, HubError> {
    client_with(follow_redirects, Some(stall_timeout()))
}

/// A client for uploads of large bodies: no timeout (blocking reqwest bounds the whole send by it).
pub(crate) fn upload_client() -> Result<Client, HubError> {
    client_with(true, None)
}

fn client_with(follow_redirects: bool, timeout: Option<std::time::Duration>) -> Result<Client, HubError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy =
        if follow_redirects { reqwest::redirect::Policy::limited(10) } else { reqwest::redirect::Policy::none() };
    Client::builder()
        .user_agent(concat!("banter/", env!("CARGO_PKG_VERSION"), "; hf_hub"))
        .redirect(policy)
        .connect_timeout(std::time::Duration::from_secs(20))
        .timeout(timeout)
        .build()
        .map_err(|e| HubError::Network { url: "(client)".into(), source: e })
}

/// `Authorization: Bearer` when there is a token.
pub(crate) fn auth(rb: RequestBuilder, s: &HubSettings) -> RequestBuilder {
    match &s.token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    }
}

/// Sends; a failure to connect is [`HubError::Network`].
pub(crate) fn send(rb: RequestBuilder, url: &str) -> Result<Response, HubError> {
    rb.send().map_err(|e| HubError::Network { url: url.to_string(), source: e })
}

/// The response when its status is a success (or one of `also`); otherwise the Hub's error in words.
pub(crate) fn check(r: Response, url: &str, repo: &str, also: &[u16]) -> Result<Response, HubError> {
    let status = r.status().as_u16();
    if r.status().is_success() || r.status().is_redirection() || also.contains(&status) {
        return Ok(r);
    }
    let header = r.headers().get("x-error-message").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = r.text().unwrap_or_default();
    let hub = header.or_else(|| {
        serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["error"].as_str().map(str::to_string))
    });
    let hub = hub.unwrap_or_else(|| body.chars().take(200).collect());
    let what = match status {
        401 => "unauthorized: the token is missing, invalid or expired (set HF_TOKEN, or log in with `hf auth login`)"
            .to_string(),
        403 => format!("forbidden: the token may not do this on {repo} (it needs write access for uploads)"),
        404 => format!("{repo} or the file was not found (or it is private or gated and the token cannot see it)"),
        409 => format!("conflict on {repo}"),
        416 => "the requested range is not satisfiable".to_string(),
        429 => "rate limited by the Hub; try again later".to_string(),
        _ => "the Hub refused the request".to_string(),
    };
    let message = if hub.trim().is_empty() { what } else { format!("{what} ({})", hub.trim()) };
    Err(HubError::Status { url: url.to_string(), status, message })
}

/// Percent-encodes a path for a URL, keeping `/`.
pub(crate) fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes one path segment (a revision like `refs/pr/1` becomes one segment).
pub(crate) fn encode_segment(p: &str) -> String {
    encode_path(p).replace('/', "%2F")
}
