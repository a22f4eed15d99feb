//! Uploading a folder as one commit, through the Hub's documented endpoints:
//!
//! 1. `POST /api/repos/create` (409: it exists, fine);
//! 2. `POST /api/models/{repo}/branch/{rev}` for a revision other than `main` (409: it exists);
//! 3. `POST /api/models/{repo}/preupload/{rev}`: which files go through LFS;
//! 4. LFS batch (`{repo}.git/info/lfs/objects/batch`): a `PUT` per object the Hub does not have yet, or
//!    multipart (`chunk_size` and a URL per part, then the completion `POST`), then `verify`;
//! 5. `POST /api/models/{repo}/commit/{rev}` (NDJSON): small files inline (base64), LFS ones by oid.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::download::sha256_file;
use crate::http::{auth, check, client, encode_segment, send, upload_client};
use crate::{HubError, HubSettings};

/// What to upload where.
#[derive(Debug, Clone)]
pub struct Upload {
    /// `user/name`.
    pub repo: String,
    /// Branch (default `main`; created from `main` when missing).
    pub revision: Option<String>,
    /// Create the repository private.
    pub private: bool,
    /// The commit message.
    pub message: String,
}

/// What an upload did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    /// `user/name`.
    pub repo: String,
    /// The branch.
    pub revision: String,
    /// The commit's URL, as the Hub gave it.
    pub commit_url: Option<String>,
    /// Files in the commit.
    pub files: usize,
    /// Of them, through LFS.
    pub lfs_files: usize,
    /// LFS bytes actually sent (objects the Hub already had are not sent again).
    pub lfs_bytes_sent: u64,
    /// Bytes in the commit.
    pub bytes: u64,
    /// The repository was created by this upload.
    pub created: bool,
    /// Symbolic links left out, with why ([`FolderFiles::skipped_links`]).
    pub skipped_links: Vec<(String, String)>,
}

/// The files of a folder to upload, and the symbolic links left out (relative path, why).
#[derive(Debug, Default)]
pub struct FolderFiles {
    /// (relative `/`-separated path, path on disk), sorted.
    pub files: Vec<(String, PathBuf)>,
    /// Entries left out: links to a folder (a loop such as `a -> .` would never end) or to anything outside
    /// the folder (nothing outside it is ever uploaded), dangling links, and FIFOs, sockets and devices.
    pub skipped_links: Vec<(String, String)>,
}

/// Every regular file under `dir` (relative, `/`-separated, sorted), leaving out hidden ones, partial
/// downloads and, with `skip_checkpoints`, top-level `checkpoint-*` folders. Symbolic links are followed
/// only to a regular file inside `dir`; the others are listed in [`FolderFiles::skipped_links`].
pub fn folder_files(dir: &Path, skip_checkpoints: bool) -> Result<FolderFiles, HubError> {
    let root = std::fs::canonicalize(dir).map_err(|e| HubError::io(dir, e))?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let rel = |p: &Path| {
        p.strip_prefix(dir)
            .unwrap_or(p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| HubError::io(&d, e))? {
            let e = e.map_err(|e| HubError::io(&d, e))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name.ends_with(".incomplete") {
                continue;
            }
            let kind = e.file_type().map_err(|err| HubError::io(&p, err))?;
            if kind.is_symlink() {
                let why = match std::fs::canonicalize(&p) {
                    Err(_) => Some("a dangling link"),
                    Ok(t) if t.is_dir() => Some("a link to a folder"),
                    Ok(t) if !t.starts_with(&root) => Some("a link to a file outside the folder"),
                    Ok(t) if !t.is_file() => Some("a link to something that is not a regular file"),
                    Ok(_) => None,
                };
                match why {
                    Some(why) => skipped.push((rel(&p), why.to_string())),
                    None => out.push((rel(&p), p)),
                }
            } else if kind.is_dir() {
                if skip_checkpoints && d == dir && name.starts_with("checkpoint-") {
                    continue;
                }
                stack.push(p);
            } else if kind.is_file() {
                out.push((rel(&p), p));
            } else {
                // A FIFO, socket or device: reading it could block or never end.
                skipped.push((rel(&p), "not a regular file".to_string()));
            }
        }
    }
    out.sort();
    skipped.sort();
    Ok(FolderFiles { files: out, skipped_links: skipped })
}

