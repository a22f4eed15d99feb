//! Datasets by name, as peer trainers take them: `user/name[:split][@revision]`. The split's data files
//! (JSON Lines, JSON, Parquet) are fetched into the standard cache (`datasets--user--name`, the layout
//! `huggingface_hub` writes), with the same offline and resume rules as models.

use std::path::PathBuf;

use crate::download::{file, is_commit, repo_info, write_small};
use crate::{HubError, HubSettings, RepoId};

/// A dataset and the split to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// The repository and revision.
    pub id: RepoId,
    /// The split (default `train`).
    pub split: String,
}

impl DatasetSpec {
    /// `user/name[:split][@revision]` (also a legacy name without a user).
    pub fn parse(s: &str) -> Option<DatasetSpec> {
        let (main, revision) = match s.split_once('@') {
            Some((m, r)) if !r.is_empty() => (m, Some(r)),
            Some(_) => return None,
            None => (s, None),
        };
        let (repo, split) = match main.split_once(':') {
            Some((r, sp)) if !sp.is_empty() && sp.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) => {
                (r, sp.to_string())
            }
            Some(_) => return None,
            None => (main, "train".to_string()),
        };
        let with_rev = match revision {
            Some(r) => format!("{repo}@{r}"),
            None => repo.to_string(),
        };
        RepoId::parse_name(&with_rev).map(|id| DatasetSpec { id, split })
    }
}

fn is_data(f: &str) -> bool {
    [".jsonl", ".json", ".parquet"].iter().any(|e| f.ends_with(e))
}

/// The files of `split`: those whose name or folder names the split (`data/train-00000-of-00001.parquet`,
/// `train.jsonl`, `train/part-0.json`), as the Hub's dataset viewer assigns them.
pub fn split_files(files: &[String], split: &str) -> Vec<String> {
    let named = |f: &str| {
        f.split('/').any(|part| {
            let stem = part.split('.').next().unwrap_or(part);
            stem == split || stem.starts_with(&format!("{split}-")) || stem.starts_with(&format!("{split}_"))
        })
    };
    let mut v: Vec<String> = files.iter().filter(|f| is_data(f) && named(f)).cloned().collect();
    v.sort();
    v
}

/// Fetches (or finds in the cache) the data files of `spec`'s split; returns them in name order.
pub fn fetch(spec: &DatasetSpec, s: &HubSettings) -> Result<Vec<PathBuf>, HubError> {
    let dir = s.cache.join(format!("datasets--{}", spec.id.repo.replace('/', "--")));
    let cached = || -> Option<Vec<PathBuf>> {
        let commit = if is_commit(&spec.id.revision) {
            spec.id.revision.clone()
        } else {
            std::fs::read_to_string(dir.join("refs").join(&spec.id.revision)).ok()?.trim().to_string()
        };
        let list = std::fs::read_to_string(dir.join("snapshots").join(&commit).join(".banter-split-files")).ok()?;
        let wanted = format!("{}\n", spec.split);
        let mut lines = list.lines();
        (lines.next().map(|l| format!("{l}\n")) == Some(wanted))
            .then(|| lines.map(|f| dir.join("snapshots").join(&commit).join(f)).collect::<Vec<_>>())
            .filter(|v: &Vec<PathBuf>| !v.is_empty() && v.iter().all(|p| p.exists()))
    };
    if s.offline {
        return cached().ok_or_else(|| {
            HubError::Offline(format!(
                "dataset {}:{} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set",
                spec.id,
                spec.split,
                s.cache.display()
            ))
        });
    }
    let (sha, files, canonical) = match repo_info("datasets", &spec.id, s) {
        Ok(x) => x,
        Err(HubError::Network { url, source }) => {
            return cached().ok_or(HubError::Network { url, source });
        }
        Err(e) => return Err(e),
    };
    let want = split_files(&files, &spec.split);
    if want.is_empty() {
        let data: Vec<&String> = files.iter().filter(|f| is_data(f)).take(8).collect();
        return Err(HubError::Protocol(format!(
            "dataset {}: no JSON Lines, JSON or Parquet file of split {:?} (data files: {data:?})",
            spec.id, spec.split
        )));
    }
    let snap = dir.join("snapshots").join(&sha);
    let mut out = Vec::new();
    for f in &want {
        let target = snap.join(f);
        if !target.exists() {
            file("datasets/", &canonical, &sha, f, &dir, &target, s)?;
        }
        out.push(target);
    }
    write_small(&snap.join(".banter-split-files"), &format!("{}\n{}\n", spec.split, want.join("\n")))?;
    if !is_commit(&spec.id.revision) || spec.id.revision != sha {
        write_small(&dir.join("refs").join(&spec.id.revision), &sha)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_split_files() {
        let d = DatasetSpec::parse("OpenAssistant/oasst1:validation@v1").unwrap();
        assert_eq!(
            (d.id.repo.as_str(), d.id.revision.as_str(), d.split.as_str()),
            ("OpenAssistant/oasst1", "v1", "validation")
        );
        assert_eq!(DatasetSpec::parse("u/d").unwrap().split, "train");
        assert!(DatasetSpec::parse("u/d:").is_none() && DatasetSpec::parse("./x").is_none());
        let files: Vec<String> = [
            "README.md",
            "data/train-00000-of-00001.parquet",
            "data/validation-00000-of-00001.parquet",
            "train.jsonl",
            "test.json",
            "extra/training_notes.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(split_files(&files, "train"), ["data/train-00000-of-00001.parquet", "train.jsonl"]);
        assert_eq!(split_files(&files, "test"), ["test.json"]);
    }
}
