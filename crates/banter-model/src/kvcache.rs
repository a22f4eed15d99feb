//! The key/value cache of generation.

use tch::{Device, Kind, Tensor};

/// Keys and values of the tokens seen so far, per layer, in buffers allocated once for the whole context
/// (`[B, heads, n_positions, head_dim]`) and written in place: a generated token costs no reallocation or
/// copy of the past.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: i64,
    /// Left padding per row of a batch of prompts of different lengths (empty: none).
    pub(crate) pads: Vec<i64>,
    /// Each layer's key and value buffer addresses and capacity, for the Rust decoder (empty until asked
    /// for; cleared whenever a buffer is replaced).
    raw: Vec<(usize, usize, usize)>,
}

impl KvCache {
    /// A cache for a batch whose rows are left-padded by `pads[b]` tokens: padded positions are never
    /// attended to, and each row's positions count from its first real token.
    pub fn with_left_padding(pads: Vec<i64>) -> Self {
        KvCache {
            layers: Vec::new(),
            len: 0,
            pads: if pads.iter().any(|&p| p > 0) { pads } else { Vec::new() },
            raw: Vec::new(),
        }
    }

    /// Tokens cached.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the first `n` positions (to drop a rejected continuation).
    pub fn truncate(&mut self, n: i64) {
        self.len = self.len.min(n.max(0));
    }

    /// Sets the number of cached positions (after a step wrote them).
    pub(crate) fn set_len(&mut self, n: i64) {
        self.len = n;
    }

    /// Each layer's key and value buffer addresses (`[1, heads, cap, head_dim]`, fp32, contiguous, on CPU)
    /// and `cap`, when there are `n_layers` of them, unpadded, with room for `need` positions.
    pub(crate) fn raw_layers(&mut self, n_layers: usize, need: usize) -> Option<&[(usize, usize, usize)]> {
        if self.layers.len() != n_layers || !self.pads.is_empty() {
            return None;
        }
        if self.raw.len() != n_layers {
            let ok = |t: &Tensor| {
                t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() && t.size()[0] == 1
            };
            self.raw = self
                .layers
                .iter()
                .map(|(k, v)| {
                    (ok(k) && ok(v) && v.size() == k.size())
                        .then(|| (k.data_ptr() as usize, v.data_ptr() as usize, k.size()[2] as usize))
                })
                .collect::<Option<Vec<_>>>()?;
        }
        self.raw.iter().all(|r| r.2 >= need).then_some(self.raw.as_slice())
    }

    /// Writes `k`, `v` (`[B, heads, t, head_dim]`) of layer `li` at positions `len..len+t` and returns the
    /// keys and values of positions `0..len+t` (views of the buffers).
    pub(crate) fn append(&mut self, li: usize, k: &Tensor, v: &Tensor, capacity: i64) -> (Tensor, Tensor) {
        let t = k.size()[2];
        let need = self.len + t;
        let fits = self
            .layers
            .get(li)
            .is_some_and(|(bk, _)| bk.size()[2] >= need && bk.kind() == k.kind() && bk.size()[0] == k.size()[0]);
        if !fits {
            let mut shape = k.size();
            shape[2] = capacity.max(need);
            let (nk, nv) = (
                Tensor::empty(shape.as_slice(), (k.kind(), k.device())),
                Tensor::empty(shape.as_slice(), (v.kind(), v.device())),
            );
            if let Some((ok, ov)) = self.layers.get(li)
                && self.len > 0
                && ok.kind() == k.kind()
            {
                nk.narrow(2, 0, self.len).copy_(&ok.narrow(2, 0, self.len));
                nv.narrow(2, 0, self.len).copy_(&ov.narrow(2, 0, self.len));
            }
            self.raw.clear();
            if li < self.layers.len() {
                self.layers[li] = (nk, nv);
            } else {
                self.layers.push((nk, nv));
            }
        }
        let (bk, bv) = &self.layers[li];
        bk.narrow(2, self.len, t).copy_(k);
        bv.narrow(2, self.len, t).copy_(v);
        (bk.narrow(2, 0, need), bv.narrow(2, 0, need))
    }
}
