//! The GGUF v3 container (ggml's `docs/gguf.md`): a header, typed metadata, tensor infos, then the tensor
//! data, each aligned to `general.alignment` (32). Dimensions are written in ggml's order (innermost
//! first: the reverse of a PyTorch shape); data is row-major, as a contiguous PyTorch tensor is.

use std::io::Write;

/// ggml tensor types banter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GgmlType {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// Blocks of 32 int8 with one f16 scale (34 bytes).
    Q8_0,
    /// bfloat16 (the top half of an f32, rounded to nearest even).
    Bf16,
    /// Blocks of 32 4-bit values with one f16 scale (18 bytes).
    Q4_0,
}

impl GgmlType {
    /// ggml's number for the type.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q8_0 => 8,
            GgmlType::Bf16 => 30,
            GgmlType::Q4_0 => 2,
        }
    }
}

/// A metadata value.
#[derive(Debug, Clone)]
pub enum Value {
    /// uint32.
    U32(u32),
    /// int32.
    I32(i32),
    /// float32.
    F32(f32),
    /// bool.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array of strings.
    Strs(Vec<String>),
    /// Array of int32.
    I32s(Vec<i32>),
    /// Array of float32.
    F32s(Vec<f32>),
}

/// One tensor, already in its on-disk bytes.
#[derive(Debug)]
pub struct TensorData {
    /// llama.cpp's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// The PyTorch shape (outermost first).
    pub shape: Vec<u64>,
    /// Its type.
    pub kind: GgmlType,
    /// The bytes.
    pub bytes: Vec<u8>,
}

const ALIGN: u64 = 32;

fn put_str(w: &mut Vec<u8>, s: &str) {
    w.extend_from_slice(&(s.len() as u64).to_le_bytes());
    w.extend_from_slice(s.as_bytes());
}

fn put_value(w: &mut Vec<u8>, v: &Value) {
    let arr = |w: &mut Vec<u8>, ty: u32, n: usize| {
        w.extend_from_slice(&9u32.to_le_bytes());
        w.extend_from_slice(&ty.to_le_bytes());
        w.extend_from_slice(&(n as u64).to_le_bytes());
    };
    match v {
        Value::U32(x) => {
            w.extend_from_slice(&4u32.to_le_bytes());
            w.extend_from_slice(&x.to_le_bytes());
        }
        Value::I32(x) => {
            w.extend_from_slice(&5u32.to_le_bytes());
            w.extend_from_slice(&x.to_le_bytes());
        }
        Value::F32(x) => {
            w.extend_from_slice(&6u32.to_le_bytes());
            w.extend_from_slice(&x.to_le_bytes());
        }
        Value::Bool(x) => {
            w.extend_from_slice(&7u32.to_le_bytes());
            w.push(u8::from(*x));
        }
        Value::Str(s) => {
            w.extend_from_slice(&8u32.to_le_bytes());
            put_str(w, s);
        }
        Value::Strs(a) => {
            arr(w, 8, a.len());
            a.iter().for_each(|s| put_str(w, s));
        }
        Value::I32s(a) => {
            arr(w, 5, a.len());
            a.iter().for_each(|x| w.extend_from_slice(&x.to_le_bytes()));
        }
        Value::F32s(a) => {
            arr(w, 6, a.len());
            a.iter().for_each(|x| w.extend_from_slice(&x.to_le_bytes()));
        }
    }
}

/// Writes a whole GGUF file to `out`.
pub fn write(out: &mut impl Write, meta: &[(String, Value)], tensors: &[TensorData]) -> std::io::Result<u64> {
    let mut head = Vec::new();
    head.extend_from_slice(b"GGUF");
    head.extend_from_slice(&3u32.to_le_bytes());
    head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    head.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        put_str(&mut head, k);
        put_value(&mut head, v);
    }
    let mut offset = 0u64;
    for t in tensors {
        put_str(&mut head, &t.name);
        head.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            head.extend_from_slice(&d.to_le_bytes());
        }
        head.extend_from_slice(&t.kind.id().to_le_bytes());
        head.extend_from_slice(&offset.to_le_bytes());
        offset += (t.bytes.len() as u64).next_multiple_of(ALIGN);
    }
    let pad = (head.len() as u64).next_multiple_of(ALIGN) - head.len() as u64;
    head.extend(std::iter::repeat_n(0u8, pad as usize));
    out.write_all(&head)?;
    let mut total = head.len() as u64;
    for t in tensors {
        out.write_all(&t.bytes)?;
        let pad = (t.bytes.len() as u64).next_multiple_of(ALIGN) - t.bytes.len() as u64;
        out.write_all(&vec![0u8; pad as usize])?;
        total += t.bytes.len() as u64 + pad;
    }
    Ok(total)
}

