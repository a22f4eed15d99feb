//! PyTorch `torch.save` checkpoints (`pytorch_model.bin`: a zip of `data.pkl` plus one raw file per
//! storage) read without running any of their code.
//!
//! Python's unpickler executes whatever callables a pickle names. This one is a small stack machine over
//! the opcodes `torch.save` emits (protocols 2–4) that knows exactly four callables — `OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the typed-storage classes —
//! and refuses every other global by name (`os.system`, `builtins.eval`, …), as `torch.load(weights_only=True)`
//! does. No crate does this with its limits (serde-pickle has no persistent ids; repugnant-pickle is a 0.0.1
//! "best effort"), so it is written here; the tests read checkpoints transformers wrote.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

use crate::ModelError;

/// A value on the unpickler's stack.
#[derive(Debug, Clone)]
enum V {
    Mark,
    None,
    /// A bool, float or bytes value: read past, never needed for weights.
    Other,
    Int(i64),
    Str(String),
    Tuple(Vec<V>),
    List(Vec<V>),
    Dict(Vec<(V, V)>),
    /// An allowed global: `module.name`.
    Global(String),
    /// A storage: dtype and the zip entry holding its bytes.
    Storage(Kind, String),
    /// `_rebuild_tensor_v2(storage, offset, size, stride, …)`.
    Tensor {
        kind: Kind,
        key: String,
        offset: i64,
        size: Vec<i64>,
        stride: Vec<i64>,
    },
}

const ALLOWED: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.DoubleStorage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
];

