//! Downloads into the standard cache layout, as `huggingface_hub` writes it:
//!
//! ```text
//! models--user--name/
//!   refs/main                 the commit `main` points to
//!   blobs/<etag>              each file once, named by its ETag (the sha256 of LFS files)
//!   snapshots/<commit>/<path> -> ../../blobs/<etag>
//! ```
//!
//! A file is written to `blobs/<etag>.incomplete` and renamed when whole (and, for LFS files, its sha256
//! checked), so an interrupted download resumes with `Range` and a reader never sees half a file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::http::{auth, check, client, encode_path, encode_segment, send};
use crate::{HubError, HubSettings, RepoId};

/// The files a model needs: configs, tokenizers, templates, safetensors weights (PyTorch `.bin` only where
/// a repository has no safetensors), adapters. Other formats (ONNX, GGUF, TF, Flax) and subfolders are left.
pub fn wanted(files: &[String]) -> Vec<String> {
    let top: Vec<&String> = files.iter().filter(|f| !f.contains('/')).collect();
    let has_st = top.iter().any(|f| f.ends_with(".safetensors"));
    let keep = |f: &str| {
        f.ends_with(".json")
            || f.ends_with(".safetensors")
            || f.ends_with(".jinja")
            || f == "tokenizer.model"
            || f == "merges.txt"
            || f == "vocab.txt"
            || (!has_st && f.ends_with(".bin") && (f.starts_with("pytorch_model") || f.starts_with("adapter_model")))
    };
    top.into_iter().filter(|f| keep(f)).cloned().collect()
}

pub(crate) fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The snapshot the cache holds for `id`, if any.
fn cached(id: &RepoId, s: &HubSettings) -> Option<PathBuf> {
    let dir = id.cache_dir(&s.cache);
    let commit = if is_commit(&id.revision) {
        id.revision.clone()
    } else {
        std::fs::read_to_string(dir.join("refs").join(&id.revision)).ok()?.trim().to_string()
    };
    let snap = dir.join("snapshots").join(commit);
    (snap.join("config.json").exists() || snap.join("adapter_config.json").exists()).then_some(snap)
}

/// The snapshot directory of `id`: from the cache when offline (or when the Hub cannot be reached and the
/// cache has it), otherwise fetched (only missing files are downloaded).
pub fn snapshot(id: &RepoId, s: &HubSettings) -> Result<PathBuf, HubError> {
    if s.offline {
        return cached(id, s).ok_or_else(|| {
            HubError::Offline(format!(
                "{id}: not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; run once online or unset it",
                s.cache.display()
            ))
        });
    }
    match fetch(id, s) {
        Err(HubError::Network { url, source }) => match cached(id, s) {
            Some(snap) => {
                banter_core::eline!("warning: the Hub is unreachable ({source}); using the cached {id}");
                Ok(snap)
            }
            None => Err(HubError::Network { url, source }),
        },
        r => r,
    }
}

