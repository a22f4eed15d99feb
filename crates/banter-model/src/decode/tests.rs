//! Unit tests of `decode`.

use super::*;
use crate::Pass;
use crate::config::Gpt2Config;
use crate::gpt2::test_model;

fn ids(v: &[i64]) -> Tensor {
    Tensor::from_slice(v).view([1, v.len() as i64])
}

/// Prefill through libtorch, then steps in Rust, against libtorch's full passes on an untouched copy.
fn steps_match(cfg: Gpt2Config, int8: bool, tol: f64) {
    let prep = if int8 {
        |m: &mut crate::Gpt2| {
            m.quantize_int8();
        }
    } else {
        |_: &mut crate::Gpt2| {}
    };
    steps_match_with(cfg, prep, tol);
}

/// [`steps_match`] with the weights held as `prep` leaves them (both models).
fn steps_match_with(cfg: Gpt2Config, prep: fn(&mut crate::Gpt2), tol: f64) {
    // One draw copied (the global torch RNG is shared with tests running in parallel).
    let mut reference = test_model(5, cfg.clone());
    let mut m = test_model(6, cfg);
    m.vs.copy(&reference.vs).unwrap();
    prep(&mut m);
    prep(&mut reference);
    m.prepare_for_decode();
    assert!(m.fast_decode());
    let _g = tch::no_grad_guard();
    // Under `qdot::prefill::MIN_ROWS` tokens, so the reference's quantized passes run the decoder's own
    // int8 kernels (longer prompts widen quantized weights to bf16: `prefill_of_quantized_weights...`).
    let seq = [3i64, 17, 42, 8, 99, 1, 64];
    // The decoder writes into buffers the cache owns, with room for the whole context.
    let mut cache = KvCache::default().reserve(m.cfg.n_positions);
    let first = m.forward_last(&ids(&seq[..4]), Some(&mut cache), Pass::eval());
    let full = reference.forward(&ids(&seq), None, Pass::eval());
    assert!(first.allclose(&full.get(0).get(3).unsqueeze(0), tol, tol, false));
    let vocab = m.cfg.vocab_size as usize;
    let mut logits = vec![0f32; vocab];
    let mut dec = m.decoder().unwrap();
    for (i, &id) in seq.iter().enumerate().skip(4) {
        assert!(dec.step(id as u32, &mut cache, &mut logits));
        let got = Tensor::from_slice(&logits);
        let diff = (got - full.get(0).get(i as i64)).abs().max().double_value(&[]);
        assert!(diff < tol, "position {i}: {diff}");
    }
    assert_eq!(cache.len(), seq.len() as i64);
}

#[test]
fn rust_steps_equal_libtorch_passes() {
    // Widths that are not multiples of the kernel's 16 lanes or 4 rows, and one that splits over threads.
    steps_match(Gpt2Config::new(101, 32, 36, 2, 3), false, 1e-4);
    steps_match(Gpt2Config::new(3001, 32, 64, 2, 4), false, 1e-4);
}

#[test]
fn rust_steps_equal_libtorch_passes_with_int8_weights() {
    steps_match(Gpt2Config::new(3001, 32, 64, 2, 4), true, 1e-3);
}

#[test]
fn rust_steps_equal_libtorch_passes_with_q4_and_bf16_weights() {
    // q4: libtorch's passes (10 rows) go through the same kernel, so the steps match closely.
    steps_match_with(
        Gpt2Config::new(3001, 32, 64, 2, 4),
        |m| {
            m.quantize(crate::quant::Scheme::Q4);
        },
        1e-3,
    );
    // bf16 weights, fp32 activations: the prefill's bf16 GEMM rounds its outputs to bf16, the Rust steps
    // sum in fp32, so they agree to bf16's precision.
    steps_match_with(Gpt2Config::new(3001, 32, 64, 2, 4), |m| m.to_bf16_weights(), 3e-2);
}

/// A bf16 GPT-2 decodes through the Rust decoder with fp32 activations (no per-token cast of the weights).
#[test]
fn bf16_weights_decode_in_rust() {
    let mut m = test_model(3, Gpt2Config::new(300, 32, 64, 2, 4));
    m.to_bf16_weights();
    m.prepare_for_decode();
    assert!(m.fast_decode());
    assert_eq!(m.wte.kind(), Kind::BFloat16);
}

