//! Reading a `torch.save` checkpoint (`pytorch_model.bin`: a zip of `data.pkl` plus one raw file per
//! storage) in bounded memory: the pickle through [`crate::pickle`]'s restricted unpickler, then every
//! tensor view checked — against its storage and against what `config.json` allows — before anything is
//! materialised, and storages read only as far as their views reach.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

use crate::ModelError;
use crate::pickle::{V, element_size, unpickle};

/// The largest `data.pkl` read (a state dict's pickle is tens of kilobytes).
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Elements a checkpoint beside `config.json` may hold in all: four times what the config's shapes allow
/// (embeddings and positions, attention and MLP per layer), plus 16M; `None` without a config.
pub fn element_budget(config: &serde_json::Value) -> Option<u64> {
    let num = |keys: &[&str]| keys.iter().find_map(|k| config[*k].as_u64()).unwrap_or(0);
    let hidden = num(&["hidden_size", "n_embd", "d_model", "word_embed_proj_dim"]);
    if hidden == 0 {
        return None;
    }
    let vocab = num(&["vocab_size"]);
    let positions = num(&["max_position_embeddings", "n_positions", "n_ctx"]);
    let layers = num(&["num_hidden_layers", "n_layer", "num_layers"]).max(1);
    let inter = num(&["intermediate_size", "n_inner", "ffn_dim"]).max(4 * hidden);
    let heads = num(&["num_attention_heads", "n_head"]).max(1);
    let q = hidden.max(heads.saturating_mul(num(&["head_dim"])));
    let per_layer =
        4u64.saturating_mul(hidden).saturating_mul(q).saturating_add(3u64.saturating_mul(hidden).saturating_mul(inter));
    let total =
        (vocab + positions).saturating_mul(hidden).saturating_mul(2).saturating_add(layers.saturating_mul(per_layer));
    Some(total.saturating_mul(4).saturating_add(16 << 20))
}

/// One zip entry's bytes, at most `limit`; an entry inflating over 100× the compressed bytes really in
/// the archive (past 1 MiB) is refused as a zip bomb.
fn read_entry<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
    archive_len: u64,
) -> Result<Vec<u8>, String> {
    let f = zip.by_name(name).map_err(|e| e.to_string())?;
    let packed = banter_core::inflate::packed_bytes(f.compressed_size(), f.data_start(), archive_len);
    let deflated = f.compression() != zip::CompressionMethod::Stored;
    use banter_core::inflate::{Bounds, Inflate, read_bounded};
    let max_ratio = if deflated { 100 } else { u64::MAX };
    match read_bounded(f.take(limit), Bounds { cap: u64::MAX, packed, max_ratio, ratio_from: 1 << 20 }) {
        Ok(out) => Ok(out),
        Err(Inflate::Io(e)) => Err(e.to_string()),
        Err(Inflate::OverRatio(got)) => {
            Err(format!("{name} inflates over 100× ({packed} → {got}+ bytes): refused as a zip bomb"))
        }
        Err(Inflate::OverCap) => Err(format!("{name}: over {limit} bytes")),
    }
}

/// A view's element count, or why it is refused: negative sizes or strides, or more elements than the
/// bytes it reads can hold (an overlapping, stride-0 view of a small storage).
fn view_elements(name: &str, offset: i64, size: &[i64], stride: &[i64]) -> Result<(u64, u64), String> {
    if size.len() != stride.len() {
        return Err(format!("tensor {name}: {} sizes but {} strides", size.len(), stride.len()));
    }
    if offset < 0 || size.iter().chain(stride).any(|&x| x < 0) {
        return Err(format!("tensor {name}: negative offset, size or stride"));
    }
    let numel = size
        .iter()
        .try_fold(1u64, |a, &n| a.checked_mul(n as u64))
        .ok_or(format!("tensor {name}: too many elements"))?;
    if numel == 0 {
        return Ok((0, 0));
    }
    // One past the furthest element the view touches.
    let end = size
        .iter()
        .zip(stride)
        .try_fold(offset as u64 + 1, |a, (&n, &s)| {
            ((n - 1) as u64).checked_mul(s as u64).and_then(|x| a.checked_add(x))
        })
        .ok_or(format!("tensor {name}: its strides overflow"))?;
    if numel > end.saturating_sub(offset as u64) {
        return Err(format!(
            "tensor {name}: {numel} elements over a storage span of {}: overlapping views are refused",
            end - offset as u64
        ));
    }
    Ok((numel, end))
}

