//! `--shard I/N`: one of N independent jobs over the same inputs (a Slurm array, GNU parallel), each taking
//! a contiguous run of records, so that the N outputs concatenated in shard order are the one-job output.
//!
//! The inputs are split by bytes, as Hadoop splits files: shard I owns the records (lines) whose first byte
//! lies in `[I·S/N, (I+1)·S/N)` of the inputs laid end to end (S bytes in all). A job seeks straight to its
//! part and reads only it (plus a count of the lines before it, so that errors name the real line). Every
//! record belongs to exactly one shard whatever N is. JSON Lines only: a JSON-array file cannot be split
//! by bytes, and stdin cannot be seeked.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use crate::error::Error;
use crate::jsonl::Source;

/// Shard `index` of `count` (0-based, as Slurm's `SLURM_ARRAY_TASK_ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This job's shard, `0..count`.
    pub index: u64,
    /// Jobs in all.
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (`0 ≤ I < N`).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {s:?}: give I/N with 0 ≤ I < N, e.g. 0/4 (shards are counted from 0)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse::<u64>().map_err(|_| bad())?, n.trim().parse::<u64>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// This shard's byte range of `total` bytes.
    pub fn range(&self, total: u64) -> (u64, u64) {
        let at = |k: u64| ((k as u128 * total as u128) / self.count as u128) as u64;
        (at(self.index), at(self.index + 1))
    }
}

/// One input's part of a shard: a reader over whole lines, and how many lines come before it in the file.
pub struct Part {
    /// The input.
    pub source: Source,
    /// Its lines from the shard's first record to its last.
    pub reader: Box<dyn BufRead + Send>,
    /// Lines of the file before the part (add to the part's line numbers).
    pub lines_before: u64,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Part({}, after line {})", self.source, self.lines_before)
    }
}

/// The parts of `sources` that make up `shard`, in input order (an input with no record in the shard has
/// no part; the index of each part's source in `sources` comes with it).
pub fn open(sources: &[Source], shard: Shard) -> Result<Vec<(usize, Part)>, Error> {
    let mut sizes = Vec::with_capacity(sources.len());
    for s in sources {
        let Some(p) = s.path() else {
            return Err(Error::usage_hint(
                "--shard reads files, not standard input (a job seeks to its part)",
                "write the input to a file first",
            ));
        };
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p.display(), e))?;
        if is_json_array(p)? {
            return Err(Error::usage_hint(
                format!("{}: a JSON array cannot be split by --shard", p.display()),
                format!("convert it to JSON Lines first: jq -c '.[]' {} > data.jsonl", p.display()),
            ));
        }
        sizes.push(meta.len());
    }
    let total: u64 = sizes.iter().sum();
    let (lo, hi) = shard.range(total);
    let mut parts = Vec::new();
    let mut start_of_file = 0u64;
    for (i, (s, &size)) in sources.iter().zip(&sizes).enumerate() {
        let (f0, f1) = (start_of_file, start_of_file + size);
        start_of_file = f1;
        let (a, b) = (lo.max(f0) - f0, hi.min(f1).saturating_sub(f0));
        if a >= b {
            continue;
        }
        let path = s.path().expect("checked above");
        let io_err = |e: io::Error| Error::io(path.display(), e);
        let mut f = File::open(path).map_err(io_err)?;
        crate::inputs::register(path);
        // The part runs from the first line starting at or after `a` to the end of the line holding b − 1.
        let start = line_start_at_or_after(&mut f, a).map_err(io_err)?;
        let end = line_start_at_or_after(&mut f, b).map_err(io_err)?;
        if start >= end {
            continue;
        }
        let lines_before = count_lines(&mut f, start).map_err(io_err)?;
        f.seek(SeekFrom::Start(start)).map_err(io_err)?;
        let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 16, f.take(end - start)));
        parts.push((i, Part { source: s.clone(), reader, lines_before }));
    }
    Ok(parts)
}

/// True when the file's first non-blank byte opens a JSON array.
fn is_json_array(p: &std::path::Path) -> Result<bool, Error> {
    let mut f = File::open(p).map_err(|e| Error::io(p.display(), e))?;
    let mut buf = [0u8; 4096];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(p.display(), e))?;
        if n == 0 {
            return Ok(false);
        }
        let bytes = buf[..n].strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf[..n]);
        if let Some(&c) = bytes.iter().find(|c| !c.is_ascii_whitespace()) {
            return Ok(c == b'[');
        }
    }
}

/// The offset of the first line that starts at or after `pos` (the file's length if none does).
fn line_start_at_or_after(f: &mut File, pos: u64) -> io::Result<u64> {
    if pos == 0 {
        return Ok(0);
    }
    f.seek(SeekFrom::Start(pos - 1))?;
    let mut r = BufReader::with_capacity(1 << 16, &mut *f);
    let mut at = pos - 1;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(at);
        }
        if let Some(i) = memchr::memchr(b'\n', buf) {
            return Ok(at + i as u64 + 1);
        }
        let n = buf.len();
        at += n as u64;
        r.consume(n);
    }
}

/// Newlines in the first `upto` bytes.
fn count_lines(f: &mut File, upto: u64) -> io::Result<u64> {
    f.seek(SeekFrom::Start(0))?;
    let mut r = f.take(upto);
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += memchr::memchr_iter(b'\n', &buf[..k]).count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(parts: Vec<(usize, Part)>) -> Vec<(usize, u64, String)> {
        let mut out = Vec::new();
        for (i, p) in parts {
            for (k, l) in p.reader.lines().enumerate() {
                out.push((i, p.lines_before + k as u64 + 1, l.unwrap()));
            }
        }
        out
    }

    #[test]
    fn every_line_is_in_exactly_one_shard_in_order_for_any_n() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        let text_a: String = (0..37).map(|i| format!("{{\"n\": {i}, \"pad\": \"{}\"}}\n", "x".repeat(i % 7))).collect();
        std::fs::write(&a, &text_a).unwrap();
        std::fs::write(&b, "{\"n\": 100}\n\n{\"n\": 101}").unwrap(); // a blank line, no final newline
        let sources = vec![Source::Path(a), Source::Path(b)];
        let want: Vec<(usize, u64, String)> = text_a
            .lines()
            .enumerate()
            .map(|(k, l)| (0, k as u64 + 1, l.to_string()))
            .chain([(1, 1, "{\"n\": 100}".into()), (1, 2, String::new()), (1, 3, "{\"n\": 101}".into())])
            .collect();
        for n in [1u64, 2, 3, 5, 8, 64, 1000] {
            let mut got = Vec::new();
            for i in 0..n {
                got.extend(lines_of(open(&sources, Shard { index: i, count: n }).unwrap()));
            }
            assert_eq!(got, want, "N = {n}");
        }
    }

    #[test]
    fn shard_specs_and_unsplittable_inputs_are_refused() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let arr = dir.path().join("a.json");
        std::fs::write(&arr, "  [{\"a\": 1}]").unwrap();
        let e = open(&[Source::Path(arr)], Shard { index: 0, count: 2 }).unwrap_err().to_string();
        assert!(e.contains("JSON array"), "{e}");
        assert!(open(&[Source::Stdin], Shard { index: 0, count: 2 }).is_err());
    }
}
