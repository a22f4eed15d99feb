//! The attribution classifier on tinyshakespeare (8 speakers, each one's last 20% held out): accuracy and
//! time, printed as `key value` lines for `bench/bench.py`, which runs scikit-learn on the same split.
//!
//! cargo bench -p banter-eval-lib --bench attribution -- FILE

use std::time::Instant;

use banter_eval_lib::ngram::Attributor;
use banter_eval_lib::speeches;

fn main() {
    let path = std::env::args()
        .nth(1)
        .filter(|a| a != "--bench")
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/eval/tinyshakespeare.txt").to_string());
    let all = speeches::parse(&std::fs::read_to_string(&path).expect("read the text"));
    let (names, fit, held) = speeches::split(&all, 8, 0.8);
    let t = Instant::now();
    let m = Attributor::fit(&fit);
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let right = held.iter().filter(|(i, s)| m.attribute(s) == Some(*i)).count();
    let pred_s = t.elapsed().as_secs_f64();
    println!("speakers {}", names.len());
    println!("train_speeches {}", fit.iter().map(|f| f.1.len()).sum::<usize>());
    println!("heldout_speeches {}", held.len());
    println!("accuracy {:.4}", right as f64 / held.len() as f64);
    println!("fit_s {fit_s:.4}");
    println!("attribute_s {pred_s:.4}");
}
