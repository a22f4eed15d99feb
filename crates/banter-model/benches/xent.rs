//! The fused head's softmax cross-entropy on one GPT-2 124M chunk (254 × 50,257 bf16 logits): banter's
//! one-pass kernel (`xent.rs`) beside libtorch's chain of ops (`head::xent_torch`), same threads.
//!
//! cargo bench -p banter-model --bench xent -- [--threads 2]

use std::time::Instant;

use tch::{Device, Kind, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args.iter().position(|a| a == "--threads").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(2);
    tch::set_num_threads(threads);
    let targets: Vec<i64> = (0..254).map(|i| i * 7).collect();
    let z = (Tensor::randn([254, 50257], (Kind::Float, Device::Cpu)) * 3.0).to_kind(Kind::BFloat16);
    let mut g = z.copy();
    let kernel = |g: &mut Tensor| banter_model::xent::softmax_xent_grad_(g, &targets, 0.01).expect("kernel applies");
    for _ in 0..3 {
        kernel(&mut g);
    }
    let t = Instant::now();
    for _ in 0..50 {
        kernel(&mut g);
    }
    let ms_kernel = t.elapsed().as_secs_f64() / 50.0 * 1e3;
    let y = Tensor::from_slice(&targets);
    let chain = || banter_model::head::xent_torch(z.to_kind(Kind::Float), &y, None, 0.01, Kind::BFloat16);
    let _ = chain();
    let t = Instant::now();
    for _ in 0..20 {
        let _ = chain().1.double_value(&[]);
    }
    let ms_chain = t.elapsed().as_secs_f64() / 20.0 * 1e3;
    println!("xent_kernel_ms {ms_kernel:.2}");
    println!("xent_libtorch_chain_ms {ms_chain:.2}");
}
