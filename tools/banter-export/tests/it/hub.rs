//! The Hub both ways against a mock Hub on 127.0.0.1 (`mockhub.rs`): upload (repository created, small
//! files inline, weights through LFS, a branch), download by name into the standard cache layout, a
//! model in the cache loading with no network and with `HF_HUB_OFFLINE=1`, an interrupted download
//! resumed with `Range`, and the errors 401, 403 and 404 in words with exit code 4.

use std::path::Path;

use crate::mockhub::MockHub;
use crate::{bin, families, trained};

fn hub_cmd(hub: &str, cache: &Path, token: Option<&str>) -> assert_cmd::Command {
    let mut c = bin();
    c.env("HF_ENDPOINT", hub)
        .env("HF_HUB_CACHE", cache)
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_HOME", cache.join("home"));
    match token {
        Some(t) => c.env("HF_TOKEN", t),
        None => c.env_remove("HF_TOKEN"),
    };
    c
}

#[test]
fn a_model_goes_up_and_comes_back_down_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = families().into_iter().find(|(n, _)| *n == "llama").unwrap().1;
    let model = trained(dir.path(), "llama", &cfg, &[]);
    let hub = MockHub::start();
    let cache = dir.path().join("cache");
    // Upload: the repository is created; the weights go through LFS.
    let o = hub_cmd(&hub.url, &cache, Some("hf_write"))
        .args(["hub", "--json"])
        .arg(&model)
        .arg("me/tiny")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["upload"]["created"], true);
    assert_eq!(r["upload"]["lfs_files"], 1);
    {
        let st = hub.state.lock().unwrap();
        let repo = &st.repos["me/tiny"];
        assert_eq!(repo.files["model.safetensors"], std::fs::read(model.join("model.safetensors")).unwrap());
        assert_eq!(repo.files["config.json"], std::fs::read(model.join("config.json")).unwrap());
        assert_eq!(st.lfs_puts, 1);
        // A model card the Hub reads: front matter, then the training (from train_report.json) and how to load.
        let card = String::from_utf8(repo.files["README.md"].clone()).unwrap();
        assert!(card.starts_with("---\nlibrary_name: transformers\n"), "{card}");
        assert!(
            card.contains("- banter") && card.contains("- llama") && card.contains("pipeline_tag: text-generation")
        );
        assert!(card.contains("- steps: 10") && card.contains("- precision: fp32"), "{card}");
        assert!(card.contains("AutoModelForCausalLM.from_pretrained(\"me/tiny\")"), "{card}");
        assert!(!model.join("README.md").exists(), "the folder itself is not touched");
    }
    // Again, to a branch: the repository exists (409 is fine) and the LFS object is not sent twice.
    let o = hub_cmd(&hub.url, &cache, Some("hf_write"))
        .args(["hub", "--json", "--revision", "exp"])
        .arg(&model)
        .arg("me/tiny")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((r["upload"]["created"].as_bool(), r["upload"]["lfs_bytes_sent"].as_u64()), (Some(false), Some(0)));
    assert_eq!(hub.state.lock().unwrap().repos["me/tiny"].branches, ["exp"]);

    // Download by name, as any tool's model path: the standard cache layout, weights a link into blobs.
    let out = dir.path().join("from-hub.gguf");
    let o = hub_cmd(&hub.url, &cache, None).arg("gguf").arg("me/tiny").arg("-o").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let repo = cache.join("models--me--tiny");
    let commit = std::fs::read_to_string(repo.join("refs/main")).unwrap();
    let snap = repo.join("snapshots").join(commit.trim());
    assert!(std::fs::symlink_metadata(snap.join("model.safetensors")).unwrap().file_type().is_symlink());
    assert_eq!(
        std::fs::read(snap.join("model.safetensors")).unwrap(),
        std::fs::read(model.join("model.safetensors")).unwrap()
    );
    assert!(
        std::fs::read_dir(repo.join("blobs")).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".incomplete"))
    );

    // In the cache: loads with HF_HUB_OFFLINE=1 and no request, and when the Hub cannot be reached.
    let before = hub.requests.load(std::sync::atomic::Ordering::SeqCst);
    let o = hub_cmd(&hub.url, &cache, None)
        .env("HF_HUB_OFFLINE", "1")
        .arg("gguf")
        .arg("me/tiny")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(hub.requests.load(std::sync::atomic::Ordering::SeqCst), before, "offline: no request");
    drop(hub);
    let o =
        hub_cmd("http://127.0.0.1:9", &cache, None).arg("gguf").arg("me/tiny").arg("-o").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("using the cached me/tiny"));
    // Offline and not in the cache: a clear error, exit 4.
    let o = hub_cmd("http://127.0.0.1:9", &cache, None)
        .env("HF_HUB_OFFLINE", "1")
        .arg("gguf")
        .arg("me/other")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HF_HUB_OFFLINE"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = families().into_iter().find(|(n, _)| *n == "qwen2").unwrap().1;
    let model = trained(dir.path(), "qwen2", &cfg, &[]);
    let hub = MockHub::start();
    let files: Vec<(&str, Vec<u8>)> = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
        .iter()
        .map(|f| (*f, std::fs::read(model.join(f)).unwrap()))
        .collect();
    hub.put_repo("org/private-model", &files, true);
    hub.state.lock().unwrap().break_downloads = 1;
    let cache = dir.path().join("cache");
    let out = dir.path().join("m.gguf");
    let o = hub_cmd(&hub.url, &cache, Some("hf_read"))
        .arg("gguf")
        .arg("org/private-model")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("resumes"), "{}", String::from_utf8_lossy(&o.stderr));
    let blobs = cache.join("models--org--private-model/blobs");
    let part = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".incomplete"))
        .unwrap();
    let had = std::fs::metadata(&part).unwrap().len();
    assert!(had > 0);
    let o = hub_cmd(&hub.url, &cache, Some("hf_read"))
        .arg("gguf")
        .arg("org/private-model")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(hub.state.lock().unwrap().ranges, [format!("bytes={had}-")]);
    // Private: without a token it is not found.
    let o = hub_cmd(&hub.url, &dir.path().join("c2"), None)
        .arg("gguf")
        .arg("org/private-model")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("404") && err.contains("not found"), "{err}");
}

