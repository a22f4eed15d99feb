//! banter-hub: the Hugging Face Hub both ways, over its documented HTTP API.
//!
//! - [`resolve_model`]: `user/name[@revision]` wherever a model directory is expected. Files go into the
//!   standard cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`) in its layout
//!   (`models--user--name/{blobs,refs,snapshots}`), shared with transformers and `huggingface-cli`. A model
//!   already there loads with no network (`HF_HUB_OFFLINE=1`, or when the Hub cannot be reached); partial
//!   downloads resume (`Range`).
//! - [`upload::upload_folder`]: create the repository if missing, pre-upload, LFS (basic or multipart) for
//!   large files, and one commit.
//!
//! `HF_ENDPOINT` (a mirror, or the tests' server on 127.0.0.1) and `HF_TOKEN` (else the token file) are
//! honoured as `huggingface_hub` honours them.

use std::path::{Path, PathBuf};

pub mod card;
pub mod dataset;
mod download;
mod http;
pub mod upload;

pub use download::snapshot;

/// Errors of the Hub client; each keeps its cause and has an exit code ([`HubError::exit`]).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The Hub answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The request.
        url: String,
        /// The status code.
        status: u16,
        /// What it means here, with the Hub's own message.
        message: String,
    },
    /// The Hub could not be reached.
    #[error("{url}: {source}")]
    Network {
        /// The request.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A file of the cache or of the folder to upload.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Offline, and the cache does not hold what is asked for.
    #[error("{0}")]
    Offline(String),
    /// The Hub's answer is not what its API documents, or a download is corrupt.
    #[error("{0}")]
    Protocol(String),
    /// A bad repository name or argument.
    #[error("{0}")]
    Usage(String),
    /// A model path that is no directory here was looked up on the Hub, which failed.
    #[error("{name}: no such folder here, and not found as a Hub name either")]
    NotFound {
        /// The argument.
        name: String,
        /// What the Hub lookup said.
        #[source]
        source: Box<HubError>,
    },
}

impl HubError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        HubError::Io { path: path.to_path_buf(), source }
    }

    /// The exit code: usage 2, everything else (network, HTTP, cache) 4.
    pub fn exit(&self) -> banter_core::Exit {
        match self {
            HubError::Usage(_) => banter_core::Exit::Usage,
            HubError::NotFound { source, .. } => source.exit(),
            _ => banter_core::Exit::Io,
        }
    }

    /// The HTTP status, when the Hub answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            HubError::Status { status, .. } => Some(*status),
            HubError::NotFound { source, .. } => source.status(),
            _ => None,
        }
    }
}

/// Teaches banter-core's exit-code classifier [`HubError`] (idempotent).
pub fn init() {
    banter_core::exit::register(|cause| cause.downcast_ref::<HubError>().map(HubError::exit));
}

/// Where the Hub is and who talks to it, from the environment as `huggingface_hub` reads it.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// `HF_ENDPOINT` (default `https://huggingface.co`), without a trailing `/`.
    pub endpoint: String,
    /// Redirects may lead to non-public addresses: only when the endpoint itself is one (a Hub mirror on a
    /// private network). Otherwise a redirect to a private, loopback or link-local address is refused.
    pub allow_private_redirects: bool,
    /// `HF_TOKEN`, else the token file (`HF_TOKEN_PATH`, else `HF_HOME/token`).
    pub token: Option<String>,
    /// The cache (`HF_HUB_CACHE`, else `HF_HOME/hub`).
    pub cache: PathBuf,
    /// `HF_HUB_OFFLINE=1`: the cache only.
    pub offline: bool,
    /// Progress bars on stderr (the caller decides: a terminal, not `--quiet`).
    pub progress: bool,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true")
}

impl HubSettings {
    /// From the environment.
    pub fn from_env() -> Self {
        let home = env("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = env("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env("HOME").unwrap_or_else(|| ".".into())).join(".cache"));
            cache.join("huggingface")
        });
        let token = env("HF_TOKEN").or_else(|| {
            let file = env("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| home.join("token"));
            std::fs::read_to_string(file).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
        });
        let endpoint: String =
            env("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into()).trim_end_matches('/').into();
        HubSettings {
            allow_private_redirects: endpoint_is_private(&endpoint),
            endpoint,
            token,
            cache: env("HF_HUB_CACHE").map(PathBuf::from).unwrap_or_else(|| home.join("hub")),
            offline: env("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            progress: false,
        }
    }
}

/// True when `endpoint`'s host is a non-public address (`localhost` included). A name is not resolved here
/// (no DNS look-up at every start): a named endpoint counts as public.
fn endpoint_is_private(endpoint: &str) -> bool {
    let Ok(u) = url::Url::parse(endpoint) else { return true };
    if let Some(ip) = banter_net::address::literal_ip(&u) {
        return banter_net::address::is_private(&ip);
    }
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    host.is_empty() || host == "localhost" || host.ends_with(".localhost")
}

/// A model repository and revision: `user/name[@revision]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    /// `user/name`.
    pub repo: String,
    /// A branch, tag or commit (default `main`).
    pub revision: String,
}

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 96
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
        && !s.contains("--")
        && !s.contains("..")
}

