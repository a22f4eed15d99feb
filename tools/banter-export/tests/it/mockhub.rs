//! A Hugging Face Hub on 127.0.0.1 for the tests: the endpoints banter's client uses, behaving as the Hub
//! documents them (status codes, `ETag`/`X-Linked-Etag`/`X-Repo-Commit` headers, LFS redirects to a
//! CDN that honours `Range`, the LFS batch API, NDJSON commits). Tokens: `hf_write` may write, `hf_read`
//! may only read; any other token is refused with 401.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tiny_http::{Header, Method, Request, Response, Server};

#[derive(Default)]
pub struct Repo {
    pub files: BTreeMap<String, Vec<u8>>,
    pub commit: String,
    pub private: bool,
    pub branches: Vec<String>,
}

#[derive(Default)]
pub struct State {
    pub repos: HashMap<String, Repo>,
    pub lfs: HashMap<String, Vec<u8>>,
    /// Break the next N CDN downloads half-way (the connection closes early).
    pub break_downloads: usize,
    /// Range headers the CDN saw.
    pub ranges: Vec<String>,
    pub lfs_puts: usize,
    /// LFS objects larger than this are uploaded in parts of `PART` bytes (multipart).
    pub multipart_above: Option<usize>,
    /// Parts received per object, before completion.
    pub parts: HashMap<String, BTreeMap<usize, Vec<u8>>>,
    /// The size the Hub declares for LFS files (`X-Linked-Size`), when it lies.
    pub declared_size: Option<usize>,
    /// The CDN sends a body that does not end (no length; repeats the file, at most 64 MiB).
    pub endless: bool,
    /// Renamed repositories (old name → new), as the Hub keeps legacy names (`gpt2` →
    /// `openai-community/gpt2`): every request under the old name gets a relative 307 to the new one.
    pub renamed: HashMap<String, String>,
}

/// The part size the mock asks for.
pub const PART: usize = 65_536;

