//! Where `encode` writes blocks: JSON Lines, one binary token file, or K binary shards and their manifest.

use banter_core::Error;
use banter_core::jsonl::JsonlWriter;
use banter_core::records::Block;

use crate::encode::{EncodeArgs, Format};

/// Where blocks go.
#[derive(Debug)]
pub(crate) enum BlockWriter {
    Jsonl(JsonlWriter),
    Bin(banter_core::tokbin::TokBinWriter),
    Shards(banter_core::tokshards::TokShardsWriter),
}

impl BlockWriter {
    pub(crate) fn create(
        format: Format,
        path: Option<&std::path::Path>,
        vocab: u64,
        block: u64,
    ) -> Result<Self, Error> {
        Ok(match format {
            Format::Jsonl => BlockWriter::Jsonl(JsonlWriter::create(path)?),
            Format::Bin => BlockWriter::Bin(banter_core::tokbin::TokBinWriter::new(path, vocab, block)?),
        })
    }

    pub(crate) fn write(&mut self, b: &Block) -> Result<(), Error> {
        match self {
            BlockWriter::Jsonl(w) => w.write(b),
            BlockWriter::Bin(w) => w.write(b),
            BlockWriter::Shards(w) => w.write(b),
        }
    }

    pub(crate) fn commit(self) -> Result<u64, Error> {
        match self {
            BlockWriter::Jsonl(w) => w.commit(),
            BlockWriter::Bin(w) => w.commit(),
            BlockWriter::Shards(w) => w.commit(),
        }
    }
}

/// The training blocks' writer: `--shards K` shard files and a manifest, or one output.
pub(crate) fn train_writer(a: &EncodeArgs, vocab: u64) -> Result<BlockWriter, Error> {
    let Some(k) = a.shards else {
        return BlockWriter::create(a.format, a.output.as_deref(), vocab, a.block_size as u64);
    };
    match (&a.output, a.format) {
        (Some(p), Format::Bin) if p.as_os_str() != "-" && k >= 1 => {
            Ok(BlockWriter::Shards(banter_core::tokshards::TokShardsWriter::new(p, k, vocab, a.block_size as u64)?))
        }
        _ => Err(Error::usage_hint(
            "--shards K writes K binary token files and a manifest",
            "give --format bin, -o MANIFEST.json and K ≥ 1",
        )),
    }
}