/// A legacy name without a user (`gpt2`) is a Hub name when no such folder exists: the Hub's relative
/// redirect to the new name is followed and the cache keeps the name typed. A name that is neither a folder
/// nor on the Hub says both.
#[test]
fn legacy_names_without_a_user_resolve_through_the_hubs_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, cache, weights) = hosted(dir.path());
    hub.state.lock().unwrap().renamed.insert("legacy-m".into(), "org/m".into());
    let out = dir.path().join("m.gguf");
    let o = hub_cmd(&hub.url, &cache, None)
        .current_dir(dir.path())
        .args(["gguf", "legacy-m", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.exists());
    let snaps = cache.join("models--legacy-m/snapshots");
    let snap = std::fs::read_dir(&snaps).unwrap().next().unwrap().unwrap().path();
    assert_eq!(std::fs::read(snap.join("model.safetensors")).unwrap(), weights);
    // A folder of that name here wins over the Hub.
    std::fs::create_dir_all(dir.path().join("local-only")).unwrap();
    let o = hub_cmd(&hub.url, &cache, None)
        .current_dir(dir.path())
        .args(["gguf", "local-only", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("Hub"), "{err}");
    // Neither a folder nor a Hub name: both said.
    let o = hub_cmd(&hub.url, &cache, None)
        .current_dir(dir.path())
        .args(["gguf", "nosuch", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("no such folder here") && err.contains("Hub") && err.contains("404"), "{err}");
}

#[test]
fn hub_errors_are_said_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let hub = MockHub::start();
    let cache = dir.path().join("cache");
    let folder = dir.path().join("m");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("config.json"), "{}").unwrap();
    for (token, status, words) in [(Some("hf_wrong"), "401", "unauthorized"), (Some("hf_read"), "403", "forbidden")] {
        let o = hub_cmd(&hub.url, &cache, token).arg("hub").arg(&folder).arg("me/x").output().unwrap();
        assert_eq!(o.status.code(), Some(4), "{token:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(status) && err.contains(words), "{token:?}: {err}");
    }
    // No token at all: a usage error before any request.
    let o = hub_cmd(&hub.url, &cache, None).arg("hub").arg(&folder).arg("me/x").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HF_TOKEN"));
    // A name that is neither a directory here nor on the Hub.
    let o = hub_cmd(&hub.url, &cache, None)
        .arg("onnx")
        .arg("nobody/nothing")
        .arg("-o")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no such folder here") && err.contains("404"), "{err}");
    assert!(!dir.path().join("o").exists());
}

#[test]
fn large_files_go_up_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let hub = MockHub::start();
    hub.state.lock().unwrap().multipart_above = Some(100_000);
    let folder = dir.path().join("m");
    std::fs::create_dir_all(folder.join("checkpoint-5")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(folder.join("model.safetensors"), &big).unwrap();
    std::fs::write(folder.join("config.json"), "{}").unwrap();
    std::fs::write(folder.join("checkpoint-5/optimizer.safetensors"), b"state").unwrap();
    let o = hub_cmd(&hub.url, &dir.path().join("c"), Some("hf_write"))
        .args(["hub", "--json"])
        .arg(&folder)
        .arg("me/big")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = hub.state.lock().unwrap();
    assert_eq!(st.repos["me/big"].files["model.safetensors"], big);
    // banter-train's checkpoints (optimizer state) stay home unless asked for.
    assert!(!st.repos["me/big"].files.keys().any(|f| f.starts_with("checkpoint-")));
}

/// The qwen2 model on the mock Hub as `org/m`; returns the hub, the cache and the weights' bytes.
fn hosted(dir: &Path) -> (MockHub, std::path::PathBuf, Vec<u8>) {
    let cfg = families().into_iter().find(|(n, _)| *n == "qwen2").unwrap().1;
    let model = trained(dir, "qwen2", &cfg, &[]);
    let hub = MockHub::start();
    let files: Vec<(&str, Vec<u8>)> = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
        .iter()
        .map(|f| (*f, std::fs::read(model.join(f)).unwrap()))
        .collect();
    let weights = files[1].1.clone();
    hub.put_repo("org/m", &files, false);
    (hub, dir.join("cache"), weights)
}

fn blobs(cache: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(cache.join("models--org--m/blobs"))
        .map(|d| {
            d.map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
            })
            .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_body_longer_than_declared_is_cut_off_and_discarded_and_a_bad_part_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, cache, weights) = hosted(dir.path());
    let out = dir.path().join("m.gguf");
    let export = || hub_cmd(&hub.url, &cache, None).arg("gguf").arg("org/m").arg("-o").arg(&out).output().unwrap();
    // A body that never ends, for a file declared 100 bytes long: stopped at 100, nothing kept.
    {
        let mut s = hub.state.lock().unwrap();
        s.declared_size = Some(100);
        s.endless = true;
    }
    let o = export();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("more than the file's declared 100 bytes"), "{err}");
    assert!(blobs(&cache).iter().all(|(n, len)| !n.ends_with(".incomplete") && *len < 1 << 20), "{:?}", blobs(&cache));
    // A HEAD that understates the size: the same, and the next run (the Hub fixed) starts clean.
    {
        let mut s = hub.state.lock().unwrap();
        s.declared_size = Some(weights.len() / 2);
        s.endless = false;
    }
    assert_eq!(export().status.code(), Some(4));
    assert!(blobs(&cache).iter().all(|(n, _)| !n.ends_with(".incomplete")), "{:?}", blobs(&cache));
    hub.state.lock().unwrap().declared_size = None;
    // A part left longer than the file (an older run against a lying server) is discarded, not resumed.
    let oid: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&weights).iter().map(|x| format!("{x:02x}")).collect()
    };
    std::fs::create_dir_all(cache.join("models--org--m/blobs")).unwrap();
    std::fs::write(cache.join(format!("models--org--m/blobs/{oid}.incomplete")), vec![7u8; weights.len() + 10])
        .unwrap();
    let o = export();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(hub.state.lock().unwrap().ranges.is_empty(), "a part longer than the file was resumed");
}

#[cfg(unix)]
#[test]
fn an_upload_takes_only_regular_files_inside_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let hub = MockHub::start();
    let cache = dir.path().join("cache");
    let folder = dir.path().join("m");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    std::fs::write(folder.join("config.json"), "{}").unwrap();
    std::fs::write(folder.join("sub/notes.txt"), "hi").unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "do not upload").unwrap();
    std::os::unix::fs::symlink(&secret, folder.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(".", folder.join("a")).unwrap();
    std::os::unix::fs::symlink(".", folder.join("sub/b")).unwrap();
    std::os::unix::fs::symlink("config.json", folder.join("alias.json")).unwrap();
    let o = hub_cmd(&hub.url, &cache, Some("hf_write")).arg("hub").arg(&folder).arg("me/links").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for name in ["leak.txt", "a:", "sub/b"] {
        assert!(err.contains(name), "{name} not named: {err}");
    }
    let st = hub.state.lock().unwrap();
    let files: Vec<&String> = st.repos["me/links"].files.keys().collect();
    // README.md is the generated model card.
    assert_eq!(files, ["README.md", "alias.json", "config.json", "sub/notes.txt"]);
}
