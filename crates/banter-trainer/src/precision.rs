//! `--precision`: banter-model's hardware rules, and on a CPU with native bf16 a timed probe on the real
//! shape (forward + backward of the first batch in each precision) that keeps bf16 only when it is faster
//! and its loss agrees.

use std::time::Instant;

use banter_core::exit::Coded;
use banter_core::{Exit, records::Block};
use banter_model::calibration;
use banter_model::optim::AdamW;
use banter_model::precision::{self, Decision, Precision, PrecisionArg};
use banter_model::{Lm, Pass};
use tch::{Device, Kind};

use crate::data::{self, Blocks};

/// A training step faster than this (in fp32) is mostly call overhead: bf16 cannot pay there, and a probe
/// that short would decide by the machine's load.
const PROBE_FLOOR_SECS: f64 = 0.010;

/// Seconds per forward + backward step and the loss, best of `reps` after one warm-up.
fn time_steps(model: &Lm, opt: &mut AdamW, block: &[&Block], pad: u32, device: Device, kind: Kind) -> (f64, f64) {
    let (ids, labels, _) = data::batch(block, pad, device);
    let pass = Pass { train: false, compute: kind };
    let mut best = f64::INFINITY;
    let mut loss = f64::NAN;
    for rep in 0..3 {
        let t = Instant::now();
        let (l, _) = model.loss_backward(&ids, &labels, pass, 1.0);
        opt.zero_grad();
        if rep > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
        loss = l;
    }
    (best, loss)
}

/// Resolves `--precision` for this run; the first micro-batch of `train` is read only when a probe is due.
pub fn choose(
    arg: PrecisionArg,
    device: Device,
    model: &Lm,
    opt: &mut AdamW,
    train: &Blocks,
    micro: usize,
    pad: u32,
) -> crate::Result<Decision> {
    let d = precision::resolve(arg, device).map_err(|e| Coded::new(Exit::Usage, e.to_string()))?;
    if !d.needs_probe {
        return Ok(d);
    }
    let first = train.fetch(0..micro.min(train.len()))?;
    let first: Vec<&Block> = first.iter().collect();
    let first = first.as_slice();
    // The probe's answer is remembered per CPU, threads, model and batch shape: the same command takes the
    // same precision on every run, whatever the load when it starts.
    let longest = first.iter().map(|b| b.input_ids.len()).max().unwrap_or(0);
    let key = calibration::key(&format!(
        "train {} {} rows {}x{longest} lora {}",
        model.model_type(),
        model.net().config_json(),
        first.len(),
        model.lora_vs().is_some()
    ));
    if let Some(known) = calibration::lookup(&key) {
        return Ok(known);
    }
    let (t32, l32) = time_steps(model, opt, first, pad, device, Kind::Float);
    let (t16, l16) = time_steps(model, opt, first, pad, device, Kind::BFloat16);
    let decided = precision::decide_cpu(&d, t32, t16, l32, l16, PROBE_FLOOR_SECS);
    if let Err(e) = calibration::store(&key, &decided) {
        banter_core::eline!("warning: the precision choice could not be remembered: {e}");
    }
    Ok(decided)
}

/// The precision the run being resumed trained in (its checkpoint's `precision`), for `--precision auto`.
pub fn resumed(arg: PrecisionArg, checkpoint: Option<&std::path::Path>) -> Option<Decision> {
    if arg != PrecisionArg::Auto {
        return None;
    }
    let dir = checkpoint?;
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trainer_state.json")).ok()?).ok()?;
    let precision = match st["precision"].as_str()? {
        "fp32" => Precision::Fp32,
        "bf16" => Precision::Bf16,
        "fp16" => Precision::Fp16,
        _ => return None,
    };
    Some(Decision {
        precision,
        reason: format!("as the run being resumed chose ({})", dir.display()),
        needs_probe: false,
    })
}

/// The `Pass` compute kind and whether CUDA fp16 autocast wraps the passes.
pub fn pass_kind(p: Precision, device: Device) -> (Kind, bool) {
    match (p, device) {
        (Precision::Fp16, Device::Cuda(_)) => (Kind::Float, true),
        (p, _) => (p.compute_kind(), false),
    }
}
