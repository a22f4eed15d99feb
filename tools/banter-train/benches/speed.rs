//! Training speed on a given GPT-2 shape with random init and random tokens, as
//! `../shared/bench/hf_reference.py train` measures it: 2 warm-up steps, then `--steps` timed steps of
//! forward + backward + AdamW. Prints `key value` lines.
//!
//! cargo bench -p banter-train --bench speed -- [--layers 12 --embd 768 --heads 12 --vocab 50257 --batch 2
//!     --block 128 --steps 10] [--lora] [--bf16] [--unfused] [--cast-base] [--threads N]
//!
//! LoRA in bf16 holds the frozen base in bf16 as `banter-train` does; `--cast-base` keeps it fp32 and casts
//! it on every pass (the path before), to compare.

use std::time::Instant;

// banter-train's allocator (jemalloc under libtorch too), as the tool runs.
use banter_train as _;

use banter_model::Pass;
use banter_model::optim::AdamW;
use banter_model::{Gpt2, Gpt2Config, Lm, LoraConfig};
use tch::{Device, Kind, Tensor};

fn arg(args: &[String], name: &str, default: i64) -> i64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    banter_model::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let (layers, embd, heads, vocab) = (
        arg(&args, "--layers", 12),
        arg(&args, "--embd", 768),
        arg(&args, "--heads", 12),
        arg(&args, "--vocab", 50257),
    );
    let (batch, block, steps) = (arg(&args, "--batch", 2), arg(&args, "--block", 128), arg(&args, "--steps", 10));
    let threads = arg(&args, "--threads", 0);
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    let use_lora = args.iter().any(|a| a == "--lora");
    let bf16 = args.iter().any(|a| a == "--bf16");
    tch::manual_seed(0);
    let mut cfg = Gpt2Config::new(vocab, 1024.max(block), embd, layers, heads);
    cfg.attn_pdrop = 0.1;
    let mut model: Lm = Gpt2::new(cfg, Device::Cpu).into();
    println!("params_m {:.1}", model.num_params() as f64 / 1e6);
    let params: Vec<(String, Tensor, bool)> = if use_lora {
        let targets = model.default_lora_targets();
        model.attach_lora(&LoraConfig { dropout: 0.0, targets, ..Default::default() });
        if bf16 && !args.iter().any(|a| a == "--cast-base") {
            model.hold_frozen_base_in(Kind::BFloat16, false);
        }
        model.lora_vs().unwrap().variables().into_iter().map(|(n, t)| (n, t, false)).collect()
    } else {
        model.vs().variables().into_iter().map(|(n, t)| (n.clone(), t.shallow_clone(), t.dim() >= 2)).collect()
    };
    let mut opt = AdamW::new(params, 0.9, 0.999, 1e-8, 0.0);
    let x = Tensor::randint(vocab, [batch, block], (Kind::Int64, Device::Cpu));
    let pass = Pass { train: true, compute: if bf16 { Kind::BFloat16 } else { Kind::Float } };
    // --unfused: autograd through the head and cross-entropy, and the tensor-op AdamW (the pre-0.2 path),
    // to show what the fused pieces are worth on this machine.
    let unfused = args.iter().any(|a| a == "--unfused");
    opt.fused = !unfused;
    let mut step = || {
        if unfused {
            let (loss, _) = model.loss(&x, &x, pass);
            loss.backward();
        } else {
            model.loss_backward(&x, &x, pass, 1.0);
        }
        opt.step(5e-5);
    };
    step();
    step();
    let t = Instant::now();
    for _ in 0..steps {
        step();
    }
    let dt = t.elapsed().as_secs_f64();
    println!("train_tokens_per_s {:.1}", (steps * batch * block) as f64 / dt);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .unwrap_or(0);
    println!("peak_rss_mb {}", rss / 1024);
}