/// A repository's commit, files and the name the Hub answers with (`kind`: `models` or `datasets`).
pub(crate) fn repo_info(kind: &str, id: &RepoId, s: &HubSettings) -> Result<(String, Vec<String>, RepoId), HubError> {
    let api = client(false)?;
    let mut url = format!("{}/api/{kind}/{}/revision/{}", s.endpoint, id.repo, encode_segment(&id.revision));
    // A renamed repository (and a legacy name: `gpt2` is `openai-community/gpt2`) answers with a relative
    // redirect on the same Hub, which is followed, as huggingface_hub follows it; other redirects are not.
    let mut r = check(send(auth(api.get(&url), s), &url)?, &url, &id.repo, &[])?;
    for _ in 0..5 {
        let to = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
        match to {
            Some(to) if r.status().is_redirection() && to.starts_with('/') && !to.starts_with("//") => {
                url = format!("{}{to}", s.endpoint);
                r = check(send(auth(api.get(&url), s), &url)?, &url, &id.repo, &[])?;
            }
            _ => break,
        }
    }
    if r.status().is_redirection() {
        return Err(HubError::Protocol(format!("{url}: the Hub redirected elsewhere ({})", r.status())));
    }
    let info: serde_json::Value = r.json().map_err(|e| HubError::Network { url: url.clone(), source: e })?;
    // Files are fetched under the name the Hub answers with; the cache keeps the name the user typed.
    let canonical = info["id"]
        .as_str()
        .and_then(RepoId::parse_name)
        .map(|c| RepoId { repo: c.repo, revision: id.revision.clone() })
        .unwrap_or_else(|| id.clone());
    let sha = info["sha"]
        .as_str()
        .filter(|c| is_commit(c))
        .ok_or_else(|| HubError::Protocol(format!("{url}: the answer has no commit sha")))?;
    let files: Vec<String> = info["siblings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["rfilename"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok((sha.to_string(), files, canonical))
}

fn fetch(id: &RepoId, s: &HubSettings) -> Result<PathBuf, HubError> {
    let (sha, files, canonical) = repo_info("models", id, s)?;
    let sha = sha.as_str();
    let want = wanted(&files);
    if !want.iter().any(|f| f == "config.json" || f == "adapter_config.json") {
        return Err(HubError::Protocol(format!("{id}: the repository has no config.json (is it a model?)")));
    }
    let dir = id.cache_dir(&s.cache);
    let snap = dir.join("snapshots").join(sha);
    for f in &want {
        let target = snap.join(f);
        if target.exists() {
            continue;
        }
        file("", &canonical, sha, f, &dir, &target, s)?;
    }
    if !is_commit(&id.revision) || id.revision != sha {
        let refs = dir.join("refs").join(&id.revision);
        write_small(&refs, sha)?;
    }
    Ok(snap)
}

pub(crate) fn write_small(path: &Path, text: &str) -> Result<(), HubError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
    let tmp = path.with_extension("banter-tmp");
    std::fs::write(&tmp, text).map_err(|e| HubError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| HubError::io(path, e))
}

fn etag_of(h: &reqwest::header::HeaderMap) -> Option<String> {
    let v = h.get("x-linked-etag").or_else(|| h.get("etag"))?.to_str().ok()?;
    let v = v.trim().trim_start_matches("W/").trim_matches('"');
    (!v.is_empty() && !v.contains(['/', '\\']) && v != "." && v != "..").then(|| v.to_string())
}

fn size_of(h: &reqwest::header::HeaderMap) -> Option<u64> {
    h.get("x-linked-size").or_else(|| h.get("content-length"))?.to_str().ok()?.parse().ok()
}

/// One file: HEAD (no redirect) for its ETag and size, then GET into `blobs/<etag>.incomplete` (resumed with
/// `Range` when a previous run left part of it), checked, renamed, and linked from the snapshot.
/// Downloads one file of a repository (`prefix`: empty for models, `datasets/` for datasets) into the cache
/// folder `dir` and links it from `target`.
pub(crate) fn file(
    prefix: &str,
    id: &RepoId,
    sha: &str,
    path: &str,
    dir: &Path,
    target: &Path,
    s: &HubSettings,
) -> Result<(), HubError> {
    let url = format!("{}/{prefix}{}/resolve/{}/{}", s.endpoint, id.repo, sha, encode_path(path));
    let head = client(false)?;
    let r = check(send(auth(head.head(&url), s).header("accept-encoding", "identity"), &url)?, &url, &id.repo, &[])?;
    let etag = etag_of(r.headers()).ok_or_else(|| HubError::Protocol(format!("{url}: no ETag in the answer")))?;
    let size = size_of(r.headers());
    let blobs = dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| HubError::io(&blobs, e))?;
    let blob = blobs.join(&etag);
    if !blob.exists() {
        let part = blobs.join(format!("{etag}.incomplete"));
        get(&url, &part, size, path, id, s)?;
        if let Some(n) = size {
            let got = std::fs::metadata(&part).map_err(|e| HubError::io(&part, e))?.len();
            if got != n {
                return Err(HubError::Protocol(format!("{url}: got {got} bytes of {n}; run again to resume")));
            }
        }
        if etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()) {
            let sum = sha256_file(&part)?;
            if sum != etag.to_ascii_lowercase() {
                let _ = std::fs::remove_file(&part);
                return Err(HubError::Protocol(format!("{url}: sha256 {sum} is not the Hub's {etag}; removed it")));
            }
        }
        std::fs::rename(&part, &blob).map_err(|e| HubError::io(&blob, e))?;
    }
    link(&blob, target)
}