/// Reads a `torch.save` zip checkpoint: every floating tensor as fp32 (integer buffers skipped), no code run.
/// Every view is checked before anything is materialised: its shape against its storage, and all of them
/// together against what `config.json` beside the file allows ([`element_budget`]); storages are read only
/// as far as their views reach.
pub fn read_torch_zip(path: &Path) -> Result<Vec<(String, Tensor)>, ModelError> {
    let bad = |m: String| ModelError::Format(format!("{}: {m}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let archive_len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| bad(format!("not a torch.save zip archive ({e}); legacy pre-1.6 pickles are not read")))?;
    let pkl_name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| bad("no data.pkl in the archive".into()))?;
    let prefix = pkl_name.strip_suffix("data.pkl").unwrap_or("").to_string();
    let pkl = read_entry(&mut zip, &pkl_name, MAX_PICKLE_BYTES + 1, archive_len).map_err(bad)?;
    if pkl.len() as u64 > MAX_PICKLE_BYTES {
        return Err(bad(format!("data.pkl is over {MAX_PICKLE_BYTES} bytes")));
    }
    let specs = unpickle(&pkl).map_err(bad)?;
    // Every view checked, and the bytes each storage must provide, before any is read.
    let mut reach: HashMap<String, u64> = HashMap::new();
    let mut total = 0u64;
    let mut views = Vec::new();
    for (name, spec) in specs {
        let V::Tensor { kind, key, offset, size, stride } = spec else { continue };
        if !matches!(kind, Kind::Float | Kind::Half | Kind::BFloat16 | Kind::Double) {
            continue; // masks and other integer buffers are not parameters
        }
        let (numel, end) = view_elements(&name, offset, &size, &stride).map_err(bad)?;
        total = total.saturating_add(numel);
        let bytes = end.saturating_mul(element_size(kind) as u64);
        let r = reach.entry(key.clone()).or_insert(0);
        *r = (*r).max(bytes);
        views.push((name, kind, key, offset, size, stride, numel));
    }
    let config = path.parent().map(|d| d.join("config.json"));
    let budget = config
        .and_then(|c| std::fs::read_to_string(c).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|c| element_budget(&c));
    if let Some(b) = budget
        && total > b
    {
        return Err(bad(format!("its tensors hold {total} elements, more than config.json's shapes allow ({b})")));
    }
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for (name, kind, key, offset, size, stride, numel) in views {
        if !storages.contains_key(&key) {
            let want = reach[&key];
            let b = read_entry(&mut zip, &format!("{prefix}data/{key}"), want, archive_len)
                .map_err(|e| bad(format!("storage {key} of {name}: {e}")))?;
            storages.insert(key.clone(), b);
        }
        let bytes = &storages[&key];
        let es = element_size(kind);
        let have = (bytes.len() / es) as i64;
        if numel > 0 && (reach[&key] as usize).div_ceil(es) as i64 > have {
            return Err(bad(format!("tensor {name} reaches past its storage")));
        }
        let storage = Tensor::f_from_data_size(bytes, &[have], kind)
            .map_err(|e| bad(format!("{name}: {}", first_line(&e.to_string()))))?;
        let t = storage
            .f_as_strided(&size, &stride, Some(offset))
            .map_err(|e| bad(format!("{name}: {}", first_line(&e.to_string()))))?;
        out.push((name, t.to_kind(Kind::Float).contiguous()));
    }
    Ok(out)
}

/// libtorch's messages carry a C++ backtrace after their first line.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::tests::STATE_DICT;

    #[test]
    fn views_are_checked_before_they_are_materialised() {
        // Stride 0 over a huge size: refused, whatever the storage.
        assert!(view_elements("w", 0, &[1_000_000_000_000], &[0]).unwrap_err().contains("overlapping"));
        assert!(view_elements("w", 0, &[300_000_000], &[0]).is_err());
        assert!(view_elements("w", 0, &[4], &[-1]).unwrap_err().contains("negative"));
        assert!(view_elements("w", -1, &[4], &[1]).is_err());
        assert!(view_elements("w", 0, &[i64::MAX, i64::MAX], &[1, 1]).is_err());
        assert!(view_elements("w", 0, &[2, 3], &[1]).is_err());
        assert_eq!(view_elements("w", 2, &[2, 3], &[3, 1]).unwrap(), (6, 8));
        assert_eq!(view_elements("w", 0, &[3, 2], &[1, 3]).unwrap(), (6, 6)); // a transpose
        assert_eq!(view_elements("w", 0, &[0, 5], &[5, 1]).unwrap(), (0, 0));
    }

    /// A torch.save zip with `pkl` as data.pkl and `storage` (deflated) as data/0, beside `config`.
    fn checkpoint(dir: &Path, pkl: &[u8], storage: &[u8], config: Option<&str>) -> std::path::PathBuf {
        use std::io::Write;
        let path = dir.join("pytorch_model.bin");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.start_file("archive/data.pkl", stored).unwrap();
        z.write_all(pkl).unwrap();
        z.start_file("archive/data/0", deflated).unwrap();
        z.write_all(storage).unwrap();
        z.finish().unwrap();
        if let Some(c) = config {
            std::fs::write(dir.join("config.json"), c).unwrap();
        }
        path
    }

    /// [`STATE_DICT`] with `w`'s size (and stride 1) made `n` elements.
    fn state_dict_of(n: u32) -> Vec<u8> {
        let mut p = STATE_DICT.to_vec();
        let at = p.windows(3).position(|w| w == b"K\x02\x85").unwrap();
        let mut with = vec![b'J'];
        with.extend_from_slice(&n.to_le_bytes());
        p.splice(at..at + 2, with);
        p
    }

    #[test]
    fn a_checkpoint_larger_than_its_config_or_inflating_like_a_bomb_is_refused_early() {
        let d = tempfile::tempdir().unwrap();
        // A real one reads.
        let ok = checkpoint(d.path(), STATE_DICT, &[0u8; 8], None);
        assert_eq!(read_torch_zip(&ok).unwrap()[0].1.size(), [2]);
        // 10^8 elements where the config allows a few million: refused before any storage is read.
        let cfg =
            r#"{"model_type": "gpt2", "n_embd": 8, "vocab_size": 10, "n_positions": 16, "n_layer": 1, "n_head": 2}"#;
        let big = checkpoint(d.path(), &state_dict_of(100_000_000), &[0u8; 8], Some(cfg));
        let e = read_torch_zip(&big).unwrap_err().to_string();
        assert!(e.contains("more than config.json"), "{e}");
        std::fs::remove_file(d.path().join("config.json")).unwrap();
        // No config: 256 MiB of zeros deflated to ~256 KB are stopped as they inflate.
        let bomb = checkpoint(d.path(), &state_dict_of(64 << 20), &vec![0u8; 256 << 20], None);
        assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
        let e = read_torch_zip(&bomb).unwrap_err().to_string();
        assert!(e.contains("zip bomb") && e.lines().count() == 1, "{e}");
    }
}
