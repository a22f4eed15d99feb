//! Generation speed as `../shared/bench/hf_reference.py generate` measures it: a random-init GPT-2 of the
//! given shape, a 16-token random prompt, sampling (top-k 50, top-p 0.95, temperature 0.8), a warm-up of 8
//! tokens, then `--new` tokens timed. Prints `key value` lines (decode tokens/s, time to first token).
//!
//! cargo bench -p banter-chat --bench gen -- [--layers 12 --embd 768 --heads 12 --vocab 50257 --new 128] [--bf16 | --int8 | --q4] [--model DIR] [--batch N] [--prompt 16]

use banter_model::cached::generate_batch;
use banter_model::generate::{Sampling, generate};
use banter_model::{Gpt2, Gpt2Config};
use tch::{Device, Kind};

fn arg(args: &[String], name: &str, default: i64) -> i64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    banter_model::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let (layers, embd, heads, vocab, new) = (
        arg(&args, "--layers", 12),
        arg(&args, "--embd", 768),
        arg(&args, "--heads", 12),
        arg(&args, "--vocab", 50257),
        arg(&args, "--new", 128),
    );
    let threads = arg(&args, "--threads", 0);
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    let bf16 = args.iter().any(|a| a == "--bf16");
    tch::manual_seed(0);
    // `--model DIR`: a GPT-2 directory (the one `banter-export gguf` exported for llama.cpp's run), else a
    // random model of the given shape.
    let dir = args.iter().position(|a| a == "--model").and_then(|i| args.get(i + 1));
    let mut model = match dir {
        Some(d) => match banter_model::lm::load_model(std::path::Path::new(d), Device::Cpu, Kind::Float) {
            Ok(banter_model::Lm::Gpt2(m)) => m,
            Ok(_) => panic!("--model: a GPT-2 directory"),
            Err(e) => panic!("--model {d}: {e}"),
        },
        None => Gpt2::new(Gpt2Config::new(vocab, 1024, embd, layers, heads), Device::Cpu),
    };
    let vocab = model.cfg.vocab_size;
    let int8 = args.iter().any(|a| a == "--int8");
    let q4 = args.iter().any(|a| a == "--q4");
    let compute = if bf16 {
        model.to_bf16_weights();
        Kind::BFloat16
    } else {
        if int8 || q4 {
            model.quantize(if q4 { banter_model::quant::Scheme::Q4 } else { banter_model::quant::Scheme::Int8 });
            // The int8 products run on banter's threads; libtorch's (OpenMP, spinning between ops) would
            // compete with them for the cores.
            tch::set_num_threads(1);
        }
        Kind::Float
    };
    model.prepare_for_decode();
    println!("params_m {:.1}", model.num_params() as f64 / 1e6);
    // `--prompt N`: the prompt's length (time to first token grows with it; see docs/benchmarks.md).
    let prompt: Vec<u32> = (0..arg(&args, "--prompt", 16)).map(|i| (i * 7919 % vocab) as u32).collect();
    let s = |n: i64| Sampling {
        temperature: 0.8,
        top_k: 50,
        top_p: 0.95,
        repetition_penalty: 1.0,
        max_new_tokens: n as usize,
        seed: 1,
    };
    let decode = |_: &[u32]| String::new();
    let batch = arg(&args, "--batch", 1) as usize;
    if batch > 1 {
        // Batched decoding (banter-chat --input): different prompts of the same length, tokens summed.
        let prompts: Vec<Vec<u32>> =
            (0..batch).map(|r| (0..16).map(|i| ((i + 31 * r as i64) * 7919 % vocab) as u32).collect()).collect();
        generate_batch(&model, &prompts, &s(8), &[], &[], &[], &decode, compute);
        let outs = generate_batch(&model, &prompts, &s(new), &[], &[], &[], &decode, compute);
        let tokens: usize = outs.iter().map(|o| o.ids.len()).sum();
        let decode_s = outs[0].seconds - outs[0].ttft;
        println!("generate_tokens_per_s {:.1}", (tokens - batch) as f64 / decode_s.max(1e-9));
        println!("ttft_ms {:.1}", outs[0].ttft * 1000.0);
        return;
    }
    generate(&model, &prompt, &s(8), &[], &[], &decode, compute, &mut |_| true);
    if std::env::var_os("BANTER_BENCH_STEPS").is_some() {
        let _g = tch::no_grad_guard();
        let mut cache = banter_model::KvCache::default();
        let ids = tch::Tensor::from_slice(&prompt.iter().map(|&i| i64::from(i)).collect::<Vec<_>>())
            .view([1, prompt.len() as i64]);
        let t = std::time::Instant::now();
        let _ = model.forward_last(&ids, Some(&mut cache), banter_model::Pass::eval());
        eprintln!("prefill {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        let mut logits = vec![0f32; vocab as usize];
        let mut dec = model.decoder().expect("the Rust decoder applies");
        let t = std::time::Instant::now();
        for i in 0..64 {
            assert!(dec.step(i, &mut cache, &mut logits));
        }
        eprintln!("step {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / 64.0);
    }
    let out = generate(&model, &prompt, &s(new), &[], &[], &decode, compute, &mut |_| true);
    let decode_s = out.seconds - out.ttft;
    println!("generate_tokens_per_s {:.1}", (out.ids.len() as f64 - 1.0) / decode_s.max(1e-9));
    println!("ttft_ms {:.1}", out.ttft * 1000.0);
}
