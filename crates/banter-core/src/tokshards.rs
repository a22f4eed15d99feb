//! A binary token file split into K shards with a manifest (`banter-tokenize encode --format bin --shards
//! K`): block i of the whole lives in shard `i mod K` at position `i div K`, so the set reads as the one file
//! would, block for block, and each reader (each rank) opens the shards without loading any of them.
//!
//! The manifest (`-o PATH`, JSON) is written last, after every shard is in place:
//! `{"format": "banter-token-shards", "version": 1, "blocks", "tokens", "vocab_size", "block_size",
//! "shards": [{"path": "NAME-00000-of-00004.bin", "blocks", "tokens"}, …]}` (paths relative to it).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError};
use crate::records::Block;
use crate::tokbin::{TokBin, TokBinWriter};

/// The most shard files one manifest may name (each is an open file while it is written or read).
pub const MAX_SHARDS: usize = 4096;

/// The manifest's `format`.
pub const FORMAT: &str = "banter-token-shards";

/// One shard in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Its file, relative to the manifest.
    pub path: String,
    /// Its blocks.
    pub blocks: u64,
    /// Its tokens.
    pub tokens: u64,
}

/// The manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// 1.
    pub version: u32,
    /// Blocks in all.
    pub blocks: u64,
    /// Tokens in all.
    pub tokens: u64,
    /// The tokenizer's vocabulary size.
    pub vocab_size: u64,
    /// The block size.
    pub block_size: u64,
    /// The shards, in order.
    pub shards: Vec<ShardEntry>,
}

/// True when `path` is a shard manifest (a JSON file naming [`FORMAT`] near its start).
pub fn is_manifest(path: &Path) -> bool {
    let mut head = [0u8; 256];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else { return false };
    let text = String::from_utf8_lossy(&head[..n]);
    text.trim_start().starts_with('{') && text.contains(FORMAT)
}

/// Shard `s` of `k` beside `manifest`: `STEM-0000s-of-0000k.bin`.
pub fn shard_path(manifest: &Path, s: usize, k: usize) -> PathBuf {
    let stem = manifest.file_stem().map(|x| x.to_string_lossy().into_owned()).unwrap_or_else(|| "tokens".into());
    manifest.with_file_name(format!("{stem}-{s:05}-of-{k:05}.bin"))
}

/// Writes blocks round-robin into K shard files, then the manifest.
#[derive(Debug)]
pub struct TokShardsWriter {
    manifest: PathBuf,
    shards: Vec<TokBinWriter>,
    next: usize,
    vocab_size: u64,
    block_size: u64,
}

impl TokShardsWriter {
    /// `k` shard writers beside `manifest` (a file path: shards cannot go to stdout).
    pub fn new(manifest: &Path, k: usize, vocab_size: u64, block_size: u64) -> Result<Self, Error> {
        if !(1..=MAX_SHARDS).contains(&k) {
            return Err(Error::usage(format!("--shards {k}: give 1 to {MAX_SHARDS} shard files")));
        }
        let shards = (0..k)
            .map(|s| TokBinWriter::new(Some(&shard_path(manifest, s, k)), vocab_size, block_size))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokShardsWriter { manifest: manifest.to_path_buf(), shards, next: 0, vocab_size, block_size })
    }

    /// Appends a block to the next shard.
    pub fn write(&mut self, b: &Block) -> Result<(), Error> {
        let k = self.shards.len();
        self.shards[self.next % k].write(b)?;
        self.next += 1;
        Ok(())
    }

    /// Commits every shard, then the manifest; returns the blocks written.
    pub fn commit(self) -> Result<u64, Error> {
        let k = self.shards.len();
        let mut entries = Vec::with_capacity(k);
        let (mut blocks, mut tokens) = (0, 0);
        for (s, w) in self.shards.into_iter().enumerate() {
            let path = shard_path(&self.manifest, s, k);
            let t = w.tokens();
            let n = w.commit()?;
            blocks += n;
            tokens += t;
            let name = path.file_name().map(|x| x.to_string_lossy().into_owned()).unwrap_or_default();
            entries.push(ShardEntry { path: name, blocks: n, tokens: t });
        }
        let m = Manifest {
            format: FORMAT.into(),
            version: 1,
            blocks,
            tokens,
            vocab_size: self.vocab_size,
            block_size: self.block_size,
            shards: entries,
        };
        let text = serde_json::to_string_pretty(&m).map_err(|e| Error::io("manifest", std::io::Error::other(e)))?;
        let mut out = crate::jsonl::Output::create(Some(&self.manifest))?;
        std::io::Write::write_all(&mut out, format!("{text}\n").as_bytes())
            .map_err(|e| Error::io(self.manifest.display(), e))?;
        out.commit()?;
        Ok(blocks)
    }
}

/// A token file or a set of shards, read block by block.
#[derive(Debug)]
pub struct TokSet {
    shards: Vec<TokBin>,
    name: String,
    blocks: usize,
}