#[test]
fn small_batches_through_the_kernel_equal_a_gemm() {
    tch::manual_seed(2);
    // Row counts and widths around the 4 × 4 block (AVX-512) and its leftovers.
    for (n, k, rows) in [(7, 5, 1), (37, 33, 3), (1030, 200, 5), (4, 16, 32), (9, 48, 4), (38, 40, 7), (130, 77, 16)] {
        let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([rows, k], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([n], (Kind::Float, Device::Cpu));
        let want = b.addmm(&x, &w.tr());
        let mut out = vec![0f32; (rows * n) as usize];
        let (ws, xs, bs) = (floats(&w).unwrap(), floats(&x).unwrap(), floats(&b).unwrap());
        gemm_rows(ws, xs, rows as usize, &mut out, Some(bs));
        let got = Tensor::from_slice(&out).view([rows, n]);
        assert!(got.allclose(&want, 1e-4, 1e-4, false), "{n}x{k}, {rows} rows");
    }
}

/// A prompt's prefill with libtorch on one thread runs the fp32 products on the row kernels (up to
/// `prefill_rows()` tokens) and gives libtorch's logits on an untouched copy, for every prompt length.
#[test]
fn a_short_prompt_prefills_on_the_row_kernels() {
    let cfg = Gpt2Config::new(301, 160, 72, 2, 3);
    let reference = test_model(8, cfg.clone());
    let mut m = test_model(9, cfg);
    m.vs.copy(&reference.vs).unwrap();
    m.prepare_for_decode();
    let _g = tch::no_grad_guard();
    // Long enough for every length below on any CPU (`prefill_rows()` is 4 without AVX-512).
    let seq: Vec<i64> = (0..(prefill_rows() as i64 + 3).max(40)).map(|i| (i * 37 + 5) % 301).collect();
    let full = reference.forward(&ids(&seq), None, Pass::eval());
    for len in [1usize, 4, 5, 9, 33, prefill_rows(), prefill_rows() + 3] {
        let _one = crate::rows::OneTorchThread::new(true);
        let got = m.forward_last(&ids(&seq[..len]), Some(&mut KvCache::default()), Pass::eval());
        let diff = (got - full.get(0).get(len as i64 - 1)).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{len} tokens: {diff}");
    }
    assert!(prefill_rows() >= LINEAR_ROWS);
}

/// A long prompt's prefill over int8 or q4 weights (bf16 products of the widened weights) stays close to the
/// same prompt fed through the decoder's int8 kernels, and to the fp32 model's logits.
#[test]
fn prefill_of_quantized_weights_matches_the_token_by_token_pass() {
    for scheme in [crate::quant::Scheme::Int8, crate::quant::Scheme::Q4] {
        let cfg = Gpt2Config::new(301, 64, 64, 2, 4);
        let fp32 = test_model(12, cfg.clone());
        let mut m = test_model(13, cfg);
        m.vs.copy(&fp32.vs).unwrap();
        m.quantize(scheme);
        m.prepare_for_decode();
        let _g = tch::no_grad_guard();
        let seq: Vec<i64> = (0..20).map(|i| (i * 53 + 7) % 301).collect();
        let long = m.forward_last(&ids(&seq), Some(&mut KvCache::default()), Pass::eval());
        let mut cache = KvCache::default().reserve(m.cfg.n_positions);
        let _ = m.forward_last(&ids(&seq[..1]), Some(&mut cache), Pass::eval());
        let mut logits = vec![0f32; 301];
        let mut dec = m.decoder().unwrap();
        for (i, &id) in seq.iter().enumerate().skip(1) {
            assert!(dec.step(id as u32, &mut cache, &mut logits), "{i}");
        }
        let stepped = Tensor::from_slice(&logits).unsqueeze(0);
        let want = fp32.forward(&ids(&seq), None, Pass::eval()).get(0).get(19).unsqueeze(0);
        let spread = (want.max() - want.min()).double_value(&[]);
        let d_steps = (&long - &stepped).abs().max().double_value(&[]) / spread;
        let d_fp32 = (&long - &want).abs().max().double_value(&[]) / spread;
        eprintln!("{scheme:?}: long prefill vs steps {d_steps:.2e}, vs fp32 {d_fp32:.2e} (of the logits' range)");
        assert!(d_steps < 0.02 && d_fp32 < 0.05, "{scheme:?}: {d_steps} {d_fp32}");
    }
}

#[test]
fn other_layouts_fall_back_to_libtorch() {
    let cfg = Gpt2Config::new(50, 32, 16, 2, 2);
    // Not laid out for decoding: the Conv1D weights are row-major.
    assert!(!test_model(1, cfg.clone()).fast_decode());
    // An unmerged LoRA branch.
    let mut m = test_model(1, cfg.clone());
    m.prepare_for_decode();
    assert!(m.fast_decode());
    m.attach_lora(&crate::LoraConfig::default());
    assert!(!m.fast_decode());
    // Exact GELU.
    let mut c = cfg;
    c.activation_function = "gelu".into();
    let mut m = test_model(1, c);
    m.prepare_for_decode();
    assert!(!m.fast_decode());
    // A step without a prefilled cache is refused, not guessed.
    let mut m = test_model(1, Gpt2Config::new(50, 32, 16, 2, 2));
    m.prepare_for_decode();
    let mut logits = vec![0f32; 50];
    assert!(!m.decoder().unwrap().step(3, &mut KvCache::default(), &mut logits));
}
