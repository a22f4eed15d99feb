//! The pickle inside PyTorch `torch.save` checkpoints (`data.pkl`), read without running any of its code
//! ([`crate::torch_zip`] reads the checkpoint around it).
//!
//! Python's unpickler executes whatever callables a pickle names. This one is a small stack machine over
//! the opcodes `torch.save` emits (protocols 2–4) that knows exactly four callables — `OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the typed-storage classes —
//! and refuses every other global by name (`os.system`, `builtins.eval`, …), as `torch.load(weights_only=True)`
//! does. No crate does this with its limits (serde-pickle has no persistent ids; repugnant-pickle is a 0.0.1
//! "best effort"), so it is written here; the tests read checkpoints transformers wrote.

use std::collections::HashMap;

use tch::Kind;

/// A value on the unpickler's stack.
#[derive(Debug, Clone)]
pub(crate) enum V {
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
pub(crate) fn unpickle(data: &[u8]) -> Result<Vec<(String, V)>, String> {
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

pub(crate) fn element_size(kind: Kind) -> usize {
    match kind {
        Kind::Double | Kind::Int64 => 8,
        Kind::Float | Kind::Int => 4,
        Kind::Half | Kind::BFloat16 | Kind::Int16 => 2,
        _ => 1,
    }
}

#[cfg(test)]
pub(crate) mod tests;
