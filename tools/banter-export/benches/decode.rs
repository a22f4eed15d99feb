//! banter's own greedy decode speed on a model directory, for `make bench` to set beside onnxruntime running
//! the same model's ONNX export: fp32 weights, the decode path banter-chat uses (KV cache, the Rust decoder
//! where it applies), batch 1, `--prompt` random tokens then `--new` tokens timed (EOS does not stop it).
//!
//! cargo bench -p banter-export --bench decode -- --model DIR [--prompt 16] [--new 128] [--threads N]
//! Prints `key value` lines.

use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() {
    banter_model::init();
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = arg(&args, "--model") else {
        eprintln!("usage: decode --model DIR [--prompt 16] [--new 128] [--threads N]");
        return;
    };
    let num = |k: &str, d: usize| arg(&args, k).and_then(|v| v.parse().ok()).unwrap_or(d);
    if let Some(t) = arg(&args, "--threads").and_then(|v| v.parse().ok()) {
        tch::set_num_threads(t);
    }
    let (p, n) = (num("--prompt", 16), num("--new", 128));
    let t0 = Instant::now();
    let mut src = banter_convert::Source::load(std::path::Path::new(&dir), None).expect("model");
    let load = t0.elapsed().as_secs_f64();
    src.lm.prepare_for_decode();
    let vocab = src.lm.vocab_size() as usize;
    let mut r = banter_core::util::SplitMix64::new(3);
    let prompt: Vec<u32> = (0..p).map(|_| r.below(vocab) as u32).collect();
    tch::no_grad(|| {
        // Warm-up, then the timed run.
        let mut s = src.lm.stepper();
        let mut l = s.prefill(&prompt);
        s.step(0, &mut l);
        let mut s = src.lm.stepper();
        let t = Instant::now();
        let mut logits = s.prefill(&prompt);
        let ttft = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..n {
            s.step(banter_model::generate::argmax(&logits), &mut logits);
        }
        let secs = t.elapsed().as_secs_f64();
        println!("load_s {load:.3}");
        println!("ttft_ms {:.2}", ttft * 1e3);
        println!("decode_tokens_per_s {:.2}", n as f64 / secs);
    });
}