/// f32 values as little-endian bytes.
pub fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// f32 values as IEEE half floats (round to nearest even, as numpy's `astype(float16)`).
pub fn f16_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect()
}

/// Rounds half away from zero, as gguf-py's `np_roundf`.
fn roundf(x: f32) -> f32 {
    (x.abs() + 0.5).floor().copysign(x)
}

/// Q8_0 as gguf-py quantizes it: per block of 32, `d = max|x| / 127`, `q = round(x / d)`; `d` stored as f16.
/// `x.len()` must be a multiple of 32.
pub fn q8_0_bytes(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 32 * 34);
    for b in x.chunks(32) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        for v in b {
            out.push(roundf(v * id) as i8 as u8);
        }
    }
    out
}

/// f32 values as bfloat16, rounded to nearest even as gguf-py's `__compute_fp32_to_bf16` (NaNs stay
/// quiet NaNs).
pub fn bf16_bytes(x: &[f32]) -> Vec<u8> {
    x.iter()
        .flat_map(|v| {
            let n = v.to_bits();
            let h = if v.is_nan() { ((n >> 16) | 64) as u16 } else { ((n + (0x7fff + ((n >> 16) & 1))) >> 16) as u16 };
            h.to_le_bytes()
        })
        .collect()
}

/// Q4_0 as llama.cpp's `quantize_row_q4_0_ref`: per block of 32, `d = max / −8` with `max` the value of
/// largest magnitude, `q = min(15, trunc(x / d + 8.5))`; byte `j` holds element `j` (low nibble) and
/// `j + 16` (high); `d` stored as f16. `x.len()` must be a multiple of 32.
pub fn q4_0_bytes(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 32 * 18);
    for b in x.chunks(32) {
        let max = b.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        for j in 0..16 {
            let q = |v: f32| ((v * id + 8.5) as i8).clamp(0, 15) as u8;
            out.push(q(b[j]) | (q(b[j + 16]) << 4));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_and_bf16_match_llama_cpp_and_gguf_py() {
        let mut x: Vec<f32> = (0..32).map(|i| i as f32 / 4.0 - 4.0).collect();
        x[5] = -8.0; // the largest magnitude: d = 1, it maps to 0
        let b = q4_0_bytes(&x);
        assert_eq!(b.len(), 18);
        assert_eq!(half::f16::from_le_bytes([b[0], b[1]]).to_f32(), 1.0);
        // Element 0 (−4.0): trunc(−4 + 8.5) = 4; element 16 (0.0): 8.
        assert_eq!(b[2] & 15, 4);
        assert_eq!(b[2] >> 4, 8);
        assert_eq!(b[2 + 5] & 15, 0);
        assert_eq!(q4_0_bytes(&[0.0; 32])[2..], [0x88u8; 16]);
        let h = bf16_bytes(&[1.0, -2.5, 1.0 + 1.0 / 256.0, f32::NAN]);
        assert_eq!(u16::from_le_bytes([h[0], h[1]]), 0x3f80);
        assert_eq!(u16::from_le_bytes([h[2], h[3]]), 0xc020);
        assert_eq!(u16::from_le_bytes([h[4], h[5]]), 0x3f80, "a tie rounds to even");
        assert!(f32::from_bits(u32::from(u16::from_le_bytes([h[6], h[7]])) << 16).is_nan());
    }

    #[test]
    fn q8_0_blocks_round_half_away_from_zero_and_scale_by_the_largest_value() {
        let mut x = vec![0.0f32; 32];
        x[0] = 127.0;
        x[1] = -63.5;
        x[2] = 0.5;
        let b = q8_0_bytes(&x);
        assert_eq!(b.len(), 34);
        assert_eq!(half::f16::from_le_bytes([b[0], b[1]]).to_f32(), 1.0);
        assert_eq!((b[2] as i8, b[3] as i8, b[4] as i8, b[5] as i8), (127, -64, 1, 0));
        assert_eq!(q8_0_bytes(&[0.0; 32])[2..], [0u8; 32]);
    }

    #[test]
    fn the_header_is_gguf_v3_and_data_is_aligned() {
        let t = TensorData { name: "a".into(), shape: vec![2, 3], kind: GgmlType::F32, bytes: f32_bytes(&[1.0; 6]) };
        let mut out = Vec::new();
        let n = write(&mut out, &[("general.architecture".into(), Value::Str("llama".into()))], &[t]).unwrap();
        assert_eq!(&out[..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 3);
        assert_eq!(n as usize, out.len());
        assert_eq!(out.len() % 32, 0);
    }
}
