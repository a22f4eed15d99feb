//! Binary token files (`banter-tokenize encode --format bin`): blocks as a flat array of token ids that
//! banter-train reads block by block, so training memory does not grow with the data (as nanoGPT's and
//! llm.c's `.bin` shards). Layout (all integers little-endian; see docs/formats.md):
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic `BNTRTOK1` |
//! | 8..4096 | JSON header, padded with spaces: `format`, `version`, `dtype` (`u16`/`u32`), `blocks`, `tokens`, `ids_offset`, `mask_offset`, `index_offset`, `vocab_size`, `block_size` |
//! | `ids_offset`.. | `tokens` ids of `dtype`, block after block |
//! | `mask_offset`.. | one bit per token (LSB first): 1 = the token carries loss (label = id), 0 = label −100 |
//! | `index_offset`.. | `blocks + 1` u64 token offsets: block i is tokens `index[i]..index[i+1]` |

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError};
use crate::jsonl::Output;
use crate::records::{Block, IGNORE_INDEX};

/// The first 8 bytes.
pub const MAGIC: &[u8; 8] = b"BNTRTOK1";
/// Bytes before the ids (magic + header).
pub const HEADER_BYTES: u64 = 4096;

/// The JSON header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// `banter-tokens`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// `u16` or `u32`.
    pub dtype: String,
    /// Number of blocks.
    pub blocks: u64,
    /// Number of tokens.
    pub tokens: u64,
    /// Where the ids start.
    pub ids_offset: u64,
    /// Where the loss bits start.
    pub mask_offset: u64,
    /// Where the block index starts.
    pub index_offset: u64,
    /// The tokenizer's vocabulary size.
    pub vocab_size: u64,
    /// The block size it was encoded with.
    pub block_size: u64,
}

impl Header {
    fn width(&self) -> u64 {
        if self.dtype == "u16" { 2 } else { 4 }
    }
}

fn align8(x: u64) -> u64 {
    x.div_ceil(8) * 8
}

/// True when `path` starts with the magic bytes.
pub fn is_tokbin(path: &Path) -> bool {
    let mut buf = [0u8; 8];
    File::open(path).and_then(|mut f| f.read_exact(&mut buf)).is_ok() && &buf == MAGIC
}

/// Where the ids go while blocks are written.
#[derive(Debug)]
enum Ids {
    /// Straight into the output file, after room for the header (filled in by [`TokBinWriter::commit`]):
    /// no second copy of the ids on disk.
    Streamed(Output),
    /// stdout or a device cannot seek back to the header: the ids wait in an unnamed temp file.
    Spooled(BufWriter<File>),
}

/// Writes a token file. The ids stream into the output (a temp file beside the target, renamed into place
/// by [`TokBinWriter::commit`]); loss bits and the block index stay in memory (1/8 byte per token, 8 bytes
/// per block) until the end. Only for stdout are the ids spooled first.
#[derive(Debug)]
pub struct TokBinWriter {
    ids: Ids,
    dest: Option<PathBuf>,
    wide: bool,
    vocab_size: u64,
    block_size: u64,
    mask: Vec<u8>,
    index: Vec<u64>,
    tokens: u64,
}

impl TokBinWriter {
    /// A writer for ids below `vocab_size` (u16 when it fits), the output at `dest` (`None`/`-`: stdout).
    pub fn new(dest: Option<&Path>, vocab_size: u64, block_size: u64) -> Result<Self, Error> {
        let mut out = Output::create(dest)?;
        let ids = if out.pending_path().is_some() {
            out.write_all(&vec![b' '; HEADER_BYTES as usize]).map_err(|e| Error::io(out.name(), e))?;
            Ids::Streamed(out)
        } else {
            Ids::Spooled(BufWriter::with_capacity(1 << 20, tempfile::tempfile().map_err(|e| Error::io("temp", e))?))
        };
        Ok(TokBinWriter {
            ids,
            dest: dest.map(Path::to_path_buf),
            wide: vocab_size > u64::from(u16::MAX) + 1,
            vocab_size,
            block_size,
            mask: Vec::new(),
            index: vec![0],
            tokens: 0,
        })
    }