impl RepoId {
    /// `user/name[@revision]`, or `None` when `s` is not a Hub name (a path, a bare word).
    pub fn parse(s: &str) -> Option<RepoId> {
        let (repo, revision) = match s.split_once('@') {
            Some((r, rev)) if !rev.is_empty() => (r, rev),
            Some(_) => return None,
            None => (s, "main"),
        };
        let (user, name) = repo.split_once('/')?;
        (valid_part(user) && valid_part(name) && !revision.contains(['\\', ' ', '\n']) && !revision.contains(".."))
            .then(|| RepoId { repo: repo.to_string(), revision: revision.to_string() })
    }

    /// As [`RepoId::parse`], and also a legacy canonical name without a user (`gpt2`, `distilgpt2`,
    /// `bert-base-uncased`), which the Hub redirects to its organisation today (`openai-community/gpt2`).
    /// Something path-like (`./m`, `m/`, `~/m`, `.hidden`) is not a name.
    pub fn parse_name(s: &str) -> Option<RepoId> {
        RepoId::parse(s).or_else(|| {
            let (name, revision) = match s.split_once('@') {
                Some((n, rev)) if !rev.is_empty() => (n, rev),
                Some(_) => return None,
                None => (s, "main"),
            };
            (valid_part(name) && !revision.contains(['\\', ' ', '\n']) && !revision.contains(".."))
                .then(|| RepoId { repo: name.to_string(), revision: revision.to_string() })
        })
    }

    /// The cache folder: `models--user--name`.
    pub fn cache_dir(&self, cache: &Path) -> PathBuf {
        cache.join(format!("models--{}", self.repo.replace('/', "--")))
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.revision == "main" { write!(f, "{}", self.repo) } else { write!(f, "{}@{}", self.repo, self.revision) }
    }
}

/// A model path as the tools take it: an existing directory is itself; `user/name[@revision]` that is not a
/// directory here is fetched into the cache (or found there) and its snapshot directory returned; anything
/// else is given back unchanged (the loader then says it does not exist).
pub fn resolve_model(arg: &Path, s: &HubSettings) -> Result<PathBuf, HubError> {
    let dir = if arg.exists() {
        arg.to_path_buf()
    } else {
        match arg.to_str().and_then(RepoId::parse_name) {
            Some(id) => snapshot(&id, s)
                .map_err(|e| HubError::NotFound { name: arg.display().to_string(), source: Box::new(e) })?,
            None => arg.to_path_buf(),
        }
    };
    // A model or adapter is an input: no output of this process may be it, hold it or lie inside it.
    banter_core::inputs::register_path(&dir);
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_parse_and_paths_do_not() {
        let r = RepoId::parse("HuggingFaceTB/SmolLM2-135M").unwrap();
        assert_eq!((r.repo.as_str(), r.revision.as_str()), ("HuggingFaceTB/SmolLM2-135M", "main"));
        let r = RepoId::parse("user/model@v1.0").unwrap();
        assert_eq!(r.revision, "v1.0");
        assert_eq!(r.cache_dir(Path::new("/c")), PathBuf::from("/c/models--user--model"));
        let r = RepoId::parse_name("gpt2").unwrap();
        assert_eq!((r.repo.as_str(), r.revision.as_str()), ("gpt2", "main"));
        assert_eq!(RepoId::parse_name("distilgpt2@v1").unwrap().revision, "v1");
        assert_eq!(RepoId::parse_name("u/m").unwrap().repo, "u/m");
        for bad in ["./m", "m/", "~/m", ".hidden", "/abs", "a/b/c", "x@", "../x", ""] {
            assert!(RepoId::parse_name(bad).is_none(), "{bad} is not a Hub name");
        }
        for bad in ["model", "./out/model", "/abs/path", "a/b/c", "user/", "/name", "a/b@", "../x", "u/..", "u/a--b"] {
            assert!(RepoId::parse(bad).is_none(), "{bad} is not a Hub name");
        }
    }

    #[test]
    fn an_existing_directory_wins_over_a_hub_name() {
        let d = tempfile::tempdir().unwrap();
        let local = d.path().join("user").join("model");
        std::fs::create_dir_all(&local).unwrap();
        let s = HubSettings {
            endpoint: "http://127.0.0.1:9".into(),
            allow_private_redirects: true,
            token: None,
            cache: d.path().join("cache"),
            offline: true,
            progress: false,
        };
        assert_eq!(resolve_model(&local, &s).unwrap(), local);
        assert_eq!(resolve_model(Path::new("no/such/dir"), &s).unwrap(), PathBuf::from("no/such/dir"));
    }
}