fn storage_kind(global: &str) -> Option<Kind> {
    Some(match global.strip_prefix("torch.")? {
        "FloatStorage" => Kind::Float,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "DoubleStorage" => Kind::Double,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

fn ints(v: &V) -> Option<Vec<i64>> {
    match v {
        V::Tuple(xs) | V::List(xs) => xs.iter().map(|x| if let V::Int(i) = x { Some(*i) } else { None }).collect(),
        _ => None,
    }
}

/// How deep values may nest (a `torch.save` state dict nests about 4 deep).
const MAX_DEPTH: u32 = 100;
/// Values on the stack at once (a state dict needs a few thousand).
const MAX_STACK: usize = 1 << 20;
/// Memo entries.
const MAX_MEMO: usize = 1 << 20;

/// The work a pickle may make the unpickler do, in values built or copied: a fixed allowance plus 64 per
/// byte of pickle. A memo bomb (a value copied into a tuple with itself, over and over) doubles its size at
/// every step and runs out within a few dozen steps, in bounded time and memory.
fn work_budget(len: usize) -> u64 {
    2_000_000 + 64 * len as u64
}

/// A value's size in values and its depth (values are bounded in depth when built, so this recursion is).
fn measure(v: &V) -> (u64, u32) {
    let fold = |items: &mut dyn Iterator<Item = &V>| {
        items.fold((1u64, 1u32), |(n, d), x| {
            let (xn, xd) = measure(x);
            (n.saturating_add(xn), d.max(xd + 1))
        })
    };
    match v {
        V::Tuple(xs) | V::List(xs) => fold(&mut xs.iter()),
        V::Dict(kv) => fold(&mut kv.iter().flat_map(|(k, v)| [k, v])),
        V::Tensor { size, stride, .. } => (1 + (size.len() + stride.len()) as u64, 1),
        _ => (1, 0),
    }
}

/// The unpickler's state.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<V>,
    memo: HashMap<u32, V>,
    /// Values built or copied so far, against [`work_budget`].
    work: u64,
    budget: u64,
}

impl Machine<'_> {
    /// Pushes a value, counting its size as work and refusing values nested too deep or a stack too high.
    fn push(&mut self, v: V) -> Result<(), String> {
        self.charge(&v)?;
        if self.stack.len() >= MAX_STACK {
            return Err(format!("pickle: more than {MAX_STACK} values on the stack"));
        }
        self.stack.push(v);
        Ok(())
    }

    /// Counts a value's size as work; refuses it when nested over [`MAX_DEPTH`] or over the budget.
    fn charge(&mut self, v: &V) -> Result<(), String> {
        let (nodes, depth) = measure(v);
        if depth > MAX_DEPTH {
            return Err(format!("pickle: values nested more than {MAX_DEPTH} deep"));
        }
        self.work = self.work.saturating_add(nodes);
        if self.work > self.budget {
            return Err(format!(
                "pickle: builds more than {} values from {} bytes (a memo or copy bomb)",
                self.budget,
                self.data.len()
            ));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("truncated pickle")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, String> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("truncated pickle")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<V, String> {
        self.stack.pop().ok_or_else(|| "pickle stack underflow".to_string())
    }

    /// Everything above the last mark (the mark removed).
    fn pop_mark(&mut self) -> Result<Vec<V>, String> {
        let at = self.stack.iter().rposition(|v| matches!(v, V::Mark)).ok_or("pickle: no mark")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), String> {
        let full = format!("{module}.{name}");
        if !ALLOWED.contains(&full.as_str()) {
            return Err(format!(
                "refused: the checkpoint calls {full}, which is not a tensor-rebuilding function (nothing was run)"
            ));
        }
        self.push(V::Global(full))?;
        Ok(())
    }

    fn reduce(&mut self) -> Result<(), String> {
        let args = self.pop()?;
        let f = self.pop()?;
        let V::Global(name) = f else { return Err("pickle: REDUCE on a non-callable".into()) };
        let V::Tuple(a) = args else { return Err("pickle: REDUCE without an argument tuple".into()) };
        let v = match name.as_str() {
            "collections.OrderedDict" => V::Dict(Vec::new()),
            "torch._utils._rebuild_parameter" => a.into_iter().next().ok_or("pickle: empty _rebuild_parameter")?,
            "torch._utils._rebuild_tensor_v2" => {
                match (a.first(), a.get(1), a.get(2).and_then(ints), a.get(3).and_then(ints)) {
                    (Some(V::Storage(kind, key)), Some(V::Int(offset)), Some(size), Some(stride)) => {
                        V::Tensor { kind: *kind, key: key.clone(), offset: *offset, size, stride }
                    }
                    _ => return Err("pickle: _rebuild_tensor_v2 with unexpected arguments".into()),
                }
            }
            other => return Err(format!("refused: {other} cannot be called")),
        };
        self.push(v)?;
        Ok(())
    }

    fn persistent(&mut self) -> Result<(), String> {
        // ('storage', torch.XStorage, key, location, numel)
        let pid = self.pop()?;
        let V::Tuple(t) = pid else { return Err("pickle: persistent id is not a tuple".into()) };
        match (t.first(), t.get(1), t.get(2)) {
            (Some(V::Str(tag)), Some(V::Global(g)), Some(V::Str(key))) if tag == "storage" => {
                let kind = storage_kind(g).ok_or_else(|| format!("pickle: unsupported storage {g}"))?;
                self.push(V::Storage(kind, key.clone()))?;
                Ok(())
            }
            _ => Err("pickle: unsupported persistent id".into()),
        }
    }

    /// A value going into a container on the stack: its depth inside the container counts too.
    fn charge_nested(&mut self, v: &V) -> Result<(), String> {
        if measure(v).1 + 1 > MAX_DEPTH {
            return Err(format!("pickle: values nested more than {MAX_DEPTH} deep"));
        }
        Ok(())
    }

    fn set_items(&mut self, items: Vec<V>) -> Result<(), String> {
        for it in &items {
            self.charge_nested(it)?;
        }
        let Some(V::Dict(d)) = self.stack.last_mut() else { return Err("pickle: SETITEMS on a non-dict".into()) };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn step(&mut self, op: u8) -> Result<bool, String> {
        match op {
            0x80 => {
                self.u8()?; // PROTO
            }
            0x95 => {
                self.take(8)?; // FRAME
            }
            b'.' => return Ok(true), // STOP
            b'(' => self.push(V::Mark)?,
            b'}' => self.push(V::Dict(Vec::new()))?,
            b']' => self.push(V::List(Vec::new()))?,
            b')' => self.push(V::Tuple(Vec::new()))?,
            b'c' => {
                let (m, n) = (self.line()?, self.line()?);
                self.global(&m, &n)?;
            }
            0x93 => {
                let (n, m) = (self.pop()?, self.pop()?);
                let (V::Str(m), V::Str(n)) = (m, n) else { return Err("pickle: STACK_GLOBAL needs strings".into()) };
                self.global(&m, &n)?;
            }
            b'q' => {
                let k = u32::from(self.u8()?);
                self.memoize(k)?;
            }
            b'r' => {
                let k = self.le(4)? as u32;
                self.memoize(k)?;
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memoize(k)?;
            }
            b'h' | b'j' => {
                let k = if op == b'h' { u32::from(self.u8()?) } else { self.le(4)? as u32 };
                let v = self.memo.get(&k).cloned().ok_or("pickle: memo key missing")?;
                self.push(v)?;
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push(V::Tuple(items))?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let at = self.stack.len().checked_sub(n).ok_or("pickle stack underflow")?;
                let items = self.stack.split_off(at);
                self.push(V::Tuple(items))?;
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push(V::List(items))?;
            }
            b'd' => {
                let items = self.pop_mark()?;
                self.push(V::Dict(Vec::new()))?;
                self.set_items(items)?;
            }
            b'a' | b'e' => {
                let items = if op == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                for it in &items {
                    self.charge_nested(it)?;
                }
                match self.stack.last_mut() {
                    Some(V::List(l)) => l.extend(items),
                    _ => return Err("pickle: APPEND on a non-list".into()),
                }
            }
            b's' => {
                let (v, k) = (self.pop()?, self.pop()?);
                self.set_items(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            b'R' => self.reduce()?,
            b'Q' => self.persistent()?,
            b'b' => {
                // BUILD: an OrderedDict's (empty) state, or a parameter's hooks: nothing to keep.
                self.pop()?;
            }
            0x81 => {
                let (args, cls) = (self.pop()?, self.pop()?);
                self.push(cls)?;
                self.push(args)?;
                self.reduce()?;
            }
            b'0' => {
                self.pop()?;
            }
            other => match self.scalar(other)? {
                Some(v) => self.push(v)?,
                None => return Err(format!("pickle: opcode 0x{other:02x} is not one torch.save writes")),
            },
        }
        Ok(false)
    }

    /// The opcodes that push one scalar (None, bools, ints, floats, strings, bytes); `None` for others.
    fn scalar(&mut self, op: u8) -> Result<Option<V>, String> {
        Ok(Some(match op {
            b'N' => V::None,
            0x88 | 0x89 => V::Other,
            b'J' => V::Int(i64::from(self.le(4)? as u32 as i32)),
            b'K' => V::Int(i64::from(self.u8()?)),
            b'M' => V::Int(self.le(2)? as i64),
            0x8a => {
                let n = usize::from(self.u8()?);
                let bytes = self.take(n)?.to_vec();
                if n > 8 {
                    return Err("pickle: integer over 64 bits".into());
                }
                let mut v: i64 = 0;
                for (i, b) in bytes.iter().enumerate() {
                    v |= i64::from(*b) << (8 * i);
                }
                if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                V::Int(v)
            }
            b'G' => {
                self.take(8)?;
                V::Other
            }
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'X' => self.le(4)?,
                    0x8c => u64::from(self.u8()?),
                    _ => self.le(8)?,
                } as usize;
                V::Str(String::from_utf8_lossy(self.take(n)?).into_owned())
            }
            b'U' | b'T' | b'C' | b'B' | 0x8e => {
                let n = match op {
                    b'U' | b'C' => u64::from(self.u8()?),
                    0x8e => self.le(8)?,
                    _ => self.le(4)?,
                } as usize;
                let b = self.take(n)?;
                if matches!(op, b'U' | b'T') { V::Str(String::from_utf8_lossy(b).into_owned()) } else { V::Other }
            }
            _ => return Ok(None),
        }))
    }

    fn memoize(&mut self, k: u32) -> Result<(), String> {
        let top = self.stack.last().cloned().ok_or("pickle stack underflow")?;
        self.charge(&top)?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&k) {
            return Err(format!("pickle: more than {MAX_MEMO} memo entries"));
        }
        self.memo.insert(k, top);
        Ok(())
    }
}

/// The tensors a pickle describes (name → tensor spec), in file order.
fn unpickle(data: &[u8]) -> Result<Vec<(String, V)>, String> {
    let mut m =
        Machine { data, pos: 0, stack: Vec::new(), memo: HashMap::new(), work: 0, budget: work_budget(data.len()) };
    loop {
        let op = m.u8()?;
        if m.step(op)? {
            break;
        }
    }
    let top = m.pop()?;
    let V::Dict(items) = top else { return Err("the checkpoint is not a state dict".into()) };
    items
        .into_iter()
        .filter_map(|(k, v)| match (k, v) {
            (V::Str(k), v @ V::Tensor { .. }) => Some(Ok((k, v))),
            (V::Str(_), _) => None, // non-tensor entries (e.g. `_metadata`) are not weights
            _ => Some(Err("a state-dict key is not a string".to_string())),
        })
        .collect()
}

fn element_size(kind: Kind) -> usize {
    match kind {
        Kind::Double | Kind::Int64 => 8,
        Kind::Float | Kind::Int => 4,
        Kind::Half | Kind::BFloat16 | Kind::Int16 => 2,
        _ => 1,
    }
}

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
    let packed = f.compressed_size().min(archive_len.saturating_sub(f.data_start())).max(1);
    let deflated = f.compression() != zip::CompressionMethod::Stored;
    let mut out = Vec::new();
    let mut reader = f.take(limit);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        out.extend_from_slice(&chunk[..n]);
        if deflated && out.len() > 1 << 20 && out.len() as u64 / packed > 100 {
            return Err(format!("{name} inflates over 100× ({packed} → {}+ bytes): refused as a zip bomb", out.len()));
        }
    }
    Ok(out)
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

    #[test]
    fn code_in_a_pickle_is_refused_by_name_and_never_run() {
        // cos\nsystem\n(S'touch /tmp/pwned'\ntR. — the classic payload.
        let evil = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.";
        let e = unpickle(evil).unwrap_err();
        assert!(e.contains("os.system") && e.contains("nothing was run"), "{e}");
        let e = unpickle(b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94.").unwrap_err();
        assert!(e.contains("builtins.eval"), "{e}");
    }

    #[test]
    fn truncated_and_odd_pickles_are_errors_not_panics() {
        for bad in [&b""[..], b"\x80", b"(", b"K", b"X\xff\xff\xff\xff", b"t.", b"R.", b"\xff"] {
            assert!(unpickle(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes, and a real state-dict pickle with bytes flipped, are errors or a state dict —
        /// never a panic, never a global outside the allow-list.
        #[test]
        fn arbitrary_pickles_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                                         flips in proptest::collection::vec((0usize..200, proptest::num::u8::ANY), 0..6)) {
            let _ = unpickle(&bytes);
            let mut real = STATE_DICT.to_vec();
            for (at, b) in flips {
                let i = at % real.len();
                real[i] = b;
            }
            let _ = unpickle(&real);
        }
    }

    #[test]
    fn memo_bombs_deep_nesting_and_mark_floods_are_refused_quickly() {
        // h k h k TUPLE2 q k+1, 40 times: each value is a pair of copies of the last (2^40 values).
        let mut bomb = b"\x80\x02K\x01q\x00".to_vec();
        for k in 0u8..40 {
            bomb.extend_from_slice(&[b'h', k, b'h', k, 0x86, b'q', k + 1]);
        }
        bomb.push(b'.');
        assert_eq!(bomb.len(), 6 + 280 + 1);
        let e = unpickle(&bomb).unwrap_err();
        assert!(e.contains("bomb"), "{e}");
        // 200,000 nested one-tuples.
        let mut deep = b")".to_vec();
        deep.extend(std::iter::repeat_n(0x85u8, 200_000));
        deep.push(b'.');
        assert!(unpickle(&deep).unwrap_err().contains("nested"));
        // Nesting through lists and dicts (APPEND, SETITEM) is bounded too.
        let mut deep = vec![b']'; 300];
        deep.extend(vec![b'a'; 299]);
        deep.push(b'.');
        assert!(unpickle(&deep).unwrap_err().contains("nested"));
        // Millions of MARKs.
        let marks = vec![b'('; 3_000_000];
        assert!(unpickle(&marks).unwrap_err().contains("stack"));
        // Many memo entries.
        let mut memo = b"K\x01".to_vec();
        for k in 0u32..1_200_000 {
            memo.push(b'r');
            memo.extend_from_slice(&k.to_le_bytes());
        }
        assert!(unpickle(&memo).unwrap_err().contains("memo"));
    }

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

    /// The opcodes that build, copy and nest values, with small arguments.
    fn structural_op() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(vec![b'(']),
            Just(vec![b')']),
            Just(vec![b']']),
            Just(vec![b'}']),
            Just(vec![0x85]),
            Just(vec![0x86]),
            Just(vec![0x87]),
            Just(vec![b't']),
            Just(vec![b'l']),
            Just(vec![b'a']),
            Just(vec![b'e']),
            Just(vec![b'u']),
            Just(vec![b's']),
            Just(vec![b'0']),
            Just(vec![0x94]),
            (0u8..8).prop_map(|k| vec![b'q', k]),
            (0u8..8).prop_map(|k| vec![b'h', k]),
            (0u8..255).prop_map(|k| vec![b'K', k]),
        ]
    }

    proptest::proptest! {
        /// Any sequence of building, copying and nesting opcodes ends in a value or an error, within the
        /// unpickler's bounds: never a panic, a stack overflow or unbounded memory.
        #[test]
        fn structural_opcode_sequences_stay_bounded(ops in proptest::collection::vec(structural_op(), 0..3000)) {
            let mut bytes: Vec<u8> = ops.concat();
            bytes.push(b'.');
            let mut m = Machine { data: &bytes, pos: 0, stack: Vec::new(), memo: HashMap::new(), work: 0, budget: work_budget(bytes.len()) };
            let mut ended = false;
            while let Ok(op) = m.u8() {
                match m.step(op) {
                    Ok(true) => { ended = true; break; }
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
            proptest::prop_assert!(m.work <= m.budget.saturating_add(1 << 22));
            proptest::prop_assert!(m.stack.iter().all(|v| measure(v).1 <= MAX_DEPTH + 1));
            let _ = ended;
        }
    }

    /// `torch.save({'w': torch.zeros(2)})`'s data.pkl (protocol 2).
    const STATE_DICT: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x02tq\x07QK\x00K\x02\x85q\x08K\x01\x85q\t\x89ccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\rs.";

    #[test]
    fn a_torch_save_state_dict_is_read() {
        let specs = unpickle(STATE_DICT).unwrap();
        assert_eq!(specs.len(), 1);
        match &specs[0] {
            (name, V::Tensor { kind, key, offset, size, stride }) => {
                assert_eq!((name.as_str(), *kind, key.as_str(), *offset), ("w", Kind::Float, "0", 0));
                assert_eq!((size.as_slice(), stride.as_slice()), (&[2i64][..], &[1i64][..]));
            }
            other => panic!("{other:?}"),
        }
    }
}