    /// Appends a block (labels must be the id or −100).
    pub fn write(&mut self, b: &Block) -> Result<(), Error> {
        let sink: &mut dyn Write = match &mut self.ids {
            Ids::Streamed(o) => o,
            Ids::Spooled(f) => f,
        };
        for (i, (&id, &label)) in b.input_ids.iter().zip(&b.labels).enumerate() {
            if label != IGNORE_INDEX && label != i64::from(id) {
                return Err(Error::data(
                    "binary token output",
                    None,
                    FieldError::field("labels", format!("label {label} at {i} is neither the token id {id} nor -100")),
                ));
            }
            let r =
                if self.wide { sink.write_all(&id.to_le_bytes()) } else { sink.write_all(&(id as u16).to_le_bytes()) };
            r.map_err(|e| Error::io("binary token output", e))?;
            let t = self.tokens as usize;
            if t.is_multiple_of(8) {
                self.mask.push(0);
            }
            if label != IGNORE_INDEX {
                self.mask[t / 8] |= 1 << (t % 8);
            }
            self.tokens += 1;
        }
        self.index.push(self.tokens);
        Ok(())
    }

    /// Tokens written.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Blocks written.
    pub fn blocks(&self) -> u64 {
        self.index.len() as u64 - 1
    }

    /// Assembles the file and moves it into place atomically.
    pub fn commit(self) -> Result<u64, Error> {
        let name = self.dest.as_ref().map_or("-".to_string(), |p| p.display().to_string());
        let io_err = |e: io::Error| Error::io(&name, e);
        let width = if self.wide { 4 } else { 2 };
        let ids_bytes = self.tokens * width;
        let mask_offset = align8(HEADER_BYTES + ids_bytes);
        let index_offset = align8(mask_offset + self.mask.len() as u64);
        let header = Header {
            format: "banter-tokens".into(),
            version: 1,
            dtype: if self.wide { "u32" } else { "u16" }.into(),
            blocks: self.blocks(),
            tokens: self.tokens,
            ids_offset: HEADER_BYTES,
            mask_offset,
            index_offset,
            vocab_size: self.vocab_size,
            block_size: self.block_size,
        };
        let mut head = MAGIC.to_vec();
        head.extend(serde_json::to_vec(&header).map_err(|e| io_err(io::Error::other(e)))?);
        head.resize(HEADER_BYTES as usize, b' ');
        let (mut out, streamed) = match self.ids {
            Ids::Streamed(o) => (o, true),
            Ids::Spooled(ids) => {
                let mut out = Output::create(self.dest.as_deref())?;
                out.write_all(&head).map_err(io_err)?;
                let mut ids = ids.into_inner().map_err(|e| io_err(e.into_error()))?;
                ids.rewind().map_err(io_err)?;
                let copied = io::copy(&mut ids, &mut out).map_err(io_err)?;
                debug_assert_eq!(copied, ids_bytes);
                (out, false)
            }
        };
        out.write_all(&vec![0u8; (mask_offset - HEADER_BYTES - ids_bytes) as usize]).map_err(io_err)?;
        out.write_all(&self.mask).map_err(io_err)?;
        out.write_all(&vec![0u8; (index_offset - mask_offset - self.mask.len() as u64) as usize]).map_err(io_err)?;
        for o in &self.index {
            out.write_all(&o.to_le_bytes()).map_err(io_err)?;
        }
        if streamed && !out.write_at(0, &head)? {
            return Err(io_err(io::Error::other("the output cannot seek back to its header")));
        }
        out.commit()?;
        Ok(header.blocks)
    }
}

/// A token file opened for reading block by block (positioned reads: nothing is mapped or cached by
/// banter, so memory stays flat however large the file).
#[derive(Debug)]
pub struct TokBin {
    file: File,
    path: String,
    /// The header.
    pub header: Header,
}

