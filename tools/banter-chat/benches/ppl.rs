//! Perplexity of a model on held-out token ids as generation computes it (issue 30): each window is fed one
//! token at a time through the model's stepper (for GPT-2 the Rust decoder and its kernels), in fp32, bf16
//! weights, int8 and q4, so the figure is the cost of each precision where it is used.
//!
//! cargo bench -p banter-chat --bench ppl -- --model DIR --ids FILE.json [--window 128] [--windows 40]
//!
//! FILE.json is a JSON array of token ids. Prints `ppl_<precision> value` lines.

use banter_model::quant::Scheme;
use tch::{Device, Kind};

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(|s| s.as_str())
}

fn main() {
    banter_model::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(arg(&args, "--model").expect("--model DIR"));
    let ids: Vec<u32> =
        serde_json::from_str(&std::fs::read_to_string(arg(&args, "--ids").expect("--ids FILE")).expect("--ids"))
            .expect("a JSON array of ids");
    let window: usize = arg(&args, "--window").map_or(128, |v| v.parse().expect("--window N"));
    let windows: usize = arg(&args, "--windows").map_or(40, |v| v.parse().expect("--windows N"));
    let _g = tch::no_grad_guard();
    for name in ["fp32", "bf16", "int8", "q4"] {
        let mut lm = banter_model::lm::load_model(&dir, Device::Cpu, Kind::Float).expect("--model");
        let compute = match name {
            "bf16" => {
                lm.to_half_weights(Kind::BFloat16);
                Kind::BFloat16
            }
            "int8" | "q4" => {
                lm.quantize(if name == "q4" { Scheme::Q4 } else { Scheme::Int8 });
                Kind::Float
            }
            _ => Kind::Float,
        };
        lm.prepare_for_decode();
        let (mut nll, mut n) = (0f64, 0usize);
        for w in ids.chunks_exact(window + 1).take(windows) {
            let mut st = lm.stepper_in(compute);
            let mut logits = st.prefill(&w[..1]);
            for j in 1..=window {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lse = max as f64 + logits.iter().map(|&z| ((z - max) as f64).exp()).sum::<f64>().ln();
                nll += lse - logits[w[j] as usize] as f64;
                n += 1;
                if j < window {
                    st.step(w[j], &mut logits);
                }
            }
        }
        println!("ppl_{name} {:.4}", (nll / n.max(1) as f64).exp());
        println!("tokens_{name} {n}");
    }
}
