//! Speed and memory on a Hub family's shape (random weights), as `bench/families_reference.py` measures
//! transformers: training steps (full or LoRA on PEFT's default targets, fp32 or bf16 compute), sampled
//! decoding (batch 1, 16-token prompt), or loading a saved checkpoint in bf16. Prints `key value` lines.
//!
//! cargo bench -p banter-train --bench families -- --config shape.json --mode train|lora|decode|load
//!     [--bf16] [--steps 5] [--batch 2] [--block 128] [--new 64] [--threads N] [--dir CHECKPOINT]

use std::time::Instant;

use banter_model::generate::{self, Sampling};
use banter_model::optim::AdamW;
use banter_model::{LoraConfig, Pass};
use tch::{Device, Kind, Tensor};

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn num(args: &[String], name: &str, default: i64) -> i64 {
    arg(args, name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    banter_model::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let threads = num(&args, "--threads", 0);
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    let mode = arg(&args, "--mode").unwrap_or("train").to_string();
    let kind = if args.iter().any(|a| a == "--bf16") { Kind::BFloat16 } else { Kind::Float };
    tch::manual_seed(0);
    if mode == "load" {
        let dir = std::path::PathBuf::from(arg(&args, "--dir").expect("--dir"));
        let before = peak_rss_mb();
        let t = Instant::now();
        let m = banter_model::lm::load_model(&dir, Device::Cpu, kind).expect("load");
        println!("load_s {:.2}", t.elapsed().as_secs_f64());
        println!("params_m {:.1}", m.num_params() as f64 / 1e6);
        println!("rss_before_load_mb {before:.0}");
        println!("peak_rss_mb {:.0}", peak_rss_mb());
        return;
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(arg(&args, "--config").expect("--config")).unwrap()).unwrap();
    let vocab = cfg["vocab_size"].as_i64().unwrap();
    let mut model = banter_model::lm::scratch_model(cfg, vocab, 0, Device::Cpu, "bench config").expect("config");
    println!("params_m {:.1}", model.num_params() as f64 / 1e6);
    if mode == "decode" {
        let new = num(&args, "--new", 64) as usize;
        if kind != Kind::Float {
            model.to_half_weights(kind);
        }
        model.prepare_for_decode();
        let prompt: Vec<u32> = (0..16).map(|i| (i * 37 % vocab) as u32).collect();
        let run = |n: usize| {
            let s = Sampling {
                max_new_tokens: n,
                seed: 1,
                temperature: 0.8,
                top_k: 50,
                top_p: 0.95,
                ..Sampling::default()
            };
            generate::generate_with(
                &mut *model.stepper_in(kind),
                &prompt,
                &s,
                &[],
                &[],
                &|_| String::new(),
                &mut |_| true,
            )
        };
        run(8); // warm-up
        let out = run(new);
        println!("ttft_ms {:.1}", out.ttft * 1e3);
        println!("generate_tokens_per_s {:.1}", out.ids.len() as f64 / out.seconds);
        println!("peak_rss_mb {:.0}", peak_rss_mb());
        return;
    }
    let lora = mode == "lora";
    let params: Vec<(String, Tensor, bool)> = if lora {
        let targets = model.default_lora_targets();
        model.attach_lora(&LoraConfig { dropout: 0.0, targets, ..LoraConfig::default() });
        model.lora_vs().unwrap().variables().into_iter().map(|(n, t)| (n, t, false)).collect()
    } else {
        model.vs().variables().into_iter().map(|(n, t)| (n, t.shallow_clone(), t.dim() >= 2)).collect()
    };
    let mut opt = AdamW::new(params, 0.9, 0.999, 1e-8, 0.0);
    let (batch, block, steps) = (num(&args, "--batch", 2), num(&args, "--block", 128), num(&args, "--steps", 5));
    let x = Tensor::randint(vocab, [batch, block], (Kind::Int64, Device::Cpu));
    let pass = Pass { train: true, compute: kind };
    let mut step = || {
        model.loss_backward(&x, &x, pass, 1.0);
        opt.step(5e-5);
        opt.zero_grad();
    };
    for _ in 0..2 {
        step();
    }
    let t = Instant::now();
    for _ in 0..steps {
        step();
    }
    let dt = t.elapsed().as_secs_f64();
    println!("train_tokens_per_s {:.1}", (steps * batch * block) as f64 / dt);
    println!("peak_rss_mb {:.0}", peak_rss_mb());
}