fn post_json(s: &HubSettings, url: &str, repo: &str, body: &Value, also: &[u16]) -> Result<(u16, Value), HubError> {
    let c = client(false)?;
    let r = check(send(auth(c.post(url), s).json(body), url)?, url, repo, also)?;
    let status = r.status().as_u16();
    let text = r.text().map_err(|e| HubError::Network { url: url.to_string(), source: e })?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Uploads `dir`'s files, as [`folder_files`] listed them, to `up.repo` as one commit.
pub fn upload_folder(dir: &Path, listing: FolderFiles, up: &Upload, s: &HubSettings) -> Result<Uploaded, HubError> {
    if s.token.is_none() {
        return Err(HubError::Usage(
            "no Hugging Face token: set HF_TOKEN or log in (`hf auth login` writes HF_HOME/token)".into(),
        ));
    }
    let Some((org, name)) = up.repo.split_once('/') else {
        return Err(HubError::Usage(format!("{:?} is not user/name", up.repo)));
    };
    let FolderFiles { mut files, skipped_links } = listing;
    if files.is_empty() {
        return Err(HubError::Usage(format!("{}: nothing to upload", dir.display())));
    }
    // A folder without a model card gets one (written to a temp file; the folder itself is not touched).
    let card = if files.iter().any(|(rel, _)| rel.eq_ignore_ascii_case("README.md")) {
        None
    } else {
        let mut t = tempfile::NamedTempFile::new().map_err(|e| HubError::io(Path::new("README.md"), e))?;
        std::io::Write::write_all(&mut t, crate::card::model_card(dir, &up.repo).as_bytes())
            .map_err(|e| HubError::io(t.path(), e))?;
        files.push(("README.md".into(), t.path().to_path_buf()));
        Some(t)
    };
    let e = &s.endpoint;
    let url = format!("{e}/api/repos/create");
    let body = json!({"name": name, "organization": org, "private": up.private, "type": "model"});
    let (status, _) = post_json(s, &url, &up.repo, &body, &[409])?;
    let created = status != 409;
    let rev = up.revision.clone().unwrap_or_else(|| "main".into());
    if rev != "main" {
        let url = format!("{e}/api/models/{}/branch/{}", up.repo, encode_segment(&rev));
        post_json(s, &url, &up.repo, &json!({}), &[409])?;
    }
    // Which files the Hub wants through LFS.
    let mut modes = std::collections::HashMap::new();
    for chunk in files.chunks(100) {
        let mut list = Vec::new();
        for (rel, p) in chunk {
            let (size, sample) = sample(p)?;
            list.push(json!({"path": rel, "size": size, "sample": sample}));
        }
        let url = format!("{e}/api/models/{}/preupload/{}", up.repo, encode_segment(&rev));
        let (_, v) = post_json(s, &url, &up.repo, &json!({"files": list}), &[])?;
        for f in v["files"].as_array().into_iter().flatten() {
            if let (Some(p), Some(m)) = (f["path"].as_str(), f["uploadMode"].as_str()) {
                modes.insert(p.to_string(), (m == "lfs", f["shouldIgnore"].as_bool().unwrap_or(false)));
            }
        }
    }
    let mut lines = vec![json!({"key": "header", "value": {"summary": up.message, "description": ""}})];
    let (mut n, mut lfs_n, mut bytes, mut sent) = (0, 0, 0u64, 0u64);
    for (rel, p) in &files {
        let (lfs, ignore) = modes.get(rel).copied().unwrap_or((false, false));
        if ignore {
            continue;
        }
        let size = std::fs::metadata(p).map_err(|e| HubError::io(p, e))?.len();
        n += 1;
        bytes += size;
        if lfs {
            let oid = sha256_file(p)?;
            sent += lfs_upload(s, &up.repo, &rev, rel, p, &oid, size)?;
            lfs_n += 1;
            lines.push(json!({"key": "lfsFile", "value": {"path": rel, "algo": "sha256", "oid": oid, "size": size}}));
        } else {
            let data = std::fs::read(p).map_err(|e| HubError::io(p, e))?;
            let content = base64::engine::general_purpose::STANDARD.encode(data);
            lines.push(json!({"key": "file", "value": {"content": content, "path": rel, "encoding": "base64"}}));
        }
    }
    let url = format!("{e}/api/models/{}/commit/{}", up.repo, encode_segment(&rev));
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let c = client(false)?;
    let rb = auth(c.post(&url), s).header("content-type", "application/x-ndjson").body(body);
    let r = check(send(rb, &url)?, &url, &up.repo, &[])?;
    let v: Value = r.json().unwrap_or(Value::Null);
    drop(card);
    Ok(Uploaded {
        repo: up.repo.clone(),
        revision: rev,
        commit_url: v["commitUrl"].as_str().map(str::to_string),
        files: n,
        lfs_files: lfs_n,
        lfs_bytes_sent: sent,
        bytes,
        created,
        skipped_links,
    })
}

/// The size and the first 512 bytes (base64) the pre-upload call decides by.
fn sample(p: &Path) -> Result<(u64, String), HubError> {
    let mut f = std::fs::File::open(p).map_err(|e| HubError::io(p, e))?;
    let size = f.metadata().map_err(|e| HubError::io(p, e))?.len();
    let mut buf = vec![0u8; 512.min(size as usize)];
    f.read_exact(&mut buf).map_err(|e| HubError::io(p, e))?;
    Ok((size, base64::engine::general_purpose::STANDARD.encode(buf)))
}

fn headers(rb: reqwest::blocking::RequestBuilder, h: &Value) -> reqwest::blocking::RequestBuilder {
    let mut rb = rb;
    for (k, v) in h.as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            rb = rb.header(k.as_str(), v);
        }
    }
    rb
}

