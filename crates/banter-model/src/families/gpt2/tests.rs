//! Unit tests of `gpt2`.

use super::*;

fn tiny() -> Gpt2 {
    test_model(1, Gpt2Config::new(50, 32, 16, 2, 2))
}

#[test]
fn kv_cache_gives_the_same_logits_as_a_full_pass() {
    let m = tiny();
    let _g = tch::no_grad_guard();
    let ids = Tensor::from_slice(&[1i64, 5, 9, 3, 7, 2]).view([1, 6]);
    let full = m.forward(&ids, None, Pass::eval());
    let mut cache = KvCache::default();
    let a = m.forward(&ids.narrow(1, 0, 3), Some(&mut cache), Pass::eval());
    let b = m.forward(&ids.narrow(1, 3, 2), Some(&mut cache), Pass::eval()); // chunked prefill
    let c = m.forward(&ids.narrow(1, 5, 1), Some(&mut cache), Pass::eval()); // one-token decode
    let stitched = Tensor::cat(&[a, b, c], 1);
    let diff = (full - stitched).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "{diff}");
    assert_eq!(cache.len(), 6);
}

#[test]
fn left_padded_batches_give_each_row_its_own_logits() {
    let m = tiny();
    let _g = tch::no_grad_guard();
    let rows: [&[i64]; 3] = [&[1, 5, 9, 3, 7], &[4, 2], &[8, 8, 1]];
    let width = 5;
    let mut padded = Vec::new();
    let mut pads = Vec::new();
    for r in rows {
        pads.push((width - r.len()) as i64);
        padded.extend(std::iter::repeat_n(0i64, width - r.len()));
        padded.extend_from_slice(r);
    }
    let ids = Tensor::from_slice(&padded).view([3, width as i64]);
    let mut cache = KvCache::with_left_padding(pads.clone());
    let first = m.forward(&ids, Some(&mut cache), Pass::eval());
    let next = Tensor::from_slice(&[6i64, 6, 6]).view([3, 1]);
    let second = m.forward(&next, Some(&mut cache), Pass::eval());
    for (i, r) in rows.iter().enumerate() {
        let mut alone: Vec<i64> = r.to_vec();
        alone.push(6);
        let want = m.forward(&Tensor::from_slice(&alone).view([1, -1]), None, Pass::eval());
        let n = r.len() as i64;
        let got_last_prompt = first.get(i as i64).get(width as i64 - 1);
        let d1 = (want.get(0).get(n - 1) - got_last_prompt).abs().max().double_value(&[]);
        let d2 = (want.get(0).get(n) - second.get(i as i64).get(0)).abs().max().double_value(&[]);
        assert!(d1 < 1e-5 && d2 < 1e-5, "row {i}: {d1} {d2}");
    }
}

#[test]
fn loss_ignores_masked_labels_and_bf16_is_close() {
    let m = tiny();
    let ids = Tensor::from_slice(&[1i64, 5, 9, 3, 7, 2, 4, 4]).view([2, 4]);
    let labels = Tensor::from_slice(&[-100i64, -100, 9, 3, -100, 2, 4, -100]).view([2, 4]);
    let (l, n) = m.loss(&ids, &labels, Pass::eval());
    assert_eq!(n, 4);
    let (l16, _) = m.loss(&ids, &labels, Pass { train: false, compute: Kind::BFloat16 });
    let (a, b) = (l.double_value(&[]), l16.double_value(&[]));
    assert!((a - b).abs() / a < 0.01, "{a} vs {b}");
    assert!((a - (50f64).ln()).abs() < 0.5, "random init loss ≈ ln V: {a}");
}

#[test]
fn resize_keeps_old_rows() {
    let mut m = tiny();
    let before = m.wte.narrow(0, 0, 50).copy();
    m.resize_vocab(53);
    assert_eq!(m.wte.size(), vec![53, 16]);
    assert_eq!(m.cfg.vocab_size, 53);
    assert!(m.wte.narrow(0, 0, 50).allclose(&before, 0.0, 0.0, false));
    assert_eq!(m.vs.variables()["transformer.wte.weight"].size(), vec![53, 16]);
    let logits = m.forward(&Tensor::from_slice(&[52i64]).view([1, 1]), None, Pass::eval());
    assert_eq!(logits.size(), vec![1, 1, 53]);
}
