//! The key/value cache of generation, one for every family.

use tch::{Device, Kind, Tensor};

/// Keys and values of the tokens seen so far, per layer (`[B, kv_heads, T, head_dim]`).
///
/// The first pass (the prompt, or a training sequence) is kept as it came, no copy; from the next on, each
/// layer's keys and values live in a buffer with room to spare, written in place: a generated token costs
/// one `[B, kv_heads, 1, head_dim]` copy per layer, not a copy of the whole cache. Buffers double when full,
/// or are allocated at once for [`KvCache::reserve`] positions (GPT-2's Rust decoder writes into them).
#[derive(Debug, Default)]
pub struct KvCache {
    /// Per layer: keys, values, and whether the buffers are the cache's own (false: the first pass's
    /// tensors, kept as they came).
    layers: Vec<(Tensor, Tensor, bool)>,
    len: i64,
    /// Left padding of each row of a batch (empty: none).
    pads: Vec<i64>,
    /// Positions to allocate room for from the first pass on (0: the first pass is kept as it came).
    reserve: i64,
    /// Each layer's key and value buffer addresses and capacity, for the Rust decoder (empty until asked
    /// for; cleared whenever a buffer is replaced).
    raw: Vec<(usize, usize, usize)>,
}

impl KvCache {
    /// An empty cache for a batch whose rows are left-padded by `pads[b]` tokens: padded positions are never
    /// attended to, and each row's positions count from its first real token.
    pub fn with_left_padding(pads: Vec<i64>) -> Self {
        let pads = if pads.iter().any(|&p| p > 0) { pads } else { Vec::new() };
        KvCache { pads, ..KvCache::default() }
    }

    /// Allocates room for `positions` in every layer from the first pass on (the whole context, for a
    /// decoder that writes into the buffers itself).
    pub fn reserve(mut self, positions: i64) -> Self {
        self.reserve = positions;
        self
    }

    /// Each row's left padding (empty: none).
    pub fn pads(&self) -> &[i64] {
        &self.pads
    }

    /// Tokens cached.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counts `t` more tokens (after every layer appended them).
    pub(crate) fn advance(&mut self, t: i64) {
        self.len += t;
    }

    /// Each layer's key and value buffer addresses (`[1, heads, cap, head_dim]`, fp32, contiguous, on CPU)
    /// and `cap`, when there are `n_layers` of them, the cache's own, unpadded, with room for `need`
    /// positions.
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
                .map(|(k, v, own)| {
                    (*own && ok(k) && ok(v) && v.size() == k.size())
                        .then(|| (k.data_ptr() as usize, v.data_ptr() as usize, k.size()[2] as usize))
                })
                .collect::<Option<Vec<_>>>()?;
        }
        self.raw.iter().all(|r| r.2 >= need).then_some(self.raw.as_slice())
    }

    /// Writes `k`, `v` (`[B, heads, t, head_dim]`) of layer `li` at positions `len..len+t` and returns the
    /// keys and values of positions `0..len+t` (views of the buffers).
    pub(crate) fn append(&mut self, li: usize, k: &Tensor, v: &Tensor) -> (Tensor, Tensor) {
        let t = k.size()[2];
        let need = self.len + t;
        if li == self.layers.len() && self.len == 0 && self.reserve == 0 {
            self.layers.push((k.shallow_clone(), v.shallow_clone(), false));
            return (k.shallow_clone(), v.shallow_clone());
        }
        let fits = self.layers.get(li).is_some_and(|(bk, _, own)| {
            *own && bk.size()[2] >= need && bk.kind() == k.kind() && bk.size()[0] == k.size()[0]
        });
        if !fits {
            let mut shape = k.size();
            shape[2] = if self.reserve > 0 { self.reserve.max(need) } else { (2 * need).max(64) };
            let (nk, nv) = (
                Tensor::empty(shape.as_slice(), (k.kind(), k.device())),
                Tensor::empty(shape.as_slice(), (v.kind(), v.device())),
            );
            if let Some((ok, ov, _)) = self.layers.get(li)
                && self.len > 0
            {
                nk.narrow(2, 0, self.len).copy_(&ok.narrow(2, 0, self.len));
                nv.narrow(2, 0, self.len).copy_(&ov.narrow(2, 0, self.len));
            }
            self.raw.clear();
            if li < self.layers.len() {
                self.layers[li] = (nk, nv, true);
            } else {
                self.layers.push((nk, nv, true));
            }
        }
        let (bk, bv, _) = &self.layers[li];
        bk.narrow(2, self.len, t).copy_(k);
        bv.narrow(2, self.len, t).copy_(v);
        (bk.narrow(2, 0, need), bv.narrow(2, 0, need))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_grows_in_place_and_keeps_every_token() {
        for reserve in [0, 40] {
            let mut cache = KvCache::default().reserve(reserve);
            let mut want_k: Vec<Tensor> = Vec::new();
            for step in 0..150 {
                let t = if step == 0 { 5 } else { 1 + step % 3 };
                let k = Tensor::randn([1, 2, t, 4], (Kind::Float, Device::Cpu));
                let v = &k * 2.0;
                want_k.push(k.shallow_clone());
                let (gk, gv) = cache.append(0, &k, &v);
                cache.advance(t);
                let all = Tensor::cat(&want_k, 2);
                assert_eq!(gk.size()[2], cache.len());
                assert!(gk.equal(&all) && gv.equal(&(&all * 2.0)), "reserve {reserve}, step {step}");
            }
        }
    }

    #[test]
    fn the_first_pass_is_kept_without_a_copy_and_never_written_into() {
        let mut cache = KvCache::default();
        let k = Tensor::ones([1, 2, 3, 4], (Kind::Float, Device::Cpu));
        let (gk, _) = cache.append(0, &k, &k);
        assert_eq!(gk.data_ptr(), k.data_ptr(), "no copy of a training pass");
        cache.advance(3);
        let (gk, _) = cache.append(0, &(&k * 0.0).narrow(2, 0, 1), &k.narrow(2, 0, 1));
        assert_ne!(gk.data_ptr(), k.data_ptr());
        assert_eq!(k.sum(Kind::Float).double_value(&[]), 24.0, "the pass's own tensor is untouched");
        assert!(cache.raw_layers(1, 5).is_some(), "a grown buffer is the cache's own");
    }
}
