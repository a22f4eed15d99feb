//! Saved duplicate indexes (`banter-validate --save-index`, `--index`): a `--shard` job saves the keys of
//! its records; the next pass over each shard loads every shard's index, merged (the earliest origin of each
//! key), and so finds the duplicates that sit in two shards as the one-job run does.
//!
//! Layout (little-endian): magic `BNTRDUP1`; a u32 length and a JSON header (`inputs`: the run's input
//! names, origins index them; `exact`, `bands`: entry counts); then the exact entries (u128 key, u64 input,
//! u64 line) and the band entries (u64 key, u64 input, u64 line).

use std::io::Write;
use std::path::Path;

use banter_core::Error;
use banter_core::error::FieldError;
use banter_core::jsonl::Output;
use serde::{Deserialize, Serialize};

use crate::dedup::Index;

const MAGIC: &[u8; 8] = b"BNTRDUP1";

#[derive(Serialize, Deserialize)]
struct Header {
    inputs: Vec<String>,
    exact: u64,
    bands: u64,
}

/// Writes `index` (of a run over `inputs`) to `path`, atomically.
pub fn save(path: &Path, inputs: &[String], index: &Index) -> Result<(), Error> {
    let header = serde_json::to_vec(&Header {
        inputs: inputs.to_vec(),
        exact: index.exact.len() as u64,
        bands: index.bands.len() as u64,
    })
    .map_err(|e| Error::io(path.display(), std::io::Error::other(e)))?;
    let mut buf = Vec::with_capacity(16 + header.len() + index.exact.len() * 32 + index.bands.len() * 24);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(header.len() as u32).to_le_bytes());
    buf.extend_from_slice(&header);
    // Sorted, so that the same index is the same file.
    let mut exact: Vec<_> = index.exact.iter().collect();
    exact.sort_unstable();
    for (k, (f, l)) in exact {
        buf.extend_from_slice(&k.to_le_bytes());
        buf.extend_from_slice(&(*f as u64).to_le_bytes());
        buf.extend_from_slice(&l.to_le_bytes());
    }
    let mut bands: Vec<_> = index.bands.iter().collect();
    bands.sort_unstable();
    for (k, (f, l)) in bands {
        buf.extend_from_slice(&k.to_le_bytes());
        buf.extend_from_slice(&(*f as u64).to_le_bytes());
        buf.extend_from_slice(&l.to_le_bytes());
    }
    let mut out = Output::create(Some(path))?;
    out.write_all(&buf).map_err(|e| Error::io(path.display(), e))?;
    out.commit()
}

/// Reads an index [`save`] wrote: the inputs it was made over, and the index.
pub fn load(path: &Path) -> Result<(Vec<String>, Index), Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    let bad = |m: String| Error::data(path.display().to_string(), None, FieldError::record(m));
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(bad("not a banter duplicate index (no BNTRDUP1 magic)".into()));
    }
    let hlen = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let body = 12 + hlen;
    let header: Header = bytes
        .get(12..body)
        .and_then(|h| serde_json::from_slice(h).ok())
        .ok_or_else(|| bad("the index header is damaged".into()))?;
    // Checked: a hostile header's counts must not wrap around to the file's length.
    let want = header
        .exact
        .checked_mul(32)
        .and_then(|e| header.bands.checked_mul(24).and_then(|b| b.checked_add(e)))
        .and_then(|x| x.checked_add(body as u64));
    if want != Some(bytes.len() as u64) {
        return Err(bad(format!(
            "the index is {} bytes, its header counts {} exact and {} band entries: truncated or damaged",
            bytes.len(),
            header.exact,
            header.bands
        )));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let mut index = Index::default();
    let mut at = body;
    for _ in 0..header.exact {
        let k = u128::from_le_bytes(bytes[at..at + 16].try_into().expect("16 bytes"));
        index.exact.insert(k, (u64_at(at + 16) as usize, u64_at(at + 24)));
        at += 32;
    }
    for _ in 0..header.bands {
        index.bands.insert(u64_at(at), (u64_at(at + 8) as usize, u64_at(at + 16)));
        at += 24;
    }
    Ok((header.inputs, index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::{band_keys, exact_key};

    #[test]
    fn an_index_round_trips_and_merges_keep_the_earliest_origin() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Index::default();
        a.exact(exact_key("x"), (0, 9));
        a.near(&band_keys("a longer text about rivers and boats in the morning"), (0, 9));
        let p = dir.path().join("a.idx");
        save(&p, &["d.jsonl".into()], &a).unwrap();
        let (inputs, mut back) = load(&p).unwrap();
        assert_eq!(inputs, vec!["d.jsonl".to_string()]);
        assert_eq!(back.len(), a.len());
        let mut b = Index::default();
        b.exact(exact_key("x"), (0, 3));
        back.merge(b);
        // Line 3 is earlier: it is the original; line 9 is its duplicate, line 3 is not one of itself.
        assert_eq!(back.exact(exact_key("x"), (0, 9)), Some((0, 3)));
        assert_eq!(back.exact(exact_key("x"), (0, 3)), None);
        std::fs::write(&p, b"BNTRDUP1junk").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains(&p.display().to_string()));
        // Counts whose byte size wraps around u64 to the file's length are refused, not read past the end.
        let header = br#"{"inputs":[],"exact":576460752303423488,"bands":0}"#;
        let mut hostile = b"BNTRDUP1".to_vec();
        hostile.extend_from_slice(&(header.len() as u32).to_le_bytes());
        hostile.extend_from_slice(header);
        std::fs::write(&p, &hostile).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("truncated or damaged"));
    }
}
