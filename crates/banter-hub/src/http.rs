//! The HTTP client: authentication, and the Hub's error statuses in words.

use reqwest::blocking::{Client, RequestBuilder, Response};

use crate::{HubError, HubSettings};

/// How long a connection may stay silent: `HF_HUB_DOWNLOAD_TIMEOUT` seconds (huggingface_hub's name), default 30.
fn stall_timeout() -> std::time::Duration {
    let secs = std::env::var("HF_HUB_DOWNLOAD_TIMEOUT").ok().and_then(|v| v.trim().parse::<f64>().ok());
    std::time::Duration::from_secs_f64(secs.filter(|s| *s > 0.0).unwrap_or(30.0))
}

/// A client with rustls (ring), a user agent, no redirects, and a timeout on each read (a stalled connection
/// fails instead of hanging; a long download that keeps moving is fine).
pub(crate) fn client(follow_redirects: bool) -> Result<Client, HubError> {
    debug_assert!(!follow_redirects, "a client that follows redirects takes the settings: following()");
    client_with(None, Some(stall_timeout()))
}

/// [`client`], following up to 10 redirects under `s`'s address policy ([`redirect_policy`]).
pub(crate) fn following(s: &HubSettings) -> Result<Client, HubError> {
    client_with(Some(s.allow_private_redirects), Some(stall_timeout()))
}

/// A client for uploads of large bodies: no timeout (blocking reqwest bounds the whole send by it).
pub(crate) fn upload_client(s: &HubSettings) -> Result<Client, HubError> {
    client_with(Some(s.allow_private_redirects), None)
}

/// Redirects are followed (10 at most) only to http(s) and, unless `allow_private`, only to public
/// addresses: the scraper's policy ([`banter_net::address`]), checked before connecting. A Hub on a
/// private network (`HF_ENDPOINT` itself private) may redirect within it.
pub fn redirect_policy(allow_private: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > 10 {
            attempt.error("more than 10 redirects")
        } else if let Err(e) = banter_net::address::check_url(attempt.url(), allow_private) {
            let to = attempt.url().to_string();
            attempt.error(format!("redirect to {to} refused: {e}"))
        } else {
            attempt.follow()
        }
    })
}

fn client_with(redirects: Option<bool>, timeout: Option<std::time::Duration>) -> Result<Client, HubError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy = match redirects {
        Some(allow_private) => redirect_policy(allow_private),
        None => reqwest::redirect::Policy::none(),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on 127.0.0.1 that answers every request with a redirect to `to`.
    fn redirector(to: &'static str) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/file", l.local_addr().unwrap());
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            for mut c in l.incoming().flatten().take(4) {
                let mut r = std::io::BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ =
                    write!(c, "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        url
    }

    #[test]
    fn redirects_to_private_addresses_are_refused_unless_the_endpoint_is_private() {
        for to in ["http://127.0.0.2:9/x", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/"] {
            let url = redirector(to);
            let c = client_with(Some(false), None).unwrap();
            let e = c.get(&url).send().unwrap_err();
            let msg = format!("{e:?}");
            assert!(msg.contains("refused") || msg.contains("only http"), "{to}: {msg}");
        }
        // A private endpoint may redirect within its network: the redirect is followed (here to a closed port).
        let url = redirector("http://127.0.0.2:9/x");
        let c = client_with(Some(true), None).unwrap();
        let msg = format!("{:?}", c.get(&url).send().unwrap_err());
        assert!(!msg.contains("refused:"), "{msg}");
    }

    #[test]
    fn an_endpoint_is_private_by_its_literal_address_or_localhost() {
        for (e, private) in [
            ("https://huggingface.co", false),
            ("http://127.0.0.1:8080", true),
            ("http://10.1.2.3", true),
            ("http://localhost:5000", true),
            ("http://[::1]:80", true),
            ("https://8.8.8.8", false),
        ] {
            assert_eq!(crate::endpoint_is_private(e), private, "{e}");
        }
    }
}