/// One LFS object through the batch API; returns the bytes sent (0 when the Hub already has it).
fn lfs_upload(
    s: &HubSettings,
    repo: &str,
    rev: &str,
    rel: &str,
    p: &Path,
    oid: &str,
    size: u64,
) -> Result<u64, HubError> {
    let url = format!("{}/{repo}.git/info/lfs/objects/batch", s.endpoint);
    let body = json!({
        "operation": "upload", "transfers": ["basic", "multipart"], "hash_algo": "sha256",
        "objects": [{"oid": oid, "size": size}], "ref": {"name": rev},
    });
    let c = client(false)?;
    let rb = auth(c.post(&url), s)
        .header("accept", "application/vnd.git-lfs+json")
        .header("content-type", "application/vnd.git-lfs+json")
        .body(body.to_string());
    let v: Value = check(send(rb, &url)?, &url, repo, &[])?
        .json()
        .map_err(|e| HubError::Network { url: url.clone(), source: e })?;
    let obj = &v["objects"][0];
    if let Some(err) = obj.get("error") {
        return Err(HubError::Protocol(format!("{url}: LFS refused {rel}: {err}")));
    }
    let Some(upload) = obj["actions"].get("upload") else { return Ok(0) };
    let href = upload["href"].as_str().ok_or_else(|| HubError::Protocol(format!("{url}: no upload href")))?;
    let h = &upload["header"];
    let put = upload_client(s)?;
    let bar = banter_core::progress::bar_if(s.progress, Some(size), rel);
    if let Some(chunk) = h.get("chunk_size").and_then(|c| c.as_str().and_then(|c| c.parse::<u64>().ok()).or(c.as_u64()))
    {
        // Multipart: one presigned URL per part ("00001", …), then the completion call with each part's ETag.
        let mut parts: Vec<(u64, String)> = h
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v.as_str()?.to_string())))
            .collect();
        parts.sort();
        let mut f = std::fs::File::open(p).map_err(|e| HubError::io(p, e))?;
        let mut done = Vec::new();
        for (i, part_url) in &parts {
            let off = (i - 1) * chunk;
            let len = chunk.min(size.saturating_sub(off));
            let mut buf = vec![0u8; len as usize];
            f.seek(SeekFrom::Start(off)).and_then(|_| f.read_exact(&mut buf)).map_err(|e| HubError::io(p, e))?;
            let r = check(send(put.put(part_url).body(buf), part_url)?, part_url, repo, &[])?;
            let etag = r.headers().get("etag").and_then(|e| e.to_str().ok()).unwrap_or("").to_string();
            done.push(json!({"partNumber": i, "etag": etag}));
            bar.inc(len);
        }
        let rb = put.post(href).json(&json!({"oid": oid, "parts": done}));
        check(send(rb, href)?, href, repo, &[])?;
    } else {
        let f = std::fs::File::open(p).map_err(|e| HubError::io(p, e))?;
        let rb = headers(put.put(href), h).header("content-length", size).body(reqwest::blocking::Body::sized(f, size));
        check(send(rb, href)?, href, repo, &[])?;
        bar.inc(size);
    }
    bar.finish_and_clear();
    if let Some(verify) = obj["actions"].get("verify")
        && let Some(vurl) = verify["href"].as_str()
    {
        let rb = headers(auth(c.post(vurl), s), &verify["header"]).json(&json!({"oid": oid, "size": size}));
        check(send(rb, vurl)?, vurl, repo, &[])?;
    }
    Ok(size)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_only_to_regular_files_inside_the_folder() {
        let d = tempfile::tempdir().unwrap();
        let (dir, outside) = (d.path().join("model"), d.path().join("secret.txt"));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(dir.join("sub/w.bin"), "w").unwrap();
        std::fs::write(&outside, "secret").unwrap();
        let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
        link(Path::new("."), "a");
        link(Path::new("sub"), "b");
        link(&outside, "leak.txt");
        link(Path::new("config.json"), "alias.json");
        link(Path::new("missing"), "dangling");
        let fifo = dir.join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let got = folder_files(&dir, true).unwrap();
        let names: Vec<&str> = got.files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["alias.json", "config.json", "sub/w.bin"]);
        let skipped: Vec<&str> = got.skipped_links.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(skipped, ["a", "b", "dangling", "leak.txt", "pipe"]);
        assert!(got.skipped_links.iter().any(|(p, why)| p == "leak.txt" && why.contains("outside")));
    }
}
