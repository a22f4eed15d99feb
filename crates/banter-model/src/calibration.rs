//! Remembered precision choices: a timed CPU probe decides `--precision auto` once per CPU model, thread
//! count and model shape, and the answer is kept in `precision.json` in banter's cache folder
//! (`BANTER_CACHE_DIR`, else `$XDG_CACHE_HOME/banter`, else `~/.cache/banter`). The same command on the same
//! machine then takes the same precision every time, whatever the machine's load when it starts, so the same
//! seed gives the same losses. Delete the file (or pass `--precision`) to decide afresh.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::precision::{Decision, Precision};

/// One remembered choice.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    precision: String,
    reason: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    entries: BTreeMap<String, Entry>,
}

/// banter's cache folder.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("BANTER_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("banter")))
        .or_else(|| env("HOME").map(|h| h.join(".cache").join("banter")))
}

fn path() -> Option<PathBuf> {
    cache_dir().map(|d| d.join("precision.json"))
}

fn read(p: &std::path::Path) -> File {
    std::fs::read_to_string(p).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// What this machine decided before for `key` (see [`key`]).
pub fn lookup(key: &str) -> Option<Decision> {
    lookup_in(&path()?, key)
}

fn lookup_in(p: &std::path::Path, key: &str) -> Option<Decision> {
    let e = read(p).entries.remove(key)?;
    let precision = match e.precision.as_str() {
        "fp32" => Precision::Fp32,
        "bf16" => Precision::Bf16,
        _ => return None,
    };
    let at = p.display();
    Some(Decision {
        precision,
        reason: format!("{} (calibrated earlier on this CPU for this shape, kept in {at})", e.reason),
        needs_probe: false,
    })
}

/// Remembers `d` for `key`; the file is replaced atomically. Errors are returned for the caller to mention.
pub fn store(key: &str, d: &Decision) -> std::io::Result<PathBuf> {
    let p = path().ok_or_else(|| std::io::Error::other("no cache folder (HOME is not set)"))?;
    store_in(p, key, d)
}

fn store_in(p: PathBuf, key: &str, d: &Decision) -> std::io::Result<PathBuf> {
    let mut f = read(&p);
    f.version = 1;
    f.entries.insert(key.to_string(), Entry { precision: d.precision.as_str().to_string(), reason: d.reason.clone() });
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = p.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&f).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, &p)?;
    Ok(p)
}

/// The key of a choice: the CPU model, its native bf16 flags, the threads, what is timed (`what`: the
/// family, the model's configuration and the batch shape, LoRA or not).
pub fn key(what: &str) -> String {
    use std::hash::{Hash, Hasher};
    let flags = crate::precision::cpu_flags();
    let native = crate::precision::native_bf16_flags(&flags).join(",");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    what.hash(&mut h);
    format!("{} [{native}] threads {} | {:016x}", crate::precision::cpu_model(), tch::get_num_threads(), h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_choice_is_found_again_and_other_keys_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("precision.json");
        let d = Decision { precision: Precision::Bf16, reason: "probe: 1.4×".into(), needs_probe: false };
        let k = key("llama {…} rows 4x128 lora");
        assert!(lookup_in(&file, &k).is_none());
        let p = store_in(file.clone(), &k, &d).unwrap();
        let got = lookup_in(&p, &k).unwrap();
        assert_eq!(got.precision, Precision::Bf16);
        assert!(got.reason.contains("probe: 1.4×") && got.reason.contains("calibrated earlier"), "{}", got.reason);
        assert!(lookup_in(&p, &key("another shape")).is_none());
        std::fs::write(&p, "not json").unwrap();
        assert!(lookup_in(&p, &k).is_none(), "a damaged file is a miss, not an error");
    }
}