pub struct MockHub {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    pub requests: Arc<AtomicUsize>,
    server: Arc<Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn h(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap()
}

fn json_resp(status: u16, v: Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(v.to_string().into_bytes())
        .with_status_code(status)
        .with_header(h("content-type", "application/json"))
}

fn err(status: u16, msg: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    json_resp(status, json!({"error": msg})).with_header(h("x-error-message", msg))
}

fn is_lfs(path: &str, data: &[u8]) -> bool {
    path.ends_with(".safetensors") || path.ends_with(".onnx") || path.ends_with(".gguf") || data.len() > 10 << 20
}

fn new_commit(n: usize) -> String {
    format!("{:040x}", 0xabc0_0000_u64 + n as u64)
}

impl MockHub {
    pub fn start() -> MockHub {
        let server = Arc::new(Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let requests = Arc::new(AtomicUsize::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let cdn = format!("http://{}", listener.local_addr().unwrap());
        let (st, rq) = (state.clone(), requests.clone());
        std::thread::spawn(move || {
            for c in listener.incoming().flatten() {
                rq.fetch_add(1, Ordering::SeqCst);
                serve_cdn(c, &st);
            }
        });
        let (s2, st, rq, base, c2) = (server.clone(), state.clone(), requests.clone(), url.clone(), cdn.clone());
        let thread = std::thread::spawn(move || {
            for r in s2.incoming_requests() {
                rq.fetch_add(1, Ordering::SeqCst);
                handle(r, &st, &base, &c2);
            }
        });
        MockHub { url, state, requests, server, thread: Some(thread) }
    }

    /// Puts a repository on the Hub directly.
    /// A dataset repository (`user/name`), public (used by banter-train's tests, which include this file).
    #[allow(dead_code)]
    pub fn put_dataset(&self, repo: &str, files: &[(&str, Vec<u8>)]) {
        self.put_repo(&format!("ds--{repo}"), files, false);
    }

    pub fn put_repo(&self, repo: &str, files: &[(&str, Vec<u8>)], private: bool) {
        let mut st = self.state.lock().unwrap();
        let n = st.repos.len() + 100;
        let mut r = Repo { commit: new_commit(n), private, ..Repo::default() };
        for (p, d) in files {
            if is_lfs(p, d) {
                st.lfs.insert(sha256(d), d.clone());
            }
            r.files.insert(p.to_string(), d.clone());
        }
        st.repos.insert(repo.into(), r);
    }
}

enum Who {
    Anonymous,
    Read,
    Write,
    Bad,
}

fn who(r: &Request) -> Who {
    let auth = r.headers().iter().find(|x| x.field.equiv("authorization")).map(|x| x.value.as_str().to_string());
    match auth.as_deref() {
        None => Who::Anonymous,
        Some("Bearer hf_write") => Who::Write,
        Some("Bearer hf_read") => Who::Read,
        Some(_) => Who::Bad,
    }
}

/// The CDN: `GET /lfs-cdn/{oid}` with `Range`; a broken download sends half the body and closes.
fn serve_cdn(mut c: std::net::TcpStream, st: &Mutex<State>) {
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    let mut s = st.lock().unwrap();
    let oid = path.trim_start_matches("/lfs-cdn/");
    let Some(data) = s.lfs.get(oid).cloned() else {
        let _ = c.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    if let Some(r) = &range {
        s.ranges.push(r.clone());
    }
    let start = range.and_then(|v| v.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok()).unwrap_or(0);
    if start > 0 && start >= data.len() {
        // As a real server answers a range past the end.
        let _ = c.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    }
    if s.endless {
        drop(s);
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
        let mut sent = 0;
        while sent < 64 << 20 && c.write_all(&data).is_ok() {
            sent += data.len();
        }
        let _ = c.shutdown(std::net::Shutdown::Both);
        return;
    }
    let rest = &data[start..];
    let status = if start > 0 { "206 Partial Content" } else { "200 OK" };
    let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", rest.len());
    let _ = c.write_all(head.as_bytes());
    if s.break_downloads > 0 {
        s.break_downloads -= 1;
        let _ = c.write_all(&rest[..rest.len() / 2]);
    } else {
        let _ = c.write_all(rest);
    }
    let _ = c.flush();
    let _ = c.shutdown(std::net::Shutdown::Both);
}

fn handle(mut r: Request, st: &Mutex<State>, base: &str, cdn: &str) {
    let url = r.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    // Datasets (`/api/datasets/u/n/…`, `/datasets/u/n/resolve/…`) are kept as repositories named `ds--u/n`.
    let path = if let Some(rest) = path.strip_prefix("/api/datasets/") {
        format!("/api/models/ds--{rest}")
    } else if let Some(rest) = path.strip_prefix("/datasets/") {
        format!("/ds--{rest}")
    } else {
        path
    };
    let method = r.method().clone();
    let who = who(&r);
    let mut body = Vec::new();
    let _ = r.as_reader().read_to_end(&mut body);
    if matches!(who, Who::Bad) && !path.starts_with("/lfs-") {
        let _ = r.respond(err(401, "Invalid credentials in Authorization header"));
        return;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut s = st.lock().unwrap();
    let visible = |s: &State, repo: &str, who: &Who| {
        s.repos.get(repo).is_some_and(|x| !x.private || matches!(who, Who::Read | Who::Write))
    };
    // A renamed repository (a legacy name without a user, or `old/name`): relative 307 to the new name.
    let old = |n: usize| -> Option<(String, usize)> {
        let one = parts.get(n).map(|p| p.to_string())?;
        if s.renamed.contains_key(&one) {
            return Some((one, 1));
        }
        let two = format!("{one}/{}", parts.get(n + 1)?);
        s.renamed.contains_key(&two).then_some((two, 2))
    };
    let at = if parts.len() > 2 && parts[0] == "api" && parts[1] == "models" { 2 } else { 0 };
    if (method == Method::Get || method == Method::Head)
        && let Some((name, len)) = old(at)
    {
        let rest = parts[at + len..].join("/");
        let mut to = format!("/{}{}", if at == 2 { "api/models/" } else { "" }, s.renamed[&name]);
        if !rest.is_empty() {
            to = format!("{to}/{rest}");
        }
        let _ = r.respond(Response::empty(307).with_header(h("location", &to)));
        return;
    }
    // GET /api/models/{u}/{n}/revision/{rev}
    if method == Method::Get && parts.len() >= 6 && parts[0] == "api" && parts[1] == "models" && parts[4] == "revision"
    {
        let repo = format!("{}/{}", parts[2], parts[3]);
        if !visible(&s, &repo, &who) {
            let _ = r.respond(err(404, "Repository not found"));
            return;
        }
        let x = &s.repos[&repo];
        let sib: Vec<Value> = x.files.keys().map(|f| json!({"rfilename": f})).collect();
        let _ = r.respond(json_resp(200, json!({"id": repo, "sha": x.commit, "siblings": sib})));
        return;
    }
    // HEAD/GET /{u}/{n}/resolve/{rev}/{path…}
    if parts.len() >= 5 && parts[2] == "resolve" && (method == Method::Head || method == Method::Get) {
        let repo = format!("{}/{}", parts[0], parts[1]);
        if !visible(&s, &repo, &who) {
            let _ = r.respond(err(404, "Repository not found"));
            return;
        }
        let x = &s.repos[&repo];
        let file = parts[4..].join("/");
        let Some(data) = x.files.get(&file) else {
            let _ = r.respond(err(404, "Entry not found"));
            return;
        };
        if is_lfs(&file, data) {
            let oid = sha256(data);
            let resp = Response::empty(302)
                .with_header(h("location", &format!("{cdn}/lfs-cdn/{oid}")))
                .with_header(h("x-linked-etag", &format!("\"{oid}\"")))
                .with_header(h("x-linked-size", &s.declared_size.unwrap_or(data.len()).to_string()))
                .with_header(h("x-repo-commit", &x.commit));
            let _ = r.respond(resp);
        } else {
            let etag = format!("\"{}\"", &sha256(data)[..40]);
            let resp = Response::from_data(if method == Method::Head { Vec::new() } else { data.clone() })
                .with_header(h("etag", &etag))
                .with_header(h("x-repo-commit", &x.commit));
            let resp = if method == Method::Head {
                resp.with_header(h("content-length", &data.len().to_string()))
            } else {
                resp
            };
            let _ = r.respond(resp);
        }
        return;
    }
    let can_write = matches!(who, Who::Write);
    // POST /api/repos/create
    if method == Method::Post && path == "/api/repos/create" {
        if !can_write {
            let _ = r.respond(err(
                if matches!(who, Who::Anonymous) { 401 } else { 403 },
                "You don't have the rights to create a model under this namespace",
            ));
            return;
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let repo = format!("{}/{}", v["organization"].as_str().unwrap_or(""), v["name"].as_str().unwrap_or(""));
        if s.repos.contains_key(&repo) {
            let _ = r.respond(err(409, "You already created this model repo"));
            return;
        }
        let n = s.repos.len();
        s.repos.insert(
            repo.clone(),
            Repo { commit: new_commit(n), private: v["private"].as_bool().unwrap_or(false), ..Repo::default() },
        );
        let _ = r.respond(json_resp(200, json!({"url": format!("{base}/{repo}")})));
        return;
    }
    // POST /api/models/{u}/{n}/{preupload|commit|branch}/{rev}
    if method == Method::Post && parts.len() >= 6 && parts[0] == "api" && parts[1] == "models" {
        let repo = format!("{}/{}", parts[2], parts[3]);
        if !can_write {
            let _ =
                r.respond(err(if matches!(who, Who::Anonymous) { 401 } else { 403 }, "Forbidden: write access needed"));
            return;
        }
        if !s.repos.contains_key(&repo) {
            let _ = r.respond(err(404, "Repository not found"));
            return;
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match parts[4] {
            "preupload" => {
                let files: Vec<Value> = v["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let p = f["path"].as_str().unwrap_or("");
                        let big = f["size"].as_u64().unwrap_or(0) > 10 << 20;
                        let lfs = big || is_lfs(p, &[]);
                        json!({"path": p, "uploadMode": if lfs {"lfs"} else {"regular"}, "shouldIgnore": false})
                    })
                    .collect();
                let _ = r.respond(json_resp(200, json!({"files": files})));
            }
            "branch" => {
                let b = parts[5..].join("/");
                let x = s.repos.get_mut(&repo).unwrap();
                if x.branches.contains(&b) {
                    let _ = r.respond(err(409, "Reference already exists"));
                } else {
                    x.branches.push(b);
                    let _ = r.respond(json_resp(200, json!({})));
                }
            }
            "commit" => {
                let text = String::from_utf8_lossy(&body).to_string();
                let mut new = BTreeMap::new();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let l: Value = serde_json::from_str(line).unwrap();
                    let val = &l["value"];
                    match l["key"].as_str() {
                        Some("file") => {
                            let d = base64::engine::general_purpose::STANDARD
                                .decode(val["content"].as_str().unwrap())
                                .unwrap();
                            new.insert(val["path"].as_str().unwrap().to_string(), d);
                        }
                        Some("lfsFile") => {
                            let oid = val["oid"].as_str().unwrap();
                            let Some(d) = s.lfs.get(oid).cloned() else {
                                let _ = r.respond(err(400, "LFS object not uploaded"));
                                return;
                            };
                            new.insert(val["path"].as_str().unwrap().to_string(), d);
                        }
                        _ => {}
                    }
                }
                let n = s.repos.len() + s.lfs.len() + 50;
                let x = s.repos.get_mut(&repo).unwrap();
                x.files.extend(new);
                x.commit = new_commit(n + x.files.len());
                let c = x.commit.clone();
                let _ = r
                    .respond(json_resp(200, json!({"commitUrl": format!("{base}/{repo}/commit/{c}"), "commitOid": c})));
            }
            _ => {
                let _ = r.respond(err(404, "no such endpoint"));
            }
        }
        return;
    }
    // POST /{u}/{n}.git/info/lfs/objects/batch
    if method == Method::Post && path.ends_with(".git/info/lfs/objects/batch") {
        if !can_write {
            let _ = r.respond(err(403, "Forbidden"));
            return;
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let objs: Vec<Value> = v["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let oid = o["oid"].as_str().unwrap_or("");
                let size = o["size"].as_u64().unwrap_or(0) as usize;
                if s.lfs.contains_key(oid) {
                    json!({"oid": oid, "size": o["size"]})
                } else if s.multipart_above.is_some_and(|m| size > m) {
                    let mut header = serde_json::Map::new();
                    header.insert("chunk_size".into(), json!(PART.to_string()));
                    for i in 1..=size.div_ceil(PART) {
                        header.insert(format!("{i:05}"), json!(format!("{base}/lfs-part/{oid}/{i}")));
                    }
                    json!({"oid": oid, "size": o["size"], "actions": {"upload": {"href": format!("{base}/lfs-complete/{oid}"), "header": header}}})
                } else {
                    json!({"oid": oid, "size": o["size"], "actions": {"upload": {"href": format!("{base}/lfs-upload/{oid}"), "header": {}}}})
                }
            })
            .collect();
        let _ = r.respond(json_resp(200, json!({"transfer": "basic", "objects": objs})));
        return;
    }
    if method == Method::Put && parts.len() == 3 && parts[0] == "lfs-part" {
        let n: usize = parts[2].parse().unwrap_or(0);
        let etag = format!("\"etag-{n}\"");
        s.parts.entry(parts[1].to_string()).or_default().insert(n, body);
        let _ = r.respond(Response::empty(200).with_header(h("etag", &etag)));
        return;
    }
    if method == Method::Post && parts.len() == 2 && parts[0] == "lfs-complete" {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let got = s.parts.remove(parts[1]).unwrap_or_default();
        let listed: Vec<(usize, String)> = v["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["partNumber"].as_u64().unwrap_or(0) as usize, p["etag"].as_str().unwrap_or("").to_string()))
            .collect();
        let ok = listed.len() == got.len()
            && listed.iter().all(|(n, e)| got.contains_key(n) && *e == format!("\"etag-{n}\""));
        let data: Vec<u8> = got.into_values().flatten().collect();
        if !ok || sha256(&data) != parts[1] {
            let _ = r.respond(err(400, "multipart: parts or sha256 do not match"));
            return;
        }
        s.lfs.insert(parts[1].to_string(), data);
        s.lfs_puts += 1;
        let _ = r.respond(json_resp(200, json!({})));
        return;
    }
    if method == Method::Put && parts.len() == 2 && parts[0] == "lfs-upload" {
        if sha256(&body) != parts[1] {
            let _ = r.respond(err(400, "sha256 mismatch"));
            return;
        }
        s.lfs.insert(parts[1].to_string(), body);
        s.lfs_puts += 1;
        let _ = r.respond(Response::empty(200));
        return;
    }
    let _ = r.respond(err(404, "no such endpoint"));
}