impl TokBin {
    /// Opens and checks a token file.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let name = path.display().to_string();
        let bad = |m: String| Error::data(&name, None, FieldError::record(m));
        let file = File::open(path).map_err(|e| Error::io(&name, e))?;
        crate::inputs::register(path);
        let len = file.metadata().map_err(|e| Error::io(&name, e))?.len();
        let mut head = vec![0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut head, 0).map_err(|_| bad(format!("shorter than the {HEADER_BYTES}-byte header")))?;
        if &head[..8] != MAGIC {
            return Err(bad("not a banter token file (no BNTRTOK1 magic)".into()));
        }
        let text = String::from_utf8_lossy(&head[8..]);
        let header: Header = serde_json::from_str(text.trim_end()).map_err(|e| bad(format!("header: {e}")))?;
        if header.version != 1 || !matches!(header.dtype.as_str(), "u16" | "u32") {
            return Err(bad(format!("unsupported version {} / dtype {}", header.version, header.dtype)));
        }
        // Every size the header claims is checked in integers that cannot overflow, naming the field.
        let field = |f: &str, m: String| Error::data(&name, None, FieldError::field(format!("header.{f}"), m));
        let too_big = |f: &str, v: u64| field(f, format!("{v} cannot fit in this {len}-byte file"));
        let index_bytes = header
            .blocks
            .checked_add(1)
            .and_then(|b| b.checked_mul(8))
            .ok_or_else(|| too_big("blocks", header.blocks))?;
        let end =
            header.index_offset.checked_add(index_bytes).ok_or_else(|| too_big("index_offset", header.index_offset))?;
        if end > len {
            return Err(if index_bytes > len {
                too_big("blocks", header.blocks)
            } else {
                bad(format!("truncated or inconsistent: {len} bytes, the header says {end}"))
            });
        }
        let ids_end = header
            .tokens
            .checked_mul(header.width())
            .and_then(|b| b.checked_add(header.ids_offset))
            .ok_or_else(|| too_big("tokens", header.tokens))?;
        if header.ids_offset < HEADER_BYTES {
            return Err(field("ids_offset", format!("{} is inside the header", header.ids_offset)));
        }
        if ids_end > header.mask_offset {
            return Err(field(
                "tokens",
                format!("{} tokens run past mask_offset {}", header.tokens, header.mask_offset),
            ));
        }
        let mask_end = header
            .mask_offset
            .checked_add(header.tokens.div_ceil(8))
            .ok_or_else(|| too_big("mask_offset", header.mask_offset))?;
        if mask_end > header.index_offset {
            return Err(field("mask_offset", format!("the loss bits run past index_offset {}", header.index_offset)));
        }
        Ok(TokBin { file, path: name, header })
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.header.blocks as usize
    }

    /// The file's path, for messages.
    pub fn header_name(&self) -> String {
        self.path.clone()
    }

    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.header.blocks == 0
    }

    fn read(&self, buf: &mut [u8], at: u64) -> Result<(), Error> {
        self.file.read_exact_at(buf, at).map_err(|e| Error::io(&self.path, e))
    }

    /// Block `i` (ids and labels).
    pub fn block(&self, i: usize) -> Result<Block, Error> {
        let h = &self.header;
        let mut ix = [0u8; 16];
        self.read(&mut ix, h.index_offset + 8 * i as u64)?;
        let start = u64::from_le_bytes(ix[..8].try_into().unwrap_or_default());
        let end = u64::from_le_bytes(ix[8..].try_into().unwrap_or_default());
        if start > end || end > h.tokens || end - start > 1 << 24 {
            return Err(Error::data(
                &self.path,
                None,
                FieldError::record(format!("block {i}: bad index {start}..{end} ({} tokens)", h.tokens)),
            ));
        }
        let n = (end - start) as usize;
        let w = h.width() as usize;
        let mut raw = vec![0u8; n * w];
        self.read(&mut raw, h.ids_offset + start * w as u64)?;
        let ids: Vec<u32> = if w == 2 {
            raw.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect()
        } else {
            raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        };
        let (b0, b1) = (start / 8, end.div_ceil(8));
        let mut bits = vec![0u8; (b1 - b0) as usize];
        self.read(&mut bits, h.mask_offset + b0)?;
        let labels = (0..n)
            .map(|k| {
                let t = start + k as u64 - b0 * 8;
                if bits[(t / 8) as usize] >> (t % 8) & 1 == 1 { i64::from(ids[k]) } else { IGNORE_INDEX }
            })
            .collect();
        Ok(Block { input_ids: ids, labels, fields: Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ids: &[u32], loss: &[bool]) -> Block {
        let labels = ids.iter().zip(loss).map(|(&i, &l)| if l { i64::from(i) } else { IGNORE_INDEX }).collect();
        Block { input_ids: ids.to_vec(), labels, fields: Default::default() }
    }

    #[test]
    fn blocks_round_trip_in_u16_and_u32() {
        let dir = tempfile::tempdir().unwrap();
        for vocab in [50_257u64, 70_000] {
            let path = dir.path().join(format!("t{vocab}.bin"));
            let blocks = vec![
                block(&[1, 2, 3, 65_535.min(vocab as u32 - 1)], &[false, true, true, false]),
                block(&[7; 13], &[true; 13]),
                block(&[0, 9], &[false, false]),
            ];
            let mut w = TokBinWriter::new(Some(&path), vocab, 16).unwrap();
            for b in &blocks {
                w.write(b).unwrap();
            }
            assert_eq!(w.commit().unwrap(), 3);
            assert!(is_tokbin(&path));
            let r = TokBin::open(&path).unwrap();
            assert_eq!(r.header.dtype, if vocab > 65_536 { "u32" } else { "u16" });
            assert_eq!((r.len(), r.header.tokens), (3, 19));
            for (i, b) in blocks.iter().enumerate() {
                let got = r.block(i).unwrap();
                assert_eq!((got.input_ids, got.labels), (b.input_ids.clone(), b.labels.clone()), "block {i}");
            }
            assert!(r.block(3).is_err(), "past the end");
        }
    }

    #[test]
    fn bad_files_and_labels_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::write(&p, b"BNTRTOK1{\"format\":1}").unwrap();
        assert!(TokBin::open(&p).is_err());
        std::fs::write(&p, vec![b'x'; 5000]).unwrap();
        assert!(TokBin::open(&p).unwrap_err().to_string().contains("magic"));
        let mut w = TokBinWriter::new(Some(&dir.path().join("w.bin")), 100, 8).unwrap();
        let mut b = block(&[1, 2], &[true, true]);
        b.labels[1] = 5;
        assert!(w.write(&b).unwrap_err().to_string().contains("neither the token id"));
        // A truncated file is refused. (A new name: `p` was read above, and an input is never an output.)
        let p = dir.path().join("y.bin");
        let mut w = TokBinWriter::new(Some(&p), 100, 8).unwrap();
        w.write(&block(&[1, 2, 3], &[true; 3])).unwrap();
        w.commit().unwrap();
        let full = std::fs::read(&p).unwrap();
        std::fs::write(&p, &full[..full.len() - 4]).unwrap();
        assert!(TokBin::open(&p).unwrap_err().to_string().contains("truncated"));
        // Header fields whose sizes overflow 64 bits are named, not a failed read.
        for (field, v) in
            [("blocks", 1u64 << 61), ("blocks", u64::MAX), ("tokens", u64::MAX / 2), ("index_offset", u64::MAX - 3)]
        {
            let mut h: Header = serde_json::from_str(String::from_utf8_lossy(&full[8..4096]).trim_end()).unwrap();
            match field {
                "blocks" => h.blocks = v,
                "tokens" => h.tokens = v,
                _ => h.index_offset = v,
            }
            let mut bytes = MAGIC.to_vec();
            bytes.extend(serde_json::to_vec(&h).unwrap());
            bytes.resize(4096, b' ');
            bytes.extend_from_slice(&full[4096..]);
            let q = dir.path().join(format!("bad-{field}-{v}.bin"));
            std::fs::write(&q, bytes).unwrap();
            let e = TokBin::open(&q).unwrap_err();
            assert_eq!(e.exit(), crate::Exit::BadInput, "{e}");
            assert!(e.to_string().contains(&format!("header.{field}")), "{field}={v}: {e}");
        }
    }

    #[test]
    fn the_ids_stream_into_the_output_with_no_second_copy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let mut w = TokBinWriter::new(Some(&p), 100, 8).unwrap();
        for _ in 0..1000 {
            w.write(&block(&[1, 2, 3, 4, 5, 6, 7, 8], &[true; 8])).unwrap();
        }
        // While writing, the folder holds one growing temp file (the output's), nothing else.
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].file_name().unwrap().to_string_lossy().starts_with(".out.bin."));
        w.commit().unwrap();
        let r = TokBin::open(&p).unwrap();
        assert_eq!((r.len(), r.block(999).unwrap().input_ids.len()), (1000, 8));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