/// GETs `url` into `part`, resuming a part a previous run left. A part that cannot be resumed — longer than
/// the declared size, or refused with 416 (the file changed, or a HEAD that understated it) — is discarded
/// and the download restarts from the beginning. The body is never written past the declared size.
fn get(url: &str, part: &Path, size: Option<u64>, name: &str, id: &RepoId, s: &HubSettings) -> Result<(), HubError> {
    let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if size.is_some_and(|n| have == n && n > 0) {
        return Ok(());
    }
    if size.is_some_and(|n| have > n) {
        std::fs::remove_file(part).map_err(|e| HubError::io(part, e))?;
        have = 0;
    }
    let c = crate::http::following(s)?;
    let mut rb = auth(c.get(url), s).header("accept-encoding", "identity");
    if have > 0 {
        rb = rb.header("range", format!("bytes={have}-"));
    }
    let mut r = send(rb, url)?;
    if have > 0 && r.status().as_u16() == 416 {
        // The part no longer matches the file: start again.
        drop(r);
        std::fs::remove_file(part).map_err(|e| HubError::io(part, e))?;
        have = 0;
        r = send(auth(c.get(url), s).header("accept-encoding", "identity"), url)?;
    }
    let mut r = check(r, url, &id.repo, &[])?;
    let resumed = have > 0 && r.status().as_u16() == 206;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(resumed)
        .write(true)
        .truncate(!resumed)
        .open(part)
        .map_err(|e| HubError::io(part, e))?;
    let start = if resumed { have } else { 0 };
    let bar = banter_core::progress::bar_if(s.progress, size, name);
    bar.set_position(start);
    let mut buf = vec![0u8; 1 << 16];
    let mut written = start;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                f.flush().map_err(|e| HubError::io(part, e))?;
                return Err(HubError::Protocol(format!(
                    "{url}: the download broke off ({e}); the part is kept in {} and the next run resumes it",
                    part.display()
                )));
            }
        };
        written += n as u64;
        if let Some(limit) = size.filter(|&limit| written > limit) {
            // A body longer than the file's declared size (or one that never ends) is not written on.
            drop(f);
            let _ = std::fs::remove_file(part);
            return Err(HubError::Protocol(format!(
                "{url}: the server sent more than the file's declared {limit} bytes; the download was discarded"
            )));
        }
        f.write_all(&buf[..n]).map_err(|e| HubError::io(part, e))?;
        bar.inc(n as u64);
    }
    f.sync_all().map_err(|e| HubError::io(part, e))?;
    bar.finish_and_clear();
    Ok(())
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, HubError> {
    let mut f = std::fs::File::open(path).map_err(|e| HubError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| HubError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `target` -> `blob`, relative (as huggingface_hub links them); a copy where links are not possible.
fn link(blob: &Path, target: &Path) -> Result<(), HubError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
    let _ = std::fs::remove_file(target);
    #[cfg(unix)]
    {
        // snapshots/<sha>/<a/b/file> -> ../../(../..)blobs/<etag>
        let depth =
            target.components().count() - blob.parent().and_then(Path::parent).map_or(0, |d| d.components().count());
        let mut rel = PathBuf::new();
        for _ in 0..depth.saturating_sub(1) {
            rel.push("..");
        }
        rel.push("blobs");
        rel.push(blob.file_name().unwrap_or_default());
        if std::os::unix::fs::symlink(&rel, target).is_ok() && target.exists() {
            return Ok(());
        }
        let _ = std::fs::remove_file(target);
    }
    std::fs::copy(blob, target).map(|_| ()).map_err(|e| HubError::io(target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_files_are_wanted_and_other_formats_are_not() {
        let files: Vec<String> = [
            "config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "tokenizer.json",
            "tokenizer.model",
            "onnx/model.onnx",
            "model.gguf",
            "README.md",
            "chat_template.jinja",
            "flax_model.msgpack",
        ]
        .map(String::from)
        .to_vec();
        let w = wanted(&files);
        assert_eq!(w, ["config.json", "model.safetensors", "tokenizer.json", "tokenizer.model", "chat_template.jinja"]);
        let bin_only: Vec<String> = ["config.json", "pytorch_model.bin"].map(String::from).to_vec();
        assert_eq!(wanted(&bin_only), bin_only);
    }

    #[test]
    fn snapshot_links_point_into_blobs() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("models--u--m");
        let blob = repo.join("blobs").join("abc");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, b"x").unwrap();
        let target = repo.join("snapshots").join("0".repeat(40)).join("config.json");
        link(&blob, &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
        #[cfg(unix)]
        assert_eq!(std::fs::read_link(&target).unwrap(), PathBuf::from("../../blobs/abc"));
    }
}