impl TokSet {
    /// Opens a token file, or a manifest and its shards (checking them against it).
    pub fn open(path: &Path) -> Result<Self, Error> {
        let name = path.display().to_string();
        if !is_manifest(path) {
            let one = TokBin::open(path)?;
            let blocks = one.len();
            return Ok(TokSet { shards: vec![one], name, blocks });
        }
        let bad = |m: String| Error::data(&name, None, FieldError::record(m));
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(&name, e))?;
        crate::inputs::register(path);
        let m: Manifest = serde_json::from_str(&text).map_err(|e| bad(format!("manifest: {e}")))?;
        if m.version != 1 || m.shards.is_empty() || m.shards.len() > MAX_SHARDS {
            return Err(bad(format!("unsupported manifest (version {}, {} shards)", m.version, m.shards.len())));
        }
        let k = m.shards.len() as u64;
        let mut shards = Vec::with_capacity(m.shards.len());
        for (s, e) in m.shards.iter().enumerate() {
            if e.path.contains('/') || e.path.contains('\\') || e.path.starts_with('.') {
                return Err(bad(format!("shard {s}: {:?} must be a file beside the manifest", e.path)));
            }
            let t = TokBin::open(&path.with_file_name(&e.path))?;
            // Round-robin: shard s holds blocks s, s + k, … (checked: a hostile count must not wrap).
            let want = m.blocks.checked_add(k - 1 - s as u64).map_or(u64::MAX, |x| x / k);
            if t.len() as u64 != e.blocks || e.blocks != want || t.header.vocab_size != m.vocab_size {
                return Err(bad(format!(
                    "shard {s} ({}) has {} blocks and vocabulary {}; the manifest says {} of {} ({want} expected) and {}",
                    e.path,
                    t.len(),
                    t.header.vocab_size,
                    e.blocks,
                    m.blocks,
                    m.vocab_size
                )));
            }
            shards.push(t);
        }
        Ok(TokSet { shards, name, blocks: m.blocks as usize })
    }

    /// Blocks in all.
    pub fn len(&self) -> usize {
        self.blocks
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks == 0
    }

    /// The path given, for messages.
    pub fn header_name(&self) -> String {
        self.name.clone()
    }

    /// The vocabulary size the tokens were written for.
    pub fn vocab_size(&self) -> u64 {
        self.shards[0].header.vocab_size
    }

    /// Block `i` of the whole.
    pub fn block(&self, i: usize) -> Result<Block, Error> {
        let k = self.shards.len();
        if i >= self.blocks {
            return Err(Error::data(&self.name, None, FieldError::record(format!("block {i} is past the end"))));
        }
        self.shards[i % k].block(i / k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(i: u32) -> Block {
        Block {
            input_ids: vec![i, i + 1, i + 2],
            labels: vec![-100, i64::from(i + 1), i64::from(i + 2)],
            fields: Default::default(),
        }
    }

    #[test]
    fn shards_read_back_as_the_one_file_and_a_bad_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("tok.json");
        let mut w = TokShardsWriter::new(&m, 3, 100, 3).unwrap();
        for i in 0..10 {
            w.write(&block(i)).unwrap();
        }
        assert_eq!(w.commit().unwrap(), 10);
        assert!(is_manifest(&m) && shard_path(&m, 2, 3).exists());
        let set = TokSet::open(&m).unwrap();
        assert_eq!(set.len(), 10);
        for i in 0..10 {
            assert_eq!(set.block(i).unwrap(), block(i as u32));
        }
        // A manifest that lies about a shard is refused, naming it.
        let text = std::fs::read_to_string(&m).unwrap().replacen("\"blocks\": 4", "\"blocks\": 5", 1);
        std::fs::write(&m, text).unwrap();
        let e = TokSet::open(&m).unwrap_err().to_string();
        assert!(e.contains("tok.json") && e.contains("shard 0"), "{e}");
        // A block count that would wrap, and a shard path out of the folder, are refused with the file named.
        let text =
            std::fs::read_to_string(&m).unwrap().replacen("\"blocks\": 10", "\"blocks\": 18446744073709551615", 1);
        std::fs::write(&m, text).unwrap();
        assert!(TokSet::open(&m).unwrap_err().to_string().contains("tok.json"));
        let text = std::fs::read_to_string(&m)
            .unwrap()
            .replacen("18446744073709551615", "10", 1)
            .replacen("\"blocks\": 5", "\"blocks\": 4", 1)
            .replacen("tok-00000-of-00003.bin", "../etc/passwd", 1);
        std::fs::write(&m, text).unwrap();
        assert!(TokSet::open(&m).unwrap_err().to_string().contains("beside the manifest"));
        assert!(
            TokShardsWriter::new(&m, 0, 100, 3).is_err() && TokShardsWriter::new(&m, MAX_SHARDS + 1, 100, 3).is_err()
        );
    }
}
