//! Property tests of the checkpoint reader: any bytes, and valid safetensors headers bent out of shape
//! (offsets past the end, wrong sizes, odd dtypes), are an error, never a panic or a crash — for the whole-file
//! reader and the one-tensor-at-a-time reader alike.

use banter_model::io::{read_safetensors, read_weights_as};
use proptest::prelude::*;

/// A safetensors file: 8-byte little-endian header length, the JSON header, then the data.
fn file(header: &str, data_len: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend(std::iter::repeat_n(0u8, data_len));
    b
}

proptest! {
    #[test]
    fn fuzz_safetensors_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        std::fs::write(&p, &bytes).unwrap();
        let _ = read_safetensors(&p, tch::Device::Cpu);
        let _ = read_weights_as(&p, tch::Device::Cpu, tch::Kind::BFloat16);
    }

    #[test]
    fn fuzz_safetensors_bent_headers(
        dtype in "(F32|F16|BF16|F64|I64|U8|BOOL|I8|F8_E4M3|XYZ)",
        shape in prop::collection::vec(0usize..6, 0..4),
        start in 0usize..200,
        len in 0usize..200,
        data_len in 0usize..200,
        name in "[a-z.]{0,12}",
    ) {
        let shape_txt = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        let header = format!(
            "{{\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{shape_txt}],\"data_offsets\":[{start},{}]}}}}",
            start + len
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        std::fs::write(&p, file(&header, data_len)).unwrap();
        let _ = read_safetensors(&p, tch::Device::Cpu);
        // The streaming reader: an error too, or tensors whose bytes were all in the file (buffers such as
        // I64 position ids are skipped unread).
        if let Ok(t) = read_weights_as(&p, tch::Device::Cpu, tch::Kind::BFloat16) {
            prop_assert!(t.is_empty() || (start + len <= data_len && t.len() == 1));
        }
    }
}
